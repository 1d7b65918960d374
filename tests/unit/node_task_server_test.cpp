// Unit tests of the task server's parts without a running server: the lease
// queue (queue order, infeasible only against a newer view, fairness
// drains), the worker pool's bookkeeping, the node port's connection table
// (HELLO deadline, cap on unauthenticated connections, HELLO check), the
// lease reply frames, and the accept back-off shared by every listener.
#define BOOST_TEST_MODULE node_task_server
#include <boost/test/unit_test.hpp>

#include <fcntl.h>
#include <sys/resource.h>
#include <sys/socket.h>
#include <unistd.h>

#include <chrono>
#include <string>

#include "actors/node/connection_table.hpp"
#include "actors/node/lease_queue.hpp"
#include "actors/node/worker_pool.hpp"
#include "common/error.hpp"
#include "common/net.hpp"
#include "common/wire.hpp"

using namespace rayd;
using namespace rayd::node;
using namespace std::chrono_literals;
using clock_type = std::chrono::steady_clock;

namespace {

peer_capacity machine(std::string id, resource_map total) {
  return {id, "127.0.0.1:" + std::to_string(2000 + id.size()), true, total, total, {}};
}

wire::lease_request request(uint64_t id, std::string job, double cpu,
                            std::string spilled_from = "") {
  wire::lease_request r;
  r.request_id = id;
  r.job_id = std::move(job);
  r.shape = {{"CPU", cpu}};
  r.code.files = {{"hash", "driver"}};
  r.spilled_from = std::move(spilled_from);
  return r;
}

wire::frame one_frame(const std::string& bytes) {
  wire::frame_reader r;
  r.feed(bytes.data(), bytes.size());
  auto f = r.next();
  BOOST_REQUIRE(f && *f);
  return std::move(**f);
}

/// A lease queue on a node of `cpus` CPUs with `n` leases of 1 CPU for `job`,
/// served by worker `wid`.
void hold(lease_queue& q, const std::string& job, int n, uint64_t wid) {
  for (int i = 0; i < n; ++i)
    q.reserve({{"CPU", 1}}, job, wid);
}

} // namespace

BOOST_AUTO_TEST_SUITE(lease_queue_suite)

BOOST_AUTO_TEST_CASE(reservations_count_against_the_node_until_released) {
  lease_queue q{{{"CPU", 4}}};
  auto a = q.reserve({{"CPU", 3}}, "j1", 7);
  BOOST_CHECK_EQUAL(q.available().at("CPU"), 1);
  BOOST_CHECK_EQUAL(q.lease_count(), 1u);
  auto wid = q.release(a);
  BOOST_REQUIRE(wid);
  BOOST_CHECK_EQUAL(*wid, 7u);
  BOOST_CHECK(!q.release(a)); // twice: unknown
  BOOST_CHECK_EQUAL(q.available().at("CPU"), 4);
  q.reserve({{"CPU", 1}}, "j1", 7);
  q.reserve({{"CPU", 1}}, "j1", 8);
  q.release_worker(7); // a worker died: its leases go with it
  BOOST_CHECK_EQUAL(q.lease_count(), 1u);
  BOOST_CHECK_EQUAL(q.available().at("CPU"), 3);
}

BOOST_AUTO_TEST_CASE(actor_reservations_count_but_are_no_driver_lease_and_never_drained) {
  lease_queue q{{{"CPU", 4}}};
  auto a = q.reserve({{"CPU", 1}}, "j1", 7, true);
  BOOST_CHECK_EQUAL(q.available().at("CPU"), 3); // it holds its shape
  BOOST_CHECK(!q.holds_lease("j1")); // but says nothing about j1's driver
  q.reserve({{"CPU", 1}}, "j1", 7);
  BOOST_CHECK(q.holds_lease("j1"));
  // j1 holds 3 actor reservations and one lease; j2 waits: an actor's
  // reservation is never asked back, and only leases count for fairness.
  q.reserve({{"CPU", 1}}, "j1", 7, true);
  q.reserve({{"CPU", 1}}, "j1", 7, true);
  auto t0 = clock_type::now();
  q.enqueue(5, request(9, "j2", 1), t0);
  auto drains = q.rebalance(t0 + 1s, [](uint64_t) { return true; });
  BOOST_CHECK(drains.empty());
  BOOST_CHECK(q.find(a)->actor);
  BOOST_REQUIRE(q.release(a));
  BOOST_CHECK_EQUAL(q.available().at("CPU"), 1);
}

