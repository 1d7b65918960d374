// Unit tests of rayd::autoscale::instance_table: the instance lifecycle's
// rules (legal and illegal transitions, versions, bounded history), the rows
// across a reopened RocksDB store, the failed-commit policy, and reconcile()
// / to_request() — including the head restart that must not launch twice.

#define BOOST_TEST_MODULE instance_table
#include <boost/test/unit_test.hpp>

#include <stdlib.h>

#include <filesystem>
#include <optional>
#include <string>
#include <utility>
#include <vector>

#include "autoscale/instance_table.hpp"
#include "common/error.hpp"
#include "persistence/test_store.hpp"

using namespace rayd;
using autoscale::instance_row;
using autoscale::instance_state;
using autoscale::instance_table;
using autoscale::instance_update;
using autoscale::listed_instance;
using autoscale::reconcile;
using autoscale::reconcile_input;
using autoscale::to_request;
using autoscale::transition_allowed;

namespace fs = std::filesystem;
using st = instance_state;

namespace {

const std::vector<st> all_states{st::queued,
                                 st::requested,
                                 st::allocated,
                                 st::rayd_running,
                                 st::stopping,
                                 st::terminated,
                                 st::allocation_failed,
                                 st::rayd_install_failed,
                                 st::start_failed,
                                 st::termination_failed};

// The legal transitions, written out independently of transition_allowed().
const std::vector<std::pair<st, st>> legal{
  {st::queued, st::requested},
  {st::queued, st::terminated},
  {st::requested, st::allocated},
  {st::requested, st::allocation_failed},
  {st::requested, st::terminated},
  {st::allocated, st::rayd_running},
  {st::allocated, st::rayd_install_failed},
  {st::allocated, st::start_failed},
  {st::allocated, st::stopping},
  {st::allocated, st::terminated},
  {st::rayd_running, st::stopping},
  {st::rayd_running, st::terminated},
  {st::stopping, st::rayd_running},
  {st::stopping, st::terminated},
  {st::stopping, st::termination_failed},
  {st::termination_failed, st::stopping},
  {st::termination_failed, st::terminated},
  {st::rayd_install_failed, st::stopping},
  {st::rayd_install_failed, st::terminated},
  {st::start_failed, st::stopping},
  {st::start_failed, st::terminated},
  {st::allocation_failed, st::stopping},
};

bool is_legal(st from, st to) {
  for (auto& [f, t] : legal)
    if (f == from && t == to)
      return true;
  return false;
}

instance_update to(const std::string& id, st target, std::string reason = "test") {
  instance_update u;
  u.instance_id = id;
  u.to = target;
  u.reason = std::move(reason);
  return u;
}

// A path from QUEUED to `target` through legal transitions, ids included.
std::vector<instance_update> path_to(const std::string& id, st target) {
  auto req = to(id, st::requested);
  req.launch_request_id = "lr-" + id;
  auto alloc = to(id, st::allocated);
  alloc.provider_instance_id = "p-" + id;
  auto run = to(id, st::rayd_running);
  run.node_id = "node-" + id;
  switch (target) {
    case st::queued:
      return {};
    case st::requested:
      return {req};
    case st::allocated:
      return {req, alloc};
    case st::rayd_running:
      return {req, alloc, run};
    case st::stopping:
      return {req, alloc, run, to(id, st::stopping)};
    case st::terminated:
      return {req, alloc, run, to(id, st::stopping), to(id, st::terminated)};
    case st::allocation_failed:
      return {req, to(id, st::allocation_failed)};
    case st::rayd_install_failed:
      return {req, alloc, to(id, st::rayd_install_failed)};
    case st::start_failed:
      return {req, alloc, to(id, st::start_failed)};
    case st::termination_failed:
      return {req, alloc, run, to(id, st::stopping), to(id, st::termination_failed)};
  }
  return {};
}

// Queues `id` and walks it to `target`; REQUIREs every step to succeed.
void bring(instance_table& t, const std::string& id, st target, int64_t now = 1) {
  BOOST_REQUIRE(t.queue(id, "worker", "demand", now));
  for (auto& u : path_to(id, target)) {
    auto r = t.apply(u, now);
    BOOST_REQUIRE_MESSAGE(r, "step to " + to_string(u.to) + " of " + id + ": "
                               + (r ? std::string{} : describe(r.error())));
  }
  BOOST_REQUIRE(t.find(id)->state == target);
}

// A fresh directory under /tmp, removed with everything in it at scope exit.
struct temp_dir {
  fs::path path;
  temp_dir() {
    std::string tmpl = "/tmp/rayd_instance_table_test_XXXXXX";
    char* p = ::mkdtemp(tmpl.data());
    BOOST_REQUIRE_MESSAGE(p != nullptr, "mkdtemp failed");
    path = p;
  }
  ~temp_dir() {
    std::error_code ec;
    fs::remove_all(path, ec);
  }
};

std::unique_ptr<persistence::store> open_db(const temp_dir& dir) {
  persistence::rocksdb_options opts;
  opts.path = (dir.path / "gcs").string();
  auto db = persistence::open_rocksdb(opts);
  BOOST_REQUIRE_MESSAGE(db, "open_rocksdb: " << (db ? "" : describe(db.error())));
  return std::move(*db);
}

listed_instance listed(const std::string& id, bool terminated = false) {
  return {"p-" + id, id, "lr-" + id, terminated};
}

// The single update reconcile() proposes for `id`, or nullptr.
const instance_update* update_for(const autoscale::reconcile_result& res,
                                  const std::string& id) {
  const instance_update* found = nullptr;
  for (auto& u : res.updates)
    if (u.instance_id == id) {
      BOOST_CHECK_MESSAGE(found == nullptr, "two updates for " << id);
      found = &u;
    }
  return found;
}

} // namespace

