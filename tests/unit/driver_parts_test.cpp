// Unit tests of the driver's parts that need no sockets (api/src/): the node
// directory (where leases and puts go while nodes die and come back) and the
// task-event record (what `rayctl tasks` is sent).
#define BOOST_TEST_MODULE driver_parts
#include <boost/test/unit_test.hpp>

#include <chrono>
#include <string>

#include "api/src/node_directory.hpp"
#include "api/src/task_events.hpp"

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
  BOOST_CHECK_EQUAL(r.counts[task_events::pending], 1u);
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
