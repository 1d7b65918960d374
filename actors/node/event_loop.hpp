#pragma once
// The task server's event loop: one epoll set and a queue of closures that
// other threads post to it (woken through an eventfd). It owns no
// connection; its users tag what they watch and dispatch the events.
//
// Threads: `post` is thread-safe; everything else belongs to the loop
// thread (the one calling `wait` and `run_posted`).

#include <sys/epoll.h>

#include <cstdint>
#include <functional>
#include <mutex>
#include <vector>

#include <caf/error.hpp>

namespace rayd::node {

class event_loop {
public:
  /// A tag names what an event is about: a kind in the top byte, an id below.
  static uint64_t tag(uint64_t kind, uint64_t id) {
    return (kind << 56) | id;
  }
  static uint64_t kind_of(uint64_t tag) {
    return tag >> 56;
  }
  static uint64_t id_of(uint64_t tag) {
    return tag & ((uint64_t{1} << 56) - 1);
  }
  /// The kind reserved for the loop's own wake-ups (posted closures).
  static constexpr uint64_t wakeup_kind = 0xff;

  event_loop() = default;
  event_loop(const event_loop&) = delete;
  event_loop& operator=(const event_loop&) = delete;
  ~event_loop();

  /// Creates the epoll set and the wake-up descriptor.
  caf::error init();

  /// Level-triggered readability of `fd`, reported with `tag`.
  void watch(int fd, uint64_t tag);
  void unwatch(int fd);

  /// Runs `f` on the loop thread soon. Thread-safe.
  void post(std::function<void()> f);

  /// Waits up to `timeout_ms` for events; returns how many `out` holds.
  /// Wake-ups are consumed here and reported with `wakeup_kind`.
  int wait(epoll_event* out, int max, int timeout_ms);

  /// Runs what was posted so far (after a `wakeup_kind` event).
  void run_posted();

private:
  int epfd_ = -1;
  int event_fd_ = -1;
  std::mutex mtx_;
  std::vector<std::function<void()>> posted_;
};

} // namespace rayd::node
