#define BOOST_TEST_MODULE cli_errors
#include <boost/test/unit_test.hpp>

#include <cerrno>
#include <cstring>
#include <fstream>

#include <arpa/inet.h>
#include <netinet/in.h>
#include <sys/socket.h>
#include <unistd.h>

#include "tests/integration/harness.hpp"

using namespace rayd::integration;

namespace {

// A listening TCP socket on 127.0.0.1:<os-chosen port>, closed at scope exit.
struct listener {
  int fd = -1;
  uint16_t port = 0;
  listener() {
    fd = ::socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
    BOOST_REQUIRE(fd >= 0);
    sockaddr_in addr{};
    addr.sin_family = AF_INET;
    addr.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    BOOST_REQUIRE(::bind(fd, reinterpret_cast<sockaddr*>(&addr), sizeof(addr)) == 0);
    BOOST_REQUIRE(::listen(fd, 16) == 0);
    socklen_t len = sizeof(addr);
    BOOST_REQUIRE(::getsockname(fd, reinterpret_cast<sockaddr*>(&addr), &len) == 0);
    port = ntohs(addr.sin_port);
  }
  ~listener() {
    if (fd >= 0)
      ::close(fd);
  }
};

// Pids of processes whose command line contains `needle` (a unique temp path):
// how we know nothing half-started was left behind. Inspection only.
struct scratch {
  temp_dir tmp{"rayd_it_cli"};
  env_list env{{"RAYD_TMPDIR", tmp.sub("rayd_tmp")}};

  exec_result rayd(const std::vector<std::string>& args, milliseconds timeout = 10s) const {
    std::vector<std::string> argv{rayd_bin()};
    argv.insert(argv.end(), args.begin(), args.end());
    return run(argv, env, timeout);
  }
  exec_result rayctl(const std::vector<std::string>& args) const {
    std::vector<std::string> argv{rayctl_bin()};
    argv.insert(argv.end(), args.begin(), args.end());
    return run(argv, env, 10s);
  }
  // A head command line that would run in the foreground if nothing were wrong.
  std::vector<std::string> head_args(const std::string& session,
                                     const std::vector<std::string>& extra) const {
    std::vector<std::string> a{"--head", "--block", "--session-dir", tmp.path() + "/" + session,
                               "--num-cpus", "1"};
    auto has = [&extra](const std::string& f) {
      for (const auto& e : extra)
        if (e == f)
          return true;
      return false;
    };
    if (!has("--port"))
      a.insert(a.end(), {"--port", "0"});
    if (!has("--api-port"))
      a.insert(a.end(), {"--api-port", "0"});
    a.insert(a.end(), extra.begin(), extra.end());
    return a;
  }
};

void check_fails_with(const exec_result& r, const std::string& what, const std::string& word,
                      bool one_line) {
  BOOST_TEST_CONTEXT(what) {
    BOOST_CHECK_MESSAGE(!r.timed_out, "it did not exit: " << r.describe());
    BOOST_CHECK_MESSAGE(r.exit_code != 0 && !r.timed_out, r.describe());
    if (!word.empty())
      BOOST_CHECK_MESSAGE(contains_ci(r.err + r.out, word),
                          "the error does not mention \"" << word << "\": " << r.describe());
    if (one_line)
      BOOST_CHECK_MESSAGE(nonempty_lines(r.err).size() == 1,
                          "expected a one-line error on stderr: " << r.describe());
  }
}

}  // namespace

BOOST_AUTO_TEST_CASE(head_or_address_exactly_one) {
  scratch s;
  exec_result neither = s.rayd({"--block", "--session-dir", s.tmp.path() + "/n", "--port", "0"});
  BOOST_CHECK_MESSAGE(neither.exit_code == 2, "neither --head nor --address: " << neither.describe());
  exec_result both = s.rayd({"--head", "--address=127.0.0.1:1", "--block", "--session-dir",
                             s.tmp.path() + "/b", "--port", "0", "--api-port", "0"});
  BOOST_CHECK_MESSAGE(both.exit_code == 2, "--head and --address: " << both.describe());
  exec_result bogus = s.rayd({"--head", "--block", "--no-such-flag", "--session-dir",
                              s.tmp.path() + "/u", "--port", "0", "--api-port", "0"});
  BOOST_CHECK_MESSAGE(bogus.exit_code == 2, "unknown flag: " << bogus.describe());
}

