// Unit tests of the cluster config file (autoscale/cluster_config.hpp):
// defaults, every class of error with its exact file:line and key path, the
// shipped examples, and garbled input that must give errors, never a throw.
#define BOOST_TEST_MODULE cluster_config
#include <boost/test/unit_test.hpp>

#include <sys/resource.h>
#include <unistd.h>

#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <random>
#include <regex>

#include "autoscale/cluster_config.hpp"
#include "common/error.hpp"

using namespace rayd;
using namespace rayd::autoscale;
namespace fs = std::filesystem;

namespace {

// The smallest valid config: every other key takes its default.
const std::string minimal = R"(provider:
  type: processes
available_node_types:
  head:
    resources: {CPU: 0}
  worker:
    resources: {CPU: 2}
head_node_type: head
)";

/// The error message of parsing `text` as "cluster.yaml" ("" if it parsed).
std::string error_of(const std::string& text) {
  auto res = parse_cluster_config(text, "cluster.yaml");
  if (res)
    return "";
  BOOST_CHECK(code_of(res.error()) == errc::invalid_argument);
  return describe(res.error());
}

/// `minimal` with `extra` appended (top-level keys).
std::string with(const std::string& extra) {
  return minimal + extra;
}

/// The error of `res` for a failure message ("" when it holds a value; Boost
/// builds the message even when the check passes).
std::string why(const caf::expected<cluster_config>& res) {
  return res ? std::string{} : describe(res.error());
}

std::string source_dir() {
  const char* dir = std::getenv("RAYD_SOURCE_DIR");
  if (dir == nullptr) {
    BOOST_FAIL("RAYD_SOURCE_DIR is not set (ctest sets it)");
    return "";
  }
  return dir;
}

std::string read_file(const std::string& path) {
  std::ifstream in{path};
  std::ostringstream text;
  text << in.rdbuf();
  return text.str();
}

} // namespace

BOOST_AUTO_TEST_CASE(minimal_config_takes_rays_defaults) {
  auto cfg = parse_cluster_config(minimal, "cluster.yaml");
  BOOST_REQUIRE_MESSAGE(cfg, why(cfg));
  BOOST_CHECK_EQUAL(cfg->source_name, "cluster.yaml");
  BOOST_CHECK_EQUAL(cfg->cluster_name, "default");
  BOOST_CHECK(cfg->provider.type == provider_kind::processes);
  BOOST_CHECK_EQUAL(to_string(cfg->provider.type), std::string{"processes"});
  const auto& as = cfg->autoscaling;
  BOOST_CHECK_EQUAL(as.max_workers, 2);
  BOOST_CHECK_EQUAL(as.upscaling_speed, 1.0);
  BOOST_CHECK(as.idle_timeout == std::chrono::minutes{5});
  BOOST_CHECK_EQUAL(as.head_node_type, "head");
  BOOST_REQUIRE_EQUAL(as.node_types.size(), 2u);
  const auto& w = as.node_types.at("worker");
  BOOST_CHECK_EQUAL(w.name, "worker");
  BOOST_CHECK_EQUAL(w.resources.at("CPU"), 2);
  BOOST_CHECK_EQUAL(w.min_workers, 0);
  // A type's max_workers defaults to the cluster's (Ray's rule).
  BOOST_CHECK_EQUAL(w.max_workers, 2);
  BOOST_CHECK_EQUAL(w.node_config_json, "{}");
  BOOST_CHECK(w.labels.empty());
  BOOST_CHECK(cfg->auth.ssh_user.empty());
  BOOST_CHECK(cfg->file_mounts.empty());
  BOOST_CHECK(cfg->setup_commands.empty());
  BOOST_CHECK(cfg->head_start_rayd_commands.empty());
  BOOST_CHECK(cfg->worker_start_rayd_commands.empty());
}

