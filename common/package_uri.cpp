#include "common/package_uri.hpp"

#include <algorithm>

namespace rayd {

bool is_sha256_hex(const std::string& h) {
  return h.size() == 64 && std::all_of(h.begin(), h.end(), [](char c) {
           return (c >= '0' && c <= '9') || (c >= 'a' && c <= 'f');
         });
}

std::optional<std::string> package_hash(const std::string& uri) {
  const std::string scheme = "gcs://";
  const std::string suffix = ".tar.gz";
  if (uri.size() != scheme.size() + 64 + suffix.size()
      || uri.compare(0, scheme.size(), scheme) != 0
      || uri.compare(uri.size() - suffix.size(), suffix.size(), suffix) != 0)
    return std::nullopt;
  auto hash = uri.substr(scheme.size(), 64);
  if (!is_sha256_hex(hash))
    return std::nullopt;
  return hash;
}

std::string package_uri(const std::string& hash) {
  return "gcs://" + hash + ".tar.gz";
}

} // namespace rayd