BOOST_AUTO_TEST_CASE(help_lists_the_flags) {
  scratch s;
  exec_result help = s.rayd({"--help"});
  BOOST_CHECK_MESSAGE(help.exit_code == 0, help.describe());
  for (const char* flag : {"--head", "--address", "--port", "--api-port", "--node-port", "--bind",
                           "--storage", "--session-dir", "--num-cpus", "--num-gpus", "--memory",
                           "--resources", "--labels", "--node-name", "--token", "--token-file",
                           "--block", "--gcs-reconnect-timeout", "--node-reconnect-timeout"})
    BOOST_CHECK_MESSAGE((help.out + help.err).find(flag) != std::string::npos,
                        "rayd --help does not mention " << flag);
}

BOOST_AUTO_TEST_CASE(malformed_json_flags) {
  scratch s;
  check_fails_with(s.rayd(s.head_args("r1", {"--resources", "{bad"})), "--resources '{bad'",
                   "resources", true);
  check_fails_with(s.rayd(s.head_args("r2", {"--resources", R"({"x": -1})"})),
                   "--resources with a negative amount", "resources", false);
  check_fails_with(s.rayd(s.head_args("l1", {"--labels", R"({"a":1})"})),
                   "--labels with a non-string value", "labels", false);
  check_fails_with(s.rayd(s.head_args("l2", {"--labels", "[not json"})), "--labels malformed",
                   "labels", true);
  // A worker validates its flags before joining anything.
  check_fails_with(s.rayd({"--address=127.0.0.1:" + std::to_string(unused_port()), "--block",
                           "--session-dir", s.tmp.path() + "/w", "--token", "t", "--resources",
                           "{bad"}),
                   "worker --resources '{bad'", "resources", true);
  for (const char* d : {"r1", "r2", "l1", "l2", "w"})
    BOOST_CHECK(!file_exists(s.tmp.path() + "/" + d + "/node.json"));
  BOOST_CHECK(processes_mentioning(s.tmp.path()).empty());
}

BOOST_AUTO_TEST_CASE(cluster_port_in_use) {
  scratch s;
  listener busy;
  std::string session = s.tmp.path() + "/p1";
  exec_result r = s.rayd(s.head_args("p1", {"--port", std::to_string(busy.port)}));
  check_fails_with(r, "--port in use", "", false);
  BOOST_CHECK_MESSAGE(r.elapsed_ms < 5000, "took " << r.elapsed_ms << " ms");
  BOOST_CHECK_EQUAL(r.exit_code, 1);  // docs/cli.md: port in use is a runtime failure
  // The busy port and the flag that named it ("port" alone is in any usage text).
  BOOST_CHECK_MESSAGE(r.err.find(":" + std::to_string(busy.port) + " (--port)") !=
                          std::string::npos,
                      "the error does not name the port and its flag: " << r.describe());
  BOOST_CHECK(!file_exists(session + "/node.json"));
  BOOST_CHECK(processes_mentioning(session).empty());
}

BOOST_AUTO_TEST_CASE(api_port_in_use) {
  scratch s;
  listener busy;
  std::string session = s.tmp.path() + "/p2";
  exec_result r = s.rayd(s.head_args("p2", {"--api-port", std::to_string(busy.port)}));
  check_fails_with(r, "--api-port in use", "", false);
  BOOST_CHECK_MESSAGE(r.elapsed_ms < 5000, "took " << r.elapsed_ms << " ms");
  BOOST_CHECK_MESSAGE(r.err.find(":" + std::to_string(busy.port) + " (--api-port)") !=
                          std::string::npos,
                      "the error does not name the port and its flag: " << r.describe());
  BOOST_CHECK(!file_exists(session + "/node.json"));
  BOOST_CHECK(processes_mentioning(session).empty());
}

