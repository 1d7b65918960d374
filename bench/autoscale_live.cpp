// See autoscale_live.hpp.

#include "bench/autoscale_live.hpp"

#include <sys/wait.h>

#include <fcntl.h>
#include <unistd.h>

#include <algorithm>
#include <array>
#include <atomic>
#include <csignal>
#include <cstring>
#include <cmath>
#include <fstream>
#include <map>
#include <memory>
#include <sstream>

#include <nlohmann/json.hpp>

#include "autoscale/autoscaler.hpp"
#include "autoscale/processes_provider.hpp"
#include "bench/autoscale_policy.hpp"
#include "bench/autoscale_trace.hpp"
#include "bench/workloads.hpp"
#include "common/error.hpp"
#include "schemas/api_client.hpp"

#ifndef RAYD_AUTOSCALE_DRIVER
#define RAYD_AUTOSCALE_DRIVER ""
#endif

namespace rayd::bench {

namespace {

using json = nlohmann::json;
using namespace std::chrono_literals;

const std::string workload = "autoscale";
const std::string cluster_name = "bench";
const std::string worker_type = "worker";

std::string number_text(double x) {
  std::ostringstream os;
  os << x;
  return os.str();
}

/// `seconds` from now, on the steady clock.
steady::time_point in_seconds(double seconds) {
  return steady::now()
         + std::chrono::duration_cast<steady::duration>(std::chrono::duration<double>(seconds));
}

double round1(double x) {
  return std::round(x * 10) / 10;
}

/// Wall-clock ms of the host's boot, to 10 ms (/proc/uptime's precision):
/// turns a process's start time in clock ticks into our clock.
double boot_wall_ms() {
  std::ifstream in{"/proc/uptime"};
  double up = 0;
  in >> up;
  return static_cast<double>(wall_ms()) - up * 1000;
}

// ------------------------------------------------------------- interrupts
//
// The nodes are not our children, so bench_util's interrupt clean-up (which
// kills our children) would leave them running. Every node the provider's
// state file names is recorded here (pid + session dir, fixed storage: the
// handler may not allocate); on SIGINT/SIGTERM/SIGHUP the handler SIGKILLs
// those whose /proc/<pid>/cmdline still names their session dir (a recycled
// pid is never signalled), then runs the previous handler.

constexpr std::size_t max_tracked = 512;
struct tracked_node {
  std::atomic<pid_t> pid{0};
  std::array<char, 512> session{};
};
std::array<tracked_node, max_tracked> g_nodes;
struct sigaction g_previous[3];
constexpr int g_signals[3] = {SIGINT, SIGTERM, SIGHUP};

/// True if the NUL-separated `cmdline` of `pid` has `session` as an
/// argument (async-signal-safe: open, read, close, no allocation).
bool names_session(pid_t pid, const char* session) {
  char path[64] = "/proc/";
  char digits[16];
  int n = 0;
  for (auto v = static_cast<unsigned>(pid); v > 0 && n < 15; v /= 10)
    digits[n++] = static_cast<char>('0' + v % 10);
  int at = 6;
  while (n > 0)
    path[at++] = digits[--n];
  const char tail[] = "/cmdline";
  for (char c : tail)
    path[at++] = c;
  int fd = ::open(path, O_RDONLY | O_CLOEXEC);
  if (fd < 0)
    return false;
  char buf[4096];
  auto len = ::read(fd, buf, sizeof buf - 1);
  ::close(fd);
  if (len <= 0)
    return false;
  buf[len] = '\0';
  for (ssize_t i = 0; i < len; i += static_cast<ssize_t>(std::strlen(buf + i)) + 1)
    if (std::strcmp(buf + i, session) == 0)
      return true;
  return false;
}

extern "C" void on_interrupt(int sig) {
  for (auto& t : g_nodes) {
    pid_t pid = t.pid.load();
    if (pid > 0 && names_session(pid, t.session.data()))
      ::kill(pid, SIGKILL);
  }
  for (int i = 0; i < 3; ++i)
    if (g_signals[i] == sig && g_previous[i].sa_handler != SIG_DFL
        && g_previous[i].sa_handler != SIG_IGN) {
      g_previous[i].sa_handler(sig);
      return;
    }
  ::_exit(128 + sig);
}

void install_interrupt_handler() {
  struct sigaction sa {};
  sa.sa_handler = on_interrupt;
  sigemptyset(&sa.sa_mask);
  for (int i = 0; i < 3; ++i)
    ::sigaction(g_signals[i], &sa, &g_previous[i]);
}

void track_node(pid_t pid, const std::string& session) {
  if (pid <= 0 || session.size() >= 512)
    return;
  for (auto& t : g_nodes)
    if (t.pid.load() == pid)
      return;
  for (auto& t : g_nodes) {
    pid_t expected = 0;
    // Claim the slot with -1 (ignored by the handler) while the dir is written.
    if (t.pid.compare_exchange_strong(expected, -1)) {
      std::memcpy(t.session.data(), session.c_str(), session.size() + 1);
      t.pid.store(pid);
      return;
    }
  }
}

void untrack_all() {
  for (auto& t : g_nodes)
    t.pid.store(0);
}

/// instance id → the wall-clock ms its rayd process started (from the
/// processes provider's state file and the pid's recorded start ticks).
std::map<std::string, double> process_starts(const std::string& state_file, double boot_ms) {
  std::map<std::string, double> out;
  auto text = read_file(state_file);
  if (!text)
    return out;
  auto j = json::parse(*text, nullptr, false);
  if (j.is_discarded() || !j.contains("instances"))
    return out;
  double hz = static_cast<double>(ticks_per_second());
  for (auto& i : j["instances"]) {
    // A record written before its spawn (pid 0, no start time yet) has no start.
    if (i.value("start_ticks", uint64_t{0}) == 0)
      continue;
    out[i.value("instance_id", "")] = boot_ms + i.value("start_ticks", uint64_t{0}) * 1000.0 / hz;
    track_node(i.value("pid", 0), i.value("session_dir", ""));
  }
  return out;
}

/// ALIVE worker nodes launched by the autoscaler: instance id → node.
std::map<std::string, node_info> alive_workers(const cluster_view& v) {
  std::map<std::string, node_info> out;
  for (auto& n : v.nodes) {
    if (n.is_head || n.get_state() != node_state::alive)
      continue;
    auto l = n.labels.find(autoscale::label_instance_id);
    if (l != n.labels.end())
      out[l->second] = n;
  }
  return out;
}

/// One instance row of the autoscaler's status: state and the first time it
/// entered each state (from its history).
struct row {
  std::string state;
  std::string provider_id; // the processes provider's id ("p-...")
  std::string node_id;
  std::map<std::string, int64_t> entered;
  std::string stop_reason; // of the last move to STOPPING
};

std::map<std::string, row> rows_of(const std::string& status) {
  std::map<std::string, row> out;
  auto j = json::parse(status, nullptr, false);
  if (j.is_discarded() || !j.contains("instances"))
    return out;
  for (auto& i : j["instances"]) {
    row r;
    r.state = i.value("state", "");
    r.provider_id = i.value("provider_instance_id", "");
    r.node_id = i.value("node_id", "");
    for (auto& h : i.value("history", json::array())) {
      auto to = h.value("to", "");
      if (!r.entered.count(to))
        r.entered[to] = h.value("time_ms", int64_t{0});
      if (to == "STOPPING")
        r.stop_reason = h.value("reason", "");
    }
    out[i.value("instance_id", "")] = std::move(r);
  }
  return out;
}

std::string write_config(const std::string& dir, const std::string& name, int max_workers,
                         double cpus, double idle_s, double speed) {
  auto path = dir + "/" + name + ".yaml";
  std::ofstream out{path};
  out << "cluster_name: " << cluster_name << "\n"
      << "max_workers: " << max_workers << "\n"
      << "upscaling_speed: " << speed << "\n"
      << "idle_timeout_seconds: " << idle_s << "\n"
      << "provider:\n  type: processes\n"
      << "available_node_types:\n"
      << "  head:\n    resources: {CPU: 0}\n"
      << "  " << worker_type << ":\n    resources: {CPU: " << cpus << "}\n"
      << "    max_workers: " << max_workers << "\n"
      << "head_node_type: head\n";
  return path;
}

/// A head running the autoscaler, its API client, and a processes provider
/// over the same state directory (for the process start times and the
/// clean-up). The destructor stops the head, then terminates every node the
/// provider still lists (they are not the head's children).
class live_cluster {
public:
  live_cluster(const settings& s, const std::string& tag) : c_(s, "autoscale-" + tag) {
  }