BOOST_AUTO_TEST_CASE(an_infeasible_arrival_waits_for_a_newer_view_of_the_cluster) {
  auto self = machine("self", {{"CPU", 2}});
  auto d = lease_queue::decide_arrival(request(1, "j", 64), self, {});
  BOOST_CHECK(d.kind == lease_decision::queue);
  lease_queue q{self.total};
  auto t0 = clock_type::now();
  q.enqueue(10, request(1, "j", 64), t0);
  // A view older than the request cannot call it infeasible...
  BOOST_CHECK(q.run(self, {}, t0 - 1ms).empty());
  BOOST_CHECK_EQUAL(q.queued(), 1u);
  // ...a newer one can.
  auto out = q.run(self, {}, t0 + 1ms);
  BOOST_REQUIRE_EQUAL(out.size(), 1u);
  BOOST_CHECK(out[0].decision.kind == lease_decision::infeasible);
  BOOST_CHECK_EQUAL(out[0].conn_id, 10u);
  BOOST_CHECK(q.empty());
}

BOOST_AUTO_TEST_CASE(a_shape_only_a_launchable_type_holds_waits_instead_of_failing) {
  // The autoscaler's node types travel with the view as `launchable`
  // entries: feasibility only, never a place to spill to.
  auto self = machine("self", {{"CPU", 0}});
  peer_capacity worker_type{"type:worker", "", false, {{"CPU", 2}}, {}, {}, true};
  lease_queue q{self.total};
  auto t0 = clock_type::now();
  q.enqueue(1, request(1, "j", 1), t0);
  BOOST_CHECK(q.run(self, {worker_type}, t0 + 1ms).empty()); // still queued
  BOOST_CHECK_EQUAL(q.queued(), 1u);
  // Without it (no autoscaler, or a shape no type holds): infeasible.
  auto out = q.run(self, {}, t0 + 2ms);
  BOOST_REQUIRE_EQUAL(out.size(), 1u);
  BOOST_CHECK(out[0].decision.kind == lease_decision::infeasible);
}

BOOST_AUTO_TEST_CASE(a_spilled_request_moves_on_once_a_newer_view_shows_room) {
  auto self = machine("self", {{"CPU", 1}});
  lease_queue q{self.total};
  hold(q, "other", 1, 3); // this node is full
  auto t0 = clock_type::now();
  q.enqueue(7, request(1, "j", 1, "head"), t0);
  auto fresh = machine("new-node", {{"CPU", 2}});
  // A view from before the request arrived: it stays (no ping-pong on stale views).
  BOOST_CHECK(q.run(self, {fresh}, t0 - 1ms).empty());
  // A newer view with room elsewhere: spilled there.
  auto out = q.run(self, {fresh}, t0 + 1ms);
  BOOST_REQUIRE_EQUAL(out.size(), 1u);
  BOOST_CHECK(out[0].decision.kind == lease_decision::spill);
  BOOST_CHECK_EQUAL(out[0].decision.node_id, "new-node");
}

BOOST_AUTO_TEST_CASE(a_waiting_request_counts_as_its_driver_s_backlog) {
  lease_queue q{{{"CPU", 1}}};
  hold(q, "other", 1, 3);
  auto t0 = clock_type::now();
  auto r = request(1, "j", 1);
  r.backlog = 6;
  q.enqueue(4, r, t0);
  q.enqueue(5, request(2, "k", 1), t0); // an older driver: no backlog sent
  auto ds = q.demands();
  BOOST_REQUIRE_EQUAL(ds.size(), 1u);
  BOOST_CHECK_EQUAL(ds[0].count, 7u);
  BOOST_CHECK(q.set_backlog(4, 2)); // BACKLOG: 2 left
  BOOST_CHECK_EQUAL(q.demands()[0].count, 3u);
  BOOST_CHECK(!q.set_backlog(99, 5)); // no request waits there
}