BOOST_AUTO_TEST_CASE(every_key_given) {
  const std::string text = R"(cluster_name: demo-1
max_workers: 7
upscaling_speed: 0.5
idle_timeout_seconds: 3.5
provider:
  type: fake
  launch_delay_s: 0.25
  failure_rate: 0.1
auth:
  ssh_user: ubuntu
  ssh_private_key: ~/.ssh/key.pem
available_node_types:
  head:
    resources: {CPU: 0}
  cpu_worker:
    resources:
      CPU: 2
      memory: 1e9
      ssd: 0.5
    labels: {zone: a, "rack": 12}
    min_workers: 1
    max_workers: 3
    node_config:
      image: "1.0"
      count: 2
      ratio: 0.5
      spot: true
      none: ~
      tags: [a, 1]
head_node_type: head
file_mounts:
  /remote/data: ./data
setup_commands: [echo one, "echo 'two: 2'"]
head_start_rayd_commands:
  - rayd --head
worker_start_rayd_commands:
  - rayd --address=h:1
)";
  auto cfg = parse_cluster_config(text, "x.yaml");
  BOOST_REQUIRE_MESSAGE(cfg, why(cfg));
  BOOST_CHECK_EQUAL(cfg->cluster_name, "demo-1");
  BOOST_CHECK(cfg->provider.type == provider_kind::fake);
  BOOST_CHECK_EQUAL(cfg->provider.fake.launch_delay_s, 0.25);
  BOOST_CHECK_EQUAL(cfg->provider.fake.failure_rate, 0.1);
  BOOST_CHECK_EQUAL(cfg->auth.ssh_user, "ubuntu");
  BOOST_CHECK_EQUAL(cfg->auth.ssh_private_key, "~/.ssh/key.pem");
  const auto& as = cfg->autoscaling;
  BOOST_CHECK_EQUAL(as.max_workers, 7);
  BOOST_CHECK_EQUAL(as.upscaling_speed, 0.5);
  BOOST_CHECK_EQUAL(as.idle_timeout.count(), 3500);
  const auto& w = as.node_types.at("cpu_worker");
  BOOST_CHECK_EQUAL(w.resources.at("memory"), 1e9);
  BOOST_CHECK_EQUAL(w.resources.at("ssd"), 0.5);
  BOOST_CHECK_EQUAL(w.labels.at("zone"), "a");
  BOOST_CHECK_EQUAL(w.labels.at("rack"), "12");
  BOOST_CHECK_EQUAL(w.min_workers, 1);
  BOOST_CHECK_EQUAL(w.max_workers, 3);
  // Quoted scalars stay strings; plain ones become numbers, booleans, null.
  BOOST_CHECK_EQUAL(w.node_config_json,
                    R"({"count":2,"image":"1.0","none":null,"ratio":0.5,)"
                    R"("spot":true,"tags":["a",1]})");
  BOOST_CHECK_EQUAL(cfg->file_mounts.at("/remote/data"), "./data");
  BOOST_REQUIRE_EQUAL(cfg->setup_commands.size(), 2u);
  BOOST_CHECK_EQUAL(cfg->setup_commands[1], "echo 'two: 2'");
  BOOST_CHECK_EQUAL(cfg->head_start_rayd_commands.at(0), "rayd --head");
  BOOST_CHECK_EQUAL(cfg->worker_start_rayd_commands.at(0), "rayd --address=h:1");
}

BOOST_AUTO_TEST_CASE(idle_timeout_minutes_and_empty_sections) {
  auto cfg = parse_cluster_config(with("idle_timeout_minutes: 0.5\n"
                                       "setup_commands:\nfile_mounts: {}\n"),
                                   "c.yaml");
  BOOST_REQUIRE_MESSAGE(cfg, why(cfg));
  BOOST_CHECK_EQUAL(cfg->autoscaling.idle_timeout.count(), 30000);
  BOOST_CHECK(cfg->setup_commands.empty());
}

BOOST_AUTO_TEST_CASE(command_provider) {
  auto cfg = parse_cluster_config(R"(provider:
  type: command
  command: ./p.sh
available_node_types: {h: {}}
head_node_type: h
)",
                                  "c.yaml");
  BOOST_REQUIRE_MESSAGE(cfg, why(cfg));
  BOOST_CHECK(cfg->provider.type == provider_kind::command);
  BOOST_CHECK_EQUAL(cfg->provider.command.command, "./p.sh");
  BOOST_CHECK_EQUAL(cfg->provider.command.timeout_s, 30);
  BOOST_CHECK(cfg->autoscaling.node_types.at("h").resources.empty());
}

