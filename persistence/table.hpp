#pragma once
// Typed tables over the store: the rows of one kind in one store table (a
// column family), optionally under a key prefix, each row turned into bytes
// and back by a codec. Every GCS table (nodes, kv, jobs, job logs, and the
// actor table next) is one of these, so staging, committing and the rule for
// a failed commit exist once.
//
// A codec is a type with
//
//   using row_type = ...;
//   static std::string encode(const row_type&);
//   /// errc::storage_error naming the row when `bytes` are not a row.
//   static caf::expected<row_type> decode(const std::string& key,
//                                         const std::string& bytes);
//
// (bytes_codec below for raw values; json_codec.hpp for JSON rows.)
//
// Staging: stage() and erase() change what the table's readers see at once
// and queue the write; commit() writes every queued change in one atomic,
// durable batch. Tables that must change together commit with commit_all().
// Changes to one key coalesce: a batch holds each key's last staged value.
//
// Lifecycle of a staged change:
//
//   stage() / erase() ──► STAGED (seen by this table's readers)
//                           │
//            commit() ok ───┼──► DURABLE (on disk; seen after a restart)
//                           │
//        commit() failed ───┴──► DISCARDED (as if never staged)
//
// THE FAILED-COMMIT POLICY (one rule for every table): a failed commit
// discards everything that was staged. The table falls back to what the last
// successful commit left, which is exactly what is on disk; nothing of the
// failed batch is retried later. Why: whoever staged a change in that batch
// is answered with the error, so nobody was told it happened. Kept in memory,
// the change would be shown to later readers and made durable by the next
// commit although its writer was told it failed, and a writer retrying would
// meet its own failed change ("already exists", "not added"). Discarded, an
// error means "nothing happened": a retry does the change afresh. An owner
// that derived other in-memory state from staged rows re-derives it after a
// failed commit (group_commit hands every waiting action the error).
//
// Not thread-safe: a table belongs to one actor. The store must outlive it.

#include <cstddef>
#include <initializer_list>
#include <map>
#include <optional>
#include <string>
#include <utility>
#include <vector>

#include <caf/error.hpp>
#include <caf/expected.hpp>

#include "persistence/store.hpp"

namespace rayd::persistence {

/// The codec of raw byte rows: the value is the row.
struct bytes_codec {
  using row_type = std::string;
  static std::string encode(const std::string& row) {
    return row;
  }
  static caf::expected<std::string> decode(const std::string&,
                                           const std::string& bytes) {
    return bytes;
  }
};

/// What every table has in common, for commit_all().
class staged_table {
public:
  virtual ~staged_table() = default;

  /// Whether changes are staged and not yet committed.
  bool dirty() const {
    return staged() != 0;
  }

  /// Number of staged changes (keys).
  virtual std::size_t staged() const = 0;

protected:
  friend caf::error commit_all(store& db,
                               std::initializer_list<staged_table*> tables);

  /// Appends the write of every staged change to `ops`.
  virtual void collect(std::vector<write_op>& ops) const = 0;

  /// After the batch: `ok` makes the staged changes the durable state,
  /// otherwise they are discarded (the failed-commit policy).
  virtual void settle(bool ok) = 0;
};

/// Writes the staged changes of all `tables` in one atomic, durable batch,
/// then settles each: all of them DURABLE, or (on error) all DISCARDED.
/// Nothing staged: no write, no error. REQUIRES: every table uses `db`.
caf::error commit_all(store& db, std::initializer_list<staged_table*> tables);

/// Staging over one store table under `prefix`; keys below are relative to
/// the prefix. The base of table<> and cached_table<>.
template <class Codec>
class basic_table : public staged_table {
public:
  using row_type = typename Codec::row_type;

  basic_table(store& db, std::string name, std::string prefix = {})
    : db_(db), name_(std::move(name)), prefix_(std::move(prefix)) {
  }

  /// Stages `row` under `key` (replacing what is there).
  void stage(const std::string& key, row_type row) {
    staged_.insert_or_assign(key, std::optional<row_type>{std::move(row)});
  }

  /// Stages the removal of `key` (whether or not it exists).
  void erase(const std::string& key) {
    staged_.insert_or_assign(key, std::nullopt);
  }

  /// Whether `key` has a staged change.
  bool is_staged(const std::string& key) const {
    return staged_.count(key) != 0;
  }

  /// Whether a key starting with `prefix` has a staged change.
  bool is_staged_under(const std::string& prefix) const {
    auto i = staged_.lower_bound(prefix);
    return i != staged_.end() && i->first.compare(0, prefix.size(), prefix) == 0;
  }

  std::size_t staged() const override {
    return staged_.size();
  }

  /// commit_all() of this table alone.
  caf::error commit() {
    return commit_all(db_, {this});
  }

  store& db() const {
    return db_;
  }

protected:
  void collect(std::vector<write_op>& ops) const override {
    ops.reserve(ops.size() + staged_.size());
    for (auto& [key, row] : staged_)
      ops.push_back(row ? write_op::put(name_, prefix_ + key, Codec::encode(*row))
                        : write_op::del(name_, prefix_ + key));
  }

