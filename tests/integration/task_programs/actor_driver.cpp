// The driver program of tests/integration/actors_test.cpp: a user program with
// actors (RAYD_ACTOR), run against a test cluster (RAYD_ADDRESS, RAYD_TOKEN).
// The nodes run this same binary as the worker processes hosting its actors,
// so rayd::init() comes first in main.
//
//   actor_driver --case NAME [key=value ...]
//
// Each case prints one JSON object on the last line of stdout: what it
// observed. The test asserts on it. Keys: dir=PATH (files shared with the
// test as signals), name=, ns=, count=, ms=, threads=.

#include <unistd.h>

#include <algorithm>
#include <atomic>
#include <chrono>
#include <cstdint>
#include <cstdlib>
#include <fstream>
#include <iostream>
#include <map>
#include <mutex>
#include <set>
#include <stdexcept>
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

int64_t now_us() {
  return std::chrono::duration_cast<std::chrono::microseconds>(
           std::chrono::steady_clock::now().time_since_epoch())
    .count();
}

// -- actor classes ------------------------------------------------------------------

/// A counter: the state a restart loses (the constructor runs again).
class Counter {
public:
  explicit Counter(int start) : value_(start) {
  }
  int add(int n) {
    value_ += n;
    return value_;
  }
  int value() const {
    return value_;
  }
  int pid() const {
    return static_cast<int>(::getpid());
  }
  std::string node() const {
    const char* n = std::getenv("RAYD_NODE_ID");
    return n != nullptr ? n : "";
  }
  /// Publishes `started` (a file the test awaits), sleeps, then returns the
  /// value: a call in flight while the test kills its process.
  int slow(std::string started, int ms) {
    if (!started.empty())
      publish(started, "1");
    std::this_thread::sleep_for(std::chrono::milliseconds(ms));
    return value_;
  }

private:
  int value_;
};
RAYD_ACTOR(Counter, (int), add, value, pid, node, slow);

/// Records each caller's sequence numbers in arrival order.
class Recorder {
public:
  Recorder() = default;
  void record(std::string caller, int seq) {
    seen_[caller].push_back(seq);
  }
  std::vector<int> seen(std::string caller) const {
    auto i = seen_.find(caller);
    return i == seen_.end() ? std::vector<int>{} : i->second;
  }

private:
  std::map<std::string, std::vector<int>> seen_;
};
RAYD_ACTOR(Recorder, (), record, seen);

/// Sleeps and reports when it ran (max_concurrency overlap).
class Sleeper {
public:
  Sleeper() = default;
  std::vector<int64_t> nap(int ms) {
    auto start = now_us();
    std::this_thread::sleep_for(std::chrono::milliseconds(ms));
    return {start, now_us()};
  }
};
RAYD_ACTOR(Sleeper, (), nap);

/// A constructor that throws.
class Broken {
public:
  explicit Broken(std::string why) {
    throw std::invalid_argument(why);
  }
  int never() const {
    return 0;
  }
};
RAYD_ACTOR(Broken, (std::string), never);

/// A task that gets an actor handle and calls it.
int add_through(rayd::actor_handle<Counter> c, int times) {
  int last = 0;
  for (int i = 0; i < times; ++i)
    last = rayd::get(c.task(&Counter::add).remote(1), 60s);
  return last;
}
RAYD_REMOTE(add_through);

// -- helpers ----------------------------------------------------------------------------


// -- cases ------------------------------------------------------------------------------

