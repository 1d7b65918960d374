#pragma once
// Listening sockets with precise errors (which address, which port, why),
// and accepting on them without ever giving up (docs/architecture.md: an
// accept error never ends a listener).

#include <chrono>
#include <cstdint>
#include <string>

#include <caf/expected.hpp>

namespace rayd {

struct listener {
  int fd = -1;
  uint16_t port = 0; // the bound port (resolved when 0 was asked for)
};

/// Binds and listens on `host:port` (IPv4 or IPv6 literal, or "0.0.0.0").
/// Errors: errc::unavailable "cannot listen on 127.0.0.1:6379 (--port): Address
/// already in use"; `what` names the flag for the message.
caf::expected<listener> listen_tcp(const std::string& host, uint16_t port,
                                   const std::string& what);

/// Tries `preferred` first (when non-zero), then `port`.
caf::expected<listener> listen_tcp_preferring(const std::string& host,
                                              uint16_t preferred, uint16_t port,
                                              const std::string& what);

/// Connects to `address` (HOST:PORT) with TCP_NODELAY and CLOEXEC set;
/// returns the blocking socket. Errors: errc::invalid_argument (bad
/// address), errc::unavailable "cannot connect to <what> HOST:PORT: <errno>".
caf::expected<int> connect_tcp(const std::string& address, const std::string& what = "node");

/// The local address the kernel would use to reach `host:port` (no packet is
/// sent); "127.0.0.1" if that cannot be determined.
std::string local_address_towards(const std::string& host, uint16_t port);

/// What one accept on a non-blocking listening socket gave.
struct accept_result {
  enum kind_t {
    connection, // `fd` is a new connection (non-blocking, CLOEXEC, TCP_NODELAY)
    none,       // nothing is pending (EAGAIN), or the peer left before accept
    exhausted,  // out of descriptors or kernel memory (EMFILE, ENFILE, ENOMEM,
                // ENOBUFS): connections wait in the backlog; back off and retry
    failed,     // anything else (`error` says what); the listener still works
  };
  kind_t kind = none;
  int fd = -1;
  int error = 0; // errno for exhausted / failed
};

/// Accepts one connection from `listen_fd`, which must be non-blocking
/// (O_NONBLOCK). Never closes or otherwise ends `listen_fd`.
accept_result accept_connection(int listen_fd);

/// The accept back-off every listener follows: after `exhausted`, stop
/// polling the listening socket for `pause` (polling it would spin: the
/// backlog stays readable), and log once per burst, not once per attempt.
/// A burst ends with the next accepted connection. Plain state, no clock of
/// its own (times are passed in), so it is unit-tested; one owner thread.
class accept_backoff {
public:
  using clock_type = std::chrono::steady_clock;

  explicit accept_backoff(std::chrono::milliseconds pause = std::chrono::milliseconds{100})
    : pause_(pause) {
  }

  /// Records an `exhausted` accept at `now`. True when it starts a burst
  /// (the caller logs it then, and only then).
  bool on_exhausted(clock_type::time_point now);

  /// True while the listener should not be polled.
  bool paused(clock_type::time_point now) const {
    return in_burst_ && now < resume_at_;
  }

  /// When polling resumes (meaningful while paused).
  clock_type::time_point resume_at() const {
    return resume_at_;
  }

  /// Records an accepted connection; returns how many `exhausted` accepts
  /// the burst it ends held (0 when there was none), for a "recovered" log.
  uint64_t on_accepted();

  bool in_burst() const {
    return in_burst_;
  }

private:
  std::chrono::milliseconds pause_;
  bool in_burst_ = false;
  uint64_t burst_failures_ = 0;
  clock_type::time_point resume_at_{};
};

} // namespace rayd
