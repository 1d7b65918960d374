#include "node_directory.hpp"

#include <set>

namespace rayd::core {

node_directory::node_directory(std::string home_id, std::string home_address)
  : home_id_{std::move(home_id)} {
  nodes_[home_id_].address = std::move(home_address);
}

void node_directory::learn(const std::string& node_id, const std::string& address) {
  if (node_id.empty() || address.empty())
    return;
  auto& e = nodes_[node_id];
  if (e.address != address) {
    e.address = address;
    e.down_until = {};
  }
}

void node_directory::replace(const std::vector<node>& alive) {
  std::set<std::string> ids;
  for (auto& n : alive) {
    learn(n.node_id, n.address);
    ids.insert(n.node_id);
  }
  for (auto it = nodes_.begin(); it != nodes_.end();)
    if (it->first != home_id_ && ids.count(it->first) == 0)
      it = nodes_.erase(it);
    else
      ++it;
}

void node_directory::mark_down(const std::string& address, clock_type::time_point now) {
  for (auto& [_, e] : nodes_)
    if (e.address == address)
      e.down_until = now + down_for;
}

std::string node_directory::pick(clock_type::time_point now) const {
  if (auto h = nodes_.find(home_id_);
      h != nodes_.end() && !h->second.address.empty() && h->second.down_until <= now)
    return h->second.address;
  for (auto& [id, e] : nodes_)
    if (id != home_id_ && !e.address.empty() && e.down_until <= now)
      return e.address;
  return {};
}

bool node_directory::any_down(clock_type::time_point now) const {
  for (auto& [_, e] : nodes_)
    if (e.down_until > now)
      return true;
  return false;
}

std::string node_directory::home_address() const {
  auto h = nodes_.find(home_id_);
  return h == nodes_.end() ? std::string{} : h->second.address;
}

} // namespace rayd::core
