#include "actors/node/task_server.hpp"

#include <fcntl.h>
#include <signal.h>
#include <sys/socket.h>
#include <sys/wait.h>
#include <unistd.h>

#include <algorithm>
#include <atomic>
#include <cstdlib>
#include <cmath>
#include <cstring>
#include <mutex>
#include <set>
#include <thread>

#include <spdlog/spdlog.h>

#include "actors/node/connection_table.hpp"
#include "actors/node/event_loop.hpp"
#include "actors/node/lease_queue.hpp"
#include "actors/node/object_alloc.hpp"
#include "actors/node/object_service.hpp"
#include "actors/node/worker_pool.hpp"
#include "actors/node/worker_process.hpp"
#include "common/error.hpp"
#include "common/resources.hpp"
#include "common/wire.hpp"

namespace rayd::node {

namespace {

using clock_type = std::chrono::steady_clock;
using namespace std::chrono_literals;

// What an event is about (event_loop tags).
constexpr uint64_t tag_listener = 1;
constexpr uint64_t tag_conn = 3;
constexpr uint64_t tag_worker = 4;

/// How often fairness, handshake deadlines and idle workers are looked at.
constexpr auto housekeeping_period = 100ms;
/// How long a job's objects outlive its last driver connection here.
constexpr auto driver_gone_grace = 2s;

/// Accepts taken per readiness of the listening socket, so that a flood of
/// connections cannot starve the ones already open.
constexpr int accepts_per_wakeup = 64;

void set_blocking(int fd, bool blocking) {
  int flags = ::fcntl(fd, F_GETFL);
  ::fcntl(fd, F_SETFL, blocking ? (flags & ~O_NONBLOCK) : (flags | O_NONBLOCK));
}

/// Sends one frame, ignoring failures (the peer's EOF reports them).
void send_frame(int fd, const std::string& bytes) {
  (void) wire::write_all(fd, bytes);
}

std::string code_key(const wire::lease_request& r) {
  std::string key = r.job_id;
  for (auto& f : r.code.files)
    key += "/" + f.hash;
  return key;
}

/// The worker key of an actor: its job's worker for the same code as a lease.
std::string code_key(const actor_launch& l) {
  std::string key = l.job_id;
  for (auto& f : l.code)
    key += "/" + f.hash;
  return key;
}

/// An actor this node hosts or is creating (loop-owned).
struct hosted_actor {
  std::string job_id;
  uint64_t worker_id = 0;
  uint64_t lease_id = 0; // 0: it holds no resources, nothing is reserved
  bool alive = false; // ACTOR_CREATED ok came
  std::vector<task_server::host_reply> waiters; // until ACTOR_CREATED
};

} // namespace

/// Wires the parts (connection_table, lease_queue, worker_pool,
/// object_service) to the event loop and routes frames between them; it
/// decides nothing itself.
struct task_server::impl {
  task_server_config cfg;
  event_loop loop;
  std::thread thread;
  std::atomic<bool> quitting{false};

  // Loop-owned state.
  connection_table conns;
  lease_queue leases;
  worker_pool workers;
  object_service objects;
  /// Objects drivers on this host write in place (PUT_ALLOC ... PUT_COMMIT).
  put_allocations shared_puts;
  accept_backoff backoff;
  /// Jobs whose last driver connection here closed, and when: their objects
  /// are freed once `driver_gone_grace` has passed with neither a driver
  /// connection nor a lease of the job here (a driver connection coming
  /// back cancels it). A driver opens its object session
  /// with a node only after its first lease there is granted, and closes
  /// spare lease connections at any time: freeing at once would take the
  /// results its tasks just stored from under it.
  std::map<std::string, clock_type::time_point> orphaned;
  /// Actors hosted here, by id.
  std::map<std::string, hosted_actor> actors;
  /// Jobs reported gone (job_gone is sent once per job).
  std::set<std::string> jobs_gone;
  std::function<void(std::string, int32_t, std::string)> on_actor_exited;
  std::function<void(std::string)> on_job_gone;
  std::string api_address; // RAYD_ADDRESS of workers started from now on
  bool listening = false;     // the listener is in the epoll set
  bool over_cap_logged = false;

