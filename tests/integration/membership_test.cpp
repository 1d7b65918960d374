#define BOOST_TEST_MODULE membership
#include <boost/test/unit_test.hpp>

#include <map>
#include <set>

#include "tests/integration/harness.hpp"

using namespace rayd::integration;

namespace {

double number_or(const json& obj, const std::string& key, double fallback) {
  if (!obj.is_object() || !obj.contains(key) || !obj[key].is_number())
    return fallback;
  return obj[key].get<double>();
}

// What a node was started with, to compare against status.
struct expected_node {
  const rayd_node* node;
  std::string name;
  double cpus;
  json custom_resources;  // {"name": amount}
  json labels;            // {"k": "v"}
  bool is_head;
};

void check_node_entry(const json& status, const expected_node& e) {
  const json* n = find_node(status, e.node->node_id());
  BOOST_REQUIRE_MESSAGE(n != nullptr, "node " << e.name << " (" << e.node->node_id()
                                              << ") missing from status:\n"
                                              << status.dump(2));
  BOOST_TEST_CONTEXT("node " << e.name << ": " << n->dump()) {
    BOOST_CHECK_EQUAL(n->value("state", std::string()), "ALIVE");
    BOOST_CHECK_EQUAL(n->value("name", std::string()), e.name);
    BOOST_CHECK_EQUAL(n->value("is_head", !e.is_head), e.is_head);
    BOOST_CHECK_EQUAL(n->value("pid", -1), e.node->pid());
    BOOST_CHECK(!n->value("address", std::string()).empty());
    BOOST_CHECK_EQUAL(n->value("death_reason", std::string("?")), "");
    BOOST_REQUIRE(n->contains("resources_total") && (*n)["resources_total"].is_object());
    const json& total = (*n)["resources_total"];
    BOOST_CHECK_EQUAL(number_or(total, "CPU", -1), e.cpus);
    for (const auto& [k, v] : e.custom_resources.items())
      BOOST_CHECK_MESSAGE(number_or(total, k, -1) == v.get<double>(),
                          "resource " << k << " expected " << v << " in " << total.dump());
    BOOST_REQUIRE(n->contains("resources_available") && (*n)["resources_available"].is_object());
    BOOST_CHECK_EQUAL(number_or((*n)["resources_available"], "CPU", -1), e.cpus);
    BOOST_REQUIRE(n->contains("labels"));
    // The given labels are all there with their values (a rayd may add its own).
    for (const auto& [k, v] : e.labels.items())
      BOOST_CHECK_MESSAGE((*n)["labels"].contains(k) && (*n)["labels"][k] == v,
                          "label " << k << "=" << v << " missing in " << (*n)["labels"].dump());
  }
}

}  // namespace

BOOST_AUTO_TEST_CASE(head_and_two_workers_alive_with_their_resources) {
  cluster c("membership");
  auto& head = c.start_head({"--resources", R"({"disk_ssd": 2})", "--labels", R"({"zone": "h"})",
                             "--node-name", "it-head"},
                            2);
  auto& w1 = c.start_worker("w1",
                            {"--resources", R"({"gadget": 3, "disk_ssd": 1})", "--labels",
                             R"({"zone": "a", "tier": "gold"})", "--node-name", "it-w1"},
                            1);
  auto& w2 = c.start_worker("w2", {"--labels", R"({"zone": "b"})", "--node-name", "it-w2"}, 3);

  // node.json is written once registered, so all three are members already;
  // allow a moment for the status path anyway.
  std::optional<json> st;
  BOOST_REQUIRE_MESSAGE(wait_for_alive(c, 3, 5s, &st),
                        "expected 3 ALIVE nodes, got: " << (st ? st->dump(2) : "no status"));
  BOOST_CHECK_EQUAL((*st)["nodes"].size(), 3u);

  std::vector<expected_node> expected{
      {&head, "it-head", 2, json{{"disk_ssd", 2}}, json{{"zone", "h"}}, true},
      {&w1, "it-w1", 1, json{{"gadget", 3}, {"disk_ssd", 1}}, json{{"zone", "a"}, {"tier", "gold"}},
       false},
      {&w2, "it-w2", 3, json::object(), json{{"zone", "b"}}, false},
  };
  for (const auto& e : expected)
    check_node_entry(*st, e);

  int heads = 0;
  for (const auto& n : (*st)["nodes"])
    if (n.value("is_head", false))
      ++heads;
  BOOST_CHECK_EQUAL(heads, 1);

  // Every node.json names the head's addresses and the same cluster.
  for (const rayd_node* n : {&head, &w1, &w2}) {
    BOOST_CHECK_EQUAL(n->cluster_address(), head.cluster_address());
    BOOST_CHECK_EQUAL(n->api_address(), head.api_address());
    BOOST_CHECK_EQUAL(n->info.value("is_head", !(n == &head)), n == &head);
  }
  BOOST_CHECK(!st->value("cluster_id", std::string()).empty());
  BOOST_CHECK_EQUAL(head.info.value("cluster_id", std::string("<none in node.json>")),
                    st->value("cluster_id", std::string()));
  BOOST_CHECK(st->contains("epoch") && (*st)["epoch"].is_number());
  BOOST_CHECK(file_exists(head.token_file()));

  // rayctl nodes --json lists the same nodes.
  exec_result nodes = c.rayctl({"nodes", "--json"});
  BOOST_REQUIRE_MESSAGE(nodes.exit_code == 0, nodes.describe());
  json nj = json::parse(nodes.out, nullptr, false);
  BOOST_REQUIRE_MESSAGE(!nj.is_discarded(), "rayctl nodes --json: invalid JSON:\n" << nodes.out);
  json list = node_list(nj);
  std::set<std::string> listed;
  for (const auto& n : list) {
    listed.insert(n.value("node_id", std::string()));
    BOOST_CHECK_EQUAL(n.value("state", std::string()), "ALIVE");
  }
  BOOST_CHECK((listed == std::set<std::string>{head.node_id(), w1.node_id(), w2.node_id()}));

  // The human summary counts 3 healthy nodes and no dead one, lists each
  // alive node, and sums their resources, each on a line of its own (an
  // exact line match: a bare "3" would also be found in resource amounts).
  exec_result human = c.rayctl({"status"});
  BOOST_REQUIRE_MESSAGE(human.exit_code == 0, human.describe());
  std::set<std::string> human_lines;
  for (const auto& l : nonempty_lines(human.out))
    human_lines.insert(trim(l));
  for (const std::string want : {"Healthy: 3 nodes", "Dead: 0 nodes", "0.0/6.0 CPU",
                                 "0.0/3.0 disk_ssd", "0.0/3.0 gadget"})
    BOOST_CHECK_MESSAGE(human_lines.count(want) == 1,
                        "human status has no line \"" << want << "\":\n"
                                                      << human.out);
  for (const rayd_node* n : {&head, &w1, &w2}) {
    bool listed = false;
    for (const auto& l : human_lines)
      listed = listed || (l.find(n->node_id().substr(0, 12)) != std::string::npos &&
                          l.find(n == &head ? "head" : "worker") == 0);
    BOOST_CHECK_MESSAGE(listed, "human status does not list node " << n->node_id() << ":\n"
                                                                   << human.out);
  }
  // `rayctl nodes` (human) works too and names the nodes.
  exec_result nodes_h = c.rayctl({"nodes"});
  BOOST_CHECK_MESSAGE(nodes_h.exit_code == 0, nodes_h.describe());
  BOOST_CHECK_MESSAGE(nodes_h.out.find("it-w1") != std::string::npos ||
                          nodes_h.out.find(w1.node_id()) != std::string::npos,
                      "rayctl nodes does not list it-w1:\n"
                          << nodes_h.out);
}

