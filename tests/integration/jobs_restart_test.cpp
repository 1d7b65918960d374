#define BOOST_TEST_MODULE jobs_restart
#include <boost/test/unit_test.hpp>

// Jobs when things break: a worker running a job is SIGKILLed, the head is
// SIGKILLed and restarted with jobs running and finished, and hostile bytes
// arrive on the API and cluster ports.

#include <csignal>
#include <random>

#include <unistd.h>

#include "tests/integration/harness.hpp"

using namespace rayd::integration;
namespace utf = boost::unit_test;

namespace {

std::string state_of(const json& j) {
  return j.value("status", std::string());
}

json job_status(const cluster& c, const std::string& id) {
  exec_result r = c.rayctl({"job", "status", id, "--json"});
  BOOST_REQUIRE_MESSAGE(r.exit_code == 0, "rayctl job status " << id << ": " << r.describe());
  json j = json::parse(r.out, nullptr, false);
  BOOST_REQUIRE_MESSAGE(j.is_object(), "job status --json: not a JSON object:\n" << r.out);
  return j;
}

exec_result submit(const cluster& c, const std::string& id, std::vector<std::string> args,
                   milliseconds timeout = 30s) {
  std::vector<std::string> argv{"job", "submit", "--submission-id", id};
  argv.insert(argv.end(), args.begin(), args.end());
  return c.rayctl(argv, timeout);
}

void submit_no_wait(const cluster& c, const std::string& id, std::vector<std::string> args) {
  std::vector<std::string> argv{"job", "submit", "--no-wait", "--submission-id", id};
  argv.insert(argv.end(), args.begin(), args.end());
  exec_result r = c.rayctl(argv);
  BOOST_REQUIRE_MESSAGE(r.exit_code == 0, "submit --no-wait " << id << ": " << r.describe());
}

std::string wait_for_file_sh(const std::string& path) {
  return "i=0; while [ ! -e '" + path + "' ] && [ $i -lt 2400 ]; do sleep 0.05; i=$((i+1)); done";
}

std::string job_logs(const cluster& c, const std::string& id) {
  return c.rayctl({"job", "logs", id}).out;
}

const std::string wnode = R"({"wnode": 1})";

}  // namespace

// --- 7. the node of a running job is SIGKILLed -------------------------------

BOOST_AUTO_TEST_CASE(job_on_a_sigkilled_worker_fails_and_its_process_is_gone,
                     *utf::timeout(90)) {
  cluster c("jobs_nodedeath");
  c.start_head({}, 1);
  auto& w = c.start_worker("w1", {"--resources", wnode, "--node-name", "it-w1"}, 1);
  BOOST_REQUIRE(wait_for_alive(c, 2, 5s));
  stray_guard strays;

  submit_no_wait(c, "onw", {"--entrypoint-resources", wnode, "--", "echo on-worker; sleep 120"});
  json st = require_job_state(c, "onw", "RUNNING", 10s);
  pid_t pid = st.value("pid", 0);
  strays.add(pid);
  BOOST_CHECK_EQUAL(st.value("node_id", std::string()), w.node_id());
  BOOST_CHECK_EQUAL(st.value("node_name", std::string()), "it-w1");
  BOOST_REQUIRE_MESSAGE(pid > 0 && pid_alive(pid), st.dump(2));
  // Its output goes to a file on its node, and from there to the head.
  BOOST_CHECK(wait_until(
      [&] { return read_file(w.session_dir + "/jobs/onw/output.log") == "on-worker\n"; }, 5s));
  BOOST_CHECK(wait_until([&] { return job_logs(c, "onw") == "on-worker\n"; }, 5s, 50ms));

  w.proc->signal(SIGKILL);
  BOOST_REQUIRE(w.proc->wait_exit(5s).has_value());
  st = require_job_state(c, "onw", "FAILED", 10s);
  std::string msg = st.value("message", std::string());
  BOOST_CHECK_MESSAGE(contains_ci(msg, "died"), st.dump(2));
  BOOST_CHECK_MESSAGE(msg.find("it-w1") != std::string::npos ||
                          msg.find(w.node_id()) != std::string::npos,
                      "the reason does not name the node: " << msg);
  // Fate sharing: the shim saw rayd go and stopped the job.
  BOOST_CHECK_MESSAGE(wait_until([&] { return !pid_alive(pid); }, 10s),
                      "the entrypoint " << pid << " outlived its SIGKILLed node");
  BOOST_CHECK_EQUAL(job_logs(c, "onw"), "on-worker\n");

  // The resource left with the node: a job asking for it is infeasible now.
  exec_result r = submit(c, "after", {"--entrypoint-resources", wnode, "--", "echo never"});
  BOOST_CHECK_MESSAGE(r.exit_code == 1, r.describe());
  BOOST_CHECK_MESSAGE(job_status(c, "after").value("message", std::string()).find("wnode") !=
                          std::string::npos,
                      job_status(c, "after").dump(2));
}