  // Shared with other threads.
  mutable std::mutex mtx;
  std::vector<peer_capacity> peers;
  clock_type::time_point peers_at{}; // when `peers` arrived
  node_report snap;

  explicit impl(task_server_config c)
    : cfg(std::move(c)),
      leases(cfg.total),
      objects(*cfg.store, loop, cfg.node_id, cfg.token,
              [this](uint64_t wid, const std::string& oid, const caf::error& err) {
                if (auto* w = workers.find(wid); w != nullptr && w->ctrl >= 0)
                  objects.send_fetched(w->ctrl, oid, err);
                refresh_snapshot();
              }),
      shared_puts(*cfg.store) {
  }

  // -- shared state -------------------------------------------------------------

  void refresh_snapshot() {
    node_report s;
    s.node_id = cfg.node_id;
    s.available = leases.available();
    s.load.demands = leases.demands();
    s.load.object_store_used = cfg.store->memory_used();
    s.load.object_store_spilled = cfg.store->spilled_bytes();
    s.load.object_store_capacity = cfg.store->capacity();
    s.load.object_count = cfg.store->count();
    s.load.leases = static_cast<uint32_t>(leases.lease_count());
    s.load.workers = static_cast<uint32_t>(workers.size());
    std::lock_guard<std::mutex> guard{mtx};
    snap = std::move(s);
  }

  peer_capacity self_capacity() const {
    return {cfg.node_id, cfg.address, true, cfg.total, leases.available(), cfg.labels};
  }

  std::vector<peer_capacity> peers_now(clock_type::time_point* at = nullptr) const {
    std::lock_guard<std::mutex> guard{mtx};
    if (at != nullptr)
      *at = peers_at;
    return peers;
  }

  // -- the listener ---------------------------------------------------------------

  void listen_again() {
    loop.watch(cfg.socket.fd, event_loop::tag(tag_listener, 0));
    listening = true;
  }

  /// An accept error never ends the listener: it stops being polled for a
  /// moment (the backlog would keep it readable), is logged once per burst,
  /// and is retried; the open connections are served meanwhile.
  void pause_listener(const accept_result& r, clock_type::time_point now) {
    if (backoff.on_exhausted(now))
      spdlog::warn("task server: cannot accept on the node port: {} ({} connections open); "
                   "retrying every 100 ms until descriptors free up",
                   std::strerror(r.error), conns.size());
    if (listening) {
      loop.unwatch(cfg.socket.fd);
      listening = false;
    }
  }

  void accept_some() {
    auto now = clock_type::now();
    for (int i = 0; i < accepts_per_wakeup; ++i) {
      auto r = accept_connection(cfg.socket.fd);
      if (r.kind == accept_result::none)
        return;
      if (r.kind != accept_result::connection) {
        pause_listener(r, now);
        return;
      }
      if (auto failed = backoff.on_accepted(); failed > 0)
        spdlog::info("task server: accepting on the node port again ({} attempts failed)",
                     failed);
      auto* c = conns.admit(r.fd, now);
      if (c == nullptr) {
        // Too many connections wait for their HELLO: this one goes at once.
        if (!over_cap_logged)
          spdlog::warn("task server: {} connections wait for their HELLO on the node port; "
                       "closing new ones until some authenticate or time out",
                       conns.unauthenticated());
        over_cap_logged = true;
        ::close(r.fd);
        continue;
      }
      over_cap_logged = false;
      loop.watch(r.fd, event_loop::tag(tag_conn, c->id));
    }
  }

  // -- connections ------------------------------------------------------------------

  void close_conn(uint64_t id) {
    auto c = conns.take(id);
    if (!c)
      return;
    loop.unwatch(c->fd);
    ::close(c->fd);
    objects.abort_put(c->put);
    shared_puts.drop_conn(id);
    leases.forget_connection(id);
    if (c->authed && c->role == "driver" && !conns.has_driver_of(c->job_id))
      orphaned[c->job_id] = clock_type::now(); // freed unless it comes back
    refresh_snapshot();
  }

