#pragma once
// JSON ↔ msgpack, directed by type descriptors (rayd/signature.hpp): the
// arguments of `rayctl call` / `rayctl actor call|create` arrive as JSON and
// leave as the msgpack bytes the C++ caller of the same function would have
// packed (same msgpack-cxx packer calls, so the registered invokers accept
// them); a result's msgpack bytes come back as JSON. The rules, for users:
// docs/cli.md, "JSON and msgpack".
//
// Why here and not in api/: the descriptors are the user API's (a plain
// struct in rayd/signature.hpp, linked from rayd_api), but nlohmann-json and
// caf::error stay out of the library users link; only tools link this
// module (library rayd_json_msgpack).
//
// Input is untrusted: nesting is bounded (json_limits), every mismatch is a
// caf::error with errc::invalid_argument naming the argument, the place
// inside it (a JSON pointer) and the expected type — never a crash or an
// exception. Thread-safety: reentrant, no shared state.

#include <cstddef>
#include <string>
#include <string_view>
#include <vector>

#include <caf/expected.hpp>
#include <nlohmann/json_fwd.hpp>

#include "rayd/signature.hpp"

namespace rayd {

/// Bounds on untrusted input.
struct json_limits {
  /// Arrays/objects (or msgpack arrays/maps) nested deeper than this are
  /// refused. Default 64.
  std::size_t max_depth = 64;
  /// JSON texts longer than this are refused by parse_json. Default 64 MiB.
  std::size_t max_text_bytes = std::size_t{64} << 20;
};

/// Parses a JSON text within `limits` (size and depth checked while
/// parsing). Error: invalid_argument with the parser's message.
caf::expected<nlohmann::json> parse_json(std::string_view text, const json_limits& limits = {});

/// Each argument of `sig` as msgpack bytes, from `args`, a JSON array with
/// one element per parameter. Errors (invalid_argument): "Counter::add
/// expects 1 argument (int32), got 2"; "argument 2: expected int32, got
/// string \"x\""; "argument 1 at /k/0: expected double, got null".
caf::expected<std::vector<std::string>> json_to_arguments(const detail::signature& sig,
                                                          const nlohmann::json& args,
                                                          const json_limits& limits = {});

/// One value of type `t` as msgpack bytes; errors as above, "value" in
/// place of "argument N".
caf::expected<std::string> json_to_msgpack(const detail::type_desc& t, const nlohmann::json& v,
                                           const json_limits& limits = {});

/// The msgpack `bytes` of a value of type `t` (a result) as JSON. Errors
/// (invalid_argument): malformed or trailing bytes, nesting beyond the
/// limit, bytes that do not hold a `t` ("result at /1: expected int32,
/// got a string"), a map key JSON cannot hold.
caf::expected<nlohmann::json> msgpack_to_json(const detail::type_desc& t, std::string_view bytes,
                                              const json_limits& limits = {});

/// The type whose compact text form (detail::to_string) is `text`:
/// parse_type(to_string(t)) == t for every descriptor, so a type can
/// travel as text. Error: invalid_argument naming the offset.
caf::expected<detail::type_desc> parse_type(std::string_view text);

/// The signatures detail::encode_signatures wrote (actor_registry.hpp).
/// Error: invalid_argument naming the line.
caf::expected<std::vector<detail::signature>> decode_signatures(std::string_view text);

/// A signature as JSON, for listings and transport:
/// {"name": "Counter::add", "kind": "method", "params": ["int32"],
///  "result": "int64", "text": "int32 -> int64"}.
nlohmann::json signature_to_json(const detail::signature& s);

/// The inverse of signature_to_json ("text" is ignored).
caf::expected<detail::signature> signature_from_json(const nlohmann::json& j);

/// Standard base64 (RFC 4648, with padding) of `bytes`.
std::string base64_encode(std::string_view bytes);

/// `text` decoded from standard base64; padding optional, no whitespace.
caf::expected<std::string> base64_decode(std::string_view text);

} // namespace rayd
