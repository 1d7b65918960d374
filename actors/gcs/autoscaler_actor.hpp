#pragma once
// Message interface of the autoscaler (head; docs/autoscaler.md, "The
// autoscaler on the head"). It runs a round every `round_interval`: asks the
// node provider for its instances (on the provider's own thread), the node
// actor for the nodes and their load, the actor and job managers for their
// pending demand, then lets autoscale::autoscaler decide and makes the side
// effects — creates and terminations on the provider's thread, drains at the
// node managers. Callers include this header only; spawn_autoscaler is in
// spawn.hpp (the library rayd_autoscale_head).

#include <string>
#include <vector>

#include <caf/fwd.hpp>
#include <caf/replies_to.hpp>
#include <caf/typed_actor.hpp>

#include "actors/autoscale_types.hpp"
#include "common/resources.hpp"

namespace rayd {

using autoscaler_actor = caf::typed_actor<
  /// The last round as JSON (autoscale::autoscaler::status_json).
  caf::replies_to<atoms::autoscale_status>::with<std::string>,
  /// Explicit requests: bundles the cluster must be able to hold at once;
  /// replaces the previous request, empty clears it. Errors:
  /// errc::invalid_argument.
  caf::replies_to<atoms::request_resources, std::vector<resource_map>>::with<bool>>;

} // namespace rayd
