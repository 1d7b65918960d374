// rayctl's view of the autoscaler (docs/autoscaler.md, "Status"): the node
// summary of `rayctl status` in Ray's layout (Active / Idle / Pending /
// Recent failures), the reasons every pending demand waits, and
// `rayctl request-resources`.

#include <iostream>
#include <map>
#include <string>
#include <vector>

#include <nlohmann/json.hpp>

#include "autoscale/node_provider.hpp"
#include "cli/rayctl.hpp"
#include "common/error.hpp"
#include "common/resources.hpp"
#include "common/util.hpp"
#include "schemas/api_client.hpp"

namespace rayd::cli {

namespace {

using json = nlohmann::json;

std::string type_of(const node_info& n) {
  if (auto i = n.labels.find(autoscale::label_node_type); i != n.labels.end())
    return i->second;
  return n.is_head ? "head" : "worker";
}

std::string short_id(const std::string& id) {
  return id.substr(0, 12);
}

std::string seconds_text(double s) {
  char buf[32];
  std::snprintf(buf, sizeof buf, s < 10 ? "%.1f s" : "%.0f s", s);
  return buf;
}

/// The text of a kept node's reason, if the autoscaler kept it this round.
std::string kept_text(const json* as, const std::string& node_id) {
  if (as == nullptr || !as->contains("kept"))
    return "";
  for (auto& k : (*as)["kept"])
    if (k.value("node_id", "") == node_id)
      return k.value("text", "");
  return "";
}

} // namespace

void print_node_summary(const cluster_view& v, const json* as) {
  std::map<std::string, int> active;
  std::vector<std::string> idle;
  for (auto& n : v.nodes) {
    if (n.get_state() != node_state::alive)
      continue;
    double idle_s = -1;
    if (as != nullptr && as->contains("idle_s") && (*as)["idle_s"].contains(n.node_id))
      idle_s = (*as)["idle_s"][n.node_id].get<double>();
    bool busy = n.load.leases > 0 || !n.load.demands.empty()
                || !(n.resources_available == n.resources_total);
    bool is_idle = as != nullptr ? idle_s >= 1.0 : !busy;
    if (!is_idle) {
      ++active[type_of(n)];
      continue;
    }
    std::string line = type_of(n) + " " + short_id(n.node_id);
    if (idle_s >= 0)
      line += ": idle " + seconds_text(idle_s);
    if (auto why = kept_text(as, n.node_id); !why.empty())
      line += "; kept: " + why;
    idle.push_back(line);
  }
  std::cout << "Active:\n";
  if (active.empty())
    std::cout << " (no active nodes)\n";
  for (auto& [type, count] : active)
    std::cout << " " << count << " " << type << "\n";
  std::cout << "Idle:\n";
  if (idle.empty())
    std::cout << " (no idle nodes)\n";
  for (auto& line : idle)
    std::cout << " " << line << "\n";
  std::cout << "Pending:\n";
  int pending = 0;
  std::vector<std::string> failures;
  if (as != nullptr)
    for (auto& r : (*as)["instances"]) {
      auto state = r.value("state", "");
      if (state == "QUEUED" || state == "REQUESTED" || state == "ALLOCATED") {
        ++pending;
        std::string why;
        if (!r["history"].empty())
          why = r["history"][0].value("reason", "");
        std::cout << " " << r.value("node_type", "") << " " << r.value("instance_id", "")
                  << ": " << state << (state == "ALLOCATED" ? " (starting rayd)" : "")
                  << (why.empty() ? "" : "; launched for " + why) << "\n";
      } else if (state == "STOPPING") {
        ++pending;
        std::cout << " " << r.value("node_type", "") << " " << r.value("instance_id", "")
                  << ": STOPPING (draining, then terminated)\n";
      }
      if (r.value("failed", false))
        failures.push_back(r.value("node_type", "") + " " + r.value("instance_id", "") + ": "
                           + state + ": " + r.value("error", ""));
    }
  if (pending == 0)
    std::cout << " (no pending nodes)\n";
  if (as != nullptr)
    for (auto& b : (*as)["backoffs"])
      failures.push_back(b.value("text", ""));
  std::cout << "Recent failures:\n";
  if (failures.empty())
    std::cout << " (no failures)\n";
  for (auto& f : failures)
    std::cout << " " << f << "\n";
  if (as != nullptr)
    for (auto key : {"config", "provider", "store", "gcs"})
      if (auto e = (*as)["errors"].value(key, ""); !e.empty())
        std::cout << " autoscaler " << key << " error: " << e << "\n";
}

void print_autoscaler_demands(const json& as) {
  // The autoscaler's demands carry why each waits; tasks, actors and jobs.
  if (as["demands"].empty() && as["unmet_requests"].empty()) {
    std::cout << " (no resource demands)\n";
  }
  for (auto& d : as["demands"])
    std::cout << " " << d.value("reason", "") << "\n";
  if (!as["requests"].empty()) {
    std::cout << "Requested (rayctl request-resources):\n";
    std::map<std::string, int> counts;
    for (auto& b : as["requests"]) {
      resource_map m;
      for (auto& [k, x] : b.items())
        m[k] = x.get<double>();
      ++counts[describe_shape(m)];
    }
    for (auto& [shape, n] : counts)
      std::cout << " " << shape << " × " << n << "\n";
    for (auto& u : as["unmet_requests"])
      std::cout << " " << u.value("text", "") << "\n";
  }
}

int rayctl_request_resources(const rayctl_target& t, double num_cpus,
                             const std::string& bundles_json, bool clear) {
  std::vector<resource_map> bundles;
  if (!clear) {
    if (num_cpus < 0 && bundles_json.empty()) {
      std::cerr << "rayctl request-resources: give --num-cpus N, --bundles JSON, or --clear"
                << std::endl;
      return 2;
    }
    if (num_cpus > 0) {
      // Ray's num_cpus: that many 1-CPU bundles.
      if (num_cpus > 10000) {
        std::cerr << "rayctl request-resources: --num-cpus: at most 10000" << std::endl;
        return 2;
      }
      for (int i = 0; i < static_cast<int>(num_cpus); ++i)
        bundles.push_back({{"CPU", 1.0}});
    }
    if (!bundles_json.empty()) {
      auto j = json::parse(bundles_json, nullptr, false);
      if (j.is_discarded() || !j.is_array()) {
        std::cerr << "rayctl request-resources: --bundles: expected a JSON array of "
                     "objects, e.g. '[{\"CPU\": 2}, {\"GPU\": 1}]'"
                  << std::endl;
        return 2;
      }
      for (std::size_t i = 0; i < j.size(); ++i) {
        auto b = parse_resources_json(j[i].dump(), "--bundles[" + std::to_string(i) + "]");
        if (!b) {
          std::cerr << "rayctl request-resources: " << describe(b.error()) << std::endl;
          return 2;
        }
        bundles.push_back(std::move(*b));
      }
    }
  }
  auto c = connect(t);
  if (!c)
    return fail(c.error());
  if (auto r = (*c)->request_resources(bundles); !r)
    return fail(r.error());
  if (bundles.empty())
    std::cout << "cleared the resource request" << std::endl;
  else
    std::cout << "requested " << bundles.size() << " bundle" << (bundles.size() == 1 ? "" : "s")
              << "; the autoscaler scales to hold them at once (rayctl status shows progress)"
              << std::endl;
  return 0;
}

} // namespace rayd::cli
