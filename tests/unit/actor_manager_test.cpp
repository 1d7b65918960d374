// The actor manager (head) in one process: the real node actor, fake node
// managers that host, refuse or throw as told, and the in-memory store.
// Covers placement (the pure function), hosting, constructor failures,
// node deaths and process exits with restarts, job_gone, kills, waits,
// recovery from the store, and 10,000 creates.

#define BOOST_TEST_MODULE actor_manager
#include <boost/test/unit_test.hpp>

#include <chrono>
#include <iostream>
#include <mutex>
#include <set>
#include <thread>

#include <caf/all.hpp>

#include "actors/gcs/actor_placement.hpp"
#include "actors/gcs/spawn.hpp"
#include "common/error.hpp"
#include "persistence/test_store.hpp"
#include "tests/support/actor_config.hpp"

using namespace rayd;
using namespace std::chrono_literals;
using gcs::actor_node_slot;

// -- placement (pure) ----------------------------------------------------------

BOOST_AUTO_TEST_CASE(placement_picks_the_fitting_node_with_fewest_actors) {
  std::vector<actor_node_slot> nodes{
    {"n1", true, {{"zone", "a"}}, {{"CPU", 4}}, {{"CPU", 2}}, {}, 3},
    {"n2", true, {{"zone", "b"}}, {{"CPU", 4}}, {{"CPU", 1}}, {}, 1},
    {"n3", true, {{"zone", "b"}}, {{"CPU", 2}}, {{"CPU", 2}}, {}, 1},
    {"n0", false, {{"zone", "b"}}, {{"CPU", 8}}, {{"CPU", 8}}, {}, 0},
  };
  // Empty shape: fits everywhere alive; fewest actors, ties by node id.
  BOOST_CHECK_EQUAL(*gcs::place_actor({}, {}, nodes), "n2");
  // Labels narrow it down.
  BOOST_CHECK_EQUAL(*gcs::place_actor({}, {{"zone", "a"}}, nodes), "n1");
  // Available minus reserved must hold the shape: n2 has 1 CPU free.
  BOOST_CHECK_EQUAL(*gcs::place_actor({{"CPU", 2}}, {}, nodes), "n3");
  nodes[2].reserved = {{"CPU", 1.5}};
  BOOST_CHECK_EQUAL(*gcs::place_actor({{"CPU", 2}}, {}, nodes), "n1");
  // Nothing fits: nullopt, with the reason.
  BOOST_CHECK(!gcs::place_actor({{"CPU", 16}}, {}, nodes));
  BOOST_CHECK_EQUAL(gcs::why_unplaced({{"CPU", 16}}, {}, nodes),
                    "no alive node could ever hold " + describe_shape({{"CPU", 16}}));
  BOOST_CHECK(!gcs::place_actor({}, {{"zone", "c"}}, nodes));
  BOOST_CHECK_EQUAL(gcs::why_unplaced({}, {{"zone", "c"}}, nodes),
                    "no alive node has labels {zone: c}");
  BOOST_CHECK(!gcs::place_actor({{"CPU", 4}}, {}, nodes));
  BOOST_CHECK_NE(gcs::why_unplaced({{"CPU", 4}}, {}, nodes).find("free now"),
                 std::string::npos);
  for (auto& n : nodes)
    n.alive = false;
  BOOST_CHECK(!gcs::place_actor({}, {}, nodes));
  BOOST_CHECK_EQUAL(gcs::why_unplaced({}, {}, nodes), "no alive node");
}

// -- the manager ---------------------------------------------------------------

namespace {

/// What the fake node managers do and saw (shared with the test thread).
struct node_script {
  std::mutex m;
  std::map<std::string, int> hosted;   // actor id → times asked to host
  std::vector<std::string> unhosted;
  int32_t next_pid = 1000;
  /// Replies held back for class "Slow" until the node gets `tick`.
  std::vector<caf::typed_response_promise<actor_hosted>> held;

  int hosts(const std::string& id) {
    std::lock_guard<std::mutex> g{m};
    return hosted.count(id) ? hosted[id] : 0;
  }
  bool was_unhosted(const std::string& id) {
    std::lock_guard<std::mutex> g{m};
    return std::find(unhosted.begin(), unhosted.end(), id) != unhosted.end();
  }
};

struct fixture {
  caf::actor_system_config cfg;
  caf::actor_system sys{test::quiet_config(cfg)};
  persistence::test_store db;
  gcs_node_actor nodes;
  actor_manager_actor am;
  std::shared_ptr<node_script> script = std::make_shared<node_script>();
  std::vector<caf::actor> spawned;

