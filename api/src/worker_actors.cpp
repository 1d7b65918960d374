#include "worker_actors.hpp"

#include <sys/socket.h>
#include <unistd.h>

#include <algorithm>
#include <chrono>
#include <atomic>
#include <cstdio>
#include <deque>
#include <mutex>
#include <optional>
#include <shared_mutex>
#include <thread>
#include <unordered_map>
#include <vector>

#include <caf/actor_system.hpp>
#include <caf/actor_system_config.hpp>
#include <caf/allowed_unsafe_message_type.hpp>
#include <caf/atom.hpp>
#include <caf/event_based_actor.hpp>
#include <caf/execution_unit.hpp>
#include <caf/mailbox_element.hpp>
#include <caf/resumable.hpp>
#include <caf/scheduler/abstract_coordinator.hpp>
#include <caf/send.hpp>
#include <caf/spawn_options.hpp>

#include "rayd/actor_registry.hpp"

namespace rayd::core::worker_detail {
namespace {

using kill_atom = caf::atom_constant<caf::atom("w_kill")>;
using construct_atom = caf::atom_constant<caf::atom("w_make")>;
using done_atom = caf::atom_constant<caf::atom("w_done")>;

/// One caller's socket: results are appended to `out` and written by
/// whichever thread finds no write in progress (write-combining).
struct caller_conn {
  explicit caller_conn(int f) : fd(f) {}
  ~caller_conn() {
    ::close(fd);
  }

  /// Appends one encoded frame and writes what is buffered unless another
  /// thread is writing already (it writes ours too).
  void post(const char* data, std::size_t n) {
    std::unique_lock<std::mutex> lock{mu};
    out.append(data, n);
    write_locked(lock);
  }

  /// Appends one encoded frame without writing (an actor with more calls
  /// queued writes its results together: see actor_object::dirty).
  void append(const char* data, std::size_t n) {
    std::lock_guard<std::mutex> guard{mu};
    out.append(data, n);
  }

  /// Writes what append() left.
  void flush() {
    std::unique_lock<std::mutex> lock{mu};
    write_locked(lock);
  }

  /// REQUIRES: `lock` holds mu.
  void write_locked(std::unique_lock<std::mutex>& lock) {
    if (writing)
      return;
    writing = true;
    while (!out.empty()) {
      std::swap(out, spare); // both keep their capacity: no allocation per batch
      lock.unlock();
      bool failed = broken || wire::write_all(fd, spare);
      lock.lock();
      if (failed && !broken) {
        broken = true;
        ::shutdown(fd, SHUT_RDWR); // the reader sees EOF
      }
      spare.clear();
    }
    writing = false;
  }

  int fd;
  // The reader role (leader/follower between the socket's two threads).
  std::mutex read_mu;
  wire::frame_reader reader;        // under read_mu
  std::optional<wire::frame> ahead; // a complete frame read ahead, under read_mu
  bool closed = false;              // under read_mu: no more frames are taken
  std::atomic<int> followers{0};    // threads waiting for the reader role

