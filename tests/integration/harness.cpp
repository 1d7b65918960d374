#include "tests/integration/harness.hpp"

#include <algorithm>
#include <cctype>
#include <cerrno>
#include <csignal>
#include <cstdlib>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <iostream>
#include <sstream>
#include <thread>

#include <arpa/inet.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <sys/prctl.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <sys/wait.h>
#include <unistd.h>

#include <boost/test/framework.hpp>
#include <boost/test/results_collector.hpp>
#include <boost/test/tree/test_unit.hpp>
#include <boost/test/unit_test.hpp>

extern char** environ;

namespace fs = std::filesystem;

namespace rayd::integration {

// --- small utilities -------------------------------------------------------

int64_t now_ms() {
  return std::chrono::duration_cast<milliseconds>(
             std::chrono::system_clock::now().time_since_epoch())
      .count();
}

bool wait_until(const std::function<bool()>& pred, milliseconds timeout, milliseconds poll) {
  auto deadline = std::chrono::steady_clock::now() + timeout;
  for (;;) {
    if (pred())
      return true;
    if (std::chrono::steady_clock::now() >= deadline)
      return false;
    std::this_thread::sleep_for(poll);
  }
}

std::string read_file(const std::string& path) {
  std::ifstream in(path, std::ios::binary);
  if (!in)
    return {};
  std::ostringstream ss;
  ss << in.rdbuf();
  return ss.str();
}

bool file_exists(const std::string& path) {
  struct stat st {};
  return ::stat(path.c_str(), &st) == 0;
}

std::string tail_file(const std::string& path, size_t lines) {
  std::string text = read_file(path);
  if (text.empty())
    return {};
  size_t pos = text.size();
  if (text.back() == '\n')
    --pos;
  size_t seen = 0;
  while (pos > 0) {
    if (text[pos - 1] == '\n' && ++seen == lines)
      break;
    --pos;
  }
  return text.substr(pos);
}

std::string to_lower(std::string s) {
  std::transform(s.begin(), s.end(), s.begin(),
                 [](unsigned char c) { return static_cast<char>(std::tolower(c)); });
  return s;
}

std::string trim(const std::string& s) {
  size_t b = 0, e = s.size();
  while (b < e && std::isspace(static_cast<unsigned char>(s[b])))
    ++b;
  while (e > b && std::isspace(static_cast<unsigned char>(s[e - 1])))
    --e;
  return s.substr(b, e - b);
}

bool contains_ci(const std::string& haystack, const std::string& needle) {
  return to_lower(haystack).find(to_lower(needle)) != std::string::npos;
}

std::vector<std::string> nonempty_lines(const std::string& s) {
  std::vector<std::string> out;
  std::istringstream in(s);
  std::string line;
  while (std::getline(in, line))
    if (!trim(line).empty())
      out.push_back(line);
  return out;
}

bool pid_alive(pid_t pid) {
  if (pid <= 0)
    return false;
  if (::kill(pid, 0) != 0 && errno == ESRCH)
    return false;
  // "pid (comm) S ..." -- the state follows the last ')'.
  std::string stat = read_file("/proc/" + std::to_string(pid) + "/stat");
  if (stat.empty())
    return false;
  auto rp = stat.rfind(')');
  if (rp != std::string::npos && rp + 2 < stat.size()) {
    char state = stat[rp + 2];
    if (state == 'Z' || state == 'X')
      return false;
  }
  return true;
}

uint16_t unused_port() {
  int fd = ::socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
  if (fd < 0)
    return 0;
  sockaddr_in addr{};
  addr.sin_family = AF_INET;
  addr.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  addr.sin_port = 0;
  uint16_t port = 0;
  if (::bind(fd, reinterpret_cast<sockaddr*>(&addr), sizeof(addr)) == 0) {
    socklen_t len = sizeof(addr);
    if (::getsockname(fd, reinterpret_cast<sockaddr*>(&addr), &len) == 0)
      port = ntohs(addr.sin_port);
  }
  ::close(fd);
  return port;
}

uint16_t port_of(const std::string& address) {
  auto colon = address.rfind(':');
  if (colon == std::string::npos)
    return 0;
  try {
    return static_cast<uint16_t>(std::stoi(address.substr(colon + 1)));
  } catch (...) {
    return 0;
  }
}

std::string bin_dir() {
  const char* d = std::getenv("RAYD_BIN_DIR");
  return d != nullptr && *d != '\0' ? std::string(d) : std::string("build/cli");
}

std::string rayd_bin() {
  return bin_dir() + "/rayd";
}

std::string rayctl_bin() {
  return bin_dir() + "/rayctl";
}

bool binaries_present() {
  return ::access(rayd_bin().c_str(), X_OK) == 0 && ::access(rayctl_bin().c_str(), X_OK) == 0;
}

// --- temp_dir --------------------------------------------------------------

temp_dir::temp_dir(const std::string& prefix) {
  std::string tmpl = "/tmp/" + prefix + "_XXXXXX";
  char* p = ::mkdtemp(tmpl.data());
  if (p == nullptr)
    throw std::runtime_error("mkdtemp failed: " + std::string(std::strerror(errno)));
  path_ = p;
}

temp_dir::~temp_dir() {
  std::error_code ec;
  fs::remove_all(path_, ec);
}

std::string temp_dir::sub(const std::string& name) const {
  std::string p = path_ + "/" + name;
  std::error_code ec;
  fs::create_directories(p, ec);
  return p;
}

// --- process ---------------------------------------------------------------

namespace {

std::string resolve_executable(const std::string& file, const std::vector<std::string>& env) {
  if (file.find('/') != std::string::npos)
    return file;
  std::string path_var = "/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin";
  for (const auto& e : env)
    if (e.rfind("PATH=", 0) == 0)
      path_var = e.substr(5);
  std::istringstream in(path_var);
  std::string dir;
  while (std::getline(in, dir, ':')) {
    std::string cand = (dir.empty() ? std::string(".") : dir) + "/" + file;
    if (::access(cand.c_str(), X_OK) == 0)
      return cand;
  }
  return file;
}

std::vector<std::string> child_environment(const env_list& extra) {
  std::vector<std::string> envs;
  for (char** e = environ; e != nullptr && *e != nullptr; ++e) {
    std::string s(*e);
    if (s.rfind("RAYD_", 0) == 0)
      continue;  // hermetic: only what the test passes
    envs.push_back(std::move(s));
  }
  for (const auto& [k, v] : extra) {
    std::string key = k + "=";
    envs.erase(std::remove_if(envs.begin(), envs.end(),
                              [&key](const std::string& s) { return s.rfind(key, 0) == 0; }),
               envs.end());
    envs.push_back(key + v);
  }
  return envs;
}

void close_from(int lowfd) {
#ifdef SYS_close_range
  if (::syscall(SYS_close_range, static_cast<unsigned>(lowfd), ~0U, 0) == 0)
    return;
#endif
  for (int fd = lowfd; fd < 4096; ++fd)
    ::close(fd);
}

}  // namespace

process::process(std::vector<std::string> argv, const env_list& env, const std::string& log_dir,
                 const std::string& name)
    : argv_(std::move(argv)), name_(name) {
  std::error_code ec;
  fs::create_directories(log_dir, ec);
  out_path_ = log_dir + "/" + name + ".out";
  err_path_ = log_dir + "/" + name + ".err";
  std::vector<std::string> envs = child_environment(env);
  std::string exe = resolve_executable(argv_.at(0), envs);

  // Everything the child needs is prepared before fork: after it only
  // async-signal-safe calls.
  std::vector<char*> cargv;
  for (auto& a : argv_)
    cargv.push_back(a.data());
  cargv.push_back(nullptr);
  std::vector<char*> cenv;
  for (auto& e : envs)
    cenv.push_back(e.data());
  cenv.push_back(nullptr);

  const std::string exec_error = "harness: cannot execute " + exe + "\n";
  int in_fd = ::open("/dev/null", O_RDONLY | O_CLOEXEC);
  int out_fd = ::open(out_path_.c_str(), O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0644);
  int err_fd = ::open(err_path_.c_str(), O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0644);
  if (in_fd < 0 || out_fd < 0 || err_fd < 0)
    throw std::runtime_error("cannot open log files in " + log_dir);

  const pid_t parent = ::getpid();
  pid_t pid = ::fork();
  if (pid < 0)
    throw std::runtime_error("fork failed: " + std::string(std::strerror(errno)));
  if (pid == 0) {
    ::setpgid(0, 0);
    // Should the test binary itself be killed (a CTest timeout), the child
    // goes with it; a daemon forked by the child does not inherit this.
    ::prctl(PR_SET_PDEATHSIG, SIGKILL);
    if (::getppid() != parent)
      ::_exit(127);
    sigset_t all;
    sigemptyset(&all);
    ::sigprocmask(SIG_SETMASK, &all, nullptr);
    ::signal(SIGPIPE, SIG_DFL);
    ::dup2(in_fd, 0);
    ::dup2(out_fd, 1);
    ::dup2(err_fd, 2);
    close_from(3);
    ::execve(exe.c_str(), cargv.data(), cenv.data());
    (void)!::write(2, exec_error.data(), exec_error.size());
    ::_exit(127);
  }
  ::setpgid(pid, pid);  // also here, so the group exists before we return
  ::close(in_fd);
  ::close(out_fd);
  ::close(err_fd);
  pid_ = pid;
}

process::~process() {
  if (pid_ > 0 && !exited_) {
    ::kill(pid_, SIGKILL);
    reap(true);
  }
}

bool process::reap(bool block) {
  if (exited_)
    return true;
  int status = 0;
  pid_t r;
  do {
    r = ::waitpid(pid_, &status, block ? 0 : WNOHANG);
  } while (r < 0 && errno == EINTR);
  if (r == pid_) {
    exited_ = true;
    exit_ms_ = now_ms();
    if (WIFEXITED(status))
      code_ = WEXITSTATUS(status);
    else if (WIFSIGNALED(status))
      code_ = 128 + WTERMSIG(status);
    return true;
  }
  if (r < 0 && errno == ECHILD) {  // should not happen; treat as gone
    exited_ = true;
    exit_ms_ = now_ms();
    return true;
  }
  return false;
}

void process::signal(int sig) {
  if (pid_ > 0 && !exited_)
    ::kill(pid_, sig);
}

bool process::running() {
  return !reap(false);
}

std::optional<int> process::wait_exit(milliseconds timeout) {
  bool done = wait_until([this] { return reap(false); }, timeout, 5ms);
  if (!done)
    return std::nullopt;
  return code_;
}

session_guard::~session_guard() {
  std::vector<pid_t> pids = processes_mentioning(dir_);
  if (auto info = read_node_json(dir_); info && (*info)["pid"].is_number())
    pids.push_back((*info)["pid"].get<pid_t>());
  for (pid_t pid : pids)
    if (pid_alive(pid) && cmdline_of(pid).find("rayd") != std::string::npos)
      ::kill(pid, SIGKILL);
}

// --- run -------------------------------------------------------------------

std::string exec_result::describe() const {
  std::ostringstream os;
  os << "exit=" << exit_code << (timed_out ? " (timed out)" : "") << " after " << elapsed_ms
     << " ms\n--- stdout ---\n"
     << out << "\n--- stderr ---\n"
     << err;
  return os.str();
}

exec_result run(const std::vector<std::string>& argv, const env_list& env, milliseconds timeout) {
  temp_dir logs("rayd_it_run");
  exec_result res;
  auto start = std::chrono::steady_clock::now();
  {
    process p(argv, env, logs.path(), "cmd");
    auto code = p.wait_exit(timeout);
    if (!code) {
      res.timed_out = true;
      p.signal(SIGKILL);
      p.wait_exit(5s);
    } else {
      res.exit_code = *code;
    }
    res.out = p.out();
    res.err = p.err();
  }
  res.elapsed_ms = std::chrono::duration_cast<milliseconds>(std::chrono::steady_clock::now() -
                                                            start)
                       .count();
  return res;
}

// --- cluster ---------------------------------------------------------------

std::string rayd_node::all_output() const {
  std::string s;
  if (proc)
    s = proc->out() + "\n" + proc->err() + "\n";
  return s + read_file(log_path());
}

std::optional<json> read_node_json(const std::string& session_dir) {
  std::string text = read_file(session_dir + "/node.json");
  if (text.empty())
    return std::nullopt;
  json j = json::parse(text, nullptr, false);
  if (j.is_discarded() || !j.is_object())
    return std::nullopt;
  for (const char* key : {"node_id", "pid", "cluster_address", "api_address"})
    if (!j.contains(key))
      return std::nullopt;
  return j;
}

namespace {

bool has_flag(const std::vector<std::string>& args, const std::string& flag) {
  for (const auto& a : args)
    if (a == flag || a.rfind(flag + "=", 0) == 0)
      return true;
  return false;
}


// `pid` is `ancestor` or one of its descendants (e.g. rayd under `ip netns exec`).
bool descends_from(pid_t pid, pid_t ancestor) {
  for (int i = 0; i < 6 && pid > 1; ++i) {
    if (pid == ancestor)
      return true;
    pid = parent_pid(pid);
  }
  return false;
}

std::string exit_state(process& p) {
  if (auto code = p.wait_exit(0ms))
    return "it exited with code " + std::to_string(*code);
  return "still running";
}

}  // namespace

cluster::cluster(const std::string& label) : tmp_("rayd_it_" + label) {
  rayd_tmpdir_ = tmp_.sub("rayd_tmp");
}

cluster::~cluster() {
  if (current_test_failed())
    dump_logs();
  // Workers first, then the head; each process destructor kills its own pid.
  for (auto it = nodes_.rbegin(); it != nodes_.rend(); ++it)
    (*it)->proc.reset();
}

env_list cluster::base_env() const {
  return {{"RAYD_TMPDIR", rayd_tmpdir_}};
}

rayd_node& cluster::spawn_node(const std::string& name, std::vector<std::string> argv,
                               const std::string& session_dir, const env_list& extra_env) {
  auto node = std::make_unique<rayd_node>();
  node->name = name;
  node->session_dir = session_dir;
  node->argv = std::move(argv);
  node->env = base_env();
  for (const auto& kv : extra_env)
    node->env.push_back(kv);
  node->proc = std::make_unique<process>(node->argv, node->env, root() + "/logs", name);
  nodes_.push_back(std::move(node));
  return *nodes_.back();
}

bool cluster::wait_ready(rayd_node& node, milliseconds timeout) {
  bool ok = wait_until(
      [&node] {
        if (auto j = read_node_json(node.session_dir)) {
          pid_t pid = (*j)["pid"].is_number() ? (*j)["pid"].get<pid_t>() : -1;
          if (pid > 0 && descends_from(pid, node.pid())) {
            node.info = *j;
            return true;
          }
        }
        return !node.proc->running();  // gave up: it exited
      },
      timeout, 10ms);
  return ok && node.proc->running() && !node.info.is_null() &&
         node.info.value("pid", -1) > 0 && descends_from(node.info["pid"].get<pid_t>(), node.pid());
}

rayd_node& cluster::start_head(const std::vector<std::string>& extra, int num_cpus,
                               const std::string& session_dir) {
  std::string dir = session_dir.empty() ? root() + "/head" : session_dir;
  std::vector<std::string> argv{rayd_bin(), "--head", "--block"};
  if (!has_flag(extra, "--port"))
    argv.insert(argv.end(), {"--port", "0"});
  if (!has_flag(extra, "--api-port"))
    argv.insert(argv.end(), {"--api-port", "0"});
  argv.insert(argv.end(), {"--session-dir", dir});
  if (!has_flag(extra, "--num-cpus"))
    argv.insert(argv.end(), {"--num-cpus", std::to_string(num_cpus)});
  argv.insert(argv.end(), extra.begin(), extra.end());
  rayd_node& node = spawn_node("head", argv, dir);
  head_ = &node;
  bool ok = wait_ready(node, 10s);
  BOOST_REQUIRE_MESSAGE(ok, "head did not write node.json within 10 s ("
                                << exit_state(*node.proc) << ")\n"
                                << node.all_output());
  return node;
}

rayd_node& cluster::restart_head(milliseconds timeout) {
  rayd_node& node = head();
  BOOST_REQUIRE_MESSAGE(node.proc->wait_exit(5s).has_value(),
                        "restart_head: the previous head is still running");
  ++restarts_;
  extra_logs_.push_back(node.proc->out_path());
  extra_logs_.push_back(node.proc->err_path());
  node.proc = std::make_unique<process>(node.argv, node.env, root() + "/logs",
                                        node.name + ".r" + std::to_string(restarts_));
  node.info = json();
  bool ok = wait_ready(node, timeout);
  BOOST_REQUIRE_MESSAGE(ok, "restarted head did not write node.json in time ("
                                << exit_state(*node.proc) << ")\n"
                                << node.all_output());
  return node;
}

rayd_node& cluster::start_worker(const std::string& name, const std::vector<std::string>& extra,
                                 int num_cpus, const std::string& session_dir) {
  rayd_node& h = head();
  std::string dir = session_dir.empty() ? root() + "/" + name : session_dir;
  std::vector<std::string> argv{rayd_bin(), "--address=" + h.cluster_address(), "--block",
                                "--session-dir", dir};
  if (!has_flag(extra, "--token") && !has_flag(extra, "--token-file"))
    argv.insert(argv.end(), {"--token-file", h.token_file()});
  if (!has_flag(extra, "--num-cpus"))
    argv.insert(argv.end(), {"--num-cpus", std::to_string(num_cpus)});
  argv.insert(argv.end(), extra.begin(), extra.end());
  rayd_node& node = spawn_node(name, argv, dir);
  bool ok = wait_ready(node, 10s);
  BOOST_REQUIRE_MESSAGE(ok, "worker " << name << " did not write node.json within 10 s ("
                                      << exit_state(*node.proc) << ")\n"
                                      << node.all_output());
  return node;
}

rayd_node& cluster::head() {
  if (head_ == nullptr)
    throw std::logic_error("cluster has no head");
  return *head_;
}

exec_result cluster::rayctl(const std::vector<std::string>& args, milliseconds timeout) const {
  if (head_ == nullptr)
    throw std::logic_error("cluster has no head");
  std::vector<std::string> argv{rayctl_bin(), "--address", head_->api_address(), "--token-file",
                                head_->token_file()};
  argv.insert(argv.end(), args.begin(), args.end());
  return run(argv, base_env(), timeout);
}

std::optional<json> cluster::try_status() const {
  exec_result r = rayctl({"status", "--json"});
  if (r.exit_code != 0)
    return std::nullopt;
  json j = json::parse(r.out, nullptr, false);
  if (j.is_discarded() || !j.is_object() || !j.contains("nodes") || !j["nodes"].is_array())
    return std::nullopt;
  return j;
}

json cluster::status_json() const {
  exec_result r = rayctl({"status", "--json"});
  BOOST_REQUIRE_MESSAGE(r.exit_code == 0, "rayctl status --json failed: " << r.describe());
  json j = json::parse(r.out, nullptr, false);
  BOOST_REQUIRE_MESSAGE(!j.is_discarded() && j.is_object(),
                        "rayctl status --json printed invalid JSON:\n"
                            << r.out);
  BOOST_REQUIRE_MESSAGE(j.contains("nodes") && j["nodes"].is_array(),
                        "status JSON has no \"nodes\" array:\n"
                            << j.dump(2));
  return j;
}

void cluster::dump_logs() const {
  std::ostringstream os;
  os << "\n======== rayd logs of cluster " << root() << " ========\n";
  auto section = [&os](const std::string& title, const std::string& path) {
    std::string t = tail_file(path, 40);
    if (t.empty())
      return;
    os << "---- " << title << " (" << path << ", tail) ----\n" << t;
    if (t.back() != '\n')
      os << '\n';
  };
  for (const auto& n : nodes_) {
    os << "==== node " << n->name << " pid " << n->pid() << ":";
    for (const auto& a : n->argv)
      os << ' ' << a;
    os << '\n';
    if (n->proc) {
      section("stdout", n->proc->out_path());
      section("stderr", n->proc->err_path());
    }
    section("rayd.log", n->log_path());
  }
  for (const auto& p : extra_logs_)
    section("log", p);
  os << "======== end of logs ========\n";
  std::cerr << os.str() << std::flush;
}

// --- status helpers --------------------------------------------------------

const json* find_node(const json& status, const std::string& node_id) {
  const json* list = &status;
  if (status.is_object() && status.contains("nodes"))
    list = &status["nodes"];
  if (!list->is_array())
    return nullptr;
  for (const auto& n : *list)
    if (n.is_object() && n.value("node_id", std::string()) == node_id)
      return &n;
  return nullptr;
}

std::string node_state(const json& status, const std::string& node_id) {
  const json* n = find_node(status, node_id);
  return n != nullptr ? n->value("state", std::string()) : std::string();
}

size_t alive_count(const json& status) {
  size_t c = 0;
  for (const auto& n : status["nodes"])
    if (n.value("state", std::string()) == "ALIVE")
      ++c;
  return c;
}

std::optional<json> wait_for_alive(const cluster& c, size_t n, milliseconds timeout,
                                   std::optional<json>* last) {
  std::optional<json> st;
  bool ok = wait_until(
      [&] {
        st = c.try_status();
        return st && alive_count(*st) == n;
      },
      timeout, 20ms);
  if (last != nullptr)
    *last = st;
  return ok ? st : std::nullopt;
}

three_nodes::three_nodes(const std::string& name) : c(name) {
  head = &c.start_head({}, 1);
  w1 = &c.start_worker("w1", {"--node-name", "it-w1"}, 1);
  w2 = &c.start_worker("w2", {"--node-name", "it-w2"}, 1);
  std::optional<json> last;
  BOOST_REQUIRE_MESSAGE(wait_for_alive(c, 3, 5s, &last),
                        "3 nodes not ALIVE: " << (last ? last->dump(2) : "no status"));
}

json node_list(const json& nodes_output) {
  if (nodes_output.is_array())
    return nodes_output;
  if (nodes_output.is_object() && nodes_output.contains("nodes"))
    return nodes_output["nodes"];
  return json::array();
}

std::optional<json> wait_for_state(const cluster& c, const std::string& node_id,
                                   const std::string& state, milliseconds timeout,
                                   milliseconds poll) {
  std::optional<json> hit;
  wait_until(
      [&] {
        auto st = c.try_status();
        if (st && node_state(*st, node_id) == state) {
          hit = std::move(st);
          return true;
        }
        return false;
      },
      timeout, poll);
  return hit;
}

bool current_test_failed() {
  using namespace boost::unit_test;
  try {
    const test_case& tc = framework::current_test_case();
    const test_results& r = results_collector.results(tc.p_id);
    return r.p_assertions_failed > 0 || r.p_aborted;
  } catch (...) {
    return false;
  }
}

// --- files, foreign processes, raw sockets ---------------------------------

bool write_file(const std::string& path, const std::string& content) {
  std::ofstream out(path, std::ios::binary | std::ios::trunc);
  out << content;
  out.close();
  return static_cast<bool>(out);
}

uint64_t process_start_ticks(pid_t pid) {
  if (pid <= 0)
    return 0;
  std::string stat = read_file("/proc/" + std::to_string(pid) + "/stat");
  auto rp = stat.rfind(')');
  if (rp == std::string::npos)
    return 0;
  // Fields after "(comm)": 3 state, 4 ppid, ... 22 starttime.
  std::istringstream in(stat.substr(rp + 2));
  std::string field;
  for (int i = 3; i <= 22; ++i)
    if (!(in >> field))
      return 0;
  try {
    return std::stoull(field);
  } catch (...) {
    return 0;
  }
}

stray_guard::~stray_guard() {
  for (const auto& [pid, ticks] : procs_)
    if (pid_alive(pid) && process_start_ticks(pid) == ticks)
      ::kill(pid, SIGKILL);
}

void stray_guard::add(pid_t pid) {
  uint64_t ticks = process_start_ticks(pid);
  if (pid > 0 && ticks != 0)
    procs_.emplace_back(pid, ticks);
}

std::string cmdline_of(pid_t pid) {
  std::string s = read_file("/proc/" + std::to_string(pid) + "/cmdline");
  for (auto& ch : s)
    if (ch == '\0')
      ch = ' ';
  return s;
}

std::vector<pid_t> processes_mentioning(const std::string& needle) {
  std::vector<pid_t> out;
  std::error_code ec;
  for (auto it = fs::directory_iterator("/proc", ec); !ec && it != fs::directory_iterator();
       it.increment(ec)) {
    const std::string n = it->path().filename().string();
    if (n.empty() || n.find_first_not_of("0123456789") != std::string::npos)
      continue;
    pid_t pid = static_cast<pid_t>(std::stol(n));
    if (pid == ::getpid())
      continue;
    if (cmdline_of(pid).find(needle) != std::string::npos && pid_alive(pid))
      out.push_back(pid);
  }
  return out;
}

int tcp_connect(const std::string& address) {
  auto colon = address.rfind(':');
  if (colon == std::string::npos)
    return -1;
  sockaddr_in addr{};
  addr.sin_family = AF_INET;
  addr.sin_port = htons(port_of(address));
  if (::inet_pton(AF_INET, address.substr(0, colon).c_str(), &addr.sin_addr) != 1)
    return -1;
  int fd = ::socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
  if (fd < 0)
    return -1;
  if (::connect(fd, reinterpret_cast<sockaddr*>(&addr), sizeof(addr)) != 0) {
    ::close(fd);
    return -1;
  }
  return fd;
}

bool send_all(int fd, const std::string& data) {
  size_t done = 0;
  while (done < data.size()) {
    ssize_t n = ::send(fd, data.data() + done, data.size() - done, MSG_NOSIGNAL);
    if (n < 0 && errno == EINTR)
      continue;
    if (n <= 0)
      return false;
    done += static_cast<size_t>(n);
  }
  return true;
}

// --- job helpers -----------------------------------------------------------

std::optional<json> try_job_status(const cluster& c, const std::string& id) {
  exec_result r = c.rayctl({"job", "status", id, "--json"});
  if (r.exit_code != 0)
    return std::nullopt;
  json j = json::parse(r.out, nullptr, false);
  if (j.is_discarded() || !j.is_object() || !j.contains("status"))
    return std::nullopt;
  return j;
}

std::optional<json> wait_job(const cluster& c, const std::string& id,
                             const std::function<bool(const json&)>& pred, milliseconds timeout,
                             json* last) {
  std::optional<json> hit;
  wait_until(
      [&] {
        auto st = try_job_status(c, id);
        if (st && last != nullptr)
          *last = *st;
        if (st && pred(*st)) {
          hit = std::move(st);
          return true;
        }
        return false;
      },
      timeout, 20ms);
  return hit;
}

std::optional<json> wait_job_state(const cluster& c, const std::string& id,
                                   const std::string& state, milliseconds timeout, json* last) {
  return wait_job(
      c, id, [&state](const json& j) { return j.value("status", std::string()) == state; },
      timeout, last);
}

std::optional<std::vector<std::string>> try_job_ids(const cluster& c) {
  exec_result r = c.rayctl({"job", "list", "--json"});
  if (r.exit_code != 0)
    return std::nullopt;
  json j = json::parse(r.out, nullptr, false);
  if (j.is_discarded() || !j.is_array())
    return std::nullopt;
  std::vector<std::string> ids;
  for (const auto& e : j)
    ids.push_back(e.value("submission_id", std::string()));
  return ids;
}

pid_t parent_pid(pid_t pid) {
  std::string stat = read_file("/proc/" + std::to_string(pid) + "/stat");
  auto rp = stat.rfind(')');
  if (rp == std::string::npos)
    return -1;
  std::istringstream in(stat.substr(rp + 2));
  char state;
  pid_t ppid = -1;
  in >> state >> ppid;
  return ppid;
}

json require_job_state(const cluster& c, const std::string& id, const std::string& state,
                       milliseconds timeout) {
  json last;
  auto st = wait_job_state(c, id, state, timeout, &last);
  BOOST_REQUIRE_MESSAGE(st.has_value(), "job " << id << " not " << state << " within "
                                               << timeout.count() << " ms; last status: "
                                               << (last.is_null() ? "none" : last.dump(2)));
  return *st;
}

}  // namespace rayd::integration
