#include "actors/node/task_server.hpp"

#include <fcntl.h>
#include <netdb.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <poll.h>
#include <signal.h>
#include <spawn.h>
#include <sys/epoll.h>
#include <sys/eventfd.h>
#include <sys/mman.h>
#include <sys/sendfile.h>
#include <sys/socket.h>
#include <sys/wait.h>
#include <unistd.h>

#include <algorithm>
#include <atomic>
#include <cmath>
#include <deque>
#include <filesystem>
#include <map>
#include <mutex>
#include <set>
#include <thread>

#include <spdlog/spdlog.h>

#include "actors/gcs/job_placement.hpp"
#include "actors/node/object_alloc.hpp"
#include "common/error.hpp"
#include "common/token.hpp"
#include "common/wire.hpp"

extern char** environ;

namespace rayd::node {

namespace {

using clock_type = std::chrono::steady_clock;
using namespace std::chrono_literals;

constexpr auto handshake_timeout = 10s;
/// How long a lease request waits before another job's lease is asked back.
constexpr auto fairness_delay = 100ms;
constexpr uint64_t tag_listener = 1;
constexpr uint64_t tag_event = 2;
constexpr uint64_t tag_conn = 3;
constexpr uint64_t tag_worker = 4;

uint64_t tag(uint64_t kind, uint64_t id) {
  return (kind << 56) | id;
}

void set_blocking(int fd, bool blocking) {
  int flags = ::fcntl(fd, F_GETFL);
  ::fcntl(fd, F_SETFL, blocking ? (flags & ~O_NONBLOCK) : (flags | O_NONBLOCK));
}

std::string describe_status(int status) {
  if (WIFEXITED(status))
    return "exited with code " + std::to_string(WEXITSTATUS(status));
  if (WIFSIGNALED(status))
    return "killed by signal " + std::to_string(WTERMSIG(status)) + " ("
           + strsignal(WTERMSIG(status)) + ")";
  return "ended (status " + std::to_string(status) + ")";
}

/// Sends one frame, ignoring failures (the peer's EOF reports them).
void send_frame(int fd, const std::string& bytes) {
  (void) wire::write_all(fd, bytes);
}

/// Streams an object: OBJECT header, then CHUNK frames straight from the
/// object's descriptor (sendfile, no copy through user space).
caf::error stream_object(int sock, const std::string& id, int fd, uint64_t size) {
  if (auto err = wire::write_all(sock, wire::encode(wire::msg::object,
                                                    wire::object_header{id, size})))
    return err;
  off_t off = 0;
  while (static_cast<uint64_t>(off) < size) {
    auto n = std::min<uint64_t>(wire::chunk_bytes, size - static_cast<uint64_t>(off));
    auto header = wire::encode_raw(wire::msg::chunk, {});
    auto len = static_cast<uint32_t>(n + 1);
    for (int i = 0; i < 4; ++i)
      header[static_cast<std::size_t>(i)] = static_cast<char>((len >> (8 * i)) & 0xff);
    if (auto err = wire::write_all(sock, header))
      return err;
    uint64_t left = n;
    while (left > 0) {
      auto sent = ::sendfile(sock, fd, &off, left);
      if (sent < 0 && errno == EINTR)
        continue;
      if (sent < 0 && errno == EAGAIN) {
        pollfd pfd{sock, POLLOUT, 0};
        ::poll(&pfd, 1, -1);
        continue;
      }
      if (sent <= 0)
        return make_error(errc::unavailable,
                          std::string{"sending object failed: "} + std::strerror(errno));
      left -= static_cast<uint64_t>(sent);
    }
  }
  return caf::none;
}

/// Receives `size` bytes of CHUNK frames straight into the destination's
/// pages (a shared mapping of its descriptor): no buffer in between, one
/// recv per piece the kernel has, whatever the frame boundaries.
caf::error receive_chunks(int sock, wire::frame_reader& reader, int dest, uint64_t size) {
  if (size == 0)
    return caf::none;
  auto* map = static_cast<char*>(
    ::mmap(nullptr, size, PROT_READ | PROT_WRITE, MAP_SHARED, dest, 0));
  if (map == MAP_FAILED)
    return make_error(errc::storage_error,
                      std::string{"object store full: cannot map: "} + std::strerror(errno));
  uint64_t got = 0;      // object bytes received
  uint64_t in_frame = 0; // payload bytes left in the current CHUNK
  char header[5];
  std::size_t header_got = 0;
  caf::error err;
  // Bytes the reader already holds come first, then the socket.
  std::string pending = reader.take_buffered();
  std::size_t pending_pos = 0;
  auto next_bytes = [&](char* into, std::size_t want) -> ssize_t {
    if (pending_pos < pending.size()) {
      auto n = std::min(want, pending.size() - pending_pos);
      std::memcpy(into, pending.data() + pending_pos, n);
      pending_pos += n;
      return static_cast<ssize_t>(n);
    }
    for (;;) {
      auto n = ::recv(sock, into, want, 0);
      if (n < 0 && errno == EINTR)
        continue;
      return n;
    }
  };
  while (got < size) {
    if (in_frame == 0) {
      auto n = next_bytes(header + header_got, sizeof header - header_got);
      if (n <= 0) {
        err = make_error(errc::unavailable, "the transfer broke off");
        break;
      }
      header_got += static_cast<std::size_t>(n);
      if (header_got < sizeof header)
        continue;
      header_got = 0;
      uint32_t len = 0;
      for (int i = 0; i < 4; ++i)
        len |= static_cast<uint32_t>(static_cast<unsigned char>(header[i])) << (8 * i);
      if (static_cast<wire::msg>(header[4]) != wire::msg::chunk || len < 1
          || len - 1 > size - got) {
        err = make_error(errc::invalid_argument, "malformed object stream");
        break;
      }
      in_frame = len - 1;
      continue;
    }
    auto n = next_bytes(map + got, static_cast<std::size_t>(in_frame));
    if (n <= 0) {
      err = make_error(errc::unavailable, "the transfer broke off");
      break;
    }
    got += static_cast<uint64_t>(n);
    in_frame -= static_cast<uint64_t>(n);
  }
  ::munmap(map, size);
  return err;
}

/// Pulls an object from another node into `store`.
caf::error pull_object(const wire::object_loc& loc, const std::string& token,
                       const std::string& job_id, object_store& store) {
  auto sock = connect_tcp(loc.address);
  if (!sock)
    return sock.error();
  int fd = *sock;
  auto close_fd = [fd] { ::close(fd); };
  wire::frame_reader reader;
  auto fail = [&](caf::error err) {
    close_fd();
    return err;
  };
  if (auto err = wire::write_all(fd, wire::encode(wire::msg::hello,
                                                  wire::hello{wire::magic, token, "peer",
                                                              job_id})))
    return fail(err);
  auto w = wire::read_frame(fd, reader, 10000);
  if (!w)
    return fail(w.error());
  if (w->type != wire::msg::welcome)
    return fail(make_error(errc::unauthenticated, "node " + loc.address
                                                    + " refused this node"));
  if (auto err = wire::write_all(fd, wire::encode(wire::msg::get,
                                                  wire::object_id_msg{loc.object_id})))
    return fail(err);
  auto h = wire::read_frame(fd, reader, 30000);
  if (!h)
    return fail(h.error());
  if (h->type != wire::msg::object) {
    auto e = wire::decode<wire::error_msg>(h->payload);
    return fail(make_error(errc::not_found, e ? e->message : "object not found"));
  }
  auto hdr = wire::decode<wire::object_header>(h->payload);
  if (!hdr)
    return fail(hdr.error());
  auto p = store.begin(loc.object_id, hdr->size, job_id);
  if (!p)
    return fail(p.error());
  if (auto err = receive_chunks(fd, reader, p->fd, hdr->size)) {
    store.abort(*p);
    return fail(err);
  }
  close_fd();
  return store.commit(*p);
}

} // namespace

struct task_server::impl {
  struct conn {
    uint64_t id = 0;
    int fd = -1;
    bool authed = false;
    std::string role;
    std::string job_id;
    wire::frame_reader reader;
    clock_type::time_point opened = clock_type::now();
    // A PUT being received.
    std::optional<object_store::pending> put;
    std::string put_id;
    uint64_t put_size = 0;
    uint64_t put_got = 0;
    bool put_active = false;
    caf::error put_error;
    bool queued = false; // waits for a lease
  };

