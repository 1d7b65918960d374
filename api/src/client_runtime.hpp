#pragma once
// The runtime of a remote client (docs/client.md): rayd::init() with a
// `rayd://HOST:PORT` address. Every call becomes an op sent over the head's
// API port to this client's session there, which runs it with a driver of
// its own; nothing else of the cluster is reached. This class maps the
// runtime's calls to ops and replies to results and exceptions; the
// connection, replay and reconnects are client_channel's.
//
// What it promises:
//  - Calls return as an in-cluster driver's do: submit, put (small) and
//    actor calls at once (their ids are chosen here), get / wait / named
//    creates / lookups / kills with the session's answer, raising the same
//    rayd exceptions an in-cluster driver raises.
//  - Values over 8 MiB travel in 4 MiB chunks both ways.
//
// Threads: every runtime member may be called from any thread.

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