  void on_conn_readable(uint64_t id) {
    auto* c = conns.find(id);
    if (c == nullptr)
      return;
    char buf[64 * 1024];
    auto n = ::recv(c->fd, buf, sizeof buf, 0);
    if (n == 0 || (n < 0 && errno != EAGAIN && errno != EINTR)) {
      close_conn(id); // the peer is gone: no CLOSE-WAIT left behind
      return;
    }
    if (n < 0)
      return;
    c->reader.feed(buf, static_cast<std::size_t>(n));
    for (;;) {
      auto f = c->reader.next();
      if (!f) {
        spdlog::warn("task server: closing a connection: {}", describe(f.error()));
        close_conn(id);
        return;
      }
      if (!*f)
        return;
      if (!on_frame(*c, std::move(**f)))
        return; // the connection is gone or handed over
    }
  }

  /// Applies a handler's verdict; false when the connection is no longer
  /// read here.
  bool apply(connection& c, conn_verdict v) {
    switch (v) {
      case conn_verdict::keep:
        return true;
      case conn_verdict::close:
        close_conn(c.id);
        return false;
      case conn_verdict::handed_off:
        return false;
    }
    return false;
  }

  /// Routes one frame. False when the connection was closed or handed over.
  bool on_frame(connection& c, wire::frame f) {
    if (!c.authed)
      return on_hello(c, f);
    if (c.put.active) {
      auto v = objects.put_chunk(c, f);
      if (!c.put.active)
        refresh_snapshot();
      return apply(c, v);
    }
    switch (f.type) {
      case wire::msg::ping:
        send_frame(c.fd, wire::encode_raw(wire::msg::pong, {}));
        return true;
      case wire::msg::get: {
        auto cid = c.id;
        return apply(c, objects.get(c, f, [this, cid](bool ok) { given_back(cid, ok); }));
      }
      case wire::msg::put: {
        auto v = objects.begin_put(c, f);
        if (!c.put.active)
          refresh_snapshot();
        return apply(c, v);
      }
      case wire::msg::put_alloc:
      case wire::msg::put_commit:
      case wire::msg::put_abort: {
        if (c.role != "driver")
          break;
        auto reply = shared_puts.on_frame(c.id, c.job_id, f);
        if (!reply) {
          send_error(c.fd, wire::wire_error::invalid, describe(reply.error()));
          close_conn(c.id);
          return false;
        }
        if (!reply->empty())
          send_frame(c.fd, *reply);
        if (f.type == wire::msg::put_commit)
          refresh_snapshot();
        return true;
      }
      case wire::msg::free:
        if (c.role == "driver" && objects.free(f)) {
          refresh_snapshot();
          return true;
        }
        break;
      case wire::msg::attach: {
        if (c.queued)
          break;
        auto a = wire::decode<wire::attach_msg>(f.payload);
        if (!a)
          break;
        return on_attach(c, a->pid);
      }
      case wire::msg::backlog: {
        if (c.role != "driver")
          break;
        auto b = wire::decode<wire::backlog_msg>(f.payload);
        if (!b)
          break;
        if (c.queued && leases.set_backlog(c.id, b->count))
          refresh_snapshot();
        return true; // late (the request left the queue): nothing to do
      }
      case wire::msg::lease: {
        if (c.role != "driver" || c.queued)
          break;
        auto r = wire::decode<wire::lease_request>(f.payload);
        if (!r)
          break;
        return on_lease(c, std::move(*r));
      }
      default:
        break;
    }
    send_error(c.fd, wire::wire_error::invalid,
               std::string{"unexpected "} + wire::to_string(f.type));
    close_conn(c.id);
    return false;
  }

