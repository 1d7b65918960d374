#pragma once
// Message interface of a job supervisor (one per job, on the node running
// its entrypoint).

#include <cstdint>
#include <string>

#include <caf/replies_to.hpp>
#include <caf/typed_actor.hpp>

#include "actors/gcs/gate_actor.hpp"
#include "actors/types.hpp"

namespace rayd {

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
