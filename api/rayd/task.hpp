#pragma once
// Submitting tasks:
//
//   rayd::task(add).remote(1, 2)                     // object_ref<int>
//   rayd::task(add).num_cpus(0.5).remote(ref, 10)    // refs as arguments
//   rayd::task<int>("lib_fn").remote(3)              // by name (task libraries)
//
// task(fn) checks the arguments at compile time against fn's parameters;
// each argument is packed on its own (converted to the parameter's type
// first), an object_ref argument is passed by reference and the task runs
// once it is ready. task<R>("name") packs the arguments as given and checks
// nothing: the worker reports a mismatch as rayd::type_mismatch.
//
// A builder is a value: its option setters change it and return it, so it
// can be kept and submitted many times.

#include <cmath>
#include <cstddef>
#include <map>
#include <string>
#include <string_view>
#include <type_traits>
#include <utility>
#include <vector>

#include "rayd/core.hpp"
#include "rayd/errors.hpp"
#include "rayd/object_ref.hpp"
#include "rayd/registry.hpp"
#include "rayd/remote.hpp"
#include "rayd/serialize.hpp"

namespace rayd {

namespace detail {

/// Whether an argument of type A may be passed for a parameter P: A (or
/// the U of an object_ref<U>) converts to P's decayed type.
template <class P, class A>
constexpr bool arg_fits() {
  using D = std::decay_t<A>;
  if constexpr (is_object_ref<D>::value) {
    using U = typename D::value_type;
    if constexpr (std::is_void_v<U>)
      return false;
    else
      return std::is_convertible_v<U, std::decay_t<P>>;
  } else {
    return std::is_convertible_v<A, std::decay_t<P>>;
  }
}

/// Fails to compile, naming the argument's position and types, if it does
/// not fit (the compiler's note shows I, P and A).
template <std::size_t I, class P, class A>
struct check_arg {
  static_assert(arg_fits<P, A>(),
                "rayd::task(fn).remote: argument I (0-based) does not convert to fn's "
                "parameter P");
  static constexpr bool value = true;
};

/// One task argument: a reference for an object_ref, else msgpack bytes of
/// the value converted to P (void P: packed as given; C strings as strings).
template <class P, class A>
core::arg to_arg(A&& a, std::size_t index) {
  using D = std::decay_t<A>;
  core::arg out;
  if constexpr (is_object_ref<D>::value) {
    static_assert(!std::is_void_v<typename D::value_type>,
                  "an object_ref<void> holds no value to pass");
    if (!a.valid())
      throw error("argument " + std::to_string(index + 1) + " is an empty object_ref");
    out.is_ref = true;
    out.ref = a.id();
  } else if constexpr (std::is_void_v<P>) {
    if constexpr (std::is_same_v<D, const char*> || std::is_same_v<D, char*>)
      out.value = pack(std::string_view(a));
    else
      out.value = pack(a);
  } else if constexpr (std::is_same_v<D, std::decay_t<P>>) {
    out.value = pack(a);
  } else {
    out.value = pack(static_cast<std::decay_t<P>>(std::forward<A>(a)));
  }
  return out;
}

/// Sets `name` to `amount` in a builder's resources (tasks and actors);
/// throws rayd::error, naming `option`, for an amount that is not finite and >= 0.
inline void set_resource(std::map<std::string, double>& resources, const std::string& name,
                         double amount, const char* option) {
  if (!std::isfinite(amount) || amount < 0)
    throw error(std::string(option) + ": " + name + " must be a finite amount >= 0");
  resources[name] = amount;
}

/// The options every builder shares; setters return the derived builder.
template <class Self>
class task_base {
public:
  /// CPUs each run reserves. Default 1.
  Self& num_cpus(double n) {
    return resource("CPU", n, "num_cpus");
  }
  /// GPUs each run reserves. Default 0.
  Self& num_gpus(double n) {
    return resource("GPU", n, "num_gpus");
  }
  /// Memory each run reserves, in bytes. Default 0.
  Self& memory(double bytes) {
    return resource("memory", bytes, "memory");
  }
  /// Custom resources (or CPU/GPU/memory), added to those set so far.
  Self& resources(const std::map<std::string, double>& r) {
    for (auto& [name, amount] : r)
      resource(name, amount, "resources");
    return self();
  }
  /// Re-runs after a worker or node died under the task. Default 3.
  Self& max_retries(int n) {
    if (n < 0)
      throw error("max_retries must be >= 0, got " + std::to_string(n));
    opts_.max_retries = n;
    return self();
  }
  /// Labels a node must carry to run the task (replaces earlier ones).
  /// Default: none.
  Self& label_selector(const std::map<std::string, std::string>& labels) {
    opts_.label_selector = labels;
    return self();
  }

