#pragma once
// Where a job's entrypoint runs: a pure function of the entrypoint's resource
// shape and the nodes' capacities, so it is unit-tested without actors.
//
// Rules (as in Ray): an entrypoint that asks for nothing runs on the head
// and reserves nothing. One that asks for resources runs on the alive node
// with room for them, preferring the one with the most free CPU (spread),
// then the head, then the lower node id (deterministic). If no alive node
// could hold the shape even when idle, the job is infeasible.

#include <string>
#include <vector>

#include "common/resources.hpp"

namespace rayd::gcs {

struct node_capacity {
  std::string node_id;
  std::string name;
  bool is_head = false;
  bool alive = false;
  resource_map total;
  /// Held by entrypoints already placed there.
  resource_map reserved;
  /// Not a node: a node type the autoscaler may still launch. It only makes
  /// a shape feasible (the job waits for the node instead of failing).
  bool launchable = false;
};

struct placement {
  enum kind_t { placed, busy, infeasible };
  kind_t kind = busy;
  std::string node_id; // placed
  std::string reason;  // busy / infeasible: for status and the job's message
};

/// `total` minus `reserved`, per resource.
resource_map free_of(const node_capacity& n);

placement place_entrypoint(const resource_map& shape,
                           const std::vector<node_capacity>& nodes);

} // namespace rayd::gcs
