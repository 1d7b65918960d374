#define BOOST_TEST_MODULE remote_client
// A remote client (issue 11; docs/cli.md --api-bind): the driver program
// task_programs/client_driver.cpp with RAYD_ADDRESS=rayd://HOST:API_PORT,
// every call through the head's API port.
//
// The namespace cases (root) put the client in its own network namespace
// joined to the host by a veth pair (netns_link.hpp); the head listens with
// `--bind 127.0.0.1 --api-bind <host veth address>`, so from the namespace
// only the API port is reachable, which the first case proves with raw
// connects before running tasks, actors and a 2 GiB round trip. Then the link
// is cut for less than the client's grace (the work finishes, every actor
// call ran exactly once), for longer (the client is told its session
// expired, its actor is freed), and the head is killed (-9) and restarted
// under a connected client (the acknowledged state of a detached actor
// survives). The loopback case needs no root: a client against an API port
// on 127.0.0.2 while the cluster stays on 127.0.0.1; there the driver's own
// list of its TCP connections (all to the API port) shows it is a client.

#include <fcntl.h>
#include <netinet/in.h>
#include <poll.h>
#include <sched.h>
#include <signal.h>
#include <sys/socket.h>
#include <sys/wait.h>
#include <unistd.h>
#include <arpa/inet.h>

#include <cerrno>
#include <chrono>
#include <cstdlib>
#include <cstring>
#include <fstream>
#include <memory>
#include <sstream>
#include <string>
#include <vector>

#include <boost/test/unit_test.hpp>

#include "tests/integration/harness.hpp"
#include "tests/integration/netns_link.hpp"
#include "tests/integration/tasks_common.hpp"

using namespace rayd::integration;
using namespace std::chrono_literals;

namespace {

std::string client_driver_bin() {
  if (const char* p = std::getenv("RAYD_CLIENT_DRIVER"); p != nullptr && *p != '\0')
    return p;
  return bin_dir() + "/../tests/integration/client_driver";
}

/// The client's environment: the head's API port as a rayd:// address (the
/// client mode), its token, and a private RAYD_TMPDIR.
env_list client_env(cluster& c) {
  return {{"RAYD_ADDRESS", "rayd://" + c.head().api_address()},
          {"RAYD_TOKEN", trim(read_file(c.head().token_file()))},
          {"RAYD_TMPDIR", c.rayd_tmpdir()}};
}

/// argv of a driver case; inside `ns` (through `ip netns exec`, which execs
/// the driver: the pid stays the driver's) when `ns` is not empty.
std::vector<std::string> client_argv(const std::string& ns, const std::string& name,
                                     const std::vector<std::string>& args) {
  std::vector<std::string> argv;
  if (!ns.empty())
    argv = {"ip", "netns", "exec", ns};
  argv.insert(argv.end(), {client_driver_bin(), "--case", name});
  argv.insert(argv.end(), args.begin(), args.end());
  return argv;
}

/// A driver case running in the background; the test acts on its progress
/// lines ("READY", "PROGRESS r n", ...).
struct client_run {
  std::unique_ptr<process> proc;
  std::string name;

  client_run(cluster& c, const std::string& ns, const std::string& case_name,
             const std::vector<std::string>& args)
      : name(case_name) {
    proc = std::make_unique<process>(client_argv(ns, case_name, args), client_env(c),
                                     c.root() + "/logs", "client-" + case_name);
    c.add_log(proc->err_path());
  }

  /// The stdout lines starting with `prefix`.
  std::vector<std::string> lines(const std::string& prefix) const {
    std::vector<std::string> out;
    for (auto& l : nonempty_lines(proc->out()))
      if (l.rfind(prefix, 0) == 0)
        out.push_back(l);
    return out;
  }

  /// Waits until at least `n` lines start with `prefix`; a failed
  /// BOOST_REQUIRE when the driver exits first or `limit` passes.
  void await_lines(const std::string& prefix, size_t n, milliseconds limit) {
    bool ok = wait_until(
        [this, &prefix, n] { return lines(prefix).size() >= n || !proc->running(); }, limit,
        20ms);
    BOOST_REQUIRE_MESSAGE(ok && lines(prefix).size() >= n,
                          "client_driver --case " << name << ": no " << n << " '" << prefix
                                                  << "' line(s) within " << limit.count()
                                                  << " ms\n--- stdout\n" << proc->out()
                                                  << "\n--- stderr\n" << proc->err());
  }

