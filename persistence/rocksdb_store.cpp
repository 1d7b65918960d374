// The RocksDB store: one column family per table. rocksdb::Status never leaves
// this file; every failure becomes errc::storage_error (or not_found /
// invalid_argument) with a one-line message that names the storage path, since
// that message is what an operator sees when the head refuses to start.

#include <algorithm>
#include <filesystem>
#include <map>
#include <set>
#include <system_error>

#include <rocksdb/db.h>
#include <rocksdb/options.h>
#include <rocksdb/slice.h>
#include <rocksdb/status.h>
#include <rocksdb/write_batch.h>

#include "common/error.hpp"
#include "persistence/store.hpp"

namespace rayd::persistence {

namespace {

rocksdb::Slice to_slice(std::string_view x) {
  return {x.data(), x.size()};
}

bool contains(const std::string& haystack, std::string_view needle) {
  return haystack.find(needle) != std::string::npos;
}

// Error messages travel to logs and terminals as single lines.
std::string one_line(std::string x) {
  std::replace_if(
    x.begin(), x.end(), [](char c) { return c == '\n' || c == '\r'; }, ' ');
  return x;
}

// RocksDB IOError messages end in ": <strerror>"; that tail is the reason a
// human needs ("Permission denied", "Not a directory").
std::string reason_of(const rocksdb::Status& st) {
  std::string msg = st.getState() != nullptr ? st.getState() : st.ToString();
  auto pos = msg.rfind(": ");
  return pos == std::string::npos ? msg : msg.substr(pos + 2);
}

caf::error storage_error(std::string message) {
  return make_error(errc::storage_error, one_line(std::move(message)));
}

// Translates a failed DB::Open (or ListColumnFamilies) for `path`.
caf::error open_error(const rocksdb::Status& st, const std::string& path) {
  const std::string msg = st.ToString();
  if (st.IsInvalidArgument() && contains(msg, "does not exist"))
    return make_error(errc::not_found,
                      one_line("no storage found in " + path
                               + " (creating it was not allowed)"));
  // flock() on LOCK fails with EAGAIN when another process holds it; RocksDB
  // itself refuses a second open from the same process with "lock hold by
  // current process" (ENOLCK). Both mean: someone else owns this directory.
  if (st.IsIOError()
      && (contains(msg, "Resource temporarily unavailable")
          || contains(msg, "lock hold by current process")
          || contains(msg, "No locks available")))
    return storage_error("storage directory " + path
                         + " is in use by another process (is another head "
                           "running with it?)");
  if (st.IsIOError() && contains(msg, "mkdir"))
    return storage_error("cannot create storage directory " + path + ": "
                         + reason_of(st));
  if (st.IsIOError())
    return storage_error("cannot open storage directory " + path + ": "
                         + reason_of(st));
  if (st.IsCorruption())
    return storage_error("storage " + path + " is corrupt: "
                         + (st.getState() != nullptr ? st.getState() : msg));
  return storage_error("cannot open storage " + path + ": " + msg);
}

caf::error unknown_table(std::string_view name) {
  return make_error(errc::invalid_argument,
                    "unknown table '" + std::string{name} + "'");
}

class rocksdb_store final : public store {
public:
  rocksdb_store(std::string path, bool sync, std::unique_ptr<rocksdb::DB> db,
                std::vector<rocksdb::ColumnFamilyHandle*> handles)
    : path_(std::move(path)), db_(std::move(db)), handles_(std::move(handles)) {
    write_options_.sync = sync;
    for (auto* h : handles_)
      by_name_.emplace(h->GetName(), h);
  }

  ~rocksdb_store() override {
    // Handles must go before the DB they belong to.
    for (auto* h : handles_)
      db_->DestroyColumnFamilyHandle(h);
    // Close() reports errors only for the caller's information; a destructor
    // has nobody to tell, and the data is already durable per write().
    (void) db_->Close();
  }

  caf::expected<std::optional<std::string>>
  get(std::string_view table, std::string_view key) override {
    auto* cf = lookup(table);
    if (cf == nullptr)
      return unknown_table(table);
    std::string value;
    auto st = db_->Get(rocksdb::ReadOptions{}, cf, to_slice(key), &value);
    if (st.IsNotFound())
      return std::optional<std::string>{};
    if (!st.ok())
      return failure("get from table " + std::string{table}, st);
    return std::optional<std::string>{std::move(value)};
  }

  caf::error write(const std::vector<write_op>& batch) override {
    if (batch.empty())
      return caf::none;
    rocksdb::WriteBatch wb;
    // An unknown table anywhere rejects the whole batch before any write.
    for (const auto& op : batch) {
      auto* cf = lookup(op.table);
      if (cf == nullptr)
        return unknown_table(op.table);
      auto st = op.value ? wb.Put(cf, to_slice(op.key), to_slice(*op.value))
                         : wb.Delete(cf, to_slice(op.key));
      if (!st.ok())
        return failure("batch", st);
    }
    auto st = db_->Write(write_options_, &wb);
    if (!st.ok())
      return failure("write", st);
    return caf::none;
  }

