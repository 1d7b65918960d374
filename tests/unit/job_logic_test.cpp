// Unit tests of the job logic on the in-memory store: job table (group
// commit, reload, retention, failed commits), placement policy, log table
// (blocks, idempotent appends, failed commits), blob table (content
// addressing); and the log actor's reads (an actor system, no sockets).
#define BOOST_TEST_MODULE job_logic
#include <boost/test/unit_test.hpp>

#include <caf/all.hpp>

#include "actors/gcs/blob_table.hpp"
#include "actors/gcs/spawn.hpp"
#include "actors/registry.hpp"
#include "persistence/test_store.hpp"
#include "actors/gcs/job_table.hpp"
#include "actors/gcs/log_table.hpp"
#include "actors/gcs/job_placement.hpp"
#include "common/archive.hpp"
#include "common/error.hpp"
#include "common/package_uri.hpp"
#include "tests/support/actor_config.hpp"

using namespace rayd;
using namespace rayd::gcs;

namespace {

job_info make_job(const std::string& id, uint64_t seq,
                  job_state state = job_state::pending, int64_t end_ms = 0) {
  job_info j;
  j.spec.submission_id = id;
  j.spec.entrypoint = "echo " + id;
  j.spec.metadata = {{"owner", "test"}};
  j.spec.env_vars = {{"A", "1"}};
  j.spec.resources = {{"CPU", 1}};
  j.state = state;
  j.seq = seq;
  j.submit_time_ms = 1000 + static_cast<int64_t>(seq);
  j.end_time_ms = end_ms;
  return j;
}

node_capacity node(std::string id, resource_map total, bool head = false,
                   bool alive = true, resource_map reserved = {}) {
  node_capacity n;
  n.node_id = id;
  n.name = "n-" + id;
  n.is_head = head;
  n.alive = alive;
  n.total = std::move(total);
  n.reserved = std::move(reserved);
  return n;
}

} // namespace

BOOST_AUTO_TEST_SUITE(job_table_suite)

BOOST_AUTO_TEST_CASE(staged_rows_reach_the_store_only_on_commit) {
  auto db = persistence::make_memory_store();
  job_table t{*db};
  BOOST_REQUIRE(!t.load());
  t.stage(make_job("a", t.next_seq()));
  BOOST_CHECK(t.dirty());
  BOOST_CHECK(t.find("a") != nullptr); // visible in memory at once
  BOOST_CHECK(db->scan("jobs")->empty());
  BOOST_REQUIRE(!t.commit());
  BOOST_CHECK(!t.dirty());
  BOOST_CHECK_EQUAL(db->scan("jobs")->size(), 1u);
}

BOOST_AUTO_TEST_CASE(rows_round_trip_through_a_reload) {
  auto db = persistence::make_memory_store();
  {
    job_table t{*db};
    BOOST_REQUIRE(!t.load());
    auto j = make_job("a", t.next_seq(), job_state::failed, 5000);
    j.message = "the entrypoint exited with code 3";
    j.exit_code = 3;
    j.node_id = "n1";
    j.pid = 42;
    j.stop_requested = true;
    j.spec.working_dir = "file:///srv";
    t.stage(j);
    t.stage(make_job("b", t.next_seq()));
    BOOST_REQUIRE(!t.commit());
  }
  job_table t{*db};
  BOOST_REQUIRE(!t.load());
  BOOST_REQUIRE_EQUAL(t.size(), 2u);
  auto* a = t.find("a");
  BOOST_REQUIRE(a);
  BOOST_CHECK(a->state == job_state::failed);
  BOOST_CHECK_EQUAL(a->exit_code, 3);
  BOOST_CHECK_EQUAL(a->message, "the entrypoint exited with code 3");
  BOOST_CHECK_EQUAL(a->node_id, "n1");
  BOOST_CHECK_EQUAL(a->pid, 42);
  BOOST_CHECK(a->stop_requested);
  BOOST_CHECK_EQUAL(a->spec.working_dir, "file:///srv");
  BOOST_CHECK_EQUAL(a->spec.metadata.at("owner"), "test");
  BOOST_CHECK_EQUAL(a->spec.resources.at("CPU"), 1.0);
  // Admission numbers continue above what was loaded.
  BOOST_CHECK_EQUAL(t.next_seq(), 3u);
  auto order = t.by_seq();
  BOOST_CHECK_EQUAL(order[0]->spec.submission_id, "a");
  BOOST_CHECK_EQUAL(order[1]->spec.submission_id, "b");
}

