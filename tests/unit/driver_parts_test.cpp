// Unit tests of the driver's parts that need no sockets (api/src/): the node
// directory (where leases and puts go while nodes die and come back), the
// task-event record (what `rayctl tasks` is sent), the object table
// (references, pins, waiters, frees), the task table (the lifecycle) and the
// lease pool (which lease a task goes to, asking again, giving back); and
// node_link's I/O over a local socketpair (no network); cluster_connect's
// error when there is no cluster.
#define BOOST_TEST_MODULE driver_parts
#include <boost/test/unit_test.hpp>

#include <sys/socket.h>
#include <unistd.h>

#include <chrono>
#include <cstdlib>
#include <string>
#include <thread>

#include "api/src/cluster_connect.hpp"
#include "api/src/lease_pool.hpp"
#include "api/src/node_directory.hpp"
#include "api/src/node_link.hpp"
#include "api/src/object_table.hpp"
#include "api/src/task_events.hpp"
#include "api/src/task_table.hpp"
#include "rayd/errors.hpp"

using namespace rayd::core;
using namespace std::chrono_literals;

namespace {
using clock_type = node_directory::clock_type;
} // namespace

BOOST_AUTO_TEST_SUITE(node_directory_tests)

BOOST_AUTO_TEST_CASE(home_first_then_other_nodes_while_it_is_down) {
  node_directory d{"head", "127.0.0.1:1"};
  d.replace({{"head", "127.0.0.1:1"}, {"w1", "127.0.0.1:2"}});
  auto t0 = clock_type::now();
  BOOST_CHECK_EQUAL(d.pick(t0), "127.0.0.1:1");
  d.mark_down("127.0.0.1:1", t0);
  BOOST_CHECK(d.any_down(t0));
  BOOST_CHECK_EQUAL(d.pick(t0), "127.0.0.1:2");
  // After down_for, the home is asked again (it may be back).
  auto later = t0 + node_directory::down_for + 1ms;
  BOOST_CHECK_EQUAL(d.pick(later), "127.0.0.1:1");
  BOOST_CHECK(!d.any_down(later));
}

BOOST_AUTO_TEST_CASE(every_node_down_answers_empty) {
  node_directory d{"head", "127.0.0.1:1"};
  d.learn("w1", "127.0.0.1:2");
  auto t0 = clock_type::now();
  d.mark_down("127.0.0.1:1", t0);
  d.mark_down("127.0.0.1:2", t0);
  BOOST_CHECK_EQUAL(d.pick(t0), "");
}

BOOST_AUTO_TEST_CASE(a_restarted_home_is_used_at_its_new_address_at_once) {
  node_directory d{"head", "127.0.0.1:1"};
  d.learn("w1", "127.0.0.1:2");
  auto t0 = clock_type::now();
  d.mark_down("127.0.0.1:1", t0);
  // A fresh status: the head is back on another node port.
  d.replace({{"head", "127.0.0.1:9"}, {"w1", "127.0.0.1:2"}});
  BOOST_CHECK_EQUAL(d.home_address(), "127.0.0.1:9");
  BOOST_CHECK_EQUAL(d.pick(t0), "127.0.0.1:9");
}

BOOST_AUTO_TEST_CASE(a_status_forgets_dead_nodes_but_never_the_home) {
  node_directory d{"head", "127.0.0.1:1"};
  d.learn("w1", "127.0.0.1:2");
  d.learn("w2", "127.0.0.1:3");
  d.replace({{"w2", "127.0.0.1:3"}}); // the head is restarting, w1 died
  BOOST_CHECK_EQUAL(d.size(), 2u);
  BOOST_CHECK_EQUAL(d.home_address(), "127.0.0.1:1");
  auto t0 = clock_type::now();
  d.mark_down("127.0.0.1:1", t0);
  BOOST_CHECK_EQUAL(d.pick(t0), "127.0.0.1:3");
}

BOOST_AUTO_TEST_CASE(learning_ignores_empty_names) {
  node_directory d{"head", "127.0.0.1:1"};
  d.learn("", "127.0.0.1:2");
  d.learn("w1", "");
  BOOST_CHECK_EQUAL(d.size(), 1u);
}

BOOST_AUTO_TEST_SUITE_END()

BOOST_AUTO_TEST_SUITE(task_events_tests)

