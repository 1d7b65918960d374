#pragma once

// Multi-process test harness: starts the real `rayd` / `rayctl` binaries (found
// through $RAYD_BIN_DIR), waits for conditions by polling, and cleans up every
// process it started by pid. Plain C++17 + POSIX; it knows the binaries only
// through their documented contract (docs/cli.md).
//
// Ownership: a `process` owns exactly one child pid; its destructor SIGKILLs and
// reaps that pid (never a group, never by name). A `cluster` owns its nodes'
// processes and a private temporary tree (session dirs, RAYD_TMPDIR).

#include <chrono>
#include <cstdint>
#include <functional>
#include <memory>
#include <optional>
#include <string>
#include <utility>
#include <vector>

#include <sys/types.h>

#include <nlohmann/json.hpp>

#include "tests/support/skip.hpp"

namespace rayd::integration {

using json = nlohmann::json;
using namespace std::chrono_literals;
using std::chrono::milliseconds;

// Extra environment variables for a child. Every inherited RAYD_* variable is
// removed from a child's environment first, so tests are hermetic.
using env_list = std::vector<std::pair<std::string, std::string>>;

// A test that cannot set up what it needs (a network namespace, ...) says so
// and is counted, and fails under CI=true (tests/support/skip.hpp):
//   if (!require_or_skip(net.ready(), "network namespace: " + net.why_not())) return;
using rayd::tests::in_ci;
using rayd::tests::require_or_skip;
using rayd::tests::skip_part_unless;

// --- small utilities -------------------------------------------------------

// Wall-clock milliseconds since the epoch (the clock death_time_ms uses).
int64_t now_ms();

// Polls `pred` every `poll` until it returns true or `timeout` elapses.
bool wait_until(const std::function<bool()>& pred, milliseconds timeout,
                milliseconds poll = 10ms);

std::string read_file(const std::string& path);
bool file_exists(const std::string& path);
// The last `lines` lines of a file ("" if missing).
std::string tail_file(const std::string& path, size_t lines = 40);
std::string to_lower(std::string s);
std::string trim(const std::string& s);
bool contains_ci(const std::string& haystack, const std::string& needle);
// Non-empty lines of `s`.
std::vector<std::string> nonempty_lines(const std::string& s);

// True if `pid` exists and is not a zombie (a detached daemon's zombie may
// linger when PID 1 does not reap).
bool pid_alive(pid_t pid);

// A TCP port on 127.0.0.1 that nothing listens on (bound, then closed).
uint16_t unused_port();

// "HOST:PORT" -> port (0 on parse failure).
uint16_t port_of(const std::string& address);

std::string bin_dir();
std::string rayd_bin();
std::string rayctl_bin();
// Both binaries exist and are executable.
bool binaries_present();

// --- temp_dir --------------------------------------------------------------

// A fresh directory under /tmp, removed with everything in it on destruction.
class temp_dir {
 public:
  explicit temp_dir(const std::string& prefix = "rayd_it");
  ~temp_dir();
  temp_dir(const temp_dir&) = delete;
  temp_dir& operator=(const temp_dir&) = delete;
  const std::string& path() const { return path_; }
  // path()/name, created (with parents).
  std::string sub(const std::string& name) const;

 private:
  std::string path_;
};

// --- process ---------------------------------------------------------------

// A child process in its own process group, stdin from /dev/null, stdout and
// stderr to `<log_dir>/<name>.out` / `.err`.
class process {
 public:
  process(std::vector<std::string> argv, const env_list& env,
          const std::string& log_dir, const std::string& name);
  ~process();  // SIGKILL + reap this pid if still running
  process(const process&) = delete;
  process& operator=(const process&) = delete;

  pid_t pid() const { return pid_; }
  const std::string& name() const { return name_; }
  const std::vector<std::string>& argv() const { return argv_; }
  // Sends `sig` to this pid only (no-op once reaped).
  void signal(int sig);
  // Reaps without blocking; true while the child has not exited.
  bool running();
  // Waits up to `timeout` for the exit; the exit code, or 128+signal if it
  // was killed by a signal; nullopt if still running.
  std::optional<int> wait_exit(milliseconds timeout);
  // Wall clock (now_ms) at which the exit was first observed, 0 if not yet.
  int64_t exit_observed_ms() const { return exit_ms_; }
  std::string out_path() const { return out_path_; }
  std::string err_path() const { return err_path_; }
  std::string out() const { return read_file(out_path_); }
  std::string err() const { return read_file(err_path_); }

 private:
  bool reap(bool block);

