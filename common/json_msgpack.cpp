#include "common/json_msgpack.hpp"

#include <cctype>
#include <charconv>
#include <cmath>
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <limits>

#include <msgpack.hpp>
#include <nlohmann/json.hpp>

#include "common/error.hpp"
#include "rayd/serialize.hpp"

namespace rayd {

using nlohmann::json;
using detail::type_desc;
using kind = type_desc::kind;

namespace {

// -- helpers ----------------------------------------------------------------------

/// One path segment of a JSON pointer (RFC 6901: '~' → "~0", '/' → "~1").
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

/// A JSON value in words for messages: `string "x"`, `integer 5`, `number
/// 2.5`, `boolean true`, `null`, `array of 3 elements`, `object of 2 members`.
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

/// Whether `s` is well-formed UTF-8 (Unicode 3.9, table 3-7: no overlong
/// forms, no surrogates, nothing above U+10FFFF) — what JSON text may hold.
bool is_utf8(std::string_view s) {
  auto at = [&s](std::size_t i) { return static_cast<unsigned char>(s[i]); };
  for (std::size_t i = 0; i < s.size();) {
    unsigned char c = at(i);
    if (c < 0x80) {
      ++i;
      continue;
    }
    std::size_t n;
    unsigned char lo = 0x80, hi = 0xbf;
    if (c >= 0xc2 && c <= 0xdf) {
      n = 1;
    } else if (c >= 0xe0 && c <= 0xef) {
      n = 2;
      if (c == 0xe0)
        lo = 0xa0;
      else if (c == 0xed)
        hi = 0x9f;
    } else if (c >= 0xf0 && c <= 0xf4) {
      n = 3;
      if (c == 0xf0)
        lo = 0x90;
      else if (c == 0xf4)
        hi = 0x8f;
    } else {
      return false;
    }
    if (i + n >= s.size())
      return false;
    if (at(i + 1) < lo || at(i + 1) > hi)
      return false;
    for (std::size_t k = 2; k <= n; ++k)
      if (at(i + k) < 0x80 || at(i + k) > 0xbf)
        return false;
    i += n + 1;
  }
  return true;
}

/// The double that prints as the shortest decimal reading back as `f`, so
/// that 0.1f shows as 0.1 rather than 0.10000000149011612.
double shortest_float(float f) {
  if (!std::isfinite(f))
    return f;
  char buf[32];
  for (int digits = 1; digits <= 9; ++digits) {
    std::snprintf(buf, sizeof buf, "%.*g", digits, static_cast<double>(f));
    if (std::strtof(buf, nullptr) == f)
      return std::strtod(buf, nullptr);
  }
  return f;
}

/// A double as JSON: non-finite values have no JSON form and become null.
json number_json(double d) {
  return std::isfinite(d) ? json(d) : json(nullptr);
}

/// Whether `v` is {"$bytes": "<base64>"}.
bool is_bytes_object(const json& v) {
  if (!v.is_object() || v.size() != 1)
    return false;
  auto i = v.find("$bytes");
  return i != v.end() && i->is_string();
}

json bytes_json(std::string_view bytes) {
  return json{{"$bytes", base64_encode(bytes)}};
}

/// A string's JSON form: itself when it is UTF-8, else {"$bytes": ...}.
json text_or_bytes_json(std::string_view s) {
  return is_utf8(s) ? json(std::string(s)) : bytes_json(s);
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

// -- JSON → msgpack ---------------------------------------------------------------

/// Packs JSON values as the C++ types described; stops at the first error
/// (`why`, `where` the JSON pointer of the offending value).
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
      return t.elements.size() == 1 ? value(t.elements[0], v, depth) : broken(t);
    case kind::tuple:
      return tuple(t, v, depth);
    case kind::opaque:
      return generic(v, depth);
    }
    return broken(t);
  }

  const std::string& why() const {
    return why_;
  }
  const std::string& where() const {
    return where_;
  }

private:
  bool fail(std::string why) {
    why_ = std::move(why);
    where_ = path_;
    return false;
  }

  bool mismatch(const type_desc& t, const json& v) {
    return fail("expected " + detail::to_string(t) + ", got " + describe_json(v));
  }

