// The cluster launcher's logic (autoscale/launcher.hpp) without a cluster:
// state paths, config reading and differences, the head's command line, the
// head found on disk, counting min_workers and the wait loop, the lock.
#define BOOST_TEST_MODULE launcher
#include <boost/test/unit_test.hpp>

#include <fcntl.h>
#include <signal.h>
#include <sys/wait.h>
#include <unistd.h>

#include <atomic>
#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <thread>

#include <nlohmann/json.hpp>

#include "autoscale/launcher.hpp"
#include "common/error.hpp"

using namespace rayd;
using namespace rayd::autoscale;
namespace fs = std::filesystem;
using json = nlohmann::json;

namespace {

// A fresh directory, removed at the end of the test.
struct scratch {
  std::string path;
  scratch() {
    char tmpl[] = "/tmp/rayd_launcher_ut_XXXXXX";
    path = ::mkdtemp(tmpl);
  }
  ~scratch() {
    std::error_code ec;
    fs::remove_all(path, ec);
  }
  std::string write(const std::string& name, const std::string& text) const {
    auto p = path + "/" + name;
    std::ofstream{p, std::ios::binary} << text;
    return p;
  }
};

const char* base_yaml = R"(cluster_name: demo
provider:
  type: processes
available_node_types:
  head:
    resources: {CPU: 0}
  worker:
    resources: {CPU: 1}
    min_workers: 0
head_node_type: head
)";

cluster_config parse(const std::string& text) {
  auto cfg = parse_cluster_config(text, "c.yaml");
  BOOST_REQUIRE_MESSAGE(cfg, (cfg ? "" : describe(cfg.error())));
  return *cfg;
}

std::vector<std::string> keys(const std::vector<config_difference>& ds) {
  std::vector<std::string> out;
  for (auto& d : ds)
    out.push_back(d.key);
  return out;
}

std::string flag_value(const std::vector<std::string>& argv, const std::string& flag) {
  for (size_t i = 0; i + 1 < argv.size(); ++i)
    if (argv[i] == flag)
      return argv[i + 1];
  return "<absent>";
}

} // namespace

BOOST_AUTO_TEST_CASE(state_paths_live_under_clusters_by_name) {
  auto p = cluster_paths::of("/t", "demo");
  BOOST_TEST(p.root == "/t/clusters/demo");
  BOOST_TEST(p.config == "/t/clusters/demo/cluster.yaml");
  BOOST_TEST(p.head_dir == "/t/clusters/demo/head");
  BOOST_TEST(p.token_file == "/t/clusters/demo/head/auth_token");
  BOOST_TEST(p.head_pid == "/t/clusters/demo/head.json");
  BOOST_TEST(p.lock == "/t/clusters/demo/launcher.lock");
}

BOOST_AUTO_TEST_CASE(read_config_keeps_the_exact_text_and_the_parser_errors) {
  scratch s;
  auto good = s.write("c.yaml", std::string{base_yaml} + "# a comment\n");
  auto lc = read_launcher_config(good);
  BOOST_REQUIRE_MESSAGE(lc, (lc ? "" : describe(lc.error())));
  BOOST_TEST(lc->text == std::string{base_yaml} + "# a comment\n");
  BOOST_TEST(lc->config.cluster_name == "demo");
  // The parser's message, unchanged: file, line, key, problem.
  auto bad = s.write("bad.yaml", "cluster_name: demo\nprovider:\n  type: processes\nmax_worker: 3\n");
  auto e = read_launcher_config(bad);
  BOOST_REQUIRE(!e);
  BOOST_TEST(describe(e.error()) == bad + ":4: max_worker: unknown key (did you mean 'max_workers'?)");
  BOOST_TEST(describe(load_launcher_config(bad).error()) == describe(e.error()));
  // Another provider: one line naming what the launcher supports.
  auto fake = s.write("fake.yaml", std::string{base_yaml}.replace(
                                     std::string{base_yaml}.find("processes"), 9, "fake"));
  auto f = read_launcher_config(fake);
  BOOST_REQUIRE(!f);
  BOOST_TEST(describe(f.error()).find("supports the 'processes' provider for now") != std::string::npos);
  BOOST_TEST(describe(f.error()).find("'fake'") != std::string::npos);
  BOOST_TEST((code_of(f.error()) == errc::invalid_argument));
  // A name that is no directory of its own.
  auto dots = s.write("dots.yaml", std::string{"cluster_name: ..\n"} + (base_yaml + 19));
  auto d = read_launcher_config(dots);
  BOOST_REQUIRE(!d);
  BOOST_TEST(describe(d.error()).find("cluster_name: '..' cannot name") != std::string::npos);
  // Unreadable: the parser's wording.
  auto missing = read_launcher_config(s.path + "/nope.yaml");
  BOOST_REQUIRE(!missing);
  BOOST_TEST(describe(missing.error()).find("cannot read the cluster config") != std::string::npos);
}

