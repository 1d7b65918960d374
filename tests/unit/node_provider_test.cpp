// Unit tests of the node providers that need no cluster: the `fake` provider
// (launch delay on an injected clock, seeded failures, test marks, thousands
// of instances, idempotent create) and the `command` provider against the
// example script (examples/autoscaler/command_provider.sh) and against
// scripts that fail, print garbage, answer in the wrong shape and hang on
// purpose (tests/unit/provider_scripts/bad_provider.sh). The `processes`
// provider is tested with a real cluster in
// tests/integration/processes_provider_test.cpp.
#define BOOST_TEST_MODULE node_provider
#include <boost/test/unit_test.hpp>

#include <chrono>
#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <set>
#include <string>

#include <signal.h>
#include <unistd.h>

#include <nlohmann/json.hpp>

#include "autoscale/command_provider.hpp"
#include "autoscale/fake_provider.hpp"
#include "autoscale/processes_provider.hpp"
#include "common/error.hpp"
#include "tests/support/skip.hpp"

using namespace rayd;
using namespace rayd::autoscale;
using namespace std::chrono_literals;
using json = nlohmann::json;

namespace {

instance_spec spec(const std::string& type, const std::string& request) {
  instance_spec s;
  s.node_type = type;
  s.resources = {{"CPU", 2}, {"disk_ssd", 1}};
  s.labels = {{"zone", "a"}};
  s.node_config_json = R"({"machine": "small"})";
  s.tags = {{tag_launch_request, request}, {"owner", "test"}};
  return s;
}

std::map<std::string, provider_instance> by_id(const std::vector<provider_instance>& xs) {
  std::map<std::string, provider_instance> out;
  for (auto& x : xs)
    out[x.instance_id] = x;
  return out;
}

// list() as a value: `for (x : *p.list())` would iterate a destroyed temporary.
std::vector<provider_instance> listed(node_provider& p) {
  auto xs = p.list();
  BOOST_REQUIRE(xs);
  return *xs;
}

// The error of a failed call ("" when it succeeded: Boost evaluates the
// message of BOOST_REQUIRE_MESSAGE even when the check passes).
template <class T>
std::string why(const caf::expected<T>& x) {
  return x ? std::string{} : describe(x.error());
}

// A clock the test moves by hand.
struct manual_clock {
  std::shared_ptr<std::chrono::steady_clock::time_point> now
    = std::make_shared<std::chrono::steady_clock::time_point>();
  std::function<std::chrono::steady_clock::time_point()> fn() const {
    auto p = now;
    return [p] { return *p; };
  }
  void advance(std::chrono::milliseconds d) { *now += d; }
};

std::string source_dir() {
  return RAYD_SOURCE_DIR;
}

struct temp_dir {
  std::string path;
  temp_dir() {
    char tmpl[] = "/tmp/rayd_provider_XXXXXX";
    path = ::mkdtemp(tmpl);
  }
  ~temp_dir() {
    std::system(("rm -rf '" + path + "'").c_str());
  }
};

bool pid_exists(pid_t pid) {
  return ::kill(pid, 0) == 0;
}

} // namespace

// --- fake ---------------------------------------------------------------------

BOOST_AUTO_TEST_CASE(fake_instances_are_pending_until_the_launch_delay_passes) {
  manual_clock clock;
  fake_provider p{{"c1", 10s, 0.0, 1, clock.fn()}};
  auto ids = p.create(spec("w", "r1"), 3);
  BOOST_REQUIRE(ids);
  BOOST_CHECK_EQUAL(ids->size(), 3u);
  auto xs = p.list();
  BOOST_REQUIRE(xs);
  BOOST_REQUIRE_EQUAL(xs->size(), 3u);
  for (auto& x : *xs) {
    BOOST_CHECK_EQUAL(to_string(x.state), "pending");
    BOOST_CHECK_EQUAL(x.node_type, "w");
    BOOST_CHECK_EQUAL(x.tags.at(tag_cluster), "c1");
    BOOST_CHECK_EQUAL(x.tags.at(tag_node_type), "w");
    BOOST_CHECK_EQUAL(x.tags.at(tag_launch_request), "r1");
    BOOST_CHECK_EQUAL(x.tags.at("owner"), "test");
  }
  clock.advance(9999ms);
  for (auto& x : listed(p))
    BOOST_CHECK_EQUAL(to_string(x.state), "pending");
  clock.advance(1ms);
  for (auto& x : listed(p))
    BOOST_CHECK_EQUAL(to_string(x.state), "running");
}

