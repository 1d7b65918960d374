#define BOOST_TEST_MODULE tasks
#include <boost/test/unit_test.hpp>

// Tasks and objects on real processes (docs/tasks.md): a driver program
// (task_programs/task_driver.cpp) runs against clusters of real rayd nodes;
// the nodes run it again as their worker processes. This file: placement and
// spillback (one node in its own network namespace when root), dependencies,
// big objects across nodes, infeasible shapes and pending demand, errors
// thrown by tasks, type mismatches. tasks_failure_test.cpp kills things.

#include <set>

#include "tests/integration/netns_link.hpp"
#include "tests/integration/tasks_common.hpp"

using namespace rayd::integration;

namespace {

// A head (2 CPUs) and two workers (1 CPU each) on loopback; node i carries
// resource "n<i>" (head n0, w1 n1, w2 n2).
struct resource_nodes {
  explicit resource_nodes(const std::string& label, const std::string& extra_head = "")
      : c(label) {
    nodes.push_back(&c.start_head({"--resources", node_resource(0, extra_head)}, 2));
    nodes.push_back(&c.start_worker("w1", {"--resources", node_resource(1)}, 1));
    nodes.push_back(&c.start_worker("w2", {"--resources", node_resource(2)}, 1));
    for (auto* n : nodes)
      logs.add(n->session_dir);
    std::optional<json> last;
    BOOST_REQUIRE_MESSAGE(wait_for_alive(c, 3, 10s, &last),
                          "3 nodes not ALIVE: " << (last ? last->dump(2) : "no status"));
  }
  std::string ids() const {
    return "nodes=" + nodes[0]->node_id() + "," + nodes[1]->node_id() + "," +
           nodes[2]->node_id();
  }
  cluster c;
  worker_logs_on_failure logs;  // after c: printed before c's logs
  std::vector<rayd_node*> nodes;
};

}  // namespace

BOOST_AUTO_TEST_SUITE(tasks)

// Case 1: tasks forced onto each of 3 nodes (one in its own network namespace
// when root) run there; a fan-out of plain tasks spills beyond the head.
BOOST_AUTO_TEST_CASE(placement_across_three_nodes_and_spillback) {
  netns_link net{"t"};  // first: outlives the cluster's processes
  const bool ns = skip_part_unless(net.ready(), "no network namespace (" + net.why_not() +
                                                    "): all 3 nodes on loopback");
  cluster c("tasks_place");
  worker_logs_on_failure logs;
  std::vector<rayd_node*> nodes;
  std::vector<std::string> bind;
  if (ns)
    bind = {"--bind", net.host_ip()};
  std::vector<std::string> head_args = bind;
  head_args.insert(head_args.end(), {"--resources", node_resource(0)});
  nodes.push_back(&c.start_head(head_args, 2));
  nodes.push_back(&c.start_worker("w1", {"--resources", node_resource(1)}, 1));
  if (ns) {
    std::string dir = c.root() + "/nsw";
    auto& w = c.spawn_node("nsw",
                           {"ip", "netns", "exec", net.ns(), rayd_bin(),
                            "--address=" + c.head().cluster_address(), "--block",
                            "--session-dir", dir, "--token-file", c.head().token_file(),
                            "--num-cpus", "1", "--resources", node_resource(2)},
                           dir);
    BOOST_REQUIRE_MESSAGE(c.wait_ready(w, 15s),
                          "the namespaced node did not come up\n" << w.all_output());
    nodes.push_back(&w);
  } else {
    nodes.push_back(&c.start_worker("w2", {"--resources", node_resource(2)}, 1));
  }
  for (auto* n : nodes)
    logs.add(n->session_dir);
  std::optional<json> last;
  BOOST_REQUIRE_MESSAGE(wait_for_alive(c, 3, 10s, &last),
                        "3 nodes not ALIVE: " << (last ? last->dump(2) : "no status"));
  if (ns) {
    const json* n = find_node(*last, nodes[2]->node_id());
    BOOST_REQUIRE(n != nullptr);
    BOOST_REQUIRE_MESSAGE(n->value("address", std::string()).rfind(net.ns_ip() + ":", 0) == 0,
                          "the namespaced node advertises " << n->value("address", std::string())
                                                            << ", not " << net.ns_ip());
  }

  json out = run_case(c, "placement",
                      {"nodes=" + nodes[0]->node_id() + "," + nodes[1]->node_id() + "," +
                           nodes[2]->node_id(),
                       "count=32", "ms=400"},
                      180s);
  BOOST_TEST_MESSAGE("placement: " << out.dump());
  BOOST_REQUIRE(out["pinned"].is_array() && out["pinned"].size() == 3);
  std::set<std::string> pinned;
  for (int i = 0; i < 3; ++i) {
    std::string ran = out["pinned"][i].get<std::string>();
    BOOST_CHECK_MESSAGE(ran == nodes[i]->node_id(), "the task needing n" << i << " ran on '"
                                                                         << ran << "', not on "
                                                                         << nodes[i]->node_id());
    pinned.insert(ran);
  }
  BOOST_CHECK_EQUAL(pinned.size(), 3u);

  // 32 tasks of 400 ms on a 2-CPU head (6.4 s there alone): once its CPUs
  // are taken, leases spill to the workers. (The pinned tasks' idle leases
  // hold a CPU on every node for the first second.)
  BOOST_REQUIRE(out["fanout"].is_array() && out["fanout"].size() == 32);
  std::map<std::string, int> per_node;
  for (auto& n : out["fanout"])
    ++per_node[n.get<std::string>()];
  std::ostringstream spread;
  for (auto& [n, k] : per_node)
    spread << n << ": " << k << "  ";
  BOOST_TEST_MESSAGE("fan-out spread: " << spread.str());
  for (auto& [n, k] : per_node)
    BOOST_CHECK_MESSAGE(n == nodes[0]->node_id() || n == nodes[1]->node_id() ||
                            n == nodes[2]->node_id(),
                        "a fan-out task ran on an unknown node '" << n << "'");
  BOOST_CHECK_MESSAGE(per_node.size() > 1,
                      "all 32 fan-out tasks ran on one node (no spillback): " << spread.str());
}