BOOST_AUTO_TEST_CASE(wrong_token_is_refused) {
  cluster c("membership_token");
  auto& head = c.start_head();
  auto& bad = c.spawn_node("bad", {rayd_bin(), "--address=" + head.cluster_address(), "--block",
                                   "--session-dir", c.root() + "/bad", "--token", "wrong",
                                   "--num-cpus", "1", "--node-name", "it-bad"},
                           c.root() + "/bad");
  auto code = bad.proc->wait_exit(5s);
  BOOST_REQUIRE_MESSAGE(code.has_value(), "worker with a wrong token still runs after 5 s");
  BOOST_CHECK_NE(*code, 0);
  BOOST_CHECK_EQUAL(*code, 1);  // docs/cli.md: token refused is a runtime failure
  BOOST_CHECK_MESSAGE(contains_ci(bad.all_output(), "wrong cluster token"),
                      "the refused worker's output does not say its token is wrong:\n"
                          << bad.all_output());
  // The head names the node it refused and why.
  bool logged = wait_until(
      [&head] {
        std::string log = read_file(head.log_path());
        auto at = log.find("refused join of node ");
        return at != std::string::npos &&
               log.find("it-bad", at) != std::string::npos &&
               log.find("wrong cluster token", at) != std::string::npos;
      },
      2s);
  BOOST_CHECK_MESSAGE(logged, "the head's rayd.log does not log the refused join of it-bad:\n"
                                  << tail_file(head.log_path()));
  BOOST_CHECK(!file_exists(bad.node_json_path()));

  json st = c.status_json();
  BOOST_CHECK_EQUAL(st["nodes"].size(), 1u);
  for (const auto& n : st["nodes"])
    BOOST_CHECK_NE(n.value("name", std::string()), "it-bad");
}

BOOST_AUTO_TEST_CASE(missing_token_is_refused) {
  cluster c("membership_notoken");
  auto& head = c.start_head();
  // No --token/--token-file, no RAYD_TOKEN*, RAYD_TMPDIR private and empty, and
  // a session dir not nested under the head's: nothing to find a token from.
  auto& bad = c.spawn_node("notoken", {rayd_bin(), "--address=" + head.cluster_address(),
                                       "--block", "--session-dir", c.root() + "/notoken",
                                       "--num-cpus", "1", "--node-name", "it-notoken"},
                           c.root() + "/notoken");
  auto code = bad.proc->wait_exit(5s);
  BOOST_REQUIRE_MESSAGE(code.has_value(), "worker without a token still runs after 5 s");
  BOOST_CHECK_NE(*code, 0);
  BOOST_CHECK_MESSAGE(contains_ci(bad.all_output(), "token"),
                      "the refused worker's output does not mention the token:\n"
                          << bad.all_output());
  BOOST_CHECK(!file_exists(bad.node_json_path()));

  json st = c.status_json();
  BOOST_CHECK_EQUAL(st["nodes"].size(), 1u);
  for (const auto& n : st["nodes"])
    BOOST_CHECK_NE(n.value("name", std::string()), "it-notoken");
}
