// rayd-micro-driver: the driver program behind `rayd-bench micro`. One
// invocation runs one workload against the cluster named by RAYD_ADDRESS /
// RAYD_TOKEN (the harness sets both) and prints one JSON object on stdout.
// The workloads mirror Ray's microbenchmarks (ray/_private/ray_perf.py):
//
//   tasks_sync            get(small_value.remote()), one at a time
//   tasks_async           submit --batch small_value tasks, get them all; repeat
//   tasks_and_get_batch   the same, reported as batches/s (Ray's figure)
//   put_calls             put(0) per second, into the node's shared
//                         object store (Ray's ray.put): each put is a PUT to
//                         the node's rayd, which writes it into a memfd any
//                         process on the node can map, and its answer
//   get_calls             get(ref) per second of one small object in the
//                         node's store: the driver keeps no copy, so each
//                         get asks the node's rayd, which reads the object
//                         from the store and sends it (a round trip between
//                         two processes); before the timed window a task
//                         (another process) reads the same object, which
//                         shows it is readable from elsewhere
//   put_calls_inline      put(0) kept in the driver (objects up to 100 KiB
//                         travel inline with tasks): a map insert
//   get_calls_inline      get(ref) of such an object: a map lookup
//   put_gigabytes         put(--bytes value) --batch times per round into
//                         the store, GB/s; first, in the same process, a
//                         single-thread memcpy of the same size (memcpy_gbps,
//                         the physical limit the put is compared with)
//   object_transfer       put a --bytes value (pseudo-random bytes) on this
//                         driver's node, run transfer_check(it) on the node
//                         with the "far" resource: it touches every page of
//                         the pulled copy where it lies, then hashes every
//                         byte (XXH64, timed inside the task and reported)
//                         and the driver compares the hash with its own;
//                         --runs samples, each with a fresh object; also the
//                         time of size_of(it), which copies the argument
//                         into a std::string
//
//   actor_calls_sync      get(a.task(&BenchActor::small_value).remote()), one
//                         at a time, on one actor (Ray's 1_1_actor_calls_sync)
//   actor_calls_async     --batch calls (1000) on one actor, get them all; repeat
//   actor_calls_concurrent  the same on an actor with max_concurrency 16
//   actor_calls_1_n       --batch calls on each of --actors actors (4), get all
//   actor_calls_n_n       one of several drivers: --batch calls spread over
//                         --actors shared, named actors (created by whoever
//                         comes first: get_if_exists), get all; repeat
//   actor_calls_n_n_arg   the same, each call taking a put() object (a
//                         vector of 100 int64) by reference
//   many_actors           create --count actors (10,000), call each once, get
//                         all: one timed run
//
//   rayd-micro-driver --workload NAME --seconds S [--batch N] [--bytes N]
//                     [--runs N] [--barrier DIR] [--actors N] [--count N]
//
// --barrier DIR: after the warm-up, create DIR/ready.<pid> and start once
// DIR/go exists (how the harness starts several clients at once).
//
// The node starts this same binary as a worker process, where rayd::init()
// serves tasks and never returns: so it is the first statement of main.
// Flags are parsed by hand to keep the binary small.

#include <unistd.h>

#include <algorithm>
#include <chrono>
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <fstream>
#include <optional>
#include <stdexcept>
#include <string>
#include <typeinfo>
#include <vector>

#include <rayd/rayd.hpp>

#include "bench/checksum.hpp"

int small_value() {
  return 0;
}

/// The value of a small argument, read by a task (another process).
int64_t echo(int64_t value) {
  return value;
}

uint64_t size_of(std::string value) {
  return value.size();
}

/// The consumer's half of object_transfer's check, over the object where it
/// lies (a std::string_view over the worker's mapping of the node's copy):
/// touches every page first (so the hash below times reading memory that is
/// mapped, as a reader of the object would), then hashes every byte.
/// Returns {size, XXH64 of all bytes, ns spent hashing}.
std::vector<uint64_t> transfer_check(std::string_view value) {
  unsigned char sum = 0;
  for (std::size_t i = 0; i < value.size(); i += 4096)
    sum ^= static_cast<unsigned char>(value[i]);
  auto t0 = std::chrono::steady_clock::now();
  uint64_t hash = rayd::bench::xxh64(value);
  auto ns = std::chrono::duration_cast<std::chrono::nanoseconds>(
              std::chrono::steady_clock::now() - t0)
              .count();
  volatile unsigned char keep = sum; // the page walk is not optimized away
  (void)keep;
  return {value.size(), hash, static_cast<uint64_t>(ns)};
}

