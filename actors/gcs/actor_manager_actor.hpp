#pragma once
// Message interface of the GCS actor manager (docs/actors.md): creates,
// places, restarts and kills user actors, and answers where they are.
// Callers include this header only.

#include <string>
#include <vector>

#include <caf/replies_to.hpp>
#include <caf/typed_actor.hpp>

#include "actors/actor_types.hpp"
#include "actors/autoscale_types.hpp"

namespace rayd {

using actor_manager_actor = caf::typed_actor<
  /// Creates actors (a batch; one durable commit for all of it). Replies
  /// once each row is durably PENDING_CREATION, in request order; a create
  /// that fails has only `error` set (a duplicate name without
  /// get_if_exists, an unknown namespace syntax, ...). With get_if_exists,
  /// the reply is the live actor of that name (same actor_id for every
  /// racing creator).
  caf::replies_to<atoms::actor_create, std::vector<actor_create_request>>::with<
    std::vector<actor_info>>,
  /// The rows of `ids` once each is ALIVE or DEAD, or as they are after
  /// `timeout_ms` (capped at 10 s). An unknown id comes back DEAD with
  /// death_cause "no such actor".
  caf::replies_to<atoms::actor_wait, std::vector<std::string>, uint32_t>::with<
    std::vector<actor_info>>,
  /// The actor named `name` in namespace `ns` ("" = "default") that is not
  /// DEAD. Errors: errc::not_found.
  caf::replies_to<atoms::actor_get, std::string, std::string>::with<actor_info>,
  /// Every row (DEAD ones too, bounded by the table's retention).
  caf::replies_to<atoms::actor_list>::with<std::vector<actor_info>>,
  /// Kills an actor by id, or by name in namespace `ns`; `no_restart`
  /// false restarts it while restarts remain. `by` names the killer for the
  /// death cause. Errors: errc::not_found.
  caf::replies_to<atoms::actor_kill, std::string, std::string, bool, std::string>::with<
    actor_info>,
  /// From a node: the worker process hosting actor `actor_id` (pid) ended;
  /// `cause` says how ("process 123 killed by signal 9").
  caf::reacts_to<atoms::actor_exited, std::string, std::string, int32_t, std::string>,
  /// From a node: job `job_id`'s driver is gone (its connections closed and
  /// stayed closed): its non-detached actors die.
  caf::reacts_to<atoms::job_gone, std::string>,
  /// For the autoscaler: the shapes of actors waiting for a node (kind
  /// "actor"), and the live actors on each node.
  caf::replies_to<atoms::demand>::with<demand_report>>;

} // namespace rayd
