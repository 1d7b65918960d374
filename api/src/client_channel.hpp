#pragma once
// A remote client's connection to its session on the head (docs/client.md,
// "Surviving a broken connection"), below client_runtime: ops go out with
// sequence numbers, replies come back, and a connection that breaks is
// opened again and the session resumed without the caller noticing.
//
// What it promises:
//  - send() queues an op and returns its seq at once (it waits only while
//    65,536 ops or 256 MiB are pending without a reply: a client that
//    produces faster than its session runs keeps bounded memory on both
//    sides); await(seq) returns its reply. Ops queued together go as one exec call, a batch ending after an
//    op that waits (so a synchronous call is one round trip).
//  - Every op without a reply is kept; after a reconnect they are sent again
//    in seq order, and the session answers those it ran already.
//  - The link is dead when reset, or when nothing was heard for 3 s although
//    a heartbeat goes every second. Reconnects back off from 100 ms to 1 s.
//  - A session the head no longer has (expired, head restarted) fails the
//    awaited ops with its reason, marks its ids lost (check_id() throws for
//    them), and a new session is opened. Past the grace period without the
//    head, send() and await() fail at once until the head answers again.
//  - run_transfer() moves a streamed value's chunks, a window of four calls
//    at a time between other work, resuming where it broke.
//
// Threads: one I/O thread owns the connection (a kj event loop; an API
// client belongs to the thread that made it). Callers hand it ops through a
// queue and an eventfd, and wait on a condition variable. Every public
// member may be called from any thread.

#include <cstdint>
#include <memory>
#include <string>

#include "common/client_ops.hpp"
#include "rayd/core.hpp"

namespace rayd::core {

class client_channel {
public:
  /// A streamed value's bytes, moved by the I/O thread.
  struct transfer {
    bool write = false;
    uint64_t stream = 0;
    uint64_t size = 0;
    uint64_t done = 0; // bytes the other side confirmed (write) or we hold (read)
    const char* src = nullptr;
    std::string* dst = nullptr;
    std::string error;
    bool finished = false;
  };

  /// Connects, ships this program's code, opens a session. Throws
  /// rayd::connection_error with the reason (version, TLS, token, reach).
  client_channel(const init_options& opts, std::string address);
  /// Closes the session (when the head is reachable) and the connection.
  ~client_channel();

  client_channel(const client_channel&) = delete;
  client_channel& operator=(const client_channel&) = delete;

  /// A new object id of this client (the session maps it to its driver's).
  std::string new_id();
  /// Throws rayd::connection_error when `id` belonged to a session the
  /// head lost.
  void check_id(const std::string& id);
  /// A new put stream id.
  uint64_t new_stream();

  /// Queues `o` (its seq is set here); `awaited`: a caller will await() it.
  /// Throws rayd::connection_error while the head is lost.
  uint64_t send(client_ops::op o, bool awaited);
  /// The reply to an awaited op. Throws rayd::connection_error while the
  /// head is lost.
  client_ops::reply await(uint64_t seq);
  /// Moves `t`'s bytes; returns when done or failed (t->error).
  void run_transfer(const std::shared_ptr<transfer>& t);

private:
  struct impl;
  std::unique_ptr<impl> impl_;
};

} // namespace rayd::core
