// The cluster launcher (`rayctl up/down/exec/attach/get-head-address`,
// docs/autoscaler.md "The launcher") with real rayd processes: up starts one
// head and a re-run never a second, the address works for rayctl, exec runs
// on the head with its environment, a changed config replaces the head's copy,
// bad configs are refused with the parser's line, down stops the head and the
// cluster's workers and nothing else, and is safe when nothing runs.
//
// Workers: the autoscaler on the head launches them through the processes
// provider. Where this rayd has no autoscaler (--autoscaling-config), the test
// launches "the autoscaler's" workers itself through the same provider (same
// cluster name, same base dir), which is exactly what `down` must find.
#define BOOST_TEST_MODULE launcher
#include <boost/test/unit_test.hpp>

#include <fcntl.h>
#include <poll.h>
#include <pty.h>
#include <signal.h>
#include <sys/ioctl.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include <cstdlib>
#include <cstring>
#include <fstream>

#include "autoscale/processes_provider.hpp"
#include "common/error.hpp"
#include "tests/integration/harness.hpp"

using namespace rayd;
using namespace rayd::autoscale;
using namespace rayd::integration;

namespace {

std::string config_text(const std::string& name, int min_workers, int max_workers = 2) {
  return "cluster_name: " + name + R"(
max_workers: )" + std::to_string(max_workers)
         + R"(
provider:
  type: processes
available_node_types:
  head:
    resources: {CPU: 0}
    labels: {role: entry}
  worker:
    resources: {CPU: 1}
    min_workers: )"
         + std::to_string(min_workers) + R"(
head_node_type: head
)";
}

std::string write_config(const cluster& c, const std::string& file, const std::string& text) {
  auto path = c.root() + "/" + file;
  BOOST_REQUIRE(write_file(path, text));
  return path;
}

// rayctl with the cluster's private RAYD_TMPDIR (no address: the launcher's
// commands take CONFIG).
exec_result rayctl(const cluster& c, std::vector<std::string> args, milliseconds timeout = 60s) {
  args.insert(args.begin(), rayctl_bin());
  return run(args, c.base_env(), timeout);
}

// The error of a failed call, "" when it succeeded.
template <class T>
std::string why(const caf::expected<T>& x) {
  return x ? std::string{} : describe(x.error());
}

std::string last_line(const std::string& s) {
  auto lines = nonempty_lines(s);
  return lines.empty() ? std::string{} : lines.back();
}

ino_t inode_of(const std::string& path) {
  struct stat st {};
  return ::stat(path.c_str(), &st) == 0 ? st.st_ino : 0;
}

bool rayd_has_autoscaler() {
  auto r = run({rayd_bin(), "--help"});
  return r.out.find("--autoscaling-config") != std::string::npos;
}

// A node of `status` (rayctl status --json) with label rayd-node-type=type.
int alive_of_type(const json& status, const std::string& type, bool head) {
  int n = 0;
  for (auto& node : status["nodes"])
    if (node.value("state", "") == "ALIVE" && node.value("is_head", false) == head
        && node["labels"].value("rayd-node-type", "") == type)
      ++n;
  return n;
}

std::optional<json> status_via(const cluster& c, const std::string& address) {
  auto r = rayctl(c, {"--address", address, "status", "--json"}, 15s);
  if (r.exit_code != 0)
    return std::nullopt;
  auto j = json::parse(r.out, nullptr, false);
  if (j.is_discarded())
    return std::nullopt;
  return j;
}


// Runs argv with a pseudo-terminal as its stdin/stdout/stderr (so rayctl
// asks), types `answer` once "[y/N]" appears, and returns everything it
// printed and its exit code (-1 on timeout; then it is killed by pid).
struct tty_result {
  int exit_code = -1;
  std::string out;
};

