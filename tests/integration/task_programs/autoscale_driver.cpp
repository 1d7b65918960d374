// The workload of the autoscaler's integration test and live benchmark
// (tests/integration/autoscaler_test.cpp, bench/autoscale_live.cpp): demand
// that does not fit the head, so that nodes must be launched. Prints one
// JSON object on stdout.
//
//   --case tasks  count=6 ms=2000 cpus=1   tasks that sleep, each returns its node
//   --case actor  cpus=1                   an actor needing `cpus`; returns its node
//   --case burst  count=40 cpus=1 ms=...   like tasks; for the 20-node benchmark

#include <unistd.h>

#include <chrono>
#include <cstdlib>
#include <iostream>
#include <map>
#include <set>
#include <string>
#include <thread>
#include <vector>

#include <nlohmann/json.hpp>
#include <rayd/rayd.hpp>

#include "case_main.hpp"

using json = nlohmann::json;
using namespace std::chrono_literals;
using namespace rayd::test_programs;

namespace {

std::string this_node() {
  const char* n = std::getenv("RAYD_NODE_ID");
  return n != nullptr ? n : "";
}

} // namespace

std::string nap_where(int ms) {
  std::this_thread::sleep_for(std::chrono::milliseconds(ms));
  return this_node();
}

RAYD_REMOTE(nap_where);

class Resident {
public:
  Resident() = default;
  std::string node() const {
    return this_node();
  }
};
RAYD_ACTOR(Resident, (), node);

namespace {

json case_tasks(const args_t& a) {
  auto count = num(a, "count", 6);
  auto ms = static_cast<int>(num(a, "ms", 2000));
  auto cpus = static_cast<double>(num(a, "cpus", 1));
  std::vector<rayd::object_ref<std::string>> refs;
  for (uint64_t i = 0; i < count; ++i)
    refs.push_back(rayd::task(nap_where).num_cpus(cpus).remote(ms));
  auto nodes = rayd::get(refs, 300s);
  std::set<std::string> distinct(nodes.begin(), nodes.end());
  return {{"nodes", nodes}, {"distinct", distinct.size()}};
}

json case_actor(const args_t& a) {
  auto cpus = static_cast<double>(num(a, "cpus", 1));
  auto h = rayd::actor<Resident>().num_cpus(cpus).remote();
  auto node = rayd::get(h.task(&Resident::node).remote(), 300s);
  rayd::kill(h);
  return {{"node", node}};
}

} // namespace

int main(int argc, char** argv) {
  rayd::init(); // first: in a worker process this serves tasks and never returns
  return run_case_main(argc, argv, "autoscale_driver",
                       {{"tasks", case_tasks}, {"burst", case_tasks}, {"actor", case_actor}});
}
