// `rayd-bench micro`, and what other workload files share with it: the
// tcp_pingpong floor and running driver processes together (see workloads.hpp).

#include "bench/workloads.hpp"

#include <arpa/inet.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <poll.h>
#include <signal.h>
#include <sys/prctl.h>
#include <sys/socket.h>
#include <sys/utsname.h>
#include <sys/wait.h>
#include <unistd.h>

#include <algorithm>
#include <atomic>
#include <cmath>
#include <cstdio>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <future>
#include <map>
#include <mutex>
#include <optional>
#include <set>
#include <sstream>
#include <tuple>
#include <thread>

#include <nlohmann/json.hpp>

#include "common/error.hpp"
#include "schemas/api_client.hpp"


namespace rayd::bench {

using json = nlohmann::json;
using namespace std::chrono_literals;

} // namespace rayd::bench

// ------------------------------------------------------------- micro

namespace rayd::bench {

namespace {

namespace fs = std::filesystem;

/// Reads or writes exactly `n` bytes (blocking); false on EOF or error.
bool io_exact(int fd, char* buf, std::size_t n, bool reading) {
  std::size_t done = 0;
  while (done < n) {
    auto r = reading ? ::read(fd, buf + done, n - done) : ::write(fd, buf + done, n - done);
    if (r < 0 && errno == EINTR)
      continue;
    if (r <= 0)
      return false;
    done += static_cast<std::size_t>(r);
  }
  return true;
}

} // namespace

double tcp_pingpong(double seconds) {
  int lfd = ::socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
  if (lfd < 0)
    return -1;
  sockaddr_in addr{};
  addr.sin_family = AF_INET;
  addr.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  socklen_t len = sizeof addr;
  if (::bind(lfd, reinterpret_cast<sockaddr*>(&addr), sizeof addr) != 0
      || ::listen(lfd, 1) != 0
      || ::getsockname(lfd, reinterpret_cast<sockaddr*>(&addr), &len) != 0) {
    note(std::string{"tcp_pingpong: "} + std::strerror(errno));
    ::close(lfd);
    return -1;
  }
  pid_t parent = ::getpid();
  pid_t pid = ::fork();
  if (pid < 0) {
    ::close(lfd);
    return -1;
  }
  if (pid == 0) {
    ::prctl(PR_SET_PDEATHSIG, SIGKILL);
    if (::getppid() != parent)
      ::_exit(1);
    ::close(lfd);
    int fd = ::socket(AF_INET, SOCK_STREAM, 0);
    if (fd < 0 || ::connect(fd, reinterpret_cast<sockaddr*>(&addr), sizeof addr) != 0)
      ::_exit(1);
    int one = 1;
    ::setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof one);
    char buf[8];
    while (io_exact(fd, buf, sizeof buf, true) && io_exact(fd, buf, sizeof buf, false)) {
    }
    ::_exit(0);
  }
  pollfd pfd{lfd, POLLIN, 0};
  int fd = ::poll(&pfd, 1, 10000) == 1 ? ::accept4(lfd, nullptr, nullptr, SOCK_CLOEXEC) : -1;
  ::close(lfd);
  double rate = -1;
  if (fd >= 0) {
    int one = 1;
    ::setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof one);
    char buf[8] = {'p', 'i', 'n', 'g', 0, 0, 0, 0};
    uint64_t n = 0;
    bool ok = true;
    auto t0 = steady::now();
    double elapsed = 0;
    while (ok && elapsed < seconds) {
      for (int i = 0; ok && i < 256; ++i, ++n)
        ok = io_exact(fd, buf, sizeof buf, false) && io_exact(fd, buf, sizeof buf, true);
      elapsed = ms_since(t0) / 1000;
    }
    if (ok)
      rate = static_cast<double>(n) / elapsed;
    ::close(fd); // the child reads EOF and exits
  } else {
    ::kill(pid, SIGKILL);
  }
  while (::waitpid(pid, nullptr, 0) < 0 && errno == EINTR) {
  }
  return rate;
}

