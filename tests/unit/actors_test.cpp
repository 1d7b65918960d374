// The GCS actors in one process on the in-memory store: the gate's token
// check, join / wrong cluster, death on a node manager's exit with a
// subscriber notified, and the KV's group commit (a reply means durable).
#define BOOST_TEST_MODULE actors
#include <boost/test/unit_test.hpp>

#include <caf/all.hpp>
#include <caf/io/middleman.hpp>

#include "actors/gcs/spawn.hpp"
#include "actors/registry.hpp"
#include "common/error.hpp"
#include "tests/support/actor_config.hpp"

using namespace rayd;

namespace {

struct fixture {
  caf::actor_system_config cfg;
  caf::actor_system sys{test::quiet_config(cfg)};
  std::unique_ptr<persistence::store> db = persistence::make_memory_store();
  gcs_node_actor nodes;
  gcs_gate_actor gate;
  gcs_kv_actor kv;

  fixture() {
    gcs::node_actor_config ncfg;
    ncfg.db = db.get();
    ncfg.cluster_id = "cluster-1";
    ncfg.epoch = 7;
    ncfg.api_address = "127.0.0.1:1";
    nodes = *gcs::spawn_node_actor(sys, ncfg);
    kv = gcs::spawn_kv_actor(sys, *db);
    gcs::gate_targets to;
    to.nodes = nodes;
    gate = gcs::spawn_gate(sys, "tok", to);
  }

  ~fixture() {
    for (auto a : {caf::actor_cast<caf::actor>(nodes), caf::actor_cast<caf::actor>(gate),
                   caf::actor_cast<caf::actor>(kv)})
      caf::anon_send_exit(a, caf::exit_reason::user_shutdown);
  }

  node_manager_actor fake_node_manager() {
    return sys.spawn([]() -> node_manager_actor::behavior_type {
      return {
        [](atoms::ping) { return std::string{"fake"}; },
        [](atoms::start, std::string&) {},
        [](atoms::connect) {},
        [](atoms::give_up) {},
        [](atoms::leave) { return true; },
        [](atoms::job_start, job_launch&) { return false; },
        [](atoms::job_stop, std::string&, int64_t) { return false; },
        [](atoms::actor_host, actor_launch&) { return actor_hosted{}; },
        [](atoms::actor_unhost, std::string&) { return false; },
        [](atoms::drain, bool) { return false; },
        [](atoms::report) {},
      };
    });
  }

  join_request request(std::string token, std::string cluster = "") {
    join_request r;
    r.token = std::move(token);
    r.cluster_id = std::move(cluster);
    r.node.node_id = "node-a";
    r.node.name = "a";
    r.node.resources_total = {{"CPU", 2}};
    return r;
  }
};

} // namespace

BOOST_FIXTURE_TEST_CASE(gate_refuses_wrong_and_missing_tokens, fixture) {
  caf::scoped_actor self{sys};
  for (auto* token : {"wrong", ""}) {
    caf::error got;
    self->request(gate, caf::infinite, atoms::join::value, request(token),
                  fake_node_manager())
      .receive([](join_reply&) { BOOST_FAIL("join with a bad token succeeded"); },
               [&](caf::error& err) { got = err; });
    BOOST_CHECK(code_of(got) == errc::unauthenticated);
  }
  cluster_view view;
  self->request(nodes, caf::infinite, atoms::nodes::value)
    .receive([&](cluster_view& v) { view = v; }, [](caf::error&) {});
  BOOST_CHECK(view.nodes.empty());
}