BOOST_AUTO_TEST_CASE(erase_is_durable) {
  auto db = persistence::make_memory_store();
  job_table t{*db};
  BOOST_REQUIRE(!t.load());
  t.stage(make_job("a", 1));
  BOOST_REQUIRE(!t.commit());
  t.stage_erase("a");
  BOOST_CHECK(t.find("a") == nullptr);
  BOOST_REQUIRE(!t.commit());
  job_table again{*db};
  BOOST_REQUIRE(!again.load());
  BOOST_CHECK_EQUAL(again.size(), 0u);
}

BOOST_AUTO_TEST_CASE(a_failed_commit_leaves_the_rows_as_on_disk) {
  persistence::test_store db;
  job_table t{db};
  t.stage(make_job("a", 1));
  BOOST_REQUIRE(!t.commit());
  auto running = *t.find("a");
  running.state = job_state::running;
  t.stage(running);
  t.stage(make_job("b", 2));
  db.fail_writes(1);
  BOOST_CHECK(code_of(t.commit()) == errc::storage_error);
  BOOST_CHECK(!t.dirty());
  BOOST_CHECK(t.find("a")->state == job_state::pending);
  BOOST_CHECK(t.find("b") == nullptr);
  BOOST_CHECK_EQUAL(t.size(), 1u);
  // An admission number is never handed out twice, even after a discard.
  BOOST_CHECK_EQUAL(t.next_seq(), 3u);
}

BOOST_AUTO_TEST_CASE(corrupt_rows_are_a_storage_error) {
  auto db = persistence::make_memory_store();
  BOOST_REQUIRE(!db->put("jobs", "x", "not json"));
  job_table t{*db};
  auto err = t.load();
  BOOST_CHECK(code_of(err) == errc::storage_error);
  BOOST_REQUIRE(!db->put("jobs", "x", R"({"submission_id": "x", "state": 99})"));
  BOOST_CHECK(code_of(t.load()) == errc::storage_error);
}

BOOST_AUTO_TEST_CASE(retention_deletes_the_oldest_ended_jobs_first) {
  auto db = persistence::make_memory_store();
  job_table t{*db};
  BOOST_REQUIRE(!t.load());
  t.stage(make_job("old", 1, job_state::succeeded, 100));
  t.stage(make_job("mid", 2, job_state::failed, 200));
  t.stage(make_job("new", 3, job_state::stopped, 300));
  t.stage(make_job("running", 4, job_state::running));
  t.stage(make_job("queued", 5, job_state::pending));
  retention_policy count_only{2, 0};
  auto v = t.retention_victims(count_only, 1000);
  BOOST_REQUIRE_EQUAL(v.size(), 1u);
  BOOST_CHECK_EQUAL(v[0], "old");
  retention_policy age_only{0, 150};
  v = t.retention_victims(age_only, 400); // 'old' ended 300 ms ago, 'mid' 200
  BOOST_REQUIRE_EQUAL(v.size(), 2u);
  BOOST_CHECK_EQUAL(v[0], "old");
  BOOST_CHECK_EQUAL(v[1], "mid");
  // Jobs that have not ended are never victims, however many there are.
  retention_policy none_kept{1, 1};
  v = t.retention_victims(none_kept, 1'000'000);
  BOOST_CHECK_EQUAL(v.size(), 3u);
}

