#pragma once

// A network namespace joined to the host by a veth pair, for tests that put a
// node on its own network (root only):
//   host: <host_if> 10.213.X.1/24  <-->  ns <ns>: <ns_if> 10.213.X.2/24 (+ lo up)
// Created in the constructor (ready() says whether it worked, why_not() why
// not), deleted in the destructor, also when the test fails. Declare it
// before the cluster whose processes live in it, so it outlives them.
// `tag` keeps the names of tests that may run at once apart.

#include <string>
#include <vector>

#include <unistd.h>

#include "tests/integration/harness.hpp"

namespace rayd::integration {

class netns_link {
 public:
  explicit netns_link(const std::string& tag) {
    if (::geteuid() != 0) {
      why_ = "not root";
      return;
    }
    const std::string id = std::to_string(::getpid());
    ns_ = "rayd" + tag + id;
    host_if_ = "r" + tag + "h" + id;
    ns_if_ = "r" + tag + "n" + id;
    // A /24 not already on this host (another test may hold one).
    std::string addrs = run({"ip", "-4", "addr"}).out;
    for (int i = 0; i < 250; ++i) {
      int x = (::getpid() * 7 + i) % 250 + 1;
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
    exec_result veth =
        run({"ip", "link", "add", host_if_, "type", "veth", "peer", "name", ns_if_});
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

  netns_link(const netns_link&) = delete;
  netns_link& operator=(const netns_link&) = delete;

  bool ready() const { return ready_; }
  const std::string& why_not() const { return why_; }
  const std::string& ns() const { return ns_; }
  std::string host_ip() const { return subnet_ + "1"; }
  std::string ns_ip() const { return subnet_ + "2"; }

  // Cuts (false) or restores (true) the namespace's side of the link.
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

}  // namespace rayd::integration
