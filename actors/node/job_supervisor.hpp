#pragma once
// Spawning a job supervisor (node side; used by the job agent only).

#include <string>

#include <caf/fwd.hpp>

#include "actors/gcs/gate_actor.hpp"
#include "actors/node/job_agent_actor.hpp"
#include "actors/node/job_supervisor_actor.hpp"

namespace rayd::node {

class process_watcher;

struct supervisor_config {
  std::string node_id;     // REQUIRED
  std::string token;       // REQUIRED: presented to the gate
  std::string session_dir; // REQUIRED: the job's files go to <dir>/jobs/<id>/
  std::string shim_path;   // REQUIRED
  process_watcher* watcher = nullptr; // REQUIRED; outlives the supervisor
  job_agent_actor agent;   // REQUIRED: prepares working_dir packages
  /// The head's gate and API address as of now (null/empty until joined).
  gcs_gate_actor gate;
  std::string api_address;
};

/// Starts supervising `job`: prepares its working directory and runs its
/// entrypoint. The actor quits once the head acknowledged the final report.
job_supervisor_actor spawn_supervisor(caf::actor_system& sys,
                                      supervisor_config cfg, job_launch job);

} // namespace rayd::node
