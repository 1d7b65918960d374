#include "actors/node/event_loop.hpp"

#include <sys/eventfd.h>
#include <unistd.h>

#include <cerrno>
#include <cstring>
#include <string>

#include "common/error.hpp"

namespace rayd::node {

event_loop::~event_loop() {
  if (epfd_ >= 0)
    ::close(epfd_);
  if (event_fd_ >= 0)
    ::close(event_fd_);
}

caf::error event_loop::init() {
  epfd_ = ::epoll_create1(EPOLL_CLOEXEC);
  event_fd_ = ::eventfd(0, EFD_CLOEXEC | EFD_NONBLOCK);
  if (epfd_ < 0 || event_fd_ < 0)
    return make_error(errc::unavailable, std::string{"task server: "} + std::strerror(errno));
  watch(event_fd_, tag(wakeup_kind, 0));
  return caf::none;
}

void event_loop::watch(int fd, uint64_t t) {
  epoll_event ev{};
  ev.events = EPOLLIN;
  ev.data.u64 = t;
  ::epoll_ctl(epfd_, EPOLL_CTL_ADD, fd, &ev);
}

void event_loop::unwatch(int fd) {
  ::epoll_ctl(epfd_, EPOLL_CTL_DEL, fd, nullptr);
}

void event_loop::post(std::function<void()> f) {
  {
    std::lock_guard<std::mutex> guard{mtx_};
    posted_.push_back(std::move(f));
  }
  uint64_t one = 1;
  [[maybe_unused]] auto n = ::write(event_fd_, &one, sizeof one);
}

int event_loop::wait(epoll_event* out, int max, int timeout_ms) {
  int n = ::epoll_wait(epfd_, out, max, timeout_ms);
  if (n < 0)
    return 0; // EINTR: the caller loops
  for (int i = 0; i < n; ++i)
    if (kind_of(out[i].data.u64) == wakeup_kind) {
      uint64_t v;
      [[maybe_unused]] auto r = ::read(event_fd_, &v, sizeof v);
    }
  return n;
}

void event_loop::run_posted() {
  std::vector<std::function<void()>> todo;
  {
    std::lock_guard<std::mutex> guard{mtx_};
    todo.swap(posted_);
  }
  for (auto& f : todo)
    f();
}

} // namespace rayd::node
