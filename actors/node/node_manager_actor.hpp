#pragma once
// Message interface of the node manager (one per node; Ray's raylet).
// Callers include this header only; the implementation is node_manager.hpp.

#include <string>

#include <caf/replies_to.hpp>
#include <caf/typed_actor.hpp>

#include "actors/actor_types.hpp"
#include "actors/autoscale_types.hpp"
#include "actors/job_types.hpp"
#include "actors/types.hpp"

namespace rayd {

using node_manager_actor = caf::typed_actor<
  /// Liveness probe; replies with the node_id.
  caf::replies_to<atoms::ping>::with<std::string>,
  /// Sent once by main() after the node's own port is open: sets this
  /// node's advertised address (host:port) and starts joining.
  caf::reacts_to<atoms::start, std::string>,
  /// Graceful stop: tells the GCS this node is leaving (so it is recorded as
  /// stopped, not as failed); replies once the GCS has recorded it.
  caf::replies_to<atoms::leave>::with<bool>,
  /// From the head's job manager: run a job's entrypoint here (handed to the
  /// node's job agent). Idempotent per submission id.
  caf::replies_to<atoms::job_start, job_launch>::with<bool>,
  /// From the head's job manager: stop a job (submission id, grace in ms);
  /// false if this node does not run it.
  caf::replies_to<atoms::job_stop, std::string, int64_t>::with<bool>,
  /// From the head's actor manager: host a user actor here (reserve its
  /// resources, start or reuse its job's worker process, run the
  /// constructor there). Replies when the constructor returned or failed.
  caf::replies_to<atoms::actor_host, actor_launch>::with<actor_hosted>,
  /// From the head's actor manager: destroy actor `actor_id` here (its
  /// resources are released; its process stays for its other actors);
  /// false if this node does not host it.
  caf::replies_to<atoms::actor_unhost, std::string>::with<bool>,
  /// From the head's autoscaler: drain this node before it is terminated
  /// (true: granted only when it is idle; false: take work again). Replies
  /// whether the node is now draining (true) / took the undrain (true).
  caf::replies_to<atoms::drain, bool>::with<bool>,
  /// Internal: report resources, demands and the object store to the GCS.
  caf::reacts_to<atoms::report>,
  /// Internal: (re)connect to the head and join. Sent by the actor itself.
  caf::reacts_to<atoms::connect>,
  /// Internal: exit if the head stayed unreachable past the deadline.
  caf::reacts_to<atoms::give_up>>;


} // namespace rayd
