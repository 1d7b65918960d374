#pragma once
// Message interface of the job manager (head).
//
//   API gateway ──► job_manager ──► job table (RocksDB)
//                        │  └────► job_log_actor: log_open / log_close / log_drop
//                        └─ job_start/job_stop ─► node manager of the chosen node
//
// A job's log is read at the log store (job_log_actor.hpp: job_logs), not
// here: the long polls of followers belong with the bytes they wait for.

#include <cstdint>
#include <string>
#include <vector>

#include <caf/replies_to.hpp>
#include <caf/typed_actor.hpp>

#include "actors/autoscale_types.hpp"
#include "actors/job_types.hpp"
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
  /// From a supervisor (through the gate) → whether the job should go on.
  caf::replies_to<atoms::job_report, job_report>::with<bool>,
  /// For the autoscaler: the entrypoint shapes of queued jobs (kind "job")
  /// and the placed, unfinished jobs on each node.
  caf::replies_to<atoms::demand>::with<demand_report>,
  /// From the autoscaler: node types it may still launch; a job whose
  /// entrypoint fits one waits for it instead of failing as infeasible.
  caf::reacts_to<atoms::set_launchable, std::vector<launchable_type>>,
  /// Node events (subscribed at the node actor).
  caf::reacts_to<atoms::node_event, node_info>,
  /// Internal: timeouts (pending, waits, re-attach) and retention.
  caf::reacts_to<atoms::tick>,
  /// Internal: commit staged changes, then run what waited for them
  /// (group commit).
  caf::reacts_to<atoms::flush>>;

} // namespace rayd
