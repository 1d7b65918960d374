// rayd-client-driver: the drivers of `rayd-bench client` that rayd-micro-driver
// has no equivalent for (the other client__ figures run rayd-micro-driver as a
// remote client). Started with RAYD_ADDRESS=rayd://HOST:API_PORT, so every call
// goes through the head's API port. Two workloads:
//
// --workload put_calls: put(0) for --seconds (refs dropped at once), then a
// get of the last one. A remote client's small put returns at once (its op is
// queued to the session, ids are chosen by the client), so the loop alone
// times submissions; the session runs a client's ops in order, so the get
// returns once every put before it ran. The figure is puts / (loop + that
// drain) ("rate"); the loop alone is reported too ("submitted_per_s").
//
// --workload transfer:
//   1. fills --bytes (default 2 GiB) of pseudo-random bytes and hashes them
//      (XXH64; untimed, before the barrier);
//   2. waits for the harness's go (--barrier DIR: DIR/ready.<pid>, then DIR/go),
//      so the harness has sampled the head's memory at rest meanwhile;
//   3. put(value): the bytes stream to the head's object store; the driver
//      then drops its own copy;
//   4. get(ref): the same object streams back; its size and hash must match;
//   5. prints one JSON line: the phases' start and end on the steady clock
//      (CLOCK_MONOTONIC, in ns: the harness's clock too, so it can tell which
//      of its memory samples fell into which phase), their durations, and
//      this process's own peak RSS.
//
//   rayd-client-driver --workload transfer [--bytes N] [--barrier DIR]
//   rayd-client-driver --workload put_calls [--seconds S] [--barrier DIR]
//
// rayd::init() is the first statement of main: were a node ever to start this
// binary as a worker, it would serve there and never return (it has no tasks).

#include <unistd.h>

#include <chrono>
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <fstream>
#include <stdexcept>
#include <string>
#include <typeinfo>

#include <rayd/rayd.hpp>

#include "bench/checksum.hpp"