BOOST_AUTO_TEST_CASE(a_drain_is_refused_with_work_and_then_nothing_is_granted) {
  lease_queue q{{{"CPU", 2}}};
  auto a = q.reserve({{"CPU", 1}}, "j", 7);
  BOOST_CHECK(!q.begin_drain()); // a lease is held: work arrived
  BOOST_CHECK(!q.draining());
  q.release(a);
  BOOST_CHECK(q.begin_drain());
  BOOST_CHECK_EQUAL(q.available().at("CPU"), 0); // nothing fits a draining node
  auto t0 = clock_type::now();
  q.enqueue(3, request(1, "j", 1), t0);
  auto self = machine("self", {{"CPU", 2}});
  BOOST_CHECK(q.run(self, {}, t0 - 1ms).empty()); // waits: not granted while draining
  q.end_drain();
  auto out = q.run(self, {}, t0 - 1ms);
  BOOST_REQUIRE_EQUAL(out.size(), 1u);
  BOOST_CHECK(out[0].decision.kind == lease_decision::grant);
  BOOST_CHECK_EQUAL(q.available().at("CPU"), 2);
}

BOOST_AUTO_TEST_CASE(the_queue_runs_in_arrival_order_and_grants_count_within_a_pass) {
  auto self = machine("self", {{"CPU", 2}});
  lease_queue q{self.total};
  auto t = clock_type::now();
  q.reserve({{"CPU", 2}}, "j0", 1);
  q.enqueue(1, request(1, "a", 1), t);
  q.enqueue(2, request(2, "b", 1), t);
  q.enqueue(3, request(3, "c", 1), t);
  BOOST_CHECK(q.run(self, {}, t).empty()); // nothing free
  auto d = q.demands();
  BOOST_REQUIRE_EQUAL(d.size(), 1u);
  BOOST_CHECK_EQUAL(d[0].count, 3u);
  q.release(1);
  // Two CPUs free: the two oldest go, the third waits (the first grant's
  // CPU is counted before the second is decided).
  auto out = q.run(self, {}, t);
  BOOST_REQUIRE_EQUAL(out.size(), 2u);
  BOOST_CHECK_EQUAL(out[0].conn_id, 1u);
  BOOST_CHECK_EQUAL(out[1].conn_id, 2u);
  BOOST_CHECK(out[0].decision.kind == lease_decision::grant);
  BOOST_REQUIRE_EQUAL(q.queued(), 1u);
  // A connection that closes takes its request with it.
  q.forget_connection(3);
  BOOST_CHECK(q.empty());
  BOOST_CHECK(q.demands().empty());
}

BOOST_AUTO_TEST_CASE(a_queued_request_spills_when_another_node_has_room) {
  auto self = machine("self", {{"CPU", 1}});
  lease_queue q{self.total};
  q.reserve({{"CPU", 1}}, "j0", 1);
  auto t = clock_type::now();
  q.enqueue(1, request(1, "a", 1), t);
  q.enqueue(2, request(2, "a", 1, "other-node"), t); // spilled here once: stays
  auto peer = machine("peer", {{"CPU", 4}});
  auto out = q.run(self, {peer}, t);
  BOOST_REQUIRE_EQUAL(out.size(), 1u);
  BOOST_CHECK(out[0].decision.kind == lease_decision::spill);
  BOOST_CHECK_EQUAL(out[0].decision.node_id, "peer");
  BOOST_CHECK_EQUAL(q.queued(), 1u);
}

