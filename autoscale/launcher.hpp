#pragma once
// The cluster launcher's logic (`rayctl up/down/exec/attach/get-head-address`,
// docs/autoscaler.md "The launcher") for the `processes` provider: the head is
// a rayd process on this host that runs the autoscaler with the cluster
// config; the autoscaler starts the workers through the processes provider.
// No CLI11 and no API client here: rayctl_launch.cpp prints, asks and talks
// to the head's API, and hands this file what it fetched.
//
// State of one cluster, $RAYD_TMPDIR/clusters/<cluster_name>/:
//
//   cluster.yaml    the config the head reads (--autoscaling-config); replaced
//                   atomically (temp file + rename) when `up` applies a change
//   head.json       pid and start time of the head process `up` spawned,
//                   written before its node.json exists (a head still starting
//                   is found, never started twice)
//   launcher.lock   flock held by `up` while it starts or changes the cluster
//                   and by `down`: two launchers never race on one cluster
//   head/           the head's session dir: node.json, auth_token, rayd.log,
//                   rayd.out, rayd.err, gcs/ (its storage, kept by `down`)
//
// Workers live where the autoscaler's processes provider puts them
// ($RAYD_TMPDIR/autoscaler/<cluster_name>/<instance id>/), listed and
// terminated through that provider.
//
// Lifecycle of a cluster as the launcher sees it:
//
//   (no head) --up: spawn head--> starting --node.json--> running
//       ^                            |                       |  |
//       |                            +--exits early--> (no head, up fails
//       |                                               with its stderr)
//       +------------ head dies (up starts a new one over its storage) --+
//       +---------down: head SIGTERM..SIGKILL, then every worker---------+
//
// Thread rules: functions marked Pure do no I/O; the others block (files,
// processes, polling). None keeps state between calls. Callers serialize
// mutations of one cluster with launcher_lock.

#include <chrono>
#include <cstdint>
#include <functional>
#include <map>
#include <optional>
#include <string>
#include <vector>

#include <sys/types.h>

#include <caf/error.hpp>
#include <caf/expected.hpp>

#include "autoscale/cluster_config.hpp"
#include "autoscale/node_provider.hpp"
#include "common/node_stop.hpp"
#include "common/resources.hpp"
#include "common/session.hpp"

namespace rayd::autoscale {


// --- state paths ---------------------------------------------------------------

struct cluster_paths {
  std::string root;       // <tmpdir>/clusters/<name>
  std::string config;     // root/cluster.yaml
  std::string head_pid;   // root/head.json
  std::string lock;       // root/launcher.lock
  std::string head_dir;   // root/head
  std::string token_file; // head_dir/auth_token

  /// The paths of cluster `name` under `tmpdir` ($RAYD_TMPDIR). Pure.
  static cluster_paths of(const std::string& tmpdir, const std::string& name);
};

/// An exclusive flock on the cluster's launcher.lock (created with the state
/// dir when missing). Released on destruction.
class launcher_lock {
 public:
  /// Takes the lock; when another launcher holds it, calls `on_wait` once and
  /// blocks until it is free. Errors: storage_error (cannot create or lock).
  static caf::expected<launcher_lock> acquire(const cluster_paths& p,
                                              const std::function<void()>& on_wait);
  launcher_lock(launcher_lock&& other) noexcept;
  launcher_lock& operator=(launcher_lock&& other) noexcept;
  launcher_lock(const launcher_lock&) = delete;
  launcher_lock& operator=(const launcher_lock&) = delete;
  ~launcher_lock();

