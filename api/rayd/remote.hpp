#pragma once
// RAYD_REMOTE: makes plain functions callable as tasks.
//
//   int add(int a, int b) { return a + b; }
//   void log_line(const std::string& s);
//   RAYD_REMOTE(add, log_line);   // at namespace scope, in a source file
//
// Each function is registered at static initialization under its name as
// written ("add", or "geo::mid" if written so), with an invoker that
// unpacks each msgpack argument into the decayed parameter type, calls the
// function and packs its result (nil for void). The driver and its workers
// run the same binary (or load the same task library), so both register
// the same names.
//
// Supported: free functions (and static member functions) with parameters
// by value, const T& or T&& of msgpack-packable types that own their data,
// and std::string_view: a view of the argument's bytes where they lie (for
// an object from a node's store, its mapped pages), valid only during the
// call — the zero-copy way to read a large string or binary argument.
// Not supported: overloaded functions (the name must denote one function:
// the macro does not compile otherwise), function templates unless named
// with their arguments, lambdas, non-static member functions, pointer
// parameters.
//
// Each registration also records the function's signature (signature.hpp):
// a type descriptor per parameter and for the result, found by name with
// signature_of_function (registry.hpp).

#include <cxxabi.h>

#include <cstddef>
#include <optional>
#include <string>
#include <string_view>
#include <tuple>
#include <type_traits>
#include <utility>
#include <vector>

#include "rayd/registry.hpp"
#include "rayd/serialize.hpp"

