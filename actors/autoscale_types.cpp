#include "actors/autoscale_types.hpp"

#include <algorithm>

namespace rayd {

void add_demand(std::vector<pending_demand>& out, const pending_demand& d) {
  if (d.count == 0)
    return;
  auto it = std::find_if(out.begin(), out.end(), [&d](const pending_demand& t) {
    return t.shape == d.shape && t.selector == d.selector && t.kind == d.kind;
  });
  if (it == out.end())
    out.push_back(d);
  else
    it->count += d.count;
}

} // namespace rayd
