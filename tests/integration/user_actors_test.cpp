#define BOOST_TEST_MODULE user_actors
// Actors end to end (docs/actors.md; issue 9): real rayd processes, the
// driver program task_programs/actor_driver.cpp, whose binary the nodes also
// run as the worker processes hosting its actors. Each case asserts on what
// the driver observed and on `rayctl actors`.

#include <signal.h>
#include <sys/types.h>

#include <chrono>
#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <memory>
#include <string>
#include <thread>
#include <vector>

#include <boost/test/unit_test.hpp>

#include "tests/integration/harness.hpp"
#include "tests/integration/netns_link.hpp"
#include "tests/integration/tasks_common.hpp"
#include "tests/support/skip.hpp"

using namespace rayd::integration;
using namespace std::chrono_literals;

namespace {

std::string actor_driver_bin() {
  if (const char* p = std::getenv("RAYD_ACTOR_DRIVER"); p != nullptr && *p != '\0')
    return p;
  return bin_dir() + "/../tests/integration/actor_driver";
}

std::vector<std::string> actor_argv(const std::string& name, const std::vector<std::string>& args) {
  std::vector<std::string> argv{actor_driver_bin(), "--case", name};
  argv.insert(argv.end(), args.begin(), args.end());
  return argv;
}

json run_actor_case(cluster& c, const std::string& name, const std::vector<std::string>& args,
                    milliseconds timeout = 120s) {
  exec_result r = run(actor_argv(name, args), driver_env(c), timeout);
  BOOST_TEST_MESSAGE("actor_driver --case " << name << ": " << r.elapsed_ms << " ms");
  json j = last_json(r.out);
  BOOST_REQUIRE_MESSAGE(r.exit_code == 0 && !j.is_discarded(),
                        "actor_driver --case " << name << " failed: " << r.describe());
  return j;
}

struct background_case {
  std::unique_ptr<process> proc;
  std::string name;
  background_case(cluster& c, const std::string& case_name, const std::vector<std::string>& args,
                  const std::string& log_name = "")
      : name(case_name) {
    proc = std::make_unique<process>(actor_argv(case_name, args), driver_env(c),
                                     c.root() + "/logs",
                                     "actor-" + (log_name.empty() ? case_name : log_name));
    c.add_log(proc->err_path());
  }
  json finish(milliseconds timeout = 120s) {
    auto code = proc->wait_exit(timeout);
    json j = last_json(proc->out());
    BOOST_REQUIRE_MESSAGE(code.has_value() && *code == 0 && !j.is_discarded(),
                          "actor_driver --case " << name << " did not end well\n--- stdout\n"
                                                 << proc->out() << "\n--- stderr\n"
                                                 << proc->err());
    return j;
  }
};

/// Waits for `path` to exist; its content.
std::string await_content(const std::string& path, milliseconds limit) {
  auto deadline = std::chrono::steady_clock::now() + limit;
  while (!std::filesystem::exists(path)) {
    BOOST_REQUIRE_MESSAGE(std::chrono::steady_clock::now() < deadline,
                          "no " << path << " within " << limit.count() << " ms");
    std::this_thread::sleep_for(10ms);
  }
  return trim(read_file(path));
}

void touch(const std::string& path) {
  std::ofstream(path) << "1";
}

/// `rayctl actors --json` (optionally --name N): the rows.
json actor_rows(cluster& c, const std::vector<std::string>& extra = {}) {
  std::vector<std::string> args{"actors", "--json"};
  args.insert(args.end(), extra.begin(), extra.end());
  auto r = c.rayctl(args);
  BOOST_REQUIRE_MESSAGE(r.exit_code == 0, "rayctl actors failed: " << r.describe());
  json j = json::parse(r.out, nullptr, false);
  BOOST_REQUIRE_MESSAGE(!j.is_discarded(), "rayctl actors --json printed no JSON: " << r.out);
  if (j.is_object() && j.contains("actors"))
    return j["actors"];
  return j;
}

/// Polls `rayctl actors --json --name N` until a row is in `state`.
std::optional<json> await_actor_state(cluster& c, const std::string& name, const std::string& state,
                                      milliseconds limit) {
  auto deadline = std::chrono::steady_clock::now() + limit;
  while (std::chrono::steady_clock::now() < deadline) {
    for (auto& row : actor_rows(c, {"--name", name}))
      if (row.value("state", "") == state)
        return row;
    std::this_thread::sleep_for(50ms);
  }
  return std::nullopt;
}

bool contains(const json& j, const std::string& key, const std::string& text) {
  return j.value(key, std::string()).find(text) != std::string::npos;
}

} // namespace