  struct pending_adopt {
    int fd = -1;
    uint64_t lease_id = 0;
    uint64_t request_id = 0;
    uint32_t threads = 1;
  };

  struct worker {
    uint64_t id = 0;
    std::string key;
    std::string job_id;
    pid_t pid = -1;
    int ctrl = -1;
    bool ready = false;
    bool exiting = false;
    wire::frame_reader reader;
    std::deque<int> fds;
    std::set<uint64_t> leases;
    std::vector<pending_adopt> waiting;
    clock_type::time_point idle_since = clock_type::now();
  };

  struct lease {
    resource_map shape;
    uint64_t worker_id = 0;
    bool draining = false; // asked back for another job
  };

  struct queued_request {
    uint64_t conn_id;
    wire::lease_request req;
    /// When the LEASE arrived: only a cluster view received later may call it
    /// infeasible (an older one may predate the node that can hold it).
    clock_type::time_point arrived = clock_type::now();
  };

  task_server_config cfg;
  int epfd = -1;
  int event_fd = -1;
  std::thread thread;
  std::atomic<bool> quitting{false};

  // Loop-owned state.
  std::map<uint64_t, std::unique_ptr<conn>> conns;
  std::map<uint64_t, std::unique_ptr<worker>> workers;
  std::map<std::string, uint64_t> worker_by_key;
  std::map<uint64_t, lease> leases;
  std::deque<queued_request> queue;
  /// Objects being pulled from peers, with the workers waiting for them.
  std::map<std::string, std::vector<uint64_t>> pulls;
  uint64_t next_id = 1;
  /// Objects drivers on this host write in place (PUT_ALLOC ... PUT_COMMIT).
  std::unique_ptr<put_allocations> shared_puts;