// More tasks at once than the leases of a full cluster pipeline (256 per
// leased thread): they all run as results free room.
BOOST_AUTO_TEST_CASE(more_tasks_than_a_full_cluster_pipelines) {
  cluster c("tasks_many");
  worker_logs_on_failure logs;
  logs.add(c.start_head({}, 1).session_dir);
  const int count = 3000;
  json out = run_case(c, "many", {"count=" + std::to_string(count)});
  BOOST_TEST_MESSAGE("many: " << out.dump());
  BOOST_CHECK_EQUAL(out.value("sum", int64_t(0)), int64_t(count) * (count + 1) / 2);
  // The driver reported its task events to the head (rayctl tasks).
  exec_result r = c.rayctl({"tasks", "--json", "--limit", "10"});
  BOOST_REQUIRE_MESSAGE(r.exit_code == 0, r.describe());
  json tasks = json::parse(r.out, nullptr, false);
  BOOST_REQUIRE_MESSAGE(tasks.is_object() && tasks["tasks"].is_array(), r.out);
  BOOST_CHECK_EQUAL(tasks["tasks"].size(), 10u);
  for (auto& t : tasks["tasks"]) {
    BOOST_CHECK_MESSAGE(t.value("state", std::string()) == "FINISHED", t.dump());
    BOOST_CHECK_MESSAGE(!t.value("function", std::string()).empty(), t.dump());
  }
}

// Case 2: a chain of 20 tasks, a diamond, and stored objects passed between
// tasks on different nodes.
BOOST_AUTO_TEST_CASE(dependency_chains_diamonds_and_objects_between_nodes) {
  resource_nodes t("tasks_deps");
  const uint64_t size = 300 * 1024;  // above the 100 KiB inline limit: stored on the node
  json out = run_case(t.c, "deps", {t.ids(), "size=" + std::to_string(size)});
  BOOST_TEST_MESSAGE("deps: " << out.dump().substr(0, 2000));
  BOOST_CHECK_EQUAL(out.value("chain", -1), 20);
  BOOST_CHECK_EQUAL(out.value("diamond", -1), 30 * 1000 + 7);

  const json& sd = out["stored_diamond"];
  BOOST_CHECK_EQUAL(sd.value("total", uint64_t(0)), 2 * size);
  BOOST_CHECK_MESSAGE(sd.value("same_checksum", false), "b and c read different bytes");
  BOOST_CHECK_EQUAL(sd["b"].value("checksum", uint64_t(0)),
                    out.value("expected_checksum", uint64_t(1)));
  BOOST_CHECK_EQUAL(sd.value("nodes", std::string()), t.nodes[1]->node_id() + "," +
                                                          t.nodes[2]->node_id() + "," +
                                                          t.nodes[0]->node_id());

  const json& relay = out["relay"];
  BOOST_CHECK_MESSAGE(relay.value("intact", false), "the relayed blob arrived changed");
  std::vector<std::string> want;
  for (int i = 0; i < 6; ++i)
    want.push_back(t.nodes[i % 3]->node_id());
  BOOST_CHECK_MESSAGE(relay["path"] == json(want), "the relay passed " << relay["path"].dump()
                                                                       << ", not "
                                                                       << json(want).dump());
}

