#pragma once
// The types of submitted jobs: the row the GCS keeps per job, what the head
// asks a node to run, and what a node's job supervisor reports back. Types
// that cross the network have an `inspect` overload and are registered in
// actors/registry.cpp.
//
// Job lifecycle (the job manager on the head owns the state; see
// docs/jobs.md for every reason a job can end with):
//
//   submit ──► PENDING ──(admitted, supervisor started the entrypoint)──► RUNNING
//                │  queued FIFO while the entrypoint resources are busy       │
//                │                                                            ├─ exit 0 ─────► SUCCEEDED
//                │  infeasible / pending timeout / runtime-env failure /      ├─ exit ≠ 0 ───► FAILED
//                ├─ node died / lost after a head restart ───────────► FAILED ◄┤ node died, lost
//                │                                                            │
//                └─ stop ──────────────────────────────────────────► STOPPED ◄┘ stop (TERM → KILL)
//
// Terminal states (SUCCEEDED, FAILED, STOPPED) never change again; only they
// may be deleted, and retention deletes the oldest of them first.

#include <cstdint>
#include <map>
#include <string>

#include <caf/meta/type_name.hpp>

#include "common/util.hpp"

namespace rayd {

enum class job_state : uint8_t { pending = 0, running, succeeded, failed, stopped };

const char* to_string(job_state x);

/// Parses "PENDING", "running", ...; false if unknown.
bool from_string(const std::string& text, job_state& out);

inline bool is_terminal(job_state x) {
  return x == job_state::succeeded || x == job_state::failed
         || x == job_state::stopped;
}

using string_map = std::map<std::string, std::string>;

/// What a client submits.
struct job_submission {
  /// Unique id; generated ("rayd_job_<hex>") when empty.
  std::string submission_id;
  /// A shell command line (run with /bin/sh -c).
  std::string entrypoint;
  string_map metadata;
  /// Environment variables of the entrypoint (runtime env "env_vars").
  string_map env_vars;
  /// The working directory: "" (a fresh scratch directory), a package
  /// "gcs://<sha256>.tar.gz" uploaded before, or "file:///abs/dir" on the node.
  std::string working_dir;
  /// The runtime env as the client gave it (JSON), kept for display.
  std::string runtime_env_json;
  /// Entrypoint resources: CPU, GPU, memory and custom ones. Empty: the
  /// entrypoint runs on the head and reserves nothing.
  resource_map resources;
};

template <class Inspector>
typename Inspector::result_type inspect(Inspector& f, job_submission& x) {
  return f(caf::meta::type_name("rayd::job_submission"), x.submission_id,
           x.entrypoint, x.metadata, x.env_vars, x.working_dir,
           x.runtime_env_json, x.resources);
}

/// One row of the GCS job table.
struct job_info {
  job_submission spec;
  job_state state = job_state::pending;
  /// Why the job is in its state: the pending reason, the failure, ...
  std::string message;
  /// Exit code of the entrypoint (-1 while unknown or killed by a signal).
  int32_t exit_code = -1;
  /// Signal that ended the entrypoint, 0 if none.
  int32_t exit_signal = 0;
  int64_t submit_time_ms = 0;
  int64_t start_time_ms = 0;
  int64_t end_time_ms = 0;
  /// The node the entrypoint was handed to ("" while queued) and its pid.
  std::string node_id;
  std::string node_name;
  int32_t pid = 0;
  /// Admission order (monotonic across head restarts).
  uint64_t seq = 0;
  /// A stop was requested; the job ends STOPPED whatever its exit code.
  bool stop_requested = false;
  /// PENDING only, not stored: 1-based place in the admission queue (0 when
  /// already handed to a node).
  uint64_t queue_position = 0;
};

template <class Inspector>
typename Inspector::result_type inspect(Inspector& f, job_info& x) {
  return f(caf::meta::type_name("rayd::job_info"), x.spec, x.state, x.message,
           x.exit_code, x.exit_signal, x.submit_time_ms, x.start_time_ms,
           x.end_time_ms, x.node_id, x.node_name, x.pid, x.seq,
           x.stop_requested, x.queue_position);
}

/// What the head asks a node manager to run (job_start).
struct job_launch {
  std::string submission_id;
  std::string entrypoint;
  string_map env_vars;
  std::string working_dir;
  /// SIGTERM → SIGKILL grace for stop and for leftover processes.
  int64_t stop_grace_ms = 3000;
};

template <class Inspector>
typename Inspector::result_type inspect(Inspector& f, job_launch& x) {
  return f(caf::meta::type_name("rayd::job_launch"), x.submission_id,
           x.entrypoint, x.env_vars, x.working_dir, x.stop_grace_ms);
}

/// What a node's job supervisor reports to the head (through the gate).
/// A supervisor re-sends its latest report after every head restart.
struct job_report {
  enum kind_t : uint8_t { running = 0, exited = 1, failed = 2 };
  std::string submission_id;
  std::string node_id;
  uint8_t kind = running;
  int32_t pid = 0;
  int32_t exit_code = -1;
  int32_t exit_signal = 0;
  /// failed: why (runtime env, cannot execute, ...).
  std::string message;
  /// The supervisor stopped the job on request.
  bool stopped = false;
  /// Bytes of log the supervisor has shipped and had acknowledged.
  uint64_t log_bytes = 0;
};

template <class Inspector>
typename Inspector::result_type inspect(Inspector& f, job_report& x) {
  return f(caf::meta::type_name("rayd::job_report"), x.submission_id,
           x.node_id, x.kind, x.pid, x.exit_code, x.exit_signal, x.message,
           x.stopped, x.log_bytes);
}

/// A slice of a job's log: `data` starts at `offset`; `closed` once the job
/// is terminal and `offset + data.size()` is the log's final length.
struct log_slice {
  uint64_t offset = 0;
  std::string data;
  bool closed = false;
};

template <class Inspector>
typename Inspector::result_type inspect(Inspector& f, log_slice& x) {
  return f(caf::meta::type_name("rayd::log_slice"), x.offset, x.data, x.closed);
}

} // namespace rayd
