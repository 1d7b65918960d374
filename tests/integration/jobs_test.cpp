#define BOOST_TEST_MODULE jobs
#include <boost/test/unit_test.hpp>

// Jobs on real processes: lifecycle, stop, working_dir, environment, the
// admission queue, a 100 MB log, retention, the token and the ids.
// Failures of nodes and of the head, and hostile bytes on the ports, are in
// jobs_restart_test.cpp.

#include <algorithm>
#include <csignal>
#include <filesystem>
#include <random>
#include <set>

#include <unistd.h>

#include <capnp/any.h>
#include <capnp/ez-rpc.h>
#include <kj/exception.h>

#include "tests/integration/harness.hpp"

using namespace rayd::integration;
namespace fs = std::filesystem;
namespace utf = boost::unit_test;

namespace {

std::string state_of(const json& j) {
  return j.value("status", std::string());
}

// r.out parsed as JSON; a failed check (and a discarded value) if it is not.
json out_json(const exec_result& r, const std::string& what) {
  json j = json::parse(r.out, nullptr, false);
  BOOST_CHECK_MESSAGE(!j.is_discarded(), what << ": stdout is not JSON: " << r.describe());
  return j;
}

// `rayctl job status ID --json`, required to work and to have every field.
json job_status(const cluster& c, const std::string& id) {
  exec_result r = c.rayctl({"job", "status", id, "--json"});
  BOOST_REQUIRE_MESSAGE(r.exit_code == 0, "rayctl job status " << id << ": " << r.describe());
  json j = json::parse(r.out, nullptr, false);
  BOOST_REQUIRE_MESSAGE(j.is_object(), "job status --json: not a JSON object:\n" << r.out);
  for (const char* key : {"submission_id", "status", "message", "exit_code", "exit_signal",
                          "node_id", "node_name", "pid", "queue_position", "submit_time_ms",
                          "start_time_ms", "end_time_ms"})
    BOOST_CHECK_MESSAGE(j.contains(key), "job status --json lacks \"" << key << "\": " << j.dump());
  return j;
}

pid_t pid_of(const json& st) {
  return st.value("pid", 0);
}

// Submits and waits for the end: `rayctl job submit --submission-id ID <args>`.
exec_result submit(const cluster& c, const std::string& id, std::vector<std::string> args,
                   milliseconds timeout = 30s) {
  std::vector<std::string> argv{"job", "submit", "--submission-id", id};
  argv.insert(argv.end(), args.begin(), args.end());
  return c.rayctl(argv, timeout);
}

// `... --no-wait --json`; required to succeed and to print the job as JSON.
json submit_no_wait(const cluster& c, const std::string& id, std::vector<std::string> args) {
  std::vector<std::string> argv{"job", "submit", "--no-wait", "--json", "--submission-id", id};
  argv.insert(argv.end(), args.begin(), args.end());
  exec_result r = c.rayctl(argv);
  BOOST_REQUIRE_MESSAGE(r.exit_code == 0, "submit --no-wait " << id << ": " << r.describe());
  json j = json::parse(r.out, nullptr, false);
  BOOST_REQUIRE_MESSAGE(j.is_object(), "submit --no-wait --json: not a JSON object:\n" << r.out);
  BOOST_CHECK_EQUAL(j.value("submission_id", std::string()), id);
  return j;
}

// A shell loop that waits (at most ~2 min) for `path` to exist.
std::string wait_for_file_sh(const std::string& path) {
  return "i=0; while [ ! -e '" + path + "' ] && [ $i -lt 2400 ]; do sleep 0.05; i=$((i+1)); done";
}

std::vector<std::string> job_ids(const cluster& c) {
  auto ids = try_job_ids(c);
  BOOST_REQUIRE_MESSAGE(ids.has_value(), "rayctl job list --json failed");
  return *ids;
}

std::string joined(const std::vector<std::string>& v) {
  std::string s;
  for (const auto& x : v)
    s += (s.empty() ? "" : ",") + x;
  return "[" + s + "]";
}

// SigIgn of /proc/<pid>/status has SIGTERM.
bool ignores_sigterm(pid_t pid) {
  std::string s = read_file("/proc/" + std::to_string(pid) + "/status");
  auto p = s.find("SigIgn:");
  if (p == std::string::npos)
    return false;
  auto e = s.find('\n', p);
  uint64_t mask = std::stoull(trim(s.substr(p + 7, e - p - 7)), nullptr, 16);
  return (mask & (uint64_t{1} << (SIGTERM - 1))) != 0;
}

// The first word of `sha256sum` output.
std::string sha256_word(const exec_result& r) {
  std::string out = trim(r.out);
  return out.substr(0, out.find(' '));
}

std::string absolute(const std::string& p) {
  return fs::absolute(p).lexically_normal().string();
}

}  // namespace

// --- 1. lifecycle ------------------------------------------------------------