BOOST_AUTO_TEST_CASE(submission_ids_are_checked) {
  BOOST_CHECK(!check_submission_id("job-1_a.B"));
  BOOST_CHECK(code_of(check_submission_id("")) == errc::invalid_argument);
  BOOST_CHECK(code_of(check_submission_id("a/b")) == errc::invalid_argument);
  BOOST_CHECK(code_of(check_submission_id(std::string("a\0b", 3)))
              == errc::invalid_argument);
  BOOST_CHECK(code_of(check_submission_id(std::string(129, 'x')))
              == errc::invalid_argument);
}

BOOST_AUTO_TEST_CASE(states_have_names) {
  job_state s;
  BOOST_CHECK(from_string("running", s) && s == job_state::running);
  BOOST_CHECK(from_string("STOPPED", s) && s == job_state::stopped);
  BOOST_CHECK(!from_string("DONE", s));
  BOOST_CHECK(is_terminal(job_state::failed) && !is_terminal(job_state::pending));
}

BOOST_AUTO_TEST_SUITE_END()

BOOST_AUTO_TEST_SUITE(placement_suite)

BOOST_AUTO_TEST_CASE(no_resources_means_the_head) {
  auto p = place_entrypoint({}, {node("w", {{"CPU", 8}}), node("h", {{"CPU", 1}}, true)});
  BOOST_CHECK(p.kind == placement::placed);
  BOOST_CHECK_EQUAL(p.node_id, "h");
  // ... even when the head's CPUs are all reserved: it reserves nothing.
  p = place_entrypoint({{"CPU", 0}}, {node("h", {{"CPU", 1}}, true, true, {{"CPU", 1}})});
  BOOST_CHECK_EQUAL(p.node_id, "h");
  p = place_entrypoint({}, {node("h", {{"CPU", 1}}, true, false)});
  BOOST_CHECK(p.kind == placement::busy);
}

BOOST_AUTO_TEST_CASE(resources_go_where_they_fit_with_the_most_free_cpu) {
  std::vector<node_capacity> nodes{
    node("h", {{"CPU", 2}}, true),
    node("a", {{"CPU", 4}, {"ssd", 1}}),
    node("b", {{"CPU", 4}}, false, true, {{"CPU", 3}}),
  };
  auto p = place_entrypoint({{"CPU", 1}}, nodes);
  BOOST_CHECK_EQUAL(p.node_id, "a");
  p = place_entrypoint({{"ssd", 1}}, nodes);
  BOOST_CHECK_EQUAL(p.node_id, "a");
  // A tie on free CPU prefers the head.
  nodes[1].reserved = {{"CPU", 2}};
  p = place_entrypoint({{"CPU", 1}}, nodes);
  BOOST_CHECK_EQUAL(p.node_id, "h");
}

BOOST_AUTO_TEST_CASE(busy_versus_infeasible) {
  std::vector<node_capacity> nodes{
    node("h", {{"CPU", 2}}, true, true, {{"CPU", 2}}),
    node("g", {{"CPU", 1}, {"GPU", 1}}, false, true, {{"GPU", 1}}),
    node("dead", {{"CPU", 64}}, false, false),
  };
  auto busy = place_entrypoint({{"CPU", 2}}, nodes);
  BOOST_CHECK(busy.kind == placement::busy);
  BOOST_CHECK(busy.reason.find("waiting for resources") != std::string::npos);
  busy = place_entrypoint({{"GPU", 1}}, nodes);
  BOOST_CHECK(busy.kind == placement::busy);
  // Dead nodes do not count; no single node has CPU 2 and GPU 1.
  auto no = place_entrypoint({{"CPU", 64}}, nodes);
  BOOST_CHECK(no.kind == placement::infeasible);
  BOOST_CHECK(no.reason.find("CPU: 64") != std::string::npos);
  no = place_entrypoint({{"CPU", 2}, {"GPU", 1}}, nodes);
  BOOST_CHECK(no.kind == placement::infeasible);
  no = place_entrypoint({{"tpu", 1}}, nodes);
  BOOST_CHECK(no.kind == placement::infeasible);
}

