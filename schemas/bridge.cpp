#include "schemas/bridge.hpp"

#include <sys/eventfd.h>
#include <unistd.h>

#include <cerrno>
#include <cstring>

#include "common/error.hpp"

namespace rayd::rpc {

/// What the kj thread and the answering threads share. Guarded by `mtx`.
struct bridge::core {
  std::mutex mtx;
  std::vector<answer> done;
  int wake_fd = -1; // owned by the kj side's stream; -1 once it is closed
};

namespace {

/// The sender of every bridged request. Never scheduled and has no mailbox:
/// the callee's thread runs enqueue() when it answers, and the answer goes
/// straight to the kj thread's queue. Anything but a response is dropped.
class reply_sink final : public caf::monitorable_actor {
public:
  reply_sink(caf::actor_config& cfg, std::shared_ptr<bridge::core> c)
    : caf::monitorable_actor(cfg), core_(std::move(c)) {
  }

  void enqueue(caf::mailbox_element_ptr what, caf::execution_unit*) override {
    if (!what || !what->mid.is_response())
      return;
    bridge::complete(core_, bridge::answer{what->mid.request_id().integer_value(),
                                           what->move_content_to_message()});
  }

  const char* name() const override {
    return "rayd.api.reply_sink";
  }

private:
  std::shared_ptr<bridge::core> core_;
};

} // namespace

bridge::bridge(caf::actor_system& sys, kj::AsyncIoContext& io,
               std::chrono::milliseconds deadline)
  : core_(std::make_shared<core>()),
    timer_(io.provider->getTimer()),
    deadline_(deadline.count() * kj::MILLISECONDS),
    deadline_ms_(deadline.count()) {
  int fd = ::eventfd(0, EFD_NONBLOCK | EFD_CLOEXEC);
  if (fd < 0)
    kj::throwFatalException(
      kj::Exception(kj::Exception::Type::FAILED, __FILE__, __LINE__,
                    kj::str("eventfd: ", std::strerror(errno))));
  core_->wake_fd = fd;
  wake_ = io.lowLevelProvider->wrapInputFd(fd, kj::LowLevelAsyncIoProvider::TAKE_OWNERSHIP
                                                 | kj::LowLevelAsyncIoProvider::ALREADY_NONBLOCK
                                                 | kj::LowLevelAsyncIoProvider::ALREADY_CLOEXEC);
  caf::actor_config cfg{sys.dummy_execution_unit()};
  sink_ = caf::make_actor<reply_sink, caf::strong_actor_ptr>(sys.next_actor_id(), sys.node(),
                                                             &sys, cfg, core_);
}

bridge::~bridge() {
  {
    std::lock_guard<std::mutex> guard{core_->mtx};
    core_->wake_fd = -1; // the stream closes it; no write after this
    core_->done.clear();
  }
  // The slots (kj fulfillers) are destroyed here, on the kj thread.
  slots_.clear();
}

caf::error bridge::unavailable() {
  return make_error(errc::unavailable, "the service is not running");
}

caf::error bridge::timed_out() const {
  return make_error(errc::timeout, "no answer from the GCS within "
                                     + std::to_string(deadline_ms_) + " ms");
}

caf::error bridge::unexpected(const caf::message& m) {
  return make_error(errc::internal, "unexpected answer from the GCS: " + caf::to_string(m));
}

void bridge::complete(const std::shared_ptr<core>& c, answer a) {
  std::lock_guard<std::mutex> guard{c->mtx};
  if (c->wake_fd < 0)
    return; // the kj side is gone
  bool was_empty = c->done.empty();
  c->done.push_back(std::move(a));
  if (was_empty) {
    uint64_t one = 1;
    // Cannot fail short of a counter overflow (2^64 - 2 pending wakes).
    auto n = ::write(c->wake_fd, &one, sizeof one);
    (void) n;
  }
}

void bridge::drain() {
  std::vector<answer> done;
  {
    std::lock_guard<std::mutex> guard{core_->mtx};
    done.swap(core_->done);
  }
  for (auto& a : done) {
    auto i = slots_.find(a.id);
    if (i == slots_.end())
      continue; // timed out (kept until now) or never ours
    auto s = std::move(i->second);
    slots_.erase(i);
    s->deliver(a.content);
  }
}

kj::Promise<void> bridge::run() {
  return wait_loop().exclusiveJoin(expire_loop());
}

void bridge::expire() {
  auto now = timer_.now();
  std::vector<std::unique_ptr<slot_base>> expired;
  for (auto i = slots_.begin(); i != slots_.end();) {
    if (i->second->deadline <= now) {
      expired.push_back(std::move(i->second));
      i = slots_.erase(i);
    } else {
      ++i;
    }
  }
  // Fulfilled after the sweep: a continuation may ask() again. A late
  // answer finds no slot and is dropped.
  for (auto& s : expired)
    s->fail(timed_out());
}

kj::Promise<void> bridge::expire_loop() {
  return timer_.afterDelay(1 * kj::SECONDS).then([this] {
    expire();
    return expire_loop();
  });
}

kj::Promise<void> bridge::wait_loop() {
  // Reading the eventfd resets it; answers pushed after the swap in drain()
  // find the queue empty and write it again, so none is missed.
  return wake_->tryRead(&wake_buf_, sizeof wake_buf_, sizeof wake_buf_)
    .then([this](size_t n) -> kj::Promise<void> {
      if (n == 0)
        kj::throwFatalException(kj::Exception(kj::Exception::Type::FAILED, __FILE__,
                                              __LINE__, kj::str("bridge eventfd closed")));
      drain();
      return wait_loop();
    });
}

} // namespace rayd::rpc