  bool on_hello(connection& c, const wire::frame& f) {
    auto h = check_hello(f, cfg.token);
    if (!h) {
      bool wrong_token = code_of(h.error()) == errc::unauthenticated;
      if (wrong_token)
        spdlog::warn("task server: refused a connection (wrong cluster token)");
      send_error(c.fd,
                 wrong_token ? wire::wire_error::unauthenticated : wire::wire_error::invalid,
                 wrong_token ? "wrong cluster token" : "expected a rayd HELLO");
      close_conn(c.id);
      return false;
    }
    conns.authenticate(c, *h);
    send_frame(c.fd, wire::encode(wire::msg::welcome, wire::welcome{cfg.node_id}));
    return true;
  }

  /// A large GET is done: the socket is read here again, or closed.
  void given_back(uint64_t cid, bool ok) {
    auto* c = conns.find(cid);
    if (c == nullptr)
      return;
    if (!ok) {
      close_conn(cid);
      return;
    }
    loop.watch(c->fd, event_loop::tag(tag_conn, cid));
  }

  /// Hands the socket to worker process `pid` (ADOPT_CALLER). False when
  /// it was handed over.
  bool on_attach(connection& c, int32_t pid) {
    auto* w = workers.find_pid(pid);
    if (w == nullptr) {
      send_error(c.fd, wire::wire_error::not_found,
                 "no worker process " + std::to_string(pid) + " on node " + cfg.node_id);
      return true;
    }
    if (c.reader.buffered() > 0) {
      // Frames sent behind ATTACH would be lost with the hand-over.
      send_error(c.fd, wire::wire_error::invalid,
                 "send nothing after ATTACH until ATTACHED (or ERROR) arrives");
      close_conn(c.id);
      return false;
    }
    auto taken = conns.take(c.id);
    loop.unwatch(taken->fd);
    shared_puts.drop_conn(taken->id);
    set_blocking(taken->fd, true);
    auto msg = wire::encode(wire::msg::adopt_caller, wire::attach_msg{pid});
    if (wire::send_with_fds(w->ctrl, msg, {taken->fd}))
      spdlog::warn("task server: could not hand a caller's socket to worker {}", w->pid);
    ::close(taken->fd); // the worker has its own copy (or the caller sees EOF)
    return false;
  }

  // -- actors -----------------------------------------------------------------------

  void host_actor(actor_launch l, task_server::host_reply done) {
    if (auto i = actors.find(l.actor_id); i != actors.end()) {
      auto* w = workers.find(i->second.worker_id);
      if (i->second.alive && w != nullptr)
        done(actor_hosted{true, static_cast<int32_t>(w->pid), false, {}, {}});
      else
        i->second.waiters.push_back(std::move(done));
      return;
    }
    if (l.code.empty()) {
      done(make_error(errc::invalid_argument, "the actor names no code to run"));
      return;
    }
    if (leases.draining()) {
      done(make_error(errc::unavailable, "the node is draining (the autoscaler terminates it)"));
      return;
    }
    if (!fits(l.resources, leases.available())) {
      done(make_error(errc::unavailable, "no room"));
      return;
    }
    auto now = clock_type::now();
    bool created = false;
    auto& w = workers.for_key(code_key(l), l.job_id, now, created);
    // An actor that holds no resources (the default) needs no reservation:
    // 10,000 of them must not make every look at the free resources slower.
    bool holds = std::any_of(l.resources.begin(), l.resources.end(),
                             [](const auto& kv) { return kv.second > 0; });
    auto lease_id = holds ? leases.reserve(l.resources, l.job_id, w.id, true) : 0;
    workers.add_actor(w, l.actor_id);
    auto& rec = actors[l.actor_id];
    rec.job_id = l.job_id;
    rec.worker_id = w.id;
    rec.lease_id = lease_id;
    rec.waiters.push_back(std::move(done));
    auto frame = wire::encode(
      wire::msg::create_actor,
      wire::actor_create_msg{l.actor_id, l.class_name, std::move(l.args),
                             static_cast<uint32_t>(std::max(1, l.max_concurrency))});
    if (w.state == worker_record::serving)
      send_frame(w.ctrl, frame);
    else
      w.backlog.push_back(std::move(frame));
    if (created) {
      std::vector<wire::code_file> files;
      for (auto& f : l.code)
        files.push_back({f.hash, f.name});
      fetch_and_start(w.id, std::move(files));
    }
    refresh_snapshot();
  }

