#pragma once
// Message interface of the job agent (every node).
//
//   node manager ──► job_agent ──► job_supervisor (one per job) ──► rayd-job-shim
//   job_supervisor ──report / log bytes / package fetch (token)──► gate ──► head
//
// Supervisors reach the head only through the gate, with the cluster token,
// like node managers; after a head restart their node manager hands them the
// new gate and they re-send their state.

#include <cstdint>
#include <string>

#include <caf/replies_to.hpp>
#include <caf/typed_actor.hpp>

#include "actors/gcs/gate_actor.hpp"
#include "actors/job_types.hpp"
#include "actors/types.hpp"

namespace rayd {

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

} // namespace rayd
