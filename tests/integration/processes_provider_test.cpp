// The `processes` node provider (autoscale/processes_provider.hpp) against a
// real head: it starts real rayd workers with a node type's resources and
// labels, they join as ALIVE nodes, a second provider object over the same
// base dir (a restarted head) finds them, terminate() makes them leave and
// their pids vanish, a dead node is reported terminated, and a pid that is no
// longer the node's is never signalled.
#define BOOST_TEST_MODULE processes_provider
#include <boost/test/unit_test.hpp>

#include <cstdlib>
#include <fstream>
#include <set>

#include <signal.h>

#include "autoscale/processes_provider.hpp"
#include "common/error.hpp"
#include "tests/integration/harness.hpp"

using namespace rayd;
using namespace rayd::autoscale;
using namespace rayd::integration;

namespace {

// The error of a failed call, "" when it succeeded.
template <class T>
std::string why(const caf::expected<T>& x) {
  return x ? std::string{} : describe(x.error());
}

std::map<std::string, provider_instance> listed(node_provider& p) {
  auto xs = p.list();
  BOOST_REQUIRE_MESSAGE(xs, why(xs));
  std::map<std::string, provider_instance> out;
  for (auto& x : *xs)
    out[x.instance_id] = x;
  return out;
}

/// A provider of cluster `name` whose nodes join `head`, state under `base`.
processes_provider_options options_for(rayd_node& head, const std::string& base,
                                       const std::string& name,
                                       std::chrono::milliseconds terminate_grace) {
  processes_provider_options opts;
  opts.cluster_name = name;
  opts.head_address = head.cluster_address();
  opts.token_file = head.token_file();
  opts.base_dir = base;
  opts.rayd_binary = rayd_bin();
  opts.terminate_grace = terminate_grace;
  return opts;
}

instance_spec worker_spec(const std::string& request) {
  instance_spec s;
  s.node_type = "small";
  s.resources = {{"CPU", 1}, {"disk_ssd", 2}};
  s.labels = {{"zone", "z1"}, {"tier", "test"}};
  s.tags = {{tag_launch_request, request}};
  return s;
}

} // namespace