  // Shared with other threads.
  mutable std::mutex mtx;
  std::vector<std::function<void()>> posted;
  std::vector<peer_capacity> peers;
  clock_type::time_point peers_at{}; // when `peers` arrived
  node_report snap;

  // -- plumbing ---------------------------------------------------------------

  void post(std::function<void()> f) {
    {
      std::lock_guard<std::mutex> guard{mtx};
      posted.push_back(std::move(f));
    }
    uint64_t one = 1;
    [[maybe_unused]] auto n = ::write(event_fd, &one, sizeof one);
  }

  void watch(int fd, uint64_t t) {
    epoll_event ev{};
    ev.events = EPOLLIN;
    ev.data.u64 = t;
    ::epoll_ctl(epfd, EPOLL_CTL_ADD, fd, &ev);
  }

  void unwatch(int fd) {
    ::epoll_ctl(epfd, EPOLL_CTL_DEL, fd, nullptr);
  }

  resource_map available() const {
    auto out = cfg.total;
    for (auto& [_, l] : leases)
      for (auto& [k, v] : l.shape)
        out[k] -= v;
    return out;
  }

  void refresh_snapshot() {
    node_report s;
    s.node_id = cfg.node_id;
    s.available = available();
    std::vector<resource_demand> ds;
    for (auto& q : queue) {
      auto it = std::find_if(ds.begin(), ds.end(),
                             [&](auto& d) { return d.shape == q.req.shape; });
      if (it == ds.end())
        ds.push_back({q.req.shape, 1});
      else
        ++it->count;
    }
    s.load.demands = std::move(ds);
    s.load.object_store_used = cfg.store->memory_used();
    s.load.object_store_spilled = cfg.store->spilled_bytes();
    s.load.object_store_capacity = cfg.store->capacity();
    s.load.object_count = cfg.store->count();
    s.load.leases = static_cast<uint32_t>(leases.size());
    s.load.workers = static_cast<uint32_t>(workers.size());
    std::lock_guard<std::mutex> guard{mtx};
    snap = std::move(s);
  }

  peer_capacity self_capacity() const {
    return {cfg.node_id, cfg.address, true, cfg.total, available(), cfg.labels};
  }

  // -- connections -------------------------------------------------------------

  void close_conn(uint64_t id) {
    auto i = conns.find(id);
    if (i == conns.end())
      return;
    auto& c = *i->second;
    unwatch(c.fd);
    ::close(c.fd);
    if (c.put)
      cfg.store->abort(*c.put);
    shared_puts->drop_conn(id);
    auto job = c.job_id;
    bool session = c.authed && c.role == "driver";
    conns.erase(i);
    queue.erase(std::remove_if(queue.begin(), queue.end(),
                               [id](auto& q) { return q.conn_id == id; }),
                queue.end());
    if (session) {
      bool more = std::any_of(conns.begin(), conns.end(), [&](auto& kv) {
        return kv.second->role == "driver" && kv.second->job_id == job;
      });
      if (!more) // the job's driver is gone from this node: free its objects
        cfg.store->free_job(job);
    }
    refresh_snapshot();
  }

  void reply_error(conn& c, wire::wire_error code, const std::string& message) {
    send_frame(c.fd, wire::encode(wire::msg::error,
                                  wire::error_msg{static_cast<uint8_t>(code), message}));
  }

  void on_conn_readable(uint64_t id) {
    auto i = conns.find(id);
    if (i == conns.end())
      return;
    auto& c = *i->second;
    char buf[64 * 1024];
    auto n = ::recv(c.fd, buf, sizeof buf, 0);
    if (n == 0 || (n < 0 && errno != EAGAIN && errno != EINTR)) {
      close_conn(id);
      return;
    }
    if (n < 0)
      return;
    c.reader.feed(buf, static_cast<std::size_t>(n));
    for (;;) {
      auto f = c.reader.next();
      if (!f) {
        spdlog::warn("task server: closing a connection: {}", describe(f.error()));
        close_conn(id);
        return;
      }
      if (!*f)
        return;
      if (!handle_frame(id, std::move(**f)))
        return; // the connection is gone or handed over
    }
  }