namespace {

/// Every descendant of `roots` (the task worker processes of the nodes).
std::vector<pid_t> descendants(const std::vector<pid_t>& roots) {
  std::multimap<pid_t, pid_t> children;
  std::error_code ec;
  for (fs::directory_iterator it{"/proc", ec}, end; !ec && it != end; it.increment(ec)) {
    auto name = it->path().filename().string();
    if (name.empty() || !std::isdigit(static_cast<unsigned char>(name[0])))
      continue;
    auto text = read_file(it->path().string() + "/stat");
    if (!text)
      continue;
    auto close = text->rfind(')');
    if (close == std::string::npos || close + 4 > text->size())
      continue;
    // After ')': " S ppid ..."
    pid_t ppid = std::atoi(text->c_str() + close + 4);
    children.emplace(ppid, std::atoi(name.c_str()));
  }
  std::vector<pid_t> out;
  std::vector<pid_t> todo = roots;
  while (!todo.empty()) {
    auto p = todo.back();
    todo.pop_back();
    auto [b, e] = children.equal_range(p);
    for (auto i = b; i != e; ++i) {
      out.push_back(i->second);
      todo.push_back(i->second);
    }
  }
  return out;
}

/// CPU of the processes involved, at one instant.
struct cpu_snapshot {
  steady::time_point at;
  machine_ticks machine;
  uint64_t head = 0, worker = 0;
  std::map<pid_t, uint64_t> tasks; // task worker processes
};

cpu_snapshot take_snapshot(pid_t head, pid_t worker) {
  cpu_snapshot s;
  s.at = steady::now();
  s.machine = machine_cpu_ticks();
  s.head = cpu_ticks(head);
  s.worker = cpu_ticks(worker);
  for (auto pid : descendants({head, worker}))
    s.tasks[pid] = cpu_ticks(pid);
  return s;
}

/// The last line of `path` that parses as a JSON object (discarded if none).
json last_json_line(const std::string& path) {
  auto text = read_file(path);
  if (!text)
    return json(json::value_t::discarded);
  std::istringstream in{*text};
  std::string line;
  json last(json::value_t::discarded);
  while (std::getline(in, line))
    if (!line.empty() && line[0] == '{')
      if (auto j = json::parse(line, nullptr, false); !j.is_discarded())
        last = std::move(j);
  return last;
}

/// The last few lines of a log, for an error message.
std::string tail_of(const std::string& path, std::size_t lines = 3) {
  auto text = read_file(path).value_or("");
  std::vector<std::string> all;
  std::istringstream in{text};
  for (std::string l; std::getline(in, l);)
    if (!l.empty())
      all.push_back(l);
  std::string out;
  for (auto i = all.size() > lines ? all.size() - lines : 0; i < all.size(); ++i)
    out += (out.empty() ? "" : " | ") + all[i];
  return out;
}

/// Exited without being reaped yet (so /proc still has its final CPU times).
bool has_exited(pid_t pid) {
  siginfo_t si{};
  return ::waitid(P_PID, static_cast<id_t>(pid), &si, WEXITED | WNOHANG | WNOWAIT) == 0
         && si.si_pid == pid;
}

std::size_t count_ready(const std::string& dir) {
  std::size_t n = 0;
  std::error_code ec;
  for (fs::directory_iterator it{dir, ec}, end; !ec && it != end; it.increment(ec))
    n += it->path().filename().string().rfind("ready.", 0) == 0 ? 1 : 0;
  return n;
}

} // namespace