BOOST_AUTO_TEST_SUITE(actors)

// Several callers (threads of two processes) call one named actor at once;
// each caller's calls arrive in the order they were made. max_concurrency 4
// runs four naps at once; the default runs them one by one.
BOOST_AUTO_TEST_CASE(call_order_under_load_and_max_concurrency) {
  cluster c("actors_order");
  c.start_head({}, 2);
  auto dir = c.root() + "/sig";
  std::filesystem::create_directories(dir);
  background_case p1(c, "order", {"create=1", "dir=" + dir, "tag=p1", "threads=4", "count=2000"},
                     "order-p1");
  await_content(dir + "/ready-p1", 60s);
  background_case p2(c, "order", {"dir=" + dir, "tag=p2", "threads=2", "count=2000"},
                     "order-p2");
  await_content(dir + "/ready-p2", 60s);
  touch(dir + "/go");
  json a = p1.finish(180s);
  json b = p2.finish(180s);
  BOOST_TEST_MESSAGE("order: " << a.dump() << " " << b.dump());
  BOOST_CHECK(a["in_order"] == true);
  BOOST_CHECK(b["in_order"] == true);
  BOOST_CHECK_EQUAL(a["total"].get<int>(), 8000);
  BOOST_CHECK_EQUAL(b["total"].get<int>(), 4000);

  json four = run_actor_case(c, "concurrency", {"n=4", "ms=400"});
  json one = run_actor_case(c, "concurrency", {"n=1", "ms=150"});
  BOOST_TEST_MESSAGE("concurrency: " << four.dump() << " " << one.dump());
  BOOST_CHECK_EQUAL(four["max_overlap"].get<int>(), 4);
  BOOST_CHECK_LT(four["wall_ms"].get<int>(), 8 * 400 * 3 / 4); // overlapped, not serial
  BOOST_CHECK_EQUAL(one["max_overlap"].get<int>(), 1);
  BOOST_CHECK_GE(one["wall_ms"].get<int>(), 8 * 150);
}

// SIGKILL of the worker process hosting an actor: it is restarted (its
// constructor runs again) within max_restarts, then it stays dead and calls
// say why.
BOOST_AUTO_TEST_CASE(restart_after_worker_sigkill) {
  cluster c("actors_restart");
  c.start_head({}, 2);
  auto dir = c.root() + "/sig";
  std::filesystem::create_directories(dir);
  background_case d(c, "restart", {"dir=" + dir, "restarts=1"});
  for (int round = 1; round <= 2; ++round) {
    auto pid = std::stoi(await_content(dir + "/pid-" + std::to_string(round), 60s));
    BOOST_REQUIRE_GT(pid, 1);
    BOOST_REQUIRE_EQUAL(::kill(pid, SIGKILL), 0);
    touch(dir + "/killed-" + std::to_string(round));
  }
  json out = d.finish(180s);
  BOOST_TEST_MESSAGE("restart: " << out.dump());
  BOOST_CHECK_EQUAL(out["first"].get<int>(), 101);
  BOOST_CHECK(out["after_1"]["kind"] == "none");
  BOOST_CHECK_EQUAL(out["value_1"].get<int>(), 101); // a new incarnation: 100 + 1
  BOOST_CHECK(out["after_2"]["kind"] == "actor_died_error");
  BOOST_CHECK_MESSAGE(contains(out["after_2"], "what", "restarts"),
                      "the error does not say the restarts are used up: " << out["after_2"]);
  bool dead_row = false;
  for (auto& row : actor_rows(c))
    if (row.value("state", "") == "DEAD" && row.value("restarts", -1) == 1
        && contains(row, "death_cause", "signal 9"))
      dead_row = true;
  BOOST_CHECK_MESSAGE(dead_row, "no DEAD row with 1 restart and a signal-9 cause: "
                                  << actor_rows(c).dump());
}