  std::vector<std::string> argv_;
  std::string name_;
  std::string out_path_;
  std::string err_path_;
  pid_t pid_ = -1;
  bool exited_ = false;
  int code_ = -1;
  int64_t exit_ms_ = 0;
};

// Keeps the daemons of one session dir from outliving the test: a `rayd`
// without --block detaches, so the test never spawned the daemon itself and
// may not even learn its pid (node.json is written late, or never when the
// start fails half-way). Declare it before starting such a rayd. On
// destruction it SIGKILLs, by pid, the pid in <dir>/node.json and every live
// rayd whose command line names `dir` -- a fresh temporary path, so only this
// test's processes match. (Any such path works: an install prefix whose bin/
// holds the rayd a driver starts, for one.)
class session_guard {
 public:
  explicit session_guard(std::string session_dir) : dir_(std::move(session_dir)) {}
  ~session_guard();
  session_guard(const session_guard&) = delete;
  session_guard& operator=(const session_guard&) = delete;

 private:
  std::string dir_;
};

// --- run -------------------------------------------------------------------

struct exec_result {
  int exit_code = -1;   // 128+sig when killed by a signal; -1 on timeout
  bool timed_out = false;
  int64_t elapsed_ms = 0;
  std::string out;
  std::string err;
  std::string describe() const;  // for failure messages
};

// Runs argv to completion; killed (by pid) at `timeout`.
exec_result run(const std::vector<std::string>& argv, const env_list& env = {},
                milliseconds timeout = 15s);

// --- cluster ---------------------------------------------------------------

// One rayd node (head or worker) started with --block.
struct rayd_node {
  std::string name;         // test-local name, also the log file prefix
  std::string session_dir;  // where node.json / rayd.log live
  std::vector<std::string> argv;
  env_list env;
  std::unique_ptr<process> proc;
  json info;  // parsed node.json once ready

  pid_t pid() const { return proc ? proc->pid() : -1; }
  std::string node_json_path() const { return session_dir + "/node.json"; }
  std::string log_path() const { return session_dir + "/rayd.log"; }
  std::string token_file() const { return session_dir + "/auth_token"; }
  std::string node_id() const { return info.value("node_id", std::string()); }
  std::string api_address() const { return info.value("api_address", std::string()); }
  std::string cluster_address() const {
    return info.value("cluster_address", std::string());
  }
  // stdout + stderr + rayd.log, for message checks.
  std::string all_output() const;
};

// Reads and parses `<dir>/node.json`; nullopt if missing or incomplete.
std::optional<json> read_node_json(const std::string& session_dir);

// A private cluster: its own temporary tree and RAYD_TMPDIR. All processes it
// starts are killed by pid when it is destroyed; if the current Boost.Test case
// has failed by then, the tails of every node's logs are printed first.
class cluster {
 public:
  explicit cluster(const std::string& label = "cluster");
  ~cluster();
  cluster(const cluster&) = delete;
  cluster& operator=(const cluster&) = delete;

  const std::string& root() const { return tmp_.path(); }
  const std::string& rayd_tmpdir() const { return rayd_tmpdir_; }
  // RAYD_TMPDIR=<private dir>.
  env_list base_env() const;

  // Starts `rayd --head --block --port 0 --api-port 0 --session-dir
  // <root>/head --num-cpus N <extra>` (the defaults are left out when
  // `extra` names them) and waits (<= 10 s) for node.json.
  rayd_node& start_head(const std::vector<std::string>& extra = {}, int num_cpus = 2,
                        const std::string& session_dir = "");
  // Starts the same head command line again (same session dir) and waits for
  // a node.json written by the new pid.
  rayd_node& restart_head(milliseconds timeout = 10s);
  // Starts `rayd --address=<head cluster address> --block --session-dir
  // <root>/<name> --token-file <head>/auth_token --num-cpus N <extra>` and
  // waits for node.json. `session_dir` overrides the location.
  rayd_node& start_worker(const std::string& name, const std::vector<std::string>& extra = {},
                          int num_cpus = 1, const std::string& session_dir = "");
  // Starts an arbitrary rayd command line as a node without waiting.
  rayd_node& spawn_node(const std::string& name, std::vector<std::string> argv,
                        const std::string& session_dir, const env_list& extra_env = {});
  // Waits for the node's node.json written by its current pid; false if the
  // process exits first or the timeout elapses.
  bool wait_ready(rayd_node& node, milliseconds timeout = 10s);

  rayd_node& head();
  // Makes `node` (started with spawn_node) the head rayctl talks to.
  void set_head(rayd_node& node) { head_ = &node; }
  bool has_head() const { return head_ != nullptr; }

  // rayctl against this cluster's head: `--address A --token-file F <args>`.
  exec_result rayctl(const std::vector<std::string>& args, milliseconds timeout = 10s) const;
  // `rayctl status --json`, parsed; nullopt on any failure.
  std::optional<json> try_status() const;
  // As try_status, but a failed BOOST_REQUIRE on failure.
  json status_json() const;

