#define BOOST_TEST_MODULE restart
#include <boost/test/unit_test.hpp>

#include <csignal>
#include <filesystem>
#include <thread>

#include "tests/integration/harness.hpp"

using namespace rayd::integration;
namespace fs = std::filesystem;

namespace {

void kill_head(cluster& c) {
  c.head().proc->signal(SIGKILL);
  BOOST_REQUIRE(c.head().proc->wait_exit(5s).has_value());
}

}  // namespace

BOOST_AUTO_TEST_CASE(head_kill9_and_same_command_recovers_the_cluster) {
  cluster c("restart");
  auto& head = c.start_head({"--node-name", "it-head"}, 1);
  auto& w1 = c.start_worker("w1", {"--node-name", "it-w1"}, 1);
  auto& w2 = c.start_worker("w2", {"--node-name", "it-w2"}, 1);

  exec_result put = c.rayctl({"kv", "put", "restart_key", "survives"});
  BOOST_REQUIRE_MESSAGE(put.exit_code == 0, put.describe());
  json before = c.status_json();
  BOOST_REQUIRE_EQUAL(alive_count(before), 3u);
  std::string cluster_id = before.value("cluster_id", std::string());
  BOOST_REQUIRE(!cluster_id.empty());
  BOOST_REQUIRE(before["epoch"].is_number());
  int64_t epoch = before["epoch"].get<int64_t>();
  std::string cluster_address = head.cluster_address();
  std::string api_address = head.api_address();
  pid_t w1_pid = w1.pid(), w2_pid = w2.pid();

  const int64_t kill_head_ms = now_ms();
  kill_head(c);
  c.restart_head();
  auto ready = std::chrono::steady_clock::now();

  // Port 0 was recorded: the same ports again, so the workers find the head.
  BOOST_CHECK_EQUAL(head.cluster_address(), cluster_address);
  BOOST_CHECK_EQUAL(head.api_address(), api_address);

  // ALIVE alone may be what the old run stored. A re-join is what only the
  // feature produces: the new head stamps the node's start_time_ms when it
  // joins again, so both workers must show a start time after the kill --
  // with the pids they had before (the same processes, not new ones).
  auto rejoined = [&kill_head_ms](const json& st, const rayd_node& w) {
    const json* n = find_node(st, w.node_id());
    return n != nullptr && n->value("state", std::string()) == "ALIVE" &&
           n->value("start_time_ms", int64_t(0)) >= kill_head_ms;
  };
  std::optional<json> st;
  bool back = wait_until(
      [&] {
        st = c.try_status();
        return st && rejoined(*st, w1) && rejoined(*st, w2);
      },
      2s, 20ms);
  auto took = std::chrono::duration_cast<milliseconds>(std::chrono::steady_clock::now() - ready);
  BOOST_TEST_MESSAGE("workers re-joined " << took.count() << " ms after the new head's node.json");
  BOOST_REQUIRE_MESSAGE(back, "workers not re-joined (ALIVE, start_time_ms >= " << kill_head_ms
                                  << ") within 2 s of the head's restart: "
                                  << (st ? st->dump(2) : "no status"));
  BOOST_CHECK_EQUAL(st->value("cluster_id", std::string()), cluster_id);
  BOOST_REQUIRE((*st)["epoch"].is_number());
  BOOST_CHECK_EQUAL((*st)["epoch"].get<int64_t>(), epoch + 1);
  BOOST_CHECK_EQUAL(find_node(*st, w1.node_id())->value("pid", -1), w1_pid);
  BOOST_CHECK_EQUAL(find_node(*st, w2.node_id())->value("pid", -1), w2_pid);
  BOOST_CHECK(w1.proc->running());
  BOOST_CHECK(w2.proc->running());
  BOOST_CHECK_EQUAL(w1.pid(), w1_pid);
  // The workers say so too, naming the cluster and the new epoch.
  const std::string rejoin_line =
      "re-joined cluster " + cluster_id + " (head epoch " + std::to_string(epoch + 1) + ")";
  for (const rayd_node* w : {&w1, &w2})
    BOOST_CHECK_MESSAGE(
        wait_until([w, &rejoin_line] { return w->all_output().find(rejoin_line) != std::string::npos; },
                   2s),
        w->name << " does not log \"" << rejoin_line << "\":\n"
                << tail_file(w->log_path()));

  // The durable KV survived the kill -9.
  exec_result get = c.rayctl({"kv", "get", "restart_key"});
  BOOST_CHECK_MESSAGE(get.exit_code == 0, get.describe());
  BOOST_CHECK_EQUAL(trim(get.out), "survives");

  // The new head watches the re-joined connection: it sees a kill at once
  // (without one it could only tell by the node-reconnect timeout).
  int64_t kill_ms = now_ms();
  w2.proc->signal(SIGKILL);
  auto dead = wait_for_state(c, w2.node_id(), "DEAD", 5s, 10ms);
  BOOST_REQUIRE_MESSAGE(dead.has_value(), "w2 killed after the restart not DEAD within 5 s");
  int64_t dt = find_node(*dead, w2.node_id())->value("death_time_ms", int64_t(0)) - kill_ms;
  BOOST_CHECK_MESSAGE(dt >= -1, "death_time_ms " << dt + kill_ms << " precedes the kill");
  BOOST_CHECK_MESSAGE(dt < 1000, "w2 (killed after the restart) declared DEAD only "
                                     << dt << " ms after the kill: it had not re-registered");
  BOOST_CHECK_EQUAL(node_state(*dead, w1.node_id()), "ALIVE");
}

