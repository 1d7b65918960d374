#pragma once
// The cluster's identity, kept in the GCS store's "meta" table:
// `cluster_id` is created once, on the first start of a head with empty
// storage; `epoch` is bumped (durably) on every head start, so everything the
// head hands out can be told apart from what an earlier incarnation did.

#include <cstdint>
#include <string>

#include <caf/error.hpp>
#include <caf/expected.hpp>

#include "persistence/store.hpp"

namespace rayd::gcs {

struct cluster_meta {
  std::string cluster_id;
  uint64_t epoch = 0;
  /// The cluster token; kept so that nodes and tools keep working across
  /// head restarts.
  std::string token;
  /// The head's own node id, stable across restarts.
  std::string head_node_id;
  /// Ports the previous incarnation listened on (0 = none): a head started
  /// with port 0 tries these first, so restarted heads keep their address.
  uint16_t cluster_port = 0;
  uint16_t api_port = 0;
  /// True when this start created the cluster (storage was empty).
  bool created = false;
};

/// Loads the cluster's identity (creating it if absent), bumps the epoch and
/// persists the result before returning. A non-empty `token_override`
/// replaces the stored token.
caf::expected<cluster_meta> start_epoch(persistence::store& db,
                                        const std::string& token_override);

/// Records the ports this incarnation listens on.
caf::error save_ports(persistence::store& db, uint16_t cluster_port,
                      uint16_t api_port);

} // namespace rayd::gcs
