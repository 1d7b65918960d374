// autoscale::autoscaler (autoscale/autoscaler.hpp): whole rounds without
// processes — a launch's way from the decision to RAYD_RUNNING, the drain
// before a termination (accepted and refused), a failing provider, a head
// restart resuming from the store without launching twice, and the
// explicit request surviving the restart.

#define BOOST_TEST_MODULE autoscaler
#include <boost/test/unit_test.hpp>

#include <map>
#include <string>
#include <vector>

#include <nlohmann/json.hpp>

#include "autoscale/autoscaler.hpp"
#include "common/error.hpp"
#include "persistence/store.hpp"

using namespace rayd;
using namespace rayd::autoscale;
using st = instance_state;

namespace {

autoscaler_settings settings(int max_workers = 3, int64_t idle_ms = 5000) {
  autoscaler_settings s;
  s.cluster_name = "unit";
  s.provider_type = "fake";
  s.config.max_workers = max_workers;
  s.config.idle_timeout = std::chrono::milliseconds{idle_ms};
  s.config.head_node_type = "head";
  node_type_config head;
  head.name = "head";
  s.config.node_types["head"] = head;
  node_type_config w;
  w.name = "worker";
  w.resources = {{"CPU", 2}};
  w.max_workers = max_workers;
  s.config.node_types["worker"] = w;
  return s;
}

/// A small world: the provider's instances and the GCS's nodes, steered by
/// the test as the real provider and nodes would behave.
struct world {
  std::map<std::string, provider_instance> listed; // by provider id
  std::vector<node_info> nodes;
  int next = 0;

  world() {
    node_info head;
    head.node_id = "head-node";
    head.is_head = true;
    nodes.push_back(head);
  }

  round_input input(int64_t now, std::vector<pending_demand> demands = {}) const {
    round_input in;
    in.now_ms = now;
    in.nodes = nodes;
    in.demands = std::move(demands);
    std::vector<provider_instance> l;
    for (auto& [_, p] : listed)
      l.push_back(p);
    in.provider = l;
    return in;
  }

  /// The provider creates what was asked.
  void create(const create_call& c) {
    provider_instance p;
    p.instance_id = "p-" + std::to_string(++next);
    p.node_type = c.spec.node_type;
    p.state = provider_instance::running;
    p.tags = c.spec.tags;
    listed[p.instance_id] = p;
  }

  /// The instance's rayd joins the GCS, idle, with the spec's labels.
  void join(const create_call& c, const std::string& node_id) {
    node_info n;
    n.node_id = node_id;
    n.labels = c.spec.labels;
    n.resources_total = c.spec.resources;
    n.resources_available = c.spec.resources;
    nodes.push_back(n);
  }

  void terminate(const terminate_call& t) {
    for (auto& id : t.provider_ids) {
      auto i = listed.find(id);
      if (i == listed.end())
        continue;
      auto ours = i->second.tags.at(label_instance_id);
      listed.erase(i);
      for (auto& n : nodes)
        if (auto l = n.labels.find(label_instance_id); l != n.labels.end() && l->second == ours)
          n.state = static_cast<uint8_t>(rayd::node_state::dead);
    }
  }
};

pending_demand cpu_demand(uint64_t count) {
  return {{{"CPU", 1.0}}, {}, count, "actor"};
}

const instance_row* row(const autoscaler& a, const std::string& id) {
  return a.instances().find(id);
}

} // namespace

