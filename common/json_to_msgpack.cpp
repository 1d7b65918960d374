// JSON → msgpack (json_msgpack.hpp): parse_json for untrusted JSON text, and
// the encoder that packs JSON values as the C++ types a signature describes,
// with the same msgpack-cxx packer calls the C++ caller would have made.

#include "common/json_msgpack.hpp"

#include <charconv>
#include <cmath>
#include <cstdint>
#include <limits>

#include <msgpack.hpp>
#include <nlohmann/json.hpp>

#include "common/error.hpp"
#include "common/json_msgpack_util.hpp"
#include "rayd/serialize.hpp"

namespace rayd {

using nlohmann::json;
using detail::type_desc;
using kind = type_desc::kind;
using json_detail::describe_json;
using json_detail::pointer_segment;

namespace {

/// Whether `v` is {"$bytes": "<base64>"}.
bool is_bytes_object(const json& v) {
  if (!v.is_object() || v.size() != 1)
    return false;
  auto i = v.find("$bytes");
  return i != v.end() && i->is_string();
}

/// The range of integer type `t` as text: "-128..127".
std::string range_of(const type_desc& t) {
  if (t.is_signed) {
    auto max = (uint64_t{1} << (t.bits - 1)) - 1;
    return "-" + std::to_string(max + 1) + ".." + std::to_string(max);
  }
  auto max = t.bits == 64 ? std::numeric_limits<uint64_t>::max() : (uint64_t{1} << t.bits) - 1;
  return "0.." + std::to_string(max);
}

/// Whether the integer (negative: `neg` with value `i`, else `u`) fits `t`.
bool fits(const type_desc& t, bool neg, int64_t i, uint64_t u) {
  if (t.bits == 0 || t.bits > 64)
    return false;
  if (neg) {
    if (!t.is_signed)
      return false;
    return t.bits == 64 || i >= -(int64_t{1} << (t.bits - 1));
  }
  if (t.is_signed)
    return u <= (uint64_t{1} << (t.bits - 1)) - 1;
  return t.bits == 64 || u <= (uint64_t{1} << t.bits) - 1;
}

/// Packs JSON values as the C++ types described; stops at the first error,
/// which error() reports with the JSON pointer of the offending value.
class encoder {
public:
  encoder(std::string& out, const json_limits& limits)
    : writer_{out}, pk_(writer_), limits_(limits) {
  }

  bool value(const type_desc& t, const json& v, std::size_t depth) {
    switch (t.k) {
    case kind::nil:
      if (!v.is_null())
        return mismatch(t, v);
      pk_.pack_nil();
      return true;
    case kind::boolean:
      if (!v.is_boolean())
        return mismatch(t, v);
      if (v.get<bool>())
        pk_.pack_true();
      else
        pk_.pack_false();
      return true;
    case kind::integer:
      return integer(t, v);
    case kind::floating:
      return floating(t, v);
    case kind::string:
    case kind::bytes:
      return text(t, v);
    case kind::array:
      return array(t, v, depth);
    case kind::map:
      return map(t, v, depth);
    case kind::optional:
      if (v.is_null()) {
        pk_.pack_nil();
        return true;
      }
      return t.elements.size() == 1 ? value(t.elements[0], v, depth) : trail_.broken(t);
    case kind::tuple:
      return tuple(t, v, depth);
    case kind::opaque:
      return generic(v, depth);
    }
    return trail_.broken(t);
  }

  /// After value() returned false: "<subject> at <where>: <why>".
  caf::error error(const std::string& subject) const {
    return trail_.error(subject);
  }

private:
  bool mismatch(const type_desc& t, const json& v) {
    return trail_.fail("expected " + detail::to_string(t) + ", got " + describe_json(v));
  }

