#pragma once
// Spawning the GCS actors (the head's composition root calls these in order:
// node actor, kv actor, blob and task actors, log actor, job manager, actor
// manager, gate). The store must outlive every actor.

#include <cstdint>
#include <memory>
#include <string>

#include <caf/fwd.hpp>
#include <caf/timespan.hpp>

#include "actors/gcs/actor_manager_actor.hpp"
#include "actors/gcs/autoscaler_actor.hpp"
#include "actors/gcs/blob_actor.hpp"
#include "actors/gcs/gate_actor.hpp"
#include "actors/gcs/job_log_actor.hpp"
#include "actors/gcs/job_manager_actor.hpp"
#include "actors/gcs/job_table.hpp"
#include "actors/gcs/kv_actor.hpp"
#include "actors/gcs/node_actor.hpp"
#include "actors/gcs/task_actor.hpp"
#include "persistence/store.hpp"

namespace rayd::gcs {

class log_table;

struct node_actor_config {
  persistence::store* db = nullptr; // REQUIRED
  std::string cluster_id;           // REQUIRED
  uint64_t epoch = 0;               // REQUIRED
  std::string api_address;          // handed to joining nodes
  /// After a head restart: how long nodes of the previous incarnation may
  /// take to re-join before they are declared DEAD. Default 10 s.
  caf::timespan reconnect_timeout = std::chrono::seconds{10};
};

/// Loads the node table and spawns the node actor.
/// Errors: errc::storage_error when the table cannot be read.
caf::expected<gcs_node_actor> spawn_node_actor(caf::actor_system& sys,
                                               node_actor_config cfg);

gcs_kv_actor spawn_kv_actor(caf::actor_system& sys, persistence::store& db);

gcs_blob_actor spawn_blob_actor(caf::actor_system& sys, persistence::store& db);

/// Keeps at most `max_events` task events (newest first out of the list).
gcs_task_actor spawn_task_actor(caf::actor_system& sys, std::size_t max_events = 10000);

// User actors on the head (docs/actors.md).

struct actor_manager_config {
  persistence::store* db = nullptr; // REQUIRED; outlives the actor
  gcs_node_actor nodes;             // REQUIRED
  /// The head's node id: actors ALIVE there when the manager starts ran in
  /// worker processes of the previous head process, which ended with it;
  /// they fail (and restart while restarts remain). "" = no such node.
  std::string head_node_id;
  /// How often unplaced actors are tried again (and the nodes' available
  /// resources refreshed). Default 500 ms.
  caf::timespan tick_interval = std::chrono::milliseconds{500};
  /// How long a node may take to host an actor (the first actor of a job
  /// starts its worker process). Default 30 s.
  caf::timespan host_timeout = std::chrono::seconds{30};
};

/// Loads the actor table and spawns the actor manager.
/// Errors: errc::storage_error when the table cannot be read.
caf::expected<actor_manager_actor> spawn_actor_manager(caf::actor_system& sys,
                                                       actor_manager_config cfg);

/// Where the gate forwards each kind of message once the token checked out.
struct gate_targets {
  gcs_node_actor nodes;   // REQUIRED
  job_manager_actor jobs; // REQUIRED
  job_log_actor logs;     // REQUIRED
  gcs_blob_actor blobs;   // REQUIRED
  actor_manager_actor actors; // unset: actor reports from nodes are dropped
};

gcs_gate_actor spawn_gate(caf::actor_system& sys, std::string token,
                          gate_targets targets);

// Jobs on the head (docs/jobs.md): the log actor first, then the job manager.

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

/// Loads the job table, tells `cfg.logs` of every job in it (before it
/// returns, so before the API can ask the log actor for a job's log) and
/// spawns the job manager.
/// Errors: errc::storage_error when the table cannot be read.
caf::expected<job_manager_actor> spawn_job_manager(caf::actor_system& sys,
                                                   job_manager_config cfg);

/// Spawns the log actor over `table` (its lengths loaded by the caller, who
/// reports the error). It serves job_logs only for jobs the job manager told
/// it of, so spawn it first and hand it to spawn_job_manager.
job_log_actor spawn_log_actor(caf::actor_system& sys,
                              std::shared_ptr<log_table> table);

// The autoscaler (docs/autoscaler.md; defined in rayd_autoscale_head).

struct autoscaler_config {
  persistence::store* db = nullptr; // REQUIRED; outlives the actor
  gcs_node_actor nodes;             // REQUIRED
  actor_manager_actor actors;       // REQUIRED
  job_manager_actor jobs;           // REQUIRED
  /// The cluster config file (--autoscaling-config). REQUIRED. Re-read
  /// when its content changes; a bad new version keeps the old one and is
  /// reported in the status.
  std::string config_path;
  /// What `processes` nodes join: the head's cluster address and token file.
  std::string head_address;
  std::string token_file;
  /// Time between rounds. Default 100 ms.
  caf::timespan round_interval = std::chrono::milliseconds{100};
};

/// Reads and checks the config, builds its provider, loads the instance
/// table and spawns the autoscaler (and its provider's thread).
/// Errors: errc::invalid_argument (the config; the message names the file,
/// line and key), errc::storage_error.
caf::expected<autoscaler_actor> spawn_autoscaler(caf::actor_system& sys,
                                                 autoscaler_config cfg);

} // namespace rayd::gcs