namespace {

using clock_type = std::chrono::steady_clock;

struct flags {
  std::string workload;
  uint64_t bytes = 2ull << 30;
  double seconds = 2;
  std::string barrier;
};

[[noreturn]] void usage(const std::string& why) {
  std::fprintf(stderr,
               "rayd-client-driver: %s\nusage: rayd-client-driver --workload "
               "transfer|put_calls [--bytes N] [--seconds S] [--barrier DIR]\n",
               why.c_str());
  std::exit(2);
}

flags parse(int argc, char** argv) {
  flags f;
  for (int i = 1; i < argc; ++i) {
    std::string a = argv[i];
    auto value = [&]() -> std::string {
      if (i + 1 >= argc)
        usage("missing value after " + a);
      return argv[++i];
    };
    if (a == "--workload")
      f.workload = value();
    else if (a == "--bytes")
      f.bytes = std::strtoull(value().c_str(), nullptr, 10);
    else if (a == "--seconds")
      f.seconds = std::atof(value().c_str());
    else if (a == "--barrier")
      f.barrier = value();
    else
      usage("unknown flag " + a);
  }
  if (f.workload != "transfer" && f.workload != "put_calls")
    usage("--workload is transfer or put_calls");
  if (f.bytes == 0 || f.seconds <= 0)
    usage("--bytes and --seconds must be positive");
  return f;
}

int64_t now_ns() {
  return std::chrono::duration_cast<std::chrono::nanoseconds>(
           clock_type::now().time_since_epoch())
    .count();
}

void barrier(const flags& f) {
  if (f.barrier.empty())
    return;
  { std::ofstream{f.barrier + "/ready." + std::to_string(::getpid())}; }
  auto go = f.barrier + "/go";
  auto t0 = clock_type::now();
  while (::access(go.c_str(), F_OK) != 0) {
    if (clock_type::now() - t0 > std::chrono::seconds{120})
      usage("no go signal within 120 s");
    ::usleep(200);
  }
}

/// A field of /proc/self/status in bytes (0 if absent).
uint64_t self_status_bytes(const char* field) {
  std::ifstream in{"/proc/self/status"};
  std::string line;
  std::string prefix = std::string{field} + ":";
  while (std::getline(in, line))
    if (line.rfind(prefix, 0) == 0)
      return std::strtoull(line.c_str() + prefix.size(), nullptr, 10) * 1024;
  return 0;
}

double seconds_since(clock_type::time_point t0) {
  return std::chrono::duration<double>(clock_type::now() - t0).count();
}

int run_put_calls(const flags& f) {
  rayd::object_ref<int> last;
  for (int i = 0; i < 1000; ++i) // warm-up
    last = rayd::put(0);
  if (rayd::get(last) != 0)
    throw std::runtime_error("a put(0) read back as another value");
  barrier(f);
  uint64_t puts = 0;
  auto t0 = clock_type::now();
  do {
    for (int i = 0; i < 1000; ++i, ++puts)
      last = rayd::put(0); // the previous ref drops: freed
  } while (seconds_since(t0) < f.seconds);
  const double loop_s = seconds_since(t0);
  const bool ok = rayd::get(last) == 0; // after every put before it
  const double total_s = seconds_since(t0);
  std::printf("{\"workload\":\"put_calls\",\"ops\":%llu,\"seconds\":%.6f,\"rate\":%.3f,"
              "\"unit\":\"puts/s\",\"loop_s\":%.6f,\"drain_s\":%.6f,"
              "\"submitted_per_s\":%.3f,\"last_read_ok\":%s,\"pid\":%d}\n",
              static_cast<unsigned long long>(puts), total_s, puts / total_s, loop_s,
              total_s - loop_s, puts / loop_s, ok ? "true" : "false",
              static_cast<int>(::getpid()));
  std::fflush(stdout);
  return ok ? 0 : 1;
}

int run_transfer(const flags& f) {
  auto value = rayd::bench::pseudo_random(f.bytes, static_cast<uint64_t>(::getpid()));
  const uint64_t expected = rayd::bench::xxh64(value);
  barrier(f);

  const int64_t put0 = now_ns();
  auto ref = rayd::put(value);
  const int64_t put1 = now_ns();
  std::string().swap(value); // the client keeps no copy: the get must fetch it

  const int64_t get0 = now_ns();
  auto got = rayd::get(ref);
  const int64_t get1 = now_ns();
  const bool size_ok = got.size() == f.bytes;
  const uint64_t hash = rayd::bench::xxh64(got);
  const bool checksum_ok = size_ok && hash == expected;
  std::string().swap(got);
  ref = {}; // the head frees the object

  double put_s = (put1 - put0) / 1e9;
  double get_s = (get1 - get0) / 1e9;
  std::printf("{\"workload\":\"transfer\",\"bytes\":%llu,\"put_start_ns\":%lld,"
              "\"put_end_ns\":%lld,\"get_start_ns\":%lld,\"get_end_ns\":%lld,"
              "\"put_s\":%.6f,\"get_s\":%.6f,\"put_gbps\":%.4f,\"get_gbps\":%.4f,"
              "\"checksum\":\"xxh64\",\"checksum_ok\":%s,\"client_vm_hwm_bytes\":%llu,"
              "\"pid\":%d}\n",
              static_cast<unsigned long long>(f.bytes), static_cast<long long>(put0),
              static_cast<long long>(put1), static_cast<long long>(get0),
              static_cast<long long>(get1), put_s, get_s, f.bytes / 1e9 / put_s,
              f.bytes / 1e9 / get_s, checksum_ok ? "true" : "false",
              static_cast<unsigned long long>(self_status_bytes("VmHWM")),
              static_cast<int>(::getpid()));
  std::fflush(stdout);
  if (!checksum_ok)
    std::fprintf(stderr, "rayd-client-driver: the object got back (%zu bytes, hash %016llx) "
                         "is not the one put (%llu bytes, hash %016llx)\n",
                 static_cast<std::size_t>(size_ok ? f.bytes : 0),
                 static_cast<unsigned long long>(hash),
                 static_cast<unsigned long long>(f.bytes),
                 static_cast<unsigned long long>(expected));
  return checksum_ok ? 0 : 1;
}

} // namespace

int main(int argc, char** argv) {
  // The harness's cluster (RAYD_ADDRESS, a rayd:// address) or nothing.
  rayd::init_options o;
  o.embedded_if_absent = false;
  rayd::init(o);
  auto f = parse(argc, argv);
  int rc = 1;
  try {
    rc = f.workload == "put_calls" ? run_put_calls(f) : run_transfer(f);
  } catch (const std::exception& e) {
    std::string why = e.what();
    for (auto& ch : why)
      if (ch == '"' || ch == '\\' || static_cast<unsigned char>(ch) < 0x20)
        ch = ' ';
    auto type = rayd::detail::tidy_type_name(rayd::detail::demangle(typeid(e).name()));
    std::printf("{\"workload\":\"%s\",\"error\":\"%s: %s\",\"pid\":%d}\n", f.workload.c_str(),
                type.c_str(), why.c_str(), static_cast<int>(::getpid()));
    std::fflush(stdout);
    std::fprintf(stderr, "rayd-client-driver: %s\n", e.what());
  }
  rayd::shutdown();
  return rc;
}
