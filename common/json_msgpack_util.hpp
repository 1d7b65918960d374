#pragma once
// Internal to library rayd_json_msgpack: what the JSON → msgpack encoder
// (json_to_msgpack.cpp), the msgpack → JSON decoder (msgpack_to_json.cpp)
// and the signature JSON (signature_text.cpp) share. Tools include the public
// header common/json_msgpack.hpp, never this one.
//
// Thread-safety: the functions are reentrant; a value_trail belongs to one
// conversion on one thread.

#include <cstddef>
#include <string>
#include <string_view>

#include <caf/error.hpp>
#include <nlohmann/json_fwd.hpp>

#include "rayd/signature.hpp"

namespace rayd::json_detail {

/// One path segment of a JSON pointer (RFC 6901: '~' → "~0", '/' → "~1").
std::string pointer_segment(std::string_view key);

/// A JSON value in words for messages: `string "x"`, `integer 5`, `number
/// 2.5`, `boolean true`, `null`, `array of 3 elements`, `object of 2 members`.
std::string describe_json(const nlohmann::json& v);

/// Where a converter is inside the value it walks (a JSON pointer) and,
/// after it fails, why and where it stopped. Both converters stop at the
/// first error, so one record is enough; every failing call returns false so
/// that a converter can `return trail_.fail(...)`.
class value_trail {
public:
  /// Runs `f` (returning bool) with `segment` appended to the current path;
  /// the path is restored afterwards, whatever `f` returns.
  template <class F>
  bool at(std::string_view segment, F&& f) {
    auto size = path_.size();
    path_ += segment;
    bool ok = f();
    path_.resize(size);
    return ok;
  }

  /// Records `why` at the current path. Returns false.
  bool fail(std::string why);

  /// "the signature's type T is malformed". Returns false.
  bool broken(const detail::type_desc& t);

  /// "nested deeper than N levels". Returns false.
  bool too_deep(std::size_t max_depth);

  /// The recorded failure as invalid_argument: "argument 2 at /k: expected
  /// ..." for `subject` "argument 2" (no " at" when it failed at the top).
  caf::error error(const std::string& subject) const;

private:
  std::string path_;
  std::string why_;
  std::string where_;
};

} // namespace rayd::json_detail
