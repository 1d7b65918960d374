// The in-memory store: one ordered map per table behind a single mutex. It
// mirrors the RocksDB store's semantics (key order, prefix scans, atomic
// batches, unknown-table errors) so unit tests of the layers above can run
// without a disk; it has no durability.

#include <map>
#include <mutex>

#include "common/error.hpp"
#include "persistence/store.hpp"

namespace rayd::persistence {

namespace {

// std::less<> makes lookups by string_view work without building a string.
using table = std::map<std::string, std::string, std::less<>>;

caf::error unknown_table(std::string_view name) {
  return make_error(errc::invalid_argument,
                    "unknown table '" + std::string{name} + "'");
}

class memory_store final : public store {
public:
  memory_store() {
    for (const auto& name : table_names())
      tables_.emplace(name, table{});
  }

  caf::expected<std::optional<std::string>>
  get(std::string_view table_name, std::string_view key) override {
    std::lock_guard<std::mutex> guard{mtx_};
    auto t = tables_.find(table_name);
    if (t == tables_.end())
      return unknown_table(table_name);
    auto i = t->second.find(key);
    if (i == t->second.end())
      return std::optional<std::string>{};
    return std::optional<std::string>{i->second};
  }

  caf::error write(const std::vector<write_op>& batch) override {
    std::lock_guard<std::mutex> guard{mtx_};
    // Validate everything before touching anything: a batch with one bad op
    // must leave the store unchanged, like a rejected RocksDB WriteBatch.
    for (const auto& op : batch)
      if (tables_.find(op.table) == tables_.end())
        return unknown_table(op.table);
    for (const auto& op : batch) {
      auto& t = tables_.find(op.table)->second;
      if (op.value)
        t.insert_or_assign(op.key, *op.value);
      else
        t.erase(op.key);
    }
    return caf::none;
  }

  caf::expected<std::vector<key_value>>
  scan(std::string_view table_name, std::string_view prefix,
       std::size_t limit) override {
    std::lock_guard<std::mutex> guard{mtx_};
    auto t = tables_.find(table_name);
    if (t == tables_.end())
      return unknown_table(table_name);
    std::vector<key_value> result;
    // Keys sharing a prefix are contiguous in key order and start at the
    // prefix's lower bound.
    for (auto i = t->second.lower_bound(prefix);
         i != t->second.end() && result.size() < limit; ++i) {
      if (i->first.compare(0, prefix.size(), prefix) != 0)
        break;
      result.emplace_back(i->first, i->second);
    }
    return result;
  }

private:
  std::mutex mtx_;
  std::map<std::string, table, std::less<>> tables_;
};

} // namespace

std::unique_ptr<store> make_memory_store() {
  return std::make_unique<memory_store>();
}

} // namespace rayd::persistence
