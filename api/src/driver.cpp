// The driver core (docs/tasks.md): leases, dispatch, results, retries,
// objects. One instance per driver process, behind core::runtime.
//
// Threads: all state sits under one mutex. Network progress is made by
// whoever "drives": a caller blocked in get()/wait() polls the sockets
// itself (so a synchronous call costs one wake-up on this side, like a
// plain TCP round trip), and a background thread drives when work is
// outstanding and no caller has driven for a millisecond (so submitted
// tasks start without anyone waiting for them). Submitting never waits for
// the network: a TASK frame is written at once if the socket takes it.
//
// Task lifecycle in the driver:
//
//   submit ─► WAITING_DEPS ─(all argument objects ready)─► READY ─(a lease has room)─► INFLIGHT
//                 │ a dependency failed                    ▲ worker died: retry          │
//                 ▼                                        └─────────────────────────────┤
//               FAILED ◄─ infeasible / retries used up / the task threw ◄────────────────┤
//                                                                         result ─► DONE ┘

#include <fcntl.h>
#include <netdb.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <poll.h>
#include <signal.h>
#include <sys/eventfd.h>
#include <sys/prctl.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include <algorithm>
#include <atomic>
#include <cmath>
#include <condition_variable>
#include <cstdlib>
#include <deque>
#include <filesystem>
#include <fstream>
#include <map>
#include <memory>
#include <mutex>
#include <set>
#include <sstream>
#include <thread>
#include <unordered_map>

#include "cluster_connect.hpp"
#include "head_link.hpp"
#include "object_client.hpp"
#include "object_table.hpp"
#include "task_table.hpp"
#include "node_directory.hpp"
#include "task_events.hpp"

#include "common/archive.hpp"
#include "common/error.hpp"
#include "common/net.hpp"
#include "common/session.hpp"
#include "common/token.hpp"
#include "common/util.hpp"
#include "common/wire.hpp"
#include "rayd/core.hpp"
#include "rayd/errors.hpp"
#include "schemas/api_client.hpp"

namespace fs = std::filesystem;

namespace rayd::core {

namespace {

using clock_type = std::chrono::steady_clock;
using namespace std::chrono_literals;

/// Tasks in flight per leased thread before more leases are asked for.
constexpr std::size_t inflight_per_thread = 256;
/// Tasks that run shorter than this (on average, round trip included) are
/// pipelined: sent to a lease whose threads are all busy. Above it, the
/// round trip a pipelined task saves is a few percent of its run time.
constexpr double pipeline_below_us = 1000;
/// A lease request that broke without an answer, or found no node to ask,
/// is asked again after this; the pool's tasks fail (rayd::unavailable) only
/// when no lease could be had for `unreachable_limit` in a row.
constexpr auto request_retry_delay = 100ms;
constexpr auto unreachable_limit = 60s;
/// A lease without work for this long is given back.
constexpr auto lease_idle_timeout = 1000ms;
/// How long a caller-less background thread waits before driving.
constexpr auto background_delay = 1ms;

std::string shape_key(const std::map<std::string, double>& shape,
                      const std::map<std::string, std::string>& selector) {
  std::ostringstream out;
  for (auto& [k, v] : shape)
    out << k << '=' << v << ';';
  out << '|';
  for (auto& [k, v] : selector)
    out << k << '=' << v << ';';
  return out.str();
}

/// connect_tcp() with the reason in `why` and -1 on failure.
int connect_node(const std::string& address, std::string& why) {
  auto fd = connect_tcp(address);
  if (!fd) {
    why = describe(fd.error());
    return -1;
  }
  return *fd;
}

void set_nonblocking(int fd) {
  ::fcntl(fd, F_SETFL, ::fcntl(fd, F_GETFL) | O_NONBLOCK);
}

// -- the driver -------------------------------------------------------------------

struct lease_conn {
  uint64_t id = 0;
  int fd = -1;
  std::string pool;
  std::string node_id;
  std::string address;
  uint32_t threads = 1;
  wire::frame_reader reader;
  std::string out; // frames the socket did not take yet
  std::map<uint64_t, uint64_t> inflight; // wire task id → task seq
  uint64_t next_wire_id = 1;
  /// The node asked for the lease back (another job waits): no new tasks;
  /// given back once the ones in flight are answered.
  bool draining = false;
  clock_type::time_point idle_since = clock_type::now();
};

/// A lease being negotiated: LEASE sent, waiting for GRANTED / SPILLBACK /
/// QUEUED / REFUSED.
struct lease_request {
  uint64_t id = 0;
  int fd = -1;
  std::string pool;
  std::string address;
  std::string spilled_from;
  wire::frame_reader reader;
};

struct pool_t {
  std::string key;
  std::map<std::string, double> shape;
  std::map<std::string, std::string> selector;
  std::deque<uint64_t> ready; // task seqs
  std::vector<uint64_t> leases;
  uint64_t requesting = 0; // a lease_request id, 0 if none
  /// Mean run time (µs, moving average, as seen from here) of the pool's
  /// tasks that found a free thread; < 0 until one came back.
  double run_us = -1;
  /// A lease request broke without an answer: no new one before this.
  clock_type::time_point retry_at{};
  /// Since when no lease could be had (epoch while leases come).
  clock_type::time_point failing_since{};
};

/// The job id this driver reports as: RAYD_JOB_ID's (a driver started as a
/// job) or its own, with its random prefix.
std::string job_id_for(const std::string& prefix) {
  if (auto* j = std::getenv("RAYD_JOB_ID"); j && *j)
    return std::string{j} + "-" + prefix;
  return "driver-" + prefix;
}

class driver final : public runtime {
public:
  driver(const init_options& opts)
    : cluster_{connect_cluster(opts)},
      max_inline_put_bytes_{opts.max_inline_put_bytes},
      token_{cluster_.token},
      job_prefix_{random_hex(6)},
      job_id_{job_id_for(job_prefix_)},
      code_{cluster_.code},
      objects_client_{token_, job_id_},
      objects_{job_prefix_},
      nodes_{cluster_.home_id, cluster_.home_address} {
    nodes_.replace(cluster_.alive);
    event_fd_ = ::eventfd(0, EFD_CLOEXEC | EFD_NONBLOCK);
    events_ = std::make_unique<task_events>(job_prefix_);
    head_link::hooks hooks;
    hooks.collect = [this]() -> std::optional<task_events::report> {
      std::lock_guard<std::mutex> guard{mtx_};
      if (!events_->dirty())
        return std::nullopt;
      return events_->take();
    };
    hooks.nodes = [this](std::vector<node_directory::node> alive) {
      {
        std::lock_guard<std::mutex> guard{mtx_};
        nodes_.replace(alive);
      }
      bg_cv_.notify_one(); // pools waiting for a node may ask now
    };
    head_link_ = std::make_unique<head_link>(cluster_.api_address, token_, job_id_, std::move(hooks));
    background_ = std::thread([this] { background_loop(); });
  }

