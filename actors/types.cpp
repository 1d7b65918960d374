#include "actors/types.hpp"

#include <algorithm>

namespace rayd {

bool operator==(const node_load& a, const node_load& b) {
  auto same_demands = [](auto& x, auto& y) {
    return x.size() == y.size()
           && std::equal(x.begin(), x.end(), y.begin(), [](auto& d, auto& e) {
                return d.shape == e.shape && d.count == e.count;
              });
  };
  return same_demands(a.demands, b.demands) && a.object_store_used == b.object_store_used
         && a.object_store_spilled == b.object_store_spilled
         && a.object_store_capacity == b.object_store_capacity
         && a.object_count == b.object_count && a.leases == b.leases
         && a.workers == b.workers;
}

std::vector<resource_demand> cluster_demands(const std::vector<node_info>& nodes) {
  std::vector<resource_demand> out;
  for (auto& n : nodes) {
    if (n.get_state() != node_state::alive)
      continue;
    for (auto& d : n.load.demands) {
      auto it = std::find_if(out.begin(), out.end(),
                             [&](auto& t) { return t.shape == d.shape; });
      if (it == out.end())
        out.push_back(d);
      else
        it->count += d.count;
    }
  }
  return out;
}

} // namespace rayd
