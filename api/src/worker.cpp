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
//     runs the task itself, so a synchronous call costs one wake-up here;
//   - user actors (CREATE_ACTOR, KILL_ACTOR, ADOPT_CALLER) are
//     worker_actors.hpp's: a CAF actor system and a reader thread per
//     caller socket.
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
#include "worker_actors.hpp"
#include "worker_objects.hpp"

namespace rayd::core {
namespace {

using namespace worker_detail;
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
  if (auto err = store_object(out.value, lease.node_id, lease.address, ctl, r.loc))
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
    if (f.type == wire::msg::backlog)
      continue; // meant for the node while the request waited: stale here
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

void handle_control(wire::frame& f, std::deque<int>& fds, control_channel& ctl,
                    actor_host& actors) {
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
    case wire::msg::create_actor: {
      auto msg = wire::decode<wire::actor_create_msg>(f.payload);
      if (!msg)
        return bad(msg.error());
      return actors.create(std::move(*msg));
    }
    case wire::msg::kill_actor: {
      auto msg = wire::decode<wire::actor_id_msg>(f.payload);
      if (!msg)
        return bad(msg.error());
      return actors.kill(msg->actor_id);
    }
    case wire::msg::adopt_caller: {
      auto fd = pop_fd(fds, f.type);
      if (auto msg = wire::decode<wire::attach_msg>(f.payload); !msg)
        return bad(msg.error());
      if (fd.get() >= 0)
        actors.adopt_caller(fd.release());
      return;
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
  auto env = [](const char* name) {
    const char* v = std::getenv(name);
    return std::string{v != nullptr ? v : ""};
  };
  actor_host actors{ctl, env("RAYD_NODE_ID"), env("RAYD_NODE_ADDRESS")};
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
      handle_control(**f, fds, ctl, actors);
    }
  }
}

} // namespace rayd::core