  fixture() {
    gcs::node_actor_config ncfg;
    ncfg.db = &db;
    ncfg.cluster_id = "cluster-1";
    ncfg.epoch = 1;
    nodes = *gcs::spawn_node_actor(sys, ncfg);
    am = spawn_manager();
  }

  /// The actors use the store: they are gone before it is.
  ~fixture() {
    caf::scoped_actor self{sys};
    for (auto& a : spawned)
      self->send_exit(a, caf::exit_reason::user_shutdown);
    self->send_exit(am, caf::exit_reason::user_shutdown);
    self->send_exit(nodes, caf::exit_reason::user_shutdown);
    self->wait_for(am, nodes);
    for (auto& a : spawned)
      self->wait_for(a);
  }

  actor_manager_actor spawn_manager(const std::string& head_node_id = "") {
    gcs::actor_manager_config acfg;
    acfg.head_node_id = head_node_id;
    acfg.db = &db;
    acfg.nodes = nodes;
    acfg.tick_interval = 50ms;
    acfg.host_timeout = 5s;
    auto m = gcs::spawn_actor_manager(sys, acfg);
    BOOST_REQUIRE(m);
    return *m;
  }

  /// The fake node manager's interface: a node manager plus `tick`, which
  /// releases the held "Slow" replies (ok).
  using fake_nm_actor = node_manager_actor::extend<caf::reacts_to<atoms::tick>>;
  std::map<std::string, fake_nm_actor> fakes;

  /// A node manager that hosts by class name: "Throws" → the constructor
  /// throws, "Refused" → an error, "Slow" → ok once released, anything
  /// else → ok in a new pid.
  node_manager_actor fake_node_manager(const std::string& node_id = "") {
    auto s = script;
    fake_nm_actor nm = sys.spawn([s](fake_nm_actor::pointer self) -> fake_nm_actor::behavior_type {
      return {
        [s](atoms::tick) {
          std::vector<caf::typed_response_promise<actor_hosted>> held;
          {
            std::lock_guard<std::mutex> g{s->m};
            held.swap(s->held);
          }
          for (auto& rp : held) {
            actor_hosted h;
            h.ok = true;
            h.pid = 777;
            rp.deliver(h);
          }
        },
        [](atoms::ping) { return std::string{"fake"}; },
        [](atoms::start, std::string&) {},
        [](atoms::connect) {},
        [](atoms::give_up) {},
        [](atoms::leave) { return true; },
        [](atoms::job_start, job_launch&) { return false; },
        [](atoms::job_stop, std::string&, int64_t) { return false; },
        [s, self](atoms::actor_host, actor_launch& l) -> caf::result<actor_hosted> {
          std::lock_guard<std::mutex> g{s->m};
          s->hosted[l.actor_id]++;
          if (l.class_name == "Slow") {
            auto rp = self->make_response_promise<actor_hosted>();
            s->held.push_back(rp);
            return rp;
          }
          if (l.class_name == "Refused")
            return make_error(errc::unavailable, "no worker process");
          actor_hosted h;
          if (l.class_name == "Throws") {
            h.constructor_failed = true;
            h.error_type = "std::runtime_error";
            h.error_message = "boom";
            return h;
          }
          h.ok = true;
          h.pid = s->next_pid++;
          return h;
        },
        [s](atoms::actor_unhost, std::string& id) {
          std::lock_guard<std::mutex> g{s->m};
          s->unhosted.push_back(id);
          return true;
        },
        [](atoms::drain, bool) { return false; },
        [](atoms::report) {},
      };
    });
    spawned.push_back(caf::actor_cast<caf::actor>(nm));
    if (!node_id.empty())
      fakes[node_id] = nm;
    return node_manager_actor{nm};
  }

  node_manager_actor join(const std::string& id, label_map labels = {}) {
    auto nm = fake_node_manager(id);
    join_request r;
    r.node.node_id = id;
    r.node.name = "name-" + id;
    r.node.address = "127.0.0.1:" + std::to_string(7000 + id.back());
    r.node.resources_total = {{"CPU", 2}};
    r.node.resources_available = {{"CPU", 2}};
    r.node.labels = std::move(labels);
    caf::scoped_actor self{sys};
    self->request(nodes, caf::infinite, atoms::join::value, r, nm)
      .receive([](join_reply&) {}, [](caf::error& e) { BOOST_FAIL(describe(e)); });
    return nm;
  }

