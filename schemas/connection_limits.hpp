#pragma once
// Limits on the API port's connections (docs/architecture.md, "Connections
// and timeouts"). Plain values: included by the daemon and the listener.

#include <chrono>
#include <cstddef>

namespace rayd::rpc {

struct listener_limits {
  /// A connection must authenticate within this time after it was accepted,
  /// else it is closed. Default 5 s.
  std::chrono::milliseconds auth_timeout{5000};
  /// Connections waiting to authenticate, at most; one more closes the
  /// oldest waiting one. Default 64.
  std::size_t max_unauthenticated = 64;
};

} // namespace rayd::rpc
