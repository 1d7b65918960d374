#include "rayd/signature.hpp"

#include "rayd/serialize.hpp"

namespace rayd::detail {

std::string opaque_type_name(const char* mangled) {
  return tidy_type_name(demangle(mangled));
}

std::string to_string(const type_desc& t) {
  using k = type_desc::kind;
  auto list = [&t](std::string head) {
    head += '<';
    for (std::size_t i = 0; i < t.elements.size(); ++i) {
      if (i > 0)
        head += ", ";
      head += to_string(t.elements[i]);
    }
    return head;
  };
  switch (t.k) {
  case k::nil:
    return "nil";
  case k::boolean:
    return "bool";
  case k::integer:
    return (t.is_signed ? "int" : "uint") + std::to_string(t.bits);
  case k::floating:
    return t.bits == 32 ? "float" : "double";
  case k::string:
    return "string";
  case k::bytes:
    return "bytes";
  case k::array: {
    auto s = list("array");
    if (t.fixed_size > 0)
      s += ", " + std::to_string(t.fixed_size);
    return s + '>';
  }
  case k::map:
    return list("map") + '>';
  case k::optional:
    return list("optional") + '>';
  case k::tuple:
    return list("tuple") + '>';
  case k::opaque:
    return "opaque<" + t.cpp_name + '>';
  }
  return "unknown";
}

std::string to_string(const signature& s) {
  std::string out;
  if (s.params.empty())
    out = "()";
  for (std::size_t i = 0; i < s.params.size(); ++i) {
    if (i > 0)
      out += ", ";
    out += to_string(s.params[i]);
  }
  return out + " -> " + to_string(s.result);
}

} // namespace rayd::detail
