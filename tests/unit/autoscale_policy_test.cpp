// Unit tests of the autoscaler's decision (autoscale/policy.hpp): the scaling
// rules as tables of scenarios, the failure modes users of Ray's autoscaler
// hit (flapping, overshoot, scale-down under a waiting queue, infeasible
// demand, a provider that fails every launch), and the decision time at
// 1,000 nodes × 10,000 pending shapes. No processes, no clock: every round
// is a snapshot built here.
#define BOOST_TEST_MODULE autoscale_policy
#include <boost/test/unit_test.hpp>

#include <chrono>
#include <ostream>
#include <random>

#include "autoscale/policy.hpp"
#include "autoscale/scenarios.hpp"

namespace rayd::autoscale {
// Boost.Test prints the enums by name when a check fails.
std::ostream& operator<<(std::ostream& os, wait_reason x) { return os << to_string(x); }
std::ostream& operator<<(std::ostream& os, keep_reason x) { return os << to_string(x); }
std::ostream& operator<<(std::ostream& os, launch_cause x) { return os << to_string(x); }
std::ostream& operator<<(std::ostream& os, termination_cause x) { return os << to_string(x); }
} // namespace rayd::autoscale

using namespace rayd;
using namespace rayd::autoscale;
using std::chrono::seconds;

namespace {

node_type_config type(const std::string& name, resource_map res, int32_t min,
                      int32_t max, label_map labels = {}) {
  node_type_config t;
  t.name = name;
  t.resources = std::move(res);
  t.labels = std::move(labels);
  t.min_workers = min;
  t.max_workers = max;
  return t;
}

autoscaling_config config_with(std::vector<node_type_config> types,
                               int32_t max_workers = 100,
                               double speed = 1.0) {
  autoscaling_config c;
  c.max_workers = max_workers;
  c.upscaling_speed = speed;
  c.idle_timeout = seconds{60};
  c.head_node_type = "head";
  c.node_types["head"] = type("head", {{"CPU", 0}}, 0, 0);
  for (auto& t : types)
    c.node_types[t.name] = t;
  return c;
}

node_view head_node(duration idle = duration{0}) {
  node_view n;
  n.id = "head";
  n.type = "head";
  n.is_head = true;
  n.idle_for = idle;
  return n;
}

node_view worker(const std::string& id, const std::string& type, resource_map total,
                 duration idle = duration{0}, node_state state = node_state::running) {
  node_view n;
  n.id = id;
  n.type = type;
  n.state = state;
  n.total = total;
  n.available = total;
  n.idle_for = idle;
  return n;
}

demand want(resource_map shape, int64_t count, label_map selector = {},
            demand_kind kind = demand_kind::task) {
  demand d;
  d.shape = std::move(shape);
  d.count = count;
  d.selector = std::move(selector);
  d.kind = kind;
  return d;
}

bool terminated(const decision& d, const std::string& id) {
  for (auto& t : d.terminations)
    if (t.node_id == id)
      return true;
  return false;
}

const kept_node* kept(const decision& d, const std::string& id) {
  for (auto& k : d.kept)
    if (k.node_id == id)
      return &k;
  return nullptr;
}

int64_t units_with(const decision& d, wait_reason r) {
  int64_t n = 0;
  for (auto& st : d.demands)
    for (auto& p : st.parts)
      if (p.reason == r)
        n += p.units;
  return n;
}

} // namespace

// -- overshoot and the launch budget -------------------------------------------

