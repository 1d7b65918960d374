// The driver (docs/tasks.md, "The driver"): one instance per driver process,
// behind core::runtime. It only wires its parts, each with one job:
//
//   cluster_connect  finds the cluster (or starts an embedded head), ships code
//   node_directory   the nodes it knows; where a lease or a put goes next
//   task_table       the tasks not finished, and their lifecycle
//   object_table     the objects it owns: references, pins, waiters, frees
//   lease_pool       leases per shape: which lease a task goes to, when to ask
//                    for more, when to give one back
//   node_link        sockets to nodes and workers: LEASE, TASK/RESULT frames, poll
//   object_client    GET / PUT / FREE of stored objects on nodes
//   task_events      task state changes for `rayctl tasks`
//   head_link        its own thread: task events to the head, the node list back
//   actor_caller     actor calls: queued in call order, sent straight to the
//                    actor's process, retried or failed as the GCS says
//   actor_directory  its own threads: creates and lookups at the GCS actor manager
//
// Threads: the tables, the pool and the directory sit under one mutex
// (mtx_). Network progress is made by whoever "drives": a caller blocked in
// get()/wait() polls the sockets itself (so a synchronous call costs one
// wake-up on this side, like a plain TCP round trip), and a background
// thread drives when work is outstanding and no caller has driven for a
// millisecond (so submitted tasks start without anyone waiting for them).
// Submitting never waits for the network: a TASK frame is written at once if
// the socket takes it. object_client calls (blocking I/O) and head_link's
// thread run without mtx_.
//
// Failure rules: a node's death (the head's included) costs time, not
// tasks: a lease that breaks has its in-flight tasks retried (max_retries),
// a lease request that cannot reach its node goes to another live node, and
// only a pool that got no lease for 60 s fails its waiting tasks
// (rayd::unavailable). Nothing here reads a table with at(): an id a peer's
// death removed is absent, not an exception.

#include <signal.h>
#include <unistd.h>

#include <sys/socket.h>

#include <algorithm>
#include <condition_variable>
#include <limits>
#include <cstdio>
#include <cstdlib>
#include <map>
#include <memory>
#include <mutex>
#include <optional>
#include <set>
#include <string>
#include <thread>
#include <vector>

#include "actor_caller.hpp"
#include "actor_directory.hpp"
#include "client_runtime.hpp"
#include "cluster_connect.hpp"
#include "hosted_driver.hpp"
#include "head_link.hpp"
#include "lease_pool.hpp"
#include "node_directory.hpp"
#include "node_link.hpp"
#include "object_client.hpp"
#include "object_table.hpp"
#include "task_events.hpp"
#include "task_table.hpp"

#include "common/error.hpp"
#include "common/util.hpp"
#include "common/wire.hpp"
#include "rayd/actor_registry.hpp"
#include "rayd/core.hpp"
#include "rayd/errors.hpp"