// --- unknown keys -----------------------------------------------------------

BOOST_AUTO_TEST_CASE(unknown_keys_name_line_path_and_suggestion) {
  BOOST_CHECK_EQUAL(error_of(R"(provider: {type: processes}
available_node_types:
  head:
    resources: {CPU: 0}
  cpu_worker:
    resources: {CPU: 2}
    max_worker: 3
head_node_type: head
)"),
                    "cluster.yaml:7: available_node_types.cpu_worker."
                    "max_worker: unknown key (did you mean 'max_workers'?)");
  BOOST_CHECK_EQUAL(error_of(with("max_worker: 3\n")),
                    "cluster.yaml:9: max_worker: unknown key (did you mean "
                    "'max_workers'?)");
  BOOST_CHECK_EQUAL(error_of(with("Idle_Timeout_Minute: 3\n")),
                    "cluster.yaml:9: Idle_Timeout_Minute: unknown key (did you "
                    "mean 'idle_timeout_minutes'?)");
  BOOST_CHECK_EQUAL(
    error_of(with("zzz: 1\n")),
    "cluster.yaml:9: zzz: unknown key (allowed here: cluster_name, "
    "max_workers, upscaling_speed, idle_timeout_minutes, "
    "idle_timeout_seconds, provider, auth, available_node_types, "
    "head_node_type, file_mounts, setup_commands, head_start_rayd_commands, "
    "worker_start_rayd_commands)");
  BOOST_CHECK_EQUAL(error_of(with("auth:\n  ssh_usr: me\n")),
                    "cluster.yaml:10: auth.ssh_usr: unknown key (did you mean "
                    "'ssh_user'?)");
}

BOOST_AUTO_TEST_CASE(rays_keys_name_the_rayd_key) {
  BOOST_CHECK_EQUAL(error_of(with("head_start_ray_commands: [ray start]\n")),
                    "cluster.yaml:9: head_start_ray_commands: unknown key "
                    "(this is rayd: use 'head_start_rayd_commands')");
  BOOST_CHECK_EQUAL(error_of(with("worker_start_ray_commands: []\n")),
                    "cluster.yaml:9: worker_start_ray_commands: unknown key "
                    "(this is rayd: use 'worker_start_rayd_commands')");
  BOOST_CHECK_EQUAL(error_of(with("min_workers: 1\n")),
                    "cluster.yaml:9: min_workers: unknown key (rayd sets "
                    "min_workers per node type, under "
                    "available_node_types.NAME.min_workers)");
}

BOOST_AUTO_TEST_CASE(duplicate_keys) {
  BOOST_CHECK_EQUAL(error_of(with("max_workers: 1\nmax_workers: 2\n")),
                    "cluster.yaml:10: max_workers: duplicate key (first at "
                    "line 9)");
}

// --- types and ranges -------------------------------------------------------

BOOST_AUTO_TEST_CASE(numbers_where_numbers_are_due) {
  BOOST_CHECK_EQUAL(error_of(with("max_workers: two\n")),
                    "cluster.yaml:9: max_workers: expected a non-negative "
                    "whole number, got 'two'");
  BOOST_CHECK_EQUAL(error_of(with("max_workers: -1\n")),
                    "cluster.yaml:9: max_workers: must not be negative, got -1");
  BOOST_CHECK_EQUAL(error_of(with("max_workers: 2.5\n")),
                    "cluster.yaml:9: max_workers: expected a whole number, got "
                    "2.5");
  BOOST_CHECK_EQUAL(error_of(with("max_workers: \"2\"\n")),
                    "cluster.yaml:9: max_workers: expected a non-negative "
                    "whole number, got the string '2'");
  BOOST_CHECK_EQUAL(error_of(with("max_workers:\n")),
                    "cluster.yaml:9: max_workers: expected a non-negative "
                    "whole number, got nothing");
  BOOST_CHECK_EQUAL(error_of(with("max_workers: 99999999999\n")),
                    "cluster.yaml:9: max_workers: must be at most 2147483647, "
                    "got 99999999999");
  BOOST_CHECK_EQUAL(error_of(with("upscaling_speed: [1]\n")),
                    "cluster.yaml:9: upscaling_speed: expected a number, got a "
                    "list");
  BOOST_CHECK_EQUAL(error_of(with("upscaling_speed: -0.5\n")),
                    "cluster.yaml:9: upscaling_speed: must not be negative, "
                    "got -0.5");
  BOOST_CHECK_EQUAL(error_of(with("idle_timeout_seconds: .inf\n")),
                    "cluster.yaml:9: idle_timeout_seconds: expected a finite "
                    "number, got '.inf'");
}