BOOST_AUTO_TEST_CASE(state_names_round_trip) {
  for (auto s : all_states) {
    auto back = autoscale::instance_state_from_string(to_string(s));
    BOOST_REQUIRE(back);
    BOOST_CHECK(*back == s);
  }
  BOOST_CHECK_EQUAL(to_string(st::rayd_running), "RAYD_RUNNING");
  BOOST_CHECK(!autoscale::instance_state_from_string("RUNNING"));
}

BOOST_AUTO_TEST_CASE(the_transition_rule_is_exactly_the_documented_list) {
  for (auto from : all_states)
    for (auto target : all_states)
      BOOST_CHECK_MESSAGE(transition_allowed(from, target) == is_legal(from, target),
                          to_string(from) << " -> " << to_string(target));
}

BOOST_AUTO_TEST_CASE(every_legal_transition_applies_and_every_other_is_refused) {
  // From each state, try every target on a fresh row brought to that state.
  int n = 0;
  for (auto from : all_states)
    for (auto target : all_states) {
      auto db = persistence::make_memory_store();
      instance_table t{*db};
      auto id = "i" + std::to_string(n++);
      bring(t, id, from);
      auto before = *t.find(id);
      auto u = to(id, target, "why " + to_string(target));
      u.launch_request_id = "lr";
      u.provider_instance_id = "p";
      u.node_id = "node";
      auto r = t.apply(u, 50);
      if (is_legal(from, target)) {
        BOOST_REQUIRE_MESSAGE(r, to_string(from) << " -> " << to_string(target) << ": "
                                   << (r ? "" : describe(r.error())));
        BOOST_CHECK(r->state == target);
        BOOST_CHECK_EQUAL(r->version, before.version + 1);
        BOOST_CHECK_EQUAL(r->state_time_ms, 50);
        BOOST_CHECK(r->history.back().from == from);
        BOOST_CHECK(r->history.back().to == target);
        BOOST_CHECK_EQUAL(r->history.back().reason, "why " + to_string(target));
        BOOST_CHECK_EQUAL(r->history.back().time_ms, 50);
        BOOST_CHECK(t.find(id)->state == target);
      } else {
        BOOST_REQUIRE_MESSAGE(!r, to_string(from) << " -> " << to_string(target)
                                    << " was accepted");
        BOOST_CHECK(code_of(r.error()) == errc::invalid_argument);
        auto msg = describe(r.error());
        BOOST_CHECK_MESSAGE(msg.find("illegal transition " + to_string(from) + " -> "
                                     + to_string(target))
                              != std::string::npos,
                            msg);
        // Refused: the row did not change.
        BOOST_CHECK_EQUAL(t.find(id)->version, before.version);
        BOOST_CHECK(t.find(id)->state == from);
      }
    }
}

