// The driver program of tests/integration/tasks_test.cpp: a user program
// linking rayd::api, run against a test cluster (RAYD_ADDRESS, RAYD_TOKEN) or
// with none (the embedded default). The node runs this same binary as its
// worker process, so rayd::init() comes first in main.
//
//   task_driver --case NAME [key=value ...]
//
// Each case prints one JSON object on the last line of stdout: what it
// observed (values, node ids, the exceptions get threw). The test asserts on
// it; the driver decides nothing beyond "the case ran" (exit 0) or "it could
// not" (exit 1, the reason on stderr and in "fatal"). Keys a case takes:
//   nodes=ID,ID,...   node ids of the resources n0, n1, ... (placement checks)
//   dir=PATH          a directory shared with the test (files as signals)
//   size=BYTES, count=N, ms=N   sizes, task counts, durations

#include <fcntl.h>
#include <unistd.h>

#include <chrono>
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <fstream>
#include <iostream>
#include <map>
#include <set>
#include <sstream>
#include <stdexcept>
#include <string>
#include <thread>
#include <tuple>
#include <vector>

#include <nlohmann/json.hpp>
#include <rayd/rayd.hpp>

#include "case_main.hpp"

using json = nlohmann::json;
using namespace std::chrono_literals;
using namespace rayd::test_programs;

// -- helpers shared by tasks and driver -----------------------------------------

namespace {

std::string this_node() {
  const char* n = std::getenv("RAYD_NODE_ID");
  return n != nullptr ? n : "";
}

/// Deterministic bytes: the same (size, seed) gives the same string everywhere.
std::string blob_bytes(uint64_t size, uint64_t seed) {
  std::string out(size, '\0');
  uint64_t x = seed * 0x9E3779B97F4A7C15ull + 1;
  for (uint64_t i = 0; i < size; ++i) {
    if ((i & 7) == 0) {
      x ^= x << 13;
      x ^= x >> 7;
      x ^= x << 17;
    }
    out[i] = static_cast<char>((x >> ((i & 7) * 8)) & 0xff);
  }
  return out;
}

/// FNV-1a, 64 bit.
uint64_t checksum(const std::string& s) {
  uint64_t h = 1469598103934665603ull;
  for (unsigned char c : s) {
    h ^= c;
    h *= 1099511628211ull;
  }
  return h;
}

} // namespace

// -- remote functions -------------------------------------------------------------

std::string where() {
  return this_node();
}

std::string where_slow(int ms) {
  std::this_thread::sleep_for(std::chrono::milliseconds(ms));
  return this_node();
}

int add(int a, int b) {
  return a + b;
}

int inc(int x) {
  return x + 1;
}

int times(int x, int k) {
  return x * k;
}

int combine(int b, int c) {
  return b * 1000 + c;
}

std::string make_blob(uint64_t size, uint64_t seed) {
  return blob_bytes(size, seed);
}

/// (size, checksum, node it ran on) of a blob.
std::tuple<uint64_t, uint64_t, std::string> blob_info(const std::string& blob) {
  return {blob.size(), checksum(blob), this_node()};
}

/// Joins two blob_info results: (size b + size c, checksums equal, "node_b,node_c,node_d").
std::tuple<uint64_t, bool, std::string>
join_infos(const std::tuple<uint64_t, uint64_t, std::string>& b,
           const std::tuple<uint64_t, uint64_t, std::string>& c) {
  return {std::get<0>(b) + std::get<0>(c), std::get<1>(b) == std::get<1>(c),
          std::get<2>(b) + "," + std::get<2>(c) + "," + this_node()};
}

/// A blob travelling through tasks, with the nodes it passed.
using hop = std::tuple<std::string, std::vector<std::string>>;

hop relay(const hop& h) {
  auto out = h;
  std::get<1>(out).push_back(this_node());
  return out;
}

/// Counts its attempts in <dir>/attempts; the first one publishes its pid in
/// <dir>/pid and sleeps (the test kills it); later ones answer at once.
/// Returns (value * 2, attempt number, pid).
std::tuple<int, int, int> retry_probe(const std::string& dir, int value) {
  int fd = ::open((dir + "/attempts").c_str(), O_WRONLY | O_CREAT | O_APPEND, 0644);
  std::string line = std::to_string(::getpid()) + "\n";
  [[maybe_unused]] auto n = ::write(fd, line.data(), line.size());
  ::close(fd);
  std::ifstream in(dir + "/attempts");
  int attempt = 0;
  for (std::string l; std::getline(in, l);)
    ++attempt;
  if (attempt == 1) {
    publish(dir + "/pid", std::to_string(::getpid()));
    std::this_thread::sleep_for(60s); // the test SIGKILLs us long before
    return {-1, attempt, ::getpid()};
  }
  return {value * 2, attempt, ::getpid()};
}

