// The autoscaler with the `processes` provider (docs/autoscaler.md), real
// processes on loopback: a head with 0 CPUs and a worker type of 2 CPUs with
// max_workers 3. Tasks, an actor and a job that need CPUs launch workers,
// run there, and the workers are terminated after the idle timeout (3 s
// here); a head kill -9 during scale-up launches no duplicate; a provider
// that fails every launch is reported and does not end the head; a bad
// config is refused with the key and line.
//
// Every worker the autoscaler starts is a rayd process whose command line
// names this test's private RAYD_TMPDIR, so a session guard finds and kills
// it by pid at the end (each case first checks that the autoscaler itself
// terminated them).

#define BOOST_TEST_MODULE autoscaler
#include <boost/test/unit_test.hpp>

#include <sys/stat.h>

#include <csignal>
#include <cstdlib>
#include <optional>
#include <set>
#include <thread>
#include <string>
#include <vector>

#include "tests/integration/harness.hpp"

using namespace rayd::integration;

namespace {

std::string driver_bin() {
  if (const char* p = std::getenv("RAYD_AUTOSCALE_DRIVER"); p != nullptr && *p != '\0')
    return p;
  return bin_dir() + "/../tests/integration/autoscale_driver";
}

std::string config_text(const std::string& cluster_name, const std::string& provider = "",
                        int max_workers = 3) {
  return "cluster_name: " + cluster_name + "\n"
         + "max_workers: " + std::to_string(max_workers) + "\n"
         + "idle_timeout_seconds: 3\n"
         + (provider.empty() ? "provider:\n  type: processes\n" : provider)
         + "available_node_types:\n"
           "  head:\n"
           "    resources: {CPU: 0}\n"
           "  worker:\n"
           "    resources: {CPU: 2}\n"
           "    max_workers: "
         + std::to_string(max_workers) + "\nhead_node_type: head\n";
}

/// A cluster whose head runs the autoscaler with `config`.
struct autoscaled {
  /// Kills, by pid, every worker the provider started (their command lines
  /// name the private RAYD_TMPDIR) once the cluster (and its head) is gone.
  std::optional<session_guard> workers_guard;
  cluster c;
  std::string config;

  explicit autoscaled(const std::string& name, const std::string& text) : c(name) {
    workers_guard.emplace(c.rayd_tmpdir() + "/autoscaler/");
    config = c.root() + "/cluster.yaml";
    BOOST_REQUIRE(write_file(config, text));
    c.start_head({"--autoscaling-config", config}, 0);
  }

  env_list driver_env() {
    return {{"RAYD_ADDRESS", c.head().api_address()},
            {"RAYD_TOKEN", trim(read_file(c.head().token_file()))},
            {"RAYD_TMPDIR", c.rayd_tmpdir()}};
  }

  /// The autoscaler's status JSON (rayctl status --json's "autoscaler").
  json scaler() {
    auto st = c.try_status();
    if (!st || !st->contains("autoscaler") || !(*st)["autoscaler"].is_object())
      return json::object();
    return (*st)["autoscaler"];
  }

  /// ALIVE worker nodes (not the head).
  std::vector<json> alive_workers() {
    std::vector<json> out;
    if (auto st = c.try_status())
      for (auto& n : (*st)["nodes"])
        if (n.value("state", "") == "ALIVE" && !n.value("is_head", false))
          out.push_back(n);
    return out;
  }

  /// Worker rayd processes started by the provider (by their session dir).
  std::vector<pid_t> provider_processes() {
    return processes_mentioning(c.rayd_tmpdir() + "/autoscaler/");
  }
};

std::string label(const json& node, const std::string& key) {
  if (node.contains("labels") && node["labels"].contains(key))
    return node["labels"][key].get<std::string>();
  return "";
}

/// Waits for every worker to be gone (terminated after the idle timeout):
/// no ALIVE worker, no provider process, every instance TERMINATED.
void expect_scaled_down(autoscaled& a, milliseconds timeout = 30s) {
  bool down = wait_until(
    [&a] {
      if (!a.alive_workers().empty() || !a.provider_processes().empty())
        return false;
      for (auto& r : a.scaler()["instances"])
        if (r.value("state", "") != "TERMINATED")
          return false;
      return true;
    },
    timeout, 100ms);
  BOOST_CHECK_MESSAGE(down, "workers not scaled down after the idle timeout: "
                              << a.scaler().dump());
  // The history says why: idle past the timeout, drained, terminated.
  for (auto& r : a.scaler()["instances"]) {
    std::string reasons;
    for (auto& h : r["history"])
      reasons += h.value("to", "") + ": " + h.value("reason", "") + "\n";
    BOOST_CHECK_MESSAGE(reasons.find("STOPPING: idle") != std::string::npos, reasons);
  }
}

} // namespace