BOOST_AUTO_TEST_CASE(resource_amounts_and_names) {
  auto node_types = [](const std::string& resources) {
    return "provider: {type: processes}\n"
           "available_node_types:\n"
           "  head:\n"
           "    resources:\n"
           + resources + "head_node_type: head\n";
  };
  BOOST_CHECK_EQUAL(error_of(node_types("      CPU: -1\n")),
                    "cluster.yaml:5: available_node_types.head.resources.CPU: "
                    "must not be negative, got -1");
  BOOST_CHECK_EQUAL(error_of(node_types("      CPU: 1\n      GPU: nan\n")),
                    "cluster.yaml:6: available_node_types.head.resources.GPU: "
                    "expected a finite number, got 'nan'");
  BOOST_CHECK_EQUAL(error_of(node_types("      CPU: lots\n")),
                    "cluster.yaml:5: available_node_types.head.resources.CPU: "
                    "expected a number, got 'lots'");
  BOOST_CHECK_EQUAL(error_of(node_types("      \"\": 2\n")),
                    "cluster.yaml:5: available_node_types.head.resources: a "
                    "key must not be empty");
  BOOST_CHECK_EQUAL(error_of(node_types("      - CPU\n")),
                    "cluster.yaml:5: available_node_types.head.resources: "
                    "expected a mapping, got a list");
  BOOST_CHECK_EQUAL(error_of("provider: {type: processes}\n"
                             "available_node_types:\n"
                             "  head:\n"
                             "    labels: {zone: [a, b]}\n"
                             "head_node_type: head\n"),
                    "cluster.yaml:4: available_node_types.head.labels.zone: "
                    "expected a string, got a list");
}

BOOST_AUTO_TEST_CASE(strings_and_lists_of_strings) {
  BOOST_CHECK_EQUAL(error_of(with("auth:\n  ssh_user: [a]\n")),
                    "cluster.yaml:10: auth.ssh_user: expected a string, got a "
                    "list");
  BOOST_CHECK_EQUAL(error_of(with("setup_commands:\n  - echo ok\n"
                                  "  - echo: broken\n")),
                    "cluster.yaml:11: setup_commands[1]: expected a string, "
                    "got a mapping (quote the text if it contains ': ')");
  BOOST_CHECK_EQUAL(error_of(with("head_start_rayd_commands: rayd --head\n")),
                    "cluster.yaml:9: head_start_rayd_commands: expected a list "
                    "of strings, got 'rayd --head'");
  BOOST_CHECK_EQUAL(error_of(with("file_mounts:\n  /r: {a: b}\n")),
                    "cluster.yaml:10: file_mounts./r: expected a string, got a "
                    "mapping (quote the text if it contains ': ')");
  BOOST_CHECK_EQUAL(error_of(with("cluster_name: my cluster\n")),
                    "cluster.yaml:9: cluster_name: use 1 to 64 letters, "
                    "digits, '-', '_' or '.', got 'my cluster'");
}

BOOST_AUTO_TEST_CASE(idle_timeout_given_twice) {
  BOOST_CHECK_EQUAL(error_of(with("idle_timeout_minutes: 1\n"
                                  "idle_timeout_seconds: 5\n")),
                    "cluster.yaml:10: idle_timeout_seconds: give "
                    "idle_timeout_minutes or idle_timeout_seconds, not both "
                    "(the other is at line 9)");
}

// --- relations between keys -------------------------------------------------