  /// False when the connection was closed or handed over (stop reading it).
  bool handle_frame(uint64_t id, wire::frame f) {
    auto& c = *conns.at(id);
    if (!c.authed) {
      auto h = f.type == wire::msg::hello ? wire::decode<wire::hello>(f.payload)
                                          : caf::expected<wire::hello>{caf::error{}};
      if (!h || h->magic_text != wire::magic || (h->role != "driver" && h->role != "peer")) {
        reply_error(c, wire::wire_error::invalid, "expected a rayd HELLO");
        close_conn(id);
        return false;
      }
      if (!token_matches(cfg.token, h->token)) {
        spdlog::warn("task server: refused a {} (wrong cluster token)", h->role);
        reply_error(c, wire::wire_error::unauthenticated, "wrong cluster token");
        close_conn(id);
        return false;
      }
      c.authed = true;
      c.role = h->role;
      c.job_id = h->job_id;
      send_frame(c.fd, wire::encode(wire::msg::welcome, wire::welcome{cfg.node_id}));
      return true;
    }
    if (c.put_active) {
      if (f.type != wire::msg::chunk || c.put_got + f.payload.size() > c.put_size) {
        reply_error(c, wire::wire_error::invalid, "malformed PUT stream");
        close_conn(id);
        return false;
      }
      if (c.put && ::pwrite(c.put->fd, f.payload.data(), f.payload.size(),
                            static_cast<off_t>(c.put_got))
                     != static_cast<ssize_t>(f.payload.size())) {
        c.put_error = make_error(errc::storage_error,
                                 std::string{"object store full: "} + std::strerror(errno));
        cfg.store->abort(*c.put);
        c.put.reset();
      }
      c.put_got += f.payload.size();
      if (c.put_got == c.put_size)
        finish_put(c);
      return true;
    }
    switch (f.type) {
      case wire::msg::ping:
        send_frame(c.fd, wire::encode_raw(wire::msg::pong, {}));
        return true;
      case wire::msg::get:
        return on_get(c, f);
      case wire::msg::put:
        return on_put(c, f);
      case wire::msg::put_alloc:
      case wire::msg::put_commit:
      case wire::msg::put_abort: {
        if (c.role != "driver")
          break;
        auto reply = shared_puts->on_frame(c.id, c.job_id, f);
        if (!reply) {
          reply_error(c, wire::wire_error::invalid, describe(reply.error()));
          close_conn(id);
          return false;
        }
        if (!reply->empty())
          send_frame(c.fd, *reply);
        if (f.type == wire::msg::put_commit)
          refresh_snapshot();
        return true;
      }
      case wire::msg::free: {
        if (c.role != "driver")
          break;
        auto r = wire::decode<wire::free_request>(f.payload);
        if (!r)
          break;
        for (auto& oid : r->object_ids)
          cfg.store->free(oid);
        refresh_snapshot();
        return true;
      }
      case wire::msg::lease: {
        if (c.role != "driver" || c.queued)
          break;
        auto r = wire::decode<wire::lease_request>(f.payload);
        if (!r)
          break;
        return on_lease(id, std::move(*r));
      }
      default:
        break;
    }
    reply_error(c, wire::wire_error::invalid,
                std::string{"unexpected "} + wire::to_string(f.type));
    close_conn(id);
    return false;
  }

  bool on_put(conn& c, const wire::frame& f) {
    auto r = wire::decode<wire::put_request>(f.payload);
    if (!r || c.role != "driver") {
      reply_error(c, wire::wire_error::invalid, "malformed PUT");
      close_conn(c.id);
      return false;
    }
    c.put_active = true;
    c.put_id = r->object_id;
    c.put_size = r->size;
    c.put_got = 0;
    c.put_error = caf::error{};
    auto p = cfg.store->begin(r->object_id, r->size, c.job_id);
    if (p)
      c.put = std::move(*p);
    else
      c.put_error = p.error();
    if (c.put_size == 0)
      finish_put(c);
    return true;
  }

  void finish_put(conn& c) {
    c.put_active = false;
    if (c.put) {
      c.put_error = cfg.store->commit(*c.put);
      c.put.reset();
    }
    if (c.put_error)
      reply_error(c, wire::wire_error::store_full, describe(c.put_error));
    else
      send_frame(c.fd, wire::encode(wire::msg::put_ok, wire::object_id_msg{c.put_id}));
    refresh_snapshot();
  }

  /// Serves a GET on a helper thread (an object may be large), then gives
  /// the connection back to the loop.
  bool on_get(conn& c, const wire::frame& f) {
    auto r = wire::decode<wire::object_id_msg>(f.payload);
    if (!r) {
      close_conn(c.id);
      return false;
    }
    auto obj = cfg.store->open(r->object_id);
    if (!obj) {
      reply_error(c, wire::wire_error::not_found,
                  "object " + r->object_id + " is not on node " + cfg.node_id);
      return true;
    }
    if (obj->second <= wire::inline_object_bytes) {
      auto err = stream_object(c.fd, r->object_id, obj->first, obj->second);
      ::close(obj->first);
      if (err) {
        close_conn(c.id);
        return false;
      }
      return true;
    }
    unwatch(c.fd);
    int sock = c.fd;
    auto cid = c.id;
    auto oid = r->object_id;
    set_blocking(sock, true);
    std::thread([this, sock, cid, oid, obj] {
      auto err = stream_object(sock, oid, obj->first, obj->second);
      ::close(obj->first);
      post([this, sock, cid, err] {
        if (err || !conns.count(cid)) {
          close_conn(cid);
          return;
        }
        set_blocking(sock, false);
        watch(sock, tag(tag_conn, cid));
      });
    }).detach();
    return false; // the helper owns the socket until it posts back
  }

  // -- leases ------------------------------------------------------------------

  std::vector<peer_capacity> peers_now(clock_type::time_point* at = nullptr) const {
    std::lock_guard<std::mutex> guard{mtx};
    if (at != nullptr)
      *at = peers_at;
    return peers;
  }

