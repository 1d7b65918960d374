#include "schemas/bridge.hpp"

#include <sys/eventfd.h>
#include <unistd.h>

#include <cerrno>
#include <cstring>

#include <spdlog/spdlog.h>

#include "common/error.hpp"

namespace rayd::rpc {

/// What both threads share. Every field is guarded by `mtx`.
struct bridge::core {
  std::mutex mtx;
  std::vector<std::unique_ptr<job_base>> jobs;
  std::vector<std::unique_ptr<answer_base>> done;
  int wake_fd = -1;    // owned by the kj side's stream; -1 once it is closed
};

namespace {

/// The bridge actor: starts every queued job when woken.
caf::behavior bridge_actor(caf::event_based_actor* self, std::shared_ptr<bridge::core> c) {
  return {
    [self, c](atoms::flush) {
      std::vector<std::unique_ptr<bridge::job_base>> jobs;
      {
        std::lock_guard<std::mutex> guard{c->mtx};
        jobs.swap(c->jobs);
      }
      for (auto& j : jobs)
        j->start(self, c);
    },
  };
}

} // namespace

bridge::bridge(caf::actor_system& sys, kj::AsyncIoContext& io)
  : core_(std::make_shared<core>()),
    timer_(io.provider->getTimer()),
    deadline_(std::chrono::duration_cast<std::chrono::milliseconds>(request_timeout).count()
              * kj::MILLISECONDS) {
  int fd = ::eventfd(0, EFD_NONBLOCK | EFD_CLOEXEC);
  if (fd < 0)
    kj::throwFatalException(
      kj::Exception(kj::Exception::Type::FAILED, __FILE__, __LINE__,
                    kj::str("eventfd: ", std::strerror(errno))));
  core_->wake_fd = fd;
  wake_ = io.lowLevelProvider->wrapInputFd(fd, kj::LowLevelAsyncIoProvider::TAKE_OWNERSHIP
                               | kj::LowLevelAsyncIoProvider::ALREADY_NONBLOCK
                               | kj::LowLevelAsyncIoProvider::ALREADY_CLOEXEC);
  actor_ = sys.spawn(bridge_actor, core_);
}

bridge::~bridge() {
  {
    std::lock_guard<std::mutex> guard{core_->mtx};
    core_->wake_fd = -1; // the stream below closes it; no write after this
    core_->jobs.clear();
  }
  caf::anon_send_exit(actor_, caf::exit_reason::user_shutdown);
  // Answers still queued are dropped with the core's last reference; the
  // slots (kj fulfillers) are destroyed here, on the kj thread.
  slots_.clear();
}

void bridge::post(std::unique_ptr<job_base> j) {
  bool was_empty;
  {
    std::lock_guard<std::mutex> guard{core_->mtx};
    was_empty = core_->jobs.empty();
    core_->jobs.push_back(std::move(j));
  }
  if (was_empty)
    caf::anon_send(actor_, atoms::flush::value);
}

void bridge::complete(const std::shared_ptr<core>& c, std::unique_ptr<answer_base> a) {
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
  std::vector<std::unique_ptr<answer_base>> done;
  {
    std::lock_guard<std::mutex> guard{core_->mtx};
    done.swap(core_->done);
  }
  for (auto& a : done) {
    auto i = slots_.find(a->id);
    if (i == slots_.end())
      continue;
    auto s = std::move(i->second);
    slots_.erase(i);
    s->deliver(*a);
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
  // Fulfilled after the sweep: a continuation may ask() again.
  for (auto& s : expired)
    s->fail(make_error(errc::timeout,
                       "no answer from the GCS within "
                         + std::to_string(request_timeout.count()) + " s"));
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