tty_result run_on_tty(const std::vector<std::string>& argv, const env_list& env,
                      const std::string& answer, milliseconds timeout) {
  tty_result res;
  std::vector<std::string> env_strings;
  for (char** e = environ; *e != nullptr; ++e)
    if (std::strncmp(*e, "RAYD_", 5) != 0)
      env_strings.emplace_back(*e);
  for (auto& [k, v] : env)
    env_strings.push_back(k + "=" + v);
  std::vector<char*> envp;
  for (auto& e : env_strings)
    envp.push_back(const_cast<char*>(e.c_str()));
  envp.push_back(nullptr);
  std::vector<char*> args;
  for (auto& a : argv)
    args.push_back(const_cast<char*>(a.c_str()));
  args.push_back(nullptr);
  int master = -1;
  int slave = -1;
  if (::openpty(&master, &slave, nullptr, nullptr, nullptr) != 0)
    return res;
  pid_t pid = ::fork();
  if (pid == 0) {
    ::setsid();
    ::ioctl(slave, TIOCSCTTY, 0);
    ::dup2(slave, 0);
    ::dup2(slave, 1);
    ::dup2(slave, 2);
    ::close(master);
    if (slave > 2)
      ::close(slave);
    ::execve(args[0], args.data(), envp.data());
    ::_exit(127);
  }
  ::close(slave);
  bool answered = false;
  auto deadline = std::chrono::steady_clock::now() + timeout;
  for (;;) {
    pollfd p{master, POLLIN, 0};
    if (::poll(&p, 1, 50) > 0) {
      char buf[4096];
      auto n = ::read(master, buf, sizeof(buf));
      if (n <= 0)
        break; // EIO: every holder of the terminal is gone
      res.out.append(buf, static_cast<size_t>(n));
      if (!answered && res.out.find("[y/N]") != std::string::npos) {
        answered = true;
        auto line = answer + "\n";
        (void) !::write(master, line.data(), line.size());
      }
    }
    if (std::chrono::steady_clock::now() >= deadline) {
      ::kill(pid, SIGKILL);
      break;
    }
  }
  ::close(master);
  int status = 0;
  ::waitpid(pid, &status, 0);
  if (std::chrono::steady_clock::now() < deadline)
    res.exit_code = WIFEXITED(status) ? WEXITSTATUS(status) : 128 + WTERMSIG(status);
  return res;
}

} // namespace