  /// Waits for the exit; its JSON (a failed BOOST_REQUIRE unless it exits 0
  /// in time with one).
  json finish(milliseconds limit) {
    auto code = proc->wait_exit(limit);
    json j = last_json(proc->out());
    BOOST_REQUIRE_MESSAGE(code.has_value(), "client_driver --case "
                                                << name << " still runs after "
                                                << limit.count() << " ms\n--- stdout\n"
                                                << proc->out() << "\n--- stderr\n"
                                                << proc->err());
    BOOST_REQUIRE_MESSAGE(*code == 0 && !j.is_discarded(),
                          "client_driver --case " << name << " exited " << *code
                                                  << "\n--- stdout\n" << proc->out()
                                                  << "\n--- stderr\n" << proc->err());
    BOOST_TEST_MESSAGE("client_driver --case " << name << ": " << j.dump());
    return j;
  }
};

/// Runs a driver case to completion.
json run_client(cluster& c, const std::string& ns, const std::string& name,
                const std::vector<std::string>& args, milliseconds limit = 180s) {
  client_run r(c, ns, name, args);
  return r.finish(limit);
}

/// A TCP connect to ip:port from inside the network namespace `ns` (a forked
/// child joins it with setns; this process stays where it is). 0 when it
/// connected within 2 s, else the errno (ETIMEDOUT when nothing answered);
/// -1 when the namespace could not be entered.
int connect_from_ns(const std::string& ns, const std::string& ip, uint16_t port) {
  const std::string path = "/var/run/netns/" + ns;
  pid_t pid = ::fork();
  if (pid < 0)
    return -1;
  if (pid == 0) {
    int nsfd = ::open(path.c_str(), O_RDONLY | O_CLOEXEC);
    if (nsfd < 0 || ::setns(nsfd, CLONE_NEWNET) != 0)
      ::_exit(255);
    int fd = ::socket(AF_INET, SOCK_STREAM | SOCK_NONBLOCK, 0);
    sockaddr_in sa{};
    sa.sin_family = AF_INET;
    sa.sin_port = htons(port);
    if (fd < 0 || ::inet_pton(AF_INET, ip.c_str(), &sa.sin_addr) != 1)
      ::_exit(254);
    if (::connect(fd, reinterpret_cast<sockaddr*>(&sa), sizeof sa) == 0)
      ::_exit(0);
    if (errno != EINPROGRESS)
      ::_exit(errno & 0xff);
    pollfd p{fd, POLLOUT, 0};
    if (::poll(&p, 1, 2000) != 1)
      ::_exit(ETIMEDOUT);
    int err = 0;
    socklen_t len = sizeof err;
    ::getsockopt(fd, SOL_SOCKET, SO_ERROR, &err, &len);
    ::_exit(err & 0xff);
  }
  int status = 0;
  // The child ends within its 2 s poll: a bounded wait.
  if (::waitpid(pid, &status, 0) != pid || !WIFEXITED(status))
    return -1;
  int code = WEXITSTATUS(status);
  return code >= 254 ? -1 : code;
}

std::string errno_text(int code) {
  return code == 0 ? "connected" : code < 0 ? "could not enter the namespace"
                                            : std::string(std::strerror(code));
}

/// `rayctl actors --json --name N`: the rows (an empty array on failure).
json actor_rows(cluster& c, const std::string& name) {
  auto r = c.rayctl({"actors", "--json", "--name", name});
  json j = json::parse(r.out, nullptr, false);
  if (r.exit_code != 0 || j.is_discarded())
    return json::array();
  if (j.is_object() && j.contains("actors"))
    return j["actors"];
  return j;
}

/// Peak resident memory of `pid` in MiB (VmHWM), -1 if unknown.
int64_t peak_rss_mib(pid_t pid) {
  std::istringstream in(read_file("/proc/" + std::to_string(pid) + "/status"));
  std::string line;
  while (std::getline(in, line))
    if (line.rfind("VmHWM:", 0) == 0)
      return std::strtoll(line.c_str() + 6, nullptr, 10) / 1024;
  return -1;
}

/// MemAvailable of this host in GiB.
double available_gib() {
  std::istringstream in(read_file("/proc/meminfo"));
  std::string line;
  while (std::getline(in, line))
    if (line.rfind("MemAvailable:", 0) == 0)
      return std::strtod(line.c_str() + 13, nullptr) / (1024.0 * 1024.0);
  return 0;
}

/// Keeps the link down for `how_long` while the client must keep running
/// (it may not give up during the cut); false if it exited meanwhile.
bool hold_cut(client_run& client, milliseconds how_long) {
  // The condition is "the driver exited"; reaching the deadline is success.
  return !wait_until([&client] { return !client.proc->running(); }, how_long, 50ms);
}

/// Every TCP connection the client holds goes to the head's API port.
void check_peers(const json& j, const std::string& api_address) {
  BOOST_REQUIRE_MESSAGE(j.contains("peers") && j["peers"].is_array() && !j["peers"].empty(),
                        "the driver lists no connections: " << j.dump());
  for (const auto& p : j["peers"])
    BOOST_CHECK_MESSAGE(p.get<std::string>() == api_address,
                        "the client is connected to " << p.get<std::string>()
                                                      << ", not only to the API port "
                                                      << api_address);
}

void check_tasks(const json& j) {
  BOOST_CHECK_EQUAL(j.value("sum", int64_t(-1)), j.value("expected", int64_t(-2)));
  BOOST_CHECK_EQUAL(j.value("count", 0), 100);
  BOOST_CHECK_EQUAL(j.value("chained", -1), j.value("chained_expected", -2));
}

void check_actors(const json& j) {
  BOOST_CHECK(j.value("in_order", false));
  BOOST_CHECK_EQUAL(j.value("final", -1), 1000);
  BOOST_CHECK_EQUAL(j.value("named_value", -1), 42);
  BOOST_CHECK(j.value("same_handle", false));
}

void check_roundtrip(const json& j, uint64_t size) {
  for (const char* part : {"put_seen_by_task", "put_back", "task_result"}) {
    BOOST_CHECK_MESSAGE(j[part].value("size", uint64_t(0)) == size,
                        part << ": size " << j[part].value("size", uint64_t(0)) << ", not "
                             << size);
    BOOST_CHECK_MESSAGE(j[part].value("checksum_ok", false), part << ": checksum differs");
  }
}

/// The namespaced setup: a head with only its API port on the host's veth
/// address, and one worker on loopback.
struct ns_cluster {
  cluster c{"remote_client"};
  rayd_node* head = nullptr;
  rayd_node* worker = nullptr;