BOOST_AUTO_TEST_CASE(tasks_launch_workers_which_go_after_the_idle_timeout) {
  autoscaled a{"as-tasks", config_text("it-tasks")};
  std::size_t most = 0;
  process drv({driver_bin(), "--case", "tasks", "count=6", "ms=2500"}, a.driver_env(),
              a.c.root(), "driver");
  a.c.add_log(drv.err_path());
  // While the tasks wait or run: never more than max_workers, and status
  // says why the demand waits.
  bool saw_reason = false;
  while (drv.running()) {
    most = std::max(most, a.alive_workers().size());
    auto s = a.scaler();
    for (auto& d : s["demands"])
      saw_reason = saw_reason || !d.value("reason", "").empty();
    std::this_thread::sleep_for(50ms);
  }
  auto code = drv.wait_exit(1s);
  BOOST_REQUIRE_MESSAGE(code && *code == 0, "driver failed: " << drv.err());
  auto out = json::parse(nonempty_lines(drv.out()).back());
  BOOST_TEST_MESSAGE("tasks: " << out.dump());
  // Six 1-CPU tasks of 2.5 s on 2-CPU workers: three workers, all used.
  BOOST_CHECK_GE(out["distinct"].get<int>(), 2);
  BOOST_CHECK_LE(most, 3u);
  BOOST_CHECK_GE(most, 2u);
  BOOST_CHECK(saw_reason);
  auto st = a.c.try_status();
  BOOST_REQUIRE(st);
  for (auto& n : (*st)["nodes"])
    for (auto& id : out["nodes"])
      if (n.value("node_id", "") == id.get<std::string>())
        BOOST_CHECK_EQUAL(label(n, "rayd-node-type"), "worker");
  // Ray's layout with the reasons in the text status.
  auto text = a.c.rayctl({"status"});
  BOOST_CHECK_EQUAL(text.exit_code, 0);
  for (auto want : {"Active:", "Idle:", "Pending:", "Recent failures:", "Demands:"})
    BOOST_CHECK_MESSAGE(text.out.find(want) != std::string::npos, want << "\n" << text.out);
  expect_scaled_down(a);
  BOOST_CHECK(a.scaler()["instances"].size() <= 3u);
}

BOOST_AUTO_TEST_CASE(an_actor_needing_a_cpu_gets_a_worker) {
  autoscaled a{"as-actor", config_text("it-actor")};
  auto r = run({driver_bin(), "--case", "actor", "cpus=1"}, a.driver_env(), 60s);
  BOOST_REQUIRE_MESSAGE(r.exit_code == 0, r.describe());
  auto out = json::parse(nonempty_lines(r.out).back());
  auto head = a.c.head().info.value("node_id", "");
  BOOST_CHECK(!out.value("node", "").empty());
  BOOST_CHECK_NE(out.value("node", ""), head);
  BOOST_CHECK_EQUAL(a.scaler()["instances"].size(), 1u);
  expect_scaled_down(a);
}

BOOST_AUTO_TEST_CASE(a_job_needing_a_cpu_gets_a_worker) {
  autoscaled a{"as-job", config_text("it-job")};
  // Infeasible on the head alone: without the autoscaler it fails at once.
  auto r = a.c.rayctl({"job", "submit", "--submission-id", "needs-cpu",
                       "--entrypoint-num-cpus", "1", "--", "echo ran-on-a-worker"},
                      90s);
  BOOST_REQUIRE_MESSAGE(r.exit_code == 0, r.describe());
  BOOST_CHECK(r.out.find("ran-on-a-worker") != std::string::npos);
  auto job = a.c.rayctl({"job", "status", "needs-cpu", "--json"});
  auto j = json::parse(job.out, nullptr, false);
  BOOST_REQUIRE(j.is_object());
  BOOST_CHECK_EQUAL(j.value("status", ""), "SUCCEEDED");
  BOOST_CHECK_NE(j.value("node_id", ""), a.c.head().info.value("node_id", ""));
  expect_scaled_down(a);
}

