// The trace replay benchmark's generator and simulator (bench/autoscale_trace.hpp):
// the trace is deterministic by seed and has the shape docs/autoscaler.md
// promises, the JSON-lines dump reads back, and the simulation's accounting
// is exact on a trace small enough to work out by hand.

#define BOOST_TEST_MODULE autoscale_trace
#include <boost/test/unit_test.hpp>

#include <algorithm>
#include <map>
#include <stdexcept>

#include "bench/autoscale_trace.hpp"

using namespace rayd::bench;

namespace {

bool same(const std::vector<trace_item>& a, const std::vector<trace_item>& b) {
  return trace_to_json_lines(a) == trace_to_json_lines(b);
}

} // namespace

BOOST_AUTO_TEST_CASE(trace_is_deterministic_by_seed) {
  trace_options o;
  auto a = generate_trace(o);
  BOOST_TEST(!a.empty());
  BOOST_TEST(same(a, generate_trace(o)));
  o.seed = 2;
  BOOST_TEST(!same(a, generate_trace(o)));
}

BOOST_AUTO_TEST_CASE(trace_has_bursts_tail_actors_gaps_within_capacity) {
  trace_options o; // 3600 s, 40 CPUs, idle timeout 10 s
  auto t = generate_trace(o);
  std::map<std::string, int> phases;
  std::map<double, int> at;
  for (const auto& x : t) {
    ++phases[x.phase];
    ++at[x.arrive_s];
  }
  BOOST_TEST(phases["burst"] > 100);
  BOOST_TEST(phases["tail"] > 0);
  BOOST_TEST(phases["actor"] > 0);
  // bursts: many demands at one instant
  int biggest = 0;
  for (const auto& [s, n] : at)
    biggest = std::max(biggest, n);
  BOOST_TEST(biggest >= 20);
  // idle gaps longer than the idle timeout, with no arrival
  int gaps = 0;
  for (auto it = at.begin(); std::next(it) != at.end(); ++it)
    gaps += std::next(it)->first - it->first > o.idle_timeout_s ? 1 : 0;
  BOOST_TEST(gaps > 10);
  // the zero-wait load never exceeds the capacity
  for (const auto& [s, n] : at) {
    double load = 0;
    for (const auto& x : t)
      if (x.arrive_s <= s && s < x.arrive_s + x.duration_s)
        load += x.cpus;
    BOOST_TEST(load <= o.capacity_cpus);
  }
}

BOOST_AUTO_TEST_CASE(json_lines_read_back_and_bad_lines_are_named) {
  auto t = generate_trace({});
  BOOST_TEST(same(t, parse_trace_json_lines(trace_to_json_lines(t))));
  BOOST_CHECK_THROW(parse_trace_json_lines("{\"arrive_s\": 1, \"duration_s\": 2}\nnot json\n"),
                    std::invalid_argument);
  try {
    parse_trace_json_lines("\n{\"arrive_s\": -1, \"duration_s\": 2}\n");
    BOOST_FAIL("a negative time was accepted");
  } catch (const std::invalid_argument& e) {
    BOOST_TEST(std::string{e.what()}.find("line 2") != std::string::npos);
  }
}

// Four 1-CPU tasks of 5 s at 0 on 2-CPU workers, launch delay 2 rounds, idle
// timeout 10 s: two nodes launched in round 0, ALIVE and running the tasks
// from round 2 to 7, idle from 7 until the policy's timeout passes.
BOOST_AUTO_TEST_CASE(small_trace_by_hand) {
  std::vector<trace_item> t;
  for (int i = 0; i < 4; ++i)
    t.push_back({i, 0, 5, 1, "task", "burst"});
  autoscale_trace_options o;
  auto j = simulate_trace(t, o);
  const auto& m = j["metrics"];
  BOOST_TEST(m["launches"]["value"].get<int>() == 2);
  BOOST_TEST(m["terminations"]["value"].get<int>() == 2);
  BOOST_TEST(m["flaps"]["value"].get<int>() == 0);
  BOOST_TEST(m["oracle_node_seconds"]["value"].get<double>() == 10.0);
  BOOST_TEST(m["node_seconds"]["booting"].get<double>() == 4.0);
  BOOST_TEST(m["node_seconds"]["busy"].get<double>() == 10.0);
  auto idle = m["node_seconds"]["idle"].get<double>();
  BOOST_TEST(idle >= 20.0); // each node idle for the whole timeout
  BOOST_TEST(idle <= 24.0);
  BOOST_TEST(m["extra_wait_rounds"]["max"].get<double>() == 0.0);
  BOOST_TEST(m["extra_wait_rounds"]["not_started"].get<int>() == 0);
  BOOST_TEST(j["targets"]["p95_extra_wait_le_1_round"]["met"].get<bool>());
}

// A demand returning within the idle timeout reuses the idle node: one
// launch, no wait, no flap.
BOOST_AUTO_TEST_CASE(demand_returning_within_timeout_reuses_the_node) {
  std::vector<trace_item> t{{0, 0, 3, 1, "task", "burst"}, {1, 8, 3, 1, "task", "burst"}};
  auto j = simulate_trace(t, {});
  BOOST_TEST(j["metrics"]["launches"]["value"].get<int>() == 1);
  BOOST_TEST(j["metrics"]["extra_wait_rounds"]["max"].get<double>() == 0.0);
  BOOST_TEST(j["metrics"]["flaps"]["value"].get<int>() == 0);
}
