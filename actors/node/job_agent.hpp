#pragma once
// Spawning the job agent (every node): one per node, handed to the node
// manager, which forwards job_start/job_stop and head changes to it.

#include <string>

#include <caf/fwd.hpp>

#include "actors/node/job_agent_actor.hpp"

namespace rayd::node {

class process_watcher;

struct job_agent_config {
  std::string node_id;      // REQUIRED
  std::string node_name;    // REQUIRED
  std::string token;        // REQUIRED: presented to the gate
  /// Where job directories, logs and unpacked packages go. REQUIRED.
  std::string session_dir;
  /// The rayd-job-shim binary. REQUIRED.
  std::string shim_path;
  /// Runs the shims; outlives the agent. REQUIRED.
  process_watcher* watcher = nullptr;
};

job_agent_actor spawn_job_agent(caf::actor_system& sys, job_agent_config cfg);

} // namespace rayd::node