BOOST_AUTO_TEST_CASE(diff_of_equal_configs_is_empty) {
  auto a = parse(base_yaml);
  auto b = parse(std::string{"# same settings, other layout\n"} + base_yaml);
  BOOST_TEST(diff_configs(a, b).empty());
}

BOOST_AUTO_TEST_CASE(diff_names_each_changed_key) {
  auto a = parse(base_yaml);
  auto b = parse(R"(cluster_name: demo
max_workers: 4
idle_timeout_seconds: 30
provider:
  type: processes
available_node_types:
  head:
    resources: {CPU: 0}
  worker:
    resources: {CPU: 2, GPU: 1}
    min_workers: 1
  big:
    resources: {CPU: 8}
head_node_type: head
setup_commands: ["echo hi"]
)");
  auto ds = diff_configs(a, b);
  std::vector<std::string> want{"max_workers",
                                "idle_timeout",
                                "setup_commands",
                                "available_node_types.big",
                                // its max_workers defaults to the cluster's
                                "available_node_types.head.max_workers",
                                "available_node_types.worker.resources",
                                "available_node_types.worker.min_workers",
                                "available_node_types.worker.max_workers"};
  BOOST_TEST(keys(ds) == want, boost::test_tools::per_element());
  BOOST_TEST(to_string(ds[0]) == "max_workers: 2 -> 4");
  BOOST_TEST(to_string(ds[1]) == "idle_timeout: 300s -> 30s");
  BOOST_TEST(to_string(ds[3]).find("available_node_types.big: added {resources: {CPU: 8}") == 0);
  BOOST_TEST(to_string(ds[4]) == "available_node_types.head.max_workers: 2 -> 4");
  BOOST_TEST(to_string(ds[5]) == "available_node_types.worker.resources: {CPU: 1} -> {CPU: 2, GPU: 1}");
  BOOST_TEST(to_string(ds[6]) == "available_node_types.worker.min_workers: 0 -> 1");
  for (auto& d : ds)
    BOOST_TEST(!d.needs_head_restart, d.key);
  // And back: the type is removed.
  auto back = diff_configs(b, a);
  BOOST_TEST(to_string(back[3]).find("available_node_types.big: removed (was {") == 0);
}

BOOST_AUTO_TEST_CASE(diff_flags_what_the_running_head_keeps) {
  auto a = parse(base_yaml);
  auto b = parse(R"(cluster_name: demo
provider:
  type: processes
available_node_types:
  head:
    resources: {CPU: 1}
    labels: {zone: a}
  worker:
    resources: {CPU: 1}
head_node_type: head
)");
  auto ds = diff_configs(a, b);
  BOOST_REQUIRE_EQUAL(ds.size(), 2u);
  BOOST_TEST(ds[0].key == "available_node_types.head.resources");
  BOOST_TEST(ds[1].key == "available_node_types.head.labels");
  BOOST_TEST(ds[0].needs_head_restart);
  BOOST_TEST(ds[1].needs_head_restart);
  BOOST_TEST(to_string(ds[1])
             == "available_node_types.head.labels: {} -> {zone: a} (the running head keeps "
                "its own until it restarts: rayctl down, then rayctl up)");
  // A new head type, too.
  auto c = parse(std::string{base_yaml}.replace(std::string{base_yaml}.rfind("head"), 4, "worker"));
  auto dc = diff_configs(a, c);
  BOOST_REQUIRE_EQUAL(dc.size(), 1u);
  BOOST_TEST(dc[0].key == "head_node_type");
  BOOST_TEST(dc[0].needs_head_restart);
}