  bool broken(const type_desc& t) {
    return fail("the signature's type " + detail::to_string(t) + " is malformed");
  }

  bool too_deep() {
    return fail("nested deeper than " + std::to_string(limits_.max_depth) + " levels");
  }

  /// Runs `f` with `segment` appended to the current path.
  template <class F>
  bool at(std::string_view segment, F&& f) {
    auto size = path_.size();
    path_ += segment;
    bool ok = f();
    path_.resize(size);
    return ok;
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
        return fail("expected " + detail::to_string(t) + ", got " + describe_json(v)
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
      return fail("expected " + detail::to_string(t) + ", got " + describe_json(v)
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
        return fail("expected float, got " + describe_json(v) + " (out of range)");
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
        return at("/$bytes", [this, &b] { return fail(describe(b.error())); });
      decoded = std::move(*b);
      s = &decoded;
    } else {
      return mismatch(t, v);
    }
    if (s->size() > std::numeric_limits<uint32_t>::max())
      return fail("a string longer than msgpack's 4 GiB limit");
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
      return broken(t);
    if (!v.is_array())
      return mismatch(t, v);
    if (t.fixed_size > 0 && v.size() != t.fixed_size)
      return fail("expected " + detail::to_string(t) + ", got " + describe_json(v));
    if (depth >= limits_.max_depth)
      return too_deep();
    pk_.pack_array(static_cast<uint32_t>(v.size()));
    for (std::size_t i = 0; i < v.size(); ++i) {
      const auto& e = v[i];
      if (!at("/" + std::to_string(i),
              [this, &t, &e, depth] { return value(t.elements[0], e, depth + 1); }))
        return false;
    }
    return true;
  }

  bool map(const type_desc& t, const json& v, std::size_t depth) {
    if (t.elements.size() != 2)
      return broken(t);
    if (!v.is_object())
      return mismatch(t, v);
    const auto& key_type = t.elements[0];
    if (key_type.k != kind::string && key_type.k != kind::integer)
      return fail("maps with " + detail::to_string(key_type)
                  + " keys cannot be written in JSON (object keys are strings)");
    if (depth >= limits_.max_depth)
      return too_deep();
    pk_.pack_map(static_cast<uint32_t>(v.size()));
    for (auto it = v.begin(); it != v.end(); ++it) {
      const std::string& key = it.key();
      const json& e = it.value();
      bool ok = at(pointer_segment(key), [this, &t, &key_type, &key, &e, depth] {
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
      return fail("expected a key of type " + detail::to_string(t) + " (decimal), got "
                  + describe_json(json(key)));
    return integer(t, parsed);
  }

  bool tuple(const type_desc& t, const json& v, std::size_t depth) {
    if (!v.is_array() || v.size() != t.elements.size())
      return mismatch(t, v);
    if (depth >= limits_.max_depth)
      return too_deep();
    pk_.pack_array(static_cast<uint32_t>(v.size()));
    for (std::size_t i = 0; i < v.size(); ++i) {
      const auto& e = v[i];
      if (!at("/" + std::to_string(i),
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
        return too_deep();
      pk_.pack_array(static_cast<uint32_t>(v.size()));
      for (std::size_t i = 0; i < v.size(); ++i) {
        const auto& e = v[i];
        if (!at("/" + std::to_string(i), [this, &e, depth] { return generic(e, depth + 1); }))
          return false;
      }
      return true;
    }
    case json::value_t::object: {
      if (is_bytes_object(v))
        return text(detail::describe<std::vector<char>>(), v);
      if (depth >= limits_.max_depth)
        return too_deep();
      pk_.pack_map(static_cast<uint32_t>(v.size()));
      for (auto it = v.begin(); it != v.end(); ++it) {
        const std::string& key = it.key();
        const json& e = it.value();
        pk_.pack_str(static_cast<uint32_t>(key.size()));
        pk_.pack_str_body(key.data(), static_cast<uint32_t>(key.size()));
        if (!at(pointer_segment(key), [this, &e, depth] { return generic(e, depth + 1); }))
          return false;
      }
      return true;
    }
    default:
      return fail("got " + describe_json(v) + ", which has no msgpack form");
    }
  }

  detail::string_writer writer_;
  msgpack::packer<detail::string_writer> pk_;
  const json_limits& limits_;
  std::string path_;
  std::string why_;
  std::string where_;
};

/// "argument 2 at /k: expected ..." (`where` empty: no " at").
caf::error encode_error(const std::string& subject, const encoder& e) {
  auto msg = subject;
  if (!e.where().empty())
    msg += " at " + e.where();
  return make_error(errc::invalid_argument, msg + ": " + e.why());
}

// -- msgpack → JSON ---------------------------------------------------------------

class decoder {
public:
  explicit decoder(const json_limits& limits) : limits_(limits) {
  }

  bool value(const type_desc& t, const msgpack::object& o, std::size_t depth, json& out) {
    using mt = msgpack::type::object_type;
    switch (t.k) {
    case kind::nil:
      if (o.type != mt::NIL)
        return mismatch(t, o);
      out = nullptr;
      return true;
    case kind::boolean:
      if (o.type != mt::BOOLEAN)
        return mismatch(t, o);
      out = o.via.boolean;
      return true;
    case kind::integer:
      if (o.type == mt::POSITIVE_INTEGER)
        out = o.via.u64;
      else if (o.type == mt::NEGATIVE_INTEGER)
        out = o.via.i64;
      else
        return mismatch(t, o);
      return true;
    case kind::floating: {
      // msgpack-cxx packs a whole-valued float or double as an integer.
      double d;
      if (o.type == mt::FLOAT32 || o.type == mt::FLOAT64)
        d = o.via.f64;
      else if (o.type == mt::POSITIVE_INTEGER)
        d = static_cast<double>(o.via.u64);
      else if (o.type == mt::NEGATIVE_INTEGER)
        d = static_cast<double>(o.via.i64);
      else
        return mismatch(t, o);
      out = number_json(t.bits == 32 ? shortest_float(static_cast<float>(d)) : d);
      return true;
    }
    case kind::string:
      // std::string and std::string_view also unpack from bin.
      if (o.type == mt::STR)
        out = text_or_bytes_json({o.via.str.ptr, o.via.str.size});
      else if (o.type == mt::BIN)
        out = text_or_bytes_json({o.via.bin.ptr, o.via.bin.size});
      else
        return mismatch(t, o);
      return true;
    case kind::bytes:
      if (o.type == mt::BIN)
        out = bytes_json({o.via.bin.ptr, o.via.bin.size});
      else if (o.type == mt::STR)
        out = bytes_json({o.via.str.ptr, o.via.str.size});
      else
        return mismatch(t, o);
      return true;
    case kind::array:
      if (t.elements.size() != 1)
        return broken(t);
      if (o.type != mt::ARRAY)
        return mismatch(t, o);
      return elements(o, depth, out,
                      [&t](std::size_t) -> const type_desc& { return t.elements[0]; });
    case kind::tuple:
      if (o.type != mt::ARRAY || o.via.array.size != t.elements.size())
        return mismatch(t, o);
      return elements(o, depth, out,
                      [&t](std::size_t i) -> const type_desc& { return t.elements[i]; });
    case kind::map:
      if (t.elements.size() != 2)
        return broken(t);
      if (o.type != mt::MAP)
        return mismatch(t, o);
      return map(&t, o, depth, out);
    case kind::optional:
      if (o.type == mt::NIL) {
        out = nullptr;
        return true;
      }
      return t.elements.size() == 1 ? value(t.elements[0], o, depth, out) : broken(t);
    case kind::opaque:
      return generic(o, depth, out);
    }
    return broken(t);
  }

  const std::string& why() const {
    return why_;
  }
  const std::string& where() const {
    return where_;
  }

private:
  bool fail(std::string why) {
    why_ = std::move(why);
    where_ = path_;
    return false;
  }

  bool mismatch(const type_desc& t, const msgpack::object& o) {
    return fail("expected " + detail::to_string(t) + ", got " + detail::describe(o));
  }

  bool broken(const type_desc& t) {
    return fail("the signature's type " + detail::to_string(t) + " is malformed");
  }

  template <class F>
  bool at(std::string_view segment, F&& f) {
    auto size = path_.size();
    path_ += segment;
    bool ok = f();
    path_.resize(size);
    return ok;
  }

  template <class ElementType>
  bool elements(const msgpack::object& o, std::size_t depth, json& out, ElementType type_of) {
    if (depth >= limits_.max_depth)
      return fail("nested deeper than " + std::to_string(limits_.max_depth) + " levels");
    out = json::array();
    for (uint32_t i = 0; i < o.via.array.size; ++i) {
      json e;
      const auto& item = o.via.array.ptr[i];
      if (!at("/" + std::to_string(i), [this, &type_of, &item, &e, i, depth] {
            return value(type_of(i), item, depth + 1, e);
          }))
        return false;
      out.push_back(std::move(e));
    }
    return true;
  }

  /// A map as a JSON object; `t` null for an undescribed (opaque) map.
  bool map(const type_desc* t, const msgpack::object& o, std::size_t depth, json& out) {
    using mt = msgpack::type::object_type;
    if (depth >= limits_.max_depth)
      return fail("nested deeper than " + std::to_string(limits_.max_depth) + " levels");
    out = json::object();
    for (uint32_t i = 0; i < o.via.map.size; ++i) {
      const auto& kv = o.via.map.ptr[i];
      std::string key;
      if (kv.key.type == mt::STR)
        key.assign(kv.key.via.str.ptr, kv.key.via.str.size);
      else if (kv.key.type == mt::POSITIVE_INTEGER)
        key = std::to_string(kv.key.via.u64);
      else if (kv.key.type == mt::NEGATIVE_INTEGER)
        key = std::to_string(kv.key.via.i64);
      else
        return fail("a map key that is " + detail::describe(kv.key)
                    + " cannot be written in JSON (object keys are strings)");
      if (!is_utf8(key))
        return fail("a map key that is not UTF-8 cannot be written in JSON");
      if (t) {
        json ignored;
        if (!at(pointer_segment(key), [this, t, &kv, &ignored] {
              return value(t->elements[0], kv.key, 0, ignored);
            }))
          return false;
      }
      json e;
      if (!at(pointer_segment(key), [this, t, &kv, &e, depth] {
            return t ? value(t->elements[1], kv.val, depth + 1, e)
                     : generic(kv.val, depth + 1, e);
          }))
        return false;
      out[key] = std::move(e);
    }
    return true;
  }

  bool generic(const msgpack::object& o, std::size_t depth, json& out) {
    using mt = msgpack::type::object_type;
    switch (o.type) {
    case mt::NIL:
      out = nullptr;
      return true;
    case mt::BOOLEAN:
      out = o.via.boolean;
      return true;
    case mt::POSITIVE_INTEGER:
      out = o.via.u64;
      return true;
    case mt::NEGATIVE_INTEGER:
      out = o.via.i64;
      return true;
    case mt::FLOAT32:
      out = number_json(shortest_float(static_cast<float>(o.via.f64)));
      return true;
    case mt::FLOAT64:
      out = number_json(o.via.f64);
      return true;
    case mt::STR:
      out = text_or_bytes_json({o.via.str.ptr, o.via.str.size});
      return true;
    case mt::BIN:
      out = bytes_json({o.via.bin.ptr, o.via.bin.size});
      return true;
    case mt::ARRAY:
      return elements(o, depth, out, [this](std::size_t) -> const type_desc& { return opaque_; });
    case mt::MAP:
      return map(nullptr, o, depth, out);
    default:
      return fail("got " + detail::describe(o) + ", which has no JSON form");
    }
  }

  const json_limits& limits_;
  type_desc opaque_ = [] {
    type_desc t;
    t.k = kind::opaque;
    return t;
  }();
  std::string path_;
  std::string why_;
  std::string where_;
};

} // namespace

// -- public -------------------------------------------------------------------------

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
      return encode_error("argument " + std::to_string(i + 1), e);
  }
  return out;
}

caf::expected<std::string> json_to_msgpack(const type_desc& t, const json& v,
                                           const json_limits& limits) {
  std::string out;
  encoder e(out, limits);
  if (!e.value(t, v, 0))
    return encode_error("value", e);
  return out;
}

caf::expected<json> msgpack_to_json(const type_desc& t, std::string_view bytes,
                                    const json_limits& limits) {
  if (bytes.empty())
    return make_error(errc::invalid_argument, "result: no bytes");
  msgpack::object_handle oh;
  std::size_t offset = 0;
  // Strings and binaries are read where they lie in `bytes`.
  auto by_reference = [](msgpack::type::object_type, std::size_t, void*) { return true; };
  // msgpack's own depth limit keeps its parser from building deeper nests.
  auto depth = limits.max_depth + 1;
  // Every element takes at least one byte (a map entry two): bounding the
  // sizes by the input keeps a forged length from reserving gigabytes.
  auto n = bytes.size();
  msgpack::unpack_limit bounds(n, n / 2 + 1, n, n, n, depth);
  try {
    oh = msgpack::unpack(bytes.data(), bytes.size(), offset, by_reference, nullptr, bounds);
  } catch (const msgpack::depth_size_overflow&) {
    return make_error(errc::invalid_argument, "result: nested deeper than "
                                                + std::to_string(limits.max_depth) + " levels");
  } catch (const std::bad_alloc&) {
    throw;
  } catch (const std::exception& e) {
    return make_error(errc::invalid_argument, std::string("result: malformed msgpack (") + e.what()
                                                + ")");
  }
  if (offset != bytes.size())
    return make_error(errc::invalid_argument, "result: " + std::to_string(bytes.size() - offset)
                                                + " stray bytes after "
                                                + detail::describe(oh.get()));
  decoder d(limits);
  json out;
  if (!d.value(t, oh.get(), 0, out)) {
    auto msg = std::string("result");
    if (!d.where().empty())
      msg += " at " + d.where();
    return make_error(errc::invalid_argument, msg + ": " + d.why());
  }
  return out;
}

namespace {

/// Recursive descent over the text form; depth bounded like values.
class type_parser {
public:
  explicit type_parser(std::string_view text) : text_(text) {
  }

  caf::expected<type_desc> parse() {
    type_desc t;
    if (!type(t, 0))
      return error();
    skip_spaces();
    if (pos_ != text_.size()) {
      why_ = "unexpected text after the type";
      return error();
    }
    return t;
  }

private:
  caf::error error() const {
    return make_error(errc::invalid_argument, "invalid type \"" + std::string(text_)
                                                + "\" at offset " + std::to_string(pos_) + ": "
                                                + why_);
  }

  bool fail(std::string why) {
    why_ = std::move(why);
    return false;
  }

  void skip_spaces() {
    while (pos_ < text_.size() && text_[pos_] == ' ')
      ++pos_;
  }

  bool eat(char c) {
    skip_spaces();
    if (pos_ < text_.size() && text_[pos_] == c) {
      ++pos_;
      return true;
    }
    return false;
  }

  std::string_view word() {
    skip_spaces();
    auto start = pos_;
    while (pos_ < text_.size()
           && (std::isalnum(static_cast<unsigned char>(text_[pos_])) || text_[pos_] == '_'))
      ++pos_;
    return text_.substr(start, pos_ - start);
  }

  bool type(type_desc& t, std::size_t depth) {
    if (depth > 64)
      return fail("nested deeper than 64 levels");
    auto w = word();
    if (w == "nil") {
      t.k = kind::nil;
    } else if (w == "bool") {
      t.k = kind::boolean;
    } else if (w == "float" || w == "double") {
      t.k = kind::floating;
      t.bits = w == "float" ? 32 : 64;
    } else if (w == "string") {
      t.k = kind::string;
    } else if (w == "bytes") {
      t.k = kind::bytes;
    } else if (w == "int8" || w == "int16" || w == "int32" || w == "int64" || w == "uint8"
               || w == "uint16" || w == "uint32" || w == "uint64") {
      t.k = kind::integer;
      t.is_signed = w[0] == 'i';
      auto digits = w.substr(t.is_signed ? 3 : 4);
      t.bits = static_cast<uint8_t>(std::stoi(std::string(digits)));
    } else if (w == "opaque") {
      return opaque(t);
    } else if (w == "array" || w == "map" || w == "optional" || w == "tuple") {
      t.k = w == "array" ? kind::array
            : w == "map" ? kind::map
            : w == "optional" ? kind::optional
                              : kind::tuple;
      return arguments(t, depth);
    } else {
      return fail(w.empty() ? "a type name expected" : "unknown type \"" + std::string(w) + "\"");
    }
    return true;
  }

  bool arguments(type_desc& t, std::size_t depth) {
    if (!eat('<'))
      return fail("'<' expected");
    if (t.k == kind::tuple && eat('>'))
      return true;
    for (;;) {
      skip_spaces();
      bool size_next = t.k == kind::array && t.elements.size() == 1 && t.fixed_size == 0
                       && pos_ < text_.size()
                       && std::isdigit(static_cast<unsigned char>(text_[pos_]));
      if (size_next) {
        auto w = word();
        auto [end, ec] = std::from_chars(w.data(), w.data() + w.size(), t.fixed_size);
        if (ec != std::errc() || end != w.data() + w.size() || t.fixed_size == 0)
          return fail("a positive size expected");
      } else {
        t.elements.emplace_back();
        if (!type(t.elements.back(), depth + 1))
          return false;
      }
      if (eat('>'))
        break;
      if (!eat(','))
        return fail("',' or '>' expected");
    }
    std::size_t want = t.k == kind::map ? 2 : 1;
    if (t.k != kind::tuple && t.elements.size() != want)
      return fail(std::to_string(want) + (want == 1 ? " type" : " types") + " expected in <>");
    return true;
  }

  /// opaque<NAME>: NAME is everything up to the matching '>'.
  bool opaque(type_desc& t) {
    if (!eat('<'))
      return fail("'<' expected");
    auto start = pos_;
    int depth = 1;
    for (; pos_ < text_.size(); ++pos_) {
      if (text_[pos_] == '<')
        ++depth;
      else if (text_[pos_] == '>' && --depth == 0)
        break;
    }
    if (pos_ == text_.size())
      return fail("unbalanced '<'");
    t.k = kind::opaque;
    t.cpp_name = std::string(text_.substr(start, pos_ - start));
    ++pos_;
    return true;
  }

  std::string_view text_;
  std::size_t pos_ = 0;
  std::string why_;
};

const char* kind_name(detail::signature::kind k) {
  switch (k) {
  case detail::signature::kind::function:
    return "function";
  case detail::signature::kind::constructor:
    return "constructor";
  case detail::signature::kind::method:
    return "method";
  }
  return "function";
}

} // namespace

caf::expected<type_desc> parse_type(std::string_view text) {
  return type_parser(text).parse();
}

json signature_to_json(const detail::signature& s) {
  json params = json::array();
  for (const auto& p : s.params)
    params.push_back(detail::to_string(p));
  return json{{"name", s.name},
              {"kind", kind_name(s.k)},
              {"params", std::move(params)},
              {"result", detail::to_string(s.result)},
              {"text", detail::to_string(s)}};
}

caf::expected<detail::signature> signature_from_json(const json& j) {
  auto bad = [](const std::string& why) {
    return make_error(errc::invalid_argument, "invalid signature: " + why);
  };
  if (!j.is_object())
    return bad("expected an object, got " + describe_json(j));
  auto name = j.find("name");
  auto k = j.find("kind");
  auto params = j.find("params");
  auto result = j.find("result");
  if (name == j.end() || !name->is_string())
    return bad("\"name\" must be a string");
  if (k == j.end() || !k->is_string())
    return bad("\"kind\" must be a string");
  if (params == j.end() || !params->is_array())
    return bad("\"params\" must be an array");
  if (result == j.end() || !result->is_string())
    return bad("\"result\" must be a string");
  detail::signature s;
  s.name = name->get<std::string>();
  const auto& kind_text = k->get_ref<const std::string&>();
  if (kind_text == "function")
    s.k = detail::signature::kind::function;
  else if (kind_text == "constructor")
    s.k = detail::signature::kind::constructor;
  else if (kind_text == "method")
    s.k = detail::signature::kind::method;
  else
    return bad("unknown kind \"" + kind_text + "\"");
  for (const auto& p : *params) {
    if (!p.is_string())
      return bad("a parameter type must be a string");
    auto t = parse_type(p.get_ref<const std::string&>());
    if (!t)
      return t.error();
    s.params.push_back(std::move(*t));
  }
  auto r = parse_type(result->get_ref<const std::string&>());
  if (!r)
    return r.error();
  s.result = std::move(*r);
  return s;
}

std::string base64_encode(std::string_view bytes) {
  static constexpr char alphabet[]
    = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
  std::string out;
  out.reserve((bytes.size() + 2) / 3 * 4);
  std::size_t i = 0;
  auto byte = [&bytes](std::size_t k) {
    return static_cast<uint32_t>(static_cast<unsigned char>(bytes[k]));
  };
  for (; i + 3 <= bytes.size(); i += 3) {
    uint32_t n = byte(i) << 16 | byte(i + 1) << 8 | byte(i + 2);
    out += alphabet[n >> 18 & 63];
    out += alphabet[n >> 12 & 63];
    out += alphabet[n >> 6 & 63];
    out += alphabet[n & 63];
  }
  if (auto left = bytes.size() - i; left > 0) {
    uint32_t n = byte(i) << 16 | (left == 2 ? byte(i + 1) << 8 : 0);
    out += alphabet[n >> 18 & 63];
    out += alphabet[n >> 12 & 63];
    out += left == 2 ? alphabet[n >> 6 & 63] : '=';
    out += '=';
  }
  return out;
}

caf::expected<std::string> base64_decode(std::string_view text) {
  auto value_of = [](char c) -> int {
    if (c >= 'A' && c <= 'Z')
      return c - 'A';
    if (c >= 'a' && c <= 'z')
      return c - 'a' + 26;
    if (c >= '0' && c <= '9')
      return c - '0' + 52;
    if (c == '+')
      return 62;
    if (c == '/')
      return 63;
    return -1;
  };
  auto body = text;
  if (body.size() % 4 == 0) {
    // Padding: at most two '=' at the very end.
    for (int k = 0; k < 2 && !body.empty() && body.back() == '='; ++k)
      body.remove_suffix(1);
  }
  if (body.size() % 4 == 1)
    return make_error(errc::invalid_argument, "invalid base64: a length of "
                                                + std::to_string(text.size()) + " characters");
  std::string out;
  out.reserve(body.size() / 4 * 3 + 2);
  uint32_t acc = 0;
  int bits = 0;
  for (std::size_t i = 0; i < body.size(); ++i) {
    int v = value_of(body[i]);
    if (v < 0)
      return make_error(errc::invalid_argument, "invalid base64: unexpected character at offset "
                                                  + std::to_string(i));
    acc = (acc << 6 | static_cast<uint32_t>(v)) & 0xffffff;
    bits += 6;
    if (bits >= 8) {
      bits -= 8;
      out += static_cast<char>(acc >> bits & 0xff);
    }
  }
  return out;
}

caf::expected<std::vector<detail::signature>> decode_signatures(std::string_view text) {
  std::vector<detail::signature> out;
  std::size_t line_no = 0;
  while (!text.empty()) {
    ++line_no;
    auto nl = text.find('\n');
    auto line = text.substr(0, nl);
    text = nl == std::string_view::npos ? std::string_view{} : text.substr(nl + 1);
    if (line.empty())
      continue;
    std::vector<std::string_view> fields;
    for (std::size_t start = 0;;) {
      auto tab = line.find('\t', start);
      fields.push_back(line.substr(start, tab == std::string_view::npos ? tab : tab - start));
      if (tab == std::string_view::npos)
        break;
      start = tab + 1;
    }
    auto bad = [line_no](const std::string& why) {
      return make_error(errc::invalid_argument,
                        "signature line " + std::to_string(line_no) + ": " + why);
    };
    if (fields.size() < 3)
      return bad("expected kind, name and result");
    detail::signature s;
    if (fields[0] == "function")
      s.k = detail::signature::kind::function;
    else if (fields[0] == "constructor")
      s.k = detail::signature::kind::constructor;
    else if (fields[0] == "method")
      s.k = detail::signature::kind::method;
    else
      return bad("unknown kind '" + std::string{fields[0]} + "'");
    s.name = std::string{fields[1]};
    auto result = parse_type(fields[2]);
    if (!result)
      return bad(describe(result.error()));
    s.result = std::move(*result);
    for (std::size_t i = 3; i < fields.size(); ++i) {
      auto p = parse_type(fields[i]);
      if (!p)
        return bad(describe(p.error()));
      s.params.push_back(std::move(*p));
    }
    out.push_back(std::move(s));
  }
  return out;
}

} // namespace rayd
