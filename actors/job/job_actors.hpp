#pragma once
// Message interfaces of the job roles.
//
//   head:  API gateway ──► job_manager ──► job table (RocksDB)
//                               │  └────► job_log_actor ──► log table (RocksDB)
//                               └─ job_start/job_stop ─► node manager of the chosen node
//   node:  node manager ──► job_agent ──► job_supervisor (one per job) ──► rayd-job-shim
//          job_supervisor ──report / log bytes / package fetch (token)──► gate ──► head
//
// Supervisors reach the head only through the gate, with the cluster token,
// like node managers; after a head restart their node manager hands them the
// new gate and they re-send their state.

#include <cstdint>
#include <string>
#include <vector>

#include <caf/replies_to.hpp>
#include <caf/typed_actor.hpp>

#include "actors/gcs/gcs_actors.hpp"
#include "actors/job/job_types.hpp"
#include "actors/types.hpp"

namespace rayd {

/// The job manager (head). Owns the job table, the admission queue and the
/// placement of entrypoints. Errors: errc::not_found (unknown submission id),
/// errc::already_exists (duplicate id), errc::invalid_argument (bad
/// submission, delete of a job that has not ended), errc::storage_error.
using job_manager_actor = caf::typed_actor<
  /// Admits a job (PENDING, durable) → its row.
  caf::replies_to<atoms::job_submit, job_submission>::with<job_info>,
  /// (id, wait_ms) → its row; with wait_ms > 0 the answer comes when the job
  /// is terminal or after wait_ms, whichever is first.
  caf::replies_to<atoms::job_get, std::string, int64_t>::with<job_info>,
  /// Every job, in submission order.
  caf::replies_to<atoms::job_list>::with<std::vector<job_info>>,
  /// Stops a job in any state (no-op when it has ended) → its row.
  caf::replies_to<atoms::job_stop, std::string>::with<job_info>,
  /// Deletes an ended job and its log → true.
  caf::replies_to<atoms::job_delete, std::string>::with<bool>,
  /// (id, offset, max bytes, wait_ms) → a log slice; waits up to wait_ms
  /// for bytes past `offset` unless the log is closed.
  caf::replies_to<atoms::job_logs, std::string, uint64_t, uint64_t, int64_t>::with<log_slice>,
  /// From a supervisor (through the gate) → whether the job should go on.
  caf::replies_to<atoms::job_report, job_report>::with<bool>,
  /// Node events (subscribed at the node actor).
  caf::reacts_to<atoms::node_event, node_info>,
  /// Internal: timeouts (pending, waits, re-attach) and retention.
  caf::reacts_to<atoms::tick>,
  /// Internal: commit staged changes, then run what waited for them.
  caf::reacts_to<atoms::flush>>;

/// The job log store (head). Appends are group-committed: a reply means the
/// bytes are durable.
using job_log_actor = caf::typed_actor<
  /// (id, offset, bytes) → length held afterwards.
  caf::replies_to<atoms::log_append, std::string, uint64_t, std::string>::with<uint64_t>,
  /// (id, offset, max bytes, wait_ms, terminal) → slice; parks until bytes
  /// arrive, the log is closed or wait_ms passed.
  caf::replies_to<atoms::log_read, std::string, uint64_t, uint64_t, int64_t, bool>::with<log_slice>,
  /// The job ended: parked readers get their final answer.
  caf::reacts_to<atoms::log_close, std::string>,
  caf::reacts_to<atoms::log_drop, std::string>,
  caf::reacts_to<atoms::flush>,
  caf::reacts_to<atoms::tick>>;

/// The job agent (every node): starts and tracks this node's supervisors and
/// prepares working_dir packages (each fetched and unpacked once per node).
using job_agent_actor = caf::typed_actor<
  caf::replies_to<atoms::job_start, job_launch>::with<bool>,
  caf::replies_to<atoms::job_stop, std::string, int64_t>::with<bool>,
  /// From the node manager after every (re-)join: the gate and API address.
  caf::reacts_to<atoms::head_changed, gcs_gate_actor, std::string>,
  /// A working_dir URI → a local directory, or a code URI
  /// ("code://<sha256>/<name>") → a local executable file. Errors:
  /// errc::not_found, errc::invalid_argument (corrupt, unpack failure).
  caf::replies_to<atoms::prepare, std::string>::with<std::string>>;

/// One job supervisor per job, on the node running its entrypoint.
using job_supervisor_actor = caf::typed_actor<
  /// Stop the job: SIGTERM to all its processes, SIGKILL after grace_ms.
  caf::reacts_to<atoms::job_stop, int64_t>,
  caf::reacts_to<atoms::head_changed, gcs_gate_actor, std::string>,
  /// From the process watcher: (kind, pid, exit code, signal, message).
  caf::reacts_to<atoms::proc_event, uint8_t, int32_t, int32_t, int32_t, std::string>,
  /// Internal: ship new log bytes to the head.
  caf::reacts_to<atoms::ship>,
  /// Internal: retry what the head did not acknowledge.
  caf::reacts_to<atoms::tick>>;

} // namespace rayd