namespace rayd::core {

namespace {

using clock_type = std::chrono::steady_clock;
using namespace std::chrono_literals;

/// How long a caller-less background thread waits before driving.
constexpr auto background_delay = 1ms;

// -- the driver -------------------------------------------------------------------

/// The job id this driver reports as: RAYD_JOB_ID's (a driver started as a
/// job) or its own, with its random prefix.
std::string job_id_for(const std::string& prefix) {
  if (auto* j = std::getenv("RAYD_JOB_ID"); j && *j)
    return std::string{j} + "-" + prefix;
  return "driver-" + prefix;
}

class driver final : public hosted_runtime, private actor_caller::host {
public:
  /// An in-cluster driver (`hosted` null), or a remote client's on the head.
  driver(const init_options& opts, const hosted_options* hosted = nullptr)
    : cluster_{connect_cluster(opts, hosted != nullptr ? &hosted->code : nullptr)},
      max_inline_put_bytes_{opts.max_inline_put_bytes},
      token_{cluster_.token},
      job_prefix_{random_hex(6)},
      job_id_{hosted != nullptr ? hosted->job_id : job_id_for(job_prefix_)},
      code_{cluster_.code},
      objects_client_{token_, job_id_},
      objects_{job_prefix_},
      nodes_{cluster_.home_id, cluster_.home_address},
      events_{job_prefix_},
      caller_{*this, token_, job_id_} {
    nodes_.replace(cluster_.alive);
    head_link::hooks hooks;
    hooks.dirty = [this] {
      std::lock_guard<std::mutex> guard{mtx_};
      return events_.dirty();
    };
    hooks.collect = [this]() -> std::optional<task_events::report> {
      std::lock_guard<std::mutex> guard{mtx_};
      if (!events_.dirty())
        return std::nullopt;
      return events_.take();
    };
    hooks.nodes = [this](std::vector<node_directory::node> alive) {
      {
        std::lock_guard<std::mutex> guard{mtx_};
        nodes_.replace(alive);
      }
      bg_cv_.notify_one(); // pools waiting for a node may ask now
    };
    head_link_ =
      std::make_unique<head_link>(cluster_.api_address, token_, job_id_, std::move(hooks));
    actor_directory::hooks ahooks;
    ahooks.created = [this](std::vector<actor_info> rows) {
      std::lock_guard<std::mutex> guard{mtx_};
      caller_.on_created(rows);
    };
    ahooks.rows = [this](std::vector<actor_info> rows) {
      std::lock_guard<std::mutex> guard{mtx_};
      caller_.on_actor_rows(rows);
    };
    directory_ =
      std::make_unique<actor_directory>(cluster_.api_address, token_, std::move(ahooks));
    // A session with the home node from the start: when this process ends
    // (even by SIGKILL) the node sees it go and reports the job gone, and
    // the job's non-detached actors die (docs/actors.md).
    if (!cluster_.home_address.empty() && sessions_open_.insert(cluster_.home_address).second)
      sessions_wanted_.push_back(cluster_.home_address);
    background_ = std::thread([this] { background_loop(); });
  }

  ~driver() override {
    {
      std::lock_guard<std::mutex> guard{mtx_};
      quitting_ = true;
    }
    cv_.notify_all();
    bg_cv_.notify_all();
    link_.wake();
    if (background_.joinable())
      background_.join();
    directory_.reset();
    head_link_.reset(); // sends the last task events

    for (auto& [_, l] : leases_.leases())
      ::close(l.fd);
    for (auto& [_, r] : leases_.requests())
      ::close(r.fd);
  }

  // -- runtime ----------------------------------------------------------------------

