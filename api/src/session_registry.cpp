#include "session_registry.hpp"

#include <algorithm>
#include <utility>

#include "client_session.hpp"

#include "common/util.hpp"

namespace rayd::core {

namespace {

constexpr std::size_t max_tombstones = 10000;

std::string seconds_text(std::chrono::milliseconds d) {
  auto ms = d.count();
  if (ms % 1000 == 0)
    return std::to_string(ms / 1000) + " s";
  return std::to_string(ms) + " ms";
}

} // namespace

session_registry::session_registry(session_registry_config cfg) : cfg_(std::move(cfg)) {
  clock_ = std::thread([this] { clock_loop(); });
  reaper_ = std::thread([this] { reaper_loop(); });
}

session_registry::~session_registry() {
  {
    std::lock_guard<std::mutex> guard{mtx_};
    stopping_ = true;
    for (auto& [_, e] : sessions_)
      to_close_.push_back(e.session);
    sessions_.clear();
  }
  cv_.notify_all();
  clock_.join();
  reaper_.join(); // closes what is left first
}

std::size_t session_registry::size() const {
  std::lock_guard<std::mutex> guard{mtx_};
  return sessions_.size();
}

std::string session_registry::gone_reason(const std::string& id) const {
  if (auto t = tombstones_.find(id); t != tombstones_.end())
    return t->second;
  return "session " + id
         + " is unknown to this head (it restarted since, or the id is wrong): the "
           "session's objects and non-detached actors are gone";
}

void session_registry::retire(const std::string& id, std::string reason) {
  auto i = sessions_.find(id);
  if (i == sessions_.end())
    return;
  to_close_.push_back(std::move(i->second.session));
  sessions_.erase(i);
  tombstones_[id] = std::move(reason);
  tombstone_order_.push_back(id);
  while (tombstone_order_.size() > max_tombstones) {
    tombstones_.erase(tombstone_order_.front());
    tombstone_order_.pop_front();
  }
  cv_.notify_all();
}

std::shared_ptr<client_session> session_registry::find(const std::string& id,
                                                       std::string& why) {
  std::lock_guard<std::mutex> guard{mtx_};
  auto i = sessions_.find(id);
  if (i == sessions_.end()) {
    why = gone_reason(id);
    return nullptr;
  }
  i->second.last_heard = std::chrono::steady_clock::now();
  return i->second.session;
}

void session_registry::open(std::string resume_id, std::string job_name,
                            wire::code_ref code, uint64_t grace_ms,
                            client_ops::callback<client_ops::opened> done) {
  std::unique_lock<std::mutex> lock{mtx_};
  if (stopping_) {
    lock.unlock();
    return done({false, {}, "the head is stopping"});
  }
  if (!resume_id.empty()) {
    auto i = sessions_.find(resume_id);
    if (i == sessions_.end()) {
      auto why = gone_reason(resume_id);
      lock.unlock();
      return done({false, {}, why});
    }
    i->second.last_heard = std::chrono::steady_clock::now();
    client_ops::opened o;
    o.session_id = resume_id;
    o.grace_ms = static_cast<uint64_t>(i->second.grace.count());
    auto session = i->second.session;
    lock.unlock();
    o.last_seq = session->last_seq();
    return done({true, std::move(o), ""});
  }
  if (code.files.empty()) {
    lock.unlock();
    return done({false, {}, "open: the client named no code (upload its executable first)"});
  }
  if (sessions_.size() >= cfg_.max_sessions) {
    lock.unlock();
    return done({false, {}, "this head serves " + std::to_string(cfg_.max_sessions)
                              + " client sessions already (--client-max-sessions)"});
  }
  auto id = random_hex(16);
  // At least a second: a connected client is heard from every second.
  auto grace = grace_ms == 0 ? cfg_.default_grace
                             : std::max(std::chrono::milliseconds{grace_ms},
                                        std::chrono::milliseconds{1000});
  hosted_options opts;
  opts.api_address = cfg_.api_address;
  opts.token = cfg_.token;
  opts.job_id = "client-" + id;
  opts.code = std::move(code);
  (void) job_name; // shown by the session's job id for now
  auto ready = [this, id, grace, done = std::move(done)](client_ops::result<bool> r) {
    if (!r.ok) {
      std::lock_guard<std::mutex> guard{mtx_};
      retire(id, "session " + id + " could not start: " + r.error);
      return done({false, {}, r.error});
    }
    client_ops::opened o;
    o.session_id = id;
    o.grace_ms = static_cast<uint64_t>(grace.count());
    done({true, std::move(o), ""});
  };
  entry e;
  e.grace = grace;
  e.last_heard = std::chrono::steady_clock::now();
  e.session = std::make_shared<client_session>(id, std::move(opts), std::move(ready));
  sessions_[id] = std::move(e);
}

void session_registry::exec(const std::string& session, uint64_t ack,
                            std::vector<client_ops::op> ops,
                            client_ops::callback<std::vector<client_ops::reply>> done) {
  std::string why;
  auto s = find(session, why);
  if (!s)
    return done({false, {}, why});
  s->exec(ack, std::move(ops), std::move(done));
}

void session_registry::write_chunk(const std::string& session, uint64_t stream,
                                   uint64_t offset, std::string data,
                                   client_ops::callback<uint64_t> done) {
  std::string why;
  auto s = find(session, why);
  if (!s)
    return done({false, 0, why});
  s->write_chunk(stream, offset, std::move(data), std::move(done));
}

void session_registry::read_chunk(const std::string& session, uint64_t stream,
                                  uint64_t offset, client_ops::callback<std::string> done) {
  std::string why;
  auto s = find(session, why);
  if (!s)
    return done({false, {}, why});
  s->read_chunk(stream, offset, std::move(done));
}

void session_registry::close(const std::string& session, client_ops::callback<bool> done) {
  {
    std::lock_guard<std::mutex> guard{mtx_};
    retire(session, "session " + session + " was closed by its client");
  }
  done({true, true, ""});
}

void session_registry::clock_loop() {
  std::unique_lock<std::mutex> lock{mtx_};
  while (!stopping_) {
    cv_.wait_for(lock, std::chrono::milliseconds{100});
    auto now = std::chrono::steady_clock::now();
    std::vector<std::pair<std::string, std::chrono::milliseconds>> expired;
    for (auto& [id, e] : sessions_)
      if (now - e.last_heard >= e.grace)
        expired.emplace_back(id, e.grace);
    for (auto& [id, grace] : expired)
      retire(id, "session " + id + " expired: nothing heard from its client for "
                   + seconds_text(grace)
                   + " (its grace period): its objects and non-detached actors were freed");
  }
}

void session_registry::reaper_loop() {
  std::unique_lock<std::mutex> lock{mtx_};
  for (;;) {
    cv_.wait(lock, [this] { return stopping_ || !to_close_.empty(); });
    if (to_close_.empty())
      return; // stopping, nothing left
    auto s = std::move(to_close_.front());
    to_close_.pop_front();
    lock.unlock();
    s->close();
    s.reset();
    lock.lock();
  }
}

} // namespace rayd::core
