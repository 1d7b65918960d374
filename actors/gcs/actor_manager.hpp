#pragma once
// The GCS actor manager (head; docs/actors.md): the CAF actor behind
// actor_manager_actor. It owns the actor table (actor_table.hpp, lifecycle
// drawn there) and is its only writer. Spawn it with spawn_actor_manager
// (spawn.hpp); everyone else talks to it through actor_manager_actor.
//
// What each message does:
// - actor_create: each request is checked and staged in order (a row staged
//   by an earlier request of the same round is visible to the next, so
//   racing get_if_exists creates of one name yield one actor). A request
//   whose actor_id exists answers with that row (a retry). All replies go
//   out after ONE durable commit covering everything queued when the
//   mailbox drained; a failed create carries only `error`.
// - Placement (actor_placement.hpp) runs after the commit, on every tick
//   (500 ms, also refreshing the nodes' available resources) and on node
//   events. Hosting is asynchronous: many actors are in flight at once;
//   each waits for its node's actor_host reply (30 s: the first actor of a
//   job starts a worker process). ok → ALIVE (address: the node's port);
//   constructor_failed → DEAD, not restarted; any other error → placed
//   again later, with a backoff per actor (0.5 s doubling to 10 s).
// - Failures: a DEAD node fails its actors ("node <name> (<id>) died: ...");
//   actor_exited fails the actor only if node and pid are its current
//   incarnation's; a failed actor is RESTARTING and placed again while
//   restarts remain, else DEAD. job_gone: the job's non-detached actors die
//   ("owner job <id> ended") and are unhosted.
// - actor_kill: by id, else by name in the namespace ("" = "default"); an
//   ALIVE actor is unhosted; no_restart → DEAD "killed by <by>", else like a
//   failure. A host reply for an incarnation that has ended since is
//   answered with actor_unhost.
// - actor_wait / actor_get / actor_list answer from rows that are durable
//   (after the pending commit when changes are staged).
// - Recovery: rows load from the store; ALIVE rows stay ALIVE (failed over
//   if their node is or becomes DEAD), PENDING_CREATION and RESTARTING rows
//   are placed again (a node asked to host an actor it hosts already
//   answers with its pid). Exception: actors ALIVE on the head's own node
//   ran in worker processes of the previous head process, which ended with
//   it: they fail ("the head node restarted: ...") and restart while
//   restarts remain (as the job manager does with entrypoints on the head).
//
// Thread rules: all state lives in the actor; nothing here is shared.

#include <caf/replies_to.hpp>
#include <caf/typed_actor.hpp>

#include "actors/actor_types.hpp"
#include "actors/gcs/actor_manager_actor.hpp"
#include "actors/gcs/actor_table.hpp"
#include "actors/types.hpp"

namespace rayd::gcs {

/// The manager's full interface: the contract plus its internal messages
/// (sent by itself or, for node events, by the node actor).
using actor_manager_impl_actor = actor_manager_actor::extend<
  caf::reacts_to<atoms::node_event, node_info>, // the node actor's events
  caf::reacts_to<atoms::tick>,                  // placement retries, node refresh
  caf::reacts_to<atoms::flush>,                 // the group commit
  caf::reacts_to<atoms::expire, uint64_t>>;     // an actor_wait ran out

/// A row as callers see it.
actor_info to_info(const actor_row& r);

} // namespace rayd::gcs
