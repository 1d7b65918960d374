#pragma once
// Actors (docs/actors.md): an instance of a RAYD_ACTOR class living in a
// worker process of the cluster, called through a handle.
//
//   RAYD_ACTOR(Counter, (int), add, value);          // in a source file
//
//   auto counter = rayd::actor<Counter>(10).name("hits").max_restarts(2).remote();
//   rayd::object_ref<int> r = counter.task(&Counter::add).remote(5);
//   int now = rayd::get(r);                          // 15
//   auto same = rayd::get_actor<Counter>("hits");   // from any driver, task or actor
//   rayd::kill(counter);                             // no restart
//
// Calls from one process to one actor run in the order they were made
// (with max_concurrency(1), the default). Arguments follow the rules of
// tasks (task.hpp): checked against the method's parameters at compile
// time, object_refs passed by reference. Constructor arguments are values
// (kept by the GCS so a restart can construct the actor again).
//
// A call on a dead actor fails: get() throws rayd::actor_died_error saying
// why. Handles are values: copy them, pass them to tasks and other actors
// as arguments (they travel as the actor's id).

#include <cstddef>
#include <map>
#include <string>
#include <tuple>
#include <type_traits>
#include <utility>
#include <vector>

#include "rayd/actor_registry.hpp"
#include "rayd/core.hpp"
#include "rayd/errors.hpp"
#include "rayd/object_ref.hpp"
#include "rayd/serialize.hpp"
#include "rayd/task.hpp"

namespace rayd {

namespace detail {

/// The class name RAYD_ACTOR registered T under; throws if it did not.
template <class T>
std::string registered_class() {
  auto name = actor_class_name(typeid(T));
  if (name.empty())
    throw error(std::string("rayd::actor: class ") + demangle(typeid(T).name())
                + " is not registered: add RAYD_ACTOR(<class>, (<constructor parameter "
                  "types>), <methods>...) at namespace scope in a source file");
  return name;
}

/// Constructor arguments are values: msgpack bytes of each, as given.
template <class A>
std::string pack_ctor_arg(A&& a) {
  using D = std::decay_t<A>;
  static_assert(!is_object_ref<D>::value,
                "rayd::actor: constructor arguments are values (get() an object_ref first)");
  if constexpr (std::is_same_v<D, const char*> || std::is_same_v<D, char*>)
    return pack(std::string_view(a));
  else
    return pack(a);
}

} // namespace detail

template <class T>
class actor_handle;

/// One method of an actor, ready to call: handle.task(&T::method).
template <class T, class R, class... P>
class actor_method {
public:
  using result_type = std::decay_t<R>;

  actor_method(std::string actor, std::string method)
    : actor_(std::move(actor)), method_(std::move(method)) {
  }

  /// Calls the method with `args` and returns its result's ref at once.
  template <class... A>
  object_ref<result_type> remote(A&&... args) const {
    static_assert(sizeof...(A) == sizeof...(P),
                  "handle.task(&T::method).remote: wrong number of arguments for the method");
    if constexpr (sizeof...(A) == sizeof...(P)) {
      static_assert(checked<A...>(std::index_sequence_for<A...>{}));
      std::vector<core::arg> packed;
      packed.reserve(sizeof...(A));
      std::size_t i = 0;
      (packed.push_back(detail::to_arg<P>(std::forward<A>(args), i++)), ...);
      return object_ref<result_type>(detail::runtime().call_actor(actor_, method_, std::move(packed)),
                                     typename object_ref<result_type>::adopt_t{});
    }
  }

  const std::string& method() const noexcept {
    return method_;
  }

private:
  template <class... A, std::size_t... I>
  static constexpr bool checked(std::index_sequence<I...>) {
    return (detail::check_arg<I, P, A>::value && ...);
  }

  std::string actor_;
  std::string method_;
};

/// A handle on an actor of class T. Default-constructed: empty.
template <class T>
class actor_handle {
public:
  actor_handle() = default;
  explicit actor_handle(core::actor_id id) : id_(std::move(id)) {
  }

  const core::actor_id& id() const noexcept {
    return id_;
  }
  bool valid() const noexcept {
    return !id_.empty();
  }

  /// The method `m` of T (registered by RAYD_ACTOR), to call with .remote().
  template <class M>
  auto task(M m) const {
    using traits = detail::method_traits<M>;
    static_assert(std::is_same_v<typename traits::object, T>,
                  "handle.task(&T::method): the method must be T's own member function");
    if (id_.empty())
      throw error("rayd: task() on an empty actor_handle");
    auto name = detail::actor_method_name(m);
    if (name.empty())
      throw error("rayd: this method of " + detail::registered_class<T>()
                  + " is not registered: list it in its RAYD_ACTOR");
    return make_method<typename traits::result>(std::move(name),
                                                static_cast<typename traits::args*>(nullptr));
  }

  friend bool operator==(const actor_handle& a, const actor_handle& b) {
    return a.id_ == b.id_;
  }