BOOST_AUTO_TEST_CASE(counts_follow_each_task_latest_state) {
  task_events ev{"abc"};
  uint8_t t1 = task_events::none, t2 = task_events::none;
  ev.record(1, t1, task_events::pending, "f", 0, "");
  ev.record(2, t2, task_events::pending, "f", 0, "");
  ev.record(1, t1, task_events::running, "f", 0, "n1");
  ev.record(1, t1, task_events::finished, "f", 0, "n1");
  ev.record(2, t2, task_events::running, "f", 0, "n1");
  ev.record(2, t2, task_events::pending, "f", 1, ""); // retried
  BOOST_CHECK_EQUAL(ev.count(task_events::pending), 1u);
  BOOST_CHECK_EQUAL(ev.count(task_events::running), 0u);
  BOOST_CHECK_EQUAL(ev.count(task_events::finished), 1u);
  BOOST_CHECK(ev.dirty());
  auto r = ev.take();
  BOOST_CHECK(!ev.dirty());
  BOOST_REQUIRE_EQUAL(r.events.size(), 2u); // one per task: its latest
  BOOST_CHECK_EQUAL(r.events[0].task_id, "abc-1");
  BOOST_CHECK_EQUAL(r.events[0].state, "FINISHED");
  BOOST_CHECK_EQUAL(r.events[0].node_id, "n1");
  BOOST_CHECK_EQUAL(r.events[1].state, "PENDING");
  BOOST_CHECK_EQUAL(r.events[1].attempt, 1u);
  BOOST_CHECK_EQUAL(r.counts.pending, 1u);
  BOOST_CHECK(ev.take().events.empty());
}

BOOST_AUTO_TEST_CASE(a_failure_carries_its_message_and_old_events_are_dropped) {
  task_events ev{"j"};
  uint8_t slot = task_events::none;
  ev.record(7, slot, task_events::failed, "g", 2, "n2", "rayd::worker_died: gone");
  auto r = ev.take();
  BOOST_REQUIRE_EQUAL(r.events.size(), 1u);
  BOOST_CHECK_EQUAL(r.events[0].error, "rayd::worker_died: gone");
  for (uint64_t i = 0; i < task_events::max_events + 100; ++i) {
    uint8_t s = task_events::none;
    ev.record(100 + i, s, task_events::pending, "g", 0, "");
  }
  BOOST_CHECK_EQUAL(ev.take().events.size(), task_events::max_events);
  BOOST_CHECK_EQUAL(ev.count(task_events::pending), task_events::max_events + 100);
}

BOOST_AUTO_TEST_SUITE_END()

BOOST_AUTO_TEST_SUITE(object_table_tests)

BOOST_AUTO_TEST_CASE(ids_are_unique_and_prefixed) {
  object_table o{"p"};
  auto a = o.new_id();
  auto b = o.new_id();
  BOOST_CHECK_NE(a, b);
  BOOST_CHECK_EQUAL(a.rfind("p", 0), 0u);
}

BOOST_AUTO_TEST_CASE(a_released_value_is_forgotten_a_stored_one_freed) {
  object_table o{"p"};
  o.create_value("v", "bytes");
  o.add_ref("v");
  o.release("v");
  BOOST_CHECK(o.find("v") != nullptr); // one reference left
  o.release("v");
  BOOST_CHECK(o.find("v") == nullptr);
  BOOST_CHECK(!o.has_frees());

  auto& s = o.create_pending("s", "f");
  s.state = object_table::entry::ready_stored;
  s.loc.object_id = "s";
  s.loc.address = "127.0.0.1:5";
  o.release("s");
  BOOST_CHECK(o.find("s") == nullptr);
  auto frees = o.take_frees();
  BOOST_REQUIRE_EQUAL(frees.size(), 1u);
  BOOST_CHECK_EQUAL(frees[0].address, "127.0.0.1:5");
  BOOST_CHECK(!o.has_frees());
}

BOOST_AUTO_TEST_CASE(a_pending_object_released_stays_until_it_settles) {
  object_table o{"p"};
  o.create_pending("r", "f");
  o.release("r");
  BOOST_REQUIRE(o.find("r") != nullptr); // its result will arrive
  o.slot("r").state = object_table::entry::ready_value;
  auto s = o.settle("r");
  BOOST_CHECK(!s.failed);
  BOOST_CHECK(o.find("r") == nullptr);
}

