#pragma once
// Message interface of the GCS key-value actor (head), backed by
// gcs::kv_table.

#include <string>
#include <vector>

#include <caf/replies_to.hpp>
#include <caf/typed_actor.hpp>

#include "actors/types.hpp"

namespace rayd {

/// The internal KV (namespaced). Writes are group-committed: a reply means
/// the change is durable. Errors: errc::invalid_argument, errc::not_found
/// (get of a missing key), errc::storage_error.
using gcs_kv_actor = caf::typed_actor<
  /// (ns, key, value, overwrite) → whether the key was added.
  caf::replies_to<atoms::kv_put, std::string, std::string, std::string, bool>::with<bool>,
  /// (ns, key) → value.
  caf::replies_to<atoms::kv_get, std::string, std::string>::with<std::string>,
  /// (ns, key) → whether the key existed.
  caf::replies_to<atoms::kv_del, std::string, std::string>::with<bool>,
  /// (ns, prefix) → keys.
  caf::replies_to<atoms::kv_list, std::string, std::string>::with<std::vector<std::string>>,
  /// Internal: commit the staged writes.
  caf::reacts_to<atoms::flush>>;

} // namespace rayd