  std::mutex mu;
  std::string out;   // under mu
  std::string spare; // the batch being written, by the writer only
  bool writing = false; // under mu
  bool broken = false;  // under mu
};

/// Encodes a frame into a per-thread buffer and posts it (no allocation once
/// the buffer has grown).
template <class T>
void post_frame(caller_conn& c, wire::msg type, const T& body, bool write = true) {
  thread_local msgpack::sbuffer buf;
  buf.clear();
  wire::begin_frame(buf, type);
  msgpack::pack(buf, body);
  wire::end_frame(buf);
  if (write)
    c.post(buf.data(), buf.size());
  else
    c.append(buf.data(), buf.size());
}

/// A value RESULT (what MSGPACK_DEFINE of wire::task_result packs), written
/// straight from the method's bytes: no task_result, no copies.
void post_value(caller_conn& c, uint64_t call_id, std::string_view data,
                const std::string& node_id, bool write) {
  thread_local msgpack::sbuffer buf;
  buf.clear();
  wire::begin_frame(buf, wire::msg::result);
  msgpack::packer<msgpack::sbuffer> pk{buf};
  pk.pack_array(7);
  pk.pack(call_id);
  pk.pack(static_cast<uint8_t>(wire::task_result::value));
  pk.pack(data);
  pk.pack_array(4); // an empty object_loc
  pk.pack(std::string_view{});
  pk.pack(std::string_view{});
  pk.pack(std::string_view{});
  pk.pack(uint64_t{0});
  pk.pack(std::string_view{});
  pk.pack(std::string_view{});
  pk.pack(std::string_view{node_id});
  wire::end_frame(buf);
  if (write)
    c.post(buf.data(), buf.size());
  else
    c.append(buf.data(), buf.size());
}

/// Decodes a CALL payload into `out` using a per-thread zone (no allocation
/// for the msgpack tree once the zone has grown). False if malformed.
bool decode_call(std::string_view payload, wire::actor_call& out) {
  thread_local msgpack::zone zone;
  zone.clear();
  try {
    std::size_t off = 0;
    auto obj = msgpack::unpack(zone, payload.data(), payload.size(), off, nullptr, nullptr,
                               wire::untrusted_limits());
    if (off != payload.size())
      return false;
    obj.convert(out);
    return true;
  } catch (const std::exception&) {
    return false;
  }
}

/// Runs an actor woken by a caller's socket thread on that very thread
/// (CAF calls exec_later when a message wakes an idle actor and the sender
/// passed this unit as its context). Armed only for the one enqueue of a
/// CALL; anything else it is asked to run goes to the scheduler.
class inline_unit : public caf::execution_unit {
public:
  explicit inline_unit(caf::actor_system* sys) : caf::execution_unit(sys) {}

  void exec_later(caf::resumable* job) override {
    if (armed_ && pending_ == nullptr) {
      pending_ = job;
      return;
    }
    system().scheduler().enqueue(job);
  }

  void arm(bool on) {
    armed_ = on;
  }

  /// Runs the actor woken by the last armed enqueue, if any: one message,
  /// then the scheduler takes over whatever else its mailbox holds.
  void run_pending() {
    auto* job = std::exchange(pending_, nullptr);
    if (job == nullptr)
      return;
    switch (job->resume(this, 1)) {
      case caf::resumable::resume_later:
        system().scheduler().enqueue(job); // keeps the reference
        break;
      case caf::resumable::done:
      case caf::resumable::awaiting_message:
        intrusive_ptr_release(job);
        break;
      default:
        break;
    }
  }

private:
  bool armed_ = false;
  caf::resumable* pending_ = nullptr;
};

/// A user actor's object, shared by its CAF actor(s); destroyed with the
/// last of them.
struct actor_object {
  std::string id;
  const detail::actor_class* cls = nullptr;
  void* self = nullptr;
  uint32_t max_concurrency = 1;
  std::vector<std::string> args; // constructor arguments, until constructed
  std::atomic<bool> killed{false};

  // Result batching (max_concurrency 1; touched by the actor's own
  // execution only, except `queued`): a loopback send() costs more than a
  // small method, so while more calls wait in the mailbox a result is
  // appended to its socket's buffer and written with later ones — at the
  // latest when the mailbox is empty, after 64 results, or before a method
  // whose last run took over 50 us (or that has not run yet), so a fast
  // result never waits behind a known-slow call.
  std::atomic<uint32_t> queued{0}; // calls in the mailbox (dispatch +1, run -1)
  std::vector<std::shared_ptr<caller_conn>> dirty; // sockets with results appended
  uint32_t deferred = 0;                           // results appended since the last write
  std::unordered_map<detail::method_invoker, int64_t> method_ns; // each method's last run

  void flush_dirty() {
    for (auto& c : dirty)
      c->flush();
    dirty.clear();
    deferred = 0;
  }

  ~actor_object() {
    if (self != nullptr)
      detail::destroy(*cls, self);
  }
};

/// One CALL on its way to (or in) an actor's mailbox.
struct call_job {
  wire::actor_call call;
  std::shared_ptr<caller_conn> conn;
};

} // namespace
} // namespace rayd::core::worker_detail

CAF_ALLOW_UNSAFE_MESSAGE_TYPE(rayd::core::worker_detail::call_job)

namespace rayd::core::worker_detail {

struct actor_host::impl {
  impl(control_channel& c, std::string node, std::string addr)
    : ctl(c), node_id(std::move(node)), address(std::move(addr)), pid(::getpid()) {
  }

  control_channel& ctl;
  const std::string node_id;
  const std::string address;
  const int32_t pid;