BOOST_AUTO_TEST_CASE(overshoot_launches_only_the_nodes_the_demand_fills) {
  // 1,000 one-CPU tasks and a two-CPU type: ceil(1000 / 2) nodes at most,
  // then capped by max_workers and by upscaling_speed's budget.
  struct row {
    const char* name;
    double speed;
    int32_t cluster_max;
    int32_t type_max;
    int32_t busy_workers; // running, no room left
    int32_t expect;
    wait_reason rest;
  };
  std::vector<row> rows = {
    {"unbounded", 1.0, 5000, 5000, 1000, 500, wait_reason::launching},
    {"speed from nothing", 1.0, 5000, 5000, 0, 5, wait_reason::throttled},
    {"speed 2 × 10 workers", 2.0, 5000, 5000, 10, 20, wait_reason::throttled},
    {"type max", 1.0, 5000, 40, 0 + 1000, 40, wait_reason::type_max_workers},
    {"cluster max", 1.0, 1030, 5000, 1000, 30, wait_reason::cluster_max_workers},
  };
  for (auto& r : rows) {
    BOOST_TEST_CONTEXT(r.name) {
      auto c = config_with({type("cpu2", {{"CPU", 2}}, 0, r.type_max),
                            type("busy", {{"other", 1}}, 0, 0)},
                           r.cluster_max, r.speed);
      snapshot s;
      s.nodes.push_back(head_node());
      for (int i = 0; i < r.busy_workers; ++i) {
        auto n = worker("b" + std::to_string(i), "busy", {{"other", 1}});
        n.available = {{"other", 0}};
        n.has_running_work = true;
        s.nodes.push_back(n);
      }
      s.demands.push_back(want({{"CPU", 1}}, 1000));
      auto d = decide(s, c);
      BOOST_TEST(d.launches_of("cpu2") == r.expect);
      BOOST_TEST(d.launches_of("busy") == 0);
      BOOST_TEST(units_with(d, wait_reason::launching) == 2 * r.expect);
      if (r.rest != wait_reason::launching) {
        BOOST_TEST(units_with(d, r.rest) == 1000 - 2 * r.expect);
        BOOST_TEST_MESSAGE(r.name << ": " << d.demands[0].reason);
      }
    }
  }
}

BOOST_AUTO_TEST_CASE(throttled_demand_says_why) {
  auto c = config_with({type("cpu2", {{"CPU", 2}}, 0, 100)});
  snapshot s;
  s.demands.push_back(want({{"CPU", 2}}, 8));
  auto d = decide(s, c);
  BOOST_TEST(d.launch_budget == 5);
  BOOST_TEST(d.launches_of("cpu2") == 5);
  BOOST_TEST(d.demands[0].reason.find("5 launching 5 of type cpu2") != std::string::npos,
             d.demands[0].reason);
  BOOST_TEST(d.demands[0].reason.find("3 throttled: upscaling_speed 1 allows 5")
               != std::string::npos,
             d.demands[0].reason);
}

// -- bin-packing onto what exists ----------------------------------------------

BOOST_AUTO_TEST_CASE(demand_goes_to_existing_and_pending_nodes_first) {
  auto c = config_with({type("cpu2", {{"CPU", 2}}, 0, 10)});
  snapshot s;
  s.nodes.push_back(head_node());
  auto busy = worker("w1", "cpu2", {{"CPU", 2}});
  busy.available = {{"CPU", 1}};
  busy.has_running_work = true;
  s.nodes.push_back(busy);
  s.nodes.push_back(worker("w2", "cpu2", {{"CPU", 2}}, duration{0}, node_state::pending));
  // One instance the provider started that has not registered yet.
  s.provider["cpu2"].instances = 3;
  s.demands.push_back(want({{"CPU", 1}}, 5));
  auto d = decide(s, c);
  BOOST_TEST(d.total_launches() == 0);
  BOOST_TEST(units_with(d, wait_reason::fits_existing) == 1);
  BOOST_TEST(units_with(d, wait_reason::fits_pending) == 4);
  // One more unit than all that: one launch, not one per unit.
  s.demands[0].count = 7;
  d = decide(s, c);
  BOOST_TEST(d.launches_of("cpu2") == 1);
  BOOST_TEST(units_with(d, wait_reason::launching) == 2);
}

