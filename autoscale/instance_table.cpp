#include "autoscale/instance_table.hpp"

#include <algorithm>
#include <array>
#include <map>
#include <stdexcept>
#include <utility>

#include "common/error.hpp"
#include "persistence/json_codec.hpp"

namespace rayd::autoscale {

namespace {

using st = instance_state;

constexpr std::array<std::pair<st, const char*>, 10> state_names{{
  {st::queued, "QUEUED"},
  {st::requested, "REQUESTED"},
  {st::allocated, "ALLOCATED"},
  {st::rayd_running, "RAYD_RUNNING"},
  {st::stopping, "STOPPING"},
  {st::terminated, "TERMINATED"},
  {st::allocation_failed, "ALLOCATION_FAILED"},
  {st::rayd_install_failed, "RAYD_INSTALL_FAILED"},
  {st::start_failed, "START_FAILED"},
  {st::termination_failed, "TERMINATION_FAILED"},
}};

bool is_failure(st s) {
  return s == st::allocation_failed || s == st::rayd_install_failed
         || s == st::start_failed || s == st::termination_failed;
}

struct instance_json {
  using row_type = instance_row;
  static constexpr const char* what = "autoscale instance";

  static nlohmann::json to_json(const instance_row& r) {
    auto history = nlohmann::json::array();
    for (auto& h : r.history)
      history.push_back({{"time_ms", h.time_ms},
                         {"from", to_string(h.from)},
                         {"to", to_string(h.to)},
                         {"reason", h.reason}});
    return {{"v", 1},
            {"instance_id", r.instance_id},
            {"node_type", r.node_type},
            {"launch_request_id", r.launch_request_id},
            {"provider_instance_id", r.provider_instance_id},
            {"node_id", r.node_id},
            {"state", to_string(r.state)},
            {"version", r.version},
            {"history", std::move(history)},
            {"error", r.error},
            {"create_time_ms", r.create_time_ms},
            {"state_time_ms", r.state_time_ms}};
  }

  static st state_at(const nlohmann::json& j, const char* key) {
    auto name = j.at(key).get<std::string>();
    auto s = instance_state_from_string(name);
    if (!s)
      throw std::runtime_error("unknown state '" + name + "'");
    return *s;
  }

