#pragma once
// Worker mode's shared parts (internal to api/src/worker*.cpp): the control
// socket to the node (STORE/FETCH requests answered on the control thread),
// and storing/fetching objects through it. Tasks (worker.cpp) and actor
// calls (worker_actors.cpp) use them alike.
//
// Thread-safety: control_channel is thread-safe; the rest is reentrant.

#include <sys/mman.h>
#include <sys/random.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cerrno>
#include <condition_variable>
#include <cstdio>
#include <cstring>
#include <deque>
#include <map>
#include <mutex>
#include <optional>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

#include "common/error.hpp"
#include "common/wire.hpp"

namespace rayd::core::worker_detail {

/// Ends the process now. Task threads may still be running, so no static
/// destructors run (`_exit`); stdio buffers are flushed for the tasks' output.
[[noreturn]] inline void leave(int code) {
  std::fflush(nullptr);
  ::_exit(code);
}

/// An object id: 20 random hex characters.
inline std::string new_object_id() {
  unsigned char bytes[10];
  std::size_t got = 0;
  while (got < sizeof bytes) {
    auto n = ::getrandom(bytes + got, sizeof bytes - got, 0);
    if (n < 0 && errno == EINTR)
      continue;
    if (n < 0) {
      std::perror("rayd worker: getrandom");
      leave(1);
    }
    got += static_cast<std::size_t>(n);
  }
  static constexpr char digits[] = "0123456789abcdef";
  std::string out;
  for (unsigned char c : bytes) {
    out += digits[c >> 4];
    out += digits[c & 0xf];
  }
  return out;
}

/// Owns a file descriptor.
class unique_fd {
public:
  unique_fd() = default;
  explicit unique_fd(int fd) : fd_(fd) {}
  unique_fd(unique_fd&& other) noexcept : fd_(std::exchange(other.fd_, -1)) {}
  unique_fd& operator=(unique_fd&& other) noexcept {
    std::swap(fd_, other.fd_);
    return *this;
  }
  ~unique_fd() {
    if (fd_ >= 0)
      ::close(fd_);
  }
  int get() const {
    return fd_;
  }
  int release() {
    return std::exchange(fd_, -1);
  }

private:
  int fd_ = -1;
};

// -- the control socket --------------------------------------------------------

/// The node's answer to a STORE or FETCH: STORED, FETCHED (with the object's
/// memfd) or CONTROL_ERROR.
struct control_reply {
  wire::msg type = wire::msg::control_error;
  std::string payload;
  unique_fd fd;
};

/// The worker's end of the control socket. Thread-safe: any thread sends;
/// task threads wait in request() for the answer the control thread
/// delivers. Answers are matched by object id; several threads may wait for
/// the same id (they take the answers in arrival order).
class control_channel {
public:
  explicit control_channel(int fd) : fd_(fd) {}

  caf::error send(std::string_view frame, const std::vector<int>& fds = {}) {
    std::lock_guard<std::mutex> guard{write_mu_};
    return wire::send_with_fds(fd_, frame, fds);
  }

  /// Sends `frame` and blocks until the node answers for `object_id`.
  caf::expected<control_reply> request(const std::string& object_id,
                                       std::string_view frame,
                                       const std::vector<int>& fds = {}) {
    std::unique_lock<std::mutex> lock{mu_};
    auto& s = slots_[object_id]; // stays put: erased only when nobody waits
    ++s.waiters;
    lock.unlock();
    auto err = send(frame, fds);
    lock.lock();
    std::optional<control_reply> reply;
    if (!err) {
      cv_.wait(lock, [&s] { return !s.replies.empty(); });
      reply = std::move(s.replies.front());
      s.replies.pop_front();
    }
    if (--s.waiters == 0 && s.replies.empty())
      slots_.erase(object_id);
    if (err)
      return err;
    return std::move(*reply);
  }

