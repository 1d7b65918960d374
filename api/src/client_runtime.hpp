#pragma once
// The runtime of a remote client (docs/client.md): rayd::init() with a
// `rayd://HOST:PORT` address. Every call becomes an op sent over the head's
// API port to this client's session there, which runs it with a driver of
// its own; nothing else of the cluster is reached.
//
// What it promises:
//  - Calls return as an in-cluster driver's do: submit, put (small) and
//    actor calls at once (their ids are chosen here), get / wait / named
//    creates / lookups / kills with the session's answer.
//  - A broken connection (reset, or silent: no answer to a heartbeat within
//    3 s) is reopened and the session resumed; ops without a reply are sent
//    again, and the session answers those it ran already, so nothing runs
//    twice and nothing is lost. Callers meanwhile just wait.
//  - A session the head no longer has (the grace period ran out, the head
//    restarted) fails the calls that waited with rayd::connection_error
//    saying why; so does any later use of an object of that session. The
//    client opens a new session and goes on: named and detached actors,
//    which live in the GCS, are still there.
//  - Values over 8 MiB travel in 4 MiB chunks both ways; neither side holds
//    more than a window of chunks besides the value itself.
//
// Threads: one I/O thread owns the connection (a kj event loop); callers
// hand it ops through a queue and an eventfd, and wait on a condition
// variable for replies. Every runtime member may be called from any thread.

#include <memory>
#include <string>

#include "rayd/core.hpp"

namespace rayd::core {

/// Whether `address` names a remote client's connection ("rayd://...").
bool is_client_address(const std::string& address);

/// Connects, ships this program's code, opens a session. Throws
/// rayd::connection_error (with the head's reason: version, TLS, token).
std::unique_ptr<runtime> make_client_runtime(const init_options& opts,
                                             const std::string& address);

} // namespace rayd::core