  object_id submit(const std::string& function, std::vector<arg> args,
                   const task_options& opts) override {
    std::unique_lock<std::mutex> lock{mtx_};
    task_table::task t;
    t.max_retries = std::max(0, opts.max_retries);
    t.pool = leases_.pool_for(opts.resources, opts.label_selector).key;
    task_table::task* stored = nullptr;
    auto id = add_task(std::move(t), function, std::move(args), stored);
    if (stored != nullptr && stored->state == task_table::ready)
      make_ready(stored->seq);
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
      try {
        loc = objects_client_.put(id, bytes, address);
      } catch (...) {
        lock.lock();
        objects_.erase(id); // never handed out
        throw;
      }
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

  /// A large value is written straight into the home node's store when it
  /// is on this host (api/src/shared_put.hpp); else as put() does.
  object_id put_packed(std::size_t size, const std::function<void(char*)>& fill) override {
    if (size > std::min(max_inline_put_bytes_, wire::inline_object_bytes)
        && objects_client_.in_place_usable())
      if (auto id = put_at_home(size, fill))
        return *id;
    return runtime::put_packed(size, fill);
  }

  object_id put_in_store(std::size_t size, const std::function<void(char*)>& fill) override {
    if (!objects_client_.in_place_usable())
      throw object_store_full("rayd: cannot store " + std::to_string(size)
                              + " bytes: the home node's store cannot be written in place");
    auto id = put_at_home(size, fill);
    if (!id)
      throw object_store_full("rayd: no node of the cluster can store " + std::to_string(size)
                              + " bytes now");
    return *id;
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

  // -- hosted_runtime (a remote client's session) -----------------------------------

  std::optional<std::size_t> stored_size(const object_id& id) override {
    std::lock_guard<std::mutex> guard{mtx_};
    auto* obj = objects_.find(id);
    if (obj == nullptr || obj->state != object_table::entry::ready_stored)
      return std::nullopt;
    return obj->loc.size;
  }

  void read_stored(const object_id& id,
                   const std::function<void(std::size_t, std::string_view)>& sink) override {
    wire::object_loc loc;
    {
      std::lock_guard<std::mutex> guard{mtx_};
      auto* obj = objects_.find(id);
      if (obj == nullptr || obj->state != object_table::entry::ready_stored)
        throw object_lost("object " + id + " is not in an object store");
      loc = obj->loc;
    }
    objects_client_.get_to(loc, sink);
  }

  // -- actors (docs/actors.md) -----------------------------------------------------

  actor_id create_actor(const std::string& class_name, std::vector<std::string> args,
                        const actor_options& opts) override {
    actor_create_request r;
    r.actor_id = random_hex(10);
    r.name = opts.name;
    r.ray_namespace = opts.ray_namespace;
    r.class_name = class_name;
    r.owner_job = job_id_;
    r.detached = opts.detached;
    r.get_if_exists = opts.get_if_exists;
    r.max_restarts = opts.max_restarts;
    r.max_task_retries = opts.max_task_retries;
    r.max_concurrency = opts.max_concurrency;
    r.resources = opts.resources;
    r.label_selector = opts.label_selector;
    r.args = std::move(args);
    for (auto& f : code_.files)
      r.code.push_back({f.hash, f.name});
    if (r.name.empty()) {
      auto id = r.actor_id;
      {
        std::lock_guard<std::mutex> guard{mtx_};
        caller_.creating(id);
      }
      directory_->create_async(std::move(r));
      return id;
    }
    auto name = r.name;
    auto row = directory_->create(std::move(r));
    if (!row)
      throw error("rayd::actor: cannot create actor '" + name + "': " + describe(row.error()));
    std::lock_guard<std::mutex> guard{mtx_};
    caller_.want_actor(row->actor_id);
    return row->actor_id;
  }

  object_id call_actor(const actor_id& actor, const std::string& method,
                       std::vector<arg> args) override {
    std::unique_lock<std::mutex> lock{mtx_};
    task_table::task t;
    t.actor = actor;
    t.max_retries = 0; // set from the actor's max_task_retries when sent
    task_table::task* stored = nullptr;
    auto id = add_task(std::move(t), method, std::move(args), stored);
    if (stored != nullptr)
      caller_.call(actor, stored->seq);
    return id;
  }

  actor_found get_actor(const std::string& name, const std::string& ns) override {
    auto row = directory_->get(name, ns);
    if (!row)
      throw error("rayd::get_actor: no live actor named '" + name + "' in namespace '"
                  + (ns.empty() ? std::string{"default"} : ns) + "': " + describe(row.error()));
    std::lock_guard<std::mutex> guard{mtx_};
    caller_.want_actor(row->actor_id);
    return {row->actor_id, row->class_name};
  }

  void kill_actor(const actor_id& actor, bool no_restart) override {
    auto row = directory_->kill(actor, no_restart, "job " + job_id_);
    if (!row)
      throw error("rayd::kill: cannot kill actor " + actor + ": " + describe(row.error()));
    std::lock_guard<std::mutex> guard{mtx_};
    caller_.on_actor_rows({*row});
  }

private:
  // -- actor_caller::host (every call under mtx_) ---------------------------------

  task_table& tasks() override {
    return tasks_;
  }
  object_table& objects() override {
    return objects_;
  }
  void wake() override {
    link_.wake();
    bg_cv_.notify_one();
  }
  void want(const actor_id& id) override {
    directory_->want(id);
  }

  // -- tasks and objects ---------------------------------------------------------------

  [[noreturn]] void throw_failure(const object_table::entry& obj) {
    if (obj.lost)
      throw object_lost(obj.error_message);
    if (obj.error_type == "rayd::actor_died")
      throw actor_died_error(obj.function, obj.error_type, obj.error_message, obj.node_id);
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
  void finish_task(uint64_t seq) override {
    auto t = tasks_.finish(seq);
    if (!t)
      return;
    if (auto* o = objects_.find(t->result)) {
      bool failed = o->state == object_table::entry::failed;
      note(*t, failed ? task_events::failed : task_events::finished, o->node_id,
           failed ? o->error_type + ": " + o->error_message : std::string{});
    }
    for (auto& a : t->args)
      if (a.is_ref)
        objects_.unpin(a.ref);
    resolved(t->result);
  }

  /// Fails a task that has not run (or cannot run again). REQUIRES: mtx_ held.
  void fail_task(uint64_t seq, std::string type, std::string why, std::string node,
                 bool lost = false) override {
    auto* t = tasks_.find(seq);
    if (t == nullptr)
      return;
    object_table::fail(objects_.slot(t->result), std::move(type), std::move(why),
                       std::move(node), lost);
    finish_task(seq);
  }

  /// Records a task or an actor call with a new result object and pins its
  /// reference arguments. Returns the result's id; `stored` is the entry,
  /// or nullptr when an argument does not exist (the result is then
  /// failed). REQUIRES: mtx_ held.
  object_id add_task(task_table::task t, const std::string& function, std::vector<arg> args,
                     task_table::task*& stored) {
    stored = nullptr;
    auto id = objects_.new_id();
    auto& obj = objects_.create_pending(id, function);
    t.seq = next_seq_++;
    t.function = function;
    t.result = id;
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
    stored = &tasks_.add(std::move(t));
    note(*stored, task_events::pending, "");
    return id;
  }

  // -- task events (rayctl tasks) -----------------------------------------------------

  /// Records a state change. REQUIRES: mtx_ held.
  void note(task_table::task& t, task_events::state state, const std::string& node,
            const std::string& error = {}) override {
    events_.record(t.seq, t.reported, state, t.function, static_cast<uint32_t>(t.attempt),
                    node, error);
  }

  // -- dispatch ---------------------------------------------------------------------

  /// A READY task joins its pool's queue. REQUIRES: mtx_ held.
  void make_ready(uint64_t seq) {
    auto* t = tasks_.find(seq);
    if (t == nullptr)
      return;
    if (!t->actor.empty()) { // an actor call: sent in call order
      caller_.ready(t->actor);
      return;
    }
    auto* p = leases_.find_pool(t->pool);
    if (p == nullptr)
      return;
    p->ready.push_back(seq);
    dispatch(*p);
  }

  /// The TASK frame of `t`; false if an argument object is gone.
  bool to_wire(const task_table::task& t, uint64_t wire_id, wire::task& w) {
    w.task_id = wire_id;
    w.function = t.function;
    w.attempt = static_cast<uint32_t>(t.attempt);
    return args_to_wire(t, w.args);
  }

  /// The arguments of `t` as they travel; false if an argument object is gone.
  bool args_to_wire(const task_table::task& t, std::vector<wire::task_arg>& out) override {
    out.reserve(t.args.size());
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
      out.push_back(std::move(wa));
    }
    return true;
  }

  /// Sends ready tasks of `pool` to its leases with room; asks for another
  /// lease when they are all full. REQUIRES: mtx_ held.
  void dispatch(lease_pool::pool& pool) {
    while (!pool.ready.empty()) {
      auto* best = leases_.pick(pool);
      if (best == nullptr)
        break;
      // Spread: a lease with a task per thread already gets more only if no
      // new lease is coming, or if the pool's tasks are short (pipelining
      // them is what makes many small tasks fast). A longer task waits here
      // for a free thread or a new lease, rather than queue behind a busy
      // one while other nodes have room; waiting, it is pending demand.
      bool behind = lease_pool::busy(*best);
      if (behind) {
        if (lease_pool::may_ask(pool, clock_type::now())) {
          ask_lease(pool);
          // Asking may have failed the pool's tasks (no node for too long).
          if (pool.ready.empty())
            break;
        }
        if (!lease_pool::pipelines(pool))
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
      if (!task_table::sent(*t, best->id, wid,
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
      if (auto* l = leases_.find_lease(lid); l != nullptr && !l->out.empty())
        flush(*l);
    if (!pool.ready.empty() && lease_pool::may_ask(pool, clock_type::now()))
      ask_lease(pool);
  }

  /// Writes what the socket takes now; the rest waits for POLLOUT (a broken
  /// socket is seen by its reader, which retries the tasks).
  void flush(lease_pool::lease& l) {
    if (node_link::flush(l.fd, l.out) == node_link::flush_result::full) {
      link_.wake(); // whoever drives must poll for POLLOUT
      bg_cv_.notify_one();
    }
  }

  /// Asks a node that is up for a lease: the home node, or while it is down
  /// another one. With none reachable, asks again in a moment.
  void ask_lease(lease_pool::pool& pool) {
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
  bool open_request(lease_pool::pool& pool, const std::string& address,
                    const std::string& spilled_from, std::string& why) {
    lease_pool::request r;
    r.id = leases_.next_id();
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
    req.backlog = static_cast<uint32_t>(std::min<std::size_t>(pool.ready.size(), UINT32_MAX));
    r.backlog_sent = req.backlog;
    r.fd = node_link::open_request(address, token_, job_id_, req, why);
    if (r.fd < 0)
      return false;
    leases_.add_request(pool, std::move(r));
    link_.wake();
    bg_cv_.notify_one(); // the answer must be read even if nobody calls get()
    return true;
  }

  /// No lease came of a request: true if the pool asks again in a moment.
  bool retry_later(lease_pool::pool& pool) {
    if (!lease_pool::retry_later(pool, clock_type::now()))
      return false;
    bg_cv_.notify_one();
    return true;
  }

  /// Fails every task waiting in the pool (no lease can be had).
  void fail_pool(lease_pool::pool& pool, const std::string& type, const std::string& why) {
    auto ready = std::move(pool.ready);
    pool.ready.clear();
    for (auto seq : ready)
      fail_task(seq, type, why, "");
  }

  /// A lease socket broke: its worker or node died. Retry its tasks.
  void lease_lost(uint64_t lid, const std::string& why) {
    auto l = leases_.remove_lease(lid);
    if (!l)
      return;
    ::close(l->fd);
    std::vector<uint64_t> retry;
    for (auto& [wid, seq] : l->inflight) {
      auto* t = tasks_.find(seq);
      if (t == nullptr || t->state != task_table::inflight)
        continue;
      if (task_table::lost(*t)) {
        note(*t, task_events::pending, "");
        retry.push_back(seq);
      } else {
        fail_task(seq, "rayd::worker_died",
                  "the worker running it died (" + why + ") and its "
                    + std::to_string(t->max_retries) + " retries are used up",
                  l->node_id);
      }
    }
    auto* pool = leases_.find_pool(l->pool);
    if (pool == nullptr)
      return;
    for (auto i = retry.rbegin(); i != retry.rend(); ++i)
      pool->ready.push_front(*i);
    if (!pool->ready.empty())
      dispatch(*pool);
  }

  // -- frames ------------------------------------------------------------------------

  void on_result(lease_pool::lease& l, const wire::task_result& r) {
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
    auto* pool = leases_.find_pool(l.pool);
    if (t->sent != clock_type::time_point{} && pool != nullptr)
      lease_pool::ran(*pool,
                      std::chrono::duration<double, std::micro>(clock_type::now() - t->sent)
                        .count());
    object_table::apply_result(objects_.slot(t->result), r);
    finish_task(seq);
    // Room on this lease again: tasks waiting in its pool may go.
    if (pool != nullptr && !pool->ready.empty())
      dispatch(*pool);
  }

  /// Reads what arrived on a lease and handles it. False when it broke.
  bool read_lease(uint64_t lid) {
    auto* l = leases_.find_lease(lid);
    if (l == nullptr)
      return true;
    bool open = node_link::read(l->fd, l->reader, 256 * 1024);
    for (;;) {
      auto f = l->reader.next();
      if (!f)
        return false;
      if (!*f)
        return open;
      if ((*f)->type == wire::msg::drain) {
        l->draining = true;
        continue;
      }
      if ((*f)->type != wire::msg::result)
        return false;
      auto r = wire::decode<wire::task_result>((*f)->payload);
      if (!r)
        return false;
      on_result(*l, *r);
    }
  }

  /// Handles one answer to a lease request. False when the request is over
  /// (granted, spilled, refused); the caller then removes it.
  bool on_lease_reply(lease_pool::request& r, const wire::frame& f) {
    auto* pool = leases_.find_pool(r.pool);
    if (pool == nullptr)
      return false;
    switch (f.type) {
      case wire::msg::welcome:
        return true;
      case wire::msg::queued: // keep waiting; the node counts us as demand
        r.queued = true;
        return true;
      case wire::msg::granted: {
        auto g = wire::decode<wire::granted>(f.payload);
        if (g)
          nodes_.learn(g->node_id, r.address);
        lease_pool::lease l;
        l.id = leases_.next_id();
        l.fd = r.fd;
        l.pool = r.pool;
        l.address = r.address;
        l.node_id = g ? g->node_id : "";
        l.threads = g ? std::max<uint32_t>(1, g->threads) : 1;
        r.fd = -1; // the lease's now
        if (r.reader.buffered() > 0) { // a result cannot precede our tasks
          ::close(l.fd);
          return false;
        }
        if (pool->ready.empty())
          l.idle_since = clock_type::now();
        // Results this job leaves on that node are freed when our session
        // with it closes: make sure there is one.
        if (sessions_open_.insert(l.address).second) {
          sessions_wanted_.push_back(l.address);
          bg_cv_.notify_one();
        }
        leases_.add_lease(*pool, std::move(l));
        return false;
      }
      case wire::msg::spillback: {
        auto s = wire::decode<wire::spillback>(f.payload);
        if (s)
          nodes_.learn(s->node_id, s->address);
        spilled_.push_back({r.pool, s ? s->address : "", r.address});
        return false;
      }
      case wire::msg::refused:
      case wire::msg::error: {
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
        refusals_.push_back({r.pool, type, why, transient});
        return false;
      }
      default:
        refusals_.push_back({r.pool, "rayd::unavailable",
                             std::string{"unexpected "} + wire::to_string(f.type)
                               + " from a node",
                             false});
        return false;
    }
  }

  /// Reads a pending lease request's socket and handles the answer.
  void read_request(uint64_t rid) {
    auto* r = leases_.find_request(rid);
    if (r == nullptr)
      return;
    bool open = node_link::read(r->fd, r->reader, 4096);
    bool over = false;
    bool garbage = false;
    while (!over) {
      auto f = r->reader.next();
      if (!f) {
        garbage = true;
        break;
      }
      if (!*f)
        break;
      over = !on_lease_reply(*r, **f);
    }
    if (!over && open && !garbage)
      return; // still waiting
    auto done = leases_.remove_request(rid); // the pool may ask again
    if (done && done->fd >= 0)
      ::close(done->fd);
    auto* pool = done ? leases_.find_pool(done->pool) : nullptr;
    if (pool == nullptr)
      return;
    if (garbage) {
      fail_pool(*pool, "rayd::unavailable", "node " + done->address + " sent garbage");
    } else if (!over) {
      // Broken unanswered: the node died, or the worker it was handed to was
      // exiting. No task was sent on it.
      if (!retry_later(*pool))
        fail_pool(*pool, "rayd::unavailable",
                  "node " + done->address + " closed the connection");
    }
    settle_replies(*pool);
  }

  /// Acts on what on_lease_reply noted (after the request left the table, so
  /// the pool may ask again at once): a granted lease gets tasks, a spillback
  /// is followed, a refusal fails the pool's tasks or is asked again.
  void settle_replies(lease_pool::pool& pool) {
    auto spilled = std::move(spilled_);
    spilled_.clear();
    auto refusals = std::move(refusals_);
    refusals_.clear();
    for (auto& s : spilled) {
      auto* p = leases_.find_pool(s.pool);
      if (p == nullptr || p->ready.empty())
        continue;
      std::string why = "a node spilled the lease to an unknown node";
      if (s.address.empty() || !open_request(*p, s.address, s.from, why)) {
        // The node spilled to may have died without the other knowing.
        if (!s.address.empty())
          nodes_.mark_down(s.address, clock_type::now());
        if (!retry_later(*p))
          fail_pool(*p, "rayd::unavailable", why);
      }
    }
    for (auto& x : refusals) {
      auto* p = leases_.find_pool(x.pool);
      if (p == nullptr)
        continue;
      if (!x.transient || !retry_later(*p))
        fail_pool(*p, x.type, x.why);
    }
    // Granted (or asking again): if work still waits, send it, ask for more.
    if (!pool.ready.empty())
      dispatch(pool);
  }

  // -- driving ------------------------------------------------------------------------

  /// One round of network progress, or a wait on another driver's progress.
  /// False once `deadline` passed. REQUIRES: `lock` holds mtx_.
  /// Writes a value of `size` bytes straight into the home node's store
  /// (shared_put.hpp), FREEing that node's dropped objects first (so a put
  /// of the size of one just dropped finds its warm memfd in the node's
  /// pool); nullopt when no node is up or that path is refused there.
  std::optional<object_id> put_at_home(std::size_t size,
                                       const std::function<void(char*)>& fill) {
    std::unique_lock<std::mutex> lock{mtx_};
    auto address = nodes_.pick(clock_type::now());
    std::vector<std::string> frees;
    if (objects_.has_frees())
      for (auto& loc : objects_.take_frees()) {
        if (loc.address == address)
          frees.push_back(loc.object_id);
        free_later_.push_back(loc); // the background loop FREEs them everywhere
      }
    if (!free_later_.empty())
      bg_cv_.notify_one();
    if (address.empty())
      return std::nullopt;
    auto id = objects_.new_id();
    objects_.create_pending(id, ""); // pending while it is written
    lock.unlock();
    std::optional<wire::object_loc> loc;
    try {
      loc = objects_client_.put_in_place(id, size, fill, address, std::move(frees));
    } catch (...) {
      lock.lock();
      objects_.erase(id); // never handed out
      throw;
    }
    lock.lock();
    if (!loc) {
      objects_.erase(id);
      return std::nullopt;
    }
    auto& obj = objects_.slot(id);
    obj.state = object_table::entry::ready_stored;
    obj.loc = *loc;
    return id;
  }

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
    constexpr uint64_t request_tag = uint64_t{1} << 63;
    constexpr uint64_t conn_tag = uint64_t{1} << 62;
    auto& watches = watches_; // the driving thread's alone (driving_)
    watches.clear();
    for (auto& [id, l] : leases_.leases())
      watches.push_back({l.fd, !l.out.empty(), id});
    for (auto& [id, r] : leases_.requests())
      watches.push_back({r.fd, false, id | request_tag});
    caller_.watches(watches, conn_tag);
    auto now = clock_type::now();
    int timeout = deadline == clock_type::time_point::max()
                    ? 200
                    : static_cast<int>(std::clamp<int64_t>(
                      std::chrono::duration_cast<std::chrono::milliseconds>(deadline - now)
                        .count(),
                      0, 200));
    auto& events = ready_;
    lock.unlock();
    link_.poll(watches, timeout, events);
    lock.lock();
    driving_ = false;
    for (auto& e : events) {
      if (e.tag & request_tag) {
        read_request(e.tag & ~request_tag);
        continue;
      }
      if (e.tag & conn_tag) {
        caller_.on_event(e.tag & ~conn_tag, e.in, e.out);
        continue;
      }
      auto* l = leases_.find_lease(e.tag);
      if (l == nullptr)
        continue;
      if (e.out)
        flush(*l);
      if (e.in && !read_lease(e.tag))
        if (auto* gone = leases_.find_lease(e.tag))
          lease_lost(e.tag, "connection to node " + gone->address + " lost");
    }
    housekeeping();
    cv_.notify_all();
  }

  /// Gives back idle leases, cancels lease requests nobody needs, asks again
  /// where a request brought nothing, queues FREEs. REQUIRES: mtx_ held.
  void housekeeping() {
    auto now = clock_type::now();
    for (auto id : leases_.idle_leases(now))
      if (auto l = leases_.remove_lease(id))
        ::close(l->fd); // the worker sees EOF and gives the resources back
    for (auto& [_, pool] : leases_.pools()) // a lease request broke: ask again
      if (!pool.ready.empty() && lease_pool::may_ask(pool, now))
        dispatch(pool);
    report_backlogs();
    for (auto id : leases_.unneeded_requests())
      if (auto r = leases_.remove_request(id))
        ::close(r->fd);
    if (objects_.has_frees())
      for (auto& loc : objects_.take_frees())
        free_later_.push_back(loc);
    caller_.housekeeping(now);
  }

  /// Tells the node holding a pool's queued lease request how many of the
  /// pool's tasks wait now (the autoscaler sizes launches by it). Best
  /// effort: a full socket skips this round. REQUIRES: mtx_ held.
  void report_backlogs() {
    for (auto& [_, pool] : leases_.pools()) {
      if (pool.requesting == 0)
        continue;
      auto* r = leases_.find_request(pool.requesting);
      if (r == nullptr || !r->queued || r->fd < 0)
        continue;
      auto n = static_cast<uint32_t>(std::min<std::size_t>(pool.ready.size(), UINT32_MAX));
      if (n == r->backlog_sent)
        continue;
      // A few bytes on a socket that carried only HELLO and LEASE: never a
      // partial write.
      auto frame = wire::encode(wire::msg::backlog, wire::backlog_msg{r->id, n});
      if (::send(r->fd, frame.data(), frame.size(), MSG_NOSIGNAL | MSG_DONTWAIT)
          == static_cast<ssize_t>(frame.size()))
        r->backlog_sent = n;
    }
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
      if (!leases_.outstanding() && !caller_.outstanding()) {
        bg_cv_.wait_for(lock, 250ms);
        if (!quitting_ && !driving_ && !leases_.outstanding() && !caller_.outstanding())
          housekeeping();
        continue;
      }
      if (driving_) {
        bg_cv_.wait_for(lock, 5ms);
        continue;
      }
      // Let a caller in get() drive first: it reacts faster.
      bg_cv_.wait_for(lock, background_delay);
      if (quitting_ || driving_ || (!leases_.outstanding() && !caller_.outstanding()))
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

  object_client objects_client_; // thread-safe on its own; used without mtx_
  node_link link_;               // poll() without mtx_, by the one driving
  // drive_once()'s buffers, reused; touched only by the thread driving.
  std::vector<node_link::watch> watches_;
  std::vector<node_link::event> ready_;

  std::mutex mtx_;
  std::condition_variable cv_;    // callers waiting for another's progress
  std::condition_variable bg_cv_; // the background thread
  bool driving_ = false;
  bool quitting_ = false;
  uint64_t next_seq_ = 1;
  object_table objects_;
  task_table tasks_;
  lease_pool leases_;
  /// Lease replies noted while reading a request, acted on once it is gone.
  struct spill_note {
    std::string pool, address, from;
  };
  struct refusal_note {
    std::string pool, type, why;
    bool transient = false;
  };
  std::vector<spill_note> spilled_;
  std::vector<refusal_note> refusals_;
  std::vector<wire::object_loc> free_later_;
  std::set<std::string> sessions_open_;
  std::vector<std::string> sessions_wanted_;
  node_directory nodes_;
  task_events events_;
  actor_caller caller_;
  std::unique_ptr<head_link> head_link_; // stopped before the state above goes
  std::unique_ptr<actor_directory> directory_; // likewise
  std::thread background_;
};

std::mutex runtime_mtx;
std::unique_ptr<runtime> the_runtime;

} // namespace

std::unique_ptr<hosted_runtime> make_hosted_driver(const hosted_options& hosted) {
  init_options opts;
  opts.address = hosted.api_address;
  opts.token = hosted.token;
  opts.embedded_if_absent = false;
  return std::make_unique<driver>(opts, &hosted);
}

void start(const init_options& opts) {
  if (auto* fd = std::getenv("RAYD_WORKER_FD"); fd && *fd)
    run_worker(std::atoi(fd));
  // `rayctl --binary PROGRAM` asks a program what it registers: the
  // signatures, one per line, and nothing else runs (docs/cli.md).
  if (auto* p = std::getenv("RAYD_PRINT_SIGNATURES"); p && *p) {
    std::fputs(detail::encode_signatures(detail::registered_signatures()).c_str(), stdout);
    std::fflush(stdout);
    std::_Exit(0);
  }
  std::lock_guard<std::mutex> guard{runtime_mtx};
  if (the_runtime)
    throw error("rayd: init() was called twice (call shutdown() first)");
  ::signal(SIGPIPE, SIG_IGN);
  std::string address = opts.address;
  if (address.empty())
    if (auto* a = std::getenv("RAYD_ADDRESS"); a && *a)
      address = a;
  if (is_client_address(address))
    the_runtime = make_client_runtime(opts, address);
  else
    the_runtime = std::make_unique<driver>(opts);
}

runtime& current() {
  std::lock_guard<std::mutex> guard{runtime_mtx};
  if (!the_runtime) {
    // In a worker process, a task or an actor that calls out (an actor
    // handle it was passed, get_actor, a nested task) gets a runtime of its
    // own, connected with the address and token its node gave it.
    if (auto* fd = std::getenv("RAYD_WORKER_FD"); fd && *fd) {
      init_options opts;
      opts.embedded_if_absent = false;
      the_runtime = std::make_unique<driver>(opts);
    }
  }
  if (!the_runtime)
    throw std::logic_error("rayd: not initialized (call rayd::init() first)");
  return *the_runtime;
}

bool running() {
  std::lock_guard<std::mutex> guard{runtime_mtx};
  // A worker process can always call out: current() makes its runtime.
  if (auto* fd = std::getenv("RAYD_WORKER_FD"); fd && *fd)
    return true;
  return the_runtime != nullptr;
}

void stop() {
  std::unique_ptr<runtime> r;
  {
    std::lock_guard<std::mutex> guard{runtime_mtx};
    r = std::move(the_runtime);
  }
  r.reset();
}

} // namespace rayd::core
