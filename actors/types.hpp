#pragma once
// Message types and atoms shared by the actors of rayd. Everything that
// crosses a process boundary (node manager <-> GCS) is declared here with its
// `inspect` overload and registered under a fixed name in
// register_message_types() (actors/registry.cpp), called from each main().

#include <cstdint>
#include <string>
#include <vector>

#include <caf/atom.hpp>
#include <caf/meta/type_name.hpp>

#include "common/util.hpp"

namespace rayd {

namespace atoms {
using join = caf::atom_constant<caf::atom("r_join")>;
using nodes = caf::atom_constant<caf::atom("r_nodes")>;
using node_event = caf::atom_constant<caf::atom("r_nodeev")>;
using subscribe = caf::atom_constant<caf::atom("r_sub")>;
using expire = caf::atom_constant<caf::atom("r_expire")>;
using kv_put = caf::atom_constant<caf::atom("r_kvput")>;
using kv_get = caf::atom_constant<caf::atom("r_kvget")>;
using kv_del = caf::atom_constant<caf::atom("r_kvdel")>;
using kv_list = caf::atom_constant<caf::atom("r_kvlist")>;
using flush = caf::atom_constant<caf::atom("r_flush")>;
using ping = caf::atom_constant<caf::atom("r_ping")>;
using connect = caf::atom_constant<caf::atom("r_connect")>;
using give_up = caf::atom_constant<caf::atom("r_giveup")>;
using start = caf::atom_constant<caf::atom("r_start")>;
using leave = caf::atom_constant<caf::atom("r_leave")>;
using lookup = caf::atom_constant<caf::atom("r_lookup")>;
using tick = caf::atom_constant<caf::atom("r_tick")>;
using report = caf::atom_constant<caf::atom("r_report")>;
using task_report = caf::atom_constant<caf::atom("r_treport")>;
using task_list = caf::atom_constant<caf::atom("r_tlist")>;
// jobs
using job_submit = caf::atom_constant<caf::atom("r_jsubmit")>;
using job_get = caf::atom_constant<caf::atom("r_jget")>;
using job_list = caf::atom_constant<caf::atom("r_jlist")>;
using job_stop = caf::atom_constant<caf::atom("r_jstop")>;
using job_delete = caf::atom_constant<caf::atom("r_jdel")>;
using job_logs = caf::atom_constant<caf::atom("r_jlogs")>;
using job_report = caf::atom_constant<caf::atom("r_jreport")>;
using job_start = caf::atom_constant<caf::atom("r_jstart")>;
using head_changed = caf::atom_constant<caf::atom("r_head")>;
using prepare = caf::atom_constant<caf::atom("r_prepare")>;
using proc_event = caf::atom_constant<caf::atom("r_proc")>;
using ship = caf::atom_constant<caf::atom("r_ship")>;
using log_append = caf::atom_constant<caf::atom("r_lappend")>;
using log_open = caf::atom_constant<caf::atom("r_lopen")>;
using log_close = caf::atom_constant<caf::atom("r_lclose")>;
using log_drop = caf::atom_constant<caf::atom("r_ldrop")>;
// blobs
using blob_put = caf::atom_constant<caf::atom("r_bput")>;
using blob_size = caf::atom_constant<caf::atom("r_bsize")>;
using blob_read = caf::atom_constant<caf::atom("r_bread")>;
using blob_drop = caf::atom_constant<caf::atom("r_bdrop")>;
} // namespace atoms

/// Node lifecycle (see docs/architecture.md for the full diagram):
///
///            join (token ok, cluster ok)
///   (none) ───────────────────────────────► ALIVE ◄──┐
///                                             │      │ re-join (same node_id)
///             connection closed / no heartbeat│      │
///             / not back after head restart   ▼      │
///                                            DEAD ───┘
enum class node_state : uint8_t { alive = 0, dead = 1 };

inline const char* to_string(node_state x) {
  return x == node_state::alive ? "ALIVE" : "DEAD";
}

/// A resource shape and how many lease requests wait for it.
struct resource_demand {
  resource_map shape;
  uint64_t count = 0;
};

template <class Inspector>
typename Inspector::result_type inspect(Inspector& f, resource_demand& x) {
  return f(caf::meta::type_name("rayd::resource_demand"), x.shape, x.count);
}

/// What a node is doing, from its periodic report (soft state: never
/// persisted, refreshed every few hundred milliseconds).
struct node_load {
  /// Lease shapes waiting for resources, and how many of each.
  std::vector<resource_demand> demands;
  uint64_t object_store_used = 0;
  uint64_t object_store_spilled = 0;
  uint64_t object_store_capacity = 0;
  uint64_t object_count = 0;
  uint32_t leases = 0;
  uint32_t workers = 0;
};

bool operator==(const node_load& a, const node_load& b);

template <class Inspector>
typename Inspector::result_type inspect(Inspector& f, node_load& x) {
  return f(caf::meta::type_name("rayd::node_load"), x.demands, x.object_store_used,
           x.object_store_spilled, x.object_store_capacity, x.object_count, x.leases,
           x.workers);
}

/// One row of the GCS node table.
struct node_info {
  std::string node_id;
  std::string name;
  std::string address; // host:port of the node manager's own port
  bool is_head = false;
  int32_t pid = 0;
  resource_map resources_total;
  resource_map resources_available;
  label_map labels;
  uint8_t state = static_cast<uint8_t>(node_state::alive);
  std::string death_reason;
  int64_t start_time_ms = 0;
  int64_t death_time_ms = 0;
  /// The daemon's open-file soft limit after raising it at start (not
  /// persisted; re-sent with every join).
  int64_t open_files_limit = 0;
  /// From the node's last report (not persisted).
  node_load load;

