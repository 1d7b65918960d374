#pragma once
// The autoscaler's instance table (docs/autoscaler.md): one row per instance
// the autoscaler decided to have, from the decision to the provider's "gone".
// Rows are persisted as JSON in the store's "autoscale_instances" table, keyed
// by our instance id (a persistence::cached_table), so a restarted head
// resumes from them. States follow Ray autoscaler v2's instance manager:
//
//   queue()
//      │
//      ▼
//   QUEUED ──launcher committed the request──► REQUESTED ──not listed in time,──► ALLOCATION_FAILED
//      │                                          │        or listed terminated        │
//      │ cancelled                                │ listed by the provider             │ listed after all
//      │                                          ▼                                    ▼
//      │                                      ALLOCATED ──no node joined in time──► START_FAILED /
//      │                                          │                                 RAYD_INSTALL_FAILED
//      │                                          │ its node is ALIVE                  │ terminate it
//      │                                          ▼                                    │
//      │                                     RAYD_RUNNING ◄── drain refused ──┐        │
//      │                                          │ drain / terminate /       │        │
//      │                                          │ its node died             │        │
//      │                                          ▼                           │        │
//      │                                       STOPPING ──────────────────────┘ ◄──────┘
//      │                                       │   │   ▲
//      │                                       │   │   │ retried after a back-off
//      │                            terminated │   ▼   │
//      │                                       │  TERMINATION_FAILED (terminate() failed,
//      │                                       │   │                  or still listed after the stop timeout)
//      ▼                                       ▼   │ terminated
//   TERMINATED ◄───────────────────────────────────┘
//        ▲
//        └── also from ALLOCATED, START_FAILED, RAYD_INSTALL_FAILED and RAYD_RUNNING
//            when the provider lists the instance gone (and from REQUESTED, QUEUED by hand)
//
// Exactly (transition_allowed() is the rule; X → X is never legal):
//   QUEUED             → REQUESTED, TERMINATED
//   REQUESTED          → ALLOCATED, ALLOCATION_FAILED, TERMINATED
//   ALLOCATED          → RAYD_RUNNING, RAYD_INSTALL_FAILED, START_FAILED,
//                        STOPPING, TERMINATED
//   RAYD_RUNNING       → STOPPING, TERMINATED
//   STOPPING           → RAYD_RUNNING (drain refused), TERMINATED,
//                        TERMINATION_FAILED
//   TERMINATION_FAILED → STOPPING (retried), TERMINATED
//   RAYD_INSTALL_FAILED, START_FAILED → STOPPING, TERMINATED
//   ALLOCATION_FAILED  → STOPPING (the provider allocated it after all)
//   TERMINATED         → nothing (final)
//
// Every change increments the row's version and appends (time, from, to,
// reason) to its history, which keeps the last history_limit entries. A
// change may carry the version its caller read (optimistic concurrency): a
// row that moved on meanwhile refuses it.
//
// "Side effects are observed in the next round, never assumed": a provider
// call or a drain changes no row by itself. reconcile() compares the rows with
// what the provider lists and which nodes the GCS has, and says which
// transitions those observations justify; the caller applies them (an update
// refused for its version is skipped: the next round recomputes it). The
// caller makes the changes no observation shows: QUEUED → REQUESTED (the
// launch), → STOPPING (scale-down, after which it drains and terminates),
// STOPPING → RAYD_RUNNING (drain refused), → RAYD_INSTALL_FAILED (setup
// failed), STOPPING → TERMINATION_FAILED (terminate() returned an error).
//
// No double launches (a head restart resumes from the table): the launcher
// only ever creates instances for rows to_request() names, and it COMMITS a
// row's QUEUED → REQUESTED (with the launch request id it will tag the
// instances with) BEFORE it calls the provider. A row that is REQUESTED is
// never requested again, whatever happened to the head since: it becomes
// ALLOCATED when the provider lists it, or ALLOCATION_FAILED after the
// timeout (and the policy queues a new row). A QUEUED row the provider
// already lists (an instance tagged with its id) is not requested either:
// reconcile() moves it to REQUESTED with the tag's launch request id.
//
// One round: load() once after a (re)start; then per round reconcile() →
// apply() each update → commit() → to_request() → for each: apply()
// REQUESTED, commit(), provider create with the tags.
//
// Group commit: changes are staged in memory; commit() writes them in one
// durable batch. A failed commit discards what was staged
// (persistence/table.hpp): the rows are as the last successful commit left
// them. Not thread-safe: owned by one actor (the autoscaler's).

