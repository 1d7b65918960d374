#define BOOST_TEST_MODULE tasks_failure
#include <boost/test/unit_test.hpp>

// Tasks and objects when processes die (docs/tasks.md): a worker process
// SIGKILLed mid-task, a node SIGKILLed under running tasks, objects on a dead
// node, and the embedded default cluster leaving nothing behind. The driver
// is task_programs/task_driver.cpp; tasks_test.cpp has the other cases.

#include <filesystem>

#include "tests/integration/tasks_common.hpp"

using namespace rayd::integration;

namespace {

// The pid a task published in `path` (-1 if none yet).
pid_t pid_in(const std::string& path) {
  std::string s = trim(read_file(path));
  if (s.empty() || s.find_first_not_of("0123456789") != std::string::npos)
    return -1;
  return static_cast<pid_t>(std::stol(s));
}

}  // namespace

BOOST_AUTO_TEST_SUITE(tasks_failure)

// Case 4: the worker process running a task is SIGKILLed: the task runs
// again in a new worker, the result is right, the node keeps running.
BOOST_AUTO_TEST_CASE(worker_killed_mid_task_is_retried) {
  cluster c("tasks_retry");
  worker_logs_on_failure logs;
  auto& head = c.start_head({}, 2);
  logs.add(head.session_dir);
  temp_dir dir("tasks_retry_dir");
  stray_guard strays;
  background_driver d(c, "retry", {"dir=" + dir.path()});

  const std::string pid_file = dir.path() + "/pid";
  BOOST_REQUIRE_MESSAGE(wait_until([&] { return pid_in(pid_file) > 0 || !d.proc->running(); },
                                   60s),
                        "the task did not start");
  pid_t victim = pid_in(pid_file);
  BOOST_REQUIRE_MESSAGE(victim > 0, "the driver ended before its task started: "
                                        << d.proc->out() << d.proc->err());
  strays.add(victim);
  // A worker process the node started (not the driver, not the node).
  BOOST_REQUIRE_EQUAL(parent_pid(victim), head.pid());
  BOOST_REQUIRE_MESSAGE(::kill(victim, SIGKILL) == 0, "kill " << victim);
  BOOST_REQUIRE(wait_until([&] { return !pid_alive(victim); }, 10s));

  json out = d.finish(60s);
  BOOST_TEST_MESSAGE("retry: " << out.dump());
  BOOST_CHECK_EQUAL(out.value("value", 0), 42);
  BOOST_CHECK_MESSAGE(out.value("attempt", 0) >= 2,
                      "the task did not run again (attempt " << out.value("attempt", 0) << ")");
  BOOST_CHECK_MESSAGE(out.value("pid", 0) != victim, "the retry ran in the killed process?");
  BOOST_CHECK_MESSAGE(head.proc->running(), "the node exited after its worker was killed");
  auto st = c.try_status();
  BOOST_REQUIRE(st.has_value());
  BOOST_CHECK_EQUAL(node_state(*st, head.node_id()), "ALIVE");
  // The node noticed and said so.
  BOOST_CHECK_MESSAGE(wait_until(
                          [&] {
                            std::string log = read_file(head.log_path());
                            return log.find("worker pid " + std::to_string(victim)) !=
                                   std::string::npos;
                          },
                          5s, 50ms),
                      "rayd.log does not mention the killed worker " << victim);
}