/// `threads` threads each make `count` calls (async, then get) recording
/// their sequence numbers on the named actor `name`; with create=1 it makes
/// the actor (detached, so a peer process can use it too). Prints whether
/// each caller's calls arrived in order.
json case_order(const args_t& a) {
  auto name = arg(a, "name", "recorder");
  auto ns = arg(a, "ns", "order");
  auto threads = num(a, "threads", 4);
  auto count = static_cast<int>(num(a, "count", 2000));
  auto tag = arg(a, "tag", "p1");
  rayd::actor_handle<Recorder> rec;
  if (arg(a, "create") == "1")
    rec = rayd::actor<Recorder>().name(name).ray_namespace(ns).lifetime_detached().remote();
  else
    rec = rayd::get_actor<Recorder>(name, ns);
  if (!arg(a, "dir").empty()) { // start together with a peer process
    publish(arg(a, "dir") + "/ready-" + tag, "1");
    if (!await_file(arg(a, "dir") + "/go", 60s))
      throw std::runtime_error("no go signal");
  }
  std::vector<std::thread> ts;
  for (uint64_t t = 0; t < threads; ++t)
    ts.emplace_back([&rec, t, count, tag] {
      std::vector<rayd::object_ref<void>> refs;
      auto caller = tag + "-" + std::to_string(t);
      for (int i = 0; i < count; ++i)
        refs.push_back(rec.task(&Recorder::record).remote(caller, i));
      rayd::get(refs, 120s);
    });
  for (auto& t : ts)
    t.join();
  json out;
  bool in_order = true;
  uint64_t total = 0;
  for (uint64_t t = 0; t < threads; ++t) {
    auto seen = rayd::get(rec.task(&Recorder::seen).remote(tag + "-" + std::to_string(t)), 60s);
    total += seen.size();
    for (int i = 0; i < static_cast<int>(seen.size()); ++i)
      if (seen[i] != i)
        in_order = false;
    if (static_cast<int>(seen.size()) != count)
      in_order = false;
  }
  out["in_order"] = in_order;
  out["total"] = total;
  return out;
}

/// 8 naps of `ms` on an actor with max_concurrency `n`: how many overlapped.
json case_concurrency(const args_t& a) {
  auto n = static_cast<int>(num(a, "n", 4));
  auto ms = static_cast<int>(num(a, "ms", 400));
  auto s = rayd::actor<Sleeper>().max_concurrency(n).remote();
  rayd::get(s.task(&Sleeper::nap).remote(0), 60s); // placed and warm
  std::vector<rayd::object_ref<std::vector<int64_t>>> refs;
  auto t0 = now_us();
  for (int i = 0; i < 8; ++i)
    refs.push_back(s.task(&Sleeper::nap).remote(ms));
  auto spans = rayd::get(refs, 60s);
  auto wall_ms = (now_us() - t0) / 1000;
  // Most naps running at one instant.
  int most = 0;
  for (auto& x : spans) {
    int at = 0;
    for (auto& y : spans)
      if (y[0] <= x[0] && x[0] < y[1])
        ++at;
    most = std::max(most, at);
  }
  return {{"max_overlap", most}, {"wall_ms", wall_ms}};
}

/// A counter with max_restarts=`restarts`; publishes its pid to dir/pid-1,
/// waits for dir/killed-1, calls again (a restart resets it), publishes the
/// new pid to dir/pid-2, waits for dir/killed-2, calls again.
json case_restart(const args_t& a) {
  auto dir = arg(a, "dir");
  auto c = rayd::actor<Counter>(100)
             .max_restarts(static_cast<int>(num(a, "restarts", 1)))
             .max_task_retries(-1)
             .remote();
  json out;
  out["first"] = rayd::get(c.task(&Counter::add).remote(1), 60s);
  for (int round = 1; round <= 2; ++round) {
    auto pid = rayd::get(c.task(&Counter::pid).remote(), 60s);
    publish(dir + "/pid-" + std::to_string(round), std::to_string(pid));
    if (!await_file(dir + "/killed-" + std::to_string(round), 60s))
      throw std::runtime_error("the test did not kill the worker");
    int value = -1;
    out["after_" + std::to_string(round)] =
      outcome([&] { value = rayd::get(c.task(&Counter::add).remote(1), 60s); });
    out["value_" + std::to_string(round)] = value;
  }
  return out;
}

/// A call in flight (a long nap) while the test kills the actor's process:
/// with max_task_retries=`retries` the call is retried on the restarted
/// actor, or fails.
json case_retries(const args_t& a) {
  auto dir = arg(a, "dir");
  auto c = rayd::actor<Counter>(7)
             .max_restarts(1)
             .max_task_retries(static_cast<int>(num(a, "retries", 1)))
             .remote();
  auto pid = rayd::get(c.task(&Counter::pid).remote(), 60s);
  auto slow = c.task(&Counter::slow).remote(dir + "/slow-started",
                                            static_cast<int>(num(a, "ms", 3000)));
  publish(dir + "/pid-1", std::to_string(pid));
  json out;
  int value = -1;
  out["slow"] = outcome([&] { value = rayd::get(slow, 60s); });
  out["value"] = value;
  int after = -1;
  out["after"] = outcome([&] { after = rayd::get(c.task(&Counter::value).remote(), 60s); });
  out["after_value"] = after;
  return out;
}

