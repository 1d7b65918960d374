#include "actors/gcs/blob_table.hpp"

#include "common/package_uri.hpp"

#include <algorithm>
#include <vector>

#include "common/archive.hpp"
#include "common/error.hpp"

namespace rayd::gcs {

namespace {

constexpr const char* table = "blobs";

std::string chunk_key(const std::string& hash, uint64_t index) {
  std::string key = "d/" + hash;
  for (int shift = 56; shift >= 0; shift -= 8)
    key += static_cast<char>((index >> shift) & 0xff);
  return key;
}

std::string size_key(const std::string& hash) {
  return "m/" + hash;
}

caf::error bad_hash(const std::string& hash) {
  return make_error(errc::invalid_argument,
                    "invalid blob name '" + hash.substr(0, 80)
                      + "': expected 64 lower-case hex digits (SHA-256)");
}

} // namespace

blob_table::blob_table(persistence::store& db, std::size_t max_bytes)
  : db_(db), max_bytes_(max_bytes) {
}

caf::expected<bool> blob_table::put(const std::string& hash,
                                    std::string_view data) {
  if (!is_sha256_hex(hash))
    return bad_hash(hash);
  if (data.size() > max_bytes_)
    return make_error(errc::invalid_argument,
                      "package is " + std::to_string(data.size() >> 20)
                        + " MiB, above the limit of "
                        + std::to_string(max_bytes_ >> 20) + " MiB");
  if (sha256_hex(data) != hash)
    return make_error(errc::invalid_argument,
                      "package bytes do not match their hash " + hash
                        + " (corrupted in transit?)");
  auto existing = size(hash);
  if (!existing)
    return existing.error();
  if (*existing)
    return false;
  std::vector<persistence::write_op> ops;
  for (uint64_t i = 0; i * chunk_bytes < data.size(); ++i)
    ops.push_back(persistence::write_op::put(
      table, chunk_key(hash, i),
      std::string{data.substr(i * chunk_bytes, chunk_bytes)}));
  // The size goes last in the batch; the batch is atomic either way.
  ops.push_back(
    persistence::write_op::put(table, size_key(hash), std::to_string(data.size())));
  if (auto err = db_.write(ops))
    return err;
  return true;
}

caf::expected<std::optional<uint64_t>> blob_table::size(const std::string& hash) {
  if (!is_sha256_hex(hash))
    return bad_hash(hash);
  auto v = db_.get(table, size_key(hash));
  if (!v)
    return v.error();
  if (!*v)
    return std::optional<uint64_t>{};
  try {
    return std::optional<uint64_t>{std::stoull(**v)};
  } catch (const std::exception&) {
    return make_error(errc::storage_error, "corrupt size of blob " + hash);
  }
}

caf::expected<std::string> blob_table::read(const std::string& hash,
                                            uint64_t offset,
                                            std::size_t max_bytes) {
  auto total = size(hash);
  if (!total)
    return total.error();
  if (!*total)
    return make_error(errc::not_found, "no package " + package_uri(hash)
                                         + " in the GCS");
  std::string out;
  while (offset < **total && out.size() < max_bytes) {
    auto index = offset / chunk_bytes;
    auto within = offset % chunk_bytes;
    auto chunk = db_.get(table, chunk_key(hash, index));
    if (!chunk)
      return chunk.error();
    if (!*chunk || (*chunk)->size() <= within)
      return make_error(errc::storage_error,
                        "blob " + hash + " is missing chunk "
                          + std::to_string(index));
    auto take = std::min<std::size_t>((*chunk)->size() - within,
                                      max_bytes - out.size());
    out.append(**chunk, within, take);
    offset += take;
  }
  return out;
}

caf::error blob_table::drop(const std::string& hash) {
  auto total = size(hash);
  if (!total)
    return total.error();
  if (!*total)
    return caf::none;
  std::vector<persistence::write_op> ops;
  ops.push_back(persistence::write_op::del(table, size_key(hash)));
  for (uint64_t i = 0; i * chunk_bytes < **total; ++i)
    ops.push_back(persistence::write_op::del(table, chunk_key(hash, i)));
  return db_.write(ops);
}

} // namespace rayd::gcs