  /// Forgets an actor and releases its reservation (if it has one).
  void drop_actor(std::map<std::string, hosted_actor>::iterator i) {
    if (i->second.lease_id != 0)
      leases.release(i->second.lease_id);
    workers.remove_actor(i->second.worker_id, i->first, clock_type::now());
    actors.erase(i);
  }

  void unhost_actor(const std::string& id, const std::function<void(bool)>& done) {
    auto i = actors.find(id);
    if (i == actors.end()) {
      done(false);
      return;
    }
    if (auto* w = workers.find(i->second.worker_id)) {
      auto frame = wire::encode(wire::msg::kill_actor, wire::actor_id_msg{id});
      if (w->state == worker_record::serving)
        send_frame(w->ctrl, frame);
      else
        w->backlog.push_back(std::move(frame));
    }
    for (auto& reply : i->second.waiters)
      reply(make_error(errc::unavailable, "actor " + id + " was unhosted while being created"));
    drop_actor(i);
    run_queue();
    refresh_snapshot();
    done(true);
  }

  void on_actor_created(worker_record& w, const wire::actor_created_msg& m) {
    auto i = actors.find(m.actor_id);
    if (i == actors.end() || i->second.worker_id != w.id)
      return; // unhosted meanwhile
    auto waiters = std::move(i->second.waiters);
    i->second.waiters.clear();
    actor_hosted h;
    if (m.ok) {
      i->second.alive = true;
      h.ok = true;
      h.pid = static_cast<int32_t>(w.pid);
    } else {
      h.constructor_failed = true;
      h.error_type = m.error_type;
      h.error_message = m.error_message;
      drop_actor(i);
      run_queue();
      refresh_snapshot();
    }
    for (auto& reply : waiters)
      reply(h);
  }

  /// Worker `w` is gone (`cause`): its actors are reported (alive) or their
  /// creation answered (creating). Their reservations go with the worker.
  void actors_gone(worker_record& w, const std::string& cause) {
    for (auto& id : w.actors) {
      auto i = actors.find(id);
      if (i == actors.end())
        continue;
      if (i->second.alive) {
        if (on_actor_exited)
          on_actor_exited(id, static_cast<int32_t>(w.pid), cause);
      } else {
        actor_hosted h;
        h.error_message = cause;
        for (auto& reply : i->second.waiters)
          reply(h);
      }
      actors.erase(i);
    }
    w.actors.clear();
  }

  // -- leases -----------------------------------------------------------------------

  bool on_lease(connection& c, wire::lease_request req) {
    if (req.code.files.empty()) {
      send_frame(c.fd, encode_lease_refusal(req.request_id, wire::wire_error::invalid,
                                            "the lease names no code to run"));
      return true;
    }
    auto d = lease_queue::decide_arrival(req, self_capacity(), peers_now());
    if (d.kind == lease_decision::grant) {
      grant(c.id, std::move(req));
      return false;
    }
    send_frame(c.fd, encode_lease_reply(req.request_id, d));
    if (d.kind == lease_decision::queue) {
      c.queued = true;
      leases.enqueue(c.id, std::move(req), clock_type::now());
      refresh_snapshot();
    }
    return true;
  }

  /// Grants, spills or refuses what can go now, in arrival order.
  void run_queue() {
    if (leases.empty())
      return;
    clock_type::time_point view_at;
    auto view = peers_now(&view_at);
    for (auto& d : leases.run(self_capacity(), view, view_at)) {
      auto* c = conns.find(d.conn_id);
      if (c == nullptr)
        continue;
      c->queued = false;
      if (d.decision.kind == lease_decision::grant)
        grant(d.conn_id, std::move(d.req));
      else
        send_frame(c->fd, encode_lease_reply(d.req.request_id, d.decision));
    }
    rebalance();
    refresh_snapshot();
  }