  ~driver() override {
    {
      std::lock_guard<std::mutex> guard{mtx_};
      quitting_ = true;
    }
    cv_.notify_all();
    bg_cv_.notify_all();
    wake();
    if (background_.joinable())
      background_.join();
    head_link_.reset(); // sends the last task events

    for (auto& [_, l] : leases_)
      ::close(l.fd);
    for (auto& [_, r] : requests_)
      ::close(r.fd);
    if (event_fd_ >= 0)
      ::close(event_fd_);
  }

  // -- runtime ----------------------------------------------------------------------

  object_id submit(const std::string& function, std::vector<arg> args,
                   const task_options& opts) override {
    std::unique_lock<std::mutex> lock{mtx_};
    auto id = objects_.new_id();
    auto& obj = objects_.create_pending(id, function);
    task_table::task t;
    t.seq = next_seq_++;
    t.function = function;
    t.result = id;
    t.max_retries = std::max(0, opts.max_retries);
    t.pool = shape_key(opts.resources, opts.label_selector);
    auto& pool = pools_[t.pool];
    if (pool.key.empty()) {
      pool.key = t.pool;
      pool.shape = opts.resources;
      pool.selector = opts.label_selector;
    }
    for (std::size_t i = 0; i < args.size(); ++i) {
      if (!args[i].is_ref)
        continue;
      bool waits = false;
      if (!objects_.pin(args[i].ref, t.seq, waits)) {
        for (std::size_t j = 0; j < i; ++j)
          if (args[j].is_ref)
            objects_.unpin(args[j].ref);
        object_table::fail(obj, "rayd::object_lost",
                           "argument object " + args[i].ref + " does not exist", "", true);
        return id;
      }
      if (waits)
        ++t.deps_missing;
    }
    t.args = std::move(args);
    auto& stored = tasks_.add(std::move(t));
    note(stored, task_events::pending, "");
    if (stored.state == task_table::ready)
      make_ready(stored.seq);
    return id;
  }

  object_id put(std::string bytes) override {
    std::unique_lock<std::mutex> lock{mtx_};
    auto id = objects_.new_id();
    if (bytes.size() <= std::min(max_inline_put_bytes_, wire::inline_object_bytes)) {
      objects_.create_value(id, std::move(bytes));
      return id;
    }
    objects_.create_pending(id, ""); // pending while it travels
    // To the home node, or while it is down to another node that is up.
    std::optional<wire::object_loc> loc;
    for (int attempt = 0; !loc; ++attempt) {
      auto address = nodes_.pick(clock_type::now());
      if (address.empty() || attempt == 3) {
        objects_.erase(id);
        throw object_store_full("rayd: put failed: no node of the cluster can be reached");
      }
      lock.unlock();
      loc = objects_client_.put(id, bytes, address);
      lock.lock();
      if (!loc) {
        nodes_.mark_down(address, clock_type::now());
        head_link_->want_nodes();
      }
    }
    auto& obj = objects_.slot(id);
    obj.state = object_table::entry::ready_stored;
    obj.loc = *loc;
    return id;
  }

