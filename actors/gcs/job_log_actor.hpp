#pragma once
// Message interface of the job log store (head), backed by gcs::log_table.

#include <cstdint>
#include <string>

#include <caf/replies_to.hpp>
#include <caf/typed_actor.hpp>

#include "actors/job_types.hpp"
#include "actors/types.hpp"

namespace rayd {

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

} // namespace rayd
