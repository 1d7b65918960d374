#define BOOST_TEST_MODULE session
#include <boost/test/unit_test.hpp>

#include <set>

#include "tests/integration/harness.hpp"

using namespace rayd::integration;

namespace {

std::set<std::string> node_ids(const json& status) {
  std::set<std::string> ids;
  for (const auto& n : status["nodes"])
    ids.insert(n.value("node_id", std::string()));
  return ids;
}

}  // namespace

BOOST_AUTO_TEST_CASE(two_clusters_side_by_side_and_stop_stops_only_its_own) {
  cluster a("session_a");
  cluster b("session_b");
  auto& ha = a.start_head({"--node-name", "a-head"}, 1);
  // Nested under A's head session, so `rayd stop` on that session covers it.
  auto& wa = a.start_worker("wa", {"--node-name", "a-w1"}, 1, ha.session_dir + "/nodes/w1");
  auto& hb = b.start_head({"--node-name", "b-head"}, 1);
  auto& wb = b.start_worker("wb", {"--node-name", "b-w1"}, 1);

  BOOST_CHECK_NE(ha.cluster_address(), hb.cluster_address());
  BOOST_CHECK_NE(ha.api_address(), hb.api_address());

  std::optional<json> sa, sb;
  bool ok = wait_until(
      [&] {
        sa = a.try_status();
        sb = b.try_status();
        return sa && sb && alive_count(*sa) == 2 && alive_count(*sb) == 2;
      },
      5s, 50ms);
  BOOST_REQUIRE_MESSAGE(ok, "each cluster should show 2 ALIVE nodes:\nA: "
                                << (sa ? sa->dump(2) : "none") << "\nB: "
                                << (sb ? sb->dump(2) : "none"));
  BOOST_CHECK((node_ids(*sa) == std::set<std::string>{ha.node_id(), wa.node_id()}));
  BOOST_CHECK((node_ids(*sb) == std::set<std::string>{hb.node_id(), wb.node_id()}));
  BOOST_CHECK_NE(sa->value("cluster_id", std::string()), sb->value("cluster_id", std::string()));

  // Each cluster's token opens only its own API.
  exec_result cross = run({rayctl_bin(), "--address", ha.api_address(), "--token-file",
                           hb.token_file(), "status", "--json"},
                          a.base_env(), 10s);
  BOOST_CHECK_MESSAGE(cross.exit_code == 1, "B's token accepted by A: " << cross.describe());

  exec_result stop = run({rayd_bin(), "stop", "--session-dir", ha.session_dir}, a.base_env(), 20s);
  BOOST_CHECK_MESSAGE(stop.exit_code == 0, "rayd stop: " << stop.describe());
  auto ca = ha.proc->wait_exit(12s);
  auto cw = wa.proc->wait_exit(12s);
  BOOST_CHECK_MESSAGE(ca.has_value(), "A's head still runs after rayd stop");
  BOOST_CHECK_MESSAGE(cw.has_value(), "A's nested worker still runs after rayd stop");

  BOOST_CHECK_MESSAGE(hb.proc->running() && pid_alive(hb.pid()), "B's head was stopped too");
  BOOST_CHECK_MESSAGE(wb.proc->running() && pid_alive(wb.pid()), "B's worker was stopped too");
  json after = b.status_json();
  BOOST_CHECK_EQUAL(alive_count(after), 2u);
}

BOOST_AUTO_TEST_CASE(background_mode_prints_next_steps_and_stop_ends_it) {
  temp_dir tmp("rayd_it_bg");
  env_list env{{"RAYD_TMPDIR", tmp.sub("rayd_tmp")}};
  std::string dir = tmp.path() + "/bg";

  // Whatever happens below, the detached daemon must not outlive the test:
  // the guard finds it by its session dir, also if node.json never appears.
  session_guard guard(dir);
  exec_result start = run({rayd_bin(), "--head", "--port", "0", "--api-port", "0",
                           "--session-dir", dir, "--num-cpus", "1"},
                          env, 15s);
  BOOST_REQUIRE_MESSAGE(!start.timed_out, "rayd --head without --block did not return: "
                                              << start.describe());
  // node.json is announced before rayd returns; polled all the same, so a
  // late writer is waited for rather than read once and missed.
  std::optional<json> info;
  wait_until([&info, &dir] { return (info = read_node_json(dir)).has_value(); }, 5s, 20ms);
  BOOST_CHECK_MESSAGE(start.exit_code == 0, start.describe());
  BOOST_CHECK_MESSAGE(start.elapsed_ms < 10000, "took " << start.elapsed_ms << " ms");
  std::string printed = start.out + start.err;
  BOOST_CHECK_MESSAGE(printed.find("rayd --address=") != std::string::npos,
                      "no join command printed:\n" << printed);
  BOOST_CHECK_MESSAGE(printed.find("RAYD_ADDRESS") != std::string::npos,
                      "no RAYD_ADDRESS printed:\n" << printed);

  BOOST_REQUIRE_MESSAGE(info.has_value(), "no node.json in " << dir << " when rayd returned");
  pid_t pid = (*info)["pid"].get<pid_t>();
  std::string cluster_address = (*info)["cluster_address"].get<std::string>();
  std::string api_address = (*info)["api_address"].get<std::string>();
  BOOST_CHECK_MESSAGE(printed.find("rayd --address=" + cluster_address) != std::string::npos,
                      "the printed join command does not name " << cluster_address << ":\n"
                                                                << printed);
  BOOST_CHECK_MESSAGE(printed.find(api_address) != std::string::npos,
                      "the printed RAYD_ADDRESS does not name " << api_address << ":\n"
                                                                << printed);
  BOOST_REQUIRE_MESSAGE(pid_alive(pid), "the daemon (pid " << pid << ") is not running");

  exec_result st = run({rayctl_bin(), "--address", api_address, "--token-file",
                        dir + "/auth_token", "status", "--json"},
                       env, 10s);
  BOOST_CHECK_MESSAGE(st.exit_code == 0, "the daemon does not serve: " << st.describe());

  exec_result stop = run({rayd_bin(), "stop", "--session-dir", dir}, env, 20s);
  BOOST_CHECK_MESSAGE(stop.exit_code == 0, "rayd stop: " << stop.describe());
  bool gone = wait_until([pid] { return !pid_alive(pid); }, 11s, 20ms);
  BOOST_CHECK_MESSAGE(gone, "the daemon (pid " << pid << ") survived rayd stop");
  if (current_test_failed())
    std::cerr << "---- rayd --head (background) ----\n"
              << start.describe() << "\n---- " << dir << "/rayd.log ----\n"
              << tail_file(dir + "/rayd.log") << std::endl;
}