BOOST_AUTO_TEST_CASE(up_rerun_exec_apply_down) {
  if (!require_or_skip(binaries_present(), "rayd/rayctl binaries not found in " + bin_dir()))
    return;
  cluster c{"launcher"};
  // Whatever the test leaves running under its private RAYD_TMPDIR is killed
  // by pid (the head, workers), even when an assertion fails midway.
  session_guard guard{c.rayd_tmpdir()};
  ::setenv("RAYD_TMPDIR", c.rayd_tmpdir().c_str(), 1); // for the provider below
  auto head_dir = c.rayd_tmpdir() + "/clusters/demo/head";
  auto state_config = c.rayd_tmpdir() + "/clusters/demo/cluster.yaml";
  // The head's command line (workers name head_dir too, in --token-file).
  auto head_flag = "--session-dir " + head_dir + " ";
  c.add_log(head_dir + "/rayd.err");
  auto cfg = write_config(c, "demo.yaml", config_text("demo", 0));

  // -- without a terminal and without --yes: refused, nothing started ------------
  auto refused = rayctl(c, {"up", cfg});
  BOOST_TEST(refused.exit_code == 2, refused.describe());
  BOOST_TEST(refused.err.find("--yes") != std::string::npos, refused.describe());
  BOOST_TEST(!file_exists(head_dir + "/node.json"));

  // -- up ----------------------------------------------------------------------------
  auto up = rayctl(c, {"up", cfg, "--yes"});
  BOOST_REQUIRE_MESSAGE(up.exit_code == 0, up.describe());
  BOOST_TEST(up.out.find("head started at 127.0.0.1:") != std::string::npos, up.describe());
  auto nf = read_node_json(head_dir);
  BOOST_REQUIRE(nf);
  auto head_pid = (*nf)["pid"].get<pid_t>();
  BOOST_TEST(pid_alive(head_pid));
  BOOST_TEST(read_file(state_config) == read_file(cfg)); // the copy the head reads

  // -- get-head-address: the API address, which rayctl accepts --------------------
  auto addr = rayctl(c, {"get-head-address", cfg});
  BOOST_REQUIRE_MESSAGE(addr.exit_code == 0, addr.describe());
  auto api = last_line(addr.out);
  BOOST_TEST(api == (*nf)["api_address"].get<std::string>());
  auto st = status_via(c, api); // the token is found through the local session
  BOOST_REQUIRE_MESSAGE(st, "rayctl --address " + api + " status --json failed");
  // The head has its type's label and resources (CPU 0, not the host's cores).
  BOOST_TEST(alive_of_type(*st, "head", true) == 1);
  for (auto& node : (*st)["nodes"])
    if (node.value("is_head", false)) {
      BOOST_TEST(node["labels"].value("role", "") == "entry");
      BOOST_TEST(node["resources_total"].value("CPU", -1.0) == 0.0);
    }
  // With an explicit token file as well.
  auto with_token = rayctl(c, {"--address", api, "--token-file", head_dir + "/auth_token",
                               "status"});
  BOOST_TEST(with_token.exit_code == 0, with_token.describe());

  // -- re-run: the same head, config unchanged ----------------------------------------
  auto again = rayctl(c, {"up", cfg, "--yes"});
  BOOST_REQUIRE_MESSAGE(again.exit_code == 0, again.describe());
  BOOST_TEST(again.out.find("head already running (pid " + std::to_string(head_pid))
               != std::string::npos,
             again.describe());
  BOOST_TEST(again.out.find("config unchanged") != std::string::npos, again.describe());
  BOOST_TEST((*read_node_json(head_dir))["pid"].get<pid_t>() == head_pid);
  BOOST_TEST(processes_mentioning(head_flag).size() == 1u); // one head, no second

  // -- exec: on the head, with its environment; the command's exit code ----------------
  auto ex = rayctl(c, {"exec", cfg, "--", "rayctl", "status"});
  BOOST_TEST(ex.exit_code == 0, ex.describe());
  BOOST_TEST(ex.out.find("Healthy: 1 node") != std::string::npos, ex.describe());
  auto env = rayctl(c, {"exec", cfg, "--", "sh", "-c",
                        "echo \"$RAYD_ADDRESS|$RAYD_TOKEN_FILE|$(pwd)\"; exit 7"});
  BOOST_TEST(env.exit_code == 7, env.describe());
  BOOST_TEST(last_line(env.out) == api + "|" + head_dir + "/auth_token|" + head_dir,
             env.describe());
  auto shell_line = rayctl(c, {"exec", cfg, "exit 3"}); // one word: a shell line
  BOOST_TEST(shell_line.exit_code == 3, shell_line.describe());

  // -- attach: an interactive shell with the same environment ---------------------------
  auto att = run({"sh", "-c", "echo 'echo attached:$RAYD_ADDRESS; exit 0' | SHELL=/bin/sh " + rayctl_bin()
                                + " attach " + cfg},
                 c.base_env(), 30s);
  BOOST_TEST(att.exit_code == 0, att.describe());
  BOOST_TEST(att.out.find("attached:" + api) != std::string::npos, att.describe());

  // -- a changed config is applied: the head's copy is replaced atomically --------------
  auto changed_text = config_text("demo", 0, 3);
  auto changed = write_config(c, "demo.yaml", changed_text);
  auto inode_before = inode_of(state_config);
  auto apply = rayctl(c, {"up", changed, "--yes"});
  BOOST_REQUIRE_MESSAGE(apply.exit_code == 0, apply.describe());
  BOOST_TEST(apply.out.find("max_workers: 2 -> 3") != std::string::npos, apply.describe());
  BOOST_TEST(apply.out.find("applied") != std::string::npos, apply.describe());
  if (rayd_has_autoscaler()) // the head's autoscaler confirms it read the file
    BOOST_TEST(apply.out.find("the head reloaded the config") != std::string::npos,
               apply.describe());
  BOOST_TEST(read_file(state_config) == changed_text);
  BOOST_TEST(inode_of(state_config) != inode_before); // renamed over, not rewritten
  BOOST_TEST((*read_node_json(head_dir))["pid"].get<pid_t>() == head_pid);

  // -- bad configs: the parser's line, exit 2, nothing touched --------------------------
  auto bad = write_config(c, "bad.yaml",
                          "cluster_name: demo\nprovider:\n  type: processes\nmax_worker: 3\n");
  auto b = rayctl(c, {"up", bad, "--yes"});
  BOOST_TEST(b.exit_code == 2, b.describe());
  BOOST_TEST(b.err.find(bad + ":4: max_worker: unknown key (did you mean 'max_workers'?)")
               != std::string::npos,
             b.describe());
  auto fake = write_config(c, "fake.yaml", "cluster_name: demo\nprovider:\n  type: fake\n"
                                           "available_node_types:\n  h: {}\nhead_node_type: h\n");
  auto f = rayctl(c, {"up", fake, "--yes"});
  BOOST_TEST(f.exit_code == 2, f.describe());
  BOOST_TEST(f.err.find("supports the 'processes' provider for now") != std::string::npos,
             f.describe());
  BOOST_TEST(read_file(state_config) == changed_text);

  // -- workers of this cluster (as its autoscaler launches them) and of another ---------
  processes_provider_options po;
  po.cluster_name = "demo";
  po.head_address = (*nf)["cluster_address"].get<std::string>();
  po.token_file = head_dir + "/auth_token";
  po.rayd_binary = rayd_bin();
  processes_provider ours{po};
  po.cluster_name = "other";
  processes_provider theirs{po};
  instance_spec spec;
  spec.node_type = "worker";
  spec.resources = {{"CPU", 1}};
  spec.labels = {{"rayd-node-type", "worker"}};
  spec.tags = {{tag_launch_request, "it-1"}};
  auto mine = ours.create(spec, 1);
  BOOST_REQUIRE_MESSAGE(mine, why(mine));
  auto other = theirs.create(spec, 1);
  BOOST_REQUIRE_MESSAGE(other, why(other));
  auto my_pid = ours.pid_of(mine->front());
  auto other_pid = theirs.pid_of(other->front());
  BOOST_REQUIRE(my_pid && other_pid);
  // An unrelated head on the same host and RAYD_TMPDIR.
  auto& unrelated = c.start_head({}, 0);

  // -- down: the head, then this cluster's workers; nothing else ------------------------
  auto d = rayctl(c, {"down", changed, "--yes"});
  BOOST_TEST(d.exit_code == 0, d.describe());
  BOOST_TEST(d.out.find("stopped head (pid " + std::to_string(head_pid) + ")")
               != std::string::npos,
             d.describe());
  BOOST_TEST(d.out.find("stopped worker " + mine->front()) != std::string::npos, d.describe());
  BOOST_TEST(wait_until([head_pid] { return !pid_alive(head_pid); }, 10s));
  BOOST_TEST(wait_until([&my_pid] { return !pid_alive(*my_pid); }, 10s));
  BOOST_TEST(pid_alive(*other_pid));
  BOOST_TEST(pid_alive(unrelated.pid()));
  BOOST_TEST(processes_mentioning(head_flag).empty());
  BOOST_TEST(processes_mentioning(ours.cluster_dir() + "/").empty());
  auto left = ours.list();
  BOOST_REQUIRE(left);
  BOOST_TEST(left->empty());
  BOOST_TEST(!theirs.terminate(*other)); // the test's own leftovers, by pid

  // -- after down: no head; down again has nothing to stop --------------------------------
  auto gone = rayctl(c, {"get-head-address", cfg});
  BOOST_TEST(gone.exit_code == 1, gone.describe());
  BOOST_TEST(gone.err.find("no head of cluster 'demo'") != std::string::npos, gone.describe());
  auto ex2 = rayctl(c, {"exec", cfg, "--", "true"});
  BOOST_TEST(ex2.exit_code == 1, ex2.describe());
  auto d2 = rayctl(c, {"down", cfg}); // no --yes needed when nothing runs
  BOOST_TEST(d2.exit_code == 0, d2.describe());
  BOOST_TEST(d2.out.find("nothing to stop") != std::string::npos, d2.describe());
}

