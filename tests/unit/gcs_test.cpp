// Unit tests of the GCS logic on the in-memory store: node table, KV table,
// cluster metadata; and the KV actor's group commit (an actor system, no
// sockets).
#define BOOST_TEST_MODULE gcs
#include <boost/test/unit_test.hpp>

#include <chrono>
#include <thread>

#include <caf/all.hpp>

#include "actors/gcs/cluster_meta.hpp"
#include "actors/gcs/spawn.hpp"
#include "actors/registry.hpp"
#include "persistence/test_store.hpp"
#include "actors/gcs/kv_table.hpp"
#include "actors/gcs/node_table.hpp"
#include "common/error.hpp"
#include "tests/support/actor_config.hpp"

using namespace rayd;

namespace {

node_info make_node(std::string id, bool head = false) {
  node_info n;
  n.node_id = std::move(id);
  n.name = "n-" + n.node_id;
  n.address = "127.0.0.1:1";
  n.is_head = head;
  n.pid = 42;
  n.resources_total = {{"CPU", 4}, {"memory", 1e9}};
  n.resources_available = n.resources_total;
  n.labels = {{"zone", "a"}};
  return n;
}

} // namespace

BOOST_AUTO_TEST_SUITE(node_table_suite)

BOOST_AUTO_TEST_CASE(join_is_persisted_and_reloaded) {
  auto db = persistence::make_memory_store();
  {
    gcs::node_table t{*db};
    BOOST_REQUIRE(!t.load());
    auto row = t.set_alive(make_node("a"), 1000);
    BOOST_REQUIRE(row);
    BOOST_CHECK_EQUAL(row->start_time_ms, 1000);
    BOOST_CHECK(row->get_state() == node_state::alive);
  }
  gcs::node_table t2{*db};
  BOOST_REQUIRE(!t2.load());
  auto* n = t2.find("a");
  BOOST_REQUIRE(n != nullptr);
  BOOST_CHECK_EQUAL(n->name, "n-a");
  BOOST_CHECK_EQUAL(n->resources_total.at("CPU"), 4);
  BOOST_CHECK_EQUAL(n->labels.at("zone"), "a");
  BOOST_CHECK_EQUAL(t2.alive_ids().size(), 1u);
}

BOOST_AUTO_TEST_CASE(death_is_durable_and_first_reason_wins) {
  auto db = persistence::make_memory_store();
  gcs::node_table t{*db};
  BOOST_REQUIRE(t.set_alive(make_node("a"), 1));
  auto dead = t.set_dead("a", "killed", 5);
  BOOST_REQUIRE(dead);
  BOOST_CHECK(dead->get_state() == node_state::dead);
  BOOST_CHECK_EQUAL(dead->death_time_ms, 5);
  BOOST_CHECK(dead->resources_available.empty());
  auto again = t.set_dead("a", "other", 9);
  BOOST_REQUIRE(again);
  BOOST_CHECK_EQUAL(again->death_reason, "killed");
  BOOST_CHECK_EQUAL(again->death_time_ms, 5);
  gcs::node_table t2{*db};
  BOOST_REQUIRE(!t2.load());
  BOOST_CHECK_EQUAL(t2.find("a")->death_reason, "killed");
  BOOST_CHECK(t2.alive_ids().empty());
}

BOOST_AUTO_TEST_CASE(rejoin_clears_death) {
  auto db = persistence::make_memory_store();
  gcs::node_table t{*db};
  BOOST_REQUIRE(t.set_alive(make_node("a"), 1));
  BOOST_REQUIRE(t.set_dead("a", "cut", 2));
  auto row = t.set_alive(make_node("a"), 3);
  BOOST_REQUIRE(row);
  BOOST_CHECK(row->get_state() == node_state::alive);
  BOOST_CHECK(row->death_reason.empty());
  BOOST_CHECK_EQUAL(row->death_time_ms, 0);
}

BOOST_AUTO_TEST_CASE(unknown_node_and_empty_id_are_errors) {
  auto db = persistence::make_memory_store();
  gcs::node_table t{*db};
  auto r = t.set_dead("nope", "x", 1);
  BOOST_REQUIRE(!r);
  BOOST_CHECK(code_of(r.error()) == errc::not_found);
  auto e = t.set_alive(make_node(""), 1);
  BOOST_REQUIRE(!e);
  BOOST_CHECK(code_of(e.error()) == errc::invalid_argument);
}

