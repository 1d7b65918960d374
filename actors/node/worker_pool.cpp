#include "actors/node/worker_pool.hpp"

#include <unistd.h>

namespace rayd::node {

namespace {

void close_owned(worker_record& w) {
  if (w.ctrl >= 0)
    ::close(w.ctrl);
  w.ctrl = -1;
  for (int fd : w.fds)
    if (fd >= 0)
      ::close(fd);
  w.fds.clear();
  for (auto& pa : w.waiting)
    if (pa.fd >= 0)
      ::close(pa.fd);
  w.waiting.clear();
}

} // namespace

worker_pool::~worker_pool() {
  for (auto& [_, w] : workers_)
    close_owned(*w);
}

worker_record& worker_pool::for_key(const std::string& key, const std::string& job_id,
                                    clock_type::time_point now, bool& created) {
  if (auto i = by_key_.find(key); i != by_key_.end()) {
    auto& w = *workers_.at(i->second);
    if (w.state != worker_record::exiting) {
      created = false;
      return w;
    }
    by_key_.erase(i);
  }
  auto w = std::make_unique<worker_record>();
  w->id = next_id_++;
  w->key = key;
  w->job_id = job_id;
  w->idle_since = now;
  auto& ref = *w;
  by_key_[key] = ref.id;
  workers_[ref.id] = std::move(w);
  created = true;
  return ref;
}

worker_record* worker_pool::find(uint64_t id) {
  auto i = workers_.find(id);
  return i == workers_.end() ? nullptr : i->second.get();
}

void worker_pool::started(worker_record& w, pid_t pid, int ctrl) {
  w.pid = pid;
  w.ctrl = ctrl;
  w.state = worker_record::starting;
}

std::vector<pending_adopt> worker_pool::ready(worker_record& w) {
  if (w.state == worker_record::starting)
    w.state = worker_record::serving;
  auto out = std::move(w.waiting);
  w.waiting.clear();
  return out;
}

bool worker_pool::serving(uint64_t id) const {
  auto i = workers_.find(id);
  return i != workers_.end() && i->second->state == worker_record::serving;
}

bool worker_pool::attach(worker_record& w, const pending_adopt& pa) {
  w.leases.insert(pa.lease_id);
  if (w.state == worker_record::serving)
    return true;
  w.waiting.push_back(pa);
  return false;
}

void worker_pool::detach(uint64_t worker_id, uint64_t lease_id, clock_type::time_point now) {
  auto* w = find(worker_id);
  if (w == nullptr)
    return;
  w->leases.erase(lease_id);
  if (w->leases.empty() && w->actors.empty())
    w->idle_since = now;
}

void worker_pool::add_actor(worker_record& w, const std::string& actor_id) {
  w.actors.insert(actor_id);
}

void worker_pool::remove_actor(uint64_t worker_id, const std::string& actor_id,
                               clock_type::time_point now) {
  auto* w = find(worker_id);
  if (w == nullptr)
    return;
  w->actors.erase(actor_id);
  if (w->leases.empty() && w->actors.empty())
    w->idle_since = now;
}

worker_record* worker_pool::find_pid(pid_t pid) {
  for (auto& [_, w] : workers_)
    if (w->pid == pid && w->state == worker_record::serving)
      return w.get();
  return nullptr;
}

std::vector<uint64_t> worker_pool::retire_idle(clock_type::time_point now,
                                               std::chrono::milliseconds timeout) {
  std::vector<uint64_t> out;
  for (auto& [id, w] : workers_) {
    if (w->state == worker_record::serving && w->leases.empty() && w->actors.empty()
        && w->waiting.empty() && now - w->idle_since > timeout) {
      w->state = worker_record::exiting;
      if (auto k = by_key_.find(w->key); k != by_key_.end() && k->second == id)
        by_key_.erase(k);
      out.push_back(id);
    }
  }
  return out;
}

void worker_pool::remove(uint64_t id) {
  auto i = workers_.find(id);
  if (i == workers_.end())
    return;
  close_owned(*i->second);
  if (auto k = by_key_.find(i->second->key); k != by_key_.end() && k->second == id)
    by_key_.erase(k);
  workers_.erase(i);
}

} // namespace rayd::node