BOOST_AUTO_TEST_CASE(a_head_kill_during_scale_up_launches_no_duplicate) {
  autoscaled a{"as-restart", config_text("it-restart")};
  // 6 CPUs requested: three 2-CPU workers, however often the head restarts.
  auto req = a.c.rayctl({"request-resources", "--num-cpus", "6"});
  BOOST_REQUIRE_MESSAGE(req.exit_code == 0, req.describe());
  // Kill the head as soon as the first worker process exists (mid scale-up).
  BOOST_REQUIRE(wait_until([&a] { return !a.provider_processes().empty(); }, 20s, 5ms));
  a.c.head().proc->signal(SIGKILL);
  a.c.head().proc->wait_exit(5s);
  a.c.restart_head();
  // The restarted head resumes: the request survived, three workers ALIVE.
  BOOST_REQUIRE_MESSAGE(wait_until([&a] { return a.alive_workers().size() == 3; }, 60s, 50ms),
                        "three workers after the restart: " << a.scaler().dump());
  // ... and stays at three: no duplicate launched for a row it had requested.
  std::this_thread::sleep_for(1500ms); // several rounds (100 ms each) to misbehave in
  auto workers = a.alive_workers();
  BOOST_CHECK_EQUAL(workers.size(), 3u);
  BOOST_CHECK_EQUAL(a.provider_processes().size(), 3u);
  std::set<std::string> ids;
  for (auto& w : workers)
    ids.insert(label(w, "rayd-instance-id"));
  BOOST_CHECK_EQUAL(ids.size(), 3u);
  std::size_t live = 0;
  auto scaler = a.scaler();
  for (auto& r : scaler["instances"])
    live += r.value("state", "") == "RAYD_RUNNING";
  BOOST_CHECK_MESSAGE(live == 3u, "instances: " << scaler.dump());
  BOOST_CHECK_EQUAL(a.c.rayctl({"request-resources", "--clear"}).exit_code, 0);
  expect_scaled_down(a);
}

BOOST_AUTO_TEST_CASE(a_provider_failing_every_launch_is_reported_and_the_head_lives) {
  temp_dir scripts{"rayd_as_provider"};
  auto script = scripts.path() + "/always_fails.sh";
  BOOST_REQUIRE(write_file(script, "#!/bin/sh\ncat >/dev/null\n"
                                   "echo 'quota exceeded in zone a' >&2\nexit 3\n"));
  BOOST_REQUIRE(::chmod(script.c_str(), 0755) == 0);
  autoscaled a{"as-failing", config_text("it-failing", "provider:\n  type: command\n  command: "
                                                         + script + "\n  timeout_s: 5\n")};
  BOOST_REQUIRE_EQUAL(a.c.rayctl({"request-resources", "--num-cpus", "2"}).exit_code, 0);
  // Every call fails (list included): reported, no decision on it, head alive.
  BOOST_REQUIRE(wait_until(
    [&a] {
      return a.scaler()["errors"].value("provider", "").find("quota exceeded")
             != std::string::npos;
    },
    20s, 50ms));
  BOOST_CHECK(a.c.head().proc->running());
  auto text = a.c.rayctl({"status"});
  BOOST_CHECK(text.out.find("autoscaler provider error") != std::string::npos);
  BOOST_CHECK(a.alive_workers().empty());
}

BOOST_AUTO_TEST_CASE(a_bad_config_is_refused_with_its_key_and_line) {
  temp_dir dir{"rayd_as_bad"};
  auto path = dir.path() + "/bad.yaml";
  BOOST_REQUIRE(write_file(path, "cluster_name: bad\nprovider:\n  type: processes\n"
                                 "available_node_types:\n  head:\n    resources: {CPU: 0}\n"
                                 "  worker:\n    resources: {CPU: 2}\n    max_worker: 3\n"
                                 "head_node_type: head\n"));
  auto r = run({rayd_bin(), "--head", "--block", "--port", "0", "--api-port", "0",
                "--session-dir", dir.path() + "/head", "--autoscaling-config", path},
               {{"RAYD_TMPDIR", dir.path()}}, 15s);
  BOOST_CHECK_EQUAL(r.exit_code, 2);
  BOOST_CHECK_MESSAGE(r.err.find("bad.yaml:9: available_node_types.worker.max_worker: unknown "
                                 "key (did you mean 'max_workers'?)")
                        != std::string::npos,
                      r.describe());
  auto w = run({rayd_bin(), "--address", "127.0.0.1:1", "--autoscaling-config", path}, {}, 15s);
  BOOST_CHECK_EQUAL(w.exit_code, 2);
  BOOST_CHECK(w.err.find("--head") != std::string::npos);
}