BOOST_AUTO_TEST_CASE(min_workers_against_max_workers) {
  BOOST_CHECK_EQUAL(error_of(R"(provider: {type: processes}
max_workers: 10
available_node_types:
  head: {}
  w:
    min_workers: 4
    max_workers: 3
head_node_type: head
)"),
                    "cluster.yaml:6: available_node_types.w.min_workers: 4 "
                    "exceeds max_workers (3)");
  // Without its own max_workers a type inherits the cluster's.
  BOOST_CHECK_EQUAL(error_of(R"(provider: {type: processes}
available_node_types:
  head: {}
  w:
    min_workers: 3
head_node_type: head
)"),
                    "cluster.yaml:5: available_node_types.w.min_workers: 3 "
                    "exceeds max_workers (2, the cluster's)");
  BOOST_CHECK_EQUAL(error_of(R"(provider: {type: processes}
max_workers: 3
available_node_types:
  head: {}
  a: {min_workers: 2}
  b: {min_workers: 2}
head_node_type: head
)"),
                    "cluster.yaml:2: max_workers: 3 is less than the sum of "
                    "the node types' min_workers (4)");
}

BOOST_AUTO_TEST_CASE(head_node_type_must_be_declared) {
  BOOST_CHECK_EQUAL(error_of("provider: {type: processes}\n"
                             "available_node_types: {head: {}, worker: {}}\n"
                             "head_node_type: haed\n"),
                    "cluster.yaml:3: head_node_type: 'haed' is not declared in "
                    "available_node_types (did you mean 'head'?)");
  BOOST_CHECK_EQUAL(error_of("provider: {type: processes}\n"
                             "available_node_types: {head: {}, worker: {}}\n"
                             "head_node_type: gpu_box\n"),
                    "cluster.yaml:3: head_node_type: 'gpu_box' is not declared "
                    "in available_node_types (declared: head, worker)");
}

BOOST_AUTO_TEST_CASE(required_keys) {
  BOOST_CHECK_EQUAL(error_of("# a comment\n"
                             "available_node_types: {head: {}}\n"
                             "head_node_type: head\n"),
                    "cluster.yaml:2: provider: missing (required; type: "
                    "processes, fake or command)");
  BOOST_CHECK_EQUAL(error_of("provider: {type: processes}\n"
                             "head_node_type: head\n"),
                    "cluster.yaml:1: available_node_types: missing (required; "
                    "declare the head's type and the workers')");
  BOOST_CHECK_EQUAL(error_of("provider: {type: processes}\n"
                             "available_node_types: {head: {}}\n"),
                    "cluster.yaml:1: head_node_type: missing (required; the "
                    "available_node_types entry the head uses)");
  BOOST_CHECK_EQUAL(error_of("provider: {type: processes}\n"
                             "available_node_types: {}\n"
                             "head_node_type: head\n"),
                    "cluster.yaml:2: available_node_types: declares no node "
                    "type (at least the head's)");
}

// --- the provider section ---------------------------------------------------

BOOST_AUTO_TEST_CASE(provider_section) {
  auto provider = [](const std::string& body) {
    return "provider:\n" + body
           + "available_node_types: {head: {}}\nhead_node_type: head\n";
  };
  BOOST_CHECK_EQUAL(error_of(provider("  type: aws\n")),
                    "cluster.yaml:2: provider.type: unknown provider type "
                    "'aws' (known: processes, fake, command)");
  BOOST_CHECK_EQUAL(error_of(provider("  type: proceses\n")),
                    "cluster.yaml:2: provider.type: unknown provider type "
                    "'proceses' (did you mean 'processes'?)");
  BOOST_CHECK_EQUAL(error_of(provider("  type: fake_multinode\n")),
                    "cluster.yaml:2: provider.type: unknown provider type "
                    "'fake_multinode' (Ray's fake_multinode is rayd's "
                    "'processes')");
  BOOST_CHECK_EQUAL(error_of(provider("  type: local\n")),
                    "cluster.yaml:2: provider.type: unknown provider type "
                    "'local' (a fixed list of SSH hosts; not available yet)");
  BOOST_CHECK_EQUAL(error_of(provider("  launch_delay_s: 1\n")),
                    "cluster.yaml:2: provider.type: missing (one of: "
                    "processes, fake, command)");
  BOOST_CHECK_EQUAL(error_of(provider("  type: command\n  timeout_s: 5\n")),
                    "cluster.yaml:2: provider.command: missing (the executable "
                    "the command provider runs)");
  BOOST_CHECK_EQUAL(error_of(provider("  type: command\n  command: x\n"
                                      "  failure_rate: 0.5\n")),
                    "cluster.yaml:4: provider.failure_rate: unknown key for "
                    "provider type 'command' (it belongs to provider type "
                    "'fake')");
  BOOST_CHECK_EQUAL(error_of(provider("  type: fake\n  launch_delay: 1\n")),
                    "cluster.yaml:3: provider.launch_delay: unknown key for "
                    "provider type 'fake' (did you mean 'launch_delay_s'?)");
  BOOST_CHECK_EQUAL(error_of(provider("  type: processes\n  head_ip: x\n")),
                    "cluster.yaml:3: provider.head_ip: unknown key for "
                    "provider type 'processes' (it has no key besides 'type')");
  BOOST_CHECK_EQUAL(error_of(provider("  type: fake\n  failure_rate: 1.5\n")),
                    "cluster.yaml:3: provider.failure_rate: must be at most 1, "
                    "got 1.5");
  BOOST_CHECK_EQUAL(error_of(provider("  type: command\n  command: x\n"
                                      "  timeout_s: 0\n")),
                    "cluster.yaml:4: provider.timeout_s: must be greater than "
                    "0, got 0");
  BOOST_CHECK_EQUAL(error_of("provider: fake\n"),
                    "cluster.yaml:1: provider: expected a mapping, got 'fake'");
}

