#define BOOST_TEST_MODULE saturation
#include <boost/test/unit_test.hpp>

#include <algorithm>
#include <thread>

#include <sched.h>

#include "tests/integration/harness.hpp"

using namespace rayd::integration;

// Every core this test may run on saturated for 30 s: no node may be declared
// dead. Its own binary, run serially (see CMakeLists.txt), so the load it
// makes cannot disturb the timing bounds of other tests running alongside.

namespace {

// The cores this process may use (its affinity mask), at least 1.
int usable_cores() {
  cpu_set_t set;
  CPU_ZERO(&set);
  if (::sched_getaffinity(0, sizeof(set), &set) == 0 && CPU_COUNT(&set) > 0)
    return CPU_COUNT(&set);
  return std::max(1u, std::thread::hardware_concurrency());
}

}  // namespace

BOOST_AUTO_TEST_CASE(no_false_death_under_cpu_saturation) {
  three_nodes t{"saturation"};
  const int cores = usable_cores();
  BOOST_TEST_MESSAGE("saturation: one busy loop on each of " << cores << " cores");
  std::vector<std::unique_ptr<process>> hogs;
  for (int i = 0; i < cores; ++i)
    hogs.push_back(std::make_unique<process>(
        std::vector<std::string>{"sh", "-c", "while :; do :; done"}, env_list{},
        t.c.root() + "/logs", "hog" + std::to_string(i)));

  auto start = std::chrono::steady_clock::now();
  int polls = 0, ok_polls = 0;
  std::vector<std::string> bad;
  while (std::chrono::steady_clock::now() - start < 30s) {
    ++polls;
    if (auto st = t.c.try_status()) {
      ++ok_polls;
      for (const auto& n : (*st)["nodes"])
        if (n.value("state", std::string()) != "ALIVE")
          bad.push_back(n.dump());
    }
    std::this_thread::sleep_for(500ms);
  }
  for (auto& h : hogs)
    BOOST_CHECK_MESSAGE(h->running(), "a busy loop ended early");
  hogs.clear();  // killed by pid

  BOOST_TEST_MESSAGE("saturation: " << ok_polls << "/" << polls << " status polls answered");
  BOOST_CHECK_MESSAGE(bad.empty(), "node(s) left ALIVE under CPU saturation, e.g. "
                                       << (bad.empty() ? "" : bad.front()));
  BOOST_CHECK_MESSAGE(ok_polls * 2 >= polls, "rayctl status answered only "
                                                 << ok_polls << " of " << polls << " polls");
  json st = t.c.status_json();
  BOOST_CHECK_EQUAL(alive_count(st), 3u);
  for (const auto& n : st["nodes"])
    BOOST_CHECK_EQUAL(n.value("death_time_ms", int64_t(-1)), 0);
  for (rayd_node* n : {t.head, t.w1, t.w2})
    BOOST_CHECK(n->proc->running());
}
