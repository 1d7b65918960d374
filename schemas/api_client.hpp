#pragma once
// A synchronous client of the head's API for rayctl, benchmarks and tests.
// Hides Cap'n Proto entirely; every call has a deadline.
//
// Thread-safety: one client belongs to the thread that connected it (it owns
// a kj event loop). Use one client per thread.

#include <chrono>
#include <memory>
#include <optional>
#include <string>
#include <vector>

#include <caf/expected.hpp>

#include "actors/types.hpp"

namespace rayd::api {

class client {
public:
  /// Connects to `address` (HOST:PORT) and authenticates with `token`.
  /// Errors: errc::unavailable ("cannot reach the head at ..."),
  /// errc::unauthenticated ("the head refused the cluster token"),
  /// errc::timeout.
  static caf::expected<std::unique_ptr<client>>
  connect(const std::string& address, const std::string& token,
          std::chrono::milliseconds timeout = std::chrono::seconds{5});

  ~client();

  caf::expected<cluster_view> status();

  caf::expected<bool> kv_put(const std::string& ns, const std::string& key,
                             const std::string& value, bool overwrite = true);
  caf::expected<std::optional<std::string>> kv_get(const std::string& ns,
                                                   const std::string& key);
  caf::expected<bool> kv_del(const std::string& ns, const std::string& key);
  caf::expected<std::vector<std::string>> kv_list(const std::string& ns,
                                                  const std::string& prefix);

  struct impl;

private:
  explicit client(std::unique_ptr<impl> p);
  std::unique_ptr<impl> impl_;
};

} // namespace rayd::api