BOOST_AUTO_TEST_CASE(fits_counts_missing_resources_as_zero) {
  BOOST_CHECK(fits({{"CPU", 1}}, {{"CPU", 1}}));
  BOOST_CHECK(!fits({{"CPU", 1.5}}, {{"CPU", 1}}));
  BOOST_CHECK(!fits({{"GPU", 1}}, {{"CPU", 8}}));
  BOOST_CHECK(fits({{"GPU", 0}}, {{"CPU", 8}}));
  BOOST_CHECK_EQUAL(free_of(node("x", {{"CPU", 4}}, false, true, {{"CPU", 1.5}}))["CPU"], 2.5);
}

BOOST_AUTO_TEST_SUITE_END()

BOOST_AUTO_TEST_SUITE(log_table_suite)

BOOST_AUTO_TEST_CASE(appends_span_blocks_and_read_back) {
  auto db = persistence::make_memory_store();
  log_table t{*db};
  BOOST_REQUIRE(!t.load());
  std::string data;
  for (int i = 0; data.size() < 3 * log_table::block_bytes + 123; ++i)
    data += "line " + std::to_string(i) + "\n";
  // Appended in odd-sized pieces.
  uint64_t off = 0;
  for (std::size_t piece : {1u, 70000u, 5u, 100000u}) {
    auto len = t.append("j", off, std::string_view{data}.substr(off, piece));
    BOOST_REQUIRE(len);
    off = *len;
  }
  auto len = t.append("j", off, std::string_view{data}.substr(off));
  BOOST_REQUIRE(len);
  BOOST_CHECK_EQUAL(*len, data.size());
  BOOST_CHECK_EQUAL(t.durable_length("j"), 0u); // nothing committed yet
  BOOST_REQUIRE(!t.commit());
  BOOST_CHECK_EQUAL(t.durable_length("j"), data.size());
  auto all = t.read("j", 0, data.size() + 10);
  BOOST_REQUIRE(all);
  BOOST_CHECK(*all == data);
  auto mid = t.read("j", 65530, 20); // across a block boundary
  BOOST_REQUIRE(mid);
  BOOST_CHECK(*mid == data.substr(65530, 20));
  // Survives a reload.
  log_table again{*db};
  BOOST_REQUIRE(!again.load());
  BOOST_CHECK_EQUAL(again.length("j"), data.size());
  BOOST_CHECK(*again.read("j", 0, data.size()) == data);
}

BOOST_AUTO_TEST_CASE(appends_are_idempotent_by_offset) {
  auto db = persistence::make_memory_store();
  log_table t{*db};
  BOOST_REQUIRE(!t.load());
  BOOST_CHECK_EQUAL(*t.append("j", 0, "hello "), 6u);
  // A re-sent chunk that overlaps adds only what is new.
  BOOST_CHECK_EQUAL(*t.append("j", 0, "hello world"), 11u);
  BOOST_CHECK_EQUAL(*t.append("j", 6, "world"), 11u);
  // A gap is refused: nothing is added.
  BOOST_CHECK_EQUAL(*t.append("j", 20, "lost"), 11u);
  // An empty append just tells the length.
  BOOST_CHECK_EQUAL(*t.append("j", 0, ""), 11u);
  BOOST_REQUIRE(!t.commit());
  BOOST_CHECK_EQUAL(*t.read("j", 0, 100), "hello world");
  BOOST_CHECK_EQUAL(t.length("other"), 0u);
}

BOOST_AUTO_TEST_CASE(drop_removes_every_block) {
  auto db = persistence::make_memory_store();
  log_table t{*db};
  BOOST_REQUIRE(!t.load());
  BOOST_REQUIRE(t.append("j", 0, std::string(3 * log_table::block_bytes, 'x')));
  BOOST_REQUIRE(t.append("k", 0, "keep"));
  BOOST_REQUIRE(!t.commit());
  t.drop("j");
  BOOST_REQUIRE(!t.commit());
  BOOST_CHECK_EQUAL(t.length("j"), 0u);
  auto rows = db->scan("job_logs");
  BOOST_REQUIRE(rows);
  for (auto& [key, _] : *rows)
    BOOST_CHECK_MESSAGE(key.find("/j") == std::string::npos, key);
  BOOST_CHECK_EQUAL(*t.read("k", 0, 10), "keep");
}