// Case 5: the node running long tasks is SIGKILLed: the tasks run again on
// the other node that has the resource, with the right results.
BOOST_AUTO_TEST_CASE(node_killed_under_running_tasks_they_finish_elsewhere) {
  cluster c("tasks_node_death");
  worker_logs_on_failure logs;
  auto& head = c.start_head({}, 1);  // no "pool": the tasks cannot run here
  auto& w1 = c.start_worker("w1", {"--resources", "{\"pool\": 2}"}, 2);
  auto& w2 = c.start_worker("w2", {"--resources", "{\"pool\": 2}"}, 2);
  for (auto* n : {&head, &w1, &w2})
    logs.add(n->session_dir);
  std::optional<json> last;
  BOOST_REQUIRE_MESSAGE(wait_for_alive(c, 3, 10s, &last),
                        "3 nodes not ALIVE: " << (last ? last->dump(2) : "no status"));
  temp_dir dir("tasks_node_death_dir");
  stray_guard strays;
  const int count = 2;
  background_driver d(c, "node_death", {"dir=" + dir.path(), "count=" + std::to_string(count)});

  // Wait for the first task to run, and kill its node.
  std::vector<std::string> started;
  BOOST_REQUIRE_MESSAGE(wait_until(
                            [&] {
                              started = files_with_prefix(dir.path(), "started.");
                              return !started.empty() || !d.proc->running();
                            },
                            60s),
                        "no task started");
  BOOST_REQUIRE_MESSAGE(!started.empty(), "the driver ended early: " << d.proc->out()
                                                                     << d.proc->err());
  const std::string victim_id = trim(read_file(dir.path() + "/" + started[0]));
  rayd_node* victim = victim_id == w1.node_id() ? &w1 : victim_id == w2.node_id() ? &w2 : nullptr;
  BOOST_REQUIRE_MESSAGE(victim != nullptr, "a task ran on '" << victim_id << "', not on a worker");
  rayd_node* survivor = victim == &w1 ? &w2 : &w1;
  BOOST_TEST_MESSAGE("killing node " << victim->name << " (" << victim_id << ")");
  // Give tasks that are on their way there a moment to start as well.
  wait_until([&] { return files_with_prefix(dir.path(), "started.").size() >= size_t(count); },
             500ms);
  std::vector<pid_t> task_pids;
  for (auto& f : files_with_prefix(dir.path(), "started."))
    if (trim(read_file(dir.path() + "/" + f)) == victim_id) {
      pid_t p = static_cast<pid_t>(std::stol(f.substr(f.rfind('.') + 1)));
      task_pids.push_back(p);
      strays.add(p);
    }
  victim->proc->signal(SIGKILL);
  BOOST_REQUIRE(victim->proc->wait_exit(5s).has_value());
  // Its worker processes go with it (fate sharing) before the tasks may end.
  for (pid_t p : task_pids)
    BOOST_CHECK_MESSAGE(wait_until([p] { return !pid_alive(p); }, 10s),
                        "worker " << p << " of the killed node still runs");
  BOOST_REQUIRE(write_file(dir.path() + "/release", "1"));

  json out = d.finish(120s);
  BOOST_TEST_MESSAGE("node death: " << out.dump());
  BOOST_REQUIRE(out["results"].is_array() && out["results"].size() == size_t(count));
  for (int i = 0; i < count; ++i) {
    const json& r = out["results"][i];
    BOOST_CHECK_MESSAGE(r["outcome"].value("kind", "") == "none",
                        "task " << i << " failed: " << r.dump());
    BOOST_CHECK_EQUAL(r.value("value", -1), i * i);
    BOOST_CHECK_MESSAGE(r.value("node", "") == survivor->node_id(),
                        "task " << i << " finished on '" << r.value("node", "") << "', not on "
                                << survivor->node_id() << " (killed: " << victim_id << ")");
  }
  BOOST_CHECK(head.proc->running());
  BOOST_CHECK(survivor->proc->running());
}

// Case 10: a result stored on a node that then dies is lost: get and a task
// reading it throw rayd::object_lost (objects are not reconstructed).
BOOST_AUTO_TEST_CASE(objects_on_a_dead_node_are_lost) {
  cluster c("tasks_lost");
  worker_logs_on_failure logs;
  auto& head = c.start_head({"--resources", node_resource(0)}, 2);
  auto& w1 = c.start_worker("w1", {"--resources", node_resource(1)}, 1);
  for (auto* n : {&head, &w1})
    logs.add(n->session_dir);
  BOOST_REQUIRE(wait_for_alive(c, 2, 10s).has_value());
  temp_dir dir("tasks_lost_dir");
  background_driver d(c, "lost", {"dir=" + dir.path(), "size=" + std::to_string(2 << 20)});
  BOOST_REQUIRE_MESSAGE(
      wait_until([&] { return file_exists(dir.path() + "/stored") || !d.proc->running(); }, 60s),
      "the result was not stored in time");
  BOOST_REQUIRE_MESSAGE(d.proc->running(), "the driver ended early: " << d.proc->out()
                                                                      << d.proc->err());
  w1.proc->signal(SIGKILL);
  BOOST_REQUIRE(w1.proc->wait_exit(5s).has_value());
  BOOST_REQUIRE(write_file(dir.path() + "/killed", "1"));

  json out = d.finish(120s);
  BOOST_TEST_MESSAGE("lost: " << out.dump());
  BOOST_CHECK(out.value("ready", false));
  BOOST_CHECK_MESSAGE(out["get"].value("kind", "") == "object_lost",
                      "get of the dead node's object: " << out["get"].dump());
  BOOST_CHECK_MESSAGE(out["dependent"].value("kind", "") == "object_lost",
                      "a task reading the dead node's object: " << out["dependent"].dump());
  BOOST_CHECK_EQUAL(out.value("after", -1), 2);
}

