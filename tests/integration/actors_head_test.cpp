// The head's side of user actors (docs/actors.md) against a real head: the
// ActorService through rpc::client (creates, names, get_if_exists races,
// waits, kills), the rayctl commands and their exit codes, and the rows
// after a head kill -9 and restart on the same storage. No actor is hosted
// here: what a node answers to actor_host is not asserted, so the checks hold
// whether nodes host actors yet or not.

#define BOOST_TEST_MODULE actors_head
#include <boost/test/unit_test.hpp>

#include <csignal>
#include <mutex>
#include <set>
#include <thread>

#include "common/error.hpp"
#include "schemas/api_client.hpp"
#include "tests/integration/harness.hpp"

using namespace rayd::integration;
using rayd::actor_create_request;
using rayd::actor_info;

namespace {

std::unique_ptr<rayd::rpc::client> connect_to(const rayd_node& head) {
  auto token = trim(read_file(head.token_file()));
  auto c = rayd::rpc::client::connect(head.api_address(), token, 20s);
  if (!c)
    BOOST_FAIL("connect: " + rayd::describe(c.error()));
  return std::move(*c);
}

/// 20 hex characters, as creators choose them.
std::string actor_id(int n, char prefix = 'a') {
  auto digits = std::to_string(n);
  return std::string(1, prefix) + std::string(19 - digits.size(), '0') + digits;
}

actor_create_request request(const std::string& id, const std::string& name,
                             const std::string& ns, bool get_if_exists = false) {
  actor_create_request r;
  r.actor_id = id;
  r.name = name;
  r.ray_namespace = ns;
  r.class_name = "Counter";
  r.owner_job = "it-job-1";
  r.get_if_exists = get_if_exists;
  r.args = {std::string("\x05", 1)}; // msgpack 5
  return r;
}

actor_info create_one(rayd::rpc::client& c, const actor_create_request& r) {
  auto out = c.actor_create({r});
  if (!out)
    BOOST_FAIL("create: " + rayd::describe(out.error()));
  BOOST_REQUIRE_EQUAL(out->size(), 1u);
  return out->front();
}

json rayctl_json(const cluster& c, const std::vector<std::string>& args) {
  auto r = c.rayctl(args, 20s);
  BOOST_REQUIRE_MESSAGE(r.exit_code == 0, r.describe());
  auto j = json::parse(r.out, nullptr, false);
  BOOST_REQUIRE_MESSAGE(!j.is_discarded(), "not JSON: " + r.out);
  return j;
}

} // namespace

