// rayd-micro-driver: the driver program behind `rayd-bench micro`. One
// invocation runs one workload against the cluster named by RAYD_ADDRESS /
// RAYD_TOKEN (the harness sets both) and prints one JSON object on stdout.
// The workloads mirror Ray's microbenchmarks (ray/_private/ray_perf.py):
//
//   tasks_sync            get(small_value.remote()), one at a time
//   tasks_async           submit --batch small_value tasks, get them all; repeat
//   tasks_and_get_batch   the same, reported as batches/s (Ray's figure)
//   put_calls             put(0) per second
//   get_calls             get(ref) of one small put object per second
//   put_gigabytes         put(--bytes value) --batch times per round, GB/s
//   object_transfer       put a --bytes value on this driver's node, run
//                         read_in_place(it) on the node with the "far"
//                         resource (it reads every page of the pulled copy
//                         where it lies); --runs samples, each with a fresh
//                         object; also the time of size_of(it), which
//                         copies the argument into a std::string
//
//   rayd-micro-driver --workload NAME --seconds S [--batch N] [--bytes N]
//                     [--runs N] [--barrier DIR]
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
#include <string>
#include <typeinfo>
#include <vector>

#include <rayd/rayd.hpp>

int small_value() {
  return 0;
}

uint64_t size_of(std::string value) {
  return value.size();
}

/// Reads the object where it lies (a std::string_view over the worker's
/// mapping of the node's copy): touches every page, so the bytes are there
/// and readable, and returns the size if they are all 'x'.
uint64_t read_in_place(std::string_view value) {
  for (std::size_t i = 0; i < value.size(); i += 4096)
    if (value[i] != 'x')
      return 0;
  return value.size();
}

RAYD_REMOTE(small_value, size_of, read_in_place);

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

std::string number(const char* key, double v) {
  char buf[96];
  std::snprintf(buf, sizeof buf, ",\"%s\":%.6f", key, v);
  return buf;
}

int run(const flags& f) {
  const auto& w = f.workload;
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
  if (w == "put_calls") {
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
  if (w == "get_calls") {
    auto ref = rayd::put(0);
    int64_t sum = 0;
    for (int i = 0; i < 1000; ++i)
      sum += rayd::get(ref);
    barrier(f);
    auto r = timed(f.seconds, [&] {
      for (int i = 0; i < 1000; ++i)
        sum += rayd::get(ref);
      return uint64_t{1000};
    });
    print(f, r, "gets/s");
    return sum == 0 ? 0 : 1;
  }
  if (w == "put_gigabytes") {
    uint64_t bytes = f.bytes > 0 ? f.bytes : (128ull << 20);
    std::vector<uint8_t> value(bytes, 1);
    rayd::put(value); // warm-up: the session to the node
    barrier(f);
    uint64_t puts = 0;
    auto r = timed(f.seconds, [&] {
      for (long i = 0; i < f.batch; ++i, ++puts)
        rayd::put(value); // the ref drops at once: the node frees it
      return static_cast<uint64_t>(f.batch) * bytes;
    });
    // The yardstick, in the same process right after: single-thread memcpy
    // of the same value into a buffer whose pages exist; the faster of two
    // destination offsets (0, and 5 as behind a msgpack header: the same page
    // offset as the source can be slower, 4K aliasing).
    std::vector<uint8_t> copy(bytes + 64, 0);
    double memcpy_gbps = 0;
    for (std::size_t off : {std::size_t{0}, std::size_t{5}}) {
      std::memcpy(copy.data() + off, value.data(), bytes);
      auto m = timed(std::min(0.5, f.seconds / 2), [&] {
        std::memcpy(copy.data() + off, value.data(), bytes);
        value[copy[bytes / 2] % bytes] ^= 1; // a dependency: the copy cannot be elided
        return bytes;
      });
      memcpy_gbps = std::max(memcpy_gbps, m.ops / 1e9 / m.seconds);
    }
    double put_gbps = r.ops / 1e9 / r.seconds;
    r.extra = number("gigabytes_per_s", put_gbps)
              + ",\"puts\":" + std::to_string(puts) + ",\"bytes_each\":" + std::to_string(bytes)
              + number("memcpy_gigabytes_per_s", memcpy_gbps)
              + number("put_to_memcpy", memcpy_gbps > 0 ? put_gbps / memcpy_gbps : 0);
    print(f, r, "bytes/s");
    return 0;
  }
  if (w == "object_transfer") {
    uint64_t bytes = f.bytes > 0 ? f.bytes : (1ull << 30);
    auto far = rayd::task(read_in_place).resources({{"far", 1}});
    auto far_copy = rayd::task(size_of).resources({{"far", 1}});
    // Warm-up: a worker of this job on the far node.
    rayd::get(far.remote(std::string("x")));
    const std::string value(bytes, 'x'); // each put makes a new object of it
    barrier(f);
    std::vector<double> transfer_s, again_s, put_s;
    rayd::object_ref<std::string> last;
    for (int i = 0; i < f.runs; ++i) {
      last = {}; // the previous object goes (FREE on both nodes)
      auto tp = clock_type::now();
      auto ref = rayd::put(value); // to this driver's node (the head)
      put_s.push_back(seconds_since(tp));
      // The measured figure: submit → result, the object pulled node → node.
      auto t0 = clock_type::now();
      auto n = rayd::get(far.remote(ref));
      transfer_s.push_back(seconds_since(t0));
      if (n != bytes)
        usage(("read_in_place returned " + std::to_string(n)).c_str());
      std::fprintf(stderr, "rayd-micro-driver: transfer %d: put %.3f s, far task %.3f s\n",
                   i + 1, put_s.back(), transfer_s.back());
      last = std::move(ref);
    }
    // For scale, once, after the samples: a task that copies the argument
    // into a std::string (the far node holds a copy: no transfer).
    auto t1 = clock_type::now();
    rayd::get(far_copy.remote(last));
    again_s.push_back(seconds_since(t1));
    auto median = [](std::vector<double> xs) {
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
    result r;
    r.ops = bytes;
    r.seconds = median(transfer_s);
    r.extra = number("gigabytes_per_s", bytes / 1e9 / r.seconds)
              + number("gibibytes_per_s", bytes / double(1ull << 30) / r.seconds)
              + number("copy_task_median_s", median(again_s))
              + number("put_median_s", median(put_s)) + list("transfer_s", transfer_s)
              + list("copy_task_s", again_s) + list("put_s", put_s);
    print(f, r, "bytes/s");
    return 0;
  }
  usage(("unknown workload " + w).c_str());
}

/// The harness's cluster (RAYD_ADDRESS) or nothing: never an embedded one.
rayd::init_options cluster_only() {
  rayd::init_options o;
  o.embedded_if_absent = false;
  return o;
}

} // namespace

int main(int argc, char** argv) {
  rayd::init(cluster_only()); // first: a worker process serves tasks here, for good
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