driver_run run_drivers(cluster& c, pid_t worker, const std::string& driver,
                       const std::string& workload, int n,
                       const std::vector<std::string>& args, double timeout_s,
                       const std::string& address) {
  driver_run out;
  // A fresh barrier and logs per call (a workload may run several times).
  std::string tag = workload + "-" + std::to_string(n);
  for (int k = 2; fs::exists(c.tmpdir() + "/barrier-" + tag); ++k)
    tag = workload + "-" + std::to_string(n) + "-" + std::to_string(k);
  auto barrier = c.tmpdir() + "/barrier-" + tag;
  fs::create_directories(barrier);
  std::vector<std::string> env{"RAYD_TOKEN=" + c.token()};
  if (address.empty()) {
    env.push_back("RAYD_ADDRESS=" + c.head().api_address);
    env.push_back("RAYD_TMPDIR=" + c.tmpdir());
  } else {
    env.push_back("RAYD_ADDRESS=" + address); // a remote client: no local session to find
  }
  std::vector<pid_t> pids;
  std::vector<std::string> logs;
  for (int i = 0; i < n; ++i) {
    std::vector<std::string> argv{driver, "--workload", workload, "--barrier", barrier};
    argv.insert(argv.end(), args.begin(), args.end());
    // Not *.out: finish() scans those as console output of rayd.
    logs.push_back(c.tmpdir() + "/micro-" + tag + "-" + std::to_string(i) + ".driver.txt");
    auto pid = spawn(argv, logs.back(), env);
    if (pid < 0) {
      out.error = "cannot start " + driver;
      break;
    }
    pids.push_back(pid);
  }
  // Until every driver is warm (or one gave up).
  auto t0 = steady::now();
  while (out.error.empty() && count_ready(barrier) < pids.size()) {
    for (std::size_t i = 0; i < pids.size(); ++i)
      if (has_exited(pids[i]))
        out.error = "a driver exited before its timed window: " + tail_of(logs[i]);
    if (ms_since(t0) > 120000)
      out.error = "the drivers were not ready within 120 s";
    sleep_ms(1);
  }
  if (!out.error.empty()) { // no timed window: stop whoever is left
    for (std::size_t i = 0; i < pids.size(); ++i) {
      if (!has_exited(pids[i]))
        signal_child(pids[i], SIGKILL);
      reap(pids[i]);
    }
    return out;
  }
  auto before = take_snapshot(c.head_pid(), worker);
  std::map<pid_t, uint64_t> drivers_before;
  for (auto pid : pids)
    drivers_before[pid] = cpu_ticks(pid);
  { std::ofstream{barrier + "/go"}; }
  // Until every driver exited; each one's CPU is read while it is a zombie.
  std::map<pid_t, uint64_t> drivers_after;
  auto deadline = steady::now() + std::chrono::duration<double>(timeout_s);
  std::optional<cpu_snapshot> after;
  std::vector<int> status(pids.size(), 0);
  std::vector<bool> done(pids.size(), false);
  for (std::size_t left = pids.size(); left > 0;) {
    for (std::size_t i = 0; i < pids.size(); ++i) {
      if (done[i] || !has_exited(pids[i]))
        continue;
      if (left == 1) // the last one: the window ends here
        after = take_snapshot(c.head_pid(), worker);
      drivers_after[pids[i]] = cpu_ticks(pids[i]);
      status[i] = reap(pids[i]);
      done[i] = true;
      --left;
    }
    if (left > 0 && steady::now() > deadline) {
      out.error = workload + ": a driver did not finish within "
                  + std::to_string(static_cast<int>(timeout_s)) + " s (killed)";
      for (std::size_t i = 0; i < pids.size(); ++i)
        if (!done[i]) {
          signal_child(pids[i], SIGKILL);
          status[i] = reap(pids[i]);
          done[i] = true;
        }
      break;
    }
    if (left > 0)
      sleep_ms(1);
  }
  if (!after)
    after = take_snapshot(c.head_pid(), worker);
  for (std::size_t i = 0; i < pids.size(); ++i) {
    auto j = last_json_line(logs[i]);
    if (j.is_discarded()) {
      if (out.error.empty())
        out.error = "driver " + std::to_string(i) + " (" + describe_wait_status(status[i])
                    + ") printed no JSON: " + tail_of(logs[i]);
      continue;
    }
    if (j.contains("error")) {
      if (out.error.empty())
        out.error = "driver " + std::to_string(i) + ": " + j["error"].get<std::string>();
      continue;
    }
    out.outputs.push_back(std::move(j));
  }
  // The CPU breakdown (% of one core) over the window.
  double hz = static_cast<double>(ticks_per_second());
  double window = std::chrono::duration<double>(after->at - before.at).count();
  auto pct = [&](uint64_t ticks) { return round_to(100.0 * ticks / hz / window, 1); };
  uint64_t driver_ticks = 0;
  for (auto& [pid, t] : drivers_after)
    driver_ticks += t - std::min(t, drivers_before[pid]);
  uint64_t task_ticks = 0;
  for (auto& [pid, t] : after->tasks) {
    auto b = before.tasks.count(pid) ? before.tasks.at(pid) : 0;
    task_ticks += t - std::min(t, b);
  }
  double busy = after->machine.total > before.machine.total
                  ? 100.0 * (after->machine.busy - before.machine.busy)
                      / (after->machine.total - before.machine.total)
                  : 0;
  out.cpu = {{"window_s", round_to(window, 3)},
             {"machine_busy_pct", round_to(busy, 1)},
             {"drivers_pct_of_core", pct(driver_ticks)},
             {"task_workers_pct_of_core", pct(task_ticks)},
             {"head_rayd_pct_of_core", pct(after->head - std::min(after->head, before.head))},
             {"worker_rayd_pct_of_core",
              pct(after->worker - std::min(after->worker, before.worker))}};
  return out;
}

namespace {

/// Runs bench/dask_micro.py; its JSON, or {"skipped": why}.
json run_dask_micro(const micro_options& o) {
  std::string tried;
  auto python = pick_dask_python(o.python, tried);
  if (python.empty()) {
    note("micro: Dask comparison skipped: `import distributed` fails with " + tried);
    return {{"skipped", "python3 -c 'import distributed' failed (tried " + tried + ")"}};
  }
  auto script = o.dask_script.empty()
                  ? std::string{RAYD_BENCH_SOURCE_DIR} + "/dask_micro.py"
                  : o.dask_script;
  note("micro: the same task workloads on Dask (" + python + " " + script + ")");
  std::string out;
  char secs[32];
  std::snprintf(secs, sizeof secs, "%g", o.seconds);
  int rc = run_capture({python, script, "--seconds", secs, "--clients",
                        std::to_string(o.clients)},
                       out);
  auto text = trim(out);
  auto pos = text.rfind('\n');
  auto last = pos == std::string::npos ? text : text.substr(pos + 1);
  auto j = json::parse(last, nullptr, false);
  if (rc != 0 || j.is_discarded())
    return {{"skipped", "dask_micro.py failed (exit " + std::to_string(rc)
                          + "): " + last.substr(0, 300)}};
  j["python"] = python;
  return j;
}

} // namespace

