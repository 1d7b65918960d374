#pragma once
// Bridge from one kj event loop to CAF: ask an actor, get a kj::Promise.
//
// One long-lived CAF actor (the "bridge actor") sends every request for the
// loop; nothing is spawned per call. Both directions are batched:
//
//   kj thread                       shared core (mutex)          CAF thread
//   ask() ── job ──► jobs queue ── wake (only if it was empty) ─► bridge actor
//                                                                  request(dest)
//   drain() ◄─ eventfd (only if it was empty) ◄─ done queue ◄──── reply / error
//
// So a burst of N calls costs one actor wake-up and, when their answers come
// together (the KV actor's group commit answers a whole batch at once), one
// eventfd write and one loop wake-up instead of N of each.
//
// Thread rules: construct, ask(), run() and destroy on the kj thread only. The
// bridge actor touches only the shared core (never a kj object); the kj-side
// fulfillers live in a table owned by the kj thread and are looked up by id
// when an answer is drained. An answer whose caller has gone (its promise was
// dropped, e.g. the client disconnected) is fulfilled into the void.
// Lifetime: the actor system must outlive the bridge; destroying the bridge
// stops its actor, and answers arriving later are discarded.
// Every call has a 30 s deadline, kept on this loop: once a second the slots
// older than that are failed with errc::timeout, so every slot is eventually
// released. The CAF requests themselves carry no timeout (caf::infinite):
// a CAF timeout costs a clock-thread entry and wake-up per request (~5 % of
// a core at 18k calls/s), and a callee that is gone answers at once anyway
// (request_receiver_down).
// Include only in gateway translation units (pulls in kj and caf/all).

#include <chrono>
#include <cstdint>
#include <memory>
#include <mutex>
#include <tuple>
#include <type_traits>
#include <unordered_map>
#include <utility>
#include <vector>

#include <caf/all.hpp>
#include <kj/async-io.h>

#include "actors/types.hpp"

namespace rayd::rpc {

class bridge {
public:
  /// Creates the wake-up eventfd and spawns the bridge actor.
  bridge(caf::actor_system& sys, kj::AsyncIoContext& io);
  ~bridge();

  bridge(const bridge&) = delete;
  bridge& operator=(const bridge&) = delete;

  /// Sends `xs...` to `dest` as a request; the promise resolves on this
  /// loop with the reply or the error (errc of the callee, or CAF's timeout).
  template <class Reply, class Handle, class... Ts>
  kj::Promise<caf::expected<Reply>> ask(const Handle& dest, Ts&&... xs) {
    auto paf = kj::newPromiseAndFulfiller<caf::expected<Reply>>();
    auto id = next_id_++;
    slots_.emplace(id, std::make_unique<slot<Reply>>(kj::mv(paf.fulfiller),
                                                     timer_.now() + deadline_));
    using job_t = request_job<Reply, Handle, std::decay_t<Ts>...>;
    post(std::make_unique<job_t>(id, dest, std::forward<Ts>(xs)...));
    return kj::mv(paf.promise);
  }

  /// Drains answers for as long as the loop runs; never resolves. The
  /// caller keeps the promise (a failure here is a broken event loop).
  kj::Promise<void> run();

  /// Fails every call asked more than `request_timeout` ago with
  /// errc::timeout (run() does this once a second; public for tests).
  void expire();

  /// Calls asked but not answered yet (for tests and diagnostics).
  std::size_t pending() const {
    return slots_.size();
  }

  static constexpr std::chrono::seconds request_timeout{30};

  // -- implementation types (public for the .cpp's helpers) -------------------

  struct core;

  /// An answer on its way from the CAF thread to the kj thread.
  struct answer_base {
    explicit answer_base(uint64_t i) : id(i) {
    }
    virtual ~answer_base() = default;
    uint64_t id;
  };

  /// A call on its way from the kj thread to the bridge actor.
  struct job_base {
    explicit job_base(uint64_t i) : id(i) {
    }
    virtual ~job_base() = default;
    /// Runs on the bridge actor: sends the request, and later hands the
    /// answer to `c`.
    virtual void start(caf::event_based_actor* self, const std::shared_ptr<core>& c) = 0;
    uint64_t id;
  };

  /// Hands an answer to the kj thread (any thread; wakes the loop when the
  /// done queue was empty).
  static void complete(const std::shared_ptr<core>& c, std::unique_ptr<answer_base> a);

private:
  struct slot_base {
    explicit slot_base(kj::TimePoint d) : deadline(d) {
    }
    virtual ~slot_base() noexcept(false) = default;
    virtual void deliver(answer_base& a) = 0;
    virtual void fail(caf::error e) = 0;
    kj::TimePoint deadline;
  };

  template <class Reply>
  struct answer final : answer_base {
    answer(uint64_t i, caf::expected<Reply> v) : answer_base(i), value(std::move(v)) {
    }
    caf::expected<Reply> value;
  };

  template <class Reply>
  struct slot final : slot_base {
    slot(kj::Own<kj::PromiseFulfiller<caf::expected<Reply>>> f, kj::TimePoint d)
      : slot_base(d), fulfiller(kj::mv(f)) {
    }
    void deliver(answer_base& a) override {
      fulfiller->fulfill(std::move(static_cast<answer<Reply>&>(a).value));
    }
    void fail(caf::error e) override {
      fulfiller->fulfill(caf::expected<Reply>{std::move(e)});
    }
    kj::Own<kj::PromiseFulfiller<caf::expected<Reply>>> fulfiller;
  };

  template <class Reply, class Handle, class... Ts>
  struct request_job final : job_base {
    template <class... Us>
    request_job(uint64_t i, const Handle& d, Us&&... xs)
      : job_base(i), dest(d), args(std::forward<Us>(xs)...) {
    }

    void start(caf::event_based_actor* self, const std::shared_ptr<core>& c) override {
      auto i = id;
      std::apply(
        [this, self](auto&... xs) {
          return self->request(dest, caf::infinite, std::move(xs)...);
        },
        args)
        .then(
          [c, i](Reply& r) {
            complete(c, std::make_unique<answer<Reply>>(i, std::move(r)));
          },
          [c, i](caf::error& e) {
            complete(c, std::make_unique<answer<Reply>>(i, caf::expected<Reply>{std::move(e)}));
          });
    }

    Handle dest;
    std::tuple<Ts...> args;
  };

  /// Queues a job; wakes the bridge actor when the queue was empty.
  void post(std::unique_ptr<job_base> j);

  /// Fulfills every answer that arrived.
  void drain();

  kj::Promise<void> wait_loop();

  kj::Promise<void> expire_loop();

  std::shared_ptr<core> core_;
  caf::actor actor_;
  kj::Timer& timer_;
  kj::Duration deadline_;
  kj::Own<kj::AsyncInputStream> wake_;
  uint64_t wake_buf_ = 0;
  uint64_t next_id_ = 1;
  std::unordered_map<uint64_t, std::unique_ptr<slot_base>> slots_;
};

} // namespace rayd::rpc
