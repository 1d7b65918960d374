#pragma once
// Bridge from one kj event loop to CAF: ask an actor, get a kj::Promise.
//
// No actor is spawned per call, and no actor is scheduled on the way: the kj
// thread puts the request straight into the callee's mailbox with a request
// id, and names as its sender a "reply sink" — an actor that is never
// scheduled, whose enqueue() (run by the callee's thread when it answers)
// only queues the answer for the kj thread:
//
//   kj thread                                              callee (CAF thread)
//   ask() ── request (sender = sink, id) ────────────────► mailbox
//   drain() ◄─ eventfd (only if the queue was empty) ◄──── sink.enqueue(reply)
//
// So a request wakes a CAF thread only when its callee was idle (a KV actor
// busy with a commit just finds it in its mailbox), and a burst of answers
// (the KV actor's group commit answers a whole batch at once) costs one
// eventfd write and one loop wake-up instead of one each.
//
// Thread rules: construct, ask(), run() and destroy on the kj thread only. The
// sink touches only the shared core (never a kj object); the kj-side
// fulfillers live in a table owned by the kj thread and are looked up by id
// when an answer is drained. An answer whose caller has gone (its promise was
// dropped, e.g. the client disconnected) is fulfilled into the void.
// Deadlines: every call fails with errc::timeout once it is older than
// `request_timeout`; run() sweeps the slots once a second on this loop (no
// timer per call, and CAF's clock thread is not involved). A callee that is
// gone answers at once with CAF's request_receiver_down.
// Lifetime: the actor system must outlive the bridge; answers arriving after
// the bridge is destroyed are discarded.
// Include only in gateway translation units (pulls in kj and caf/all).

#include <chrono>
#include <cstdint>
#include <memory>
#include <mutex>
#include <unordered_map>
#include <utility>
#include <vector>

#include <caf/all.hpp>
#include <kj/async-io.h>

#include "actors/types.hpp"

namespace rayd::rpc {

class bridge {
public:
  /// Creates the wake-up eventfd and the reply sink. A call unanswered
  /// after `deadline` fails with errc::timeout (tests shorten it).
  bridge(caf::actor_system& sys, kj::AsyncIoContext& io,
         std::chrono::milliseconds deadline = request_timeout);
  ~bridge();

  bridge(const bridge&) = delete;
  bridge& operator=(const bridge&) = delete;

  /// Sends `xs...` to `dest` as a request; the promise resolves on this
  /// loop with the reply or the error (the callee's, or errc::timeout).
  template <class Reply, class Handle, class... Ts>
  kj::Promise<caf::expected<Reply>> ask(const Handle& dest, Ts&&... xs) {
    auto* callee = caf::actor_cast<caf::abstract_actor*>(dest);
    if (callee == nullptr)
      return caf::expected<Reply>{unavailable()};
    auto paf = kj::newPromiseAndFulfiller<caf::expected<Reply>>();
    auto id = next_id_++;
    slots_.emplace(id, std::make_unique<slot<Reply>>(kj::mv(paf.fulfiller),
                                                     timer_.now() + deadline_));
    callee->enqueue(caf::make_mailbox_element(sink_, caf::make_message_id(id), {},
                                              std::forward<Ts>(xs)...),
                    nullptr);
    return kj::mv(paf.promise);
  }

  /// Drains answers and expires old calls for as long as the loop runs;
  /// never resolves. The caller keeps the promise (a failure here is a
  /// broken event loop).
  kj::Promise<void> run();

  /// Fails every call asked more than the deadline ago with
  /// errc::timeout (run() does this once a second; public for tests).
  void expire();

  /// Calls asked but not answered yet (for tests and diagnostics).
  std::size_t pending() const {
    return slots_.size();
  }

  static constexpr std::chrono::seconds request_timeout{30};

  // -- implementation types (public for the .cpp's sink) ----------------------

  struct core;

  /// An answer on its way from the callee's thread to the kj thread.
  struct answer {
    uint64_t id;
    caf::message content;
  };

  /// Hands an answer to the kj thread (any thread; wakes the loop when the
  /// queue was empty).
  static void complete(const std::shared_ptr<core>& c, answer a);

private:
  static caf::error unavailable();
  caf::error timed_out() const;
  static caf::error unexpected(const caf::message& m);

  struct slot_base {
    explicit slot_base(kj::TimePoint d) : deadline(d) {
    }
    virtual ~slot_base() noexcept(false) = default;
    virtual void deliver(caf::message& content) = 0;
    virtual void fail(caf::error e) = 0;
    kj::TimePoint deadline;
  };

  template <class Reply>
  struct slot final : slot_base {
    slot(kj::Own<kj::PromiseFulfiller<caf::expected<Reply>>> f, kj::TimePoint d)
      : slot_base(d), fulfiller(kj::mv(f)) {
    }
    void deliver(caf::message& m) override {
      if (m.match_elements<Reply>())
        fulfiller->fulfill(caf::expected<Reply>{std::move(m.get_mutable_as<Reply>(0))});
      else if (m.match_elements<caf::error>())
        fulfiller->fulfill(caf::expected<Reply>{m.get_as<caf::error>(0)});
      else
        fulfiller->fulfill(caf::expected<Reply>{unexpected(m)});
    }
    void fail(caf::error e) override {
      fulfiller->fulfill(caf::expected<Reply>{std::move(e)});
    }
    kj::Own<kj::PromiseFulfiller<caf::expected<Reply>>> fulfiller;
  };

  /// Fulfills every answer that arrived.
  void drain();

  kj::Promise<void> wait_loop();

  kj::Promise<void> expire_loop();

  std::shared_ptr<core> core_;
  caf::strong_actor_ptr sink_;
  kj::Timer& timer_;
  kj::Duration deadline_;
  int64_t deadline_ms_;
  kj::Own<kj::AsyncInputStream> wake_;
  uint64_t wake_buf_ = 0;
  uint64_t next_id_ = 1;
  std::unordered_map<uint64_t, std::unique_ptr<slot_base>> slots_;
};

} // namespace rayd::rpc