BOOST_AUTO_TEST_CASE(lifecycle_to_each_terminal_state, *utf::timeout(120)) {
  cluster c("jobs_life");
  auto& head = c.start_head({}, 2);
  stray_guard strays;

  // SUCCEEDED: the output is streamed, the exit code kept.
  exec_result ok = submit(c, "ok1", {"--", "echo", "hi"});
  BOOST_CHECK_MESSAGE(ok.exit_code == 0, ok.describe());
  BOOST_CHECK_EQUAL(ok.out, "hi\n");
  json st = job_status(c, "ok1");
  BOOST_CHECK_EQUAL(state_of(st), "SUCCEEDED");
  BOOST_CHECK_EQUAL(st.value("exit_code", -2), 0);
  BOOST_CHECK_EQUAL(st.value("exit_signal", -2), 0);
  BOOST_CHECK_EQUAL(st.value("entrypoint", std::string()), "echo hi");
  BOOST_CHECK_EQUAL(st.value("node_id", std::string()), head.node_id());
  int64_t sub = st.value("submit_time_ms", int64_t(0));
  int64_t start = st.value("start_time_ms", int64_t(0));
  int64_t end = st.value("end_time_ms", int64_t(0));
  BOOST_CHECK_MESSAGE(sub > 0 && start >= sub && end >= start,
                      "times out of order: " << st.dump(2));

  // FAILED with the entrypoint's exit code.
  exec_result bad = submit(c, "bad7", {"--", "exit 7"});
  BOOST_CHECK_MESSAGE(bad.exit_code == 1, bad.describe());
  BOOST_CHECK_MESSAGE(contains_ci(bad.err, "FAILED"), bad.describe());
  st = job_status(c, "bad7");
  BOOST_CHECK_EQUAL(state_of(st), "FAILED");
  BOOST_CHECK_EQUAL(st.value("exit_code", -2), 7);
  BOOST_CHECK_MESSAGE(contains_ci(st.value("message", std::string()), "code 7"), st.dump(2));

  // PENDING -> RUNNING is observable, with a live pid; then STOPPED.
  json sj = submit_no_wait(c, "long1", {"--", "sleep 120"});
  std::string first = state_of(sj);
  BOOST_CHECK_MESSAGE(first == "PENDING" || first == "RUNNING", sj.dump(2));
  st = require_job_state(c, "long1", "RUNNING", 10s);
  pid_t pid = pid_of(st);
  strays.add(pid);
  BOOST_REQUIRE_MESSAGE(pid > 0 && pid_alive(pid), "RUNNING without a live pid: " << st.dump(2));
  BOOST_CHECK_MESSAGE(::getsid(pid) == pid, "the entrypoint does not lead its own session");
  BOOST_CHECK_EQUAL(st.value("node_id", std::string()), head.node_id());
  BOOST_CHECK(st.value("start_time_ms", int64_t(0)) > 0);

  exec_result stop = c.rayctl({"job", "stop", "long1", "--json"});
  BOOST_REQUIRE_MESSAGE(stop.exit_code == 0, stop.describe());
  json stopped = out_json(stop, "job stop --json");
  BOOST_CHECK_EQUAL(stopped.value("status", std::string()), "STOPPED");
  // "exited" is reported only once nothing of the job runs any more.
  BOOST_CHECK_MESSAGE(!pid_alive(pid), "entrypoint pid " << pid << " still alive after stop");
  st = job_status(c, "long1");
  BOOST_CHECK_EQUAL(state_of(st), "STOPPED");
  BOOST_CHECK_MESSAGE(contains_ci(st.value("message", std::string()), "stop"), st.dump(2));
  BOOST_CHECK(st.value("end_time_ms", int64_t(0)) > 0);
  // A second stop of an ended job is a no-op that still answers.
  exec_result again = c.rayctl({"job", "stop", "long1"});
  BOOST_CHECK_MESSAGE(again.exit_code == 0 && contains_ci(again.out, "STOPPED"), again.describe());

  // list --json: every job, in submission order.
  exec_result list = c.rayctl({"job", "list", "--json"});
  BOOST_REQUIRE_MESSAGE(list.exit_code == 0, list.describe());
  json lj = out_json(list, "job list --json");
  BOOST_REQUIRE(lj.is_array());
  BOOST_CHECK_EQUAL(joined(job_ids(c)), "[ok1,bad7,long1]");
  exec_result human = c.rayctl({"job", "list"});
  BOOST_CHECK_MESSAGE(human.exit_code == 0 && human.out.find("bad7") != std::string::npos &&
                          human.out.find("FAILED") != std::string::npos,
                      human.describe());

  // logs: plain, and --json as one object.
  exec_result logs = c.rayctl({"job", "logs", "ok1"});
  BOOST_CHECK_MESSAGE(logs.exit_code == 0 && logs.out == "hi\n", logs.describe());
  exec_result lj1 = c.rayctl({"job", "logs", "ok1", "--json"});
  BOOST_CHECK_MESSAGE(lj1.exit_code == 0, lj1.describe());
  json lo = out_json(lj1, "job logs --json");
  BOOST_CHECK_EQUAL(lo.value("logs", std::string()), "hi\n");
  BOOST_CHECK_EQUAL(lo.value("complete", false), true);
  // logs --follow --json: JSON lines, one per slice.
  exec_result lf = c.rayctl({"job", "logs", "ok1", "--follow", "--json"});
  BOOST_CHECK_MESSAGE(lf.exit_code == 0, lf.describe());
  std::string followed;
  for (const auto& line : nonempty_lines(lf.out)) {
    json l = json::parse(line, nullptr, false);
    BOOST_CHECK_MESSAGE(l.is_object(), "logs --follow --json line is not JSON: " << line);
    if (l.is_object())
      followed += l.value("data", std::string());
  }
  BOOST_CHECK_EQUAL(followed, "hi\n");

  // delete --json of an ended job.
  exec_result del = c.rayctl({"job", "delete", "ok1", "--json"});
  BOOST_CHECK_MESSAGE(del.exit_code == 0, del.describe());
  BOOST_CHECK_EQUAL(out_json(del, "job delete --json").value("deleted", false), true);
  BOOST_CHECK_EQUAL(joined(job_ids(c)), "[bad7,long1]");
}

