#pragma once
// Spawning the GCS actors (the head's composition root calls these in order:
// node actor, kv actor, gate). The store must outlive every actor.

#include <string>

#include <caf/fwd.hpp>
#include <caf/timespan.hpp>

#include "actors/gcs/gcs_actors.hpp"
#include "actors/job/job_actors.hpp"
#include "persistence/store.hpp"

namespace rayd::gcs {

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

/// Where the gate forwards each kind of message once the token checked out.
struct gate_targets {
  gcs_node_actor nodes;   // REQUIRED
  job_manager_actor jobs; // REQUIRED
  job_log_actor logs;     // REQUIRED
  gcs_blob_actor blobs;   // REQUIRED
};

gcs_gate_actor spawn_gate(caf::actor_system& sys, std::string token,
                          gate_targets targets);

} // namespace rayd::gcs
