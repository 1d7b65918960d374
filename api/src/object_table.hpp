#pragma once

// The objects a driver owns (docs/tasks.md, "Objects"): task results and puts,
// each pending, ready (inline bytes, or stored on a node) or failed, with
// its reference count, the pending tasks that pin it as an argument, and the
// tasks waiting for it.
//
// Object lifecycle:
//
//   create_pending ─► PENDING ─(result / stored put)─► READY_VALUE | READY_STORED
//        │               │ the task failed, retries used up,           │
//        │               ▼ a dependency failed, node lost              │
//        │            FAILED ◄─────────────────────────────────────────┘ (never: ready is final)
//   create_value ─► READY_VALUE
//
//   Any state ─(refs == 0 and pins == 0, not PENDING)─► forgotten; a
//   READY_STORED object forgotten is queued for a FREE on its node
//   (take_frees). A PENDING object is forgotten when it settles.
//
// Contract: lookups never throw; an id the table does not hold (freed, never
// made, or the driver gave up on it) is reported as absent, and the caller
// decides (get() throws rayd::object_lost). settle() hands back the tasks
// that waited for an object exactly once.
//
// Thread rules: none of its own; the driver's state mutex guards it. No I/O.

#include <cstdint>
#include <string>
#include <unordered_map>
#include <vector>

#include "common/wire.hpp"

namespace rayd::core {

class object_table {
public:
  struct entry {
    enum state_t { pending, ready_value, ready_stored, failed };
    state_t state = pending;
    std::string value;
    wire::object_loc loc;
    // failed:
    bool lost = false;
    std::string function, error_type, error_message, node_id;
    int refs = 0;
    /// Pending tasks that take this object as an argument.
    int pinned = 0;
    std::vector<uint64_t> waiters; // task seqs waiting for it
  };

  explicit object_table(std::string id_prefix) : prefix_{std::move(id_prefix)} {
  }

  /// A fresh id ("<prefix><hex counter>").
  std::string new_id();
  /// A pending object (a task's result) with the caller's reference.
  entry& create_pending(const std::string& id, const std::string& function);
  /// A ready inline object with the caller's reference.
  void create_value(const std::string& id, std::string bytes);

  entry* find(const std::string& id);
  /// The entry, created pending if absent: for a result whose object was
  /// forgotten meanwhile (it is settled and forgotten again at once).
  entry& slot(const std::string& id);
  void erase(const std::string& id);

  static void fail(entry& e, std::string type, std::string message, std::string node,
                   bool lost = false);
  /// Settles a pending result with a task's or an actor call's RESULT: its
  /// value, its stored location, or its error.
  static void apply_result(entry& e, const wire::task_result& r);

  /// `arg` becomes an argument of pending task `seq`: pinned; if it is
  /// pending, `seq` waits for it (true in `waits`). False if it is absent.
  bool pin(const std::string& arg, uint64_t seq, bool& waits);
  /// A task that took `arg` is over: unpinned, forgotten if unreferenced.
  void unpin(const std::string& arg);
  void add_ref(const std::string& id);
  void release(const std::string& id);

  /// `id` became ready or failed: the tasks that waited for it (once), a copy
  /// of its failure if it failed; the object is forgotten if unreferenced.
  struct settled {
    std::vector<uint64_t> waiters;
    bool failed = false;
    bool lost = false;
    std::string error_type, error_message, node_id;
  };
  settled settle(const std::string& id);

  /// Stored objects forgotten since the last call: FREE them on their nodes.
  std::vector<wire::object_loc> take_frees();
  bool has_frees() const {
    return !frees_.empty();
  }
  std::size_t size() const {
    return objects_.size();
  }

private:
  void maybe_forget(std::unordered_map<std::string, entry>::iterator it);

  std::string prefix_;
  uint64_t next_ = 1;
  std::unordered_map<std::string, entry> objects_;
  std::vector<wire::object_loc> frees_;
};

} // namespace rayd::core