  std::vector<std::string> get(const std::vector<object_id>& ids,
                               std::optional<std::chrono::milliseconds> timeout) override {
    auto deadline = timeout ? clock_type::now() + *timeout : clock_type::time_point::max();
    std::unique_lock<std::mutex> lock{mtx_};
    for (;;) {
      bool all = true;
      for (auto& id : ids) {
        auto* obj = objects_.find(id);
        if (obj == nullptr)
          throw object_lost("object " + id + " does not exist (freed or never created)");
        if (obj->state == object_table::entry::failed)
          throw_failure(*obj);
        if (obj->state == object_table::entry::pending)
          all = false;
      }
      if (all)
        break;
      if (!progress(lock, deadline))
        throw get_timeout("get: " + std::to_string(ids.size())
                          + " object(s) not ready within the timeout");
    }
    std::vector<std::string> out;
    out.reserve(ids.size());
    std::vector<std::pair<std::size_t, wire::object_loc>> remote;
    for (std::size_t i = 0; i < ids.size(); ++i) {
      auto* obj = objects_.find(ids[i]); // checked above, under the same lock
      if (obj == nullptr)
        throw object_lost("object " + ids[i] + " does not exist (freed or never created)");
      if (obj->state == object_table::entry::ready_value) {
        out.push_back(obj->value);
      } else {
        out.emplace_back();
        remote.emplace_back(i, obj->loc);
      }
    }
    lock.unlock();
    for (auto& [i, loc] : remote)
      out[i] = objects_client_.get(loc);
    return out;
  }

  std::vector<bool> wait(const std::vector<object_id>& ids, std::size_t num_returns,
                         std::optional<std::chrono::milliseconds> timeout) override {
    auto deadline = timeout ? clock_type::now() + *timeout : clock_type::time_point::max();
    std::unique_lock<std::mutex> lock{mtx_};
    for (;;) {
      std::vector<bool> ready(ids.size());
      std::size_t n = 0;
      for (std::size_t i = 0; i < ids.size(); ++i) {
        auto* obj = objects_.find(ids[i]);
        ready[i] = obj == nullptr || obj->state != object_table::entry::pending;
        n += ready[i] ? 1 : 0;
      }
      if (n >= num_returns || !progress(lock, deadline))
        return ready;
    }
  }

  void add_ref(const object_id& id) override {
    std::lock_guard<std::mutex> guard{mtx_};
    objects_.add_ref(id);
  }

  void release(const object_id& id) override {
    std::lock_guard<std::mutex> guard{mtx_};
    objects_.release(id);
  }

private:
  // -- tasks and objects ---------------------------------------------------------------

  [[noreturn]] void throw_failure(const object_table::entry& obj) {
    if (obj.lost)
      throw object_lost(obj.error_message);
    throw task_error(obj.function, obj.error_type, obj.error_message, obj.node_id);
  }

  /// An object became ready or failed: tasks waiting for it move on.
  /// REQUIRES: mtx_ held.
  void resolved(const object_id& id) {
    auto s = objects_.settle(id);
    for (auto seq : s.waiters) {
      if (s.failed) {
        auto* t = tasks_.find(seq);
        if (t == nullptr)
          continue;
        auto& obj = objects_.slot(t->result);
        if (obj.state == object_table::entry::pending) {
          object_table::fail(obj, s.error_type, s.error_message, s.node_id, s.lost);
          finish_task(seq);
        }
        continue;
      }
      if (tasks_.dep_ready(seq))
        make_ready(seq);
    }
    cv_.notify_all();
  }

  /// The task is over (its result object settled): its arguments are no
  /// longer pinned by it. REQUIRES: mtx_ held.
  void finish_task(uint64_t seq) {
    auto* tp = tasks_.find(seq);
    if (tp == nullptr)
      return;
    if (auto* o = objects_.find(tp->result)) {
      bool failed = o->state == object_table::entry::failed;
      note(*tp, failed ? task_events::failed : task_events::finished, o->node_id,
           failed ? o->error_type + ": " + o->error_message : std::string{});
    }
    auto t = tasks_.finish(seq);
    for (auto& a : t->args)
      if (a.is_ref)
        objects_.unpin(a.ref);
    resolved(t->result);
  }

  /// Fails a task that has not run (or cannot run again). REQUIRES: mtx_ held.
  void fail_task(uint64_t seq, std::string type, std::string why, std::string node,
                 bool lost = false) {
    auto* t = tasks_.find(seq);
    if (t == nullptr)
      return;
    object_table::fail(objects_.slot(t->result), std::move(type), std::move(why),
                       std::move(node), lost);
    finish_task(seq);
  }