BOOST_AUTO_TEST_CASE(fairness_asks_back_a_lease_of_the_richer_job_after_the_delay) {
  lease_queue q{{{"CPU", 4}}};
  hold(q, "rich", 4, 1);
  auto serving = [](uint64_t) { return true; };
  auto t = clock_type::now();
  q.enqueue(9, request(1, "poor", 1), t);
  // Not before the request has waited fairness_delay.
  BOOST_CHECK(q.rebalance(t + fairness_delay / 2, serving).empty());
  auto drains = q.rebalance(t + fairness_delay, serving);
  BOOST_REQUIRE_EQUAL(drains.size(), 1u);
  auto* l = q.find(drains[0]);
  BOOST_REQUIRE(l != nullptr);
  BOOST_CHECK_EQUAL(l->job_id, "rich");
  BOOST_CHECK(l->draining);
  // While the request waits, each pass asks back one more lease, until the
  // rich job's remaining leases are within one of the poor job's: 3, 2,
  // then 1 left (1 <= 0 + 1) and no more.
  BOOST_CHECK_EQUAL(q.rebalance(t + fairness_delay * 2, serving).size(), 1u);
  BOOST_CHECK_EQUAL(q.rebalance(t + fairness_delay * 3, serving).size(), 1u);
  BOOST_CHECK(q.rebalance(t + fairness_delay * 4, serving).empty());
}

BOOST_AUTO_TEST_CASE(fairness_stops_within_one_lease_and_skips_what_cannot_be_asked_back) {
  auto t = clock_type::now() - 1s;
  auto serving = [](uint64_t) { return true; };
  {
    // 2 vs 1: within one lease, nothing is asked back.
    lease_queue q{{{"CPU", 3}}};
    hold(q, "a", 2, 1);
    hold(q, "b", 1, 2);
    q.enqueue(9, request(1, "b", 1), t);
    BOOST_CHECK(q.rebalance(clock_type::now(), serving).empty());
  }
  {
    // The rich job's worker is not serving yet: its leases cannot be drained.
    lease_queue q{{{"CPU", 4}}};
    hold(q, "a", 4, 1);
    q.enqueue(9, request(1, "b", 1), t);
    BOOST_CHECK(q.rebalance(clock_type::now(), [](uint64_t) { return false; }).empty());
  }
  {
    // The request does not fit in a lease of the rich job.
    lease_queue q{{{"CPU", 4}}};
    hold(q, "a", 4, 1);
    q.enqueue(9, request(1, "b", 2), t);
    BOOST_CHECK(q.rebalance(clock_type::now(), serving).empty());
  }
  {
    // Two waiting requests of a poor job against 4 leases.
    lease_queue q{{{"CPU", 4}}};
    hold(q, "a", 4, 1);
    q.enqueue(8, request(1, "b", 1), t);
    q.enqueue(9, request(2, "b", 1), t);
    // Within one pass a drained lease counts as the waiting job's: the
    // first request takes 4 vs 0 to 3 vs 1, the second 3 vs 1 to 2 vs 2.
    BOOST_CHECK_EQUAL(q.rebalance(clock_type::now(), serving).size(), 2u);
  }
}

BOOST_AUTO_TEST_CASE(lease_replies_are_encoded_in_one_place) {
  lease_decision spill{lease_decision::spill, "n2", "127.0.0.1:5", ""};
  auto f = one_frame(encode_lease_reply(7, spill));
  BOOST_REQUIRE(f.type == wire::msg::spillback);
  auto s = wire::decode<wire::spillback>(f.payload);
  BOOST_REQUIRE(s);
  BOOST_CHECK_EQUAL(s->request_id, 7u);
  BOOST_CHECK_EQUAL(s->address, "127.0.0.1:5");
  lease_decision no{lease_decision::infeasible, "", "", "never"};
  f = one_frame(encode_lease_reply(8, no));
  BOOST_REQUIRE(f.type == wire::msg::refused);
  auto r = wire::decode<wire::refused>(f.payload);
  BOOST_REQUIRE(r);
  BOOST_CHECK_EQUAL(r->code, static_cast<uint8_t>(wire::wire_error::infeasible));
  BOOST_CHECK_EQUAL(r->reason, "never");
  f = one_frame(encode_lease_reply(9, {lease_decision::queue, "", "", "wait"}));
  BOOST_CHECK(f.type == wire::msg::queued);
  BOOST_CHECK(encode_lease_reply(9, {lease_decision::grant, "", "", ""}).empty());
}

