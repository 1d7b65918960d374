// Two actor classes and a function for examples/scripting/demo.sh, driven
// from the shell with `rayctl actor create/call` and `rayctl call`.

#include <map>
#include <optional>
#include <string>
#include <vector>

#include <rayd/rayd.hpp>

/// A counter: add returns the new value.
class Counter {
public:
  explicit Counter(long start) : value_(start) {
  }
  long add(long n) {
    return value_ += n;
  }
  long value() const {
    return value_;
  }

private:
  long value_;
};
RAYD_ACTOR(Counter, (long), add, value);

/// A key-value store: put returns whether the key is new; get returns null
/// for a missing key; keys lists them in order.
class KvStore {
public:
  KvStore() = default;
  bool put(std::string key, std::string value) {
    return data_.insert_or_assign(std::move(key), std::move(value)).second;
  }
  std::optional<std::string> get(std::string key) const {
    auto i = data_.find(key);
    if (i == data_.end())
      return std::nullopt;
    return i->second;
  }
  std::vector<std::string> keys() const {
    std::vector<std::string> out;
    for (auto& [k, _] : data_)
      out.push_back(k);
    return out;
  }

private:
  std::map<std::string, std::string> data_;
};
RAYD_ACTOR(KvStore, (), put, get, keys);

/// A plain function for `rayctl call`.
long sum(std::vector<long> xs) {
  long s = 0;
  for (auto x : xs)
    s += x;
  return s;
}
RAYD_REMOTE(sum);