BOOST_AUTO_TEST_CASE(flapping_demand_causes_no_launch_terminate_loop) {
  // Demand comes and goes within the idle timeout: one launch, no
  // termination, and no second launch while the first node comes up.
  auto c = config_with({type("cpu2", {{"CPU", 2}}, 0, 10)});
  struct round {
    bool demand;
    bool node; // the launched node is in the snapshot
    node_state state;
    int idle_s;
    int expect_launch;
  };
  std::vector<round> rounds = {
    {true, false, node_state::running, 0, 1},  // launch
    {true, true, node_state::pending, 0, 0},   // coming up: fits pending
    {false, true, node_state::running, 10, 0}, // demand gone, idle 10 s
    {true, true, node_state::running, 0, 0},   // demand back: fits it
    {false, true, node_state::running, 30, 0},
    {true, true, node_state::running, 0, 0},
    {false, true, node_state::running, 59, 0},
  };
  for (size_t step = 0; step < rounds.size(); ++step) {
    auto& r = rounds[step];
    BOOST_TEST_CONTEXT("round " << step) {
      snapshot s;
      s.nodes.push_back(head_node());
      if (r.node)
        s.nodes.push_back(worker("w1", "cpu2", {{"CPU", 2}}, seconds{r.idle_s}, r.state));
      s.provider["cpu2"].instances = step == 0 ? 0 : 1;
      if (r.demand)
        s.demands.push_back(want({{"CPU", 1}}, 2));
      auto d = decide(s, c);
      BOOST_TEST(d.launches_of("cpu2") == r.expect_launch);
      BOOST_TEST(d.terminations.empty());
      if (r.node && !r.demand) {
        BOOST_REQUIRE(kept(d, "w1") != nullptr);
        BOOST_TEST(kept(d, "w1")->reason == keep_reason::idle_below_timeout);
      }
    }
  }
}

// -- scaling down ----------------------------------------------------------------

BOOST_AUTO_TEST_CASE(the_last_idle_worker_is_removed) {
  auto c = config_with({type("cpu2", {{"CPU", 2}}, 0, 10)});
  snapshot s;
  s.nodes.push_back(head_node(seconds{3600}));
  s.nodes.push_back(worker("w1", "cpu2", {{"CPU", 2}}, seconds{62}));
  auto d = decide(s, c);
  BOOST_REQUIRE(d.terminations.size() == 1);
  BOOST_TEST(d.terminations[0].node_id == "w1");
  BOOST_TEST(d.terminations[0].reason == "idle 62 s > 60 s");
  BOOST_TEST(d.total_launches() == 0);
  // A node of a type the config does not know is not the autoscaler's.
  s.nodes.push_back(worker("manual", "byhand", {{"CPU", 2}}, seconds{600}));
  d = decide(s, c);
  BOOST_TEST(terminated(d, "w1"));
  BOOST_TEST(!terminated(d, "manual"));
  BOOST_REQUIRE(kept(d, "manual") != nullptr);
  BOOST_TEST(kept(d, "manual")->reason == keep_reason::not_managed);
  // The head, idle for an hour, stays and says so.
  BOOST_REQUIRE(kept(d, "head") != nullptr);
  BOOST_TEST(kept(d, "head")->reason == keep_reason::head);
}

BOOST_AUTO_TEST_CASE(idle_nodes_that_must_stay_say_why) {
  auto c = config_with({type("cpu2", {{"CPU", 2}}, 1, 10)});
  struct row {
    const char* name;
    void (*set)(node_view&);
    keep_reason reason;
  };
  std::vector<row> rows = {
    {"running work", [](node_view& n) { n.has_running_work = true; },
     keep_reason::running_work},
    {"actors", [](node_view& n) { n.has_actors = true; }, keep_reason::holds_actors},
    {"objects", [](node_view& n) { n.holds_needed_objects = true; },
     keep_reason::holds_objects},
    {"drain refused", [](node_view& n) { n.drain_refused = true; },
     keep_reason::drain_refused},
  };
  for (auto& r : rows) {
    BOOST_TEST_CONTEXT(r.name) {
      snapshot s;
      s.nodes.push_back(head_node());
      s.nodes.push_back(worker("keep", "cpu2", {{"CPU", 2}}, seconds{600}));
      r.set(s.nodes.back());
      s.nodes.push_back(worker("min", "cpu2", {{"CPU", 2}}, seconds{300}));
      auto d = decide(s, c);
      BOOST_TEST(!terminated(d, "keep"));
      BOOST_REQUIRE(kept(d, "keep") != nullptr);
      BOOST_TEST(kept(d, "keep")->reason == r.reason);
      BOOST_TEST_MESSAGE(r.name << ": " << kept(d, "keep")->text);
      // min_workers 1: the blocked node counts, so the other one may go.
      BOOST_TEST(terminated(d, "min"));
    }
  }
}

