// Unit tests of rayd::gcs::actor_table: the actor lifecycle's rules (names,
// restarts, kills, owners), persistence across a reload, and the
// failed-commit policy.

#define BOOST_TEST_MODULE actor_table
#include <boost/test/unit_test.hpp>

#include "actors/gcs/actor_table.hpp"
#include "common/error.hpp"
#include "persistence/test_store.hpp"

using namespace rayd;
using gcs::actor_spec;
using gcs::actor_state;
using gcs::actor_table;

namespace {

actor_spec spec(std::string name, std::string ns = "ns", int restarts = 0) {
  actor_spec s;
  s.name = std::move(name);
  s.ray_namespace = std::move(ns);
  s.class_name = "Counter";
  s.owner_job = "job-1";
  s.max_restarts = restarts;
  s.resources = {{"CPU", 1}};
  s.args = {std::string("\x01", 1), std::string("\xa1x\x00", 3)}; // msgpack 1, "x"
  s.code = {{"sha-exe", "driver"}, {"sha-lib", "libtasks.so"}};
  return s;
}

} // namespace

BOOST_AUTO_TEST_CASE(names_are_unique_per_namespace_among_live_actors) {
  auto db = persistence::make_memory_store();
  actor_table t{*db};
  BOOST_REQUIRE(t.create("a1", spec("counter"), 1));
  auto again = t.create("a2", spec("counter"), 2);
  BOOST_REQUIRE(!again);
  BOOST_CHECK(code_of(again.error()) == errc::already_exists);
  BOOST_CHECK(t.create("a3", spec("counter", "other"), 3)); // another namespace
  auto s = spec("counter");
  s.get_if_exists = true;
  auto same = t.create("a4", s, 4);
  BOOST_REQUIRE(same);
  BOOST_CHECK_EQUAL(same->actor_id, "a1"); // the live one, no new row
  BOOST_CHECK(t.find("a4") == nullptr);
  BOOST_CHECK(t.create("a5", spec(""), 5)); // anonymous actors never clash
  BOOST_CHECK(t.create("a6", spec(""), 6));
  // Once the named actor is DEAD the name is free again.
  BOOST_REQUIRE(t.kill("a1", "rayctl", true, 7));
  BOOST_CHECK(t.create("a7", spec("counter"), 8));
  BOOST_CHECK_EQUAL(t.find_named("ns", "counter")->actor_id, "a7");
}

BOOST_AUTO_TEST_CASE(restarts_until_exhausted_then_dead_with_the_cause) {
  auto db = persistence::make_memory_store();
  actor_table t{*db};
  BOOST_REQUIRE(t.create("a", spec("c", "ns", 2), 1));
  BOOST_REQUIRE(t.mark_alive("a", "node-1", 100, "127.0.0.1:1"));
  auto r = t.mark_failed("a", "its node node-1 died", 2);
  BOOST_REQUIRE(r);
  BOOST_CHECK(r->state == actor_state::restarting);
  BOOST_CHECK_EQUAL(r->restarts, 1);
  BOOST_CHECK(r->address.empty());
  BOOST_REQUIRE(t.mark_alive("a", "node-2", 200, "127.0.0.1:2"));
  BOOST_CHECK(t.mark_failed("a", "its process crashed", 3)->state == actor_state::restarting);
  BOOST_REQUIRE(t.mark_alive("a", "node-2", 201, "127.0.0.1:2"));
  auto dead = t.mark_failed("a", "its process crashed", 4);
  BOOST_REQUIRE(dead);
  BOOST_CHECK(dead->state == actor_state::dead);
  BOOST_CHECK_EQUAL(dead->death_cause, "restarts exhausted (2): its process crashed");
  BOOST_CHECK_EQUAL(dead->end_time_ms, 4);
  // DEAD is final.
  BOOST_CHECK(!t.mark_alive("a", "node-3", 300, "x"));
  BOOST_CHECK(t.mark_failed("a", "again", 5)->state == actor_state::dead);
}

BOOST_AUTO_TEST_CASE(no_restarts_by_default_unlimited_with_minus_one) {
  auto db = persistence::make_memory_store();
  actor_table t{*db};
  BOOST_REQUIRE(t.create("a", spec("a"), 1));
  auto r = t.mark_failed("a", "its process crashed", 2);
  BOOST_CHECK(r->state == actor_state::dead);
  BOOST_CHECK_EQUAL(r->death_cause, "its process crashed (max_restarts is 0)");
  BOOST_REQUIRE(t.create("b", spec("b", "ns", -1), 1));
  for (int i = 0; i < 50; ++i)
    BOOST_REQUIRE(t.mark_failed("b", "crash", 2)->state == actor_state::restarting);
  BOOST_CHECK_EQUAL(t.find("b")->restarts, 50);
}