  // Created with the first actor; never destroyed (the process ends with _exit).
  caf::actor_system_config* cfg = nullptr;
  std::atomic<caf::actor_system*> sys{nullptr};
  /// Inline units of socket threads that ended, for the next ones: an actor
  /// keeps a pointer to the unit it last ran on, so units are never freed.
  std::mutex units_mu;
  std::vector<inline_unit*> spare_units;

  inline_unit* take_unit() {
    auto* s = sys.load();
    if (s == nullptr)
      return nullptr;
    std::lock_guard<std::mutex> guard{units_mu};
    if (!spare_units.empty()) {
      auto* u = spare_units.back();
      spare_units.pop_back();
      return u;
    }
    return new inline_unit(s);
  }

  void give_back(inline_unit* u) {
    if (u == nullptr)
      return;
    std::lock_guard<std::mutex> guard{units_mu};
    spare_units.push_back(u);
  }

  struct entry {
    caf::actor handle;
    std::shared_ptr<actor_object> obj;
  };
  /// Actors that serve calls (ALIVE) and those being constructed. A CALL is
  /// sent under the shared lock, and KILL_ACTOR takes the entry out under
  /// the unique lock before its kill message: a call that found the actor
  /// is in its mailbox before the kill, so it is answered.
  std::shared_mutex mu;
  std::unordered_map<std::string, entry> alive;
  std::unordered_map<std::string, std::shared_ptr<actor_object>> constructing;

  void start_system() {
    if (sys.load() != nullptr)
      return;
    cfg = new caf::actor_system_config;
    cfg->set("logger.file-verbosity", caf::atom("quiet"));
    cfg->set("logger.console-verbosity", caf::atom("quiet"));
    auto cores = std::max(1u, std::thread::hardware_concurrency());
    cfg->set("scheduler.max-threads", static_cast<size_t>(std::max(8u, 2 * cores)));
    // One shared queue whose idle threads sleep on a condition variable:
    // a call wakes a thread at once. Work stealing's idle threads poll, then
    // sleep in 50 us steps: on these 2-core machines a synchronous call took
    // ~2x a unix-socket ping-pong with it and ~1.1x with this (worker_test).
    cfg->set("scheduler.policy", caf::atom("sharing"));
    sys.store(new caf::actor_system(*cfg));
  }

  void reply_created(const std::string& id, bool ok, std::string type = {},
                     std::string message = {}) {
    (void) ctl.send(wire::encode(wire::msg::actor_created,
                                 wire::actor_created_msg{id, ok, std::move(type),
                                                         std::move(message)}));
  }

  // -- calls -------------------------------------------------------------------

  void post_error(caller_conn& c, uint64_t call_id, std::string type, std::string message,
                  bool write = true) {
    wire::task_result r;
    r.task_id = call_id;
    r.kind = wire::task_result::error;
    r.error_type = std::move(type);
    r.error_message = std::move(message);
    r.node_id = node_id;
    post_frame(c, wire::msg::result, r, write);
  }

  void answer_died(call_job& j, const std::string& why) {
    post_error(*j.conn, j.call.call_id, "rayd::actor_died", why);
  }

  /// Runs one call on the actor's object and writes its RESULT (or, for an
  /// actor with more calls queued, appends it: actor_object::dirty).
  void run(actor_object& obj, call_job& j) {
    const bool single = obj.max_concurrency == 1;
    if (!single) {
      run_call(obj, j, true);
      return;
    }
    obj.queued.fetch_sub(1, std::memory_order_relaxed);
    run_call(obj, j, false);
    if (obj.queued.load(std::memory_order_relaxed) > 0 && obj.deferred < 64) {
      if (std::find(obj.dirty.begin(), obj.dirty.end(), j.conn) == obj.dirty.end())
        obj.dirty.push_back(j.conn);
      ++obj.deferred;
      return;
    }
    j.conn->flush();
    obj.flush_dirty();
  }