  /// Reserves the shape and hands the connection to a worker of the job.
  void grant(uint64_t conn_id, wire::lease_request req) {
    auto c = conns.take(conn_id);
    loop.unwatch(c->fd);
    shared_puts.drop_conn(conn_id); // no PUT_COMMIT can come on a worker's socket
    auto now = clock_type::now();
    bool created = false;
    auto& w = workers.for_key(code_key(req), req.job_id, now, created);
    auto lease_id = leases.reserve(req.shape, req.job_id, w.id);
    auto cpu = req.shape.count("CPU") ? req.shape.at("CPU") : 0.0;
    pending_adopt pa{c->fd, lease_id, req.request_id,
                     static_cast<uint32_t>(std::max(1.0, std::ceil(cpu)))};
    if (workers.attach(w, pa))
      adopt(w, pa);
    if (created)
      fetch_and_start(w.id, req.code.files);
    refresh_snapshot();
  }

  /// Sends the socket to the worker (ADOPT) and closes this side's copy.
  void adopt(worker_record& w, const pending_adopt& pa) {
    set_blocking(pa.fd, true);
    auto msg = wire::encode(wire::msg::adopt,
                            wire::adopt_msg{pa.lease_id, pa.request_id, pa.threads,
                                            cfg.node_id, cfg.address});
    if (wire::send_with_fds(w.ctrl, msg, {pa.fd})) {
      // The worker is going away; its EOF releases the lease.
      spdlog::warn("task server: could not hand a lease to worker {}", w.pid);
    }
    ::close(pa.fd);
  }

  void release_lease(uint64_t lease_id) {
    if (auto wid = leases.release(lease_id))
      workers.detach(*wid, lease_id, clock_type::now());
  }

  void rebalance() {
    auto drains = leases.rebalance(clock_type::now(),
                                   [this](uint64_t wid) { return workers.serving(wid); });
    for (auto lid : drains) {
      auto* l = leases.find(lid);
      auto* w = l ? workers.find(l->worker_id) : nullptr;
      if (w != nullptr)
        send_frame(w->ctrl, wire::encode(wire::msg::drain, wire::lease_done_msg{lid}));
    }
  }

  // -- worker processes ---------------------------------------------------------------

  /// Fetches the code (blocking: a helper thread), then starts the process.
  void fetch_and_start(uint64_t wid, std::vector<wire::code_file> files) {
    std::thread([this, files, wid] {
      std::vector<std::string> paths;
      caf::error err;
      for (auto& f : files) {
        auto p = cfg.fetch_code("code://" + f.hash + "/" + f.name);
        if (!p) {
          err = p.error();
          break;
        }
        paths.push_back(*p);
      }
      loop.post([this, wid, paths, err] {
        auto* w = workers.find(wid);
        if (w == nullptr)
          return;
        if (err) {
          fail_worker(*w, "cannot fetch the job's code: " + describe(err));
          return;
        }
        start(*w, paths);
      });
    }).detach();
  }

  void start(worker_record& w, const std::vector<std::string>& paths) {
    worker_launch l{paths, w.job_id, cfg.node_id,
                    cfg.session_dir + "/workers/worker-" + std::to_string(w.id) + ".log"};
    l.node_address = cfg.address;
    l.api_address = api_address;
    l.token = cfg.token;
    auto p = start_worker_process(l);
    if (!p) {
      fail_worker(w, describe(p.error()));
      return;
    }
    workers.started(w, p->pid, p->ctrl);
    loop.watch(w.ctrl, event_loop::tag(tag_worker, w.id));
    spdlog::info("task server: started worker pid {} for job {} ({})", p->pid, w.job_id,
                 paths[0]);
  }

  /// The worker cannot serve: refuse what waits for it, forget it.
  void fail_worker(worker_record& w, const std::string& why) {
    spdlog::warn("task server: worker for job {}: {}", w.job_id, why);
    for (auto& pa : w.waiting) {
      set_blocking(pa.fd, true);
      send_frame(pa.fd, encode_lease_refusal(pa.request_id, wire::wire_error::unavailable, why));
      ::close(pa.fd);
    }
    w.waiting.clear();
    actors_gone(w, why);
    remove_worker(w.id);
  }

