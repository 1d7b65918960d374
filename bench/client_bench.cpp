// See client_bench.hpp.

#include "bench/client_bench.hpp"

#include <unistd.h>

#include <algorithm>
#include <atomic>
#include <chrono>
#include <cmath>
#include <cstdlib>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <map>
#include <optional>
#include <sstream>
#include <thread>

#include "bench/workloads.hpp"
#include "schemas/api_client.hpp"

namespace rayd::bench {

using json = nlohmann::json;

namespace {

namespace fs = std::filesystem;
using namespace std::chrono_literals;

constexpr double mib = 1024.0 * 1024.0;
constexpr double gib = 1024.0 * 1024.0 * 1024.0;

// ------------------------------------------------------------ head memory

/// One reading of /proc/PID/status, in bytes, at a steady-clock instant (ns
/// since the clock's epoch: CLOCK_MONOTONIC, the drivers' clock too).
struct memory_sample {
  int64_t at_ns = 0;
  uint64_t vm_rss = 0;
  uint64_t rss_anon = 0;  // heap, stacks, private copies: what a session's buffering costs
  uint64_t rss_file = 0;
  // Shared memory the process maps: the object store's memfds, while the head
  // maps one (an object is never anonymous memory: that would be a copy).
  uint64_t rss_shmem = 0;
};

int64_t steady_ns() {
  return std::chrono::duration_cast<std::chrono::nanoseconds>(
           steady::now().time_since_epoch())
    .count();
}

/// Reads VmRSS, RssAnon, RssFile and RssShmem of `pid`; nullopt if it is gone.
std::optional<memory_sample> read_memory(pid_t pid) {
  auto text = read_file("/proc/" + std::to_string(pid) + "/status");
  if (!text)
    return std::nullopt;
  memory_sample s;
  s.at_ns = steady_ns();
  std::istringstream in{*text};
  std::string line;
  auto field = [&line](const char* name, uint64_t& out) {
    auto n = std::strlen(name);
    if (line.compare(0, n, name) == 0 && line.size() > n && line[n] == ':')
      out = std::strtoull(line.c_str() + n + 1, nullptr, 10) * 1024; // "kB"
  };
  while (std::getline(in, line)) {
    field("VmRSS", s.vm_rss);
    field("RssAnon", s.rss_anon);
    field("RssFile", s.rss_file);
    field("RssShmem", s.rss_shmem);
  }
  return s;
}

/// Samples one process's memory on a thread of its own every `period` from
/// start() until stop(), which joins the thread and returns what it saw.
///
///   idle --start()--> sampling --stop()--> stopped (samples handed out)
///
/// The destructor stops a sampler still running. start() and stop() are
/// called from one thread (the harness's).
class memory_sampler {
public:
  memory_sampler(pid_t pid, std::chrono::microseconds period) : pid_(pid), period_(period) {
  }
  memory_sampler(const memory_sampler&) = delete;
  memory_sampler& operator=(const memory_sampler&) = delete;
  ~memory_sampler() {
    stop();
  }

  void start() {
    running_ = true;
    thread_ = std::thread{[this] { loop(); }};
  }

  std::vector<memory_sample> stop() {
    running_ = false;
    if (thread_.joinable())
      thread_.join();
    return std::move(samples_);
  }

private:
  void loop() {
    auto next = steady::now();
    while (running_) {
      if (auto s = read_memory(pid_))
        samples_.push_back(*s);
      next += period_;
      std::this_thread::sleep_until(next);
    }
  }

