#pragma once
// The GCS job table: one row per submitted job, persisted as JSON in the
// store's "jobs" table (keyed by submission id; a persistence::cached_table).
//
// Group commit: stage() and stage_erase() change the rows in memory at once
// and queue the write; commit() writes everything queued in one durable
// batch. A failed commit discards the queued changes: the rows are again what
// is on disk (persistence/table.hpp). The job manager answers a caller only
// after the commit holding its change, so nobody is told about a state that
// is not on disk. Not thread-safe: owned by the job manager actor.

#include <cstddef>
#include <cstdint>
#include <string>
#include <vector>

#include <caf/error.hpp>
#include <caf/expected.hpp>

#include "actors/job_types.hpp"
#include "persistence/store.hpp"
#include "persistence/table.hpp"

namespace rayd::gcs {

/// How much finished-job history the head keeps. Every field states its
/// default; 0 disables that bound.
struct retention_policy {
  /// Terminal jobs kept; beyond it the oldest (by end time) are deleted.
  /// Default 1000.
  std::size_t max_count = 1000;
  /// Terminal jobs older than this (since they ended) are deleted.
  /// Default 7 days.
  int64_t max_age_ms = int64_t{7} * 24 * 3600 * 1000;
};

class job_table {
public:
  explicit job_table(persistence::store& db);

  /// Reads every row (replacing what is in memory).
  caf::error load();

  const job_info* find(const std::string& id) const;

  /// Inserts or replaces `row` in memory and queues its write.
  void stage(const job_info& row);

  /// Removes the row in memory and queues its delete.
  void stage_erase(const std::string& id);

  bool dirty() const {
    return rows_.dirty();
  }

  /// Writes the queued changes in one durable batch. On failure they are
  /// discarded (the caller reports the error and re-derives its state).
  caf::error commit();

  /// All rows in admission order.
  std::vector<const job_info*> by_seq() const;

  std::size_t size() const {
    return rows_.size();
  }

  /// The next admission number (one above every row ever loaded or staged).
  uint64_t next_seq() {
    return ++max_seq_;
  }

  /// Terminal jobs that `policy` says to delete at `now_ms`: those past the
  /// age bound and, beyond the count bound, the oldest by end time.
  std::vector<std::string> retention_victims(const retention_policy& policy,
                                             int64_t now_ms) const;

  /// How a row is stored: JSON (persistence/table.hpp's codec contract).
  struct codec {
    using row_type = job_info;
    static std::string encode(const job_info& j);
    static caf::expected<job_info> decode(const std::string& key,
                                          const std::string& bytes);
  };

private:
  persistence::cached_table<codec> rows_;
  /// The highest admission number handed out or loaded; a failed commit does
  /// not lower it (a number is never given twice).
  uint64_t max_seq_ = 0;
};

/// Checks what a client submits: a non-empty entrypoint of at most 64 KiB
/// without NUL bytes, metadata ≤ 64 KiB, environment variable names
/// [A-Za-z_][A-Za-z0-9_]* and values without NUL (≤ 1 MiB in all),
/// non-negative finite resources, a working_dir that is a package URI or
/// file:///DIR, and the submission id (one is generated when empty).
/// Errors: errc::invalid_argument saying what is wrong.
caf::error check_submission(job_submission& s);

/// Checks a client-chosen submission id: 1–128 characters of [A-Za-z0-9_.-].
/// Errors: errc::invalid_argument saying what is allowed.
caf::error check_submission_id(const std::string& id);

} // namespace rayd::gcs