  store& db_;
  std::string name_;
  std::string prefix_;
  /// Staged changes by key; nullopt is a removal.
  std::map<std::string, std::optional<row_type>> staged_;
};

/// A table too large to hold in memory (KV values, log blocks): reads go to
/// the store, staged changes first.
template <class Codec>
class table : public basic_table<Codec> {
public:
  using row_type = typename Codec::row_type;
  using basic_table<Codec>::basic_table;

  /// The row under `key` (staged changes included), nullopt if none.
  /// Errors: the store's, errc::storage_error for a row that does not decode.
  caf::expected<std::optional<row_type>> get(const std::string& key) const {
    if (auto i = this->staged_.find(key); i != this->staged_.end())
      return i->second;
    auto bytes = this->db_.get(this->name_, this->prefix_ + key);
    if (!bytes)
      return bytes.error();
    if (!*bytes)
      return std::optional<row_type>{};
    auto row = Codec::decode(key, **bytes);
    if (!row)
      return row.error();
    return std::optional<row_type>{std::move(*row)};
  }

  /// Keys starting with `prefix` (staged changes included), in key order.
  caf::expected<std::vector<std::string>> keys(const std::string& prefix) const {
    auto rows = this->db_.scan(this->name_, this->prefix_ + prefix);
    if (!rows)
      return rows.error();
    std::map<std::string, bool> present;
    auto skip = this->prefix_.size();
    for (auto& kv : *rows)
      present.emplace(kv.first.substr(skip), true);
    for (auto i = this->staged_.lower_bound(prefix);
         i != this->staged_.end()
         && i->first.compare(0, prefix.size(), prefix) == 0;
         ++i)
      present[i->first] = i->second.has_value();
    std::vector<std::string> out;
    for (auto& [key, exists] : present)
      if (exists)
        out.push_back(key);
    return out;
  }

protected:
  void settle(bool) override {
    // Durable or discarded, reads go to the store from now on.
    this->staged_.clear();
  }
};

/// A table held in memory whole (nodes, jobs, log lengths): load() reads
/// every row once; after that reads never touch the store.
template <class Codec>
class cached_table : public basic_table<Codec> {
public:
  using row_type = typename Codec::row_type;
  using basic_table<Codec>::basic_table;

  /// Reads every row (replacing what is in memory, dropping staged changes).
  /// Errors: the store's, errc::storage_error for a row that does not decode.
  caf::error load() {
    auto rows = this->db_.scan(this->name_, this->prefix_);
    if (!rows)
      return rows.error();
    std::map<std::string, row_type> loaded;
    auto skip = this->prefix_.size();
    for (auto& [stored_key, bytes] : *rows) {
      auto key = stored_key.substr(skip);
      auto row = Codec::decode(key, bytes);
      if (!row)
        return row.error();
      loaded.emplace(std::move(key), std::move(*row));
    }
    rows_ = std::move(loaded);
    this->staged_.clear();
    return caf::none;
  }

  /// The row under `key` with staged changes, or nullptr. Valid until the
  /// next change to this key or the next commit.
  const row_type* find(const std::string& key) const {
    if (auto i = this->staged_.find(key); i != this->staged_.end())
      return i->second ? &*i->second : nullptr;
    return find_durable(key);
  }

  /// The row under `key` as the last successful commit left it.
  const row_type* find_durable(const std::string& key) const {
    auto i = rows_.find(key);
    return i == rows_.end() ? nullptr : &i->second;
  }

  /// For memory-only (soft) fields: the row as find() sees it, to change in
  /// place without staging. Such a change is never written by itself and is
  /// lost on restart (and with a discarded staged row).
  row_type* find_soft(const std::string& key) {
    return const_cast<row_type*>(find(key));
  }

  /// Every row with staged changes, in key order. Pointers as for find().
  std::vector<std::pair<const std::string*, const row_type*>> all() const {
    std::vector<std::pair<const std::string*, const row_type*>> out;
    out.reserve(rows_.size() + this->staged_.size());
    auto r = rows_.begin();
    auto s = this->staged_.begin();
    while (r != rows_.end() || s != this->staged_.end()) {
      if (s == this->staged_.end() || (r != rows_.end() && r->first < s->first)) {
        out.emplace_back(&r->first, &r->second);
        ++r;
        continue;
      }
      if (r != rows_.end() && r->first == s->first)
        ++r; // the staged change replaces the durable row
      if (s->second)
        out.emplace_back(&s->first, &*s->second);
      ++s;
    }
    return out;
  }

  /// Number of rows with staged changes.
  std::size_t size() const {
    auto n = rows_.size();
    for (auto& [key, row] : this->staged_) {
      bool durable = rows_.count(key) != 0;
      if (row && !durable)
        ++n;
      else if (!row && durable)
        --n;
    }
    return n;
  }

protected:
  void settle(bool ok) override {
    if (ok) {
      for (auto& [key, row] : this->staged_) {
        if (row)
          rows_.insert_or_assign(key, std::move(*row));
        else
          rows_.erase(key);
      }
    }
    this->staged_.clear();
  }

private:
  /// The durable rows by key.
  std::map<std::string, row_type> rows_;
};

} // namespace rayd::persistence