  ns_cluster(const netns_link& net, int head_cpus) {
    head = &c.start_head({"--bind", "127.0.0.1", "--api-bind", net.host_ip(), "--node-name",
                          "it-head"},
                         head_cpus);
    worker = &c.start_worker("w1", {"--node-name", "it-w1", "--resources", "{\"w1\": 100}"}, 2);
    BOOST_REQUIRE_MESSAGE(wait_for_alive(c, 2, 15s).has_value(), "the worker did not join");
  }
};

} // namespace

BOOST_AUTO_TEST_CASE(api_bind_is_checked_at_start) {
  temp_dir tmp("rayd_apibind");
  auto bad = run({rayd_bin(), "--head", "--block", "--port", "0", "--api-port", "0",
                  "--session-dir", tmp.sub("h"), "--api-bind", "not-an-address"},
                 {{"RAYD_TMPDIR", tmp.path()}}, 15s);
  BOOST_CHECK_EQUAL(bad.exit_code, 2);
  BOOST_CHECK_MESSAGE(contains_ci(bad.err, "--api-bind") && contains_ci(bad.err, "not-an-address"),
                      "the error names neither the flag nor the value: " << bad.describe());
  auto worker = run({rayd_bin(), "--address=127.0.0.1:1", "--block", "--api-bind", "127.0.0.1"},
                    {{"RAYD_TMPDIR", tmp.path()}}, 15s);
  BOOST_CHECK_EQUAL(worker.exit_code, 2);
  BOOST_CHECK_MESSAGE(contains_ci(worker.err, "--head"), worker.describe());
}

