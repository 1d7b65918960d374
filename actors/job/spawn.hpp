#pragma once
// Spawning the job roles. The head's composition root spawns the log actor
// and the job manager (after the GCS node actor); every node spawns one job
// agent and hands it to its node manager.

#include <cstdint>
#include <memory>
#include <string>

#include <caf/fwd.hpp>
#include <caf/timespan.hpp>

#include "actors/job/job_actors.hpp"
#include "actors/job/job_table.hpp"
#include "persistence/store.hpp"

namespace rayd::job {

class log_table;
class process_watcher;

struct job_manager_config {
  persistence::store* db = nullptr; // REQUIRED; outlives the actor
  gcs_node_actor nodes;             // REQUIRED
  job_log_actor logs;               // REQUIRED
  gcs_blob_actor blobs;             // REQUIRED
  /// The head's node id: its jobs die with the head process.  REQUIRED.
  std::string head_node_id;
  /// A job still PENDING after this long fails. Default 600 s.
  caf::timespan pending_timeout = std::chrono::seconds{600};
  /// SIGTERM → SIGKILL grace when stopping a job. Default 3 s.
  int64_t stop_grace_ms = 3000;
  retention_policy retention;
  /// After a head restart: how long a job that was running on a worker may
  /// take to be reported again before it counts as lost. Default 15 s.
  caf::timespan reattach_timeout = std::chrono::seconds{15};
  /// How often timeouts and retention are checked. Default 250 ms.
  caf::timespan tick_interval = std::chrono::milliseconds{250};
};

/// Loads the job table and spawns the job manager.
/// Errors: errc::storage_error when the table cannot be read.
caf::expected<job_manager_actor> spawn_job_manager(caf::actor_system& sys,
                                                   job_manager_config cfg);

/// Loads log lengths (the caller reports errors) and spawns the log actor.
job_log_actor spawn_log_actor(caf::actor_system& sys,
                              std::shared_ptr<log_table> table);

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

} // namespace rayd::job
