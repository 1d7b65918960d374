#include "actors/gcs/log_table.hpp"

#include <algorithm>

#include "common/error.hpp"

namespace rayd::gcs {

namespace {

constexpr const char* table = "job_logs";

/// The key of block `index` of a log, relative to the "b/" prefix.
std::string block_key(const std::string& id, uint64_t index) {
  std::string key = id;
  key += '\0';
  for (int shift = 56; shift >= 0; shift -= 8)
    key += static_cast<char>((index >> shift) & 0xff);
  return key;
}

} // namespace

std::string log_table::length_codec::encode(uint64_t n) {
  return std::to_string(n);
}

caf::expected<uint64_t> log_table::length_codec::decode(const std::string& id,
                                                        const std::string& bytes) {
  try {
    std::size_t used = 0;
    auto n = std::stoull(bytes, &used);
    if (used == bytes.size())
      return static_cast<uint64_t>(n);
  } catch (const std::exception&) {
  }
  return make_error(errc::storage_error, "corrupt log length for job " + id);
}

log_table::log_table(persistence::store& db)
  : db_(db), lengths_(db, table, "n/"), blocks_(db, table, "b/") {
}

caf::error log_table::load() {
  return lengths_.load();
}

uint64_t log_table::length(const std::string& id) const {
  auto* n = lengths_.find(id);
  return n ? *n : 0;
}

uint64_t log_table::durable_length(const std::string& id) const {
  auto* n = lengths_.find_durable(id);
  return n ? *n : 0;
}

caf::expected<std::string> log_table::block(const std::string& id,
                                            uint64_t index) const {
  auto b = blocks_.get(block_key(id, index));
  if (!b)
    return b.error();
  return b->value_or(std::string{});
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
    blocks_.stage(block_key(id, index), std::move(current));
    len += take;
    data.remove_prefix(take);
  }
  lengths_.stage(id, len);
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
    blocks_.erase(block_key(id, k));
  lengths_.erase(id);
}

caf::error log_table::commit() {
  return persistence::commit_all(db_, {&lengths_, &blocks_});
}

} // namespace rayd::gcs
