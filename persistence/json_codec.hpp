#pragma once
// JSON rows for typed tables (table.hpp): a traits type says how one row maps
// to a JSON object; json_codec adds the parsing, the "corrupt <what> row"
// errors and the barrier that keeps a bad row's exception inside the codec.
// Include it only where rows are encoded (it pulls in nlohmann/json).
//
// Traits:
//   using row_type = ...;
//   static constexpr const char* what = "job";      // for error messages
//   static nlohmann::json to_json(const row_type&);
//   /// May throw nlohmann::json exceptions for missing or mistyped fields.
//   static caf::expected<row_type> from_json(const nlohmann::json&);

#include <exception>
#include <string>

#include <caf/expected.hpp>
#include <nlohmann/json.hpp>

#include "common/error.hpp"

namespace rayd::persistence {

template <class Traits>
struct json_codec {
  using row_type = typename Traits::row_type;

  static std::string encode(const row_type& row) {
    return Traits::to_json(row).dump();
  }

  static caf::expected<row_type> decode(const std::string& key,
                                        const std::string& bytes) {
    auto j = nlohmann::json::parse(bytes, nullptr, false);
    if (j.is_discarded() || !j.is_object())
      return make_error(errc::storage_error, std::string{"corrupt "}
                                               + Traits::what + " row '" + key
                                               + "': not JSON");
    try {
      return Traits::from_json(j);
    } catch (const std::exception& e) {
      return make_error(errc::storage_error, std::string{"corrupt "}
                                               + Traits::what + " row '" + key
                                               + "': " + e.what());
    }
  }
};

} // namespace rayd::persistence
