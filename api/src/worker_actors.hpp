#pragma once
// The user actors of a worker process (docs/actors.md, "Worker process"):
// construction (CREATE_ACTOR), destruction (KILL_ACTOR) and the caller
// sockets the node hands over (ADOPT_CALLER) whose CALLs run them.
//
// One CAF actor system (core only: no network; created with the first actor)
// and one CAF actor per user actor, which owns the object and runs its
// calls one at a time, in mailbox (= arrival) order. An actor created with
// max_concurrency n > 1 is a front actor plus n executor actors spawned
// detached (a thread each): the front hands each call to an idle executor
// (or queues it until one is), so up to n calls run at once and may finish
// out of order.
//
// Scheduler: CAF's sharing policy (one queue, idle threads wait on a
// condition variable), so an idle process spins no core and a call wakes a
// thread at once. Threads: max(8, 2 × cores). A method may block (sleep, wait on
// I/O, call another actor synchronously); each blocked method holds one
// scheduler thread, so a few blocking actors leave the rest of the process's
// actors threads to run on. Actors with max_concurrency > 1 use their own
// threads and never hold scheduler threads.
//
// A caller socket (ADOPT_CALLER):
//
//   ADOPT_CALLER ──► ATTACHED{pid} written ──► read by one thread at a time:
//     each CALL goes to its actor's mailbox in arrival order (an actor not
//     hosted: RESULT error rayd::actor_died at once); PING → PONG ──EOF or
//     bad frame──► reading stops; results of calls still running are written
//     (or dropped when the peer is gone) and the socket closes with its last
//     result.
//
// A synchronous call costs one thread wake-up here: a socket has two
// threads (leader/follower); the one reading takes a CALL with nothing
// behind it, hands the reading to the other, and enqueues the call with
// itself as CAF's execution unit, so an idle actor runs it on this thread
// (as a scheduler thread would, one message, then the scheduler takes over).
// A stream of calls is handed to mailboxes without running any inline.
//
// Results are write-combined: a result is appended to the socket's buffer
// under a mutex, and whoever finds no write in progress writes everything
// buffered (so a burst of results costs few system calls).
//
// An actor's life here:
//
//   CREATE_ACTOR ──► constructing (on a scheduler thread) ──threw / unknown
//     │                                                    class──► ACTOR_CREATED !ok
//     ▼ ACTOR_CREATED ok
//   ALIVE: calls run ──KILL_ACTOR──► killed: calls still queued answer
//     rayd::actor_died ("killed"); the object is destroyed once its actor(s)
//     finished the call running, and new calls find no actor (actor_died).
//
// Threads: the public members are called on the control thread only.

#include <memory>
#include <string>

#include "common/wire.hpp"
#include "worker_objects.hpp"

namespace rayd::core::worker_detail {

class actor_host {
public:
  /// `node_id` and `address` (the node port) name where stored results live.
  actor_host(control_channel& ctl, std::string node_id, std::string address);
  ~actor_host();
  actor_host(const actor_host&) = delete;
  actor_host& operator=(const actor_host&) = delete;

  /// Constructs the actor (asynchronously) and answers ACTOR_CREATED on the
  /// control socket. An actor id hosted already answers ok again.
  void create(wire::actor_create_msg msg);

  /// Destroys the actor (no reply); unknown ids are ignored.
  void kill(const std::string& actor_id);

  /// Serves a caller's socket (takes ownership of `fd`).
  void adopt_caller(int fd);

  struct impl;

private:
  std::unique_ptr<impl> impl_;
};

} // namespace rayd::core::worker_detail
