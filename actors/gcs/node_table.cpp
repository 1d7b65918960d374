#include "actors/gcs/node_table.hpp"

#include <algorithm>

#include "common/error.hpp"
#include "persistence/json_codec.hpp"

namespace rayd::gcs {

namespace {

struct node_row {
  using row_type = node_info;
  static constexpr const char* what = "node";

  static nlohmann::json to_json(const node_info& n) {
    return {{"v", 1},
            {"node_id", n.node_id},
            {"name", n.name},
            {"address", n.address},
            {"is_head", n.is_head},
            {"pid", n.pid},
            {"resources_total", n.resources_total},
            {"resources_available", n.resources_available},
            {"labels", n.labels},
            {"state", n.state},
            {"death_reason", n.death_reason},
            {"start_time_ms", n.start_time_ms},
            {"death_time_ms", n.death_time_ms}};
  }

  static caf::expected<node_info> from_json(const nlohmann::json& j) {
    node_info n;
    n.node_id = j.at("node_id").get<std::string>();
    n.name = j.value("name", "");
    n.address = j.value("address", "");
    n.is_head = j.value("is_head", false);
    n.pid = j.value("pid", 0);
    n.resources_total = j.value("resources_total", resource_map{});
    n.resources_available = j.value("resources_available", resource_map{});
    n.labels = j.value("labels", label_map{});
    n.state = j.value("state", uint8_t{0});
    n.death_reason = j.value("death_reason", "");
    n.start_time_ms = j.value("start_time_ms", int64_t{0});
    n.death_time_ms = j.value("death_time_ms", int64_t{0});
    return n;
  }
};

} // namespace

std::string node_table::codec::encode(const node_info& n) {
  return persistence::json_codec<node_row>::encode(n);
}

caf::expected<node_info> node_table::codec::decode(const std::string& key,
                                                   const std::string& bytes) {
  return persistence::json_codec<node_row>::decode(key, bytes);
}

node_table::node_table(persistence::store& db, std::size_t max_dead_rows)
  : max_dead_rows_(max_dead_rows), rows_(db, "nodes") {
}

caf::error node_table::load() {
  return rows_.load();
}

caf::expected<node_info> node_table::set_alive(node_info n, int64_t now_ms) {
  if (n.node_id.empty())
    return make_error(errc::invalid_argument, "node_id must not be empty");
  n.state = static_cast<uint8_t>(node_state::alive);
  n.death_reason.clear();
  n.death_time_ms = 0;
  if (n.start_time_ms == 0)
    n.start_time_ms = now_ms;
  rows_.stage(n.node_id, n);
  if (auto err = rows_.commit())
    return err;
  return n;
}

caf::expected<node_info> node_table::set_dead(const std::string& node_id,
                                              std::string reason,
                                              int64_t now_ms) {
  auto* found = rows_.find(node_id);
  if (!found)
    return make_error(errc::not_found, "unknown node " + node_id);
  if (found->get_state() == node_state::dead)
    return *found;
  auto row = *found;
  row.state = static_cast<uint8_t>(node_state::dead);
  row.death_reason = std::move(reason);
  row.death_time_ms = now_ms;
  row.resources_available.clear();
  rows_.stage(node_id, row);
  trim_dead();
  if (auto err = rows_.commit())
    return err;
  return row;
}

void node_table::trim_dead() {
  std::vector<const node_info*> dead;
  for (auto& [_, n] : rows_.all())
    if (n->get_state() == node_state::dead)
      dead.push_back(n);
  if (dead.size() <= max_dead_rows_)
    return;
  std::sort(dead.begin(), dead.end(), [](auto* a, auto* b) {
    return a->death_time_ms < b->death_time_ms;
  });
  std::vector<std::string> ids;
  for (std::size_t i = 0; i < dead.size() - max_dead_rows_; ++i)
    ids.push_back(dead[i]->node_id);
  for (auto& id : ids)
    rows_.erase(id);
}

bool node_table::apply_report(const node_report& r) {
  auto* n = rows_.find_soft(r.node_id);
  if (!n || n->get_state() != node_state::alive)
    return false;
  n->resources_available = r.available;
  n->load = r.load;
  return true;
}

const node_info* node_table::find(const std::string& node_id) const {
  return rows_.find(node_id);
}

std::vector<std::string> node_table::alive_ids() const {
  std::vector<std::string> out;
  for (auto& [id, n] : rows_.all())
    if (n->get_state() == node_state::alive)
      out.push_back(*id);
  return out;
}

std::vector<node_info> node_table::rows() const {
  std::vector<node_info> out;
  for (auto& [_, n] : rows_.all())
    out.push_back(*n);
  std::stable_sort(out.begin(), out.end(), [](auto& a, auto& b) {
    if (a.is_head != b.is_head)
      return a.is_head;
    return a.start_time_ms < b.start_time_ms;
  });
  return out;
}

} // namespace rayd::gcs
