// A driver outlives the death of the node it talks to (docs/tasks.md, "The
// driver": failure rules). A head with 1 CPU and one plain worker node; a
// driver runs many tiny tasks; the head is SIGKILLed part-way and started
// again with the same command line (same session dir, storage and ports),
// (a) at once and (b) after 2 s. Every task's return value is checked, the
// driver exits 0, and afterwards a task that only the head can run (resource
// n0) runs: the driver uses the head again.

#define BOOST_TEST_MODULE driver_restart_test
#include <boost/test/unit_test.hpp>

#include <csignal>
#include <thread>

#include "tests/integration/harness.hpp"
#include "tests/integration/tasks_common.hpp"

using namespace rayd::integration;

namespace {

void head_dies_mid_run(milliseconds pause) {
  cluster c("driver_restart");
  auto& head = c.start_head({"--resources", node_resource(0)}, 1);
  auto& w1 = c.start_worker("w1", {}, 1);
  worker_logs_on_failure logs;
  logs.add(head.session_dir);
  logs.add(w1.session_dir);
  temp_dir dir("driver_restart");
  const std::string head_id = head.node_id();
  background_driver d(c, "head_death", {"dir=" + dir.path(), "count=20000", "batch=500"});

  bool half = wait_until(
      [&] { return file_exists(dir.path() + "/half") || !d.proc->running(); }, 120s, 5ms);
  BOOST_REQUIRE_MESSAGE(half && d.proc->running(),
                        "the driver did not get half way: " << d.proc->out() << d.proc->err());
  BOOST_TEST_MESSAGE("killing the head (pid " << head.pid() << ")");
  head.proc->signal(SIGKILL);
  BOOST_REQUIRE(head.proc->wait_exit(5s).has_value());
  if (pause.count() > 0)
    std::this_thread::sleep_for(pause); // the point of case (b): the head stays away
  BOOST_CHECK_MESSAGE(d.proc->running(), "the driver died with the head: " << d.proc->err());
  c.restart_head(20s);
  BOOST_CHECK_EQUAL(head.node_id(), head_id);
  bool back = wait_until(
      [&] {
        auto st = c.try_status();
        return st && node_state(*st, w1.node_id()) == "ALIVE"
               && node_state(*st, head_id) == "ALIVE";
      },
      20s, 20ms);
  BOOST_CHECK_MESSAGE(back, "the cluster did not come back within 20 s");
  BOOST_REQUIRE(write_file(dir.path() + "/back", "1"));

  json out = d.finish(180s);
  BOOST_TEST_MESSAGE("driver: " << out.dump());
  BOOST_CHECK_GE(out.value("done", 0), 20000);
  BOOST_CHECK_EQUAL(out.value("wrong", -1), 0);
  BOOST_CHECK_MESSAGE(out.value("failed", -1) == 0,
                      out.value("failed", -1) << " tasks failed: " << out["errors"].dump());
  BOOST_CHECK_GE(out.value("batches_after_half", 0), 1);
  BOOST_CHECK_MESSAGE(out["head_after"].value("kind", "") == "none",
                      "the task pinned to the head failed: " << out["head_after"].dump());
  BOOST_CHECK_EQUAL(out.value("pinned_after", ""), head_id);
  BOOST_CHECK_MESSAGE(w1.proc->running(), "the worker node died");
}

}  // namespace

BOOST_AUTO_TEST_CASE(head_killed_and_restarted_at_once) {
  head_dies_mid_run(0ms);
}

BOOST_AUTO_TEST_CASE(head_killed_and_restarted_after_two_seconds) {
  head_dies_mid_run(2000ms);
}
