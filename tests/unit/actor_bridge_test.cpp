// Unit tests of the node's actor bridge (actors/node/actor_bridge.hpp): the
// task server's answers, given on another thread, reach the requester; its
// reports reach the gate with the token, also those made before the gate
// was known.
#define BOOST_TEST_MODULE actor_bridge
#include <boost/test/unit_test.hpp>

#include <chrono>
#include <mutex>
#include <string>
#include <thread>
#include <vector>

#include <caf/all.hpp>

#include "actors/node/actor_bridge.hpp"
#include "common/error.hpp"
#include "tests/support/actor_config.hpp"

using namespace rayd;
using namespace std::chrono_literals;

namespace {

/// What the fake gate heard.
struct heard {
  std::mutex mu;
  std::vector<std::string> lines;
  void add(std::string s) {
    std::lock_guard<std::mutex> guard{mu};
    lines.push_back(std::move(s));
  }
  std::size_t size() {
    std::lock_guard<std::mutex> guard{mu};
    return lines.size();
  }
};

gcs_gate_actor spawn_fake_gate(caf::actor_system& sys, heard* h) {
  return sys.spawn([h]() -> gcs_gate_actor::behavior_type {
    return {
      [](atoms::join, join_request&, node_manager_actor&) { return join_reply{}; },
      [](atoms::leave, std::string&, std::string&) { return false; },
      [](atoms::job_report, std::string&, job_report&) { return false; },
      [](atoms::log_append, std::string&, std::string&, uint64_t, std::string&) {
        return uint64_t{0};
      },
      [](atoms::report, std::string&, node_report&) { return std::vector<peer_view>{}; },
      [](atoms::blob_read, std::string&, std::string&, uint64_t, uint64_t) {
        return std::string{};
      },
      [h](atoms::actor_exited, std::string& token, std::string& actor, std::string& node,
          int32_t pid, std::string& cause) {
        h->add("exited " + token + " " + actor + " " + node + " " + std::to_string(pid) + " "
               + cause);
      },
      [h](atoms::job_gone, std::string& token, std::string& job) {
        h->add("gone " + token + " " + job);
      },
    };
  });
}

bool wait_for(heard& h, std::size_t n) {
  auto deadline = std::chrono::steady_clock::now() + 5s;
  while (h.size() < n) {
    if (std::chrono::steady_clock::now() > deadline)
      return false;
    std::this_thread::sleep_for(5ms);
  }
  return true;
}

} // namespace

BOOST_AUTO_TEST_CASE(answers_from_another_thread_reach_the_requester) {
  caf::actor_system_config cfg;
  caf::actor_system sys{test::quiet_config(cfg)};
  node::actor_bridge_config bc;
  bc.node_id = "n1";
  bc.token = "tok";
  bc.host = [](actor_launch l, std::function<void(caf::expected<actor_hosted>)> done) {
    std::thread([l, done] {
      if (l.actor_id == "full")
        done(make_error(errc::unavailable, "no room"));
      else
        done(actor_hosted{true, 77, false, {}, {}});
    }).detach();
  };
  bc.unhost = [](std::string id, std::function<void(bool)> done) {
    std::thread([id, done] { done(id == "known"); }).detach();
  };
  auto bridge = node::spawn_actor_bridge(sys, bc);
  caf::scoped_actor self{sys};
  actor_launch l;
  l.actor_id = "a1";
  self->request(bridge, 5s, atoms::actor_host::value, l)
    .receive([](actor_hosted& h) {
               BOOST_CHECK(h.ok);
               BOOST_CHECK_EQUAL(h.pid, 77);
             },
             [](caf::error& e) { BOOST_FAIL("unexpected error " + describe(e)); });
  l.actor_id = "full";
  self->request(bridge, 5s, atoms::actor_host::value, l)
    .receive([](actor_hosted&) { BOOST_FAIL("expected an error"); },
             [](caf::error& e) {
               BOOST_CHECK(code_of(e) == errc::unavailable);
               BOOST_CHECK_NE(describe(e).find("no room"), std::string::npos);
             });
  for (auto [id, want] : {std::pair<std::string, bool>{"known", true}, {"other", false}})
    self->request(bridge, 5s, atoms::actor_unhost::value, id)
      .receive([want = want](bool known) { BOOST_CHECK_EQUAL(known, want); },
               [](caf::error& e) { BOOST_FAIL("unexpected error " + describe(e)); });
}

BOOST_AUTO_TEST_CASE(reports_wait_for_the_gate_and_carry_the_token) {
  caf::actor_system_config cfg;
  caf::actor_system sys{test::quiet_config(cfg)};
  node::actor_bridge_config bc;
  bc.node_id = "n1";
  bc.token = "tok";
  std::mutex mu;
  std::string api;
  bc.host = [](actor_launch, std::function<void(caf::expected<actor_hosted>)>) {};
  bc.unhost = [](std::string, std::function<void(bool)>) {};
  bc.on_api_address = [&mu, &api](std::string a) {
    std::lock_guard<std::mutex> guard{mu};
    api = std::move(a);
  };
  auto bridge = node::spawn_actor_bridge(sys, bc);
  heard h;
  auto gate = spawn_fake_gate(sys, &h);
  // Before any join: kept.
  caf::anon_send(bridge, atoms::actor_exited::value, std::string{"a1"}, int32_t{42},
                 std::string{"worker process 42 killed by signal 9 (Killed)"});
  caf::anon_send(bridge, atoms::job_gone::value, std::string{"j1"});
  std::this_thread::sleep_for(100ms);
  BOOST_CHECK_EQUAL(h.size(), 0u);
  caf::anon_send(bridge, atoms::head_changed::value, gate, std::string{"127.0.0.1:9"});
  BOOST_REQUIRE(wait_for(h, 2));
  caf::anon_send(bridge, atoms::job_gone::value, std::string{"j2"});
  BOOST_REQUIRE(wait_for(h, 3));
  // The head is lost: kept again until the next join.
  caf::anon_send(bridge, atoms::head_changed::value, gcs_gate_actor{}, std::string{});
  caf::anon_send(bridge, atoms::job_gone::value, std::string{"j3"});
  std::this_thread::sleep_for(100ms);
  BOOST_CHECK_EQUAL(h.size(), 3u);
  caf::anon_send(bridge, atoms::head_changed::value, gate, std::string{"127.0.0.1:9"});
  BOOST_REQUIRE(wait_for(h, 4));
  std::lock_guard<std::mutex> guard{h.mu};
  BOOST_CHECK_EQUAL(h.lines[0], "exited tok a1 n1 42 worker process 42 killed by signal 9 (Killed)");
  BOOST_CHECK_EQUAL(h.lines[1], "gone tok j1");
  BOOST_CHECK_EQUAL(h.lines[2], "gone tok j2");
  BOOST_CHECK_EQUAL(h.lines[3], "gone tok j3");
  std::lock_guard<std::mutex> g2{mu};
  BOOST_CHECK_EQUAL(api, "127.0.0.1:9");
}