BOOST_AUTO_TEST_CASE(processes_nodes_join_survive_a_restart_and_leave) {
  if (!require_or_skip(binaries_present(), "rayd/rayctl binaries not found in " + bin_dir()))
    return;
  cluster c{"provider"};
  auto base = c.root() + "/autoscaler";
  // Kills, by pid, any rayd naming the base dir should the test fail midway.
  session_guard guard{base};
  stray_guard strays;
  ::setenv("RAYD_TMPDIR", c.rayd_tmpdir().c_str(), 1);
  auto& head = c.start_head({}, 0);

  auto opts = options_for(head, base, "it-cluster", std::chrono::milliseconds{5000});
  processes_provider p{opts};

  auto ids = p.create(worker_spec("req-1"), 2);
  BOOST_REQUIRE_MESSAGE(ids, why(ids));
  BOOST_REQUIRE_EQUAL(ids->size(), 2u);
  std::map<std::string, pid_t> pids;
  for (auto& id : *ids) {
    c.add_log(p.session_dir(id) + "/rayd.log");
    c.add_log(p.session_dir(id) + "/rayd.err");
    auto pid = p.pid_of(id);
    BOOST_REQUIRE_MESSAGE(pid, "no live pid for " << id);
    strays.add(*pid);
    pids[id] = *pid;
    // Its own session dir under the base dir.
    BOOST_CHECK_EQUAL(p.session_dir(id), base + "/it-cluster/" + id);
  }
  // A retried launch request launches nothing new.
  auto again = p.create(worker_spec("req-1"), 2);
  BOOST_REQUIRE(again);
  BOOST_CHECK(std::set<std::string>(again->begin(), again->end())
              == std::set<std::string>(ids->begin(), ids->end()));

  // Both join as ALIVE nodes with the type's resources and labels.
  std::optional<json> last;
  auto st = wait_for_alive(c, 3, 30s, &last);
  BOOST_REQUIRE_MESSAGE(st, "3 ALIVE nodes expected; last status: "
                              << (last ? last->dump() : std::string{"none"}));
  std::map<std::string, std::string> node_ids;
  for (auto& id : *ids) {
    auto info = read_node_json(p.session_dir(id));
    BOOST_REQUIRE_MESSAGE(info, "no node.json in " << p.session_dir(id));
    auto node_id = info->value("node_id", std::string{});
    node_ids[id] = node_id;
    BOOST_CHECK_EQUAL(info->value("pid", 0), pids[id]);
    const json* n = find_node(*st, node_id);
    BOOST_REQUIRE_MESSAGE(n, "node " << node_id << " of " << id << " not in status");
    BOOST_CHECK_EQUAL(n->value("state", std::string{}), "ALIVE");
    const json& total = (*n)["resources_total"];
    BOOST_CHECK_EQUAL(total.value("CPU", -1.0), 1.0);
    BOOST_CHECK_EQUAL(total.value("disk_ssd", -1.0), 2.0);
    BOOST_CHECK(!total.contains("GPU"));
    const json& labels = (*n)["labels"];
    BOOST_CHECK_EQUAL(labels.value("zone", std::string{}), "z1");
    BOOST_CHECK_EQUAL(labels.value("tier", std::string{}), "test");
  }

  auto xs = listed(p);
  BOOST_REQUIRE_EQUAL(xs.size(), 2u);
  for (auto& id : *ids) {
    BOOST_REQUIRE(xs.count(id));
    BOOST_CHECK_EQUAL(to_string(xs[id].state), "running");
    BOOST_CHECK_EQUAL(xs[id].node_type, "small");
    BOOST_CHECK_EQUAL(xs[id].tags[tag_cluster], "it-cluster");
    BOOST_CHECK_EQUAL(xs[id].tags[tag_launch_request], "req-1");
  }

  // A restarted head: a new provider object over the same base dir sees the
  // same instances; one of another cluster name sees none.
  processes_provider restarted{opts};
  auto ys = listed(restarted);
  BOOST_REQUIRE_EQUAL(ys.size(), 2u);
  for (auto& id : *ids)
    BOOST_CHECK(ys.count(id) && ys[id].state == provider_instance::running);
  // Its retry of the launch request the first one made launches nothing.
  auto retried = restarted.create(worker_spec("req-1"), 2);
  BOOST_REQUIRE_MESSAGE(retried, why(retried));
  BOOST_CHECK(std::set<std::string>(retried->begin(), retried->end())
              == std::set<std::string>(ids->begin(), ids->end()));
  BOOST_CHECK_EQUAL(listed(restarted).size(), 2u);
  auto other_opts = opts;
  other_opts.cluster_name = "another-cluster";
  processes_provider other{other_opts};
  BOOST_CHECK(listed(other).empty());

  // The restarted provider terminates them: they leave, their pids vanish.
  auto t0 = std::chrono::steady_clock::now();
  auto err = restarted.terminate(*ids);
  auto took = std::chrono::duration_cast<std::chrono::milliseconds>(
    std::chrono::steady_clock::now() - t0);
  BOOST_REQUIRE_MESSAGE(!err, describe(err));
  BOOST_TEST_MESSAGE("terminate() of 2 processes nodes took " << took.count() << " ms");
  for (auto& [id, pid] : pids)
    BOOST_CHECK_MESSAGE(!pid_alive(pid), id << " (pid " << pid << ") still runs");
  BOOST_CHECK(listed(p).empty());
  BOOST_CHECK(listed(restarted).empty());
  auto gone = wait_until(
    [&c] {
      auto s = c.try_status();
      return s && alive_count(*s) == 1;
    },
    20s);
  BOOST_CHECK_MESSAGE(gone, "the terminated nodes are still ALIVE in status");
  // Terminating again (ids now unknown) is not an error.
  BOOST_CHECK(!p.terminate(*ids));
}

