#include "actors/node/lease_policy.hpp"

#include "common/resources.hpp"

namespace rayd::node {

lease_decision decide_lease(const resource_map& shape, const label_map& selector,
                            const peer_capacity& self,
                            const std::vector<peer_capacity>& peers, bool spilled) {
  bool self_ok = labels_match(selector, self.labels);
  if (self_ok && fits(shape, self.available))
    return {lease_decision::grant, "", "", ""};
  bool feasible = self_ok && fits(shape, self.total);
  const peer_capacity* best = nullptr;
  double best_cpu = -1;
  for (auto& p : peers) {
    if (p.launchable) {
      // A node the autoscaler can launch: the request may wait for it.
      if (labels_match(selector, p.labels) && fits(shape, p.total))
        feasible = true;
      continue;
    }
    if (p.node_id == self.node_id || !p.alive || !labels_match(selector, p.labels))
      continue;
    if (!fits(shape, p.total))
      continue;
    feasible = true;
    if (!fits(shape, p.available))
      continue;
    auto i = p.available.find("CPU");
    double cpu = i == p.available.end() ? 0 : i->second;
    if (best == nullptr || cpu > best_cpu || (cpu == best_cpu && p.node_id < best->node_id)) {
      best = &p;
      best_cpu = cpu;
    }
  }
  if (!feasible) {
    std::string why = "no alive node can ever run a task needing "
                      + describe_shape(shape);
    if (!selector.empty()) {
      why += " on a node labelled";
      for (auto& [k, v] : selector)
        why += " " + k + "=" + v;
    }
    return {lease_decision::infeasible, "", "", why};
  }
  if (best != nullptr && !spilled)
    return {lease_decision::spill, best->node_id, best->address, ""};
  return {lease_decision::queue, "", "",
          "waiting for " + describe_shape(shape) + " to be free"};
}

std::string encode_lease_reply(uint64_t request_id, const lease_decision& d) {
  switch (d.kind) {
    case lease_decision::grant:
      return {};
    case lease_decision::spill:
      return wire::encode(wire::msg::spillback,
                          wire::spillback{request_id, d.node_id, d.address});
    case lease_decision::queue:
      return wire::encode(wire::msg::queued, wire::queued{request_id, d.reason});
    case lease_decision::infeasible:
      break;
  }
  return encode_lease_refusal(request_id, wire::wire_error::infeasible, d.reason);
}

std::string encode_lease_refusal(uint64_t request_id, wire::wire_error code,
                                 const std::string& reason) {
  return wire::encode(wire::msg::refused,
                      wire::refused{request_id, static_cast<uint8_t>(code), reason});
}

} // namespace rayd::node