  caf::expected<std::vector<key_value>>
  scan(std::string_view table, std::string_view prefix,
       std::size_t limit) override {
    auto* cf = lookup(table);
    if (cf == nullptr)
      return unknown_table(table);
    std::vector<key_value> result;
    if (limit == 0)
      return result;
    std::unique_ptr<rocksdb::Iterator> it{
      db_->NewIterator(rocksdb::ReadOptions{}, cf)};
    const auto pfx = to_slice(prefix);
    for (it->Seek(pfx); it->Valid() && it->key().starts_with(pfx); it->Next()) {
      result.emplace_back(it->key().ToString(), it->value().ToString());
      if (result.size() >= limit)
        break;
    }
    // Valid() turns false on both end-of-data and error; only status() tells.
    if (auto st = it->status(); !st.ok())
      return failure("scan of table " + std::string{table}, st);
    return result;
  }

private:
  rocksdb::ColumnFamilyHandle* lookup(std::string_view table) const {
    // Only our tables are addressable; extra column families found on disk
    // (e.g. from a newer version) are opened but not exposed.
    const auto& names = table_names();
    if (std::find(names.begin(), names.end(), table) == names.end())
      return nullptr;
    auto i = by_name_.find(table);
    return i == by_name_.end() ? nullptr : i->second;
  }

  caf::error failure(const std::string& what, const rocksdb::Status& st) {
    return storage_error("storage " + path_ + ": " + what
                         + " failed: " + st.ToString());
  }

  std::string path_;
  std::unique_ptr<rocksdb::DB> db_;
  std::vector<rocksdb::ColumnFamilyHandle*> handles_;
  std::map<std::string, rocksdb::ColumnFamilyHandle*, std::less<>> by_name_;
  rocksdb::WriteOptions write_options_;
};

} // namespace

caf::expected<std::unique_ptr<store>>
open_rocksdb(const rocksdb_options& opts) {
  const std::string& path = opts.path;
  if (path.empty())
    return make_error(errc::invalid_argument, "storage path is empty");

  // RocksDB creates only the last path component; creating the parents here
  // lets a fresh --storage path work and yields the OS's reason on failure.
  // Without create_if_missing, check first: RocksDB would otherwise create
  // the (empty) directory before noticing there is no database in it.
  std::error_code ec;
  if (opts.create_if_missing) {
    std::filesystem::create_directories(path, ec);
    if (ec)
      return storage_error("cannot create storage directory " + path + ": "
                           + ec.message());
  } else if (!std::filesystem::exists(path, ec) && !ec) {
    return make_error(errc::not_found,
                      one_line("no storage found in " + path
                               + " (creating it was not allowed)"));
  }

  rocksdb::DBOptions db_opts;
  db_opts.create_if_missing = opts.create_if_missing;
  db_opts.create_missing_column_families = true;
  // This is a small metadata store, not a data plane: cap files, threads and
  // log growth so the head stays light on memory and file descriptors.
  db_opts.max_open_files = 256;
  db_opts.max_background_jobs = 2;
  db_opts.keep_log_file_num = 4;
  db_opts.max_log_file_size = 4 << 20;
  db_opts.db_write_buffer_size = 32 << 20;

  rocksdb::ColumnFamilyOptions cf_opts;
  // Small memtables: tables hold metadata, and seven of them each get one.
  cf_opts.write_buffer_size = 4 << 20;
  cf_opts.max_write_buffer_number = 2;

  // RocksDB refuses to open a DB without naming every column family it has,
  // so start from what is on disk. A failed listing just means "no DB yet" or
  // a problem DB::Open will report with a better status.
  std::set<std::string> names{rocksdb::kDefaultColumnFamilyName};
  names.insert(table_names().begin(), table_names().end());
  std::vector<std::string> existing;
  if (rocksdb::DB::ListColumnFamilies(db_opts, path, &existing).ok())
    names.insert(existing.begin(), existing.end());

  std::vector<rocksdb::ColumnFamilyDescriptor> descriptors;
  for (const auto& name : names)
    descriptors.emplace_back(name, cf_opts);

  std::vector<rocksdb::ColumnFamilyHandle*> handles;
  rocksdb::DB* raw = nullptr;
  auto st = rocksdb::DB::Open(db_opts, path, descriptors, &handles, &raw);
  if (!st.ok())
    return open_error(st, path);
  return std::unique_ptr<store>{std::make_unique<rocksdb_store>(
    path, opts.sync, std::unique_ptr<rocksdb::DB>{raw}, std::move(handles))};
}

} // namespace rayd::persistence
