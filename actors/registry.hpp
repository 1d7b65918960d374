#pragma once
// Registers every message type of rayd with CAF under a fixed name. Called
// explicitly by each main() before the actor_system is constructed; the names
// must be identical in every process of a cluster.

#include <caf/fwd.hpp>

namespace rayd {

void register_message_types(caf::actor_system_config& cfg);

/// Registers rayd's error category so CAF renders `errc` values readably.
void register_error_category(caf::actor_system_config& cfg);

} // namespace rayd
