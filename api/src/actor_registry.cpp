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
  /// nullptr if registered without one.
  signature_builder ctor_signature = nullptr;
  std::map<std::string, method_invoker, std::less<>> methods;
  /// Absent for methods registered without one.
  std::map<std::string, signature_builder, std::less<>> method_signatures;
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
  return register_actor_class(name, cls, make, del, nullptr);
}

bool register_actor_class(const char* name, const std::type_info& cls, actor_factory make,
                          actor_deleter del, signature_builder ctor) {
  auto& r = the_registry();
  std::unique_lock lock(r.mutex);
  auto& c = r.by_name[name];
  if (!c)
    c = std::make_unique<actor_class>();
  c->name = name;
  c->make = make;
  c->del = del;
  c->ctor_signature = ctor;
  r.by_type[std::type_index(cls)] = c.get();
  return true;
}

void register_actor_method(const std::type_info& cls, std::string name, method_invoker f,
                           std::string_view key) {
  register_actor_method(cls, std::move(name), f, key, nullptr);
}

void register_actor_method(const std::type_info& cls, std::string name, method_invoker f,
                           std::string_view key, signature_builder sig) {
  auto& r = the_registry();
  std::unique_lock lock(r.mutex);
  auto i = r.by_type.find(std::type_index(cls));
  if (i == r.by_type.end())
    return; // register_actor registers the class first
  auto& c = *i->second;
  c.names_by_key[std::string(key)] = name;
  if (sig)
    c.method_signatures[name] = sig;
  else if (auto s = c.method_signatures.find(name); s != c.method_signatures.end())
    c.method_signatures.erase(s);
  c.methods[std::move(name)] = f;
}

namespace {

signature build(signature::kind k, std::string name, signature_builder b) {
  signature s;
  s.k = k;
  s.name = std::move(name);
  b(s);
  if (k == signature::kind::constructor)
    s.result = type_desc{};
  return s;
}

} // namespace

std::optional<signature> signature_of_constructor(std::string_view name) {
  auto& r = the_registry();
  signature_builder b = nullptr;
  {
    std::shared_lock lock(r.mutex);
    auto i = r.by_name.find(name);
    if (i == r.by_name.end() || !i->second->ctor_signature)
      return std::nullopt;
    b = i->second->ctor_signature;
  }
  return build(signature::kind::constructor, std::string(name), b);
}

std::optional<signature> signature_of_method(std::string_view method) {
  // The class name may hold "::" (geo::Counter::add); a method name never does.
  auto sep = method.rfind("::");
  if (sep == std::string_view::npos || sep == 0)
    return std::nullopt;
  auto& r = the_registry();
  signature_builder b = nullptr;
  {
    std::shared_lock lock(r.mutex);
    auto i = r.by_name.find(method.substr(0, sep));
    if (i == r.by_name.end())
      return std::nullopt;
    auto m = i->second->method_signatures.find(method);
    if (m == i->second->method_signatures.end())
      return std::nullopt;
    b = m->second;
  }
  return build(signature::kind::method, std::string(method), b);
}

std::vector<signature> registered_signatures() {
  auto out = function_signatures();
  std::vector<std::tuple<signature::kind, std::string, signature_builder>> found;
  {
    auto& r = the_registry();
    std::shared_lock lock(r.mutex);
    for (auto& [name, c] : r.by_name) {
      if (c->ctor_signature)
        found.emplace_back(signature::kind::constructor, name, c->ctor_signature);
      for (auto& [method, b] : c->method_signatures)
        found.emplace_back(signature::kind::method, method, b);
    }
  }
  for (auto& [k, name, b] : found)
    out.push_back(build(k, std::move(name), b));
  return out;
}

std::vector<signature> class_signatures(std::string_view name) {
  std::vector<signature> out;
  if (auto ctor = signature_of_constructor(name))
    out.push_back(std::move(*ctor));
  else
    return out;
  auto prefix = std::string{name} + "::";
  for (auto& s : registered_signatures())
    if (s.k == signature::kind::method && s.name.compare(0, prefix.size(), prefix) == 0)
      out.push_back(std::move(s));
  return out;
}

std::string encode_signatures(const std::vector<signature>& sigs) {
  std::string out;
  for (auto& s : sigs) {
    out += s.k == signature::kind::function      ? "function"
           : s.k == signature::kind::constructor ? "constructor"
                                                 : "method";
    out += '\t';
    out += s.name;
    out += '\t';
    out += to_string(s.result);
    for (auto& p : s.params) {
      out += '\t';
      out += to_string(p);
    }
    out += '\n';
  }
  return out;
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