/// Named actors: create (detached; zone=Z: on a node labelled zone=Z) with a
/// value, a duplicate create fails, a get_if_exists create returns the same
/// actor.
json case_named(const args_t& a) {
  auto name = arg(a, "name", "kv");
  auto ns = arg(a, "ns", "t");
  json out;
  auto builder = rayd::actor<Counter>(static_cast<int>(num(a, "start", 40)))
                   .name(name)
                   .ray_namespace(ns)
                   .lifetime_detached();
  if (!arg(a, "zone").empty()) // on a node of that zone
    builder.label_selector({{"zone", arg(a, "zone")}});
  auto c = builder.remote();
  out["value"] = rayd::get(c.task(&Counter::add).remote(2), 60s);
  out["duplicate"] = outcome([&] {
    rayd::actor<Counter>(0).name(name).ray_namespace(ns).remote();
  });
  auto same = rayd::actor<Counter>(0).name(name).ray_namespace(ns).get_if_exists().remote();
  out["same_id"] = same.id() == c.id();
  out["id"] = c.id();
  out["pid"] = rayd::get(c.task(&Counter::pid).remote(), 60s);
  return out;
}

/// Another driver: finds the named actor and reads (and bumps) its value.
json case_lookup(const args_t& a) {
  json out;
  auto c = rayd::get_actor<Counter>(arg(a, "name", "kv"), arg(a, "ns", "t"));
  out["id"] = c.id();
  out["value"] = rayd::get(c.task(&Counter::add).remote(static_cast<int>(num(a, "add", 0))), 60s);
  out["missing"] = outcome([] { rayd::get_actor<Counter>("no-such-actor", "t"); });
  return out;
}

/// Calls a named actor while the test has the head down: finds it, calls
/// once, publishes dir/ready, waits for dir/head_down, then makes `count`
/// calls (straight to the actor's process: the head is not needed).
json case_calls_without_head(const args_t& a) {
  auto dir = arg(a, "dir");
  auto c = rayd::get_actor<Counter>(arg(a, "name", "kv"), arg(a, "ns", "t"));
  json out;
  out["before"] = rayd::get(c.task(&Counter::value).remote(), 60s);
  publish(dir + "/ready", "1");
  if (!await_file(dir + "/head_down", 60s))
    throw std::runtime_error("the test did not take the head down");
  auto count = static_cast<int>(num(a, "count", 100));
  int last = 0;
  out["calls"] = outcome([&] {
    for (int i = 0; i < count; ++i)
      last = rayd::get(c.task(&Counter::add).remote(1), 30s);
  });
  out["last"] = last;
  return out;
}

/// `count` concurrent get_if_exists creates of one name from `threads`
/// threads: the ids they got.
json case_race(const args_t& a) {
  auto name = arg(a, "name", "racer");
  auto threads = num(a, "threads", 8);
  auto count = num(a, "count", 1000);
  std::mutex mu;
  std::set<std::string> ids;
  std::atomic<uint64_t> errors{0};
  std::vector<std::thread> ts;
  for (uint64_t t = 0; t < threads; ++t)
    ts.emplace_back([&, t] {
      for (uint64_t i = t; i < count; i += threads) {
        try {
          auto h = rayd::actor<Counter>(0).name(name).ray_namespace("race").get_if_exists().remote();
          std::lock_guard<std::mutex> g{mu};
          ids.insert(h.id());
        } catch (const std::exception&) {
          ++errors;
        }
      }
    });
  for (auto& t : ts)
    t.join();
  json out;
  out["distinct_ids"] = ids.size();
  out["errors"] = errors.load();
  if (ids.size() == 1) {
    rayd::actor_handle<Counter> h(*ids.begin());
    out["value"] = rayd::get(h.task(&Counter::add).remote(1), 60s);
  }
  return out;
}

/// A non-detached named actor; publishes dir/ready and waits to be killed.
json case_owned(const args_t& a) {
  auto c = rayd::actor<Counter>(1).name(arg(a, "name", "owned")).ray_namespace("t").remote();
  rayd::get(c.task(&Counter::add).remote(1), 60s);
  publish(arg(a, "dir") + "/ready", "1");
  std::this_thread::sleep_for(300s); // the test SIGKILLs us
  return {};
}

