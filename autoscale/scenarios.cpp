// See scenarios.hpp.

#include "autoscale/scenarios.hpp"

#include <random>
#include <string>
#include <vector>

namespace rayd::autoscale::scenarios {

namespace {

node_type_config type(const std::string& name, resource_map res, int32_t max,
                      label_map labels = {}) {
  node_type_config t;
  t.name = name;
  t.resources = std::move(res);
  t.labels = std::move(labels);
  t.max_workers = max;
  return t;
}

autoscaling_config config_with(std::vector<node_type_config> types, int32_t max_workers) {
  autoscaling_config c;
  c.max_workers = max_workers;
  c.upscaling_speed = 1.0;
  c.idle_timeout = std::chrono::seconds{60};
  c.head_node_type = "head";
  c.node_types["head"] = type("head", {{"CPU", 0}}, 0);
  for (auto& t : types)
    c.node_types[t.name] = t;
  return c;
}

node_view head() {
  node_view n;
  n.id = "head";
  n.type = "head";
  n.is_head = true;
  return n;
}

node_view worker(const std::string& id, const node_type_config& t, duration idle) {
  node_view n;
  n.id = id;
  n.type = t.name;
  n.total = t.resources;
  n.available = t.resources;
  n.labels = t.labels;
  n.idle_for = idle;
  return n;
}

} // namespace

std::pair<snapshot, autoscaling_config> big_round(bool distinct_shapes) {
  auto c = config_with({type("cpu4", {{"CPU", 4}, {"memory", 16e9}}, 2000, {{"zone", "a"}}),
                        type("cpu16", {{"CPU", 16}, {"memory", 64e9}}, 2000, {{"zone", "a"}}),
                        type("gpu", {{"CPU", 8}, {"GPU", 1}, {"memory", 32e9}}, 2000,
                             {{"zone", "b"}}),
                        type("mem", {{"CPU", 4}, {"memory", 128e9}}, 2000, {{"zone", "b"}})},
                       5000);
  std::mt19937 rng(42);
  snapshot s;
  s.nodes.push_back(head());
  const char* names[] = {"cpu4", "cpu16", "gpu", "mem"};
  for (int i = 0; i < 1000; ++i) {
    auto n = worker("n" + std::to_string(i), c.node_types.at(names[i % 4]),
                    std::chrono::seconds{static_cast<int>(rng() % 120)});
    if (i % 2 == 0) {
      n.available["CPU"] = static_cast<double>(rng() % 2);
      n.has_running_work = true;
      n.idle_for = duration{0};
    }
    s.nodes.push_back(n);
  }
  std::vector<resource_map> shapes = {
    {{"CPU", 1}}, {{"CPU", 2}}, {{"CPU", 0.5}}, {{"CPU", 4}, {"memory", 8e9}},
    {{"CPU", 1}, {"GPU", 1}}, {{"CPU", 2}, {"memory", 64e9}}, {{"CPU", 32}},
  };
  for (int i = 0; i < 10000; ++i) {
    demand d;
    d.shape = shapes[rng() % shapes.size()];
    if (distinct_shapes)
      d.shape["CPU"] += 0.0001 * i;
    if (i % 10 == 0)
      d.selector = {{"zone", i % 20 == 0 ? "a" : "b"}};
    d.count = 1 + static_cast<int64_t>(rng() % 3);
    s.demands.push_back(std::move(d));
  }
  return {s, c};
}

std::pair<snapshot, autoscaling_config> thousand_launches() {
  auto c = config_with({type("cpu2", {{"CPU", 2}}, 5000)}, 5000);
  snapshot s;
  s.nodes.push_back(head());
  for (int i = 0; i < 1000; ++i) {
    auto n = worker("w" + std::to_string(i), c.node_types.at("cpu2"), duration{0});
    n.available = {{"CPU", 0}};
    n.has_running_work = true;
    s.nodes.push_back(n);
  }
  demand d;
  d.shape = {{"CPU", 1}};
  d.count = 4000;
  s.demands.push_back(std::move(d));
  return {s, c};
}

} // namespace rayd::autoscale::scenarios