  std::vector<actor_info> create(std::vector<actor_create_request> reqs) {
    caf::scoped_actor self{sys};
    std::vector<actor_info> out;
    self->request(am, caf::infinite, atoms::actor_create::value, std::move(reqs))
      .receive([&](std::vector<actor_info>& r) { out = std::move(r); },
               [](caf::error& e) { BOOST_FAIL(describe(e)); });
    return out;
  }

  actor_info wait_one(const std::string& id, uint32_t ms = 5000) {
    caf::scoped_actor self{sys};
    actor_info out;
    self->request(am, caf::infinite, atoms::actor_wait::value, std::vector<std::string>{id}, ms)
      .receive([&](std::vector<actor_info>& r) { out = r.at(0); },
               [](caf::error& e) { BOOST_FAIL(describe(e)); });
    return out;
  }

  /// Polls the row until `pred` holds (5 s).
  actor_info until(const std::string& id, std::function<bool(const actor_info&)> pred) {
    auto deadline = std::chrono::steady_clock::now() + 5s;
    actor_info a;
    while (std::chrono::steady_clock::now() < deadline) {
      a = wait_one(id, 100);
      if (pred(a))
        return a;
    }
    BOOST_FAIL("condition not reached; actor " + id + " is " + a.state + " on " + a.node_id
               + " (" + a.death_cause + ")");
    return a;
  }

  bool wait_until_hosts(const std::string& id, int n) {
    auto deadline = std::chrono::steady_clock::now() + 5s;
    while (std::chrono::steady_clock::now() < deadline) {
      if (script->hosts(id) >= n)
        return true;
      std::this_thread::sleep_for(10ms);
    }
    return false;
  }

  bool wait_until_unhosted(const std::string& id) {
    auto deadline = std::chrono::steady_clock::now() + 5s;
    while (std::chrono::steady_clock::now() < deadline) {
      if (script->was_unhosted(id))
        return true;
      std::this_thread::sleep_for(10ms);
    }
    return false;
  }

  template <class... Ts>
  void send(Ts&&... xs) {
    caf::anon_send(am, std::forward<Ts>(xs)...);
  }

  actor_info kill(const std::string& id, bool no_restart) {
    caf::scoped_actor self{sys};
    actor_info out;
    self->request(am, caf::infinite, atoms::actor_kill::value, id, std::string{}, no_restart,
                  std::string{"test"})
      .receive([&](actor_info& r) { out = r; }, [](caf::error& e) { BOOST_FAIL(describe(e)); });
    return out;
  }
};

actor_create_request req(const std::string& id, const std::string& cls = "Counter",
                         int max_restarts = 0) {
  actor_create_request r;
  r.actor_id = id;
  r.class_name = cls;
  r.owner_job = "job-1";
  r.max_restarts = max_restarts;
  r.args = {"\x01"};
  r.code = {{"hash-1", "driver"}};
  return r;
}

} // namespace

BOOST_FIXTURE_TEST_CASE(hosted_actor_is_alive_with_its_nodes_address, fixture) {
  join("node-1");
  auto created = create({req("a1")});
  BOOST_REQUIRE_EQUAL(created.size(), 1u);
  BOOST_CHECK_EQUAL(created[0].state, "PENDING_CREATION");
  auto a = wait_one("a1");
  BOOST_CHECK_EQUAL(a.state, "ALIVE");
  BOOST_CHECK_EQUAL(a.node_id, "node-1");
  BOOST_CHECK_EQUAL(a.address, "127.0.0.1:7049"); // '1' is 49
  BOOST_CHECK_GE(a.pid, 1000);
  BOOST_CHECK_EQUAL(script->hosts("a1"), 1);
}

BOOST_FIXTURE_TEST_CASE(no_node_fits_then_one_joins, fixture) {
  auto r = req("a1");
  r.label_selector = {{"gpu", "yes"}};
  create({r});
  join("node-1");
  BOOST_CHECK_EQUAL(wait_one("a1", 300).state, "PENDING_CREATION");
  join("node-2", {{"gpu", "yes"}});
  auto a = until("a1", [](auto& a) { return a.state == "ALIVE"; });
  BOOST_CHECK_EQUAL(a.node_id, "node-2");
}

