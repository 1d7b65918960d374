#pragma once
// The autoscaler's rounds without CAF (docs/autoscaler.md, "The autoscaler
// on the head"): one round turns what the head observed — the GCS's nodes
// with their load, the demand of actors and jobs, the provider's list — into
// instance-table changes and the side effects to make: creates, drains and
// terminations. The head's autoscaler actor (actors/gcs/autoscaler_actor.hpp)
// gathers the input, runs the provider calls on its worker thread and
// reports their outcome back here; this class never does I/O besides the
// instance table's commits, so a round is unit-tested with fake inputs.
//
// One round:
//   reconcile (provider list + GCS nodes → observed transitions)
//   → snapshot (idle times, demand, pending instances, failures)
//   → policy::decide → queue launches, mark terminations STOPPING
//   → commit → request the QUEUED rows (REQUESTED committed BEFORE the
//     create call: a head restart never launches twice)
//   → drain STOPPING rows whose node is alive, terminate the others.
// Side effects are observed in later rounds, never assumed: a create that
// returned is ALLOCATED only once the provider lists it, RAYD_RUNNING once
// its node is ALIVE, TERMINATED once the provider stops listing it.
//
// Labels: every launched node carries `rayd-node-type` and
// `rayd-instance-id`; that is how a GCS node is matched to its row.
//
// Not thread-safe: owned by the autoscaler actor.

#include <cstdint>
#include <map>
#include <optional>
#include <set>
#include <string>
#include <vector>

#include <caf/error.hpp>
#include <caf/expected.hpp>

#include "actors/autoscale_types.hpp"
#include "actors/types.hpp"
#include "autoscale/autoscaling_config.hpp"
#include "autoscale/instance_table.hpp"
#include "autoscale/node_provider.hpp"
#include "autoscale/policy.hpp"

namespace rayd::autoscale {

struct autoscaler_settings {
  std::string cluster_name = "default";
  std::string provider_type; // for the status ("processes", ...)
  autoscaling_config config;
  policy_options policy;
  /// The instance table's timeouts (reconcile_input's defaults).
  int64_t allocation_timeout_ms = 5 * 60 * 1000;
  int64_t start_timeout_ms = 10 * 60 * 1000;
  int64_t stop_timeout_ms = 5 * 60 * 1000;
  /// Pending demand keeps every node it fits busy for this long after it was
  /// last seen: a driver between two lease requests shows no demand for a
  /// moment, and an idle node it is about to use must not be terminated.
  int64_t demand_memory_ms = 2000;
  /// A node whose drain was refused is not drained again for this long.
  int64_t drain_refused_ms = 10 * 1000;
  /// TERMINATED and ALLOCATION_FAILED rows are forgotten this long after
  /// they ended (they show under "Recent failures" until then).
  int64_t forget_after_ms = 30 * 60 * 1000;
};

/// What the actor gathered for one round.
struct round_input {
  int64_t now_ms = 0;
  /// The GCS node table (alive and dead), with each node's last load.
  std::vector<node_info> nodes;
  /// Actors and jobs waiting for a node (tasks come from the nodes' load).
  std::vector<pending_demand> demands;
  /// Live actors and unfinished jobs per node id: such a node is busy.
  std::map<std::string, uint32_t> placed;
  /// The provider's list() of this round.
  caf::expected<std::vector<provider_instance>> provider{caf::error{}};
  /// Set when a GCS actor did not answer: the round decides nothing.
  caf::error gcs;
};

struct create_call {
  std::string instance_id;
  instance_spec spec;
};

struct drain_call {
  std::string instance_id;
  std::string node_id;
};

struct terminate_call {
  std::vector<std::string> provider_ids;
  /// Our rows behind them ("" entries for instances no row claims).
  std::vector<std::string> instance_ids;
};

/// The side effects a round (or an outcome) asks for, in this order.
struct round_actions {
  std::vector<create_call> creates;
  std::vector<drain_call> drains;
  std::vector<terminate_call> terminates;
};

class autoscaler {
public:
  autoscaler(persistence::store& db, autoscaler_settings settings);

  /// Reads the instance table and the explicit request (after a head
  /// restart: resumes from them).
  caf::error load();

  /// A new config (the file changed): takes effect from the next round.
  void set_config(autoscaling_config config);
  /// Why the last reload failed ("" when it did not); shown in the status.
  void set_config_error(std::string error);

  /// Explicit requests (`rayctl request-resources`): bundles the cluster
  /// must be able to hold at once; replaces the previous request; empty
  /// clears it. Durable (store table "autoscale_requests") when it returns;
  /// load() reads it back. Errors: invalid_argument (a negative amount,
  /// > 10,000 bundles), storage_error.
  caf::error set_requests(std::vector<resource_map> bundles);

  round_actions round(const round_input& in);

  /// A create call returned (err: it failed; the row is ALLOCATION_FAILED
  /// at once and the type backs off).
  void created(const std::string& instance_id, const caf::error& err, int64_t now_ms);
  /// A drain returned: accepted → the node is terminated; refused (or
  /// failed) → the row goes back to RAYD_RUNNING.
  round_actions drained(const drain_call& call, bool accepted, int64_t now_ms);
  /// A terminate call returned (err: TERMINATION_FAILED, retried later).
  void terminated(const terminate_call& call, const caf::error& err, int64_t now_ms);

  /// Node types the cluster may still launch (max_workers > 0).
  std::vector<launchable_type> launchable() const;

  /// The last round as JSON (docs/autoscaler.md, "Status"): instances,
  /// launches, terminations, every pending demand with why it waits, every
  /// idle node kept with why, failures and back-offs.
  std::string status_json() const;

  const instance_table& instances() const {
    return table_;
  }
  const decision& last_decision() const {
    return decision_;
  }

private:
  snapshot make_snapshot(const round_input& in);
  void apply(const instance_update& u, int64_t now_ms);
  void commit();
  void forget_old(int64_t now_ms);

  autoscaler_settings settings_;
  persistence::store& db_;
  instance_table table_;
  std::vector<resource_map> requests_;
  std::string config_error_;
  std::string provider_error_;
  std::string store_error_;
  std::string gcs_error_;
  /// Demand shapes (with their selector) and when each was last pending.
  std::map<std::pair<resource_map, label_map>, int64_t> recent_demand_;
  /// Per node id: when it was last busy (first seen counts as busy).
  std::map<std::string, int64_t> last_busy_;
  /// Per node id: until when a refused drain keeps it from another drain.
  std::map<std::string, int64_t> drain_refused_until_;
  /// Per node type: failed launches since its last success.
  std::map<std::string, std::vector<launch_failure>> failures_;
  /// Rows this process asked the provider to create (others in REQUESTED
  /// were asked by an earlier head process and are asked again).
  std::set<std::string> requested_here_;
  /// Rows with a drain or terminate call in flight.
  std::set<std::string> in_flight_;
  /// Provider ids of failed/terminated instances already told to terminate.
  std::set<std::string> forgotten_;
  std::vector<std::string> unknown_instances_;
  snapshot snapshot_;
  decision decision_;
  int64_t round_time_ms_ = 0;
  double decide_ms_ = 0;
  uint64_t rounds_ = 0;
  uint64_t next_id_ = 0;
};

} // namespace rayd::autoscale
