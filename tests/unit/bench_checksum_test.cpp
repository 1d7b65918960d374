// The checksum of rayd-bench's object_transfer (bench/checksum.hpp): it must
// be XXH64 exactly (the reference values below come from libxxhash 0.8.1)
// and must notice the damage a broken transfer does — a flipped bit, a
// misplaced chunk, a short read.
#define BOOST_TEST_MODULE bench_checksum_test
#include <boost/test/unit_test.hpp>

#include <cstdint>
#include <string>
#include <utility>

#include "bench/checksum.hpp"

using rayd::bench::xxh64;

namespace {

/// n bytes of the pattern (i * 31 + 7) mod 256, as used for the references.
std::string pattern(std::size_t n) {
  std::string s(n, '\0');
  for (std::size_t i = 0; i < n; ++i)
    s[i] = static_cast<char>((i * 31 + 7) & 0xff);
  return s;
}

/// n pseudo-random bytes (xorshift64, no period within n): chunks differ,
/// as they do in object_transfer's object.
std::string noise(std::size_t n) {
  std::string s(n, '\0');
  uint64_t x = 0x9e3779b97f4a7c15ull;
  for (std::size_t i = 0; i < n; ++i) {
    x ^= x << 13;
    x ^= x >> 7;
    x ^= x << 17;
    s[i] = static_cast<char>(x >> 56);
  }
  return s;
}

} // namespace

BOOST_AUTO_TEST_CASE(matches_the_reference_xxh64) {
  BOOST_TEST(xxh64("") == 0xef46db3751d8e999ull);
  BOOST_TEST(xxh64("abc") == 0x44bc2cf5ad770999ull);
  // Every tail path (1..7 bytes, 4-byte word, 8-byte words) and the 32-byte
  // stripes, at and around their boundaries.
  const std::pair<std::size_t, uint64_t> refs[] = {
    {1, 0xa96c7f0ce858bbb7ull},    {3, 0x56e6957632a487f9ull},
    {4, 0xc60d15b1e3ff8f04ull},    {7, 0xafbefc3d6c6f9a8eull},
    {8, 0x3da5c7aa269683e0ull},    {31, 0x4a74f3a1a39ad4a1ull},
    {32, 0x8d57d6a4671cc43dull},   {33, 0x62c9fd21ed857664ull},
    {63, 0x5c320a0d2707057full},   {64, 0x7bbabbc45729d17eull},
    {100, 0xefa0ad2d3e70c151ull},  {1000, 0x99594f4828043d35ull},
    {1u << 20, 0x292cc494f5a2e5ecull},
  };
  for (auto& [n, want] : refs) {
    BOOST_TEST_CONTEXT("length " << n) {
      BOOST_TEST(xxh64(pattern(n)) == want);
    }
  }
}

BOOST_AUTO_TEST_CASE(notices_what_a_broken_transfer_does) {
  const auto good = noise(4 << 20);
  const auto h = xxh64(good);
  auto flipped = good;
  flipped[3 << 20] ^= 0x10; // one bit, deep inside
  BOOST_TEST(xxh64(flipped) != h);
  auto swapped = good; // two 1 MiB chunks in each other's place
  for (std::size_t i = 0; i < (1u << 20); ++i)
    std::swap(swapped[i], swapped[i + (1u << 20)]);
  BOOST_TEST(xxh64(swapped) != h);
  BOOST_TEST(xxh64(std::string_view{good}.substr(0, good.size() - 1)) != h);
}
