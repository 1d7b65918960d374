#include "client_channel.hpp"

#include <sys/eventfd.h>
#include <unistd.h>

#include <algorithm>
#include <chrono>
#include <condition_variable>
#include <deque>
#include <filesystem>
#include <future>
#include <map>
#include <mutex>
#include <set>
#include <thread>

#include "cluster_connect.hpp"

#include "common/client_ops.hpp"
#include "common/error.hpp"
#include "common/util.hpp"
#include "rayd/errors.hpp"
#include "schemas/api_client.hpp"

namespace rayd::core {

namespace {

using client_ops::kind;
using client_ops::op;
using client_ops::reply;
using clock_type = std::chrono::steady_clock;
using namespace std::chrono_literals;

constexpr std::size_t chunk_bytes = 4u << 20; // the session's (session_streams::chunk_bytes)
constexpr std::size_t window_chunks = 4;     // chunk calls in flight
constexpr auto heartbeat_every = 1s;
constexpr auto silent_limit = 3s; // no answer for this long: the connection is dead
constexpr auto connect_timeout = 2s;
/// Ops sent or queued without a reply, at most (callers wait beyond): a
/// client that produces faster than its session runs keeps bounded memory
/// on both sides.
constexpr std::size_t max_pending_ops = 65536;
constexpr std::size_t max_pending_bytes = 256u << 20;

/// The bytes an op carries (values and arguments).
std::size_t payload_of(const op& o) {
  std::size_t n = 64;
  for (auto& v : o.values)
    n += v.size();
  for (auto& a : o.args)
    n += a.value.size();
  return n;
}

bool blocking(const op& o) {
  switch (o.what) {
    case kind::submit:
    case kind::put:
    case kind::add_ref:
    case kind::release:
    case kind::call_actor:
      return false;
    default:
      return true;
  }
}

/// Whether a failed call means "the connection is gone" (try again on a
/// new one) rather than "the head refused" (no point trying again).
bool transient(const caf::error& e) {
  auto c = code_of(e);
  return c == errc::unavailable || c == errc::timeout;
}

} // namespace

struct client_channel::impl {
  using transfer = client_channel::transfer;

  impl(const init_options& opts, std::string address)
    : opts_(opts), address_(std::move(address)) {
    token_ = token_for(opts_, address_);
    id_prefix_ = "c" + random_hex(8);
    wake_fd_ = ::eventfd(0, EFD_CLOEXEC | EFD_NONBLOCK);
    if (wake_fd_ < 0)
      throw connection_error("rayd: eventfd failed");
    std::promise<std::string> started;
    auto ready = started.get_future();
    io_ = std::thread([this, &started] { io_main(started); });
    auto failure = ready.get();
    if (!failure.empty()) {
      io_.join();
      ::close(wake_fd_);
      throw connection_error("rayd: " + failure);
    }
  }

  ~impl() {
    {
      std::lock_guard<std::mutex> guard{mtx_};
      quitting_ = true;
    }
    cv_.notify_all(); // a reconnect backing off
    wake();
    io_.join();
    ::close(wake_fd_);
  }

  uint64_t new_stream() {
    std::lock_guard<std::mutex> guard{mtx_};
    return next_stream_++;
  }

  std::string new_id() {
    std::lock_guard<std::mutex> guard{mtx_};
    return id_prefix_ + "g" + std::to_string(generation_) + "n" + std::to_string(next_id_++);
  }

  /// Throws when `id` belongs to a session the head lost.
  void check_id(const std::string& id) {
    if (id.rfind(id_prefix_ + "g", 0) != 0)
      return;
    auto gen = std::strtoul(id.c_str() + id_prefix_.size() + 1, nullptr, 10);
    std::lock_guard<std::mutex> guard{mtx_};
    if (auto i = lost_.find(static_cast<uint32_t>(gen)); i != lost_.end())
      throw connection_error("rayd: object " + id + " belonged to a session the head lost: "
                             + i->second);
  }

  uint64_t send(op o, bool awaited) {
    uint64_t seq;
    auto bytes = payload_of(o);
    {
      std::unique_lock<std::mutex> lock{mtx_};
      // Flow control: wait while the session is this far behind (an op of
      // its own larger than the byte bound goes alone).
      cv_.wait(lock, [this, bytes] {
        return !fatal_.empty() || quitting_
               || (pending_ops_ < max_pending_ops
                   && (pending_bytes_ + bytes <= max_pending_bytes || pending_ops_ == 0));
      });
      if (!fatal_.empty())
        throw connection_error("rayd: " + fatal_);
      ++pending_ops_;
      pending_bytes_ += bytes;
      seq = o.seq = next_seq_++;
      if (awaited)
        awaited_.insert(seq);
      outbox_.push_back(std::move(o));
    }
    wake();
    return seq;
  }