BOOST_AUTO_TEST_CASE(fake_failures_follow_the_rate_and_the_seed) {
  auto failed_ids = [](uint64_t seed) {
    fake_provider p{{"c1", 0ms, 0.3, seed, {}}};
    BOOST_REQUIRE(p.create(spec("w", "r1"), 1000));
    std::set<std::string> failed;
    for (auto& x : listed(p))
      if (x.state == provider_instance::failed) {
        BOOST_CHECK(!x.error.empty());
        failed.insert(x.instance_id);
      } else {
        BOOST_CHECK_EQUAL(to_string(x.state), "running");
      }
    return failed;
  };
  auto a = failed_ids(7);
  BOOST_CHECK_GT(a.size(), 230u); // 300 expected
  BOOST_CHECK_LT(a.size(), 370u);
  BOOST_CHECK(a == failed_ids(7));
  BOOST_CHECK(a != failed_ids(8));
  fake_provider all{{"c1", 0ms, 1.0, 1, {}}};
  BOOST_REQUIRE(all.create(spec("w", "r1"), 5));
  for (auto& x : listed(all))
    BOOST_CHECK_EQUAL(to_string(x.state), "failed");
}

BOOST_AUTO_TEST_CASE(fake_marks_move_instances_and_terminate_forgets_them) {
  manual_clock clock;
  fake_provider p{{"c1", 1h, 0.0, 1, clock.fn()}};
  auto ids = *p.create(spec("w", "r1"), 3);
  BOOST_CHECK(p.set_running(ids[0]));
  BOOST_CHECK(p.set_terminated(ids[1], "crashed"));
  BOOST_CHECK(!p.set_running("no-such-id"));
  auto xs = by_id(*p.list());
  BOOST_CHECK_EQUAL(to_string(xs[ids[0]].state), "running");
  BOOST_CHECK_EQUAL(to_string(xs[ids[1]].state), "terminated");
  BOOST_CHECK_EQUAL(xs[ids[1]].error, "crashed");
  BOOST_CHECK_EQUAL(to_string(xs[ids[2]].state), "pending");
  BOOST_CHECK(!p.terminate({ids[0], ids[1], "unknown-id"}));
  auto left = *p.list();
  BOOST_REQUIRE_EQUAL(left.size(), 1u);
  BOOST_CHECK_EQUAL(left[0].instance_id, ids[2]);
}

BOOST_AUTO_TEST_CASE(fake_create_is_idempotent_per_launch_request) {
  fake_provider p{{"c1", 0ms, 0.0, 1, {}}};
  auto first = *p.create(spec("w", "r1"), 2);
  // A retry of the same request (a restarted head) launches nothing new...
  auto again = *p.create(spec("w", "r1"), 2);
  BOOST_CHECK(first == again);
  // ... a bigger retry only the difference, another request its own.
  auto more = *p.create(spec("w", "r1"), 3);
  BOOST_REQUIRE_EQUAL(more.size(), 3u);
  BOOST_CHECK(std::equal(first.begin(), first.end(), more.begin()));
  BOOST_CHECK_EQUAL(p.create(spec("w", "r2"), 2)->size(), 2u);
  BOOST_CHECK_EQUAL(p.instances_created(), 5);
  // A failed or crashed instance no longer counts for its request.
  p.set_terminated(first[0]);
  auto after_crash = *p.create(spec("w", "r1"), 3);
  BOOST_CHECK_EQUAL(p.instances_created(), 6);
  BOOST_CHECK(std::find(after_crash.begin(), after_crash.end(), first[0]) == after_crash.end());
}