  bool integer(const type_desc& t, const json& v) {
    bool neg = false;
    int64_t i = 0;
    uint64_t u = 0;
    if (v.is_number_unsigned()) {
      u = v.get<uint64_t>();
    } else if (v.is_number_integer()) {
      i = v.get<int64_t>();
      neg = i < 0;
      u = static_cast<uint64_t>(i);
    } else if (v.is_number_float()) {
      // A float with no fraction (3.0, 1e3) is taken as the integer it
      // denotes; anything else is a mismatch.
      double d = v.get<double>();
      if (!std::isfinite(d) || d != std::floor(d))
        return mismatch(t, v);
      if (d < -9223372036854775808.0 || d >= 18446744073709551616.0)
        return trail_.fail("expected " + detail::to_string(t) + ", got " + describe_json(v)
                           + " (out of range " + range_of(t) + ")");
      neg = d < 0;
      if (neg)
        i = static_cast<int64_t>(d);
      else
        u = static_cast<uint64_t>(d);
    } else {
      return mismatch(t, v);
    }
    if (!fits(t, neg, i, u))
      return trail_.fail("expected " + detail::to_string(t) + ", got " + describe_json(v)
                         + " (out of range " + range_of(t) + ")");
    // The packer call of the C++ type itself, so the bytes are the caller's.
    if (t.is_signed) {
      int64_t s = neg ? i : static_cast<int64_t>(u);
      switch (t.bits) {
      case 8:
        pk_.pack_int8(static_cast<int8_t>(s));
        break;
      case 16:
        pk_.pack_int16(static_cast<int16_t>(s));
        break;
      case 32:
        pk_.pack_int32(static_cast<int32_t>(s));
        break;
      default:
        pk_.pack_int64(s);
      }
    } else {
      switch (t.bits) {
      case 8:
        pk_.pack_uint8(static_cast<uint8_t>(u));
        break;
      case 16:
        pk_.pack_uint16(static_cast<uint16_t>(u));
        break;
      case 32:
        pk_.pack_uint32(static_cast<uint32_t>(u));
        break;
      default:
        pk_.pack_uint64(u);
      }
    }
    return true;
  }

  bool floating(const type_desc& t, const json& v) {
    if (!v.is_number())
      return mismatch(t, v);
    double d = v.get<double>();
    if (t.bits == 32) {
      if (std::fabs(d) > static_cast<double>(std::numeric_limits<float>::max()))
        return trail_.fail("expected float, got " + describe_json(v) + " (out of range)");
      pk_.pack_float(static_cast<float>(d));
    } else {
      pk_.pack_double(d);
    }
    return true;
  }

  /// string (msgpack str) or bytes (msgpack bin), from a JSON string (its
  /// UTF-8 bytes) or {"$bytes": "<base64>"}.
  bool text(const type_desc& t, const json& v) {
    std::string decoded;
    const std::string* s = nullptr;
    if (v.is_string()) {
      s = &v.get_ref<const std::string&>();
    } else if (is_bytes_object(v)) {
      auto b = base64_decode(v.find("$bytes")->get_ref<const std::string&>());
      if (!b)
        return trail_.at("/$bytes", [this, &b] { return trail_.fail(describe(b.error())); });
      decoded = std::move(*b);
      s = &decoded;
    } else {
      return mismatch(t, v);
    }
    if (s->size() > std::numeric_limits<uint32_t>::max())
      return trail_.fail("a string longer than msgpack's 4 GiB limit");
    auto n = static_cast<uint32_t>(s->size());
    if (t.k == kind::string) {
      pk_.pack_str(n);
      pk_.pack_str_body(s->data(), n);
    } else {
      pk_.pack_bin(n);
      pk_.pack_bin_body(s->data(), n);
    }
    return true;
  }