BOOST_AUTO_TEST_CASE(a_terminal_is_asked_and_no_means_nothing_changes) {
  if (!require_or_skip(binaries_present(), "rayd/rayctl binaries not found in " + bin_dir()))
    return;
  cluster c{"launcher_tty"};
  session_guard guard{c.rayd_tmpdir()};
  auto head_dir = c.rayd_tmpdir() + "/clusters/ask/head";
  auto cfg = write_config(c, "ask.yaml", config_text("ask", 0));
  auto no = run_on_tty({rayctl_bin(), "up", cfg}, c.base_env(), "n", 30s);
  BOOST_TEST(no.exit_code == 1, no.out);
  BOOST_TEST(no.out.find("Start cluster 'ask' on this host") != std::string::npos, no.out);
  BOOST_TEST(no.out.find("aborted") != std::string::npos, no.out);
  BOOST_TEST(!file_exists(head_dir + "/node.json"));
  auto yes = run_on_tty({rayctl_bin(), "up", cfg}, c.base_env(), "y", 60s);
  BOOST_TEST(yes.exit_code == 0, yes.out);
  auto nf = read_node_json(head_dir);
  BOOST_REQUIRE_MESSAGE(nf, yes.out);
  auto pid = (*nf)["pid"].get<pid_t>();
  auto keep = run_on_tty({rayctl_bin(), "down", cfg}, c.base_env(), "no", 30s);
  BOOST_TEST(keep.exit_code == 1, keep.out);
  BOOST_TEST(pid_alive(pid));
  auto down = run_on_tty({rayctl_bin(), "down", cfg}, c.base_env(), "y", 60s);
  BOOST_TEST(down.exit_code == 0, down.out);
  BOOST_TEST(down.out.find("stopped head (pid " + std::to_string(pid) + ")") != std::string::npos,
             down.out);
  BOOST_TEST(wait_until([pid] { return !pid_alive(pid); }, 10s));
}

