// Worker mode (docs/tasks.md, "Worker processes"): the process a node starts
// per (node, job). It serves the TASK frames of leased sockets the node hands
// over, and asks the node to store large results and fetch stored arguments.
//
// Threads:
//   - the control thread (the caller of run_worker) reads the control socket:
//     it adopts leased sockets and routes the node's answers to STORE/FETCH
//     to the task threads waiting for them;
//   - each leased socket has `threads` serving threads (leader/follower): the
//     thread holding the reader role reads one frame, gives the role up and
//     runs the task itself, so a synchronous call costs one wake-up here.
//
// A leased socket's life:
//
//   ADOPT ──► GRANTED written ──► serving ──EOF, error or bad frame──► draining
//     (running tasks finish, their results are still written) ──last thread
//     out──► socket closed, LEASE_DONE sent
//
// The process ends on EXIT or when the control socket closes (the node died:
// fate sharing), at once, without waiting for running tasks.

#include <dlfcn.h>
#include <signal.h>
#include <sys/mman.h>
#include <sys/random.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <unistd.h>

#include <algorithm>
#include <atomic>
#include <cerrno>
#include <condition_variable>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <deque>
#include <map>
#include <memory>
#include <mutex>
#include <optional>
#include <string>
#include <string_view>
#include <system_error>
#include <thread>
#include <utility>
#include <vector>

#include "common/error.hpp"
#include "common/wire.hpp"
#include "rayd/core.hpp"
#include "rayd/registry.hpp"

