#pragma once
// Runs job entrypoints as processes, through one rayd-job-shim per job (see
// cli/rayd_job_shim.cpp for the shim and its line protocol). The shim owns the
// job's session: it stops every process of it on request, when the entrypoint
// ends, and when rayd dies (EOF on the control socket, even after SIGKILL).
//
// A job's events:
//
//   launch() ──► shim running ── R ──► started ── X/K, leftovers stopped, shim exits ──► exited
//                    │                    │
//                    │ E, or the shim     │ the shim died (EOF before X/K):
//                    │ died before R      │ the watcher SIGKILLs the
//                    ▼                    ▼ entrypoint's process group
//                 failed               failed
//
// Plain class, no actors: the owner (the job manager) maps callbacks to
// messages. The process must not reap children it did not start (no
// waitpid(-1), SIGCHLD not ignored): the watcher waits for its shims by pid.

#include <cstddef>
#include <cstdint>
#include <functional>
#include <memory>
#include <string>
#include <vector>

#include <caf/expected.hpp>

namespace rayd::node {

struct launch_spec {
  /// The rayd-job-shim binary. REQUIRED.
  std::string shim_path;
  /// The entrypoint, e.g. {"/bin/sh", "-c", cmd}; argv[0] is looked up in the
  /// PATH of `env` (a relative path with a '/' is taken from `cwd`). REQUIRED
  /// (non-empty).
  std::vector<std::string> argv;
  /// The complete environment of the job, "K=V". Default: empty.
  std::vector<std::string> env;
  /// The entrypoint's working directory. REQUIRED.
  std::string cwd;
  /// The entrypoint's stdout and stderr are appended here (created 0640).
  /// Best absolute: a relative path is taken from rayd's working directory,
  /// not from `cwd`. REQUIRED.
  std::string log_path;
  /// SIGTERM-to-SIGKILL grace when the job is stopped by fate sharing (rayd
  /// gone, watcher destroyed) and for leftovers after the entrypoint ended.
  /// Default 3000 ms.
  int64_t grace_ms = 3000;
};

struct process_event {
  enum class kind { started, exited, failed };
  kind what;
  /// started: the entrypoint's pid (also its process group and session id).
  int pid = 0;
  /// exited: the exit code, or -1 when killed by a signal.
  int exit_code = -1;
  /// exited: the signal that killed the entrypoint, else 0.
  int signal = 0;
  /// failed: why, one line ("cannot execute /bin/nope: No such file or
  /// directory", "the job shim (pid 12) died unexpectedly: ...").
  std::string message;
};

/// One thread with epoll over every shim's control socket.
/// Thread-safe: launch, stop and running may be called from any thread,
/// including from a callback.
class process_watcher {
public:
  /// Runs on the watcher's thread, in order per job: `started` (unless the
  /// job failed to start), then exactly one of `exited` / `failed`. `exited`
  /// carries the entrypoint's status and comes once every process of the
  /// job is gone: leftovers of its session (children that outlived it, or
  /// that ignore SIGTERM on a stop) are stopped first, within the grace
  /// period. So "exited" means "nothing of this job runs any more".
  using callback = std::function<void(const process_event&)>;

  /// Starts the thread.
  process_watcher();

  /// Fate sharing: closes every control socket, so every shim stops its job
  /// (SIGTERM, SIGKILL after the job's grace_ms), and waits for the shims to
  /// exit, at most the largest grace_ms + 2 s; a shim still running then is
  /// SIGKILLed together with its entrypoint's process group. No callback runs
  /// once the destructor started. Must not be called from a callback.
  ~process_watcher();

  process_watcher(const process_watcher&) = delete;
  process_watcher& operator=(const process_watcher&) = delete;

  /// Starts the shim with posix_spawn (safe in a multi-threaded process; the
  /// control socket becomes fd 3 in the shim, which closes every other
  /// inherited descriptor but stdin/stdout/stderr, and passes none of those
  /// to the job). The shim gets its own process group, so terminal
  /// signals meant for rayd do not reach it. Returns the job's launch id
  /// (unique per watcher, never 0); `cb` receives its events.
  /// Errors: errc::invalid_argument for a spec missing a REQUIRED field;
  /// errc::unavailable naming the shim path when the shim cannot be started.
  /// Failures of the entrypoint itself (no such program, bad cwd) arrive as a
  /// `failed` event instead.
  caf::expected<uint64_t> launch(const launch_spec& spec, callback cb);

  /// Asks the shim to stop the job: SIGTERM to its processes, SIGKILL after
  /// `grace_ms`. No-op for an unknown or finished id.
  void stop(uint64_t id, int64_t grace_ms);

  /// Number of jobs whose `exited`/`failed` has not been delivered yet.
  size_t running() const;

private:
  struct impl;
  std::unique_ptr<impl> impl_;
};

} // namespace rayd::node
