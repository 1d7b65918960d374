#pragma once
// What the autoscaler's policy needs of a cluster config (docs/autoscaler.md):
// the node types it may launch and the limits on them. The YAML parser
// (cluster_config.hpp) produces it; the policy (policy.hpp) reads it. Plain
// values, no I/O.

#include <chrono>
#include <cstdint>
#include <map>
#include <string>

#include "common/resources.hpp"

namespace rayd::autoscale {

struct node_type_config {
  std::string name;
  resource_map resources; // what one node of this type offers
  label_map labels;
  int32_t min_workers = 0;
  int32_t max_workers = 0;
  /// The provider's own settings for this type, as JSON text ("{}" if none).
  std::string node_config_json = "{}";
};

struct autoscaling_config {
  /// Workers at most, over all types (the head not counted).
  int32_t max_workers = 2;
  /// Launches per round at most: max(5, upscaling_speed × nodes running or
  /// pending) (Ray's rule).
  double upscaling_speed = 1.0;
  /// A worker idle this long is terminated (down to its type's min_workers).
  std::chrono::milliseconds idle_timeout = std::chrono::minutes{5};
  std::map<std::string, node_type_config> node_types;
  std::string head_node_type;
};

} // namespace rayd::autoscale