// Case 3: 1 MiB and 256 MiB objects made on one node and read on another;
// a 256 MiB put read back intact (by the driver, by tasks on its node and
// on another), and a second one written into the first one's memory.
BOOST_AUTO_TEST_CASE(big_objects_across_nodes_and_big_put) {
  resource_nodes t("tasks_big");
  for (uint64_t size : {uint64_t(1) << 20, uint64_t(256) << 20}) {
    const bool big = size > (uint64_t(1) << 20);
    std::vector<std::string> args{t.ids(), "size=" + std::to_string(size)};
    if (big)
      args.push_back("put=1");
    json out = run_case(t.c, "big", args, 600s);
    BOOST_TEST_MESSAGE("big " << size << ": " << out.dump());
    const json& want = out["expected"];
    BOOST_CHECK_EQUAL(want.value("size", uint64_t(0)), size);
    for (const char* key : {"remote", "driver_read"}) {
      BOOST_CHECK_MESSAGE(out[key].value("size", uint64_t(0)) == size,
                          key << " size " << out[key].dump() << " for " << size);
      BOOST_CHECK_MESSAGE(out[key].value("checksum", uint64_t(0)) ==
                              want.value("checksum", uint64_t(1)),
                          key << " checksum differs for " << size << ": " << out[key].dump());
    }
    BOOST_CHECK_EQUAL(out["remote"].value("node", std::string()), t.nodes[1]->node_id());
    if (big) {
      BOOST_CHECK_EQUAL(out["put"].value("size", uint64_t(0)), size);
      BOOST_CHECK_MESSAGE(out["put"].value("intact", false), "the 256 MiB put came back changed");
      BOOST_CHECK_EQUAL(out["put_remote"].value("checksum", uint64_t(0)),
                        want.value("checksum", uint64_t(1)));
      BOOST_CHECK_EQUAL(out["put_remote"].value("node", std::string()), t.nodes[1]->node_id());
      BOOST_CHECK_EQUAL(out["put_local"].value("checksum", uint64_t(0)),
                        want.value("checksum", uint64_t(1)));
      BOOST_CHECK_EQUAL(out["put_local"].value("node", std::string()), t.nodes[0]->node_id());
      BOOST_CHECK_MESSAGE(out["put_again"].value("intact", false),
                          "a second put into recycled memory came back changed");
    }
  }
  // The drivers have exited: their objects on every node are freed (after the
  // node's 2 s grace for a driver's last connection, docs/tasks.md).
  json last;
  bool freed = wait_until(
    [&] {
      last = t.c.status_json();
      for (auto& n : last["nodes"])
        if (n.value("state", std::string()) == "ALIVE"
            && n["object_store"].value("objects", uint64_t(1)) != 0)
          return false;
      return true;
    },
    std::chrono::seconds(20), std::chrono::milliseconds(200));
  BOOST_CHECK_MESSAGE(freed, "objects of exited drivers were not freed: " << last.dump());
}

