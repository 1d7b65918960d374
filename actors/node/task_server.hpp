#pragma once
// The task server: what answers on a node's port (docs/tasks.md). It
// authenticates drivers and peer nodes with the cluster token, grants
// resource leases by handing the leased socket to a worker process of the
// job, queues or spills what does not fit, runs the worker processes, and
// serves the node's object store (PUT, GET, FREE; pulls from other nodes for
// its workers).
//
// Not a CAF actor, on purpose: its hot path is a TCP socket handed to a
// worker process by descriptor passing (SCM_RIGHTS), after which the driver
// and the worker talk directly, and every other message is a length-prefixed
// frame on a plain socket. A CAF request/response between processes runs
// well below a blocking TCP round trip on these machines (docs/tasks.md,
// "Why not CAF for this path"), and CAF cannot hand a socket to another
// process. So it is a thread-driven server: one epoll loop. CAF sees it only
// through `snapshot()` and `set_peers()`, which the node manager calls.
//
// Its parts, each in its own file with its contract:
//   connection_table  the node port's connections, the HELLO check, the
//                     handshake deadline and the cap on unauthenticated ones
//   lease_queue       reserved leases, waiting requests, fairness (drain)
//   lease_policy      where one request goes (pure), and the reply frames
//   worker_pool       worker process bookkeeping; worker_process starts one
//   object_service    PUT / GET / FREE, STORE / FETCH, pulls from peers
//   event_loop        epoll plus closures posted from other threads
// task_server.cpp only wires them and routes frames.
//
// The node port never stops accepting for good: an accept error (out of
// descriptors, ...) pauses polling the listening socket for 100 ms, is
// logged once per burst, and accepting resumes when descriptors free up. A
// connection whose peer closed is closed at once; one without a valid HELLO
// within hello_timeout (5 s) is closed, and at most max_unauthenticated (256)
// may wait for theirs (connection_table.hpp).
//
// Actors (docs/actors.md): host_actor reserves an actor's resources (an
// actor reservation: never asked back, not a sign of a live driver, keeps its
// worker from retiring), gets or starts the job's worker process for the
// actor's code and sends it CREATE_ACTOR; ACTOR_CREATED answers the caller.
// ATTACH{pid} on the node port (after HELLO) hands the socket to that worker
// process (ADOPT_CALLER); an unknown pid is answered ERROR not_found and the
// connection stays open. When a worker process hosting actors ends, each of
// its actors is reported (actor hooks); so is a job whose last driver
// connection here closed 2 s ago (once per job).
//
// An actor here:
//
//   host_actor ──no room──► error unavailable "no room"
//     │ reserve, worker for (job, code)
//     ▼
//   CREATING (CREATE_ACTOR sent, or queued until the worker is READY)
//     │ ACTOR_CREATED ok ──► ALIVE ──unhost_actor──► KILL_ACTOR, released
//     │ !ok ──► reply constructor_failed, released       │
//     │ worker ends ──► reply !ok (why), released       worker ends ──► exit hook, released
//
// Threads: the loop thread owns every connection and worker; long transfers
// (serving a GET, pulling from a peer, fetching code) run on helper threads
// and post their outcome back to the loop. Public members are thread-safe.

#include <chrono>
#include <cstdint>
#include <functional>
#include <memory>
#include <string>
#include <vector>

#include <caf/expected.hpp>

#include "actors/actor_types.hpp"
#include "actors/node/lease_policy.hpp"
#include "actors/node/object_store.hpp"
#include "common/net.hpp"
#include "common/util.hpp"

namespace rayd::node {

struct task_server_config {
  std::string node_id;     // REQUIRED
  std::string address;     // REQUIRED: the advertised node port, host:port
  std::string token;       // REQUIRED
  listener socket;         // REQUIRED: the node port (owned)
  resource_map total;      // this node's resources
  label_map labels;
  std::string session_dir; // REQUIRED: worker logs go to <dir>/workers
  object_store* store = nullptr; // REQUIRED; outlives the server
  /// Makes a code URI ("code://<sha256>/<name>") available as a local file
  /// and returns its path. Blocking; called on a helper thread. REQUIRED.
  std::function<caf::expected<std::string>(const std::string& uri)> fetch_code;
  /// A worker process without leases for this long is told to exit.
  /// Default 10 s.
  std::chrono::milliseconds idle_worker_timeout{10000};
};

class task_server {
public:
  /// Starts the event loop on its own thread.
  static caf::expected<std::unique_ptr<task_server>> start(task_server_config cfg);

  /// Stops the loop and closes every socket: worker processes see their
  /// control socket close and exit.
  ~task_server();

  /// What the node reports to the GCS: free resources, waiting lease
  /// shapes, object store use, leases and worker processes.
  node_report snapshot() const;

  /// The cluster as the GCS last described it (for spillback).
  void set_peers(std::vector<peer_view> peers);

  /// Answers a host_actor: the actor_hosted, or errc::unavailable /
  /// errc::invalid_argument when the node cannot host it. Called on the
  /// loop thread; must not block.
  using host_reply = std::function<void(caf::expected<actor_hosted>)>;

  /// Hosts actor `l.actor_id` here (see the top of the file). Idempotent per
  /// actor id: hosted already → ok with its pid; being created → answered
  /// with the first request.
  void host_actor(actor_launch l, host_reply done);

  /// Destroys a hosted actor (KILL_ACTOR) and releases its resources;
  /// `done(false)` if this node does not host it. Loop thread; must not block.
  void unhost_actor(std::string actor_id, std::function<void(bool)> done);

  /// Where hosted actors' ends are reported (loop thread; must not block):
  /// `exited(actor_id, pid, cause)` when their worker process ended, with a
  /// cause like "worker process 1234 killed by signal 9 (Killed)";
  /// `job_gone(job_id)` once per job whose driver is gone from this node.
  void set_actor_hooks(
    std::function<void(std::string actor_id, int32_t pid, std::string cause)> exited,
    std::function<void(std::string job_id)> job_gone);

  /// Drains this node before the autoscaler terminates it (`on`): granted
  /// only when it holds no lease, no actor and no waiting request, after
  /// which it takes no new work (done(true)); done(false) otherwise (work
  /// arrived: the drain is refused). `on` false takes work again
  /// (done(true)). `done` runs on the loop thread; must not block.
  void drain(bool on, std::function<void(bool)> done);

  /// The head's API address, given to worker processes started from now on
  /// (RAYD_ADDRESS, so that their tasks can call actors).
  void set_api_address(std::string address);

  struct impl;

private:
  task_server() = default;
  std::unique_ptr<impl> impl_;
};

} // namespace rayd::node
