#include "common/resources.hpp"

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
  std::string out = "{";
  for (auto& [name, amount] : shape) {
    if (out.size() > 1)
      out += ", ";
    out += name + ": " + format_amount(name, amount);
  }
  return out + "}";
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
  char buf[64];
  if (resource == "memory" || resource == "object_store_memory") {
    std::snprintf(buf, sizeof(buf), "%.1f GiB", value / (1024.0 * 1024 * 1024));
    return buf;
  }
  if (value == std::floor(value) && std::fabs(value) < 1e15)
    std::snprintf(buf, sizeof(buf), "%.1f", value);
  else
    std::snprintf(buf, sizeof(buf), "%g", value);
  return buf;
}

} // namespace rayd