BOOST_AUTO_TEST_CASE(a_pinned_argument_outlives_its_references_and_hands_back_waiters) {
  object_table o{"p"};
  o.create_pending("a", "f");
  bool waits = false;
  BOOST_REQUIRE(o.pin("a", 42, waits));
  BOOST_CHECK(waits);
  o.release("a");
  BOOST_REQUIRE(o.find("a") != nullptr);
  object_table::fail(o.slot("a"), "rayd::worker_died", "gone", "n1");
  auto s = o.settle("a");
  BOOST_CHECK(s.failed);
  BOOST_CHECK_EQUAL(s.error_type, "rayd::worker_died");
  BOOST_REQUIRE_EQUAL(s.waiters.size(), 1u);
  BOOST_CHECK_EQUAL(s.waiters[0], 42u);
  BOOST_CHECK(o.settle("a").waiters.empty()); // handed back once
  BOOST_REQUIRE(o.find("a") != nullptr);      // still pinned
  o.unpin("a");
  BOOST_CHECK(o.find("a") == nullptr);
  bool w2 = false;
  BOOST_CHECK(!o.pin("missing", 1, w2)); // absent: reported, not thrown
  o.unpin("missing");
  o.release("missing");
}

BOOST_AUTO_TEST_SUITE_END()

BOOST_AUTO_TEST_SUITE(task_table_tests)

task_table::task make(uint64_t seq, std::size_t deps, int retries) {
  task_table::task t;
  t.seq = seq;
  t.function = "f";
  t.result = "r" + std::to_string(seq);
  t.deps_missing = deps;
  t.max_retries = retries;
  return t;
}

BOOST_AUTO_TEST_CASE(waiting_for_arguments_then_ready) {
  task_table tt;
  BOOST_CHECK_EQUAL(tt.add(make(1, 2, 3)).state, task_table::waiting_deps);
  BOOST_CHECK(!tt.dep_ready(1));
  BOOST_CHECK(tt.dep_ready(1));
  BOOST_CHECK_EQUAL(tt.find(1)->state, task_table::ready);
  BOOST_CHECK(!tt.dep_ready(1)); // not waiting any more
  BOOST_CHECK_EQUAL(tt.add(make(2, 0, 3)).state, task_table::ready);
}

BOOST_AUTO_TEST_CASE(a_lost_lease_retries_within_max_retries) {
  task_table tt;
  tt.add(make(1, 0, 1));
  auto now = task_table::clock_type::now();
  auto& t = *tt.find(1);
  BOOST_REQUIRE(task_table::sent(t, 7, 70, now));
  BOOST_CHECK(!task_table::sent(t, 8, 80, now)); // already in flight
  BOOST_CHECK_EQUAL(t.lease, 7u);
  BOOST_CHECK(task_table::lost(t)); // retry 1 of 1
  BOOST_CHECK_EQUAL(t.state, task_table::ready);
  BOOST_CHECK_EQUAL(t.attempt, 1);
  BOOST_CHECK(!task_table::lost(t)); // not in flight: nothing to retry
  BOOST_REQUIRE(task_table::sent(t, 8, 80, now));
  BOOST_CHECK(!task_table::lost(t)); // retries used up: the caller fails it
  auto done = tt.finish(1);
  BOOST_REQUIRE(done.has_value());
  BOOST_CHECK_EQUAL(done->result, "r1");
  BOOST_CHECK_EQUAL(tt.size(), 0u);
}

BOOST_AUTO_TEST_CASE(absent_tasks_are_reported_not_thrown) {
  task_table tt;
  BOOST_CHECK(tt.find(9) == nullptr);
  BOOST_CHECK(!tt.dep_ready(9));
  BOOST_CHECK(!tt.finish(9).has_value());
}

BOOST_AUTO_TEST_SUITE_END()

BOOST_AUTO_TEST_SUITE(lease_pool_tests)

lease_pool::lease& grant(lease_pool& lp, lease_pool::pool& p, uint32_t threads) {
  lease_pool::lease l;
  l.id = lp.next_id();
  l.pool = p.key;
  l.threads = threads;
  return lp.add_lease(p, std::move(l));
}

BOOST_AUTO_TEST_CASE(one_pool_per_shape) {
  lease_pool lp;
  auto& a = lp.pool_for({{"CPU", 1}}, {});
  auto& b = lp.pool_for({{"CPU", 1}}, {});
  auto& c = lp.pool_for({{"CPU", 1}}, {{"zone", "a"}});
  BOOST_CHECK_EQUAL(&a, &b);
  BOOST_CHECK_NE(&a, &c);
  BOOST_CHECK(lp.find_pool(a.key) == &a);
  BOOST_CHECK(lp.find_pool("nope") == nullptr);
}

