#pragma once
// The registry of remote functions: RAYD_REMOTE(fn) registers `fn` under its
// name at static initialization; a worker looks a task's function up by
// name and runs it through its invoker.

#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "rayd/signature.hpp"

namespace rayd::detail {

/// What running a registered function produced.
struct invoke_result {
  bool ok = true;
  /// ok: the msgpack bytes of the return value (nil for void).
  std::string value;
  /// !ok: the exception's type (demangled) and what().
  std::string error_type;
  std::string error_message;
};

/// Unpacks each argument (msgpack bytes) into the function's parameter
/// types, calls it, packs the result. Never throws: a type mismatch or an
/// exception of the function becomes !ok.
using invoker = invoke_result (*)(const std::vector<std::string_view>& args);

/// Registers `f` under `name` (a later registration of the same name wins;
/// both must be the same function). Returns true (for static init).
bool register_function(const char* name, invoker f);

/// The invoker of `name`, or nullptr.
invoker find_function(std::string_view name);

/// Every registered name, sorted.
std::vector<std::string> registered_functions();

/// A function's address as a registry key: any function pointer converts
/// to it with reinterpret_cast (and back), so one key type serves all
/// signatures.
using function_key = void (*)();

/// As above, and remembers that the function at `fn` is `name`, so that
/// rayd::task(fn) can find its name (a later registration of `fn` wins).
bool register_function(const char* name, invoker f, function_key fn);

/// The name the function at `fn` was registered under, or "" if none.
std::string name_of(function_key fn);

/// As above, and records how to build the function's signature
/// (RAYD_REMOTE passes build_signature<R, A...>).
bool register_function(const char* name, invoker f, function_key fn, signature_builder sig);

/// The signature of the function registered as `name`; nullopt if there is
/// none, or if it was registered without one.
std::optional<signature> signature_of_function(std::string_view name);

/// The signatures of every registered function that has one, sorted by name.
std::vector<signature> function_signatures();

} // namespace rayd::detail