BOOST_AUTO_TEST_CASE(names_races_waits_kills_and_rayctl) {
  cluster c("actors");
  auto& head = c.start_head({}, 1);
  auto client = connect_to(head);

  // -- a named create, a duplicate, get_if_exists, a retry --------------------
  auto first = create_one(*client, request(actor_id(1), "counter", "it"));
  BOOST_CHECK_EQUAL(first.error, "");
  BOOST_CHECK_EQUAL(first.actor_id, actor_id(1));
  BOOST_CHECK_EQUAL(first.ray_namespace, "it");
  BOOST_CHECK_EQUAL(first.class_name, "Counter");
  BOOST_CHECK_EQUAL(first.state, "PENDING_CREATION"); // durable before any placement

  auto dup = create_one(*client, request(actor_id(2), "counter", "it"));
  BOOST_CHECK(dup.actor_id.empty());
  BOOST_CHECK_MESSAGE(dup.error.find("'counter'") != std::string::npos
                        && dup.error.find("'it'") != std::string::npos
                        && dup.error.find(actor_id(1)) != std::string::npos,
                      "duplicate error names name, namespace and id: " + dup.error);

  auto same = create_one(*client, request(actor_id(3), "counter", "it", true));
  BOOST_CHECK_EQUAL(same.error, "");
  BOOST_CHECK_EQUAL(same.actor_id, actor_id(1));

  auto retry = create_one(*client, request(actor_id(1), "counter", "it"));
  BOOST_CHECK_EQUAL(retry.error, "");
  BOOST_CHECK_EQUAL(retry.actor_id, actor_id(1));

  // The same name in another namespace and "" (= "default") are other actors.
  auto other = create_one(*client, request(actor_id(4), "counter", ""));
  BOOST_CHECK_EQUAL(other.error, "");
  BOOST_CHECK_EQUAL(other.ray_namespace, "default");

  // A bad id is refused alone; the rest of its batch goes through.
  auto mixed = client->actor_create(
    {request("not an id!", "", "it"), request(actor_id(5), "", "it")});
  BOOST_REQUIRE(mixed);
  BOOST_REQUIRE_EQUAL(mixed->size(), 2u);
  BOOST_CHECK_NE((*mixed)[0].error, "");
  BOOST_CHECK_EQUAL((*mixed)[1].actor_id, actor_id(5));

  // -- 1,000 racing get_if_exists creates of one name: one actor ---------------
  constexpr int threads = 8, batches = 5, per_batch = 25;
  std::mutex m;
  std::set<std::string> answered;
  std::vector<std::string> problems;
  std::vector<std::thread> racers;
  for (int t = 0; t < threads; ++t)
    racers.emplace_back([&head, &m, &answered, &problems, t] {
      auto token = trim(read_file(head.token_file()));
      auto cl = rayd::rpc::client::connect(head.api_address(), token, 30s);
      if (!cl) {
        std::lock_guard<std::mutex> g{m};
        problems.push_back("connect: " + rayd::describe(cl.error()));
        return;
      }
      for (int b = 0; b < batches; ++b) {
        std::vector<actor_create_request> reqs;
        for (int i = 0; i < per_batch; ++i)
          reqs.push_back(request(actor_id(100000 + t * 1000 + b * 100 + i, 'b'), "shared",
                                 "race", true));
        auto out = (*cl)->actor_create(reqs);
        std::lock_guard<std::mutex> g{m};
        if (!out) {
          problems.push_back("create: " + rayd::describe(out.error()));
          continue;
        }
        if (out->size() != reqs.size())
          problems.push_back("reply size " + std::to_string(out->size()));
        for (auto& a : *out) {
          if (!a.error.empty())
            problems.push_back(a.error);
          answered.insert(a.actor_id);
        }
      }
    });
  for (auto& r : racers)
    r.join();
  if (!problems.empty())
    BOOST_FAIL(std::to_string(problems.size()) + " problem(s), first: " + problems.front());
  BOOST_CHECK_EQUAL(answered.size(), 1u); // every racer got the same actor
  auto shared = rayctl_json(c, {"actors", "--json", "--name", "shared"});
  BOOST_REQUIRE(shared.is_array());
  BOOST_REQUIRE_EQUAL(shared.size(), 1u); // and only one row exists
  BOOST_CHECK_EQUAL(shared[0]["actor_id"].get<std::string>(), *answered.begin());
  BOOST_CHECK_EQUAL(shared[0]["namespace"].get<std::string>(), "race");

  // -- get -------------------------------------------------------------------
  auto got = client->actor_get("counter", "it");
  BOOST_REQUIRE(got);
  BOOST_CHECK_EQUAL(got->actor_id, actor_id(1));
  auto missing = client->actor_get("nope", "it");
  BOOST_REQUIRE(!missing);
  BOOST_CHECK(rayd::code_of(missing.error()) == rayd::errc::not_found);

  auto get_json = rayctl_json(c, {"actor", "get", "counter", "--namespace", "it", "--json"});
  BOOST_CHECK_EQUAL(get_json["actor_id"].get<std::string>(), actor_id(1));
  auto get_text = c.rayctl({"actor", "get", "counter", "--namespace", "it"});
  BOOST_CHECK_EQUAL(get_text.exit_code, 0);
  BOOST_CHECK(get_text.out.find(actor_id(1)) != std::string::npos);
  auto get_default = rayctl_json(c, {"actor", "get", "counter", "--json"});
  BOOST_CHECK_EQUAL(get_default["actor_id"].get<std::string>(), actor_id(4));
  auto get_missing = c.rayctl({"actor", "get", "nope", "--namespace", "it"});
  BOOST_CHECK_EQUAL(get_missing.exit_code, 1);
  BOOST_CHECK_MESSAGE(get_missing.err.find("no actor named 'nope' in namespace 'it'")
                        != std::string::npos,
                      get_missing.describe());

  // -- rayctl actors ---------------------------------------------------------
  auto bad_state = c.rayctl({"actors", "--state", "sleeping"});
  BOOST_CHECK_EQUAL(bad_state.exit_code, 1);
  BOOST_CHECK_MESSAGE(bad_state.err.find("unknown actor state 'sleeping'") != std::string::npos,
                      bad_state.describe());
  auto all = rayctl_json(c, {"actors", "--json"});
  BOOST_CHECK_EQUAL(all.size(), 4u); // counter (it), counter (default), id 5, shared
  auto table = c.rayctl({"actors"});
  BOOST_CHECK_EQUAL(table.exit_code, 0);
  for (auto col : {"ACTOR_ID", "NAME", "NAMESPACE", "CLASS", "STATE", "NODE", "PID",
                   "RESTARTS", "DEATH_CAUSE"})
    BOOST_CHECK_MESSAGE(table.out.find(col) != std::string::npos, table.out);
  BOOST_CHECK(table.out.find(actor_id(1)) != std::string::npos);

  // -- wait --------------------------------------------------------------------
  // An unknown id is DEAD ("no such actor"); the other comes back as it is
  // once the timeout ran out (no node hosts it here), or settled.
  auto t0 = std::chrono::steady_clock::now();
  auto waited = client->actor_wait({"ffffffffffffffffffff", actor_id(5)}, 300);
  auto took = std::chrono::steady_clock::now() - t0;
  if (!waited)
    BOOST_FAIL(rayd::describe(waited.error()));
  BOOST_REQUIRE_EQUAL(waited->size(), 2u);
  BOOST_CHECK_EQUAL((*waited)[0].state, "DEAD");
  BOOST_CHECK_EQUAL((*waited)[0].death_cause, "no such actor");
  BOOST_CHECK_EQUAL((*waited)[1].actor_id, actor_id(5));
  BOOST_CHECK(took < 5s);

  // -- kill --------------------------------------------------------------------
  auto kill_missing = c.rayctl({"actor", "kill", "nope", "--namespace", "it"});
  BOOST_CHECK_EQUAL(kill_missing.exit_code, 1);
  BOOST_CHECK_MESSAGE(kill_missing.err.find("no actor") != std::string::npos,
                      kill_missing.describe());
  auto killed = c.rayctl({"actor", "kill", "counter", "--namespace", "it", "--no-restart"});
  BOOST_REQUIRE_MESSAGE(killed.exit_code == 0, killed.describe());
  BOOST_CHECK_MESSAGE(killed.out.find("DEAD") != std::string::npos
                        && killed.out.find("killed by rayctl") != std::string::npos,
                      killed.out);
  auto dead = rayctl_json(c, {"actors", "--json", "--state", "dead", "--name", "counter"});
  BOOST_REQUIRE_EQUAL(dead.size(), 1u);
  BOOST_CHECK_EQUAL(dead[0]["actor_id"].get<std::string>(), actor_id(1));
  BOOST_CHECK_EQUAL(dead[0]["death_cause"].get<std::string>(), "killed by rayctl");
  // Its name is free: a live-name lookup fails, a new create of it succeeds.
  BOOST_CHECK_EQUAL(c.rayctl({"actor", "get", "counter", "--namespace", "it"}).exit_code, 1);
  auto reborn = create_one(*client, request(actor_id(6), "counter", "it"));
  BOOST_CHECK_EQUAL(reborn.error, "");
  BOOST_CHECK_EQUAL(reborn.actor_id, actor_id(6));
  // A wait on a DEAD actor answers at once.
  auto w = client->actor_wait({actor_id(1)}, 10000);
  BOOST_REQUIRE(w);
  BOOST_CHECK_EQUAL(w->front().state, "DEAD");
  // Kill by id through the API (restart allowed, but max_restarts is 0).
  auto by_id = client->actor_kill(*answered.begin(), "", false, "it-test");
  if (!by_id)
    BOOST_FAIL(rayd::describe(by_id.error()));
  BOOST_CHECK_EQUAL(by_id->state, "DEAD");
  BOOST_CHECK_MESSAGE(by_id->death_cause.rfind("killed by it-test", 0) == 0,
                      by_id->death_cause);

  // -- status ------------------------------------------------------------------
  auto st = c.status_json();
  BOOST_REQUIRE(st.contains("actors"));
  BOOST_CHECK_EQUAL(st["actors"]["DEAD"].get<int>(), 2);
  int total = 0;
  for (auto& [_, n] : st["actors"].items())
    total += n.get<int>();
  BOOST_CHECK_EQUAL(total, 5);
  auto text = c.rayctl({"status"});
  BOOST_CHECK_EQUAL(text.exit_code, 0);
  BOOST_CHECK_MESSAGE(text.out.find("Actors:") != std::string::npos
                        && text.out.find("2 dead") != std::string::npos,
                      text.out);
}