BOOST_AUTO_TEST_CASE(head_command_carries_the_head_type) {
  auto cfg = parse(R"(cluster_name: demo
provider:
  type: processes
available_node_types:
  head:
    resources: {CPU: 2, GPU: 1, memory: 1073741824, ssd: 1.5}
    labels: {zone: a}
  worker:
    resources: {CPU: 1}
head_node_type: head
)");
  auto p = cluster_paths::of("/t", "demo");
  head_options o;
  o.rayd_binary = "/bin/rayd";
  o.extra_args = {"--health-timeout-ms", "500"};
  auto argv = head_command(cfg, p, o);
  BOOST_TEST(argv[0] == "/bin/rayd");
  BOOST_TEST(std::count(argv.begin(), argv.end(), "--head") == 1);
  BOOST_TEST(std::count(argv.begin(), argv.end(), "--block") == 1);
  BOOST_TEST(flag_value(argv, "--session-dir") == p.head_dir);
  BOOST_TEST(flag_value(argv, "--port") == "0");
  BOOST_TEST(flag_value(argv, "--api-port") == "0");
  BOOST_TEST(flag_value(argv, "--autoscaling-config") == p.config);
  BOOST_TEST(flag_value(argv, "--num-cpus") == "2");
  BOOST_TEST(flag_value(argv, "--num-gpus") == "1");
  BOOST_TEST(flag_value(argv, "--memory") == "1073741824");
  BOOST_TEST(json::parse(flag_value(argv, "--resources")) == json({{"ssd", 1.5}}));
  BOOST_TEST(json::parse(flag_value(argv, "--labels"))
             == json({{"zone", "a"}, {"rayd-node-type", "head"}}));
  BOOST_TEST(argv[argv.size() - 2] == "--health-timeout-ms");
  // A head type without CPU offers 0, not the host's cores; no autoscaler
  // flag for a rayd without it.
  auto bare = parse(base_yaml);
  o.autoscaling = false;
  auto argv2 = head_command(bare, p, o);
  BOOST_TEST(flag_value(argv2, "--num-cpus") == "0");
  BOOST_TEST(flag_value(argv2, "--num-gpus") == "0");
  BOOST_TEST(flag_value(argv2, "--autoscaling-config") == "<absent>");
  BOOST_TEST(flag_value(argv2, "--memory") == "<absent>");
}

BOOST_AUTO_TEST_CASE(find_head_trusts_only_a_live_pid_with_its_start_time) {
  scratch s;
  auto p = cluster_paths::of(s.path, "demo");
  BOOST_REQUIRE(!ensure_dir(p.head_dir));
  BOOST_TEST(!find_head(p));
  // This test process stands in for a running head.
  node_file nf;
  nf.node_id = "n1";
  nf.is_head = true;
  nf.pid = ::getpid();
  nf.pid_start_ticks = process_start_ticks(::getpid());
  nf.api_address = "127.0.0.1:1234";
  BOOST_REQUIRE(!write_node_file(p.head_dir, nf));
  auto h = find_head(p);
  BOOST_REQUIRE(h);
  BOOST_TEST(h->pid == ::getpid());
  BOOST_REQUIRE(h->node);
  BOOST_TEST(h->node->api_address == "127.0.0.1:1234");
  // The same pid with another start time is another process: no head.
  nf.pid_start_ticks += 1;
  BOOST_REQUIRE(!write_node_file(p.head_dir, nf));
  BOOST_TEST(!find_head(p));
  // A head that is starting (head.json, no node.json of its own yet).
  BOOST_REQUIRE(!replace_file(p.head_pid, json{{"pid", ::getpid()},
                                                 {"start_ticks", process_start_ticks(::getpid())}}
                                              .dump()));
  auto starting = find_head(p);
  BOOST_REQUIRE(starting);
  BOOST_TEST(starting->pid == ::getpid());
  BOOST_TEST(!starting->node);
  BOOST_REQUIRE(!replace_file(p.head_pid, json{{"pid", ::getpid()}, {"start_ticks", 1}}.dump()));
  BOOST_TEST(!find_head(p));
}

BOOST_AUTO_TEST_CASE(head_runs_autoscaler_reads_the_command_line) {
  BOOST_TEST(!head_runs_autoscaler(::getpid()));
  // A stand-in with the flag on its command line, killed by its pid: a shell
  // blocked in its builtin `read` on a pipe only this test holds (no
  // grandchild that could outlive it, nothing on the test's own output).
  int feed[2];
  BOOST_REQUIRE(::pipe(feed) == 0);
  pid_t child = ::fork();
  BOOST_REQUIRE(child >= 0);
  if (child == 0) {
    ::dup2(feed[0], 0);
    int null_fd = ::open("/dev/null", O_WRONLY);
    ::dup2(null_fd, 1);
    ::dup2(null_fd, 2);
    ::close(feed[1]);
    ::execl("/bin/sh", "sh", "-c", "read line", "--autoscaling-config", "/x.yaml",
            static_cast<char*>(nullptr));
    ::_exit(127);
  }
  ::close(feed[0]);
  bool seen = false;
  for (int i = 0; i < 500 && !seen; ++i) {
    seen = head_runs_autoscaler(child);
    if (!seen)
      std::this_thread::sleep_for(std::chrono::milliseconds{2});
  }
  ::kill(child, SIGKILL);
  ::waitpid(child, nullptr, 0);
  ::close(feed[1]);
  BOOST_TEST(seen);
}