BOOST_AUTO_TEST_CASE(a_task_goes_to_the_least_loaded_lease_with_room) {
  lease_pool lp;
  auto& p = lp.pool_for({{"CPU", 1}}, {});
  auto& l1 = grant(lp, p, 1);
  auto& l2 = grant(lp, p, 1);
  l1.inflight[1] = 10;
  BOOST_CHECK(lp.pick(p) == &l2);
  BOOST_CHECK(!lease_pool::busy(l2));
  BOOST_CHECK(lease_pool::busy(l1));
  l2.draining = true; // asked back: no new tasks
  BOOST_CHECK(lp.pick(p) == &l1);
  for (uint64_t i = 0; i < lease_pool::inflight_per_thread; ++i)
    l1.inflight[100 + i] = i;
  BOOST_CHECK(lp.pick(p) == nullptr); // full
}

BOOST_AUTO_TEST_CASE(short_tasks_pipeline_long_ones_wait) {
  lease_pool lp;
  auto& p = lp.pool_for({}, {});
  BOOST_CHECK(!lease_pool::pipelines(p)); // nothing measured yet
  lease_pool::ran(p, 50);
  BOOST_CHECK(lease_pool::pipelines(p));
  for (int i = 0; i < 30; ++i)
    lease_pool::ran(p, 50000);
  BOOST_CHECK(!lease_pool::pipelines(p));
}

BOOST_AUTO_TEST_CASE(one_request_at_a_time_and_asking_again_for_a_while) {
  lease_pool lp;
  auto& p = lp.pool_for({}, {});
  auto t0 = lease_pool::clock_type::now();
  BOOST_CHECK(lease_pool::may_ask(p, t0));
  lease_pool::request r;
  r.id = lp.next_id();
  r.pool = p.key;
  auto rid = r.id;
  lp.add_request(p, std::move(r));
  BOOST_CHECK(!lease_pool::may_ask(p, t0));
  BOOST_CHECK(lp.outstanding());
  BOOST_REQUIRE(lp.remove_request(rid).has_value());
  BOOST_CHECK(!lp.remove_request(rid).has_value());
  BOOST_CHECK(lease_pool::may_ask(p, t0));
  // No lease came: asked again after retry_delay, for unreachable_limit.
  BOOST_CHECK(lease_pool::retry_later(p, t0));
  BOOST_CHECK(!lease_pool::may_ask(p, t0));
  BOOST_CHECK(lease_pool::may_ask(p, t0 + lease_pool::retry_delay));
  BOOST_CHECK(lease_pool::retry_later(p, t0 + 30s));
  BOOST_CHECK(!lease_pool::retry_later(p, t0 + lease_pool::unreachable_limit + 1s));
  // A grant ends the streak.
  BOOST_CHECK(lease_pool::retry_later(p, t0 + 100s));
  grant(lp, p, 1);
  BOOST_CHECK(p.failing_since == lease_pool::clock_type::time_point{});
}

BOOST_AUTO_TEST_CASE(idle_and_drained_leases_are_given_back) {
  lease_pool lp;
  auto& p = lp.pool_for({}, {});
  auto& busy = grant(lp, p, 1);
  busy.inflight[1] = 1;
  auto& drained = grant(lp, p, 1);
  drained.draining = true;
  auto& idle = grant(lp, p, 1);
  auto now = lease_pool::clock_type::now();
  idle.idle_since = now - lease_pool::idle_timeout - 1ms;
  auto ids = lp.idle_leases(now);
  BOOST_CHECK_EQUAL(ids.size(), 2u);
  p.ready.push_back(5); // work waits: an idle lease stays for it
  BOOST_CHECK_EQUAL(lp.idle_leases(now).size(), 1u);
  auto gone = lp.remove_lease(drained.id);
  BOOST_REQUIRE(gone.has_value());
  BOOST_CHECK_EQUAL(p.leases.size(), 2u);
  BOOST_CHECK(lp.find_lease(gone->id) == nullptr);
  BOOST_CHECK(!lp.remove_lease(gone->id).has_value());
}

BOOST_AUTO_TEST_CASE(a_request_nobody_needs_is_dropped) {
  lease_pool lp;
  auto& p = lp.pool_for({}, {});
  lease_pool::request r;
  r.id = lp.next_id();
  r.pool = p.key;
  lp.add_request(p, std::move(r));
  p.ready.push_back(1);
  BOOST_CHECK(lp.unneeded_requests().empty());
  p.ready.clear();
  BOOST_CHECK_EQUAL(lp.unneeded_requests().size(), 1u);
}

