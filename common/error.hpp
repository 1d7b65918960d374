#pragma once
// The project's one error type: `rayd::errc` codes inside `caf::error`, with a
// human message as context. Every module boundary returns `caf::expected<T>` or
// `caf::error`; foreign errors (rocksdb::Status, kj::Exception, errno) are
// translated at the edge that meets them.

#include <cstdint>
#include <string>

#include <caf/atom.hpp>
#include <caf/error.hpp>
#include <caf/make_message.hpp>

namespace rayd {

enum class errc : uint8_t {
  none = 0,
  invalid_argument,   // malformed input: flags, JSON, payloads
  not_found,          // a key, node or file that does not exist
  already_exists,     // a unique id used twice
  unauthenticated,    // missing or wrong cluster token
  wrong_cluster,      // a node or client of another cluster (cluster_id mismatch)
  storage_error,      // the persistent store failed (I/O, corruption, locked)
  unavailable,        // a peer cannot be reached (yet)
  timeout,            // a deadline passed
  internal,           // a broken invariant: a bug
};

/// Category atom under which `errc` values travel inside `caf::error`.
constexpr caf::atom_value errc_category = caf::atom("rayd");

const char* to_string(errc x);

/// Builds an error with a human-readable message.
caf::error make_error(errc code, std::string message);

/// The code of `err` if it is one of ours, else `errc::internal` (or `none`).
errc code_of(const caf::error& err);

/// One line for humans: the message if present, else the code's name; works
/// for CAF's own errors too (e.g. "system: connection refused").
std::string describe(const caf::error& err);

} // namespace rayd