  bool array(const type_desc& t, const json& v, std::size_t depth) {
    if (t.elements.size() != 1)
      return trail_.broken(t);
    if (!v.is_array())
      return mismatch(t, v);
    if (t.fixed_size > 0 && v.size() != t.fixed_size)
      return trail_.fail("expected " + detail::to_string(t) + ", got " + describe_json(v));
    if (depth >= limits_.max_depth)
      return trail_.too_deep(limits_.max_depth);
    pk_.pack_array(static_cast<uint32_t>(v.size()));
    for (std::size_t i = 0; i < v.size(); ++i) {
      const auto& e = v[i];
      if (!trail_.at("/" + std::to_string(i),
                     [this, &t, &e, depth] { return value(t.elements[0], e, depth + 1); }))
        return false;
    }
    return true;
  }

  bool map(const type_desc& t, const json& v, std::size_t depth) {
    if (t.elements.size() != 2)
      return trail_.broken(t);
    if (!v.is_object())
      return mismatch(t, v);
    const auto& key_type = t.elements[0];
    if (key_type.k != kind::string && key_type.k != kind::integer)
      return trail_.fail("maps with " + detail::to_string(key_type)
                         + " keys cannot be written in JSON (object keys are strings)");
    if (depth >= limits_.max_depth)
      return trail_.too_deep(limits_.max_depth);
    pk_.pack_map(static_cast<uint32_t>(v.size()));
    for (auto it = v.begin(); it != v.end(); ++it) {
      const std::string& key = it.key();
      const json& e = it.value();
      bool ok = trail_.at(pointer_segment(key), [this, &t, &key_type, &key, &e, depth] {
        if (key_type.k == kind::string) {
          pk_.pack_str(static_cast<uint32_t>(key.size()));
          pk_.pack_str_body(key.data(), static_cast<uint32_t>(key.size()));
        } else if (!integer_key(key_type, key)) {
          return false;
        }
        return value(t.elements[1], e, depth + 1);
      });
      if (!ok)
        return false;
    }
    return true;
  }

  /// A map key of integer type, written in JSON as its decimal text.
  bool integer_key(const type_desc& t, const std::string& key) {
    const char* first = key.data();
    const char* last = key.data() + key.size();
    json parsed;
    if (!key.empty() && key[0] == '-') {
      int64_t i = 0;
      auto [end, ec] = std::from_chars(first, last, i);
      if (ec == std::errc() && end == last)
        parsed = i;
    } else {
      uint64_t u = 0;
      auto [end, ec] = std::from_chars(first, last, u);
      if (ec == std::errc() && end == last)
        parsed = u;
    }
    if (parsed.is_null())
      return trail_.fail("expected a key of type " + detail::to_string(t) + " (decimal), got "
                         + describe_json(json(key)));
    return integer(t, parsed);
  }

  bool tuple(const type_desc& t, const json& v, std::size_t depth) {
    if (!v.is_array() || v.size() != t.elements.size())
      return mismatch(t, v);
    if (depth >= limits_.max_depth)
      return trail_.too_deep(limits_.max_depth);
    pk_.pack_array(static_cast<uint32_t>(v.size()));
    for (std::size_t i = 0; i < v.size(); ++i) {
      const auto& e = v[i];
      if (!trail_.at("/" + std::to_string(i),
                     [this, &t, &e, i, depth] { return value(t.elements[i], e, depth + 1); }))
        return false;
    }
    return true;
  }

