#pragma once
// Process-wide limits a daemon adjusts at start.

#include <cstdint>

namespace rayd::cli {

/// Raises the open-file soft limit (RLIMIT_NOFILE) to the hard limit, so
/// that connections, RocksDB files and worker pipes are bounded by what the
/// operator allowed rather than by a login shell's default (often 1024).
/// Returns the soft limit in force afterwards (what `rayctl status --json`
/// reports as open_files_limit); 0 if it cannot be read, INT64_MAX for
/// "unlimited". Never fails: a refused raise keeps the old limit.
int64_t raise_open_file_limit();

} // namespace rayd::cli