/// rayd::kill without and with restart.
json case_kill(const args_t&) {
  json out;
  auto gone = rayd::actor<Counter>(1).max_restarts(3).remote();
  rayd::get(gone.task(&Counter::add).remote(1), 60s);
  rayd::kill(gone); // no restart
  out["after_kill"] = outcome([&] { rayd::get(gone.task(&Counter::add).remote(1), 60s); });
  // Killed right after an anonymous create (the create is still on its way).
  auto quick = rayd::actor<Counter>(1).remote();
  out["kill_right_after_create"] = outcome([&] { rayd::kill(quick); });
  out["call_after_quick_kill"] = outcome([&] { rayd::get(quick.task(&Counter::add).remote(1), 60s); });
  auto back = rayd::actor<Counter>(10).max_restarts(1).remote();
  rayd::get(back.task(&Counter::add).remote(5), 60s);
  rayd::kill(back, false); // restarted: the constructor runs again
  int value = -1;
  out["after_restart_kill"] =
    outcome([&] { value = rayd::get(back.task(&Counter::add).remote(1), 60s); });
  out["restarted_value"] = value;
  return out;
}

/// A handle passed to a task, which calls the actor.
json case_handle_to_task(const args_t&) {
  auto c = rayd::actor<Counter>(0).remote();
  rayd::get(c.task(&Counter::add).remote(10), 60s);
  json out;
  out["from_task"] = rayd::get(rayd::task(add_through).remote(c, 5), 120s);
  out["after"] = rayd::get(c.task(&Counter::value).remote(), 60s);
  return out;
}

/// A constructor that throws: calls fail saying so, and it is not restarted.
json case_ctor_throws(const args_t&) {
  auto b = rayd::actor<Broken>(std::string("bad config")).max_restarts(5).remote();
  json out;
  out["call"] = outcome([&] { rayd::get(b.task(&Broken::never).remote(), 60s); });
  return out;
}

/// `count` actors created and called once each.
json case_many(const args_t& a) {
  auto count = static_cast<int>(num(a, "count", 10000));
  auto t0 = now_us();
  std::vector<rayd::actor_handle<Counter>> actors;
  actors.reserve(count);
  for (int i = 0; i < count; ++i)
    actors.push_back(rayd::actor<Counter>(i).remote());
  std::vector<rayd::object_ref<int>> refs;
  refs.reserve(count);
  for (auto& c : actors)
    refs.push_back(c.task(&Counter::add).remote(1));
  auto values = rayd::get(refs, 300s);
  int wrong = 0;
  for (int i = 0; i < count; ++i)
    if (values[i] != i + 1)
      ++wrong;
  return {{"count", count}, {"wrong", wrong}, {"seconds", (now_us() - t0) / 1e6}};
}

/// An actor on a node of label zone=x; publishes its node id to dir/node-1,
/// waits for dir/killed, calls again (restarted on another node).
json case_node_death(const args_t& a) {
  auto dir = arg(a, "dir");
  auto c = rayd::actor<Counter>(5)
             .max_restarts(1)
             .max_task_retries(-1)
             .label_selector({{"zone", "x"}})
             .remote();
  json out;
  out["first_node"] = rayd::get(c.task(&Counter::node).remote(), 60s);
  publish(dir + "/node-1", out["first_node"].get<std::string>());
  if (!await_file(dir + "/killed", 60s))
    throw std::runtime_error("the test did not kill the node");
  std::string node;
  out["after"] = outcome([&] { node = rayd::get(c.task(&Counter::node).remote(), 120s); });
  out["second_node"] = node;
  int value = -1;
  out["value_outcome"] = outcome([&] { value = rayd::get(c.task(&Counter::add).remote(1), 60s); });
  out["value"] = value;
  return out;
}

} // namespace

int main(int argc, char** argv) {
  rayd::init(); // first: in a worker process this serves and never returns
  return run_case_main(argc, argv, "actor_driver", {
    {"order", case_order},         {"concurrency", case_concurrency},
    {"restart", case_restart},     {"retries", case_retries},
    {"named", case_named},         {"lookup", case_lookup},
    {"race", case_race},           {"owned", case_owned},
    {"kill", case_kill},           {"handle_to_task", case_handle_to_task},
    {"ctor_throws", case_ctor_throws}, {"many", case_many},
    {"node_death", case_node_death}, {"calls_without_head", case_calls_without_head}});
}
