#pragma once
// Signatures of registered functions, constructors and methods: for each
// parameter and the result, a type descriptor derived at compile time from
// the C++ type (RAYD_REMOTE and RAYD_ACTOR record them). Tools that only
// know a name — `rayctl call`, `rayctl actor call` — read a signature to
// turn JSON into the msgpack each parameter expects and a result back into
// JSON (common/json_msgpack.hpp).
//
// Descriptors are plain values (no templates): they can be printed,
// compared and sent anywhere. The trait that builds them (describe_type<T>)
// is a handful of specializations over std containers, so it costs user
// code little to compile; a registration stores one function pointer that
// builds the signature on lookup, not the signature itself.
//
// Thread-safety: the lookups (registry.hpp, actor_registry.hpp) are safe
// from any thread; the values they return are copies.

#include <array>
#include <cstddef>
#include <cstdint>
#include <deque>
#include <list>
#include <map>
#include <optional>
#include <set>
#include <string>
#include <string_view>
#include <tuple>
#include <type_traits>
#include <typeinfo>
#include <unordered_map>
#include <unordered_set>
#include <utility>
#include <vector>

namespace rayd::detail {

/// What a C++ type looks like on the wire (msgpack), as far as a tool that
/// speaks JSON needs to know.
struct type_desc {
  enum class kind : uint8_t {
    nil,      // void (a result only): msgpack nil
    boolean,  // bool
    integer,  // any integral type but bool: see `bits` and `is_signed`
    floating, // float (bits 32) or double (bits 64)
    string,   // std::string, std::string_view: msgpack str
    bytes,    // std::vector<char|unsigned char|std::byte>, std::array of them: msgpack bin
    array,    // sequences (vector, list, deque, set, std::array): elements[0] is the element
    map,      // std::map / std::unordered_map: elements[0] the key, elements[1] the value
    optional, // std::optional: elements[0]; nullopt is msgpack nil
    tuple,    // std::tuple / std::pair: one element per member, a msgpack array
    opaque,   // anything else (a struct with MSGPACK_DEFINE, ...): see `cpp_name`
  };

  kind k = kind::nil;
  /// integer: 8, 16, 32 or 64; floating: 32 or 64; else 0.
  uint8_t bits = 0;
  /// integer: whether negative values fit.
  bool is_signed = false;
  /// array from std::array<T, N>: N (the invoker wants exactly N); else 0.
  std::size_t fixed_size = 0;
  /// opaque: the C++ type's name ("geo::point"); else "".
  std::string cpp_name;
  std::vector<type_desc> elements;

