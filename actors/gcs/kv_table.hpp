#pragma once
// The GCS internal KV: namespaced byte keys and values in the store's "kv"
// table (stored key = namespace + '\0' + key).
//
// Group commit: put() and del() only *stage* a change (later reads see it at
// once); commit() writes everything staged in one durable batch. The KV actor
// answers a writer only after the commit that holds its change succeeded, so
// a client is never told about a change that is not on disk. Not thread-safe.

#include <cstddef>
#include <map>
#include <optional>
#include <string>
#include <vector>

#include <caf/error.hpp>
#include <caf/expected.hpp>

#include "persistence/store.hpp"

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
    return !staged_.empty();
  }

  /// Number of staged changes.
  std::size_t staged() const {
    return staged_.size();
  }

  /// Writes all staged changes in one durable batch. On failure the staged
  /// changes are dropped (their writers must be told the error).
  caf::error commit();

private:
  caf::error check(const std::string& ns, const std::string& key) const;

  persistence::store& db_;
  /// Staged changes by stored key; nullopt is a delete.
  std::map<std::string, std::optional<std::string>> staged_;
};

} // namespace rayd::gcs
