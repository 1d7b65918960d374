#include "rayd/actor_registry.hpp"

#include <map>
#include <memory>
#include <mutex>
#include <shared_mutex>
#include <typeindex>

namespace rayd::detail {

/// A registered class: how to make, delete and call it.
struct actor_class {
  std::string name;
  actor_factory make = nullptr;
  actor_deleter del = nullptr;
  std::map<std::string, method_invoker, std::less<>> methods;
  /// Member pointer bytes → registered method name.
  std::map<std::string, std::string, std::less<>> names_by_key;
};

namespace {

// Written at static initialization (RAYD_ACTOR) and by dlopen'ed task
// libraries; read by every call a worker runs, hence the shared lock.
// Classes are never removed, so a found actor_class stays valid.
struct actor_registry {
  std::shared_mutex mutex;
  std::map<std::string, std::unique_ptr<actor_class>, std::less<>> by_name;
  std::map<std::type_index, actor_class*> by_type;
};

// Built on first use and never destroyed (see registry.cpp).
actor_registry& the_registry() {
  static actor_registry* r = new actor_registry;
  return *r;
}

} // namespace

bool register_actor_class(const char* name, const std::type_info& cls, actor_factory make,
                          actor_deleter del) {
  auto& r = the_registry();
  std::unique_lock lock(r.mutex);
  auto& c = r.by_name[name];
  if (!c)
    c = std::make_unique<actor_class>();
  c->name = name;
  c->make = make;
  c->del = del;
  r.by_type[std::type_index(cls)] = c.get();
  return true;
}

void register_actor_method(const std::type_info& cls, std::string name, method_invoker f,
                           std::string_view key) {
  auto& r = the_registry();
  std::unique_lock lock(r.mutex);
  auto i = r.by_type.find(std::type_index(cls));
  if (i == r.by_type.end())
    return; // register_actor registers the class first
  i->second->names_by_key[std::string(key)] = name;
  i->second->methods[std::move(name)] = f;
}

const actor_class* find_actor_class(std::string_view name) {
  auto& r = the_registry();
  std::shared_lock lock(r.mutex);
  auto i = r.by_name.find(name);
  return i == r.by_name.end() ? nullptr : i->second.get();
}

void* construct(const actor_class& c, const std::vector<std::string_view>& args,
                invoke_result& why) noexcept {
  actor_factory make;
  {
    std::shared_lock lock(the_registry().mutex);
    make = c.make;
  }
  return make(args, why);
}

void destroy(const actor_class& c, void* self) noexcept {
  actor_deleter del;
  {
    std::shared_lock lock(the_registry().mutex);
    del = c.del;
  }
  del(self);
}

method_invoker find_method(const actor_class& c, std::string_view method) {
  std::shared_lock lock(the_registry().mutex);
  auto i = c.methods.find(method);
  return i == c.methods.end() ? nullptr : i->second;
}

std::string actor_class_name(const std::type_info& cls) {
  auto& r = the_registry();
  std::shared_lock lock(r.mutex);
  auto i = r.by_type.find(std::type_index(cls));
  return i == r.by_type.end() ? std::string() : i->second->name;
}

std::string actor_method_name(const std::type_info& cls, std::string_view key) {
  auto& r = the_registry();
  std::shared_lock lock(r.mutex);
  auto i = r.by_type.find(std::type_index(cls));
  if (i == r.by_type.end())
    return {};
  auto m = i->second->names_by_key.find(key);
  return m == i->second->names_by_key.end() ? std::string() : m->second;
}

} // namespace rayd::detail