BOOST_AUTO_TEST_CASE(replace_file_swaps_the_whole_content) {
  scratch s;
  auto path = s.write("cluster.yaml", "old\n");
  BOOST_REQUIRE(!replace_file(path, "new content\n"));
  std::ifstream in{path};
  std::string text((std::istreambuf_iterator<char>(in)), std::istreambuf_iterator<char>());
  BOOST_TEST(text == "new content\n");
  size_t files = 0;
  for (auto& e : fs::directory_iterator{s.path}) {
    static_cast<void>(e);
    ++files;
  }
  BOOST_TEST(files == 1u); // no temp file left behind
  BOOST_TEST(static_cast<bool>(replace_file(s.path + "/missing/dir/x", "y")));
}

BOOST_AUTO_TEST_CASE(progress_counts_alive_workers_by_type_label) {
  auto cfg = parse(R"(cluster_name: demo
max_workers: 5
provider:
  type: processes
available_node_types:
  head:
    resources: {CPU: 0}
    min_workers: 1
  a:
    resources: {CPU: 1}
    min_workers: 2
  b:
    resources: {CPU: 1}
head_node_type: head
)");
  std::vector<node_view> nodes{
    {true, true, {{label_node_type, "head"}}},   // the head itself: not a worker
    {false, true, {{label_node_type, "a"}}},
    {false, false, {{label_node_type, "a"}}},    // dead
    {false, true, {{label_node_type, "b"}}},
    {false, true, {}},                           // joined by hand, no type
  };
  auto xs = min_worker_progress(cfg.autoscaling, nodes, {{"a", 2}});
  BOOST_REQUIRE_EQUAL(xs.size(), 2u); // b has no min_workers
  BOOST_TEST(xs[0].type == "a");
  BOOST_TEST(xs[0].alive == 1);
  BOOST_TEST(xs[0].wanted == 2);
  BOOST_TEST(!xs[0].done());
  BOOST_TEST(to_string(xs[0]) == "a: 1/2 ALIVE (2 launched)");
  BOOST_TEST(xs[1].type == "head");
  BOOST_TEST(xs[1].alive == 0);
  BOOST_TEST(to_string(xs[1]) == "head: 0/1 ALIVE (0 launched)");
  xs[0].alive = 2;
  BOOST_TEST(to_string(xs[0]) == "a: 2/2 ALIVE");
  BOOST_TEST(xs[0].done());
}

BOOST_AUTO_TEST_CASE(wait_prints_each_change_once_and_ends_when_all_are_alive) {
  auto cfg = parse(std::string{base_yaml}.replace(std::string{base_yaml}.find("min_workers: 0"),
                                                  14, "min_workers: 2"));
  int round = 0;
  std::vector<std::string> lines;
  wait_hooks h;
  h.poll = std::chrono::milliseconds{1};
  // Rounds: API down, 0 alive, 0 alive, 1 alive, 1 alive, 2 alive.
  h.fetch_nodes = [&round]() -> caf::expected<std::vector<node_view>> {
    ++round;
    if (round == 1)
      return make_error(errc::unavailable, "not yet");
    std::vector<node_view> ns;
    int alive = round >= 6 ? 2 : round >= 4 ? 1 : 0;
    for (int i = 0; i < alive; ++i)
      ns.push_back({false, true, {{label_node_type, "worker"}}});
    return ns;
  };
  h.launched = [] { return std::map<std::string, int32_t>{{"worker", 2}}; };
  h.head_alive = [] { return true; };
  h.on_line = [&lines](const std::string& l) { lines.push_back(l); };
  auto err = wait_for_min_workers(cfg.autoscaling, h,
                                  std::chrono::steady_clock::now() + std::chrono::seconds{10});
  BOOST_TEST(!err);
  BOOST_TEST(round == 6);
  std::vector<std::string> want{"worker: 0/2 ALIVE (2 launched)", "worker: 1/2 ALIVE (2 launched)",
                                "worker: 2/2 ALIVE"};
  BOOST_TEST(lines == want, boost::test_tools::per_element());
}

