#pragma once
// Starting a rayd (or any program) as a detached daemon of this host: the
// processes provider starts its workers this way, the launcher its head.
//
// Contract of spawn_detached: the program runs in a new session (setsid), is
// not a child of the caller (an intermediate child forks it and exits, so it
// is re-parented to init or the nearest subreaper, outlives the caller and
// never becomes the caller's zombie), with stdin from /dev/null, stdout and
// stderr appended to <dir>/rayd.out and <dir>/rayd.err, cwd <dir>, default
// signal dispositions and an empty signal mask, and no descriptor of the
// caller beyond 0-2. It returns once exec has succeeded (or failed: then an
// error naming argv[0] and the reason).
//
// Thread rules: plain blocking calls, no shared state; safe from any thread
// (only async-signal-safe calls run between fork and exec).

#include <string>
#include <vector>

#include <sys/types.h>

#include <caf/expected.hpp>

namespace rayd::autoscale {

/// Starts `argv` (argv[0] a path, not searched in PATH) detached, as above.
/// `what` prefixes error messages ("processes provider", "launcher").
/// Errors: storage_error (cannot open the output files), invalid_argument
/// (exec failed: not found, not executable), internal (fork/pipe failed).
caf::expected<pid_t> spawn_detached(const std::vector<std::string>& argv,
                                    const std::string& dir, const std::string& what);

/// `<directory of this process's executable>/<name>`, or `name` when the
/// executable's path cannot be read. rayd, rayctl and rayd-job-shim are built
/// and installed side by side, so each finds the others this way.
std::string binary_next_to_self(const std::string& name);

} // namespace rayd::autoscale