// --- 2. stop reaches a child that ignores SIGTERM -----------------------------

BOOST_AUTO_TEST_CASE(stop_kills_a_child_that_ignores_sigterm, *utf::timeout(90)) {
  cluster c("jobs_stop");
  c.start_head({"--job-stop-grace-period", "0.5"}, 1);
  stray_guard strays;
  temp_dir scratch("rayd_it_jobstop");
  const std::string dir = scratch.path();
  const std::string script = dir + "/entry.sh";
  BOOST_REQUIRE(write_file(script,
                           "echo $$ > '" + dir + "/entry.tmp' && mv '" + dir + "/entry.tmp' '" +
                               dir + "/entry.pid'\n"
                               "( trap '' TERM; while :; do sleep 0.1; done ) &\n"
                               "echo $! > '" + dir + "/child.tmp' && mv '" + dir +
                               "/child.tmp' '" + dir + "/child.pid'\n"
                               "echo started\n"
                               "wait\n"));

  submit_no_wait(c, "stubborn", {"--", "sh " + script});
  json st = require_job_state(c, "stubborn", "RUNNING", 10s);
  pid_t job_pid = pid_of(st);
  strays.add(job_pid);
  BOOST_REQUIRE(wait_until([&] { return file_exists(dir + "/child.pid"); }, 10s));
  pid_t entry = std::stoi(trim(read_file(dir + "/entry.pid")));
  pid_t child = std::stoi(trim(read_file(dir + "/child.pid")));
  strays.add(entry);
  strays.add(child);
  BOOST_REQUIRE(pid_alive(job_pid) && pid_alive(entry) && pid_alive(child));
  // The test only means something if the child really ignores SIGTERM.
  BOOST_REQUIRE_MESSAGE(wait_until([&] { return ignores_sigterm(child); }, 5s),
                        "the child " << child << " does not ignore SIGTERM");

  auto t0 = std::chrono::steady_clock::now();
  exec_result stop = c.rayctl({"job", "stop", "stubborn"});
  auto took = std::chrono::duration_cast<milliseconds>(std::chrono::steady_clock::now() - t0);
  BOOST_TEST_MESSAGE("stop of a job with a SIGTERM-ignoring child took " << took.count() << " ms");
  BOOST_REQUIRE_MESSAGE(stop.exit_code == 0, stop.describe());
  st = job_status(c, "stubborn");
  BOOST_CHECK_EQUAL(state_of(st), "STOPPED");
  BOOST_CHECK_MESSAGE(!pid_alive(job_pid), "entrypoint " << job_pid << " alive after stop");
  BOOST_CHECK_MESSAGE(!pid_alive(entry), "script shell " << entry << " alive after stop");
  BOOST_CHECK_MESSAGE(!pid_alive(child), "SIGTERM-ignoring child " << child << " alive after stop");
  // TERM first, KILL only after the (0.5 s) grace period, not the default 3 s.
  BOOST_CHECK_MESSAGE(took >= 400ms, "stopped after " << took.count()
                                                      << " ms: SIGKILL before the grace period?");
  BOOST_CHECK_MESSAGE(took < 2500ms, "stop took " << took.count()
                                                  << " ms: --job-stop-grace-period 0.5 ignored?");
  exec_result logs = c.rayctl({"job", "logs", "stubborn"});
  BOOST_CHECK_MESSAGE(logs.out.find("started") != std::string::npos, logs.describe());
}

// --- 3. working_dir upload ---------------------------------------------------

BOOST_AUTO_TEST_CASE(working_dir_upload_skips_git_and_excludes, *utf::timeout(90)) {
  cluster c("jobs_wd");
  c.start_head({}, 1);
  temp_dir wd("rayd_it_wd");
  std::string payload = "payload-" + std::to_string(now_ms());
  BOOST_REQUIRE(write_file(wd.path() + "/data.txt", payload + "\n"));
  BOOST_REQUIRE(write_file(wd.sub("sub") + "/nested.txt", "nested\n"));
  BOOST_REQUIRE(write_file(wd.sub(".git") + "/HEAD", "ref: refs/heads/main\n"));
  BOOST_REQUIRE(write_file(wd.path() + "/debug.log", "log\n"));

  exec_result r = submit(c, "wd1", {"--working-dir", wd.path(), "--",
                                    "cat data.txt sub/nested.txt && test ! -e .git && "
                                    "test -e debug.log"});
  BOOST_CHECK_MESSAGE(r.exit_code == 0, r.describe());
  BOOST_CHECK_EQUAL(r.out, payload + "\nnested\n");
  json st = job_status(c, "wd1");
  BOOST_CHECK_EQUAL(state_of(st), "SUCCEEDED");
  std::string uri = st["runtime_env"].value("working_dir", std::string());
  BOOST_CHECK_MESSAGE(uri.rfind("gcs://", 0) == 0, "working_dir is not a package: " << st.dump(2));

  // "excludes" keeps *.log out of the package.
  exec_result ex = submit(c, "wd2", {"--working-dir", wd.path(), "--runtime-env-json",
                                     R"({"excludes": ["*.log"]})", "--",
                                     "cat data.txt && test ! -e debug.log && test ! -e .git"});
  BOOST_CHECK_MESSAGE(ex.exit_code == 0, ex.describe());
  BOOST_CHECK_EQUAL(ex.out, payload + "\n");
  BOOST_CHECK_EQUAL(state_of(job_status(c, "wd2")), "SUCCEEDED");
}

