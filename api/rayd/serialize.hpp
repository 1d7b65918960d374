#pragma once
// How values travel: every task argument, result and put object is one
// msgpack value. Any type msgpack-cxx can pack works: numbers, strings,
// std containers, std::optional/tuple, and user structs with
// MSGPACK_DEFINE(...). Unpacking never trusts the bytes: a mismatch is
// reported in words ("holds a string, not int"), never as undefined
// behaviour.
//
// Everything here is rayd::detail; users only see rayd::serialization_error.

#include <cxxabi.h>

#include <cstdio>
#include <cstdlib>
#include <exception>
#include <memory>
#include <optional>
#include <string>
#include <string_view>
#include <typeinfo>

#include <msgpack.hpp>

#include "rayd/errors.hpp"

namespace rayd::detail {

/// A mangled type name as written in C++ ("std::runtime_error"); the
/// mangled name itself if it cannot be demangled.
inline std::string demangle(const char* mangled) {
  int status = 0;
  std::unique_ptr<char, void (*)(void*)> out(
    abi::__cxa_demangle(mangled, nullptr, nullptr, &status), std::free);
  return status == 0 && out ? std::string(out.get()) : std::string(mangled);
}

/// A demangled name made readable for messages: drops the default
/// allocator/traits/comparator arguments and libstdc++'s inline namespace,
/// so std::vector<int> reads as such rather than as its full spelling.
inline std::string tidy_type_name(std::string s) {
  auto replace_all = [&s](std::string_view from, std::string_view to) {
    for (auto i = s.find(from); i != std::string::npos; i = s.find(from, i + to.size()))
      s.replace(i, from.size(), to);
  };
  replace_all("std::__cxx11::", "std::");
  for (std::string_view filler : {", std::allocator<", ", std::char_traits<", ", std::less<",
                                  ", std::hash<", ", std::equal_to<"}) {
    for (auto i = s.find(filler); i != std::string::npos; i = s.find(filler, i)) {
      // Erase through the '>' that closes this argument.
      std::size_t depth = 0, j = i + filler.size() - 1;
      for (; j < s.size(); ++j) {
        if (s[j] == '<')
          ++depth;
        else if (s[j] == '>' && --depth == 0)
          break;
      }
      s.erase(i, j + 1 - i);
    }
  }
  replace_all(" >", ">");
  replace_all("std::basic_string<char>", "std::string");
  replace_all("std::basic_string_view<char>", "std::string_view");
  return s;
}

/// T's name for messages: "int", "std::string", "std::vector<point>".
template <class T>
std::string type_name() {
  return tidy_type_name(demangle(typeid(T).name()));
}

/// What an unpacked msgpack value is, in words: "nil", "a string",
/// "an integer (300)", "an array of 2 elements", ...
inline std::string describe(const msgpack::object& o) {
  switch (o.type) {
  case msgpack::type::NIL:
    return "nil";
  case msgpack::type::BOOLEAN:
    return o.via.boolean ? "a boolean (true)" : "a boolean (false)";
  case msgpack::type::POSITIVE_INTEGER:
    return "an integer (" + std::to_string(o.via.u64) + ")";
  case msgpack::type::NEGATIVE_INTEGER:
    return "a negative integer (" + std::to_string(o.via.i64) + ")";
  case msgpack::type::FLOAT32:
  case msgpack::type::FLOAT64: {
    char buf[40];
    std::snprintf(buf, sizeof buf, "%.17g", o.via.f64);
    return std::string(o.type == msgpack::type::FLOAT32 ? "a float (" : "a double (") + buf + ")";
  }
  case msgpack::type::STR:
    return "a string";
  case msgpack::type::BIN:
    return "binary data";
  case msgpack::type::ARRAY:
    return "an array of " + std::to_string(o.via.array.size) + " elements";
  case msgpack::type::MAP:
    return "a map of " + std::to_string(o.via.map.size) + " entries";
  case msgpack::type::EXT:
    return "an extension value";
  }
  return "an unknown msgpack type";
}

/// Appends packed bytes to a std::string (msgpack's packer wants a stream).
struct string_writer {
  std::string& out;
  void write(const char* p, std::size_t n) {
    out.append(p, n);
  }
};

/// `value` as msgpack bytes. (msgpack-cxx writes a double that holds a
/// whole number as an integer; unpacking it as a double gives it back.) Throws
/// rayd::serialization_error if msgpack refuses it (e.g. a container above 2^32 elements).
template <class T>
std::string pack(const T& value) {
  std::string out;
  string_writer w{out};
  try {
    msgpack::pack(w, value);
  } catch (const std::exception& e) {
    throw serialization_error("cannot serialize a " + type_name<T>() + ": " + e.what());
  }
  return out;
}

/// The msgpack bytes of nil (what a void function returns).
inline std::string pack_nil() {
  return pack(msgpack::type::nil_t{});
}

/// `bytes` as a T, or nullopt with `held` saying what the bytes hold
/// instead ("a string", "malformed msgpack", ...). Does not throw on bad
/// bytes (std::bad_alloc aside).
template <class T>
std::optional<T> try_unpack(std::string_view bytes, std::string& held) {
  if (bytes.empty()) {
    held = "no bytes";
    return std::nullopt;
  }
  msgpack::object_handle oh;
  std::size_t offset = 0;
  // Strings and binaries reference `bytes` instead of being copied into
  // msgpack's zone: `bytes` outlives `oh`, and as<T>() copies what it keeps.
  // For a 1 GiB argument that is one copy instead of two.
  auto by_reference = [](msgpack::type::object_type, std::size_t, void*) { return true; };
  try {
    oh = msgpack::unpack(bytes.data(), bytes.size(), offset, by_reference);
  } catch (const std::bad_alloc&) {
    throw;
  } catch (const std::exception& e) {
    held = std::string("malformed msgpack (") + e.what() + ")";
    return std::nullopt;
  }
  if (offset != bytes.size()) {
    held = std::to_string(bytes.size() - offset) + " stray bytes after " + describe(oh.get());
    return std::nullopt;
  }
  try {
    return oh.get().as<T>();
  } catch (const std::bad_alloc&) {
    throw;
  } catch (const std::exception&) {
    // msgpack::type_error (wrong kind, or an integer out of range).
    held = describe(oh.get());
    return std::nullopt;
  }
}

/// `bytes` as a T. Throws rayd::serialization_error naming `subject`
/// ("object 3f2a…"), what the bytes hold and T: "object 3f2a… holds a
/// string, not int".
template <class T>
T unpack(std::string_view bytes, const std::string& subject) {
  std::string held;
  auto v = try_unpack<T>(bytes, held);
  if (!v)
    throw serialization_error(subject + " holds " + held + ", not " + type_name<T>());
  return std::move(*v);
}

/// An object id fit for a message: printable ids shortened to 12
/// characters, binary ones shown as hex.
inline std::string short_id(std::string_view id) {
  bool printable = true;
  for (unsigned char c : id)
    printable = printable && c > 0x20 && c < 0x7f;
  std::size_t shown = printable ? 12 : 6;
  std::string out;
  if (printable) {
    out = std::string(id.substr(0, shown));
  } else {
    static const char digits[] = "0123456789abcdef";
    for (unsigned char c : id.substr(0, shown)) {
      out += digits[c >> 4];
      out += digits[c & 15];
    }
  }
  if (id.size() > shown)
    out += "…";
  return out;
}

} // namespace rayd::detail