BOOST_AUTO_TEST_SUITE_END()

BOOST_AUTO_TEST_SUITE(worker_pool_suite)

BOOST_AUTO_TEST_CASE(one_worker_per_job_and_code_until_it_exits) {
  worker_pool pool;
  auto now = clock_type::now();
  bool created = false;
  auto& w = pool.for_key("job/abc", "job", now, created);
  BOOST_CHECK(created);
  BOOST_CHECK(w.state == worker_record::fetching);
  auto& again = pool.for_key("job/abc", "job", now, created);
  BOOST_CHECK(!created);
  BOOST_CHECK_EQUAL(again.id, w.id);
  auto& other = pool.for_key("job/def", "job", now, created);
  BOOST_CHECK(created);
  BOOST_CHECK_NE(other.id, w.id);
  BOOST_CHECK_EQUAL(pool.size(), 2u);
}

BOOST_AUTO_TEST_CASE(leases_wait_until_the_worker_is_ready_then_go_at_once) {
  worker_pool pool;
  auto now = clock_type::now();
  bool created = false;
  auto& w = pool.for_key("k", "job", now, created);
  BOOST_CHECK(!pool.attach(w, pending_adopt{-1, 1, 11, 1})); // fetching: waits
  pool.started(w, 4242, -1);
  BOOST_CHECK(w.state == worker_record::starting);
  BOOST_CHECK(!pool.serving(w.id));
  BOOST_CHECK(!pool.attach(w, pending_adopt{-1, 2, 12, 1})); // starting: waits
  auto waiting = pool.ready(w);
  BOOST_REQUIRE_EQUAL(waiting.size(), 2u);
  BOOST_CHECK_EQUAL(waiting[0].lease_id, 1u);
  BOOST_CHECK(w.waiting.empty());
  BOOST_CHECK(pool.serving(w.id));
  BOOST_CHECK(pool.attach(w, pending_adopt{-1, 3, 13, 1})); // serving: at once
  BOOST_CHECK_EQUAL(w.leases.size(), 3u);
}

BOOST_AUTO_TEST_CASE(an_idle_worker_is_retired_and_the_next_lease_starts_a_new_one) {
  worker_pool pool;
  auto t0 = clock_type::now();
  bool created = false;
  auto& w = pool.for_key("k", "job", t0, created);
  auto wid = w.id;
  pool.started(w, 4242, -1);
  pool.ready(w);
  pool.attach(w, pending_adopt{-1, 1, 11, 1});
  // Busy: never retired.
  BOOST_CHECK(pool.retire_idle(t0 + 1h, 10s).empty());
  pool.detach(wid, 1, t0 + 1s); // idle from t0 + 1 s
  BOOST_CHECK(pool.retire_idle(t0 + 10s, 10s).empty());
  auto retired = pool.retire_idle(t0 + 12s, 10s);
  BOOST_REQUIRE_EQUAL(retired.size(), 1u);
  BOOST_CHECK_EQUAL(retired[0], wid);
  BOOST_CHECK(pool.find(wid)->state == worker_record::exiting);
  BOOST_CHECK(!pool.serving(wid));
  // Exiting: a new lease of the job gets a new process.
  auto& fresh = pool.for_key("k", "job", t0 + 12s, created);
  BOOST_CHECK(created);
  BOOST_CHECK_NE(fresh.id, wid);
  // The exiting one is reaped; the new one stays the key's worker.
  pool.remove(wid);
  BOOST_CHECK(pool.find(wid) == nullptr);
  auto& same = pool.for_key("k", "job", t0 + 12s, created);
  BOOST_CHECK(!created);
  BOOST_CHECK_EQUAL(same.id, fresh.id);
}

