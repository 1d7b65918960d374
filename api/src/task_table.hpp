#pragma once

// The tasks a driver submitted and has not finished (docs/tasks.md, "The
// driver").
//
// Task lifecycle:
//
//   add ─► WAITING_DEPS ─(last argument object ready)─► READY ─(sent on a lease)─► INFLIGHT
//             │ an argument failed                       ▲  │ no lease for 60 s       │
//             │                                          │  │                        │
//             │                        lease lost,       └──┼─ retries left ◄─────────┤
//             │                        (worker/node died)   │                        │
//             ▼                                             ▼                        │
//          FAILED ◄── infeasible / refused / retries used up / the task threw ◄──────┤
//             │                                                                      │
//             └──────────► finish(): removed ◄──────────────── DONE ◄─── RESULT ─────┘
//
// Contract: lookups never throw; a seq the table does not hold (finished,
// failed, never made) is reported as absent, so a late frame or a peer's
// death cannot crash the driver. sent()/lost() only act on a task in the
// state they expect and say whether they did.
//
// Thread rules: none of its own; the driver's state mutex guards it. No I/O.

#include <chrono>
#include <cstdint>
#include <map>
#include <optional>
#include <string>
#include <vector>

#include "rayd/core.hpp"
#include "task_events.hpp"

namespace rayd::core {

class task_table {
public:
  using clock_type = std::chrono::steady_clock;
  enum state_t : uint8_t { waiting_deps, ready, inflight };

  struct task {
    uint64_t seq = 0;
    std::string function;
    std::vector<arg> args;
    std::string pool;
    object_id result;
    int attempt = 0;
    int max_retries = 3;
    std::size_t deps_missing = 0;
    state_t state = waiting_deps;
    // while in flight:
    uint64_t lease = 0;
    uint64_t wire_id = 0;
    clock_type::time_point sent{}; // when sent to a free thread (else epoch)
    uint8_t reported = task_events::none; // the last state recorded for `rayctl tasks`
    // Actor calls (docs/actors.md): `function` is the method, `lease` the
    // connection it was sent on, `wire_id` its call id.
    std::string actor; // "" for a task
    /// Lost with its actor's process and out of retries: it fails once the
    /// GCS says what became of the actor (why it died, or that it restarted).
    std::string doomed;
  };

  /// Stores `t` (its deps_missing counted by the caller): READY if nothing
  /// is missing, else WAITING_DEPS.
  task& add(task t);
  task* find(uint64_t seq);

  /// One missing argument of `seq` became ready: true if it is now READY.
  bool dep_ready(uint64_t seq);
  /// READY → INFLIGHT on `lease` as `wire_id`. False if `t` is not READY.
  /// (`t` is one find() returned: the hot path looks a task up once.)
  static bool sent(task& t, uint64_t lease, uint64_t wire_id, clock_type::time_point at);
  /// Its lease broke while INFLIGHT: READY again (attempt + 1) if retries
  /// are left (true), else false (the caller fails it).
  static bool lost(task& t);
  /// Removes a finished or failed task; nullopt if absent.
  std::optional<task> finish(uint64_t seq);

  std::size_t size() const {
    return tasks_.size();
  }

private:
  std::map<uint64_t, task> tasks_;
};

} // namespace rayd::core