BOOST_AUTO_TEST_CASE(wait_times_out_naming_what_is_missing_and_stops_with_the_head) {
  auto cfg = parse(std::string{base_yaml}.replace(std::string{base_yaml}.find("min_workers: 0"),
                                                  14, "min_workers: 1"));
  wait_hooks h;
  h.poll = std::chrono::milliseconds{1};
  h.fetch_nodes = []() -> caf::expected<std::vector<node_view>> {
    return std::vector<node_view>{};
  };
  h.launched = [] { return std::map<std::string, int32_t>{}; };
  h.head_alive = [] { return true; };
  h.on_line = [](const std::string&) {};
  auto err = wait_for_min_workers(cfg.autoscaling, h,
                                  std::chrono::steady_clock::now() + std::chrono::milliseconds{50});
  BOOST_REQUIRE(err);
  BOOST_TEST((code_of(err) == errc::timeout));
  BOOST_TEST(describe(err).find("missing worker: 0/1 ALIVE (0 launched)") != std::string::npos);
  // The API never answered: the message says so.
  h.fetch_nodes = []() -> caf::expected<std::vector<node_view>> {
    return make_error(errc::unavailable, "cannot reach the head");
  };
  err = wait_for_min_workers(cfg.autoscaling, h,
                             std::chrono::steady_clock::now() + std::chrono::milliseconds{50});
  BOOST_TEST(describe(err).find("the head's API did not answer (cannot reach the head)")
             != std::string::npos);
  // A head that stopped ends the wait at once.
  h.head_alive = [] { return false; };
  auto t0 = std::chrono::steady_clock::now();
  err = wait_for_min_workers(cfg.autoscaling, h, t0 + std::chrono::seconds{30});
  BOOST_TEST((code_of(err) == errc::unavailable));
  BOOST_TEST((std::chrono::steady_clock::now() - t0 < std::chrono::seconds{5}));
  // No min_workers at all: nothing to wait for.
  auto none = parse(base_yaml);
  BOOST_TEST(!wait_for_min_workers(none.autoscaling, h, t0));
}

BOOST_AUTO_TEST_CASE(lock_makes_a_second_launcher_wait) {
  scratch s;
  auto p = cluster_paths::of(s.path, "demo");
  auto first = launcher_lock::acquire(p, nullptr);
  BOOST_REQUIRE(first);
  std::atomic<bool> waited{false};
  std::atomic<bool> got{false};
  std::thread second{[&p, &waited, &got] {
    auto l = launcher_lock::acquire(p, [&waited] { waited = true; });
    got = static_cast<bool>(l);
  }};
  for (int i = 0; i < 500 && !waited; ++i)
    std::this_thread::sleep_for(std::chrono::milliseconds{2});
  BOOST_TEST(waited.load());
  BOOST_TEST(!got.load());
  { auto release = std::move(*first); }
  second.join();
  BOOST_TEST(got.load());
}

BOOST_AUTO_TEST_CASE(autoscaler_progress_reads_rounds_and_the_config_error) {
  auto x = parse_autoscaler_progress(
    R"({"cluster_name": "demo", "round": {"count": 42, "time_ms": 1}, "errors": {"config": "", "provider": "x"}})");
  BOOST_REQUIRE(x);
  BOOST_TEST(x->rounds == 42);
  BOOST_TEST(x->config_error.empty());
  auto y = parse_autoscaler_progress(
    R"({"round": {"count": 7}, "errors": {"config": "c.yaml:3: provider.type: cannot change"}})");
  BOOST_REQUIRE(y);
  BOOST_TEST(y->config_error == "c.yaml:3: provider.type: cannot change");
  BOOST_TEST(!parse_autoscaler_progress("not json"));
  BOOST_TEST(!parse_autoscaler_progress(R"({"round": {}})"));
  BOOST_TEST(!parse_autoscaler_progress(R"([1, 2])"));
}

BOOST_AUTO_TEST_CASE(head_environment_points_rayctl_at_the_head) {
  node_file nf;
  nf.api_address = "127.0.0.1:4321";
  auto p = cluster_paths::of("/t", "demo");
  auto env = head_environment(nf, p);
  std::map<std::string, std::optional<std::string>> m(env.begin(), env.end());
  BOOST_TEST(*m.at("RAYD_ADDRESS") == "127.0.0.1:4321");
  BOOST_TEST(*m.at("RAYD_TOKEN_FILE") == "/t/clusters/demo/head/auth_token");
  BOOST_TEST(!m.at("RAYD_TOKEN")); // unset: it would win over the file
}