BOOST_AUTO_TEST_CASE(rows_survive_a_head_kill9_and_restart) {
  cluster c("actors-restart");
  auto& head = c.start_head({}, 1);
  {
    auto client = connect_to(head);
    BOOST_REQUIRE_EQUAL(create_one(*client, request(actor_id(1), "keeper", "ns")).error, "");
    BOOST_REQUIRE_EQUAL(create_one(*client, request(actor_id(2), "", "ns")).error, "");
    BOOST_REQUIRE_EQUAL(create_one(*client, request(actor_id(3), "victim", "ns")).error, "");
    auto k = client->actor_kill("victim", "ns", true, "it-test");
    BOOST_REQUIRE(k);
    BOOST_REQUIRE_EQUAL(k->state, "DEAD");
  }
  c.head().proc->signal(SIGKILL);
  BOOST_REQUIRE(c.head().proc->wait_exit(5s).has_value());
  c.restart_head();

  auto rows = rayctl_json(c, {"actors", "--json"});
  BOOST_REQUIRE_EQUAL(rows.size(), 3u);
  std::map<std::string, json> by_id;
  for (auto& r : rows)
    by_id[r["actor_id"].get<std::string>()] = r;
  BOOST_REQUIRE(by_id.count(actor_id(1)) && by_id.count(actor_id(2)) && by_id.count(actor_id(3)));
  BOOST_CHECK_EQUAL(by_id[actor_id(1)]["name"].get<std::string>(), "keeper");
  BOOST_CHECK_EQUAL(by_id[actor_id(1)]["class_name"].get<std::string>(), "Counter");
  BOOST_CHECK_EQUAL(by_id[actor_id(3)]["state"].get<std::string>(), "DEAD");
  BOOST_CHECK_EQUAL(by_id[actor_id(3)]["death_cause"].get<std::string>(), "killed by it-test");
  // The name is still taken, and get_if_exists still finds the same actor.
  auto client = connect_to(head);
  auto dup = create_one(*client, request(actor_id(4), "keeper", "ns"));
  BOOST_CHECK_NE(dup.error, "");
  auto same = create_one(*client, request(actor_id(5), "keeper", "ns", true));
  BOOST_CHECK_EQUAL(same.actor_id, actor_id(1));
}