  reply await(uint64_t seq) {
    std::unique_lock<std::mutex> lock{mtx_};
    cv_.wait(lock, [this, seq] { return replies_.count(seq) != 0 || !fatal_.empty(); });
    auto i = replies_.find(seq);
    if (i == replies_.end())
      throw connection_error("rayd: " + fatal_);
    auto r = std::move(i->second);
    replies_.erase(i);
    return r;
  }

  void run_transfer(const std::shared_ptr<transfer>& t) {
    {
      std::lock_guard<std::mutex> guard{mtx_};
      transfers_.push_back(t);
    }
    wake();
    std::unique_lock<std::mutex> lock{mtx_};
    cv_.wait(lock, [this, &t] { return t->finished || !fatal_.empty(); });
    if (!t->finished)
      t->error = fatal_;
  }

  void wake() {
    uint64_t one = 1;
    [[maybe_unused]] auto n = ::write(wake_fd_, &one, sizeof one);
  }

  // -- the I/O thread -------------------------------------------------------------

  void io_main(std::promise<std::string>& started) {
    std::string failure;
    try {
      failure = connect();
      if (failure.empty())
        if (auto e = open_session(""))
          failure = describe(e);
    } catch (const std::exception& e) {
      failure = e.what();
    }
    if (!failure.empty()) {
      rpc_.reset(); // a client belongs to the thread that made it
      started.set_value(failure);
      return;
    }
    started.set_value(failure);
    io_loop();
    rpc_.reset();
  }

  /// A fresh connection; "" or why not.
  std::string connect() {
    rpc_.reset();
    rpc::connect_options copts;
    copts.timeout = connect_timeout;
    copts.tls_ca = opts_.tls_ca;
    auto c = rpc::client::connect(address_, token_, copts);
    if (!c)
      return describe(c.error());
    rpc_ = std::move(*c);
    last_heard_ = clock_type::now();
    return "";
  }

  /// Opens a session (resume "" for a new one: the code is shipped first,
  /// once per content hash) on the connection.
  caf::error open_session(const std::string& resume) {
    if (resume.empty())
      code_ = ship_code(opts_, *rpc_);
    auto grace = static_cast<uint64_t>(opts_.client_reconnect_grace.count());
    auto job = std::filesystem::read_symlink("/proc/self/exe").filename().string();
    auto o = rpc_->session_open(resume, job, code_, grace);
    if (!o)
      return o.error();
    session_ = o->session_id;
    grace_ = std::chrono::milliseconds{o->grace_ms};
    return {};
  }

  void io_loop() {
    for (;;) {
      bool quitting;
      {
        std::lock_guard<std::mutex> guard{mtx_};
        quitting = quitting_;
      }
      if (broken_ && !reconnect())
        return; // quitting
      flush();
      if (quitting) {
        // What was queued went out with flush(); its replies are not needed.
        if (!broken_ && rpc_)
          (void) rpc_->session_close(session_);
        return;
      }
      bool moving = step_transfers();
      auto now = clock_type::now();
      if (!broken_ && now - last_ping_ >= heartbeat_every) {
        last_ping_ = now;
        rpc_->session_exec(session_, ack(), {}, [this](auto r) { on_replies(std::move(r)); });
      }
      if (!broken_ && now - last_heard_ > silent_limit + heartbeat_every)
        broken_ = true; // nothing heard from the head: the link is dead
      if (!broken_)
        rpc_->poll(wake_fd_, moving ? 0ms : 100ms);
    }
  }

  /// REQUIRES: mtx_ held. `o` has its answer: it no longer counts as pending.
  void settle(const op& o) {
    --pending_ops_;
    pending_bytes_ -= std::min(pending_bytes_, payload_of(o));
  }

  uint64_t ack() {
    std::lock_guard<std::mutex> guard{mtx_};
    return ack_;
  }