// --- 4. a working_dir that does not exist -----------------------------------

BOOST_AUTO_TEST_CASE(missing_working_dir_fails_with_reason, *utf::timeout(90)) {
  cluster c("jobs_wdmiss");
  c.start_head({}, 1);

  exec_result f = submit(c, "wdfile", {"--runtime-env-json",
                                       R"({"working_dir": "file:///nonexistent/dir"})", "--",
                                       "echo never-ran"});
  BOOST_CHECK_MESSAGE(f.exit_code == 1, f.describe());
  json st = job_status(c, "wdfile");
  BOOST_CHECK_EQUAL(state_of(st), "FAILED");
  BOOST_CHECK_MESSAGE(contains_ci(st.value("message", std::string()), "/nonexistent/dir"),
                      st.dump(2));
  BOOST_CHECK(f.out.find("never-ran") == std::string::npos);

  const std::string hash(64, 'a');
  exec_result g = submit(c, "wdgcs", {"--runtime-env-json",
                                      R"({"working_dir": "gcs://)" + hash + R"(.tar.gz"})", "--",
                                      "echo never-ran"});
  BOOST_CHECK_MESSAGE(g.exit_code == 1, g.describe());
  st = job_status(c, "wdgcs");
  BOOST_CHECK_EQUAL(state_of(st), "FAILED");
  std::string msg = st.value("message", std::string());
  BOOST_CHECK_MESSAGE(contains_ci(msg, "package") && msg.find(hash) != std::string::npos,
                      st.dump(2));
  BOOST_CHECK(g.out.find("never-ran") == std::string::npos);

  // A local directory that does not exist: rayctl refuses, no job is made.
  auto before = job_ids(c);
  exec_result l = submit(c, "wdlocal", {"--working-dir", "/nonexistent", "--", "echo x"});
  BOOST_CHECK_MESSAGE(l.exit_code != 0, l.describe());
  BOOST_CHECK_MESSAGE(contains_ci(l.err, "/nonexistent"), l.describe());
  BOOST_CHECK_MESSAGE(nonempty_lines(l.err).size() == 1, "expected one line:\n" << l.err);
  BOOST_CHECK_EQUAL(joined(job_ids(c)), joined(before));
}

// --- 5. the entrypoint's environment -----------------------------------------

BOOST_AUTO_TEST_CASE(entrypoint_environment_and_driver_without_flags, *utf::timeout(90)) {
  cluster c("jobs_env");
  auto& head = c.start_head({}, 1);
  const std::string token = trim(read_file(head.token_file()));
  BOOST_REQUIRE(!token.empty());

  exec_result r = submit(c, "envjob",
                         {"--env", "MY_VAR=hello world", "--runtime-env-json",
                          R"({"env_vars": {"FROM_JSON": "j1"}})", "--",
                          "echo \"id=$RAYD_JOB_ID\"; echo \"addr=$RAYD_ADDRESS\"; "
                          "echo \"token=$RAYD_TOKEN\"; echo \"node=$RAYD_NODE_ID\"; "
                          "echo \"my=$MY_VAR\"; echo \"json=$FROM_JSON\"; "
                          "echo \"tokfile=${RAYD_TOKEN_FILE:-unset}\""});
  BOOST_CHECK_MESSAGE(r.exit_code == 0, r.describe());
  std::set<std::string> lines;
  for (const auto& l : nonempty_lines(r.out))
    lines.insert(l);
  for (const std::string& want : std::vector<std::string>{
           "id=envjob", "addr=" + head.api_address(), "token=" + token,
           "node=" + head.node_id(), "my=hello world", "json=j1", "tokfile=unset"})
    BOOST_CHECK_MESSAGE(lines.count(want) == 1, "missing line '" << want << "' in:\n" << r.out);

  // A driver started by a job joins with no flags: RAYD_ADDRESS / RAYD_TOKEN.
  const std::string rayctl = absolute(rayctl_bin());
  exec_result d = submit(c, "driver",
                         {"--", "env -u RAYD_TMPDIR '" + rayctl +
                                    "' status --json && env -u RAYD_TMPDIR '" + rayctl +
                                    "' job submit --submission-id nested -- echo nested-ok"},
                         60s);
  BOOST_CHECK_MESSAGE(d.exit_code == 0, d.describe());
  BOOST_CHECK_EQUAL(state_of(job_status(c, "driver")), "SUCCEEDED");
  BOOST_CHECK_MESSAGE(d.out.find(head.node_id()) != std::string::npos,
                      "the driver's status does not show this cluster's head:\n" << d.out);
  BOOST_CHECK_MESSAGE(d.out.find("nested-ok") != std::string::npos, d.describe());
  BOOST_CHECK_EQUAL(state_of(job_status(c, "nested")), "SUCCEEDED");
}

// --- 6. entrypoint resources and the FIFO queue ------------------------------