  const std::string& name() const noexcept {
    return name_;
  }
  const core::task_options& options() const noexcept {
    return opts_;
  }

protected:
  explicit task_base(std::string name) : name_(std::move(name)) {
  }

  template <class R>
  object_ref<R> submit(std::vector<core::arg> args) const {
    return object_ref<R>(runtime().submit(name_, std::move(args), opts_),
                         typename object_ref<R>::adopt_t{});
  }

private:
  Self& self() {
    return static_cast<Self&>(*this);
  }
  Self& resource(const std::string& name, double amount, const char* option) {
    set_resource(opts_.resources, name, amount, option);
    return self();
  }

  std::string name_;
  core::task_options opts_;
};

} // namespace detail

/// A task of a registered function R(P...); made by rayd::task(fn).
template <class R, class... P>
class typed_task : public detail::task_base<typed_task<R, P...>> {
public:
  using result_type = std::decay_t<R>;

  explicit typed_task(std::string name) : detail::task_base<typed_task>(std::move(name)) {
  }

  /// Submits fn(args...) and returns its result's ref at once. Each
  /// argument must convert to its parameter, or be an object_ref<U> whose
  /// U does. Throws rayd::error if the runtime is not running.
  template <class... A>
  object_ref<result_type> remote(A&&... args) const {
    static_assert(sizeof...(A) == sizeof...(P),
                  "rayd::task(fn).remote: wrong number of arguments for fn");
    if constexpr (sizeof...(A) == sizeof...(P)) {
      static_assert(checked<A...>(std::index_sequence_for<A...>{}));
      std::vector<core::arg> packed;
      packed.reserve(sizeof...(A));
      std::size_t i = 0;
      (packed.push_back(detail::to_arg<P>(std::forward<A>(args), i++)), ...);
      return this->template submit<result_type>(std::move(packed));
    }
  }

private:
  template <class... A, std::size_t... I>
  static constexpr bool checked(std::index_sequence<I...>) {
    return (detail::check_arg<I, P, A>::value && ...);
  }
};

/// A task of a function known by name only (e.g. in a task library);
/// made by rayd::task<R>("name").
template <class R>
class named_task : public detail::task_base<named_task<R>> {
public:
  explicit named_task(std::string name) : detail::task_base<named_task>(std::move(name)) {
  }

  /// Submits name(args...) with the arguments packed as given (object_refs
  /// by reference). A mismatch shows when the result is read: get throws
  /// rayd::task_error with remote_type() "rayd::type_mismatch".
  template <class... A>
  object_ref<R> remote(A&&... args) const {
    std::vector<core::arg> packed;
    packed.reserve(sizeof...(A));
    std::size_t i = 0;
    (packed.push_back(detail::to_arg<void>(std::forward<A>(args), i++)), ...);
    return this->template submit<R>(std::move(packed));
  }
};

/// The task of `fn`, which RAYD_REMOTE must have registered; throws
/// rayd::error otherwise. Options default as in core::task_options.
template <class R, class... P>
typed_task<R, P...> task(R (*fn)(P...)) {
  auto name = detail::name_of(reinterpret_cast<detail::function_key>(fn));
  if (name.empty())
    throw error("rayd::task: this function is not registered: add RAYD_REMOTE(<its name>) at "
                "namespace scope in a source file of the program");
  return typed_task<R, P...>(std::move(name));
}

/// The task named `name` returning R (void if it returns nothing).
template <class R>
named_task<R> task(std::string name) {
  return named_task<R>(std::move(name));
}

} // namespace rayd
