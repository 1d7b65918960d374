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
  return true;
}

bool register_function(const char* name, invoker f, function_key fn) {
  auto& r = the_registry();
  std::unique_lock lock(r.mutex);
  r.by_name[name] = f;
  r.by_address[fn] = name;
  return true;
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