// --- malformed files --------------------------------------------------------

BOOST_AUTO_TEST_CASE(malformed_yaml_gives_the_parsers_line) {
  auto err = error_of("provider:\n  type: processes\n"
                      "available_node_types: {head: {}\n"
                      "head_node_type: head\n");
  BOOST_CHECK_MESSAGE(err.rfind("cluster.yaml:", 0) == 0
                        && err.find("YAML syntax error") != std::string::npos,
                      err);
  err = error_of("provider:\n  type: processes\n   bad: indent\n");
  BOOST_CHECK_MESSAGE(err.rfind("cluster.yaml:3: YAML syntax error: ", 0) == 0,
                      err);
  BOOST_CHECK_EQUAL(error_of("max_workers: 1\ncluster_name: a: b\n"),
                    "cluster.yaml:2: YAML syntax error: illegal map value");
  BOOST_CHECK_EQUAL(error_of("x: 1\ny: &a 1\nz: *b\n"),
                    "cluster.yaml:3: YAML syntax error: the referenced anchor "
                    "is not defined");
  BOOST_CHECK_EQUAL(error_of(""),
                    "cluster.yaml:1: the config is empty (it needs at least "
                    "provider, available_node_types and head_node_type)");
  BOOST_CHECK_EQUAL(error_of("# only a comment\n"),
                    "cluster.yaml:1: the config is empty (it needs at least "
                    "provider, available_node_types and head_node_type)");
  BOOST_CHECK_EQUAL(error_of("- a\n- b\n"),
                    "cluster.yaml:1: expected a mapping of keys (cluster_name, "
                    "provider, ...), got a list");
  BOOST_CHECK_EQUAL(error_of(minimal + "---\nmax_workers: 1\n"),
                    "cluster.yaml:9: a second YAML document starts here (a "
                    "cluster config is one document; a '---' line or a stray "
                    "',' ends the first)");
  // yaml-cpp 0.7.0 reads endless empty documents after a stray ','.
  BOOST_CHECK_EQUAL(error_of("[a, b],\n"),
                    "cluster.yaml:1: a second YAML document starts here (a "
                    "cluster config is one document; a '---' line or a stray "
                    "',' ends the first)");
  BOOST_CHECK_EQUAL(error_of(with("cluster_name: \"a\\tb\\x01\"\n")),
                    "cluster.yaml:9: cluster_name: use 1 to 64 letters, "
                    "digits, '-', '_' or '.', got 'a\\x09b\\x01'");
}