BOOST_AUTO_TEST_CASE(worker_exits_when_head_unreachable_too_long) {
  cluster c("restart_gone");
  c.start_head({}, 1);
  auto& w = c.start_worker("w1", {"--gcs-reconnect-timeout", "2"}, 1);

  int64_t kill_ms = now_ms();
  kill_head(c);
  auto code = w.proc->wait_exit(8s);
  BOOST_REQUIRE_MESSAGE(code.has_value(), "worker still runs 8 s after its head died "
                                          "(--gcs-reconnect-timeout 2)");
  int64_t after = w.proc->exit_observed_ms() - kill_ms;
  BOOST_TEST_MESSAGE("worker exited " << after << " ms after the head's kill");
  BOOST_CHECK_NE(*code, 0);
  BOOST_CHECK_EQUAL(*code, 1);  // docs/cli.md: head unreachable for too long
  BOOST_CHECK_MESSAGE(after >= 1500, "worker gave up after " << after
                                                             << " ms, before its 2 s timeout");
  BOOST_CHECK_MESSAGE(after <= 6500, "worker gave up only after " << after << " ms");
  // The giving-up message, not just words any worker log has ("head",
  // "connect"): it names the head's address and the timeout.
  const std::string out = w.all_output();
  const std::string head_address = c.head().cluster_address();
  BOOST_CHECK_MESSAGE(out.find("cannot reach the head (GCS) at " + head_address + " for 2 s") !=
                              std::string::npos &&
                          out.find("giving up") != std::string::npos,
                      "no message about giving up on the head at " << head_address << ":\n"
                                                                  << out);
}

BOOST_AUTO_TEST_CASE(node_that_never_comes_back_is_dead_after_reconnect_timeout) {
  cluster c("restart_lost");
  c.start_head({"--node-reconnect-timeout", "1"}, 1);
  auto& w1 = c.start_worker("w1", {}, 1);
  auto& w2 = c.start_worker("w2", {}, 1);

  kill_head(c);
  w1.proc->signal(SIGKILL);
  BOOST_REQUIRE(w1.proc->wait_exit(5s).has_value());
  c.restart_head();
  int64_t ready_ms = now_ms();

  auto st = wait_for_state(c, w1.node_id(), "DEAD", 3s, 20ms);
  BOOST_REQUIRE_MESSAGE(st.has_value(), "the node that never came back is not DEAD within 3 s "
                                        "(--node-reconnect-timeout 1)");
  BOOST_TEST_MESSAGE("lost node DEAD " << now_ms() - ready_ms << " ms after the restart");
  auto alive = wait_for_state(c, w2.node_id(), "ALIVE", 2s, 20ms);
  BOOST_REQUIRE_MESSAGE(alive.has_value(), "the surviving worker is not ALIVE");
  // Past the timeout, the survivor must not have been swept up with it.
  std::this_thread::sleep_until(std::chrono::system_clock::time_point(milliseconds(ready_ms)) +
                                1500ms);
  json now = c.status_json();
  BOOST_CHECK_EQUAL(node_state(now, w2.node_id()), "ALIVE");
  BOOST_CHECK_EQUAL(node_state(now, w1.node_id()), "DEAD");
  BOOST_CHECK(w2.proc->running());
}

BOOST_AUTO_TEST_CASE(worker_of_a_wiped_cluster_is_refused) {
  cluster c("restart_wiped");
  std::string storage = c.root() + "/storage";
  const std::string token = "it-shared-token-42";
  auto& head = c.start_head({"--storage", storage, "--token", token}, 1);
  auto& w = c.start_worker("w1", {"--token", token}, 1);
  std::string old_cluster_id = c.status_json().value("cluster_id", std::string());
  std::string old_port = std::to_string(port_of(head.cluster_address()));

  kill_head(c);
  std::error_code ec;
  fs::remove_all(storage, ec);
  BOOST_REQUIRE(!ec);
  // Same command line, but the old cluster port given explicitly.
  for (size_t i = 0; i + 1 < head.argv.size(); ++i)
    if (head.argv[i] == "--port")
      head.argv[i + 1] = old_port;
  c.restart_head();
  BOOST_CHECK_EQUAL(std::to_string(port_of(head.cluster_address())), old_port);

  auto code = w.proc->wait_exit(15s);
  BOOST_REQUIRE_MESSAGE(code.has_value(), "the worker of the wiped cluster still runs 15 s "
                                          "after the new head came up");
  BOOST_CHECK_NE(*code, 0);
  json st = c.status_json();
  // The refusal names both clusters; the new id appears in no other message a
  // worker of the old cluster writes (its join line names the old one).
  const std::string new_cluster_id = st.value("cluster_id", std::string());
  BOOST_CHECK_MESSAGE(w.all_output().find("belongs to cluster " + old_cluster_id +
                                          " but this head serves cluster " + new_cluster_id) !=
                          std::string::npos,
                      "the refused worker does not say which clusters differ ("
                          << old_cluster_id << " vs " << new_cluster_id << "):\n"
                          << w.all_output());
  BOOST_CHECK_NE(st.value("cluster_id", std::string()), old_cluster_id);
  BOOST_CHECK_EQUAL(alive_count(st), 1u);
  BOOST_CHECK_NE(node_state(st, w.node_id()), "ALIVE");
}
