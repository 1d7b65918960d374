// See client_bench.hpp.

#include "bench/client_bench.hpp"

#include <unistd.h>

#include <algorithm>
#include <atomic>
#include <chrono>
#include <cmath>
#include <cstdlib>
#include <cstring>
#include <cctype>
#include <filesystem>
#include <fstream>
#include <functional>
#include <map>
#include <optional>
#include <set>
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
/// start() until stop(), which joins the thread and returns what it saw;
/// `each_period` (if any) runs on that thread after every sample.
///
///   idle --start()--> sampling --stop()--> stopped (samples handed out)
///
/// The destructor stops a sampler still running. start() and stop() are
/// called from one thread (the harness's); whatever `each_period` touches
/// is the sampler thread's until stop() returns.
class memory_sampler {
public:
  memory_sampler(pid_t pid, std::chrono::microseconds period,
                 std::function<void()> each_period = {})
    : pid_(pid), period_(period), each_period_(std::move(each_period)) {
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
      if (each_period_)
        each_period_();
      next += period_;
      std::this_thread::sleep_until(next);
    }
  }

  pid_t pid_;
  std::chrono::microseconds period_;
  std::function<void()> each_period_;
  std::atomic<bool> running_{false};
  std::thread thread_;
  std::vector<memory_sample> samples_; // the sampler thread's until joined
};

// ------------------------------------------------------------ client sockets

/// The children of this process whose command name is `comm` (of which the
/// kernel keeps 15 characters).
std::vector<pid_t> children_named(const std::string& comm) {
  std::vector<pid_t> out;
  const pid_t self = ::getpid();
  std::error_code ec;
  for (fs::directory_iterator it{"/proc", ec}, end; !ec && it != end; it.increment(ec)) {
    auto name = it->path().filename().string();
    if (name.empty() || !std::isdigit(static_cast<unsigned char>(name[0])))
      continue;
    auto stat = read_file(it->path().string() + "/stat");
    if (!stat)
      continue;
    auto open = stat->find('('), close = stat->rfind(')');
    if (open == std::string::npos || close == std::string::npos || close + 4 > stat->size())
      continue;
    auto cmd = stat->substr(open + 1, close - open - 1);
    pid_t ppid = std::atoi(stat->c_str() + close + 4); // after ") S "
    if (ppid == self && cmd == comm.substr(0, 15))
      out.push_back(std::atoi(name.c_str()));
  }
  return out;
}

/// "HOST:PORT" of an address of /proc/net/tcp ("0100007F:1F90"; IPv4 only,
/// IPv6 as its hex).
std::string peer_of(const std::string& hex) {
  auto colon = hex.find(':');
  if (colon == std::string::npos)
    return hex;
  auto port = std::strtoul(hex.c_str() + colon + 1, nullptr, 16);
  if (colon != 8)
    return hex.substr(0, colon) + ":" + std::to_string(port);
  auto ip = static_cast<uint32_t>(std::strtoul(hex.substr(0, 8).c_str(), nullptr, 16));
  return std::to_string(ip & 0xff) + "." + std::to_string((ip >> 8) & 0xff) + "."
         + std::to_string((ip >> 16) & 0xff) + "." + std::to_string(ip >> 24) + ":"
         + std::to_string(port);
}

/// The remote ends of `pid`'s connected TCP sockets (its fds matched with its
/// network namespace's /proc/net/tcp and tcp6), added to `peers`.
void add_tcp_peers(pid_t pid, std::set<std::string>& peers) {
  const std::string base = "/proc/" + std::to_string(pid);
  std::set<std::string> inodes;
  std::error_code ec;
  for (fs::directory_iterator it{base + "/fd", ec}, end; !ec && it != end; it.increment(ec)) {
    auto target = fs::read_symlink(it->path(), ec);
    auto t = target.string();
    if (!ec && t.rfind("socket:[", 0) == 0)
      inodes.insert(t.substr(8, t.size() - 9));
    ec.clear();
  }
  for (const char* table : {"/net/tcp", "/net/tcp6"}) {
    auto text = read_file(base + table);
    if (!text)
      continue;
    std::istringstream in{*text};
    std::string line;
    std::getline(in, line); // the header
    while (std::getline(in, line)) {
      std::istringstream f{line};
      std::string sl, local, remote, state, queues, timer, retr, uid, timeout, inode;
      f >> sl >> local >> remote >> state >> queues >> timer >> retr >> uid >> timeout >> inode;
      // 01: ESTABLISHED (a listening socket has no peer).
      if (inodes.count(inode) && state == "01")
        peers.insert(peer_of(remote));
    }
  }
}

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
  std::string workload; // rayd-micro-driver's, or rayd-client-driver's with own_driver
  bool own_driver;
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