BOOST_AUTO_TEST_CASE(a_head_that_cannot_start_fails_up_with_its_stderr) {
  if (!require_or_skip(binaries_present(), "rayd/rayctl binaries not found in " + bin_dir()))
    return;
  cluster c{"launcher_fail"};
  session_guard guard{c.rayd_tmpdir()};
  auto head_dir = c.rayd_tmpdir() + "/clusters/busy/head";
  // Another head holds the storage the launcher's head would open.
  c.start_head({"--storage", head_dir + "/gcs"}, 0);
  auto cfg = write_config(c, "busy.yaml", config_text("busy", 0));
  auto up = rayctl(c, {"up", cfg, "--yes", "--timeout", "60"});
  BOOST_TEST(up.exit_code == 1, up.describe());
  BOOST_TEST(up.err.find("exited during start-up") != std::string::npos, up.describe());
  BOOST_TEST(up.err.find(head_dir + "/rayd.err (last lines)") != std::string::npos,
             up.describe());
  BOOST_TEST(up.err.find("is in use by another process") != std::string::npos, up.describe());
  BOOST_TEST(up.elapsed_ms < 30000, up.describe()); // not the whole --timeout
  BOOST_TEST(!file_exists(head_dir + "/node.json"));
  auto d = rayctl(c, {"down", cfg});
  BOOST_TEST(d.exit_code == 0, d.describe());
  BOOST_TEST(d.out.find("nothing to stop") != std::string::npos, d.describe());
}