  /// Sends what callers queued: ops up to and including a blocking one go
  /// in one exec call (its reply comes when that op is answered).
  void flush() {
    std::vector<std::vector<op>> batches;
    uint64_t acked;
    {
      std::lock_guard<std::mutex> guard{mtx_};
      if (outbox_.empty() || broken_)
        return;
      batches.emplace_back();
      for (auto& o : outbox_) {
        unacked_[o.seq] = o;
        bool ends = blocking(o);
        batches.back().push_back(std::move(o));
        if (ends)
          batches.emplace_back();
      }
      outbox_.clear();
      acked = ack_;
    }
    for (auto& b : batches)
      if (!b.empty())
        rpc_->session_exec(session_, acked, b, [this](auto r) { on_replies(std::move(r)); });
  }

  void on_replies(caf::expected<std::vector<reply>> r) {
    if (!r) {
      if (transient(r.error()))
        broken_ = true;
      else
        session_gone(describe(r.error()));
      return;
    }
    last_heard_ = clock_type::now();
    std::lock_guard<std::mutex> guard{mtx_};
    for (auto& x : *r) {
      if (auto u = unacked_.find(x.seq); u != unacked_.end()) {
        settle(u->second);
        unacked_.erase(u);
      }
      if (x.seq == ack_ + 1) {
        ++ack_;
        while (!received_.empty() && *received_.begin() == ack_ + 1) {
          received_.erase(received_.begin());
          ++ack_;
        }
      } else if (x.seq > ack_) {
        received_.insert(x.seq);
      }
      if (awaited_.erase(x.seq) != 0)
        replies_[x.seq] = std::move(x);
    }
    cv_.notify_all();
  }

  /// The head no longer has our session: fail what waited on it, remember
  /// why for its objects, and open a new one.
  void session_gone(const std::string& why) {
    if (session_.empty())
      return; // told already (every call in flight fails alike)
    {
      std::lock_guard<std::mutex> guard{mtx_};
      for (auto& [seq, o] : unacked_)
        settle(o);
      for (auto& [seq, o] : unacked_)
        if (awaited_.erase(seq) != 0) {
          reply x;
          x.seq = seq;
          x.error_kind = "connection";
          x.error = "rayd: " + why;
          replies_[seq] = std::move(x);
        }
      unacked_.clear();
      received_.clear();
      ack_ = next_seq_ - 1;
      lost_[generation_++] = why;
      for (auto& t : transfers_) {
        t->error = why;
        t->finished = true;
      }
      transfers_.clear();
    }
    cv_.notify_all();
    broken_ = true;
    session_.clear(); // reconnect() opens a new one
  }

  /// Reconnects and resumes (or replaces) the session; false only when the
  /// runtime quits. Past the grace period without the head, calls fail at
  /// once (fatal_) while it keeps trying.
  bool reconnect() {
    auto since = clock_type::now();
    auto give_up = since + std::max<std::chrono::milliseconds>(grace_, 1s) + 5s;
    auto backoff = 100ms;
    for (;;) {
      {
        std::lock_guard<std::mutex> guard{mtx_};
        if (quitting_)
          return false;
      }
      std::string why = connect();
      if (why.empty() && !session_.empty()) {
        auto e = open_session(session_);
        if (!e) {
          broken_ = false;
          resend();
          reachable();
          return true;
        }
        if (transient(e))
          why = describe(e);
        else
          session_gone(describe(e)); // reachable, but the session is gone
      }
      if (why.empty() && session_.empty()) {
        try {
          auto e = open_session("");
          if (!e) {
            broken_ = false;
            reachable();
            return true;
          }
          why = describe(e);
        } catch (const std::exception& x) {
          why = x.what();
        }
      }
      if (clock_type::now() > give_up && !session_.empty()) {
        // The session has expired on the head by now: what waited fails,
        // and so does every call until the head is back (then a new session).
        std::string msg = "lost the head at " + address_ + " for "
                          + std::to_string(std::chrono::duration_cast<std::chrono::seconds>(
                                             clock_type::now() - since)
                                             .count())
                          + " s, longer than the session's grace: the session expired (" + why
                          + ")";
        session_gone(msg);
        std::lock_guard<std::mutex> guard{mtx_};
        fatal_ = msg;
        cv_.notify_all();
      }
      std::unique_lock<std::mutex> lock{mtx_};
      cv_.wait_for(lock, backoff, [this] { return quitting_; });
      backoff = std::min<std::chrono::milliseconds>(backoff * 2, 1s);
    }
  }

