#include "actors/gcs/kv_table.hpp"

#include "common/error.hpp"

namespace rayd::gcs {

namespace {

std::string stored_key(const std::string& ns, const std::string& key) {
  std::string out;
  out.reserve(ns.size() + 1 + key.size());
  out += ns;
  out += '\0';
  out += key;
  return out;
}

caf::error check_namespace(const std::string& ns) {
  if (ns.find('\0') != std::string::npos)
    return make_error(errc::invalid_argument,
                      "namespace must not contain NUL bytes");
  return caf::none;
}

} // namespace

kv_table::kv_table(persistence::store& db) : rows_(db, "kv") {
}

caf::error kv_table::check(const std::string& ns, const std::string& key) const {
  if (auto err = check_namespace(ns))
    return err;
  if (key.empty())
    return make_error(errc::invalid_argument, "key must not be empty");
  if (key.size() > max_key_bytes)
    return make_error(errc::invalid_argument,
                      "key is " + std::to_string(key.size())
                        + " bytes; the limit is "
                        + std::to_string(max_key_bytes));
  return caf::none;
}

caf::expected<std::optional<std::string>> kv_table::get(const std::string& ns,
                                                        const std::string& key) {
  if (auto err = check(ns, key))
    return err;
  return rows_.get(stored_key(ns, key));
}

caf::expected<bool> kv_table::put(const std::string& ns, const std::string& key,
                                  std::string value, bool overwrite) {
  if (auto err = check(ns, key))
    return err;
  if (value.size() > max_value_bytes)
    return make_error(errc::invalid_argument,
                      "value is " + std::to_string(value.size())
                        + " bytes; the limit is "
                        + std::to_string(max_value_bytes));
  auto sk = stored_key(ns, key);
  auto old = rows_.get(sk);
  if (!old)
    return old.error();
  bool existed = old->has_value();
  if (existed && !overwrite)
    return false;
  rows_.stage(sk, std::move(value));
  return !existed;
}

caf::expected<bool> kv_table::del(const std::string& ns, const std::string& key) {
  auto old = get(ns, key);
  if (!old)
    return old.error();
  if (!old->has_value())
    return false;
  rows_.erase(stored_key(ns, key));
  return true;
}

caf::expected<std::vector<std::string>> kv_table::keys(const std::string& ns,
                                                       const std::string& prefix) {
  if (auto err = check_namespace(ns))
    return err;
  auto keys = rows_.keys(stored_key(ns, prefix));
  if (!keys)
    return keys.error();
  auto skip = ns.size() + 1;
  for (auto& k : *keys)
    k.erase(0, skip);
  return keys;
}

bool kv_table::is_staged(const std::string& ns, const std::string& key) const {
  return rows_.is_staged(stored_key(ns, key));
}

bool kv_table::is_staged_under(const std::string& ns,
                               const std::string& prefix) const {
  return rows_.is_staged_under(stored_key(ns, prefix));
}

} // namespace rayd::gcs
