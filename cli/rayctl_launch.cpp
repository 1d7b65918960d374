// rayctl up / down / exec / attach / get-head-address: the cluster launcher
// (docs/autoscaler.md, "The launcher"). The logic is in autoscale/launcher.hpp;
// this file prints progress, asks for confirmation and reads the head's API.

#include <unistd.h>

#include <cerrno>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <algorithm>
#include <fstream>
#include <iostream>
#include <sstream>
#include <thread>

#include "autoscale/detached_process.hpp"
#include "autoscale/launcher.hpp"
#include "cli/rayctl.hpp"
#include "common/error.hpp"
#include "common/session.hpp"
#include "schemas/api_client.hpp"

namespace rayd::cli {

namespace {

using namespace rayd::autoscale;
using clock_type = std::chrono::steady_clock;

/// Exit codes: 0 ok, 1 runtime failure, 2 usage (bad config, refused prompt).
constexpr int exit_failure = 1;
constexpr int exit_usage = 2;

/// A config error is printed exactly as the parser words it (it names the
/// file, line and key); a bad config is a usage error.
int config_failed(const caf::error& err) {
  std::cerr << describe(err) << std::endl;
  return code_of(err) == errc::invalid_argument || code_of(err) == errc::not_found
           ? exit_usage
           : exit_failure;
}

/// The cluster's launcher lock, saying so while another up/down holds it.
caf::expected<autoscale::launcher_lock> lock_cluster(const autoscale::cluster_paths& p,
                                                    const std::string& cluster_name) {
  return autoscale::launcher_lock::acquire(p, [&cluster_name] {
    std::cout << "waiting for another rayctl up/down of cluster '" << cluster_name
              << "' to finish" << std::endl;
  });
}

int failed(const std::string& cmd, const std::string& msg) {
  std::cerr << "rayctl " << cmd << ": " << msg << std::endl;
  return exit_failure;
}

/// Asks `question [y/N]` on a terminal. 0: go on; otherwise the exit code.
/// Without a terminal (scripts, CI) only --yes proceeds.
int confirm(const std::string& cmd, const std::string& question, bool yes) {
  if (yes)
    return 0;
  if (!::isatty(STDIN_FILENO)) {
    std::cerr << "rayctl " << cmd << ": stdin is not a terminal, so there is no one to "
              << "confirm \"" << question << "\"; pass --yes to proceed without asking"
              << std::endl;
    return exit_usage;
  }
  std::cout << question << " [y/N] " << std::flush;
  std::string answer;
  if (!std::getline(std::cin, answer) || (answer != "y" && answer != "Y" && answer != "yes")) {
    std::cout << "aborted: nothing changed" << std::endl;
    return exit_failure;
  }
  return 0;
}

std::string type_summary(const cluster_config& cfg) {
  std::string s;
  for (auto& [name, t] : cfg.autoscaling.node_types)
    if (t.min_workers > 0)
      s += (s.empty() ? "" : ", ") + std::to_string(t.min_workers) + " of type " + name;
  return s;
}

bool any_min_workers(const cluster_config& cfg) {
  for (auto& [name, t] : cfg.autoscaling.node_types)
    if (t.min_workers > 0)
      return true;
  return false;
}

/// The whole file ("" if unreadable).
std::string read_text(const std::string& path) {
  std::ifstream in{path, std::ios::binary};
  std::ostringstream buf;
  buf << in.rdbuf();
  return buf.str();
}

/// The running head's node.json; not_found when no head runs, unavailable
/// while it is still starting.
caf::expected<node_file> running_head(const cluster_config& cfg, const cluster_paths& p) {
  auto h = find_head(p);
  if (!h)
    return make_error(errc::not_found, "no head of cluster '" + cfg.cluster_name
                                         + "' runs on this host (start it with: rayctl "
                                           "up CONFIG)");
  if (!h->node)
    return make_error(errc::unavailable, "the head of cluster '" + cfg.cluster_name
                                           + "' is still starting (pid "
                                           + std::to_string(h->pid) + "); try again");
  return *h->node;
}

/// The head's nodes through its API; reconnects after a failed call.
class node_fetcher {
 public:
  node_fetcher(std::string api, std::string token_file)
    : api_(std::move(api)), token_file_(std::move(token_file)) {}

  caf::expected<std::vector<node_view>> operator()() {
    if (!client_) {
      auto c = connect(rayctl_target{api_, "", token_file_});
      if (!c)
        return c.error();
      client_ = std::move(*c);
    }
    auto v = client_->status();
    if (!v) {
      client_.reset();
      return v.error();
    }
    std::vector<node_view> out;
    for (auto& n : v->nodes)
      out.push_back({n.is_head, n.get_state() == node_state::alive, n.labels});
    return out;
  }

