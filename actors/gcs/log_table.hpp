#pragma once
// Job logs in the GCS store ("job_logs" table), so they survive the node the
// entrypoint ran on and head restarts.
//
// Layout: a log is cut into fixed blocks of `block_bytes`; block k holds the
// bytes [k*B, (k+1)*B) under "b/<id>\0<k as 8 big-endian bytes>", and the
// log's length is under "n/<id>". Reading any offset is one lookup; an append
// rewrites at most the one partial tail block. Appends are idempotent by
// offset: bytes the log already has are skipped, a gap is refused.
//
// Group commit as in job_table: append() and drop() stage, commit() writes
// blocks and lengths in one durable batch; a failed commit discards what was
// staged, lengths included (persistence/table.hpp), so a supervisor's retry
// of the same offset appends the bytes again. Not thread-safe: owned by the
// job log actor.

#include <cstddef>
#include <cstdint>
#include <string>
#include <string_view>

#include <caf/error.hpp>
#include <caf/expected.hpp>

#include "persistence/store.hpp"
#include "persistence/table.hpp"

namespace rayd::gcs {

class log_table {
public:
  static constexpr std::size_t block_bytes = 64 * 1024;

  explicit log_table(persistence::store& db);

  /// Reads the lengths of every log.
  caf::error load();

  /// Length of the log of `id` (0 if it has none), staged bytes included.
  uint64_t length(const std::string& id) const;

  /// Length of what the last successful commit made durable.
  uint64_t durable_length(const std::string& id) const;

  /// Stages the bytes `data` that start at `offset`. Only what lies beyond
  /// the current length is added; an `offset` past the end adds nothing.
  /// Returns the length afterwards.
  caf::expected<uint64_t> append(const std::string& id, uint64_t offset,
                                 std::string_view data);

  /// Up to `max_bytes` from `offset` (fewer at the end of the log).
  caf::expected<std::string> read(const std::string& id, uint64_t offset,
                                  std::size_t max_bytes);

  /// Stages the removal of the whole log.
  void drop(const std::string& id);

  bool dirty() const {
    return lengths_.dirty() || blocks_.dirty();
  }

  caf::error commit();

  /// How a length is stored: decimal text.
  struct length_codec {
    using row_type = uint64_t;
    static std::string encode(uint64_t n);
    static caf::expected<uint64_t> decode(const std::string& id,
                                          const std::string& bytes);
  };

private:
  caf::expected<std::string> block(const std::string& id, uint64_t index) const;

  persistence::store& db_;
  /// "n/<id>" → length; held in memory.
  persistence::cached_table<length_codec> lengths_;
  /// "b/<id>\0<index>" → block bytes; read from the store.
  persistence::table<persistence::bytes_codec> blocks_;
};

} // namespace rayd::gcs
