#pragma once
// Message interface of the GCS node actor (head): membership and health,
// backed by gcs::node_table. Callers include this header only.

#include <string>
#include <vector>

#include <caf/replies_to.hpp>
#include <caf/typed_actor.hpp>

#include "actors/autoscale_types.hpp"
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
  /// From the autoscaler: the node types it may still launch, handed to
  /// the nodes with every report's reply so demand that fits one of them
  /// waits instead of being refused as infeasible. Replaces the last list.
  caf::reacts_to<atoms::set_launchable, std::vector<launchable_type>>,
  /// Subscribes to node events until the listener terminates.
  caf::reacts_to<atoms::subscribe, node_listener_actor>,
  /// Internal: nodes of an earlier head incarnation that did not re-join in
  /// time are declared DEAD.
  caf::reacts_to<atoms::expire>>;

} // namespace rayd