BOOST_AUTO_TEST_CASE(dead_history_is_bounded_oldest_first) {
  auto db = persistence::make_memory_store();
  gcs::node_table t{*db, 2};
  for (int i = 0; i < 4; ++i) {
    auto id = "n" + std::to_string(i);
    BOOST_REQUIRE(t.set_alive(make_node(id), i));
    BOOST_REQUIRE(t.set_dead(id, "gone", 100 + i));
  }
  BOOST_CHECK(t.find("n0") == nullptr);
  BOOST_CHECK(t.find("n1") == nullptr);
  BOOST_CHECK(t.find("n2") != nullptr);
  BOOST_CHECK(t.find("n3") != nullptr);
  auto rows = db->scan("nodes");
  BOOST_REQUIRE(rows);
  BOOST_CHECK_EQUAL(rows->size(), 2u);
}

BOOST_AUTO_TEST_CASE(rows_list_head_first) {
  auto db = persistence::make_memory_store();
  gcs::node_table t{*db};
  auto w = make_node("w");
  w.start_time_ms = 1;
  BOOST_REQUIRE(t.set_alive(w, 1));
  BOOST_REQUIRE(t.set_alive(make_node("h", true), 2));
  auto rows = t.rows();
  BOOST_REQUIRE_EQUAL(rows.size(), 2u);
  BOOST_CHECK_EQUAL(rows[0].node_id, "h");
}

BOOST_AUTO_TEST_CASE(corrupt_row_is_a_storage_error) {
  auto db = persistence::make_memory_store();
  BOOST_REQUIRE(!db->put("nodes", "x", "{not json"));
  gcs::node_table t{*db};
  auto err = t.load();
  BOOST_CHECK(code_of(err) == errc::storage_error);
}

BOOST_AUTO_TEST_SUITE_END()

BOOST_AUTO_TEST_SUITE(kv_table_suite)

BOOST_AUTO_TEST_CASE(staged_writes_are_visible_and_durable_after_commit) {
  auto db = persistence::make_memory_store();
  gcs::kv_table kv{*db};
  auto added = kv.put("ns", "k", "v", true);
  BOOST_REQUIRE(added);
  BOOST_CHECK(*added);
  BOOST_CHECK(kv.dirty());
  // Visible to readers of this table before the commit...
  auto v = kv.get("ns", "k");
  BOOST_REQUIRE(v && *v);
  BOOST_CHECK_EQUAL(**v, "v");
  // ...but not yet in the store.
  auto raw = db->scan("kv");
  BOOST_REQUIRE(raw);
  BOOST_CHECK(raw->empty());
  BOOST_REQUIRE(!kv.commit());
  BOOST_CHECK(!kv.dirty());
  gcs::kv_table fresh{*db};
  auto v2 = fresh.get("ns", "k");
  BOOST_REQUIRE(v2 && *v2);
  BOOST_CHECK_EQUAL(**v2, "v");
}

BOOST_AUTO_TEST_CASE(overwrite_flag_and_delete) {
  auto db = persistence::make_memory_store();
  gcs::kv_table kv{*db};
  BOOST_CHECK(*kv.put("", "k", "1", true));
  BOOST_CHECK(!*kv.put("", "k", "2", false));
  BOOST_CHECK_EQUAL(**kv.get("", "k"), "1");
  BOOST_CHECK(!*kv.put("", "k", "3", true));
  BOOST_CHECK_EQUAL(**kv.get("", "k"), "3");
  BOOST_REQUIRE(!kv.commit());
  BOOST_CHECK(*kv.del("", "k"));
  BOOST_CHECK(!*kv.del("", "k"));
  BOOST_CHECK(!kv.get("", "k")->has_value());
  BOOST_REQUIRE(!kv.commit());
  BOOST_CHECK(!gcs::kv_table{*db}.get("", "k")->has_value());
}

BOOST_AUTO_TEST_CASE(namespaces_are_isolated) {
  auto db = persistence::make_memory_store();
  gcs::kv_table kv{*db};
  BOOST_REQUIRE(kv.put("a", "k", "in-a", true));
  BOOST_REQUIRE(kv.put("b", "k", "in-b", true));
  BOOST_REQUIRE(kv.put("ab", "x", "in-ab", true));
  BOOST_REQUIRE(!kv.commit());
  BOOST_CHECK_EQUAL(**kv.get("a", "k"), "in-a");
  BOOST_CHECK_EQUAL(**kv.get("b", "k"), "in-b");
  auto keys = kv.keys("a", "");
  BOOST_REQUIRE(keys);
  BOOST_REQUIRE_EQUAL(keys->size(), 1u); // "ab" is another namespace
  BOOST_CHECK_EQUAL(keys->front(), "k");
}

