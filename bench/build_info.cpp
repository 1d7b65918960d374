#include "bench/build_info.hpp"

// Generated into the build tree (bench/build_info.cmake); this translation
// unit is the only one that includes it, so a new commit recompiles one
// small file.
#include "rayd_bench_build_info.hpp"

namespace rayd::bench {

std::string build_commit() {
  return RAYD_BENCH_COMMIT;
}

bool build_dirty() {
  return RAYD_BENCH_COMMIT_DIRTY != 0;
}

} // namespace rayd::bench