 private:
  explicit launcher_lock(int fd) : fd_(fd) {}
  int fd_ = -1;
};

// --- config ----------------------------------------------------------------------

/// Loads and validates CONFIG for the launcher: the parser's errors unchanged
/// (errc::invalid_argument / not_found, "<file>:<line>: <key>: <problem>"),
/// and errc::invalid_argument for a provider other than `processes` (one
/// line saying the launcher supports `processes` for now).
caf::expected<cluster_config> load_launcher_config(const std::string& path);

/// A config file as read once: its exact text (what `up` copies into the
/// state dir) and what it means.
struct launcher_config {
  std::string text;
  cluster_config config;
};

/// Reads CONFIG once and validates that very text, as load_launcher_config
/// (same errors): the copy the head reads is exactly what was checked.
caf::expected<launcher_config> read_launcher_config(const std::string& path);

/// One difference between the config a cluster runs with and a new one.
struct config_difference {
  std::string key;    // dotted key path: "max_workers", "available_node_types.w.min_workers"
  std::string before; // "" when added
  std::string after;  // "" when removed
  /// The running head keeps its own resources and labels: the change takes
  /// effect on the head only when it restarts.
  bool needs_head_restart = false;
};

/// What differs between two validated configs, in key order: top-level keys,
/// then node types (added, removed, each field), with values printed compactly
/// ("{CPU: 2, GPU: 1}", "30s"). Empty when they mean the same. Pure.
std::vector<config_difference> diff_configs(const cluster_config& before,
                                            const cluster_config& after);

/// "available_node_types.w.min_workers: 0 -> 1", "... added: {CPU: 1}", ...
std::string to_string(const config_difference& d);

/// What `up` reads from the head's autoscaler status (the JSON of the API's
/// autoscaler_status) to tell that a replaced config was re-read: the
/// autoscaler re-reads a changed file at the start of every round, so two
/// completed rounds after the replace mean it has been read, and
/// `config_error` then says whether it was taken ("") or refused (why).
struct autoscaler_progress {
  int64_t rounds = 0;
  std::string config_error;
};

/// Errors: invalid_argument when `status_json` is not such a status. Pure.
caf::expected<autoscaler_progress> parse_autoscaler_progress(const std::string& status_json);

/// Writes `text` to `path` atomically: a temp file in the same directory,
/// flushed and fsync'd, renamed over `path`. Errors: storage_error.
caf::error replace_file(const std::string& path, const std::string& text);

// --- the head ----------------------------------------------------------------------

/// The head of the cluster as found on disk.
struct head_state {
  pid_t pid = 0;
  uint64_t start_ticks = 0;
  /// Its node.json, once written by this very process (nullopt while starting).
  std::optional<node_file> node;
  /// Size of head/rayd.err before spawn_head started it: error messages show
  /// only what this run wrote (0 for a head found running).
  std::uintmax_t err_offset = 0;
};

/// The head process of the cluster if one runs: the pid of head/node.json (a
/// head node) or of head.json, alive with its recorded start time. A dead
/// record is ignored (a recycled pid is never taken for the head).
std::optional<head_state> find_head(const cluster_paths& p);

struct head_options {
  /// The rayd binary. Default: `rayd` next to this executable.
  std::string rayd_binary;
  /// Pass --autoscaling-config (false for a rayd without the flag: the head
  /// then runs no autoscaler and launches no workers).
  bool autoscaling = true;
  /// Extra flags for the head (tests: --health-timeout-ms ...).
  std::vector<std::string> extra_args;
};

/// The head's command line: `rayd --head --block --session-dir <head_dir>
/// --port 0 --api-port 0 [--autoscaling-config <config>] --num-cpus N
/// --num-gpus N [--memory B] --resources JSON --labels JSON`, with the head
/// type's resources (CPU and GPU default to 0, as for workers) and its labels
/// plus rayd-node-type=<head_node_type>. Pure.
std::vector<std::string> head_command(const cluster_config& cfg, const cluster_paths& p,
                                      const head_options& o);

/// Whether `rayd_binary --help` lists --autoscaling-config (runs it once).
bool rayd_supports_autoscaling(const std::string& rayd_binary);

/// Whether the running process `pid` was started with --autoscaling-config
/// (its /proc/<pid>/cmdline): a head started by an older rayd runs no
/// autoscaler even when today's binary has the flag.
bool head_runs_autoscaler(pid_t pid);

/// Spawns the head detached (autoscale/detached_process.hpp) and records its
/// pid in head.json. Errors: as spawn_detached, storage_error.
caf::expected<head_state> spawn_head(const cluster_config& cfg, const cluster_paths& p,
                                     const head_options& o);

/// Waits until the head `h` has written its node.json (its own pid in it), it
/// exits (errc::unavailable with the tail of head/rayd.err and rayd.log), or
/// `deadline` passes (errc::timeout, the same tails).
caf::expected<node_file> wait_head_ready(const cluster_paths& p, const head_state& h,
                                         std::chrono::steady_clock::time_point deadline);

/// The last `lines` lines of a file ("" if unreadable).
std::string tail_of(const std::string& path, size_t lines);

// --- waiting for min_workers ------------------------------------------------------

/// A node as the head's API reports it (what counting needs).
struct node_view {
  bool is_head = false;
  bool alive = false;
  label_map labels;
};

/// One node type's progress towards its min_workers.
struct type_progress {
  std::string type;
  int32_t wanted = 0;   // min_workers
  int32_t alive = 0;    // ALIVE worker nodes labelled with the type
  int32_t launched = 0; // live instances the provider lists for the type
  bool done() const { return alive >= wanted; }
};

/// For every type with min_workers > 0 (in name order), its ALIVE non-head
/// nodes (by label_node_type) and launched instances (`launched` by type). Pure.
std::vector<type_progress> min_worker_progress(const autoscaling_config& cfg,
                                               const std::vector<node_view>& nodes,
                                               const std::map<std::string, int32_t>& launched);

/// "worker: 1/2 ALIVE (2 launched)". Pure.
std::string to_string(const type_progress& x);

struct wait_hooks {
  /// The nodes the head's API reports; an error is retried until the deadline.
  std::function<caf::expected<std::vector<node_view>>()> fetch_nodes;
  /// Live provider instances by node type.
  std::function<std::map<std::string, int32_t>()> launched;
  /// Whether the head still runs (the wait ends at once when it does not).
  std::function<bool()> head_alive;
  /// Called with each progress line, once per change.
  std::function<void(const std::string&)> on_line;
  std::chrono::milliseconds poll{200};
};

/// Polls until every type's min_workers are ALIVE. Errors: timeout when the
/// deadline passes ("waited Ns for min_workers: worker 1/2 ALIVE (1
/// launched); ..."), unavailable when the head stopped.
caf::error wait_for_min_workers(const autoscaling_config& cfg, const wait_hooks& hooks,
                                std::chrono::steady_clock::time_point deadline);

// --- stopping ---------------------------------------------------------------------

/// One worker instance of the cluster, as the processes provider lists it.
struct worker_instance {
  std::string id;
  std::string node_type;
  pid_t pid = 0;  // 0 when its process no longer runs
  bool live = false;
};

/// The cluster's instances that the processes provider (default base dir,
/// cluster = cfg.cluster_name) lists. Errors: the provider's.
caf::expected<std::vector<worker_instance>> list_workers(const cluster_config& cfg);

struct stop_report {
  std::optional<stop_result> head;          // nullopt: no head ran
  std::vector<worker_instance> workers;     // the live ones that were stopped
  caf::error workers_error;                 // the provider's terminate error, if any
};

/// Stops the head first (SIGTERM, SIGKILL after `head_grace`), so its
/// autoscaler launches nothing more, then terminates every instance the
/// processes provider lists for the cluster (its own SIGTERM .. SIGKILL), and
/// nothing else. `on_kill` as in stop_processes.
stop_report stop_cluster(const cluster_config& cfg, const cluster_paths& p,
                         std::chrono::milliseconds head_grace,
                         const std::function<void(const stop_target&)>& on_kill);

// --- exec / attach ------------------------------------------------------------------

/// Environment changes for a command run on the head: RAYD_ADDRESS=<its API
/// address> and RAYD_TOKEN_FILE=<its auth_token> set; RAYD_TOKEN unset
/// (nullopt), since it would override the file. Pure.
std::vector<std::pair<std::string, std::optional<std::string>>>
head_environment(const node_file& head, const cluster_paths& p);

} // namespace rayd::autoscale