// A call in flight when the actor's process dies: retried on the restarted
// actor with max_task_retries 1; failed with max_task_retries 0.
BOOST_AUTO_TEST_CASE(max_task_retries_both_ways) {
  cluster c("actors_retries");
  c.start_head({}, 2);
  for (int retries : {1, 0}) {
    auto dir = c.root() + "/sig" + std::to_string(retries);
    std::filesystem::create_directories(dir);
    background_case d(c, "retries", {"dir=" + dir, "retries=" + std::to_string(retries)});
    auto pid = std::stoi(await_content(dir + "/pid-1", 60s));
    await_content(dir + "/slow-started", 60s); // the 3 s call runs in the actor now
    BOOST_REQUIRE_EQUAL(::kill(pid, SIGKILL), 0);
    json out = d.finish(120s);
    BOOST_TEST_MESSAGE("retries=" << retries << ": " << out.dump());
    if (retries == 1) {
      BOOST_CHECK(out["slow"]["kind"] == "none");
      BOOST_CHECK_EQUAL(out["value"].get<int>(), 7);
    } else {
      BOOST_CHECK(out["slow"]["kind"] == "actor_died_error");
    }
    BOOST_CHECK(out["after"]["kind"] == "none"); // restarted either way
    BOOST_CHECK_EQUAL(out["after_value"].get<int>(), 7);
  }
}

// Named, detached: a second driver finds it; names are unique per
// namespace; after a head kill -9 and restart the actor (on a worker node:
// the head's own worker processes end with it) still answers with its
// state and its row is intact.
BOOST_AUTO_TEST_CASE(named_detached_survives_driver_and_head_kill) {
  cluster c("actors_named");
  c.start_head({}, 2);
  auto& w = c.start_worker("w", {"--labels", "{\"zone\": \"w\"}"}, 1);
  BOOST_REQUIRE(wait_for_alive(c, 2, 15s).has_value());
  json made = run_actor_case(c, "named", {"name=kv", "ns=t", "start=40", "zone=w"});
  BOOST_TEST_MESSAGE("named: " << made.dump());
  BOOST_CHECK_EQUAL(made["value"].get<int>(), 42);
  BOOST_CHECK(made["duplicate"]["kind"] == "rayd::error");
  BOOST_CHECK_MESSAGE(contains(made["duplicate"], "what", "kv"),
                      "the duplicate error does not name the actor: " << made["duplicate"]);
  BOOST_CHECK(made["same_id"] == true);

  // The creating driver has exited: a detached actor lives on.
  json seen = run_actor_case(c, "lookup", {"name=kv", "ns=t", "add=0"});
  BOOST_CHECK_EQUAL(seen["value"].get<int>(), 42);
  BOOST_CHECK(seen["id"] == made["id"]);
  BOOST_CHECK(seen["missing"]["kind"] == "rayd::error");
  auto get = c.rayctl({"actor", "get", "kv", "--namespace", "t"});
  BOOST_CHECK_MESSAGE(get.exit_code == 0 && get.out.find("ALIVE") != std::string::npos,
                      "rayctl actor get: " << get.describe());
  auto missing = c.rayctl({"actor", "get", "nope", "--namespace", "t"});
  BOOST_CHECK_NE(missing.exit_code, 0);

  // Head kill -9: a driver that found the actor keeps calling it while the
  // head is down (calls go straight to the actor's process); after the
  // restart the row is intact and the actor answers.
  auto dir = c.root() + "/sig";
  std::filesystem::create_directories(dir);
  background_case caller(c, "calls_without_head", {"dir=" + dir, "name=kv", "ns=t", "count=100"});
  await_content(dir + "/ready", 60s);
  auto before = actor_rows(c, {"--name", "kv"});
  BOOST_REQUIRE_EQUAL(before.size(), 1u);
  BOOST_CHECK_EQUAL(before[0].value("node_id", ""), w.node_id());
  c.head().proc->signal(SIGKILL);
  c.head().proc->wait_exit(10s);
  touch(dir + "/head_down");
  json during = caller.finish(60s);
  BOOST_TEST_MESSAGE("calls without the head: " << during.dump());
  BOOST_CHECK(during["calls"]["kind"] == "none");
  BOOST_CHECK_EQUAL(during["last"].get<int>(), 142); // 42 + 100 calls of add(1)
  c.restart_head(20s);
  auto after = await_actor_state(c, "kv", "ALIVE", 20s);
  BOOST_REQUIRE_MESSAGE(after.has_value(), "no ALIVE row for kv after the head restart: "
                                             << actor_rows(c).dump());
  for (auto key : {"actor_id", "pid", "node_id", "class_name"})
    BOOST_CHECK_MESSAGE((*after)[key] == before[0][key], key << " changed: " << before[0][key]
                                                             << " -> " << (*after)[key]);
  json again = run_actor_case(c, "lookup", {"name=kv", "ns=t", "add=1"});
  BOOST_CHECK_EQUAL(again["value"].get<int>(), 143);
}