BOOST_AUTO_TEST_CASE(fake_refuses_a_create_without_launch_request_or_count) {
  fake_provider p{{"c1", 0ms, 0.0, 1, {}}};
  auto s = spec("w", "r1");
  s.tags.erase(tag_launch_request);
  auto r = p.create(s, 1);
  BOOST_REQUIRE(!r);
  BOOST_CHECK(code_of(r.error()) == errc::invalid_argument);
  BOOST_CHECK_NE(describe(r.error()).find(tag_launch_request), std::string::npos);
  auto zero = p.create(spec("w", "r1"), 0);
  BOOST_REQUIRE(!zero);
  BOOST_CHECK(code_of(zero.error()) == errc::invalid_argument);
  BOOST_CHECK(p.list()->empty());
}

BOOST_AUTO_TEST_CASE(fake_holds_thousands_of_instances) {
  fake_provider p{{"c1", 0ms, 0.01, 3, {}}};
  for (int i = 0; i < 10; ++i)
    BOOST_REQUIRE(p.create(spec("w", "r" + std::to_string(i)), 1000));
  auto t0 = std::chrono::steady_clock::now();
  auto xs = p.list();
  auto took = std::chrono::steady_clock::now() - t0;
  BOOST_REQUIRE(xs);
  BOOST_CHECK_EQUAL(xs->size(), 10000u);
  std::set<std::string> unique;
  for (auto& x : *xs)
    unique.insert(x.instance_id);
  BOOST_CHECK_EQUAL(unique.size(), 10000u);
  BOOST_TEST_MESSAGE("list() of 10,000 fake instances: "
                     << std::chrono::duration_cast<std::chrono::milliseconds>(took).count()
                     << " ms");
  BOOST_CHECK(took < 2s);
}

// --- command ------------------------------------------------------------------

namespace {

bool have_jq() {
  return std::system("command -v jq >/dev/null 2>&1") == 0;
}

command_provider example(const std::string& state, const std::string& cluster = "c1") {
  return command_provider{
    {cluster, {source_dir() + "/examples/autoscaler/command_provider.sh", state}, 30s}};
}

command_provider bad(const std::string& mode, std::chrono::milliseconds timeout = 30s) {
  return command_provider{
    {"c1", {source_dir() + "/tests/unit/provider_scripts/bad_provider.sh", mode}, timeout}};
}

} // namespace

BOOST_AUTO_TEST_CASE(command_example_script_creates_lists_and_terminates) {
  if (!rayd::tests::require_or_skip(have_jq(), "the example script needs jq"))
    return;
  temp_dir dir;
  auto state = dir.path + "/state.json";
  auto p = example(state);
  auto ids = p.create(spec("w", "r1"), 2);
  BOOST_REQUIRE_MESSAGE(ids, why(ids));
  BOOST_REQUIRE_EQUAL(ids->size(), 2u);
  // Retrying the same launch request creates nothing new.
  auto again = p.create(spec("w", "r1"), 2);
  BOOST_REQUIRE(again);
  BOOST_CHECK(*again == *ids);
  // Another cluster sharing the state file sees none of it.
  auto other = example(state, "c2");
  BOOST_REQUIRE(other.create(spec("w", "r9"), 1));
  auto xs = p.list();
  BOOST_REQUIRE_MESSAGE(xs, why(xs));
  auto m = by_id(*xs);
  BOOST_REQUIRE_EQUAL(m.size(), 2u);
  for (auto& id : *ids) {
    BOOST_REQUIRE(m.count(id));
    BOOST_CHECK_EQUAL(to_string(m[id].state), "running");
    BOOST_CHECK_EQUAL(m[id].node_type, "w");
    BOOST_CHECK_EQUAL(m[id].tags[tag_cluster], "c1");
    BOOST_CHECK_EQUAL(m[id].tags[tag_launch_request], "r1");
  }
  BOOST_REQUIRE(!p.terminate({(*ids)[0], "never-existed"}));
  auto left = p.list();
  BOOST_REQUIRE(left);
  BOOST_REQUIRE_EQUAL(left->size(), 1u);
  BOOST_CHECK_EQUAL((*left)[0].instance_id, (*ids)[1]);
  BOOST_CHECK_EQUAL(other.list()->size(), 1u);
}