BOOST_AUTO_TEST_CASE(a_failed_commit_drops_the_staged_bytes_and_a_retry_appends_them) {
  persistence::test_store db;
  log_table t{db};
  BOOST_REQUIRE(!t.load());
  BOOST_REQUIRE(t.append("j", 0, "one\n"));
  BOOST_REQUIRE(!t.commit());
  BOOST_CHECK_EQUAL(*t.append("j", 4, "two\n"), 8u);
  db.fail_writes(1);
  BOOST_CHECK(t.commit());
  // Back to what is on disk: the length too, so the supervisor's retry of the
  // same offset is appended, not skipped as a duplicate.
  BOOST_CHECK_EQUAL(t.length("j"), 4u);
  BOOST_CHECK(!t.dirty());
  BOOST_CHECK_EQUAL(*t.append("j", 4, "two\n"), 8u);
  BOOST_REQUIRE(!t.commit());
  log_table again{db};
  BOOST_REQUIRE(!again.load());
  BOOST_CHECK_EQUAL(*again.read("j", 0, 100), "one\ntwo\n");
}

BOOST_AUTO_TEST_SUITE_END()

BOOST_AUTO_TEST_SUITE(blob_table_suite)

BOOST_AUTO_TEST_CASE(blobs_are_named_by_their_hash) {
  auto db = persistence::make_memory_store();
  gcs::blob_table t{*db};
  std::string data(2 * gcs::blob_table::chunk_bytes + 7, 'b');
  auto hash = sha256_hex(data);
  BOOST_CHECK_EQUAL(*t.put(hash, data), true);
  BOOST_CHECK_EQUAL(*t.put(hash, data), false); // already there
  BOOST_CHECK_EQUAL(**t.size(hash), data.size());
  std::string back;
  while (back.size() < data.size())
    back += *t.read(hash, back.size(), 1000000);
  BOOST_CHECK(back == data);
  BOOST_CHECK(t.read(hash, data.size(), 10)->empty());
  // Wrong hash, bad name, missing blob.
  BOOST_CHECK(code_of(t.put(sha256_hex("other"), data).error()) == errc::invalid_argument);
  BOOST_CHECK(code_of(t.put("../../etc", data).error()) == errc::invalid_argument);
  BOOST_CHECK(code_of(t.read(sha256_hex("none"), 0, 1).error()) == errc::not_found);
  BOOST_REQUIRE(!t.drop(hash));
  BOOST_CHECK(!*t.size(hash));
}

BOOST_AUTO_TEST_CASE(the_size_limit_holds) {
  auto db = persistence::make_memory_store();
  gcs::blob_table t{*db, 1000};
  std::string data(1001, 'x');
  auto r = t.put(sha256_hex(data), data);
  BOOST_REQUIRE(!r);
  BOOST_CHECK(code_of(r.error()) == errc::invalid_argument);
}

BOOST_AUTO_TEST_CASE(package_uris) {
  auto h = sha256_hex("x");
  BOOST_CHECK_EQUAL(*package_hash(package_uri(h)), h);
  BOOST_CHECK(!package_hash("gcs://abc.tar.gz"));
  BOOST_CHECK(!package_hash("file:///x"));
  BOOST_CHECK(!package_hash("gcs://" + std::string(64, 'G') + ".tar.gz"));
}

BOOST_AUTO_TEST_SUITE_END()

// ------------------------------------------------------ the log actor

namespace {

struct log_fixture {
  // The store outlives the actor system, which waits for its actors.
  persistence::test_store db;
  caf::actor_system_config cfg;
  caf::actor_system sys{test::quiet_config(cfg)};
  job_log_actor logs = gcs::spawn_log_actor(sys, std::make_shared<log_table>(db));
  caf::scoped_actor self{sys};

  ~log_fixture() {
    caf::anon_send_exit(logs, caf::exit_reason::user_shutdown);
  }