BOOST_AUTO_TEST_CASE(min_workers_are_launched_and_kept) {
  auto c = config_with({type("cpu2", {{"CPU", 2}}, 3, 10)});
  snapshot s;
  s.nodes.push_back(head_node());
  auto d = decide(s, c);
  BOOST_TEST(d.launches_of("cpu2") == 3);
  BOOST_REQUIRE(d.launches.size() == 1);
  BOOST_TEST(d.launches[0].purposes[0].cause == launch_cause::min_workers);
  BOOST_TEST(d.launches[0].reason == "3 for min_workers 3 (has 0)");
  // Two up and idle for long, one pending: launch nothing, keep both.
  s.nodes.push_back(worker("w1", "cpu2", {{"CPU", 2}}, seconds{600}));
  s.nodes.push_back(worker("w2", "cpu2", {{"CPU", 2}}, seconds{600}));
  s.nodes.push_back(worker("w3", "cpu2", {{"CPU", 2}}, duration{0}, node_state::pending));
  d = decide(s, c);
  BOOST_TEST(d.total_launches() == 0);
  BOOST_TEST(d.terminations.empty());
  BOOST_REQUIRE(kept(d, "w1") != nullptr);
  BOOST_TEST(kept(d, "w1")->reason == keep_reason::min_workers);
  // Demand lands on the min_workers nodes being launched: no extra launch.
  snapshot fresh;
  fresh.demands.push_back(want({{"CPU", 1}}, 6));
  d = decide(fresh, c);
  BOOST_TEST(d.launches_of("cpu2") == 3);
  BOOST_TEST(units_with(d, wait_reason::launching) == 6);
  // More than the min_workers nodes hold: one part names all the nodes.
  fresh.demands[0].count = 10;
  d = decide(fresh, c);
  BOOST_TEST(d.launches_of("cpu2") == 5);
  BOOST_REQUIRE(d.demands[0].parts.size() == 1);
  BOOST_TEST(d.demands[0].reason == "10 {CPU: 1.0} tasks: 10 launching 5 of type cpu2");
}

BOOST_AUTO_TEST_CASE(no_scale_down_while_a_queue_waits_that_fits) {
  auto c = config_with({type("cpu2", {{"CPU", 2}}, 0, 10),
                        type("gpu", {{"CPU", 4}, {"GPU", 1}}, 0, 10)});
  snapshot s;
  s.nodes.push_back(head_node());
  s.nodes.push_back(worker("w1", "cpu2", {{"CPU", 2}}, seconds{120}));
  s.demands.push_back(want({{"CPU", 1}}, 1));
  auto d = decide(s, c);
  BOOST_TEST(d.terminations.empty());
  BOOST_TEST(d.total_launches() == 0);
  BOOST_REQUIRE(kept(d, "w1") != nullptr);
  BOOST_TEST(kept(d, "w1")->reason == keep_reason::demand_fits);
  // A queue the idle node cannot serve does not keep it.
  s.demands[0] = want({{"GPU", 1}}, 1);
  d = decide(s, c);
  BOOST_TEST(terminated(d, "w1"));
  BOOST_TEST(d.launches_of("gpu") == 1);
}

BOOST_AUTO_TEST_CASE(an_idle_node_of_a_type_being_launched_stays) {
  // The demand does not fit the idle node, but its type is launched this
  // round: terminating it would be half of a terminate/launch loop.
  auto c = config_with({type("cpu2", {{"CPU", 2}}, 0, 10)});
  snapshot s;
  s.nodes.push_back(worker("w1", "cpu2", {{"CPU", 2}}, seconds{120}));
  s.nodes.back().available = {{"CPU", 0}}; // idle, but its room is reserved
  s.demands.push_back(want({{"CPU", 1}}, 1));
  auto d = decide(s, c);
  BOOST_TEST(d.launches_of("cpu2") == 1);
  BOOST_TEST(!terminated(d, "w1"));
  BOOST_REQUIRE(kept(d, "w1") != nullptr);
  BOOST_TEST(kept(d, "w1")->reason == keep_reason::type_launching);
}