BOOST_FIXTURE_TEST_CASE(a_throwing_constructor_is_dead_and_not_retried, fixture) {
  join("node-1");
  create({req("a1", "Throws", 5)});
  auto a = wait_one("a1");
  BOOST_CHECK_EQUAL(a.state, "DEAD");
  BOOST_CHECK_EQUAL(a.death_cause, "constructor threw std::runtime_error: boom");
  BOOST_CHECK_EQUAL(script->hosts("a1"), 1);
}

BOOST_FIXTURE_TEST_CASE(a_refusing_node_is_asked_again_later, fixture) {
  join("node-1");
  create({req("a1", "Refused")});
  BOOST_REQUIRE(wait_until_hosts("a1", 2));
  BOOST_CHECK_EQUAL(wait_one("a1", 0).state, "PENDING_CREATION");
}

BOOST_FIXTURE_TEST_CASE(node_death_restarts_elsewhere_then_exhausts, fixture) {
  auto nm1 = join("node-1");
  create({req("a1", "Counter", 1)});
  auto a = wait_one("a1");
  BOOST_REQUIRE_EQUAL(a.state, "ALIVE");
  auto nm2 = join("node-2");
  caf::anon_send_exit(nm1, caf::exit_reason::kill);
  a = until("a1", [](auto& a) { return a.state == "ALIVE" && a.node_id == "node-2"; });
  BOOST_CHECK_EQUAL(a.restarts, 1);
  BOOST_CHECK_NE(a.death_cause.find("node name-node-1 (node-1) died"), std::string::npos);
  caf::anon_send_exit(nm2, caf::exit_reason::kill);
  a = until("a1", [](auto& a) { return a.state == "DEAD"; });
  BOOST_CHECK_NE(a.death_cause.find("restarts exhausted (1)"), std::string::npos);
  BOOST_CHECK_NE(a.death_cause.find("node-2"), std::string::npos);
}

BOOST_FIXTURE_TEST_CASE(process_exits_count_only_for_the_current_incarnation, fixture) {
  join("node-1");
  create({req("a1", "Counter", 1)});
  auto a = wait_one("a1");
  BOOST_REQUIRE_EQUAL(a.state, "ALIVE");
  // A wrong pid or node: ignored.
  send(atoms::actor_exited::value, std::string{"a1"}, std::string{"node-1"}, a.pid + 1,
       std::string{"stale"});
  send(atoms::actor_exited::value, std::string{"a1"}, std::string{"node-9"}, a.pid,
       std::string{"stale"});
  BOOST_CHECK_EQUAL(wait_one("a1", 0).pid, a.pid);
  send(atoms::actor_exited::value, std::string{"a1"}, std::string{"node-1"}, a.pid,
       std::string{"process killed by signal 9"});
  auto b = until("a1", [&a](auto& b) { return b.state == "ALIVE" && b.pid != a.pid; });
  BOOST_CHECK_EQUAL(b.restarts, 1);
  BOOST_CHECK_EQUAL(b.death_cause, "process killed by signal 9");
  send(atoms::actor_exited::value, std::string{"a1"}, std::string{"node-1"}, b.pid,
       std::string{"segfault"});
  auto c = until("a1", [](auto& c) { return c.state == "DEAD"; });
  BOOST_CHECK_EQUAL(c.death_cause, "restarts exhausted (1): segfault");
}

BOOST_FIXTURE_TEST_CASE(job_gone_kills_non_detached_actors_and_unhosts_them, fixture) {
  join("node-1");
  auto detached = req("a2");
  detached.detached = true;
  auto other = req("a3");
  other.owner_job = "job-2";
  create({req("a1", "Counter", 3), detached, other});
  for (auto id : {"a1", "a2", "a3"})
    BOOST_REQUIRE_EQUAL(wait_one(id).state, "ALIVE");
  send(atoms::job_gone::value, std::string{"job-1"});
  auto a = until("a1", [](auto& a) { return a.state == "DEAD"; });
  BOOST_CHECK_EQUAL(a.death_cause, "owner job job-1 ended");
  BOOST_CHECK_EQUAL(wait_one("a2", 0).state, "ALIVE");
  BOOST_CHECK_EQUAL(wait_one("a3", 0).state, "ALIVE");
  BOOST_CHECK(wait_until_unhosted("a1"));
  BOOST_CHECK(!script->was_unhosted("a2"));
}