  /// The head answers again: calls go through again.
  void reachable() {
    std::lock_guard<std::mutex> guard{mtx_};
    fatal_.clear();
  }

  /// After a resume: every op without a reply goes again, in seq order.
  void resend() {
    std::vector<op> again;
    {
      std::lock_guard<std::mutex> guard{mtx_};
      for (auto& [_, o] : unacked_)
        again.push_back(o);
      // Queued ops go after them, in order.
      for (auto& o : outbox_)
        again.push_back(std::move(o));
      outbox_.clear();
      for (auto& o : again)
        outbox_.push_back(std::move(o));
      unacked_.clear();
    }
  }

  /// Moves a window of chunks of the first transfer (pipelined); true while
  /// any transfer is left. Between windows the loop sends other callers' ops.
  bool step_transfers() {
    std::shared_ptr<transfer> t;
    {
      std::lock_guard<std::mutex> guard{mtx_};
      if (transfers_.empty())
        return false;
      t = transfers_.front();
    }
    if (!broken_ && t->done < t->size) {
      auto end = std::min<uint64_t>(t->size, t->done + window_chunks * chunk_bytes);
      if (t->write) {
        auto next = rpc_->session_write_chunks(session_, t->stream, t->done,
                                               std::string_view{t->src + t->done,
                                                                end - t->done},
                                               chunk_bytes, window_chunks);
        if (next)
          t->done = std::max(t->done, *next);
        else
          fail_or_break(t, next.error());
      } else {
        auto before = t->dst->size();
        auto got = rpc_->session_read_chunks(session_, t->stream, t->done, end, chunk_bytes,
                                             window_chunks, *t->dst);
        if (got) {
          t->done = *got;
        } else {
          t->dst->resize(before); // whole chunks only: resumed from t->done
          fail_or_break(t, got.error());
        }
      }
      if (!broken_)
        last_heard_ = clock_type::now();
    }
    if (t->done >= t->size || !t->error.empty()) {
      {
        std::lock_guard<std::mutex> guard{mtx_};
        t->finished = true;
        if (!transfers_.empty() && transfers_.front() == t)
          transfers_.pop_front();
      }
      cv_.notify_all();
    }
    return true;
  }

  void fail_or_break(const std::shared_ptr<transfer>& t, const caf::error& e) {
    if (transient(e))
      broken_ = true; // resumed from t->done after the reconnect
    else
      t->error = describe(e);
  }

  const init_options opts_;
  const std::string address_;
  std::string token_;
  std::string id_prefix_;
  int wake_fd_ = -1;
  std::thread io_;

  // The I/O thread's own.
  std::unique_ptr<rpc::client> rpc_;
  wire::code_ref code_;
  std::string session_;
  std::chrono::milliseconds grace_{0};
  bool broken_ = false;
  clock_type::time_point last_heard_{};
  clock_type::time_point last_ping_{};

  // Shared, under mtx_.
  std::mutex mtx_;
  std::condition_variable cv_;
  bool quitting_ = false;
  std::string fatal_;
  uint64_t next_seq_ = 1;
  uint64_t next_id_ = 1;
  uint64_t next_stream_ = 1;
  uint32_t generation_ = 0;
  std::map<uint32_t, std::string> lost_;
  std::deque<op> outbox_;
  std::map<uint64_t, op> unacked_;
  std::size_t pending_ops_ = 0;   // queued or sent, no reply yet
  std::size_t pending_bytes_ = 0; // their payload_of()
  std::set<uint64_t> awaited_;
  std::map<uint64_t, reply> replies_;
  uint64_t ack_ = 0;
  std::set<uint64_t> received_;
  std::deque<std::shared_ptr<transfer>> transfers_;
};

client_channel::client_channel(const init_options& opts, std::string address)
  : impl_(std::make_unique<impl>(opts, std::move(address))) {
}

client_channel::~client_channel() = default;

std::string client_channel::new_id() {
  return impl_->new_id();
}

void client_channel::check_id(const std::string& id) {
  impl_->check_id(id);
}

uint64_t client_channel::new_stream() {
  return impl_->new_stream();
}

uint64_t client_channel::send(client_ops::op o, bool awaited) {
  return impl_->send(std::move(o), awaited);
}

client_ops::reply client_channel::await(uint64_t seq) {
  return impl_->await(seq);
}

void client_channel::run_transfer(const std::shared_ptr<transfer>& t) {
  impl_->run_transfer(t);
}

} // namespace rayd::core