  /// A value of a type the signature does not describe (opaque): packed by
  /// its JSON shape; the invoker checks it against the C++ type.
  bool generic(const json& v, std::size_t depth) {
    switch (v.type()) {
    case json::value_t::null:
      pk_.pack_nil();
      return true;
    case json::value_t::boolean:
      return value(detail::describe<bool>(), v, depth);
    case json::value_t::number_unsigned:
      pk_.pack_uint64(v.get<uint64_t>());
      return true;
    case json::value_t::number_integer:
      pk_.pack_int64(v.get<int64_t>());
      return true;
    case json::value_t::number_float:
      pk_.pack_double(v.get<double>());
      return true;
    case json::value_t::string:
      return text(detail::describe<std::string>(), v);
    case json::value_t::array: {
      if (depth >= limits_.max_depth)
        return trail_.too_deep(limits_.max_depth);
      pk_.pack_array(static_cast<uint32_t>(v.size()));
      for (std::size_t i = 0; i < v.size(); ++i) {
        const auto& e = v[i];
        if (!trail_.at("/" + std::to_string(i),
                       [this, &e, depth] { return generic(e, depth + 1); }))
          return false;
      }
      return true;
    }
    case json::value_t::object: {
      if (is_bytes_object(v))
        return text(detail::describe<std::vector<char>>(), v);
      if (depth >= limits_.max_depth)
        return trail_.too_deep(limits_.max_depth);
      pk_.pack_map(static_cast<uint32_t>(v.size()));
      for (auto it = v.begin(); it != v.end(); ++it) {
        const std::string& key = it.key();
        const json& e = it.value();
        pk_.pack_str(static_cast<uint32_t>(key.size()));
        pk_.pack_str_body(key.data(), static_cast<uint32_t>(key.size()));
        if (!trail_.at(pointer_segment(key), [this, &e, depth] { return generic(e, depth + 1); }))
          return false;
      }
      return true;
    }
    default:
      return trail_.fail("got " + describe_json(v) + ", which has no msgpack form");
    }
  }

  detail::string_writer writer_;
  msgpack::packer<detail::string_writer> pk_;
  const json_limits& limits_;
  json_detail::value_trail trail_;
};

} // namespace

caf::expected<json> parse_json(std::string_view text, const json_limits& limits) {
  if (text.size() > limits.max_text_bytes)
    return make_error(errc::invalid_argument,
                      "JSON text of " + std::to_string(text.size()) + " bytes exceeds the limit of "
                        + std::to_string(limits.max_text_bytes));
  struct too_deep {};
  auto depth_check = [&limits](int depth, json::parse_event_t event, json&) {
    if ((event == json::parse_event_t::object_start || event == json::parse_event_t::array_start)
        && static_cast<std::size_t>(depth) >= limits.max_depth)
      throw too_deep{};
    return true;
  };
  try {
    return json::parse(text.begin(), text.end(), depth_check);
  } catch (const too_deep&) {
    return make_error(errc::invalid_argument, "JSON nested deeper than "
                                                + std::to_string(limits.max_depth) + " levels");
  } catch (const json::exception& e) {
    return make_error(errc::invalid_argument, std::string("invalid JSON: ") + e.what());
  }
}

caf::expected<std::vector<std::string>> json_to_arguments(const detail::signature& sig,
                                                          const json& args,
                                                          const json_limits& limits) {
  auto who = sig.name.empty() ? std::string("the call") : sig.name;
  if (!args.is_array())
    return make_error(errc::invalid_argument,
                      "arguments must be a JSON array, got " + describe_json(args));
  if (args.size() != sig.params.size()) {
    std::string types;
    for (const auto& p : sig.params)
      types += (types.empty() ? "" : ", ") + detail::to_string(p);
    auto n = sig.params.size();
    return make_error(errc::invalid_argument,
                      who + " expects " + std::to_string(n) + (n == 1 ? " argument" : " arguments")
                        + (n == 0 ? "" : " (" + types + ")") + ", got "
                        + std::to_string(args.size()));
  }
  std::vector<std::string> out(args.size());
  for (std::size_t i = 0; i < args.size(); ++i) {
    encoder e(out[i], limits);
    if (!e.value(sig.params[i], args[i], 0))
      return e.error("argument " + std::to_string(i + 1));
  }
  return out;
}

caf::expected<std::string> json_to_msgpack(const type_desc& t, const json& v,
                                           const json_limits& limits) {
  std::string out;
  encoder e(out, limits);
  if (!e.value(t, v, 0))
    return e.error("value");
  return out;
}

} // namespace rayd
