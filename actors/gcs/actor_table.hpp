#pragma once
// The GCS actor table: one row per user actor (the actor manager,
// actor_manager.hpp, owns it and serves creation, placement and kills). Rows are persisted as JSON in the store's "actors" table, keyed by
// actor id (a persistence::cached_table), and changed only through the
// transitions below, which carry the rules of an actor's life:
//
//   create ──► PENDING_CREATION ──placed, constructor ran──► ALIVE
//                   │                                         │  ▲
//                   │ constructor threw / no node fits        │  │ constructor ran
//                   ▼                                         ▼  │ again
//                  DEAD ◄── restarts exhausted ──────── RESTARTING
//                   ▲       (process or node died,            ▲
//                   │        restarts < max_restarts ─────────┘
//                   │        goes to RESTARTING instead)
//                   ├── killed (rayd::kill, no_restart) from any state
//                   └── owner gone (non-detached actors of a job that ended)
//
// A DEAD row keeps its cause (death_cause) for `rayctl actors` and for the
// actor_died_error of a late call; names are unique per namespace among
// actors that are not DEAD. A constructor that throws is not restarted: the
// same arguments would throw again (a decision recorded here, as the issue
// asks).
//
// Group commit: the transitions change rows in memory and queue the write;
// commit() writes everything queued in one durable batch (the caller answers
// its callers after it). A failed commit discards the queued changes
// (persistence/table.hpp). Not thread-safe: owned by one actor.

#include <cstdint>
#include <map>
#include <string>
#include <utility>
#include <vector>

#include <caf/error.hpp>
#include <caf/expected.hpp>

#include "actors/actor_types.hpp"
#include "common/resources.hpp"
#include "persistence/store.hpp"
#include "persistence/table.hpp"

namespace rayd::gcs {

enum class actor_state : uint8_t { pending_creation, alive, restarting, dead };

std::string to_string(actor_state s);

/// What a creator asks for: everything of its actor_create_request, so a
/// restart long after the creator left can place and construct it again.
struct actor_spec {
  std::string name;           // "" = anonymous
  std::string ray_namespace;  // "" = the creator's job namespace
  std::string class_name;     // the registered class
  std::string owner_job;      // the creating job; non-detached actors die with it
  bool detached = false;
  bool get_if_exists = false;
  int32_t max_restarts = 0;
  int32_t max_task_retries = 0;
  int32_t max_concurrency = 1;
  resource_map resources;
  label_map label_selector;
  /// msgpack bytes of each constructor argument.
  std::vector<std::string> args;
  /// The creator's code: files[0] its executable, then task libraries.
  std::vector<code_file_ref> code;
};

struct actor_row {
  std::string actor_id;
  actor_spec spec;
  actor_state state = actor_state::pending_creation;
  std::string node_id;
  int64_t pid = 0;
  std::string address;        // where callers reach it (its worker's node port)
  int32_t restarts = 0;
  std::string death_cause;
  int64_t create_time_ms = 0;
  int64_t end_time_ms = 0;
};

class actor_table {
public:
  explicit actor_table(persistence::store& db);

  /// Reads every row (replacing what is in memory).
  caf::error load();

  /// Creates a PENDING_CREATION row with `id`, or, with get_if_exists, hands
  /// back the live actor of that name. Errors: errc::already_exists (a live
  /// actor has that name in that namespace, or the id is taken),
  /// errc::invalid_argument (no class, negative limits).
  caf::expected<actor_row> create(const std::string& id, actor_spec spec, int64_t now_ms);

  /// PENDING_CREATION or RESTARTING → ALIVE on a node. Errors:
  /// errc::not_found, errc::invalid_argument (the actor is DEAD).
  caf::expected<actor_row> mark_alive(const std::string& id, const std::string& node_id,
                                      int64_t pid, const std::string& address);

  /// Its process or node died: RESTARTING while restarts remain, else DEAD
  /// ("restarts exhausted (N): <cause>"). A DEAD actor stays DEAD.
  caf::expected<actor_row> mark_failed(const std::string& id, const std::string& cause,
                                       int64_t now_ms);

  /// Its constructor threw: DEAD, not restarted (see above).
  caf::expected<actor_row> mark_constructor_failed(const std::string& id,
                                                   const std::string& what, int64_t now_ms);

  /// rayd::kill / rayctl actor kill: DEAD with `no_restart`, else like a
  /// failure (restarted while restarts remain).
  caf::expected<actor_row> kill(const std::string& id, const std::string& by,
                                bool no_restart, int64_t now_ms);

  /// A job ended: its non-detached actors that are not DEAD die. Returns them.
  std::vector<actor_row> owner_gone(const std::string& job_id, int64_t now_ms);

  const actor_row* find(const std::string& id) const;
  /// The actor of `name` in `ns` that is not DEAD (staged rows included),
  /// or nullptr. O(log n): an index kept beside the rows.
  const actor_row* find_named(const std::string& ns, const std::string& name) const;
  /// Every row, in id order.
  std::vector<actor_row> list() const;
  /// Every row, in id order, without copying (valid until the next change).
  std::vector<const actor_row*> rows() const;

  bool dirty() const {
    return rows_.dirty();
  }
  /// Writes the queued changes in one durable batch; discarded on failure
  /// (the name index is rebuilt from the rows then).
  caf::error commit();

  struct codec {
    using row_type = actor_row;
    static std::string encode(const actor_row& r);
    static caf::expected<actor_row> decode(const std::string& key, const std::string& bytes);
  };

private:
  caf::expected<actor_row> die(const actor_row& r, std::string cause, int64_t now_ms);
  void stage(const actor_row& r);
  void rebuild_names();

  persistence::cached_table<codec> rows_;
  /// (namespace, name) → id of the named actors that are not DEAD.
  std::map<std::pair<std::string, std::string>, std::string> names_;
};

} // namespace rayd::gcs