BOOST_AUTO_TEST_CASE(command_request_carries_the_spec) {
  if (!rayd::tests::require_or_skip(have_jq(), "checking the request needs jq"))
    return;
  // The command answers only when every documented field of the create
  // request is there with the spec's values (jq -e fails otherwise).
  auto strict = command_provider{
    {"c1",
     {"/bin/sh", "-c",
      "jq -e '.version == 1 and .op == \"create\" and .cluster == \"c1\" and "
      ".node_type == \"w\" and .count == 1 and .resources.CPU == 2 and "
      ".resources.disk_ssd == 1 and .labels.zone == \"a\" and "
      ".node_config.machine == \"small\" and .tags[\"rayd-cluster-name\"] == \"c1\" and "
      ".tags[\"rayd-node-type\"] == \"w\" and .tags[\"rayd-launch-request\"] == \"r1\"' "
      ">/dev/null && echo '{\"instance_ids\": [\"ok-1\"]}'"},
     30s}};
  auto checked = strict.create(spec("w", "r1"), 1);
  BOOST_REQUIRE_MESSAGE(checked, why(checked));
  BOOST_CHECK_EQUAL((*checked)[0], "ok-1");
  // More ids than asked for is a bad reply.
  auto greedy = command_provider{
    {"c1", {"/bin/sh", "-c", "echo '{\"instance_ids\": [\"a\", \"b\"]}'"}, 30s}};
  auto r = greedy.create(spec("w", "r1"), 1);
  BOOST_REQUIRE(!r);
  BOOST_CHECK_NE(describe(r.error()).find("2 instance ids for 1 requested"), std::string::npos);
}

BOOST_AUTO_TEST_CASE(command_that_fails_names_command_status_and_stderr) {
  auto p = bad("fail");
  auto r = p.create(spec("w", "r1"), 1);
  BOOST_REQUIRE(!r);
  auto msg = describe(r.error());
  BOOST_TEST_MESSAGE(msg);
  BOOST_CHECK_NE(msg.find("bad_provider.sh fail"), std::string::npos);
  BOOST_CHECK_NE(msg.find("(create)"), std::string::npos);
  BOOST_CHECK_NE(msg.find("exit status 3"), std::string::npos);
  BOOST_CHECK_NE(msg.find("quota exceeded in zone a"), std::string::npos);
  auto l = p.list();
  BOOST_REQUIRE(!l);
  BOOST_CHECK_NE(describe(l.error()).find("(list)"), std::string::npos);
  auto t = p.terminate({"x"});
  BOOST_REQUIRE(t);
  BOOST_CHECK_NE(describe(t).find("exit status 3"), std::string::npos);
}

BOOST_AUTO_TEST_CASE(command_that_prints_garbage_is_an_error) {
  auto p = bad("garbage");
  auto r = p.list();
  BOOST_REQUIRE(!r);
  auto msg = describe(r.error());
  BOOST_TEST_MESSAGE(msg);
  BOOST_CHECK(code_of(r.error()) == errc::invalid_argument);
  BOOST_CHECK_NE(msg.find("not one JSON object"), std::string::npos);
  BOOST_CHECK_NE(msg.find("hello, this is not JSON"), std::string::npos);
  BOOST_CHECK_NE(msg.find("bad_provider.sh garbage"), std::string::npos);
}

BOOST_AUTO_TEST_CASE(command_reported_error_and_wrong_shape_are_errors) {
  auto e = bad("error").create(spec("w", "r1"), 1);
  BOOST_REQUIRE(!e);
  BOOST_CHECK_NE(describe(e.error()).find("the cloud said no"), std::string::npos);
  auto s = bad("shape");
  auto c = s.create(spec("w", "r1"), 1);
  BOOST_REQUIRE(!c);
  BOOST_CHECK_NE(describe(c.error()).find("instance_ids"), std::string::npos);
  auto l = s.list();
  BOOST_REQUIRE(!l);
  BOOST_CHECK_NE(describe(l.error()).find("status"), std::string::npos);
}

