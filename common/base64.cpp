// Standard base64 (json_msgpack.hpp): how byte strings travel in JSON as
// {"$bytes": "<base64>"}.

#include "common/json_msgpack.hpp"

#include <cstdint>

#include "common/error.hpp"

namespace rayd {

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

} // namespace rayd