// --- 8. head kill -9 and restart ------------------------------------------------

BOOST_AUTO_TEST_CASE(head_kill9_and_restart_with_jobs_running_and_finished,
                     *utf::timeout(180)) {
  cluster c("jobs_headrestart");
  // The head waits node-reconnect-timeout + 5 s for a worker's running job
  // to be reported again.
  auto& head = c.start_head({"--node-reconnect-timeout", "3"}, 1);
  auto& w = c.start_worker("w1", {"--resources", wnode}, 1);
  BOOST_REQUIRE(wait_for_alive(c, 2, 5s));
  stray_guard strays;
  temp_dir scratch("rayd_it_jobrestart");
  const std::string go = scratch.path() + "/go";

  exec_result done = submit(c, "done", {"--", "echo done-1; echo done-2"});
  BOOST_REQUIRE_MESSAGE(done.exit_code == 0, done.describe());
  BOOST_REQUIRE_EQUAL(job_logs(c, "done"), "done-1\ndone-2\n");
  json done_before = job_status(c, "done");

  submit_no_wait(c, "onw", {"--entrypoint-resources", wnode, "--",
                            "echo before-kill; " + wait_for_file_sh(go) +
                                "; echo while-head-down; sleep 120"});
  json st = require_job_state(c, "onw", "RUNNING", 10s);
  pid_t wpid = st.value("pid", 0);
  strays.add(wpid);
  BOOST_REQUIRE_EQUAL(st.value("node_id", std::string()), w.node_id());
  BOOST_REQUIRE(wait_until([&] { return job_logs(c, "onw") == "before-kill\n"; }, 5s, 50ms));

  submit_no_wait(c, "onh", {"--", "sleep 120"});
  st = require_job_state(c, "onh", "RUNNING", 10s);
  pid_t hpid = st.value("pid", 0);
  strays.add(hpid);
  BOOST_REQUIRE_EQUAL(st.value("node_id", std::string()), head.node_id());

  head.proc->signal(SIGKILL);
  BOOST_REQUIRE(head.proc->wait_exit(5s).has_value());
  // The head's own job goes with the head process (its shim saw EOF).
  BOOST_CHECK_MESSAGE(wait_until([&] { return !pid_alive(hpid); }, 10s),
                      "the head's job " << hpid << " outlived the SIGKILLed head");
  // The worker's job goes on and writes while the head is away.
  BOOST_REQUIRE(write_file(go, ""));
  const std::string wlog = w.session_dir + "/jobs/onw/output.log";
  BOOST_REQUIRE_MESSAGE(
      wait_until([&] { return read_file(wlog) == "before-kill\nwhile-head-down\n"; }, 10s),
      "worker log: " << read_file(wlog));
  BOOST_CHECK(pid_alive(wpid));

  c.restart_head();
  auto restarted = std::chrono::steady_clock::now();
  std::optional<json> last;
  BOOST_REQUIRE_MESSAGE(wait_for_alive(c, 2, 10s, &last),
                        "worker not back: " << (last ? last->dump(2) : "no status"));

  // The finished job: unchanged, same log.
  st = job_status(c, "done");
  BOOST_CHECK_EQUAL(state_of(st), "SUCCEEDED");
  BOOST_CHECK_EQUAL(st.value("end_time_ms", int64_t(0)),
                    done_before.value("end_time_ms", int64_t(-1)));
  BOOST_CHECK_EQUAL(job_logs(c, "done"), "done-1\ndone-2\n");

  // The head's job: FAILED, saying why.
  st = require_job_state(c, "onh", "FAILED", 10s);
  std::string msg = st.value("message", std::string());
  BOOST_CHECK_MESSAGE(contains_ci(msg, "head") && contains_ci(msg, "restart"), st.dump(2));

  // The worker's job: still RUNNING with the same pid, and its log caught up.
  st = job_status(c, "onw");
  BOOST_CHECK_EQUAL(state_of(st), "RUNNING");
  BOOST_CHECK_EQUAL(st.value("pid", 0), wpid);
  BOOST_CHECK(pid_alive(wpid));
  BOOST_CHECK_MESSAGE(
      wait_until([&] { return job_logs(c, "onw") == "before-kill\nwhile-head-down\n"; }, 10s,
                 50ms),
      "log after the restart: " << job_logs(c, "onw"));
  // It was really re-attached: past the head's wait for a re-report
  // (node-reconnect-timeout 3 + 5 s) it still runs.
  json changed;
  bool ended = wait_until(
      [&] {
        changed = job_status(c, "onw");
        return state_of(changed) != "RUNNING";
      },
      milliseconds(9000) - std::chrono::duration_cast<milliseconds>(
                               std::chrono::steady_clock::now() - restarted),
      200ms);
  BOOST_CHECK_MESSAGE(!ended, "the worker's job ended after the restart: " << changed.dump(2));

  exec_result stop = c.rayctl({"job", "stop", "onw"});
  BOOST_CHECK_MESSAGE(stop.exit_code == 0, stop.describe());
  BOOST_CHECK_EQUAL(state_of(job_status(c, "onw")), "STOPPED");
  BOOST_CHECK_MESSAGE(wait_until([&] { return !pid_alive(wpid); }, 5s),
                      "the stopped job's process " << wpid << " still runs");

  // New jobs work, on the head and on the worker (its resource is free again).
  exec_result after = submit(c, "after", {"--", "echo after-restart"});
  BOOST_CHECK_MESSAGE(after.exit_code == 0 && after.out == "after-restart\n", after.describe());
  exec_result onw2 = submit(c, "onw2", {"--entrypoint-resources", wnode, "--", "echo on-w"});
  BOOST_CHECK_MESSAGE(onw2.exit_code == 0 && onw2.out == "on-w\n", onw2.describe());
  BOOST_CHECK_EQUAL(job_status(c, "onw2").value("node_id", std::string()), w.node_id());
}

