#pragma once

// The caller's line to the GCS actor manager (docs/actors.md, "Who does
// what"): creates (anonymous ones batched, many per RPC), location lookups
// (actor_wait, batched), and the few synchronous operations (a named create,
// get_actor, kill). Calls to actors never pass here.
//
// Threads: two of its own, each with its own rpc client (a client belongs
// to the thread that made it): the control thread sends creates and runs
// the synchronous operations; the resolver thread long-polls actor_wait, so
// a slow wait never delays a create. The hooks run on those threads with no
// lock of this class held (they take the driver's lock themselves); the
// driver must not hold its lock while destroying this object.
//
// Failure rules: the head being down costs time, not actors: a batch that
// cannot be sent is sent again (a create is idempotent by actor id) until
// `give_up_after` (60 s) has passed, then its creates are answered with
// `error` set. Synchronous operations fail after their own deadline with
// the reason.

#include <chrono>
#include <condition_variable>
#include <deque>
#include <functional>
#include <future>
#include <memory>
#include <mutex>
#include <set>
#include <string>
#include <thread>
#include <vector>

#include <caf/expected.hpp>

#include "actors/actor_types.hpp"

namespace rayd::rpc {
class client;
}

namespace rayd::core {

class actor_directory {
public:
  struct hooks {
    /// Answers to asynchronous creates (one per create, in order; `error`
    /// set for a create that failed).
    std::function<void(std::vector<actor_info>)> created;
    /// Rows of actors someone wanted (want()): ALIVE or DEAD, or as they
    /// were when the wait timed out.
    std::function<void(std::vector<actor_info>)> rows;
  };

  actor_directory(std::string api_address, std::string token, hooks h);
  ~actor_directory();
  actor_directory(const actor_directory&) = delete;
  actor_directory& operator=(const actor_directory&) = delete;

  /// Queues a create; answered through hooks.created.
  void create_async(actor_create_request r);
  /// Asks for the row of `id` (answered through hooks.rows).
  void want(const std::string& id);

  /// Synchronous operations (on the control thread; block the caller).
  caf::expected<actor_info> create(actor_create_request r);
  caf::expected<actor_info> get(const std::string& name, const std::string& ns);
  caf::expected<actor_info> kill(const std::string& id, bool no_restart, const std::string& by);

  /// How long an unsendable create batch is retried.
  static constexpr std::chrono::seconds give_up_after{60};

private:
  using job = std::function<void(rpc::client*)>; // null client: the head is unreachable
  caf::expected<actor_info> run(std::function<caf::expected<actor_info>(rpc::client&)> op);
  void control_loop();
  void resolver_loop();

  const std::string address_;
  const std::string token_;
  const hooks hooks_;

  std::mutex mtx_;
  std::condition_variable control_cv_;
  std::condition_variable resolver_cv_;
  bool quit_ = false;
  std::vector<actor_create_request> creates_;
  std::deque<job> jobs_;

  /// Publishes the signatures of `cls` in the GCS KV store the first time
  /// this process creates one (for `rayctl actor call`); best effort, on the
  /// control thread. REQUIRES: mtx_ held.
  void publish_signatures(const std::string& cls);
  std::set<std::string> wanted_;
  /// Classes whose signatures this process published (once each).
  std::set<std::string> published_;
  std::thread control_;
  std::thread resolver_;
};

} // namespace rayd::core
