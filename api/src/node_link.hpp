#pragma once

// The driver's sockets to nodes and leased workers (docs/tasks.md, "The task
// protocol"): connecting and sending a LEASE, non-blocking writes of queued
// TASK frames, reads into frame readers, and one poll over every socket plus
// a wake-up descriptor (so a thread that queued work can interrupt a poll
// that does not watch for it yet).
//
// Contract: nothing here throws or blocks except poll() (up to its timeout)
// and open_request() (a loopback/LAN connect). A broken socket is reported
// (flush_result::broken, read() false), never closed here: its owner decides
// what the break means (a lease's tasks are retried, a request is asked
// again) and closes it.
//
// Thread rules: wake() is thread-safe and async-signal-safe. The static
// helpers touch only what they are given. poll() runs without the driver's
// state mutex held (that is its point); only one thread polls at a time (the
// driver's `driving_` rule).

#include <poll.h>

#include <cstdint>
#include <string>
#include <vector>

#include "common/wire.hpp"

namespace rayd::core {

class node_link {
public:
  node_link();
  ~node_link();
  node_link(const node_link&) = delete;
  node_link& operator=(const node_link&) = delete;

  /// Ends a poll() in progress (or the next one) at once.
  void wake();

  /// Connects to `address`, authenticates as a driver of `job_id` and sends
  /// `req`; the descriptor (non-blocking) or -1 with the reason in `why`.
  static int open_request(const std::string& address, const std::string& token,
                          const std::string& job_id, const wire::lease_request& req,
                          std::string& why);

  enum class flush_result { done, full, broken };
  /// Writes what the socket takes now of `out` (and erases it from `out`);
  /// `full`: the rest waits for POLLOUT.
  static flush_result flush(int fd, std::string& out);

  /// Reads everything that arrived into `reader`. False when the peer
  /// closed the connection or it broke (frames read before are kept).
  /// `chunk` bounds one recv (a lease's results arrive in bulk, a request's
  /// answer is small).
  static bool read(int fd, wire::frame_reader& reader, std::size_t chunk);

  struct watch {
    int fd = -1;
    bool want_out = false; // also POLLOUT (frames wait to be written)
    uint64_t tag = 0;      // the caller's
  };
  struct event {
    uint64_t tag = 0;
    bool in = false;  // readable, closed or broken: read it
    bool out = false; // writable
  };
  /// Waits up to `timeout_ms` for any of `watches` (or wake()); what is
  /// ready goes to `ready` (cleared first; its capacity is reused, so a
  /// synchronous round trip allocates nothing here).
  void poll(const std::vector<watch>& watches, int timeout_ms, std::vector<event>& ready);

private:
  int event_fd_ = -1;
  std::vector<pollfd> fds_; // poll()'s, reused
};

} // namespace rayd::core
