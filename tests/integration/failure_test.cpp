#define BOOST_TEST_MODULE failure
#include <boost/test/unit_test.hpp>

#include <csignal>
#include <thread>

#include "tests/integration/harness.hpp"

using namespace rayd::integration;

namespace {

// The bounds: SIGKILL -> DEAD within 100 ms, frozen -> DEAD within 3 s.
// One millisecond of slack for the two clocks' rounding, no more.
constexpr int64_t kill_bound_ms = 100 + 1;
constexpr int64_t freeze_bound_ms = 3000;


int64_t death_time(const json& status, const std::string& node_id) {
  const json* n = find_node(status, node_id);
  if (n == nullptr || !n->contains("death_time_ms") || !(*n)["death_time_ms"].is_number())
    return -1;
  return (*n)["death_time_ms"].get<int64_t>();
}

}  // namespace

BOOST_AUTO_TEST_CASE(sigkilled_worker_is_dead_within_100ms) {
  three_nodes t{"failure"};
  int64_t kill_ms = now_ms();
  t.w1->proc->signal(SIGKILL);
  auto st = wait_for_state(t.c, t.w1->node_id(), "DEAD", 5s, 10ms);
  BOOST_REQUIRE_MESSAGE(st.has_value(), "SIGKILLed worker not DEAD within 5 s");
  int64_t dt = death_time(*st, t.w1->node_id());
  BOOST_TEST_MESSAGE("SIGKILL detection: " << dt - kill_ms << " ms");
  BOOST_CHECK_MESSAGE(dt > 0, "death_time_ms not set: " << find_node(*st, t.w1->node_id())->dump());
  BOOST_CHECK_MESSAGE(dt >= kill_ms - 1, "death_time_ms " << dt << " precedes the kill " << kill_ms);
  BOOST_CHECK_MESSAGE(dt - kill_ms < kill_bound_ms,
                      "SIGKILLed worker declared DEAD " << dt - kill_ms
                                                        << " ms after the kill (bound 100 ms)");
  BOOST_CHECK(!find_node(*st, t.w1->node_id())->value("death_reason", std::string()).empty());
  BOOST_CHECK_EQUAL(node_state(*st, t.w2->node_id()), "ALIVE");
  BOOST_CHECK_EQUAL(node_state(*st, t.head->node_id()), "ALIVE");

  // And the survivor stays ALIVE (nothing cascades).
  bool stays = !wait_until(
      [&] {
        auto s = t.c.try_status();
        return s && node_state(*s, t.w2->node_id()) != "ALIVE";
      },
      1s, 100ms);
  BOOST_CHECK_MESSAGE(stays, "the other worker left ALIVE after its peer was killed");
}

BOOST_AUTO_TEST_CASE(frozen_worker_is_dead_within_3s_and_comes_back) {
  three_nodes t{"failure"};
  int64_t stop_ms = now_ms();
  t.w1->proc->signal(SIGSTOP);
  auto st = wait_for_state(t.c, t.w1->node_id(), "DEAD", 8s, 20ms);
  if (!st)
    t.w1->proc->signal(SIGCONT);
  BOOST_REQUIRE_MESSAGE(st.has_value(), "SIGSTOPped worker not DEAD within 8 s");
  int64_t dt = death_time(*st, t.w1->node_id());
  BOOST_TEST_MESSAGE("SIGSTOP detection: " << dt - stop_ms << " ms");
  BOOST_CHECK_MESSAGE(dt >= stop_ms - 1, "death_time_ms " << dt << " precedes the stop " << stop_ms);
  BOOST_CHECK_MESSAGE(dt - stop_ms < freeze_bound_ms,
                      "frozen worker declared DEAD " << dt - stop_ms
                                                     << " ms after SIGSTOP (bound 3000 ms)");
  BOOST_CHECK_EQUAL(node_state(*st, t.w2->node_id()), "ALIVE");
  BOOST_CHECK_EQUAL(node_state(*st, t.head->node_id()), "ALIVE");

  int64_t cont_ms = now_ms();
  t.w1->proc->signal(SIGCONT);
  auto back = wait_for_state(t.c, t.w1->node_id(), "ALIVE", 10s, 50ms);
  BOOST_REQUIRE_MESSAGE(back.has_value(), "resumed worker not ALIVE again within 10 s");
  BOOST_TEST_MESSAGE("SIGCONT -> ALIVE: " << now_ms() - cont_ms << " ms");
  const json* n = find_node(*back, t.w1->node_id());
  BOOST_CHECK_EQUAL(n->value("pid", -1), t.w1->pid());
  BOOST_CHECK(t.w1->proc->running());
  BOOST_CHECK_EQUAL(n->value("death_time_ms", int64_t(-1)), 0);  // 0 while alive
  BOOST_CHECK_EQUAL(alive_count(*back), 3u);
  BOOST_CHECK_EQUAL((*back)["nodes"].size(), 3u);  // same node_id, no duplicate entry
}
