#pragma once
// The registry of actor classes: RAYD_ACTOR(Class, (ctor params), methods...)
// registers a class under its name with a factory (unpacks the constructor's
// msgpack arguments, constructs), a deleter and one invoker per method
// ("Class::method"). A worker process constructs and calls actors through
// it; a caller finds a method's registered name from its member pointer.
//
//   class Counter {
//   public:
//     explicit Counter(int start);
//     int add(int n);
//     int value() const;
//   };
//   RAYD_ACTOR(Counter, (int), add, value);   // namespace scope, a source file
//
// Parameters and results follow RAYD_REMOTE's rules (remote.hpp): msgpack,
// checked at compile time at the call site, mismatches at run time as
// rayd::type_mismatch. The class is named as written ("Counter", or
// "geo::Counter" if written so), its methods "<class>::<method>". Not
// supported: overloaded methods (the name must denote one member function),
// more than 32 methods in one RAYD_ACTOR, a class without a method.
//
// Each registration also records the constructor's and every method's
// signature (signature.hpp), found with signature_of_constructor and
// signature_of_method below.
//
// Thread-safety: registration runs at static initialization (and when a task
// library is dlopen'ed); lookups are safe from any thread at any time. A
// class's methods are all registered by its one RAYD_ACTOR.

#include <cstddef>
#include <optional>
#include <string>
#include <string_view>
#include <tuple>
#include <type_traits>
#include <typeinfo>
#include <utility>
#include <vector>

#include "rayd/registry.hpp"
#include "rayd/remote.hpp"
#include "rayd/serialize.hpp"

