#pragma once
// Message types of user actors (docs/actors.md) that cross process
// boundaries: driver → head (through the API gateway), head → node manager,
// node manager → head. Each has its `inspect` overload and is registered in
// register_message_types() (actors/registry.cpp).

#include <cstdint>
#include <string>
#include <vector>

#include <caf/atom.hpp>
#include <caf/meta/type_name.hpp>

#include "actors/types.hpp"
#include "common/resources.hpp"

namespace rayd {

namespace atoms {
using actor_create = caf::atom_constant<caf::atom("r_acreate")>;
using actor_wait = caf::atom_constant<caf::atom("r_await")>;
using actor_get = caf::atom_constant<caf::atom("r_aget")>;
using actor_list = caf::atom_constant<caf::atom("r_alist")>;
using actor_kill = caf::atom_constant<caf::atom("r_akill")>;
using actor_host = caf::atom_constant<caf::atom("r_ahost")>;
using actor_unhost = caf::atom_constant<caf::atom("r_aunhost")>;
using actor_exited = caf::atom_constant<caf::atom("r_aexit")>;
using job_gone = caf::atom_constant<caf::atom("r_jgone")>;
} // namespace atoms

/// One file of a job's code (wire::code_file as a CAF type).
struct code_file_ref {
  std::string hash;
  std::string name;
};

template <class Inspector>
typename Inspector::result_type inspect(Inspector& f, code_file_ref& x) {
  return f(caf::meta::type_name("rayd::code_file_ref"), x.hash, x.name);
}

/// What a creator asks of the GCS (rayd::actor<T>(...).remote()).
struct actor_create_request {
  /// Chosen by the creator (20 hex characters), so a create can be retried
  /// and calls can be queued before the GCS answers. A retry of a create
  /// the GCS has already recorded answers with that row.
  std::string actor_id;
  std::string name;          // "" = anonymous
  std::string ray_namespace; // "" = "default"
  std::string class_name;    // as registered by RAYD_ACTOR
  std::string owner_job;     // the creator's job id
  bool detached = false;
  bool get_if_exists = false;
  int32_t max_restarts = 0;     // -1 = unlimited
  int32_t max_task_retries = 0; // -1 = unlimited
  int32_t max_concurrency = 1;
  resource_map resources;       // default: none (an actor holds no CPU)
  label_map label_selector;
  /// msgpack bytes of each constructor argument (values only).
  std::vector<std::string> args;
  /// The creator's code: files[0] its executable, then task libraries.
  std::vector<code_file_ref> code;
};

template <class Inspector>
typename Inspector::result_type inspect(Inspector& f, actor_create_request& x) {
  return f(caf::meta::type_name("rayd::actor_create_request"), x.actor_id, x.name,
           x.ray_namespace, x.class_name, x.owner_job, x.detached, x.get_if_exists,
           x.max_restarts, x.max_task_retries, x.max_concurrency, x.resources,
           x.label_selector, x.args, x.code);
}

/// An actor's row as callers, rayctl and the API see it.
struct actor_info {
  std::string actor_id;
  std::string name;
  std::string ray_namespace;
  std::string class_name;
  std::string owner_job;
  /// PENDING_CREATION, ALIVE, RESTARTING, DEAD
  std::string state;
  std::string node_id;
  int32_t pid = 0;
  /// The node port of its node (host:port): callers ATTACH there to pid.
  std::string address;
  int32_t restarts = 0;
  int32_t max_restarts = 0;
  int32_t max_task_retries = 0;
  bool detached = false;
  std::string death_cause;
  int64_t create_time_ms = 0;
  int64_t end_time_ms = 0;
  /// Set only in replies to a batch create: why this one create failed
  /// ("" = it did not). Its other fields are then empty.
  std::string error;
};

template <class Inspector>
typename Inspector::result_type inspect(Inspector& f, actor_info& x) {
  return f(caf::meta::type_name("rayd::actor_info"), x.actor_id, x.name, x.ray_namespace,
           x.class_name, x.owner_job, x.state, x.node_id, x.pid, x.address, x.restarts,
           x.max_restarts, x.max_task_retries, x.detached, x.death_cause, x.create_time_ms,
           x.end_time_ms, x.error);
}

/// Head → node manager: host an actor here (reserve `resources`, start or
/// reuse the job's worker process, construct it there).
struct actor_launch {
  std::string actor_id;
  std::string job_id; // the owner job: its worker process hosts the actor
  std::string class_name;
  std::vector<std::string> args;
  std::vector<code_file_ref> code;
  resource_map resources;
  int32_t max_concurrency = 1;
};

template <class Inspector>
typename Inspector::result_type inspect(Inspector& f, actor_launch& x) {
  return f(caf::meta::type_name("rayd::actor_launch"), x.actor_id, x.job_id, x.class_name,
           x.args, x.code, x.resources, x.max_concurrency);
}

/// Node manager → head: how hosting went. `ok`: the constructor ran in
/// process `pid`. Else `constructor_failed` says the constructor threw
/// (error_type/what: the exception) as opposed to the node being unable to
/// host it (no room, no worker process: `error_message` says why).
struct actor_hosted {
  bool ok = false;
  int32_t pid = 0;
  bool constructor_failed = false;
  std::string error_type;
  std::string error_message;
};

template <class Inspector>
typename Inspector::result_type inspect(Inspector& f, actor_hosted& x) {
  return f(caf::meta::type_name("rayd::actor_hosted"), x.ok, x.pid, x.constructor_failed,
           x.error_type, x.error_message);
}

} // namespace rayd
