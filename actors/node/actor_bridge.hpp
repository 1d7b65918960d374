#pragma once
// The node's bridge between CAF and the task server for user actors
// (docs/actors.md): the node manager delegates actor_host / actor_unhost
// here; the bridge calls the task server (which answers on its own loop
// thread) and delivers the answer to the head from inside this actor, so no
// response promise is touched from a foreign thread. It also forwards what
// the task server reports — a worker process hosting actors ended
// (actor_exited), a job's driver is gone (job_gone) — to the head's gate
// with the cluster token; reports made while the head is unreachable wait
// for the next join (head_changed).
//
// The node manager delegates the autoscaler's `drain` here too: the same
// kind of question to the task server, answered on its loop thread.
//
// Threads: a CAF actor; the task server's callbacks only send to it.

#include <cstdint>
#include <functional>
#include <string>

#include <caf/atom.hpp>
#include <caf/expected.hpp>
#include <caf/fwd.hpp>
#include <caf/replies_to.hpp>
#include <caf/typed_actor.hpp>

#include "actors/actor_types.hpp"
#include "actors/autoscale_types.hpp"
#include "actors/gcs/gate_actor.hpp"

namespace rayd::node {

namespace bridge_atoms {
using host_done = caf::atom_constant<caf::atom("r_ahdone")>;
using unhost_done = caf::atom_constant<caf::atom("r_audone")>;
using drain_done = caf::atom_constant<caf::atom("r_drdone")>;
} // namespace bridge_atoms

using actor_bridge_actor = caf::typed_actor<
  /// As node_manager_actor's (delegated by the node manager).
  caf::replies_to<atoms::actor_host, actor_launch>::with<actor_hosted>,
  caf::replies_to<atoms::actor_unhost, std::string>::with<bool>,
  caf::replies_to<atoms::drain, bool>::with<bool>,
  /// After every (re-)join: the gate to report to, the head's API address;
  /// a null gate when the head was lost (reports wait for the next join).
  caf::reacts_to<atoms::head_changed, gcs_gate_actor, std::string>,
  /// From the task server: (actor_id, pid, cause) / (job_id).
  caf::reacts_to<atoms::actor_exited, std::string, int32_t, std::string>,
  caf::reacts_to<atoms::job_gone, std::string>,
  /// Internal: the task server's answers (request number, outcome).
  caf::reacts_to<bridge_atoms::host_done, uint64_t, actor_hosted, caf::error>,
  caf::reacts_to<bridge_atoms::unhost_done, uint64_t, bool>,
  caf::reacts_to<bridge_atoms::drain_done, uint64_t, bool>>;

struct actor_bridge_config {
  std::string node_id; // REQUIRED
  std::string token;   // REQUIRED: presented to the gate
  /// The task server's host_actor / unhost_actor (thread-safe, answer later
  /// on another thread). REQUIRED.
  std::function<void(actor_launch, std::function<void(caf::expected<actor_hosted>)>)> host;
  std::function<void(std::string, std::function<void(bool)>)> unhost;
  /// The task server's drain (same threading). Unset: drains are refused.
  std::function<void(bool, std::function<void(bool)>)> drain;
  /// Told the head's API address after every join (optional).
  std::function<void(std::string)> on_api_address;
};

actor_bridge_actor spawn_actor_bridge(caf::actor_system& sys, actor_bridge_config cfg);

} // namespace rayd::node