  // -- task events (rayctl tasks) -----------------------------------------------------

  /// Records a state change. REQUIRES: mtx_ held.
  void note(task_table::task& t, task_events::state state, const std::string& node,
            const std::string& error = {}) {
    events_->record(t.seq, t.reported, state, t.function, static_cast<uint32_t>(t.attempt),
                    node, error);
  }

  // -- dispatch ---------------------------------------------------------------------

  /// A READY task joins its pool's queue. REQUIRES: mtx_ held.
  void make_ready(uint64_t seq) {
    auto* t = tasks_.find(seq);
    if (t == nullptr)
      return;
    auto p = pools_.find(t->pool);
    if (p == pools_.end())
      return;
    p->second.ready.push_back(seq);
    dispatch(p->second);
  }

  /// The TASK frame of `t`; false if an argument object is gone.
  bool to_wire(const task_table::task& t, uint64_t wire_id, wire::task& w) {
    w.task_id = wire_id;
    w.function = t.function;
    w.attempt = static_cast<uint32_t>(t.attempt);
    w.args.reserve(t.args.size());
    for (auto& a : t.args) {
      wire::task_arg wa;
      if (!a.is_ref) {
        wa.kind = wire::task_arg::value;
        wa.data = a.value;
      } else {
        auto* obj = objects_.find(a.ref);
        if (obj == nullptr)
          return false;
        if (obj->state == object_table::entry::ready_value) {
          wa.kind = wire::task_arg::value;
          wa.data = obj->value;
        } else {
          wa.kind = wire::task_arg::ref;
          wa.loc = obj->loc;
        }
      }
      w.args.push_back(std::move(wa));
    }
    return true;
  }

  /// Sends ready tasks of `pool` to its leases with room; asks for another
  /// lease when they are all full. REQUIRES: mtx_ held.
  void dispatch(pool_t& pool) {
    while (!pool.ready.empty()) {
      lease_conn* best = nullptr;
      for (auto lid : pool.leases) {
        auto& l = leases_.at(lid);
        if (l.draining || l.inflight.size() >= l.threads * inflight_per_thread)
          continue;
        if (best == nullptr || l.inflight.size() < best->inflight.size())
          best = &l;
      }
      if (best == nullptr)
        break;
      // Spread: a lease with a task per thread already gets more only if no
      // new lease is coming, or if the pool's tasks are short (pipelining
      // them is what makes many small tasks fast). A longer task waits here
      // for a free thread or a new lease, rather than queue behind a busy
      // one while other nodes have room; waiting, it is pending demand.
      bool behind = best->inflight.size() >= best->threads;
      if (behind) {
        if (pool.requesting == 0 && clock_type::now() >= pool.retry_at) {
          ask_lease(pool);
          // Asking may have failed the pool's tasks (no node for too long).
          if (pool.ready.empty())
            break;
        }
        bool short_tasks = pool.run_us >= 0 && pool.run_us < pipeline_below_us;
        if (!short_tasks)
          break;
      }
      auto seq = pool.ready.front();
      pool.ready.pop_front();
      auto* t = tasks_.find(seq);
      if (t == nullptr)
        continue;
      auto wid = best->next_wire_id;
      wire::task w;
      if (!to_wire(*t, wid, w)) {
        fail_task(seq, "rayd::object_lost", "an argument object of the task is gone", "", true);
        continue;
      }
      if (!tasks_.sent(seq, best->id, wid,
                       behind ? clock_type::time_point{} : clock_type::now()))
        continue;
      ++best->next_wire_id;
      best->inflight[wid] = seq;
      best->out += wire::encode(wire::msg::task, w);
      note(*t, task_events::running, best->node_id);
      // Write at once when nothing else is queued: the fast path.
      if (pool.ready.empty() || best->out.size() > 256 * 1024)
        flush(*best);
    }
    for (auto lid : pool.leases)
      if (!leases_.at(lid).out.empty())
        flush(leases_.at(lid));
    if (!pool.ready.empty() && pool.requesting == 0 && clock_type::now() >= pool.retry_at)
      ask_lease(pool);
  }

  /// Writes what the socket takes now; the rest waits for POLLOUT.
  void flush(lease_conn& l) {
    while (!l.out.empty()) {
      auto n = ::send(l.fd, l.out.data(), l.out.size(), MSG_NOSIGNAL | MSG_DONTWAIT);
      if (n > 0) {
        l.out.erase(0, static_cast<std::size_t>(n));
        continue;
      }
      if (n < 0 && errno == EINTR)
        continue;
      if (n < 0 && (errno == EAGAIN || errno == EWOULDBLOCK)) {
        wake(); // whoever drives must poll for POLLOUT
        bg_cv_.notify_one();
        return;
      }
      return; // broken: the reader sees EOF and retries the tasks
    }
  }