BOOST_AUTO_TEST_CASE(demand_launches_and_the_instance_runs_then_drains_and_terminates) {
  auto db = persistence::make_memory_store();
  autoscaler a{*db, settings()};
  BOOST_REQUIRE(!a.load());
  world w;
  // 3 one-CPU actors wait: two 2-CPU workers, requested before the create.
  auto acts = a.round(w.input(1000, {cpu_demand(3)}));
  BOOST_REQUIRE_EQUAL(acts.creates.size(), 2u);
  for (auto& c : acts.creates) {
    BOOST_CHECK(row(a, c.instance_id)->state == st::requested);
    BOOST_CHECK_EQUAL(c.spec.labels.at(label_node_type), "worker");
    BOOST_CHECK_EQUAL(c.spec.labels.at(label_instance_id), c.instance_id);
    BOOST_CHECK_EQUAL(c.spec.tags.at(tag_launch_request), c.instance_id);
  }
  // Not listed yet: the next round launches nothing more (no double launch).
  auto again = a.round(w.input(1100, {cpu_demand(3)}));
  BOOST_CHECK(again.creates.empty());
  for (auto& c : acts.creates) {
    a.created(c.instance_id, {}, 1150);
    w.create(c);
  }
  a.round(w.input(1200, {cpu_demand(3)}));
  for (auto& c : acts.creates)
    BOOST_CHECK(row(a, c.instance_id)->state == st::allocated);
  w.join(acts.creates[0], "n1");
  w.join(acts.creates[1], "n2");
  a.round(w.input(1300));
  for (auto& c : acts.creates)
    BOOST_CHECK(row(a, c.instance_id)->state == st::rayd_running);
  // Idle past the timeout (5 s): both drained first, not terminated yet.
  auto down = a.round(w.input(7000));
  BOOST_REQUIRE_EQUAL(down.drains.size(), 2u);
  BOOST_CHECK(down.terminates.empty());
  for (auto& d : down.drains)
    BOOST_CHECK(row(a, d.instance_id)->state == st::stopping);
  // One accepts, one refuses (work arrived).
  auto after = a.drained(down.drains[0], true, 7010);
  BOOST_REQUIRE_EQUAL(after.terminates.size(), 1u);
  a.drained(down.drains[1], false, 7010);
  BOOST_CHECK(row(a, down.drains[1].instance_id)->state == st::rayd_running);
  BOOST_CHECK_EQUAL(row(a, down.drains[1].instance_id)->history.back().reason,
                    "drain refused: work arrived");
  // In flight: the next round neither drains nor terminates it again.
  auto during = a.round(w.input(7020));
  for (auto& d : during.drains)
    BOOST_CHECK(d.instance_id != down.drains[0].instance_id);
  for (auto& t : during.terminates)
    BOOST_CHECK(t.instance_ids.empty() || t.instance_ids[0] != down.drains[0].instance_id);
  w.terminate(after.terminates[0]);
  a.terminated(after.terminates[0], {}, 7030);
  a.round(w.input(7100));
  BOOST_CHECK(row(a, down.drains[0].instance_id)->state == st::terminated);
  // The refused node is kept this round and says why.
  auto status = nlohmann::json::parse(a.status_json());
  bool saw_refused = false;
  for (auto& k : status["kept"])
    saw_refused = saw_refused || k["reason"] == "drain_refused";
  BOOST_CHECK_MESSAGE(saw_refused, status["kept"].dump());
}

BOOST_AUTO_TEST_CASE(a_provider_that_fails_every_launch_backs_off_and_is_reported) {
  auto db = persistence::make_memory_store();
  autoscaler a{*db, settings()};
  BOOST_REQUIRE(!a.load());
  world w;
  auto acts = a.round(w.input(1000, {cpu_demand(2)}));
  BOOST_REQUIRE_EQUAL(acts.creates.size(), 1u);
  a.created(acts.creates[0].instance_id, make_error(errc::unavailable, "quota exceeded"), 1010);
  BOOST_CHECK(row(a, acts.creates[0].instance_id)->state == st::allocation_failed);
  BOOST_CHECK_EQUAL(row(a, acts.creates[0].instance_id)->error, "create failed: quota exceeded");
  // Backing off: no launch in the next rounds, and the status says why.
  auto next = a.round(w.input(1100, {cpu_demand(2)}));
  BOOST_CHECK(next.creates.empty());
  auto status = nlohmann::json::parse(a.status_json());
  BOOST_REQUIRE_EQUAL(status["backoffs"].size(), 1u);
  BOOST_CHECK(status["backoffs"][0]["last_error"].get<std::string>().find("quota exceeded")
              != std::string::npos);
  BOOST_REQUIRE_EQUAL(status["demands"].size(), 1u);
  BOOST_CHECK_EQUAL(status["demands"][0]["parts"][0]["reason"], "backing_off");
}

BOOST_AUTO_TEST_CASE(a_provider_list_error_changes_nothing_and_is_reported) {
  auto db = persistence::make_memory_store();
  autoscaler a{*db, settings()};
  BOOST_REQUIRE(!a.load());
  world w;
  auto in = w.input(1000, {cpu_demand(2)});
  in.provider = make_error(errc::timeout, "the command took over 30 s");
  auto acts = a.round(in);
  BOOST_CHECK(acts.creates.empty());
  BOOST_CHECK_EQUAL(a.instances().size(), 0u);
  auto status = nlohmann::json::parse(a.status_json());
  BOOST_CHECK(status["errors"]["provider"].get<std::string>().find("30 s") != std::string::npos);
}