BOOST_AUTO_TEST_CASE(a_worker_hosting_actors_is_not_retired_and_found_by_pid) {
  worker_pool pool;
  auto t0 = clock_type::now();
  bool created = false;
  auto& w = pool.for_key("k", "job", t0, created);
  auto wid = w.id;
  pool.add_actor(w, "a1");
  BOOST_CHECK(pool.find_pid(4242) == nullptr); // not started
  pool.started(w, 4242, -1);
  BOOST_CHECK(pool.find_pid(4242) == nullptr); // not serving yet
  pool.ready(w);
  BOOST_REQUIRE(pool.find_pid(4242) != nullptr);
  BOOST_CHECK_EQUAL(pool.find_pid(4242)->id, wid);
  BOOST_CHECK(pool.find_pid(4243) == nullptr);
  // No lease, but an actor: never idle.
  BOOST_CHECK(pool.retire_idle(t0 + 1h, 10s).empty());
  pool.attach(w, pending_adopt{-1, 1, 11, 1});
  pool.detach(wid, 1, t0 + 1h); // the lease ends; the actor stays
  BOOST_CHECK(pool.retire_idle(t0 + 3h, 10s).empty());
  pool.remove_actor(wid, "a1", t0 + 3h); // idle from now
  BOOST_CHECK(pool.retire_idle(t0 + 3h + 5s, 10s).empty());
  BOOST_CHECK_EQUAL(pool.retire_idle(t0 + 3h + 11s, 10s).size(), 1u);
  BOOST_CHECK(pool.find_pid(4242) == nullptr); // exiting: no new ATTACH
}

BOOST_AUTO_TEST_CASE(removing_a_worker_closes_the_sockets_it_holds) {
  worker_pool pool;
  bool created = false;
  auto& w = pool.for_key("k", "job", clock_type::now(), created);
  int sv[2];
  BOOST_REQUIRE_EQUAL(::socketpair(AF_UNIX, SOCK_STREAM, 0, sv), 0);
  pool.attach(w, pending_adopt{sv[0], 1, 11, 1}); // waits with the driver's socket
  pool.remove(w.id);
  // The other end sees EOF: the waiting socket was closed, not leaked.
  char c;
  BOOST_CHECK_EQUAL(::recv(sv[1], &c, 1, 0), 0);
  ::close(sv[1]);
}

BOOST_AUTO_TEST_SUITE_END()

BOOST_AUTO_TEST_SUITE(connection_table_suite)

BOOST_AUTO_TEST_CASE(the_defaults_are_the_documented_figures) {
  BOOST_CHECK_EQUAL(hello_timeout.count(), 5);
  BOOST_CHECK_EQUAL(max_unauthenticated, 256u);
}

BOOST_AUTO_TEST_CASE(unauthenticated_connections_are_capped_and_time_out) {
  connection_table t{{2000ms, 2}};
  auto t0 = clock_type::now();
  auto* a = t.admit(-1, t0);
  auto* b = t.admit(-1, t0 + 1s);
  BOOST_REQUIRE(a && b);
  BOOST_CHECK(t.admit(-1, t0 + 1s) == nullptr); // the cap
  BOOST_CHECK_EQUAL(t.unauthenticated(), 2u);
  // One authenticates: it no longer counts, a new one may come in.
  t.authenticate(*a, wire::hello{wire::magic, "", "driver", "job"});
  BOOST_CHECK_EQUAL(t.unauthenticated(), 1u);
  auto* c = t.admit(-1, t0 + 1500ms);
  BOOST_REQUIRE(c);
  // Deadlines: only unauthenticated ones, each from its own accept.
  BOOST_CHECK(t.overdue(t0 + 1900ms).empty());
  auto late = t.overdue(t0 + 3s);
  BOOST_REQUIRE_EQUAL(late.size(), 1u);
  BOOST_CHECK_EQUAL(late[0], b->id);
  BOOST_CHECK_EQUAL(t.overdue(t0 + 1h).size(), 2u);
  BOOST_CHECK(t.has_driver_of("job"));
  // Taking one out frees its place.
  auto gone = t.take(b->id);
  BOOST_REQUIRE(gone);
  BOOST_CHECK_EQUAL(t.unauthenticated(), 1u);
  BOOST_CHECK(t.take(gone->id) == nullptr);
  BOOST_CHECK(t.admit(-1, t0 + 2s) != nullptr);
  BOOST_CHECK_EQUAL(t.size(), 3u);
}

