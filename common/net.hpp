#pragma once
// Listening sockets with precise errors (which address, which port, why).

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

} // namespace rayd
