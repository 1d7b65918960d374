#pragma once
// Starting a worker process (docs/tasks.md, "Worker processes"): the job's
// executable with a control socket on descriptor 3 (RAYD_WORKER_FD), its
// output to a log file, and none of rayd's other descriptors. The worker
// pool keeps the bookkeeping; this is the one place a worker is spawned.
//
// Threads: any (no shared state); the task server calls it on its loop.

#include <sys/types.h>

#include <string>
#include <vector>

#include <caf/expected.hpp>

namespace rayd::node {

struct worker_launch {
  /// paths[0]: the executable; the rest: task libraries (RAYD_WORKER_LIBS).
  std::vector<std::string> paths;
  std::string job_id;
  std::string node_id;
  std::string log_file; // created (with its directory) or appended to
};

struct started_process {
  pid_t pid = -1;
  int ctrl = -1; // rayd's end of the control socket (CLOEXEC)
};

/// Starts the process. Errors: errc::unavailable with what failed.
caf::expected<started_process> start_worker_process(const worker_launch& l);

/// "exited with code 3", "killed by signal 9 (Killed)", ...
std::string describe_exit_status(int status);

} // namespace rayd::node