#include <cstddef>
#include <cstdint>
#include <optional>
#include <string>
#include <vector>

#include <caf/error.hpp>
#include <caf/expected.hpp>

#include "persistence/store.hpp"
#include "persistence/table.hpp"

namespace rayd::autoscale {

enum class instance_state : uint8_t {
  queued,              // decided (policy), not yet asked of the provider
  requested,           // the provider was (or is being) asked to create it
  allocated,           // the provider lists it; its rayd node has not joined
  rayd_running,        // its rayd node joined the cluster
  stopping,            // being drained or terminated
  terminated,          // gone at the provider (final)
  allocation_failed,   // the provider failed it or never listed it in time
  rayd_install_failed, // allocated, but its setup commands failed (the
                       // launcher says so: reconcile() cannot observe it)
  start_failed,        // allocated, but no rayd node joined in time
  termination_failed,  // terminate() failed or did not take effect in time
};

/// "QUEUED", "RAYD_RUNNING", ... (as shown to users and stored in rows).
std::string to_string(instance_state s);

/// The state named `name` (as to_string() writes it), nullopt if none.
std::optional<instance_state> instance_state_from_string(const std::string& name);

/// Whether `from` → `to` is a legal transition (the list above).
bool transition_allowed(instance_state from, instance_state to);

/// The store table that holds the rows.
inline constexpr const char* instance_table_name = "autoscale_instances";

/// One entry of a row's history.
struct instance_transition {
  int64_t time_ms = 0;
  instance_state from = instance_state::queued;
  instance_state to = instance_state::queued;
  std::string reason;
};

struct instance_row {
  /// Ours: the provider tags the instance with it; the rayd node carries it.
  std::string instance_id;
  std::string node_type;
  /// Set on QUEUED → REQUESTED; the provider tags the instance with it.
  std::string launch_request_id;
  /// The provider's id, once it listed the instance (ALLOCATED).
  std::string provider_instance_id;
  /// The rayd node's id, once it joined (RAYD_RUNNING).
  std::string node_id;
  instance_state state = instance_state::queued;
  /// 1 when queued, +1 on every change.
  int64_t version = 0;
  /// Oldest first, at most instance_table::history_limit entries; the first
  /// entry (QUEUED → QUEUED) is the queueing.
  std::vector<instance_transition> history;
  /// Why it is in a failure state ("" otherwise).
  std::string error;
  int64_t create_time_ms = 0;
  /// When it entered its current state (the timeouts count from here).
  int64_t state_time_ms = 0;
};

/// One transition to apply: what reconcile() produces and what callers (the
/// launcher, the drain logic) pass to apply().
struct instance_update {
  std::string instance_id;
  instance_state to = instance_state::queued;
  /// Why (REQUIRED, non-empty): kept in the history, shown by `rayctl status`.
  std::string reason;
  /// The version the caller read; apply() refuses the update when the row
  /// moved on. nullopt: no check.
  std::optional<int64_t> expected_version;
  /// Set with the transitions that learn them ("" keeps the row's):
  /// REQUESTED needs a launch request id, ALLOCATED a provider instance id,
  /// RAYD_RUNNING a node id (each unless the row has one already).
  std::string launch_request_id;
  std::string provider_instance_id;
  std::string node_id;
};

/// One instance as the provider's list() reports it.
struct listed_instance {
  std::string provider_instance_id;
  /// The tags the launcher set ("" if the instance has none: not ours).
  std::string instance_id;
  std::string launch_request_id;
  /// The provider says it is terminated (a provider may also just not list
  /// it: both mean gone).
  bool terminated = false;
};

/// One node as the GCS knows it (alive or dead), with the instance id it
/// carries as a label ("" for nodes the autoscaler did not launch).
struct observed_node {
  std::string node_id;
  std::string instance_id;
  bool alive = false;
};

struct reconcile_input {
  /// The provider's whole list() for this cluster: an instance it does not
  /// list is gone.
  std::vector<listed_instance> provider;
  std::vector<observed_node> nodes;
  int64_t now_ms = 0;
  /// REQUESTED this long and not listed → ALLOCATION_FAILED. Default 5 min.
  int64_t allocation_timeout_ms = 5 * 60 * 1000;
  /// ALLOCATED this long and no node joined → START_FAILED. Default 10 min.
  int64_t start_timeout_ms = 10 * 60 * 1000;
  /// STOPPING this long and still listed → TERMINATION_FAILED. Default 5 min.
  int64_t stop_timeout_ms = 5 * 60 * 1000;
  /// TERMINATION_FAILED this long and still listed → STOPPING again (the
  /// termination is retried). Doubles with every earlier TERMINATION_FAILED
  /// in the row's history, at most 16 times this. Default 10 s.
  int64_t termination_retry_ms = 10 * 1000;
};

struct reconcile_result {
  /// The transitions the observations justify, each carrying the version it
  /// was computed from, at most one per row, in instance id order.
  std::vector<instance_update> updates;
  /// Provider ids of listed, non-terminated instances that no row claims
  /// (untagged ones excluded): leaks for the caller to report or terminate.
  std::vector<std::string> unknown_provider_instances;
};

class instance_table {
public:
  /// Entries of history kept per row.
  static constexpr std::size_t history_limit = 32;

