#include "client_runtime.hpp"

#include <memory>
#include <string>
#include <utility>
#include <vector>

#include "client_channel.hpp"

#include "common/client_ops.hpp"
#include "rayd/errors.hpp"

namespace rayd::core {

namespace {

using client_ops::kind;
using client_ops::op;
using client_ops::reply;

const std::string scheme = "rayd://";
/// Values above this travel as streams (the session's inline limit).
constexpr std::size_t stream_above = 8u << 20;

class client_runtime final : public runtime {
public:
  client_runtime(const init_options& opts, std::string address)
    : channel_(opts, std::move(address)) {
  }

  // -- runtime ----------------------------------------------------------------------

  object_id submit(const std::string& function, std::vector<arg> args,
                   const task_options& opts) override {
    op o;
    o.what = kind::submit;
    o.name = function;
    o.args = to_ops(args);
    o.resources = opts.resources;
    o.max_retries = opts.max_retries;
    o.labels = opts.label_selector;
    o.result = channel_.new_id();
    auto id = o.result;
    channel_.send(std::move(o), false);
    return id;
  }

  object_id put(std::string bytes) override {
    op o;
    o.result = channel_.new_id();
    auto id = o.result;
    if (bytes.size() <= stream_above) {
      o.what = kind::put;
      o.values.push_back(std::move(bytes));
      channel_.send(std::move(o), false);
      return id;
    }
    o.what = kind::put_stream;
    o.count = bytes.size();
    o.stream = channel_.new_stream();
    auto t = std::make_shared<transfer>();
    t->write = true;
    t->stream = o.stream;
    t->size = bytes.size();
    t->src = bytes.data();
    auto seq = channel_.send(std::move(o), true);
    channel_.run_transfer(t);
    auto r = channel_.await(seq);
    if (!t->error.empty() && r.error_kind.empty())
      throw object_store_full("rayd: put failed: " + t->error);
    raise_if_failed(r);
    return id;
  }

  std::vector<std::string> get(const std::vector<object_id>& ids,
                               std::optional<std::chrono::milliseconds> timeout) override {
    for (auto& id : ids)
      channel_.check_id(id);
    op o;
    o.what = kind::get;
    o.ids = ids;
    o.timeout_ms = timeout ? timeout->count() : -1;
    auto r = channel_.await(channel_.send(std::move(o), true));
    raise_if_failed(r);
    if (r.values.size() != ids.size())
      throw error("rayd: the head answered a get of " + std::to_string(ids.size())
                  + " objects with " + std::to_string(r.values.size()));
    std::vector<std::string> out;
    out.reserve(ids.size());
    for (auto& v : r.values) {
      if (!v.streamed) {
        out.push_back(std::move(v.bytes));
        continue;
      }
      out.emplace_back();
      auto t = std::make_shared<transfer>();
      t->stream = v.stream;
      t->size = v.size;
      t->dst = &out.back();
      t->dst->reserve(v.size);
      channel_.run_transfer(t);
      if (!t->error.empty())
        throw object_lost("rayd: reading an object from the head failed: " + t->error);
    }
    return out;
  }

  std::vector<bool> wait(const std::vector<object_id>& ids, std::size_t num_returns,
                         std::optional<std::chrono::milliseconds> timeout) override {
    for (auto& id : ids)
      channel_.check_id(id);
    op o;
    o.what = kind::wait;
    o.ids = ids;
    o.count = num_returns;
    o.timeout_ms = timeout ? timeout->count() : -1;
    auto r = channel_.await(channel_.send(std::move(o), true));
    raise_if_failed(r);
    return r.ready;
  }

  void add_ref(const object_id& id) override {
    op o;
    o.what = kind::add_ref;
    o.target = id;
    channel_.send(std::move(o), false);
  }

  void release(const object_id& id) override {
    op o;
    o.what = kind::release;
    o.target = id;
    channel_.send(std::move(o), false);
  }

  actor_id create_actor(const std::string& class_name, std::vector<std::string> args,
                        const actor_options& opts) override {
    op o;
    o.what = kind::create_actor;
    o.target = class_name;
    o.values = std::move(args);
    o.name = opts.name;
    o.ns = opts.ray_namespace;
    o.get_if_exists = opts.get_if_exists;
    o.flag = opts.detached;
    o.max_retries = opts.max_restarts;
    o.max_task_retries = opts.max_task_retries;
    o.max_concurrency = opts.max_concurrency;
    o.resources = opts.resources;
    o.labels = opts.label_selector;
    auto r = channel_.await(channel_.send(std::move(o), true));
    raise_if_failed(r);
    return r.actor_id;
  }

  object_id call_actor(const actor_id& actor, const std::string& method,
                       std::vector<arg> args) override {
    op o;
    o.what = kind::call_actor;
    o.target = actor;
    o.name = method;
    o.args = to_ops(args);
    o.result = channel_.new_id();
    auto id = o.result;
    channel_.send(std::move(o), false);
    return id;
  }

  actor_found get_actor(const std::string& name, const std::string& ns) override {
    op o;
    o.what = kind::get_actor;
    o.name = name;
    o.ns = ns;
    auto r = channel_.await(channel_.send(std::move(o), true));
    raise_if_failed(r);
    return {r.actor_id, r.class_name};
  }

  void kill_actor(const actor_id& actor, bool no_restart) override {
    op o;
    o.what = kind::kill_actor;
    o.target = actor;
    o.flag = no_restart;
    auto r = channel_.await(channel_.send(std::move(o), true));
    raise_if_failed(r);
  }

private:
  using transfer = client_channel::transfer;

  std::vector<client_ops::arg> to_ops(std::vector<arg>& args) {
    std::vector<client_ops::arg> out;
    out.reserve(args.size());
    for (auto& a : args) {
      client_ops::arg x;
      x.is_ref = a.is_ref;
      if (a.is_ref) {
        channel_.check_id(a.ref);
        x.value = a.ref;
      } else {
        x.value = std::move(a.value);
      }
      out.push_back(std::move(x));
    }
    return out;
  }

  static void raise_if_failed(const reply& r) {
    const auto& k = r.error_kind;
    if (k.empty())
      return;
    if (k == "actor_died")
      throw actor_died_error(r.function, r.remote_type, r.remote_message, r.node_id);
    if (k == "task_error")
      throw task_error(r.function, r.remote_type, r.remote_message, r.node_id);
    if (k == "object_lost")
      throw object_lost(r.error);
    if (k == "get_timeout")
      throw get_timeout(r.error);
    if (k == "store_full")
      throw object_store_full(r.error);
    if (k == "connection")
      throw connection_error(r.error);
    throw error(r.error);
  }

  client_channel channel_;
};

} // namespace

bool is_client_address(const std::string& address) {
  return address.rfind(scheme, 0) == 0;
}

std::unique_ptr<runtime> make_client_runtime(const init_options& opts,
                                             const std::string& address) {
  return std::make_unique<client_runtime>(opts, address);
}

} // namespace rayd::core