  ~live_cluster() {
    json ignored;
    finish(ignored);
  }

  bool start(int max_workers, double cpus, const autoscale_live_options& o, std::string& err) {
    auto cfg = write_config(c_.tmpdir(), "cluster", max_workers, cpus, o.idle_timeout_s,
                            o.upscaling_speed);
    if (c_.spawn_head({"--num-cpus", "0", "--autoscaling-config", cfg}) < 0
        || !c_.wait_head()) {
      err = "the head did not come up (see " + c_.tmpdir() + "/head.out)";
      return false;
    }
    autoscale::processes_provider_options po;
    po.cluster_name = cluster_name;
    po.head_address = c_.head().cluster_address;
    po.token_file = c_.token_file();
    po.base_dir = c_.tmpdir() + "/autoscaler";
    provider_ = std::make_unique<autoscale::processes_provider>(po);
    auto deadline = steady::now() + 30s;
    for (;;) {
      auto cl = rpc::client::connect(c_.head().api_address, c_.token(), 2s);
      if (cl) {
        cli_ = std::move(*cl);
        break;
      }
      if (steady::now() >= deadline) {
        err = "cannot connect to the API: " + describe(cl.error());
        return false;
      }
      sleep_ms(5);
    }
    // The autoscaler answers once its first round ran.
    for (;;) {
      auto st = cli_->autoscaler_status();
      if (st && *st)
        return true;
      if (steady::now() >= deadline) {
        err = st ? "the head runs no autoscaler" : describe(st.error());
        return false;
      }
      sleep_ms(10);
    }
  }