  /// Asks a node that is up for a lease: the home node, or while it is down
  /// another one. With none reachable, asks again in a moment.
  void ask_lease(pool_t& pool) {
    auto now = clock_type::now();
    std::string why = "no node of the cluster can be reached";
    for (std::size_t tries = 0; tries <= nodes_.size(); ++tries) {
      auto address = nodes_.pick(now);
      if (address.empty())
        break;
      if (open_request(pool, address, "", why))
        return;
      nodes_.mark_down(address, now);
      head_link_->want_nodes(); // it may be back soon on another port
    }
    if (!retry_later(pool))
      fail_pool(pool, "rayd::unavailable", why);
  }

  /// Sends a LEASE to the node at `address`. False (and `why`) if it cannot
  /// be reached.
  bool open_request(pool_t& pool, const std::string& address, const std::string& spilled_from,
                    std::string& why) {
    int fd = connect_node(address, why);
    if (fd < 0)
      return false;
    lease_request r;
    r.id = next_seq_++;
    r.fd = fd;
    r.pool = pool.key;
    r.address = address;
    r.spilled_from = spilled_from;
    wire::lease_request req;
    req.request_id = r.id;
    req.shape = pool.shape;
    req.label_selector = pool.selector;
    req.job_id = job_id_;
    req.code = code_;
    req.spilled_from = spilled_from;
    auto hello = wire::encode(wire::msg::hello,
                              wire::hello{wire::magic, token_, "driver", job_id_});
    if (wire::write_all(fd, hello + wire::encode(wire::msg::lease, req))) {
      ::close(fd);
      why = "node " + address + " closed the connection";
      return false;
    }
    set_nonblocking(fd);
    pool.requesting = r.id;
    requests_.emplace(r.id, std::move(r));
    wake();
    bg_cv_.notify_one(); // the answer must be read even if nobody calls get()
    return true;
  }

  /// No lease came of a request (the node died, spilled to a node that
  /// died, or handed it to a worker that was exiting; no task was sent on
  /// it): true if the pool asks again in a moment, false once no lease
  /// could be had for `unreachable_limit` (then its tasks fail).
  bool retry_later(pool_t& pool) {
    auto now = clock_type::now();
    if (pool.failing_since == clock_type::time_point{})
      pool.failing_since = now;
    if (now - pool.failing_since > unreachable_limit) {
      pool.failing_since = {};
      return false;
    }
    pool.retry_at = now + request_retry_delay;
    bg_cv_.notify_one();
    return true;
  }

  /// Fails every task waiting in the pool (no lease can be had).
  void fail_pool(pool_t& pool, const std::string& type, const std::string& why) {
    auto ready = std::move(pool.ready);
    pool.ready.clear();
    for (auto seq : ready)
      fail_task(seq, type, why, "");
  }

  /// A lease socket broke: its worker or node died. Retry its tasks.
  void lease_lost(uint64_t lid, const std::string& why) {
    auto it = leases_.find(lid);
    if (it == leases_.end())
      return;
    auto l = std::move(it->second);
    leases_.erase(it);
    ::close(l.fd);
    auto& pool = pools_.at(l.pool);
    pool.leases.erase(std::remove(pool.leases.begin(), pool.leases.end(), lid),
                      pool.leases.end());
    std::vector<uint64_t> retry;
    for (auto& [wid, seq] : l.inflight) {
      auto* t = tasks_.find(seq);
      if (t == nullptr || t->state != task_table::inflight)
        continue;
      if (tasks_.lost(seq)) {
        note(*t, task_events::pending, "");
        retry.push_back(seq);
      } else {
        fail_task(seq, "rayd::worker_died",
                  "the worker running it died (" + why + ") and its "
                    + std::to_string(t->max_retries) + " retries are used up",
                  l.node_id);
      }
    }
    for (auto i = retry.rbegin(); i != retry.rend(); ++i)
      pool.ready.push_front(*i);
    if (!pool.ready.empty())
      dispatch(pool);
  }

  // -- frames ------------------------------------------------------------------------

