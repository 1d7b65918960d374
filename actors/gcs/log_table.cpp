#include "actors/gcs/log_table.hpp"

#include <algorithm>

#include "common/error.hpp"

namespace rayd::gcs {

namespace {

constexpr const char* table = "job_logs";

std::string block_key(const std::string& id, uint64_t index) {
  std::string key = "b/" + id;
  key += '\0';
  for (int shift = 56; shift >= 0; shift -= 8)
    key += static_cast<char>((index >> shift) & 0xff);
  return key;
}

std::string length_key(const std::string& id) {
  return "n/" + id;
}

} // namespace

log_table::log_table(persistence::store& db) : db_(db) {
}

caf::error log_table::load() {
  auto rows = db_.scan(table, "n/");
  if (!rows)
    return rows.error();
  lengths_.clear();
  durable_.clear();
  staged_.clear();
  for (auto& [key, value] : *rows) {
    try {
      lengths_[key.substr(2)] = std::stoull(value);
      durable_[key.substr(2)] = lengths_[key.substr(2)];
    } catch (const std::exception&) {
      return make_error(errc::storage_error, "corrupt log length for job "
                                               + key.substr(2));
    }
  }
  return caf::none;
}

uint64_t log_table::length(const std::string& id) const {
  auto i = lengths_.find(id);
  return i == lengths_.end() ? 0 : i->second;
}

uint64_t log_table::durable_length(const std::string& id) const {
  auto i = durable_.find(id);
  return i == durable_.end() ? 0 : i->second;
}

caf::expected<std::string> log_table::block(const std::string& id,
                                            uint64_t index) {
  auto key = block_key(id, index);
  if (auto i = staged_.find(key); i != staged_.end())
    return i->second ? *i->second : std::string{};
  auto v = db_.get(table, key);
  if (!v)
    return v.error();
  return v->value_or(std::string{});
}

caf::expected<uint64_t> log_table::append(const std::string& id, uint64_t offset,
                                          std::string_view data) {
  auto len = length(id);
  if (offset > len || offset + data.size() <= len)
    return len;
  data.remove_prefix(len - offset);
  while (!data.empty()) {
    auto index = len / block_bytes;
    auto within = len % block_bytes;
    std::string current;
    if (within != 0) {
      auto b = block(id, index);
      if (!b)
        return b.error();
      current = std::move(*b);
      current.resize(within); // defensive: never keep bytes past the length
    }
    auto take = std::min<std::size_t>(block_bytes - within, data.size());
    current.append(data.data(), take);
    staged_[block_key(id, index)] = std::move(current);
    len += take;
    data.remove_prefix(take);
  }
  lengths_[id] = len;
  staged_[length_key(id)] = std::to_string(len);
  return len;
}

caf::expected<std::string> log_table::read(const std::string& id,
                                           uint64_t offset,
                                           std::size_t max_bytes) {
  auto len = length(id);
  std::string out;
  while (offset < len && out.size() < max_bytes) {
    auto index = offset / block_bytes;
    auto within = offset % block_bytes;
    auto b = block(id, index);
    if (!b)
      return b.error();
    if (b->size() <= within)
      return make_error(errc::storage_error,
                        "log of job " + id + " is missing bytes at offset "
                          + std::to_string(offset));
    auto take = std::min<std::size_t>({b->size() - within,
                                       max_bytes - out.size(),
                                       static_cast<std::size_t>(len - offset)});
    out.append(*b, within, take);
    offset += take;
  }
  return out;
}

void log_table::drop(const std::string& id) {
  auto len = length(id);
  auto blocks = (len + block_bytes - 1) / block_bytes;
  for (uint64_t k = 0; k < blocks; ++k)
    staged_[block_key(id, k)] = std::nullopt;
  staged_[length_key(id)] = std::nullopt;
  lengths_.erase(id);
}

caf::error log_table::commit() {
  if (staged_.empty())
    return caf::none;
  std::vector<persistence::write_op> ops;
  ops.reserve(staged_.size());
  for (auto& [key, value] : staged_)
    ops.push_back(value ? persistence::write_op::put(table, key, *value)
                        : persistence::write_op::del(table, key));
  if (auto err = db_.write(ops))
    return err;
  for (auto& [key, value] : staged_) {
    if (key.compare(0, 2, "n/") != 0)
      continue;
    if (value)
      durable_[key.substr(2)] = std::stoull(*value);
    else
      durable_.erase(key.substr(2));
  }
  staged_.clear();
  return caf::none;
}

} // namespace rayd::gcs
