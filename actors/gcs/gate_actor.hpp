#pragma once
// Message interface of the gate (head): the only actor published on the
// cluster port. Every message carries the cluster token; the gate checks it
// and forwards to the GCS actor in charge.

#include <cstdint>
#include <string>
#include <vector>

#include <caf/replies_to.hpp>
#include <caf/typed_actor.hpp>

#include "actors/actor_types.hpp"
#include "actors/job_types.hpp"
#include "actors/node/node_manager_actor.hpp"
#include "actors/types.hpp"

namespace rayd {

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
  caf::replies_to<atoms::blob_read, std::string, std::string, uint64_t, uint64_t>::with<std::string>,
  /// A node's worker process hosting an actor ended (token, actor_id,
  /// node_id, pid, cause): forwarded to the actor manager.
  caf::reacts_to<atoms::actor_exited, std::string, std::string, std::string, int32_t, std::string>,
  /// A job's driver is gone from a node (token, job_id): forwarded to the
  /// actor manager (its non-detached actors die).
  caf::reacts_to<atoms::job_gone, std::string, std::string>>;

} // namespace rayd
