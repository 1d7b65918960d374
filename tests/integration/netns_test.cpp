#define BOOST_TEST_MODULE netns
#include <boost/test/unit_test.hpp>

#include <unistd.h>

#include "tests/integration/harness.hpp"
#include "tests/integration/netns_link.hpp"

using namespace rayd::integration;


BOOST_AUTO_TEST_CASE(worker_in_a_network_namespace_cut_and_restored) {
  netns_link net{"n"};  // declared first: destroyed after the cluster's processes
  if (!require_or_skip(net.ready(), "no network namespace: " + net.why_not()))
    return;
  cluster c("netns");
  auto& head = c.start_head({"--bind", net.host_ip(), "--node-name", "it-head"}, 1);
  BOOST_REQUIRE_MESSAGE(head.cluster_address().rfind(net.host_ip() + ":", 0) == 0,
                        "head cluster_address " << head.cluster_address() << " is not on "
                                                << net.host_ip());
  BOOST_CHECK(head.api_address().rfind(net.host_ip() + ":", 0) == 0);

  std::string wdir = c.root() + "/nsw";
  auto& w = c.spawn_node("nsw",
                         {"ip", "netns", "exec", net.ns(), rayd_bin(),
                          "--address=" + head.cluster_address(), "--block", "--session-dir", wdir,
                          "--token-file", head.token_file(), "--num-cpus", "1", "--node-name",
                          "it-ns"},
                         wdir);
  BOOST_REQUIRE_MESSAGE(c.wait_ready(w, 15s), "the namespaced worker did not come up\n"
                                                  << w.all_output());
  pid_t wpid = w.info["pid"].get<pid_t>();

  auto st = wait_for_state(c, w.node_id(), "ALIVE", 5s, 50ms);
  BOOST_REQUIRE_MESSAGE(st.has_value(), "the namespaced worker is not ALIVE");
  const json* n = find_node(*st, w.node_id());
  BOOST_CHECK_MESSAGE(n->value("address", std::string()).rfind(net.ns_ip() + ":", 0) == 0,
                      "the worker advertises " << n->value("address", std::string())
                                               << ", not its namespace address " << net.ns_ip());
  BOOST_CHECK_EQUAL(n->value("pid", -1), wpid);

  // Cut the link: no FIN, no RST -- only the health timeout can tell.
  int64_t cut_ms = now_ms();
  exec_result down = net.set_ns_link(false);
  BOOST_REQUIRE_MESSAGE(down.exit_code == 0, down.describe());
  auto dead = wait_for_state(c, w.node_id(), "DEAD", 8s, 50ms);
  BOOST_REQUIRE_MESSAGE(dead.has_value(), "the cut-off worker is not DEAD within 8 s");
  int64_t dt = find_node(*dead, w.node_id())->value("death_time_ms", int64_t(0)) - cut_ms;
  BOOST_TEST_MESSAGE("cut-off detection: " << dt << " ms");
  BOOST_CHECK_MESSAGE(dt >= -1 && dt < 3000,
                      "the cut-off worker declared DEAD " << dt << " ms after the cut (bound 3 s)");
  BOOST_CHECK_EQUAL(node_state(*dead, head.node_id()), "ALIVE");

  // Restore it: the same rayd process re-registers.
  int64_t up_ms = now_ms();
  exec_result up = net.set_ns_link(true);
  BOOST_REQUIRE_MESSAGE(up.exit_code == 0, up.describe());
  net.ensure_ns_address();
  std::optional<json> back;
  bool alive = wait_until(
      [&] {
        back = c.try_status();
        if (!back)
          return false;
        for (const auto& e : (*back)["nodes"])
          if (e.value("pid", -1) == wpid && e.value("name", std::string()) == "it-ns" &&
              e.value("state", std::string()) == "ALIVE")
            return true;
        return false;
      },
      30s, 200ms);
  BOOST_CHECK_MESSAGE(alive, "the worker did not re-register within 30 s of the link's return: "
                                 << (back ? back->dump(2) : "no status"));
  BOOST_TEST_MESSAGE("link restored -> ALIVE: " << now_ms() - up_ms << " ms");
  BOOST_CHECK_MESSAGE(w.proc->running(), "the namespaced worker exited");
}
