// See actor_directory.hpp.

#include "actor_directory.hpp"

#include "rayd/actor_registry.hpp"

#include "common/error.hpp"
#include "schemas/api_client.hpp"

namespace rayd::core {

namespace {

using namespace std::chrono_literals;
using clock_type = std::chrono::steady_clock;

constexpr std::size_t max_batch = 2000;
constexpr uint32_t wait_ms = 1000;
constexpr auto call_timeout = 5s; // above wait_ms: a long poll is not a failure
constexpr auto retry_pause = 100ms;
constexpr auto sync_deadline = 30s;

/// A client that connects on first use and is dropped on any failure.
class lazy_client {
public:
  lazy_client(const std::string& address, const std::string& token)
    : address_{address}, token_{token} {
  }
  rpc::client* get() {
    if (!client_) {
      auto c = rpc::client::connect(address_, token_, call_timeout);
      if (c)
        client_ = std::move(*c);
      else
        last_error_ = describe(c.error());
    }
    return client_.get();
  }
  void drop(const caf::error& err) {
    last_error_ = describe(err);
    client_.reset();
  }
  const std::string& last_error() const {
    return last_error_;
  }

private:
  const std::string& address_;
  const std::string& token_;
  std::unique_ptr<rpc::client> client_;
  std::string last_error_ = "the head's API cannot be reached";
};

} // namespace

actor_directory::actor_directory(std::string api_address, std::string token, hooks h)
  : address_{std::move(api_address)}, token_{std::move(token)}, hooks_{std::move(h)} {
  control_ = std::thread([this] { control_loop(); });
  resolver_ = std::thread([this] { resolver_loop(); });
}

actor_directory::~actor_directory() {
  {
    std::lock_guard<std::mutex> guard{mtx_};
    quit_ = true;
  }
  control_cv_.notify_all();
  resolver_cv_.notify_all();
  control_.join();
  resolver_.join();
}

void actor_directory::publish_signatures(const std::string& cls) {
  if (!published_.insert(cls).second)
    return;
  auto text = rayd::detail::encode_signatures(rayd::detail::class_signatures(cls));
  if (text.empty())
    return;
  jobs_.push_back([cls, text](rpc::client* c) {
    if (c != nullptr)
      (void) c->kv_put("rayd.signatures", cls, text, true);
  });
}

void actor_directory::create_async(actor_create_request r) {
  {
    std::lock_guard<std::mutex> guard{mtx_};
    publish_signatures(r.class_name);
    creates_.push_back(std::move(r));
  }
  control_cv_.notify_one();
}

void actor_directory::want(const std::string& id) {
  {
    std::lock_guard<std::mutex> guard{mtx_};
    if (!wanted_.insert(id).second)
      return;
  }
  resolver_cv_.notify_one();
}

caf::expected<actor_info>
actor_directory::run(std::function<caf::expected<actor_info>(rpc::client&)> op) {
  auto done = std::make_shared<std::promise<caf::expected<actor_info>>>();
  auto answer = done->get_future();
  {
    std::lock_guard<std::mutex> guard{mtx_};
    if (quit_)
      return make_error(errc::unavailable, "the runtime is stopping");
    jobs_.push_back([done, op](rpc::client* c) {
      if (c == nullptr)
        done->set_value(make_error(errc::unavailable, "the head's API cannot be reached"));
      else
        done->set_value(op(*c));
    });
  }
  control_cv_.notify_one();
  return answer.get();
}

caf::expected<actor_info> actor_directory::create(actor_create_request r) {
  {
    std::lock_guard<std::mutex> guard{mtx_};
    publish_signatures(r.class_name);
  }
  control_cv_.notify_one();
  return run([r](rpc::client& c) -> caf::expected<actor_info> {
    auto out = c.actor_create({r});
    if (!out)
      return out.error();
    if (out->size() != 1)
      return make_error(errc::unavailable, "the head answered a create with "
                                             + std::to_string(out->size()) + " rows");
    if (!out->front().error.empty())
      return make_error(errc::already_exists, out->front().error);
    return std::move(out->front());
  });
}

caf::expected<actor_info> actor_directory::get(const std::string& name, const std::string& ns) {
  return run([name, ns](rpc::client& c) { return c.actor_get(name, ns); });
}

caf::expected<actor_info> actor_directory::kill(const std::string& id, bool no_restart,
                                                const std::string& by) {
  return run([id, no_restart, by](rpc::client& c) {
    return c.actor_kill(id, "", no_restart, by);
  });
}

void actor_directory::control_loop() {
  lazy_client client{address_, token_};
  // Creates that could not be sent, and since when.
  std::vector<actor_create_request> unsent;
  clock_type::time_point failing_since{};
  std::unique_lock<std::mutex> lock{mtx_};
  for (;;) {
    control_cv_.wait_for(lock, unsent.empty() ? 1s : retry_pause,
                         [this] { return quit_ || !creates_.empty() || !jobs_.empty(); });
    if (quit_)
      break;
    auto jobs = std::move(jobs_);
    jobs_.clear();
    for (auto& r : creates_)
      unsent.push_back(std::move(r));
    creates_.clear();
    lock.unlock();
    while (!unsent.empty()) {
      auto n = std::min(unsent.size(), max_batch);
      std::vector<actor_create_request> batch(std::make_move_iterator(unsent.begin()),
                                              std::make_move_iterator(unsent.begin() + n));
      caf::expected<std::vector<actor_info>> answer{caf::error{}};
      if (auto* c = client.get()) {
        answer = c->actor_create(batch);
        if (!answer)
          client.drop(answer.error());
      }
      if (!answer || answer->size() != batch.size()) {
        // Put back; give up on them after a while.
        for (std::size_t i = 0; i < n; ++i)
          unsent[i] = std::move(batch[i]);
        auto now = clock_type::now();
        if (failing_since == clock_type::time_point{})
          failing_since = now;
        if (now - failing_since >= give_up_after) {
          std::vector<actor_info> failed;
          for (auto& r : unsent) {
            actor_info x;
            x.actor_id = r.actor_id;
            x.error = "the actor could not be created: " + client.last_error();
            failed.push_back(std::move(x));
          }
          unsent.clear();
          failing_since = {};
          hooks_.created(std::move(failed));
        }
        break;
      }
      failing_since = {};
      unsent.erase(unsent.begin(), unsent.begin() + static_cast<std::ptrdiff_t>(n));
      hooks_.created(std::move(*answer));
    }
    // Synchronous operations after the creates queued before them: a kill
    // or a lookup right after an anonymous create finds the actor.
    for (auto& j : jobs) {
      // A synchronous operation has its own deadline: retry the connection
      // until then, so a restarting head costs the caller time only.
      auto deadline = clock_type::now() + sync_deadline;
      auto* c = client.get();
      while (c == nullptr && clock_type::now() < deadline) {
        std::this_thread::sleep_for(retry_pause);
        c = client.get();
      }
      j(c);
    }
    lock.lock();
  }
  // Answer synchronous callers still waiting.
  auto jobs = std::move(jobs_);
  lock.unlock();
  for (auto& j : jobs)
    j(nullptr);
}

void actor_directory::resolver_loop() {
  lazy_client client{address_, token_};
  std::unique_lock<std::mutex> lock{mtx_};
  for (;;) {
    resolver_cv_.wait(lock, [this] { return quit_ || !wanted_.empty(); });
    if (quit_)
      break;
    std::vector<std::string> ids;
    for (auto i = wanted_.begin(); i != wanted_.end() && ids.size() < max_batch;)
      ids.push_back(std::move(wanted_.extract(i++).value()));
    lock.unlock();
    caf::expected<std::vector<actor_info>> rows{caf::error{}};
    if (auto* c = client.get()) {
      rows = c->actor_wait(ids, wait_ms);
      if (!rows)
        client.drop(rows.error());
    }
    if (rows) {
      hooks_.rows(std::move(*rows));
      lock.lock();
      continue;
    }
    lock.lock();
    for (auto& id : ids) // ask again in a moment
      wanted_.insert(std::move(id));
    resolver_cv_.wait_for(lock, retry_pause, [this] { return quit_; });
  }
}

} // namespace rayd::core