// No root needed: the API port on 127.0.0.2, the cluster on 127.0.0.1.
BOOST_AUTO_TEST_CASE(loopback_client_tasks_actors_and_64_mib) {
  cluster c("remote_client_lo");
  auto& head = c.start_head({"--bind", "127.0.0.1", "--api-bind", "127.0.0.2"}, 2);
  BOOST_REQUIRE_MESSAGE(head.api_address().rfind("127.0.0.2:", 0) == 0,
                        "api_address " << head.api_address() << " is not on --api-bind");
  BOOST_REQUIRE(head.cluster_address().rfind("127.0.0.1:", 0) == 0);
  uint16_t api = port_of(head.api_address());
  uint16_t cport = port_of(head.cluster_address());
  // Each port is where its flag put it, and only there.
  int fd = tcp_connect("127.0.0.1:" + std::to_string(api));
  BOOST_CHECK_MESSAGE(fd < 0, "the API port also listens on 127.0.0.1");
  if (fd >= 0)
    ::close(fd);
  fd = tcp_connect("127.0.0.2:" + std::to_string(cport));
  BOOST_CHECK_MESSAGE(fd < 0, "the cluster port also listens on 127.0.0.2");
  if (fd >= 0)
    ::close(fd);
  // rayctl reaches the head through the advertised API address.
  BOOST_REQUIRE_MESSAGE(c.try_status().has_value(), "rayctl status failed");

  json tasks = run_client(c, "", "tasks", {});
  check_tasks(tasks);
  check_peers(tasks, head.api_address());
  json actors = run_client(c, "", "actors", {});
  check_actors(actors);
  check_peers(actors, head.api_address());
  const uint64_t size = 64ull << 20;
  check_roundtrip(run_client(c, "", "roundtrip",
                             {"size=" + std::to_string(size),
                              "task_size=" + std::to_string(size)}),
                  size);
}

BOOST_AUTO_TEST_CASE(namespaced_client_reaches_only_the_api_port) {
  netns_link net{"c"}; // declared first: destroyed after the cluster's processes
  if (!require_or_skip(net.ready(), "no network namespace: " + net.why_not()))
    return;
  ns_cluster nc(net, 2);
  cluster& c = nc.c;
  BOOST_REQUIRE_MESSAGE(nc.head->api_address() == net.host_ip() + ":" +
                                                      std::to_string(port_of(
                                                          nc.head->api_address())),
                        "api_address " << nc.head->api_address() << " is not on "
                                       << net.host_ip());
  BOOST_REQUIRE(nc.head->cluster_address().rfind("127.0.0.1:", 0) == 0);

  // From the namespace: the API port answers; the cluster port and the node
  // ports (which do listen, on loopback) do not.
  const std::string host = net.host_ip();
  uint16_t api = port_of(nc.head->api_address());
  int r = connect_from_ns(net.ns(), host, api);
  BOOST_CHECK_MESSAGE(r == 0, "API port " << host << ":" << api << " from the namespace: "
                                          << errno_text(r));
  struct closed_port {
    std::string what;
    std::string address; // where it listens
  };
  for (const auto& p : {closed_port{"cluster port", nc.head->cluster_address()},
                        closed_port{"head node port",
                                    nc.head->info.value("node_address", std::string())},
                        closed_port{"worker node port",
                                    nc.worker->info.value("node_address", std::string())}}) {
    uint16_t port = port_of(p.address);
    BOOST_REQUIRE_MESSAGE(port != 0, p.what << ": no port in node.json");
    int here = tcp_connect(p.address);
    BOOST_CHECK_MESSAGE(here >= 0, p.what << " " << p.address << " does not listen at all");
    if (here >= 0)
      ::close(here);
    int there = connect_from_ns(net.ns(), host, port);
    BOOST_CHECK_MESSAGE(there > 0, p.what << " " << host << ":" << port
                                          << " from the namespace: " << errno_text(there)
                                          << " (must fail)");
  }

  json tasks = run_client(c, net.ns(), "tasks", {});
  check_tasks(tasks);
  check_peers(tasks, nc.head->api_address());
  json actors = run_client(c, net.ns(), "actors", {});
  check_actors(actors);
  check_peers(actors, nc.head->api_address());

  // 2 GiB both ways: the client holds at most two such values, the workers
  // and the object store one or two each; about 10 GiB at the peak.
  const uint64_t big = 2ull << 30;
  double avail = available_gib();
  if (skip_part_unless(avail >= 12.0, "2 GiB round trip: only " + std::to_string(avail) +
                                          " GiB of memory available (12 wanted)")) {
    int64_t head_before = peak_rss_mib(nc.head->pid());
    json j = run_client(c, net.ns(), "roundtrip",
                        {"size=" + std::to_string(big), "task_size=" + std::to_string(big)},
                        600s);
    check_roundtrip(j, big);
    BOOST_TEST_MESSAGE("2 GiB: put " << j.value("put_ms", -1) << " ms, get "
                                     << j.value("get_ms", -1) << " ms, task result get "
                                     << j.value("task_get_ms", -1) << " ms; client peak RSS "
                                     << j.value("peak_rss_mib", -1) << " MiB; head VmHWM (with its node's object store) "
                                     << head_before << " -> " << peak_rss_mib(nc.head->pid())
                                     << " MiB");
  }
}