  MSGPACK_DEFINE(id_)

private:
  template <class R, class... P>
  actor_method<T, R, P...> make_method(std::string name, std::tuple<P...>*) const {
    return actor_method<T, R, P...>(id_, std::move(name));
  }

  core::actor_id id_;
};

/// Creates actors of T: rayd::actor<T>(constructor args...), options, then
/// .remote(). A builder is a value: keep it and create several actors.
template <class T>
class actor_builder {
public:
  explicit actor_builder(std::vector<std::string> args) : args_(std::move(args)) {
  }

  /// A name, unique among live actors of its namespace. Default: none.
  actor_builder& name(std::string n) {
    opts_.name = std::move(n);
    return *this;
  }
  /// The namespace of the name. Default: "default".
  actor_builder& ray_namespace(std::string ns) {
    opts_.ray_namespace = std::move(ns);
    return *this;
  }
  /// With a name: a live actor of that name is returned instead of an error.
  actor_builder& get_if_exists() {
    opts_.get_if_exists = true;
    return *this;
  }
  /// Outlives the job that created it (else it dies with the job).
  actor_builder& lifetime_detached() {
    opts_.detached = true;
    return *this;
  }
  /// Restarts after its process or node died (-1: unlimited). Default 0.
  actor_builder& max_restarts(int n) {
    check_limit(n, "max_restarts");
    opts_.max_restarts = n;
    return *this;
  }
  /// Retries of a call lost with a process or node (-1: unlimited). Default 0.
  actor_builder& max_task_retries(int n) {
    check_limit(n, "max_task_retries");
    opts_.max_task_retries = n;
    return *this;
  }
  /// Calls that may run at once. Default 1 (calls run one by one, in order).
  actor_builder& max_concurrency(int n) {
    if (n < 1)
      throw error("max_concurrency must be >= 1, got " + std::to_string(n));
    opts_.max_concurrency = n;
    return *this;
  }
  /// CPUs it holds while alive. Default 0.
  actor_builder& num_cpus(double n) {
    return resource("CPU", n, "num_cpus");
  }
  actor_builder& num_gpus(double n) {
    return resource("GPU", n, "num_gpus");
  }
  actor_builder& memory(double bytes) {
    return resource("memory", bytes, "memory");
  }
  actor_builder& resources(const std::map<std::string, double>& r) {
    for (auto& [n, amount] : r)
      resource(n, amount, "resources");
    return *this;
  }
  /// Labels its node must carry.
  actor_builder& label_selector(const std::map<std::string, std::string>& labels) {
    opts_.label_selector = labels;
    return *this;
  }

  const core::actor_options& options() const noexcept {
    return opts_;
  }

  /// Creates the actor. Anonymous: returns at once. Named: after the GCS
  /// recorded it; throws rayd::error if the name is taken (without
  /// get_if_exists).
  actor_handle<T> remote() const {
    return actor_handle<T>(
      detail::runtime().create_actor(detail::registered_class<T>(), args_, opts_));
  }

private:
  static void check_limit(int n, const char* option) {
    if (n < -1)
      throw error(std::string(option) + " must be >= -1 (-1: unlimited), got "
                  + std::to_string(n));
  }
  actor_builder& resource(const std::string& n, double amount, const char* option) {
    detail::set_resource(opts_.resources, n, amount, option);
    return *this;
  }

  std::vector<std::string> args_;
  core::actor_options opts_;
};

/// The builder of an actor of T constructed from `args` (values).
template <class T, class... A>
actor_builder<T> actor(A&&... args) {
  static_assert(std::is_constructible_v<T, std::decay_t<A>...>,
                "rayd::actor<T>(args...): T cannot be constructed from these arguments");
  std::vector<std::string> packed;
  packed.reserve(sizeof...(A));
  (packed.push_back(detail::pack_ctor_arg(std::forward<A>(args))), ...);
  return actor_builder<T>(std::move(packed));
}

/// The live actor named `name` in namespace `ns` ("" = "default"). Throws
/// rayd::error if there is none, or if it is not a T.
template <class T>
actor_handle<T> get_actor(const std::string& name, const std::string& ns = "") {
  auto found = detail::runtime().get_actor(name, ns);
  auto want = detail::registered_class<T>();
  if (found.class_name != want)
    throw error("rayd::get_actor: actor '" + name + "' is a " + found.class_name + ", not a "
                + want);
  return actor_handle<T>(std::move(found.id));
}

/// Kills the actor. With no_restart (the default) it stays dead; else it is
/// restarted while its max_restarts allow. Calls in flight fail with
/// rayd::actor_died_error.
template <class T>
void kill(const actor_handle<T>& handle, bool no_restart = true) {
  if (!handle.valid())
    throw error("rayd::kill: empty actor_handle");
  detail::runtime().kill_actor(handle.id(), no_restart);
}

} // namespace rayd