  void on_result(lease_conn& l, const wire::task_result& r) {
    auto it = l.inflight.find(r.task_id);
    if (it == l.inflight.end())
      return;
    auto seq = it->second;
    l.inflight.erase(it);
    if (l.inflight.empty())
      l.idle_since = clock_type::now();
    auto* t = tasks_.find(seq);
    if (t == nullptr)
      return;
    auto pit = pools_.find(l.pool);
    if (t->sent != clock_type::time_point{} && pit != pools_.end()) {
      auto& pool = pit->second;
      double us = std::chrono::duration<double, std::micro>(clock_type::now() - t->sent).count();
      pool.run_us = pool.run_us < 0 ? us : 0.8 * pool.run_us + 0.2 * us;
    }
    auto& obj = objects_.slot(t->result);
    switch (r.kind) {
      case wire::task_result::value:
        obj.state = object_table::entry::ready_value;
        obj.value = r.data;
        break;
      case wire::task_result::stored:
        obj.state = object_table::entry::ready_stored;
        obj.loc = r.loc;
        break;
      default:
        object_table::fail(obj, r.error_type, r.error_message, r.node_id,
                           r.error_type == "rayd::object_lost");
    }
    obj.node_id = r.node_id;
    finish_task(seq);
    // Room on this lease again: tasks waiting in its pool may go.
    if (pit != pools_.end() && !pit->second.ready.empty())
      dispatch(pit->second);
  }

  /// Reads what arrived on a lease. False when it broke.
  bool read_lease(lease_conn& l) {
    char buf[256 * 1024];
    for (;;) {
      auto n = ::recv(l.fd, buf, sizeof buf, MSG_DONTWAIT);
      if (n > 0) {
        l.reader.feed(buf, static_cast<std::size_t>(n));
        if (static_cast<std::size_t>(n) < sizeof buf)
          break;
        continue;
      }
      if (n < 0 && errno == EINTR)
        continue;
      if (n < 0 && (errno == EAGAIN || errno == EWOULDBLOCK))
        break;
      return false;
    }
    for (;;) {
      auto f = l.reader.next();
      if (!f)
        return false;
      if (!*f)
        return true;
      if ((*f)->type == wire::msg::drain) {
        l.draining = true;
        continue;
      }
      if ((*f)->type != wire::msg::result)
        return false;
      auto r = wire::decode<wire::task_result>((*f)->payload);
      if (!r)
        return false;
      on_result(l, *r);
    }
  }

  void on_lease_reply(lease_request& r, const wire::frame& f) {
    auto& pool = pools_.at(r.pool);
    auto done = [&] {
      if (pool.requesting == r.id)
        pool.requesting = 0;
    };
    switch (f.type) {
      case wire::msg::welcome:
        return;
      case wire::msg::queued:
        return; // keep waiting; the node counts us as demand
      case wire::msg::granted: {
        auto g = wire::decode<wire::granted>(f.payload);
        done();
        pool.failing_since = {};
        if (g)
          nodes_.learn(g->node_id, r.address);
        lease_conn l;
        l.id = next_seq_++;
        l.fd = r.fd;
        l.pool = r.pool;
        l.address = r.address;
        l.node_id = g ? g->node_id : "";
        l.threads = g ? std::max<uint32_t>(1, g->threads) : 1;
        r.fd = -1;
        if (r.reader.buffered() > 0) { // a result cannot precede our tasks
          ::close(l.fd);
          return;
        }
        if (pool.ready.empty())
          l.idle_since = clock_type::now();
        pool.leases.push_back(l.id);
        // Results this job leaves on that node are freed when our session
        // with it closes: make sure there is one.
        if (sessions_open_.insert(l.address).second) {
          sessions_wanted_.push_back(l.address);
          bg_cv_.notify_one();
        }
        leases_.emplace(l.id, std::move(l));
        // The node granted one lease; if work still waits, ask for more.
        dispatch(pool);
        return;
      }
      case wire::msg::spillback: {
        auto s = wire::decode<wire::spillback>(f.payload);
        done();
        if (!s || pool.ready.empty())
          return;
        nodes_.learn(s->node_id, s->address);
        if (std::string why; !open_request(pool, s->address, r.address, why)) {
          // The node spilled to may have died without the other knowing.
          nodes_.mark_down(s->address, clock_type::now());
          if (!retry_later(pool))
            fail_pool(pool, "rayd::unavailable", why);
        }
        return;
      }
      case wire::msg::refused:
      case wire::msg::error: {
        done();
        std::string why = "the lease was refused";
        std::string type = "rayd::unavailable";
        bool transient = false;
        if (auto x = wire::decode<wire::refused>(f.payload); x && f.type == wire::msg::refused) {
          why = x->reason;
          if (x->code == static_cast<uint8_t>(wire::wire_error::infeasible))
            type = "rayd::infeasible";
          // The node could not start a worker now (e.g. the head holding the
          // code is restarting): ask again rather than fail the tasks.
          transient = x->code == static_cast<uint8_t>(wire::wire_error::unavailable);
        } else if (auto e = wire::decode<wire::error_msg>(f.payload)) {
          why = e->message;
        }
        if (!transient || !retry_later(pool))
          fail_pool(pool, type, why);
        return;
      }
      default:
        done();
        fail_pool(pool, "rayd::unavailable",
                  std::string{"unexpected "} + wire::to_string(f.type) + " from a node");
    }
  }

