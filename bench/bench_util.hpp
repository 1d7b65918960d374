#pragma once
// Helpers of the benchmark harness: child processes (spawn, stop, reap),
// private temporary directories, /proc readers, small statistics, and a
// handle on one running rayd head. Nothing here talks to anything but
// loopback and the processes the harness itself started.

#include <sys/types.h>

#include <chrono>
#include <cstdint>
#include <map>
#include <memory>
#include <optional>
#include <string>
#include <vector>

namespace rayd::bench {

// ---------------------------------------------------------------- clocks

using steady = std::chrono::steady_clock;

/// Milliseconds (fractional) elapsed since `t0`.
double ms_since(steady::time_point t0);

/// Wall-clock milliseconds since the Unix epoch (comparable with the GCS's
/// death_time_ms / start_time_ms on the same host).
int64_t wall_ms();

void sleep_ms(double ms);

// ---------------------------------------------------------------- progress

/// Human progress on stderr ("rayd-bench: ...").
void note(const std::string& line);

// ---------------------------------------------------------------- stats

struct summary {
  std::size_t n = 0;
  double median = 0, min = 0, max = 0, mean = 0;
};

summary summarize(std::vector<double> xs);

/// The q-quantile (0..1) of `xs` (nearest rank); sorts `xs`.
double quantile(std::vector<double>& xs, double q);

// ---------------------------------------------------------------- processes

/// Where to find the binaries and where to put temporary state.
struct settings {
  std::string bin_dir;
  std::string tmp_root = "/tmp";
  bool keep_temp = false;
};

/// Raises RLIMIT_NOFILE's soft limit to the hard limit; returns the new soft
/// limit.
uint64_t raise_nofile_limit();

/// Installs SIGINT/SIGTERM handlers that SIGKILL every child still registered
/// and exit, so an interrupted benchmark leaves nothing behind.
void install_signal_cleanup();

/// Spawns `argv` (argv[0] is a path) with stdout and stderr appended to
/// `log_path` (or /dev/null if empty) and the environment of this process
/// minus every RAYD_* variable, plus `extra_env` ("K=V"). Registers the child
/// for emergency cleanup. Returns the pid, or -1 (errno message on stderr).
pid_t spawn(const std::vector<std::string>& argv, const std::string& log_path,
            const std::vector<std::string>& extra_env = {});

/// Runs `argv` to completion with stdout captured; stderr goes to ours (or
/// /dev/null with `quiet`). Returns the exit status (-1 on spawn failure).
int run_capture(const std::vector<std::string>& argv, std::string& out,
                bool quiet = false);

/// The result of stopping a set of children.
struct stop_report {
  int stopped = 0;          // reaped in total
  int needed_sigkill = 0;   // did not exit within the grace period
  int nonzero_exit = 0;     // exited with a non-zero code after SIGTERM
  int killed_by_signal = 0; // ended by a signal other than our SIGKILL
  std::vector<std::string> odd; // one line per unexpected ending
};

/// SIGTERM to every pid, wait up to `grace`, SIGKILL the rest, reap all.
stop_report stop_all(const std::vector<pid_t>& pids,
                     std::chrono::milliseconds grace = std::chrono::seconds{5});

/// Sends `sig` to `pid` (one of ours).
bool signal_child(pid_t pid, int sig);

/// Blocks until `pid` (one of ours) is reaped; returns its wait status.
int reap(pid_t pid);

/// Forgets `pid` for emergency cleanup (after it was reaped elsewhere).
void unregister_child(pid_t pid);

// ---------------------------------------------------------------- /proc

/// VmRSS / VmHWM of `pid` in bytes (0 if unavailable).
uint64_t vm_rss_bytes(pid_t pid);
uint64_t vm_hwm_bytes(pid_t pid);

/// utime + stime of `pid` in clock ticks (0 if unavailable).
uint64_t cpu_ticks(pid_t pid);
long ticks_per_second();

/// Busy and total jiffies of the whole machine (/proc/stat "cpu" line).
struct machine_ticks {
  uint64_t busy = 0, total = 0;
};
machine_ticks machine_cpu_ticks();

/// utime + stime per thread of `pid`: tid -> (thread name, ticks).
std::map<int, std::pair<std::string, uint64_t>> thread_cpu_ticks(pid_t pid);

/// Number of threads of `pid`.
int thread_count(pid_t pid);

// ---------------------------------------------------------------- files

/// A private directory from mkdtemp under `root`; removed by the destructor
/// unless `keep`.
class temp_dir {
public:
  temp_dir(const std::string& root, const std::string& prefix, bool keep);
  ~temp_dir();
  temp_dir(const temp_dir&) = delete;
  temp_dir& operator=(const temp_dir&) = delete;
  const std::string& path() const { return path_; }

private:
  std::string path_;
  bool keep_;
};

bool file_exists(const std::string& path);
std::optional<std::string> read_file(const std::string& path);

/// Lines of every rayd.log / *.out under `dir` that look like trouble
/// ("[error]", "[critical]", "[warning]", "rayd:" errors), prefixed with the
/// file's path relative to `dir`; at most `limit` lines, `total` counts all.
std::vector<std::string> scan_logs(const std::string& dir, std::size_t limit,
                                   std::size_t& total);

// ---------------------------------------------------------------- node.json

struct node_json {
  std::string node_id;
  int pid = 0;
  std::string cluster_address;
  std::string api_address;
  std::string session_dir;
};

std::optional<node_json> read_node_json(const std::string& session_dir);

/// Polls `<session_dir>/node.json` every `poll` until it exists and parses,
/// the process `pid` exited (then nullopt), or `timeout` passed.
std::optional<node_json> wait_node_json(const std::string& session_dir,
                                        pid_t pid,
                                        std::chrono::milliseconds timeout,
                                        std::chrono::microseconds poll
                                        = std::chrono::microseconds{1000});

/// True while `pid` (a child of ours) has not exited; reaps it if it has.
bool child_running(pid_t pid, int* status = nullptr);

std::string describe_wait_status(int status);

// ---------------------------------------------------------------- cluster

/// One rayd head (and any workers) started by the harness in a private
/// RAYD_TMPDIR. The destructor stops every process and removes the dir.
class cluster {
public:
  explicit cluster(const settings& s, const std::string& name);
  ~cluster();

