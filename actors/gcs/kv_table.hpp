#pragma once
// The GCS internal KV: namespaced byte keys and values in the store's "kv"
// table (stored key = namespace + '\0' + key).
//
// Group commit: put() and del() only *stage* a change (later calls of this
// table see it at once); commit() writes everything staged in one durable
// batch, and a failed commit discards it (persistence/table.hpp). The KV
// actor answers a writer, and a reader whose answer depends on a staged
// change, only after the commit that holds it succeeded, so a client is never
// told about a change that is not on disk. Not thread-safe.

#include <cstddef>
#include <optional>
#include <string>
#include <vector>

#include <caf/error.hpp>
#include <caf/expected.hpp>

#include "persistence/store.hpp"
#include "persistence/table.hpp"

namespace rayd::gcs {

class kv_table {
public:
  /// Limits on what a client may store; violations are errc::invalid_argument.
  static constexpr std::size_t max_key_bytes = 64 * 1024;
  static constexpr std::size_t max_value_bytes = 16 * 1024 * 1024;

  explicit kv_table(persistence::store& db);

  /// Stages a put. With `overwrite` false an existing key is left alone.
  /// Returns true if the key did not exist before.
  caf::expected<bool> put(const std::string& ns, const std::string& key,
                          std::string value, bool overwrite);

  caf::expected<std::optional<std::string>> get(const std::string& ns,
                                                const std::string& key);

  /// Stages a delete; returns true if the key existed.
  caf::expected<bool> del(const std::string& ns, const std::string& key);

  /// Keys of `ns` starting with `prefix`, sorted (staged changes included).
  caf::expected<std::vector<std::string>> keys(const std::string& ns,
                                               const std::string& prefix);

  /// Whether changes are staged and not yet committed.
  bool dirty() const {
    return rows_.dirty();
  }

  /// Number of staged changes.
  std::size_t staged() const {
    return rows_.staged();
  }

  /// Whether `key` of `ns` has a staged change (a read of it must wait for
  /// the commit).
  bool is_staged(const std::string& ns, const std::string& key) const;

  /// Whether a key of `ns` starting with `prefix` has a staged change.
  bool is_staged_under(const std::string& ns, const std::string& prefix) const;

  /// Writes all staged changes in one durable batch. On failure the staged
  /// changes are discarded (their writers must be told the error).
  caf::error commit() {
    return rows_.commit();
  }

private:
  caf::error check(const std::string& ns, const std::string& key) const;

  /// Stored key = namespace + '\0' + key.
  persistence::table<persistence::bytes_codec> rows_;
};

} // namespace rayd::gcs
