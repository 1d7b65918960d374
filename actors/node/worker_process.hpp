#pragma once
// Starting a worker process (docs/tasks.md, "Worker processes"): the job's
// executable with a control socket on descriptor 3 (RAYD_WORKER_FD), its
// output to a log file, and none of rayd's other descriptors. Its
// environment: rayd's own (less any RAYD_WORKER_*, RAYD_TOKEN, RAYD_ADDRESS,
// RAYD_NODE_*), plus RAYD_WORKER_FD, RAYD_WORKER_LIBS, RAYD_JOB_ID,
// RAYD_NODE_ID, RAYD_NODE_ADDRESS (the node port), and when known
// RAYD_ADDRESS (the head's API address) and RAYD_TOKEN (the cluster token),
// so that code running in the worker can call actors. The worker
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
  /// The node port (RAYD_NODE_ADDRESS: where stored actor results live).
  std::string node_address;
  /// The head's API address and the cluster token (RAYD_ADDRESS,
  /// RAYD_TOKEN): a task or actor in the worker can call actors as a
  /// driver does. "" = not set.
  std::string api_address;
  std::string token;
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