BOOST_AUTO_TEST_CASE(a_lowered_max_workers_removes_idle_nodes_not_busy_ones) {
  auto c = config_with({type("cpu2", {{"CPU", 2}}, 0, 1)});
  snapshot s;
  s.nodes.push_back(worker("busy", "cpu2", {{"CPU", 2}}));
  s.nodes.back().has_running_work = true;
  s.nodes.push_back(worker("idle", "cpu2", {{"CPU", 2}}, seconds{5}));
  auto d = decide(s, c);
  BOOST_TEST(terminated(d, "idle"));
  BOOST_TEST(!terminated(d, "busy"));
  BOOST_TEST(d.terminations[0].cause == termination_cause::over_max_workers);
}

// -- what cannot be launched -------------------------------------------------------

BOOST_AUTO_TEST_CASE(infeasible_demand_never_launches_and_says_why) {
  auto c = config_with({type("cpu2", {{"CPU", 2}}, 0, 10, {{"zone", "a"}}),
                        type("cpu8", {{"CPU", 8}}, 0, 10, {{"zone", "a"}})});
  struct row {
    const char* name;
    demand d;
    std::vector<std::string> words;
  };
  std::vector<row> rows = {
    {"a GPU", want({{"CPU", 1}, {"GPU", 1}}, 3), {"GPU", "cpu2", "cpu8", "infeasible"}},
    {"too many CPUs", want({{"CPU", 16}}, 1), {"CPU: 8", "CPU: 14", "cpu2", "cpu8"}},
    {"a label", want({{"CPU", 1}}, 1, {{"zone", "b"}}), {"label zone=b", "cpu2", "cpu8"}},
  };
  for (auto& r : rows) {
    BOOST_TEST_CONTEXT(r.name) {
      snapshot s;
      s.nodes.push_back(head_node());
      s.demands.push_back(r.d);
      auto d = decide(s, c);
      BOOST_TEST(d.total_launches() == 0);
      BOOST_REQUIRE(d.demands[0].parts.size() == 1);
      auto& p = d.demands[0].parts[0];
      BOOST_TEST(p.reason == wait_reason::infeasible);
      BOOST_TEST(p.units == r.d.count);
      BOOST_TEST(p.checked.size() == 3); // head, cpu2, cpu8
      for (auto& w : r.words)
        BOOST_TEST(d.demands[0].reason.find(w) != std::string::npos,
                   w << " in " << d.demands[0].reason);
      BOOST_TEST_MESSAGE(d.demands[0].reason);
    }
  }
}

BOOST_AUTO_TEST_CASE(demand_only_an_existing_node_holds_waits_for_it) {
  // No type can hold it, but the (busy) head can: it waits, not infeasible.
  auto c = config_with({type("cpu2", {{"CPU", 2}}, 0, 10)});
  snapshot s;
  auto h = head_node();
  h.total = {{"CPU", 4}, {"special", 1}};
  h.available = {{"CPU", 0}};
  s.nodes.push_back(h);
  s.demands.push_back(want({{"special", 1}}, 1));
  auto d = decide(s, c);
  BOOST_TEST(d.total_launches() == 0);
  BOOST_TEST(d.demands[0].parts[0].reason == wait_reason::waits_for_busy);
}

BOOST_AUTO_TEST_CASE(max_workers_caps_and_says_so) {
  // Ten busy workers of another type make the launch budget large, so only
  // the caps bind.
  auto c = config_with({type("cpu2", {{"CPU", 2}}, 0, 3), type("cpu4", {{"CPU", 4}}, 0, 3),
                        type("other", {{"other", 1}}, 0, 10)},
                       14, 100.0);
  snapshot s;
  for (int i = 0; i < 10; ++i) {
    s.nodes.push_back(worker("o" + std::to_string(i), "other", {{"other", 1}}));
    s.nodes.back().has_running_work = true;
  }
  s.demands.push_back(want({{"CPU", 2}}, 20));
  auto d = decide(s, c);
  BOOST_TEST(d.total_launches() == 4); // the cluster's cap
  BOOST_TEST(d.launches_of("cpu4") == 3); // fits more per node at full use
  BOOST_TEST(d.launches_of("cpu2") == 1);
  BOOST_TEST(units_with(d, wait_reason::launching) == 7);
  BOOST_TEST(units_with(d, wait_reason::cluster_max_workers) == 13);
  // With room in the cluster, the type caps speak.
  c.max_workers = 100;
  d = decide(s, c);
  BOOST_TEST(d.total_launches() == 6);
  BOOST_TEST(d.launches_of("cpu4") == 3);
  BOOST_TEST(d.launches_of("cpu2") == 3);
  BOOST_TEST(units_with(d, wait_reason::type_max_workers) == 20 - 6 - 3);
}

