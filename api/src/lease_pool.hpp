#pragma once

// A driver's leases, per resource shape ("pool"), and the rules for using
// them (docs/tasks.md, "The driver": dispatch): which lease a ready task goes
// to, when short tasks are pipelined behind busy threads, when another lease
// is asked for, when an idle or drained lease is given back, and how long a
// pool keeps asking when no lease comes.
//
// Lease lifecycle (per lease request, then per lease):
//
//   ask ─► REQUESTED ─(GRANTED)──────────► LEASED ─(DRAIN from the node)─► DRAINING
//            │  │ (SPILLBACK: ask there)    │  │ idle 1 s, nothing queued      │ nothing in flight
//            │  └─► REQUESTED (another node)│  ▼                               ▼
//            │                              │ GIVEN BACK (closed) ◄────────────┘
//            │ broken / nobody needs it      │ socket broke: its in-flight tasks are retried
//            ▼                              ▼
//         DROPPED (asked again after 100 ms, for up to 60 s without a lease)
//
// Contract: lookups never throw (a lease or request gone is reported as
// absent). At most one request per pool is outstanding. The table holds
// socket descriptors but does no I/O: the caller opens, reads, writes and
// closes them (node_link), so every rule here is tested without sockets.
//
// Thread rules: none of its own; the driver's state mutex guards it.

#include <chrono>
#include <cstdint>
#include <deque>
#include <map>
#include <optional>
#include <string>
#include <vector>

#include "common/wire.hpp"

namespace rayd::core {

class lease_pool {
public:
  using clock_type = std::chrono::steady_clock;

  /// Tasks in flight per leased thread before more leases are asked for.
  static constexpr std::size_t inflight_per_thread = 256;
  /// Tasks that run shorter than this (on average, round trip included) are
  /// pipelined: sent to a lease whose threads are all busy. Above it, the
  /// round trip a pipelined task saves is a few percent of its run time.
  static constexpr double pipeline_below_us = 1000;
  /// A request that brought no lease is asked again after this; the pool's
  /// tasks fail only when no lease came for `unreachable_limit` in a row.
  static constexpr std::chrono::milliseconds retry_delay{100};
  static constexpr std::chrono::seconds unreachable_limit{60};
  /// A lease without work for this long is given back.
  static constexpr std::chrono::milliseconds idle_timeout{1000};

  struct lease {
    uint64_t id = 0;
    int fd = -1;
    std::string pool;
    std::string node_id;
    std::string address;
    uint32_t threads = 1;
    wire::frame_reader reader;
    std::string out;                       // frames the socket did not take yet
    std::map<uint64_t, uint64_t> inflight; // wire task id → task seq
    uint64_t next_wire_id = 1;
    /// The node asked for the lease back (another job waits): no new tasks;
    /// given back once the ones in flight are answered.
    bool draining = false;
    clock_type::time_point idle_since = clock_type::now();
  };

  /// A lease being negotiated: LEASE sent, waiting for GRANTED / SPILLBACK /
  /// QUEUED / REFUSED.
  struct request {
    uint64_t id = 0;
    int fd = -1;
    std::string pool;
    std::string address;
    std::string spilled_from;
    wire::frame_reader reader;
    /// The node queued it: BACKLOG updates go there (docs/autoscaler.md).
    bool queued = false;
    uint32_t backlog_sent = 0;
  };

  struct pool {
    std::string key;
    std::map<std::string, double> shape;
    std::map<std::string, std::string> selector;
    std::deque<uint64_t> ready; // task seqs
    std::vector<uint64_t> leases;
    uint64_t requesting = 0; // a request id, 0 if none
    /// Mean run time (µs, moving average, as seen from here) of the pool's
    /// tasks that found a free thread; < 0 until one came back.
    double run_us = -1;
    /// No new request before this (the last one brought no lease).
    clock_type::time_point retry_at{};
    /// Since when no lease came (epoch while leases come).
    clock_type::time_point failing_since{};
  };

  static std::string key_of(const std::map<std::string, double>& shape,
                            const std::map<std::string, std::string>& selector);

  /// The pool of a shape, made on first use.
  pool& pool_for(const std::map<std::string, double>& shape,
                 const std::map<std::string, std::string>& selector);
  pool* find_pool(const std::string& key);
  lease* find_lease(uint64_t id);
  request* find_request(uint64_t id);
  std::map<std::string, pool>& pools() {
    return pools_;
  }
  const std::map<uint64_t, lease>& leases() const {
    return leases_;
  }
  const std::map<uint64_t, request>& requests() const {
    return requests_;
  }

  /// The lease a ready task of `p` goes to: the fewest in flight, not
  /// draining, below inflight_per_thread per thread; nullptr if none.
  lease* pick(pool& p);
  /// A task per thread in flight already: another one would queue.
  static bool busy(const lease& l) {
    return l.inflight.size() >= l.threads;
  }
  /// The pool's tasks are short enough to pipeline behind busy threads.
  static bool pipelines(const pool& p) {
    return p.run_us >= 0 && p.run_us < pipeline_below_us;
  }
  /// No request outstanding and none held back.
  static bool may_ask(const pool& p, clock_type::time_point now) {
    return p.requesting == 0 && now >= p.retry_at;
  }
  /// A task sent to a free thread came back after `us` µs.
  static void ran(pool& p, double us) {
    p.run_us = p.run_us < 0 ? us : 0.8 * p.run_us + 0.2 * us;
  }
  /// A request brought no lease (or none could be sent): true if the pool
  /// asks again after retry_delay, false once no lease came for
  /// unreachable_limit (the caller fails the pool's tasks).
  static bool retry_later(pool& p, clock_type::time_point now);

  /// A LEASE was sent for `p` on `r.fd`: the pool's outstanding request.
  request& add_request(pool& p, request r);
  /// The request is over (answered, broken, or not needed any more); the
  /// pool may ask again. Nullopt if absent.
  std::optional<request> remove_request(uint64_t id);
  /// A lease was granted for `p` (the request is over).
  lease& add_lease(pool& p, lease l);
  /// A lease is given back or broke: out of its pool. Nullopt if absent.
  std::optional<lease> remove_lease(uint64_t id);
  uint64_t next_id() {
    return next_id_++;
  }

  /// Leases to give back now: nothing in flight or queued, and drained, or
  /// idle for idle_timeout while their pool has nothing ready.
  std::vector<uint64_t> idle_leases(clock_type::time_point now) const;
  /// Requests whose pool has nothing ready any more.
  std::vector<uint64_t> unneeded_requests() const;
  /// Work the network must progress: requests, tasks in flight, frames queued.
  bool outstanding() const;

private:
  std::map<std::string, pool> pools_;
  std::map<uint64_t, lease> leases_;
  std::map<uint64_t, request> requests_;
  uint64_t next_id_ = 1;
};

} // namespace rayd::core