  bool on_lease(uint64_t id, wire::lease_request req) {
    auto& c = *conns.at(id);
    if (req.code.files.empty()) {
      send_frame(c.fd, wire::encode(wire::msg::refused,
                                    wire::refused{req.request_id,
                                                  static_cast<uint8_t>(wire::wire_error::invalid),
                                                  "the lease names no code to run"}));
      return true;
    }
    auto d = decide_lease(req.shape, req.label_selector, self_capacity(), peers_now(),
                          !req.spilled_from.empty());
    // The view of the cluster may predate a node that joined since (it comes
    // with the reply to the next resource report, which the demand below
    // triggers): wait for a newer one before calling the request infeasible.
    if (d.kind == lease_decision::infeasible)
      d = {lease_decision::queue, "", "", "checking whether a node can hold "
                                            + describe_shape(req.shape)};
    switch (d.kind) {
      case lease_decision::grant:
        grant(id, std::move(req));
        return false;
      case lease_decision::spill:
        send_frame(c.fd, wire::encode(wire::msg::spillback,
                                      wire::spillback{req.request_id, d.node_id, d.address}));
        return true;
      case lease_decision::infeasible:
        send_frame(c.fd, wire::encode(wire::msg::refused,
                                      wire::refused{req.request_id,
                                                    static_cast<uint8_t>(
                                                      wire::wire_error::infeasible),
                                                    d.reason}));
        return true;
      case lease_decision::queue:
        c.queued = true;
        send_frame(c.fd, wire::encode(wire::msg::queued,
                                      wire::queued{req.request_id, d.reason}));
        queue.push_back({id, std::move(req)});
        refresh_snapshot();
        return true;
    }
    return true;
  }

  /// Runs the queue in order: grant, spill or drop what can go now.
  void run_queue() {
    if (queue.empty())
      return;
    clock_type::time_point view_at;
    auto peers_copy = peers_now(&view_at);
    std::deque<queued_request> keep;
    auto pending = std::move(queue);
    queue.clear();
    for (auto& q : pending) {
      auto ci = conns.find(q.conn_id);
      if (ci == conns.end())
        continue;
      auto d = decide_lease(q.req.shape, q.req.label_selector, self_capacity(), peers_copy,
                            !q.req.spilled_from.empty());
      auto& c = *ci->second;
      if (d.kind == lease_decision::grant) {
        c.queued = false;
        grant(q.conn_id, std::move(q.req));
      } else if (d.kind == lease_decision::spill) {
        c.queued = false;
        send_frame(c.fd, wire::encode(wire::msg::spillback,
                                      wire::spillback{q.req.request_id, d.node_id,
                                                      d.address}));
      } else if (d.kind == lease_decision::infeasible && view_at > q.arrived) {
        c.queued = false;
        send_frame(c.fd, wire::encode(wire::msg::refused,
                                      wire::refused{q.req.request_id,
                                                    static_cast<uint8_t>(
                                                      wire::wire_error::infeasible),
                                                    d.reason}));
      } else {
        keep.push_back(std::move(q));
      }
    }
    queue = std::move(keep);
    rebalance();
    refresh_snapshot();
  }

  std::string code_key(const wire::lease_request& r) {
    std::string key = r.job_id;
    for (auto& f : r.code.files)
      key += "/" + f.hash;
    return key;
  }

  /// Hands the connection to a worker of the job with the shape reserved.
  void grant(uint64_t conn_id, wire::lease_request req) {
    auto ci = conns.find(conn_id);
    int fd = ci->second->fd;
    unwatch(fd);
    ci->second->fd = -1;
    conns.erase(ci);
    shared_puts->drop_conn(conn_id); // no PUT_COMMIT can come on a worker's socket
    auto lease_id = next_id++;
    auto cpu = req.shape.count("CPU") ? req.shape.at("CPU") : 0.0;
    pending_adopt pa{fd, lease_id, req.request_id,
                     static_cast<uint32_t>(std::max(1.0, std::ceil(cpu)))};
    auto& w = worker_for(req);
    leases[lease_id] = lease{req.shape, w.id};
    w.leases.insert(lease_id);
    if (w.ready)
      adopt(w, pa);
    else
      w.waiting.push_back(pa);
    refresh_snapshot();
  }

  void adopt(worker& w, const pending_adopt& pa) {
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
    auto i = leases.find(lease_id);
    if (i == leases.end())
      return;
    if (auto w = workers.find(i->second.worker_id); w != workers.end()) {
      w->second->leases.erase(lease_id);
      if (w->second->leases.empty())
        w->second->idle_since = clock_type::now();
    }
    leases.erase(i);
  }

  // -- workers -----------------------------------------------------------------