BOOST_AUTO_TEST_CASE(ten_thousand_creates_through_the_api_are_durable_and_cheap) {
  cluster c("actors-many");
  auto& head = c.start_head({}, 1);
  auto client = connect_to(head);
  constexpr int total = 10000, batch = 1000;
  auto t0 = std::chrono::steady_clock::now();
  for (int b = 0; b < total / batch; ++b) {
    std::vector<actor_create_request> reqs;
    for (int i = 0; i < batch; ++i)
      reqs.push_back(request(actor_id(b * batch + i, 'c'), "", "many"));
    auto out = client->actor_create(reqs);
    if (!out)
      BOOST_FAIL("create: " + rayd::describe(out.error()));
    BOOST_REQUIRE_EQUAL(out->size(), reqs.size());
    for (auto& a : *out)
      BOOST_REQUIRE_EQUAL(a.error, "");
  }
  auto took = std::chrono::duration_cast<milliseconds>(std::chrono::steady_clock::now() - t0);
  auto rss = trim(run({"sh", "-c", "grep VmRSS /proc/" + std::to_string(head.pid())
                                     + "/status"}).out);
  std::cout << "10,000 actor creates through the API (batches of 1,000): " << took.count()
            << " ms; head " << rss << std::endl;
  BOOST_CHECK_MESSAGE(took < 20s, "10,000 creates took " + std::to_string(took.count()) + " ms");
  auto list = client->actor_list();
  BOOST_REQUIRE(list);
  BOOST_CHECK_EQUAL(list->size(), static_cast<std::size_t>(total));
}
