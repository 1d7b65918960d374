#include "actors/gcs/actor_placement.hpp"

namespace rayd::gcs {

namespace {

std::string describe_labels(const label_map& labels) {
  std::string out = "{";
  for (auto& [k, v] : labels) {
    if (out.size() > 1)
      out += ", ";
    out += k + ": " + v;
  }
  return out + "}";
}

} // namespace

std::optional<std::string> place_actor(const resource_map& shape,
                                       const label_map& selector,
                                       const std::vector<actor_node_slot>& nodes) {
  const actor_node_slot* best = nullptr;
  for (auto& n : nodes) {
    if (!n.alive || !labels_match(selector, n.labels) || !fits(shape, n.total)
        || !fits(shape, subtract(n.available, n.reserved)))
      continue;
    if (best == nullptr || n.actors < best->actors
        || (n.actors == best->actors && n.node_id < best->node_id))
      best = &n;
  }
  if (best == nullptr)
    return std::nullopt;
  return best->node_id;
}

std::string why_unplaced(const resource_map& shape, const label_map& selector,
                         const std::vector<actor_node_slot>& nodes) {
  bool any_alive = false, any_labels = false, any_total = false;
  for (auto& n : nodes) {
    if (!n.alive)
      continue;
    any_alive = true;
    if (!labels_match(selector, n.labels))
      continue;
    any_labels = true;
    if (fits(shape, n.total))
      any_total = true;
  }
  if (!any_alive)
    return "no alive node";
  if (!any_labels)
    return "no alive node has labels " + describe_labels(selector);
  if (!any_total)
    return "no alive node could ever hold " + describe_shape(shape);
  return "no node has " + describe_shape(shape) + " free now";
}

} // namespace rayd::gcs
