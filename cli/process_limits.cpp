#include "cli/process_limits.hpp"

#include <sys/resource.h>

#include <cerrno>
#include <cstring>
#include <limits>

#include <spdlog/spdlog.h>

namespace rayd::cli {

int64_t raise_open_file_limit() {
  rlimit rl{};
  if (::getrlimit(RLIMIT_NOFILE, &rl) != 0)
    return 0;
  if (rl.rlim_cur != rl.rlim_max) {
    rlimit want = rl;
    want.rlim_cur = rl.rlim_max;
    if (::setrlimit(RLIMIT_NOFILE, &want) == 0)
      rl = want;
    else
      spdlog::warn("cannot raise the open-file limit from {} to {}: {}", rl.rlim_cur,
                   rl.rlim_max, std::strerror(errno));
  }
  if (rl.rlim_cur == RLIM_INFINITY)
    return std::numeric_limits<int64_t>::max();
  return static_cast<int64_t>(rl.rlim_cur);
}

} // namespace rayd::cli