BOOST_AUTO_TEST_CASE(a_provider_that_fails_every_launch_backs_off) {
  auto c = config_with({type("cpu2", {{"CPU", 2}}, 0, 10)});
  snapshot s;
  s.demands.push_back(want({{"CPU", 1}}, 2));
  // One round per second for ten minutes; every launch fails at once.
  std::vector<int> attempts;
  for (int t = 0; t < 600; ++t) {
    s.now = seconds{t};
    auto d = decide(s, c);
    if (d.total_launches() > 0) {
      attempts.push_back(t);
      s.provider["cpu2"].failures.push_back({seconds{t}, "quota exceeded"});
    } else {
      BOOST_REQUIRE(d.backoffs.size() == 1);
      BOOST_TEST(d.demands[0].parts[0].reason == wait_reason::backing_off);
    }
  }
  // 5 s doubling to 5 min: 0, 5, 15, 35, 75, 155, 315 (then 615).
  BOOST_TEST(attempts == (std::vector<int>{0, 5, 15, 35, 75, 155, 315}),
             boost::test_tools::per_element());
  s.now = seconds{320};
  s.provider["cpu2"].failures = {{seconds{300}, "timeout"}, {seconds{310}, "timeout"},
                                 {seconds{318}, "quota exceeded"}};
  auto d = decide(s, c);
  BOOST_REQUIRE(d.backoffs.size() == 1);
  BOOST_TEST(d.backoffs[0].failures == 3);
  BOOST_TEST(d.demands[0].reason.find("backing off after 3 failed launches (last: "
                                      "quota exceeded), retry in")
               != std::string::npos,
             d.demands[0].reason);
  // Another type that fits takes over while the first backs off.
  c.node_types["cpu4"] = type("cpu4", {{"CPU", 4}}, 0, 10);
  d = decide(s, c);
  BOOST_TEST(d.launches_of("cpu4") == 1);
  BOOST_TEST(d.launches_of("cpu2") == 0);
}

// -- requests, labels, scoring ---------------------------------------------------

BOOST_AUTO_TEST_CASE(explicit_requests_are_held_at_once) {
  auto c = config_with({type("cpu2", {{"CPU", 2}}, 0, 10)}, 100, 100.0);
  snapshot s;
  auto busy = worker("w1", "cpu2", {{"CPU", 2}});
  busy.available = {{"CPU", 0}};
  busy.has_running_work = true;
  s.nodes.push_back(busy);
  // Four two-CPU bundles: the busy node's total holds one.
  s.requests.assign(4, {{"CPU", 2}});
  auto d = decide(s, c);
  BOOST_TEST(d.launches_of("cpu2") == 3);
  BOOST_TEST(d.launches[0].purposes[0].cause == launch_cause::request);
  BOOST_TEST(d.launches[0].purposes[0].units == 3);
  // Demand rides on the nodes launched for the request: nothing extra.
  s.demands.push_back(want({{"CPU", 1}}, 6));
  d = decide(s, c);
  BOOST_TEST(d.launches_of("cpu2") == 3);
  BOOST_TEST(units_with(d, wait_reason::launching) == 6);
  BOOST_TEST(d.unmet_requests.empty());
  // A bundle no type can hold is reported, and launches nothing.
  {
    auto t = s;
    t.requests.push_back({{"GPU", 1}});
    auto e = decide(t, c);
    BOOST_TEST(e.launches_of("cpu2") == 3);
    BOOST_REQUIRE(e.unmet_requests.size() == 1);
    BOOST_TEST(e.unmet_requests[0].reason == wait_reason::infeasible);
    BOOST_TEST(e.unmet_requests[0].text.rfind("request {GPU: 1.0} × 1: infeasible", 0) == 0,
               e.unmet_requests[0].text);
  }
  // An idle node a request counts on is not terminated (no
  // terminate-then-relaunch loop).
  s.nodes[0].has_running_work = false;
  s.nodes[0].available = {{"CPU", 2}};
  s.nodes[0].idle_for = seconds{600};
  s.demands.clear();
  d = decide(s, c);
  BOOST_TEST(!terminated(d, "w1"));
  BOOST_REQUIRE(kept(d, "w1") != nullptr);
  BOOST_TEST(kept(d, "w1")->reason == keep_reason::requested);
  // Satisfied requests launch nothing.
  s.nodes.push_back(worker("w2", "cpu2", {{"CPU", 2}}, duration{0}, node_state::pending));
  s.provider["cpu2"].instances = 5;
  s.demands.clear();
  d = decide(s, c);
  BOOST_TEST(d.total_launches() == 0);
}