  void remove_worker(uint64_t wid) {
    auto* w = workers.find(wid);
    if (w == nullptr)
      return;
    if (w->ctrl >= 0)
      loop.unwatch(w->ctrl);
    leases.release_worker(wid);
    workers.remove(wid);
    run_queue();
    refresh_snapshot();
  }

  void on_worker_readable(uint64_t wid) {
    auto* w = workers.find(wid);
    if (w == nullptr)
      return;
    char buf[16 * 1024];
    auto n = wire::recv_with_fds(w->ctrl, buf, sizeof buf, w->fds);
    if (!n || *n == 0) {
      int status = 0;
      pid_t r = ::waitpid(w->pid, &status, 0);
      auto how = r == w->pid ? describe_exit_status(status) : std::string{"vanished"};
      if (w->state != worker_record::exiting)
        spdlog::warn("task server: worker pid {} of job {} {}", w->pid, w->job_id, how);
      actors_gone(*w, "worker process " + std::to_string(w->pid) + " " + how);
      remove_worker(wid);
      return;
    }
    w->reader.feed(buf, *n);
    for (;;) {
      auto f = w->reader.next();
      if (!f) {
        spdlog::warn("task server: worker pid {} sent garbage; stopping it", w->pid);
        ::kill(w->pid, SIGKILL);
        return;
      }
      if (!*f)
        return;
      on_worker_frame(*w, std::move(**f));
      if (workers.find(wid) == nullptr)
        return;
    }
  }

  int pop_fd(worker_record& w) {
    if (w.fds.empty())
      return -1;
    int fd = w.fds.front();
    w.fds.pop_front();
    return fd;
  }

  void on_worker_frame(worker_record& w, wire::frame f) {
    switch (f.type) {
      case wire::msg::ready: {
        for (auto& pa : workers.ready(w))
          adopt(w, pa);
        auto backlog = std::move(w.backlog);
        w.backlog.clear();
        for (auto& frame : backlog)
          send_frame(w.ctrl, frame);
        return;
      }
      case wire::msg::actor_created: {
        if (auto m = wire::decode<wire::actor_created_msg>(f.payload))
          on_actor_created(w, *m);
        return;
      }
      case wire::msg::lease_done: {
        if (auto r = wire::decode<wire::lease_done_msg>(f.payload))
          release_lease(r->lease_id);
        run_queue();
        refresh_snapshot();
        return;
      }
      case wire::msg::store:
        objects.store_from_worker(w.ctrl, pop_fd(w), f, w.job_id);
        refresh_snapshot();
        return;
      case wire::msg::fetch:
        if (auto r = wire::decode<wire::fetch_msg>(f.payload))
          objects.fetch(w.id, w.job_id, r->loc);
        return;
      default:
        spdlog::warn("task server: unexpected {} from worker pid {}", wire::to_string(f.type),
                     w.pid);
    }
  }

  // -- the loop -------------------------------------------------------------------------

  void housekeeping(clock_type::time_point now) {
    rebalance();
    for (auto i = orphaned.begin(); i != orphaned.end();) {
      if (conns.has_driver_of(i->first)) {
        i = orphaned.erase(i); // the driver is back
      } else if (leases.holds_lease(i->first)) {
        i->second = now; // a worker still serves its socket: wait for the lease to end
        ++i;
      } else if (now - i->second >= driver_gone_grace) {
        cfg.store->free_job(i->first); // the job's driver is gone from this node
        if (on_job_gone && jobs_gone.insert(i->first).second)
          on_job_gone(i->first); // its non-detached actors die (docs/actors.md)
        i = orphaned.erase(i);
        refresh_snapshot();
      } else {
        ++i;
      }
    }
    auto overdue = conns.overdue(now);
    for (auto id : overdue)
      close_conn(id);
    if (!overdue.empty())
      spdlog::debug("task server: closed {} connections without a HELLO within {} s",
                    overdue.size(), hello_timeout.count());
    for (auto wid : workers.retire_idle(now, cfg.idle_worker_timeout))
      if (auto* w = workers.find(wid))
        send_frame(w->ctrl, wire::encode_raw(wire::msg::exit, {}));
  }

