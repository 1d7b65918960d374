#pragma once
// The GCS node table: one row per node that ever joined, persisted in the
// store's "nodes" table (JSON per row, keyed by node_id; a
// persistence::cached_table). Every mutating call commits before it returns,
// so what a caller is told is durable; a failed commit leaves the table as it
// was (the failed-commit policy of persistence/table.hpp). Not thread-safe:
// owned by the GCS node actor.
//
// Row lifecycle: see node_state in actors/types.hpp.

#include <cstddef>
#include <string>
#include <vector>

#include <caf/error.hpp>
#include <caf/expected.hpp>

#include "actors/types.hpp"
#include "persistence/store.hpp"
#include "persistence/table.hpp"

namespace rayd::gcs {

class node_table {
public:
  /// `max_dead_rows`: DEAD rows kept for history; beyond it the rows that
  /// died first are deleted. Default 1000.
  explicit node_table(persistence::store& db, std::size_t max_dead_rows = 1000);

  /// Reads all rows from the store (replacing what is in memory).
  caf::error load();

  /// Records `n` as ALIVE (a first join or a re-join of a known node_id);
  /// clears any earlier death. Returns the stored row.
  caf::expected<node_info> set_alive(node_info n, int64_t now_ms);

  /// Marks a node DEAD with a reason. Unknown id: errc::not_found. A node
  /// that is already DEAD is left as it is (first reason wins) and returned.
  caf::expected<node_info> set_dead(const std::string& node_id,
                                    std::string reason, int64_t now_ms);

  const node_info* find(const std::string& node_id) const;

  /// Applies a node's periodic report to its row in memory only (soft
  /// state: available resources, demands, object store). False for an
  /// unknown or dead node.
  bool apply_report(const node_report& r);

  /// Ids of the rows in state ALIVE.
  std::vector<std::string> alive_ids() const;

  /// All rows: the head first, then by start time.
  std::vector<node_info> rows() const;

  /// How a row is stored: JSON (persistence/table.hpp's codec contract).
  struct codec {
    using row_type = node_info;
    static std::string encode(const node_info& n);
    static caf::expected<node_info> decode(const std::string& key,
                                           const std::string& bytes);
  };

private:
  /// Stages the removal of the DEAD rows beyond max_dead_rows_.
  void trim_dead();

  std::size_t max_dead_rows_;
  persistence::cached_table<codec> rows_;
};

} // namespace rayd::gcs
