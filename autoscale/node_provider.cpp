#include "autoscale/node_provider.hpp"

#include "common/error.hpp"

namespace rayd::autoscale {

const char* to_string(provider_instance::status x) {
  switch (x) {
    case provider_instance::pending:
      return "pending";
    case provider_instance::running:
      return "running";
    case provider_instance::terminating:
      return "terminating";
    case provider_instance::terminated:
      return "terminated";
    case provider_instance::failed:
      return "failed";
  }
  return "failed";
}

std::optional<provider_instance::status> parse_status(const std::string& text) {
  for (auto s : {provider_instance::pending, provider_instance::running,
                 provider_instance::terminating, provider_instance::terminated,
                 provider_instance::failed})
    if (text == to_string(s))
      return s;
  return std::nullopt;
}

caf::error check_create_args(const instance_spec& spec, int32_t count) {
  if (count < 1)
    return make_error(errc::invalid_argument,
                      "create: count must be at least 1, got " + std::to_string(count));
  if (spec.node_type.empty())
    return make_error(errc::invalid_argument, "create: the node type is empty");
  auto i = spec.tags.find(tag_launch_request);
  if (i == spec.tags.end() || i->second.empty())
    return make_error(errc::invalid_argument,
                      std::string{"create: the spec has no '"} + tag_launch_request
                        + "' tag (needed so a retried launch never launches twice)");
  return caf::none;
}

std::map<std::string, std::string> instance_tags(const instance_spec& spec,
                                                 const std::string& cluster) {
  auto tags = spec.tags;
  tags[tag_cluster] = cluster;
  tags[tag_node_type] = spec.node_type;
  return tags;
}

bool is_live(provider_instance::status x) {
  return x == provider_instance::pending || x == provider_instance::running;
}

} // namespace rayd::autoscale