// Case 8: no RAYD_ADDRESS and an empty RAYD_TMPDIR: the driver starts its
// own cluster, computes, exits 0, and leaves no process (nor temp dir) behind.
BOOST_AUTO_TEST_CASE(embedded_default_cluster_leaves_nothing_behind) {
  temp_dir tmp("tasks_embedded");
  const std::string private_tmp = tmp.sub("rayd_tmp");
  const std::string signals = tmp.sub("signals");
  // The harness strips every inherited RAYD_* variable: no address, no token.
  process d(driver_argv("embedded", {"dir=" + signals}),
            {{"RAYD_TMPDIR", private_tmp}, {"RAYD_BIN_DIR", bin_dir()}}, tmp.path() + "/logs",
            "driver");
  stray_guard strays;

  // While it runs: its embedded rayd is its child, in a /tmp/rayd-embedded-* dir.
  BOOST_REQUIRE_MESSAGE(
      wait_until([&] { return file_exists(signals + "/computed") || !d.running(); }, 90s),
      "the embedded driver did not compute in time");
  BOOST_REQUIRE_MESSAGE(d.running(), "the driver ended early: " << d.out() << d.err());
  pid_t rayd_pid = -1;
  std::string embedded_dir;
  for (pid_t p : processes_mentioning("rayd-embedded-")) {
    std::string cmd = cmdline_of(p);
    if (parent_pid(p) != d.pid() || cmd.find("--head") == std::string::npos)
      continue;
    rayd_pid = p;
    auto at = cmd.find("--session-dir ");
    if (at != std::string::npos) {
      embedded_dir = cmd.substr(at + 14);
      embedded_dir = embedded_dir.substr(0, embedded_dir.find(' '));
      embedded_dir = embedded_dir.substr(0, embedded_dir.rfind('/'));  // drop "/head"
    }
  }
  BOOST_REQUIRE_MESSAGE(rayd_pid > 0, "no embedded rayd child of the driver found");
  BOOST_REQUIRE_MESSAGE(embedded_dir.rfind("/tmp/rayd-embedded-", 0) == 0,
                        "unexpected embedded dir '" << embedded_dir << "'");
  struct remove_if_left {  // only if the test fails before the driver cleans up
    std::string dir;
    ~remove_if_left() {
      std::error_code ec;
      std::filesystem::remove_all(dir, ec);
    }
  } cleanup{embedded_dir};
  auto nj = read_node_json(embedded_dir + "/head");
  BOOST_REQUIRE_MESSAGE(nj.has_value(), "no node.json in " << embedded_dir << "/head");
  BOOST_CHECK_EQUAL((*nj)["pid"].get<pid_t>(), rayd_pid);
  std::vector<pid_t> mine = processes_mentioning(embedded_dir);
  for (pid_t p : mine)
    strays.add(p);
  BOOST_TEST_MESSAGE("embedded cluster in " << embedded_dir << ": " << mine.size()
                                            << " process(es), rayd pid " << rayd_pid);
  const uint64_t rayd_ticks = process_start_ticks(rayd_pid);

  BOOST_REQUIRE(write_file(signals + "/go", "1"));
  auto code = d.wait_exit(60s);
  BOOST_REQUIRE_MESSAGE(code.has_value(), "the embedded driver did not exit");
  json out = last_json(d.out());
  BOOST_REQUIRE_MESSAGE(*code == 0 && !out.is_discarded(),
                        "the embedded driver exited " << *code << "\n" << d.out() << d.err());
  BOOST_TEST_MESSAGE("embedded: " << out.dump());
  BOOST_CHECK_EQUAL(out.value("sum", -1), 380);
  BOOST_CHECK(!out.value("node", "").empty());
  BOOST_CHECK(out.value("go", false));

  // The driver waited for its rayd: gone at once.
  BOOST_CHECK_MESSAGE(process_start_ticks(rayd_pid) != rayd_ticks,
                      "the embedded rayd " << rayd_pid << " outlived its driver");
  // Its worker processes follow their node.
  std::vector<pid_t> left;
  bool clean = wait_until(
      [&] {
        left = processes_mentioning(embedded_dir);
        return left.empty();
      },
      5s, 50ms);
  std::ostringstream which;
  for (pid_t p : left)
    which << p << ": " << cmdline_of(p) << "\n";
  BOOST_CHECK_MESSAGE(clean, "processes of the embedded cluster left behind:\n" << which.str());
  BOOST_CHECK_MESSAGE(!file_exists(embedded_dir), "the embedded dir " << embedded_dir
                                                                      << " was left behind");
  // Nothing was written to the caller's RAYD_TMPDIR tree beyond what it had.
  BOOST_CHECK_MESSAGE(!file_exists(private_tmp + "/session_latest"),
                      "the embedded cluster registered itself as this host's session");
}

BOOST_AUTO_TEST_SUITE_END()