// --- 12. hostile bytes on the ports ------------------------------------------------

namespace {

std::string random_bytes(std::mt19937_64& rng, size_t n) {
  std::string s(n, '\0');
  for (auto& ch : s)
    ch = static_cast<char>(rng());
  return s;
}

void put_u32(std::string& s, uint32_t v) {
  for (int i = 0; i < 4; ++i)
    s.push_back(static_cast<char>((v >> (8 * i)) & 0xff));
}

// A Cap'n Proto stream frame header: segment count - 1, then each size in words.
std::string frame_header(uint32_t count_minus_one, const std::vector<uint32_t>& sizes) {
  std::string s;
  put_u32(s, count_minus_one);
  for (uint32_t w : sizes)
    put_u32(s, w);
  if (s.size() % 8 != 0)
    put_u32(s, 0);
  return s;
}

// A connection that sent `bytes` and stays open until destroyed.
struct raw_conn {
  int fd = -1;
  raw_conn(const std::string& address, const std::string& bytes) {
    fd = tcp_connect(address);
    BOOST_REQUIRE_MESSAGE(fd >= 0, "cannot connect to " << address);
    send_all(fd, bytes);  // the peer may hang up on us: fine
  }
  ~raw_conn() {
    if (fd >= 0)
      ::close(fd);
  }
  raw_conn(const raw_conn&) = delete;
  raw_conn& operator=(const raw_conn&) = delete;
};

}  // namespace

