#pragma once
// A 64-bit checksum over every byte of an object, for the benchmarks that
// move objects between processes (object_transfer in rayd-micro-driver): the
// producer hashes what it put, the consumer hashes what it read, and the two
// must agree. The function is XXH64 (Yann Collet's xxHash, 64-bit variant,
// seed 0) written out here so the benchmark needs no extra library; its
// four independent lanes run at several GB/s on one core, so it can cover a
// 1 GiB object without hiding the transfer behind it (the benchmark still
// times it separately and says so).
//
// Pure functions; any thread.

#include <cstddef>
#include <cstdint>
#include <cstring>
#include <string>
#include <string_view>

namespace rayd::bench {

namespace xxh64_detail {

constexpr uint64_t p1 = 0x9E3779B185EBCA87ull;
constexpr uint64_t p2 = 0xC2B2AE3D27D4EB4Full;
constexpr uint64_t p3 = 0x165667B19E3779F9ull;
constexpr uint64_t p4 = 0x85EBCA77C2B2AE63ull;
constexpr uint64_t p5 = 0x27D4EB2F165667C5ull;

inline uint64_t rotl(uint64_t x, int r) {
  return (x << r) | (x >> (64 - r));
}

// Little-endian loads (memcpy: no alignment assumed; x86-64 and aarch64
// Linux are little-endian, which is all rayd builds for).
inline uint64_t load64(const unsigned char* p) {
  uint64_t v;
  std::memcpy(&v, p, sizeof v);
  return v;
}

inline uint32_t load32(const unsigned char* p) {
  uint32_t v;
  std::memcpy(&v, p, sizeof v);
  return v;
}

inline uint64_t round(uint64_t acc, uint64_t input) {
  acc += input * p2;
  acc = rotl(acc, 31);
  return acc * p1;
}

inline uint64_t merge_round(uint64_t acc, uint64_t val) {
  acc ^= round(0, val);
  return acc * p1 + p4;
}

} // namespace xxh64_detail

/// XXH64 of `data` with seed 0 (XXH64("") = 0xEF46DB3751D8E999).
inline uint64_t xxh64(std::string_view data) {
  using namespace xxh64_detail;
  const auto* p = reinterpret_cast<const unsigned char*>(data.data());
  const auto* end = p + data.size();
  const uint64_t len = data.size();
  uint64_t h;
  if (len >= 32) {
    uint64_t v1 = p1 + p2, v2 = p2, v3 = 0, v4 = 0 - p1;
    const auto* limit = end - 32;
    do {
      v1 = round(v1, load64(p));
      v2 = round(v2, load64(p + 8));
      v3 = round(v3, load64(p + 16));
      v4 = round(v4, load64(p + 24));
      p += 32;
    } while (p <= limit);
    h = rotl(v1, 1) + rotl(v2, 7) + rotl(v3, 12) + rotl(v4, 18);
    h = merge_round(h, v1);
    h = merge_round(h, v2);
    h = merge_round(h, v3);
    h = merge_round(h, v4);
  } else {
    h = p5;
  }
  h += len;
  for (; p + 8 <= end; p += 8) {
    h ^= round(0, load64(p));
    h = rotl(h, 27) * p1 + p4;
  }
  if (p + 4 <= end) {
    h ^= static_cast<uint64_t>(load32(p)) * p1;
    h = rotl(h, 23) * p2 + p3;
    p += 4;
  }
  for (; p < end; ++p) {
    h ^= static_cast<uint64_t>(*p) * p5;
    h = rotl(h, 11) * p1;
  }
  h ^= h >> 33;
  h *= p2;
  h ^= h >> 29;
  h *= p3;
  h ^= h >> 32;
  return h;
}

/// `bytes` pseudo-random bytes (xorshift64 from `seed`), the values the
/// transfer benchmarks move: a byte lost, repeated or misplaced anywhere
/// changes their checksum (a constant fill would hide a misplaced chunk).
inline std::string pseudo_random(uint64_t bytes, uint64_t seed) {
  std::string value(bytes, '\0');
  uint64_t x = 0x9E3779B97F4A7C15ull ^ seed;
  std::size_t i = 0;
  for (; i + 8 <= value.size(); i += 8) {
    x ^= x << 13;
    x ^= x >> 7;
    x ^= x << 17;
    std::memcpy(&value[i], &x, 8);
  }
  for (; i < value.size(); ++i)
    value[i] = static_cast<char>(i);
  return value;
}

} // namespace rayd::bench