 private:
  std::string api_;
  std::string token_file_;
  std::unique_ptr<rpc::client> client_;
};

/// Applies CONFIG to a cluster whose head runs: nothing when unchanged, else
/// prints the differences, asks, and replaces the state copy the head reads.
int apply_config(const launch_options& o, const launcher_config& lc, const cluster_paths& p,
                 const node_file& head, clock_type::time_point deadline) {
  auto old_text = read_text(p.config);
  if (old_text == lc.text) {
    std::cout << "config unchanged" << std::endl;
    return 0;
  }
  std::vector<config_difference> diffs;
  auto old_cfg = parse_cluster_config(old_text, p.config);
  if (!old_cfg) {
    std::cout << "config changed: the running copy " << p.config << " is missing or invalid ("
              << describe(old_cfg.error()) << ")" << std::endl;
  } else {
    diffs = diff_configs(*old_cfg, lc.config);
    if (diffs.empty())
      std::cout << "config file changed, no setting did (comments or layout)" << std::endl;
    else
      std::cout << "config changed:" << std::endl;
    for (auto& d : diffs)
      std::cout << "  " << to_string(d) << std::endl;
  }
  if (auto code = confirm("up", "Apply the changed config to the running cluster '"
                                  + lc.config.cluster_name + "'?",
                          o.yes))
    return code;
  // The autoscaler's round count before the replace: two more completed
  // rounds mean the head has read the new file (it checks every round).
  auto client = connect(rayctl_target{head.api_address, "", p.token_file});
  std::optional<int64_t> rounds_before;
  if (client)
    if (auto st = (*client)->autoscaler_status(); st && *st)
      if (auto x = parse_autoscaler_progress(**st))
        rounds_before = x->rounds;
  if (auto err = replace_file(p.config, lc.text))
    return failed("up", describe(err));
  std::cout << "applied: replaced " << p.config << std::endl;
  if (!rounds_before) {
    std::cout << "note: the head's autoscaler status could not be read; it re-reads the file "
                 "each round (its rayd.log reports the reload)"
              << std::endl;
    return 0;
  }
  auto until = std::min(deadline, clock_type::now() + std::chrono::seconds{15});
  for (;;) {
    auto st = (*client)->autoscaler_status();
    std::optional<autoscaler_progress> x;
    if (st && *st)
      if (auto parsed = parse_autoscaler_progress(**st))
        x = *parsed;
    if (x && x->rounds >= *rounds_before + 2) {
      if (!x->config_error.empty()) {
        // The copy goes back to what the head runs with, so a re-run shows
        // (and retries) the same change instead of "config unchanged".
        static_cast<void>(replace_file(p.config, old_text));
        return failed("up", "the head read the new config but keeps the old one in force: "
                              + x->config_error);
      }
      std::cout << "the head reloaded the config" << std::endl;
      return 0;
    }
    if (clock_type::now() >= until) {
      std::cout << "note: the head has not confirmed the reload yet (autoscaler round "
                << (x ? x->rounds : -1) << "); its rayd.log reports it" << std::endl;
      return 0;
    }
    std::this_thread::sleep_for(std::chrono::milliseconds{100});
  }
}

} // namespace

int rayctl_up(const launch_options& o) {
  auto lc = read_launcher_config(o.config);
  if (!lc)
    return config_failed(lc.error());
  auto& cfg = lc->config;
  auto p = cluster_paths::of(rayd_tmpdir(), cfg.cluster_name);
  auto deadline = clock_type::now()
                  + std::chrono::milliseconds{static_cast<int64_t>(o.timeout_s * 1000)};
  head_options ho;
  ho.rayd_binary = binary_next_to_self("rayd");
  std::cout << "cluster '" << cfg.cluster_name << "' (provider processes), state in " << p.root
            << std::endl;
  auto head = find_head(p);
  if (!head) {
    std::string what = "Start cluster '" + cfg.cluster_name + "' on this host: a head of type '"
                       + cfg.autoscaling.head_node_type + "'";
    auto workers = type_summary(cfg);
    what += workers.empty() ? " (no min_workers)?" : " and min_workers " + workers + "?";
    if (auto code = confirm("up", what, o.yes))
      return code;
  }
  {
    auto lock = lock_cluster(p, cfg.cluster_name);
    if (!lock)
      return failed("up", describe(lock.error()));
    head = find_head(p); // another launcher may have started one meanwhile
    if (head && !head->node) {
      std::cout << "a head is starting (pid " << head->pid << "); waiting for it" << std::endl;
      auto nf = wait_head_ready(p, *head, deadline);
      if (!nf)
        return failed("up", describe(nf.error()));
      head->node = *nf;
    }
    if (head) {
      std::cout << "head already running (pid " << head->pid << ") at "
                << head->node->api_address << std::endl;
      if (auto code = apply_config(o, *lc, p, *head->node, deadline))
        return code;
    } else {
      if (auto old = read_node_file(p.head_dir); old && old->pid > 0)
        std::cout << "the head recorded in " << p.head_dir << " (pid " << old->pid
                  << ") no longer runs; starting a new one over its storage (the cluster "
                     "resumes: same id, its workers rejoin)"
                  << std::endl;
      if (auto err = replace_file(p.config, lc->text))
        return failed("up", describe(err));
      ho.autoscaling = rayd_supports_autoscaling(ho.rayd_binary);
      if (!ho.autoscaling)
        std::cout << "note: " << ho.rayd_binary
                  << " has no --autoscaling-config: the head runs no autoscaler and "
                     "launches no workers"
                  << std::endl;
      auto spawned = spawn_head(cfg, p, ho);
      if (!spawned)
        return failed("up", describe(spawned.error()));
      std::cout << "starting the head (pid " << spawned->pid << "); its output goes to "
                << p.head_dir << "/rayd.out and rayd.err" << std::endl;
      auto nf = wait_head_ready(p, *spawned, deadline);
      if (!nf)
        return failed("up", describe(nf.error()));
      spawned->node = *nf;
      head = *spawned;
      std::cout << "head started at " << nf->api_address << " (pid " << nf->pid
                << ", cluster port " << nf->cluster_address << ")" << std::endl;
    }
  }
  // -- wait for min_workers (the lock is released: `down` may interrupt) --------
  if (any_min_workers(cfg)) {
    if (!head_runs_autoscaler(head->pid))
      return failed("up", "min_workers (" + type_summary(cfg) + ") cannot be launched: the "
                            "head (pid " + std::to_string(head->pid)
                            + ") runs no autoscaler (it was started without "
                              "--autoscaling-config"
                            + (rayd_supports_autoscaling(ho.rayd_binary)
                                 ? std::string{"; restart it: rayctl down, then rayctl up)"}
                                 : ", which " + ho.rayd_binary + " does not have)"));
    std::cout << "waiting up to " << o.timeout_s << "s (--timeout) for min_workers: "
              << type_summary(cfg) << std::endl;
    wait_hooks hooks;
    auto fetcher = std::make_shared<node_fetcher>(head->node->api_address, p.token_file);
    hooks.fetch_nodes = [fetcher] { return (*fetcher)(); };
    hooks.launched = [&cfg] {
      std::map<std::string, int32_t> out;
      if (auto ws = list_workers(cfg))
        for (auto& w : *ws)
          if (w.live)
            ++out[w.node_type];
      return out;
    };
    auto pid = head->pid;
    auto ticks = head->start_ticks;
    hooks.head_alive = [pid, ticks] { return process_start_ticks(pid) == ticks; };
    hooks.on_line = [](const std::string& line) { std::cout << line << std::endl; };
    if (auto err = wait_for_min_workers(cfg.autoscaling, hooks, deadline)) {
      std::string hint;
      if (code_of(err) == errc::unavailable)
        hint = "\n--- " + p.head_dir + "/rayd.err (last lines) ---\n"
               + tail_of(p.head_dir + "/rayd.err", 15);
      else
        hint = "\n(the head's log: " + p.head_dir + "/rayd.log; workers' output: "
               + rayd_tmpdir() + "/autoscaler/" + cfg.cluster_name + "/<instance>/rayd.err)";
      return failed("up", describe(err) + hint);
    }
  }
  std::cout << "cluster '" << cfg.cluster_name << "' is up: head API " << head->node->api_address
            << "\n  rayctl exec " << o.config << " -- rayctl status"
            << "\n  rayctl attach " << o.config << "\n  rayctl down " << o.config << std::endl;
  return 0;
}

int rayctl_down(const launch_options& o) {
  auto lc = read_launcher_config(o.config);
  if (!lc)
    return config_failed(lc.error());
  auto& cfg = lc->config;
  auto p = cluster_paths::of(rayd_tmpdir(), cfg.cluster_name);
  auto head = find_head(p);
  int32_t live = 0;
  auto workers = list_workers(cfg);
  if (workers)
    for (auto& w : *workers)
      live += w.live ? 1 : 0;
  if (!head && live == 0) {
    // Dead records of an earlier run are forgotten quietly.
    auto r = stop_cluster(cfg, p, std::chrono::seconds{10}, nullptr);
    if (r.workers_error)
      return failed("down", describe(r.workers_error));
    std::cout << "cluster '" << cfg.cluster_name << "': nothing to stop" << std::endl;
    return 0;
  }
  std::string what = "Stop cluster '" + cfg.cluster_name + "':";
  what += head ? " the head (pid " + std::to_string(head->pid) + ")" : " (no head)";
  what += " and " + std::to_string(live) + " worker" + (live == 1 ? "" : "s") + "?";
  if (auto code = confirm("down", what, o.yes))
    return code;
  auto lock = lock_cluster(p, cfg.cluster_name);
  if (!lock)
    return failed("down", describe(lock.error()));
  auto r = stop_cluster(cfg, p, std::chrono::seconds{10}, [](const stop_target& t) {
    std::cerr << "rayctl down: " << t.what << " ignored SIGTERM; sending SIGKILL" << std::endl;
  });
  int code = 0;
  if (r.head) {
    std::cout << "stopped " << r.head->target.what << (r.head->killed ? " (SIGKILL)" : "")
              << std::endl;
    if (r.head->still_alive)
      code = failed("down", r.head->target.what + " is still running after SIGKILL");
  }
  for (auto& w : r.workers)
    std::cout << "stopped worker " << w.id << " (type " << w.node_type
              << (w.pid > 0 ? ", pid " + std::to_string(w.pid) : std::string{}) << ")"
              << std::endl;
  if (r.workers_error)
    code = failed("down", describe(r.workers_error));
  if (code == 0)
    std::cout << "cluster '" << cfg.cluster_name << "' is down (kept: " << p.root
              << ", with the head's logs and storage)" << std::endl;
  return code;
}

int rayctl_get_head_address(const std::string& config) {
  auto cfg = load_launcher_config(config);
  if (!cfg)
    return config_failed(cfg.error());
  auto p = cluster_paths::of(rayd_tmpdir(), cfg->cluster_name);
  auto head = running_head(*cfg, p);
  if (!head)
    return failed("get-head-address", describe(head.error()));
  std::cout << head->api_address << std::endl;
  return 0;
}

namespace {

/// Puts the head's environment in place and moves to its session dir; the
/// caller then execs. Exit code on failure, else 0.
int enter_head(const std::string& cmd, const std::string& config, std::string* api) {
  auto cfg = load_launcher_config(config);
  if (!cfg)
    return config_failed(cfg.error());
  auto p = cluster_paths::of(rayd_tmpdir(), cfg->cluster_name);
  auto head = running_head(*cfg, p);
  if (!head)
    return failed(cmd, describe(head.error()));
  for (auto& [name, value] : head_environment(*head, p)) {
    if (value)
      ::setenv(name.c_str(), value->c_str(), 1);
    else
      ::unsetenv(name.c_str());
  }
  // rayctl and rayd of this installation come first, so `rayctl status` on
  // the head talks to it with the matching version.
  auto self = binary_next_to_self("rayctl");
  if (auto slash = self.rfind('/'); slash != std::string::npos) {
    std::string path = self.substr(0, slash);
    if (auto env = std::getenv("PATH"); env != nullptr && *env != '\0')
      path += std::string{":"} + env;
    ::setenv("PATH", path.c_str(), 1);
  }
  if (::chdir(p.head_dir.c_str()) != 0)
    return failed(cmd, "cannot enter " + p.head_dir + ": " + std::strerror(errno));
  *api = head->api_address;
  return 0;
}

} // namespace

int rayctl_exec(const std::string& config, const std::vector<std::string>& command) {
  if (command.empty()) {
    std::cerr << "rayctl exec: no command given: rayctl exec CONFIG -- COMMAND..." << std::endl;
    return exit_usage;
  }
  std::string api;
  if (auto code = enter_head("exec", config, &api))
    return code;
  std::cout.flush();
  std::cerr.flush();
  // One word is a shell command line (as `rayctl job submit`); several are a
  // program and its arguments. exec: the exit code is the command's own.
  if (command.size() == 1) {
    ::execl("/bin/sh", "sh", "-c", command[0].c_str(), static_cast<char*>(nullptr));
  } else {
    std::vector<char*> argv;
    for (auto& a : command)
      argv.push_back(const_cast<char*>(a.c_str()));
    argv.push_back(nullptr);
    ::execvp(argv[0], argv.data());
  }
  std::cerr << "rayctl exec: cannot run " << command[0] << ": " << std::strerror(errno)
            << std::endl;
  return 127;
}

int rayctl_attach(const std::string& config) {
  std::string api;
  if (auto code = enter_head("attach", config, &api))
    return code;
  std::string shell = "/bin/bash";
  if (auto env = std::getenv("SHELL"); env != nullptr && *env != '\0')
    shell = env;
  std::cerr << "rayctl attach: a shell on the head (RAYD_ADDRESS=" << api
            << "; rayctl talks to it); exit to leave" << std::endl;
  ::execl(shell.c_str(), shell.c_str(), "-i", static_cast<char*>(nullptr));
  std::cerr << "rayctl attach: cannot run " << shell << ": " << std::strerror(errno)
            << std::endl;
  return 127;
}

} // namespace rayd::cli
