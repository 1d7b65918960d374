// See lease_pool.hpp.

#include "lease_pool.hpp"

#include <algorithm>
#include <sstream>

namespace rayd::core {

std::string lease_pool::key_of(const std::map<std::string, double>& shape,
                               const std::map<std::string, std::string>& selector) {
  std::ostringstream out;
  for (auto& [k, v] : shape)
    out << k << '=' << v << ';';
  out << '|';
  for (auto& [k, v] : selector)
    out << k << '=' << v << ';';
  return out.str();
}

lease_pool::pool& lease_pool::pool_for(const std::map<std::string, double>& shape,
                                       const std::map<std::string, std::string>& selector) {
  auto key = key_of(shape, selector);
  auto& p = pools_[key];
  if (p.key.empty()) {
    p.key = std::move(key);
    p.shape = shape;
    p.selector = selector;
  }
  return p;
}

lease_pool::pool* lease_pool::find_pool(const std::string& key) {
  auto it = pools_.find(key);
  return it == pools_.end() ? nullptr : &it->second;
}

lease_pool::lease* lease_pool::find_lease(uint64_t id) {
  auto it = leases_.find(id);
  return it == leases_.end() ? nullptr : &it->second;
}

lease_pool::request* lease_pool::find_request(uint64_t id) {
  auto it = requests_.find(id);
  return it == requests_.end() ? nullptr : &it->second;
}

lease_pool::lease* lease_pool::pick(pool& p) {
  lease* best = nullptr;
  for (auto lid : p.leases) {
    auto* l = find_lease(lid);
    if (l == nullptr || l->draining || l->inflight.size() >= l->threads * inflight_per_thread)
      continue;
    if (best == nullptr || l->inflight.size() < best->inflight.size())
      best = l;
  }
  return best;
}

bool lease_pool::retry_later(pool& p, clock_type::time_point now) {
  if (p.failing_since == clock_type::time_point{})
    p.failing_since = now;
  if (now - p.failing_since > unreachable_limit) {
    p.failing_since = {};
    return false;
  }
  p.retry_at = now + retry_delay;
  return true;
}

lease_pool::request& lease_pool::add_request(pool& p, request r) {
  p.requesting = r.id;
  auto id = r.id;
  return requests_.insert_or_assign(id, std::move(r)).first->second;
}

std::optional<lease_pool::request> lease_pool::remove_request(uint64_t id) {
  auto it = requests_.find(id);
  if (it == requests_.end())
    return std::nullopt;
  auto r = std::move(it->second);
  requests_.erase(it);
  if (auto* p = find_pool(r.pool); p != nullptr && p->requesting == id)
    p->requesting = 0;
  return r;
}

lease_pool::lease& lease_pool::add_lease(pool& p, lease l) {
  p.failing_since = {};
  p.leases.push_back(l.id);
  auto id = l.id;
  return leases_.insert_or_assign(id, std::move(l)).first->second;
}

std::optional<lease_pool::lease> lease_pool::remove_lease(uint64_t id) {
  auto it = leases_.find(id);
  if (it == leases_.end())
    return std::nullopt;
  auto l = std::move(it->second);
  leases_.erase(it);
  if (auto* p = find_pool(l.pool))
    p->leases.erase(std::remove(p->leases.begin(), p->leases.end(), id), p->leases.end());
  return l;
}

std::vector<uint64_t> lease_pool::idle_leases(clock_type::time_point now) const {
  std::vector<uint64_t> out;
  for (auto& [id, l] : leases_) {
    if (!l.inflight.empty() || !l.out.empty())
      continue;
    auto p = pools_.find(l.pool);
    bool nothing_ready = p == pools_.end() || p->second.ready.empty();
    if (l.draining || (nothing_ready && now - l.idle_since > idle_timeout))
      out.push_back(id);
  }
  return out;
}

std::vector<uint64_t> lease_pool::unneeded_requests() const {
  std::vector<uint64_t> out;
  for (auto& [id, r] : requests_) {
    auto p = pools_.find(r.pool);
    if (p == pools_.end() || (p->second.ready.empty() && p->second.requesting == id))
      out.push_back(id);
  }
  return out;
}

bool lease_pool::outstanding() const {
  if (!requests_.empty())
    return true;
  for (auto& [_, l] : leases_)
    if (!l.inflight.empty() || !l.out.empty())
      return true;
  return false;
}

} // namespace rayd::core