// 1,000 concurrent get-if-exists creates of one name: one actor.
BOOST_AUTO_TEST_CASE(concurrent_get_if_exists_yields_one_actor) {
  cluster c("actors_race");
  c.start_head({}, 2);
  json out = run_actor_case(c, "race", {"name=racer", "count=1000", "threads=8"}, 180s);
  BOOST_TEST_MESSAGE("race: " << out.dump());
  BOOST_CHECK_EQUAL(out["distinct_ids"].get<int>(), 1);
  BOOST_CHECK_EQUAL(out["errors"].get<int>(), 0);
  BOOST_CHECK_EQUAL(out["value"].get<int>(), 1);
  int live = 0;
  for (auto& row : actor_rows(c, {"--name", "racer"}))
    if (row.value("state", "") != "DEAD")
      ++live;
  BOOST_CHECK_EQUAL(live, 1);
}

// A non-detached actor dies with its driver, even when the driver is
// SIGKILLed.
BOOST_AUTO_TEST_CASE(owned_actor_dies_with_sigkilled_driver) {
  cluster c("actors_owned");
  c.start_head({}, 2);
  auto dir = c.root() + "/sig";
  std::filesystem::create_directories(dir);
  background_case d(c, "owned", {"dir=" + dir, "name=owned"});
  await_content(dir + "/ready", 60s);
  BOOST_REQUIRE(await_actor_state(c, "owned", "ALIVE", 10s).has_value());
  d.proc->signal(SIGKILL);
  d.proc->wait_exit(10s);
  auto dead = await_actor_state(c, "owned", "DEAD", 30s);
  BOOST_REQUIRE_MESSAGE(dead.has_value(),
                        "the owned actor is not DEAD 30 s after its driver was killed: "
                          << actor_rows(c).dump());
  BOOST_TEST_MESSAGE("owned: " << dead->dump());
  BOOST_CHECK_MESSAGE(contains(*dead, "death_cause", "owner"), "cause: " << dead->dump());
}

