// The driver program of tests/integration/remote_client_test.cpp: a user
// program run as a remote client (RAYD_ADDRESS=rayd://HOST:API_PORT,
// RAYD_TOKEN), every call through the head's API port only. The nodes run
// this same binary as the worker processes of its tasks and actors (shipped
// by hash), so rayd::init() comes first in main.
//
//   client_driver --case NAME [key=value ...]
//
// Each case prints one JSON object on the last line of stdout (case_main.hpp);
// "peers" lists where this process's TCP connections go.
// Cases that the test acts on while they run also print progress lines
// before it, flushed at once: "READY", "PROGRESS <round> <calls> <wall ms>",
// "ACKED <n>", "INFLIGHT". Keys:
//   grace_ms=N   init_options::client_reconnect_grace (read before init)
//   dir=PATH     a directory shared with the test (files as signals)
//   count=N, calls=N, size=BYTES, task_size=BYTES, batch=N, ms=N, name=, ns=,
//   resource=NAME

#include <sys/resource.h>

#include <chrono>
#include <cstdint>
#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <iostream>
#include <set>
#include <sstream>
#include <stdexcept>
#include <string>
#include <thread>
#include <tuple>
#include <utility>
#include <vector>

#include <nlohmann/json.hpp>
#include <rayd/rayd.hpp>

#include "case_main.hpp"

using json = nlohmann::json;
using namespace std::chrono_literals;
using namespace rayd::test_programs;

namespace {

/// Deterministic bytes: the same (size, seed) gives the same string
/// everywhere (driver and worker), 8 bytes per step.
std::string blob_bytes(uint64_t size, uint64_t seed) {
  std::string out(size, '\0');
  uint64_t x = seed * 0x9E3779B97F4A7C15ull + 1;
  uint64_t i = 0;
  for (; i + 8 <= size; i += 8) {
    x ^= x << 13;
    x ^= x >> 7;
    x ^= x << 17;
    for (int b = 0; b < 8; ++b)
      out[i + b] = static_cast<char>((x >> (b * 8)) & 0xff);
  }
  for (; i < size; ++i)
    out[i] = static_cast<char>(i & 0xff);
  return out;
}

/// A 64-bit checksum (FNV-1a over 8-byte words): any changed, lost or
/// reordered chunk changes it.
uint64_t checksum(const std::string& s) {
  uint64_t h = 1469598103934665603ull;
  uint64_t i = 0;
  for (; i + 8 <= s.size(); i += 8) {
    uint64_t w = 0;
    for (int b = 0; b < 8; ++b)
      w |= static_cast<uint64_t>(static_cast<unsigned char>(s[i + b])) << (b * 8);
    h ^= w;
    h *= 1099511628211ull;
  }
  for (; i < s.size(); ++i) {
    h ^= static_cast<unsigned char>(s[i]);
    h *= 1099511628211ull;
  }
  return h ^ s.size();
}

/// Peak resident memory of this process so far (MiB).
int64_t peak_rss_mib() {
  rusage ru{};
  ::getrusage(RUSAGE_SELF, &ru);
  return ru.ru_maxrss / 1024;
}

/// "a.b.c.d:port" of a /proc/net/tcp address ("0100007F:1F90"; IPv6 ones
/// keep their hex).
std::string proc_address(const std::string& hex) {
  auto colon = hex.find(':');
  std::string host = hex.substr(0, colon);
  unsigned port = std::stoul(hex.substr(colon + 1), nullptr, 16);
  if (host.size() == 8) { // IPv4, the address bytes in host order
    uint32_t a = std::stoul(host, nullptr, 16);
    host = std::to_string(a & 0xff) + "." + std::to_string((a >> 8) & 0xff) + "."
           + std::to_string((a >> 16) & 0xff) + "." + std::to_string(a >> 24);
  }
  return host + ":" + std::to_string(port);
}

/// The remote ends of this process's established TCP connections ("local
/// -> remote" with `with_local`): a remote client has exactly one kind, the
/// head's API port; an in-cluster driver also has node ports.
std::vector<std::string> tcp_peers(bool with_local = false) {
  std::set<std::string> inodes;
  std::error_code ec;
  for (auto it = std::filesystem::directory_iterator("/proc/self/fd", ec);
       !ec && it != std::filesystem::directory_iterator(); it.increment(ec)) {
    auto target = std::filesystem::read_symlink(it->path(), ec).string();
    if (!ec && target.rfind("socket:[", 0) == 0)
      inodes.insert(target.substr(8, target.size() - 9));
    ec.clear();
  }
  std::vector<std::string> out;
  for (const char* table : {"/proc/self/net/tcp", "/proc/self/net/tcp6"}) {
    std::ifstream in(table);
    std::string line;
    std::getline(in, line); // header
    while (std::getline(in, line)) {
      std::istringstream f(line);
      std::string sl, local, remote, state, queues, timer, retr, uid, timeout, inode;
      f >> sl >> local >> remote >> state >> queues >> timer >> retr >> uid >> timeout >> inode;
      if (state != "01" || inodes.count(inode) == 0) // 01: ESTABLISHED
        continue;
      out.push_back(with_local ? proc_address(local) + " -> " + proc_address(remote)
                               : proc_address(remote));
    }
  }
  return out;
}

/// Wall-clock ms since the epoch: progress lines carry it, so the test can
/// place them against its cut.
int64_t wall_ms() {
  return std::chrono::duration_cast<std::chrono::milliseconds>(
           std::chrono::system_clock::now().time_since_epoch())
    .count();
}

/// A progress line the test awaits: printed and flushed at once.
void say(const std::string& line) {
  std::cout << line << std::endl;
}


} // namespace

