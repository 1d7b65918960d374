#include "actors/gcs/kv_table.hpp"

#include "common/error.hpp"

namespace rayd::gcs {

namespace {

constexpr const char* table = "kv";

std::string stored_key(const std::string& ns, const std::string& key) {
  std::string out;
  out.reserve(ns.size() + 1 + key.size());
  out += ns;
  out += '\0';
  out += key;
  return out;
}

} // namespace

kv_table::kv_table(persistence::store& db) : db_(db) {
}

caf::error kv_table::check(const std::string& ns, const std::string& key) const {
  if (ns.find('\0') != std::string::npos)
    return make_error(errc::invalid_argument,
                      "namespace must not contain NUL bytes");
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
  auto sk = stored_key(ns, key);
  if (auto i = staged_.find(sk); i != staged_.end())
    return i->second;
  return db_.get(table, sk);
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
  auto old = get(ns, key);
  if (!old)
    return old.error();
  bool existed = old->has_value();
  if (existed && !overwrite)
    return false;
  staged_[stored_key(ns, key)] = std::move(value);
  return !existed;
}

caf::expected<bool> kv_table::del(const std::string& ns, const std::string& key) {
  auto old = get(ns, key);
  if (!old)
    return old.error();
  if (!old->has_value())
    return false;
  staged_[stored_key(ns, key)] = std::nullopt;
  return true;
}

caf::expected<std::vector<std::string>> kv_table::keys(const std::string& ns,
                                                       const std::string& prefix) {
  if (ns.find('\0') != std::string::npos)
    return make_error(errc::invalid_argument,
                      "namespace must not contain NUL bytes");
  auto full_prefix = stored_key(ns, prefix);
  auto rows = db_.scan(table, full_prefix);
  if (!rows)
    return rows.error();
  std::map<std::string, bool> present;
  for (auto& [k, _] : *rows)
    present[k] = true;
  for (auto i = staged_.lower_bound(full_prefix);
       i != staged_.end() && i->first.compare(0, full_prefix.size(), full_prefix) == 0;
       ++i)
    present[i->first] = i->second.has_value();
  std::vector<std::string> out;
  auto skip = ns.size() + 1;
  for (auto& [k, exists] : present)
    if (exists)
      out.push_back(k.substr(skip));
  return out;
}

caf::error kv_table::commit() {
  if (staged_.empty())
    return caf::none;
  std::vector<persistence::write_op> ops;
  ops.reserve(staged_.size());
  for (auto& [k, v] : staged_)
    ops.push_back(v ? persistence::write_op::put(table, k, *v)
                    : persistence::write_op::del(table, k));
  auto err = db_.write(ops);
  staged_.clear();
  return err;
}

} // namespace rayd::gcs