BOOST_AUTO_TEST_CASE(a_restarted_head_resumes_without_launching_twice) {
  auto db = persistence::make_memory_store();
  world w;
  std::vector<create_call> first;
  {
    autoscaler a{*db, settings()};
    BOOST_REQUIRE(!a.load());
    BOOST_REQUIRE(!a.set_requests({{{"CPU", 2}}, {{"CPU", 2}}}));
    first = a.round(w.input(1000)).creates;
    BOOST_REQUIRE_EQUAL(first.size(), 2u);
    // The head dies here: one create went through, the other never ran.
    w.create(first[0]);
  }
  autoscaler b{*db, settings()};
  BOOST_REQUIRE(!b.load());
  auto status = nlohmann::json::parse(b.status_json());
  BOOST_CHECK_EQUAL(status["requests"].size(), 2u); // the request survived
  auto acts = b.round(w.input(2000));
  // The listed one is picked up; the unlisted one is asked again under its
  // own launch request id (idempotent at the provider), never as a new row.
  BOOST_REQUIRE_EQUAL(acts.creates.size(), 1u);
  BOOST_CHECK_EQUAL(acts.creates[0].instance_id, first[1].instance_id);
  BOOST_CHECK_EQUAL(acts.creates[0].spec.tags.at(tag_launch_request), first[1].instance_id);
  BOOST_CHECK(b.instances().find(first[0].instance_id)->state == st::allocated);
  BOOST_CHECK(b.instances().find(first[1].instance_id)->state == st::requested);
  BOOST_CHECK_EQUAL(b.instances().size(), 2u);
  // Asked once per head process: the next round waits for the list.
  BOOST_CHECK(b.round(w.input(2100)).creates.empty());
  BOOST_CHECK_EQUAL(b.instances().size(), 2u);
}

BOOST_AUTO_TEST_CASE(bad_requests_are_refused_and_launchable_types_exclude_the_head) {
  auto db = persistence::make_memory_store();
  autoscaler a{*db, settings()};
  BOOST_REQUIRE(!a.load());
  BOOST_CHECK(a.set_requests({{{"CPU", -1}}}));
  BOOST_CHECK(a.set_requests(std::vector<resource_map>(10001, {{"CPU", 1}})));
  BOOST_CHECK(!a.set_requests({}));
  auto types = a.launchable();
  BOOST_REQUIRE_EQUAL(types.size(), 1u);
  BOOST_CHECK_EQUAL(types[0].name, "worker");
  BOOST_CHECK_EQUAL(types[0].resources.at("CPU"), 2.0);
}

BOOST_AUTO_TEST_CASE(an_idle_node_is_kept_while_demand_it_fits_was_seen_lately) {
  // A driver between two lease requests shows no demand for a moment: the
  // idle worker it is about to use must not go at its (1 s) timeout.
  auto db = persistence::make_memory_store();
  autoscaler a{*db, settings(3, 1000)};
  BOOST_REQUIRE(!a.load());
  world w;
  auto acts = a.round(w.input(1000, {cpu_demand(1)}));
  BOOST_REQUIRE_EQUAL(acts.creates.size(), 1u);
  a.created(acts.creates[0].instance_id, {}, 1010);
  w.create(acts.creates[0]);
  w.join(acts.creates[0], "n1");
  a.round(w.input(1100)); // listed: ALLOCATED
  a.round(w.input(1200)); // its node is ALIVE: RAYD_RUNNING
  BOOST_REQUIRE(row(a, acts.creates[0].instance_id)->state == st::rayd_running);
  // Demand flickers: seen at 2000, gone from 2100 on.
  a.round(w.input(2000, {cpu_demand(1)}));
  for (int64_t t = 2100; t <= 3900; t += 200)
    BOOST_CHECK_MESSAGE(a.round(w.input(t)).drains.empty(), "drained at " << t);
  // 2 s after the demand was last seen, the 1 s idle timeout applies again.
  bool drained = false;
  for (int64_t t = 4100; t <= 6000 && !drained; t += 200)
    drained = !a.round(w.input(t)).drains.empty();
  BOOST_CHECK(drained);
}