BOOST_AUTO_TEST_CASE(command_that_hangs_is_killed_at_the_timeout) {
  auto p = bad("hang", 500ms);
  auto t0 = std::chrono::steady_clock::now();
  auto r = p.list();
  auto took = std::chrono::steady_clock::now() - t0;
  BOOST_REQUIRE(!r);
  auto msg = describe(r.error());
  BOOST_TEST_MESSAGE(msg);
  BOOST_CHECK(code_of(r.error()) == errc::timeout);
  BOOST_CHECK_NE(msg.find("500 ms"), std::string::npos);
  BOOST_CHECK_NE(msg.find("bad_provider.sh hang"), std::string::npos);
  BOOST_CHECK(took >= 500ms);
  BOOST_CHECK(took < 5s);
  // The message names the killed pid; it must be gone (reaped, not a zombie).
  auto at = msg.find("killed pid ");
  BOOST_REQUIRE(at != std::string::npos);
  auto pid = static_cast<pid_t>(std::stol(msg.substr(at + 11)));
  BOOST_CHECK(!pid_exists(pid));
}

BOOST_AUTO_TEST_CASE(command_that_does_not_exist_is_an_error) {
  command_provider p{{"c1", {"/nonexistent/provider"}, 5s}};
  auto r = p.list();
  BOOST_REQUIRE(!r);
  auto msg = describe(r.error());
  BOOST_CHECK_NE(msg.find("/nonexistent/provider"), std::string::npos);
  BOOST_CHECK_NE(msg.find("exit status 127"), std::string::npos);
  BOOST_CHECK_NE(msg.find("exec failed"), std::string::npos);
}

// --- processes, with a stand-in rayd --------------------------------------------