BOOST_AUTO_TEST_CASE(list_merges_staged_changes_and_prefix) {
  auto db = persistence::make_memory_store();
  gcs::kv_table kv{*db};
  BOOST_REQUIRE(kv.put("n", "p1", "x", true));
  BOOST_REQUIRE(kv.put("n", "p2", "x", true));
  BOOST_REQUIRE(kv.put("n", "q1", "x", true));
  BOOST_REQUIRE(!kv.commit());
  BOOST_REQUIRE(kv.del("n", "p1"));
  BOOST_REQUIRE(kv.put("n", "p3", "x", true));
  auto keys = kv.keys("n", "p");
  BOOST_REQUIRE(keys);
  BOOST_CHECK((*keys == std::vector<std::string>{"p2", "p3"}));
}

BOOST_AUTO_TEST_CASE(bad_input_is_rejected) {
  auto db = persistence::make_memory_store();
  gcs::kv_table kv{*db};
  BOOST_CHECK(code_of(kv.put("", "", "v", true).error()) == errc::invalid_argument);
  BOOST_CHECK(code_of(kv.put(std::string("a\0b", 3), "k", "v", true).error())
              == errc::invalid_argument);
  std::string big(gcs::kv_table::max_value_bytes + 1, 'x');
  BOOST_CHECK(code_of(kv.put("", "k", big, true).error()) == errc::invalid_argument);
  BOOST_CHECK(!kv.dirty());
}

BOOST_AUTO_TEST_SUITE_END()

BOOST_AUTO_TEST_SUITE(cluster_meta_suite)

BOOST_AUTO_TEST_CASE(identity_is_created_once_and_epoch_bumps) {
  auto db = persistence::make_memory_store();
  auto m1 = gcs::start_epoch(*db, "");
  BOOST_REQUIRE(m1);
  BOOST_CHECK(m1->created);
  BOOST_CHECK_EQUAL(m1->epoch, 1u);
  BOOST_CHECK_EQUAL(m1->token.size(), 64u);
  auto m2 = gcs::start_epoch(*db, "");
  BOOST_REQUIRE(m2);
  BOOST_CHECK(!m2->created);
  BOOST_CHECK_EQUAL(m2->cluster_id, m1->cluster_id);
  BOOST_CHECK_EQUAL(m2->head_node_id, m1->head_node_id);
  BOOST_CHECK_EQUAL(m2->token, m1->token);
  BOOST_CHECK_EQUAL(m2->epoch, 2u);
}

BOOST_AUTO_TEST_CASE(token_override_and_ports_are_kept) {
  auto db = persistence::make_memory_store();
  BOOST_REQUIRE(gcs::start_epoch(*db, "given"));
  BOOST_REQUIRE(!gcs::save_ports(*db, 1234, 5678));
  auto m = gcs::start_epoch(*db, "");
  BOOST_REQUIRE(m);
  BOOST_CHECK_EQUAL(m->token, "given");
  BOOST_CHECK_EQUAL(m->cluster_port, 1234);
  BOOST_CHECK_EQUAL(m->api_port, 5678);
}

BOOST_AUTO_TEST_SUITE_END()

BOOST_AUTO_TEST_SUITE(table_failures)

BOOST_AUTO_TEST_CASE(kv_failed_commit_leaves_nothing_behind) {
  persistence::test_store db;
  gcs::kv_table kv{db};
  BOOST_REQUIRE(*kv.put("", "old", "1", true));
  BOOST_REQUIRE(!kv.commit());
  BOOST_CHECK(*kv.put("", "new", "v", false));
  BOOST_CHECK(*kv.del("", "old"));
  db.fail_writes(1);
  BOOST_CHECK(code_of(kv.commit()) == errc::storage_error);
  BOOST_CHECK(!kv.dirty());
  BOOST_CHECK(!kv.get("", "new")->has_value());
  BOOST_CHECK_EQUAL(**kv.get("", "old"), "1");
  // The writer's retry is a first write again ("added"), not a duplicate.
  BOOST_CHECK(*kv.put("", "new", "v", false));
}

BOOST_AUTO_TEST_CASE(node_join_that_cannot_be_stored_is_not_recorded) {
  persistence::test_store db;
  gcs::node_table t{db};
  BOOST_REQUIRE(t.set_alive(make_node("a"), 1));
  db.fail_writes(1);
  BOOST_CHECK(!t.set_alive(make_node("b"), 2));
  BOOST_CHECK(t.find("b") == nullptr);
  db.fail_writes(1);
  BOOST_CHECK(!t.set_dead("a", "gone", 3));
  BOOST_CHECK(t.find("a")->get_state() == node_state::alive);
}

BOOST_AUTO_TEST_SUITE_END()

// ------------------------------------------------------ the KV actor