BOOST_AUTO_TEST_CASE(link_cut_shorter_than_the_grace_loses_and_repeats_nothing) {
  netns_link net{"s"};
  if (!require_or_skip(net.ready(), "no network namespace: " + net.why_not()))
    return;
  ns_cluster nc(net, 2);
  cluster& c = nc.c;
  temp_dir sig("rayd_cut");
  client_run client(c, net.ns(), "cut",
                    {"grace_ms=20000", "dir=" + sig.path(), "batch=20", "ms=20"});
  client.await_lines("READY", 1, 60s);
  client.await_lines("PROGRESS", 2, 60s);

  // 8 s: longer than a client takes to call a silent connection dead (a few
  // seconds), so it reconnects and resumes; well inside the 20 s grace.
  BOOST_REQUIRE_MESSAGE(net.set_ns_link(false).exit_code == 0, "cannot cut the link");
  BOOST_TEST_MESSAGE("link down at " << now_ms());
  // Work stops with the link: a round already in flight may finish, no more.
  bool held = hold_cut(client, 500ms);
  size_t during = client.lines("PROGRESS").size();
  held = held && hold_cut(client, 7500ms);
  BOOST_CHECK_MESSAGE(client.lines("PROGRESS").size() == during,
                      "rounds completed while the link was down: the cut did not cut");
  exec_result up = net.set_ns_link(true);
  net.ensure_ns_address();
  BOOST_TEST_MESSAGE("link up at " << now_ms());
  BOOST_REQUIRE_MESSAGE(up.exit_code == 0, up.describe());
  BOOST_REQUIRE_MESSAGE(held, "the client exited during an 8 s cut (grace 20 s)\n"
                                  << client.proc->out() << client.proc->err());
  // Work resumes over the same session.
  client.await_lines("PROGRESS", during + 2, 60s);
  BOOST_REQUIRE(write_file(sig.path() + "/stop", "1"));
  json j = client.finish(120s);
  BOOST_CHECK_EQUAL(j["error"].value("kind", std::string("?")), "none");
  BOOST_CHECK_MESSAGE(j.value("exact", false),
                      "an answer was wrong: an actor call ran twice or was lost");
  BOOST_CHECK_GT(j.value("calls", 0), 0);
  BOOST_CHECK_MESSAGE(j.value("final", -1) == j.value("calls", -2),
                      "the counter holds " << j.value("final", -1) << " after "
                                           << j.value("calls", -2) << " calls");
  // The replay was exercised: the work went on over a new connection.
  BOOST_CHECK_MESSAGE(j["connections_before"] != j["connections_after"],
                      "the client kept its connection through the cut, so no resume was "
                      "tested: "
                          << j["connections_before"].dump());
}