  // Prints the log tails of every node (also done automatically on failure).
  void dump_logs() const;
  // Adds a file whose tail dump_logs should print.
  void add_log(const std::string& path) { extra_logs_.push_back(path); }

 private:
  temp_dir tmp_;
  std::string rayd_tmpdir_;
  std::vector<std::unique_ptr<rayd_node>> nodes_;
  std::vector<std::string> extra_logs_;
  rayd_node* head_ = nullptr;
  int restarts_ = 0;
};

// --- status helpers --------------------------------------------------------

// The node entry in a status/nodes JSON with this node_id; nullptr if absent.
const json* find_node(const json& status, const std::string& node_id);
// Its "state" ("" if absent).
std::string node_state(const json& status, const std::string& node_id);
// Number of nodes in state ALIVE.
size_t alive_count(const json& status);
// The node list of `rayctl nodes --json` (an array, or {"nodes": [...]}).
json node_list(const json& nodes_output);
// Polls status until node `node_id` is in `state`; returns the last status
// that satisfied it.
std::optional<json> wait_for_state(const cluster& c, const std::string& node_id,
                                   const std::string& state, milliseconds timeout,
                                   milliseconds poll = 20ms);

// Polls status until exactly `n` nodes are ALIVE; returns that status, or
// nullopt after `timeout` (then `last` holds the last status seen, if any).
std::optional<json> wait_for_alive(const cluster& c, size_t n, milliseconds timeout,
                                   std::optional<json>* last = nullptr);

// A head and two workers (1 CPU each, named it-w1 / it-w2), all ALIVE.
struct three_nodes {
  explicit three_nodes(const std::string& name);
  cluster c;
  rayd_node* head = nullptr;
  rayd_node* w1 = nullptr;
  rayd_node* w2 = nullptr;
};

// True when the running Boost.Test case has recorded a failure.
bool current_test_failed();

// --- files, foreign processes, raw sockets ---------------------------------

// Writes `content` to `path` (created or truncated, mode 0644); false on failure.
bool write_file(const std::string& path, const std::string& content);

// The start time of `pid` in clock ticks since boot (field 22 of
// /proc/<pid>/stat); 0 if there is no such process. Pid + start time name one
// process unambiguously, whatever pid reuse does.
uint64_t process_start_ticks(pid_t pid);

// A safety net for processes the test did not spawn (a job's entrypoint, its
// children): on destruction, SIGKILLs each one that is still the same live
// process (pid and start time). Tests assert such processes are gone before;
// this only keeps a failing test from leaking them.
class stray_guard {
 public:
  stray_guard() = default;
  ~stray_guard();
  stray_guard(const stray_guard&) = delete;
  stray_guard& operator=(const stray_guard&) = delete;
  // Remembers `pid` if it runs now (no-op for pid <= 0).
  void add(pid_t pid);

 private:
  std::vector<std::pair<pid_t, uint64_t>> procs_;
};

// The command line of `pid`, its arguments joined by spaces ("" if gone).
std::string cmdline_of(pid_t pid);
// Live processes (not this one) whose command line contains `needle`; used
// with a fresh temporary path as the needle, it finds what this test started.
std::vector<pid_t> processes_mentioning(const std::string& needle);

// A blocking TCP connection to "HOST:PORT" (numeric IPv4); -1 on failure.
// The caller closes the descriptor.
int tcp_connect(const std::string& address);
// Writes all of `data` (SIGPIPE-safe); false once the peer is gone.
bool send_all(int fd, const std::string& data);

// --- job helpers (rayctl job ... --json, docs/jobs.md) ---------------------

// `rayctl job status ID --json`, parsed; nullopt on any failure.
std::optional<json> try_job_status(const cluster& c, const std::string& id);
// Polls the job's status until `pred` holds; returns that status, or nullopt
// after `timeout` (then `last`, if given, holds the last status seen).
std::optional<json> wait_job(const cluster& c, const std::string& id,
                             const std::function<bool(const json&)>& pred, milliseconds timeout,
                             json* last = nullptr);
// As wait_job, until its "status" is `state` ("RUNNING", "SUCCEEDED", ...).
std::optional<json> wait_job_state(const cluster& c, const std::string& id,
                                   const std::string& state, milliseconds timeout,
                                   json* last = nullptr);
// wait_job_state, but a failed BOOST_REQUIRE (with the last status) on timeout.
json require_job_state(const cluster& c, const std::string& id, const std::string& state,
                       milliseconds timeout);

// The parent pid of `pid` (-1 if unknown).
pid_t parent_pid(pid_t pid);

// The submission ids of `rayctl job list --json`, in its order; nullopt on failure.
std::optional<std::vector<std::string>> try_job_ids(const cluster& c);

}  // namespace rayd::integration
