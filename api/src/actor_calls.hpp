#pragma once

// The caller's side of actors (docs/actors.md): the actors this process
// calls, where each one is (its incarnation: node port, worker pid,
// restarts), the calls waiting for it in call order, and one socket per
// worker process it calls (HELLO + ATTACH on the node port, then CALL and
// RESULT frames straight to and from the worker).
//
// An actor as its caller sees it:
//
//   create_actor (anonymous) ──► CREATING ──GCS recorded it──┐
//   create_actor (named) / get_actor / a handle arrives       │
//      │ ◄────────────────────────────────────────────────────┘
//      ▼           row ALIVE                    socket ATTACHED
//   RESOLVING ─────────────────► ALIVE ──────────────────────────► calls are sent
//      ▲  │ row DEAD               │ its socket broke, its worker said
//      │  ▼                        │ "actor_died", or the GCS shows a newer
//      │ DEAD: every queued call   │ incarnation while calls wait > 1 s
//      │ fails with the GCS's      ▼
//      │ death cause            STALE (RESOLVING, with the old incarnation
//      └────────────────────── remembered: rows still showing it are
//                               believed only after 2 s, then the caller
//                               connects to it again; only the GCS
//                               declares an actor dead)
//
// Calls lost with a process are retried within the actor's
// max_task_retries (sent again first, in their order); those out of retries
// are doomed and fail when the GCS's verdict arrives (the actor's death
// cause, "restarted", or — the same incarnation still alive — their own
// "lost while the call ran").
//
// Thread rules: none of its own; the driver's state mutex guards it. No I/O
// but open_attach() (a blocking loopback/LAN connect, like a LEASE).

#include <chrono>
#include <cstdint>
#include <deque>
#include <map>
#include <optional>
#include <set>
#include <string>

#include "actors/actor_types.hpp"
#include "common/wire.hpp"
#include "rayd/core.hpp"

namespace rayd::core {

class actor_calls {
public:
  using clock_type = std::chrono::steady_clock;
  enum class state : uint8_t { creating, resolving, alive, dead };

  /// Where and which life of an actor a caller talks to.
  struct incarnation {
    std::string address; // node port
    int32_t pid = 0;
    int32_t restarts = 0;
    bool operator==(const incarnation& o) const {
      return pid == o.pid && restarts == o.restarts && address == o.address;
    }
  };

  struct actor {
    actor_id id;
    state st = state::resolving;
    incarnation at;          // ALIVE: where it is
    std::string node_id;
    int max_task_retries = 0;
    std::string death_cause; // DEAD
    uint64_t conn = 0;       // ALIVE: the socket to its process (0: none yet)
    std::deque<uint64_t> queue; // calls not sent yet, in call order (task seqs)
    bool wanted = false;     // a lookup is out
    // STALE: an incarnation known to be gone, and since when.
    bool stale = false;
    incarnation gone;
    clock_type::time_point stale_since{};
  };

  struct conn {
    uint64_t id = 0;
    int fd = -1;
    incarnation at; // address and pid (restarts unused)
    bool attached = false;
    wire::frame_reader reader;
    std::string out;
    std::map<uint64_t, uint64_t> inflight; // call id → task seq
    std::map<uint64_t, actor_id> inflight_actor; // call id → actor
    uint64_t next_call_id = 1;
    clock_type::time_point oldest_check{}; // the last "are they still there?" lookup
  };

  /// The entry of `id`, made RESOLVING if new (`created` tells).
  actor& get(const actor_id& id, bool& created);
  actor* find(const actor_id& id);

  /// The socket to the process at (address, pid), or nullptr.
  conn* conn_to(const std::string& address, int32_t pid);
  conn* find_conn(uint64_t id);
  conn& add_conn(int fd, const std::string& address, int32_t pid);
  /// Removes a socket (the caller closes its fd).
  std::optional<conn> remove_conn(uint64_t id);

  /// ALIVE actors reached through socket `id`.
  std::vector<actor*> actors_on(uint64_t conn_id);

  /// Marks `a` STALE: its current incarnation is gone.
  static void mark_stale(actor& a, clock_type::time_point now);

  std::map<uint64_t, conn>& conns() {
    return conns_;
  }
  std::map<actor_id, actor>& actors() {
    return actors_;
  }

  /// Connects to the node port at `address`, authenticates as a driver of
  /// `job_id` and asks for the socket to be handed to worker `pid`; the
  /// descriptor (non-blocking) or -1 with the reason in `why`.
  static int open_attach(const std::string& address, const std::string& token,
                         const std::string& job_id, int32_t pid, std::string& why);

private:
  std::map<actor_id, actor> actors_;
  std::map<uint64_t, conn> conns_;
  uint64_t next_conn_ = 1;
};

} // namespace rayd::core
