#include "autoscale/launcher.hpp"

#include <algorithm>
#include <cerrno>
#include <cstdio>
#include <cstring>
#include <fstream>
#include <sstream>
#include <thread>

#include <fcntl.h>
#include <sys/file.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include <nlohmann/json.hpp>

#include "autoscale/detached_process.hpp"
#include "autoscale/processes_provider.hpp"
#include "common/error.hpp"

namespace rayd::autoscale {

namespace {

using json = nlohmann::json;
using clock_type = std::chrono::steady_clock;

std::string errno_text(const std::string& what) {
  return what + ": " + std::strerror(errno);
}

// --- compact value printing (diffs, messages) --------------------------------

// Whole numbers without a fraction ("2", not "2.0"); others as JSON prints them.
std::string number_text(double x) {
  if (x == static_cast<double>(static_cast<int64_t>(x)) && x > -1e15 && x < 1e15)
    return std::to_string(static_cast<int64_t>(x));
  return json(x).dump();
}

std::string map_text(const std::map<std::string, double>& m) {
  std::string s = "{";
  for (auto& [k, v] : m)
    s += (s.size() > 1 ? ", " : "") + k + ": " + number_text(v);
  return s + "}";
}

std::string map_text(const std::map<std::string, std::string>& m) {
  std::string s = "{";
  for (auto& [k, v] : m)
    s += (s.size() > 1 ? ", " : "") + k + ": " + v;
  return s + "}";
}

std::string seconds_text(std::chrono::milliseconds d) {
  return number_text(static_cast<double>(d.count()) / 1000.0) + "s";
}

// Long values (commands, node_config) are cut so one difference stays a line.
std::string shorten(std::string s) {
  constexpr size_t limit = 100;
  if (s.size() > limit)
    s = s.substr(0, limit - 3) + "...";
  return s;
}

std::string list_text(const std::vector<std::string>& xs) {
  return shorten(json(xs).dump());
}

std::string provider_text(const provider_config& p) {
  std::string s = std::string{"{type: "} + to_string(p.type);
  if (p.type == provider_kind::fake)
    s += ", launch_delay_s: " + number_text(p.fake.launch_delay_s)
         + ", failure_rate: " + number_text(p.fake.failure_rate);
  if (p.type == provider_kind::command)
    s += ", command: " + p.command.command + ", timeout_s: " + number_text(p.command.timeout_s);
  return s + "}";
}

std::string node_type_text(const node_type_config& t) {
  return "{resources: " + map_text(t.resources) + ", labels: " + map_text(t.labels)
         + ", min_workers: " + std::to_string(t.min_workers)
         + ", max_workers: " + std::to_string(t.max_workers) + "}";
}

// --- small file helpers ---------------------------------------------------------

std::uintmax_t file_size_or_zero(const std::string& path) {
  struct stat st {};
  return ::stat(path.c_str(), &st) == 0 ? static_cast<std::uintmax_t>(st.st_size) : 0;
}

// The last `lines` lines of `path` from byte `offset` on.
std::string tail_from(const std::string& path, std::uintmax_t offset, size_t lines) {
  std::ifstream in{path, std::ios::binary};
  if (!in)
    return {};
  in.seekg(0, std::ios::end);
  auto size = static_cast<std::uintmax_t>(in.tellg());
  // Only the last 64 KiB matter for a tail.
  auto from = std::max<std::uintmax_t>(offset, size > 65536 ? size - 65536 : 0);
  if (from >= size)
    return {};
  in.seekg(static_cast<std::streamoff>(from));
  std::string text((std::istreambuf_iterator<char>(in)), std::istreambuf_iterator<char>());
  while (!text.empty() && text.back() == '\n')
    text.pop_back();
  size_t pos = text.size();
  for (size_t n = 0; n < lines && pos != std::string::npos && pos > 0; ++n)
    pos = text.rfind('\n', pos - 1);
  return pos == std::string::npos || pos == 0 ? text : text.substr(pos + 1);
}

// The diagnostics of a head that failed to start: the tails of its stderr
// (this start's part) and of its log.
std::string head_output(const cluster_paths& p, std::uintmax_t err_offset) {
  std::string s;
  auto err = tail_from(p.head_dir + "/rayd.err", err_offset, 15);
  if (!err.empty())
    s += "\n--- " + p.head_dir + "/rayd.err (last lines) ---\n" + err;
  else
    s += "\n(" + p.head_dir + "/rayd.err is empty)";
  auto log = tail_of(p.head_dir + "/rayd.log", 5);
  if (!log.empty())
    s += "\n--- " + p.head_dir + "/rayd.log (last lines) ---\n" + log;
  return s;
}

} // namespace

// --- state paths -------------------------------------------------------------------

cluster_paths cluster_paths::of(const std::string& tmpdir, const std::string& name) {
  cluster_paths p;
  p.root = tmpdir + "/clusters/" + name;
  p.config = p.root + "/cluster.yaml";
  p.head_pid = p.root + "/head.json";
  p.lock = p.root + "/launcher.lock";
  p.head_dir = p.root + "/head";
  p.token_file = p.head_dir + "/auth_token";
  return p;
}

caf::expected<launcher_lock> launcher_lock::acquire(const cluster_paths& p,
                                                    const std::function<void()>& on_wait) {
  if (auto err = ensure_dir(p.root))
    return err;
  int fd = ::open(p.lock.c_str(), O_RDWR | O_CREAT | O_CLOEXEC, 0600);
  if (fd < 0)
    return make_error(errc::storage_error, errno_text("cannot open " + p.lock));
  if (::flock(fd, LOCK_EX | LOCK_NB) != 0) {
    if (errno != EWOULDBLOCK) {
      auto err = make_error(errc::storage_error, errno_text("cannot lock " + p.lock));
      ::close(fd);
      return err;
    }
    if (on_wait)
      on_wait();
    while (::flock(fd, LOCK_EX) != 0) {
      if (errno == EINTR)
        continue;
      auto err = make_error(errc::storage_error, errno_text("cannot lock " + p.lock));
      ::close(fd);
      return err;
    }
  }
  return launcher_lock{fd};
}

launcher_lock::launcher_lock(launcher_lock&& other) noexcept : fd_(other.fd_) {
  other.fd_ = -1;
}

launcher_lock& launcher_lock::operator=(launcher_lock&& other) noexcept {
  if (this != &other) {
    if (fd_ >= 0)
      ::close(fd_);
    fd_ = other.fd_;
    other.fd_ = -1;
  }
  return *this;
}

launcher_lock::~launcher_lock() {
  if (fd_ >= 0)
    ::close(fd_); // releases the flock
}

// --- config -------------------------------------------------------------------------

namespace {

// What the launcher needs beyond a valid config: its provider, and a cluster
// name that is a directory of its own (the parser allows '.' and '..').
caf::error check_provider(const cluster_config& cfg, const std::string& path) {
  if (cfg.cluster_name == "." || cfg.cluster_name == "..")
    return make_error(errc::invalid_argument,
                      path + ": cluster_name: '" + cfg.cluster_name
                        + "' cannot name the cluster's state directory");
  if (cfg.provider.type != provider_kind::processes)
    return make_error(errc::invalid_argument,
                      path + ": provider.type: the launcher supports the 'processes' "
                             "provider for now (this config has '"
                        + to_string(cfg.provider.type) + "')");
  return caf::none;
}

} // namespace

caf::expected<cluster_config> load_launcher_config(const std::string& path) {
  auto cfg = load_cluster_config(path);
  if (!cfg)
    return cfg.error();
  if (auto err = check_provider(*cfg, path))
    return err;
  return cfg;
}


caf::expected<launcher_config> read_launcher_config(const std::string& path) {
  constexpr std::uintmax_t max_size = 16u << 20; // the parser's limit
  std::ifstream in{path, std::ios::binary};
  std::string text;
  if (in && file_size_or_zero(path) <= max_size) {
    std::ostringstream buf;
    buf << in.rdbuf();
    if (in.good() || in.eof())
      text = buf.str();
    else
      in.setstate(std::ios::failbit);
  }
  if (!in || text.size() > max_size) {
    // The parser's own message for a file it cannot read or will not take.
    auto cfg = load_launcher_config(path);
    if (!cfg)
      return cfg.error();
    return make_error(errc::not_found, path + ": cannot read the cluster config");
  }
  auto cfg = parse_cluster_config(text, path);
  if (!cfg)
    return cfg.error();
  if (auto err = check_provider(*cfg, path))
    return err;
  return launcher_config{std::move(text), std::move(*cfg)};
}

std::vector<config_difference> diff_configs(const cluster_config& a, const cluster_config& b) {
  std::vector<config_difference> out;
  auto add = [&out](std::string key, std::string before, std::string after,
                    bool restart = false) {
    if (before != after)
      out.push_back({std::move(key), std::move(before), std::move(after), restart});
  };
  auto& x = a.autoscaling;
  auto& y = b.autoscaling;
  add("cluster_name", a.cluster_name, b.cluster_name);
  add("max_workers", std::to_string(x.max_workers), std::to_string(y.max_workers));
  add("upscaling_speed", number_text(x.upscaling_speed), number_text(y.upscaling_speed));
  add("idle_timeout", seconds_text(x.idle_timeout), seconds_text(y.idle_timeout));
  add("provider", provider_text(a.provider), provider_text(b.provider));
  add("auth", map_text(std::map<std::string, std::string>{
                {"ssh_user", a.auth.ssh_user}, {"ssh_private_key", a.auth.ssh_private_key}}),
      map_text(std::map<std::string, std::string>{
        {"ssh_user", b.auth.ssh_user}, {"ssh_private_key", b.auth.ssh_private_key}}));
  add("head_node_type", x.head_node_type, y.head_node_type, true);
  add("file_mounts", shorten(map_text(a.file_mounts)), shorten(map_text(b.file_mounts)));
  add("setup_commands", list_text(a.setup_commands), list_text(b.setup_commands));
  add("head_start_rayd_commands", list_text(a.head_start_rayd_commands),
      list_text(b.head_start_rayd_commands));
  add("worker_start_rayd_commands", list_text(a.worker_start_rayd_commands),
      list_text(b.worker_start_rayd_commands));
  // Node types: the union of names, in order.
  std::vector<std::string> names;
  for (auto& [name, _] : x.node_types)
    names.push_back(name);
  for (auto& [name, _] : y.node_types)
    if (x.node_types.count(name) == 0)
      names.push_back(name);
  std::sort(names.begin(), names.end());
  for (auto& name : names) {
    auto key = "available_node_types." + name;
    auto i = x.node_types.find(name);
    auto j = y.node_types.find(name);
    if (i == x.node_types.end()) {
      add(key, "", node_type_text(j->second));
      continue;
    }
    if (j == y.node_types.end()) {
      add(key, node_type_text(i->second), "");
      continue;
    }
    auto& s = i->second;
    auto& t = j->second;
    // The head was started with its type's resources and labels.
    bool head = name == y.head_node_type && name == x.head_node_type;
    add(key + ".resources", map_text(s.resources), map_text(t.resources), head);
    add(key + ".labels", map_text(s.labels), map_text(t.labels), head);
    add(key + ".min_workers", std::to_string(s.min_workers), std::to_string(t.min_workers));
    add(key + ".max_workers", std::to_string(s.max_workers), std::to_string(t.max_workers));
    add(key + ".node_config", shorten(s.node_config_json), shorten(t.node_config_json));
  }
  return out;
}

std::string to_string(const config_difference& d) {
  std::string s = d.key + ": ";
  if (d.before.empty())
    s += "added " + d.after;
  else if (d.after.empty())
    s += "removed (was " + d.before + ")";
  else
    s += d.before + " -> " + d.after;
  if (d.needs_head_restart)
    s += " (the running head keeps its own until it restarts: rayctl down, then rayctl up)";
  return s;
}

caf::expected<autoscaler_progress> parse_autoscaler_progress(const std::string& status_json) {
  auto j = json::parse(status_json, nullptr, false);
  if (j.is_discarded() || !j.is_object() || !j.contains("round") || !j["round"].is_object()
      || !j["round"].contains("count") || !j["round"]["count"].is_number_integer())
    return make_error(errc::invalid_argument, "not an autoscaler status (no round.count)");
  autoscaler_progress out;
  out.rounds = j["round"]["count"].get<int64_t>();
  if (j.contains("errors") && j["errors"].is_object() && j["errors"].contains("config")
      && j["errors"]["config"].is_string())
    out.config_error = j["errors"]["config"].get<std::string>();
  return out;
}

caf::error replace_file(const std::string& path, const std::string& text) {
  auto tmp = path + ".tmp." + std::to_string(::getpid());
  int fd = ::open(tmp.c_str(), O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0600);
  if (fd < 0)
    return make_error(errc::storage_error, errno_text("cannot write " + tmp));
  size_t done = 0;
  while (done < text.size()) {
    auto n = ::write(fd, text.data() + done, text.size() - done);
    if (n < 0 && errno == EINTR)
      continue;
    if (n <= 0) {
      auto err = make_error(errc::storage_error, errno_text("cannot write " + tmp));
      ::close(fd);
      ::unlink(tmp.c_str());
      return err;
    }
    done += static_cast<size_t>(n);
  }
  if (::fsync(fd) != 0 || ::close(fd) != 0) {
    auto err = make_error(errc::storage_error, errno_text("cannot write " + tmp));
    ::unlink(tmp.c_str());
    return err;
  }
  if (::rename(tmp.c_str(), path.c_str()) != 0) {
    auto err = make_error(errc::storage_error, errno_text("cannot rename " + tmp));
    ::unlink(tmp.c_str());
    return err;
  }
  return caf::none;
}

// --- the head -----------------------------------------------------------------------

std::optional<head_state> find_head(const cluster_paths& p) {
  if (auto nf = read_node_file(p.head_dir);
      nf && nf->is_head && nf->pid > 0 && nf->pid_start_ticks != 0
      && process_start_ticks(nf->pid) == nf->pid_start_ticks)
    return head_state{nf->pid, nf->pid_start_ticks, std::move(*nf)};
  // A head `up` spawned that has not written its node.json (yet).
  std::ifstream in{p.head_pid};
  if (!in)
    return std::nullopt;
  auto j = json::parse(in, nullptr, false);
  if (j.is_discarded() || !j.is_object())
    return std::nullopt;
  auto pid = j.value("pid", 0);
  auto ticks = j.value("start_ticks", uint64_t{0});
  if (pid <= 0 || ticks == 0 || process_start_ticks(pid) != ticks)
    return std::nullopt;
  return head_state{static_cast<pid_t>(pid), ticks, std::nullopt};
}

std::vector<std::string> head_command(const cluster_config& cfg, const cluster_paths& p,
                                      const head_options& o) {
  auto binary = o.rayd_binary.empty() ? binary_next_to_self("rayd") : o.rayd_binary;
  std::vector<std::string> argv{binary,  "--head", "--block", "--session-dir", p.head_dir,
                                "--port", "0",      "--api-port", "0"};
  if (o.autoscaling)
    argv.insert(argv.end(), {"--autoscaling-config", p.config});
  resource_map resources;
  label_map labels;
  auto t = cfg.autoscaling.node_types.find(cfg.autoscaling.head_node_type);
  if (t != cfg.autoscaling.node_types.end()) {
    resources = t->second.resources;
    labels = t->second.labels;
  }
  labels[label_node_type] = cfg.autoscaling.head_node_type;
  // As the processes provider does for workers: CPU and GPU default to 0, so
  // the head offers what the config says, not the host's cores.
  double cpus = 0;
  double gpus = 0;
  json custom = json::object();
  std::vector<std::string> memory;
  for (auto& [name, amount] : resources) {
    if (name == "CPU")
      cpus = amount;
    else if (name == "GPU")
      gpus = amount;
    else if (name == "memory")
      memory = {"--memory", number_text(amount)};
    else
      custom[name] = amount;
  }
  argv.insert(argv.end(), {"--num-cpus", number_text(cpus), "--num-gpus", number_text(gpus)});
  argv.insert(argv.end(), memory.begin(), memory.end());
  argv.insert(argv.end(),
              {"--resources", custom.dump(), "--labels", json(labels).dump()});
  argv.insert(argv.end(), o.extra_args.begin(), o.extra_args.end());
  return argv;
}

bool rayd_supports_autoscaling(const std::string& rayd_binary) {
  int fds[2];
  if (::pipe2(fds, O_CLOEXEC) != 0)
    return false;
  pid_t pid = ::fork();
  if (pid < 0) {
    ::close(fds[0]);
    ::close(fds[1]);
    return false;
  }
  if (pid == 0) {
    ::dup2(fds[1], 1);
    int null_fd = ::open("/dev/null", O_RDWR);
    if (null_fd >= 0) {
      ::dup2(null_fd, 0);
      ::dup2(null_fd, 2);
    }
    ::execl(rayd_binary.c_str(), rayd_binary.c_str(), "--help", static_cast<char*>(nullptr));
    ::_exit(127);
  }
  ::close(fds[1]);
  std::string out;
  char buf[4096];
  ssize_t n;
  // --help is small; the read ends when rayd exits (or after 1 MiB).
  while (out.size() < (1u << 20)
         && ((n = ::read(fds[0], buf, sizeof(buf))) > 0 || (n < 0 && errno == EINTR)))
    if (n > 0)
      out.append(buf, static_cast<size_t>(n));
  ::close(fds[0]);
  int status = 0;
  while (::waitpid(pid, &status, 0) < 0 && errno == EINTR) {
  }
  return out.find("--autoscaling-config") != std::string::npos;
}

bool head_runs_autoscaler(pid_t pid) {
  std::ifstream in{"/proc/" + std::to_string(pid) + "/cmdline", std::ios::binary};
  std::string arg;
  while (std::getline(in, arg, '\0'))
    if (arg == "--autoscaling-config" || arg.rfind("--autoscaling-config=", 0) == 0)
      return true;
  return false;
}

caf::expected<head_state> spawn_head(const cluster_config& cfg, const cluster_paths& p,
                                     const head_options& o) {
  if (auto err = ensure_dir(p.head_dir))
    return err;
  auto argv = head_command(cfg, p, o);
  // Earlier runs appended to rayd.err: messages show only this run's part.
  auto err_offset = file_size_or_zero(p.head_dir + "/rayd.err");
  auto pid = spawn_detached(argv, p.head_dir, "launcher");
  if (!pid)
    return pid.error();
  head_state h;
  h.pid = *pid;
  h.err_offset = err_offset;
  h.start_ticks = process_start_ticks(*pid);
  if (h.start_ticks == 0)
    return make_error(errc::unavailable, "the head (pid " + std::to_string(*pid)
                                           + ") exited at once" + head_output(p, err_offset));
  json j{{"pid", h.pid}, {"start_ticks", h.start_ticks}, {"argv", argv}};
  if (auto err = replace_file(p.head_pid, j.dump(1) + "\n"))
    return err;
  return h;
}

caf::expected<node_file> wait_head_ready(const cluster_paths& p, const head_state& h,
                                         clock_type::time_point deadline) {
  for (;;) {
    if (auto nf = read_node_file(p.head_dir);
        nf && nf->pid == h.pid && nf->pid_start_ticks == h.start_ticks)
      return std::move(*nf);
    if (process_start_ticks(h.pid) != h.start_ticks)
      return make_error(errc::unavailable, "the head (pid " + std::to_string(h.pid)
                                             + ") exited during start-up"
                                             + head_output(p, h.err_offset));
    if (clock_type::now() >= deadline)
      return make_error(errc::timeout, "the head (pid " + std::to_string(h.pid)
                                         + ") did not write " + p.head_dir
                                         + "/node.json in time; it keeps running"
                                         + head_output(p, h.err_offset));
    std::this_thread::sleep_for(std::chrono::milliseconds{20});
  }
}

std::string tail_of(const std::string& path, size_t lines) {
  return tail_from(path, 0, lines);
}

// --- waiting for min_workers -----------------------------------------------------------

std::vector<type_progress> min_worker_progress(const autoscaling_config& cfg,
                                               const std::vector<node_view>& nodes,
                                               const std::map<std::string, int32_t>& launched) {
  std::vector<type_progress> out;
  for (auto& [name, t] : cfg.node_types) {
    if (t.min_workers <= 0)
      continue;
    type_progress x;
    x.type = name;
    x.wanted = t.min_workers;
    for (auto& n : nodes) {
      if (n.is_head || !n.alive)
        continue;
      auto l = n.labels.find(label_node_type);
      if (l != n.labels.end() && l->second == name)
        ++x.alive;
    }
    if (auto i = launched.find(name); i != launched.end())
      x.launched = i->second;
    out.push_back(std::move(x));
  }
  return out;
}

std::string to_string(const type_progress& x) {
  auto s = x.type + ": " + std::to_string(x.alive) + "/" + std::to_string(x.wanted) + " ALIVE";
  if (x.launched != x.alive || !x.done())
    s += " (" + std::to_string(x.launched) + " launched)";
  return s;
}

caf::error wait_for_min_workers(const autoscaling_config& cfg, const wait_hooks& hooks,
                                clock_type::time_point deadline) {
  if (min_worker_progress(cfg, {}, {}).empty())
    return caf::none; // no type has min_workers
  auto start = clock_type::now();
  std::map<std::string, std::string> shown; // type -> the line printed last
  std::string api_error;
  for (;;) {
    auto nodes = hooks.fetch_nodes();
    std::vector<type_progress> progress;
    if (nodes) {
      api_error.clear();
      progress = min_worker_progress(cfg, *nodes, hooks.launched());
      bool all = true;
      for (auto& x : progress) {
        auto line = to_string(x);
        if (shown[x.type] != line) {
          shown[x.type] = line;
          hooks.on_line(line);
        }
        all = all && x.done();
      }
      if (all)
        return caf::none;
    } else {
      api_error = describe(nodes.error());
    }
    if (!hooks.head_alive())
      return make_error(errc::unavailable, "the head stopped while waiting for min_workers");
    if (clock_type::now() >= deadline) {
      auto waited = std::chrono::duration_cast<std::chrono::seconds>(clock_type::now() - start);
      std::string missing;
      for (auto& x : progress)
        if (!x.done())
          missing += (missing.empty() ? "" : "; ") + to_string(x);
      std::string msg = "waited " + std::to_string(waited.count()) + "s for min_workers: ";
      if (!api_error.empty())
        msg += "the head's API did not answer (" + api_error + ")";
      else
        msg += "missing " + missing;
      return make_error(errc::timeout, msg);
    }
    std::this_thread::sleep_for(hooks.poll);
  }
}

// --- stopping ---------------------------------------------------------------------------

caf::expected<std::vector<worker_instance>> list_workers(const cluster_config& cfg) {
  processes_provider_options o;
  o.cluster_name = cfg.cluster_name;
  processes_provider provider{o};
  auto xs = provider.list();
  if (!xs)
    return xs.error();
  std::vector<worker_instance> out;
  for (auto& x : *xs) {
    worker_instance w;
    w.id = x.instance_id;
    w.node_type = x.node_type;
    w.live = is_live(x.state);
    if (w.live)
      w.pid = provider.pid_of(x.instance_id).value_or(0);
    out.push_back(std::move(w));
  }
  return out;
}

stop_report stop_cluster(const cluster_config& cfg, const cluster_paths& p,
                         std::chrono::milliseconds head_grace,
                         const std::function<void(const stop_target&)>& on_kill) {
  stop_report report;
  // The head first: its autoscaler must not launch while workers go.
  if (auto h = find_head(p)) {
    stop_target t{h->pid, h->start_ticks, "head (pid " + std::to_string(h->pid) + ")", true};
    report.head = stop_processes({t}, head_grace, false, on_kill).front();
  }
  processes_provider_options o;
  o.cluster_name = cfg.cluster_name;
  processes_provider provider{o};
  auto xs = list_workers(cfg);
  if (!xs) {
    report.workers_error = xs.error();
    return report;
  }
  std::vector<std::string> ids;
  for (auto& w : *xs) {
    ids.push_back(w.id); // dead ones too: the provider then forgets them
    if (w.live)
      report.workers.push_back(w);
  }
  report.workers_error = provider.terminate(ids);
  return report;
}

// --- exec / attach -------------------------------------------------------------------------

std::vector<std::pair<std::string, std::optional<std::string>>>
head_environment(const node_file& head, const cluster_paths& p) {
  return {{"RAYD_ADDRESS", head.api_address},
          {"RAYD_TOKEN_FILE", p.token_file},
          {"RAYD_TOKEN", std::nullopt}};
}

} // namespace rayd::autoscale