BOOST_AUTO_TEST_CASE(aliases_cannot_blow_up_node_config) {
  // "Billion laughs": each level doubles ten times; the walk is bounded.
  // The anchors sit inside node_config, the one place walked recursively.
  std::string text = "provider: {type: processes}\n"
         "head_node_type: head\n"
         "available_node_types:\n"
         "  head:\n"
         "    node_config:\n"
         "      l0: &a0 [x, x, x, x, x, x, x, x, x, x]\n";
  for (int i = 1; i < 9; ++i) {
    std::string prev = "*a" + std::to_string(i - 1);
    text += "      l" + std::to_string(i) + ": &a" + std::to_string(i) + " ["
            + prev;
    for (int j = 1; j < 10; ++j)
      text += ", " + prev;
    text += "]\n";
  }
  auto err = error_of(text);
  BOOST_CHECK_MESSAGE(err.find("available_node_types.head.node_config")
                          != std::string::npos
                        && err.find("more than 100000 values (after expanding "
                                    "aliases)")
                             != std::string::npos,
                      err);
}

BOOST_AUTO_TEST_CASE(deep_nesting_is_an_error) {
  std::string text = "provider: {type: processes}\nhead_node_type: head\n"
                     "available_node_types: {head: {node_config: ";
  for (int i = 0; i < 200; ++i)
    text += "{a: ";
  text += "1";
  for (int i = 0; i < 200; ++i)
    text += "}";
  text += "}}\n";
  auto err = error_of(text);
  BOOST_CHECK_MESSAGE(err.rfind("cluster.yaml:3: ", 0) == 0, err);
  // Far deeper than any config: yaml-cpp's own guard must answer, not the stack.
  std::string deep(100000, '[');
  err = error_of(deep);
  BOOST_CHECK_MESSAGE(err.rfind("cluster.yaml:1: ", 0) == 0, err);
}

// --- files ------------------------------------------------------------------

BOOST_AUTO_TEST_CASE(load_from_a_file) {
  auto missing = load_cluster_config("/nonexistent/cluster.yaml");
  BOOST_REQUIRE(!missing);
  BOOST_CHECK(code_of(missing.error()) == errc::not_found);
  BOOST_CHECK_MESSAGE(describe(missing.error())
                          .rfind("/nonexistent/cluster.yaml: cannot read", 0)
                        == 0,
                      why(missing));

  char tmpl[] = "/tmp/rayd-unit-XXXXXX";
  std::string dir = ::mkdtemp(tmpl);
  auto path = dir + "/bad.yaml";
  std::ofstream{path} << minimal << "max_workers: x\n";
  auto bad = load_cluster_config(path);
  BOOST_REQUIRE(!bad);
  BOOST_CHECK_EQUAL(describe(bad.error()),
                    path + ":9: max_workers: expected a non-negative whole "
                           "number, got 'x'");
  auto is_dir = load_cluster_config(dir);
  BOOST_CHECK(!is_dir);
  auto endless = load_cluster_config("/dev/zero");
  BOOST_REQUIRE(!endless);
  BOOST_CHECK_EQUAL(describe(endless.error()),
                    "/dev/zero: larger than 16 MiB; not a cluster config");
  std::error_code ec;
  fs::remove_all(dir, ec);
}

BOOST_AUTO_TEST_CASE(shipped_examples_parse) {
  auto dir = source_dir() + "/examples/autoscaler/";
  auto processes = load_cluster_config(dir + "processes.yaml");
  BOOST_REQUIRE_MESSAGE(processes, why(processes));
  BOOST_CHECK(processes->provider.type == provider_kind::processes);
  BOOST_CHECK_EQUAL(processes->autoscaling.node_types.at("head").resources.at(
                      "CPU"),
                    0);
  BOOST_CHECK_EQUAL(processes->autoscaling.node_types.at("cpu_worker")
                      .max_workers,
                    3);

  auto fake = load_cluster_config(dir + "fake.yaml");
  BOOST_REQUIRE_MESSAGE(fake, why(fake));
  BOOST_CHECK(fake->provider.type == provider_kind::fake);
  BOOST_CHECK_EQUAL(fake->provider.fake.launch_delay_s, 0.5);
  BOOST_CHECK_EQUAL(fake->autoscaling.max_workers, 1000);
  BOOST_CHECK_EQUAL(fake->autoscaling.idle_timeout.count(), 30000);

  auto command = load_cluster_config(dir + "command.yaml");
  BOOST_REQUIRE_MESSAGE(command, why(command));
  BOOST_CHECK(command->provider.type == provider_kind::command);
  BOOST_CHECK_EQUAL(command->provider.command.command, "./my_provider.sh");
  BOOST_CHECK_EQUAL(command->auth.ssh_user, "rayd");
  BOOST_CHECK_EQUAL(command->autoscaling.node_types.at("worker").node_config_json,
                    R"({"disk_gb":200,"machine_class":"standard-16",)"
                    R"("tags":["batch","autoscaled"]})");
  BOOST_CHECK_EQUAL(command->setup_commands.size(), 2u);
  BOOST_CHECK_EQUAL(command->worker_start_rayd_commands.size(), 1u);
}

