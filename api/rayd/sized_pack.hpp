#pragma once
// Packing a value into a buffer of known size: first packed_size() (a
// msgpack pass that only adds lengths up: a large string or binary blob
// costs O(1), its bytes are not touched), then pack_into() writes the value
// straight into the destination, e.g. an object's shared-memory pages, so a
// put copies each byte once (docs/tasks.md, "Shared puts").
//
// Everything here is rayd::detail; users only see rayd::serialization_error.
// Thread-safety: reentrant.

#include <cstddef>
#include <cstring>
#include <exception>
#include <string>

#include <msgpack.hpp>

#include "rayd/errors.hpp"
#include "rayd/serialize.hpp"

namespace rayd::detail {

/// A msgpack stream that counts the bytes written to it.
struct size_counter {
  std::size_t bytes = 0;
  void write(const char*, std::size_t n) {
    bytes += n;
  }
};

/// A msgpack stream into a fixed buffer; refuses to write past its end.
struct fixed_writer {
  char* at;
  std::size_t left;
  void write(const char* p, std::size_t n) {
    if (n > left)
      throw serialization_error("the value packed to more bytes than it measured "
                                "(does its msgpack adaptor depend on mutable state?)");
    std::memcpy(at, p, n);
    at += n;
    left -= n;
  }
};

/// The number of bytes pack(value) gives. Throws rayd::serialization_error
/// as pack() does.
template <class T>
std::size_t packed_size(const T& value) {
  size_counter c;
  try {
    msgpack::pack(c, value);
  } catch (const std::exception& e) {
    throw serialization_error("cannot serialize a " + type_name<T>() + ": " + e.what());
  }
  return c.bytes;
}

/// Writes pack(value) into `dst`, which holds exactly `size` bytes (what
/// packed_size(value) said). Throws rayd::serialization_error if the value
/// packs to another size than measured (nothing past `dst + size` is
/// written) or msgpack refuses it.
template <class T>
void pack_into(const T& value, char* dst, std::size_t size) {
  fixed_writer w{dst, size};
  try {
    msgpack::pack(w, value);
  } catch (const serialization_error&) {
    throw;
  } catch (const std::exception& e) {
    throw serialization_error("cannot serialize a " + type_name<T>() + ": " + e.what());
  }
  if (w.left != 0)
    throw serialization_error("the value packed to fewer bytes than it measured "
                              "(does its msgpack adaptor depend on mutable state?)");
}

} // namespace rayd::detail