BOOST_FIXTURE_TEST_CASE(kill_unhosts_and_restarts_or_not, fixture) {
  join("node-1");
  create({req("a1", "Counter", 1), req("a2", "Counter", 1)});
  BOOST_REQUIRE_EQUAL(wait_one("a1").state, "ALIVE");
  BOOST_REQUIRE_EQUAL(wait_one("a2").state, "ALIVE");
  auto k = kill("a1", true);
  BOOST_CHECK_EQUAL(k.state, "DEAD");
  BOOST_CHECK_EQUAL(k.death_cause, "killed by test");
  BOOST_CHECK(wait_until_unhosted("a1"));
  auto r = kill("a2", false);
  BOOST_CHECK_EQUAL(r.state, "RESTARTING");
  auto again = until("a2", [](auto& a) { return a.state == "ALIVE"; });
  BOOST_CHECK_EQUAL(again.restarts, 1);
  BOOST_CHECK_EQUAL(script->hosts("a2"), 2);
  // Unknown: not_found.
  caf::scoped_actor self{sys};
  self->request(am, caf::infinite, atoms::actor_kill::value, std::string{"nope"},
                std::string{}, true, std::string{"test"})
    .receive([](actor_info&) { BOOST_FAIL("killed an unknown actor"); },
             [](caf::error& e) { BOOST_CHECK(code_of(e) == errc::not_found); });
}

BOOST_FIXTURE_TEST_CASE(a_new_manager_recovers_rows_and_places_the_pending, fixture) {
  auto named = req("a1");
  named.name = "keeper";
  named.ray_namespace = "ns";
  create({named, req("a2", "Refused")});
  BOOST_REQUIRE_EQUAL(wait_one("a1", 0).state, "PENDING_CREATION"); // no node yet
  caf::anon_send_exit(am, caf::exit_reason::kill);
  am = spawn_manager();
  caf::scoped_actor self{sys};
  self->request(am, caf::infinite, atoms::actor_get::value, std::string{"keeper"},
                std::string{"ns"})
    .receive([](actor_info& a) { BOOST_CHECK_EQUAL(a.actor_id, "a1"); },
             [](caf::error& e) { BOOST_FAIL(describe(e)); });
  auto a2 = wait_one("a2", 0);
  BOOST_CHECK_EQUAL(a2.class_name, "Refused");
  join("node-1");
  BOOST_CHECK_EQUAL(until("a1", [](auto& a) { return a.state == "ALIVE"; }).node_id, "node-1");
}

BOOST_FIXTURE_TEST_CASE(ten_thousand_creates_become_alive, fixture) {
  join("node-1");
  join("node-2");
  auto t0 = std::chrono::steady_clock::now();
  std::vector<std::string> ids;
  caf::scoped_actor self{sys};
  constexpr int total = 10000, batch = 1000;
  int replies = 0;
  for (int b = 0; b < total / batch; ++b) {
    std::vector<actor_create_request> reqs;
    for (int i = 0; i < batch; ++i) {
      ids.push_back("x" + std::to_string(b * batch + i));
      reqs.push_back(req(ids.back()));
    }
    self->request(am, caf::infinite, atoms::actor_create::value, std::move(reqs))
      .receive([&replies](std::vector<actor_info>& r) { replies += static_cast<int>(r.size()); },
               [](caf::error& e) { BOOST_FAIL(describe(e)); });
  }
  auto created = std::chrono::steady_clock::now();
  std::vector<actor_info> rows;
  self->request(am, caf::infinite, atoms::actor_wait::value, ids, uint32_t{10000})
    .receive([&rows](std::vector<actor_info>& r) { rows = std::move(r); },
             [](caf::error& e) { BOOST_FAIL(describe(e)); });
  auto alive = std::chrono::steady_clock::now();
  std::map<std::string, int> per_node;
  for (auto& r : rows) {
    BOOST_REQUIRE_EQUAL(r.state, "ALIVE");
    per_node[r.node_id]++;
  }
  BOOST_CHECK_EQUAL(replies, total);
  // Least actors first spreads them evenly.
  BOOST_CHECK_EQUAL(per_node["node-1"], total / 2);
  BOOST_CHECK_EQUAL(per_node["node-2"], total / 2);
  auto ms = [](auto d) { return std::chrono::duration_cast<std::chrono::milliseconds>(d).count(); };
  std::cout << "10,000 actor creates: replies after " << ms(created - t0)
            << " ms, all ALIVE after " << ms(alive - t0) << " ms" << std::endl;
}

