// msgpack → JSON (json_msgpack.hpp): the decoder that reads a result's
// msgpack bytes as the type its signature describes and writes them as JSON.

#include "common/json_msgpack.hpp"

#include <cmath>
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <exception>
#include <new>

#include <msgpack.hpp>
#include <nlohmann/json.hpp>

#include "common/error.hpp"
#include "common/json_msgpack_util.hpp"
#include "rayd/serialize.hpp"

namespace rayd {

using nlohmann::json;
using detail::type_desc;
using kind = type_desc::kind;
using json_detail::pointer_segment;

namespace {

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

json bytes_json(std::string_view bytes) {
  return json{{"$bytes", base64_encode(bytes)}};
}

/// A string's JSON form: itself when it is UTF-8, else {"$bytes": ...}.
json text_or_bytes_json(std::string_view s) {
  return is_utf8(s) ? json(std::string(s)) : bytes_json(s);
}

/// Writes msgpack objects as JSON, checked against the types described;
/// stops at the first error, which error() reports with the JSON pointer of
/// the offending value.
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
        return trail_.broken(t);
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
        return trail_.broken(t);
      if (o.type != mt::MAP)
        return mismatch(t, o);
      return map(&t, o, depth, out);
    case kind::optional:
      if (o.type == mt::NIL) {
        out = nullptr;
        return true;
      }
      return t.elements.size() == 1 ? value(t.elements[0], o, depth, out) : trail_.broken(t);
    case kind::opaque:
      return generic(o, depth, out);
    }
    return trail_.broken(t);
  }

  /// After value() returned false: "<subject> at <where>: <why>".
  caf::error error(const std::string& subject) const {
    return trail_.error(subject);
  }

private:
  bool mismatch(const type_desc& t, const msgpack::object& o) {
    return trail_.fail("expected " + detail::to_string(t) + ", got " + detail::describe(o));
  }

  template <class ElementType>
  bool elements(const msgpack::object& o, std::size_t depth, json& out, ElementType type_of) {
    if (depth >= limits_.max_depth)
      return trail_.too_deep(limits_.max_depth);
    out = json::array();
    for (uint32_t i = 0; i < o.via.array.size; ++i) {
      json e;
      const auto& item = o.via.array.ptr[i];
      if (!trail_.at("/" + std::to_string(i), [this, &type_of, &item, &e, i, depth] {
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
      return trail_.too_deep(limits_.max_depth);
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
        return trail_.fail("a map key that is " + detail::describe(kv.key)
                           + " cannot be written in JSON (object keys are strings)");
      if (!is_utf8(key))
        return trail_.fail("a map key that is not UTF-8 cannot be written in JSON");
      if (t) {
        json ignored;
        if (!trail_.at(pointer_segment(key), [this, t, &kv, &ignored] {
              return value(t->elements[0], kv.key, 0, ignored);
            }))
          return false;
      }
      json e;
      if (!trail_.at(pointer_segment(key), [this, t, &kv, &e, depth] {
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
      return trail_.fail("got " + detail::describe(o) + ", which has no JSON form");
    }
  }

  const json_limits& limits_;
  type_desc opaque_ = [] {
    type_desc t;
    t.k = kind::opaque;
    return t;
  }();
  json_detail::value_trail trail_;
};

} // namespace

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
  if (!d.value(t, oh.get(), 0, out))
    return d.error("result");
  return out;
}

} // namespace rayd