/// Starts `c`'s head (--num-cpus 2) and one worker node (--num-cpus 1) and
/// waits until both are ALIVE; "" or why not. The harness's API client is
/// gone when it returns (tcp_pingpong forks: no thread may be left).
std::string start_cluster(cluster& c, pid_t& worker) {
  if (c.spawn_head({"--num-cpus", "2"}) < 0 || !c.wait_head())
    return "the head did not come up (see " + c.tmpdir() + "/head.out)";
  worker = c.spawn_worker({"--num-cpus", "1"});
  if (worker < 0)
    return "cannot start the worker node";
  std::string err;
  auto cli = connect_until(c.head().api_address, c.token(), steady::now() + 30s, err);
  if (!cli)
    return "cannot connect to the API: " + err;
  bool two = false;
  for (auto t0 = steady::now(); !two && ms_since(t0) < 30000; sleep_ms(5))
    if (auto v = cli->status())
      two = count_alive(*v) == 2;
  return two ? "" : "the worker node did not show ALIVE within 30 s";
}

bool wanted(const client_bench_options& o, const std::string& metric) {
  return o.only.empty() || std::find(o.only.begin(), o.only.end(), metric) != o.only.end();
}

} // namespace

json run_client(const settings& s, const client_bench_options& o) {
  const std::string name = "client";
  auto total_t0 = steady::now();
  auto micro = o.micro_driver.empty() ? next_to_self("rayd-micro-driver") : o.micro_driver;
  auto own = o.client_driver.empty() ? next_to_self("rayd-client-driver") : o.client_driver;
  for (const auto& d : {micro, own})
    if (::access(d.c_str(), X_OK) != 0)
      return error_result(name, "no executable " + d
                                  + " (build rayd-bench's drivers, or pass --micro-driver / "
                                    "--client-driver)");

  char secs[32];
  std::snprintf(secs, sizeof secs, "%g", o.seconds);
  const auto put_bytes = static_cast<uint64_t>(std::llround(o.put_gibibytes * gib));
  const auto transfer_bytes = static_cast<uint64_t>(std::llround(o.gigabytes * gib));
  const std::vector<rate_spec> all_specs{
    {"client__1_1_actor_calls_sync", "actor_calls_sync", false, {"--seconds", secs}, "calls/s",
     "rate", 465,
     "get(a.small_value()) one call at a time on one actor (no resources), from the "
     "client"},
    {"client__1_1_actor_calls_async", "actor_calls_async", false, {"--seconds", secs}, "calls/s",
     "rate", 907, "1000 calls on one actor submitted, then get of all; repeated"},
    {"client__1_1_actor_calls_concurrent", "actor_calls_concurrent", false, {"--seconds", secs},
     "calls/s", "rate", 862,
     "as Ray's: 1000 calls submitted from one client thread to an actor with "
     "max_concurrency 16, then get of all; repeated"},
    {"client__get_calls", "get_calls", false, {"--seconds", secs}, "gets/s", "rate", 1159,
     "get of one small put object (put(int64), stored on the cluster: the client keeps "
     "no copy), one at a time; a task read it first"},
    {"client__put_calls", "put_calls", true, {"--seconds", secs}, "puts/s", "rate", 789,
     "put(0) in a loop, refs dropped at once, then a get of the last one: a client's small "
     "put returns at once (queued to its session, which runs a client's ops in order), so "
     "the figure counts until the session ran them all (submitted_per_s: the loop alone; "
     "Ray's client put waits for each)"},
    {"client__put_gigabytes", "put_gigabytes", false,
     {"--seconds", secs, "--bytes", std::to_string(put_bytes), "--batch", "1"}, "GB/s",
     "gigabytes_per_s", 0.132,
     "put of a value of --put-gib GiB (default 1), its ref dropped at once (the head "
     "frees it); GB = 1e9 bytes"},
    {"client__tasks_and_get_batch", "tasks_and_get_batch", false, {"--seconds", secs}, "batches/s",
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
  pid_t worker = -1;
  if (auto why = start_cluster(c, worker); !why.empty())
    return error_result(name, why);
  // run_drivers: an empty address is the in-cluster way.
  auto address_of = [&o](const cluster& cl) {
    return o.in_cluster ? std::string{} : "rayd://" + cl.head().api_address;
  };
  const std::string address = address_of(c);
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
      auto d = run_drivers(c, worker, sp.own_driver ? own : micro, sp.workload, 1, sp.args,
                           timeout_s, address);
      json row{{"run", r}, {"cpu", d.cpu}};
      // What the head holds once the driver is gone (its session's objects freed):
      // a figure that grows run after run is memory the head keeps.
      if (auto m = read_memory(c.head_pid()))
        row["head_after_mib"] = {{"rss_anon", to_mib(m->rss_anon)},
                                 {"vm_rss", to_mib(m->vm_rss)}};
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
        if (sp.workload == "put_calls") {
          row["submitted_per_s"] = round_to(number_or(first, "submitted_per_s"), 1);
          row["drain_s"] = round_to(number_or(first, "drain_s"), 3);
        }
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
    // The head's memory while the client puts and gets one large object, on
    // a fresh cluster: a head that served the workloads above keeps their
    // peak heap (the allocator does not give it back), and a transfer could
    // reuse that memory unseen.
    note("client: run " + std::to_string(r) + "/" + std::to_string(o.runs) + " "
         + memory_metric + " (" + std::to_string(o.gigabytes)
         + " GiB put and get, on a fresh cluster)");
    json row{{"run", r}};
    cluster mc{s, "client-memory"};
    pid_t mworker = -1;
    if (auto why = start_cluster(mc, mworker); !why.empty()) {
      row["error"] = why;
      errors.push_back(memory_metric + " (run " + std::to_string(r) + "): " + why);
      memory_runs.push_back(row);
      continue;
    }
    // Meanwhile, where the driver's TCP connections go (the API port only).
    std::set<std::string> peers;
    memory_sampler sampler{mc.head_pid(),
                           std::chrono::microseconds{std::llround(o.sample_ms * 1000)},
                           [&peers] {
                             for (auto pid : children_named("rayd-client-driver"))
                               add_tcp_peers(pid, peers);
                           }};
    sampler.start();
    auto d = run_drivers(mc, mworker, own, "transfer", 1,
                         {"--bytes", std::to_string(transfer_bytes)},
                         600 + 60 * o.gigabytes, address_of(mc));
    sleep_ms(200); // what the head keeps once the object is freed
    auto samples = sampler.stop();
    finish(mc, row);
    const std::string api = mc.head().api_address;
    const bool api_only = !peers.empty() && peers.size() == 1 && *peers.begin() == api;
    row.update({{"samples", samples.size()},
                {"cpu", d.cpu},
                {"client_tcp_peers", std::vector<std::string>(peers.begin(), peers.end())},
                {"api_address", api},
                {"client_reached_api_port_only", api_only}});
    if (!o.in_cluster && !api_only)
      errors.push_back(memory_metric + " (run " + std::to_string(r)
                       + "): the client's TCP connections went elsewhere than the API port "
                         "(see client_tcp_peers)");
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
                      "put); each run on a fresh head and worker node. RssAnon, not VmRSS: the object itself lands in the head "
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