  pid_t pid_;
  std::chrono::microseconds period_;
  std::atomic<bool> running_{false};
  std::thread thread_;
  std::vector<memory_sample> samples_; // the sampler thread's until joined
};

/// The peak of `field` over the samples in [from_ns, to_ns] (0 and n = 0 if none).
struct peak {
  uint64_t bytes = 0;
  std::size_t n = 0;
};

peak peak_of(const std::vector<memory_sample>& xs, int64_t from_ns, int64_t to_ns,
             uint64_t memory_sample::*field) {
  peak p;
  for (const auto& s : xs)
    if (s.at_ns >= from_ns && s.at_ns <= to_ns) {
      p.bytes = std::max(p.bytes, s.*field);
      ++p.n;
    }
  return p;
}

/// The head at rest with the client connected: the median of the last (up
/// to 25, ~0.5 s) samples before the put began.
memory_sample at_rest(const std::vector<memory_sample>& xs, int64_t before_ns) {
  std::vector<memory_sample> rest;
  for (const auto& s : xs)
    if (s.at_ns < before_ns)
      rest.push_back(s);
  if (rest.size() > 25)
    rest.erase(rest.begin(), rest.end() - 25);
  memory_sample m;
  if (rest.empty())
    return m;
  auto med = [&rest](uint64_t memory_sample::*f) {
    std::vector<uint64_t> v;
    for (auto& s : rest)
      v.push_back(s.*f);
    std::sort(v.begin(), v.end());
    return v[v.size() / 2];
  };
  m.at_ns = rest.back().at_ns;
  m.vm_rss = med(&memory_sample::vm_rss);
  m.rss_anon = med(&memory_sample::rss_anon);
  m.rss_file = med(&memory_sample::rss_file);
  m.rss_shmem = med(&memory_sample::rss_shmem);
  return m;
}

double to_mib(uint64_t bytes) {
  return round_to(bytes / mib, 1);
}

/// MiB of `a - b`, signed.
double diff_mib(uint64_t a, uint64_t b) {
  return round_to((static_cast<double>(a) - static_cast<double>(b)) / mib, 1);
}

// ------------------------------------------------------------ figures

/// One client__ figure: which driver runs which workload, and how its JSON
/// line becomes the figure's value.
struct rate_spec {
  std::string metric;
  std::string workload; // rayd-micro-driver's
  std::vector<std::string> args;
  const char* unit;
  const char* value_key; // in the driver's JSON line
  double ray;            // Ray 2.22.0's published figure (ray-surface.md, A1)
  const char* what;
};

json samples_json(const std::vector<double>& xs, int digits) {
  json out = json::array();
  for (auto x : xs)
    out.push_back(round_to(x, digits));
  return out;
}

std::string next_to_self(const std::string& name) {
  std::error_code ec;
  return (fs::read_symlink("/proc/self/exe", ec).parent_path() / name).string();
}

bool wanted(const client_bench_options& o, const std::string& metric) {
  return o.only.empty() || std::find(o.only.begin(), o.only.end(), metric) != o.only.end();
}

} // namespace

json run_client(const settings& s, const client_bench_options& o) {
  const std::string name = "client";
  auto total_t0 = steady::now();
  auto micro = o.micro_driver.empty() ? next_to_self("rayd-micro-driver") : o.micro_driver;
  auto transfer = o.client_driver.empty() ? next_to_self("rayd-client-driver") : o.client_driver;
  for (const auto& d : {micro, transfer})
    if (::access(d.c_str(), X_OK) != 0)
      return error_result(name, "no executable " + d
                                  + " (build rayd-bench's drivers, or pass --micro-driver / "
                                    "--client-driver)");

  char secs[32];
  std::snprintf(secs, sizeof secs, "%g", o.seconds);
  const auto put_bytes = static_cast<uint64_t>(std::llround(o.put_gibibytes * gib));
  const auto transfer_bytes = static_cast<uint64_t>(std::llround(o.gigabytes * gib));
  const std::vector<rate_spec> all_specs{
    {"client__1_1_actor_calls_sync", "actor_calls_sync", {"--seconds", secs}, "calls/s",
     "rate", 465,
     "get(a.small_value()) one call at a time on one actor (no resources), from the "
     "client"},
    {"client__1_1_actor_calls_async", "actor_calls_async", {"--seconds", secs}, "calls/s",
     "rate", 907, "1000 calls on one actor submitted, then get of all; repeated"},
    {"client__1_1_actor_calls_concurrent", "actor_calls_concurrent", {"--seconds", secs},
     "calls/s", "rate", 862,
     "as Ray's: 1000 calls submitted from one client thread to an actor with "
     "max_concurrency 16, then get of all; repeated"},
    {"client__get_calls", "get_calls", {"--seconds", secs}, "gets/s", "rate", 1159,
     "get of one small put object (put(int64), stored on the cluster: the client keeps "
     "no copy), one at a time; a task read it first"},
    {"client__put_calls", "put_calls", {"--seconds", secs}, "puts/s", "rate", 789,
     "put(0), one at a time, refs dropped at once"},
    {"client__put_gigabytes", "put_gigabytes",
     {"--seconds", secs, "--bytes", std::to_string(put_bytes), "--batch", "1"}, "GB/s",
     "gigabytes_per_s", 0.132,
     "put of a value of --put-gib GiB (default 1), its ref dropped at once (the head "
     "frees it); GB = 1e9 bytes"},
    {"client__tasks_and_get_batch", "tasks_and_get_batch", {"--seconds", secs}, "batches/s",
     "batches_per_s", 0.92,
     "as Ray's: 1000 small tasks submitted, then get of all; batches of 1000 per second "
     "(tasks_per_s alongside)"},
  };
  std::vector<rate_spec> specs;
  for (const auto& sp : all_specs)
    if (wanted(o, sp.metric))
      specs.push_back(sp);
  const std::string memory_metric = "client__head_extra_rss_mib";
  const bool do_memory = wanted(o, memory_metric);
  for (const auto& m : o.only)
    if (m != memory_metric && m != "tcp_pingpong"
        && std::none_of(all_specs.begin(), all_specs.end(),
                        [&m](const rate_spec& sp) { return sp.metric == m; }))
      return error_result(name, "--only: no figure named " + m);

  double background = background_busy_pct(name);
  std::vector<double> pingpong;
  note("client: tcp_pingpong before the cluster starts");
  pingpong.push_back(tcp_pingpong(o.pingpong_seconds));

  cluster c{s, "client"};
  if (c.spawn_head({"--num-cpus", "2"}) < 0 || !c.wait_head())
    return error_result(name, "the head did not come up (see " + c.tmpdir() + "/head.out)");
  pid_t worker = c.spawn_worker({"--num-cpus", "1"});
  if (worker < 0)
    return error_result(name, "cannot start the worker node");
  {
    std::string err;
    auto cli = connect_until(c.head().api_address, c.token(), steady::now() + 30s, err);
    if (!cli)
      return error_result(name, "cannot connect to the API: " + err);
    bool two = false;
    for (auto t0 = steady::now(); !two && ms_since(t0) < 30000; sleep_ms(5))
      if (auto v = cli->status())
        two = count_alive(*v) == 2;
    if (!two)
      return error_result(name, "the worker node did not show ALIVE within 30 s");
  } // the harness's own API client (and its thread) is gone before tcp_pingpong forks
  // run_drivers: an empty address is the in-cluster way.
  const std::string address = o.in_cluster ? "" : "rayd://" + c.head().api_address;
  note(o.in_cluster ? "client: --in-cluster: the drivers join the cluster (not the client path)"
                    : "client: the drivers connect to " + address + " only");

  std::map<std::string, std::vector<double>> values;
  std::map<std::string, json> per_run; // metric -> [{run, value or error, extras, cpu}]
  std::vector<std::string> errors;
  std::vector<double> pp_around_sync;
  json memory_runs = json::array();
  std::vector<double> extra_anon, extra_vm_rss;
  const double timeout_s = 180 + o.seconds;

  for (int r = 1; r <= o.runs; ++r) {
    for (const auto& sp : specs) {
      bool sync = sp.workload == "actor_calls_sync";
      if (sync) {
        note("client: tcp_pingpong just before " + sp.metric);
        pingpong.push_back(tcp_pingpong(o.pingpong_seconds));
        pp_around_sync.push_back(pingpong.back());
      }
      note("client: run " + std::to_string(r) + "/" + std::to_string(o.runs) + " "
           + sp.metric);
      auto d = run_drivers(c, worker, micro, sp.workload, 1, sp.args, timeout_s, address);
      json row{{"run", r}, {"cpu", d.cpu}};
      if (!d.error.empty() || d.outputs.empty()) {
        auto why = d.error.empty() ? std::string{"no driver output"} : d.error;
        row["error"] = why;
        errors.push_back(sp.metric + " (run " + std::to_string(r) + "): " + why);
        note("client: " + errors.back());
      } else {
        const auto& first = d.outputs.front();
        double v = number_or(first, sp.value_key);
        values[sp.metric].push_back(v);
        row["value"] = round_to(v, 3);
        row["ops"] = first.value("ops", uint64_t{0});
        row["seconds"] = round_to(number_or(first, "seconds"), 3);
        if (sp.workload == "tasks_and_get_batch")
          row["tasks_per_s"] = round_to(number_or(first, "rate"), 1);
        if (sp.workload == "put_gigabytes") {
          row["memcpy_gbps"] = round_to(number_or(first, "memcpy_gbps"), 3);
          row["puts"] = first.value("puts", 0);
        }
        if (sp.workload == "get_calls")
          row["task_read_ok"] = first.value("task_read_ok", false);
        note("client: " + sp.metric + " = " + std::to_string(v) + " " + sp.unit);
      }
      per_run[sp.metric].push_back(row);
      if (sync) {
        note("client: tcp_pingpong just after " + sp.metric);
        pingpong.push_back(tcp_pingpong(o.pingpong_seconds));
        pp_around_sync.push_back(pingpong.back());
      }
    }

    if (!do_memory)
      continue;
    // The head's memory while the client puts and gets one large object.
    note("client: run " + std::to_string(r) + "/" + std::to_string(o.runs) + " "
         + memory_metric + " (" + std::to_string(o.gigabytes) + " GiB put and get)");
    memory_sampler sampler{c.head_pid(),
                           std::chrono::microseconds{std::llround(o.sample_ms * 1000)}};
    sampler.start();
    auto d = run_drivers(c, worker, transfer, "transfer", 1,
                         {"--bytes", std::to_string(transfer_bytes)},
                         600 + 60 * o.gigabytes, address);
    sleep_ms(200); // what the head keeps once the object is freed
    auto samples = sampler.stop();
    json row{{"run", r}, {"samples", samples.size()}, {"cpu", d.cpu}};
    if (!d.error.empty() || d.outputs.empty()) {
      auto why = d.error.empty() ? std::string{"no driver output"} : d.error;
      row["error"] = why;
      errors.push_back(memory_metric + " (run " + std::to_string(r) + "): " + why);
      note("client: " + errors.back());
      memory_runs.push_back(row);
      continue;
    }
    const auto& t = d.outputs.front();
    auto ns = [&t](const char* k) { return t.value(k, int64_t{0}); };
    const int64_t slack = std::llround(o.sample_ms * 1e6); // the sample after a phase ends
    auto rest = at_rest(samples, ns("put_start_ns"));
    auto put_anon = peak_of(samples, ns("put_start_ns"), ns("put_end_ns") + slack,
                            &memory_sample::rss_anon);
    auto get_anon = peak_of(samples, ns("get_start_ns"), ns("get_end_ns") + slack,
                            &memory_sample::rss_anon);
    auto put_vm = peak_of(samples, ns("put_start_ns"), ns("put_end_ns") + slack,
                          &memory_sample::vm_rss);
    auto get_vm = peak_of(samples, ns("get_start_ns"), ns("get_end_ns") + slack,
                          &memory_sample::vm_rss);
    auto put_shm = peak_of(samples, ns("put_start_ns"), ns("put_end_ns") + slack,
                           &memory_sample::rss_shmem);
    auto get_shm = peak_of(samples, ns("get_start_ns"), ns("get_end_ns") + slack,
                           &memory_sample::rss_shmem);
    uint64_t peak_anon = std::max(put_anon.bytes, get_anon.bytes);
    uint64_t peak_vm = std::max(put_vm.bytes, get_vm.bytes);
    double extra = diff_mib(peak_anon, rest.rss_anon);
    double extra_vm = diff_mib(peak_vm, rest.vm_rss);
    bool checksum_ok = t.value("checksum_ok", false);
    if (!checksum_ok)
      errors.push_back(memory_metric + " (run " + std::to_string(r)
                       + "): the object got back differs from the one put");
    if (put_anon.n == 0 || get_anon.n == 0)
      errors.push_back(memory_metric + " (run " + std::to_string(r)
                       + "): no memory sample fell inside the put or the get");
    extra_anon.push_back(extra);
    extra_vm_rss.push_back(extra_vm);
    const auto& first_sample = samples.empty() ? memory_sample{} : samples.front();
    const auto& last_sample = samples.empty() ? memory_sample{} : samples.back();
    row.update({{"extra_rss_anon_mib", extra},
                {"extra_vm_rss_mib", extra_vm},
                {"put_extra_rss_anon_mib", diff_mib(put_anon.bytes, rest.rss_anon)},
                {"get_extra_rss_anon_mib", diff_mib(get_anon.bytes, rest.rss_anon)},
                {"put_samples", put_anon.n},
                {"get_samples", get_anon.n},
                {"head_before_client_mib",
                 {{"vm_rss", to_mib(first_sample.vm_rss)},
                  {"rss_anon", to_mib(first_sample.rss_anon)},
                  {"rss_shmem", to_mib(first_sample.rss_shmem)}}},
                {"head_at_rest_mib",
                 {{"vm_rss", to_mib(rest.vm_rss)},
                  {"rss_anon", to_mib(rest.rss_anon)},
                  {"rss_file", to_mib(rest.rss_file)},
                  {"rss_shmem", to_mib(rest.rss_shmem)}}},
                {"head_peak_during_put_mib",
                 {{"vm_rss", to_mib(put_vm.bytes)},
                  {"rss_anon", to_mib(put_anon.bytes)},
                  {"rss_shmem", to_mib(put_shm.bytes)}}},
                {"head_peak_during_get_mib",
                 {{"vm_rss", to_mib(get_vm.bytes)},
                  {"rss_anon", to_mib(get_anon.bytes)},
                  {"rss_shmem", to_mib(get_shm.bytes)}}},
                {"head_after_free_mib",
                 {{"vm_rss", to_mib(last_sample.vm_rss)},
                  {"rss_anon", to_mib(last_sample.rss_anon)},
                  {"rss_shmem", to_mib(last_sample.rss_shmem)}}},
                {"put_s", round_to(number_or(t, "put_s"), 3)},
                {"get_s", round_to(number_or(t, "get_s"), 3)},
                {"put_gbps", round_to(number_or(t, "put_gbps"), 3)},
                {"get_gbps", round_to(number_or(t, "get_gbps"), 3)},
                {"checksum_ok", checksum_ok},
                {"client_vm_hwm_mib", to_mib(t.value("client_vm_hwm_bytes", uint64_t{0}))}});
    note("client: head extra RssAnon " + std::to_string(extra) + " MiB (VmRSS "
         + std::to_string(extra_vm) + " MiB), put " + std::to_string(number_or(t, "put_s"))
         + " s, get " + std::to_string(number_or(t, "get_s")) + " s");
    memory_runs.push_back(row);
  }

  note("client: tcp_pingpong after the workloads (cluster up)");
  pingpong.push_back(tcp_pingpong(o.pingpong_seconds));

  json out{{"workload", name},
           {"machine", machine_info()},
           {"background_busy_pct", background},
           {"runs", o.runs},
           {"seconds", o.seconds},
           {"mode", o.in_cluster ? "in-cluster (--in-cluster: NOT the client path)"
                                 : "remote client"},
           {"client_address", address},
           {"cluster", o.in_cluster
                         ? "head --num-cpus 2; worker node --num-cpus 1; drivers in the "
                           "cluster (plain API address and RAYD_TMPDIR)"
                         : "head --num-cpus 2; worker node --num-cpus 1; every driver a "
                           "remote client: RAYD_ADDRESS=rayd://HOST:API_PORT and "
                           "RAYD_TOKEN only"}};
  finish(c, out);

  json metrics = json::object();
  auto median_of = [&values](const std::string& k) {
    auto it = values.find(k);
    return it == values.end() || it->second.empty() ? -1.0 : summarize(it->second).median;
  };
  for (const auto& sp : specs) {
    json m{{"unit", sp.unit}, {"what", sp.what}, {"runs", per_run[sp.metric]}};
    auto it = values.find(sp.metric);
    if (it == values.end() || it->second.empty()) {
      m["error"] = "no run succeeded";
    } else {
      auto sum = summarize(it->second);
      int digits = sum.median < 10 ? 3 : 1;
      m["value"] = round_to(sum.median, digits);
      m["value_is"] = "median of " + std::to_string(sum.n) + " runs";
      m["samples"] = samples_json(it->second, digits);
      m["min"] = round_to(sum.min, digits);
      m["max"] = round_to(sum.max, digits);
      m["ray_2_22"] = sp.ray;
      m["ratio_rayd_over_ray"] = round_to(sum.median / sp.ray, 1);
    }
    metrics[sp.metric] = m;
  }

  // The floor: the median of the samples taken just before and just after
  // each run of client__1_1_actor_calls_sync (the one it is compared with).
  double pp = pp_around_sync.empty() ? summarize(pingpong).median
                                     : summarize(pp_around_sync).median;
  metrics["tcp_pingpong"] = {
    {"value", round_to(pp, 1)},
    {"unit", "round trips/s"},
    {"value_is", pp_around_sync.empty()
                   ? "median of all samples"
                   : "median of the samples just before and just after each run of "
                     "client__1_1_actor_calls_sync"},
    {"samples", samples_json(pingpong, 1)},
    {"samples_are", "before the cluster; around each client__1_1_actor_calls_sync run "
                    "(before, after); after all workloads"}};

  if (do_memory) {
    json m{{"unit", "MiB"},
           {"what", "the head rayd's RssAnon (/proc/PID/status, sampled every "
                      + std::to_string(static_cast<int>(o.sample_ms))
                      + " ms) at its peak during the client's put of a "
                      + std::to_string(o.gigabytes) + " GiB object and during its get "
                      "back, minus the head at rest (client connected, just before the "
                      "put). RssAnon, not VmRSS: the object itself lands in the head "
                      "node's shared-memory object store (memfds, counted in the head's "
                      "RssShmem and VmRSS while it maps them, never in RssAnon), which is "
                      "where it belongs; RssAnon is what the head buffers on the way (the "
                      "session's chunks, copies). VmRSS and RssShmem alongside"},
           {"runs", memory_runs}};
    if (extra_anon.empty()) {
      m["error"] = "no run succeeded";
    } else {
      m["value"] = round_to(summarize(extra_anon).median, 1);
      m["value_is"] = "median of " + std::to_string(extra_anon.size()) + " runs";
      m["max"] = round_to(summarize(extra_anon).max, 1);
      m["samples"] = samples_json(extra_anon, 1);
      m["extra_vm_rss_mib"] = round_to(summarize(extra_vm_rss).median, 1);
      m["extra_vm_rss_samples"] = samples_json(extra_vm_rss, 1);
      m["transfer_bytes"] = transfer_bytes;
    }
    metrics[memory_metric] = m;
  }
  out["metrics"] = metrics;

  double sync = median_of("client__1_1_actor_calls_sync");
  double ratio = pp > 0 && sync > 0 ? sync / pp : (sync == -1.0 ? -1.0 : 0);
  out["ratio_client__1_1_actor_calls_sync_over_tcp_pingpong"] = round_to(ratio, 3);

  // Issue 11's targets. A figure not run (--only) is not judged.
  json targets = json::object();
  bool all = true;
  auto target = [&](const std::string& key, double value, double goal, bool at_most,
                    const char* what) {
    if (value == -1.0 && !o.only.empty())
      return;
    bool met = value >= 0 && (at_most ? value <= goal : value >= goal);
    all = all && met;
    targets[key] = {{"value", round_to(value, 3)}, {"target", goal},
                    {"at_most", at_most}, {"what", what}, {"met", met}};
  };
  target("client__1_1_actor_calls_sync_ge_0.4x_tcp_pingpong", ratio, 0.4, false,
         "client__1_1_actor_calls_sync / tcp_pingpong of the same run");
  target("client__1_1_actor_calls_async_ge_50000",
         median_of("client__1_1_actor_calls_async"), 50000, false, "calls/s");
  target("client__put_gigabytes_ge_0.5", median_of("client__put_gigabytes"), 0.5, false,
         "GB/s");
  if (do_memory)
    target("client__head_extra_rss_le_64mib",
           extra_anon.empty() ? -1.0 : summarize(extra_anon).median, 64, true,
           "MiB of RssAnon the head adds during the transfer, at most");
  out["targets"] = targets;
  out["all_targets_met"] = all && errors.empty();
  out["errors"] = errors;
  out["total_seconds"] = round_to(ms_since(total_t0) / 1000, 1);
  return out;
}

} // namespace rayd::bench