BOOST_AUTO_TEST_CASE(a_full_life_records_ids_versions_and_errors) {
  auto db = persistence::make_memory_store();
  instance_table t{*db};
  auto q = t.queue("i1", "cpu2", "launching 1 of cpu2 for 2 pending tasks", 10);
  BOOST_REQUIRE(q);
  BOOST_CHECK(q->state == st::queued);
  BOOST_CHECK_EQUAL(q->version, 1);
  BOOST_CHECK_EQUAL(q->create_time_ms, 10);
  BOOST_REQUIRE_EQUAL(q->history.size(), 1u);
  BOOST_CHECK_EQUAL(q->history[0].reason, "launching 1 of cpu2 for 2 pending tasks");
  auto req = to("i1", st::requested);
  req.launch_request_id = "lr-7";
  BOOST_CHECK_EQUAL(t.apply(req, 11)->launch_request_id, "lr-7");
  auto alloc = to("i1", st::allocated);
  alloc.provider_instance_id = "pid-123";
  BOOST_CHECK_EQUAL(t.apply(alloc, 12)->provider_instance_id, "pid-123");
  auto fail = t.apply(to("i1", st::start_failed, "no node joined in 600000 ms"), 13);
  BOOST_REQUIRE(fail);
  BOOST_CHECK_EQUAL(fail->error, "no node joined in 600000 ms");
  BOOST_CHECK_EQUAL(fail->launch_request_id, "lr-7"); // kept
  auto stop = t.apply(to("i1", st::stopping, "terminating a failed start"), 14);
  BOOST_REQUIRE(stop);
  BOOST_CHECK_EQUAL(stop->error, "no node joined in 600000 ms"); // still why
  auto done = t.apply(to("i1", st::terminated, "gone"), 15);
  BOOST_REQUIRE(done);
  BOOST_CHECK_EQUAL(done->version, 6);
  BOOST_CHECK_EQUAL(done->history.size(), 6u);
  BOOST_CHECK_EQUAL(done->create_time_ms, 10);
  BOOST_CHECK_EQUAL(done->state_time_ms, 15);
}

BOOST_AUTO_TEST_CASE(bad_requests_are_refused_with_clear_errors) {
  auto db = persistence::make_memory_store();
  instance_table t{*db};
  BOOST_CHECK(code_of(t.queue("", "w", "r", 1).error()) == errc::invalid_argument);
  BOOST_CHECK(code_of(t.queue("i", "", "r", 1).error()) == errc::invalid_argument);
  BOOST_CHECK(code_of(t.queue("i", "w", "", 1).error()) == errc::invalid_argument);
  BOOST_REQUIRE(t.queue("i", "w", "r", 1));
  BOOST_CHECK(code_of(t.queue("i", "w", "r", 2).error()) == errc::already_exists);
  BOOST_CHECK(code_of(t.apply(to("nope", st::requested), 2).error()) == errc::not_found);
  // Each target state needs the id it learns.
  auto no_lr = t.apply(to("i", st::requested), 2);
  BOOST_REQUIRE(!no_lr);
  BOOST_CHECK(describe(no_lr.error()).find("launch request id") != std::string::npos);
  auto req = to("i", st::requested, "");
  req.launch_request_id = "lr";
  BOOST_CHECK(code_of(t.apply(req, 2).error()) == errc::invalid_argument); // no reason
  req.reason = "launching";
  BOOST_REQUIRE(t.apply(req, 2));
  auto no_pid = t.apply(to("i", st::allocated), 3);
  BOOST_REQUIRE(!no_pid);
  BOOST_CHECK(describe(no_pid.error()).find("provider instance id") != std::string::npos);
  auto alloc = to("i", st::allocated);
  alloc.provider_instance_id = "p";
  BOOST_REQUIRE(t.apply(alloc, 3));
  auto no_node = t.apply(to("i", st::rayd_running), 4);
  BOOST_REQUIRE(!no_node);
  BOOST_CHECK(describe(no_node.error()).find("node id") != std::string::npos);
  BOOST_CHECK_EQUAL(t.find("i")->version, 3);
  // forget(): only rows at rest.
  BOOST_CHECK(code_of(t.forget("i")) == errc::invalid_argument);
  BOOST_CHECK(code_of(t.forget("nope")) == errc::not_found);
  BOOST_REQUIRE(t.apply(to("i", st::terminated), 5));
  BOOST_CHECK(!t.forget("i"));
  BOOST_CHECK(t.find("i") == nullptr);
}