BOOST_AUTO_TEST_CASE(entrypoint_resources_fifo_queue_and_infeasible, *utf::timeout(120)) {
  cluster c("jobs_fifo");
  c.start_head({}, 1);
  temp_dir scratch("rayd_it_fifo");
  const std::string release = scratch.path() + "/release";

  // An infeasible shape fails at once, naming the shape.
  exec_result inf = submit(c, "huge", {"--entrypoint-num-cpus", "64", "--", "echo never"});
  BOOST_CHECK_MESSAGE(inf.exit_code == 1, inf.describe());
  BOOST_CHECK_MESSAGE(inf.elapsed_ms < 5000, "infeasible job took " << inf.elapsed_ms << " ms");
  json st = job_status(c, "huge");
  BOOST_CHECK_EQUAL(state_of(st), "FAILED");
  BOOST_CHECK_MESSAGE(st.value("message", std::string()).find("CPU: 64") != std::string::npos,
                      st.dump(2));

  submit_no_wait(c, "A", {"--entrypoint-num-cpus", "1", "--", wait_for_file_sh(release)});
  require_job_state(c, "A", "RUNNING", 10s);
  submit_no_wait(c, "B", {"--entrypoint-num-cpus", "1", "--", "echo B"});
  submit_no_wait(c, "C", {"--entrypoint-num-cpus", "1", "--", "echo C"});
  json b = job_status(c, "B");
  BOOST_CHECK_EQUAL(state_of(b), "PENDING");
  BOOST_CHECK_EQUAL(b.value("queue_position", 0), 1);
  BOOST_CHECK_MESSAGE(contains_ci(b.value("message", std::string()), "waiting for resources"),
                      b.dump(2));
  json cj = job_status(c, "C");
  BOOST_CHECK_EQUAL(state_of(cj), "PENDING");
  BOOST_CHECK_EQUAL(cj.value("queue_position", 0), 2);
  BOOST_CHECK_MESSAGE(contains_ci(cj.value("message", std::string()), "resources"), cj.dump(2));

  // Infeasible behind a blocked queue: still fails at once, and leaves the
  // queue as it was.
  submit_no_wait(c, "huge2", {"--entrypoint-num-cpus", "64", "--", "echo never"});
  json last;
  auto hf = wait_job_state(c, "huge2", "FAILED", 3s, &last);
  BOOST_CHECK_MESSAGE(hf.has_value(), "an infeasible job behind a busy queue did not fail at "
                                      "once: "
                                          << last.dump(2));
  BOOST_CHECK_EQUAL(job_status(c, "C").value("queue_position", 0), 2);
  // A job that asks for nothing never waits behind them.
  exec_result zero = submit(c, "zero", {"--", "echo zero"});
  BOOST_CHECK_MESSAGE(zero.exit_code == 0 && zero.out == "zero\n", zero.describe());

  BOOST_REQUIRE(write_file(release, ""));
  json a = require_job_state(c, "A", "SUCCEEDED", 10s);
  b = require_job_state(c, "B", "SUCCEEDED", 10s);
  cj = require_job_state(c, "C", "SUCCEEDED", 10s);
  auto t = [](const json& j, const char* k) { return j.value(k, int64_t(0)); };
  // One CPU: B starts after A ended, C after B ended.
  BOOST_CHECK_MESSAGE(t(b, "start_time_ms") >= t(a, "end_time_ms"), a.dump(2) << b.dump(2));
  BOOST_CHECK_MESSAGE(t(cj, "start_time_ms") >= t(b, "end_time_ms"), b.dump(2) << cj.dump(2));
  BOOST_CHECK_MESSAGE(t(b, "start_time_ms") <= t(cj, "start_time_ms"), "C ran before B");
  BOOST_CHECK_EQUAL(c.rayctl({"job", "logs", "C"}).out, "C\n");
}

BOOST_AUTO_TEST_CASE(pending_timeout_fails_a_queued_job, *utf::timeout(90)) {
  cluster c("jobs_ptimeout");
  c.start_head({"--job-pending-timeout", "1"}, 1);
  temp_dir scratch("rayd_it_ptimeout");
  const std::string release = scratch.path() + "/release";

  submit_no_wait(c, "holder", {"--entrypoint-num-cpus", "1", "--", wait_for_file_sh(release)});
  require_job_state(c, "holder", "RUNNING", 10s);
  submit_no_wait(c, "queued", {"--entrypoint-num-cpus", "1", "--", "echo never"});
  json st = require_job_state(c, "queued", "FAILED", 10s);
  std::string msg = st.value("message", std::string());
  BOOST_CHECK_MESSAGE(contains_ci(msg, "pending timeout"), st.dump(2));
  BOOST_CHECK_EQUAL(st.value("pid", -1), 0);
  int64_t waited = st.value("end_time_ms", int64_t(0)) - st.value("submit_time_ms", int64_t(0));
  BOOST_CHECK_MESSAGE(waited >= 1000, "failed after " << waited << " ms, before its timeout");
  // The running job is not touched by the pending timeout.
  BOOST_CHECK_EQUAL(state_of(job_status(c, "holder")), "RUNNING");
  BOOST_REQUIRE(write_file(release, ""));
  require_job_state(c, "holder", "SUCCEEDED", 10s);
  BOOST_CHECK_EQUAL(c.rayctl({"job", "logs", "queued"}).out, "");
}