namespace rayd::core {
namespace {

/// Ends the process now. Task threads may still be running, so no static
/// destructors run (`_exit`); stdio buffers are flushed for the tasks' output.
[[noreturn]] void leave(int code) {
  std::fflush(nullptr);
  ::_exit(code);
}

/// An object id: 20 random hex characters.
std::string new_object_id() {
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

std::string error_type_of(const wire::object_error& e, const char* fallback) {
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
std::optional<failure> fetch_object(const wire::object_loc& loc, control_channel& ctl,
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
std::optional<failure> store_object(std::string_view bytes, const wire::adopt_msg& lease,
                                    control_channel& ctl, wire::object_loc& out) {
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
  out = wire::object_loc{id, lease.node_id, lease.address, bytes.size()};
  return std::nullopt;
}

// -- running a task ---------------------------------------------------------------

std::string unknown_function_message(const std::string& name) {
  auto names = detail::registered_functions();
  std::string out = "no function named '" + name + "' is registered in this worker";
  if (names.empty())
    return out + " (none are)";
  out += "; registered:";
  std::size_t shown = std::min<std::size_t>(names.size(), 20);
  for (std::size_t i = 0; i < shown; ++i)
    out += (i == 0 ? " " : ", ") + names[i];
  if (names.size() > shown)
    out += " (and " + std::to_string(names.size() - shown) + " more)";
  return out;
}

wire::task_result run_task(const wire::task& t, const wire::adopt_msg& lease,
                           control_channel& ctl) {
  wire::task_result r;
  r.task_id = t.task_id;
  r.node_id = lease.node_id;
  auto fail = [&r](failure f) {
    r.kind = wire::task_result::error;
    r.error_type = std::move(f.type);
    r.error_message = std::move(f.message);
    return std::move(r);
  };
  // Stored arguments stay mapped until the call returns.
  std::vector<mapped_object> objects;
  objects.reserve(t.args.size());
  std::vector<std::string_view> args;
  args.reserve(t.args.size());
  for (const auto& a : t.args) {
    if (a.kind != wire::task_arg::ref) {
      args.emplace_back(a.data);
      continue;
    }
    objects.emplace_back();
    if (auto err = fetch_object(a.loc, ctl, objects.back()))
      return fail(std::move(*err));
    args.push_back(objects.back().bytes());
  }
  auto fn = detail::find_function(t.function);
  if (fn == nullptr)
    return fail({"rayd::unknown_function", unknown_function_message(t.function)});
  detail::invoke_result out;
  try {
    out = fn(args); // never throws by contract; guarded so a bug fails one task
  } catch (const std::exception& e) {
    return fail({"rayd::internal", std::string{"the invoker threw: "} + e.what()});
  }
  if (!out.ok)
    return fail({std::move(out.error_type), std::move(out.error_message)});
  if (out.value.size() <= wire::inline_object_bytes) {
    r.data = std::move(out.value);
    return r;
  }
  if (auto err = store_object(out.value, lease, ctl, r.loc))
    return fail(std::move(*err));
  r.kind = wire::task_result::stored;
  return r;
}

// -- serving a leased socket ------------------------------------------------------

/// One leased socket and the threads serving it.
struct lease {
  wire::adopt_msg adopt;
  int fd = -1;
  control_channel* ctl = nullptr;

  /// The reader role: whoever holds read_mu reads the next frame.
  std::mutex read_mu;
  wire::frame_reader reader;         // under read_mu
  std::optional<wire::frame> ahead;  // a complete frame read ahead, under read_mu
  /// Whether `ahead` holds a frame: a thread will take it and append its
  /// reply after ours, so ours need not be flushed yet.
  std::atomic<bool> more{false};
  /// No more frames are taken (EOF, error, bad frame).
  std::atomic<bool> closed{false};

  std::mutex write_mu;
  std::string out; // encoded replies not yet written, under write_mu
  bool broken = false; // a write failed, under write_mu

  std::atomic<uint32_t> serving{0}; // threads not yet gone
};

/// Stops taking frames; wakes a thread blocked reading the socket.
void close_reading(lease& l) {
  l.closed = true;
  ::shutdown(l.fd, SHUT_RD);
}

/// Writes the buffered replies. REQUIRES: write_mu held.
void flush_locked(lease& l) {
  if (!l.broken && !l.out.empty()) {
    if (auto err = wire::write_all(l.fd, l.out)) {
      l.broken = true;
      close_reading(l);
    }
  }
  l.out.clear();
}

/// Takes the next frame (blocking) and looks ahead for one more.
/// REQUIRES: read_mu held.
caf::expected<wire::frame> take_frame(lease& l) {
  if (l.closed)
    return make_error(errc::unavailable, "closed");
  wire::frame f;
  if (l.ahead) {
    f = std::move(*l.ahead);
    l.ahead.reset();
  } else {
    auto got = wire::read_frame(l.fd, l.reader);
    if (!got)
      return got.error();
    f = std::move(*got);
  }
  // A malformed rest is reported by the next read_frame.
  if (auto next = l.reader.next(); next && *next)
    l.ahead = std::move(**next);
  l.more = l.ahead.has_value();
  return f;
}

/// The reply to one frame of the driver; "" for a frame that breaks the protocol.
std::string reply_to(lease& l, const wire::frame& f) {
  if (f.type == wire::msg::ping)
    return wire::encode_raw(wire::msg::pong, {});
  if (f.type != wire::msg::task) {
    std::fprintf(stderr, "rayd worker: unexpected %s frame on lease %llu\n",
                 wire::to_string(f.type), static_cast<unsigned long long>(l.adopt.lease_id));
    return {};
  }
  auto t = wire::decode<wire::task>(f.payload);
  if (!t) {
    std::fprintf(stderr, "rayd worker: bad TASK on lease %llu: %s\n",
                 static_cast<unsigned long long>(l.adopt.lease_id),
                 describe(t.error()).c_str());
    return {};
  }
  return wire::encode(wire::msg::result, run_task(*t, l.adopt, *l.ctl));
}

/// A thread's exit from serving; the last one out closes the socket and
/// tells the node.
/// The leases this process serves, by id (for DRAIN).
std::mutex active_mu;
std::map<uint64_t, std::weak_ptr<lease>> active;

void stop_serving(const std::shared_ptr<lease>& l) {
  if (--l->serving > 0)
    return;
  {
    std::lock_guard<std::mutex> guard{active_mu};
    active.erase(l->adopt.lease_id);
  }
  {
    std::lock_guard<std::mutex> guard{l->write_mu};
    flush_locked(*l);
  }
  ::close(l->fd);
  l->ctl->send(wire::encode(wire::msg::lease_done, wire::lease_done_msg{l->adopt.lease_id}));
}

/// One of the lease's threads (leader/follower, see the top of the file).
void serve(std::shared_ptr<lease> l) {
  for (;;) {
    wire::frame f;
    {
      std::lock_guard<std::mutex> guard{l->read_mu};
      auto got = take_frame(*l);
      if (!got) {
        if (!l->closed && code_of(got.error()) == errc::invalid_argument)
          std::fprintf(stderr, "rayd worker: lease %llu: %s\n",
                       static_cast<unsigned long long>(l->adopt.lease_id),
                       describe(got.error()).c_str());
        l->closed = true;
        l->more = false;
        break;
      }
      f = std::move(*got);
    } // the reader role passes to the next thread here
    auto reply = reply_to(*l, f);
    std::lock_guard<std::mutex> guard{l->write_mu};
    if (reply.empty()) {
      close_reading(*l);
      flush_locked(*l);
      continue;
    }
    // Write-combining: while another frame waits, its thread flushes later.
    l->out += reply;
    if (!l->more)
      flush_locked(*l);
  }
  stop_serving(l);
}

/// Passes the node's DRAIN on to the lease's driver.
void drain(uint64_t lease_id) {
  std::shared_ptr<lease> l;
  {
    std::lock_guard<std::mutex> guard{active_mu};
    if (auto i = active.find(lease_id); i != active.end())
      l = i->second.lock();
  }
  if (!l)
    return;
  std::lock_guard<std::mutex> guard{l->write_mu};
  l->out += wire::encode_raw(wire::msg::drain, {});
  flush_locked(*l);
}

void adopt(int fd, const wire::adopt_msg& msg, control_channel& ctl) {
  auto l = std::make_shared<lease>();
  l->adopt = msg;
  l->fd = fd;
  l->ctl = &ctl;
  auto threads = std::clamp<uint32_t>(msg.threads, 1, 1024);
  wire::granted g{msg.request_id, static_cast<int32_t>(::getpid()), threads, msg.node_id};
  l->serving = threads;
  {
    std::lock_guard<std::mutex> guard{active_mu};
    active[msg.lease_id] = l;
  }
  if (auto err = wire::write_all(fd, wire::encode(wire::msg::granted, g))) {
    l->serving = 1;
    stop_serving(l);
    return;
  }
  for (uint32_t i = 0; i < threads; ++i) {
    try {
      std::thread{serve, l}.detach();
    } catch (const std::system_error& e) {
      std::fprintf(stderr, "rayd worker: cannot start a thread: %s\n", e.what());
      stop_serving(l); // stands for the thread that did not start
    }
  }
}

// -- the control loop ---------------------------------------------------------------

void load_libraries() {
  const char* libs = std::getenv("RAYD_WORKER_LIBS");
  std::string_view rest = libs != nullptr ? libs : "";
  while (!rest.empty()) {
    auto colon = rest.find(':');
    std::string path{rest.substr(0, colon)};
    rest = colon == std::string_view::npos ? std::string_view{} : rest.substr(colon + 1);
    if (path.empty())
      continue;
    if (::dlopen(path.c_str(), RTLD_NOW | RTLD_GLOBAL) == nullptr) {
      std::fprintf(stderr, "rayd worker: cannot load %s: %s\n", path.c_str(), ::dlerror());
      leave(1);
    }
  }
}

/// Takes the descriptor that came with a frame.
unique_fd pop_fd(std::deque<int>& fds, wire::msg type) {
  if (fds.empty()) {
    std::fprintf(stderr, "rayd worker: %s without a descriptor\n", wire::to_string(type));
    return unique_fd{};
  }
  unique_fd fd{fds.front()};
  fds.pop_front();
  return fd;
}

void handle_control(wire::frame& f, std::deque<int>& fds, control_channel& ctl) {
  auto bad = [&f](const caf::error& err) {
    std::fprintf(stderr, "rayd worker: bad %s from the node: %s\n", wire::to_string(f.type),
                 describe(err).c_str());
  };
  switch (f.type) {
    case wire::msg::adopt: {
      auto fd = pop_fd(fds, f.type);
      auto msg = wire::decode<wire::adopt_msg>(f.payload);
      if (!msg)
        return bad(msg.error());
      if (fd.get() >= 0)
        adopt(fd.release(), *msg, ctl);
      return;
    }
    case wire::msg::stored: {
      auto msg = wire::decode<wire::object_id_msg>(f.payload);
      if (!msg)
        return bad(msg.error());
      return ctl.deliver(msg->object_id, {f.type, std::move(f.payload), unique_fd{}});
    }
    case wire::msg::fetched: {
      auto fd = pop_fd(fds, f.type);
      auto msg = wire::decode<wire::object_header>(f.payload);
      if (!msg)
        return bad(msg.error());
      return ctl.deliver(msg->object_id, {f.type, std::move(f.payload), std::move(fd)});
    }
    case wire::msg::control_error: {
      auto msg = wire::decode<wire::object_error>(f.payload);
      if (!msg)
        return bad(msg.error());
      return ctl.deliver(msg->object_id, {f.type, std::move(f.payload), unique_fd{}});
    }
    case wire::msg::drain: {
      auto msg = wire::decode<wire::lease_done_msg>(f.payload);
      if (!msg)
        return bad(msg.error());
      return drain(msg->lease_id);
    }
    case wire::msg::exit:
      leave(0);
    default:
      std::fprintf(stderr, "rayd worker: unexpected %s on the control socket\n",
                   wire::to_string(f.type));
  }
}

} // namespace

[[noreturn]] void run_worker(int control_fd) {
  sigset_t sigpipe;
  sigemptyset(&sigpipe);
  sigaddset(&sigpipe, SIGPIPE);
  ::pthread_sigmask(SIG_BLOCK, &sigpipe, nullptr); // inherited by every thread
  load_libraries();
  control_channel ctl{control_fd}; // lives until the process ends
  const char* job = std::getenv("RAYD_JOB_ID");
  wire::ready_msg ready{static_cast<int32_t>(::getpid()), job != nullptr ? job : ""};
  if (auto err = ctl.send(wire::encode(wire::msg::ready, ready))) {
    std::fprintf(stderr, "rayd worker: cannot reach the node: %s\n", describe(err).c_str());
    leave(1);
  }
  wire::frame_reader reader;
  std::deque<int> fds;
  std::vector<char> buf(64 * 1024);
  for (;;) {
    auto n = wire::recv_with_fds(control_fd, buf.data(), buf.size(), fds);
    if (!n || *n == 0)
      leave(0); // the node is gone: so are its workers
    reader.feed(buf.data(), *n);
    for (;;) {
      auto f = reader.next();
      if (!f) {
        std::fprintf(stderr, "rayd worker: control socket: %s\n", describe(f.error()).c_str());
        leave(1);
      }
      if (!*f)
        break;
      handle_control(**f, fds, ctl);
    }
  }
}

} // namespace rayd::core
