#include "session_streams.hpp"

#include <cstring>
#include <deque>
#include <utility>
#include <vector>

#include "rayd/errors.hpp"

namespace rayd::core {

namespace {

using read_answer = std::pair<client_ops::callback<std::string>, client_ops::result<std::string>>;

} // namespace

/// A put's bytes on their way from write() to the store.
struct session_streams::inbound {
  uint64_t next = 0; // the offset expected next
  std::deque<std::string> chunks;
  std::size_t queued = 0;
  std::deque<std::pair<uint64_t, client_ops::callback<uint64_t>>> parked; // until drained
  std::string failed;
};

/// A stored value on its way from push() to read().
struct session_streams::outbound {
  uint64_t size = 0;
  uint64_t delivered = 0; // the offset of the next chunk to hand out
  std::deque<std::string> chunks;
  std::size_t queued = 0;
  std::map<uint64_t, std::string> recent; // the last chunks handed out, by offset
  std::deque<std::pair<uint64_t, client_ops::callback<std::string>>> parked;
  std::string failed;

  /// REQUIRES: the lock held. Answers parked reads while chunks are there;
  /// the caller calls the answers after unlocking.
  void serve(std::vector<read_answer>& out) {
    while (!parked.empty() && !chunks.empty()) {
      auto [offset, cb] = std::move(parked.front());
      parked.pop_front();
      if (offset != delivered) {
        out.emplace_back(std::move(cb),
                         client_ops::result<std::string>{
                           false, {}, "read at offset " + std::to_string(offset)
                                        + ", the stream is at " + std::to_string(delivered)});
        continue;
      }
      auto c = std::move(chunks.front());
      chunks.pop_front();
      queued -= c.size();
      recent[delivered] = c;
      if (recent.size() > recent_chunks)
        recent.erase(recent.begin());
      delivered += c.size();
      out.emplace_back(std::move(cb), client_ops::result<std::string>{true, std::move(c), ""});
    }
  }
};

session_streams::session_streams(std::string session_id) : session_id_(std::move(session_id)) {
}

session_streams::~session_streams() {
  close();
}

std::string session_streams::closed_text() const {
  return "session " + session_id_ + " closed";
}

std::shared_ptr<session_streams::inbound> session_streams::inbound_for(uint64_t stream) {
  auto& s = inbound_[stream];
  if (!s)
    s = std::make_shared<inbound>();
  return s;
}

void session_streams::close() {
  std::vector<client_ops::callback<uint64_t>> writes;
  std::vector<client_ops::callback<std::string>> reads;
  {
    std::lock_guard<std::mutex> guard{mtx_};
    if (closed_)
      return;
    closed_ = true;
    for (auto& [_, s] : inbound_)
      for (auto& p : s->parked)
        writes.push_back(std::move(p.second));
    for (auto& [_, s] : outbound_)
      for (auto& p : s->parked)
        reads.push_back(std::move(p.second));
    inbound_.clear();
    outbound_.clear();
  }
  cv_.notify_all();
  for (auto& w : writes)
    w({false, 0, closed_text()});
  for (auto& r : reads)
    r({false, {}, closed_text()});
}

// -- put -----------------------------------------------------------------------------

void session_streams::write(uint64_t stream, uint64_t offset, std::string data,
                            client_ops::callback<uint64_t> done) {
  std::unique_lock<std::mutex> lock{mtx_};
  if (closed_) {
    lock.unlock();
    return done({false, 0, closed_text()});
  }
  auto s = inbound_for(stream);
  if (!s->failed.empty() || offset > s->next) {
    auto why = !s->failed.empty() ? s->failed
                                  : "chunk at offset " + std::to_string(offset) + ", expected "
                                      + std::to_string(s->next);
    lock.unlock();
    return done({false, 0, why});
  }
  if (offset < s->next) { // a resend after a reconnect
    auto next = s->next;
    lock.unlock();
    return done({true, next, ""});
  }
  s->next += data.size();
  s->queued += data.size();
  s->chunks.push_back(std::move(data));
  if (s->queued > window_bytes) {
    s->parked.emplace_back(s->next, std::move(done)); // answered as the store takes bytes
    lock.unlock();
    cv_.notify_all();
    return;
  }
  auto next = s->next;
  lock.unlock();
  cv_.notify_all();
  done({true, next, ""});
}

void session_streams::drain_into(uint64_t stream, char* dst, uint64_t size) {
  std::shared_ptr<inbound> s;
  {
    std::lock_guard<std::mutex> guard{mtx_};
    if (closed_)
      throw error(closed_text() + " during a put");
    s = inbound_for(stream);
  }
  uint64_t copied = 0;
  while (copied < size) {
    std::string chunk;
    std::vector<std::pair<uint64_t, client_ops::callback<uint64_t>>> released;
    {
      std::unique_lock<std::mutex> lock{mtx_};
      cv_.wait(lock, [this, &s] { return closed_ || !s->chunks.empty(); });
      if (closed_)
        throw error(closed_text() + " during a put");
      chunk = std::move(s->chunks.front());
      s->chunks.pop_front();
      s->queued -= chunk.size();
      while (!s->parked.empty() && s->queued <= window_bytes) {
        released.push_back(std::move(s->parked.front()));
        s->parked.pop_front();
      }
    }
    for (auto& [next, cb] : released)
      cb({true, next, ""});
    if (copied + chunk.size() > size)
      throw error("put: more bytes than the " + std::to_string(size) + " announced");
    std::memcpy(dst + copied, chunk.data(), chunk.size());
    copied += chunk.size();
  }
}

void session_streams::end_put(uint64_t stream, const std::string& why) {
  std::deque<std::pair<uint64_t, client_ops::callback<uint64_t>>> parked;
  uint64_t next = 0;
  {
    std::lock_guard<std::mutex> guard{mtx_};
    auto i = inbound_.find(stream);
    if (i == inbound_.end())
      return;
    parked.swap(i->second->parked);
    next = i->second->next;
    if (why.empty())
      inbound_.erase(i);
    else
      i->second->failed = why; // kept: a resent chunk learns why
  }
  for (auto& p : parked)
    p.second(why.empty() ? client_ops::result<uint64_t>{true, next, ""}
                         : client_ops::result<uint64_t>{false, 0, why});
}

// -- get -----------------------------------------------------------------------------

uint64_t session_streams::open_get(uint64_t size) {
  auto s = std::make_shared<outbound>();
  s->size = size;
  std::lock_guard<std::mutex> guard{mtx_};
  auto id = next_get_++;
  outbound_[id] = std::move(s);
  return id;
}

void session_streams::push(uint64_t stream, std::string chunk) {
  std::vector<read_answer> answers;
  {
    std::unique_lock<std::mutex> lock{mtx_};
    auto i = outbound_.find(stream);
    if (closed_ || i == outbound_.end())
      throw error(closed_text());
    auto s = i->second;
    cv_.wait(lock, [this, &s] { return closed_ || s->queued < window_bytes; });
    if (closed_)
      throw error(closed_text());
    s->queued += chunk.size();
    s->chunks.push_back(std::move(chunk));
    s->serve(answers);
  }
  for (auto& [cb, r] : answers)
    cb(std::move(r));
}

void session_streams::fail_get(uint64_t stream, const std::string& why) {
  std::deque<std::pair<uint64_t, client_ops::callback<std::string>>> parked;
  {
    std::lock_guard<std::mutex> guard{mtx_};
    auto i = outbound_.find(stream);
    if (i == outbound_.end())
      return;
    i->second->failed = why;
    parked.swap(i->second->parked);
  }
  for (auto& p : parked)
    p.second({false, {}, why});
}

void session_streams::read(uint64_t stream, uint64_t offset,
                           client_ops::callback<std::string> done) {
  std::unique_lock<std::mutex> lock{mtx_};
  auto i = outbound_.find(stream);
  if (i == outbound_.end()) {
    lock.unlock();
    return done({false, {}, "no stream " + std::to_string(stream) + " in session " + session_id_});
  }
  auto s = i->second;
  if (auto r = s->recent.find(offset); r != s->recent.end()) { // a resend
    auto copy = r->second;
    lock.unlock();
    return done({true, std::move(copy), ""});
  }
  if (offset < s->delivered || offset >= s->size || !s->failed.empty()) {
    auto why = !s->failed.empty() ? s->failed
                                  : "read at offset " + std::to_string(offset)
                                      + ", the stream is at " + std::to_string(s->delivered)
                                      + " of " + std::to_string(s->size);
    lock.unlock();
    return done({false, {}, why});
  }
  s->parked.emplace_back(offset, std::move(done));
  std::vector<read_answer> answers;
  s->serve(answers);
  lock.unlock();
  cv_.notify_all(); // the producer may have room again
  for (auto& [cb, r] : answers)
    cb(std::move(r));
}

void session_streams::forget_read() {
  std::lock_guard<std::mutex> guard{mtx_};
  for (auto i = outbound_.begin(); i != outbound_.end();)
    i = i->second->delivered >= i->second->size ? outbound_.erase(i) : std::next(i);
}

} // namespace rayd::core
