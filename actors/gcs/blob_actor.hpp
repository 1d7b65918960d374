#pragma once
// Message interface of the GCS blob actor (head), backed by gcs::blob_table.

#include <cstdint>
#include <string>

#include <caf/replies_to.hpp>
#include <caf/typed_actor.hpp>

#include "actors/types.hpp"

namespace rayd {

/// Content-addressed blobs (working_dir packages). Errors:
/// errc::invalid_argument (bad name, hash mismatch, too large),
/// errc::not_found, errc::storage_error.
using gcs_blob_actor = caf::typed_actor<
  /// bytes → their sha256 (storing them unless present already).
  caf::replies_to<atoms::blob_put, std::string>::with<std::string>,
  /// sha256 → size in bytes; errc::not_found if absent.
  caf::replies_to<atoms::blob_size, std::string>::with<uint64_t>,
  /// (sha256, offset, max bytes) → bytes.
  caf::replies_to<atoms::blob_read, std::string, uint64_t, uint64_t>::with<std::string>,
  caf::reacts_to<atoms::blob_drop, std::string>>;

} // namespace rayd