  rpc::client& cli() {
    return *cli_;
  }
  cluster& c() {
    return c_;
  }

  std::map<std::string, node_info> alive() {
    starts(0); // records the nodes for an interrupt
    auto v = cli_->status();
    if (!v)
      return {};
    return alive_workers(*v);
  }

  std::map<std::string, row> rows() {
    auto st = cli_->autoscaler_status();
    if (!st || !*st)
      return {};
    return rows_of(**st);
  }

  std::string status_text() {
    auto st = cli_->autoscaler_status();
    return st && *st ? **st : std::string{};
  }

  std::map<std::string, double> starts(double boot_ms) {
    return process_starts(c_.tmpdir() + "/autoscaler/" + cluster_name + "/instances.json",
                          boot_ms);
  }

  /// How many instances the provider still lists (running or not).
  std::size_t listed() {
    if (!provider_)
      return 0;
    auto l = provider_->list();
    return l ? l->size() : 0;
  }

  /// Waits until no worker is ALIVE, every row is TERMINATED and the provider
  /// lists nothing; false on timeout.
  bool wait_scaled_down(steady::time_point deadline) {
    for (;;) {
      if (alive().empty() && listed() == 0) {
        auto rs = rows();
        bool all = std::all_of(rs.begin(), rs.end(),
                               [](auto& kv) { return kv.second.state == "TERMINATED"; });
        if (all)
          return true;
      }
      if (steady::now() >= deadline)
        return false;
      sleep_ms(20);
    }
  }