BOOST_AUTO_TEST_CASE(label_selectors_pick_the_type) {
  auto c = config_with({type("a", {{"CPU", 2}}, 0, 10, {{"zone", "a"}}),
                        type("b", {{"CPU", 2}}, 0, 10, {{"zone", "b"}})});
  snapshot s;
  auto idle_a = worker("wa", "a", {{"CPU", 2}}, seconds{5});
  idle_a.labels = {{"zone", "a"}};
  s.nodes.push_back(idle_a);
  s.demands.push_back(want({{"CPU", 1}}, 4, {{"zone", "b"}}));
  s.demands.push_back(want({{"CPU", 1}}, 1, {{"zone", "a"}}));
  auto d = decide(s, c);
  BOOST_TEST(d.launches_of("b") == 2);
  BOOST_TEST(d.launches_of("a") == 0);
  BOOST_TEST(d.demands[1].parts[0].reason == wait_reason::fits_existing);
}

BOOST_AUTO_TEST_CASE(scoring_prefers_least_waste_then_most_demand) {
  auto c = config_with({type("cpu2", {{"CPU", 2}}, 0, 100),
                        type("cpu8", {{"CPU", 8}}, 0, 100),
                        type("gpu", {{"CPU", 8}, {"GPU", 1}}, 0, 100)},
                       100, 100.0);
  struct row {
    const char* name;
    std::vector<demand> demands;
    std::map<std::string, int32_t> expect;
  };
  std::vector<row> rows = {
    {"one small task: the small type", {want({{"CPU", 1}}, 1)}, {{"cpu2", 1}}},
    {"sixteen: the big type, full", {want({{"CPU", 1}}, 16)}, {{"cpu8", 2}}},
    {"ten: a big one then a small one", {want({{"CPU", 1}}, 10)}, {{"cpu8", 1}, {"cpu2", 1}}},
    {"CPU work never takes the GPU type", {want({{"CPU", 8}}, 1)}, {{"cpu8", 1}}},
    {"GPU work fills the GPU node with CPU work",
     {want({{"CPU", 1}, {"GPU", 1}}, 1), want({{"CPU", 1}}, 7)},
     {{"gpu", 1}}},
  };
  for (auto& r : rows) {
    BOOST_TEST_CONTEXT(r.name) {
      snapshot s;
      s.demands = r.demands;
      auto d = decide(s, c);
      std::map<std::string, int32_t> got;
      for (auto& l : d.launches)
        got[l.type] = l.count;
      BOOST_TEST((got == r.expect));
      for (auto& l : d.launches)
        BOOST_TEST_MESSAGE(r.name << ": " << l.count << " " << l.type << " for "
                                  << l.reason);
    }
  }
}

BOOST_AUTO_TEST_CASE(equal_inputs_give_equal_decisions) {
  auto c = config_with({type("cpu2", {{"CPU", 2}}, 1, 10), type("cpu4", {{"CPU", 4}}, 0, 10)});
  snapshot s;
  s.nodes.push_back(worker("x", "cpu2", {{"CPU", 2}}, seconds{100}));
  s.nodes.push_back(worker("y", "cpu2", {{"CPU", 2}}, seconds{100}));
  s.nodes.push_back(worker("z", "cpu4", {{"CPU", 4}}, seconds{100}));
  s.demands.push_back(want({{"CPU", 3}}, 3));
  auto a = decide(s, c);
  auto b = decide(s, c);
  BOOST_TEST(a.terminations.size() == b.terminations.size());
  for (size_t i = 0; i < a.terminations.size(); ++i)
    BOOST_TEST(a.terminations[i].node_id == b.terminations[i].node_id);
  // Ties in idle time break by id: x goes, y stays for min_workers.
  BOOST_TEST(terminated(a, "x"));
  BOOST_TEST(!terminated(a, "y"));
  BOOST_TEST(a.launches_of("cpu4") == b.launches_of("cpu4"));
  BOOST_TEST(a.demands[0].reason == b.demands[0].reason);
}

