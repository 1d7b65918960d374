#pragma once
// The API port's accept loop and connection book-keeping: one Cap'n Proto
// RPC system per connection, with the bootstrap capability made per
// connection so that it knows whether that connection authenticated.
//
// Promises (docs/architecture.md, "Connections and timeouts"):
//  - An accept error (EMFILE, ENFILE, ENOMEM, ENOBUFS, ...) never ends the
//    loop: it backs off (10 ms doubling to 200 ms), logs once per burst, and
//    accepts again when descriptors free up. Existing connections keep being
//    served meanwhile.
//  - A connection whose peer closed (or half-closed) is closed at once.
//  - A connection that has not authenticated `auth_timeout` after it was
//    accepted is closed; at most `max_unauthenticated` connections wait to
//    authenticate: admitting one more closes the oldest waiting one (a real
//    client authenticates within milliseconds, a flood cannot crowd it out).
//  - With TLS (a `tls` context given), the port speaks only TLS: the
//    handshake runs inside the UNAUTHENTICATED state, under the same
//    deadline and cap; a failed handshake (a plain-text client, a client
//    that refuses our certificate) closes the connection and nothing else.
//
// Connection lifecycle:
//
//   accepted ──► [TLS handshake] ──► UNAUTHENTICATED ──authenticate(token ok)──► AUTHENTICATED
//                  │  │  └─ auth_timeout elapsed ──────────┐        │
//                  │  └──── evicted (cap, oldest first) ───┤        │
//                  └─────── peer closed / broken frame ────┼────────┘
//                                                          ▼
//                                                        CLOSED (fd closed)
//
// Thread rules: everything runs on the kj thread that owns `io`.

#include <chrono>
#include <cstddef>
#include <functional>
#include <list>
#include <memory>

#include <capnp/capability.h>
#include <capnp/message.h>
#include <kj/async-io.h>

#include "schemas/connection_limits.hpp"

namespace kj {
class TlsContext;
} // namespace kj

namespace rayd::rpc {

class api_listener;

/// One connection's authentication state, shared by its bootstrap
/// capability and the listener.
class connection_auth {
public:
  bool authenticated() const {
    return authenticated_;
  }

  /// Called by the bootstrap capability on a valid token. Idempotent.
  void mark_authenticated();

private:
  friend class api_listener;
  api_listener* owner_ = nullptr; // null once the connection is closed
  bool authenticated_ = false;
  std::list<std::shared_ptr<connection_auth>>::iterator pos_;
  kj::Own<kj::PromiseFulfiller<void>> evict_;
};

class api_listener final : private kj::TaskSet::ErrorHandler {
public:
  /// Makes the bootstrap capability of one new connection.
  using make_bootstrap
    = std::function<capnp::Capability::Client(std::shared_ptr<connection_auth>)>;

  /// Takes ownership of the listening socket `fd`. With `tls` (which must
  /// outlive the listener) every connection is wrapped in TLS first.
  api_listener(kj::AsyncIoContext& io, int fd, capnp::ReaderOptions opts,
               listener_limits limits, make_bootstrap bootstrap,
               kj::TlsContext* tls = nullptr);
  ~api_listener();

  /// Accepts forever; never resolves and never rejects (accept errors are
  /// retried). The caller keeps the promise.
  kj::Promise<void> run();

  /// Connections open now, and of those not authenticated (diagnostics).
  std::size_t open_connections() const {
    return open_;
  }
  std::size_t unauthenticated() const {
    return waiting_.size();
  }

private:
  friend class connection_auth;
  struct connection;

  kj::Promise<void> accept_loop();
  void admit(kj::Own<kj::AsyncIoStream> stream);
  void authenticated(connection_auth& a);
  void closed(connection_auth& a);
  void taskFailed(kj::Exception&& e) override;

  kj::AsyncIoContext& io_;
  kj::Own<kj::ConnectionReceiver> receiver_;
  capnp::ReaderOptions opts_;
  listener_limits limits_;
  make_bootstrap bootstrap_;
  kj::TlsContext* tls_;
  /// Oldest first: the eviction order.
  std::list<std::shared_ptr<connection_auth>> waiting_;
  std::size_t open_ = 0;
  // Accept-error burst: back-off and one log line per burst.
  std::chrono::milliseconds backoff_{0};
  uint64_t failed_accepts_ = 0;
  std::chrono::steady_clock::time_point burst_start_;
  uint64_t evicted_ = 0;
  std::chrono::steady_clock::time_point last_evict_log_{};
  kj::TaskSet tasks_;
};

} // namespace rayd::rpc