BOOST_AUTO_TEST_SUITE_END()

BOOST_AUTO_TEST_SUITE(node_link_tests)

struct pair_fds {
  int a = -1, b = -1;
  pair_fds() {
    int sv[2];
    BOOST_REQUIRE(::socketpair(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0, sv) == 0);
    a = sv[0];
    b = sv[1];
  }
  ~pair_fds() {
    if (a >= 0)
      ::close(a);
    if (b >= 0)
      ::close(b);
  }
};

BOOST_AUTO_TEST_CASE(frames_written_are_read_back_and_a_close_is_reported) {
  pair_fds p;
  std::string out = rayd::wire::encode(rayd::wire::msg::drain, rayd::wire::object_id_msg{"x"});
  out += out;
  BOOST_CHECK(node_link::flush(p.a, out) == node_link::flush_result::done);
  BOOST_CHECK(out.empty());
  rayd::wire::frame_reader reader;
  BOOST_CHECK(node_link::read(p.b, reader, 4096));
  int frames = 0;
  for (;;) {
    auto f = reader.next();
    BOOST_REQUIRE(static_cast<bool>(f));
    if (!*f)
      break;
    BOOST_CHECK((*f)->type == rayd::wire::msg::drain);
    ++frames;
  }
  BOOST_CHECK_EQUAL(frames, 2);
  BOOST_CHECK(node_link::read(p.b, reader, 4096)); // nothing more: still open
  ::close(p.a);
  p.a = -1;
  BOOST_CHECK(!node_link::read(p.b, reader, 4096)); // the peer closed
}

BOOST_AUTO_TEST_CASE(a_full_socket_keeps_the_rest_and_a_broken_one_says_so) {
  pair_fds p;
  std::string out(8 << 20, 'x'); // more than a socket buffer takes
  BOOST_CHECK(node_link::flush(p.a, out) == node_link::flush_result::full);
  BOOST_CHECK(!out.empty());
  BOOST_CHECK_LT(out.size(), std::size_t{8} << 20);
  ::close(p.b);
  p.b = -1;
  BOOST_CHECK(node_link::flush(p.a, out) == node_link::flush_result::broken);
}

BOOST_AUTO_TEST_CASE(poll_reports_what_is_ready_and_wake_ends_it) {
  node_link link;
  pair_fds p;
  auto t0 = std::chrono::steady_clock::now();
  std::vector<node_link::event> ev;
  link.poll({{p.b, false, 7}}, 50, ev);
  BOOST_CHECK(ev.empty());
  std::thread waker([&link] {
    std::this_thread::sleep_for(20ms);
    link.wake();
  });
  link.poll({{p.b, false, 7}}, 5000, ev);
  waker.join();
  BOOST_CHECK(ev.empty());
  BOOST_CHECK(std::chrono::steady_clock::now() - t0 < 3s); // wake() ended it
  BOOST_REQUIRE_EQUAL(::write(p.a, "x", 1), 1);
  link.poll({{p.b, true, 7}}, 1000, ev);
  BOOST_REQUIRE_EQUAL(ev.size(), 1u);
  BOOST_CHECK_EQUAL(ev[0].tag, 7u);
  BOOST_CHECK(ev[0].in);
  BOOST_CHECK(ev[0].out);
}

BOOST_AUTO_TEST_SUITE_END()

BOOST_AUTO_TEST_SUITE(cluster_connect_tests)

// No cluster anywhere and no embedded one wanted: the documented error, not
// a crash or a hang. (A live cluster is the integration tests' part.)
BOOST_AUTO_TEST_CASE(no_cluster_is_a_connection_error) {
  char dir[] = "/tmp/rayd-driver-parts-XXXXXX";
  BOOST_REQUIRE(::mkdtemp(dir) != nullptr);
  ::unsetenv("RAYD_ADDRESS");
  ::setenv("RAYD_TMPDIR", dir, 1); // no session of this host's cluster there
  ::setenv("RAYD_TOKEN", "unused", 1);
  rayd::init_options opts;
  opts.embedded_if_absent = false;
  BOOST_CHECK_THROW(connect_cluster(opts), rayd::connection_error);
  // An address nobody listens on: refused, reported the same way.
  opts.address = "127.0.0.1:1";
  BOOST_CHECK_THROW(connect_cluster(opts), rayd::connection_error);
  ::rmdir(dir);
}

BOOST_AUTO_TEST_SUITE_END()
