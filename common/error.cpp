#include "common/error.hpp"

#include <caf/message.hpp>
#include <caf/sec.hpp>

namespace rayd {

const char* to_string(errc x) {
  switch (x) {
    case errc::none: return "none";
    case errc::invalid_argument: return "invalid_argument";
    case errc::not_found: return "not_found";
    case errc::already_exists: return "already_exists";
    case errc::unauthenticated: return "unauthenticated";
    case errc::wrong_cluster: return "wrong_cluster";
    case errc::storage_error: return "storage_error";
    case errc::unavailable: return "unavailable";
    case errc::timeout: return "timeout";
    case errc::internal: return "internal";
  }
  return "unknown";
}

caf::error make_error(errc code, std::string message) {
  return caf::error{static_cast<uint8_t>(code), errc_category,
                    caf::make_message(std::move(message))};
}

errc code_of(const caf::error& err) {
  if (!err)
    return errc::none;
  if (err.category() == errc_category)
    return static_cast<errc>(err.code());
  if (err.category() == caf::atom("system")) {
    auto s = static_cast<caf::sec>(err.code());
    if (s == caf::sec::request_timeout)
      return errc::timeout;
    return errc::unavailable;
  }
  return errc::internal;
}

std::string describe(const caf::error& err) {
  if (!err)
    return "ok";
  const auto& ctx = err.context();
  if (ctx.match_elements<std::string>())
    return ctx.get_as<std::string>(0);
  if (err.category() == errc_category)
    return to_string(static_cast<errc>(err.code()));
  if (err.category() == caf::atom("system"))
    return std::string{"system: "} + caf::to_string(static_cast<caf::sec>(err.code()));
  return caf::to_string(err);
}

} // namespace rayd
