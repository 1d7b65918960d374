#pragma once
// The connections of a node port before and after they authenticate
// (docs/tasks.md, "The node port"): who may stay, for how long, and what a
// HELLO must say. Plain state with time passed in, so the limits are
// unit-tested without sockets.
//
// A connection's life on the node port:
//
//   accepted ──(more than max_unauthenticated wait already)──► closed at once
//      │
//      ▼
//   UNAUTHENTICATED ──(no valid HELLO within hello_timeout, a bad or
//      │               wrong-token HELLO, any other frame, peer EOF)──► closed
//      │ HELLO with the cluster token
//      ▼
//   AUTHENTICATED (driver or peer) ──(peer EOF, malformed frame)──► closed
//      │ its LEASE granted
//      ▼
//   handed over to a worker process (no longer in the table)
//
// Threads: the task server's loop thread only.

#include <chrono>
#include <cstddef>
#include <cstdint>
#include <map>
#include <memory>
#include <optional>
#include <string>
#include <vector>

#include <caf/expected.hpp>

#include "actors/node/object_store.hpp"
#include "common/wire.hpp"

namespace rayd::node {

/// How long a new connection may take to present a valid HELLO. Beyond it
/// the node closes it, so idle sockets cannot pile up (docs/tasks.md).
constexpr std::chrono::seconds hello_timeout{5};

/// How many connections may wait for their HELLO at once on one node port;
/// a connection beyond it is closed as soon as it is accepted.
constexpr std::size_t max_unauthenticated = 256;

/// A PUT being received on a connection.
struct put_state {
  bool active = false;
  std::optional<object_store::pending> pending; // none when the store refused
  std::string object_id;
  uint64_t size = 0;
  uint64_t got = 0;
  caf::error error;
};

struct connection {
  using clock_type = std::chrono::steady_clock;
  uint64_t id = 0;
  int fd = -1;
  bool authed = false;
  std::string role;   // "driver" or "peer" once authed
  std::string job_id; // from the HELLO
  wire::frame_reader reader;
  clock_type::time_point opened{};
  put_state put;
  bool queued = false; // its LEASE waits in the lease queue
};

/// Checks a frame that must be a HELLO: a rayd HELLO of a known role, with
/// `token`. Errors: errc::invalid_argument (not a rayd HELLO),
/// errc::unauthenticated (wrong cluster token).
caf::expected<wire::hello> check_hello(const wire::frame& f, const std::string& token);

class connection_table {
public:
  using clock_type = connection::clock_type;

  struct limits {
    std::chrono::milliseconds hello_timeout = node::hello_timeout;
    std::size_t max_unauthenticated = node::max_unauthenticated;
  };

  connection_table() = default;
  explicit connection_table(limits l) : limits_(l) {
  }

  /// Registers a freshly accepted `fd`, or returns nullptr when the cap of
  /// unauthenticated connections is reached (the caller closes `fd`).
  connection* admit(int fd, clock_type::time_point now);

  /// Marks `c` authenticated (it no longer counts against the cap).
  void authenticate(connection& c, const wire::hello& h);

  connection* find(uint64_t id);

  /// Removes `id` and returns it (the caller closes or hands over its fd).
  std::unique_ptr<connection> take(uint64_t id);

  /// Connections that have not authenticated within the timeout at `now`.
  std::vector<uint64_t> overdue(clock_type::time_point now) const;

  /// True if an authenticated driver of `job_id` is still connected.
  bool has_driver_of(const std::string& job_id) const;

  std::size_t size() const {
    return conns_.size();
  }
  std::size_t unauthenticated() const {
    return unauthenticated_;
  }

  /// Every connection (shutdown only).
  std::map<uint64_t, std::unique_ptr<connection>>& all() {
    return conns_;
  }

private:
  limits limits_;
  std::map<uint64_t, std::unique_ptr<connection>> conns_;
  std::size_t unauthenticated_ = 0;
  uint64_t next_id_ = 1;
};

} // namespace rayd::node