BOOST_AUTO_TEST_CASE(kill_with_and_without_restart_and_throwing_constructors) {
  auto db = persistence::make_memory_store();
  actor_table t{*db};
  BOOST_REQUIRE(t.create("a", spec("a", "ns", 3), 1));
  auto r = t.kill("a", "driver-7", false, 2);
  BOOST_CHECK(r->state == actor_state::restarting);
  BOOST_CHECK_EQUAL(r->death_cause, "killed by driver-7 (restart allowed)");
  r = t.kill("a", "rayctl", true, 3);
  BOOST_CHECK(r->state == actor_state::dead);
  BOOST_CHECK_EQUAL(r->death_cause, "killed by rayctl");
  BOOST_REQUIRE(t.create("b", spec("b", "ns", 3), 1));
  r = t.mark_constructor_failed("b", "std::runtime_error: bad config", 2);
  BOOST_CHECK(r->state == actor_state::dead); // restarts left, but not restarted
  BOOST_CHECK_EQUAL(r->death_cause, "constructor threw std::runtime_error: bad config");
  BOOST_CHECK(!t.kill("missing", "x", true, 1));
}

BOOST_AUTO_TEST_CASE(non_detached_actors_die_with_their_owner) {
  auto db = persistence::make_memory_store();
  actor_table t{*db};
  BOOST_REQUIRE(t.create("a", spec("a"), 1));
  auto d = spec("d");
  d.detached = true;
  BOOST_REQUIRE(t.create("d", d, 1));
  auto other = spec("o");
  other.owner_job = "job-2";
  BOOST_REQUIRE(t.create("o", other, 1));
  auto gone = t.owner_gone("job-1", 9);
  BOOST_REQUIRE_EQUAL(gone.size(), 1u);
  BOOST_CHECK_EQUAL(gone[0].actor_id, "a");
  BOOST_CHECK_EQUAL(gone[0].death_cause, "owner job job-1 ended");
  BOOST_CHECK(t.find("d")->state == actor_state::pending_creation);
  BOOST_CHECK(t.find("o")->state == actor_state::pending_creation);
}

BOOST_AUTO_TEST_CASE(rows_survive_a_reload_and_a_failed_commit_leaves_nothing) {
  persistence::test_store db;
  {
    actor_table t{db};
    BOOST_REQUIRE(t.create("a", spec("counter", "ns", 1), 11));
    BOOST_REQUIRE(t.mark_alive("a", "node-1", 42, "127.0.0.1:9"));
    BOOST_REQUIRE(!t.commit());
    db.fail_writes(1);
    BOOST_REQUIRE(t.create("b", spec("other"), 12));
    BOOST_CHECK(t.commit()); // the error
    BOOST_CHECK(t.find("b") == nullptr); // discarded: as if never created
    BOOST_CHECK(t.create("b", spec("other"), 13)); // so a retry is a first create
    BOOST_REQUIRE(!t.commit());
  }
  actor_table t{db};
  BOOST_REQUIRE(!t.load());
  auto* a = t.find("a");
  BOOST_REQUIRE(a != nullptr);
  BOOST_CHECK(a->state == actor_state::alive);
  BOOST_CHECK_EQUAL(a->spec.name, "counter");
  BOOST_CHECK_EQUAL(a->spec.class_name, "Counter");
  BOOST_CHECK_EQUAL(a->spec.max_restarts, 1);
  BOOST_REQUIRE_EQUAL(a->spec.args.size(), 2u);
  BOOST_CHECK_EQUAL(a->spec.args[1], std::string("\xa1x\x00", 3)); // bytes survive JSON
  BOOST_REQUIRE_EQUAL(a->spec.code.size(), 2u);
  BOOST_CHECK_EQUAL(a->spec.code[1].name, "libtasks.so");
  BOOST_CHECK_EQUAL(a->spec.code[0].hash, "sha-exe");
  BOOST_CHECK_EQUAL(a->spec.resources.at("CPU"), 1.0);
  BOOST_CHECK_EQUAL(a->pid, 42);
  BOOST_CHECK_EQUAL(a->address, "127.0.0.1:9");
  BOOST_CHECK_EQUAL(a->create_time_ms, 11);
  BOOST_CHECK_EQUAL(t.find("b")->create_time_ms, 13);
  BOOST_CHECK_EQUAL(t.list().size(), 2u);
}

BOOST_AUTO_TEST_CASE(bad_specs_and_corrupt_rows_are_errors) {
  auto db = persistence::make_memory_store();
  actor_table t{*db};
  auto s = spec("x");
  s.class_name.clear();
  BOOST_CHECK(code_of(t.create("a", s, 1).error()) == errc::invalid_argument);
  s = spec("x");
  s.max_concurrency = 0;
  BOOST_CHECK(!t.create("a", s, 1));
  BOOST_CHECK(!actor_table::codec::decode("k", "not json"));
  BOOST_CHECK(!actor_table::codec::decode("k", "{\"v\":1}"));
}