BOOST_AUTO_TEST_CASE(a_stale_version_is_refused_and_changes_nothing) {
  auto db = persistence::make_memory_store();
  instance_table t{*db};
  bring(t, "i", st::rayd_running);
  auto seen = t.find("i")->version; // 4
  BOOST_CHECK_EQUAL(seen, 4);
  auto drain = to("i", st::stopping, "idle 60 s");
  drain.expected_version = seen;
  BOOST_REQUIRE(t.apply(drain, 2));
  // A second writer that read the same version loses.
  auto other = to("i", st::terminated, "node died");
  other.expected_version = seen;
  auto r = t.apply(other, 3);
  BOOST_REQUIRE(!r);
  BOOST_CHECK(code_of(r.error()) == errc::invalid_argument);
  BOOST_CHECK_EQUAL(describe(r.error()),
                    "instance i: version mismatch: expected 4, row is at 5");
  BOOST_CHECK(t.find("i")->state == st::stopping);
  // With the current version it goes through; a refused drain runs again.
  auto refused = to("i", st::rayd_running, "drain refused: work arrived");
  refused.expected_version = 5;
  auto back = t.apply(refused, 4);
  BOOST_REQUIRE(back);
  BOOST_CHECK_EQUAL(back->version, 6);
  BOOST_CHECK_EQUAL(back->node_id, "node-i"); // kept from the first join
}

BOOST_AUTO_TEST_CASE(history_keeps_the_last_32_entries) {
  auto db = persistence::make_memory_store();
  instance_table t{*db};
  bring(t, "i", st::rayd_running);
  // Drain and refuse 40 times: 80 more changes.
  for (int k = 0; k < 40; ++k) {
    BOOST_REQUIRE(t.apply(to("i", st::stopping, "drain " + std::to_string(k)), 100 + k));
    BOOST_REQUIRE(t.apply(to("i", st::rayd_running, "refused " + std::to_string(k)),
                          100 + k));
  }
  auto* r = t.find("i");
  BOOST_CHECK_EQUAL(r->version, 84);
  BOOST_REQUIRE_EQUAL(r->history.size(), instance_table::history_limit);
  BOOST_CHECK_EQUAL(r->history.back().reason, "refused 39");
  BOOST_CHECK_EQUAL(r->history.front().reason, "drain 24"); // oldest kept
  BOOST_REQUIRE(!t.commit());
  instance_table again{*db};
  BOOST_REQUIRE(!again.load());
  BOOST_CHECK_EQUAL(again.find("i")->history.size(), instance_table::history_limit);
  BOOST_CHECK_EQUAL(again.find("i")->history.front().reason, "drain 24");
}