/// Announces itself in <dir>/started.<i>.<pid> (holding its node id), then
/// holds its resources until <dir>/release exists. Returns (i * i, node, pid).
std::tuple<int, std::string, int> hold(const std::string& dir, int i) {
  publish(dir + "/started." + std::to_string(i) + "." + std::to_string(::getpid()),
          this_node());
  if (!await_file(dir + "/release", 120s))
    return {-1, this_node(), ::getpid()};
  return {i * i, this_node(), ::getpid()};
}

struct bad_input : std::invalid_argument {
  using std::invalid_argument::invalid_argument;
};

int fails(int x) {
  if (x < 0)
    throw bad_input("negative input " + std::to_string(x));
  throw std::runtime_error("boom " + std::to_string(x));
}

RAYD_REMOTE(where, where_slow, add, inc, times, combine, make_blob, blob_info, join_infos,
            relay, retry_probe, hold, fails);

// -- the cases ----------------------------------------------------------------------

namespace {

std::vector<std::string> split(const std::string& s) {
  std::vector<std::string> out;
  std::stringstream in(s);
  for (std::string part; std::getline(in, part, ',');)
    out.push_back(part);
  return out;
}

/// The task forced onto node `i` of the cluster: it takes resource "n<i>".
template <class T>
T on(T t, int i) {
  return t.resources({{"n" + std::to_string(i), 0.01}});
}


json info_json(const std::tuple<uint64_t, uint64_t, std::string>& i) {
  return {{"size", std::get<0>(i)}, {"checksum", std::get<1>(i)}, {"node", std::get<2>(i)}};
}

/// Tasks pinned to each node report where they ran; then a fan-out of plain
/// tasks reports the nodes that ran them.
json case_placement(const args_t& a) {
  auto nodes = split(arg(a, "nodes"));
  json out;
  std::vector<rayd::object_ref<std::string>> pinned;
  for (std::size_t i = 0; i < nodes.size(); ++i)
    pinned.push_back(on(rayd::task(where), static_cast<int>(i)).remote());
  out["pinned"] = rayd::get(pinned, 60s);
  std::vector<rayd::object_ref<std::string>> fan;
  auto count = num(a, "count", 24);
  auto ms = static_cast<int>(num(a, "ms", 300));
  for (uint64_t i = 0; i < count; ++i)
    fan.push_back(rayd::task(where_slow).remote(ms));
  out["fanout"] = rayd::get(fan, 120s);
  return out;
}

/// Many small tasks at once (more than a lease pipelines), summed.
json case_many(const args_t& a) {
  auto count = static_cast<int>(num(a, "count", 2000));
  std::vector<rayd::object_ref<int>> refs;
  for (int i = 0; i < count; ++i)
    refs.push_back(rayd::task(add).remote(i, 1));
  int64_t sum = 0;
  for (int v : rayd::get(refs, 60s))
    sum += v;
  return {{"sum", sum}, {"count", count}};
}

/// A chain of 20 tasks, a diamond of ints, a diamond and a relay of stored
/// objects across nodes.
json case_deps(const args_t& a) {
  json out;
  {
    // Only the last ref is kept: the chain's middle must stay alive anyway.
    auto ref = rayd::task(inc).remote(0);
    for (int i = 1; i < 20; ++i)
      ref = rayd::task(inc).remote(ref);
    out["chain"] = rayd::get(ref, 60s);
  }
  {
    auto x = rayd::task(add).remote(1, 2);
    auto b = rayd::task(times).remote(x, 10);
    auto c = rayd::task(add).remote(x, 4);
    auto d = rayd::task(combine).remote(b, c);
    out["diamond"] = rayd::get(d, 60s);
  }
  const uint64_t size = num(a, "size", 300 * 1024);
  {
    // Stored objects: a on n0; b, c read it on n1 and n2; d joins on n0.
    auto blob = on(rayd::task(make_blob), 0).remote(size, 7);
    auto b = on(rayd::task(blob_info), 1).remote(blob);
    auto c = on(rayd::task(blob_info), 2).remote(blob);
    auto d = on(rayd::task(join_infos), 0).remote(b, c);
    auto [total, same, where_ran] = rayd::get(d, 60s);
    out["stored_diamond"] = {{"total", total}, {"same_checksum", same}, {"nodes", where_ran},
                             {"b", info_json(rayd::get(b))}};
    out["expected_checksum"] = checksum(blob_bytes(size, 7));
  }
  {
    // A stored blob relayed n0 -> n1 -> n2 -> n0 -> n1 -> n2.
    hop start{blob_bytes(size, 11), {}};
    auto ref = rayd::put(start);
    for (int i = 0; i < 6; ++i)
      ref = on(rayd::task(relay), i % 3).remote(ref);
    auto [blob, path] = rayd::get(ref, 60s);
    out["relay"] = {{"intact", blob == std::get<0>(start)}, {"path", path}};
  }
  return out;
}

/// A blob made on n0 and read on n1 (size and checksum), then by the driver.
json case_big(const args_t& a) {
  const uint64_t size = num(a, "size", 1 << 20);
  json out;
  auto blob = on(rayd::task(make_blob), 0).remote(size, 3);
  auto info = on(rayd::task(blob_info), 1).remote(blob);
  out["remote"] = info_json(rayd::get(info, 300s));
  auto expected = blob_bytes(size, 3);
  out["expected"] = {{"size", size}, {"checksum", checksum(expected)}};
  auto mine = rayd::get(blob, 300s);
  out["driver_read"] = {{"size", mine.size()}, {"checksum", checksum(mine)}};
  if (arg(a, "put") == "1") {
    auto put_ref = rayd::put(expected);
    auto back = rayd::get(put_ref, 300s);
    out["put"] = {{"size", back.size()}, {"intact", back == expected}};
    // And a task on n1 reads the put object from the driver's node.
    out["put_remote"] = info_json(rayd::get(on(rayd::task(blob_info), 1).remote(put_ref), 300s));
    // And a task on the driver's node reads it where it lies.
    out["put_local"] = info_json(rayd::get(on(rayd::task(blob_info), 0).remote(put_ref), 300s));
    // Dropped, then another value of the size: written into the recycled
    // memory (docs/tasks.md, shared puts), read back by the driver.
    put_ref = {};
    auto other = blob_bytes(size, 5);
    auto again = rayd::put(other);
    out["put_again"] = {{"intact", rayd::get(again, 300s) == other}};
  }
  return out;
}

/// One task whose first attempt the test kills.
json case_retry(const args_t& a) {
  auto [value, attempt, pid] = rayd::get(rayd::task(retry_probe).remote(arg(a, "dir"), 21), 120s);
  return {{"value", value}, {"attempt", attempt}, {"pid", pid}};
}

/// Tasks holding resource "pool" until the test releases them; the test
/// kills the node they run on first.
json case_node_death(const args_t& a) {
  auto dir = arg(a, "dir");
  auto count = static_cast<int>(num(a, "count", 2));
  std::vector<rayd::object_ref<std::tuple<int, std::string, int>>> refs;
  for (int i = 0; i < count; ++i)
    refs.push_back(rayd::task(hold).resources({{"pool", 1}}).remote(dir, i));
  json out = json::array();
  for (auto& r : refs) {
    json one;
    one["outcome"] = outcome([&] {
      auto [v, node, pid] = rayd::get(r, 120s);
      one["value"] = v;
      one["node"] = node;
      one["pid"] = pid;
    });
    out.push_back(one);
  }
  return {{"results", out}};
}

/// Shapes nobody can ever hold.
json case_infeasible(const args_t&) {
  json out;
  out["gpus"] = outcome([] { rayd::get(rayd::task(where).num_gpus(8).remote(), 30s); });
  out["custom"] = outcome(
    [] { rayd::get(rayd::task(where).resources({{"unicorn", 2}}).remote(), 30s); });
  // The cluster still works afterwards.
  out["after"] = rayd::get(rayd::task(add).remote(2, 3), 30s);
  return out;
}

/// Two tasks wanting the one "slot": the second waits (pending demand) until
/// the test releases the first.
json case_demand(const args_t& a) {
  auto dir = arg(a, "dir");
  auto first = rayd::task(hold).resources({{"slot", 1}}).remote(dir, 1);
  auto second = rayd::task(hold).resources({{"slot", 1}}).remote(dir, 2);
  json out;
  out["first"] = std::get<0>(rayd::get(first, 120s));
  out["second"] = std::get<0>(rayd::get(second, 120s));
  return out;
}

/// Tasks that throw.
json case_throws(const args_t&) {
  json out;
  out["runtime_error"] = outcome([] { rayd::get(on(rayd::task(fails), 1).remote(42), 30s); });
  out["custom"] = outcome([] { rayd::get(on(rayd::task(fails), 1).remote(-5), 30s); });
  return out;
}

/// The embedded default: computes, then waits for <dir>/go before exiting
/// (the test looks at the processes it started meanwhile).
json case_embedded(const args_t& a) {
  std::vector<rayd::object_ref<int>> refs;
  for (int i = 0; i < 20; ++i)
    refs.push_back(rayd::task(add).remote(i, i));
  int sum = 0;
  for (int v : rayd::get(refs, 60s))
    sum += v;
  json out{{"sum", sum}, {"node", rayd::get(rayd::task(where).remote(), 60s)}};
  auto dir = arg(a, "dir");
  if (!dir.empty()) {
    std::ofstream(dir + "/computed") << sum;
    out["go"] = await_file(dir + "/go", 60s);
  }
  return out;
}

/// Arguments and results of the wrong type.
json case_types(const args_t&) {
  json out;
  out["by_name"] = outcome([] { rayd::get(rayd::task<int>("add").remote("x", 2), 30s); });
  out["arity"] = outcome([] { rayd::get(rayd::task<int>("add").remote(1), 30s); });
  out["get_string_as_int"] = outcome([] {
    auto s = rayd::put(std::string("hello"));
    rayd::get(rayd::object_ref<int>(s.id()), 30s);
  });
  out["result_as_int"] = outcome([] { rayd::get(rayd::task<int>("where").remote(), 30s); });
  out["after"] = rayd::get(rayd::task(add).remote(20, 22), 30s);
  return out;
}

/// A big result stored on n1; the test kills n1 once it is ready; then the
/// driver reads it, and a task on n0 reads it.
json case_lost(const args_t& a) {
  auto dir = arg(a, "dir");
  const uint64_t size = num(a, "size", 2 << 20);
  auto blob = on(rayd::task(make_blob), 1).remote(size, 5);
  auto ready = rayd::wait(std::vector<rayd::object_ref<std::string>>{blob}, 1, 60s);
  json out;
  out["ready"] = ready.ready.size() == 1;
  std::ofstream(dir + "/stored") << "1";
  out["killed"] = await_file(dir + "/killed", 60s);
  out["get"] = outcome([&] { rayd::get(blob, 60s); });
  out["dependent"] = outcome([&] { rayd::get(on(rayd::task(blob_info), 0).remote(blob), 60s); });
  // The cluster still runs tasks.
  out["after"] = rayd::get(on(rayd::task(add), 0).remote(1, 1), 60s);
  return out;
}


/// Many tiny tasks, in batches, while the test SIGKILLs and restarts the head
/// (tests/integration/driver_restart_test.cpp). Every result is checked.
/// Publishes dir/half once `count`/2 tasks are done, then runs batches until
/// `count` are done and dir/back exists (the head is up again); then a task
/// pinned to the head (resource n0) shows the driver uses the head again.
json case_head_death(const args_t& a) {
  auto dir = arg(a, "dir");
  const uint64_t count = num(a, "count", 20000);
  const uint64_t batch = num(a, "batch", 500);
  json out;
  uint64_t done = 0, wrong = 0, failed = 0, batches_after_half = 0;
  json errors = json::array();
  bool half = false;
  auto deadline = std::chrono::steady_clock::now() + 150s;
  while (done < count || !exists(dir + "/back")) {
    if (std::chrono::steady_clock::now() > deadline)
      throw std::runtime_error("head_death: the head did not come back within 150 s");
    std::vector<rayd::object_ref<int>> refs;
    for (uint64_t i = 0; i < batch; ++i)
      refs.push_back(rayd::task(add).remote(static_cast<int>(done + i), 1));
    for (uint64_t i = 0; i < batch; ++i) {
      auto o = outcome([&] {
        if (rayd::get(refs[i], 120s) != static_cast<int>(done + i) + 1)
          ++wrong;
      });
      if (o["kind"] != "none") {
        ++failed;
        if (errors.size() < 5)
          errors.push_back(o);
      }
    }
    done += batch;
    if (half)
      ++batches_after_half;
    if (!half && done >= count / 2) {
      half = true;
      publish(dir + "/half", "1");
    }
  }
  out["done"] = done;
  out["wrong"] = wrong;
  out["failed"] = failed;
  out["errors"] = errors;
  out["batches_after_half"] = batches_after_half;
  std::string pinned;
  out["head_after"] = outcome([&] { pinned = rayd::get(on(rayd::task(where), 0).remote(), 60s); });
  out["pinned_after"] = pinned;
  return out;
}

} // namespace

int main(int argc, char** argv) {
  rayd::init(); // first: in a worker process this serves tasks and never returns
  return run_case_main(argc, argv, "task_driver", {
    {"placement", case_placement}, {"many", case_many},           {"deps", case_deps},           {"big", case_big},
    {"retry", case_retry},         {"node_death", case_node_death},
    {"infeasible", case_infeasible}, {"demand", case_demand},     {"throws", case_throws},
    {"embedded", case_embedded},   {"types", case_types},         {"lost", case_lost},
    {"head_death", case_head_death}},
                       [](json& out) { out["fatal_detail"] = outcome([] { throw; }); });
}
