#pragma once
// Message interface of the job log store (head), backed by gcs::log_table.
//
//   supervisors ─ log_append (through the gate) ─► job_log_actor ◄─ job_logs ─ API
//                                                        ▲
//   job manager ─ log_open / log_close / log_drop ───────┘

#include <cstdint>
#include <string>

#include <caf/replies_to.hpp>
#include <caf/typed_actor.hpp>

#include "actors/job_types.hpp"
#include "actors/types.hpp"

namespace rayd {

/// The job log store (head): appends from supervisors, reads and follows
/// (long polls) from the API. Appends are group-committed: a reply means the
/// bytes are durable, and readers only ever see durable bytes. It knows which
/// jobs exist from the job manager, which tells it once each change is
/// durable. Errors: errc::not_found (a job it was not told of),
/// errc::storage_error.
using job_log_actor = caf::typed_actor<
  /// (id, offset, bytes) → length held afterwards (durable).
  caf::replies_to<atoms::log_append, std::string, uint64_t, std::string>::with<uint64_t>,
  /// (id, offset, max bytes, wait_ms) → a log slice; waits up to wait_ms for
  /// bytes past `offset` unless the job has ended (then `closed` says so).
  caf::replies_to<atoms::job_logs, std::string, uint64_t, uint64_t, int64_t>::with<log_slice>,
  /// From the job manager: the job exists (admitted, or found at start).
  caf::reacts_to<atoms::log_open, std::string>,
  /// From the job manager: the job exists and has ended; parked readers get
  /// their final answer.
  caf::reacts_to<atoms::log_close, std::string>,
  /// From the job manager: the job was deleted; its log goes too.
  caf::reacts_to<atoms::log_drop, std::string>,
  /// Internal: commit the staged appends (group commit).
  caf::reacts_to<atoms::flush>,
  /// Internal: answer the reads whose wait ran out.
  caf::reacts_to<atoms::tick>>;

} // namespace rayd