  worker& worker_for(const wire::lease_request& req) {
    auto key = code_key(req);
    if (auto i = worker_by_key.find(key); i != worker_by_key.end()) {
      auto& w = *workers.at(i->second);
      if (!w.exiting)
        return w;
      worker_by_key.erase(i);
    }
    auto w = std::make_unique<worker>();
    w->id = next_id++;
    w->key = key;
    w->job_id = req.job_id;
    auto& ref = *w;
    worker_by_key[key] = w->id;
    workers[w->id] = std::move(w);
    // Fetch the code (blocking: a helper thread), then start the process.
    auto files = req.code.files;
    auto wid = ref.id;
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
      post([this, wid, paths, err] {
        auto i = workers.find(wid);
        if (i == workers.end())
          return;
        if (err) {
          fail_worker(*i->second, "cannot fetch the job's code: " + describe(err));
          return;
        }
        spawn(*i->second, paths);
      });
    }).detach();
    return ref;
  }

  void spawn(worker& w, const std::vector<std::string>& paths) {
    int sv[2];
    if (::socketpair(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0, sv) != 0) {
      fail_worker(w, std::string{"socketpair: "} + std::strerror(errno));
      return;
    }
    std::string libs;
    for (std::size_t i = 1; i < paths.size(); ++i)
      libs += (libs.empty() ? "" : ":") + paths[i];
    std::vector<std::string> env;
    for (char** e = environ; e != nullptr && *e != nullptr; ++e) {
      std::string kv{*e};
      if (kv.rfind("RAYD_WORKER_", 0) == 0 || kv.rfind("RAYD_TOKEN", 0) == 0)
        continue;
      env.push_back(kv);
    }
    env.push_back("RAYD_WORKER_FD=3");
    env.push_back("RAYD_JOB_ID=" + w.job_id);
    env.push_back("RAYD_NODE_ID=" + cfg.node_id);
    env.push_back("RAYD_WORKER_LIBS=" + libs);
    auto log_dir = cfg.session_dir + "/workers";
    std::error_code ec;
    std::filesystem::create_directories(log_dir, ec);
    auto log = log_dir + "/worker-" + std::to_string(w.id) + ".log";
    posix_spawn_file_actions_t fa;
    posix_spawn_file_actions_init(&fa);
    posix_spawn_file_actions_adddup2(&fa, sv[1], 3);
    posix_spawn_file_actions_addopen(&fa, 0, "/dev/null", O_RDONLY, 0);
    posix_spawn_file_actions_addopen(&fa, 1, log.c_str(), O_WRONLY | O_CREAT | O_APPEND, 0640);
    posix_spawn_file_actions_adddup2(&fa, 1, 2);
    // rayd's own sockets (CAF's among them) must not live on in the worker:
    // a dead node would otherwise look alive to the head.
    posix_spawn_file_actions_addclosefrom_np(&fa, 4);
    posix_spawnattr_t attr;
    posix_spawnattr_init(&attr);
    sigset_t none, all;
    sigemptyset(&none);
    sigfillset(&all);
    posix_spawnattr_setsigmask(&attr, &none);
    posix_spawnattr_setsigdefault(&attr, &all);
    posix_spawnattr_setflags(&attr, POSIX_SPAWN_SETSIGMASK | POSIX_SPAWN_SETSIGDEF);
    std::vector<char*> argv{const_cast<char*>(paths[0].c_str()), nullptr};
    std::vector<char*> envp;
    for (auto& e : env)
      envp.push_back(e.data());
    envp.push_back(nullptr);
    pid_t pid = -1;
    int rc = ::posix_spawn(&pid, paths[0].c_str(), &fa, &attr, argv.data(), envp.data());
    posix_spawn_file_actions_destroy(&fa);
    posix_spawnattr_destroy(&attr);
    ::close(sv[1]);
    if (rc != 0) {
      ::close(sv[0]);
      fail_worker(w, "cannot start worker " + paths[0] + ": " + std::strerror(rc));
      return;
    }
    w.pid = pid;
    w.ctrl = sv[0];
    watch(w.ctrl, tag(tag_worker, w.id));
    spdlog::info("task server: started worker pid {} for job {} ({})", pid, w.job_id,
                 paths[0]);
  }

  /// The worker cannot serve: refuse what waits for it, forget it.
  void fail_worker(worker& w, const std::string& why) {
    spdlog::warn("task server: worker for job {}: {}", w.job_id, why);
    for (auto& pa : w.waiting) {
      set_blocking(pa.fd, true);
      send_frame(pa.fd, wire::encode(wire::msg::refused,
                                     wire::refused{pa.request_id,
                                                   static_cast<uint8_t>(
                                                     wire::wire_error::unavailable),
                                                   why}));
      ::close(pa.fd);
    }
    w.waiting.clear();
    remove_worker(w.id);
  }

  void remove_worker(uint64_t wid) {
    auto i = workers.find(wid);
    if (i == workers.end())
      return;
    auto& w = *i->second;
    for (auto lid : std::set<uint64_t>{w.leases})
      leases.erase(lid);
    for (int fd : w.fds)
      ::close(fd);
    for (auto& pa : w.waiting)
      ::close(pa.fd);
    if (w.ctrl >= 0) {
      unwatch(w.ctrl);
      ::close(w.ctrl);
    }
    if (auto k = worker_by_key.find(w.key); k != worker_by_key.end() && k->second == wid)
      worker_by_key.erase(k);
    workers.erase(i);
    run_queue();
    refresh_snapshot();
  }

  void on_worker_readable(uint64_t wid) {
    auto i = workers.find(wid);
    if (i == workers.end())
      return;
    auto& w = *i->second;
    char buf[16 * 1024];
    auto n = wire::recv_with_fds(w.ctrl, buf, sizeof buf, w.fds);
    if (!n || *n == 0) {
      int status = 0;
      pid_t r = ::waitpid(w.pid, &status, 0);
      if (!w.exiting)
        spdlog::warn("task server: worker pid {} of job {} {}", w.pid, w.job_id,
                     r == w.pid ? describe_status(status) : std::string{"vanished"});
      remove_worker(wid);
      return;
    }
    w.reader.feed(buf, *n);
    for (;;) {
      auto f = w.reader.next();
      if (!f) {
        spdlog::warn("task server: worker pid {} sent garbage; stopping it", w.pid);
        ::kill(w.pid, SIGKILL);
        return;
      }
      if (!*f)
        return;
      on_worker_frame(w, std::move(**f));
      if (!workers.count(wid))
        return;
    }
  }

  int pop_fd(worker& w) {
    if (w.fds.empty())
      return -1;
    int fd = w.fds.front();
    w.fds.pop_front();
    return fd;
  }

  void on_worker_frame(worker& w, wire::frame f) {
    switch (f.type) {
      case wire::msg::ready: {
        w.ready = true;
        auto waiting = std::move(w.waiting);
        w.waiting.clear();
        for (auto& pa : waiting)
          adopt(w, pa);
        return;
      }
      case wire::msg::lease_done: {
        auto r = wire::decode<wire::lease_done_msg>(f.payload);
        if (r)
          release_lease(r->lease_id);
        run_queue();
        refresh_snapshot();
        return;
      }
      case wire::msg::store: {
        int fd = pop_fd(w);
        auto r = wire::decode<wire::store_msg>(f.payload);
        if (!r || fd < 0) {
          if (fd >= 0)
            ::close(fd);
          return;
        }
        auto err = cfg.store->put_fd(r->object_id, fd, r->size, w.job_id);
        if (err)
          send_frame(w.ctrl, wire::encode(wire::msg::control_error,
                                          wire::object_error{r->object_id,
                                                             static_cast<uint8_t>(
                                                               wire::wire_error::store_full),
                                                             describe(err)}));
        else
          send_frame(w.ctrl, wire::encode(wire::msg::stored,
                                          wire::object_id_msg{r->object_id}));
        refresh_snapshot();
        return;
      }
      case wire::msg::fetch: {
        auto r = wire::decode<wire::fetch_msg>(f.payload);
        if (r)
          on_fetch(w, r->loc);
        return;
      }
      default:
        spdlog::warn("task server: unexpected {} from worker pid {}", wire::to_string(f.type),
                     w.pid);
    }
  }

  void answer_fetch(uint64_t wid, const std::string& oid, const caf::error& err) {
    auto i = workers.find(wid);
    if (i == workers.end())
      return;
    auto& w = *i->second;
    if (!err) {
      if (auto obj = cfg.store->open(oid)) {
        (void) wire::send_with_fds(w.ctrl,
                                   wire::encode(wire::msg::fetched,
                                                wire::object_header{oid, obj->second}),
                                   {obj->first});
        ::close(obj->first);
        return;
      }
    }
    send_frame(w.ctrl,
               wire::encode(wire::msg::control_error,
                            wire::object_error{oid,
                                               static_cast<uint8_t>(wire::wire_error::lost),
                                               err ? describe(err)
                                                   : "object " + oid + " is gone"}));
  }

  void on_fetch(worker& w, const wire::object_loc& loc) {
    if (cfg.store->contains(loc.object_id) || loc.node_id == cfg.node_id) {
      answer_fetch(w.id, loc.object_id,
                   cfg.store->contains(loc.object_id)
                     ? caf::error{}
                     : make_error(errc::not_found, "object " + loc.object_id
                                                     + " is no longer on node "
                                                     + cfg.node_id));
      return;
    }
    auto& waiting = pulls[loc.object_id];
    waiting.push_back(w.id);
    if (waiting.size() > 1)
      return;
    auto job = w.job_id;
    std::thread([this, loc, job] {
      auto err = pull_object(loc, cfg.token, job, *cfg.store);
      if (err)
        err = make_error(errc::not_found, "object " + loc.object_id + " could not be read "
                                            "from node " + loc.node_id + " (" + loc.address
                                            + "): " + describe(err));
      post([this, loc, err] {
        auto ws = std::move(pulls[loc.object_id]);
        pulls.erase(loc.object_id);
        for (auto wid : ws)
          answer_fetch(wid, loc.object_id, err);
        refresh_snapshot();
      });
    }).detach();
  }

  // -- the loop ------------------------------------------------------------------

  /// Fairness between jobs: a request that has waited a while, of a job
  /// holding fewer leases here than another job holds minus one, gets one of
  /// that job's leases (of a shape it fits in) asked back: the worker tells
  /// its driver, which sends no more tasks there and gives the lease back
  /// once its results are in. Shares converge to within one lease.
  void rebalance() {
    if (queue.empty())
      return;
    auto now = clock_type::now();
    std::map<std::string, int> held;
    // Only leases a running worker serves can be asked back.
    auto job_of = [this](const lease& l) -> const std::string* {
      auto w = workers.find(l.worker_id);
      return w == workers.end() || !w->second->ready ? nullptr : &w->second->job_id;
    };
    for (auto& [_, l] : leases)
      if (auto* job = job_of(l); job && !l.draining)
        ++held[*job];
    for (auto& q : queue) {
      if (now - q.arrived < fairness_delay)
        continue;
      uint64_t victim = 0;
      int most = 0;
      for (auto& [id, l] : leases) {
        auto* job = job_of(l);
        if (!job || l.draining || *job == q.req.job_id || !fits(q.req.shape, l.shape))
          continue;
        if (held[*job] > most) {
          most = held[*job];
          victim = id;
        }
      }
      if (victim == 0 || most <= held[q.req.job_id] + 1)
        continue;
      auto& l = leases.at(victim);
      l.draining = true;
      --held[*job_of(l)];
      ++held[q.req.job_id]; // as if it went to this request
      auto& w = *workers.at(l.worker_id);
      send_frame(w.ctrl, wire::encode(wire::msg::drain, wire::lease_done_msg{victim}));
    }
  }

  void housekeeping() {
    rebalance();
    auto now = clock_type::now();
    std::vector<uint64_t> stale;
    for (auto& [id, c] : conns)
      if (!c->authed && now - c->opened > handshake_timeout)
        stale.push_back(id);
    for (auto id : stale)
      close_conn(id);
    for (auto& [id, w] : workers) {
      if (w->ready && !w->exiting && w->leases.empty() && w->waiting.empty()
          && now - w->idle_since > cfg.idle_worker_timeout) {
        w->exiting = true;
        worker_by_key.erase(w->key);
        send_frame(w->ctrl, wire::encode_raw(wire::msg::exit, {}));
      }
    }
  }

  void accept_all() {
    for (;;) {
      int fd = ::accept4(cfg.socket.fd, nullptr, nullptr, SOCK_NONBLOCK | SOCK_CLOEXEC);
      if (fd < 0)
        return;
      int one = 1;
      ::setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof one);
      auto c = std::make_unique<conn>();
      c->id = next_id++;
      c->fd = fd;
      watch(fd, tag(tag_conn, c->id));
      conns[c->id] = std::move(c);
    }
  }

  void run() {
    epoll_event evs[64];
    auto last = clock_type::now();
    while (!quitting.load()) {
      int n = ::epoll_wait(epfd, evs, 64, 100);
      for (int i = 0; i < n; ++i) {
        auto kind = evs[i].data.u64 >> 56;
        auto id = evs[i].data.u64 & ((uint64_t{1} << 56) - 1);
        if (kind == tag_listener) {
          accept_all();
        } else if (kind == tag_event) {
          uint64_t v;
          [[maybe_unused]] auto r = ::read(event_fd, &v, sizeof v);
          std::vector<std::function<void()>> todo;
          {
            std::lock_guard<std::mutex> guard{mtx};
            todo.swap(posted);
          }
          for (auto& f : todo)
            f();
        } else if (kind == tag_conn) {
          on_conn_readable(id);
        } else if (kind == tag_worker) {
          on_worker_readable(id);
        }
      }
      if (clock_type::now() - last > 100ms) {
        last = clock_type::now();
        housekeeping();
      }
    }
  }
};