BOOST_AUTO_TEST_CASE(processes_reports_dead_nodes_and_never_signals_a_foreign_pid) {
  if (!require_or_skip(binaries_present(), "rayd/rayctl binaries not found in " + bin_dir()))
    return;
  cluster c{"provider2"};
  auto base = c.root() + "/autoscaler";
  session_guard guard{base};
  stray_guard strays;
  ::setenv("RAYD_TMPDIR", c.rayd_tmpdir().c_str(), 1);
  auto& head = c.start_head({}, 0);
  auto opts = options_for(head, base, "it2", std::chrono::milliseconds{2000});
  processes_provider p{opts};
  auto ids = p.create(worker_spec("req-a"), 2);
  BOOST_REQUIRE_MESSAGE(ids, why(ids));
  auto victim = (*ids)[0];
  auto keeper = (*ids)[1];
  auto victim_pid = p.pid_of(victim);
  auto keeper_pid = p.pid_of(keeper);
  BOOST_REQUIRE(victim_pid && keeper_pid);
  strays.add(*victim_pid);
  strays.add(*keeper_pid);

  // A node that dies on its own is reported terminated, with a reason.
  ::kill(*victim_pid, SIGKILL);
  BOOST_REQUIRE(wait_until([&p, &victim] { return listed(p)[victim].state
                                                  == provider_instance::terminated; },
                           10s));
  BOOST_CHECK_NE(listed(p)[victim].error.find("exited"), std::string::npos);
  BOOST_CHECK_EQUAL(to_string(listed(p)[keeper].state), "running");

  // The keeper's recorded pid now names a process that is not the node (as
  // after pid reuse): it must be reported terminated and never signalled.
  process foreign({"/bin/sleep", "60"}, {}, c.root(), "foreign");
  auto state_path = base + "/it2/instances.json";
  auto state = json::parse(read_file(state_path));
  for (auto& i : state["instances"])
    if (i["instance_id"] == keeper)
      i["pid"] = foreign.pid();
  BOOST_REQUIRE(write_file(state_path, state.dump()));
  BOOST_CHECK_EQUAL(to_string(listed(p)[keeper].state), "terminated");
  BOOST_CHECK(!p.pid_of(keeper));
  BOOST_CHECK(!p.terminate(*ids));
  BOOST_CHECK_MESSAGE(foreign.running(), "the provider signalled a process it did not start");
  BOOST_CHECK(listed(p).empty());
  // The real keeper is ours to clean up now (by pid, as the test started it).
  ::kill(*keeper_pid, SIGKILL);
  BOOST_CHECK(wait_until([keeper_pid] { return !pid_alive(*keeper_pid); }, 10s));
}

BOOST_AUTO_TEST_CASE(processes_adopts_a_node_whose_pid_was_never_recorded) {
  if (!require_or_skip(binaries_present(), "rayd/rayctl binaries not found in " + bin_dir()))
    return;
  cluster c{"provider3"};
  auto base = c.root() + "/autoscaler";
  session_guard guard{base};
  stray_guard strays;
  ::setenv("RAYD_TMPDIR", c.rayd_tmpdir().c_str(), 1);
  auto& head = c.start_head({}, 0);
  auto opts = options_for(head, base, "it3", std::chrono::milliseconds{2000});
  std::string id;
  pid_t pid = 0;
  {
    processes_provider first{opts};
    auto ids = first.create(worker_spec("req-crash"), 1);
    BOOST_REQUIRE_MESSAGE(ids, why(ids));
    id = (*ids)[0];
    pid = *first.pid_of(id);
    strays.add(pid);
  }
  // As if the provider died between spawning the node and recording its pid:
  // the record exists (written before the spawn) with pid 0.
  auto state_path = base + "/it3/instances.json";
  auto state = json::parse(read_file(state_path));
  for (auto& i : state["instances"]) {
    i["pid"] = 0;
    i["start_ticks"] = 0;
  }
  BOOST_REQUIRE(write_file(state_path, state.dump()));
  processes_provider second{opts};
  auto l = listed(second);
  BOOST_REQUIRE_EQUAL(l.size(), 1u);
  BOOST_CHECK_EQUAL(to_string(l[id].state), "running");
  BOOST_CHECK_EQUAL(second.pid_of(id).value_or(0), pid);
  // The same launch request again: the adopted node counts, none is added.
  auto again = second.create(worker_spec("req-crash"), 1);
  BOOST_REQUIRE_MESSAGE(again, why(again));
  BOOST_CHECK(*again == std::vector<std::string>{id});
  BOOST_CHECK_EQUAL(listed(second).size(), 1u);
  BOOST_CHECK(!second.terminate({id}));
  BOOST_CHECK(wait_until([pid] { return !pid_alive(pid); }, 10s));
  BOOST_CHECK(listed(second).empty());
}

BOOST_AUTO_TEST_CASE(processes_refuses_a_missing_binary_or_token) {
  temp_dir dir{"rayd_prov"};
  processes_provider_options opts;
  opts.cluster_name = "c";
  opts.head_address = "127.0.0.1:1";
  opts.token_file = dir.path() + "/token";
  opts.base_dir = dir.path();
  opts.rayd_binary = dir.path() + "/no-such-rayd";
  processes_provider p{opts};
  auto r = p.create(worker_spec("r"), 1);
  BOOST_REQUIRE(!r);
  BOOST_CHECK(code_of(r.error()) == errc::invalid_argument);
  BOOST_CHECK_NE(describe(r.error()).find("no-such-rayd"), std::string::npos);
  opts.rayd_binary = rayd_bin();
  opts.token_file.clear();
  processes_provider q{opts};
  auto t = q.create(worker_spec("r"), 1);
  BOOST_REQUIRE(!t);
  BOOST_CHECK_NE(describe(t.error()).find("token"), std::string::npos);
  BOOST_CHECK(listed(q).empty());
}
