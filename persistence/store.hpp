#pragma once
// The GCS's persistent store: a handful of named tables of byte keys → byte
// values. Two implementations: RocksDB (one column family per table) for real
// use and an in-memory map for unit tests.
//
// Durability contract: when `write()` returns no error, the whole batch is on
// disk (fsync'd) and is applied atomically — all of it or none of it survives
// a crash. Callers group many changes into one batch to amortize the fsync
// (group commit); see actors/gcs for where that happens.
//
// Thread-safety: a store may be used from several threads at once.

#include <cstddef>
#include <limits>
#include <memory>
#include <optional>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

#include <caf/error.hpp>
#include <caf/expected.hpp>

namespace rayd::persistence {

/// The tables every store has. Opening a store creates the missing ones.
/// Adding a table is adding a name here; removing one is never done.
inline const std::vector<std::string>& table_names() {
  static const std::vector<std::string> names{"meta",   "nodes", "kv",
                                              "jobs",   "actors", "blobs",
                                              "job_logs", "autoscale_instances",
                                              "autoscale_requests"};
  return names;
}

/// One change in a batch: a put when `value` holds a value, else a delete.
struct write_op {
  std::string table;
  std::string key;
  std::optional<std::string> value;

  static write_op put(std::string table, std::string key, std::string value) {
    return {std::move(table), std::move(key), std::move(value)};
  }
  static write_op del(std::string table, std::string key) {
    return {std::move(table), std::move(key), std::nullopt};
  }
};

using key_value = std::pair<std::string, std::string>;

class store {
public:
  virtual ~store() = default;

  /// The value under `key`, or nullopt if there is none.
  /// Errors: errc::invalid_argument for an unknown table, errc::storage_error.
  virtual caf::expected<std::optional<std::string>>
  get(std::string_view table, std::string_view key) = 0;

  /// Applies `batch` atomically and durably (see the contract above).
  /// An empty batch is a no-op. Errors: as for get().
  virtual caf::error write(const std::vector<write_op>& batch) = 0;

  /// All entries of `table` whose key starts with `prefix`, in key order,
  /// at most `limit` of them.
  virtual caf::expected<std::vector<key_value>>
  scan(std::string_view table, std::string_view prefix = {},
       std::size_t limit = std::numeric_limits<std::size_t>::max())
    = 0;

  /// Convenience wrappers around write() for one change.
  caf::error put(std::string_view table, std::string_view key,
                 std::string_view value) {
    return write({write_op::put(std::string{table}, std::string{key},
                                std::string{value})});
  }
  caf::error del(std::string_view table, std::string_view key) {
    return write({write_op::del(std::string{table}, std::string{key})});
  }
};

/// Options of the RocksDB store. Every field states its default.
struct rocksdb_options {
  /// Directory of the database. REQUIRED (no default).
  std::string path;
  /// Create the directory and database if missing. Default: true.
  bool create_if_missing = true;
  /// fsync every write batch (the durability contract). Default: true.
  /// Only benchmarks that measure the cost of durability turn this off.
  bool sync = true;
};

/// Opens (creating if allowed) a RocksDB store with all table_names().
/// Errors: errc::storage_error with a one-line reason, e.g. "storage
/// directory /x is in use by another process (LOCK held)", "cannot create
/// storage directory /x: Permission denied", "storage /x is corrupt: ...".
caf::expected<std::unique_ptr<store>> open_rocksdb(const rocksdb_options& opts);

/// A store kept in memory, for unit tests. Same semantics minus durability.
std::unique_ptr<store> make_memory_store();

} // namespace rayd::persistence