BOOST_AUTO_TEST_CASE(rows_survive_a_reopened_rocksdb_store) {
  temp_dir dir;
  {
    auto db = open_db(dir);
    instance_table t{*db};
    bring(t, "a", st::rayd_running, 7);
    bring(t, "b", st::queued, 8);
    BOOST_REQUIRE(t.apply(to("a", st::stopping, "idle for 61 s (timeout 60 s)"), 9));
    BOOST_REQUIRE(!t.commit());
  }
  auto db = open_db(dir);
  instance_table t{*db};
  BOOST_REQUIRE(!t.load());
  BOOST_CHECK_EQUAL(t.size(), 2u);
  auto* a = t.find("a");
  BOOST_REQUIRE(a != nullptr);
  BOOST_CHECK(a->state == st::stopping);
  BOOST_CHECK_EQUAL(a->node_type, "worker");
  BOOST_CHECK_EQUAL(a->launch_request_id, "lr-a");
  BOOST_CHECK_EQUAL(a->provider_instance_id, "p-a");
  BOOST_CHECK_EQUAL(a->node_id, "node-a");
  BOOST_CHECK_EQUAL(a->version, 5);
  BOOST_CHECK_EQUAL(a->create_time_ms, 7);
  BOOST_CHECK_EQUAL(a->state_time_ms, 9);
  BOOST_REQUIRE_EQUAL(a->history.size(), 5u);
  BOOST_CHECK(a->history[4].from == st::rayd_running);
  BOOST_CHECK(a->history[4].to == st::stopping);
  BOOST_CHECK_EQUAL(a->history[4].reason, "idle for 61 s (timeout 60 s)");
  BOOST_CHECK_EQUAL(a->history[4].time_ms, 9);
  BOOST_CHECK(t.find("b")->state == st::queued);
  // The table is its own column family: nothing leaked into another.
  BOOST_CHECK(db->scan("actors")->empty());
  BOOST_CHECK_EQUAL(db->scan(autoscale::instance_table_name)->size(), 2u);
}

BOOST_AUTO_TEST_CASE(a_failed_commit_discards_what_was_staged) {
  persistence::test_store db;
  {
    instance_table t{db};
    bring(t, "a", st::requested);
    BOOST_REQUIRE(!t.commit());
    db.fail_writes(1);
    auto alloc = to("a", st::allocated);
    alloc.provider_instance_id = "p-a";
    BOOST_REQUIRE(t.apply(alloc, 2));
    BOOST_REQUIRE(t.queue("b", "worker", "demand", 2));
    BOOST_CHECK(t.dirty());
    BOOST_CHECK(t.commit()); // the error
    BOOST_CHECK(!t.dirty());
    // As if never applied: REQUESTED at version 2, no row b.
    BOOST_CHECK(t.find("a")->state == st::requested);
    BOOST_CHECK_EQUAL(t.find("a")->version, 2);
    BOOST_CHECK(t.find("b") == nullptr);
    // A retry is a first attempt, version checks included.
    alloc.expected_version = 2;
    BOOST_REQUIRE(t.apply(alloc, 3));
    BOOST_REQUIRE(!t.commit());
  }
  instance_table t{db};
  BOOST_REQUIRE(!t.load());
  BOOST_CHECK(t.find("a")->state == st::allocated);
  BOOST_CHECK_EQUAL(t.find("a")->version, 3);
  BOOST_CHECK(t.find("b") == nullptr);
}

BOOST_AUTO_TEST_CASE(a_corrupt_row_is_a_storage_error_naming_it) {
  auto db = persistence::make_memory_store();
  BOOST_REQUIRE(!db->put(autoscale::instance_table_name, "i9", "{\"instance_id\": 3}"));
  instance_table t{*db};
  auto err = t.load();
  BOOST_REQUIRE(err);
  BOOST_CHECK(code_of(err) == errc::storage_error);
  BOOST_CHECK(describe(err).find("'i9'") != std::string::npos);
  auto row = instance_table::codec::encode(instance_row{});
  auto bad = row;
  bad.replace(bad.find("\"QUEUED\""), 8, "\"BOGUS\"");
  BOOST_REQUIRE(!db->put(autoscale::instance_table_name, "i9", bad));
  auto err2 = t.load();
  BOOST_REQUIRE(err2);
  BOOST_CHECK(describe(err2).find("BOGUS") != std::string::npos);
}

