#include "common/resources.hpp"

#include <charconv>

#include <cmath>
#include <cstdio>

namespace rayd {

namespace {
constexpr double epsilon = 1e-9;
}

bool fits(const resource_map& shape, const resource_map& available) {
  for (auto& [name, amount] : shape) {
    if (amount <= 0)
      continue;
    auto i = available.find(name);
    if (i == available.end() || i->second + epsilon < amount)
      return false;
  }
  return true;
}

resource_map subtract(resource_map from, const resource_map& amounts) {
  for (auto& [name, amount] : amounts)
    from[name] -= amount;
  return from;
}

std::string describe_shape(const resource_map& shape) {
  std::string out;
  out.reserve(16 * shape.size() + 2);
  out += '{';
  for (auto& [name, amount] : shape) {
    if (out.size() > 1)
      out += ", ";
    out += name;
    out += ": ";
    out += format_amount(name, amount);
  }
  out += '}';
  return out;
}

bool labels_match(const label_map& selector, const label_map& labels) {
  for (auto& [k, v] : selector) {
    auto i = labels.find(k);
    if (i == labels.end() || i->second != v)
      return false;
  }
  return true;
}

std::string format_amount(const std::string& resource, double value) {
  // std::to_chars, not snprintf: the autoscaler's reasons format thousands
  // of amounts a round. The text is the same: "%.1f" for whole numbers,
  // "%g" (6 significant digits) otherwise.
  char buf[64];
  if (resource == "memory" || resource == "object_store_memory") {
    std::snprintf(buf, sizeof(buf), "%.1f GiB", value / (1024.0 * 1024 * 1024));
    return buf;
  }
  if (value == std::floor(value) && std::fabs(value) < 1e15) {
    auto r = std::to_chars(buf, buf + sizeof(buf) - 3, static_cast<int64_t>(value));
    if (value == 0 && std::signbit(value)) { // "%.1f" of -0.0
      return "-0.0";
    }
    *r.ptr++ = '.';
    *r.ptr++ = '0';
    return std::string(buf, r.ptr);
  }
  auto r = std::to_chars(buf, buf + sizeof(buf), value, std::chars_format::general, 6);
  return std::string(buf, r.ptr);
}

} // namespace rayd