// --- garbled input ----------------------------------------------------------

BOOST_AUTO_TEST_CASE(garbled_yaml_returns_errors_never_throws) {
  // Every error, whatever the damage, starts "<source>:<line>: ".
  const std::regex shape{R"(^cluster\.yaml:[1-9][0-9]*: [^\n]+$)"};
  // A parser that runs away shows as std::bad_alloc under this cap (2 GiB of
  // address space) instead of eating the machine's memory.
  rlimit cap{2ull << 30, 2ull << 30};
  BOOST_REQUIRE_EQUAL(::setrlimit(RLIMIT_AS, &cap), 0);
  auto dir = source_dir() + "/examples/autoscaler/";
  std::vector<std::string> inputs = {minimal};
  for (const char* name : {"processes.yaml", "fake.yaml", "command.yaml"})
    inputs.push_back(read_file(dir + name));
  std::mt19937 rng{12345};
  std::size_t runs = 0;
  std::size_t errors = 0;
  auto check = [&shape, &runs, &errors](const std::string& text) {
    ++runs;
    caf::expected<cluster_config> res{caf::error{}};
    BOOST_CHECK_NO_THROW(res = parse_cluster_config(text, "cluster.yaml"));
    if (!res) {
      ++errors;
      auto msg = describe(res.error());
      BOOST_CHECK_MESSAGE(std::regex_match(msg, shape), msg);
      BOOST_CHECK_MESSAGE(msg.find("bad_alloc") == std::string::npos, msg);
    }
  };
  const std::string garble = "{}[]:-,&*!|>'\"%@`#?\t\n \x01\xff";
  for (const auto& text : inputs) {
    // Every truncation.
    for (std::size_t n = 0; n < text.size(); ++n)
      check(text.substr(0, n));
    // Random damage: flipped characters, dropped and duplicated lines.
    for (int i = 0; i < 300; ++i) {
      auto t = text;
      int edits = 1 + static_cast<int>(rng() % 4);
      for (int k = 0; k < edits && !t.empty(); ++k) {
        auto pos = rng() % t.size();
        switch (rng() % 3) {
          case 0:
            t[pos] = garble[rng() % garble.size()];
            break;
          case 1:
            t.erase(pos, 1 + rng() % 8);
            break;
          default:
            t.insert(pos, t.substr(pos, 1 + rng() % 16));
        }
      }
      check(t);
    }
  }
  // Pure noise is never a config.
  for (int i = 0; i < 200; ++i) {
    std::string t(1 + rng() % 200, ' ');
    for (auto& c : t)
      c = static_cast<char>(rng() % 256);
    auto before = errors;
    check(t);
    BOOST_CHECK_EQUAL(errors, before + 1);
  }
  BOOST_TEST_MESSAGE(runs << " garbled inputs, " << errors << " errors");
  // Most damaged configs must be refused (a truncation at a line break of
  // a complete config may still be valid).
  BOOST_CHECK_GT(errors, runs / 2);
}

BOOST_AUTO_TEST_CASE(suggestions) {
  std::vector<std::string> keys = {"min_workers", "max_workers", "resources"};
  BOOST_CHECK_EQUAL(suggest_key("max_worker", keys), "max_workers");
  BOOST_CHECK_EQUAL(suggest_key("MIN_WORKERS", keys), "min_workers");
  BOOST_CHECK_EQUAL(suggest_key("resorces", keys), "resources");
  BOOST_CHECK_EQUAL(suggest_key("zone", keys), "");
  BOOST_CHECK_EQUAL(suggest_key("x", keys), "");
}