// rayd::kill with and without restart; a handle passed to a task; a
// constructor that throws; rayctl actor kill.
BOOST_AUTO_TEST_CASE(kill_handles_and_constructor_errors) {
  cluster c("actors_kill");
  c.start_head({}, 2);
  json k = run_actor_case(c, "kill", {});
  BOOST_TEST_MESSAGE("kill: " << k.dump());
  BOOST_CHECK(k["after_kill"]["kind"] == "actor_died_error");
  BOOST_CHECK_MESSAGE(contains(k["after_kill"], "what", "killed"), k["after_kill"]);
  BOOST_CHECK(k["after_restart_kill"]["kind"] == "none");
  BOOST_CHECK_MESSAGE(k["kill_right_after_create"]["kind"] == "none", k["kill_right_after_create"]);
  BOOST_CHECK(k["call_after_quick_kill"]["kind"] == "actor_died_error");
  BOOST_CHECK_EQUAL(k["restarted_value"].get<int>(), 11);

  json h = run_actor_case(c, "handle_to_task", {});
  BOOST_TEST_MESSAGE("handle_to_task: " << h.dump());
  BOOST_CHECK_EQUAL(h["from_task"].get<int>(), 15);
  BOOST_CHECK_EQUAL(h["after"].get<int>(), 15);

  json t = run_actor_case(c, "ctor_throws", {});
  BOOST_TEST_MESSAGE("ctor_throws: " << t.dump());
  BOOST_CHECK(t["call"]["kind"] == "actor_died_error");
  BOOST_CHECK_MESSAGE(contains(t["call"], "what", "bad config"), t["call"]);
  BOOST_CHECK_MESSAGE(contains(t["call"], "what", "constructor"), t["call"]);

  // rayctl actor kill on a detached named actor.
  run_actor_case(c, "named", {"name=victim", "ns=t"});
  auto r = c.rayctl({"actor", "kill", "victim", "--namespace", "t", "--no-restart"});
  BOOST_CHECK_MESSAGE(r.exit_code == 0, r.describe());
  BOOST_CHECK(await_actor_state(c, "victim", "DEAD", 10s).has_value());
  auto bad = c.rayctl({"actor", "kill", "no-such-actor"});
  BOOST_CHECK_NE(bad.exit_code, 0);
}

// 10,000 actors created and called once each.
BOOST_AUTO_TEST_CASE(ten_thousand_actors) {
  cluster c("actors_many");
  c.start_head({}, 2);
  json out = run_actor_case(c, "many", {"count=10000"}, 240s);
  BOOST_TEST_MESSAGE("many: " << out.dump());
  BOOST_CHECK_EQUAL(out["wrong"].get<int>(), 0);
  auto status = c.status_json();
  BOOST_TEST_MESSAGE("status actors: " << status.value("actors", json()).dump());
}

// SIGKILL of the node hosting an actor (one node in its own network
// namespace): the actor is restarted on the other node.
BOOST_AUTO_TEST_CASE(restart_after_node_sigkill) {
  netns_link net{"a"}; // first: outlives the cluster's processes
  const bool ns = skip_part_unless(net.ready(), "no network namespace (" + net.why_not()
                                                  + "): both worker nodes on loopback");
  cluster c("actors_node");
  std::vector<std::string> head_args;
  if (ns)
    head_args = {"--bind", net.host_ip()};
  c.start_head(head_args, 2);
  rayd_node* a = nullptr;
  if (ns) {
    std::string dir = c.root() + "/nsw";
    a = &c.spawn_node("nsw",
                      {"ip", "netns", "exec", net.ns(), rayd_bin(),
                       "--address=" + c.head().cluster_address(), "--block", "--session-dir", dir,
                       "--token-file", c.head().token_file(), "--num-cpus", "1", "--labels",
                       "{\"zone\": \"x\"}"},
                      dir);
    BOOST_REQUIRE_MESSAGE(c.wait_ready(*a, 15s), "the namespaced node did not come up\n"
                                                   << a->all_output());
  } else {
    a = &c.start_worker("wa", {"--labels", "{\"zone\": \"x\"}"}, 1);
  }
  auto& b = c.start_worker("wb", {"--labels", "{\"zone\": \"x\"}"}, 1);
  BOOST_REQUIRE(wait_for_alive(c, 3, 15s).has_value());
  auto dir = c.root() + "/sig";
  std::filesystem::create_directories(dir);
  background_case d(c, "node_death", {"dir=" + dir});
  auto first = await_content(dir + "/node-1", 60s);
  rayd_node* victim = first == a->node_id() ? a : &b;
  BOOST_REQUIRE_MESSAGE(first == a->node_id() || first == b.node_id(),
                        "the actor runs on " << first << ", not on a zone=x node");
  victim->proc->signal(SIGKILL);
  victim->proc->wait_exit(10s);
  touch(dir + "/killed");
  json out = d.finish(180s);
  BOOST_TEST_MESSAGE("node_death: " << out.dump());
  BOOST_CHECK(out["after"]["kind"] == "none");
  BOOST_CHECK(out["second_node"] != out["first_node"]);
  BOOST_CHECK_EQUAL(out["value"].get<int>(), 6); // constructed again: 5 + 1
}

BOOST_AUTO_TEST_SUITE_END()