BOOST_FIXTURE_TEST_CASE(a_failed_commit_fails_the_batch_and_hosts_nothing, fixture) {
  join("node-1");
  db.fail_writes(1);
  caf::scoped_actor self{sys};
  caf::error got;
  self->request(am, caf::infinite, atoms::actor_create::value,
                std::vector<actor_create_request>{req("a1"), req("a2")})
    .receive([](std::vector<actor_info>&) { BOOST_FAIL("a batch replied without its commit"); },
             [&got](caf::error& e) { got = e; });
  BOOST_CHECK(got);
  // Nothing of it exists: a retry is a first create, and only it is hosted.
  BOOST_CHECK_EQUAL(wait_one("a1", 0).death_cause, "no such actor");
  auto again = create({req("a1")});
  BOOST_CHECK_EQUAL(again.at(0).error, "");
  BOOST_CHECK_EQUAL(wait_one("a1").state, "ALIVE");
  BOOST_CHECK_EQUAL(script->hosts("a1"), 1);
  BOOST_CHECK_EQUAL(script->hosts("a2"), 0);
}

BOOST_FIXTURE_TEST_CASE(killed_while_being_constructed_is_unhosted_when_it_answers, fixture) {
  join("node-1");
  create({req("a1", "Slow", 3), req("a2", "Slow", 3)});
  BOOST_REQUIRE(wait_until_hosts("a1", 1));
  BOOST_REQUIRE(wait_until_hosts("a2", 1));
  auto k = kill("a1", true); // while its constructor runs
  BOOST_CHECK_EQUAL(k.state, "DEAD");
  caf::anon_send(fakes["node-1"], atoms::tick::value); // both constructors return
  BOOST_CHECK(wait_until_unhosted("a1"));
  auto a2 = wait_one("a2");
  BOOST_CHECK_EQUAL(a2.state, "ALIVE");
  BOOST_CHECK_EQUAL(a2.pid, 777);
  BOOST_CHECK_EQUAL(wait_one("a1", 0).state, "DEAD");
  BOOST_CHECK(!script->was_unhosted("a2"));
}

BOOST_FIXTURE_TEST_CASE(killed_with_restart_while_being_constructed_is_hosted_again, fixture) {
  join("node-1");
  create({req("a1", "Slow", 3)});
  BOOST_REQUIRE(wait_until_hosts("a1", 1));
  BOOST_CHECK_EQUAL(kill("a1", false).state, "RESTARTING");
  caf::anon_send(fakes["node-1"], atoms::tick::value); // the old incarnation answers
  BOOST_CHECK(wait_until_unhosted("a1"));               // and is dropped
  BOOST_REQUIRE(wait_until_hosts("a1", 2));             // the new one is asked for
  caf::anon_send(fakes["node-1"], atoms::tick::value);
  auto a = until("a1", [](auto& a) { return a.state == "ALIVE"; });
  BOOST_CHECK_EQUAL(a.restarts, 1);
}

BOOST_FIXTURE_TEST_CASE(actors_alive_on_the_head_node_fail_over_when_it_restarts, fixture) {
  join("node-1"); // plays the head's node
  join("node-2", {{"role", "other"}});
  // a1 goes to node-1 (no actors anywhere: the lower id wins); a2 asks for
  // node-2's label, so it is placed there however late the manager hears of
  // node-2 (without it, a2 landed on node-1 whenever node-2's join had not
  // reached the manager yet).
  auto r2 = req("a2", "Counter", 1);
  r2.label_selector = {{"role", "other"}};
  create({req("a1", "Counter", 1), r2});
  auto a1 = wait_one("a1");
  auto a2 = wait_one("a2");
  BOOST_REQUIRE_EQUAL(a1.state, "ALIVE");
  BOOST_REQUIRE_EQUAL(a2.state, "ALIVE");
  auto on_head = a1.node_id == "node-1" ? a1 : a2;
  auto elsewhere = a1.node_id == "node-1" ? a2 : a1;
  BOOST_REQUIRE_NE(on_head.node_id, elsewhere.node_id);
  caf::anon_send_exit(am, caf::exit_reason::kill);
  am = spawn_manager("node-1");
  auto moved = until(on_head.actor_id,
                     [](auto& a) { return a.state == "ALIVE" && a.restarts == 1; });
  BOOST_CHECK_NE(moved.death_cause.find("the head node restarted"), std::string::npos);
  auto kept = wait_one(elsewhere.actor_id, 0);
  BOOST_CHECK_EQUAL(kept.restarts, 0);
  BOOST_CHECK_EQUAL(kept.pid, elsewhere.pid);
}
