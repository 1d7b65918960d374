#pragma once
// Objects: object_ref<T> names a value in the cluster (a task's result or a
// put value); get/put/wait move values between the program and objects.
//
// Lifetime: each non-empty object_ref holds one reference on its object
// (core::runtime::add_ref / release). Copies add one, moves transfer it,
// destruction drops it; the object is freed once the last reference is
// gone and no pending task needs it. Passing a ref to .remote() adds none:
// the runtime keeps an argument alive until its task is done. The ids that
// submit/put return carry one reference, which the new object_ref adopts. While the
// runtime is not running (before init, after shutdown) refs count nothing
// and dropping them is a no-op.
//
// Thread-safety: distinct object_refs may be used from any threads; one
// object_ref is not synchronized (like std::shared_ptr's instance).

#include <chrono>
#include <cstddef>
#include <optional>
#include <string>
#include <type_traits>
#include <utility>
#include <vector>

#include "rayd/core.hpp"
#include "rayd/errors.hpp"
#include "rayd/serialize.hpp"
#include "rayd/sized_pack.hpp"

namespace rayd {

/// A reference to an object holding a T (void: the nil result of a void
/// function). Default-constructed: empty, valid() false.
template <class T>
class object_ref {
public:
  using value_type = T;

  object_ref() = default;

  /// Takes a new reference on `id`.
  explicit object_ref(core::object_id id) : id_(std::move(id)) {
    acquire();
  }

  /// Adopts the one reference a fresh id from core::runtime::submit/put
  /// carries (so the object cannot vanish before the ref exists).
  struct adopt_t {};
  object_ref(core::object_id id, adopt_t) : id_(std::move(id)) {
  }

  object_ref(const object_ref& other) : id_(other.id_) {
    acquire();
  }

  object_ref(object_ref&& other) noexcept : id_(std::move(other.id_)) {
    other.id_.clear();
  }

  object_ref& operator=(const object_ref& other) {
    if (this != &other) {
      object_ref copy(other);
      *this = std::move(copy);
    }
    return *this;
  }

  object_ref& operator=(object_ref&& other) noexcept {
    if (this != &other) {
      drop();
      id_ = std::move(other.id_);
      other.id_.clear();
    }
    return *this;
  }

  ~object_ref() {
    drop();
  }

  /// The object's id ("" when empty).
  const core::object_id& id() const noexcept {
    return id_;
  }

  bool valid() const noexcept {
    return !id_.empty();
  }

  friend bool operator==(const object_ref& a, const object_ref& b) noexcept {
    return a.id_ == b.id_;
  }
  friend bool operator!=(const object_ref& a, const object_ref& b) noexcept {
    return a.id_ != b.id_;
  }

private:
  void acquire() {
    if (!id_.empty() && core::running())
      core::current().add_ref(id_);
  }

  // Never throws: runs in destructors, possibly racing a shutdown.
  void drop() noexcept {
    if (id_.empty())
      return;
    try {
      if (core::running())
        core::current().release(id_);
    } catch (...) {
    }
    id_.clear();
  }

