#pragma once
// The actor-system config of in-process actor tests: every message type and
// the error category registered (as each main() does), CAF's logger quiet.

#include <caf/actor_system_config.hpp>
#include <caf/atom.hpp>

#include "actors/registry.hpp"
#include "common/error.hpp"

namespace rayd::test {

inline caf::actor_system_config& quiet_config(caf::actor_system_config& cfg) {
  register_message_types(cfg);
  register_error_category(cfg);
  cfg.set("logger.file-verbosity", caf::atom("quiet"));
  cfg.set("logger.console-verbosity", caf::atom("quiet"));
  return cfg;
}

} // namespace rayd::test