  /// Stops the head, then the nodes still listed; adds the report to `out`.
  void finish(json& out) {
    if (done_)
      return;
    done_ = true;
    cli_.reset();
    auto rep = c_.stop();
    int leftovers = 0;
    if (provider_) {
      if (auto l = provider_->list()) {
        std::vector<std::string> ids;
        for (auto& i : *l)
          ids.push_back(i.instance_id);
        leftovers = static_cast<int>(ids.size());
        if (!ids.empty())
          if (auto err = provider_->terminate(ids))
            note(workload + ": terminating leftover nodes: " + describe(err));
      }
    }
    untrack_all();
    std::size_t total = 0;
    auto lines = c_.log_issues(12, total);
    out["cleanup"] = {{"processes", rep.stopped},
                      {"needed_sigkill", rep.needed_sigkill},
                      {"odd", rep.odd},
                      {"leftover_nodes_terminated_by_bench", leftovers}};
    out["log_issues"] = {{"count", total}, {"sample", lines}};
  }

private:
  cluster c_;
  std::unique_ptr<autoscale::processes_provider> provider_;
  std::unique_ptr<rpc::client> cli_;
  bool done_ = false;
};

std::vector<std::string> driver_env(live_cluster& lc) {
  return {"RAYD_ADDRESS=" + lc.c().head().api_address, "RAYD_TOKEN=" + lc.c().token(),
          "RAYD_TMPDIR=" + lc.c().tmpdir()};
}

/// Waits for `pid` (a driver) to exit; its wait status, or -1 on timeout
/// (then it is killed).
int wait_driver(pid_t pid, steady::time_point deadline) {
  int st = 0;
  while (child_running(pid, &st)) {
    if (steady::now() >= deadline) {
      signal_child(pid, SIGKILL);
      reap(pid);
      return -1;
    }
    sleep_ms(5);
  }
  return st;
}

std::string tail_of(const std::string& path) {
  auto t = read_file(path).value_or("");
  return t.size() > 400 ? t.substr(t.size() - 400) : t;
}

/// The breakdown of one launch, each in ms after the demand's submission.
json breakdown(const row& r, double t0, double proc_start, double joined, double seen) {
  auto at = [&r, t0](const char* state) -> json {
    auto it = r.entered.find(state);
    return it == r.entered.end() ? json(nullptr) : json(round1(it->second - t0));
  };
  return {{"decided_queued", at("QUEUED")},
          {"create_called_requested", at("REQUESTED")},
          {"process_started", proc_start > 0 ? json(round1(proc_start - t0)) : json(nullptr)},
          {"joined_gcs", round1(joined - t0)},
          {"seen_alive_by_poll", round1(seen - t0)},
          {"autoscaler_saw_running", at("RAYD_RUNNING")},
          {"stopping", at("STOPPING")},
          {"terminated", at("TERMINATED")}};
}

// ------------------------------------------------------------- first node

struct first_node_samples {
  std::vector<double> alive_ms;     // submission → joined the GCS (ALIVE)
  std::vector<double> seen_ms;      // submission → seen ALIVE by our poll
  std::vector<double> decided_ms;   // submission → QUEUED
  std::vector<double> requested_ms; // submission → create called
  std::vector<double> started_ms;   // submission → rayd process started
  std::vector<double> down_ms;      // work done → terminated
  std::vector<int> launched;
  json runs = json::array();
};

std::string first_node_sample(live_cluster& lc, const autoscale_live_options& o, bool tasks,
                              int run, first_node_samples& out, pid_t& driver);

/// One first-node sample; "" or the error. A driver still running after an
/// error is killed (by its pid).
std::string first_node_run(live_cluster& lc, const autoscale_live_options& o, bool tasks,
                           int run, first_node_samples& out) {
  pid_t driver = -1;
  auto err = first_node_sample(lc, o, tasks, run, out, driver);
  if (driver > 0 && child_running(driver)) {
    signal_child(driver, SIGKILL);
    reap(driver);
  }
  return err;
}

std::string first_node_sample(live_cluster& lc, const autoscale_live_options& o, bool tasks,
                              int run, first_node_samples& out, pid_t& driver) {
  auto deadline = in_seconds(o.timeout_s);
  auto before = lc.rows();
  if (!lc.alive().empty())
    return "a worker is still ALIVE before the run";
  double boot = boot_wall_ms();
  auto log = lc.c().tmpdir() + "/driver_first_" + std::to_string(run) + ".log";
  double t0 = static_cast<double>(wall_ms());
  if (tasks) {
    driver = spawn({o.driver, "--case", "tasks", "count=2", "ms=200", "cpus=1"}, log,
                   driver_env(lc));
    if (driver < 0)
      return "cannot start " + o.driver;
  } else {
    resource_map one{{"CPU", 1}};
    if (auto r = lc.cli().request_resources({one}); !r)
      return "request_resources: " + describe(r.error());
  }
  std::string id;
  node_info node;
  double seen = 0;
  while (id.empty()) {
    for (auto& [iid, n] : lc.alive())
      if (!before.count(iid)) {
        id = iid;
        node = n;
        seen = static_cast<double>(wall_ms());
        break;
      }
    if (!id.empty())
      break;
    if (driver > 0 && !child_running(driver))
      return "the driver exited before a node came up: " + tail_of(log);
    if (steady::now() >= deadline)
      return "no new node ALIVE within the timeout";
    sleep_ms(o.poll_ms);
  }
  // By provider id, read while the node runs (the row names its provider id
  // once the autoscaler reconciled it, maybe a round later).
  auto starts = lc.starts(boot);
  double done = 0;
  json run_json{{"demand", tasks ? "tasks" : "request_resources"}};
  if (tasks) {
    int st = wait_driver(driver, deadline);
    done = static_cast<double>(wall_ms());
    if (st < 0 || !WIFEXITED(st) || WEXITSTATUS(st) != 0)
      return "the driver failed (" + (st < 0 ? std::string{"timeout"} : describe_wait_status(st))
             + "): " + tail_of(log);
    // The driver prints how long its work took after rayd::init: the rest of
    // its life is its start (init) and exit.
    auto drv = json::parse(read_file(log).value_or(""), nullptr, false);
    if (drv.is_object() && drv.contains("elapsed_ms"))
      run_json["driver_init_and_exit_ms"]
        = round1(done - t0 - drv["elapsed_ms"].get<double>());
  } else {
    if (auto r = lc.cli().request_resources({}); !r)
      return "clearing the request: " + describe(r.error());
    done = static_cast<double>(wall_ms());
  }
  if (!lc.wait_scaled_down(deadline))
    return "the node was not terminated within the timeout after the work ended";
  double down = static_cast<double>(wall_ms());
  sleep_ms(o.settle_ms);
  auto after = lc.rows();
  int launched = 0;
  for (auto& [iid, r] : after)
    if (!before.count(iid))
      ++launched;
  const auto& r = after[id];
  double proc_start = starts.count(r.provider_id) ? starts[r.provider_id] : 0;
  double joined = static_cast<double>(node.start_time_ms);
  out.alive_ms.push_back(joined - t0);
  out.seen_ms.push_back(seen - t0);
  if (r.entered.count("QUEUED"))
    out.decided_ms.push_back(r.entered.at("QUEUED") - t0);
  if (r.entered.count("REQUESTED"))
    out.requested_ms.push_back(r.entered.at("REQUESTED") - t0);
  if (proc_start > 0)
    out.started_ms.push_back(proc_start - t0);
  out.down_ms.push_back(down - done);
  out.launched.push_back(launched);
  run_json["alive_ms"] = round1(joined - t0);
  run_json["launched"] = launched;
  run_json["breakdown_ms"] = breakdown(r, t0, proc_start, joined, seen);
  run_json["work_done_to_terminated_ms"] = round1(down - done);
  out.runs.push_back(run_json);
  note(workload + ": first node (" + (tasks ? "tasks" : "request") + ") run "
       + std::to_string(run) + ": ALIVE after " + std::to_string(int(joined - t0)) + " ms, "
       + std::to_string(launched) + " launched, terminated "
       + std::to_string(int(down - done)) + " ms after the work ended");
  return "";
}

json first_node_figures(const first_node_samples& s) {
  bool exact = std::all_of(s.launched.begin(), s.launched.end(), [](int n) { return n == 1; });
  return {{"alive_ms", to_json(summarize(s.alive_ms))},
          {"seen_by_poll_ms", to_json(summarize(s.seen_ms))},
          {"breakdown_median_ms",
           {{"decided_queued", round1(summarize(s.decided_ms).median)},
            {"create_called_requested", round1(summarize(s.requested_ms).median)},
            {"process_started", round1(summarize(s.started_ms).median)},
            {"joined_gcs_alive", round1(summarize(s.alive_ms).median)}}},
          {"work_done_to_terminated_ms", to_json(summarize(s.down_ms))},
          {"launched_per_run", s.launched},
          {"exactly_one_launch_per_run", exact},
          {"runs", s.runs}};
}

// ------------------------------------------------------------- burst

json burst(const settings& st, const autoscale_live_options& o, std::string& err) {
  live_cluster lc{st, "burst"};
  json out;
  if (!lc.start(o.burst_nodes, o.burst_worker_cpus, o, err))
    return out;
  auto deadline = in_seconds(o.timeout_s);
  int tasks = static_cast<int>(std::lround(o.burst_nodes * o.burst_worker_cpus));
  auto log = lc.c().tmpdir() + "/driver_burst.log";
  double boot = boot_wall_ms();
  double t0 = static_cast<double>(wall_ms());
  pid_t driver = spawn({o.driver, "--case", "burst", "count=" + std::to_string(tasks),
                        "ms=" + std::to_string(o.burst_task_ms), "cpus=1"},
                       log, driver_env(lc));
  if (driver < 0) {
    err = "cannot start " + o.driver;
    return out;
  }
  std::map<std::string, double> seen;   // instance id → first seen ALIVE
  std::map<std::string, node_info> nodes;
  std::map<std::string, double> starts; // provider id → process start
  std::size_t max_alive = 0;
  double all_alive_seen = 0;
  int st_driver = 0;
  bool driver_done = false;
  // Until the work is done: every node seen, and any launch beyond the need.
  for (;;) {
    auto a = lc.alive();
    double now = static_cast<double>(wall_ms());
    for (auto& [iid, n] : a)
      if (!seen.count(iid)) {
        seen[iid] = now;
        nodes[iid] = n;
      }
    for (auto& [pid, t] : lc.starts(boot)) // a node may be gone by the end
      starts.emplace(pid, t);
    max_alive = std::max(max_alive, a.size());
    if (all_alive_seen == 0 && static_cast<int>(a.size()) >= o.burst_nodes)
      all_alive_seen = now;
    if (!child_running(driver, &st_driver)) {
      driver_done = true;
      break;
    }
    if (steady::now() >= deadline)
      break;
    sleep_ms(all_alive_seen == 0 ? o.poll_ms : 50);
  }
  double done = static_cast<double>(wall_ms());
  if (!driver_done) {
    signal_child(driver, SIGKILL);
    reap(driver);
    err = "the burst's driver did not finish within the timeout";
    lc.finish(out);
    return out;
  }
  if (!WIFEXITED(st_driver) || WEXITSTATUS(st_driver) != 0) {
    err = "the burst's driver failed (" + describe_wait_status(st_driver) + "): " + tail_of(log);
    lc.finish(out);
    return out;
  }
  bool down_ok = lc.wait_scaled_down(in_seconds(o.timeout_s));
  double down = static_cast<double>(wall_ms());
  auto rows = lc.rows();
  auto drv = json::parse(read_file(log).value_or(""), nullptr, false);

  std::vector<double> joined, decided, requested;
  std::map<int64_t, int> per_round; // QUEUED time → launches decided then
  for (auto& [iid, n] : nodes)
    joined.push_back(static_cast<double>(n.start_time_ms) - t0);
  for (auto& [iid, r] : rows) {
    if (r.entered.count("QUEUED")) {
      decided.push_back(r.entered.at("QUEUED") - t0);
      ++per_round[r.entered.at("QUEUED")];
    }
    if (r.entered.count("REQUESTED"))
      requested.push_back(r.entered.at("REQUESTED") - t0);
  }
  std::sort(joined.begin(), joined.end());
  // Every instance's timeline (ms after the driver's spawn), in launch order,
  // and those stopped before the work was done (a node the burst needed).
  std::vector<std::pair<int64_t, std::string>> order;
  for (auto& [iid, r] : rows)
    order.emplace_back(r.entered.count("QUEUED") ? r.entered.at("QUEUED") : 0, iid);
  std::sort(order.begin(), order.end());
  json timeline = json::array();
  int stopped_early = 0;
  std::vector<double> started_to_joined;
  for (auto& [q, iid] : order) {
    auto& r = rows[iid];
    double ps = starts.count(r.provider_id) ? starts[r.provider_id] : 0;
    double jn = nodes.count(iid) ? static_cast<double>(nodes[iid].start_time_ms) : 0;
    json e = breakdown(r, t0, ps, jn > 0 ? jn : t0, seen.count(iid) ? seen[iid] : t0);
    if (jn == 0) {
      e["joined_gcs"] = nullptr;
      e["seen_alive_by_poll"] = nullptr;
    }
    if (ps > 0 && jn > 0)
      started_to_joined.push_back(jn - ps);
    e["instance_id"] = iid;
    e["provider_instance_id"] = r.provider_id;
    e["stop_reason"] = r.stop_reason;
    if (r.entered.count("STOPPING") && r.entered.at("STOPPING") < done) {
      ++stopped_early;
      e["stopped_before_work_done"] = true;
    }
    timeline.push_back(e);
  }
  json rounds = json::array();
  for (auto& [t, n] : per_round)
    rounds.push_back({{"at_ms", round1(t - t0)}, {"launches", n}});
  double all_joined = static_cast<int>(joined.size()) >= o.burst_nodes
                        ? joined[static_cast<std::size_t>(o.burst_nodes) - 1]
                        : -1;
  out = {{"nodes_needed", o.burst_nodes},
         {"tasks", tasks},
         {"task_ms", o.burst_task_ms},
         {"worker_cpus", o.burst_worker_cpus},
         {"all_alive_ms", round1(all_joined)},
         {"all_seen_alive_by_poll_ms", all_alive_seen > 0 ? json(round1(all_alive_seen - t0))
                                                          : json(nullptr)},
         {"first_alive_ms", joined.empty() ? json(nullptr) : json(round1(joined.front()))},
         {"launched", rows.size()},
         {"distinct_nodes_seen", nodes.size()},
         {"max_alive_at_once", max_alive},
         {"launch_rounds", rounds},
         {"create_called_last_ms", requested.empty()
                                     ? json(nullptr)
                                     : json(round1(*std::max_element(requested.begin(),
                                                                     requested.end())))},
         {"driver_distinct_nodes", drv.is_object() ? drv.value("distinct", json(nullptr))
                                                   : json(nullptr)},
         {"driver_elapsed_ms", drv.is_object() ? drv.value("elapsed_ms", json(nullptr))
                                               : json(nullptr)},
         {"idle_timeout_s", o.idle_timeout_s},
         {"all_terminated", down_ok},
         {"work_done_to_all_terminated_ms", down_ok ? json(round1(down - done)) : json(nullptr)},
         {"process_starts_recorded", starts.size()},
         {"process_start_to_joined_ms", to_json(summarize(started_to_joined))},
         {"work_done_ms", round1(done - t0)},
         {"stopped_before_work_done", stopped_early},
         {"instances", timeline}};
  note(workload + ": burst: " + std::to_string(nodes.size()) + " nodes, all ALIVE after "
       + std::to_string(int(all_joined)) + " ms, " + std::to_string(rows.size())
       + " launched, all terminated " + std::to_string(int(down - done))
       + " ms after the work ended");
  if (!down_ok)
    err = "not every burst node was terminated within the timeout";
  lc.finish(out);
  return out;
}

} // namespace

json run_autoscale_live(const settings& s, const autoscale_live_options& o_in) {
  auto o = o_in;
  if (o.driver.empty())
    o.driver = RAYD_AUTOSCALE_DRIVER;
  if (o.driver.empty() || !file_exists(o.driver))
    return {{"workload", workload},
            {"error", o.driver.empty() ? std::string{"no autoscale_driver (build the target "
                                                     "autoscale_driver, or pass --driver)"}
                                       : "no autoscale_driver at " + o.driver}};
  install_interrupt_handler();
  double background = background_busy_pct(workload);
  json out{{"workload", workload},
           {"machine", machine_info()},
           {"background_busy_pct", background},
           {"config",
            {{"runs", o.runs},
             {"poll_ms", o.poll_ms},
             {"idle_timeout_s", o.idle_timeout_s},
             {"worker_cpus", o.worker_cpus},
             {"burst_nodes", o.burst_nodes},
             {"burst_worker_cpus", o.burst_worker_cpus},
             {"burst_task_ms", o.burst_task_ms},
             {"upscaling_speed", o.upscaling_speed},
             {"settle_ms", o.settle_ms},
             {"round_interval_ms", 100},
             {"provider", "processes"}}}};
  auto fail = [&out](const std::string& what) {
    note(workload + ": " + what);
    out["error"] = what;
    return out;
  };

  // First node: one head, the two kinds of demand in turn.
  first_node_samples by_tasks, by_request;
  {
    live_cluster lc{s, "first"};
    std::string err;
    if (!lc.start(1, o.worker_cpus, o, err))
      return fail("first node: " + err);
    for (int r = 1; r <= o.runs; ++r) {
      if (auto e = first_node_run(lc, o, true, r, by_tasks); !e.empty())
        return fail("first node (tasks) run " + std::to_string(r) + ": " + e);
      if (auto e = first_node_run(lc, o, false, r, by_request); !e.empty())
        return fail("first node (request) run " + std::to_string(r) + ": " + e);
    }
    json fin;
    lc.finish(fin);
    out["first_node_cleanup"] = fin;
  }
  std::string err;
  auto b = burst(s, o, err);
  if (!err.empty()) {
    out["burst"] = b;
    return fail("burst: " + err);
  }

  double first = summarize(by_tasks.alive_ms).median;
  double first_req = summarize(by_request.alive_ms).median;
  json metrics{
    {"first_node_alive_tasks_ms",
     {{"value", round1(first)},
      {"unit", "ms (median)"},
      {"what", "a driver with 2 one-CPU tasks spawned (its own start included) → the one new "
               "2-CPU node ALIVE in the GCS"}}},
    {"first_node_alive_request_ms",
     {{"value", round1(first_req)},
      {"unit", "ms (median)"},
      {"what", "request_resources([{CPU: 1}]) called → the new node ALIVE in the GCS"}}},
    {"burst_all_alive_ms",
     {{"value", b["all_alive_ms"]},
      {"unit", "ms"},
      {"what", "a driver with " + std::to_string(b.value("tasks", 0))
                 + " long one-CPU tasks spawned → all " + std::to_string(o.burst_nodes)
                 + " new nodes ALIVE"}}},
    {"burst_launched", {{"value", b["launched"]}, {"unit", "instances"}}},
    {"burst_work_done_to_all_terminated_ms",
     {{"value", b["work_done_to_all_terminated_ms"]},
      {"unit", "ms"},
      {"what", "driver exit → every burst node terminated (idle timeout "
                 + number_text(o.idle_timeout_s) + " s included)"}}}};
  bool first_met = first <= 1000;
  bool req_met = first_req <= 1000;
  bool exact = b.value("launched", 0) == o.burst_nodes
               && b.value("max_alive_at_once", 0) == o.burst_nodes;
  bool one_each = std::all_of(by_tasks.launched.begin(), by_tasks.launched.end(),
                              [](int n) { return n == 1; })
                  && std::all_of(by_request.launched.begin(), by_request.launched.end(),
                                 [](int n) { return n == 1; });
  json targets{
    {"first_node_alive_tasks_le_1000ms",
     {{"value", round1(first)}, {"target", 1000}, {"what", "ms, at most"}, {"met", first_met}}},
    {"first_node_alive_request_le_1000ms",
     {{"value", round1(first_req)}, {"target", 1000}, {"what", "ms, at most"}, {"met", req_met}}},
    {"burst_launched_exactly_nodes_needed",
     {{"value", b["launched"]}, {"target", o.burst_nodes}, {"what", "no overshoot"},
      {"met", exact}}},
    {"first_node_exactly_one_launch",
     {{"value", one_each}, {"target", true}, {"what", "one node per run"}, {"met", one_each}}}};
  bool all = first_met && req_met && exact && one_each;
  out["metrics"] = metrics;
  out["first_node"] = {{"tasks", first_node_figures(by_tasks)},
                       {"request_resources", first_node_figures(by_request)}};
  out["burst"] = b;

  if (o.simulated) {
    note(workload + ": the simulated figures (autoscale-policy, autoscale-trace)");
    auto policy = run_autoscale_policy({});
    autoscale_trace_options at;
    at.trace.capacity_cpus = at.max_workers * at.worker_cpus;
    at.trace.idle_timeout_s = at.idle_timeout_s;
    auto trace = run_autoscale_trace(at);
    for (auto* sim : {&policy, &trace}) {
      if (sim->contains("targets"))
        for (auto& [k, v] : (*sim)["targets"].items()) {
          targets["simulated_" + k] = v;
          if (v.contains("met") && v["met"].is_boolean())
            all = all && v["met"].get<bool>();
        }
      sim->erase("machine");
    }
    out["simulated"] = {{"autoscale_policy", policy}, {"autoscale_trace", trace}};
  }
  out["targets"] = targets;
  out["all_targets_met"] = all;
  return out;
}

} // namespace rayd::bench