BOOST_AUTO_TEST_CASE(up_waits_for_min_workers_and_down_stops_them) {
  if (!require_or_skip(binaries_present(), "rayd/rayctl binaries not found in " + bin_dir()))
    return;
  cluster c{"launcher_min"};
  session_guard guard{c.rayd_tmpdir()};
  ::setenv("RAYD_TMPDIR", c.rayd_tmpdir().c_str(), 1);
  auto head_dir = c.rayd_tmpdir() + "/clusters/mw/head";
  c.add_log(head_dir + "/rayd.err");
  c.add_log(head_dir + "/rayd.log");
  auto cfg = write_config(c, "mw.yaml", config_text("mw", 1));
  if (!rayd_has_autoscaler()) {
    // What works without it: up starts the head, then says plainly that
    // min_workers cannot be launched (exit 1, no waiting for the timeout).
    skip_part_unless(false, "this rayd has no --autoscaling-config: min_workers are not "
                            "launched; checking that up says so");
    auto up = rayctl(c, {"up", cfg, "--yes", "--timeout", "60"});
    BOOST_TEST(up.exit_code == 1, up.describe());
    BOOST_TEST(up.err.find("runs no autoscaler") != std::string::npos, up.describe());
    BOOST_TEST(up.elapsed_ms < 30000, up.describe());
    auto d = rayctl(c, {"down", cfg, "--yes"});
    BOOST_TEST(d.exit_code == 0, d.describe());
    return;
  }
  auto up = rayctl(c, {"up", cfg, "--yes", "--timeout", "90"}, 120s);
  BOOST_REQUIRE_MESSAGE(up.exit_code == 0, up.describe());
  BOOST_TEST(up.out.find("worker: 1/1 ALIVE") != std::string::npos, up.describe());
  auto api = last_line(rayctl(c, {"get-head-address", cfg}).out);
  auto st = status_via(c, api);
  BOOST_REQUIRE(st);
  BOOST_TEST(alive_of_type(*st, "worker", false) == 1, st->dump(1));
  processes_provider_options po;
  po.cluster_name = "mw";
  processes_provider provider{po};
  auto xs = provider.list();
  BOOST_REQUIRE(xs);
  BOOST_REQUIRE_EQUAL(xs->size(), 1u);
  auto worker_pid = provider.pid_of(xs->front().instance_id);
  BOOST_REQUIRE(worker_pid);
  // A re-run with min_workers met returns at once, launching nothing.
  auto again = rayctl(c, {"up", cfg, "--yes"});
  BOOST_TEST(again.exit_code == 0, again.describe());
  // The head dies (kill -9): up starts a new one over its storage, and the
  // autoscaler, resuming from its instance table, launches no second worker.
  auto old_head = (*read_node_json(head_dir))["pid"].get<pid_t>();
  ::kill(old_head, SIGKILL);
  BOOST_REQUIRE(wait_until([old_head] { return !pid_alive(old_head); }, 10s));
  auto restart = rayctl(c, {"up", cfg, "--yes", "--timeout", "90"}, 120s);
  BOOST_REQUIRE_MESSAGE(restart.exit_code == 0, restart.describe());
  BOOST_TEST(restart.out.find("no longer runs; starting a new one") != std::string::npos,
             restart.describe());
  auto new_head = (*read_node_json(head_dir))["pid"].get<pid_t>();
  BOOST_TEST(new_head != old_head);
  // Three completed autoscaler rounds of the new head: a duplicate launch
  // would have happened by then.
  auto api2 = last_line(rayctl(c, {"get-head-address", cfg}).out);
  auto rounds = [&c, &api2]() -> int64_t {
    auto s = status_via(c, api2);
    if (!s || !(*s)["autoscaler"].is_object())
      return -1;
    return (*s)["autoscaler"]["round"].value("count", int64_t{-1});
  };
  auto first_round = rounds();
  BOOST_TEST(first_round >= 0);
  BOOST_TEST(wait_until([&rounds, first_round] { return rounds() >= first_round + 3; }, 30s));
  auto after_restart = provider.list();
  BOOST_REQUIRE(after_restart);
  BOOST_TEST(after_restart->size() == 1u);
  auto same_pid = provider.pid_of(xs->front().instance_id);
  BOOST_TEST((same_pid && *same_pid == *worker_pid));
  auto d = rayctl(c, {"down", cfg, "--yes"});
  BOOST_TEST(d.exit_code == 0, d.describe());
  BOOST_TEST(d.out.find("stopped worker " + xs->front().instance_id) != std::string::npos,
             d.describe());
  BOOST_TEST(wait_until([&worker_pid] { return !pid_alive(*worker_pid); }, 10s));
  auto after = provider.list();
  BOOST_REQUIRE(after);
  BOOST_TEST(after->empty());
}
