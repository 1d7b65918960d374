#pragma once
// Where a lease request goes (docs/tasks.md): a pure function of the shape,
// this node's free resources, and this node's view of the cluster, so it is
// unit-tested without sockets.
//
//   fits here now ─────────────────────────────► grant
//   fits on another alive node now (not spilled before) ─► spill there (most free CPU)
//   fits on some alive node when idle (here or elsewhere) ► queue (FIFO here)
//   fits a node type the autoscaler may launch ──► queue (the node's report
//                                                  shows it as demand)
//   fits nowhere, ever ──────────────────────────► infeasible

#include <map>
#include <string>
#include <vector>

#include "actors/types.hpp"
#include "common/util.hpp"
#include "common/wire.hpp"

namespace rayd::node {

/// A node as this node last heard of it from the GCS (address = node port).
using peer_capacity = peer_view;

struct lease_decision {
  enum kind_t { grant, spill, queue, infeasible };
  kind_t kind = queue;
  std::string node_id; // spill
  std::string address; // spill
  std::string reason;  // queue / infeasible
};

/// `self` is this node (its `available` is what is free here now); `peers`
/// the rest of the cluster as last reported (this node may appear there too:
/// it is skipped by id). `spilled` requests are never spilled again.
lease_decision decide_lease(const resource_map& shape, const label_map& selector,
                            const peer_capacity& self,
                            const std::vector<peer_capacity>& peers, bool spilled);

/// The one place a node's answer to a LEASE is encoded: SPILLBACK for
/// `spill`, QUEUED for `queue`, REFUSED (infeasible) for `infeasible`. A
/// `grant` has no frame of its own (the worker sends GRANTED): "" for it.
std::string encode_lease_reply(uint64_t request_id, const lease_decision& d);

/// REFUSED for a lease request that cannot be served for another reason
/// (`code`: invalid, unavailable, ...).
std::string encode_lease_refusal(uint64_t request_id, wire::wire_error code,
                                 const std::string& reason);

} // namespace rayd::node
