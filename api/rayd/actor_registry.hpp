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
// rayd::type_mismatch.

#include <string>
#include <string_view>
#include <tuple>
#include <typeinfo>
#include <vector>

#include "rayd/registry.hpp"

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

} // namespace rayd::detail
