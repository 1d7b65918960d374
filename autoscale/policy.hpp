#pragma once
// The autoscaler's decision: one round's view of the cluster (a snapshot) and
// the cluster config in, launches and terminations out, with the reason every
// pending demand waits and every idle node stays. A pure function: no I/O, no
// clock, no randomness — the same snapshot and config give the same decision,
// so the rules are unit-tested without processes (tests/unit/
// autoscale_policy_test.cpp) and the autoscaler's actor only gathers the
// snapshot and applies the decision. The rules, the scoring and every reason
// string are documented in docs/autoscaler.md ("The scaling policy").
//
// Thread rules: none; `decide` reads its arguments and returns a value.
// Side effects (a launch, a drain) are never assumed: the caller observes
// them in the next round's snapshot (pending nodes, provider instances,
// failures).

#include <chrono>
#include <cstdint>
#include <map>
#include <string>
#include <vector>

#include "autoscale/autoscaling_config.hpp"
#include "common/resources.hpp"

namespace rayd::autoscale {

using duration = std::chrono::milliseconds;

// -- the snapshot ------------------------------------------------------------

/// Where a node is in its life, as the policy sees it:
///
///   (launched) ──► pending ──ALIVE──► running ──drain──► draining ──► (gone)
///                                        ▲                  │
///                                        └──drain refused───┘
enum class node_state {
  running,  // registered and ALIVE: its `available` can take work now
  pending,  // launched, not yet ALIVE: will offer its `total` when it is
  draining, // being drained for termination: takes no new work
};

struct node_view {
  std::string id;
  std::string type; // a key of autoscaling_config::node_types ("" if unknown)
  bool is_head = false;
  node_state state = node_state::running;
  resource_map total;
  resource_map available;
  label_map labels;
  /// How long the node has had nothing to do (0 while busy).
  duration idle_for{0};
  bool has_running_work = false;  // tasks running or leased
  bool has_actors = false;        // live actors placed here
  bool holds_needed_objects = false; // objects other nodes still reference
  /// The node refused its last drain (work arrived); the caller sets this
  /// for the round after a refusal, so the node is not drained again at once.
  bool drain_refused = false;
};

enum class demand_kind { task, actor, job };

/// `count` units of one shape waiting to be placed.
struct demand {
  resource_map shape;
  label_map selector; // node labels the demand requires (every key equal)
  int64_t count = 1;
  demand_kind kind = demand_kind::task;
};

struct launch_failure {
  duration at{0}; // same clock as snapshot::now
  std::string error;
};

/// What the provider reports for one node type.
struct provider_type_view {
  /// Instances the provider lists for this type and has not terminated,
  /// including ones requested but not yet visible in `snapshot::nodes`; the
  /// policy counts max(this, the type's worker nodes) against max_workers,
  /// and treats the surplus as pending nodes (so a launch is never repeated
  /// because its node has not registered yet).
  int32_t instances = 0;
  /// Failed launches since the type's last successful one (the caller
  /// clears the list on a success), any order.
  std::vector<launch_failure> failures;
};

struct snapshot {
  std::vector<node_view> nodes;
  std::vector<demand> demands;
  /// Explicit requests (`rayctl request-resources`, Ray's
  /// request_resources): bundles the cluster must be able to hold at once,
  /// whatever runs now. Empty = no request.
  std::vector<resource_map> requests;
  /// Keyed by node type name.
  std::map<std::string, provider_type_view> provider;
  duration now{0};
};

/// Knobs that are not in the cluster config; every field states its default.
struct policy_options {
  /// Back-off after the k-th consecutive failed launch of a type:
  /// min(backoff_max, backoff_base × 2^(k-1)), counted from the last failure.
  duration backoff_base = std::chrono::seconds{5};
  duration backoff_max = std::chrono::minutes{5};
  /// Failures older than this (relative to now) are ignored.
  duration failure_window = std::chrono::minutes{30};
};

// -- the decision ------------------------------------------------------------

enum class launch_cause { min_workers, request, demand };

/// What one launched group of nodes is for.
struct launch_purpose {
  launch_cause cause = launch_cause::demand;
  /// Index into snapshot::demands (cause demand) or snapshot::requests
  /// (cause request: the first of the equal bundles it stands for); -1 for
  /// min_workers.
  int64_t index = -1;
  /// Demand units / request bundles these nodes will hold (min_workers:
  /// the nodes launched for it).
  int64_t units = 0;
};

struct launch {
  std::string type;
  int32_t count = 0;
  std::vector<launch_purpose> purposes;
  /// "3 for min_workers 3 (has 0); request {CPU: 2.0} × 3; 1000 of 1000
  /// {CPU: 1.0} tasks"
  std::string reason;
};

enum class termination_cause { idle, over_max_workers };

struct termination {
  std::string node_id;
  std::string type;
  termination_cause cause = termination_cause::idle;
  duration idle_for{0};
  std::string reason; // "idle 62 s > 60 s"
};

/// Why (part of) a pending demand waits.
enum class wait_reason {
  fits_existing,     // fits a running node's available resources now
  fits_pending,      // will fit a node already launched, not yet ALIVE
  launching,         // this round launches nodes of `node_type` for it
  waits_for_busy,    // fits an existing node's total, no launch possible
  infeasible,        // no node type and no node can ever hold it
  throttled,         // upscaling_speed's launch budget is spent this round
  type_max_workers,  // the types that fit are at their max_workers
  cluster_max_workers, // the cluster's max_workers is reached
  backing_off,       // the types that fit failed their recent launches
};

/// Why one node type cannot take a demand (infeasible demands list every
/// type checked).
struct type_check {
  std::string type;
  /// Resources the type lacks: name → amount needed beyond what it offers.
  resource_map missing;
  /// Selector keys the type's labels do not satisfy.
  std::vector<std::string> label_mismatch;
};

struct wait_part {
  wait_reason reason = wait_reason::fits_existing;
  int64_t units = 0;
  std::string node_type; // launching / type_max_workers / backing_off
  int32_t nodes = 0;     // launching: nodes of node_type it lands on
  std::vector<type_check> checked; // infeasible
  duration retry_in{0};            // backing_off
  std::string text;
};

struct demand_status {
  int64_t index = 0; // into snapshot::demands
  std::vector<wait_part> parts; // units of all parts add up to the count
  std::string reason; // the parts' texts joined, prefixed by the demand
};

enum class keep_reason {
  head,
  idle_below_timeout,
  min_workers,
  running_work,
  holds_actors,
  holds_objects,
  drain_refused,
  requested,     // an explicit request is packed onto it
  demand_fits,   // pending demand was placed on it this round
  type_launching, // its type is launched this round (no terminate+launch loop)
  not_managed,   // its type is not in the config: not the autoscaler's node
};

struct kept_node {
  std::string node_id;
  std::string type;
  keep_reason reason = keep_reason::idle_below_timeout;
  duration idle_for{0};
  std::string text;
};

struct type_backoff {
  std::string type;
  int32_t failures = 0;
  duration retry_in{0};
  std::string last_error;
  std::string text;
};

struct decision {
  std::vector<launch> launches;        // by type name, each type once
  std::vector<termination> terminations;
  std::vector<demand_status> demands;  // one per snapshot::demands entry
  /// Every idle running worker not terminated, and the head once it is
  /// idle past the timeout.
  std::vector<kept_node> kept;
  std::vector<type_backoff> backoffs;  // every type backing off now
  /// Request bundles that neither fit the nodes there are nor get a node
  /// this round, with why (text: "request {GPU: 1.0} × 2: infeasible: ...").
  std::vector<wait_part> unmet_requests;
  /// Launches this round may make at most (upscaling_speed's rule).
  int32_t launch_budget = 0;

  int32_t launches_of(const std::string& type) const;
  int32_t total_launches() const;
};

/// The round's decision. Deterministic: equal inputs give equal outputs,
/// whatever the order of equal-scored candidates (ties break by name/id).
decision decide(const snapshot& snap, const autoscaling_config& config,
                const policy_options& options = {});

const char* to_string(wait_reason x);
const char* to_string(keep_reason x);
const char* to_string(launch_cause x);
const char* to_string(termination_cause x);
const char* to_string(demand_kind x);

/// "62 s", "1.5 s", "0.2 s": durations the way the reason strings print them.
std::string format_duration(duration d);

} // namespace rayd::autoscale