  friend bool operator==(const type_desc& a, const type_desc& b) {
    return a.k == b.k && a.bits == b.bits && a.is_signed == b.is_signed
           && a.fixed_size == b.fixed_size && a.cpp_name == b.cpp_name
           && a.elements == b.elements;
  }
  friend bool operator!=(const type_desc& a, const type_desc& b) {
    return !(a == b);
  }
};

/// The compact text form of a type: "int32", "uint8", "double", "bool",
/// "string", "bytes", "array<int64>", "array<double, 3>",
/// "map<string, int32>", "optional<string>", "tuple<int32, string>",
/// "opaque<geo::point>", "nil".
std::string to_string(const type_desc& t);

/// What a registered name takes and returns.
struct signature {
  enum class kind : uint8_t { function, constructor, method };
  kind k = kind::function;
  /// "add", "Counter" (a constructor), "Counter::add" (a method).
  std::string name;
  std::vector<type_desc> params;
  /// nil for void and for constructors.
  type_desc result;
};

/// "int64, string -> double" ("-> nil" for void; "() -> int32" without
/// parameters; a constructor shows "-> nil").
std::string to_string(const signature& s);

/// Builds a signature's params and result (name and kind are the
/// registry's); a registration stores one of these.
using signature_builder = void (*)(signature& out);

// -- describe_type<T>: the compile-time trait -----------------------------------

/// The readable name of a type from its typeid name ("geo::point").
std::string opaque_type_name(const char* mangled);

template <class T, class = void>
struct describe_type {
  static void fill(type_desc& t) {
    t.k = type_desc::kind::opaque;
    t.cpp_name = opaque_type_name(typeid(T).name());
  }
};

template <class T>
void describe(type_desc& t) {
  describe_type<std::remove_cv_t<std::remove_reference_t<T>>>::fill(t);
}

template <class T>
type_desc describe() {
  type_desc t;
  describe<T>(t);
  return t;
}

template <>
struct describe_type<void> {
  static void fill(type_desc& t) {
    t.k = type_desc::kind::nil;
  }
};

template <>
struct describe_type<bool> {
  static void fill(type_desc& t) {
    t.k = type_desc::kind::boolean;
  }
};

// Every integral type but bool (char and wchar_t included: msgpack packs
// them as integers).
template <class T>
struct describe_type<T, std::enable_if_t<std::is_integral_v<T> && !std::is_same_v<T, bool>>> {
  static void fill(type_desc& t) {
    t.k = type_desc::kind::integer;
    t.bits = static_cast<uint8_t>(sizeof(T) * 8);
    t.is_signed = std::is_signed_v<T>;
  }
};

template <class T>
struct describe_type<T, std::enable_if_t<std::is_same_v<T, float> || std::is_same_v<T, double>>> {
  static void fill(type_desc& t) {
    t.k = type_desc::kind::floating;
    t.bits = static_cast<uint8_t>(sizeof(T) * 8);
  }
};

template <>
struct describe_type<std::string> {
  static void fill(type_desc& t) {
    t.k = type_desc::kind::string;
  }
};

template <>
struct describe_type<std::string_view> {
  static void fill(type_desc& t) {
    t.k = type_desc::kind::string;
  }
};

/// Element types that msgpack-cxx packs as one bin when in a vector/array.
template <class T>
inline constexpr bool is_byte_v = std::is_same_v<T, char> || std::is_same_v<T, unsigned char>
                                  || std::is_same_v<T, std::byte>;

template <class T>
void describe_sequence(type_desc& t, std::size_t fixed_size) {
  if constexpr (is_byte_v<T>) {
    t.k = type_desc::kind::bytes;
  } else {
    t.k = type_desc::kind::array;
    t.fixed_size = fixed_size;
    t.elements.resize(1);
    describe<T>(t.elements[0]);
  }
}

template <class T, class A>
struct describe_type<std::vector<T, A>> {
  static void fill(type_desc& t) {
    describe_sequence<T>(t, 0);
  }
};

template <class T, std::size_t N>
struct describe_type<std::array<T, N>> {
  static void fill(type_desc& t) {
    describe_sequence<T>(t, N);
  }
};

// Sequences msgpack packs as arrays even of bytes.
template <class T>
void describe_array(type_desc& t) {
  t.k = type_desc::kind::array;
  t.elements.resize(1);
  describe<T>(t.elements[0]);
}

template <class T, class A>
struct describe_type<std::list<T, A>> {
  static void fill(type_desc& t) {
    describe_array<T>(t);
  }
};

template <class T, class A>
struct describe_type<std::deque<T, A>> {
  static void fill(type_desc& t) {
    describe_array<T>(t);
  }
};

template <class T, class C, class A>
struct describe_type<std::set<T, C, A>> {
  static void fill(type_desc& t) {
    describe_array<T>(t);
  }
};

template <class T, class H, class E, class A>
struct describe_type<std::unordered_set<T, H, E, A>> {
  static void fill(type_desc& t) {
    describe_array<T>(t);
  }
};

template <class K, class V>
void describe_map(type_desc& t) {
  t.k = type_desc::kind::map;
  t.elements.resize(2);
  describe<K>(t.elements[0]);
  describe<V>(t.elements[1]);
}

template <class K, class V, class C, class A>
struct describe_type<std::map<K, V, C, A>> {
  static void fill(type_desc& t) {
    describe_map<K, V>(t);
  }
};

template <class K, class V, class H, class E, class A>
struct describe_type<std::unordered_map<K, V, H, E, A>> {
  static void fill(type_desc& t) {
    describe_map<K, V>(t);
  }
};

template <class T>
struct describe_type<std::optional<T>> {
  static void fill(type_desc& t) {
    t.k = type_desc::kind::optional;
    t.elements.resize(1);
    describe<T>(t.elements[0]);
  }
};

template <class... T>
struct describe_type<std::tuple<T...>> {
  static void fill(type_desc& t) {
    t.k = type_desc::kind::tuple;
    t.elements.resize(sizeof...(T));
    std::size_t i = 0;
    (describe<T>(t.elements[i++]), ...);
  }
};

template <class A, class B>
struct describe_type<std::pair<A, B>> {
  static void fill(type_desc& t) {
    t.k = type_desc::kind::tuple;
    t.elements.resize(2);
    describe<A>(t.elements[0]);
    describe<B>(t.elements[1]);
  }
};

/// The signature_builder of a callable with result R and parameters A...
template <class R, class... A>
void build_signature(signature& out) {
  out.params.resize(sizeof...(A));
  std::size_t i = 0;
  (describe<A>(out.params[i++]), ...);
  describe<R>(out.result);
}

} // namespace rayd::detail