  std::string tmpdir() const { return dir_.path(); }
  std::string rayd() const;

  /// Spawns the head (`--head --block --port 0 --api-port 0 --session-dir
  /// <tmp>/head` + `extra`) and returns its pid; does not wait.
  pid_t spawn_head(const std::vector<std::string>& extra = {});

  /// Waits for the head's node.json and token. False (with a note) on failure.
  bool wait_head(std::chrono::milliseconds timeout = std::chrono::seconds{30});

  /// Spawns a worker joining the head. `session_dir` empty: rayd's default
  /// (nested under the head's session). Returns the pid.
  pid_t spawn_worker(const std::vector<std::string>& extra = {},
                     const std::string& session_dir = "");

  pid_t head_pid() const { return head_pid_; }
  const node_json& head() const { return head_; }
  const std::string& token() const { return token_; }
  std::string token_file() const { return dir_.path() + "/head/auth_token"; }
  std::string head_session() const { return dir_.path() + "/head"; }
  const std::vector<pid_t>& worker_pids() const { return workers_; }

  /// Forgets a worker the caller reaped itself.
  void forget_worker(pid_t pid);

  /// Stops workers first, then the head. Idempotent.
  stop_report stop();

  /// Log trouble found under the temp dir (call before the destructor).
  std::vector<std::string> log_issues(std::size_t limit, std::size_t& total);

private:
  settings settings_;
  temp_dir dir_;
  pid_t head_pid_ = -1;
  node_json head_;
  std::string token_;
  std::vector<pid_t> workers_;
  int worker_seq_ = 0;
  bool stopped_ = false;
};

} // namespace rayd::bench
