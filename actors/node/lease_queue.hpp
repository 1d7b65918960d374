#pragma once
// The leases a node has granted and the lease requests waiting for room
// (docs/tasks.md, "Leases and scheduling"): what is reserved, what is free,
// which waiting request goes where when room appears, and which lease is
// asked back so that jobs share the node fairly. Decisions only: sending the
// replies and handing sockets to workers is the task server's. Plain state
// with time passed in, so every decision is unit-tested without sockets.
//
// A lease request's life on a node:
//
//   LEASE ──► decide_arrival ──spill──► SPILLBACK sent (the driver asks there)
//     │           │ grant
//     │ queue     ▼
//     ▼        RESERVED (shape counted against this node) ── worker not ready:
//   QUEUED ──► run(): grant ─┘            waits in the worker pool; ready: the
//     │        run(): spill ─► SPILLBACK  socket is handed over (ADOPT)
//     │        run(): infeasible against a view newer than the request ─► REFUSED
//     │        its connection closes ─► dropped (forget_connection)
//     ▼
//   RESERVED ──(a waiting request of a poorer job, after fairness_delay)──► DRAINING
//     │                                                                      │
//     └──(LEASE_DONE from the worker, or the worker dies)──► RELEASED ◄──────┘
//
// Threads: the task server's loop thread only.

#include <chrono>
#include <cstdint>
#include <deque>
#include <functional>
#include <map>
#include <optional>
#include <string>
#include <vector>

#include "actors/node/lease_policy.hpp"
#include "actors/types.hpp"
#include "common/wire.hpp"

namespace rayd::node {

/// How long a lease request waits before another job's lease is asked back.
constexpr std::chrono::milliseconds fairness_delay{100};

struct lease_record {
  resource_map shape;
  std::string job_id;
  uint64_t worker_id = 0;
  bool draining = false; // asked back for another job
  /// An actor's reservation (docs/actors.md): held while the actor lives;
  /// never asked back, and not a sign that the job's driver is alive.
  bool actor = false;
};

class lease_queue {
public:
  using clock_type = std::chrono::steady_clock;

  struct waiting {
    uint64_t conn_id = 0;
    wire::lease_request req;
    /// When the LEASE arrived: only a cluster view received later may call
    /// it infeasible (an older one may predate the node that can hold it).
    clock_type::time_point arrived{};
  };

  /// A request that leaves the queue, with where it goes (grant, spill or
  /// infeasible; never queue).
  struct departure {
    uint64_t conn_id = 0;
    wire::lease_request req;
    lease_decision decision;
  };

  explicit lease_queue(resource_map total) : total_(std::move(total)) {
  }

  // -- granted leases ---------------------------------------------------------

  /// The node's resources minus every reserved lease's shape; every amount
  /// 0 while draining (nothing new is granted or hosted here).
  resource_map available() const;

  /// Draining (docs/autoscaler.md): the autoscaler is about to terminate
  /// this node. Begins only when no lease is held and no request waits
  /// (returns false otherwise: work arrived, the drain is refused).
  bool begin_drain();
  void end_drain() {
    draining_ = false;
  }
  bool draining() const {
    return draining_;
  }

  /// Reserves `shape` for a lease served by `worker_id` (`actor`: for an
  /// actor it hosts); returns its id.
  uint64_t reserve(resource_map shape, std::string job_id, uint64_t worker_id,
                   bool actor = false);

  /// Releases a lease; returns the worker that served it (nullopt when the
  /// lease is unknown, e.g. released already).
  std::optional<uint64_t> release(uint64_t lease_id);

  /// Releases every lease `worker_id` served (it died or was removed).
  void release_worker(uint64_t worker_id);

  const lease_record* find(uint64_t lease_id) const;
  /// Whether job `job_id` holds a lease here (its driver is alive: a worker
  /// serves the driver's socket). Actor reservations do not count.
  bool holds_lease(const std::string& job_id) const;
  std::size_t lease_count() const {
    return leases_.size();
  }

  // -- waiting requests -------------------------------------------------------

  /// Where a new request goes. An infeasible verdict becomes `queue`: the
  /// view of the cluster may predate a node that joined since, and the
  /// queued demand makes the node report (and hear back) at once.
  static lease_decision decide_arrival(const wire::lease_request& req,
                                       const peer_capacity& self,
                                       const std::vector<peer_capacity>& peers);

  void enqueue(uint64_t conn_id, wire::lease_request req, clock_type::time_point now);

  /// The driver's new backlog for the request waiting on `conn_id`; false
  /// when none waits there.
  bool set_backlog(uint64_t conn_id, uint32_t count);

  /// Drops the request of a connection that closed.
  void forget_connection(uint64_t conn_id);

  bool empty() const {
    return queue_.empty();
  }
  std::size_t queued() const {
    return queue_.size();
  }

  /// Waiting shapes and how many of each (the node's pending demand): a
  /// request counts as its driver's backlog (at least 1).
  std::vector<resource_demand> demands() const;

  /// Decides every waiting request again, oldest first, against `self`
  /// (its `available` is ignored: this node's free resources are used, less
  /// what earlier grants of this pass take) and `peers` (received at
  /// `view_at`). Returns the requests that leave the queue, in order; the
  /// caller reserves each grant before it next calls into this queue.
  std::vector<departure> run(const peer_capacity& self, const std::vector<peer_capacity>& peers,
                             clock_type::time_point view_at);

  /// Fairness between jobs: for each request that has waited at least
  /// fairness_delay, when another job holds at least two more leases here
  /// than the request's job (counting only leases for which `serving` says
  /// the worker runs, of a shape the request fits in), one of that job's
  /// leases is marked draining. Returns the leases to ask back (the caller
  /// sends DRAIN to their workers). Shares converge to within one lease.
  std::vector<uint64_t> rebalance(clock_type::time_point now,
                                  const std::function<bool(uint64_t worker_id)>& serving);

private:
  resource_map total_;
  bool draining_ = false;
  std::map<uint64_t, lease_record> leases_;
  std::deque<waiting> queue_;
  uint64_t next_lease_id_ = 1;
};

} // namespace rayd::node
