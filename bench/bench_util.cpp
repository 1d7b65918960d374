#include "bench/bench_util.hpp"

#include <fcntl.h>
#include <signal.h>
#include <spawn.h>
#include <stdlib.h>
#include <sys/resource.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include <algorithm>
#include <array>
#include <atomic>
#include <cctype>
#include <cerrno>
#include <cmath>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <iostream>
#include <numeric>
#include <sstream>
#include <thread>

#include <nlohmann/json.hpp>

extern char** environ;

namespace rayd::bench {

namespace fs = std::filesystem;

// ---------------------------------------------------------------- clocks

double ms_since(steady::time_point t0) {
  return std::chrono::duration<double, std::milli>(steady::now() - t0).count();
}

int64_t wall_ms() {
  using namespace std::chrono;
  return duration_cast<milliseconds>(system_clock::now().time_since_epoch())
    .count();
}

void sleep_ms(double ms) {
  std::this_thread::sleep_for(std::chrono::duration<double, std::milli>(ms));
}

void note(const std::string& line) {
  std::cerr << "rayd-bench: " << line << std::endl;
}

// ---------------------------------------------------------------- stats

double quantile(std::vector<double>& xs, double q) {
  if (xs.empty())
    return 0;
  std::sort(xs.begin(), xs.end());
  // Nearest rank: the smallest value with at least q of the samples <= it.
  auto rank = static_cast<std::size_t>(std::ceil(q * xs.size()));
  if (rank == 0)
    rank = 1;
  return xs[std::min(rank, xs.size()) - 1];
}

summary summarize(std::vector<double> xs) {
  summary s;
  s.n = xs.size();
  if (xs.empty())
    return s;
  std::sort(xs.begin(), xs.end());
  s.min = xs.front();
  s.max = xs.back();
  s.mean = std::accumulate(xs.begin(), xs.end(), 0.0) / xs.size();
  auto n = xs.size();
  s.median = n % 2 == 1 ? xs[n / 2] : (xs[n / 2 - 1] + xs[n / 2]) / 2;
  return s;
}

// ---------------------------------------------------------------- children

namespace {

constexpr std::size_t max_children = 8192;
std::array<std::atomic<pid_t>, max_children> g_children{};

void register_child(pid_t pid) {
  for (auto& slot : g_children) {
    pid_t expected = 0;
    if (slot.compare_exchange_strong(expected, pid))
      return;
  }
}

// Temporary directories to remove on an interrupt (fixed storage: the
// handler may not allocate).
constexpr std::size_t max_dirs = 16;
std::array<std::array<char, 1024>, max_dirs> g_dirs{};
std::array<std::atomic<bool>, max_dirs> g_dir_used{};

void register_dir(const std::string& path) {
  if (path.size() >= 1024)
    return;
  for (std::size_t i = 0; i < max_dirs; ++i) {
    bool expected = false;
    if (g_dir_used[i].compare_exchange_strong(expected, true)) {
      std::memcpy(g_dirs[i].data(), path.c_str(), path.size() + 1);
      return;
    }
  }
}

void unregister_dir(const std::string& path) {
  for (std::size_t i = 0; i < max_dirs; ++i)
    if (g_dir_used[i].load() && path == g_dirs[i].data()) {
      g_dir_used[i].store(false);
      return;
    }
}

extern "C" void on_fatal_signal(int sig) {
  // Only async-signal-safe calls: kill, waitpid, fork, execve, _exit.
  for (auto& slot : g_children) {
    pid_t pid = slot.load();
    if (pid > 0)
      ::kill(pid, SIGKILL);
  }
  for (auto& slot : g_children) {
    pid_t pid = slot.load();
    if (pid > 0)
      ::waitpid(pid, nullptr, 0);
  }
  for (std::size_t i = 0; i < max_dirs; ++i) {
    if (!g_dir_used[i].load())
      continue;
    pid_t pid = ::fork();
    if (pid == 0) {
      char rm[] = "/bin/rm";
      char rf[] = "-rf";
      char* args[] = {rm, rf, g_dirs[i].data(), nullptr};
      char* env[] = {nullptr};
      ::execve(rm, args, env);
      ::_exit(127);
    }
    if (pid > 0)
      ::waitpid(pid, nullptr, 0);
  }
  ::_exit(128 + sig);
}

std::vector<std::string> child_environment(const std::vector<std::string>& extra) {
  std::vector<std::string> env;
  for (char** e = environ; e != nullptr && *e != nullptr; ++e) {
    std::string kv{*e};
    if (kv.rfind("RAYD_", 0) == 0)
      continue; // hermetic: no ambient cluster address, token or tmpdir
    env.push_back(std::move(kv));
  }
  for (const auto& kv : extra)
    env.push_back(kv);
  return env;
}

std::vector<char*> as_cstrings(std::vector<std::string>& xs) {
  std::vector<char*> out;
  out.reserve(xs.size() + 1);
  for (auto& x : xs)
    out.push_back(x.data());
  out.push_back(nullptr);
  return out;
}

} // namespace

uint64_t raise_nofile_limit() {
  rlimit rl{};
  if (::getrlimit(RLIMIT_NOFILE, &rl) != 0)
    return 0;
  if (rl.rlim_cur < rl.rlim_max) {
    rl.rlim_cur = rl.rlim_max;
    ::setrlimit(RLIMIT_NOFILE, &rl);
    ::getrlimit(RLIMIT_NOFILE, &rl);
  }
  return rl.rlim_cur;
}

void install_signal_cleanup() {
  struct sigaction sa{};
  sa.sa_handler = on_fatal_signal;
  sigemptyset(&sa.sa_mask);
  ::sigaction(SIGINT, &sa, nullptr);
  ::sigaction(SIGTERM, &sa, nullptr);
  ::sigaction(SIGHUP, &sa, nullptr);
}

void unregister_child(pid_t pid) {
  for (auto& slot : g_children) {
    pid_t expected = pid;
    if (slot.compare_exchange_strong(expected, 0))
      return;
  }
}

namespace {

pid_t spawn_impl(const std::vector<std::string>& argv_in, int out_fd,
                 const std::string& out_path, int err_mode,
                 const std::vector<std::string>& extra_env) {
  // err_mode: 0 = same as stdout, 1 = inherit ours, 2 = /dev/null
  posix_spawn_file_actions_t fa;
  posix_spawn_file_actions_init(&fa);
  if (out_fd >= 0) {
    posix_spawn_file_actions_adddup2(&fa, out_fd, 1);
  } else {
    const char* path = out_path.empty() ? "/dev/null" : out_path.c_str();
    posix_spawn_file_actions_addopen(&fa, 1, path,
                                     O_WRONLY | O_CREAT | O_APPEND, 0644);
  }
  if (err_mode == 0)
    posix_spawn_file_actions_adddup2(&fa, 1, 2);
  else if (err_mode == 2)
    posix_spawn_file_actions_addopen(&fa, 2, "/dev/null", O_WRONLY, 0);
  posix_spawn_file_actions_addopen(&fa, 0, "/dev/null", O_RDONLY, 0);

  posix_spawnattr_t attr;
  posix_spawnattr_init(&attr);
  sigset_t empty;
  sigemptyset(&empty);
  sigset_t defaults;
  sigemptyset(&defaults);
  sigaddset(&defaults, SIGINT);
  sigaddset(&defaults, SIGTERM);
  sigaddset(&defaults, SIGHUP);
  sigaddset(&defaults, SIGPIPE);
  posix_spawnattr_setsigmask(&attr, &empty);
  posix_spawnattr_setsigdefault(&attr, &defaults);
  posix_spawnattr_setflags(&attr, POSIX_SPAWN_SETSIGMASK | POSIX_SPAWN_SETSIGDEF);

  auto args = argv_in;
  auto env = child_environment(extra_env);
  auto cargs = as_cstrings(args);
  auto cenv = as_cstrings(env);
  pid_t pid = -1;
  // posix_spawnp: argv[0] may be a bare name such as "python3".
  int rc = ::posix_spawnp(&pid, cargs[0], &fa, &attr, cargs.data(), cenv.data());
  posix_spawn_file_actions_destroy(&fa);
  posix_spawnattr_destroy(&attr);
  if (rc != 0) {
    note("cannot start " + argv_in[0] + ": " + std::strerror(rc));
    return -1;
  }
  register_child(pid);
  return pid;
}

} // namespace

pid_t spawn(const std::vector<std::string>& argv, const std::string& log_path,
            const std::vector<std::string>& extra_env) {
  return spawn_impl(argv, -1, log_path, 0, extra_env);
}

int run_capture(const std::vector<std::string>& argv, std::string& out,
                bool quiet) {
  int fds[2];
  if (::pipe2(fds, O_CLOEXEC) != 0)
    return -1;
  pid_t pid = spawn_impl(argv, fds[1], "", quiet ? 2 : 1, {});
  ::close(fds[1]);
  if (pid < 0) {
    ::close(fds[0]);
    return -1;
  }
  char buf[4096];
  for (;;) {
    auto n = ::read(fds[0], buf, sizeof buf);
    if (n > 0) {
      out.append(buf, static_cast<std::size_t>(n));
      continue;
    }
    if (n < 0 && errno == EINTR)
      continue;
    break;
  }
  ::close(fds[0]);
  int status = reap(pid);
  return WIFEXITED(status) ? WEXITSTATUS(status) : -1;
}

bool signal_child(pid_t pid, int sig) {
  return pid > 0 && ::kill(pid, sig) == 0;
}

int reap(pid_t pid) {
  int status = 0;
  while (::waitpid(pid, &status, 0) < 0 && errno == EINTR) {
  }
  unregister_child(pid);
  return status;
}

bool child_running(pid_t pid, int* status) {
  int st = 0;
  pid_t r = ::waitpid(pid, &st, WNOHANG);
  if (r == 0)
    return true;
  if (r == pid) {
    unregister_child(pid);
    if (status != nullptr)
      *status = st;
  }
  return false;
}

std::string describe_wait_status(int status) {
  if (WIFEXITED(status))
    return "exit code " + std::to_string(WEXITSTATUS(status));
  if (WIFSIGNALED(status))
    return std::string{"signal "} + ::strsignal(WTERMSIG(status));
  return "status " + std::to_string(status);
}

stop_report stop_all(const std::vector<pid_t>& pids,
                     std::chrono::milliseconds grace) {
  stop_report rep;
  std::vector<pid_t> left;
  for (auto pid : pids)
    if (pid > 0 && ::kill(pid, SIGTERM) == 0)
      left.push_back(pid);
    else if (pid > 0)
      left.push_back(pid); // maybe a zombie: still reap it
  auto account = [&](pid_t pid, int st, bool we_killed) {
    ++rep.stopped;
    if (we_killed)
      return;
    if (WIFEXITED(st) && WEXITSTATUS(st) != 0) {
      ++rep.nonzero_exit;
      rep.odd.push_back("pid " + std::to_string(pid) + " ended with "
                        + describe_wait_status(st) + " after SIGTERM");
    } else if (WIFSIGNALED(st)) {
      ++rep.killed_by_signal;
      rep.odd.push_back("pid " + std::to_string(pid) + " ended with "
                        + describe_wait_status(st) + " after SIGTERM");
    }
  };
  auto deadline = steady::now() + grace;
  while (!left.empty() && steady::now() < deadline) {
    std::vector<pid_t> still;
    for (auto pid : left) {
      int st = 0;
      pid_t r = ::waitpid(pid, &st, WNOHANG);
      if (r == 0) {
        still.push_back(pid);
      } else {
        unregister_child(pid);
        if (r == pid)
          account(pid, st, false);
      }
    }
    left.swap(still);
    if (!left.empty())
      sleep_ms(2);
  }
  for (auto pid : left) {
    ++rep.needed_sigkill;
    rep.odd.push_back("pid " + std::to_string(pid) + " ignored SIGTERM for "
                      + std::to_string(grace.count()) + " ms (SIGKILLed)");
    ::kill(pid, SIGKILL);
    account(pid, reap(pid), true);
  }
  return rep;
}

// ---------------------------------------------------------------- /proc

namespace {

uint64_t status_kib(pid_t pid, const std::string& field) {
  std::ifstream in{"/proc/" + std::to_string(pid) + "/status"};
  std::string line;
  while (std::getline(in, line)) {
    if (line.rfind(field + ":", 0) == 0) {
      std::istringstream is{line.substr(field.size() + 1)};
      uint64_t v = 0;
      is >> v;
      return v;
    }
  }
  return 0;
}

} // namespace

uint64_t vm_rss_bytes(pid_t pid) {
  return status_kib(pid, "VmRSS") * 1024;
}

uint64_t vm_hwm_bytes(pid_t pid) {
  return status_kib(pid, "VmHWM") * 1024;
}

int thread_count(pid_t pid) {
  return static_cast<int>(status_kib(pid, "Threads"));
}

namespace {

uint64_t stat_file_ticks(const std::string& path, std::string* comm) {
  auto text = read_file(path);
  if (!text)
    return 0;
  auto open = text->find('(');
  auto close = text->rfind(')');
  if (open == std::string::npos || close == std::string::npos)
    return 0;
  if (comm != nullptr)
    *comm = text->substr(open + 1, close - open - 1);
  std::istringstream is{text->substr(close + 2)};
  std::string field;
  uint64_t utime = 0, stime = 0;
  // After ')' come field 3 (state) ... field 14 utime, 15 stime.
  for (int i = 3; i <= 15 && is >> field; ++i) {
    if (i == 14)
      utime = std::stoull(field);
    else if (i == 15)
      stime = std::stoull(field);
  }
  return utime + stime;
}

} // namespace

std::map<int, std::pair<std::string, uint64_t>> thread_cpu_ticks(pid_t pid) {
  std::map<int, std::pair<std::string, uint64_t>> out;
  std::error_code ec;
  auto dir = "/proc/" + std::to_string(pid) + "/task";
  for (fs::directory_iterator it{dir, ec}, end; !ec && it != end;
       it.increment(ec)) {
    auto name = it->path().filename().string();
    std::string comm;
    auto ticks = stat_file_ticks(it->path().string() + "/stat", &comm);
    out[std::atoi(name.c_str())] = {comm, ticks};
  }
  return out;
}

uint64_t cpu_ticks(pid_t pid) {
  return stat_file_ticks("/proc/" + std::to_string(pid) + "/stat", nullptr);
}

machine_ticks machine_cpu_ticks() {
  machine_ticks m;
  std::ifstream in{"/proc/stat"};
  std::string cpu;
  in >> cpu;
  if (cpu != "cpu")
    return m;
  // user nice system idle iowait irq softirq steal (guest time is in user)
  uint64_t v[8] = {};
  for (auto& x : v)
    in >> x;
  for (int i = 0; i < 8; ++i)
    m.total += v[i];
  m.busy = m.total - v[3] - v[4];
  return m;
}

long ticks_per_second() {
  return ::sysconf(_SC_CLK_TCK);
}

// ---------------------------------------------------------------- files

temp_dir::temp_dir(const std::string& root, const std::string& prefix,
                   bool keep)
  : keep_(keep) {
  std::string tmpl = root + "/" + prefix + ".XXXXXX";
  std::vector<char> buf(tmpl.begin(), tmpl.end());
  buf.push_back('\0');
  if (::mkdtemp(buf.data()) == nullptr)
    throw std::runtime_error("mkdtemp " + tmpl + ": " + std::strerror(errno));
  path_ = buf.data();
  if (!keep_)
    register_dir(path_);
}

temp_dir::~temp_dir() {
  if (keep_) {
    note("kept " + path_);
    return;
  }
  std::error_code ec;
  fs::remove_all(path_, ec);
  unregister_dir(path_);
}

bool file_exists(const std::string& path) {
  struct stat st{};
  return ::stat(path.c_str(), &st) == 0;
}

std::optional<std::string> read_file(const std::string& path) {
  std::ifstream in{path, std::ios::binary};
  if (!in)
    return std::nullopt;
  std::ostringstream ss;
  ss << in.rdbuf();
  return ss.str();
}

std::vector<std::string> scan_logs(const std::string& dir, std::size_t limit,
                                   std::size_t& total) {
  std::vector<std::string> out;
  total = 0;
  std::error_code ec;
  for (fs::recursive_directory_iterator it{dir, ec}, end; !ec && it != end;
       it.increment(ec)) {
    if (!it->is_regular_file(ec))
      continue;
    auto name = it->path().filename().string();
    bool is_log = name == "rayd.log";
    bool is_out = name.size() > 4 && name.substr(name.size() - 4) == ".out";
    if (!is_log && !is_out)
      continue;
    std::ifstream in{it->path()};
    std::string line;
    auto rel = fs::relative(it->path(), dir, ec).string();
    while (std::getline(in, line)) {
      bool bad = false;
      if (is_log) {
        bad = line.find("[warning]") != std::string::npos
              || line.find("[error]") != std::string::npos
              || line.find("[critical]") != std::string::npos;
      } else {
        // Console output: spdlog lines are already in rayd.log; the banner
        // ("rayd: started ...", indented hints) is expected. Anything else
        // (error messages, aborts) is worth a look.
        bool logline = line.rfind("[20", 0) == 0;
        bool banner = line.rfind("rayd: started", 0) == 0
                      || line.rfind("  ", 0) == 0 || line.empty();
        bad = !logline && !banner;
      }
      // A node stopped by us at clean-up is logged as a warning: expected.
      if (bad && line.find("stopped by its operator") != std::string::npos)
        bad = false;
      if (!bad)
        continue;
      ++total;
      if (out.size() < limit)
        out.push_back(rel + ": " + line);
    }
  }
  return out;
}

// ---------------------------------------------------------------- node.json

std::optional<node_json> read_node_json(const std::string& session_dir) {
  auto text = read_file(session_dir + "/node.json");
  if (!text)
    return std::nullopt;
  auto j = nlohmann::json::parse(*text, nullptr, false);
  if (j.is_discarded() || !j.is_object())
    return std::nullopt;
  node_json nj;
  nj.node_id = j.value("node_id", "");
  nj.pid = j.value("pid", 0);
  nj.cluster_address = j.value("cluster_address", "");
  nj.api_address = j.value("api_address", "");
  nj.session_dir = j.value("session_dir", "");
  if (nj.node_id.empty())
    return std::nullopt;
  return nj;
}

std::optional<node_json> wait_node_json(const std::string& session_dir,
                                        pid_t pid,
                                        std::chrono::milliseconds timeout,
                                        std::chrono::microseconds poll) {
  auto deadline = steady::now() + timeout;
  auto path = session_dir + "/node.json";
  for (;;) {
    if (file_exists(path))
      if (auto nj = read_node_json(session_dir))
        return nj;
    int st = 0;
    if (pid > 0 && !child_running(pid, &st)) {
      note("rayd (pid " + std::to_string(pid) + ") ended before writing "
           + path + ": " + describe_wait_status(st));
      return std::nullopt;
    }
    if (steady::now() >= deadline) {
      note("timed out waiting for " + path);
      return std::nullopt;
    }
    std::this_thread::sleep_for(poll);
  }
}

// ---------------------------------------------------------------- cluster

cluster::cluster(const settings& s, const std::string& name)
  : settings_(s), dir_(s.tmp_root, "rayd-bench-" + name, s.keep_temp) {
}

cluster::~cluster() {
  stop();
}

std::string cluster::rayd() const {
  return settings_.bin_dir + "/rayd";
}

pid_t cluster::spawn_head(const std::vector<std::string>& extra) {
  std::vector<std::string> argv{rayd(),   "--head",       "--block",
                                "--port", "0",            "--api-port",
                                "0",      "--session-dir", head_session()};
  argv.insert(argv.end(), extra.begin(), extra.end());
  head_pid_ = spawn(argv, dir_.path() + "/head.out",
                    {"RAYD_TMPDIR=" + dir_.path()});
  return head_pid_;
}

bool cluster::wait_head(std::chrono::milliseconds timeout) {
  auto nj = wait_node_json(head_session(), head_pid_, timeout);
  if (!nj)
    return false;
  head_ = *nj;
  auto tok = read_file(token_file());
  if (!tok) {
    note("the head wrote node.json but no " + token_file());
    return false;
  }
  while (!tok->empty() && std::isspace(static_cast<unsigned char>(tok->back())))
    tok->pop_back();
  token_ = *tok;
  return true;
}

pid_t cluster::spawn_worker(const std::vector<std::string>& extra,
                            const std::string& session_dir) {
  std::vector<std::string> argv{rayd(), "--address=" + head_.cluster_address,
                                "--block", "--token-file", token_file()};
  if (!session_dir.empty()) {
    argv.push_back("--session-dir");
    argv.push_back(session_dir);
  }
  argv.insert(argv.end(), extra.begin(), extra.end());
  auto log = dir_.path() + "/worker_" + std::to_string(++worker_seq_) + ".out";
  auto pid = spawn(argv, log, {"RAYD_TMPDIR=" + dir_.path()});
  if (pid > 0)
    workers_.push_back(pid);
  return pid;
}

void cluster::forget_worker(pid_t pid) {
  workers_.erase(std::remove(workers_.begin(), workers_.end(), pid),
                 workers_.end());
}

stop_report cluster::stop() {
  if (stopped_)
    return {};
  stopped_ = true;
  auto rep = stop_all(workers_);
  workers_.clear();
  if (head_pid_ > 0) {
    auto h = stop_all({head_pid_});
    rep.stopped += h.stopped;
    rep.needed_sigkill += h.needed_sigkill;
    rep.nonzero_exit += h.nonzero_exit;
    rep.killed_by_signal += h.killed_by_signal;
    for (auto& line : h.odd)
      rep.odd.push_back("head: " + line);
    head_pid_ = -1;
  }
  return rep;
}

std::vector<std::string> cluster::log_issues(std::size_t limit,
                                             std::size_t& total) {
  return scan_logs(dir_.path(), limit, total);
}

} // namespace rayd::bench