  caf::expected<log_slice> read(const std::string& id, uint64_t offset,
                                int64_t wait_ms = 0) {
    caf::expected<log_slice> out{caf::error{}};
    self->request(logs, caf::infinite, atoms::job_logs::value, id, offset,
                  uint64_t{1024}, wait_ms)
      .receive([&](log_slice& s) { out = std::move(s); },
               [&](caf::error& err) { out = std::move(err); });
    return out;
  }

  caf::expected<uint64_t> append(const std::string& id, uint64_t offset,
                                 std::string data) {
    caf::expected<uint64_t> out{caf::error{}};
    self->request(logs, caf::infinite, atoms::log_append::value, id, offset,
                  std::move(data))
      .receive([&](uint64_t n) { out = n; },
               [&](caf::error& err) { out = std::move(err); });
    return out;
  }
};

} // namespace

BOOST_FIXTURE_TEST_SUITE(log_actor_suite, log_fixture)

BOOST_AUTO_TEST_CASE(reads_know_only_the_jobs_they_were_told_of) {
  auto unknown = read("nope", 0);
  BOOST_REQUIRE(!unknown);
  BOOST_CHECK(code_of(unknown.error()) == errc::not_found);
  self->send(logs, atoms::log_open::value, std::string{"j"});
  BOOST_CHECK_EQUAL(*append("j", 0, "hello\n"), 6u);
  auto s = read("j", 0);
  BOOST_REQUIRE(s);
  BOOST_CHECK_EQUAL(s->data, "hello\n");
  BOOST_CHECK(!s->closed);
  // A follower waiting at the end hears that the job ended.
  self->send(logs, atoms::log_close::value, std::string{"j"});
  auto end = read("j", 6, 10000);
  BOOST_REQUIRE(end);
  BOOST_CHECK(end->closed);
  BOOST_CHECK(end->data.empty());
  // Deleted: gone for readers.
  self->send(logs, atoms::log_drop::value, std::string{"j"});
  BOOST_CHECK(code_of(read("j", 0).error()) == errc::not_found);
}

BOOST_AUTO_TEST_CASE(an_append_that_cannot_be_stored_is_an_error_and_unseen) {
  self->send(logs, atoms::log_open::value, std::string{"j"});
  BOOST_REQUIRE(append("j", 0, "a\n"));
  db.fail_writes(1);
  auto failed = append("j", 2, "b\n");
  BOOST_REQUIRE(!failed);
  BOOST_CHECK(code_of(failed.error()) == errc::storage_error);
  BOOST_CHECK_EQUAL(read("j", 0)->data, "a\n");
  // The supervisor's retry lands.
  BOOST_CHECK_EQUAL(*append("j", 2, "b\n"), 4u);
  BOOST_CHECK_EQUAL(read("j", 0)->data, "a\nb\n");
}

BOOST_AUTO_TEST_SUITE_END()

// ------------------------------------------------------ the job manager

namespace {

struct jm_fixture {
  persistence::test_store db;
  std::unique_ptr<persistence::store> node_db = persistence::make_memory_store();
  caf::actor_system_config cfg;
  caf::actor_system sys{test::quiet_config(cfg)};
  gcs_node_actor nodes;
  job_log_actor logs = gcs::spawn_log_actor(sys, std::make_shared<log_table>(db));
  gcs_blob_actor blobs = gcs::spawn_blob_actor(sys, db);
  job_manager_actor jobs;
  caf::scoped_actor self{sys};

  jm_fixture() {
    gcs::node_actor_config ncfg;
    ncfg.db = node_db.get();
    ncfg.cluster_id = "c";
    ncfg.epoch = 1;
    nodes = *gcs::spawn_node_actor(sys, ncfg);
    gcs::job_manager_config jcfg;
    jcfg.db = &db;
    jcfg.nodes = nodes;
    jcfg.logs = logs;
    jcfg.blobs = blobs;
    jcfg.head_node_id = "head";
    jobs = *gcs::spawn_job_manager(sys, jcfg);
  }