namespace rayd::detail {

/// What a member function pointer takes and returns (const, noexcept and
/// their combination accepted; the actor's class is `object`).
template <class M>
struct method_traits {
  static_assert(sizeof(M) == 0, "an actor method must be a non-static member function");
};

template <class R, class C, class... A>
struct method_traits<R (C::*)(A...)> {
  using result = R;
  using object = C;
  using args = std::tuple<A...>;
};
template <class R, class C, class... A>
struct method_traits<R (C::*)(A...) const> : method_traits<R (C::*)(A...)> {};
template <class R, class C, class... A>
struct method_traits<R (C::*)(A...) noexcept> : method_traits<R (C::*)(A...)> {};
template <class R, class C, class... A>
struct method_traits<R (C::*)(A...) const noexcept> : method_traits<R (C::*)(A...)> {};

/// Constructs the class from msgpack arguments; returns the new object, or
/// nullptr with `why` set (type mismatch, or the constructor threw: its
/// exception type and what()). Never throws.
using actor_factory = void* (*)(const std::vector<std::string_view>& args,
                                invoke_result& why);
using actor_deleter = void (*)(void* self) noexcept;
/// Calls one method on `self`; never throws (like invoker).
using method_invoker = invoke_result (*)(void* self,
                                         const std::vector<std::string_view>& args);

/// The registered class `name`, or nullptr.
struct actor_class;
const actor_class* find_actor_class(std::string_view name);
void* construct(const actor_class& c, const std::vector<std::string_view>& args,
                invoke_result& why) noexcept;
void destroy(const actor_class& c, void* self) noexcept;
/// The invoker of `method` ("Class::method"), or nullptr.
method_invoker find_method(const actor_class& c, std::string_view method);

/// The name RAYD_ACTOR registered the class with typeid `cls` under, or "".
std::string actor_class_name(const std::type_info& cls);
/// The registered name ("Class::method") of the method whose member
/// pointer's bytes are `key` in class `cls`, or "".
std::string actor_method_name(const std::type_info& cls, std::string_view key);

template <class T, class M>
std::string actor_method_name(M T::*method) {
  return actor_method_name(typeid(T), std::string_view(reinterpret_cast<const char*>(&method),
                                                        sizeof method));
}

// -- registration (RAYD_ACTOR) -------------------------------------------------

/// Registers class `cls` under `name` (a later registration of the same name
/// wins). Returns true (for static init).
bool register_actor_class(const char* name, const std::type_info& cls, actor_factory make,
                          actor_deleter del);
/// Registers a method of the class registered for `cls` under `name`
/// ("Class::method"); `key` is its member pointer's bytes.
void register_actor_method(const std::type_info& cls, std::string name, method_invoker f,
                           std::string_view key);

/// As above, and records how to build the constructor's or the method's
/// signature (RAYD_ACTOR passes build_signature<...>).
bool register_actor_class(const char* name, const std::type_info& cls, actor_factory make,
                          actor_deleter del, signature_builder ctor);
void register_actor_method(const std::type_info& cls, std::string name, method_invoker f,
                           std::string_view key, signature_builder sig);

// -- signatures -----------------------------------------------------------------

/// The constructor's signature of class `name` (params; result nil), or
/// nullopt if the class is unknown or registered without one.
std::optional<signature> signature_of_constructor(std::string_view name);
/// The signature of `method` ("Class::method", the class name may itself
/// hold "::"), or nullopt.
std::optional<signature> signature_of_method(std::string_view method);
/// Every recorded signature: functions (registry.hpp), then each class's
/// constructor followed by its methods; sorted by name within each.
std::vector<signature> registered_signatures();

/// The constructor's and every method's signature of actor class `name`
/// (empty for an unknown class).
std::vector<signature> class_signatures(std::string_view name);

/// Signatures as text, one per line: kind, name, result type, then each
/// parameter type, separated by tabs (type text forms hold no tab). How a
/// class's signatures are published in the GCS KV store (namespace
/// "rayd.signatures", key: the class) for `rayctl actor call`; read back
/// with decode_signatures (common/json_msgpack.hpp).
std::string encode_signatures(const std::vector<signature>& sigs);

/// The !ok result for arguments that do not fit (`what` names the call).
inline invoke_result actor_type_mismatch(const std::string& what, const std::string& why) {
  invoke_result r;
  r.ok = false;
  r.error_type = "rayd::type_mismatch";
  r.error_message = what + ": " + why;
  return r;
}

/// Unpacks `args` into `values` (one optional per parameter); "" when all
/// fit, else why not.
template <class... A, std::size_t... I>
std::string unpack_parameters(const std::vector<std::string_view>& args,
                              std::tuple<std::optional<std::decay_t<A>>...>& values,
                              std::index_sequence<I...>) {
  (check_parameter<A>(), ...);
  if (args.size() != sizeof...(A))
    return "expects " + std::to_string(sizeof...(A)) + " argument"
           + (sizeof...(A) == 1 ? "" : "s") + ", got " + std::to_string(args.size());
  std::string held, expected;
  std::size_t bad = 0;
  [[maybe_unused]] auto unpack_one = [&held, &expected, &bad](auto& slot, std::string_view bytes,
                                                              std::size_t index) {
    using T = typename std::decay_t<decltype(slot)>::value_type;
    slot = try_unpack<T>(bytes, held);
    if (!slot) {
      bad = index;
      expected = type_name<T>();
    }
    return slot.has_value();
  };
  if (!(unpack_one(std::get<I>(values), args[I], I + 1) && ...))
    return "argument " + std::to_string(bad) + " expects " + expected + ", got " + held;
  return {};
}

template <class C, class Sig>
struct actor_constructor;

/// Constructs C from the parameter types of `void(A...)` (RAYD_ACTOR's
/// parenthesized list).
template <class C, class... A>
struct actor_constructor<C, void(A...)> {
  template <std::size_t... I>
  static void* make(const std::vector<std::string_view>& args, invoke_result& why,
                    std::index_sequence<I...> seq) {
    std::tuple<std::optional<std::decay_t<A>>...> values;
    auto bad = unpack_parameters<A...>(args, values, seq);
    if (!bad.empty()) {
      why = actor_type_mismatch("constructor of " + actor_class_name(typeid(C)), bad);
      return nullptr;
    }
    return new C(std::forward<A>(*std::get<I>(values))...);
  }