BOOST_AUTO_TEST_CASE(reconcile_moves_rows_on_what_is_observed) {
  auto db = persistence::make_memory_store();
  instance_table t{*db};
  bring(t, "req-listed", st::requested, 0);
  bring(t, "req-late", st::requested, 0);
  bring(t, "req-killed", st::requested, 0);
  bring(t, "alloc-joined", st::allocated, 0);
  bring(t, "alloc-slow", st::allocated, 0);
  bring(t, "alloc-stuck", st::allocated, 0);
  bring(t, "alloc-lost", st::allocated, 0);
  bring(t, "run-ok", st::rayd_running, 0);
  bring(t, "run-gone", st::rayd_running, 0);
  bring(t, "run-dead", st::rayd_running, 0);
  bring(t, "run-unseen", st::rayd_running, 0);
  bring(t, "stop-gone", st::stopping, 0);
  bring(t, "stop-still", st::stopping, 0);
  bring(t, "tf-gone", st::termination_failed, 0);
  bring(t, "sf-gone", st::start_failed, 0);
  bring(t, "af-late", st::allocation_failed, 0);
  bring(t, "done", st::terminated, 0);
  // Later rows: within their timeouts.
  BOOST_REQUIRE(t.queue("req-fresh", "worker", "demand", 900));
  auto fresh = to("req-fresh", st::requested);
  fresh.launch_request_id = "lr-fresh";
  BOOST_REQUIRE(t.apply(fresh, 900));
  bring(t, "alloc-fresh", st::allocated, 900);

  reconcile_input in;
  in.now_ms = 1000;
  in.allocation_timeout_ms = 500;
  in.start_timeout_ms = 500;
  in.provider = {listed("req-listed"),  listed("req-killed", true),
                 listed("alloc-joined"), listed("alloc-slow"),
                 listed("alloc-stuck"),  listed("alloc-lost", true),
                 listed("alloc-fresh"),  listed("run-ok"),
                 listed("run-dead"),     listed("run-unseen"),
                 listed("stop-still"),   listed("tf-gone", true),
                 listed("af-late"),      listed("stranger"),
                 {"p-untagged", "", "", false}};
  // run-gone: not listed at all. alloc-slow's node is dead (an earlier try).
  in.nodes = {{"n-joined", "alloc-joined", true}, {"n-ok", "run-ok", true},
              {"n-dead", "run-dead", false},      {"n-slow", "alloc-slow", false},
              {"head", "", true}};
  auto res = reconcile(t, in);

  auto expect = [&res, &t](const std::string& id, st target, const std::string& word) {
    auto* u = update_for(res, id);
    BOOST_REQUIRE_MESSAGE(u != nullptr, "no update for " << id);
    BOOST_CHECK_MESSAGE(u->to == target, id << " -> " << to_string(u->to));
    BOOST_CHECK_MESSAGE(u->reason.find(word) != std::string::npos, id << ": " << u->reason);
    BOOST_REQUIRE(u->expected_version);
    BOOST_CHECK_EQUAL(*u->expected_version, t.find(id)->version);
  };
  expect("req-listed", st::allocated, "p-req-listed");
  BOOST_CHECK_EQUAL(update_for(res, "req-listed")->provider_instance_id, "p-req-listed");
  expect("req-late", st::allocation_failed, "timeout 500 ms");
  expect("req-killed", st::allocation_failed, "terminated");
  expect("alloc-joined", st::rayd_running, "n-joined");
  BOOST_CHECK_EQUAL(update_for(res, "alloc-joined")->node_id, "n-joined");
  expect("alloc-slow", st::start_failed, "no rayd node joined");
  expect("alloc-stuck", st::start_failed, "no rayd node joined");
  expect("alloc-lost", st::terminated, "no longer lists");
  expect("run-gone", st::terminated, "no longer lists");
  expect("run-dead", st::stopping, "dead");
  expect("stop-gone", st::terminated, "no longer lists");
  expect("tf-gone", st::terminated, "no longer lists");
  expect("sf-gone", st::terminated, "no longer lists");
  expect("af-late", st::stopping, "after the allocation failed");
  for (auto id : {"req-fresh", "alloc-fresh", "run-ok", "run-unseen",
                  "stop-still", "done"})
    BOOST_CHECK_MESSAGE(update_for(res, id) == nullptr, id << " should not change");
  BOOST_CHECK_EQUAL(res.updates.size(), 13u);
  // "stranger" is tagged with an id no row has; untagged instances are not ours.
  BOOST_CHECK(res.unknown_provider_instances == std::vector<std::string>{"p-stranger"});

  // Nothing changed until applied; applying all of them works as proposed.
  BOOST_CHECK(t.find("req-listed")->state == st::requested);
  for (auto& u : res.updates)
    BOOST_REQUIRE_MESSAGE(t.apply(u, 1000), "apply " << u.instance_id);
  BOOST_CHECK(t.find("alloc-joined")->state == st::rayd_running);
  BOOST_CHECK_EQUAL(t.find("alloc-joined")->node_id, "n-joined");
  BOOST_CHECK_EQUAL(t.find("req-late")->error.find("not listed"), 0u);
  // Applying the same round twice is refused by the versions, not done twice.
  for (auto& u : res.updates)
    BOOST_CHECK(!t.apply(u, 1001));
}