caf::expected<std::unique_ptr<task_server>> task_server::start(task_server_config cfg) {
  std::unique_ptr<task_server> ts{new task_server};
  ts->impl_ = std::make_unique<impl>();
  auto& d = *ts->impl_;
  d.cfg = std::move(cfg);
  d.shared_puts = std::make_unique<put_allocations>(*d.cfg.store);
  d.epfd = ::epoll_create1(EPOLL_CLOEXEC);
  d.event_fd = ::eventfd(0, EFD_CLOEXEC | EFD_NONBLOCK);
  if (d.epfd < 0 || d.event_fd < 0)
    return make_error(errc::unavailable, std::string{"task server: "} + std::strerror(errno));
  set_blocking(d.cfg.socket.fd, false);
  d.watch(d.cfg.socket.fd, tag(tag_listener, 0));
  d.watch(d.event_fd, tag(tag_event, 0));
  d.refresh_snapshot();
  d.thread = std::thread([&d] { d.run(); });
  return ts;
}

task_server::~task_server() {
  if (!impl_)
    return;
  impl_->quitting = true;
  impl_->post([] {});
  if (impl_->thread.joinable())
    impl_->thread.join();
  for (auto& [_, c] : impl_->conns)
    ::close(c->fd);
  for (auto& [_, w] : impl_->workers)
    if (w->ctrl >= 0)
      ::close(w->ctrl);
  ::close(impl_->cfg.socket.fd);
  ::close(impl_->epfd);
  ::close(impl_->event_fd);
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
  d->post([d] { d->run_queue(); });
}

} // namespace rayd::node
