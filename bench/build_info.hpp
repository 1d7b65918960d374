#pragma once
// The commit rayd-bench was built from, stamped into every JSON object it
// prints (the field "build": {"commit", "dirty"}). Filled in at build time
// by bench/build_info.cmake: "unknown" when the sources are not a git
// checkout (or git is missing); dirty when tracked files differed from that
// commit when the build ran.

#include <string>

namespace rayd::bench {

/// Short hash of HEAD at build time, or "unknown".
std::string build_commit();

/// Whether tracked files differed from build_commit() at build time.
bool build_dirty();

} // namespace rayd::bench