BOOST_FIXTURE_TEST_CASE(join_then_death_is_published, fixture) {
  caf::scoped_actor self{sys};
  // A listener that forwards node events to the test.
  auto test = caf::actor{self};
  node_listener_actor listener
    = sys.spawn([test]() -> node_listener_actor::behavior_type {
        return {[test](atoms::node_event, node_info& n) {
          caf::anon_send(test, n);
        }};
      });
  self->send(nodes, atoms::subscribe::value, listener);
  auto nm = fake_node_manager();
  join_reply reply;
  self->request(gate, caf::infinite, atoms::join::value, request("tok"), nm)
    .receive([&](join_reply& r) { reply = r; },
             [](caf::error& e) { BOOST_FAIL(describe(e)); });
  BOOST_CHECK_EQUAL(reply.cluster_id, "cluster-1");
  BOOST_CHECK_EQUAL(reply.epoch, 7u);
  self->receive([](node_info& n) { BOOST_CHECK(n.get_state() == node_state::alive); });
  caf::anon_send_exit(nm, caf::exit_reason::kill);
  self->receive([](node_info& n) {
    BOOST_CHECK(n.get_state() == node_state::dead);
    BOOST_CHECK(!n.death_reason.empty());
  });
  // The death is in the store.
  auto row = db->get("nodes", "node-a");
  BOOST_REQUIRE(row && *row);
  BOOST_CHECK((*row)->find("\"state\":1") != std::string::npos);
  caf::anon_send_exit(listener, caf::exit_reason::user_shutdown);
}

BOOST_FIXTURE_TEST_CASE(node_of_another_cluster_is_refused, fixture) {
  caf::scoped_actor self{sys};
  caf::error got;
  self->request(gate, caf::infinite, atoms::join::value, request("tok", "other"),
                fake_node_manager())
    .receive([](join_reply&) { BOOST_FAIL("foreign node joined"); },
             [&](caf::error& err) { got = err; });
  BOOST_CHECK(code_of(got) == errc::wrong_cluster);
}

BOOST_FIXTURE_TEST_CASE(kv_replies_only_after_durable_group_commit, fixture) {
  caf::scoped_actor self{sys};
  constexpr int n = 200;
  for (int i = 0; i < n; ++i)
    self->send(kv, atoms::kv_put::value, std::string{"ns"}, "k" + std::to_string(i),
               std::string{"v"}, true);
  int replies = 0;
  for (int i = 0; i < n; ++i)
    self->receive([&](bool added) {
      BOOST_CHECK(added);
      ++replies;
      // Every answered write is already in the store.
      auto rows = db->scan("kv");
      BOOST_REQUIRE(rows);
      BOOST_CHECK_GE(static_cast<int>(rows->size()), replies);
    });
  BOOST_CHECK_EQUAL(replies, n);
  self->request(kv, caf::infinite, atoms::kv_get::value, std::string{"ns"},
                std::string{"missing"})
    .receive([](std::string&) { BOOST_FAIL("missing key found"); },
             [](caf::error& e) { BOOST_CHECK(code_of(e) == errc::not_found); });
  self->request(kv, caf::infinite, atoms::kv_list::value, std::string{"ns"},
                std::string{"k1"})
    .receive([](std::vector<std::string>& keys) { BOOST_CHECK_EQUAL(keys.size(), 111u); },
             [](caf::error& e) { BOOST_FAIL(describe(e)); });
}

BOOST_FIXTURE_TEST_CASE(leave_records_a_stop_not_a_failure, fixture) {
  caf::scoped_actor self{sys};
  auto nm = fake_node_manager();
  self->request(gate, caf::infinite, atoms::join::value, request("tok"), nm)
    .receive([](join_reply&) {}, [](caf::error& e) { BOOST_FAIL(describe(e)); });
  caf::error refused;
  self->request(gate, caf::infinite, atoms::leave::value, std::string{"bad"},
                std::string{"node-a"})
    .receive([](bool) { BOOST_FAIL("leave with a bad token accepted"); },
             [&](caf::error& e) { refused = e; });
  BOOST_CHECK(code_of(refused) == errc::unauthenticated);
  self->request(gate, caf::infinite, atoms::leave::value, std::string{"tok"},
                std::string{"node-a"})
    .receive([](bool known) { BOOST_CHECK(known); },
             [](caf::error& e) { BOOST_FAIL(describe(e)); });
  // The node manager's exit afterwards must not overwrite the reason.
  caf::anon_send_exit(nm, caf::exit_reason::kill);
  cluster_view view;
  self->request(nodes, caf::infinite, atoms::nodes::value)
    .receive([&](cluster_view& v) { view = v; }, [](caf::error&) {});
  BOOST_REQUIRE_EQUAL(view.nodes.size(), 1u);
  BOOST_CHECK(view.nodes[0].get_state() == node_state::dead);
  BOOST_CHECK(view.nodes[0].death_reason.find("stopped") != std::string::npos);
}
