// Types and signatures as text and JSON (json_msgpack.hpp): the parser of
// the compact type text (detail::to_string's inverse), signatures to and
// from JSON, and the tab-separated lines detail::encode_signatures writes.

#include "common/json_msgpack.hpp"

#include <cctype>
#include <charconv>
#include <cstdint>

#include <nlohmann/json.hpp>

#include "common/error.hpp"
#include "common/json_msgpack_util.hpp"

namespace rayd {

using nlohmann::json;
using detail::type_desc;
using kind = type_desc::kind;
using json_detail::describe_json;

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
