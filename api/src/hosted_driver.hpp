#pragma once
// A driver that runs inside the head for a remote client's session
// (docs/client.md): the same driver class in-cluster programs use, made with
// the client's job id and the code the client uploaded, instead of its own
// process's executable and RAYD_JOB_ID. Plus what a session needs to stream
// a large object to the client without holding it.
//
// Thread rules: as core::runtime (every member from any thread).

#include <cstddef>
#include <functional>
#include <memory>
#include <optional>
#include <string>
#include <string_view>

#include "common/wire.hpp"
#include "rayd/core.hpp"

namespace rayd::core {

class hosted_runtime : public runtime {
public:
  /// The size of `id` when it is ready and held in a node's object store
  /// (a get would fetch it); nullopt for a value this driver holds, a
  /// pending or failed object, or an unknown id.
  virtual std::optional<std::size_t> stored_size(const object_id& id) = 0;

  /// Streams the bytes of a stored object (stored_size() said so) to
  /// `sink` in order, with the total size; throws rayd::object_lost.
  virtual void read_stored(const object_id& id,
                           const std::function<void(std::size_t, std::string_view)>& sink)
    = 0;

  /// Like put_packed(), but only straight into the home node's store (never
  /// through a buffer of `size` bytes here); throws rayd::object_store_full
  /// when that store cannot take it.
  virtual object_id put_in_store(std::size_t size, const std::function<void(char*)>& fill) = 0;
};

struct hosted_options {
  std::string api_address; // the head's own API (loopback)
  std::string token;
  std::string job_id;   // the session's job: "client-<session id>"
  wire::code_ref code;  // the client's code, uploaded by the client
};

/// Connects like rayd::init() would, but never ships code or starts an
/// embedded cluster. Throws rayd::connection_error.
std::unique_ptr<hosted_runtime> make_hosted_driver(const hosted_options& opts);

} // namespace rayd::core