  ~jm_fixture() {
    for (auto a : {caf::actor_cast<caf::actor>(jobs), caf::actor_cast<caf::actor>(logs),
                   caf::actor_cast<caf::actor>(blobs), caf::actor_cast<caf::actor>(nodes)})
      caf::anon_send_exit(a, caf::exit_reason::user_shutdown);
  }

  caf::expected<job_info> submit(const std::string& id) {
    job_submission s;
    s.submission_id = id;
    s.entrypoint = "true";
    caf::expected<job_info> out{caf::error{}};
    self->request(jobs, caf::infinite, atoms::job_submit::value, s)
      .receive([&](job_info& j) { out = std::move(j); },
               [&](caf::error& err) { out = std::move(err); });
    return out;
  }

  std::vector<job_info> list() {
    std::vector<job_info> out;
    self->request(jobs, caf::infinite, atoms::job_list::value)
      .receive([&](std::vector<job_info>& xs) { out = std::move(xs); },
               [](caf::error& err) { BOOST_FAIL(describe(err)); });
    return out;
  }
};

} // namespace

BOOST_FIXTURE_TEST_SUITE(job_manager_suite, jm_fixture)

// A submission whose commit failed was never admitted: it is not listed, its
// log does not exist, and submitting it again is a first submission.
BOOST_AUTO_TEST_CASE(a_submission_that_cannot_be_stored_never_happened) {
  db.fail_writes(1);
  auto failed = submit("j1");
  BOOST_REQUIRE(!failed);
  BOOST_CHECK(code_of(failed.error()) == errc::storage_error);
  BOOST_CHECK(list().empty());
  auto again = submit("j1");
  BOOST_REQUIRE_MESSAGE(again, (again ? "" : describe(again.error())));
  BOOST_CHECK_EQUAL(again->spec.submission_id, "j1");
  auto all = list();
  BOOST_REQUIRE_EQUAL(all.size(), 1u);
  BOOST_CHECK_EQUAL(all[0].spec.submission_id, "j1");
  // The log store was told of the job once it was durable.
  caf::expected<log_slice> slice{caf::error{}};
  self->request(logs, caf::infinite, atoms::job_logs::value, std::string{"j1"},
                uint64_t{0}, uint64_t{100}, int64_t{0})
    .receive([&](log_slice& s) { slice = std::move(s); },
             [&](caf::error& err) { slice = std::move(err); });
  BOOST_CHECK_MESSAGE(slice, (slice ? "" : describe(slice.error())));
}

BOOST_AUTO_TEST_SUITE_END()

BOOST_AUTO_TEST_CASE(submission_checks) {
  job_submission s;
  BOOST_CHECK(code_of(check_submission(s)) == errc::invalid_argument); // empty entrypoint
  s.entrypoint = "echo hi";
  BOOST_REQUIRE(!check_submission(s));
  BOOST_CHECK_EQUAL(s.submission_id.rfind("rayd_job_", 0), 0u); // generated
  auto bad = [](auto edit) {
    job_submission x;
    x.entrypoint = "true";
    edit(x);
    return code_of(check_submission(x)) == errc::invalid_argument;
  };
  BOOST_CHECK(bad([](job_submission& x) { x.entrypoint = std::string("a\0b", 3); }));
  BOOST_CHECK(bad([](job_submission& x) { x.entrypoint = std::string(64 * 1024 + 1, 'x'); }));
  BOOST_CHECK(bad([](job_submission& x) { x.env_vars["1X"] = "v"; }));
  BOOST_CHECK(bad([](job_submission& x) { x.env_vars["X"] = std::string("a\0", 2); }));
  BOOST_CHECK(bad([](job_submission& x) { x.resources["CPU"] = -1; }));
  BOOST_CHECK(bad([](job_submission& x) { x.working_dir = "/tmp/x"; }));
  BOOST_CHECK(bad([](job_submission& x) { x.submission_id = "a/b"; }));
  BOOST_CHECK(!bad([](job_submission& x) { x.working_dir = "file:///srv/app"; }));
}
