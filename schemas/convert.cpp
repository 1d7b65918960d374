#include "schemas/convert.hpp"

namespace rayd::api {

namespace {

void fill_resources(capnp::List<schema::Resource>::Builder out,
                    const resource_map& in) {
  unsigned i = 0;
  for (auto& [name, amount] : in) {
    out[i].setName(name);
    out[i].setAmount(amount);
    ++i;
  }
}

resource_map read_resources(capnp::List<schema::Resource>::Reader in) {
  resource_map out;
  for (auto r : in)
    out[to_std(r.getName())] = r.getAmount();
  return out;
}

} // namespace

void fill(schema::ClusterStatus::Builder out, const cluster_view& in) {
  out.setClusterId(in.cluster_id);
  out.setEpoch(in.epoch);
  auto nodes = out.initNodes(static_cast<unsigned>(in.nodes.size()));
  for (unsigned i = 0; i < in.nodes.size(); ++i) {
    auto& n = in.nodes[i];
    auto b = nodes[i];
    b.setNodeId(n.node_id);
    b.setName(n.name);
    b.setAddress(n.address);
    b.setState(n.get_state() == node_state::alive ? schema::NodeState::ALIVE
                                                  : schema::NodeState::DEAD);
    b.setIsHead(n.is_head);
    b.setPid(n.pid);
    fill_resources(b.initResourcesTotal(static_cast<unsigned>(n.resources_total.size())),
                   n.resources_total);
    fill_resources(b.initResourcesAvailable(
                     static_cast<unsigned>(n.resources_available.size())),
                   n.resources_available);
    auto labels = b.initLabels(static_cast<unsigned>(n.labels.size()));
    unsigned j = 0;
    for (auto& [k, v] : n.labels) {
      labels[j].setKey(k);
      labels[j].setValue(v);
      ++j;
    }
    b.setDeathReason(n.death_reason);
    b.setStartTimeMs(n.start_time_ms);
    b.setDeathTimeMs(n.death_time_ms);
  }
  out.initPendingDemands(0);
}

cluster_view from_capnp(schema::ClusterStatus::Reader in) {
  cluster_view out;
  out.cluster_id = to_std(in.getClusterId());
  out.epoch = in.getEpoch();
  for (auto b : in.getNodes()) {
    node_info n;
    n.node_id = to_std(b.getNodeId());
    n.name = to_std(b.getName());
    n.address = to_std(b.getAddress());
    n.state = static_cast<uint8_t>(b.getState() == schema::NodeState::ALIVE
                                     ? node_state::alive
                                     : node_state::dead);
    n.is_head = b.getIsHead();
    n.pid = b.getPid();
    n.resources_total = read_resources(b.getResourcesTotal());
    n.resources_available = read_resources(b.getResourcesAvailable());
    for (auto l : b.getLabels())
      n.labels[to_std(l.getKey())] = to_std(l.getValue());
    n.death_reason = to_std(b.getDeathReason());
    n.start_time_ms = b.getStartTimeMs();
    n.death_time_ms = b.getDeathTimeMs();
    out.nodes.push_back(std::move(n));
  }
  return out;
}

} // namespace rayd::api