// --- 9. a 100 MB log ---------------------------------------------------------

BOOST_AUTO_TEST_CASE(hundred_megabyte_log_streams_intact, *utf::timeout(240)) {
  cluster c("jobs_biglog");
  auto& head = c.start_head({}, 1);
  const std::string gen = "seq 1 12000000";
  exec_result ref = run({"/bin/sh", "-c", gen + " | sha256sum"}, {}, 60s);
  BOOST_REQUIRE_MESSAGE(ref.exit_code == 0, ref.describe());
  const std::string want_sha = sha256_word(ref);
  const uintmax_t want_size = 96888897;  // digits of 1..12e6 plus 12e6 newlines

  auto sha_of = [](const std::string& path) {
    exec_result r = run({"sha256sum", path}, {}, 60s);
    BOOST_CHECK_MESSAGE(r.exit_code == 0, r.describe());
    return sha256_word(r);
  };
  const std::vector<std::string> ctl{rayctl_bin(), "--address", head.api_address(),
                                     "--token-file", head.token_file()};
  const std::string out_dir = c.root() + "/follow";

  // `logs --follow` while the job runs.
  auto t0 = std::chrono::steady_clock::now();
  submit_no_wait(c, "big", {"--", gen});
  std::vector<std::string> argv = ctl;
  argv.insert(argv.end(), {"job", "logs", "big", "--follow"});
  process follow(argv, c.base_env(), out_dir, "follow");
  auto code = follow.wait_exit(100s);
  double secs = std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
  BOOST_REQUIRE_MESSAGE(code.has_value(), "logs --follow still running after 100 s");
  BOOST_CHECK_MESSAGE(*code == 0, "logs --follow exit " << *code << ": " << follow.err());
  uintmax_t size = fs::file_size(follow.out_path());
  BOOST_TEST_MESSAGE("logs --follow: " << size << " bytes in " << secs << " s ("
                                       << size / secs / 1e6 << " MB/s)");
  BOOST_CHECK_EQUAL(size, want_size);
  BOOST_CHECK_EQUAL(sha_of(follow.out_path()), want_sha);
  json st = job_status(c, "big");
  BOOST_CHECK_EQUAL(state_of(st), "SUCCEEDED");
  std::error_code ec;
  BOOST_CHECK_EQUAL(fs::file_size(head.session_dir + "/jobs/big/output.log", ec), want_size);

  // `submit` without --no-wait streams it too.
  t0 = std::chrono::steady_clock::now();
  argv = ctl;
  argv.insert(argv.end(), {"job", "submit", "--submission-id", "big2", "--", gen});
  process streamed(argv, c.base_env(), out_dir, "submit");
  code = streamed.wait_exit(100s);
  secs = std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
  BOOST_REQUIRE_MESSAGE(code.has_value(), "submit still running after 100 s");
  BOOST_CHECK_MESSAGE(*code == 0, "submit exit " << *code << ": " << streamed.err());
  size = fs::file_size(streamed.out_path());
  BOOST_TEST_MESSAGE("submit (streaming): " << size << " bytes in " << secs << " s ("
                                            << size / secs / 1e6 << " MB/s)");
  BOOST_CHECK_EQUAL(size, want_size);
  BOOST_CHECK_EQUAL(sha_of(streamed.out_path()), want_sha);
  BOOST_CHECK_MESSAGE(contains_ci(streamed.err(), "SUCCEEDED"), streamed.err());
}

// --- 10. retention and delete -------------------------------------------------

BOOST_AUTO_TEST_CASE(retention_by_count_and_delete, *utf::timeout(90)) {
  cluster c("jobs_keep");
  c.start_head({"--job-history-max-count", "3"}, 1);
  stray_guard strays;
  for (int i = 1; i <= 5; ++i) {
    std::string id = "r" + std::to_string(i);
    exec_result r = submit(c, id, {"--", "echo " + id});
    BOOST_CHECK_MESSAGE(r.exit_code == 0, r.describe());
  }
  std::vector<std::string> ids;
  bool trimmed = wait_until(
      [&] {
        ids = job_ids(c);
        return joined(ids) == "[r3,r4,r5]";
      },
      5s, 50ms);
  BOOST_CHECK_MESSAGE(trimmed, "job list holds " << joined(ids) << ", expected [r3,r4,r5]");
  for (const char* gone : {"r1", "r2"}) {
    exec_result l = c.rayctl({"job", "logs", gone});
    BOOST_CHECK_MESSAGE(l.exit_code == 1 && contains_ci(l.err, "no job"), l.describe());
    exec_result s = c.rayctl({"job", "status", gone});
    BOOST_CHECK_MESSAGE(s.exit_code == 1 && contains_ci(s.err, "no job"), s.describe());
  }
  BOOST_CHECK_EQUAL(c.rayctl({"job", "logs", "r5"}).out, "r5\n");

  // A running job: not counted, not deletable.
  submit_no_wait(c, "run1", {"--", "echo run1-out; sleep 120"});
  json st = require_job_state(c, "run1", "RUNNING", 10s);
  strays.add(pid_of(st));
  exec_result d = c.rayctl({"job", "delete", "run1"});
  BOOST_CHECK_MESSAGE(d.exit_code == 1 && contains_ci(d.err, "RUNNING"), d.describe());
  BOOST_CHECK_EQUAL(joined(job_ids(c)), "[r3,r4,r5,run1]");
  BOOST_CHECK_EQUAL(state_of(job_status(c, "run1")), "RUNNING");
  BOOST_REQUIRE(wait_until([&] { return c.rayctl({"job", "logs", "run1"}).out == "run1-out\n"; },
                           5s, 50ms));

  exec_result stop = c.rayctl({"job", "stop", "run1"});
  BOOST_REQUIRE_MESSAGE(stop.exit_code == 0, stop.describe());
  exec_result del = c.rayctl({"job", "delete", "run1", "--json"});
  BOOST_CHECK_MESSAGE(del.exit_code == 0, del.describe());
  BOOST_CHECK_EQUAL(out_json(del, "job delete --json").value("deleted", false), true);
  exec_result l = c.rayctl({"job", "logs", "run1"});
  BOOST_CHECK_MESSAGE(l.exit_code == 1 && contains_ci(l.err, "no job"), l.describe());
  ids = job_ids(c);
  BOOST_CHECK_MESSAGE(std::find(ids.begin(), ids.end(), "run1") == ids.end(), joined(ids));
  BOOST_CHECK_MESSAGE(std::find(ids.begin(), ids.end(), "r5") != ids.end(), joined(ids));
  // A job id can be used again once deleted.
  exec_result reuse = submit(c, "run1", {"--", "echo reused"});
  BOOST_CHECK_MESSAGE(reuse.exit_code == 0 && reuse.out == "reused\n", reuse.describe());
}