namespace rayd::detail {

template <class F>
struct function_traits {
  static_assert(sizeof(F) == 0, "RAYD_REMOTE and rayd::task take plain functions");
};

template <class R, class... A>
struct function_traits<R (*)(A...)> {
  using result = R;
  using args = std::tuple<A...>;
};

template <class R, class... A>
struct function_traits<R (*)(A...) noexcept> : function_traits<R (*)(A...)> {};

template <class A>
constexpr void check_parameter() {
  using T = std::decay_t<A>;
  static_assert(!std::is_pointer_v<T>,
                "a remote function's parameters must not be pointers: take std::string, "
                "std::string_view (valid during the call) or a container");
}

/// The !ok result for arguments that do not fit `fn`'s parameters.
inline invoke_result type_mismatch(function_key fn, const std::string& what) {
  invoke_result r;
  r.ok = false;
  r.error_type = "rayd::type_mismatch";
  auto name = name_of(fn);
  r.error_message = (name.empty() ? std::string("function") : name) + ": " + what;
  return r;
}

/// The !ok result for the exception in flight (call only inside a catch).
inline invoke_result exception_result() {
  invoke_result r;
  r.ok = false;
  try {
    throw;
  } catch (const std::exception& e) {
    r.error_type = demangle(typeid(e).name());
    r.error_message = e.what();
  } catch (...) {
    r.error_type = "unknown exception";
    if (auto* t = abi::__cxa_current_exception_type())
      r.error_message = "a value of type " + tidy_type_name(demangle(t->name())) + " was thrown";
  }
  return r;
}

template <auto F, class R, class... A, std::size_t... I>
invoke_result invoke_with(const std::vector<std::string_view>& args, std::tuple<A...>*,
                          std::index_sequence<I...>) {
  (check_parameter<A>(), ...);
  auto key = reinterpret_cast<function_key>(F);
  if (args.size() != sizeof...(A))
    return type_mismatch(key, "expects " + std::to_string(sizeof...(A)) + " argument"
                                + (sizeof...(A) == 1 ? "" : "s") + ", got "
                                + std::to_string(args.size()));
  // Unpack in order and stop at the first argument that does not fit.
  std::tuple<std::optional<std::decay_t<A>>...> values;
  std::string held, expected;
  std::size_t bad = 0;
  [[maybe_unused]] auto unpack_one = [&](auto& slot, std::string_view bytes, std::size_t index) {
    using T = typename std::decay_t<decltype(slot)>::value_type;
    slot = try_unpack<T>(bytes, held);
    if (!slot) {
      bad = index;
      expected = type_name<T>();
    }
    return slot.has_value();
  };
  if (!(unpack_one(std::get<I>(values), args[I], I + 1) && ...))
    return type_mismatch(key, "argument " + std::to_string(bad) + " expects " + expected + ", got "
                                + held);
  invoke_result r;
  // std::forward<A> moves by-value parameters and binds reference ones.
  if constexpr (std::is_void_v<R>) {
    F(std::forward<A>(*std::get<I>(values))...);
    r.value = pack_nil();
  } else {
    r.value = pack(F(std::forward<A>(*std::get<I>(values))...));
  }
  return r;
}

/// The invoker of the function F (see registry.hpp: never throws).
template <auto F>
invoke_result invoke(const std::vector<std::string_view>& args) noexcept {
  using traits = function_traits<decltype(F)>;
  using params = typename traits::args;
  try {
    return invoke_with<F, typename traits::result>(
      args, static_cast<params*>(nullptr), std::make_index_sequence<std::tuple_size_v<params>>{});
  } catch (...) {
    return exception_result();
  }
}

/// How many names RAYD_REMOTE's stringified arguments hold: top-level
/// commas, so "f<int, long>" counts once.
constexpr std::size_t count_names(std::string_view s) {
  if (s.find_first_not_of(' ') == std::string_view::npos)
    return 0;
  std::size_t n = 1;
  int depth = 0;
  for (char c : s) {
    if (c == '<' || c == '(' || c == '[')
      ++depth;
    else if (c == '>' || c == ')' || c == ']')
      --depth;
    else if (c == ',' && depth == 0)
      ++n;
  }
  return n;
}

/// The names in RAYD_REMOTE's stringified arguments, trimmed.
inline std::vector<std::string> split_names(std::string_view s) {
  std::vector<std::string> out;
  auto add = [&out](std::string_view name) {
    auto b = name.find_first_not_of(' ');
    auto e = name.find_last_not_of(' ');
    out.emplace_back(b == std::string_view::npos ? std::string_view() : name.substr(b, e - b + 1));
  };
  int depth = 0;
  std::size_t start = 0;
  for (std::size_t i = 0; i < s.size(); ++i) {
    char c = s[i];
    if (c == '<' || c == '(' || c == '[') {
      ++depth;
    } else if (c == '>' || c == ')' || c == ']') {
      --depth;
    } else if (c == ',' && depth == 0) {
      add(s.substr(start, i - start));
      start = i + 1;
    }
  }
  add(s.substr(start));
  return out;
}

template <auto... F>
inline constexpr std::size_t count_of = sizeof...(F);

/// Registers each F under its name in `names` (RAYD_REMOTE's arguments).
template <class R, class Args>
struct signature_of;

template <class R, class... A>
struct signature_of<R, std::tuple<A...>> {
  static constexpr signature_builder value = &build_signature<R, A...>;
};

/// The signature_builder of the function F.
template <auto F>
inline constexpr signature_builder signature_builder_of
  = signature_of<typename function_traits<decltype(F)>::result,
                 typename function_traits<decltype(F)>::args>::value;

template <auto... F>
bool register_all(std::string_view names) {
  auto split = split_names(names);
  std::size_t i = 0;
  (register_function(split[i++].c_str(), &invoke<F>, reinterpret_cast<function_key>(F),
                     signature_builder_of<F>),
   ...);
  return true;
}

} // namespace rayd::detail

#define RAYD_REMOTE_CAT2(a, b) a##b
#define RAYD_REMOTE_CAT(a, b) RAYD_REMOTE_CAT2(a, b)

/// Registers each function under its name as written; use once per function
/// at namespace scope, ending with a semicolon. See the top of this file.
#define RAYD_REMOTE(...)                                                                           \
  static_assert(::rayd::detail::count_names(#__VA_ARGS__)                                          \
                  == ::rayd::detail::count_of<__VA_ARGS__>,                                        \
                "RAYD_REMOTE: give plain function names, separated by commas");                    \
  [[maybe_unused]] static const bool RAYD_REMOTE_CAT(rayd_remote_registered_, __COUNTER__) =       \
    ::rayd::detail::register_all<__VA_ARGS__>(#__VA_ARGS__)
