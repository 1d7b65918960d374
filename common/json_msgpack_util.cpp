#include "common/json_msgpack_util.hpp"

#include <nlohmann/json.hpp>

#include "common/error.hpp"

namespace rayd::json_detail {

using nlohmann::json;

std::string pointer_segment(std::string_view key) {
  std::string out = "/";
  for (char c : key) {
    if (c == '~')
      out += "~0";
    else if (c == '/')
      out += "~1";
    else
      out += c;
  }
  return out;
}

std::string describe_json(const json& v) {
  constexpr auto replace = json::error_handler_t::replace;
  switch (v.type()) {
  case json::value_t::null:
    return "null";
  case json::value_t::boolean:
    return v.get<bool>() ? "boolean true" : "boolean false";
  case json::value_t::number_integer:
  case json::value_t::number_unsigned:
    return "integer " + v.dump();
  case json::value_t::number_float:
    return "number " + v.dump();
  case json::value_t::string: {
    const auto& s = v.get_ref<const std::string&>();
    constexpr std::size_t shown = 32;
    if (s.size() <= shown)
      return "string " + v.dump(-1, ' ', false, replace);
    return "string " + json(s.substr(0, shown)).dump(-1, ' ', false, replace) + "… ("
           + std::to_string(s.size()) + " bytes)";
  }
  case json::value_t::array:
    return "array of " + std::to_string(v.size()) + (v.size() == 1 ? " element" : " elements");
  case json::value_t::object:
    return "object of " + std::to_string(v.size()) + (v.size() == 1 ? " member" : " members");
  case json::value_t::binary:
    return "binary";
  case json::value_t::discarded:
    return "a discarded value";
  }
  return "an unknown JSON value";
}

bool value_trail::fail(std::string why) {
  why_ = std::move(why);
  where_ = path_;
  return false;
}

bool value_trail::broken(const detail::type_desc& t) {
  return fail("the signature's type " + detail::to_string(t) + " is malformed");
}

bool value_trail::too_deep(std::size_t max_depth) {
  return fail("nested deeper than " + std::to_string(max_depth) + " levels");
}

caf::error value_trail::error(const std::string& subject) const {
  auto msg = subject;
  if (!where_.empty())
    msg += " at " + where_;
  return make_error(errc::invalid_argument, msg + ": " + why_);
}

} // namespace rayd::json_detail