BOOST_AUTO_TEST_CASE(retention_by_age, *utf::timeout(90)) {
  cluster c("jobs_age");
  c.start_head({"--job-history-max-age", "1"}, 1);
  stray_guard strays;
  submit_no_wait(c, "long", {"--", "sleep 120"});
  strays.add(pid_of(require_job_state(c, "long", "RUNNING", 10s)));

  exec_result r = c.rayctl({"job", "submit", "--json", "--submission-id", "aged", "--",
                            "echo aged"});
  BOOST_REQUIRE_MESSAGE(r.exit_code == 0, r.describe());
  // --json streams JSON lines (the log), then the final job object.
  auto lines = nonempty_lines(r.out);
  BOOST_REQUIRE(!lines.empty());
  json fin = json::parse(r.out.substr(r.out.find("\n{") + 1), nullptr, false);
  BOOST_REQUIRE_MESSAGE(fin.is_object(), "no final job JSON in:\n" << r.out);
  BOOST_CHECK_EQUAL(state_of(fin), "SUCCEEDED");
  int64_t ended = fin.value("end_time_ms", int64_t(0));
  BOOST_REQUIRE(ended > 0);

  auto has = [&](const std::string& id) {
    auto ids = job_ids(c);
    return std::find(ids.begin(), ids.end(), id) != ids.end();
  };
  int64_t gone_ms = 0;  // when the list without it was in hand: after the deletion
  bool gone = wait_until(
      [&] {
        bool absent = !has("aged");
        gone_ms = now_ms();
        return absent;
      },
      10s, 50ms);
  BOOST_CHECK_MESSAGE(gone, "an ended job is still listed 10 s after it ended "
                            "(--job-history-max-age 1)");
  if (gone)
    BOOST_CHECK_MESSAGE(gone_ms - ended >= 1000,
                        "deleted within " << gone_ms - ended << " ms of its end, before its age");
  BOOST_TEST_MESSAGE("an ended job was deleted by age within " << gone_ms - ended << " ms");
  // Retention never deletes a job that has not ended.
  BOOST_CHECK_EQUAL(state_of(job_status(c, "long")), "RUNNING");
  BOOST_REQUIRE_EQUAL(c.rayctl({"job", "stop", "long"}).exit_code, 0);
  BOOST_CHECK_MESSAGE(wait_until([&] { return !has("long"); }, 10s, 50ms),
                      "the stopped job is still listed 10 s later");
}

// --- 11. the token -------------------------------------------------------------

namespace {

// Ids from rayd_api.capnp (Cap'n Proto derives them from the file id and the
// names; they never change). The test checks them against the server below.
constexpr uint64_t gate_interface = 0xf60a004385fdc4edULL;
constexpr uint64_t job_service_interface = 0x8f49bca8e4a9d27dULL;
constexpr uint16_t gate_authenticate = 1;
constexpr uint16_t jobs_submit = 0;
constexpr uint16_t jobs_list = 3;

// Calls JobService.submit(JobSubmission{submissionId, entrypoint}) on `cap`
// with hand-built messages (no generated code).
void raw_submit(capnp::Capability::Client& cap, kj::WaitScope& ws, const std::string& id,
                const std::string& entrypoint) {
  auto req = cap.typelessRequest(job_service_interface, jobs_submit, nullptr);
  auto sub = req.initAsAnyStruct(0, 1).getPointerSection()[0].initAsAnyStruct(0, 7);
  sub.getPointerSection()[0].setAs<capnp::Text>(id);
  sub.getPointerSection()[1].setAs<capnp::Text>(entrypoint);
  req.send().wait(ws);
}

// What a call threw; "" if it did not.
template <class F>
std::string thrown(F&& f) {
  try {
    f();
    return {};
  } catch (const kj::Exception& e) {
    return std::string(kj::str(e.getType()).cStr()) + ": " + e.getDescription().cStr();
  }
}

}  // namespace

