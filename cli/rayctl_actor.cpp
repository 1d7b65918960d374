// rayctl actors / actor get / actor kill, and the actor counts of
// rayctl status (docs/actors.md, docs/cli.md).

#include <algorithm>
#include <cctype>
#include <iomanip>
#include <iostream>

#include <nlohmann/json.hpp>

#include "cli/rayctl.hpp"
#include "common/error.hpp"
#include "schemas/api_client.hpp"

namespace rayd::cli {

namespace {

using json = nlohmann::json;

const std::vector<std::string> actor_states{"PENDING_CREATION", "ALIVE", "RESTARTING",
                                            "DEAD"};

json to_json(const actor_info& a) {
  return {{"actor_id", a.actor_id},
          {"name", a.name},
          {"namespace", a.ray_namespace},
          {"class_name", a.class_name},
          {"owner_job", a.owner_job},
          {"state", a.state},
          {"node_id", a.node_id},
          {"pid", a.pid},
          {"address", a.address},
          {"restarts", a.restarts},
          {"max_restarts", a.max_restarts},
          {"max_task_retries", a.max_task_retries},
          {"detached", a.detached},
          {"death_cause", a.death_cause},
          {"create_time_ms", a.create_time_ms},
          {"end_time_ms", a.end_time_ms}};
}

std::string or_dash(const std::string& s) {
  return s.empty() ? "-" : s;
}

void print_table(const std::vector<actor_info>& actors) {
  std::cout << std::left << std::setw(22) << "ACTOR_ID" << std::setw(16) << "NAME"
            << std::setw(12) << "NAMESPACE" << std::setw(16) << "CLASS" << std::setw(18)
            << "STATE" << std::setw(14) << "NODE" << std::setw(9) << "PID" << std::setw(10)
            << "RESTARTS"
            << "DEATH_CAUSE\n";
  for (auto& a : actors)
    std::cout << std::left << std::setw(22) << a.actor_id << std::setw(16) << or_dash(a.name)
              << std::setw(12) << a.ray_namespace << std::setw(16) << a.class_name
              << std::setw(18) << a.state << std::setw(14)
              << or_dash(a.node_id.substr(0, 12)) << std::setw(9)
              << (a.pid != 0 ? std::to_string(a.pid) : "-") << std::setw(10)
              << a.restarts << a.death_cause << "\n";
  std::cout.flush();
}

void print_one(const actor_info& a) {
  std::cout << "Actor:        " << a.actor_id << "\n"
            << "Name:         " << or_dash(a.name) << " (namespace " << a.ray_namespace
            << ")\n"
            << "Class:        " << a.class_name << "\n"
            << "State:        " << a.state << "\n"
            << "Owner job:    " << or_dash(a.owner_job) << (a.detached ? " (detached)" : "")
            << "\n"
            << "Node:         " << or_dash(a.node_id) << "\n"
            << "Process:      " << (a.pid != 0 ? std::to_string(a.pid) : "-") << " at "
            << or_dash(a.address) << "\n"
            << "Restarts:     " << a.restarts << " of "
            << (a.max_restarts < 0 ? std::string{"unlimited"}
                                   : std::to_string(a.max_restarts))
            << "\n";
  if (!a.death_cause.empty())
    std::cout << (a.state == "DEAD" ? "Death cause:  " : "Last failure: ") << a.death_cause
              << "\n";
  std::cout.flush();
}

caf::expected<std::string> normalize_state(const std::string& s) {
  std::string up = s;
  std::transform(up.begin(), up.end(), up.begin(),
                 [](unsigned char c) { return static_cast<char>(std::toupper(c)); });
  if (std::find(actor_states.begin(), actor_states.end(), up) != actor_states.end())
    return up;
  return make_error(errc::invalid_argument,
                    "--state: unknown actor state '" + s
                      + "' (expected PENDING_CREATION, ALIVE, RESTARTING or DEAD)");
}

} // namespace

nlohmann::json actor_counts_json(const std::vector<actor_info>& actors) {
  json out = json::object();
  for (auto& s : actor_states)
    out[s] = 0;
  for (auto& a : actors)
    out[a.state] = out.value(a.state, 0) + 1;
  return out;
}

int rayctl_actors(const rayctl_target& t, const std::string& state, const std::string& name,
                  bool as_json) {
  std::string wanted;
  if (!state.empty()) {
    auto s = normalize_state(state);
    if (!s)
      return fail(s.error());
    wanted = *s;
  }
  auto c = connect(t);
  if (!c)
    return fail(c.error());
  auto all = (*c)->actor_list();
  if (!all)
    return fail(all.error());
  std::vector<actor_info> shown;
  for (auto& a : *all)
    if ((wanted.empty() || a.state == wanted) && (name.empty() || a.name == name))
      shown.push_back(a);
  if (as_json) {
    auto arr = json::array();
    for (auto& a : shown)
      arr.push_back(to_json(a));
    std::cout << arr.dump(2) << std::endl;
    return 0;
  }
  print_table(shown);
  return 0;
}

int rayctl_actor_get(const rayctl_target& t, const std::string& name, const std::string& ns,
                     bool as_json) {
  auto c = connect(t);
  if (!c)
    return fail(c.error());
  auto a = (*c)->actor_get(name, ns);
  if (!a)
    return fail(a.error());
  if (as_json)
    std::cout << to_json(*a).dump(2) << std::endl;
  else
    print_one(*a);
  return 0;
}

int rayctl_actor_kill(const rayctl_target& t, const std::string& id_or_name,
                      const std::string& ns, bool no_restart, bool as_json) {
  auto c = connect(t);
  if (!c)
    return fail(c.error());
  auto a = (*c)->actor_kill(id_or_name, ns, no_restart, "rayctl");
  if (!a)
    return fail(a.error());
  if (as_json) {
    std::cout << to_json(*a).dump(2) << std::endl;
    return 0;
  }
  std::cout << "Actor " << a->actor_id << (a->name.empty() ? "" : " ('" + a->name + "')")
            << " killed: now " << a->state;
  if (!a->death_cause.empty())
    std::cout << " (" << a->death_cause << ")";
  std::cout << std::endl;
  return 0;
}

} // namespace rayd::cli