  static void* construct(const std::vector<std::string_view>& args,
                         invoke_result& why) noexcept {
    try {
      return make(args, why, std::index_sequence_for<A...>{});
    } catch (...) {
      why = exception_result();
      return nullptr;
    }
  }
};

template <class C>
void delete_object(void* self) noexcept {
  delete static_cast<C*>(self);
}

template <class Ctor>
struct constructor_signature;

template <class... A>
struct constructor_signature<void(A...)> {
  static constexpr signature_builder value = &build_signature<void, A...>;
};

template <class R, class Args>
struct method_signature;

template <class R, class... A>
struct method_signature<R, std::tuple<A...>> {
  static constexpr signature_builder value = &build_signature<R, A...>;
};

/// The signature_builder of the method M.
template <auto M>
inline constexpr signature_builder method_signature_of
  = method_signature<typename method_traits<decltype(M)>::result,
                     typename method_traits<decltype(M)>::args>::value;

template <auto M>
std::string_view method_key() {
  static const auto m = M;
  return {reinterpret_cast<const char*>(&m), sizeof m};
}

template <auto M, class R, class C, class... A, std::size_t... I>
invoke_result invoke_method_with(C& self, const std::vector<std::string_view>& args,
                                 std::tuple<A...>*, std::index_sequence<I...> seq) {
  std::tuple<std::optional<std::decay_t<A>>...> values;
  auto bad = unpack_parameters<A...>(args, values, seq);
  if (!bad.empty()) {
    auto name = actor_method_name(typeid(C), method_key<M>());
    return actor_type_mismatch(name.empty() ? std::string("method") : name, bad);
  }
  invoke_result r;
  if constexpr (std::is_void_v<R>) {
    (self.*M)(std::forward<A>(*std::get<I>(values))...);
    r.value = pack_nil();
  } else {
    r.value = pack((self.*M)(std::forward<A>(*std::get<I>(values))...));
  }
  return r;
}

/// The invoker of method M (never throws, like invoker).
template <auto M>
invoke_result invoke_method(void* self, const std::vector<std::string_view>& args) noexcept {
  using traits = method_traits<decltype(M)>;
  using params = typename traits::args;
  using object = typename traits::object;
  try {
    return invoke_method_with<M, typename traits::result>(
      *static_cast<object*>(self), args, static_cast<params*>(nullptr),
      std::make_index_sequence<std::tuple_size_v<params>>{});
  } catch (...) {
    return exception_result();
  }
}

/// Registers class C (constructor parameters `Ctor` = void(A...)) and each
/// method M under "<name>::<method>" (`methods`: RAYD_ACTOR's stringified
/// method names).
template <class C, class Ctor, auto... M>
bool register_actor(const char* name, std::string_view methods) {
  static_assert((std::is_same_v<typename method_traits<decltype(M)>::object, C> && ...),
                "RAYD_ACTOR: every method must be a member of the class");
  register_actor_class(name, typeid(C), &actor_constructor<C, Ctor>::construct,
                       &delete_object<C>, constructor_signature<Ctor>::value);
  auto split = split_names(methods);
  std::size_t i = 0;
  (register_actor_method(typeid(C), std::string(name) + "::" + split[i++], &invoke_method<M>,
                         method_key<M>(), method_signature_of<M>),
   ...);
  return true;
}

} // namespace rayd::detail

