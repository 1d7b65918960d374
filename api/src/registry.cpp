#include "rayd/registry.hpp"

#include <map>
#include <mutex>
#include <shared_mutex>

namespace rayd::detail {

namespace {

// Written at static initialization (RAYD_REMOTE) and by dlopen'ed task
// libraries; read by every task a worker runs, hence the shared lock.
struct registry {
  std::shared_mutex mutex;
  std::map<std::string, invoker, std::less<>> by_name;
  std::map<function_key, std::string> by_address;
  /// Absent for names registered without a signature.
  std::map<std::string, signature_builder, std::less<>> signatures;
};

// Built on first use, so that RAYD_REMOTE in any translation unit may run
// before this file's statics; never destroyed, so that threads still
// running tasks during exit never look into a dead map.
registry& the_registry() {
  static registry* r = new registry;
  return *r;
}

} // namespace

bool register_function(const char* name, invoker f) {
  auto& r = the_registry();
  std::unique_lock lock(r.mutex);
  r.by_name[name] = f;
  // A later registration without a signature must not keep an older one's.
  if (auto i = r.signatures.find(std::string_view(name)); i != r.signatures.end())
    r.signatures.erase(i);
  return true;
}

bool register_function(const char* name, invoker f, function_key fn) {
  auto& r = the_registry();
  std::unique_lock lock(r.mutex);
  r.by_name[name] = f;
  r.by_address[fn] = name;
  // A later registration without a signature must not keep an older one's.
  if (auto i = r.signatures.find(std::string_view(name)); i != r.signatures.end())
    r.signatures.erase(i);
  return true;
}

bool register_function(const char* name, invoker f, function_key fn, signature_builder sig) {
  auto& r = the_registry();
  std::unique_lock lock(r.mutex);
  r.by_name[name] = f;
  r.by_address[fn] = name;
  r.signatures[name] = sig;
  return true;
}

namespace {

signature build_function_signature(std::string name, signature_builder build) {
  signature s;
  s.k = signature::kind::function;
  s.name = std::move(name);
  build(s);
  return s;
}

} // namespace

std::optional<signature> signature_of_function(std::string_view name) {
  auto& r = the_registry();
  signature_builder build = nullptr;
  {
    std::shared_lock lock(r.mutex);
    auto i = r.signatures.find(name);
    if (i == r.signatures.end())
      return std::nullopt;
    build = i->second;
  }
  // Built outside the lock: it allocates, and builders are pure.
  return build_function_signature(std::string(name), build);
}

std::vector<signature> function_signatures() {
  std::map<std::string, signature_builder> copy;
  {
    auto& r = the_registry();
    std::shared_lock lock(r.mutex);
    copy.insert(r.signatures.begin(), r.signatures.end());
  }
  std::vector<signature> out;
  out.reserve(copy.size());
  for (auto& [name, build] : copy)
    out.push_back(build_function_signature(name, build));
  return out;
}

invoker find_function(std::string_view name) {
  auto& r = the_registry();
  std::shared_lock lock(r.mutex);
  auto i = r.by_name.find(name);
  return i == r.by_name.end() ? nullptr : i->second;
}

std::vector<std::string> registered_functions() {
  auto& r = the_registry();
  std::shared_lock lock(r.mutex);
  std::vector<std::string> out;
  out.reserve(r.by_name.size());
  for (auto& entry : r.by_name)
    out.push_back(entry.first);
  return out;
}

std::string name_of(function_key fn) {
  auto& r = the_registry();
  std::shared_lock lock(r.mutex);
  auto i = r.by_address.find(fn);
  return i == r.by_address.end() ? std::string() : i->second;
}

} // namespace rayd::detail
