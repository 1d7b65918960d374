#pragma once
// Message interfaces of the GCS actors (head only). Each concern has its own
// actor; only the gate is reachable from other processes.
//
//   node manager ──join(token)──► gate ──(token ok)──► node_actor ─► node_table ─► store
//   API gateway ──────────────────────────────────────► node_actor
//   API gateway ──────────────────────────────────────► kv_actor ──► kv_table ──► store

#include <string>
#include <vector>

#include <caf/replies_to.hpp>
#include <caf/typed_actor.hpp>

#include "actors/job/job_types.hpp"
#include "actors/node/node_manager_actor.hpp"
#include "actors/types.hpp"

namespace rayd {

/// Receives node_added / node_dead events (the node_info's state tells which).
using node_listener_actor
  = caf::typed_actor<caf::reacts_to<atoms::node_event, node_info>>;

/// Membership and health: the node table.
using gcs_node_actor = caf::typed_actor<
  /// Join or re-join. REQUIRES: the token was checked (by the gate).
  /// Errors: errc::wrong_cluster, errc::invalid_argument, errc::storage_error.
  caf::replies_to<atoms::join, join_request, node_manager_actor>::with<join_reply>,
  /// A snapshot of the node table.
  caf::replies_to<atoms::nodes>::with<cluster_view>,
  /// A node leaves on purpose (rayd stop): DEAD with reason "stopped".
  caf::replies_to<atoms::leave, std::string>::with<bool>,
  /// A node's periodic report (soft state) → the cluster for spillback.
  caf::replies_to<atoms::report, node_report>::with<std::vector<peer_view>>,
  /// The handle a live node joined with. Errors: errc::not_found.
  caf::replies_to<atoms::lookup, std::string>::with<node_manager_actor>,
  /// Subscribes to node events until the listener terminates.
  caf::reacts_to<atoms::subscribe, node_listener_actor>,
  /// Internal: nodes of an earlier head incarnation that did not re-join in
  /// time are declared DEAD.
  caf::reacts_to<atoms::expire>>;

/// The published entry point of the cluster port. Every message carries the
/// cluster token; the gate checks it and forwards to the GCS actor in charge.
/// Errors: errc::unauthenticated for a missing or wrong token.
using gcs_gate_actor = caf::typed_actor<
  caf::replies_to<atoms::join, join_request, node_manager_actor>::with<join_reply>,
  /// (token, node_id) → whether the node was known.
  caf::replies_to<atoms::leave, std::string, std::string>::with<bool>,
  /// A job supervisor's state (token, report) → whether the job should go on
  /// (false: the head does not know it or it ended; the node stops it).
  caf::replies_to<atoms::job_report, std::string, job_report>::with<bool>,
  /// A job supervisor ships log bytes (token, id, offset, bytes) → the
  /// length the GCS holds afterwards (empty bytes: just ask).
  caf::replies_to<atoms::log_append, std::string, std::string, uint64_t, std::string>::with<uint64_t>,
  /// A node's periodic report (token, report) → the cluster's nodes.
  caf::replies_to<atoms::report, std::string, node_report>::with<std::vector<peer_view>>,
  /// A node fetches a package (token, sha256, offset, max bytes) → bytes.
  caf::replies_to<atoms::blob_read, std::string, std::string, uint64_t, uint64_t>::with<std::string>>;

/// The internal KV (namespaced). Writes are group-committed: a reply means
/// the change is durable. Errors: errc::invalid_argument, errc::not_found
/// (get of a missing key), errc::storage_error.
using gcs_kv_actor = caf::typed_actor<
  /// (ns, key, value, overwrite) → whether the key was added.
  caf::replies_to<atoms::kv_put, std::string, std::string, std::string, bool>::with<bool>,
  /// (ns, key) → value.
  caf::replies_to<atoms::kv_get, std::string, std::string>::with<std::string>,
  /// (ns, key) → whether the key existed.
  caf::replies_to<atoms::kv_del, std::string, std::string>::with<bool>,
  /// (ns, prefix) → keys.
  caf::replies_to<atoms::kv_list, std::string, std::string>::with<std::vector<std::string>>,
  /// Internal: commit the staged writes.
  caf::reacts_to<atoms::flush>>;

/// Task events reported by drivers (soft state, in memory, bounded).
using gcs_task_actor = caf::typed_actor<
  /// (job id, counts, newest events) from a driver.
  caf::reacts_to<atoms::task_report, std::string, task_counts, std::vector<task_event>>,
  /// limit → (the newest `limit` events, counts over live drivers).
  caf::replies_to<atoms::task_list, uint32_t>::with<task_list_reply>>;

/// Content-addressed blobs (working_dir packages). Errors:
/// errc::invalid_argument (bad name, hash mismatch, too large),
/// errc::not_found, errc::storage_error.
using gcs_blob_actor = caf::typed_actor<
  /// bytes → their sha256 (storing them unless present already).
  caf::replies_to<atoms::blob_put, std::string>::with<std::string>,
  /// sha256 → size in bytes; errc::not_found if absent.
  caf::replies_to<atoms::blob_size, std::string>::with<uint64_t>,
  /// (sha256, offset, max bytes) → bytes.
  caf::replies_to<atoms::blob_read, std::string, uint64_t, uint64_t>::with<std::string>,
  caf::reacts_to<atoms::blob_drop, std::string>>;

} // namespace rayd