namespace {

template <class Predicate>
bool eventually(Predicate p, std::chrono::milliseconds within = std::chrono::seconds{10}) {
  auto deadline = std::chrono::steady_clock::now() + within;
  while (!p()) {
    if (std::chrono::steady_clock::now() > deadline)
      return false;
    std::this_thread::sleep_for(std::chrono::milliseconds{1});
  }
  return true;
}

struct kv_fixture {
  // The store outlives the actor system, which waits for its actors.
  persistence::test_store db;
  caf::actor_system_config cfg;
  caf::actor_system sys{test::quiet_config(cfg)};
  gcs_kv_actor kv = gcs::spawn_kv_actor(sys, db);

  ~kv_fixture() {
    db.hold(false);
    caf::anon_send_exit(kv, caf::exit_reason::user_shutdown);
  }
};

} // namespace

BOOST_FIXTURE_TEST_SUITE(kv_actor_group_commit, kv_fixture)

// N writes that arrive while a commit is under way are written in ONE batch,
// and every writer hears back only after that batch is on disk.
BOOST_AUTO_TEST_CASE(writes_arriving_during_a_commit_share_one_batch) {
  constexpr int n = 50;
  caf::scoped_actor self{sys};
  db.hold(true);
  self->send(kv, atoms::kv_put::value, std::string{}, std::string{"first"},
             std::string{"v"}, true);
  BOOST_REQUIRE(eventually([this] { return db.writes_started() == 1; }));
  // The actor sits inside the first commit: these queue in its mailbox.
  for (int i = 0; i < n; ++i)
    self->send(kv, atoms::kv_put::value, std::string{}, "k" + std::to_string(i),
               std::string{"v"}, true);
  db.hold(false);
  int replies = 0;
  std::size_t batches_at_reply = 0;
  for (int i = 0; i < n + 1; ++i)
    self->receive(
      [&](bool added) {
        BOOST_CHECK(added);
        ++replies;
        batches_at_reply = db.writes_done();
      },
      caf::after(std::chrono::seconds{10}) >> [] { BOOST_FAIL("no reply"); });
  BOOST_CHECK_EQUAL(replies, n + 1);
  // The last reply came after the second batch returned.
  BOOST_CHECK_EQUAL(batches_at_reply, 2u);
  BOOST_CHECK((db.batch_sizes() == std::vector<std::size_t>{1, std::size_t{n}}));
}

BOOST_AUTO_TEST_CASE(a_failed_commit_answers_the_error_and_forgets_the_write) {
  caf::scoped_actor self{sys};
  db.fail_writes(1);
  bool failed = false;
  self->request(kv, caf::infinite, atoms::kv_put::value, std::string{},
                std::string{"k"}, std::string{"v"}, false)
    .receive([](bool) { BOOST_FAIL("told success of a failed commit"); },
             [&](caf::error& err) { failed = code_of(err) == errc::storage_error; });
  BOOST_CHECK(failed);
  bool missing = false;
  self->request(kv, caf::infinite, atoms::kv_get::value, std::string{},
                std::string{"k"})
    .receive([](std::string&) { BOOST_FAIL("a discarded write is visible"); },
             [&](caf::error& err) { missing = code_of(err) == errc::not_found; });
  BOOST_CHECK(missing);
  bool added = false;
  self->request(kv, caf::infinite, atoms::kv_put::value, std::string{},
                std::string{"k"}, std::string{"v"}, false)
    .receive([&](bool a) { added = a; },
             [](caf::error& err) { BOOST_FAIL(describe(err)); });
  BOOST_CHECK(added);
}

// A read of a key whose change is staged waits for the commit of it.
BOOST_AUTO_TEST_CASE(a_read_of_a_staged_key_waits_for_its_commit) {
  caf::scoped_actor self{sys};
  db.hold(true);
  self->send(kv, atoms::kv_put::value, std::string{}, std::string{"first"},
             std::string{"v"}, true);
  BOOST_REQUIRE(eventually([this] { return db.writes_started() == 1; }));
  self->send(kv, atoms::kv_put::value, std::string{}, std::string{"k"},
             std::string{"v2"}, true);
  self->send(kv, atoms::kv_get::value, std::string{}, std::string{"k"});
  db.fail_writes(1); // the first batch fails...
  db.hold(false);
  int errors = 0;
  std::size_t batches_at_get = 0;
  std::string got;
  for (int i = 0; i < 3; ++i)
    self->receive([](bool) {},
                  [&](std::string& v) {
                    got = v;
                    batches_at_get = db.writes_done();
                  },
                  [&](caf::error&) { ++errors; },
                  caf::after(std::chrono::seconds{10}) >> [] { BOOST_FAIL("no reply"); });
  // ...so only "first" failed; k was staged in the second round, and the get
  // of k answered after that round committed.
  BOOST_CHECK_EQUAL(errors, 1);
  BOOST_CHECK_EQUAL(got, "v2");
  BOOST_CHECK_EQUAL(batches_at_get, 2u);
}

BOOST_AUTO_TEST_SUITE_END()
