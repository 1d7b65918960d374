#define BOOST_TEST_MODULE netns
#include <boost/test/unit_test.hpp>

#include <unistd.h>

#include "tests/integration/harness.hpp"

using namespace rayd::integration;

namespace {

// A network namespace joined to the host by a veth pair:
//   host: <host_if> 10.213.X.1/24  <-->  ns <ns>: <ns_if> 10.213.X.2/24 (+ lo up)
// Created in the constructor (ready() says whether it worked), deleted in the
// destructor, also when the test fails.
class netns_link {
 public:
  netns_link() {
    if (::geteuid() != 0) {
      why_ = "not root";
      return;
    }
    const std::string id = std::to_string(::getpid());
    ns_ = "raydt" + id;
    host_if_ = "rdh" + id;
    ns_if_ = "rdn" + id;
    // A /24 not already on this host.
    std::string addrs = run({"ip", "-4", "addr"}).out;
    for (int i = 0; i < 250; ++i) {
      int x = (::getpid() + i) % 250 + 1;
      if (addrs.find("10.213." + std::to_string(x) + ".") == std::string::npos) {
        subnet_ = "10.213." + std::to_string(x) + ".";
        break;
      }
    }
    if (subnet_.empty()) {
      why_ = "no free 10.213.x.0/24";
      return;
    }
    exec_result add = run({"ip", "netns", "add", ns_});
    if (add.exit_code != 0) {
      why_ = "ip netns add failed: " + trim(add.err);
      return;
    }
    ns_created_ = true;
    exec_result veth = run({"ip", "link", "add", host_if_, "type", "veth", "peer", "name", ns_if_});
    if (veth.exit_code != 0) {
      why_ = "cannot create a veth pair: " + trim(veth.err);
      return;
    }
    link_created_ = true;
    for (const auto& cmd : std::vector<std::vector<std::string>>{
             {"ip", "link", "set", ns_if_, "netns", ns_},
             {"ip", "addr", "add", host_ip() + "/24", "dev", host_if_},
             {"ip", "link", "set", host_if_, "up"},
             {"ip", "-n", ns_, "addr", "add", ns_ip() + "/24", "dev", ns_if_},
             {"ip", "-n", ns_, "link", "set", ns_if_, "up"},
             {"ip", "-n", ns_, "link", "set", "lo", "up"},
         }) {
      exec_result r = run(cmd);
      if (r.exit_code != 0) {
        why_ = "network setup step failed: " + r.describe();
        return;
      }
    }
    ready_ = true;
  }

  ~netns_link() {
    if (link_created_)  // deleting one end deletes its peer, wherever it is
      run({"ip", "link", "del", host_if_});
    if (ns_created_)
      run({"ip", "netns", "del", ns_});
  }

  bool ready() const { return ready_; }
  const std::string& why_not() const { return why_; }
  const std::string& ns() const { return ns_; }
  std::string host_ip() const { return subnet_ + "1"; }
  std::string ns_ip() const { return subnet_ + "2"; }

  exec_result set_ns_link(bool up) const {
    return run({"ip", "-n", ns_, "link", "set", ns_if_, up ? "up" : "down"});
  }
  // After `up`: the ns address is still there (re-added if it was dropped).
  void ensure_ns_address() const {
    std::string a = run({"ip", "-n", ns_, "-4", "addr", "show", "dev", ns_if_}).out;
    if (a.find(ns_ip() + "/") == std::string::npos)
      run({"ip", "-n", ns_, "addr", "add", ns_ip() + "/24", "dev", ns_if_});
  }

 private:
  std::string ns_, host_if_, ns_if_, subnet_, why_;
  bool ns_created_ = false, link_created_ = false, ready_ = false;
};

}  // namespace

BOOST_AUTO_TEST_CASE(worker_in_a_network_namespace_cut_and_restored) {
  netns_link net;  // declared first: destroyed after the cluster's processes
  if (!net.ready()) {
    BOOST_TEST_MESSAGE("netns test skipped: " << net.why_not());
    return;
  }
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
