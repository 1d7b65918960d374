#pragma once
// Content-addressed blobs in the GCS store ("blobs" table): working_dir
// packages now, task code later. A blob is named by the SHA-256 of its bytes
// and stored in chunks of `chunk_bytes` ("d/<hash><chunk as 8 big-endian
// bytes>") plus its size ("m/<hash>"), so nodes can fetch it piecewise.
// Every put is durable when it returns. Not thread-safe: owned by the blob
// actor.

#include <cstddef>
#include <cstdint>
#include <optional>
#include <string>
#include <string_view>

#include <caf/error.hpp>
#include <caf/expected.hpp>

#include "persistence/store.hpp"

namespace rayd::gcs {

class blob_table {
public:
  static constexpr std::size_t chunk_bytes = 1024 * 1024;
  /// The largest blob accepted. Default 1 GiB (task code can be big; the
  /// 100 MiB working_dir limit is rayctl's and the API's).
  explicit blob_table(persistence::store& db,
                      std::size_t max_bytes = std::size_t{1} << 30);

  /// Stores `data` under `hash`, which must be its SHA-256 (lower-case hex).
  /// Returns false if it was there already. Errors: errc::invalid_argument
  /// (bad hash, hash mismatch, too large), errc::storage_error.
  caf::expected<bool> put(const std::string& hash, std::string_view data);

  /// The blob's size, or nullopt if there is none.
  caf::expected<std::optional<uint64_t>> size(const std::string& hash);

  /// Up to `max_bytes` from `offset`. Errors: errc::not_found.
  caf::expected<std::string> read(const std::string& hash, uint64_t offset,
                                  std::size_t max_bytes);

  caf::error drop(const std::string& hash);

  std::size_t max_bytes() const {
    return max_bytes_;
  }

private:
  persistence::store& db_;
  std::size_t max_bytes_;
};

} // namespace rayd::gcs