// -- remote functions and actor classes ---------------------------------------------

int square(int x) {
  return x * x;
}

int add(int a, int b) {
  return a + b;
}

/// Sleeps `ms`, then returns `x`: work that is still running when the test
/// cuts the link or kills the head.
int slow_echo(int x, int ms) {
  std::this_thread::sleep_for(std::chrono::milliseconds(ms));
  return x;
}

std::string make_blob(uint64_t size, uint64_t seed) {
  return blob_bytes(size, seed);
}

/// (size, checksum) of a value as a worker sees it.
std::tuple<uint64_t, uint64_t> blob_info(const std::string& blob) {
  return {blob.size(), checksum(blob)};
}

RAYD_REMOTE(square, add, slow_echo, make_blob, blob_info);

/// Counts its calls: a call that ran twice (or not at all) shows in value().
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

private:
  int value_;
};
RAYD_ACTOR(Counter, (int), add, value);

namespace {

// -- cases ----------------------------------------------------------------------------

/// `count` tasks square(i); their sum against the closed form.
json case_tasks(const args_t& a) {
  const int n = static_cast<int>(num(a, "count", 100));
  std::vector<rayd::object_ref<int>> refs;
  for (int i = 0; i < n; ++i)
    refs.push_back(rayd::task(square).remote(i));
  int64_t sum = 0;
  for (int v : rayd::get(refs, 300s))
    sum += v;
  // A task whose argument is another task's result (a ref the client holds).
  auto chained = rayd::get(rayd::task(add).remote(refs.back(), 1), 300s);
  int64_t expected = 0;
  for (int64_t i = 0; i < n; ++i)
    expected += i * i;
  return {{"count", n},       {"sum", sum},
          {"expected", expected}, {"chained", chained},
          {"chained_expected", (n - 1) * (n - 1) + 1}, {"peers", tcp_peers()}};
}

/// A Counter: `calls` add(1) calls in flight at once, their answers must be
/// 1..calls in order; then a named actor found again by its name.
json case_actors(const args_t& a) {
  const int calls = static_cast<int>(num(a, "calls", 1000));
  auto c = rayd::actor<Counter>(0).remote();
  std::vector<rayd::object_ref<int>> refs;
  for (int i = 0; i < calls; ++i)
    refs.push_back(c.task(&Counter::add).remote(1));
  auto got = rayd::get(refs, 300s);
  bool in_order = static_cast<int>(got.size()) == calls;
  for (int i = 0; in_order && i < calls; ++i)
    in_order = got[i] == i + 1;
  int final_value = rayd::get(c.task(&Counter::value).remote(), 300s);
  json out{{"calls", calls}, {"in_order", in_order}, {"final", final_value}};
  auto name = arg(a, "name", "client-counter");
  auto named = rayd::actor<Counter>(40).name(name).ray_namespace("client").remote();
  rayd::get(named.task(&Counter::add).remote(2), 300s);
  auto found = rayd::get_actor<Counter>(name, "client");
  out["named_value"] = rayd::get(found.task(&Counter::value).remote(), 300s);
  out["same_handle"] = found == named;
  out["peers"] = tcp_peers();
  return out;
}

/// A `size`-byte put read back (and by a task), and a task's `task_size`
/// result read by the client; checksums against the expected bytes, each
/// value dropped before the next is made so at most two are alive.
json case_roundtrip(const args_t& a) {
  const uint64_t size = num(a, "size", 64ull << 20);
  const uint64_t task_size = num(a, "task_size", size);
  json out;
  uint64_t want_put = 0;
  rayd::object_ref<std::string> put_ref;
  {
    auto t0 = std::chrono::steady_clock::now();
    std::string blob = blob_bytes(size, 11);
    want_put = checksum(blob);
    auto t1 = std::chrono::steady_clock::now();
    put_ref = rayd::put(blob);
    auto t2 = std::chrono::steady_clock::now();
    out["put_ms"] = std::chrono::duration_cast<std::chrono::milliseconds>(t2 - t1).count();
    out["make_ms"] = std::chrono::duration_cast<std::chrono::milliseconds>(t1 - t0).count();
  }
  say("PUT_DONE");
  auto [seen_size, seen_sum] = rayd::get(rayd::task(blob_info).remote(put_ref), 600s);
  out["put_seen_by_task"] = {{"size", seen_size}, {"checksum_ok", seen_sum == want_put}};
  {
    auto t0 = std::chrono::steady_clock::now();
    std::string back = rayd::get(put_ref, 600s);
    out["get_ms"] = std::chrono::duration_cast<std::chrono::milliseconds>(
                      std::chrono::steady_clock::now() - t0)
                      .count();
    out["put_back"] = {{"size", back.size()}, {"checksum_ok", checksum(back) == want_put}};
  }
  put_ref = {};
  uint64_t want_task = checksum(blob_bytes(task_size, 12));
  {
    auto ref = rayd::task(make_blob).remote(task_size, uint64_t{12});
    auto t0 = std::chrono::steady_clock::now();
    std::string got = rayd::get(ref, 600s);
    out["task_get_ms"] = std::chrono::duration_cast<std::chrono::milliseconds>(
                           std::chrono::steady_clock::now() - t0)
                           .count();
    out["task_result"] = {{"size", got.size()}, {"checksum_ok", checksum(got) == want_task}};
  }
  out["size"] = size;
  out["task_size"] = task_size;
  out["peak_rss_mib"] = peak_rss_mib();
  return out;
}

/// Rounds of `batch` add(1) calls on one Counter plus `batch` slow tasks
/// (each `ms` long), all in flight at once, until <dir>/stop exists (checked
/// between rounds) or an error. Prints "READY" once the actor answered, then
/// "PROGRESS <round> <calls> <wall ms>" after each round. Under a cut shorter than the
/// grace every answer is exact and the counter equals the calls made (none
/// ran twice, none was lost); under a longer one the error is reported.
/// "connections_before"/"_after" show whether the client reconnected.
json case_cut(const args_t& a) {
  const int batch = static_cast<int>(num(a, "batch", 20));
  const int ms = static_cast<int>(num(a, "ms", 20));
  const auto dir = arg(a, "dir");
  const auto name = arg(a, "name", "cut-counter");
  auto counter = rayd::actor<Counter>(0).name(name).ray_namespace("client").remote();
  json out;
  int calls = 0;
  int rounds = 0;
  bool exact = true;
  json err = outcome([&] {
    rayd::get(counter.task(&Counter::value).remote(), 300s);
    out["connections_before"] = tcp_peers(true);
    say("READY");
    while (dir.empty() || !exists(dir + "/stop")) {
      std::vector<rayd::object_ref<int>> answers;
      std::vector<rayd::object_ref<int>> tasks;
      for (int i = 0; i < batch; ++i) {
        answers.push_back(counter.task(&Counter::add).remote(1));
        tasks.push_back(rayd::task(slow_echo).remote(rounds * 1000 + i, ms));
      }
      auto got = rayd::get(answers, 300s);
      auto echoed = rayd::get(tasks, 300s);
      for (int i = 0; i < batch; ++i) {
        if (got[i] != calls + i + 1 || echoed[i] != rounds * 1000 + i)
          exact = false;
      }
      calls += batch;
      ++rounds;
      say("PROGRESS " + std::to_string(rounds) + " " + std::to_string(calls) + " "
          + std::to_string(wall_ms()));
    }
    out["final"] = rayd::get(counter.task(&Counter::value).remote(), 300s);
  });
  out["connections_after"] = tcp_peers(true);
  out["error"] = err;
  out["calls"] = calls;
  out["rounds"] = rounds;
  out["exact"] = exact;
  if (err.value("kind", "") != "none") // what the client sees afterwards
    out["after"] = outcome([&] { rayd::get(counter.task(&Counter::value).remote(), 60s); });
  return out;
}

/// A detached named Counter (holding a little of the custom resource
/// `resource`, when given) gets `calls` acknowledged add(1) calls ("ACKED
/// n"); then a slow task is in flight ("INFLIGHT") while the test kills and
/// restarts the head. Reports how that get ended, and what the actor, found
/// again by name, holds afterwards.
json case_head_restart(const args_t& a) {
  const int calls = static_cast<int>(num(a, "calls", 10));
  const int ms = static_cast<int>(num(a, "ms", 15000));
  const auto name = arg(a, "name", "survivor");
  const auto ns = arg(a, "ns", "client");
  json out;
  // On a node that outlives the head: actors on the head's own node die with
  // its process (docs/actors.md, recovery).
  const auto on = arg(a, "resource");
  auto builder = rayd::actor<Counter>(0);
  builder.name(name).ray_namespace(ns).lifetime_detached();
  if (!on.empty())
    builder.resources({{on, 0.01}});
  auto c = builder.remote();
  int last = 0;
  for (int i = 0; i < calls; ++i)
    last = rayd::get(c.task(&Counter::add).remote(1), 300s);
  out["acked_value"] = last;
  say("ACKED " + std::to_string(last));
  auto slow = rayd::task(slow_echo).remote(7, ms);
  say("INFLIGHT");
  out["inflight"] = outcome([&] { out["inflight_value"] = rayd::get(slow, 300s); });
  // The head restarted: find the actor again by name and use it.
  out["after"] = outcome([&] {
    auto found = rayd::get_actor<Counter>(name, ns);
    out["after_value"] = rayd::get(found.task(&Counter::value).remote(), 120s);
    out["after_add"] = rayd::get(found.task(&Counter::add).remote(1), 120s);
    rayd::kill(found);
  });
  return out;
}

} // namespace

int main(int argc, char** argv) {
  rayd::init_options opts;
  for (int i = 1; i < argc; ++i) {
    std::string s = argv[i];
    if (s.rfind("grace_ms=", 0) == 0)
      opts.client_reconnect_grace =
        std::chrono::milliseconds{std::strtoll(s.c_str() + 9, nullptr, 10)};
  }
  rayd::init(opts); // first: in a worker process this serves tasks and never returns
  return run_case_main(argc, argv, "client_driver",
                       {{"tasks", case_tasks},
                        {"actors", case_actors},
                        {"roundtrip", case_roundtrip},
                        {"cut", case_cut},
                        {"head_restart", case_head_restart}});
}