BOOST_AUTO_TEST_CASE(link_cut_longer_than_the_grace_expires_the_session) {
  netns_link net{"l"};
  if (!require_or_skip(net.ready(), "no network namespace: " + net.why_not()))
    return;
  ns_cluster nc(net, 2);
  cluster& c = nc.c;
  temp_dir sig("rayd_cut");
  const std::string name = "expiring-" + std::to_string(::getpid());
  client_run client(c, net.ns(), "cut",
                    {"grace_ms=2000", "dir=" + sig.path(), "batch=20", "ms=20", "name=" + name});
  client.await_lines("PROGRESS", 1, 60s);
  BOOST_REQUIRE_MESSAGE(!actor_rows(c, name).empty(), "the client's actor is not listed");

  BOOST_REQUIRE_MESSAGE(net.set_ns_link(false).exit_code == 0, "cannot cut the link");
  BOOST_TEST_MESSAGE("link down at " << now_ms());
  hold_cut(client, 5s); // the client may give up during the cut or after it
  exec_result up = net.set_ns_link(true);
  BOOST_TEST_MESSAGE("link up at " << now_ms());
  net.ensure_ns_address();
  BOOST_REQUIRE_MESSAGE(up.exit_code == 0, up.describe());
  // Once the link is back the client learns its session expired (or gave up
  // earlier); it must not carry on as if nothing happened.
  int64_t up_ms = now_ms();
  bool ended = wait_until([&client] { return !client.proc->running(); }, 30s, 50ms);
  if (!ended) {
    size_t after = 0;
    for (auto& l : client.lines("PROGRESS")) {
      std::istringstream f(l);
      std::string word;
      int64_t round = 0, calls = 0, at = 0;
      f >> word >> round >> calls >> at;
      if (at > up_ms)
        ++after;
    }
    BOOST_ERROR("the client still works 30 s after a 5 s cut with a 2 s grace ("
                << after << " rounds after the link came back): its session did not expire");
    BOOST_REQUIRE(write_file(sig.path() + "/stop", "1"));
  }
  json j = client.finish(30s);
  BOOST_CHECK_EQUAL(j["error"].value("kind", std::string("?")), "connection_error");
  BOOST_CHECK_MESSAGE(contains_ci(j["error"].value("what", std::string()), "expired"),
                      "the client's error does not say the session expired: " << j.dump());
  // The session's (non-detached) actor is freed with it.
  std::string state;
  bool dead = wait_until(
      [&c, &name, &state] {
        json rows = actor_rows(c, name);
        state = rows.empty() ? "absent" : rows[0].value("state", std::string());
        return state == "DEAD" || state == "absent";
      },
      30s, 200ms);
  BOOST_CHECK_MESSAGE(dead, "the expired session's actor is still " << state);
}

BOOST_AUTO_TEST_CASE(head_killed_under_a_connected_client_keeps_acknowledged_state) {
  netns_link net{"k"};
  if (!require_or_skip(net.ready(), "no network namespace: " + net.why_not()))
    return;
  // The actor (by its resource w1) and the task (no CPUs on the head) live
  // on the worker, which outlives the head.
  ns_cluster nc(net, 0);
  cluster& c = nc.c;
  const std::string name = "survivor-" + std::to_string(::getpid());
  client_run client(c, net.ns(), "head_restart",
                    {"calls=10", "ms=15000", "name=" + name, "ns=client", "resource=w1"});
  client.await_lines("INFLIGHT", 1, 60s);
  BOOST_REQUIRE_EQUAL(client.lines("ACKED").at(0), "ACKED 10");

  const std::string api_before = nc.head->api_address();
  nc.head->proc->signal(SIGKILL);
  BOOST_REQUIRE(nc.head->proc->wait_exit(10s).has_value());
  auto& head = c.restart_head(20s);
  BOOST_REQUIRE_MESSAGE(head.api_address() == api_before,
                        "the restarted head's API port " << head.api_address() << ", was "
                                                         << api_before);
  BOOST_REQUIRE_MESSAGE(wait_for_state(c, nc.worker->node_id(), "ALIVE", 30s, 100ms).has_value(),
                        "the worker did not re-join the restarted head");

  json j = client.finish(180s);
  BOOST_CHECK_EQUAL(j.value("acked_value", -1), 10);
  BOOST_CHECK_EQUAL(j["inflight"].value("kind", std::string("?")), "connection_error");
  BOOST_CHECK_MESSAGE(contains_ci(j["inflight"].value("what", std::string()),
                                  "unknown to this head"),
                      "the in-flight call's error: " << j["inflight"].dump());
  BOOST_CHECK_MESSAGE(j["after"].value("kind", std::string("?")) == "none",
                      "the detached actor after the restart: " << j["after"].dump());
  BOOST_CHECK_EQUAL(j.value("after_value", -1), 10);
  BOOST_CHECK_EQUAL(j.value("after_add", -1), 11);
}