namespace {

std::vector<std::string> lines_of(const std::string& path) {
  std::ifstream in{path};
  std::vector<std::string> out;
  for (std::string line; std::getline(in, line);)
    out.push_back(line);
  return out;
}

bool wait_for(const std::function<bool()>& pred, std::chrono::milliseconds limit) {
  auto deadline = std::chrono::steady_clock::now() + limit;
  while (!pred()) {
    if (std::chrono::steady_clock::now() >= deadline)
      return false;
    ::usleep(10'000);
  }
  return true;
}

// Whether `pid` runs (exists and is not a zombie: the provider's nodes are
// not our children, and a PID 1 that does not reap leaves zombies behind).
bool pid_running(pid_t pid) {
  std::ifstream in{"/proc/" + std::to_string(pid) + "/stat"};
  std::string line;
  if (!std::getline(in, line))
    return false;
  auto close = line.rfind(')');
  return close != std::string::npos && close + 2 < line.size() && line[close + 2] != 'Z'
         && line[close + 2] != 'X';
}

std::string cmdline(pid_t pid) {
  std::ifstream in{"/proc/" + std::to_string(pid) + "/cmdline"};
  std::string s{std::istreambuf_iterator<char>{in}, std::istreambuf_iterator<char>{}};
  return s;
}

// Kills, by pid, what a processes provider started, should a check fail:
// every live process whose command line names this test's fresh temporary
// dir (so only what this test started).
struct pid_cleanup {
  std::string dir;
  std::vector<pid_t> pids; // expected ones, also checked by name of dir
  ~pid_cleanup() {
    for (auto& entry : std::filesystem::directory_iterator{"/proc"}) {
      auto name = entry.path().filename().string();
      if (name.find_first_not_of("0123456789") != std::string::npos)
        continue;
      auto pid = static_cast<pid_t>(std::stol(name));
      if (pid != ::getpid() && pid_running(pid)
          && cmdline(pid).find(dir) != std::string::npos)
        ::kill(pid, SIGKILL);
    }
  }
};

processes_provider_options stub_options(const std::string& base) {
  processes_provider_options o;
  o.cluster_name = "stub";
  o.head_address = "127.0.0.1:1";
  o.token_file = base + "/token";
  o.base_dir = base;
  o.rayd_binary = source_dir() + "/tests/unit/provider_scripts/fake_rayd.sh";
  return o;
}

} // namespace

BOOST_AUTO_TEST_CASE(processes_starts_rayd_with_the_type_as_flags) {
  temp_dir dir;
  processes_provider p{stub_options(dir.path)};
  pid_cleanup cleanup{dir.path, {}};
  auto s = spec("w", "r1");
  s.resources["memory"] = 1e9;
  auto ids = p.create(s, 1);
  BOOST_REQUIRE_MESSAGE(ids, why(ids));
  auto id = (*ids)[0];
  auto pid = p.pid_of(id);
  BOOST_REQUIRE(pid);
  cleanup.pids.push_back(*pid);
  auto args_path = p.session_dir(id) + "/args.txt";
  BOOST_REQUIRE(wait_for([&args_path] { return lines_of(args_path).size() >= 10; }, 10s));
  auto args = lines_of(args_path);
  auto flag = [&args](const std::string& name) -> std::string {
    for (size_t i = 0; i + 1 < args.size(); ++i)
      if (args[i] == name)
        return args[i + 1];
    return "(missing)";
  };
  BOOST_CHECK(std::find(args.begin(), args.end(), "--address=127.0.0.1:1") != args.end());
  BOOST_CHECK(std::find(args.begin(), args.end(), "--block") != args.end());
  BOOST_CHECK_EQUAL(flag("--session-dir"), dir.path + "/stub/" + id);
  BOOST_CHECK_EQUAL(flag("--token-file"), dir.path + "/token");
  BOOST_CHECK_EQUAL(std::stod(flag("--num-cpus")), 2.0);
  BOOST_CHECK_EQUAL(std::stod(flag("--num-gpus")), 0.0);
  BOOST_CHECK_EQUAL(std::stod(flag("--memory")), 1e9);
  BOOST_CHECK_EQUAL(json::parse(flag("--resources")), json({{"disk_ssd", 1.0}}));
  BOOST_CHECK_EQUAL(json::parse(flag("--labels")), json({{"zone", "a"}}));
  // Another session, and not our child: a crashed caller does not take it down.
  BOOST_CHECK_NE(::getsid(*pid), ::getsid(0));
  BOOST_CHECK_NE(::getppid(), *pid);
  BOOST_CHECK(!p.terminate(*ids));
  BOOST_CHECK(!pid_running(*pid));
  BOOST_CHECK(!p.pid_of(id));
}

BOOST_AUTO_TEST_CASE(processes_terminate_escalates_to_sigkill_after_the_grace) {
  temp_dir dir;
  auto opts = stub_options(dir.path);
  opts.terminate_grace = 300ms;
  opts.extra_args = {"--ignore-sigterm"};
  processes_provider p{opts};
  pid_cleanup cleanup{dir.path, {}};
  auto ids = p.create(spec("w", "r1"), 2);
  BOOST_REQUIRE_MESSAGE(ids, why(ids));
  std::vector<pid_t> pids;
  for (auto& id : *ids) {
    auto pid = p.pid_of(id);
    BOOST_REQUIRE(pid);
    cleanup.pids.push_back(*pid);
    pids.push_back(*pid);
    // Started and its trap set (args.txt is written after) before we signal it.
    BOOST_REQUIRE(wait_for([&p, &id] { return lines_of(p.session_dir(id) + "/args.txt").size() > 5; },
                           10s));
  }
  auto t0 = std::chrono::steady_clock::now();
  auto err = p.terminate(*ids);
  auto took = std::chrono::steady_clock::now() - t0;
  BOOST_REQUIRE_MESSAGE(!err, describe(err));
  BOOST_CHECK(took >= 300ms); // SIGTERM was ignored: the grace period passed
  BOOST_CHECK(took < 5s);
  for (auto pid : pids)
    BOOST_CHECK(!pid_running(pid));
  BOOST_CHECK(listed(p).empty());
}