RAYD_REMOTE(small_value, echo, size_of, transfer_check);

/// The actor of the actor workloads: Ray's microbenchmark actor returns
/// small values (and takes one argument in *_with_arg).
class BenchActor {
public:
  BenchActor() = default;
  int small_value() {
    return 0;
  }
  int small_arg(std::vector<int64_t> value) {
    return static_cast<int>(value.size());
  }
};
RAYD_ACTOR(BenchActor, (), small_value, small_arg);

namespace {

using clock_type = std::chrono::steady_clock;

/// A get that takes longer than this is reported as an error (the run
/// would otherwise hang): ~1000x what one batch of 1000 tasks needs.
constexpr std::chrono::milliseconds get_timeout{15000};

struct flags {
  std::string workload;
  double seconds = 2;
  long batch = 0;    // 0: the workload's default (1000 tasks, 8 puts)
  uint64_t bytes = 0; // 0: the workload's default
  int runs = 3;
  std::string barrier;
  int actors = 4;
  long count = 10000;
};

[[noreturn]] void usage(const char* why) {
  std::fprintf(stderr,
               "rayd-micro-driver: %s\nusage: rayd-micro-driver --workload NAME "
               "--seconds S [--batch N] [--bytes N] [--runs N] [--barrier DIR]\n",
               why);
  std::exit(2);
}

flags parse(int argc, char** argv) {
  flags f;
  for (int i = 1; i < argc; ++i) {
    std::string a = argv[i];
    auto value = [&]() -> std::string {
      if (i + 1 >= argc)
        usage(("missing value after " + a).c_str());
      return argv[++i];
    };
    if (a == "--workload")
      f.workload = value();
    else if (a == "--seconds")
      f.seconds = std::atof(value().c_str());
    else if (a == "--batch")
      f.batch = std::atol(value().c_str());
    else if (a == "--bytes")
      f.bytes = std::strtoull(value().c_str(), nullptr, 10);
    else if (a == "--runs")
      f.runs = std::atoi(value().c_str());
    else if (a == "--barrier")
      f.barrier = value();
    else if (a == "--actors")
      f.actors = std::atoi(value().c_str());
    else if (a == "--count")
      f.count = std::atol(value().c_str());
    else
      usage(("unknown flag " + a).c_str());
  }
  if (f.workload.empty())
    usage("--workload is required");
  if (f.seconds <= 0 || f.batch < 0 || f.runs <= 0)
    usage("--seconds and --runs must be positive");
  if (f.batch == 0)
    f.batch = f.workload == "put_gigabytes" ? 8 : 1000;
  return f;
}

double seconds_since(clock_type::time_point t0) {
  return std::chrono::duration<double>(clock_type::now() - t0).count();
}

/// Waits for the harness's go signal (see the top of the file).
void barrier(const flags& f) {
  if (f.barrier.empty())
    return;
  { std::ofstream{f.barrier + "/ready." + std::to_string(::getpid())}; }
  auto go = f.barrier + "/go";
  auto t0 = clock_type::now();
  while (::access(go.c_str(), F_OK) != 0) {
    if (seconds_since(t0) > 120)
      usage("no go signal within 120 s");
    ::usleep(200);
  }
}

/// The result line: ops in `seconds`, the rate, and workload extras.
struct result {
  uint64_t ops = 0;
  double seconds = 0;
  std::string extra; // ",\"key\":value..." appended as is
};

void print(const flags& f, const result& r, const char* unit) {
  double rate = r.seconds > 0 ? static_cast<double>(r.ops) / r.seconds : 0;
  std::printf("{\"workload\":\"%s\",\"ops\":%llu,\"seconds\":%.6f,\"rate\":%.3f,"
              "\"unit\":\"%s\",\"batch\":%ld,\"pid\":%d%s}\n",
              f.workload.c_str(), static_cast<unsigned long long>(r.ops), r.seconds, rate,
              unit, f.batch, static_cast<int>(::getpid()), r.extra.c_str());
  std::fflush(stdout);
}

/// Runs `round` (which returns the ops it did) until `seconds` passed.
template <class F>
result timed(double seconds, F&& round) {
  result r;
  auto t0 = clock_type::now();
  do {
    r.ops += round();
  } while (seconds_since(t0) < seconds);
  r.seconds = seconds_since(t0);
  return r;
}

uint64_t submit_and_get(long n) {
  std::vector<rayd::object_ref<int>> refs;
  refs.reserve(static_cast<std::size_t>(n));
  for (long i = 0; i < n; ++i)
    refs.push_back(rayd::task(small_value).remote());
  auto values = rayd::get(refs, get_timeout);
  return values.size();
}

/// Single-thread memcpy bandwidth between two buffers of `bytes` that are
/// already faulted in (the fastest a put could copy its value once), over
/// at least `seconds` and 3 copies: the median and best copy, in GB/s.
struct copy_rate {
  double median_gbps = 0, best_gbps = 0;
  int reps = 0;
};

copy_rate memcpy_bandwidth(uint64_t bytes, double seconds) {
  std::vector<char> src(bytes, 1), dst(bytes, 2); // both written: pages present
  std::vector<double> gbps;
  auto t_all = clock_type::now();
  while (gbps.size() < 3 || seconds_since(t_all) < seconds) {
    auto t0 = clock_type::now();
    std::memcpy(dst.data(), src.data(), bytes);
    asm volatile("" : : "r"(dst.data()) : "memory"); // the copy is observed
    gbps.push_back(bytes / 1e9 / seconds_since(t0));
    src[gbps.size() % bytes] ^= 1; // not the same copy twice, to a compiler
  }
  copy_rate r;
  r.reps = static_cast<int>(gbps.size());
  std::sort(gbps.begin(), gbps.end());
  r.median_gbps = gbps[gbps.size() / 2];
  r.best_gbps = gbps.back();
  return r;
}

std::string number(const char* key, double v) {
  char buf[96];
  std::snprintf(buf, sizeof buf, ",\"%s\":%.6f", key, v);
  return buf;
}

/// `per_actor` async calls on each actor (round-robin), then get them all;
/// `arg`: each call takes that object by reference.
uint64_t actor_round(const std::vector<rayd::actor_handle<BenchActor>>& actors, long per_actor,
                     const rayd::object_ref<std::vector<int64_t>>* arg) {
  std::vector<rayd::object_ref<int>> refs;
  refs.reserve(static_cast<std::size_t>(per_actor) * actors.size());
  for (long i = 0; i < per_actor; ++i)
    for (auto& a : actors)
      refs.push_back(arg != nullptr ? a.task(&BenchActor::small_arg).remote(*arg)
                                    : a.task(&BenchActor::small_value).remote());
  return rayd::get(refs, get_timeout).size();
}

/// The actor workloads (see the top of the file); -1 if `w` is none of them.
int run_actors(const flags& f) {
  const auto& w = f.workload;
  if (w == "actor_calls_sync") {
    auto a = rayd::actor<BenchActor>().remote();
    for (int i = 0; i < 200; ++i) // warm-up: placement, the socket
      rayd::get(a.task(&BenchActor::small_value).remote(), get_timeout);
    barrier(f);
    auto r = timed(f.seconds, [&a] {
      uint64_t n = 0;
      for (int i = 0; i < 100; ++i, ++n)
        rayd::get(a.task(&BenchActor::small_value).remote(), get_timeout);
      return n;
    });
    print(f, r, "calls/s");
    return 0;
  }
  if (w == "actor_calls_async" || w == "actor_calls_concurrent" || w == "actor_calls_1_n") {
    std::vector<rayd::actor_handle<BenchActor>> actors;
    int n = w == "actor_calls_1_n" ? std::max(1, f.actors) : 1;
    for (int i = 0; i < n; ++i)
      actors.push_back(rayd::actor<BenchActor>()
                         .max_concurrency(w == "actor_calls_concurrent" ? 16 : 1)
                         .remote());
    actor_round(actors, 100, nullptr); // warm-up
    barrier(f);
    auto r = timed(f.seconds, [&] { return actor_round(actors, f.batch, nullptr); });
    r.extra = ",\"actors\":" + std::to_string(n);
    print(f, r, "calls/s");
    return 0;
  }
  if (w == "actor_calls_n_n" || w == "actor_calls_n_n_arg") {
    std::vector<rayd::actor_handle<BenchActor>> actors;
    for (int i = 0; i < std::max(1, f.actors); ++i)
      actors.push_back(rayd::actor<BenchActor>()
                         .name("bench-" + w + "-" + std::to_string(i))
                         .ray_namespace("bench")
                         .get_if_exists()
                         .lifetime_detached()
                         .remote());
    std::optional<rayd::object_ref<std::vector<int64_t>>> arg;
    if (w == "actor_calls_n_n_arg")
      arg = rayd::put(std::vector<int64_t>(100, 7));
    actor_round(actors, 50, arg ? &*arg : nullptr); // warm-up
    barrier(f);
    long per_actor = std::max(1L, f.batch / static_cast<long>(actors.size()));
    auto r = timed(f.seconds, [&] { return actor_round(actors, per_actor, arg ? &*arg : nullptr); });
    r.extra = ",\"actors\":" + std::to_string(actors.size());
    print(f, r, "calls/s");
    return 0;
  }
  if (w == "many_actors") {
    barrier(f);
    auto t0 = clock_type::now();
    std::vector<rayd::actor_handle<BenchActor>> actors;
    actors.reserve(static_cast<std::size_t>(f.count));
    for (long i = 0; i < f.count; ++i)
      actors.push_back(rayd::actor<BenchActor>().remote());
    auto created_s = seconds_since(t0);
    auto got = actor_round(actors, 1, nullptr);
    result r;
    r.ops = got;
    r.seconds = seconds_since(t0);
    r.extra = number("submit_creates_s", created_s);
    print(f, r, "actors/s");
    return 0;
  }
  return -1;
}

int run(const flags& f) {
  const auto& w = f.workload;
  if (int rc = run_actors(f); rc >= 0)
    return rc;
  if (w == "tasks_sync") {
    for (int i = 0; i < 200; ++i) // warm-up: the lease and the worker
      rayd::get(rayd::task(small_value).remote());
    barrier(f);
    auto r = timed(f.seconds, [] {
      uint64_t n = 0;
      for (int i = 0; i < 100; ++i, ++n)
        rayd::get(rayd::task(small_value).remote(), get_timeout);
      return n;
    });
    print(f, r, "tasks/s");
    return 0;
  }
  if (w == "tasks_async" || w == "tasks_and_get_batch") {
    for (int i = 0; i < 3; ++i)
      submit_and_get(f.batch);
    barrier(f);
    auto r = timed(f.seconds, [&] { return submit_and_get(f.batch); });
    r.extra = number("batches_per_s", r.seconds > 0 ? r.ops / double(f.batch) / r.seconds : 0);
    print(f, r, "tasks/s");
    return 0;
  }
  if (w == "put_calls" || w == "put_calls_inline") {
    // The same loop for both: where the value lands is set by init
    // (store_puts_for below), not here.
    for (int i = 0; i < 1000; ++i)
      rayd::put(0);
    barrier(f);
    auto r = timed(f.seconds, [] {
      for (int i = 0; i < 1000; ++i)
        rayd::put(0);
      return uint64_t{1000};
    });
    print(f, r, "puts/s");
    return 0;
  }
  if (w == "get_calls" || w == "get_calls_inline") {
    const int64_t expected = ::getpid();
    auto ref = rayd::put(expected);
    int64_t sum = 0;
    std::string extra;
    if (w == "get_calls") {
      // Another process reads the object first: a task gets it as its
      // argument from its node's store (not timed; it shows the put landed
      // where the node's other processes can read it).
      auto t0 = clock_type::now();
      auto seen = rayd::get(rayd::task(echo).remote(ref), get_timeout);
      if (seen != expected)
        throw std::runtime_error("a task read " + std::to_string(seen)
                                 + " from the store, expected " + std::to_string(expected));
      extra = number("task_read_s", seconds_since(t0)) + ",\"task_read_ok\":true";
    }
    for (int i = 0; i < 1000; ++i)
      sum += rayd::get(ref) == expected ? 1 : 0;
    barrier(f);
    auto r = timed(f.seconds, [&] {
      for (int i = 0; i < 1000; ++i)
        sum += rayd::get(ref) == expected ? 1 : 0;
      return uint64_t{1000};
    });
    r.extra = extra;
    print(f, r, "gets/s");
    // Every get returned the value (1000 warm-up gets + the timed ones).
    return static_cast<uint64_t>(sum) == r.ops + 1000 ? 0 : 1;
  }
  if (w == "put_gigabytes") {
    uint64_t bytes = f.bytes > 0 ? f.bytes : (128ull << 20);
    std::vector<uint8_t> value(bytes, 1);
    // The physical limit, same process, same size, just before the puts.
    auto copy = memcpy_bandwidth(bytes, 0.5);
    rayd::put(value); // warm-up: the session to the node
    barrier(f);
    uint64_t puts = 0;
    auto r = timed(f.seconds, [&] {
      for (long i = 0; i < f.batch; ++i, ++puts)
        rayd::put(value); // the ref drops at once: the node frees it
      return static_cast<uint64_t>(f.batch) * bytes;
    });
    double gbps = r.ops / 1e9 / r.seconds;
    r.extra = number("gigabytes_per_s", gbps) + number("memcpy_gbps", copy.median_gbps)
              + number("memcpy_best_gbps", copy.best_gbps)
              + ",\"memcpy_reps\":" + std::to_string(copy.reps)
              + number("ratio_put_over_memcpy",
                       copy.median_gbps > 0 ? gbps / copy.median_gbps : 0)
              + ",\"puts\":" + std::to_string(puts) + ",\"bytes_each\":" + std::to_string(bytes);
    print(f, r, "bytes/s");
    return 0;
  }
  if (w == "object_transfer") {
    uint64_t bytes = f.bytes > 0 ? f.bytes : (1ull << 30);
    auto far = rayd::task(transfer_check).resources({{"far", 1}});
    auto far_copy = rayd::task(size_of).resources({{"far", 1}});
    // Warm-up: a worker of this job on the far node.
    rayd::get(far.remote(std::string("x")));
    auto value = rayd::bench::pseudo_random(bytes, static_cast<uint64_t>(::getpid()));
    // The producer's checksum (the put sends these bytes unchanged); its
    // cost is reported, never inside a timed sample.
    auto th = clock_type::now();
    const uint64_t expected = rayd::bench::xxh64(value);
    const double producer_hash_s = seconds_since(th);
    barrier(f);
    std::vector<double> transfer_s, hash_s, again_s, put_s;
    rayd::object_ref<std::string> last;
    for (int i = 0; i < f.runs; ++i) {
      last = {}; // the previous object goes (FREE on both nodes)
      auto tp = clock_type::now();
      auto ref = rayd::put(value); // to this driver's node (the head)
      put_s.push_back(seconds_since(tp));
      // The measured figure: submit → result, the object pulled node → node
      // and read where it lies; the task's hashing is timed inside it and
      // taken out below.
      auto t0 = clock_type::now();
      auto got = rayd::get(far.remote(ref));
      transfer_s.push_back(seconds_since(t0));
      if (got.size() != 3 || got[0] != bytes)
        throw std::runtime_error("transfer_check returned size "
                                 + std::to_string(got.empty() ? 0 : got[0]));
      if (got[1] != expected) {
        char buf[160];
        std::snprintf(buf, sizeof buf,
                      "transfer %d: checksum mismatch: the far task read %016llx, "
                      "the producer put %016llx",
                      i + 1, static_cast<unsigned long long>(got[1]),
                      static_cast<unsigned long long>(expected));
        throw std::runtime_error(buf);
      }
      hash_s.push_back(static_cast<double>(got[2]) / 1e9);
      std::fprintf(stderr,
                   "rayd-micro-driver: transfer %d: put %.3f s, far task %.3f s "
                   "(of which hashing %.3f s), checksum ok\n",
                   i + 1, put_s.back(), transfer_s.back(), hash_s.back());
      last = std::move(ref);
    }
    // For scale, once, after the samples: a task that copies the argument
    // into a std::string (the far node holds a copy: no transfer).
    auto t1 = clock_type::now();
    rayd::get(far_copy.remote(last));
    again_s.push_back(seconds_since(t1));
    auto median = [](std::vector<double> xs) {
      if (xs.empty())
        return 0.0;
      std::sort(xs.begin(), xs.end());
      auto n = xs.size();
      return n % 2 == 1 ? xs[n / 2] : (xs[n / 2 - 1] + xs[n / 2]) / 2;
    };
    auto list = [](const char* key, const std::vector<double>& xs) {
      std::string out = std::string{",\""} + key + "\":[";
      for (std::size_t i = 0; i < xs.size(); ++i) {
        char buf[32];
        std::snprintf(buf, sizeof buf, "%s%.4f", i ? "," : "", xs[i]);
        out += buf;
      }
      return out + "]";
    };
    // Without the in-task hashing: what the transfer (and the page walk of
    // the old read_in_place) took.
    std::vector<double> net_s;
    for (std::size_t i = 0; i < transfer_s.size(); ++i)
      net_s.push_back(transfer_s[i] - hash_s[i]);
    // The first sample lands in memory the far node never used (a page
    // fault and a kernel clear per page); the rest reuse its freed memfds.
    const double cold_s = net_s.front();
    std::vector<double> warm(net_s.begin() + (net_s.size() > 1 ? 1 : 0), net_s.end());
    std::vector<double> warm_with_hash(transfer_s.begin() + (transfer_s.size() > 1 ? 1 : 0),
                                       transfer_s.end());
    result r;
    r.ops = bytes;
    r.seconds = median(warm);
    double hash_median = median(hash_s);
    r.extra = number("gigabytes_per_s", bytes / 1e9 / r.seconds)
              + number("gibibytes_per_s", bytes / double(1ull << 30) / r.seconds)
              + number("cold_s", cold_s) + number("cold_gigabytes_per_s", bytes / 1e9 / cold_s)
              + number("warm_median_with_checksum_s", median(warm_with_hash))
              + number("consumer_hash_median_s", hash_median)
              + number("consumer_hash_gbps", hash_median > 0 ? bytes / 1e9 / hash_median : 0)
              + number("producer_hash_s", producer_hash_s)
              + ",\"checksum\":\"xxh64\",\"checksum_ok\":true"
              + number("copy_task_median_s", median(again_s))
              + number("put_median_s", median(put_s)) + list("transfer_s", transfer_s)
              + list("consumer_hash_s", hash_s) + list("net_s", net_s)
              + list("copy_task_s", again_s) + list("put_s", put_s);
    print(f, r, "bytes/s");
    return 0;
  }
  usage(("unknown workload " + w).c_str());
}

/// Whether this invocation's puts go to the node's store (Ray's ray.put):
/// every workload but the *_inline ones. Read from argv before init (a
/// worker process has no --workload and gets the default, which it never
/// uses: workers do not put).
bool store_puts_for(int argc, char** argv) {
  for (int i = 1; i + 1 < argc; ++i)
    if (std::string{argv[i]} == "--workload") {
      std::string w = argv[i + 1];
      return !(w.size() > 7 && w.compare(w.size() - 7, 7, "_inline") == 0);
    }
  return false;
}

/// The harness's cluster (RAYD_ADDRESS) or nothing: never an embedded one.
rayd::init_options cluster_only(bool store_puts) {
  rayd::init_options o;
  o.embedded_if_absent = false;
  if (store_puts)
    o.max_inline_put_bytes = 0;
  return o;
}

} // namespace

int main(int argc, char** argv) {
  // First: a worker process serves tasks here, for good.
  rayd::init(cluster_only(store_puts_for(argc, argv)));
  auto f = parse(argc, argv);
  int rc = 1;
  try {
    rc = run(f);
  } catch (const std::exception& e) {
    // One JSON line for the harness; quotes and control characters dropped.
    std::string why = e.what();
    for (auto& ch : why)
      if (ch == '"' || ch == '\\' || static_cast<unsigned char>(ch) < 0x20)
        ch = ' ';
    auto type = rayd::detail::tidy_type_name(rayd::detail::demangle(typeid(e).name()));
    std::printf("{\"workload\":\"%s\",\"error\":\"%s: %s\",\"pid\":%d}\n",
                f.workload.c_str(), type.c_str(), why.c_str(), static_cast<int>(::getpid()));
    std::fflush(stdout);
    std::fprintf(stderr, "rayd-micro-driver: %s: %s\n", f.workload.c_str(), e.what());
    rc = 1;
  }
  rayd::shutdown();
  return rc;
}