// &Class::m for each method name, comma-separated (up to 32).
#define RAYD_ACTOR_EXPAND(x) x
#define RAYD_ACTOR_M1(C, a) &C::a
#define RAYD_ACTOR_M2(C, a, ...) &C::a, RAYD_ACTOR_EXPAND(RAYD_ACTOR_M1(C, __VA_ARGS__))
#define RAYD_ACTOR_M3(C, a, ...) &C::a, RAYD_ACTOR_EXPAND(RAYD_ACTOR_M2(C, __VA_ARGS__))
#define RAYD_ACTOR_M4(C, a, ...) &C::a, RAYD_ACTOR_EXPAND(RAYD_ACTOR_M3(C, __VA_ARGS__))
#define RAYD_ACTOR_M5(C, a, ...) &C::a, RAYD_ACTOR_EXPAND(RAYD_ACTOR_M4(C, __VA_ARGS__))
#define RAYD_ACTOR_M6(C, a, ...) &C::a, RAYD_ACTOR_EXPAND(RAYD_ACTOR_M5(C, __VA_ARGS__))
#define RAYD_ACTOR_M7(C, a, ...) &C::a, RAYD_ACTOR_EXPAND(RAYD_ACTOR_M6(C, __VA_ARGS__))
#define RAYD_ACTOR_M8(C, a, ...) &C::a, RAYD_ACTOR_EXPAND(RAYD_ACTOR_M7(C, __VA_ARGS__))
#define RAYD_ACTOR_M9(C, a, ...) &C::a, RAYD_ACTOR_EXPAND(RAYD_ACTOR_M8(C, __VA_ARGS__))
#define RAYD_ACTOR_M10(C, a, ...) &C::a, RAYD_ACTOR_EXPAND(RAYD_ACTOR_M9(C, __VA_ARGS__))
#define RAYD_ACTOR_M11(C, a, ...) &C::a, RAYD_ACTOR_EXPAND(RAYD_ACTOR_M10(C, __VA_ARGS__))
#define RAYD_ACTOR_M12(C, a, ...) &C::a, RAYD_ACTOR_EXPAND(RAYD_ACTOR_M11(C, __VA_ARGS__))
#define RAYD_ACTOR_M13(C, a, ...) &C::a, RAYD_ACTOR_EXPAND(RAYD_ACTOR_M12(C, __VA_ARGS__))
#define RAYD_ACTOR_M14(C, a, ...) &C::a, RAYD_ACTOR_EXPAND(RAYD_ACTOR_M13(C, __VA_ARGS__))
#define RAYD_ACTOR_M15(C, a, ...) &C::a, RAYD_ACTOR_EXPAND(RAYD_ACTOR_M14(C, __VA_ARGS__))
#define RAYD_ACTOR_M16(C, a, ...) &C::a, RAYD_ACTOR_EXPAND(RAYD_ACTOR_M15(C, __VA_ARGS__))
#define RAYD_ACTOR_M17(C, a, ...) &C::a, RAYD_ACTOR_EXPAND(RAYD_ACTOR_M16(C, __VA_ARGS__))
#define RAYD_ACTOR_M18(C, a, ...) &C::a, RAYD_ACTOR_EXPAND(RAYD_ACTOR_M17(C, __VA_ARGS__))
#define RAYD_ACTOR_M19(C, a, ...) &C::a, RAYD_ACTOR_EXPAND(RAYD_ACTOR_M18(C, __VA_ARGS__))
#define RAYD_ACTOR_M20(C, a, ...) &C::a, RAYD_ACTOR_EXPAND(RAYD_ACTOR_M19(C, __VA_ARGS__))
#define RAYD_ACTOR_M21(C, a, ...) &C::a, RAYD_ACTOR_EXPAND(RAYD_ACTOR_M20(C, __VA_ARGS__))
#define RAYD_ACTOR_M22(C, a, ...) &C::a, RAYD_ACTOR_EXPAND(RAYD_ACTOR_M21(C, __VA_ARGS__))
#define RAYD_ACTOR_M23(C, a, ...) &C::a, RAYD_ACTOR_EXPAND(RAYD_ACTOR_M22(C, __VA_ARGS__))
#define RAYD_ACTOR_M24(C, a, ...) &C::a, RAYD_ACTOR_EXPAND(RAYD_ACTOR_M23(C, __VA_ARGS__))
#define RAYD_ACTOR_M25(C, a, ...) &C::a, RAYD_ACTOR_EXPAND(RAYD_ACTOR_M24(C, __VA_ARGS__))
#define RAYD_ACTOR_M26(C, a, ...) &C::a, RAYD_ACTOR_EXPAND(RAYD_ACTOR_M25(C, __VA_ARGS__))
#define RAYD_ACTOR_M27(C, a, ...) &C::a, RAYD_ACTOR_EXPAND(RAYD_ACTOR_M26(C, __VA_ARGS__))
#define RAYD_ACTOR_M28(C, a, ...) &C::a, RAYD_ACTOR_EXPAND(RAYD_ACTOR_M27(C, __VA_ARGS__))
#define RAYD_ACTOR_M29(C, a, ...) &C::a, RAYD_ACTOR_EXPAND(RAYD_ACTOR_M28(C, __VA_ARGS__))
#define RAYD_ACTOR_M30(C, a, ...) &C::a, RAYD_ACTOR_EXPAND(RAYD_ACTOR_M29(C, __VA_ARGS__))
#define RAYD_ACTOR_M31(C, a, ...) &C::a, RAYD_ACTOR_EXPAND(RAYD_ACTOR_M30(C, __VA_ARGS__))
#define RAYD_ACTOR_M32(C, a, ...) &C::a, RAYD_ACTOR_EXPAND(RAYD_ACTOR_M31(C, __VA_ARGS__))
#define RAYD_ACTOR_PICK(_1, _2, _3, _4, _5, _6, _7, _8, _9, _10, _11, _12, _13, _14, _15, _16,  \
                        _17, _18, _19, _20, _21, _22, _23, _24, _25, _26, _27, _28, _29, _30,  \
                        _31, _32, N, ...)                                                        \
  N