  explicit instance_table(persistence::store& db);

  /// Reads every row (replacing what is in memory, dropping staged changes).
  caf::error load();

  /// A new QUEUED row (version 1). Errors: errc::invalid_argument (empty id,
  /// type or reason), errc::already_exists (the id is taken).
  caf::expected<instance_row> queue(const std::string& instance_id,
                                    const std::string& node_type,
                                    const std::string& reason, int64_t now_ms);

  /// Applies one transition and stages the row. Errors: errc::not_found (no
  /// such row); errc::invalid_argument for an illegal transition (the message
  /// names both states), an empty reason, a missing id the target state needs,
  /// or a version mismatch ("version mismatch: expected N, row is at M").
  /// A failed apply changes nothing.
  caf::expected<instance_row> apply(const instance_update& u, int64_t now_ms);

  /// Removes a TERMINATED row (or an ALLOCATION_FAILED one) for good.
  /// Errors: errc::not_found, errc::invalid_argument (another state).
  caf::error forget(const std::string& instance_id);

  const instance_row* find(const std::string& instance_id) const;
  /// Every row, in instance id order, without copying (valid until the next
  /// change).
  std::vector<const instance_row*> rows() const;
  std::size_t size() const {
    return rows_.size();
  }

  bool dirty() const {
    return rows_.dirty();
  }
  /// Writes the staged changes in one durable batch; discarded on failure.
  caf::error commit();

  struct codec {
    using row_type = instance_row;
    static std::string encode(const instance_row& r);
    static caf::expected<instance_row> decode(const std::string& key,
                                              const std::string& bytes);
  };

private:
  persistence::cached_table<codec> rows_;
};

/// The transitions that `in` (the provider's list, the GCS's nodes, the time)
/// justifies for the rows of `table`. Pure: reads only its arguments. Rules:
///   QUEUED + listed or listed terminated (tagged)   → REQUESTED (not relaunched)
///   REQUESTED + listed                              → ALLOCATED
///   REQUESTED + listed terminated                   → ALLOCATION_FAILED
///   REQUESTED + not listed past allocation timeout  → ALLOCATION_FAILED
///   ALLOCATED + its node ALIVE                      → RAYD_RUNNING
///   ALLOCATED + gone at the provider                → TERMINATED
///   ALLOCATED + no live node past start timeout     → START_FAILED
///   RAYD_RUNNING + gone at the provider             → TERMINATED
///   RAYD_RUNNING + its node DEAD, still listed      → STOPPING (terminate it;
///     a node the GCS does not know (yet) is no evidence: nothing)
///   STOPPING, TERMINATION_FAILED, START_FAILED,
///     RAYD_INSTALL_FAILED + gone at the provider    → TERMINATED
///   STOPPING + still listed past stop timeout       → TERMINATION_FAILED
///   TERMINATION_FAILED + still listed past back-off → STOPPING (retried)
///   ALLOCATION_FAILED + listed after all            → STOPPING
/// "Listed" means listed and not terminated; "gone" means listed terminated
/// or not listed. A row is matched by the instance id tag.
reconcile_result reconcile(const instance_table& table, const reconcile_input& in);

/// The QUEUED rows the launcher must request now, in instance id order, at
/// most `max`: those no provider instance is tagged with (a tagged one was
/// launched before a head restart and is picked up by reconcile() instead).
std::vector<const instance_row*>
to_request(const instance_table& table,
           const std::vector<listed_instance>& provider, std::size_t max);

} // namespace rayd::autoscale