  /// Reads a pending lease request's socket. False when it is finished
  /// (granted, spilled, refused, or broken).
  bool read_request(lease_request& r) {
    char buf[4096];
    auto n = ::recv(r.fd, buf, sizeof buf, MSG_DONTWAIT);
    if (n == 0 || (n < 0 && errno != EAGAIN && errno != EINTR)) {
      auto& pool = pools_.at(r.pool);
      if (pool.requesting == r.id)
        pool.requesting = 0;
      if (!retry_later(pool))
        fail_pool(pool, "rayd::unavailable", "node " + r.address + " closed the connection");
      return false;
    }
    if (n > 0)
      r.reader.feed(buf, static_cast<std::size_t>(n));
    for (;;) {
      auto f = r.reader.next();
      if (!f) {
        auto& pool = pools_.at(r.pool);
        if (pool.requesting == r.id)
          pool.requesting = 0;
        fail_pool(pool, "rayd::unavailable", "node " + r.address + " sent garbage");
        return false;
      }
      if (!*f)
        return true;
      on_lease_reply(r, **f);
      if (r.fd < 0 || pools_.at(r.pool).requesting != r.id)
        return false;
    }
  }

  // -- driving ------------------------------------------------------------------------

  void wake() {
    uint64_t one = 1;
    [[maybe_unused]] auto n = ::write(event_fd_, &one, sizeof one);
  }

  bool outstanding() const {
    if (!requests_.empty())
      return true;
    for (auto& [_, l] : leases_)
      if (!l.inflight.empty() || !l.out.empty())
        return true;
    return false;
  }

  /// One round of network progress, or a wait on another driver's progress.
  /// False once `deadline` passed. REQUIRES: `lock` holds mtx_.
  bool progress(std::unique_lock<std::mutex>& lock, clock_type::time_point deadline) {
    if (clock_type::now() >= deadline)
      return false;
    if (driving_) {
      cv_.wait_until(lock, std::min(deadline, clock_type::now() + 50ms));
      return true;
    }
    drive_once(lock, deadline);
    return true;
  }

  /// Polls every socket once (blocking up to `deadline`) and handles what
  /// arrived. REQUIRES: `lock` holds mtx_ and nobody else drives.
  void drive_once(std::unique_lock<std::mutex>& lock, clock_type::time_point deadline) {
    driving_ = true;
    std::vector<pollfd> fds;
    std::vector<std::pair<int, uint64_t>> who; // 0 lease, 1 request, 2 event
    for (auto& [id, l] : leases_) {
      fds.push_back({l.fd, static_cast<short>(POLLIN | (l.out.empty() ? 0 : POLLOUT)), 0});
      who.emplace_back(0, id);
    }
    for (auto& [id, r] : requests_) {
      fds.push_back({r.fd, POLLIN, 0});
      who.emplace_back(1, id);
    }
    fds.push_back({event_fd_, POLLIN, 0});
    who.emplace_back(2, 0);
    auto now = clock_type::now();
    int timeout = deadline == clock_type::time_point::max()
                    ? 200
                    : static_cast<int>(std::clamp<int64_t>(
                      std::chrono::duration_cast<std::chrono::milliseconds>(deadline - now)
                        .count(),
                      0, 200));
    lock.unlock();
    int n = ::poll(fds.data(), fds.size(), timeout);
    lock.lock();
    driving_ = false;
    if (n > 0) {
      for (std::size_t i = 0; i < fds.size(); ++i) {
        if (fds[i].revents == 0)
          continue;
        auto [kind, id] = who[i];
        if (kind == 2) {
          uint64_t v;
          [[maybe_unused]] auto r = ::read(event_fd_, &v, sizeof v);
        } else if (kind == 0) {
          auto it = leases_.find(id);
          if (it == leases_.end())
            continue;
          if (fds[i].revents & POLLOUT)
            flush(it->second);
          if ((fds[i].revents & (POLLIN | POLLHUP | POLLERR)) && !read_lease(it->second))
            lease_lost(id, "connection to node " + it->second.address + " lost");
        } else {
          auto it = requests_.find(id);
          if (it == requests_.end())
            continue;
          if (!read_request(it->second)) {
            if (it->second.fd >= 0)
              ::close(it->second.fd);
            requests_.erase(it);
          }
        }
      }
    }
    housekeeping();
    cv_.notify_all();
  }