BOOST_AUTO_TEST_CASE(a_hello_must_be_a_rayd_hello_with_the_cluster_token) {
  auto hello = [](const std::string& magic, const std::string& token, const std::string& role) {
    return one_frame(wire::encode(wire::msg::hello, wire::hello{magic, token, role, "j"}));
  };
  BOOST_CHECK(check_hello(hello(wire::magic, "secret", "driver"), "secret"));
  BOOST_CHECK(check_hello(hello(wire::magic, "secret", "peer"), "secret"));
  auto wrong = check_hello(hello(wire::magic, "guess", "driver"), "secret");
  BOOST_REQUIRE(!wrong);
  BOOST_CHECK(code_of(wrong.error()) == errc::unauthenticated);
  auto bad_role = check_hello(hello(wire::magic, "secret", "root"), "secret");
  BOOST_REQUIRE(!bad_role);
  BOOST_CHECK(code_of(bad_role.error()) == errc::invalid_argument);
  BOOST_CHECK(!check_hello(hello("other-1", "secret", "driver"), "secret"));
  BOOST_CHECK(!check_hello(one_frame(wire::encode_raw(wire::msg::ping, {})), "secret"));
}

BOOST_AUTO_TEST_SUITE_END()

BOOST_AUTO_TEST_SUITE(accept_suite)

BOOST_AUTO_TEST_CASE(the_back_off_logs_once_per_burst_and_pauses_polling) {
  accept_backoff b{100ms};
  auto t0 = accept_backoff::clock_type::now();
  BOOST_CHECK(!b.paused(t0));
  BOOST_CHECK(b.on_exhausted(t0));                // starts a burst: log
  BOOST_CHECK(b.paused(t0 + 50ms));
  BOOST_CHECK(!b.paused(t0 + 100ms));
  BOOST_CHECK(!b.on_exhausted(t0 + 100ms));       // same burst: quiet
  BOOST_CHECK(b.paused(t0 + 150ms));
  BOOST_CHECK_EQUAL(b.on_accepted(), 2u);         // the burst ends
  BOOST_CHECK(!b.in_burst());
  BOOST_CHECK_EQUAL(b.on_accepted(), 0u);
  BOOST_CHECK(b.on_exhausted(t0 + 1s));           // a new burst logs again
}

BOOST_AUTO_TEST_CASE(out_of_descriptors_is_reported_and_the_listener_keeps_working) {
  auto l = listen_tcp("127.0.0.1", 0, "test");
  BOOST_REQUIRE(l);
  ::fcntl(l->fd, F_SETFL, ::fcntl(l->fd, F_GETFL) | O_NONBLOCK);
  BOOST_CHECK(accept_connection(l->fd).kind == accept_result::none);
  auto c1 = connect_tcp("127.0.0.1:" + std::to_string(l->port));
  BOOST_REQUIRE(c1);
  // No descriptor left for the accepted socket: EMFILE.
  rlimit old{};
  BOOST_REQUIRE_EQUAL(::getrlimit(RLIMIT_NOFILE, &old), 0);
  int highest = ::dup(0);
  BOOST_REQUIRE(highest >= 0);
  ::close(highest);
  rlimit low = old;
  low.rlim_cur = static_cast<rlim_t>(highest);
  BOOST_REQUIRE_EQUAL(::setrlimit(RLIMIT_NOFILE, &low), 0);
  auto r = accept_connection(l->fd);
  BOOST_REQUIRE_EQUAL(::setrlimit(RLIMIT_NOFILE, &old), 0);
  BOOST_CHECK(r.kind == accept_result::exhausted);
  BOOST_CHECK_EQUAL(r.error, EMFILE);
  // Descriptors free again: the waiting connection is accepted.
  r = accept_connection(l->fd);
  BOOST_REQUIRE(r.kind == accept_result::connection);
  ::close(r.fd);
  ::close(*c1);
  ::close(l->fd);
}

BOOST_AUTO_TEST_SUITE_END()