BOOST_AUTO_TEST_CASE(garbage_on_the_api_and_cluster_ports_is_survived, *utf::timeout(120)) {
  cluster c("jobs_garbage");
  auto& head = c.start_head({}, 1);
  auto& w = c.start_worker("w1", {}, 1);
  BOOST_REQUIRE(wait_for_alive(c, 2, 5s));
  const std::string api = head.api_address();
  std::mt19937_64 rng(20240601);
  int n = 0;
  auto still_serving = [&](const std::string& what) {
    std::string id = "ok" + std::to_string(++n);
    exec_result r = submit(c, id, {"--", "echo ok"});
    BOOST_CHECK_MESSAGE(r.exit_code == 0 && r.out == "ok\n", "after " << what << ": "
                                                                       << r.describe());
    BOOST_CHECK_MESSAGE(head.proc->running(), "the head died after " << what);
  };

  {  // (a) 64 KiB of random bytes
    raw_conn conn(api, random_bytes(rng, 64 * 1024));
  }
  still_serving("64 KiB of random bytes on the API port");

  {  // (b) a truncated frame: 1 segment of 1000 words, then 10 bytes, close
    raw_conn conn(api, frame_header(0, {1000}) + random_bytes(rng, 10));
  }
  still_serving("a truncated frame");

  {  // (c) headers claiming huge segment counts / sizes, held open meanwhile
    raw_conn many(api, frame_header(0x0FFFFFFF, {}) + random_bytes(rng, 64));
    raw_conn huge(api, frame_header(0, {0xFFFFFFFF}) + random_bytes(rng, 4096));
    raw_conn big_sum(api, frame_header(3, {0x40000000, 0x40000000, 0x40000000, 0x40000000}) +
                              random_bytes(rng, 4096));
    still_serving("headers claiming huge segments (connections open)");
  }
  still_serving("headers claiming huge segments (closed)");

  {  // (d) a valid-looking header, half of the message, then a disconnect
    raw_conn conn(api, frame_header(0, {128}) + random_bytes(rng, 512));
    still_serving("half a message (connection open)");
  }
  still_serving("half a message, then a disconnect");

  {  // many stalled connections at once
    std::vector<std::unique_ptr<raw_conn>> conns;
    for (int i = 0; i < 64; ++i)
      conns.push_back(std::make_unique<raw_conn>(api, frame_header(0, {16}) + "x"));
    still_serving("64 stalled connections");
  }

  // The cluster port: random bytes, once closed and once held open.
  {
    raw_conn conn(head.cluster_address(), random_bytes(rng, 64 * 1024));
  }
  {
    raw_conn held(head.cluster_address(), random_bytes(rng, 100));
    still_serving("random bytes on the cluster port");
    // Nodes can still join while it is held open.
    auto& w2 = c.start_worker("w2", {}, 1);
    std::optional<json> last;
    BOOST_CHECK_MESSAGE(wait_for_alive(c, 3, 5s, &last),
                        "not 3 nodes ALIVE: " << (last ? last->dump(2) : "no status"));
    BOOST_CHECK(w2.proc->running());
  }
  json status = c.status_json();
  BOOST_CHECK_EQUAL(node_state(status, head.node_id()), "ALIVE");
  BOOST_CHECK_EQUAL(node_state(status, w.node_id()), "ALIVE");
  BOOST_CHECK(w.proc->running());
  still_serving("everything");
}