  /// Gives back idle leases, cancels lease requests nobody needs, sends
  /// queued FREEs. REQUIRES: mtx_ held.
  void housekeeping() {
    auto now = clock_type::now();
    std::vector<uint64_t> idle;
    for (auto& [id, l] : leases_)
      if (l.inflight.empty() && l.out.empty()
          && (l.draining
              || (pools_.at(l.pool).ready.empty() && now - l.idle_since > lease_idle_timeout)))
        idle.push_back(id);
    for (auto id : idle) {
      auto& l = leases_.at(id);
      ::close(l.fd); // the worker sees EOF and gives the resources back
      auto& pool = pools_.at(l.pool);
      pool.leases.erase(std::remove(pool.leases.begin(), pool.leases.end(), id),
                        pool.leases.end());
      leases_.erase(id);
    }
    for (auto& [_, pool] : pools_) // a lease request broke: ask again
      if (!pool.ready.empty() && pool.requesting == 0 && now >= pool.retry_at)
        dispatch(pool);
    for (auto it = requests_.begin(); it != requests_.end();) {
      auto& pool = pools_.at(it->second.pool);
      if (pool.ready.empty() && pool.requesting == it->first) {
        pool.requesting = 0;
        ::close(it->second.fd);
        it = requests_.erase(it);
      } else {
        ++it;
      }
    }
    if (objects_.has_frees())
      for (auto& loc : objects_.take_frees())
        free_later_.push_back(loc);
  }

  /// Drives when work is outstanding and no caller has driven for a
  /// millisecond; sends FREEs. Woken by bg_cv_ (lease requests, full
  /// sockets, shutdown) — never per task, so a synchronous loop costs it
  /// nothing.
  void background_loop() {
    std::unique_lock<std::mutex> lock{mtx_};
    while (!quitting_) {
      if (!sessions_wanted_.empty()) {
        auto wanted = std::move(sessions_wanted_);
        sessions_wanted_.clear();
        lock.unlock();
        for (auto& address : wanted)
          objects_client_.open(address);
        lock.lock();
        continue;
      }
      if (!free_later_.empty()) {
        // An object may have been copied to any node that ran a task on it
        // (pulled there): every node this driver works with hears the FREE.
        std::map<std::string, std::vector<std::string>> by_node;
        for (auto& loc : free_later_) {
          by_node[loc.address].push_back(loc.object_id);
          for (auto& address : sessions_open_)
            if (address != loc.address)
              by_node[address].push_back(loc.object_id);
        }
        free_later_.clear();
        lock.unlock();
        for (auto& [address, ids] : by_node)
          objects_client_.free(address, std::move(ids));
        lock.lock();
        continue;
      }
      if (!outstanding()) {
        bg_cv_.wait_for(lock, 250ms);
        if (!quitting_ && !driving_ && !outstanding())
          housekeeping();
        continue;
      }
      if (driving_) {
        bg_cv_.wait_for(lock, 5ms);
        continue;
      }
      // Let a caller in get() drive first: it reacts faster.
      bg_cv_.wait_for(lock, background_delay);
      if (quitting_ || driving_ || !outstanding())
        continue;
      drive_once(lock, clock_type::now() + 200ms);
    }
  }

  // -- state ---------------------------------------------------------------------------

  cluster_connection cluster_; // first: the embedded head outlives the rest
  const std::size_t max_inline_put_bytes_;
  const std::string token_;
  const std::string job_prefix_;
  const std::string job_id_;
  const wire::code_ref code_;
  int event_fd_ = -1;

  object_client objects_client_; // thread-safe on its own; used without mtx_

  std::mutex mtx_;
  std::condition_variable cv_;    // callers waiting for another's progress
  std::condition_variable bg_cv_; // the background thread
  bool driving_ = false;
  bool quitting_ = false;
  uint64_t next_seq_ = 1;
  object_table objects_;
  task_table tasks_;
  std::map<std::string, pool_t> pools_;
  std::map<uint64_t, lease_conn> leases_;
  std::map<uint64_t, lease_request> requests_;
  std::vector<wire::object_loc> free_later_;
  std::set<std::string> sessions_open_;
  std::vector<std::string> sessions_wanted_;
  node_directory nodes_;
  std::unique_ptr<task_events> events_;
  std::unique_ptr<head_link> head_link_; // stopped before the state above goes
  std::thread background_;
};

std::mutex runtime_mtx;
std::unique_ptr<driver> the_runtime;

} // namespace

void start(const init_options& opts) {
  if (auto* fd = std::getenv("RAYD_WORKER_FD"); fd && *fd)
    run_worker(std::atoi(fd));
  std::lock_guard<std::mutex> guard{runtime_mtx};
  if (the_runtime)
    throw error("rayd: init() was called twice (call shutdown() first)");
  ::signal(SIGPIPE, SIG_IGN);
  the_runtime = std::make_unique<driver>(opts);
}

runtime& current() {
  std::lock_guard<std::mutex> guard{runtime_mtx};
  if (!the_runtime)
    throw std::logic_error("rayd: not initialized (call rayd::init() first)");
  return *the_runtime;
}

bool running() {
  std::lock_guard<std::mutex> guard{runtime_mtx};
  return the_runtime != nullptr;
}

void stop() {
  std::unique_ptr<driver> r;
  {
    std::lock_guard<std::mutex> guard{runtime_mtx};
    r = std::move(the_runtime);
  }
  r.reset();
}

} // namespace rayd::core