#define RAYD_ACTOR_METHODS(C, ...)                                                                 \
  RAYD_ACTOR_EXPAND(RAYD_ACTOR_PICK(                                                               \
    __VA_ARGS__, RAYD_ACTOR_M32, RAYD_ACTOR_M31, RAYD_ACTOR_M30, RAYD_ACTOR_M29, RAYD_ACTOR_M28,  \
    RAYD_ACTOR_M27, RAYD_ACTOR_M26, RAYD_ACTOR_M25, RAYD_ACTOR_M24, RAYD_ACTOR_M23,               \
    RAYD_ACTOR_M22, RAYD_ACTOR_M21, RAYD_ACTOR_M20, RAYD_ACTOR_M19, RAYD_ACTOR_M18,               \
    RAYD_ACTOR_M17, RAYD_ACTOR_M16, RAYD_ACTOR_M15, RAYD_ACTOR_M14, RAYD_ACTOR_M13,               \
    RAYD_ACTOR_M12, RAYD_ACTOR_M11, RAYD_ACTOR_M10, RAYD_ACTOR_M9, RAYD_ACTOR_M8, RAYD_ACTOR_M7,  \
    RAYD_ACTOR_M6, RAYD_ACTOR_M5, RAYD_ACTOR_M4, RAYD_ACTOR_M3, RAYD_ACTOR_M2,                    \
    RAYD_ACTOR_M1)(C, __VA_ARGS__))

/// Registers class `Class` with its constructor's parameter types (a
/// parenthesized list, `()` for none) and the methods named after it; use
/// once per class at namespace scope, ending with a semicolon. See the top
/// of this file.
#define RAYD_ACTOR(Class, Ctor, ...)                                                               \
  [[maybe_unused]] static const bool RAYD_REMOTE_CAT(rayd_actor_registered_, __COUNTER__) =        \
    ::rayd::detail::register_actor<Class, void Ctor, RAYD_ACTOR_METHODS(Class, __VA_ARGS__)>(      \
      #Class, #__VA_ARGS__)