  void run() {
    epoll_event evs[64];
    auto last = clock_type::now();
    while (!quitting.load()) {
      int n = loop.wait(evs, 64, static_cast<int>(housekeeping_period.count()));
      for (int i = 0; i < n; ++i) {
        auto kind = event_loop::kind_of(evs[i].data.u64);
        auto id = event_loop::id_of(evs[i].data.u64);
        if (kind == tag_listener)
          accept_some();
        else if (kind == event_loop::wakeup_kind)
          loop.run_posted();
        else if (kind == tag_conn)
          on_conn_readable(id);
        else if (kind == tag_worker)
          on_worker_readable(id);
      }
      auto now = clock_type::now();
      if (!listening && !backoff.paused(now))
        listen_again();
      if (now - last > housekeeping_period) {
        last = now;
        housekeeping(now);
      }
    }
  }
};

caf::expected<std::unique_ptr<task_server>> task_server::start(task_server_config cfg) {
  std::unique_ptr<task_server> ts{new task_server};
  ts->impl_ = std::make_unique<impl>(std::move(cfg));
  auto& d = *ts->impl_;
  if (auto err = d.loop.init())
    return err;
  set_blocking(d.cfg.socket.fd, false);
  d.listen_again();
  d.refresh_snapshot();
  d.thread = std::thread([&d] {
    // The node port must not die while the daemon goes on as if it served:
    // a failure that escapes the loop takes the daemon down, saying why.
    try {
      d.run();
    } catch (const std::exception& e) {
      spdlog::critical("task server failed: {}; stopping rayd", e.what());
      spdlog::shutdown();
      std::abort();
    }
  });
  return ts;
}

task_server::~task_server() {
  if (!impl_)
    return;
  impl_->quitting = true;
  impl_->loop.post([] {});
  if (impl_->thread.joinable())
    impl_->thread.join();
  for (auto& [_, c] : impl_->conns.all())
    ::close(c->fd);
  ::close(impl_->cfg.socket.fd);
  // The worker pool closes the control sockets: worker processes see EOF and exit.
}

node_report task_server::snapshot() const {
  std::lock_guard<std::mutex> guard{impl_->mtx};
  return impl_->snap;
}

void task_server::set_peers(std::vector<peer_view> peers) {
  {
    std::lock_guard<std::mutex> guard{impl_->mtx};
    impl_->peers = std::move(peers);
    impl_->peers_at = clock_type::now();
  }
  auto* d = impl_.get();
  d->loop.post([d] { d->run_queue(); });
}

void task_server::host_actor(actor_launch l, host_reply done) {
  auto* d = impl_.get();
  d->loop.post([d, l = std::move(l), done = std::move(done)]() mutable {
    d->host_actor(std::move(l), std::move(done));
  });
}

void task_server::unhost_actor(std::string actor_id, std::function<void(bool)> done) {
  auto* d = impl_.get();
  d->loop.post([d, actor_id = std::move(actor_id), done = std::move(done)] {
    d->unhost_actor(actor_id, done);
  });
}

void task_server::set_actor_hooks(
  std::function<void(std::string actor_id, int32_t pid, std::string cause)> exited,
  std::function<void(std::string job_id)> job_gone) {
  auto* d = impl_.get();
  d->loop.post([d, exited = std::move(exited), job_gone = std::move(job_gone)] {
    d->on_actor_exited = exited;
    d->on_job_gone = job_gone;
  });
}

void task_server::drain(bool on, std::function<void(bool)> done) {
  auto* d = impl_.get();
  d->loop.post([d, on, done = std::move(done)] {
    bool ok = true;
    if (!on) {
      d->leases.end_drain();
      d->run_queue();
    } else if (!d->actors.empty() || !d->leases.begin_drain()) {
      ok = false;
    }
    d->refresh_snapshot();
    done(ok);
  });
}

void task_server::set_api_address(std::string address) {
  auto* d = impl_.get();
  d->loop.post([d, address = std::move(address)] { d->api_address = address; });
}

} // namespace rayd::node