  node_state get_state() const { return static_cast<node_state>(state); }
};

template <class Inspector>
typename Inspector::result_type inspect(Inspector& f, node_info& x) {
  return f(caf::meta::type_name("rayd::node_info"), x.node_id, x.name,
           x.address, x.is_head, x.pid, x.resources_total,
           x.resources_available, x.labels, x.state, x.death_reason,
           x.start_time_ms, x.death_time_ms, x.open_files_limit, x.load);
}

/// The cluster's demand: the same shape waiting on several alive nodes adds up.
std::vector<resource_demand> cluster_demands(const std::vector<node_info>& nodes);

/// What a node manager reports every few hundred milliseconds.
struct node_report {
  std::string node_id;
  resource_map available;
  node_load load;
};

template <class Inspector>
typename Inspector::result_type inspect(Inspector& f, node_report& x) {
  return f(caf::meta::type_name("rayd::node_report"), x.node_id, x.available, x.load);
}

/// The latest state of one task, as its driver reported it.
struct task_event {
  std::string task_id;
  std::string function;
  std::string state; // PENDING, RUNNING, FINISHED, FAILED
  std::string node_id;
  uint32_t attempt = 0;
  std::string error;
  int64_t update_time_ms = 0;
  std::string job_id;
};

template <class Inspector>
typename Inspector::result_type inspect(Inspector& f, task_event& x) {
  return f(caf::meta::type_name("rayd::task_event"), x.task_id, x.function,
           x.state, x.node_id, x.attempt, x.error, x.update_time_ms, x.job_id);
}

struct task_counts {
  uint64_t pending = 0;
  uint64_t running = 0;
  uint64_t finished = 0;
  uint64_t failed = 0;
};

template <class Inspector>
typename Inspector::result_type inspect(Inspector& f, task_counts& x) {
  return f(caf::meta::type_name("rayd::task_counts"), x.pending, x.running,
           x.finished, x.failed);
}

struct task_list_reply {
  std::vector<task_event> tasks;
  task_counts counts;
};

template <class Inspector>
typename Inspector::result_type inspect(Inspector& f, task_list_reply& x) {
  return f(caf::meta::type_name("rayd::task_list_reply"), x.tasks, x.counts);
}

/// A node as another node sees it for spillback.
struct peer_view {
  std::string node_id;
  std::string address;
  bool alive = true;
  resource_map total;
  resource_map available;
  label_map labels;
  /// Not a node: a node type the autoscaler may still launch (node_id is
  /// "type:<name>", `total` what one node of it offers). It only makes a
  /// shape feasible — the request waits for the node instead of failing.
  bool launchable = false;
};

template <class Inspector>
typename Inspector::result_type inspect(Inspector& f, peer_view& x) {
  return f(caf::meta::type_name("rayd::peer_view"), x.node_id, x.address,
           x.alive, x.total, x.available, x.labels, x.launchable);
}

/// What a node manager presents to join (or re-join) the cluster.
struct join_request {
  std::string token;
  /// The cluster this node belonged to before; empty on its first join.
  std::string cluster_id;
  node_info node;
};

template <class Inspector>
typename Inspector::result_type inspect(Inspector& f, join_request& x) {
  return f(caf::meta::type_name("rayd::join_request"), x.token, x.cluster_id,
           x.node);
}

struct join_reply {
  std::string cluster_id;
  uint64_t epoch = 0;
  std::string api_address;
};

template <class Inspector>
typename Inspector::result_type inspect(Inspector& f, join_reply& x) {
  return f(caf::meta::type_name("rayd::join_reply"), x.cluster_id, x.epoch,
           x.api_address);
}

/// A snapshot of the cluster for status displays.
struct cluster_view {
  std::string cluster_id;
  uint64_t epoch = 0;
  std::vector<node_info> nodes;
};

template <class Inspector>
typename Inspector::result_type inspect(Inspector& f, cluster_view& x) {
  return f(caf::meta::type_name("rayd::cluster_view"), x.cluster_id, x.epoch,
           x.nodes);
}

} // namespace rayd