BOOST_AUTO_TEST_CASE(the_next_round_continues_from_what_the_last_one_applied) {
  auto db = persistence::make_memory_store();
  instance_table t{*db};
  bring(t, "i", st::requested, 0);
  reconcile_input in;
  in.now_ms = 10;
  in.provider = {listed("i")};
  in.nodes = {{"n1", "i", true}};
  // One step per round: ALLOCATED now, RAYD_RUNNING in the next one.
  auto r1 = reconcile(t, in);
  BOOST_REQUIRE_EQUAL(r1.updates.size(), 1u);
  BOOST_CHECK(r1.updates[0].to == st::allocated);
  BOOST_REQUIRE(t.apply(r1.updates[0], 10));
  auto r2 = reconcile(t, in);
  BOOST_REQUIRE_EQUAL(r2.updates.size(), 1u);
  BOOST_CHECK(r2.updates[0].to == st::rayd_running);
  BOOST_REQUIRE(t.apply(r2.updates[0], 11));
  BOOST_CHECK(reconcile(t, in).updates.empty()); // settled
}

BOOST_AUTO_TEST_CASE(a_head_restart_never_launches_an_instance_twice) {
  temp_dir dir;
  std::vector<listed_instance> provider; // what the provider has, across the "crash"
  {
    auto db = open_db(dir);
    instance_table t{*db};
    // The policy queued three; the launcher requested two (committed first,
    // then called the provider), the provider created one of them, and the
    // head died before anything else. Row "c" was never requested.
    for (auto id : {"a", "b", "c"})
      BOOST_REQUIRE(t.queue(id, "worker", "demand", 0));
    BOOST_REQUIRE(!t.commit());
    auto launch = to_request(t, provider, 2);
    BOOST_REQUIRE_EQUAL(launch.size(), 2u);
    BOOST_CHECK_EQUAL(launch[0]->instance_id, "a");
    BOOST_CHECK_EQUAL(launch[1]->instance_id, "b");
    std::vector<std::string> ids;
    for (auto* r : launch)
      ids.push_back(r->instance_id);
    for (auto& id : ids) {
      auto req = to(id, st::requested, "launch request lr-1");
      req.launch_request_id = "lr-1";
      BOOST_REQUIRE(t.apply(req, 1));
    }
    BOOST_REQUIRE(!t.commit());
    provider.push_back({"p-a", "a", "lr-1", false}); // create() of a went through
  }
  // The restarted head.
  auto db = open_db(dir);
  instance_table t{*db};
  BOOST_REQUIRE(!t.load());
  BOOST_CHECK(t.find("a")->state == st::requested);
  BOOST_CHECK(t.find("b")->state == st::requested);
  // Only the never-requested row is launched: neither a (listed) nor b (whose
  // create may still be under way) is requested again.
  auto launch = to_request(t, provider, 10);
  BOOST_REQUIRE_EQUAL(launch.size(), 1u);
  BOOST_CHECK_EQUAL(launch[0]->instance_id, "c");
  reconcile_input in;
  in.now_ms = 2;
  in.provider = provider;
  auto res = reconcile(t, in);
  BOOST_REQUIRE_EQUAL(res.updates.size(), 1u);
  BOOST_CHECK_EQUAL(res.updates[0].instance_id, "a");
  BOOST_CHECK(res.updates[0].to == st::allocated);
  // b is never relaunched as b: it fails after the timeout (the policy then
  // queues a new row if the demand is still there).
  in.now_ms = 2 + in.allocation_timeout_ms;
  auto late = reconcile(t, in);
  auto* ub = update_for(late, "b");
  BOOST_REQUIRE(ub != nullptr);
  BOOST_CHECK(ub->to == st::allocation_failed);
  BOOST_CHECK_EQUAL(to_request(t, provider, 10).size(), 1u); // still only c
}