  core::object_id id_;
};

template <class T>
struct wait_result {
  /// Refs that are ready, then those that are not, each in input order.
  std::vector<object_ref<T>> ready;
  std::vector<object_ref<T>> not_ready;
};

namespace detail {

template <class T>
struct is_object_ref : std::false_type {};
template <class T>
struct is_object_ref<object_ref<T>> : std::true_type {};

/// The running runtime; rayd::error if init() was not called.
inline core::runtime& runtime() {
  if (!core::running())
    throw error("rayd: not initialized (call rayd::init() first)");
  return core::current();
}

template <class T>
void require_valid(const object_ref<T>& ref, const char* op) {
  if (!ref.valid())
    throw error(std::string(op) + ": empty object_ref");
}

/// What get returns for T: T itself, nothing for void.
template <class T>
T value_of(std::string_view bytes, const core::object_id& id) {
  if constexpr (std::is_void_v<T>)
    return;
  else
    return unpack<T>(bytes, "object " + short_id(id));
}

template <class T>
using values_t = std::conditional_t<std::is_void_v<T>, void, std::vector<T>>;

/// The type put stores for a V: C strings become std::string.
template <class V>
using stored_t = std::conditional_t<
  std::is_same_v<std::decay_t<V>, const char*> || std::is_same_v<std::decay_t<V>, char*>,
  std::string, std::decay_t<V>>;

} // namespace detail

/// The value of `ref` once it is ready. Throws rayd::task_error (the task
/// failed), rayd::object_lost, rayd::get_timeout (after `timeout`; default:
/// wait forever), rayd::serialization_error (the object does not hold a T).
template <class T>
T get(const object_ref<T>& ref, std::optional<std::chrono::milliseconds> timeout = std::nullopt) {
  detail::require_valid(ref, "rayd::get");
  auto bytes = detail::runtime().get({ref.id()}, timeout);
  if (bytes.size() != 1)
    throw error("rayd::get: the runtime returned " + std::to_string(bytes.size()) + " objects");
  return detail::value_of<T>(bytes[0], ref.id());
}

/// The values of `refs`, in order, once all are ready; `timeout` bounds the
/// whole wait. Throws as get(ref) does, for the first ref that fails.
template <class T>
detail::values_t<T> get(const std::vector<object_ref<T>>& refs,
                        std::optional<std::chrono::milliseconds> timeout = std::nullopt) {
  std::vector<core::object_id> ids;
  ids.reserve(refs.size());
  for (auto& r : refs) {
    detail::require_valid(r, "rayd::get");
    ids.push_back(r.id());
  }
  auto bytes = ids.empty() ? std::vector<std::string>() : detail::runtime().get(ids, timeout);
  if (bytes.size() != ids.size())
    throw error("rayd::get: asked for " + std::to_string(ids.size())
                + " objects, the runtime returned " + std::to_string(bytes.size()));
  if constexpr (std::is_void_v<T>) {
    return;
  } else {
    std::vector<T> out;
    out.reserve(bytes.size());
    for (std::size_t i = 0; i < bytes.size(); ++i)
      out.push_back(detail::value_of<T>(bytes[i], ids[i]));
    return out;
  }
}

/// Stores `value` in the cluster (small values stay in this process).
/// C strings are stored as std::string.
template <class V>
object_ref<detail::stored_t<V>> put(const V& value) {
  using stored = detail::stored_t<V>;
  static_assert(!detail::is_object_ref<stored>::value,
                "rayd::put of an object_ref: pass the ref itself");
  auto& rt = detail::runtime();
  // Measured first, then packed once into wherever the runtime stores it.
  auto put_one = [&rt](const stored& v) {
    auto size = detail::packed_size(v);
    return rt.put_packed(size, [&v, size](char* dst) { detail::pack_into(v, dst, size); });
  };
  if constexpr (std::is_same_v<stored, std::decay_t<V>>)
    return object_ref<stored>(put_one(value), typename object_ref<stored>::adopt_t{});
  else
    return object_ref<stored>(put_one(stored(value)), typename object_ref<stored>::adopt_t{});
}

/// Splits `refs` into ready and not ready once `num_returns` of them are
/// ready or `timeout` passed (default: no bound). Throws rayd::error if
/// num_returns exceeds refs.size() or a ref is empty.
template <class T>
wait_result<T> wait(const std::vector<object_ref<T>>& refs, std::size_t num_returns = 1,
                    std::optional<std::chrono::milliseconds> timeout = std::nullopt) {
  if (num_returns > refs.size())
    throw error("rayd::wait: num_returns " + std::to_string(num_returns) + " exceeds the "
                + std::to_string(refs.size()) + " refs given");
  std::vector<core::object_id> ids;
  ids.reserve(refs.size());
  for (auto& r : refs) {
    detail::require_valid(r, "rayd::wait");
    ids.push_back(r.id());
  }
  wait_result<T> out;
  if (ids.empty())
    return out;
  auto ready = detail::runtime().wait(ids, num_returns, timeout);
  if (ready.size() != refs.size())
    throw error("rayd::wait: the runtime answered for " + std::to_string(ready.size()) + " of "
                + std::to_string(refs.size()) + " refs");
  for (std::size_t i = 0; i < refs.size(); ++i)
    (ready[i] ? out.ready : out.not_ready).push_back(refs[i]);
  return out;
}

} // namespace rayd