  /// The call itself; `write`: write the RESULT now, else only append it.
  void run_call(actor_object& obj, call_job& j, bool write) {
    if (obj.killed) {
      post_error(*j.conn, j.call.call_id, "rayd::actor_died", "actor " + obj.id + " was killed",
                 write);
      return;
    }
    auto& call = j.call;
    // Stored arguments stay mapped until the call returns.
    std::vector<mapped_object> objects;
    std::vector<std::string_view> args;
    args.reserve(call.args.size());
    for (const auto& a : call.args) {
      if (a.kind != wire::task_arg::ref) {
        args.emplace_back(a.data);
        continue;
      }
      objects.reserve(call.args.size());
      objects.emplace_back();
      if (auto err = fetch_object(a.loc, ctl, objects.back()))
        return post_error(*j.conn, call.call_id, std::move(err->type), std::move(err->message),
                          write);
      args.push_back(objects.back().bytes());
    }
    auto fn = detail::find_method(*obj.cls, call.method);
    if (fn == nullptr)
      return post_error(*j.conn, call.call_id, "rayd::unknown_method",
                        "actor " + obj.id + " has no method '" + call.method + "'", write);
    detail::invoke_result out;
    if (write) {
      out = fn(obj.self, args); // never throws by contract
    } else {
      // Results held back are written before a call that may take long.
      auto last = obj.method_ns.find(fn);
      if (!obj.dirty.empty() && (last == obj.method_ns.end() || last->second > 50'000))
        obj.flush_dirty();
      auto t0 = std::chrono::steady_clock::now();
      out = fn(obj.self, args);
      obj.method_ns[fn] = std::chrono::duration_cast<std::chrono::nanoseconds>(
                            std::chrono::steady_clock::now() - t0)
                            .count();
    }
    if (!out.ok)
      return post_error(*j.conn, call.call_id, std::move(out.error_type),
                        std::move(out.error_message), write);
    if (out.value.size() <= wire::inline_object_bytes)
      return post_value(*j.conn, call.call_id, out.value, node_id, write);
    wire::task_result r;
    r.task_id = call.call_id;
    r.node_id = node_id;
    r.kind = wire::task_result::stored;
    if (auto err = store_object(out.value, node_id, address, ctl, r.loc))
      return post_error(*j.conn, call.call_id, std::move(err->type), std::move(err->message),
                        write);
    post_frame(*j.conn, wire::msg::result, r, write);
  }

  /// Hands a CALL to its actor, or answers actor_died. With `unit`, an
  /// idle actor is left in the unit for the caller to run on its thread
  /// (unit->run_pending(), after giving up the reader role: calls must reach
  /// the mailbox in arrival order, but a method may take long; and after
  /// this lock: KILL_ACTOR must not wait for a method).
  void dispatch(call_job j, inline_unit* unit) {
    bool found = false;
    {
      std::shared_lock<std::shared_mutex> lock{mu};
      auto i = alive.find(j.call.actor_id);
      if (i != alive.end()) {
        found = true;
        if (i->second.obj->max_concurrency == 1)
          i->second.obj->queued.fetch_add(1, std::memory_order_relaxed);
        if (unit == nullptr) {
          caf::anon_send(i->second.handle, std::move(j));
        } else {
          auto* a = caf::actor_cast<caf::abstract_actor*>(i->second.handle);
          unit->arm(true);
          a->enqueue(caf::make_mailbox_element(nullptr, caf::make_message_id(), {},
                                               std::move(j)),
                     unit);
          unit->arm(false);
        }
      }
    }
    if (found)
      return;
    answer_died(j, "actor " + j.call.actor_id + " is not hosted by worker process "
                     + std::to_string(pid));
  }

  // -- construction ---------------------------------------------------------------

  /// Runs the constructor (on the actor's thread); true if it is ALIVE.
  bool construct(const std::shared_ptr<actor_object>& obj, caf::actor handle) {
    std::vector<std::string_view> views(obj->args.begin(), obj->args.end());
    detail::invoke_result why;
    void* self = detail::construct(*obj->cls, views, why);
    obj->args.clear();
    obj->args.shrink_to_fit();
    std::unique_lock<std::shared_mutex> lock{mu};
    constructing.erase(obj->id);
    if (self == nullptr) {
      lock.unlock();
      reply_created(obj->id, false, why.error_type, why.error_message);
      return false;
    }
    obj->self = self;
    if (obj->killed) { // unhosted while its constructor ran
      lock.unlock();
      reply_created(obj->id, false, "rayd::actor_died", "killed while being created");
      return false;
    }
    alive[obj->id] = entry{std::move(handle), obj};
    lock.unlock();
    reply_created(obj->id, true);
    return true;
  }

  /// max_concurrency 1: the actor runs its calls itself, in mailbox order.
  caf::behavior single(caf::event_based_actor* self, std::shared_ptr<actor_object> obj) {
    return {
      [this, self, obj](construct_atom) {
        if (!construct(obj, caf::actor_cast<caf::actor>(self)))
          self->quit();
      },
      [this, obj](call_job& j) { run(*obj, j); },
      [self, obj](kill_atom) {
        obj->flush_dirty(); // results held back are written before it goes
        self->quit();
      },
    };
  }

  /// max_concurrency n > 1: the front hands calls to idle executors.
  caf::behavior front(caf::event_based_actor* self, std::shared_ptr<actor_object> obj) {
    struct state_t {
      std::vector<caf::actor> executors;
      std::vector<caf::actor> idle;
      std::deque<call_job> pending;
    };
    auto st = std::make_shared<state_t>();
    return {
      [this, self, obj, st](construct_atom) {
        if (!construct(obj, caf::actor_cast<caf::actor>(self))) {
          self->quit();
          return;
        }
        auto me = caf::actor_cast<caf::actor>(self);
        for (uint32_t i = 0; i < obj->max_concurrency; ++i) {
          auto e = self->spawn<caf::detached>(
            [this, obj, me](caf::event_based_actor* ex) -> caf::behavior {
              return {
                [this, obj, me, ex](call_job& j) {
                  run(*obj, j);
                  ex->send(me, done_atom::value, caf::actor_cast<caf::actor>(ex));
                },
                [ex](kill_atom) { ex->quit(); },
              };
            });
          st->executors.push_back(e);
          st->idle.push_back(e);
        }
      },
      [this, self, obj, st](call_job& j) {
        if (obj->killed)
          return answer_died(j, "actor " + obj->id + " was killed");
        if (st->idle.empty()) {
          st->pending.push_back(std::move(j));
          return;
        }
        self->send(st->idle.back(), std::move(j));
        st->idle.pop_back();
      },
      [self, st](done_atom, caf::actor& e) {
        if (st->pending.empty()) {
          st->idle.push_back(std::move(e));
          return;
        }
        self->send(e, std::move(st->pending.front()));
        st->pending.pop_front();
      },
      [this, self, obj, st](kill_atom) {
        for (auto& j : st->pending)
          answer_died(j, "actor " + obj->id + " was killed");
        st->pending.clear();
        for (auto& e : st->executors)
          self->send(e, kill_atom::value);
        st->executors.clear();
        st->idle.clear();
        self->quit();
      },
    };
  }
};

actor_host::actor_host(control_channel& ctl, std::string node_id, std::string address)
  : impl_(std::make_unique<impl>(ctl, std::move(node_id), std::move(address))) {
}

actor_host::~actor_host() = default;

void actor_host::create(wire::actor_create_msg msg) {
  auto& d = *impl_;
  {
    std::shared_lock<std::shared_mutex> lock{d.mu};
    if (d.alive.count(msg.actor_id) > 0) {
      lock.unlock();
      d.reply_created(msg.actor_id, true);
      return;
    }
    if (d.constructing.count(msg.actor_id) > 0)
      return; // its ACTOR_CREATED is on its way
  }
  auto* cls = detail::find_actor_class(msg.class_name);
  if (cls == nullptr) {
    d.reply_created(msg.actor_id, false, "rayd::unknown_class",
                    "no actor class named '" + msg.class_name
                      + "' is registered in this worker (RAYD_ACTOR)");
    return;
  }
  d.start_system();
  auto obj = std::make_shared<actor_object>();
  obj->id = msg.actor_id;
  obj->cls = cls;
  obj->max_concurrency = std::clamp<uint32_t>(msg.max_concurrency, 1, 1024);
  obj->args = std::move(msg.args);
  {
    std::unique_lock<std::shared_mutex> lock{d.mu};
    d.constructing[obj->id] = obj;
  }
  caf::actor a;
  if (obj->max_concurrency == 1)
    a = d.sys.load()->spawn(
      [&d, obj](caf::event_based_actor* self) { return d.single(self, obj); });
  else
    a = d.sys.load()->spawn(
      [&d, obj](caf::event_based_actor* self) { return d.front(self, obj); });
  caf::anon_send(a, construct_atom::value);
}

void actor_host::kill(const std::string& actor_id) {
  auto& d = *impl_;
  caf::actor handle;
  {
    std::unique_lock<std::shared_mutex> lock{d.mu};
    if (auto i = d.constructing.find(actor_id); i != d.constructing.end()) {
      i->second->killed = true; // construct() destroys it when it returns
      return;
    }
    auto i = d.alive.find(actor_id);
    if (i == d.alive.end())
      return;
    i->second.obj->killed = true;
    handle = std::move(i->second.handle);
    d.alive.erase(i);
  }
  caf::anon_send(handle, kill_atom::value);
}

namespace {

/// Takes the next frame (blocking) and looks ahead for one more.
/// REQUIRES: read_mu held.
caf::expected<wire::frame> take_frame(caller_conn& c) {
  wire::frame f;
  if (c.ahead) {
    f = std::move(*c.ahead);
    c.ahead.reset();
  } else {
    auto got = wire::read_frame(c.fd, c.reader);
    if (!got)
      return got.error();
    f = std::move(*got);
  }
  // A malformed rest is reported by the next read_frame.
  if (auto next = c.reader.next(); next && *next)
    c.ahead = std::move(**next);
  return f;
}

} // namespace

namespace {

/// One of a caller socket's two threads (leader/follower): the thread with
/// the reader role reads frames and hands CALLs to mailboxes; at the last
/// frame read (nothing more buffered: a synchronous caller waits) it gives
/// the role to the other thread and lets an idle actor run the call right
/// here, saving a thread wake-up per call. When the other thread is busy
/// running a call, nothing runs inline: the socket is always being read, so
/// a call blocked in a method never holds up another actor's calls.
void serve_caller(actor_host::impl* d, std::shared_ptr<caller_conn> conn) {
  inline_unit* unit = nullptr;
  for (;;) {
    ++conn->followers;
    std::unique_lock<std::mutex> role{conn->read_mu};
    --conn->followers;
    for (;;) {
      if (conn->closed) {
        role.unlock();
        d->give_back(unit);
        return; // the caller is gone (running calls still answer)
      }
      auto f = take_frame(*conn);
      if (!f) {
        if (code_of(f.error()) == errc::invalid_argument)
          std::fprintf(stderr, "rayd worker: caller socket: %s\n", describe(f.error()).c_str());
        conn->closed = true;
        ::shutdown(conn->fd, SHUT_RD);
        continue;
      }
      auto& fr = *f;
      if (fr.type == wire::msg::ping) {
        auto pong = wire::encode_raw(wire::msg::pong, {});
        conn->post(pong.data(), pong.size());
        continue;
      }
      std::optional<wire::actor_call> call;
      if (fr.type == wire::msg::call) {
        call.emplace();
        if (!decode_call(fr.payload, *call))
          call.reset();
      }
      if (!call) {
        std::fprintf(stderr, "rayd worker: unexpected or bad %s on a caller socket\n",
                     wire::to_string(fr.type));
        wire::error_msg e{static_cast<uint8_t>(wire::wire_error::invalid),
                          std::string{"unexpected "} + wire::to_string(fr.type)};
        post_frame(*conn, wire::msg::error, e);
        conn->closed = true;
        ::shutdown(conn->fd, SHUT_RD);
        continue;
      }
      if (conn->ahead || conn->followers.load() == 0) {
        d->dispatch(call_job{std::move(*call), conn}, nullptr);
        continue;
      }
      if (unit == nullptr)
        unit = d->take_unit();
      d->dispatch(call_job{std::move(*call), conn}, unit); // in the mailbox, in order
      role.unlock(); // the other thread reads on
      if (unit != nullptr)
        unit->run_pending();
      break;
    }
  }
}

} // namespace

void actor_host::adopt_caller(int fd) {
  auto conn = std::make_shared<caller_conn>(fd);
  post_frame(*conn, wire::msg::attached, wire::attach_msg{impl_->pid});
  auto* d = impl_.get();
  for (int i = 0; i < 2; ++i) {
    try {
      std::thread{serve_caller, d, conn}.detach();
    } catch (const std::system_error& e) {
      std::fprintf(stderr, "rayd worker: cannot start a thread for a caller: %s\n", e.what());
    }
  }
}

} // namespace rayd::core::worker_detail
