#include "actors/gcs/node_table.hpp"

#include <algorithm>

#include <nlohmann/json.hpp>

#include "common/error.hpp"

namespace rayd::gcs {

namespace {
constexpr const char* table = "nodes";
}

node_table::node_table(persistence::store& db, std::size_t max_dead_rows)
  : db_(db), max_dead_rows_(max_dead_rows) {
}

std::string node_table::encode(const node_info& n) {
  nlohmann::json j{{"v", 1},
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
  return j.dump();
}

caf::expected<node_info> node_table::decode(const std::string& bytes) {
  auto j = nlohmann::json::parse(bytes, nullptr, false);
  if (j.is_discarded() || !j.is_object())
    return make_error(errc::storage_error, "corrupt node row: not JSON");
  try {
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
  } catch (const std::exception& e) {
    return make_error(errc::storage_error,
                      std::string{"corrupt node row: "} + e.what());
  }
}

caf::error node_table::load() {
  auto rows = db_.scan(table);
  if (!rows)
    return rows.error();
  rows_.clear();
  for (auto& [key, value] : *rows) {
    auto n = decode(value);
    if (!n)
      return n.error();
    rows_.emplace(key, std::move(*n));
  }
  return caf::none;
}

caf::error node_table::persist(const node_info& n) {
  return db_.put(table, n.node_id, encode(n));
}

caf::expected<node_info> node_table::set_alive(node_info n, int64_t now_ms) {
  if (n.node_id.empty())
    return make_error(errc::invalid_argument, "node_id must not be empty");
  n.state = static_cast<uint8_t>(node_state::alive);
  n.death_reason.clear();
  n.death_time_ms = 0;
  if (n.start_time_ms == 0)
    n.start_time_ms = now_ms;
  if (auto err = persist(n))
    return err;
  rows_[n.node_id] = n;
  return n;
}

caf::expected<node_info> node_table::set_dead(const std::string& node_id,
                                              std::string reason,
                                              int64_t now_ms) {
  auto i = rows_.find(node_id);
  if (i == rows_.end())
    return make_error(errc::not_found, "unknown node " + node_id);
  if (i->second.get_state() == node_state::dead)
    return i->second;
  auto row = i->second;
  row.state = static_cast<uint8_t>(node_state::dead);
  row.death_reason = std::move(reason);
  row.death_time_ms = now_ms;
  row.resources_available.clear();
  if (auto err = persist(row))
    return err;
  i->second = row;
  if (auto err = trim_dead())
    return err;
  return row;
}

caf::error node_table::trim_dead() {
  std::vector<const node_info*> dead;
  for (auto& [_, n] : rows_)
    if (n.get_state() == node_state::dead)
      dead.push_back(&n);
  if (dead.size() <= max_dead_rows_)
    return caf::none;
  std::sort(dead.begin(), dead.end(), [](auto* a, auto* b) {
    return a->death_time_ms < b->death_time_ms;
  });
  std::vector<persistence::write_op> ops;
  std::vector<std::string> ids;
  for (std::size_t i = 0; i < dead.size() - max_dead_rows_; ++i) {
    ops.push_back(persistence::write_op::del(table, dead[i]->node_id));
    ids.push_back(dead[i]->node_id);
  }
  if (auto err = db_.write(ops))
    return err;
  for (auto& id : ids)
    rows_.erase(id);
  return caf::none;
}

bool node_table::apply_report(const node_report& r) {
  auto i = rows_.find(r.node_id);
  if (i == rows_.end() || i->second.get_state() != node_state::alive)
    return false;
  auto& n = i->second;
  n.resources_available = r.available;
  n.load = r.load;
  return true;
}

const node_info* node_table::find(const std::string& node_id) const {
  auto i = rows_.find(node_id);
  return i == rows_.end() ? nullptr : &i->second;
}

std::vector<std::string> node_table::alive_ids() const {
  std::vector<std::string> out;
  for (auto& [id, n] : rows_)
    if (n.get_state() == node_state::alive)
      out.push_back(id);
  return out;
}

std::vector<node_info> node_table::rows() const {
  std::vector<node_info> out;
  out.reserve(rows_.size());
  for (auto& [_, n] : rows_)
    out.push_back(n);
  std::stable_sort(out.begin(), out.end(), [](auto& a, auto& b) {
    if (a.is_head != b.is_head)
      return a.is_head;
    return a.start_time_ms < b.start_time_ms;
  });
  return out;
}

} // namespace rayd::gcs