BOOST_AUTO_TEST_CASE(without_the_token_nothing_starts, *utf::timeout(90)) {
  cluster c("jobs_token");
  auto& head = c.start_head({}, 1);
  temp_dir scratch("rayd_it_token");
  const std::string marker = scratch.path() + "/marker";
  const std::string token = trim(read_file(head.token_file()));

  exec_result bad = run({rayctl_bin(), "--address", head.api_address(), "--token", "wrong",
                         "job", "submit", "--", "touch", marker},
                        c.base_env());
  BOOST_CHECK_MESSAGE(bad.exit_code != 0, bad.describe());
  BOOST_CHECK_MESSAGE(contains_ci(bad.err, "token"), bad.describe());

  // A raw Cap'n Proto client: the bootstrap capability is only the gate.
  {
    capnp::EzRpcClient client(head.api_address());
    auto& ws = client.getWaitScope();
    auto gate = client.getMain();
    std::string e = thrown([&] { raw_submit(gate, ws, "raw1", "touch " + marker + "1"); });
    BOOST_CHECK_MESSAGE(!e.empty(), "JobService.submit on the bootstrap capability worked");
    BOOST_TEST_MESSAGE("submit on the bootstrap capability: " << e);
    e = thrown([&] {
      auto req = gate.typelessRequest(gate_interface, gate_authenticate, nullptr);
      req.initAsAnyStruct(0, 1).getPointerSection()[0].setAs<capnp::Text>("wrong");
      req.send().wait(ws);
    });
    BOOST_CHECK_MESSAGE(contains_ci(e, "invalid cluster token"), "authenticate(wrong): " << e);
    // The same hand-built calls work with the token: the ids above are right.
    e = thrown([&] {
      auto req = gate.typelessRequest(gate_interface, gate_authenticate, nullptr);
      req.initAsAnyStruct(0, 1).getPointerSection()[0].setAs<capnp::Text>(token);
      auto resp = req.send().wait(ws);
      auto results = resp.getAs<capnp::AnyStruct>();
      auto services = results.getPointerSection()[0].getAs<capnp::AnyStruct>();
      auto jobs = services.getPointerSection()[2].getAs<capnp::Capability>();
      jobs.typelessRequest(job_service_interface, jobs_list, nullptr).send().wait(ws);
      raw_submit(jobs, ws, "raw_ok", "echo raw-ok");
    });
    BOOST_CHECK_MESSAGE(e.empty(), "authenticated raw calls failed: " << e);
  }
  require_job_state(c, "raw_ok", "SUCCEEDED", 10s);

  // Bootstrap-like garbage: a well-formed frame of random words.
  {
    int fd = tcp_connect(head.api_address());
    BOOST_REQUIRE(fd >= 0);
    std::mt19937_64 rng(42);
    std::string frame(8 + 64 * 8, '\0');
    frame[4] = 64;  // one segment of 64 words
    for (size_t i = 8; i < frame.size(); ++i)
      frame[i] = static_cast<char>(rng());
    send_all(fd, frame);
    ::close(fd);
  }
  exec_result fine = submit(c, "fine", {"--", "echo fine"});
  BOOST_CHECK_MESSAGE(fine.exit_code == 0 && fine.out == "fine\n", fine.describe());
  BOOST_CHECK(!file_exists(marker));
  BOOST_CHECK(!file_exists(marker + "1"));
  BOOST_CHECK_EQUAL(joined(job_ids(c)), "[raw_ok,fine]");
  BOOST_CHECK(head.proc->running());
}

// --- 13. ids ---------------------------------------------------------------------

BOOST_AUTO_TEST_CASE(duplicate_submission_id_and_unknown_job, *utf::timeout(60)) {
  cluster c("jobs_ids");
  c.start_head({}, 1);
  exec_result first = submit(c, "dup", {"--", "echo first"});
  BOOST_CHECK_MESSAGE(first.exit_code == 0, first.describe());
  exec_result second = submit(c, "dup", {"--", "echo second"});
  BOOST_CHECK_MESSAGE(second.exit_code == 1, second.describe());
  BOOST_CHECK_MESSAGE(contains_ci(second.err, "exists"), second.describe());
  BOOST_CHECK(second.out.find("second") == std::string::npos);
  json st = job_status(c, "dup");
  BOOST_CHECK_EQUAL(st.value("entrypoint", std::string()), "echo first");
  BOOST_CHECK_EQUAL(c.rayctl({"job", "logs", "dup"}).out, "first\n");
  BOOST_CHECK_EQUAL(joined(job_ids(c)), "[dup]");

  for (const std::vector<std::string>& args :
       {std::vector<std::string>{"job", "status", "nosuch"},
        std::vector<std::string>{"job", "logs", "nosuch"},
        std::vector<std::string>{"job", "stop", "nosuch"},
        std::vector<std::string>{"job", "delete", "nosuch"}}) {
    exec_result r = c.rayctl(args);
    BOOST_CHECK_MESSAGE(r.exit_code == 1 && contains_ci(r.err, "no job"),
                        args[1] << ": " << r.describe());
  }
  exec_result badid = submit(c, "bad id!", {"--", "echo x"});
  BOOST_CHECK_MESSAGE(badid.exit_code != 0, badid.describe());
  BOOST_CHECK_EQUAL(joined(job_ids(c)), "[dup]");
}
