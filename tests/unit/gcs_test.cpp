// Unit tests of the GCS logic on the in-memory store: node table, KV table,
// cluster metadata. No scheduler, no sockets.
#define BOOST_TEST_MODULE gcs
#include <boost/test/unit_test.hpp>

#include "actors/gcs/cluster_meta.hpp"
#include "actors/gcs/kv_table.hpp"
#include "actors/gcs/node_table.hpp"
#include "common/error.hpp"

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
