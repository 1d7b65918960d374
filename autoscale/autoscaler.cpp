// See autoscaler.hpp.

#include "autoscale/autoscaler.hpp"

#include <algorithm>
#include <chrono>

#include <nlohmann/json.hpp>

#include "common/error.hpp"
#include "common/util.hpp"

namespace rayd::autoscale {

using json = nlohmann::json;
using st = instance_state;

namespace {

bool is_live_row(instance_state s) {
  return s == st::queued || s == st::requested || s == st::allocated
         || s == st::rayd_running;
}

bool is_failure(instance_state s) {
  return s == st::allocation_failed || s == st::start_failed
         || s == st::rayd_install_failed || s == st::termination_failed;
}

instance_update change(const std::string& id, instance_state to, std::string reason,
                       int64_t version) {
  instance_update u;
  u.instance_id = id;
  u.to = to;
  u.reason = std::move(reason);
  u.expected_version = version;
  return u;
}

std::string label_of(const node_info& n, const char* key) {
  auto i = n.labels.find(key);
  return i == n.labels.end() ? std::string{} : i->second;
}

json shape_json(const resource_map& m) {
  json out = json::object();
  for (auto& [k, v] : m)
    out[k] = v;
  return out;
}

} // namespace

autoscaler::autoscaler(persistence::store& db, autoscaler_settings settings)
  : settings_(std::move(settings)), db_(db), table_(db) {
}

namespace {

constexpr const char* requests_table = "autoscale_requests";
constexpr const char* requests_key = "current";

} // namespace

caf::error autoscaler::load() {
  if (auto err = table_.load())
    return err;
  auto saved = db_.get(requests_table, requests_key);
  if (!saved)
    return saved.error();
  requests_.clear();
  if (*saved) {
    auto j = json::parse(**saved, nullptr, false);
    if (j.is_array())
      for (auto& b : j) {
        resource_map m;
        for (auto& [k, v] : b.items())
          if (v.is_number())
            m[k] = v.get<double>();
        requests_.push_back(std::move(m));
      }
  }
  return {};
}

void autoscaler::set_config(autoscaling_config config) {
  settings_.config = std::move(config);
  config_error_.clear();
}

void autoscaler::set_config_error(std::string error) {
  config_error_ = std::move(error);
}

caf::error autoscaler::set_requests(std::vector<resource_map> bundles) {
  if (bundles.size() > 10000)
    return make_error(errc::invalid_argument,
                      "at most 10000 bundles in one request, got "
                        + std::to_string(bundles.size()));
  for (auto& b : bundles)
    for (auto& [name, amount] : b)
      if (!(amount >= 0) || name.empty())
        return make_error(errc::invalid_argument,
                          "bad bundle " + describe_shape(b)
                            + ": amounts must be >= 0 and names non-empty");
  // Durable before the caller hears "ok": a restarted head keeps it.
  json j = json::array();
  for (auto& b : bundles)
    j.push_back(shape_json(b));
  if (auto err = db_.put(requests_table, requests_key, j.dump()))
    return err;
  requests_ = std::move(bundles);
  return {};
}

void autoscaler::apply(const instance_update& u, int64_t now_ms) {
  // A refused update (the row moved on) is recomputed by the next round.
  (void) table_.apply(u, now_ms);
}

void autoscaler::commit() {
  if (!table_.dirty())
    return;
  if (auto err = table_.commit())
    store_error_ = describe(err);
  else
    store_error_.clear();
}

snapshot autoscaler::make_snapshot(const round_input& in) {
  snapshot snap;
  snap.now = duration{in.now_ms};
  // Demand seen lately (see demand_memory_ms), tasks' shapes included.
  for (auto& d : cluster_demands(in.nodes))
    recent_demand_[{d.shape, {}}] = in.now_ms;
  for (auto& d : in.demands)
    recent_demand_[{d.shape, d.selector}] = in.now_ms;
  for (auto i = recent_demand_.begin(); i != recent_demand_.end();)
    i = in.now_ms - i->second > settings_.demand_memory_ms ? recent_demand_.erase(i)
                                                            : std::next(i);
  // Rows by the node they became, to mark nodes being drained.
  std::map<std::string, const instance_row*> row_of_node;
  for (auto* r : table_.rows())
    if (!r->node_id.empty())
      row_of_node[r->node_id] = r;
  std::set<std::string> alive;
  for (auto& n : in.nodes) {
    if (n.get_state() != rayd::node_state::alive)
      continue;
    alive.insert(n.node_id);
    node_view v;
    v.id = n.node_id;
    v.is_head = n.is_head;
    v.type = label_of(n, label_node_type);
    if (!v.is_head && !v.type.empty() && !settings_.config.node_types.count(v.type))
      v.type.clear(); // a type the config does not know: not ours to scale
    v.total = n.resources_total;
    v.available = n.resources_available;
    v.labels = n.labels;
    auto placed = in.placed.count(n.node_id) ? in.placed.at(n.node_id) : 0u;
    v.has_running_work = n.load.leases > 0 || !n.load.demands.empty();
    v.has_actors = placed > 0;
    v.holds_needed_objects = n.load.object_count > 0;
    bool busy = v.has_running_work || v.has_actors
                || !(n.resources_available == n.resources_total);
    for (auto& [key, _] : recent_demand_)
      busy = busy || (!v.is_head && fits(key.first, n.resources_total)
                      && labels_match(key.second, n.labels));
    auto [it, fresh] = last_busy_.emplace(n.node_id, in.now_ms);
    if (busy)
      it->second = in.now_ms;
    v.idle_for = duration{in.now_ms - it->second};
    if (auto r = row_of_node.find(n.node_id); r != row_of_node.end()
                                              && r->second->state == st::stopping)
      v.state = node_state::draining;
    if (auto d = drain_refused_until_.find(n.node_id);
        d != drain_refused_until_.end() && d->second > in.now_ms)
      v.drain_refused = true;
    snap.nodes.push_back(std::move(v));
  }
  for (auto i = last_busy_.begin(); i != last_busy_.end();)
    i = alive.count(i->first) ? std::next(i) : last_busy_.erase(i);
  // Demand: tasks from the nodes' lease queues, actors and jobs as reported.
  for (auto& d : cluster_demands(in.nodes))
    snap.demands.push_back({d.shape, {}, static_cast<int64_t>(d.count), demand_kind::task});
  for (auto& d : in.demands) {
    demand x;
    x.shape = d.shape;
    x.selector = d.selector;
    x.count = static_cast<int64_t>(d.count);
    x.kind = d.kind == "actor" ? demand_kind::actor
             : d.kind == "job" ? demand_kind::job
                               : demand_kind::task;
    snap.demands.push_back(std::move(x));
  }
  snap.requests = requests_;
  for (auto& [name, _] : settings_.config.node_types)
    snap.provider[name];
  for (auto* r : table_.rows())
    if (is_live_row(r->state))
      ++snap.provider[r->node_type].instances;
  for (auto& [type, fails] : failures_)
    snap.provider[type].failures = fails;
  return snap;
}

round_actions autoscaler::round(const round_input& in) {
  round_actions out;
  ++rounds_;
  round_time_ms_ = in.now_ms;
  if (!in.provider) {
    // Without the provider's list nothing can be observed: no decision on
    // stale facts. The next round asks again.
    provider_error_ = describe(in.provider.error());
    return out;
  }
  provider_error_.clear();
  if (in.gcs) {
    gcs_error_ = describe(in.gcs);
    return out;
  }
  gcs_error_.clear();
  // Failed or terminated instances told to terminate, while still listed.
  std::set<std::string> still_listed;
  for (auto& p : *in.provider)
    still_listed.insert(p.instance_id);
  for (auto i = forgotten_.begin(); i != forgotten_.end();)
    i = still_listed.count(*i) ? std::next(i) : forgotten_.erase(i);
  // -- observe -------------------------------------------------------------------
  reconcile_input rin;
  rin.now_ms = in.now_ms;
  rin.allocation_timeout_ms = settings_.allocation_timeout_ms;
  rin.start_timeout_ms = settings_.start_timeout_ms;
  rin.stop_timeout_ms = settings_.stop_timeout_ms;
  std::vector<std::string> forget_ids;
  for (auto& p : *in.provider) {
    listed_instance l;
    l.provider_instance_id = p.instance_id;
    if (auto t = p.tags.find(label_instance_id); t != p.tags.end())
      l.instance_id = t->second;
    if (auto t = p.tags.find(tag_launch_request); t != p.tags.end())
      l.launch_request_id = t->second;
    l.terminated = !is_live(p.state);
    if (l.terminated && forgotten_.insert(p.instance_id).second)
      forget_ids.push_back(p.instance_id);
    rin.provider.push_back(std::move(l));
  }
  for (auto& n : in.nodes) {
    auto id = label_of(n, label_instance_id);
    if (!id.empty())
      rin.nodes.push_back({n.node_id, id, n.get_state() == rayd::node_state::alive});
  }
  auto rec = reconcile(table_, rin);
  for (auto& u : rec.updates) {
    apply(u, in.now_ms);
    if (u.to == st::rayd_running) {
      if (auto* r = table_.find(u.instance_id))
        failures_.erase(r->node_type); // the type launches again
    }
  }
  unknown_instances_ = rec.unknown_provider_instances;
  // A node that never started (or failed its setup) is stopped for good.
  for (auto* r : table_.rows())
    if (r->state == st::start_failed || r->state == st::rayd_install_failed)
      apply(change(r->instance_id, st::stopping, "terminating the failed instance", r->version),
            in.now_ms);
  commit();
  if (!forget_ids.empty())
    out.terminates.push_back({forget_ids, std::vector<std::string>(forget_ids.size())});
  // -- decide --------------------------------------------------------------------
  snapshot_ = make_snapshot(in);
  auto t0 = std::chrono::steady_clock::now();
  decision_ = decide(snapshot_, settings_.config, settings_.policy);
  decide_ms_ = std::chrono::duration<double, std::milli>(std::chrono::steady_clock::now() - t0)
                 .count();
  for (auto& l : decision_.launches)
    for (int32_t k = 0; k < l.count; ++k) {
      auto id = "i-" + random_hex(6);
      (void) table_.queue(id, l.type, l.reason, in.now_ms);
    }
  for (auto& t : decision_.terminations)
    for (auto* r : table_.rows())
      if (r->node_id == t.node_id && r->state == st::rayd_running) {
        apply(change(r->instance_id, st::stopping, t.reason, r->version), in.now_ms);
        break;
      }
  commit();
  // -- act -----------------------------------------------------------------------
  // REQUESTED is durable before the create call: after a head restart a
  // REQUESTED row is never turned into a second instance (it is only asked
  // again under its own launch request id, below).
  auto to_create = to_request(table_, rin.provider, table_.size());
  std::vector<std::string> ids;
  for (auto* r : to_create)
    ids.push_back(r->instance_id);
  // REQUESTED by an earlier head process that died before the provider
  // listed the instance: the create may never have run. It is asked again
  // with the same launch request id, which providers treat idempotently
  // (node_provider.hpp): an instance that exists is not created twice.
  std::set<std::string> listed_ids;
  for (auto& l : rin.provider)
    listed_ids.insert(l.instance_id);
  std::vector<std::string> resend;
  for (auto* r : table_.rows())
    if (r->state == st::requested && !requested_here_.count(r->instance_id)
        && !listed_ids.count(r->instance_id))
      resend.push_back(r->instance_id);
  for (auto& id : ids) {
    auto* r = table_.find(id);
    auto u = change(id, st::requested, "asked the " + settings_.provider_type + " provider", r->version);
    u.launch_request_id = id;
    apply(u, in.now_ms);
  }
  commit();
  ids.insert(ids.end(), resend.begin(), resend.end());
  for (auto& id : ids) {
    auto* r = table_.find(id);
    if (r == nullptr || r->state != st::requested)
      continue; // the commit failed: the next round retries
    requested_here_.insert(id);
    auto t = settings_.config.node_types.find(r->node_type);
    if (t == settings_.config.node_types.end())
      continue;
    create_call c;
    c.instance_id = id;
    c.spec.node_type = r->node_type;
    c.spec.resources = t->second.resources;
    c.spec.labels = t->second.labels;
    c.spec.labels[label_node_type] = r->node_type;
    c.spec.labels[label_instance_id] = id;
    c.spec.node_config_json = t->second.node_config_json;
    c.spec.tags[tag_launch_request] = id;
    c.spec.tags[label_instance_id] = id;
    out.creates.push_back(std::move(c));
  }
  // STOPPING rows: drain the live node first, terminate the rest.
  std::set<std::string> alive;
  for (auto& n : in.nodes)
    if (n.get_state() == rayd::node_state::alive)
      alive.insert(n.node_id);
  for (auto* r : table_.rows()) {
    if (r->state != st::stopping || in_flight_.count(r->instance_id))
      continue;
    // A drain is idempotent: a restarted head simply drains again.
    if (!r->node_id.empty() && alive.count(r->node_id)) {
      in_flight_.insert(r->instance_id);
      out.drains.push_back({r->instance_id, r->node_id});
    } else if (!r->provider_instance_id.empty()) {
      in_flight_.insert(r->instance_id);
      out.terminates.push_back({{r->provider_instance_id}, {r->instance_id}});
    }
  }
  forget_old(in.now_ms);
  commit();
  return out;
}

void autoscaler::created(const std::string& instance_id, const caf::error& err,
                         int64_t now_ms) {
  auto* r = table_.find(instance_id);
  if (r == nullptr)
    return;
  if (err) {
    auto& fails = failures_[r->node_type];
    fails.push_back({duration{now_ms}, describe(err)});
    if (fails.size() > 32)
      fails.erase(fails.begin());
    if (r->state == st::requested) {
      auto u = change(instance_id, st::allocation_failed, "create failed: " + describe(err), r->version);
      apply(u, now_ms);
    }
  }
  commit();
}

round_actions autoscaler::drained(const drain_call& call, bool accepted, int64_t now_ms) {
  round_actions out;
  in_flight_.erase(call.instance_id);
  auto* r = table_.find(call.instance_id);
  if (r == nullptr || r->state != st::stopping)
    return out;
  if (!accepted) {
    drain_refused_until_[call.node_id] = now_ms + settings_.drain_refused_ms;
    apply(change(call.instance_id, st::rayd_running, "drain refused: work arrived", r->version),
          now_ms);
    commit();
    return out;
  }
  if (!r->provider_instance_id.empty()) {
    in_flight_.insert(call.instance_id);
    out.terminates.push_back({{r->provider_instance_id}, {call.instance_id}});
  }
  return out;
}

void autoscaler::terminated(const terminate_call& call, const caf::error& err,
                            int64_t now_ms) {
  for (auto& id : call.instance_ids) {
    if (id.empty())
      continue;
    in_flight_.erase(id);
    auto* r = table_.find(id);
    if (err && r != nullptr && r->state == st::stopping)
      apply(change(id, st::termination_failed, "terminate failed: " + describe(err), r->version),
            now_ms);
  }
  if (err)
    for (auto& p : call.provider_ids)
      forgotten_.erase(p);
  commit();
}

void autoscaler::forget_old(int64_t now_ms) {
  std::vector<std::string> old;
  for (auto* r : table_.rows())
    if ((r->state == st::terminated || r->state == st::allocation_failed)
        && now_ms - r->state_time_ms > settings_.forget_after_ms)
      old.push_back(r->instance_id);
  for (auto& id : old)
    (void) table_.forget(id);
}

std::vector<launchable_type> autoscaler::launchable() const {
  std::vector<launchable_type> out;
  if (settings_.config.max_workers <= 0)
    return out;
  for (auto& [name, t] : settings_.config.node_types)
    if (name != settings_.config.head_node_type && t.max_workers > 0)
      out.push_back({name, t.resources, t.labels});
  return out;
}

std::string autoscaler::status_json() const {
  json j;
  j["cluster_name"] = settings_.cluster_name;
  j["provider"] = settings_.provider_type;
  j["round"] = {{"count", rounds_}, {"time_ms", round_time_ms_}, {"decide_ms", decide_ms_}};
  j["errors"] = {{"config", config_error_},
                 {"provider", provider_error_},
                 {"store", store_error_},
                 {"gcs", gcs_error_}};
  json types = json::object();
  for (auto& [name, t] : settings_.config.node_types)
    types[name] = {{"resources", shape_json(t.resources)},
                   {"min_workers", t.min_workers},
                   {"max_workers", t.max_workers}};
  j["node_types"] = types;
  j["max_workers"] = settings_.config.max_workers;
  j["head_node_type"] = settings_.config.head_node_type;
  json inst = json::array();
  for (auto* r : table_.rows()) {
    json h = json::array();
    auto first = r->history.size() > 8 ? r->history.size() - 8 : 0;
    for (auto i = first; i < r->history.size(); ++i)
      h.push_back({{"time_ms", r->history[i].time_ms},
                   {"from", to_string(r->history[i].from)},
                   {"to", to_string(r->history[i].to)},
                   {"reason", r->history[i].reason}});
    inst.push_back({{"instance_id", r->instance_id},
                    {"node_type", r->node_type},
                    {"state", to_string(r->state)},
                    {"failed", is_failure(r->state)},
                    {"node_id", r->node_id},
                    {"provider_instance_id", r->provider_instance_id},
                    {"version", r->version},
                    {"error", r->error},
                    {"state_time_ms", r->state_time_ms},
                    {"history", h}});
  }
  j["instances"] = inst;
  json launches = json::array();
  for (auto& l : decision_.launches)
    launches.push_back({{"node_type", l.type}, {"count", l.count}, {"reason", l.reason}});
  j["launches"] = launches;
  json terms = json::array();
  for (auto& t : decision_.terminations)
    terms.push_back({{"node_id", t.node_id}, {"node_type", t.type}, {"reason", t.reason}});
  j["terminations"] = terms;
  json demands = json::array();
  for (auto& ds : decision_.demands) {
    if (ds.index < 0 || static_cast<std::size_t>(ds.index) >= snapshot_.demands.size())
      continue;
    auto& d = snapshot_.demands[ds.index];
    json parts = json::array();
    for (auto& p : ds.parts) {
      json part = {{"reason", to_string(p.reason)}, {"units", p.units}, {"text", p.text}};
      if (!p.node_type.empty())
        part["node_type"] = p.node_type;
      if (p.nodes > 0)
        part["nodes"] = p.nodes;
      if (!p.checked.empty()) {
        json checked = json::array();
        for (auto& c : p.checked) {
          json cj = {{"node_type", c.type}, {"missing", shape_json(c.missing)}};
          if (!c.label_mismatch.empty())
            cj["label_mismatch"] = c.label_mismatch;
          checked.push_back(cj);
        }
        part["checked"] = checked;
      }
      parts.push_back(part);
    }
    json dj = {{"shape", shape_json(d.shape)},
               {"kind", to_string(d.kind)},
               {"count", d.count},
               {"reason", ds.reason},
               {"parts", parts}};
    if (!d.selector.empty())
      dj["selector"] = d.selector;
    demands.push_back(dj);
  }
  j["demands"] = demands;
  json kept = json::array();
  for (auto& k : decision_.kept)
    kept.push_back({{"node_id", k.node_id},
                    {"node_type", k.type},
                    {"reason", to_string(k.reason)},
                    {"idle_s", static_cast<double>(k.idle_for.count()) / 1000.0},
                    {"text", k.text}});
  j["kept"] = kept;
  json idle = json::object();
  for (auto& n : snapshot_.nodes)
    idle[n.id] = static_cast<double>(n.idle_for.count()) / 1000.0;
  j["idle_s"] = idle;
  json backoffs = json::array();
  for (auto& b : decision_.backoffs)
    backoffs.push_back({{"node_type", b.type},
                        {"failures", b.failures},
                        {"retry_in_s", static_cast<double>(b.retry_in.count()) / 1000.0},
                        {"last_error", b.last_error},
                        {"text", b.text}});
  j["backoffs"] = backoffs;
  json unmet = json::array();
  for (auto& u : decision_.unmet_requests)
    unmet.push_back({{"reason", to_string(u.reason)}, {"units", u.units}, {"text", u.text}});
  j["unmet_requests"] = unmet;
  json reqs = json::array();
  for (auto& b : requests_)
    reqs.push_back(shape_json(b));
  j["requests"] = reqs;
  j["unknown_provider_instances"] = unknown_instances_;
  return j.dump();
}

} // namespace rayd::autoscale
