#include "actors/gcs/job_placement.hpp"

#include <algorithm>
#include <cmath>

namespace rayd::gcs {

namespace {
constexpr double epsilon = 1e-9;
}

resource_map free_of(const node_capacity& n) { return subtract(n.total, n.reserved); }

placement place_entrypoint(const resource_map& shape,
                           const std::vector<node_capacity>& nodes) {
  bool wants_nothing = std::all_of(shape.begin(), shape.end(),
                                   [](auto& kv) { return kv.second <= 0; });
  if (wants_nothing) {
    for (auto& n : nodes)
      if (n.is_head && n.alive)
        return {placement::placed, n.node_id, ""};
    return {placement::busy, "", "waiting for the head node to be up"};
  }
  const node_capacity* best = nullptr;
  double best_cpu = -1;
  bool feasible = false;
  resource_map most; // per requested resource, the most any alive node has
  for (auto& [name, _] : shape)
    most[name] = 0;
  for (auto& n : nodes) {
    if (n.launchable) {
      feasible = feasible || fits(shape, n.total);
      continue;
    }
    if (!n.alive)
      continue;
    for (auto& [name, amount] : most)
      if (auto i = n.total.find(name); i != n.total.end())
        amount = std::max(amount, i->second);
    if (!fits(shape, n.total))
      continue;
    feasible = true;
    auto avail = free_of(n);
    if (!fits(shape, avail))
      continue;
    double cpu = avail.count("CPU") ? avail["CPU"] : 0;
    bool better = best == nullptr || cpu > best_cpu + epsilon
                  || (std::abs(cpu - best_cpu) <= epsilon
                      && (n.is_head > best->is_head
                          || (n.is_head == best->is_head
                              && n.node_id < best->node_id)));
    if (better) {
      best = &n;
      best_cpu = cpu;
    }
  }
  if (best != nullptr)
    return {placement::placed, best->node_id, ""};
  if (!feasible)
    return {placement::infeasible, "",
            "no node in the cluster can ever run this entrypoint: no alive "
            "node has "
              + describe_shape(shape) + " (per resource, the most one node has is "
              + describe_shape(most) + ")"};
  return {placement::busy, "",
          "waiting for resources: " + describe_shape(shape)
            + " is not free on any node yet"};
}

} // namespace rayd::gcs