  /// Hands an answer to a thread waiting for `object_id`; an answer nobody
  /// waits for is dropped (its descriptor closed).
  void deliver(const std::string& object_id, control_reply reply) {
    std::lock_guard<std::mutex> guard{mu_};
    auto i = slots_.find(object_id);
    if (i == slots_.end()) {
      std::fprintf(stderr, "rayd worker: unexpected %s for object %s\n",
                   wire::to_string(reply.type), object_id.c_str());
      return;
    }
    i->second.replies.push_back(std::move(reply));
    cv_.notify_all();
  }

private:
  struct slot {
    int waiters = 0;
    std::deque<control_reply> replies;
  };
  int fd_;
  std::mutex write_mu_;
  std::mutex mu_;
  std::condition_variable cv_;
  std::map<std::string, slot> slots_;
};

// -- objects -----------------------------------------------------------------------

/// Why a task failed outside its function: an error RESULT.
struct failure {
  std::string type;
  std::string message;
};

inline std::string error_type_of(const wire::object_error& e, const char* fallback) {
  switch (static_cast<wire::wire_error>(e.code)) {
    case wire::wire_error::store_full: return "rayd::object_store_full";
    case wire::wire_error::lost:
    case wire::wire_error::not_found: return "rayd::object_lost";
    default: return fallback;
  }
}

/// A fetched object's bytes, mapped read-only for the duration of a call.
class mapped_object {
public:
  mapped_object() = default;
  mapped_object(unique_fd fd, void* addr, std::size_t size)
    : fd_(std::move(fd)), addr_(addr), size_(size) {}
  mapped_object(mapped_object&& other) noexcept
    : fd_(std::move(other.fd_)),
      addr_(std::exchange(other.addr_, nullptr)),
      size_(std::exchange(other.size_, 0)) {}
  mapped_object& operator=(mapped_object&& other) noexcept {
    std::swap(fd_, other.fd_);
    std::swap(addr_, other.addr_);
    std::swap(size_, other.size_);
    return *this;
  }
  ~mapped_object() {
    if (addr_ != nullptr)
      ::munmap(addr_, size_);
  }
  std::string_view bytes() const {
    return {static_cast<const char*>(addr_), size_};
  }

private:
  unique_fd fd_;
  void* addr_ = nullptr;
  std::size_t size_ = 0;
};

/// Asks the node for a stored argument (FETCH) and maps the memfd it hands
/// over. Returns why it failed, if it did.
inline std::optional<failure> fetch_object(const wire::object_loc& loc, control_channel& ctl,
                                    mapped_object& out) {
  const char* lost = "rayd::object_lost";
  auto reply = ctl.request(loc.object_id,
                           wire::encode(wire::msg::fetch, wire::fetch_msg{loc}));
  if (!reply)
    return failure{lost, "cannot ask the node for object " + loc.object_id + ": "
                           + describe(reply.error())};
  if (reply->type == wire::msg::control_error) {
    auto e = wire::decode<wire::object_error>(reply->payload);
    if (!e)
      return failure{lost, describe(e.error())};
    return failure{error_type_of(*e, lost), e->message};
  }
  auto header = wire::decode<wire::object_header>(reply->payload);
  if (!header)
    return failure{lost, describe(header.error())};
  struct stat st{};
  if (::fstat(reply->fd.get(), &st) != 0
      || static_cast<uint64_t>(st.st_size) < header->size)
    return failure{lost, "the node handed over no usable descriptor for object "
                           + loc.object_id};
  auto size = static_cast<std::size_t>(header->size);
  void* addr = nullptr;
  if (size > 0) {
    addr = ::mmap(nullptr, size, PROT_READ, MAP_SHARED, reply->fd.get(), 0);
    if (addr == MAP_FAILED)
      return failure{lost, std::string{"mmap of object "} + loc.object_id + ": "
                             + std::strerror(errno)};
  }
  out = mapped_object{std::move(reply->fd), addr, size};
  return std::nullopt;
}

/// Copies a large result into a memfd and hands it to the node's store
/// (STORE); `out` names where it now lives.
inline std::optional<failure> store_object(std::string_view bytes, const std::string& node_id,
                                           const std::string& address, control_channel& ctl,
                                           wire::object_loc& out) {
  const char* full = "rayd::object_store_full";
  unique_fd fd{::memfd_create("rayd-object", MFD_CLOEXEC)};
  if (fd.get() < 0)
    return failure{full, std::string{"memfd_create: "} + std::strerror(errno)};
  for (std::string_view rest = bytes; !rest.empty();) {
    auto n = ::write(fd.get(), rest.data(), rest.size());
    if (n < 0 && errno == EINTR)
      continue;
    if (n < 0)
      return failure{full, std::string{"writing the result to a memfd: "}
                             + std::strerror(errno)};
    rest.remove_prefix(static_cast<std::size_t>(n));
  }
  auto id = new_object_id();
  auto reply = ctl.request(id, wire::encode(wire::msg::store, wire::store_msg{id, bytes.size()}),
                           {fd.get()});
  if (!reply)
    return failure{full, "cannot hand the result to the node: " + describe(reply.error())};
  if (reply->type == wire::msg::control_error) {
    auto e = wire::decode<wire::object_error>(reply->payload);
    if (!e)
      return failure{full, describe(e.error())};
    return failure{error_type_of(*e, full), e->message};
  }
  out = wire::object_loc{id, node_id, address, bytes.size()};
  return std::nullopt;
}

} // namespace rayd::core::worker_detail