BOOST_AUTO_TEST_CASE(a_queued_row_the_provider_already_lists_is_not_requested_again) {
  // A launcher that called the provider before its QUEUED -> REQUESTED was
  // durable (or a row re-queued by hand): the tag on the provider's instance
  // is the evidence, live or terminated.
  auto db = persistence::make_memory_store();
  instance_table t{*db};
  for (auto id : {"q-live", "q-dead", "q-new"})
    BOOST_REQUIRE(t.queue(id, "worker", "demand", 0));
  std::vector<listed_instance> provider{{"p-live", "q-live", "lr-9", false},
                                          {"p-dead", "q-dead", "", true}};
  auto launch = to_request(t, provider, 10);
  BOOST_REQUIRE_EQUAL(launch.size(), 1u);
  BOOST_CHECK_EQUAL(launch[0]->instance_id, "q-new");
  reconcile_input in;
  in.now_ms = 5;
  in.provider = provider;
  auto res = reconcile(t, in);
  BOOST_REQUIRE_EQUAL(res.updates.size(), 2u);
  for (auto& u : res.updates) {
    BOOST_CHECK(u.to == st::requested);
    BOOST_CHECK(t.apply(u, 5));
  }
  BOOST_CHECK_EQUAL(t.find("q-live")->launch_request_id, "lr-9");
  BOOST_CHECK(!t.find("q-dead")->launch_request_id.empty());
  // Next round: the live one is allocated, the dead one failed.
  auto next = reconcile(t, in);
  BOOST_CHECK(update_for(next, "q-live")->to == st::allocated);
  BOOST_CHECK(update_for(next, "q-dead")->to == st::allocation_failed);
  // to_request() honours its bound.
  BOOST_REQUIRE(t.queue("q-2", "worker", "demand", 6));
  BOOST_CHECK_EQUAL(to_request(t, provider, 1).size(), 1u);
  BOOST_CHECK(to_request(t, provider, 0).empty());
}

BOOST_AUTO_TEST_CASE(a_termination_that_does_not_take_is_retried_with_back_off) {
  auto db = persistence::make_memory_store();
  instance_table t{*db};
  bring(t, "i", st::stopping, 0);
  reconcile_input in;
  in.provider = {listed("i")};
  in.stop_timeout_ms = 100;
  in.termination_retry_ms = 10;
  // One round at `now`: reconcile, apply; the update applied, if any.
  auto step = [&t, &in](int64_t now) -> std::optional<instance_update> {
    in.now_ms = now;
    auto res = reconcile(t, in);
    if (res.updates.empty())
      return std::nullopt;
    BOOST_REQUIRE_EQUAL(res.updates.size(), 1u);
    BOOST_REQUIRE(t.apply(res.updates[0], now));
    return res.updates[0];
  };
  BOOST_CHECK(!step(99)); // within the stop timeout
  auto u = step(100);
  BOOST_REQUIRE(u);
  BOOST_CHECK(u->to == st::termination_failed);
  BOOST_CHECK(t.find("i")->error.find("still listed") != std::string::npos);
  // First retry after 10 ms, then 20, 40, ... at most 160.
  int64_t now = 100;
  std::vector<int64_t> waits;
  for (int k = 0; k < 7; ++k) {
    int64_t failed_at = now;
    while (!step(++now)) {
    }
    BOOST_REQUIRE(t.find("i")->state == st::stopping);
    waits.push_back(now - failed_at);
    now += 100; // the stop times out again
    BOOST_REQUIRE(step(now));
    BOOST_REQUIRE(t.find("i")->state == st::termination_failed);
  }
  BOOST_CHECK((waits == std::vector<int64_t>{10, 20, 40, 80, 160, 160, 160}));
  // Gone at last: TERMINATED from either state.
  in.provider = {listed("i", true)};
  auto done = step(now + 1);
  BOOST_REQUIRE(done);
  BOOST_CHECK(done->to == st::terminated);
}