BOOST_AUTO_TEST_CASE(port_in_use_in_background_mode_leaves_nothing_behind) {
  scratch s;
  listener busy;
  std::string session = s.tmp.path() + "/p3";
  session_guard guard(session);  // never let a stray daemon outlive the test
  exec_result r = s.rayd({"--head", "--port", std::to_string(busy.port), "--api-port", "0",
                          "--session-dir", session, "--num-cpus", "1"});
  check_fails_with(r, "--port in use without --block", "port", false);
  BOOST_CHECK_MESSAGE(r.elapsed_ms < 5000, "took " << r.elapsed_ms << " ms");
  bool none = wait_until([&] { return processes_mentioning(session).empty(); }, 3s, 50ms);
  BOOST_CHECK_MESSAGE(none, "a rayd process of the failed start is still running");
  BOOST_CHECK(!file_exists(session + "/node.json"));
}

BOOST_AUTO_TEST_CASE(storage_not_a_directory) {
  scratch s;
  std::string file = s.tmp.path() + "/not_a_dir";
  std::ofstream(file) << "plain file\n";
  std::string session = s.tmp.path() + "/st";
  exec_result r = s.rayd(s.head_args("st", {"--storage", file}));
  check_fails_with(r, "--storage is a regular file", "storage", false);
  BOOST_CHECK_MESSAGE(r.err.find(file) != std::string::npos && contains_ci(r.err, "not a directory"),
                      "the error does not name the file and why: " << r.describe());
  BOOST_CHECK(!file_exists(session + "/node.json"));
  BOOST_CHECK(processes_mentioning(session).empty());
}

BOOST_AUTO_TEST_CASE(storage_locked_by_a_running_head) {
  cluster c("cli_lock");
  std::string storage = c.root() + "/storage";
  c.start_head({"--storage", storage}, 1);
  std::string session = c.root() + "/second";
  exec_result r = run({rayd_bin(), "--head", "--block", "--port", "0", "--api-port", "0",
                       "--session-dir", session, "--storage", storage, "--num-cpus", "1"},
                      c.base_env(), 10s);
  check_fails_with(r, "second head on a locked storage", "", false);
  BOOST_CHECK_MESSAGE(r.elapsed_ms < 5000, "took " << r.elapsed_ms << " ms");
  // The storage path and why (a head logs "storage <path>" whenever it opens one).
  BOOST_CHECK_MESSAGE(r.err.find(storage) != std::string::npos &&
                          contains_ci(r.err, "in use by another process"),
                      "the error does not say the storage is in use: " << r.describe());
  BOOST_CHECK(!file_exists(session + "/node.json"));
  // The first head is unharmed.
  BOOST_CHECK(c.head().proc->running());
  BOOST_CHECK_EQUAL(alive_count(c.status_json()), 1u);
}

BOOST_AUTO_TEST_CASE(rayctl_usage_errors) {
  scratch s;
  exec_result unknown = s.rayctl({"--address", "127.0.0.1:1", "--token", "t", "frobnicate"});
  BOOST_CHECK_MESSAGE(unknown.exit_code == 2, "unknown subcommand: " << unknown.describe());
  exec_result missing_arg = s.rayctl({"--address", "127.0.0.1:1", "--token", "t", "kv", "put",
                                      "only_a_key"});
  BOOST_CHECK_MESSAGE(missing_arg.exit_code == 2, "kv put without a value: "
                                                      << missing_arg.describe());
  exec_result bad_flag = s.rayctl({"status", "--no-such-flag"});
  BOOST_CHECK_MESSAGE(bad_flag.exit_code == 2, "unknown flag: " << bad_flag.describe());
}
