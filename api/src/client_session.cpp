#include "client_session.hpp"

#include <algorithm>
#include <exception>
#include <utility>

#include "rayd/errors.hpp"

namespace rayd::core {

using client_ops::kind;
using client_ops::reply;
using namespace std::chrono_literals;

namespace {

/// How often a waiting op looks whether its session is closing.
constexpr auto wait_slice = 200ms;
/// Threads a session's pool grows to at most.
constexpr std::size_t max_workers = 512;

reply error_reply(uint64_t seq, std::exception_ptr e) {
  reply r;
  r.seq = seq;
  try {
    std::rethrow_exception(e);
  } catch (const task_error& x) { // actor_died_error included: the client raises the same
    r.error_kind = dynamic_cast<const actor_died_error*>(&x) != nullptr ? "actor_died"
                                                                       : "task_error";
    r.error = x.what();
    r.function = x.function();
    r.remote_type = x.remote_type();
    r.remote_message = x.remote_message();
    r.node_id = x.node_id();
  } catch (const object_lost& x) {
    r.error_kind = "object_lost";
    r.error = x.what();
  } catch (const get_timeout& x) {
    r.error_kind = "get_timeout";
    r.error = x.what();
  } catch (const object_store_full& x) {
    r.error_kind = "store_full";
    r.error = x.what();
  } catch (const connection_error& x) {
    r.error_kind = "connection";
    r.error = x.what();
  } catch (const std::exception& x) {
    r.error_kind = "error";
    r.error = x.what();
  } catch (...) {
    r.error_kind = "error";
    r.error = "unknown failure";
  }
  return r;
}

/// Puts up to this size are stored by the driver without a node (inline).
constexpr std::size_t quick_put_bytes = 64 * 1024;

/// A create_actor op's options.
actor_options actor_options_of(const client_ops::op& o) {
  actor_options opts;
  opts.name = o.name;
  opts.ray_namespace = o.ns;
  opts.get_if_exists = o.get_if_exists;
  opts.detached = o.flag;
  opts.max_restarts = o.max_retries;
  opts.max_task_retries = o.max_task_retries;
  opts.max_concurrency = o.max_concurrency;
  opts.resources = o.resources;
  opts.label_selector = o.labels;
  return opts;
}

bool is_quick(const client_ops::op& o) {
  switch (o.what) {
    case kind::put:
      return o.values.size() == 1 && o.values.front().size() <= quick_put_bytes;
    case kind::submit:
    case kind::add_ref:
    case kind::release:
    case kind::call_actor:
    case kind::unknown:
      return true;
    case kind::create_actor:
      return o.name.empty(); // an anonymous create returns at once
    default:
      return false;
  }
}

} // namespace

struct client_session::batch {
  std::vector<uint64_t> seqs;
  std::size_t remaining = 0;
  client_ops::callback<std::vector<reply>> done;
};

client_session::client_session(std::string id, hosted_options opts,
                               client_ops::callback<bool> ready)
  : id_(std::move(id)), streams_(id_) {
  sequencer_ = std::thread([this, opts = std::move(opts), ready = std::move(ready)]() mutable {
    start(std::move(opts), std::move(ready));
  });
}

client_session::~client_session() {
  close();
}

uint64_t client_session::last_seq() const {
  std::lock_guard<std::mutex> guard{mtx_};
  return max_seq_;
}

void client_session::close() {
  std::vector<std::shared_ptr<batch>> failed;
  {
    std::lock_guard<std::mutex> guard{mtx_};
    if (closing_ && !sequencer_.joinable())
      return;
    closing_ = true;
  }
  seq_cv_.notify_all();
  pool_cv_.notify_all();
  streams_.close(); // wakes producers and consumers blocked on a window
  const std::string why = "session " + id_ + " closed";
  if (sequencer_.joinable())
    sequencer_.join();
  std::vector<std::thread> workers;
  {
    std::lock_guard<std::mutex> guard{mtx_};
    workers.swap(workers_);
  }
  for (auto& w : workers)
    w.join();
  {
    std::lock_guard<std::mutex> guard{mtx_};
    for (auto& [_, bs] : waiting_)
      for (auto& b : bs)
        if (b->done)
          failed.push_back(b);
    waiting_.clear();
  }
  for (auto& b : failed) {
    auto done = std::move(b->done);
    b->done = nullptr;
    if (done)
      done({false, {}, why});
  }
  driver_.reset(); // frees the session's objects; its job ends
}

// -- ops in seq order ---------------------------------------------------------------

void client_session::start(hosted_options opts, client_ops::callback<bool> ready) {
  try {
    auto d = make_hosted_driver(opts);
    std::lock_guard<std::mutex> guard{mtx_};
    driver_ = std::move(d);
  } catch (const std::exception& e) {
    ready({false, false, std::string{"cannot start the session's driver: "} + e.what()});
    return;
  }
  ready({true, true, ""});
  std::unique_lock<std::mutex> lock{mtx_};
  for (;;) {
    seq_cv_.wait(lock, [this] { return closing_ || !mailbox_.empty(); });
    if (closing_)
      return;
    auto job = std::move(mailbox_.front());
    mailbox_.pop_front();
    lock.unlock();
    job();
    lock.lock();
  }
}

void client_session::exec(uint64_t ack, std::vector<client_ops::op> ops,
                          client_ops::callback<std::vector<reply>> done) {
  auto state = std::make_shared<std::pair<std::vector<client_ops::op>,
                                          client_ops::callback<std::vector<reply>>>>(
    std::move(ops), std::move(done));
  {
    std::lock_guard<std::mutex> guard{mtx_};
    if (!closing_) {
      mailbox_.emplace_back([this, ack, state] { take(ack, state->first, state->second); });
      seq_cv_.notify_one();
      return;
    }
  }
  state->second({false, {}, "session " + id_ + " closed"});
}

void client_session::take(uint64_t ack, std::vector<client_ops::op>& ops,
                          client_ops::callback<std::vector<reply>>& done) {
  auto b = std::make_shared<batch>();
  b->done = std::move(done);
  std::vector<client_ops::op*> fresh;
  {
    std::unique_lock<std::mutex> lock{mtx_};
    replies_.erase(replies_.begin(), replies_.upper_bound(ack));
    streams_.forget_read();
    for (auto& o : ops) {
      b->seqs.push_back(o.seq);
      if (o.seq <= max_seq_) { // a resend: answered, or still running
        if (replies_.count(o.seq) != 0)
          continue;
        if (auto w = waiting_.find(o.seq); w != waiting_.end()) {
          w->second.push_back(b);
          ++b->remaining;
          continue;
        }
        replies_[o.seq] = error_reply(o.seq, std::make_exception_ptr(error(
                                               "op " + std::to_string(o.seq)
                                               + " was answered and acknowledged already")));
        continue;
      }
      max_seq_ = o.seq;
      waiting_[o.seq].push_back(b);
      ++b->remaining;
      fresh.push_back(&o);
    }
    if (b->remaining == 0) {
      std::vector<reply> out;
      for (auto s : b->seqs)
        out.push_back(replies_[s]);
      lock.unlock();
      b->done({true, std::move(out), ""});
      return;
    }
  }
  for (auto* o : fresh) {
    if (is_quick(*o) || (o->what == kind::get && ready_soon(*o, o == fresh.back()))) {
      reply r;
      try {
        if (o->what == kind::get) {
          r = get(*o);
        } else {
          run_quick(*o);
          if (o->what == kind::create_actor)
            r.actor_id = o->result;
        }
        r.seq = o->seq;
      } catch (...) {
        r = error_reply(o->seq, std::current_exception());
      }
      std::unique_lock<std::mutex> lock{mtx_};
      complete(std::move(r), lock);
    } else {
      auto op = std::make_shared<client_ops::op>(std::move(*o));
      post([this, op] {
        reply r;
        try {
          r = run_waiting(*op);
        } catch (...) {
          r = error_reply(op->seq, std::current_exception());
        }
        r.seq = op->seq;
        std::unique_lock<std::mutex> lock{mtx_};
        complete(std::move(r), lock);
      });
    }
  }
}

void client_session::complete(reply r, std::unique_lock<std::mutex>& lock) {
  auto seq = r.seq;
  replies_[seq] = std::move(r);
  auto w = waiting_.find(seq);
  if (w == waiting_.end())
    return;
  auto batches = std::move(w->second);
  waiting_.erase(w);
  std::vector<std::pair<client_ops::callback<std::vector<reply>>, std::vector<reply>>> ready;
  for (auto& b : batches) {
    if (--b->remaining != 0 || !b->done)
      continue;
    std::vector<reply> out;
    out.reserve(b->seqs.size());
    for (auto s : b->seqs)
      out.push_back(replies_[s]);
    ready.emplace_back(std::move(b->done), std::move(out));
    b->done = nullptr;
  }
  lock.unlock();
  for (auto& [done, out] : ready)
    done({true, std::move(out), ""});
  lock.lock();
}

std::vector<bool> client_session::wait_for(const std::vector<object_id>& ids,
                                           std::size_t n, int64_t timeout_ms) {
  // In slices, so a closing session never waits on an op.
  auto deadline = timeout_ms < 0 ? std::chrono::steady_clock::time_point::max()
                                 : std::chrono::steady_clock::now()
                                     + std::chrono::milliseconds{timeout_ms};
  for (;;) {
    auto left = std::chrono::duration_cast<std::chrono::milliseconds>(
      deadline - std::chrono::steady_clock::now());
    auto slice = std::max(0ms, std::min<std::chrono::milliseconds>(wait_slice, left));
    auto ready = driver_->wait(ids, n, slice);
    if (static_cast<std::size_t>(std::count(ready.begin(), ready.end(), true)) >= n
        || slice < wait_slice)
      return ready;
    std::lock_guard<std::mutex> guard{mtx_};
    if (closing_)
      throw error("session " + id_ + " closed");
  }
}

std::vector<object_id> client_session::map_ids(const std::vector<std::string>& client_ids) {
  std::vector<object_id> out;
  out.reserve(client_ids.size());
  for (auto& id : client_ids)
    out.push_back(map_id(id));
  return out;
}

bool client_session::ready_soon(const client_ops::op& o, bool may_wait) {
  auto ids = map_ids(o.ids);
  auto all = [](const std::vector<bool>& v) {
    return std::all_of(v.begin(), v.end(), [](bool b) { return b; });
  };
  auto ready = driver_->wait(ids, ids.size(), std::chrono::milliseconds{0});
  // A synchronous call's result comes within a millisecond or two: waiting
  // for it here saves handing the get to the pool (a thread wake-up each
  // way), as long as no other op of this client is waiting behind it.
  for (int slice = 0; may_wait && !all(ready) && slice < 2; ++slice) {
    {
      std::lock_guard<std::mutex> guard{mtx_};
      if (closing_ || !mailbox_.empty())
        break;
    }
    ready = driver_->wait(ids, ids.size(), std::chrono::milliseconds{1});
  }
  for (std::size_t i = 0; i < ids.size(); ++i) {
    if (!ready[i])
      return false;
    if (auto size = driver_->stored_size(ids[i]); size && *size > inline_limit)
      return false; // a stream: its producer runs on the pool anyway
  }
  return true;
}

object_id client_session::map_id(const std::string& client_id) {
  std::lock_guard<std::mutex> guard{mtx_};
  auto i = ids_.find(client_id);
  return i == ids_.end() ? client_id : i->second.first;
}

std::vector<arg> client_session::map_args(std::vector<client_ops::arg>& args) {
  std::vector<arg> out;
  out.reserve(args.size());
  for (auto& a : args) {
    arg x;
    x.is_ref = a.is_ref;
    if (a.is_ref)
      x.ref = map_id(a.value);
    else
      x.value = std::move(a.value);
    out.push_back(std::move(x));
  }
  return out;
}

void client_session::run_quick(client_ops::op& o) {
  auto remember = [this, &o](object_id id) {
    std::lock_guard<std::mutex> guard{mtx_};
    ids_[o.result] = {std::move(id), 1};
  };
  switch (o.what) {
    case kind::submit: {
      task_options opts;
      opts.resources = o.resources;
      opts.max_retries = o.max_retries;
      opts.label_selector = o.labels;
      remember(driver_->submit(o.name, map_args(o.args), opts));
      return;
    }
    case kind::put:
      if (o.values.size() != 1)
        throw error("put: no value");
      remember(driver_->put(std::move(o.values.front())));
      return;
    case kind::call_actor:
      remember(driver_->call_actor(o.target, o.name, map_args(o.args)));
      return;
    case kind::add_ref: {
      object_id id;
      {
        std::lock_guard<std::mutex> guard{mtx_};
        auto i = ids_.find(o.target);
        if (i == ids_.end())
          return;
        ++i->second.second;
        id = i->second.first;
      }
      driver_->add_ref(id);
      return;
    }
    case kind::release: {
      object_id id;
      {
        std::lock_guard<std::mutex> guard{mtx_};
        auto i = ids_.find(o.target);
        if (i == ids_.end())
          return;
        id = i->second.first;
        if (--i->second.second <= 0)
          ids_.erase(i);
      }
      driver_->release(id);
      return;
    }
    case kind::create_actor: // anonymous: returns at once
      o.result = driver_->create_actor(o.target, std::move(o.values), actor_options_of(o));
      return;
    default:
      throw error("this head does not know that op (a newer client?)");
  }
}

// -- the pool ------------------------------------------------------------------------

void client_session::post(std::function<void()> job) {
  std::lock_guard<std::mutex> guard{mtx_};
  if (closing_)
    return;
  jobs_.push_back(std::move(job));
  if (jobs_.size() > idle_workers_ && workers_.size() < max_workers)
    workers_.emplace_back([this] { pool_loop(); });
  else
    pool_cv_.notify_one();
}

void client_session::pool_loop() {
  std::unique_lock<std::mutex> lock{mtx_};
  for (;;) {
    ++idle_workers_;
    pool_cv_.wait(lock, [this] { return closing_ || !jobs_.empty(); });
    --idle_workers_;
    if (closing_)
      return;
    auto job = std::move(jobs_.front());
    jobs_.pop_front();
    lock.unlock();
    job();
    lock.lock();
  }
}

reply client_session::run_waiting(client_ops::op& o) {
  reply r;
  switch (o.what) {
    case kind::get:
      return get(o);
    case kind::put_stream:
      return put_stream(o);
    case kind::wait:
      r.ready = wait_for(map_ids(o.ids), o.count, o.timeout_ms);
      return r;
    case kind::create_actor:
      r.actor_id = driver_->create_actor(o.target, std::move(o.values), actor_options_of(o));
      return r;
    case kind::get_actor: {
      auto found = driver_->get_actor(o.name, o.ns);
      r.actor_id = found.id;
      r.class_name = found.class_name;
      return r;
    }
    case kind::kill_actor:
      driver_->kill_actor(o.target, o.flag);
      return r;
    default:
      throw error("this head does not know that op (a newer client?)");
  }
}

reply client_session::get(const client_ops::op& o) {
  reply r;
  auto ids = map_ids(o.ids);
  auto ready = wait_for(ids, ids.size(), o.timeout_ms);
  if (!std::all_of(ready.begin(), ready.end(), [](bool b) { return b; }))
    throw get_timeout("get: " + std::to_string(ids.size())
                      + " object(s) not ready within the timeout");
  // Large stored values stream; the rest come back inline.
  r.values.resize(ids.size());
  std::vector<object_id> small;
  std::vector<std::size_t> small_at;
  for (std::size_t i = 0; i < ids.size(); ++i) {
    auto size = driver_->stored_size(ids[i]);
    if (size && *size > inline_limit) {
      auto stream = streams_.open_get(*size);
      r.values[i].streamed = true;
      r.values[i].stream = stream;
      r.values[i].size = *size;
      post([this, stream, id = ids[i]] { produce(stream, id); });
    } else {
      small.push_back(ids[i]);
      small_at.push_back(i);
    }
  }
  if (!small.empty()) {
    auto values = driver_->get(small, std::chrono::milliseconds{0});
    for (std::size_t k = 0; k < values.size(); ++k)
      r.values[small_at[k]].bytes = std::move(values[k]);
  }
  return r;
}

void client_session::produce(uint64_t stream, object_id id) {
  std::string pending;
  try {
    driver_->read_stored(id, [this, stream, &pending](std::size_t, std::string_view c) {
      pending.append(c.data(), c.size());
      if (pending.size() >= session_streams::chunk_bytes) {
        streams_.push(stream, std::move(pending));
        pending.clear();
      }
    });
    if (!pending.empty())
      streams_.push(stream, std::move(pending));
  } catch (const std::exception& e) {
    streams_.fail_get(stream, e.what());
  }
}

void client_session::read_chunk(uint64_t stream, uint64_t offset,
                                client_ops::callback<std::string> done) {
  streams_.read(stream, offset, std::move(done));
}

void client_session::write_chunk(uint64_t stream, uint64_t offset, std::string data,
                                 client_ops::callback<uint64_t> done) {
  streams_.write(stream, offset, std::move(data), std::move(done));
}

reply client_session::put_stream(const client_ops::op& o) {
  const uint64_t size = o.count;
  object_id id;
  try {
    id = driver_->put_in_store(
      size, [this, &o, size](char* dst) { streams_.drain_into(o.stream, dst, size); });
  } catch (const std::exception& e) {
    streams_.end_put(o.stream, e.what());
    throw;
  }
  streams_.end_put(o.stream, "");
  std::lock_guard<std::mutex> guard{mtx_};
  ids_[o.result] = {std::move(id), 1};
  return {};
}

} // namespace rayd::core