double number_or(const json& j, const char* key, double fallback) {
  return j.is_object() && j.contains(key) && j[key].is_number() ? j[key].get<double>()
                                                                : fallback;
}

json run_micro(const settings& s, const micro_options& o) {
  const std::string name = "micro";
  std::string driver = o.driver;
  if (driver.empty()) {
    std::error_code ec;
    driver = (fs::read_symlink("/proc/self/exe", ec).parent_path() / "rayd-micro-driver")
               .string();
  }
  if (::access(driver.c_str(), X_OK) != 0)
    return error_result(name, "no executable " + driver
                                + " (build the rayd-micro-driver target, or pass --driver)");
  double background = background_busy_pct(name);
  auto total_t0 = steady::now();

  std::vector<double> pingpong;
  note("micro: tcp_pingpong before the cluster starts");
  pingpong.push_back(tcp_pingpong(o.pingpong_seconds));

  cluster c{s, "micro"};
  if (c.spawn_head({"--num-cpus", "2"}) < 0 || !c.wait_head())
    return error_result(name, "the head did not come up");
  pid_t worker = c.spawn_worker({"--num-cpus", "1", "--resources", R"({"far": 1})"});
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
  } // the API client (and its thread) is gone before tcp_pingpong forks

  note("micro: tcp_pingpong with the cluster up, just before single_client_tasks_sync");
  pingpong.push_back(tcp_pingpong(o.pingpong_seconds));

  char secs[32];
  std::snprintf(secs, sizeof secs, "%g", o.seconds);
  struct spec {
    const char* metric;
    const char* workload;
    int clients;
    std::vector<std::string> args;
  };
  std::vector<spec> specs{
    {"single_client_tasks_sync", "tasks_sync", 1, {"--seconds", secs}},
    {"single_client_tasks_async", "tasks_async", 1, {"--seconds", secs}},
    {"multi_client_tasks_async", "tasks_async", o.clients, {"--seconds", secs}},
    {"single_client_put_calls", "put_calls", 1, {"--seconds", secs}},
    {"single_client_get_calls", "get_calls", 1, {"--seconds", secs}},
    {"single_client_put_calls_inline", "put_calls_inline", 1, {"--seconds", secs}},
    {"single_client_get_calls_inline", "get_calls_inline", 1, {"--seconds", secs}},
    {"single_client_put_gigabytes", "put_gigabytes", 1, {"--seconds", secs}},
    {"single_client_tasks_and_get_batch", "tasks_and_get_batch", 1, {"--seconds", secs}},
    {"object_transfer_gbps", "object_transfer", 1,
     {"--seconds", secs, "--runs", std::to_string(o.transfer_runs)}},
    // Actors (docs/actors.md), Ray's names (ray_perf.py): 4 actors where Ray
    // uses cpu/2 (1 on these machines).
    {"1_1_actor_calls_sync", "actor_calls_sync", 1, {"--seconds", secs}},
    {"1_1_actor_calls_async", "actor_calls_async", 1, {"--seconds", secs}},
    {"1_1_actor_calls_concurrent", "actor_calls_concurrent", 1, {"--seconds", secs}},
    {"1_n_actor_calls_async", "actor_calls_1_n", 1, {"--seconds", secs, "--actors", "4"}},
    {"n_n_actor_calls_async", "actor_calls_n_n", o.clients,
     {"--seconds", secs, "--actors", "4", "--batch", "5000"}},
    {"n_n_actor_calls_with_arg_async", "actor_calls_n_n_arg", o.clients,
     {"--seconds", secs, "--actors", "4"}},
    {"many_actors", "many_actors", 1, {"--seconds", secs, "--count", "10000"}},
  };
  if (!o.only.empty()) {
    for (auto& name : o.only)
      if (std::none_of(specs.begin(), specs.end(),
                       [&name](const spec& sp) { return name == sp.metric; }))
        return error_result("micro", "--only: no metric named " + name);
    specs.erase(std::remove_if(specs.begin(), specs.end(),
                               [&o](const spec& sp) {
                                 return std::find(o.only.begin(), o.only.end(), sp.metric)
                                        == o.only.end();
                               }),
                specs.end());
  }
  // One workload's figure (or {"error": why}) from its drivers' JSON lines.
  auto measure = [&](const spec& sp) -> json {
    double timeout = std::string{sp.workload} == "object_transfer"
                       ? 120.0 + 60.0 * o.transfer_runs
                       : 120.0 + o.seconds;
    auto r = run_drivers(c, worker, driver, sp.workload, sp.clients, sp.args, timeout);
    if (!r.error.empty() || r.outputs.empty())
      return {{"error", r.error.empty() ? "no driver output" : r.error}, {"cpu", r.cpu}};
    const auto& first = r.outputs.front();
    std::string w = sp.workload;
    json m;
    if (sp.clients > 1) {
      uint64_t ops = 0;
      double longest = 0;
      json per = json::array();
      for (auto& j : r.outputs) {
        ops += j.value("ops", uint64_t{0});
        longest = std::max(longest, number_or(j, "seconds", 0));
        per.push_back(round_to(number_or(j, "rate", 0), 1));
      }
      // Clients start together (the barrier); a client that waited for a
      // lease runs longer, so the total is over the longest client's window.
      double rate = longest > 0 ? ops / longest : 0;
      m = {{"value", round_to(rate, 1)},
           {"unit", first.value("unit", "tasks/s")},
           {"clients", static_cast<int>(r.outputs.size())},
           {"batch", first.value("batch", 0)},
           {"tasks", ops},
           {"seconds_longest_client", round_to(longest, 3)},
           {"per_client_rate", per}};
    } else if (w == "many_actors") {
      double secs_taken = number_or(first, "seconds");
      m = {{"value", round_to(secs_taken, 3)},
           {"unit", "s"},
           {"actors", first.value("ops", uint64_t{0})},
           {"actors_per_s", round_to(number_or(first, "rate"), 1)},
           {"submit_creates_s", round_to(number_or(first, "submit_creates_s"), 3)},
           {"head_rss_mib", round_to(vm_rss_bytes(c.head_pid()) / (1024.0 * 1024.0), 1)},
           {"what", "seconds for one driver to create 10,000 actors (anonymous, no "
                    "resources) and call each once, all results in; head_rss_mib: the "
                    "head rayd's RSS right after"}};
    } else if (w == "put_gigabytes") {
      m = {{"value", round_to(number_or(first, "gigabytes_per_s"), 3)},
           {"unit", "GB/s"},
           {"memcpy_gbps", round_to(number_or(first, "memcpy_gbps"), 3)},
           {"ratio_put_over_memcpy", round_to(number_or(first, "ratio_put_over_memcpy"), 3)},
           {"puts", first.value("puts", 0)},
           {"bytes_each", first.value("bytes_each", uint64_t{0})},
           {"seconds", round_to(number_or(first, "seconds"), 3)},
           {"what", "put() of a 128 MiB value into the node's shared store, --batch per "
                    "round, refs dropped at once; memcpy_gbps: a single-thread memcpy "
                    "of the same size between faulted-in buffers, in the same driver "
                    "process just before (median of >= 3 copies over 0.5 s)"}};
    } else if (w == "object_transfer") {
      auto transfer = first.value("transfer_s", json::array());
      auto again = first.value("copy_task_s", json::array());
      m = {{"value", round_to(number_or(first, "gigabytes_per_s"), 3)},
           {"unit", "GB/s"},
           {"value_is", "warm: the median of samples 2..N (memory the far node reused), "
                        "each without the consumer's in-task hashing time"},
           {"cold_gbps", round_to(number_or(first, "cold_gigabytes_per_s"), 3)},
           {"cold_is", "sample 1: into memory the far node never used, without hashing"},
           {"gibibytes_per_s", round_to(number_or(first, "gibibytes_per_s"), 3)},
           {"bytes", first.value("ops", uint64_t{0})},
           {"warm_median_s", round_to(number_or(first, "seconds"), 4)},
           {"warm_median_with_checksum_s",
            round_to(number_or(first, "warm_median_with_checksum_s"), 4)},
           {"checksum", first.value("checksum", "")},
           {"checksum_ok", first.value("checksum_ok", false)},
           {"consumer_hash_median_s", round_to(number_or(first, "consumer_hash_median_s"), 4)},
           {"consumer_hash_gbps", round_to(number_or(first, "consumer_hash_gbps"), 2)},
           {"producer_hash_s", round_to(number_or(first, "producer_hash_s"), 4)},
           {"transfer_s", transfer},
           {"consumer_hash_s", first.value("consumer_hash_s", json::array())},
           {"net_s", first.value("net_s", json::array())},
           {"copy_task_s", again},
           {"put_s", first.value("put_s", json::array())},
           {"what", "put 1 GiB of pseudo-random bytes on the head (the driver hashes "
                    "them first, XXH64, untimed), then transfer_check(ref) on the node "
                    "with resource 'far': submit to result = the pull node to node (1 "
                    "MiB chunks, into the far node's store) + a task touching every "
                    "page where it lies (std::string_view) + the task hashing every "
                    "byte (timed inside the task: consumer_hash_s, subtracted: net_s). "
                    "The driver fails the run if the hashes differ. copy_task_s: a "
                    "task that copies the same argument into a std::string, after the "
                    "pull (no transfer; for scale)"}};
    } else if (w == "get_calls") {
      m = {{"value", round_to(number_or(first, "rate"), 1)},
           {"unit", "gets/s"},
           {"ops", first.value("ops", uint64_t{0})},
           {"seconds", round_to(number_or(first, "seconds"), 3)},
           {"task_read_ok", first.value("task_read_ok", false)},
           {"what", "get() of one small object in the node's shared store (put with "
                    "max_inline_put_bytes = 0): the driver keeps no copy, so each get "
                    "is a request to the node's rayd, which reads it from the store "
                    "(memfd) and sends it back; a task (another process) read the same "
                    "object before the window (task_read_ok)"}};
    } else if (w == "put_calls") {
      m = {{"value", round_to(number_or(first, "rate"), 1)},
           {"unit", "puts/s"},
           {"ops", first.value("ops", uint64_t{0})},
           {"seconds", round_to(number_or(first, "seconds"), 3)},
           {"what", "put(0) into the node's shared store (max_inline_put_bytes = 0, "
                    "as Ray's ray.put): a PUT to the node's rayd, which writes a memfd "
                    "any process on the node can map, and its answer"}};
    } else if (w == "tasks_and_get_batch") {
      m = {{"value", round_to(number_or(first, "batches_per_s"), 2)},
           {"unit", "batches/s"},
           {"tasks_per_s", round_to(number_or(first, "rate"), 1)},
           {"batch", first.value("batch", 0)},
           {"tasks", first.value("ops", uint64_t{0})},
           {"seconds", round_to(number_or(first, "seconds"), 3)}};
    } else {
      m = {{"value", round_to(number_or(first, "rate"), 1)},
           {"unit", first.value("unit", "")},
           {"ops", first.value("ops", uint64_t{0})},
           {"seconds", round_to(number_or(first, "seconds"), 3)}};
      if (w == "tasks_async")
        m["batch"] = first.value("batch", 0);
      if (w == "put_calls_inline" || w == "get_calls_inline")
        m["what"] = "the value stays in the driver (objects up to 100 KiB travel inline "
                    "with the tasks that use them): a map insert / lookup in one "
                    "process, not Ray's ray.put / ray.get";
    }
    m["cpu"] = r.cpu;
    return m;
  };

  json metrics = json::object();
  std::vector<std::string> errors;
  for (auto& sp : specs) {
    note(std::string{"micro: "} + sp.metric
         + (sp.clients > 1 ? " (" + std::to_string(sp.clients) + " drivers)" : ""));
    auto m = measure(sp);
    if (std::string{sp.workload} == "tasks_sync") {
      // The floor right after the sync calls too: the two samples around
      // them are what single_client_tasks_sync is compared with.
      note("micro: tcp_pingpong right after single_client_tasks_sync");
      pingpong.push_back(tcp_pingpong(o.pingpong_seconds));
    }
    if (m.contains("error")) {
      errors.push_back(std::string{sp.metric} + ": " + m["error"].get<std::string>());
      note("micro: " + errors.back());
      // A batch workload that failed is run again with batches small enough
      // for one lease (256 tasks in flight per leased thread in the driver),
      // so the report still shows what the path can do. Not Ray's figure:
      // it is kept apart and no target counts it.
      std::string w = sp.workload;
      if (w == "tasks_async" || w == "tasks_and_get_batch") {
        spec small = sp;
        small.args.insert(small.args.end(), {"--batch", "256"});
        note(std::string{"micro: "} + sp.metric + " again with --batch 256");
        auto fb = measure(small);
        if (!fb.contains("error"))
          note(std::string{"micro: "} + sp.metric + " (batch 256) = " + fb["value"].dump()
               + " " + fb["unit"].get<std::string>());
        m["fallback_batch_256"] = fb;
      }
      metrics[sp.metric] = m;
      continue;
    }
    metrics[sp.metric] = m;
    note(std::string{"micro: "} + sp.metric + " = " + m["value"].dump() + " "
         + m["unit"].get<std::string>());
  }

  // The physical limit of a put, measured by the put_gigabytes driver just
  // before its puts, shown as a metric of its own.
  if (metrics.contains("single_client_put_gigabytes")
      && metrics["single_client_put_gigabytes"].contains("memcpy_gbps"))
    metrics["memcpy_gbps"] = {
      {"value", metrics["single_client_put_gigabytes"]["memcpy_gbps"]},
      {"unit", "GB/s"},
      {"what", "single-thread memcpy of 128 MiB between faulted-in buffers, in the "
               "put_gigabytes driver just before its puts (median copy)"}};

  note("micro: tcp_pingpong after the workloads (cluster up)");
  pingpong.push_back(tcp_pingpong(o.pingpong_seconds));
  // The floor is bimodal on small VMs: two processes on one CPU hand over
  // without an idle wake-up (~4x faster than on two CPUs), and the scheduler
  // decides which it gets. So the value compared with tasks_sync is the mean
  // of the samples taken just before and just after it, not the highest.
  double pp_floor = pingpong.size() >= 3 ? (pingpong[1] + pingpong[2]) / 2 : pingpong.back();
  double highest = *std::max_element(pingpong.begin(), pingpong.end());
  metrics["tcp_pingpong"] = {
    {"value", round_to(pp_floor, 1)},
    {"unit", "round trips/s"},
    {"samples", rounded(pingpong, 1)},
    {"samples_are", "before the cluster; just before single_client_tasks_sync; just "
                    "after it; after all workloads"},
    {"value_is", "the mean of the samples just before and just after "
                 "single_client_tasks_sync"},
    {"highest_sample", round_to(highest, 1)}};

  json out{{"workload", name},
           {"machine", machine_info()},
           {"background_busy_pct", background},
           {"seconds", o.seconds},
           {"clients", o.clients},
           {"cluster", "head --num-cpus 2; worker node --num-cpus 1 --resources '{\"far\": 1}'"}};
  finish(c, out);
  double rayd_s = ms_since(total_t0) / 1000;

  // -1: the metric is absent (not run, or it failed).
  auto value_of = [&metrics](const char* k) {
    return metrics.contains(k) ? number_or(metrics[k], "value") : -1.0;
  };
  double sync = value_of("single_client_tasks_sync");
  double sync_ratio = pp_floor > 0 && sync > 0 ? sync / pp_floor : (sync == -1.0 ? -1.0 : 0);
  out["ratio_tasks_sync_over_tcp_pingpong"] = round_to(sync_ratio, 3);
  out["ratio_tasks_sync_over_highest_pingpong_sample"]
    = round_to(highest > 0 && sync > 0 ? sync / highest : 0, 3);

  json dask = nullptr;
  const char* task_metrics[] = {"single_client_tasks_sync", "single_client_tasks_async",
                                "multi_client_tasks_async",
                                "single_client_tasks_and_get_batch"};
  const char* other_dask[] = {"single_client_put_calls", "single_client_get_calls",
                              "1_1_actor_calls_sync", "1_1_actor_calls_async",
                              "1_1_actor_calls_concurrent", "1_n_actor_calls_async",
                              "n_n_actor_calls_async", "n_n_actor_calls_with_arg_async"};
  json vs_dask = json::object();
  if (o.compare_dask) {
    dask = run_dask_micro(o);
    auto dm = dask.is_object() && dask.contains("metrics") ? dask["metrics"] : json::object();
    auto compare = [&](const char* k) {
      if (!dm.contains(k) || !metrics.contains(k))
        return;
      // tasks_and_get_batch is compared in the unit rayd reports (batches/s).
      double d = std::string{k} == "single_client_tasks_and_get_batch"
                   ? number_or(dm[k], "batches_per_s")
                   : number_or(dm[k], "rate");
      double r = value_of(k);
      metrics[k]["dask"] = round_to(d, 3);
      if (dm[k].contains("per_client_rate"))
        metrics[k]["dask_per_client_rate"] = dm[k]["per_client_rate"];
      if (d > 0 && r > 0) {
        metrics[k]["ratio_rayd_over_dask"] = round_to(r / d, 1);
        vs_dask[k] = round_to(r / d, 1);
      }
      // The small-batch rerun, in tasks/s on both sides (batch sizes differ).
      if (metrics[k].contains("fallback_batch_256")) {
        auto& fb = metrics[k]["fallback_batch_256"];
        double fr = fb.contains("tasks_per_s") ? number_or(fb, "tasks_per_s")
                                               : number_or(fb, "value");
        double dt = number_or(dm[k], "rate");
        if (fr > 0 && dt > 0)
          fb["ratio_rayd_over_dask_tasks_per_s"] = round_to(fr / dt, 1);
      }
    };
    for (auto k : task_metrics)
      compare(k);
    for (auto k : other_dask)
      compare(k);
    // many_actors is in seconds: compared by actors per second (Dask may
    // have run fewer actors; its count is shown).
    if (dm.contains("many_actors") && metrics.contains("many_actors")) {
      auto& m = metrics["many_actors"];
      double d = number_or(dm["many_actors"], "actors_per_s");
      double r = number_or(m, "actors_per_s");
      m["dask_seconds"] = dm["many_actors"].value("value", json());
      m["dask_count"] = dm["many_actors"].value("count", json());
      m["dask_actors_per_s"] = round_to(d, 1);
      if (d > 0 && r > 0) {
        m["ratio_rayd_over_dask_actors_per_s"] = round_to(r / d, 1);
        vs_dask["many_actors"] = round_to(r / d, 1);
      }
    }
    out["dask"] = dask;
  }
  out["metrics"] = metrics;

  // The issue's targets for these 2-core machines.
  json targets = json::object();
  bool all = true;
  auto target = [&](const std::string& key, double value, double goal, const char* what) {
    if (value == -1.0 && !o.only.empty())
      return; // a partial run (--only) judges only what it ran
    bool met = value >= goal;
    all = all && met;
    targets[key] = {{"value", round_to(value, 3)}, {"target", goal}, {"what", what},
                    {"met", met}};
  };
  target("single_client_tasks_sync_ge_0.6x_tcp_pingpong", sync_ratio, 0.6,
         "single_client_tasks_sync / tcp_pingpong of the same run");
  target("single_client_tasks_async_ge_100k", value_of("single_client_tasks_async"), 100000,
         "tasks/s");
  target("single_client_put_calls_ge_100k", value_of("single_client_put_calls"), 100000,
         "small put/s into the node's shared store (the put half of 'small put+get "
         ">= 100,000/s')");
  target("single_client_get_calls_ge_100k", value_of("single_client_get_calls"), 100000,
         "small get/s of an object in the node's shared store (the get half of "
         "'small put+get >= 100,000/s')");
  {
    auto pg = metrics.value("single_client_put_gigabytes", json::object());
    target("single_client_put_gigabytes_ge_0.5x_memcpy",
           number_or(pg, "ratio_put_over_memcpy", -1), 0.5,
           "put GB/s into the store / single-thread memcpy GB/s of the same run");
  }
  target("object_transfer_gbps_ge_1", value_of("object_transfer_gbps"), 1,
         "GB/s (1e9 bytes/s), 1 GiB pulled node to node, warm median, every byte "
         "checksummed (hashing time excluded)");
  double pp = pp_floor;
  double actor_sync = value_of("1_1_actor_calls_sync");
  double actor_ratio = pp > 0 && actor_sync > 0 ? actor_sync / pp : (actor_sync == -1.0 ? -1.0 : 0);
  out["ratio_1_1_actor_calls_sync_over_tcp_pingpong"] = round_to(actor_ratio, 3);
  target("1_1_actor_calls_sync_ge_0.6x_tcp_pingpong", actor_ratio, 0.6,
         "1_1_actor_calls_sync / tcp_pingpong of the same run");
  target("1_1_actor_calls_async_ge_150k", value_of("1_1_actor_calls_async"), 150000, "calls/s");
  target("n_n_actor_calls_async_ge_150k", value_of("n_n_actor_calls_async"), 150000, "calls/s");
  {
    // Upper bounds: met when the value is at most the goal.
    auto many = metrics.value("many_actors", json::object());
    double secs_taken = number_or(many, "value", -1);
    double rss = number_or(many, "head_rss_mib", -1);
    if (!(secs_taken == -1.0 && !o.only.empty())) {
      bool met_s = secs_taken >= 0 && secs_taken <= 2;
      bool met_rss = rss >= 0 && rss <= 150;
      all = all && met_s && met_rss;
      targets["many_actors_le_2s"] = {{"value", round_to(secs_taken, 3)}, {"target", 2},
                                      {"what", "seconds, at most"}, {"met", met_s}};
      targets["many_actors_head_rss_le_150mib"] = {{"value", round_to(rss, 1)},
                                                   {"target", 150},
                                                   {"what", "MiB, at most"},
                                                   {"met", met_rss}};
    }
  }
  if (o.compare_dask) {
    for (auto k : task_metrics) {
      double ratio = vs_dask.contains(k) ? vs_dask[k].get<double>()
                                         : (metrics.contains(k) ? 0 : -1);
      target(std::string{k} + "_ge_50x_dask", ratio, 50, "rayd / Dask, same run");
    }
  }
  out["targets"] = targets;
  out["all_targets_met"] = all && errors.empty();
  out["errors"] = errors;
  out["rayd_part_seconds"] = round_to(rayd_s, 1);
  out["total_seconds"] = round_to(ms_since(total_t0) / 1000, 1);
  return out;
}

} // namespace rayd::bench