  static caf::expected<instance_row> from_json(const nlohmann::json& j) {
    instance_row r;
    r.instance_id = j.at("instance_id").get<std::string>();
    r.node_type = j.at("node_type").get<std::string>();
    r.launch_request_id = j.at("launch_request_id").get<std::string>();
    r.provider_instance_id = j.at("provider_instance_id").get<std::string>();
    r.node_id = j.at("node_id").get<std::string>();
    r.state = state_at(j, "state");
    r.version = j.at("version").get<int64_t>();
    for (auto& h : j.at("history"))
      r.history.push_back({h.at("time_ms").get<int64_t>(), state_at(h, "from"),
                           state_at(h, "to"), h.at("reason").get<std::string>()});
    r.error = j.at("error").get<std::string>();
    r.create_time_ms = j.at("create_time_ms").get<int64_t>();
    r.state_time_ms = j.at("state_time_ms").get<int64_t>();
    return r;
  }
};

using json_rows = persistence::json_codec<instance_json>;

void record(instance_row& r, int64_t now_ms, st from, st to, std::string reason) {
  r.history.push_back({now_ms, from, to, std::move(reason)});
  if (r.history.size() > instance_table::history_limit)
    r.history.erase(r.history.begin(),
                    r.history.begin()
                      + static_cast<std::ptrdiff_t>(r.history.size()
                                                    - instance_table::history_limit));
}

} // namespace

std::string to_string(instance_state s) {
  for (auto& [state, name] : state_names)
    if (state == s)
      return name;
  return "UNKNOWN";
}

std::optional<instance_state> instance_state_from_string(const std::string& name) {
  for (auto& [state, n] : state_names)
    if (name == n)
      return state;
  return std::nullopt;
}

bool transition_allowed(instance_state from, instance_state to) {
  switch (from) {
    case st::queued:
      return to == st::requested || to == st::terminated;
    case st::requested:
      return to == st::allocated || to == st::allocation_failed
             || to == st::terminated;
    case st::allocated:
      return to == st::rayd_running || to == st::rayd_install_failed
             || to == st::start_failed || to == st::stopping
             || to == st::terminated;
    case st::rayd_running:
      return to == st::stopping || to == st::terminated;
    case st::stopping:
      return to == st::rayd_running || to == st::terminated
             || to == st::termination_failed;
    case st::termination_failed:
      return to == st::stopping || to == st::terminated;
    case st::rayd_install_failed:
    case st::start_failed:
      return to == st::stopping || to == st::terminated;
    case st::allocation_failed:
      return to == st::stopping;
    case st::terminated:
      return false;
  }
  return false;
}

std::string instance_table::codec::encode(const instance_row& r) {
  return json_rows::encode(r);
}

caf::expected<instance_row> instance_table::codec::decode(const std::string& key,
                                                          const std::string& bytes) {
  return json_rows::decode(key, bytes);
}

instance_table::instance_table(persistence::store& db)
  : rows_(db, instance_table_name) {
}

caf::error instance_table::load() {
  return rows_.load();
}

caf::expected<instance_row> instance_table::queue(const std::string& instance_id,
                                                  const std::string& node_type,
                                                  const std::string& reason,
                                                  int64_t now_ms) {
  if (instance_id.empty())
    return make_error(errc::invalid_argument, "instance id is empty");
  if (node_type.empty())
    return make_error(errc::invalid_argument,
                      "instance " + instance_id + ": node type is empty");
  if (reason.empty())
    return make_error(errc::invalid_argument,
                      "instance " + instance_id + ": queued without a reason");
  if (rows_.find(instance_id) != nullptr)
    return make_error(errc::already_exists,
                      "instance " + instance_id + " already exists");
  instance_row r;
  r.instance_id = instance_id;
  r.node_type = node_type;
  r.state = st::queued;
  r.version = 1;
  r.create_time_ms = now_ms;
  r.state_time_ms = now_ms;
  record(r, now_ms, st::queued, st::queued, reason);
  rows_.stage(instance_id, r);
  return r;
}

caf::expected<instance_row> instance_table::apply(const instance_update& u,
                                                  int64_t now_ms) {
  auto* cur = rows_.find(u.instance_id);
  if (cur == nullptr)
    return make_error(errc::not_found, "no instance " + u.instance_id);
  auto prefix = "instance " + u.instance_id + ": ";
  if (u.expected_version && *u.expected_version != cur->version)
    return make_error(errc::invalid_argument,
                      prefix + "version mismatch: expected "
                        + std::to_string(*u.expected_version) + ", row is at "
                        + std::to_string(cur->version));
  if (!transition_allowed(cur->state, u.to))
    return make_error(errc::invalid_argument,
                      prefix + "illegal transition " + to_string(cur->state)
                        + " -> " + to_string(u.to));
  if (u.reason.empty())
    return make_error(errc::invalid_argument,
                      prefix + "transition " + to_string(cur->state) + " -> "
                        + to_string(u.to) + " without a reason");
  instance_row r = *cur;
  if (!u.launch_request_id.empty())
    r.launch_request_id = u.launch_request_id;
  if (!u.provider_instance_id.empty())
    r.provider_instance_id = u.provider_instance_id;
  if (!u.node_id.empty())
    r.node_id = u.node_id;
  auto missing = [&prefix, &u](const char* what) {
    return make_error(errc::invalid_argument,
                      prefix + to_string(u.to) + " needs a " + what);
  };
  if (u.to == st::requested && r.launch_request_id.empty())
    return missing("launch request id");
  if (u.to == st::allocated && r.provider_instance_id.empty())
    return missing("provider instance id");
  if (u.to == st::rayd_running && r.node_id.empty())
    return missing("node id");
  auto from = r.state;
  r.state = u.to;
  ++r.version;
  r.state_time_ms = now_ms;
  if (is_failure(u.to))
    r.error = u.reason;
  else if (u.to == st::rayd_running)
    r.error.clear(); // a refused drain: running again, nothing failed
  record(r, now_ms, from, u.to, u.reason);
  rows_.stage(r.instance_id, r);
  return r;
}

caf::error instance_table::forget(const std::string& instance_id) {
  auto* cur = rows_.find(instance_id);
  if (cur == nullptr)
    return make_error(errc::not_found, "no instance " + instance_id);
  if (cur->state != st::terminated && cur->state != st::allocation_failed)
    return make_error(errc::invalid_argument,
                      "instance " + instance_id + " is " + to_string(cur->state)
                        + ", only TERMINATED or ALLOCATION_FAILED rows are forgotten");
  rows_.erase(instance_id);
  return caf::none;
}

const instance_row* instance_table::find(const std::string& instance_id) const {
  return rows_.find(instance_id);
}

std::vector<const instance_row*> instance_table::rows() const {
  std::vector<const instance_row*> out;
  for (auto& [_, r] : rows_.all())
    out.push_back(r);
  return out;
}

caf::error instance_table::commit() {
  return rows_.commit();
}

namespace {

/// The provider's instances by our instance id tag. Of several carrying one
/// tag (should not happen), a live one wins over a terminated one.
std::map<std::string, const listed_instance*>
by_instance_id(const std::vector<listed_instance>& provider) {
  std::map<std::string, const listed_instance*> out;
  for (auto& p : provider) {
    if (p.instance_id.empty())
      continue;
    auto [i, fresh] = out.emplace(p.instance_id, &p);
    if (!fresh && i->second->terminated && !p.terminated)
      i->second = &p;
  }
  return out;
}

/// `base` doubled for every TERMINATION_FAILED in `r`'s history but the
/// latest, at most 16 × `base`.
int64_t termination_backoff(const instance_row& r, int64_t base) {
  int failures = 0;
  for (auto& h : r.history)
    if (h.to == st::termination_failed)
      ++failures;
  int64_t backoff = base;
  for (int k = 1; k < failures && backoff < 16 * base; ++k)
    backoff *= 2;
  return std::min(backoff, 16 * base);
}

} // namespace

reconcile_result reconcile(const instance_table& table, const reconcile_input& in) {
  reconcile_result out;
  auto listed_by_id = by_instance_id(in.provider);
  // Nodes by instance id; a live node wins over a dead one of the same tag
  // (a node that restarted on the same instance).
  std::map<std::string, const observed_node*> nodes;
  for (auto& n : in.nodes) {
    if (n.instance_id.empty())
      continue;
    auto [i, fresh] = nodes.emplace(n.instance_id, &n);
    if (!fresh && !i->second->alive && n.alive)
      i->second = &n;
  }
  for (auto* r : table.rows()) {
    const listed_instance* p = nullptr;
    if (auto i = listed_by_id.find(r->instance_id); i != listed_by_id.end())
      p = i->second;
    const observed_node* n = nullptr;
    if (auto i = nodes.find(r->instance_id); i != nodes.end())
      n = i->second;
    bool listed = p != nullptr && !p->terminated;
    bool gone = !listed;
    auto age = in.now_ms - r->state_time_ms;
    instance_update u;
    u.instance_id = r->instance_id;
    u.expected_version = r->version;
    auto emit = [&out, &u](st to, std::string reason) {
      u.to = to;
      u.reason = std::move(reason);
      out.updates.push_back(u);
    };
    switch (r->state) {
      case st::queued:
        if (p != nullptr) {
          u.launch_request_id = p->launch_request_id.empty() ? "recovered-" + r->instance_id
                                                             : p->launch_request_id;
          emit(st::requested, "the provider already lists instance "
                                + p->provider_instance_id
                                + " for it (requested before a restart); not requested again");
        }
        break;
      case st::requested:
        if (listed) {
          u.provider_instance_id = p->provider_instance_id;
          emit(st::allocated, "the provider lists it as " + p->provider_instance_id);
        } else if (p != nullptr) {
          emit(st::allocation_failed, "the provider lists it terminated ("
                                        + p->provider_instance_id
                                        + ") before it was allocated");
        } else if (age >= in.allocation_timeout_ms) {
          emit(st::allocation_failed,
               "not listed by the provider " + std::to_string(age)
                 + " ms after the request (launch request " + r->launch_request_id
                 + ", timeout " + std::to_string(in.allocation_timeout_ms) + " ms)");
        }
        break;
      case st::allocated:
        if (gone) {
          emit(st::terminated, "the provider no longer lists "
                                 + r->provider_instance_id + " as running");
        } else if (n != nullptr && n->alive) {
          u.node_id = n->node_id;
          emit(st::rayd_running, "its rayd node " + n->node_id + " joined");
        } else if (age >= in.start_timeout_ms) {
          emit(st::start_failed, "no rayd node joined " + std::to_string(age)
                                   + " ms after allocation (timeout "
                                   + std::to_string(in.start_timeout_ms) + " ms)");
        }
        break;
      case st::rayd_running:
        if (gone) {
          emit(st::terminated, "the provider no longer lists "
                                 + r->provider_instance_id + " as running");
        } else if (n != nullptr && !n->alive) {
          // The instance outlived its rayd node: terminate it, never leak it.
          emit(st::stopping, "its rayd node " + r->node_id
                               + " is dead; terminating the instance");
        }
        break;
      case st::stopping:
        if (gone)
          emit(st::terminated, "the provider no longer lists "
                                 + r->provider_instance_id + " as running");
        else if (age >= in.stop_timeout_ms)
          emit(st::termination_failed,
               "still listed by the provider " + std::to_string(age)
                 + " ms after the stop began (timeout "
                 + std::to_string(in.stop_timeout_ms) + " ms)");
        break;
      case st::termination_failed:
        if (gone) {
          emit(st::terminated, "the provider no longer lists "
                                 + r->provider_instance_id + " as running");
        } else {
          auto backoff = termination_backoff(*r, in.termination_retry_ms);
          if (age >= backoff)
            emit(st::stopping, "retrying the termination (back-off "
                                 + std::to_string(backoff) + " ms)");
        }
        break;
      case st::start_failed:
      case st::rayd_install_failed:
        if (gone)
          emit(st::terminated, "the provider no longer lists "
                                 + r->provider_instance_id + " as running");
        break;
      case st::allocation_failed:
        if (listed) {
          u.provider_instance_id = p->provider_instance_id;
          emit(st::stopping, "the provider lists it as " + p->provider_instance_id
                               + " after the allocation failed; terminating it");
        }
        break;
      case st::terminated:
        break;
    }
  }
  for (auto& p : in.provider)
    if (!p.terminated && !p.instance_id.empty() && table.find(p.instance_id) == nullptr)
      out.unknown_provider_instances.push_back(p.provider_instance_id);
  return out;
}

std::vector<const instance_row*>
to_request(const instance_table& table,
           const std::vector<listed_instance>& provider, std::size_t max) {
  auto listed = by_instance_id(provider);
  std::vector<const instance_row*> out;
  for (auto* r : table.rows()) {
    if (out.size() >= max)
      break;
    if (r->state == st::queued && listed.count(r->instance_id) == 0)
      out.push_back(r);
  }
  return out;
}

} // namespace rayd::autoscale
