#pragma once
// Where a user actor goes: a pure function of the actor's shape and label
// selector and of the nodes as the actor manager sees them, so it is
// unit-tested without actors (docs/actors.md, "least actors first").
//
// Rules: a node qualifies when it is ALIVE, its labels match the selector,
// its total resources could hold the shape at all, and its available
// resources (from its last report) minus what the actor manager has
// reserved there for actors still being hosted (their reservation is not in
// a report yet) hold the shape. Among those, the node with the fewest actors
// of this manager wins; ties go to the lower node id (deterministic). The
// default shape is empty: it fits everywhere.

#include <cstddef>
#include <optional>
#include <string>
#include <vector>

#include "common/resources.hpp"

namespace rayd::gcs {

/// One node as the actor manager sees it.
struct actor_node_slot {
  std::string node_id;
  bool alive = false;
  label_map labels;
  resource_map total;
  resource_map available;
  /// Shapes of actors sent there and not yet confirmed.
  resource_map reserved;
  /// Actors of this manager there (ALIVE or being hosted).
  std::size_t actors = 0;
};

/// The chosen node's id, or nullopt when none qualifies (the actor waits).
std::optional<std::string> place_actor(const resource_map& shape,
                                       const label_map& selector,
                                       const std::vector<actor_node_slot>& nodes);

/// Why no node qualifies, for logs and `rayctl actors` ("no alive node",
/// "no node has labels {...}", "no node could ever hold {CPU: 4}", "no node
/// has {CPU: 4} free now").
std::string why_unplaced(const resource_map& shape, const label_map& selector,
                         const std::vector<actor_node_slot>& nodes);

} // namespace rayd::gcs