// Case 6: shapes no node can hold fail at once, naming the shape; a task
// waiting for a busy resource shows as pending demand in rayctl status.
BOOST_AUTO_TEST_CASE(infeasible_tasks_fail_and_busy_ones_show_as_demand) {
  cluster c("tasks_infeasible");
  worker_logs_on_failure logs;
  auto& head = c.start_head({"--resources", "{\"slot\": 1}"}, 2);
  logs.add(head.session_dir);

  json out = run_case(c, "infeasible", {});
  BOOST_TEST_MESSAGE("infeasible: " << out.dump());
  for (const auto& [key, needle] :
       std::vector<std::pair<std::string, std::string>>{{"gpus", "GPU: 8"},
                                                        {"custom", "unicorn: 2"}}) {
    const json& e = out[key];
    BOOST_CHECK_MESSAGE(e.value("kind", "") == "task_error", key << ": " << e.dump());
    BOOST_CHECK_EQUAL(e.value("remote_type", ""), "rayd::infeasible");
    // The resource and the amount asked for, as the shape is described
    // ("{GPU: 8.0}"); a bare "8" would be found in any hex node id.
    BOOST_CHECK_MESSAGE(e.value("remote_message", "").find(needle) != std::string::npos,
                        key << ": the message does not name the shape (" << needle
                            << "): " << e.dump());
  }
  BOOST_CHECK_EQUAL(out.value("after", -1), 5);

  // Two tasks want the one slot: the second waits until the test releases
  // the first, and meanwhile shows as demand.
  temp_dir dir("tasks_demand");
  background_driver d(c, "demand", {"dir=" + dir.path()});
  BOOST_REQUIRE_MESSAGE(
      wait_until([&] { return !files_with_prefix(dir.path(), "started.1.").empty(); }, 30s),
      "the first task did not start");
  std::optional<json> seen;
  json last_status;
  bool demand = wait_until(
      [&] {
        auto st = c.try_status();
        if (!st)
          return false;
        last_status = *st;
        for (auto& dm : (*st)["pending_demands"])
          if (dm["shape"].value("slot", 0.0) == 1.0 && dm.value("count", 0) >= 1) {
            seen = st;
            return true;
          }
        return false;
      },
      15s, 50ms);
  BOOST_CHECK_MESSAGE(demand, "no pending demand for {slot: 1} while a task waits for it: "
                                  << last_status.dump(2));
  if (seen) {
    const json* n = find_node(*seen, head.node_id());
    BOOST_CHECK_MESSAGE(n != nullptr && !(*n)["pending_demands"].empty(),
                        "the head's own entry lists no demand: " << seen->dump(2));
  }
  BOOST_REQUIRE(write_file(dir.path() + "/release", "1"));
  json r = d.finish(60s);
  BOOST_CHECK_EQUAL(r.value("first", -1), 1);
  BOOST_CHECK_EQUAL(r.value("second", -1), 4);
  // Once served, the demand is gone.
  BOOST_CHECK_MESSAGE(wait_until(
                          [&] {
                            auto st = c.try_status();
                            return st && (*st)["pending_demands"].empty();
                          },
                          10s, 100ms),
                      "pending demand stays after the tasks ran");
}

// Case 7: a task that throws: task_error with the exception's type and
// message, and the node it ran on.
BOOST_AUTO_TEST_CASE(throwing_task_reports_type_message_and_node) {
  resource_nodes t("tasks_throw");
  json out = run_case(t.c, "throws", {});
  BOOST_TEST_MESSAGE("throws: " << out.dump());
  const json& e = out["runtime_error"];
  BOOST_CHECK_EQUAL(e.value("kind", ""), "task_error");
  BOOST_CHECK_EQUAL(e.value("remote_type", ""), "std::runtime_error");
  BOOST_CHECK_EQUAL(e.value("remote_message", ""), "boom 42");
  BOOST_CHECK_EQUAL(e.value("function", ""), "fails");
  BOOST_CHECK_EQUAL(e.value("node_id", ""), t.nodes[1]->node_id());
  BOOST_CHECK_MESSAGE(contains_ci(e.value("what", ""), "boom 42"),
                      "what() does not carry the message: " << e.dump());
  const json& b = out["custom"];
  BOOST_CHECK_EQUAL(b.value("kind", ""), "task_error");
  BOOST_CHECK_EQUAL(b.value("remote_type", ""), "bad_input");
  BOOST_CHECK_EQUAL(b.value("remote_message", ""), "negative input -5");
  BOOST_CHECK_EQUAL(b.value("node_id", ""), t.nodes[1]->node_id());
}

// Case 9: arguments of the wrong type (by name), the wrong count, and
// reading an object as the wrong type.
BOOST_AUTO_TEST_CASE(type_mismatches) {
  cluster c("tasks_types");
  worker_logs_on_failure logs;
  logs.add(c.start_head({}, 2).session_dir);
  json out = run_case(c, "types", {});
  BOOST_TEST_MESSAGE("types: " << out.dump());
  const json& byname = out["by_name"];
  BOOST_CHECK_EQUAL(byname.value("kind", ""), "task_error");
  BOOST_CHECK_EQUAL(byname.value("remote_type", ""), "rayd::type_mismatch");
  BOOST_CHECK_MESSAGE(contains_ci(byname.value("remote_message", ""), "argument 1") &&
                          contains_ci(byname.value("remote_message", ""), "int"),
                      "the mismatch message names neither argument nor type: " << byname.dump());
  BOOST_CHECK_EQUAL(out["arity"].value("kind", ""), "task_error");
  BOOST_CHECK_EQUAL(out["arity"].value("remote_type", ""), "rayd::type_mismatch");
  BOOST_CHECK_EQUAL(out["get_string_as_int"].value("kind", ""), "serialization_error");
  BOOST_CHECK_EQUAL(out["result_as_int"].value("kind", ""), "serialization_error");
  BOOST_CHECK_EQUAL(out.value("after", -1), 42);
}

BOOST_AUTO_TEST_SUITE_END()
