#include "cli/rayctl.hpp"

#include <algorithm>
#include <cstdlib>
#include <ctime>
#include <iomanip>
#include <iostream>
#include <sstream>

#include <nlohmann/json.hpp>

#include "common/error.hpp"
#include "common/session.hpp"
#include "common/token.hpp"
#include "schemas/api_client.hpp"

namespace rayd::cli {

int fail(const caf::error& err) {
  std::cerr << "rayctl: " << describe(err) << std::endl;
  return 1;
}

namespace {

/// --address, else RAYD_ADDRESS, else the local session_latest.
caf::expected<std::string> resolve_address(const rayctl_target& t) {
  if (!t.address.empty())
    return t.address;
  if (auto env = std::getenv("RAYD_ADDRESS"); env != nullptr && *env != '\0')
    return std::string{env};
  auto latest = rayd_tmpdir() + "/session_latest";
  if (auto nf = read_node_file(latest); nf && !nf->api_address.empty())
    return nf->api_address;
  // Heads started with an explicit --session-dir under $RAYD_TMPDIR.
  for (auto& [dir, nf] : local_head_sessions())
    if (process_start_ticks(nf.pid) == nf.pid_start_ticks && !nf.api_address.empty())
      return nf.api_address;
  return make_error(errc::not_found,
                    "no cluster address: pass --address HOST:PORT, set "
                    "RAYD_ADDRESS, or start a cluster on this host (looked in "
                    + latest + ")");
}

/// --token, --token-file, RAYD_TOKEN, RAYD_TOKEN_FILE, else the token of the
/// local head session serving `address`.
caf::expected<std::string> resolve_token(const rayctl_target& t,
                                         const std::string& address) {
  auto tok = token_from_flags_or_env(t.token, t.token_file);
  if (!tok)
    return tok.error();
  if (!tok->empty())
    return tok;
  if (auto local = find_local_token(address))
    return *local;
  return make_error(errc::unauthenticated,
                    "no cluster token for " + address
                      + ": pass --token or --token-file, or set RAYD_TOKEN / "
                        "RAYD_TOKEN_FILE");
}

} // namespace

caf::expected<std::unique_ptr<rpc::client>> connect(const rayctl_target& t) {
  auto address = resolve_address(t);
  if (!address)
    return address.error();
  auto token = resolve_token(t, *address);
  if (!token)
    return token.error();
  rpc::connect_options opts;
  opts.tls_ca = t.tls_ca;
  return rpc::client::connect(*address, *token, opts);
}

namespace {

nlohmann::json demands_json(const std::vector<resource_demand>& ds) {
  auto out = nlohmann::json::array();
  for (auto& d : ds)
    out.push_back({{"shape", d.shape}, {"count", d.count}});
  return out;
}

nlohmann::json to_json(const node_info& n) {
  return {{"node_id", n.node_id},
          {"name", n.name},
          {"address", n.address},
          {"state", to_string(n.get_state())},
          {"is_head", n.is_head},
          {"pid", n.pid},
          {"resources_total", n.resources_total},
          {"resources_available", n.resources_available},
          {"labels", n.labels},
          {"death_reason", n.death_reason},
          {"start_time_ms", n.start_time_ms},
          {"death_time_ms", n.death_time_ms},
          {"pending_demands", demands_json(n.load.demands)},
          {"object_store", {{"used_bytes", n.load.object_store_used},
                            {"spilled_bytes", n.load.object_store_spilled},
                            {"capacity_bytes", n.load.object_store_capacity},
                            {"objects", n.load.object_count}}},
          {"leases", n.load.leases},
          {"workers", n.load.workers},
          {"open_files_limit", n.open_files_limit}};
}


nlohmann::json to_json(const cluster_view& v) {
  auto nodes = nlohmann::json::array();
  for (auto& n : v.nodes)
    nodes.push_back(to_json(n));
  return {{"cluster_id", v.cluster_id},
          {"epoch", v.epoch},
          {"nodes", nodes},
          {"pending_demands", demands_json(cluster_demands(v.nodes))}};
}

std::string short_id(const std::string& id) {
  return id.substr(0, 12);
}

void print_status(const cluster_view& v, const nlohmann::json* as) {
  auto t = std::time(nullptr);
  std::tm tm{};
  localtime_r(&t, &tm);
  const std::string rule(63, '-');
  std::cout << "======== Cluster status: " << std::put_time(&tm, "%Y-%m-%d %H:%M:%S")
            << " ========\n";
  std::cout << "Cluster " << v.cluster_id << " (head epoch " << v.epoch << ")\n";
  if (as != nullptr)
    std::cout << "Autoscaler: " << as->value("provider", "") << " provider, cluster "
              << as->value("cluster_name", "") << "\n";
  std::cout << "Node status\n" << rule << "\n";
  print_node_summary(v, as);
  std::vector<const node_info*> alive, dead;
  for (auto& n : v.nodes)
    (n.get_state() == node_state::alive ? alive : dead).push_back(&n);
  std::cout << "Healthy: " << alive.size() << " node" << (alive.size() == 1 ? "" : "s")
            << "\n";
  for (auto* n : alive)
    std::cout << " " << (n->is_head ? "head  " : "worker") << " " << short_id(n->node_id)
              << "  " << n->name << "  " << n->address << "\n";
  std::cout << "Dead: " << dead.size() << " node" << (dead.size() == 1 ? "" : "s") << "\n";
  for (auto* n : dead)
    std::cout << " " << (n->is_head ? "head  " : "worker") << " " << short_id(n->node_id)
              << "  " << n->name << "  " << n->address << ": " << n->death_reason << "\n";
  std::cout << "\nResources\n" << rule << "\nUsage:\n";
  resource_map total, available;
  for (auto* n : alive) {
    for (auto& [k, x] : n->resources_total)
      total[k] += x;
    for (auto& [k, x] : n->resources_available)
      available[k] += x;
  }
  if (total.empty())
    std::cout << " (no resources)\n";
  for (auto& [k, x] : total) {
    auto used = x - available[k];
    std::cout << " " << format_amount(k, used) << "/" << format_amount(k, x) << " " << k
              << "\n";
  }
  std::cout << "\nObject stores\n" << rule << "\n";
  for (auto* n : alive)
    std::cout << " " << short_id(n->node_id) << "  " << n->name << ": "
              << format_amount("memory", static_cast<double>(n->load.object_store_used)) << " / "
              << format_amount("memory", static_cast<double>(n->load.object_store_capacity))
              << " in memory, " << n->load.object_count << " objects"
              << (n->load.object_store_spilled
                    ? ", " + format_amount("memory", static_cast<double>(n->load.object_store_spilled))
                        + " spilled to disk"
                    : std::string{})
              << "; " << n->load.leases << " leases, " << n->load.workers << " worker processes\n";
  std::cout << "\nDemands:\n";
  if (as != nullptr) {
    print_autoscaler_demands(*as);
    return;
  }
  auto demands = cluster_demands(v.nodes);
  if (demands.empty())
    std::cout << " (no resource demands)\n";
  for (auto& d : demands) {
    std::cout << " {";
    bool first = true;
    for (auto& [k, x] : d.shape) {
      std::cout << (first ? "" : ", ") << k << ": " << format_amount(k, x);
      first = false;
    }
    std::cout << "}: " << d.count << " pending\n";
  }
}

/// Connects, runs `f` with the client, and maps errors to exit code 1.
template <class F>
int with_client(const rayctl_target& t, F f) {
  auto c = connect(t);
  if (!c)
    return fail(c.error());
  return f(**c);
}

caf::error missing(const std::string& ns, const std::string& key) {
  return make_error(errc::not_found,
                    "key '" + key + "' not found in namespace '" + ns + "'");
}

} // namespace

caf::expected<std::pair<std::string, std::string>> resolve_target(const rayctl_target& t) {
  auto address = resolve_address(t);
  if (!address)
    return address.error();
  auto token = resolve_token(t, *address);
  if (!token)
    return token.error();
  return std::make_pair(*address, *token);
}

nlohmann::json counts_json(const task_counts& c) {
  return {{"pending", c.pending}, {"running", c.running}, {"finished", c.finished},
          {"failed", c.failed}};
}

int rayctl_status(const rayctl_target& t, bool json) {
  return with_client(t, [json](rpc::client& c) {
    auto v = c.status();
    if (!v)
      return fail(v.error());
    auto tasks = c.task_list(0);
    if (!tasks)
      return fail(tasks.error());
    auto actors = c.actor_list();
    if (!actors)
      return fail(actors.error());
    auto actor_counts = actor_counts_json(*actors);
    auto scaler = c.autoscaler_status();
    if (!scaler)
      return fail(scaler.error());
    nlohmann::json as; // null without an autoscaler
    if (*scaler)
      as = nlohmann::json::parse(**scaler, nullptr, false);
    if (json) {
      auto j = to_json(*v);
      j["tasks"] = counts_json(tasks->counts);
      j["actors"] = actor_counts;
      j["autoscaler"] = as.is_discarded() ? nlohmann::json{} : as;
      std::cout << j.dump(2) << std::endl;
    } else {
      print_status(*v, as.is_object() ? &as : nullptr);
      auto& n = tasks->counts;
      std::cout << "\nTasks (drivers connected now):\n " << n.running << " running, "
                << n.pending << " pending, " << n.finished << " finished, " << n.failed
                << " failed" << std::endl;
      std::cout << "\nActors:\n " << actor_counts["ALIVE"].get<int>() << " alive, "
                << actor_counts["PENDING_CREATION"].get<int>() << " pending creation, "
                << actor_counts["RESTARTING"].get<int>() << " restarting, "
                << actor_counts["DEAD"].get<int>() << " dead" << std::endl;
    }
    return 0;
  });
}

int rayctl_tasks(const rayctl_target& t, uint32_t limit, bool json) {
  return with_client(t, [limit, json](rpc::client& c) {
    auto r = c.task_list(limit);
    if (!r)
      return fail(r.error());
    if (json) {
      auto arr = nlohmann::json::array();
      for (auto& e : r->tasks)
        arr.push_back({{"task_id", e.task_id},
                       {"function", e.function},
                       {"state", e.state},
                       {"node_id", e.node_id},
                       {"attempt", e.attempt},
                       {"error", e.error},
                       {"update_time_ms", e.update_time_ms},
                       {"job_id", e.job_id}});
      std::cout << nlohmann::json{{"tasks", arr}, {"counts", counts_json(r->counts)}}.dump(2)
                << std::endl;
      return 0;
    }
    std::cout << std::left << std::setw(26) << "TASK_ID" << std::setw(20) << "FUNCTION"
              << std::setw(10) << "STATE" << std::setw(14) << "NODE" << std::setw(8)
              << "ATTEMPT"
              << "ERROR\n";
    for (auto& e : r->tasks)
      std::cout << std::left << std::setw(26) << e.task_id << std::setw(20) << e.function
                << std::setw(10) << e.state << std::setw(14) << short_id(e.node_id)
                << std::setw(8) << e.attempt << e.error << "\n";
    std::cout.flush();
    return 0;
  });
}

int rayctl_nodes(const rayctl_target& t, bool json) {
  return with_client(t, [json](rpc::client& c) {
    auto v = c.status();
    if (!v)
      return fail(v.error());
    if (json) {
      auto nodes = nlohmann::json::array();
      for (auto& n : v->nodes)
        nodes.push_back(to_json(n));
      std::cout << nodes.dump(2) << std::endl;
      return 0;
    }
    std::cout << std::left << std::setw(30) << "NODE_ID" << std::setw(7) << "STATE"
              << std::setw(7) << "ROLE" << std::setw(22) << "ADDRESS" << std::setw(8)
              << "PID" << std::setw(8) << "CPU"
              << "NAME\n";
    for (auto& n : v->nodes) {
      auto cpu = n.resources_total.count("CPU") ? n.resources_total.at("CPU") : 0.0;
      std::cout << std::left << std::setw(30) << n.node_id << std::setw(7)
                << to_string(n.get_state()) << std::setw(7)
                << (n.is_head ? "head" : "worker") << std::setw(22) << n.address
                << std::setw(8) << n.pid << std::setw(8) << format_amount("CPU", cpu)
                << n.name << "\n";
    }
    return 0;
  });
}

int rayctl_kv_put(const rayctl_target& t, const std::string& ns,
                  const std::string& key, const std::string& value) {
  return with_client(t, [&](rpc::client& c) {
    auto added = c.kv_put(ns, key, value, true);
    if (!added)
      return fail(added.error());
    std::cout << (*added ? "added " : "updated ") << key << std::endl;
    return 0;
  });
}

int rayctl_kv_get(const rayctl_target& t, const std::string& ns,
                  const std::string& key) {
  return with_client(t, [&](rpc::client& c) {
    auto v = c.kv_get(ns, key);
    if (!v)
      return fail(v.error());
    if (!*v)
      return fail(missing(ns, key));
    std::cout << **v << std::endl;
    return 0;
  });
}

int rayctl_kv_del(const rayctl_target& t, const std::string& ns,
                  const std::string& key) {
  return with_client(t, [&](rpc::client& c) {
    auto deleted = c.kv_del(ns, key);
    if (!deleted)
      return fail(deleted.error());
    if (!*deleted)
      return fail(missing(ns, key));
    std::cout << "deleted " << key << std::endl;
    return 0;
  });
}

int rayctl_kv_list(const rayctl_target& t, const std::string& ns,
                   const std::string& prefix, bool json) {
  return with_client(t, [&](rpc::client& c) {
    auto keys = c.kv_list(ns, prefix);
    if (!keys)
      return fail(keys.error());
    if (json) {
      std::cout << nlohmann::json(*keys).dump() << std::endl;
      return 0;
    }
    for (auto& k : *keys)
      std::cout << k << "\n";
    std::cout.flush();
    return 0;
  });
}

} // namespace rayd::cli