// -- scale ------------------------------------------------------------------------

BOOST_AUTO_TEST_CASE(decision_time_at_1000_nodes_and_10000_pending_shapes) {
  for (bool distinct : {false, true}) {
    auto [s, c] = scenarios::big_round(distinct); // also `rayd-bench autoscale-policy`
    double best_ms = 1e9;
    decision d;
    for (int rep = 0; rep < 3; ++rep) {
      auto t0 = std::chrono::steady_clock::now();
      d = decide(s, c);
      auto t1 = std::chrono::steady_clock::now();
      best_ms = std::min(best_ms, std::chrono::duration<double, std::milli>(t1 - t0).count());
    }
    BOOST_TEST_MESSAGE("decide(): 1000 nodes, 10000 pending entries ("
                       << (distinct ? "10000 distinct shapes" : "7 shapes x 3 selectors")
                       << "): " << best_ms << " ms (best of 3); launches "
                       << d.total_launches() << ", terminations " << d.terminations.size()
                       << ", infeasible units " << units_with(d, wait_reason::infeasible));
    BOOST_TEST(d.demands.size() == 10000u);
    BOOST_TEST(d.total_launches() > 0);
    BOOST_TEST(units_with(d, wait_reason::infeasible) > 0); // the 32-CPU shape
    // The target is 50 ms (measured ~10 ms with 7 shapes, ~45-60 ms with
    // 10,000 distinct ones on a loaded 2-core machine); the bound here is
    // generous so a busy CI machine does not fail it, yet catches a
    // quadratic regression (an unpruned scan took ~900 ms).
    BOOST_TEST(best_ms < (distinct ? 400.0 : 200.0));
  }
}

BOOST_AUTO_TEST_CASE(one_round_launches_1000_pending_workers) {
  auto [s, c] = scenarios::thousand_launches();
  auto t0 = std::chrono::steady_clock::now();
  auto d = decide(s, c);
  auto ms = std::chrono::duration<double, std::milli>(std::chrono::steady_clock::now() - t0)
              .count();
  BOOST_TEST_MESSAGE("decide(): 1000 launches in one round: " << ms << " ms");
  BOOST_TEST(d.launch_budget == 1000);
  BOOST_TEST(d.launches_of("cpu2") == 1000);
  BOOST_TEST(units_with(d, wait_reason::launching) == 2000);
  BOOST_TEST(units_with(d, wait_reason::throttled) == 2000);
  BOOST_TEST(ms < 500.0);
}

BOOST_AUTO_TEST_CASE(draining_nodes_take_no_demand_but_count_against_max) {
  auto c = config_with({type("cpu2", {{"CPU", 2}}, 0, 2)});
  snapshot s;
  s.nodes.push_back(worker("d1", "cpu2", {{"CPU", 2}}, seconds{100}, node_state::draining));
  s.demands.push_back(want({{"CPU", 2}}, 2, {}, demand_kind::actor));
  s.demands.push_back(want({{"CPU", 1}}, 1, {}, demand_kind::job));
  auto d = decide(s, c);
  // The draining node holds nothing and is not terminated twice; it still
  // counts, so only one more node of the type may start.
  BOOST_TEST(d.launches_of("cpu2") == 1);
  BOOST_TEST(d.terminations.empty());
  BOOST_TEST(units_with(d, wait_reason::fits_existing) == 0);
  BOOST_TEST(units_with(d, wait_reason::type_max_workers) == 2);
  BOOST_TEST(d.demands[0].reason.rfind("2 {CPU: 2.0} actors: ", 0) == 0, d.demands[0].reason);
  BOOST_TEST(d.demands[1].reason.rfind("1 {CPU: 1.0} job entrypoint: ", 0) == 0,
             d.demands[1].reason);
  BOOST_TEST_MESSAGE(d.demands[0].reason);
  BOOST_TEST_MESSAGE(d.demands[1].reason);
}
