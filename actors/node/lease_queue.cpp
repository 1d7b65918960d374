#include "actors/node/lease_queue.hpp"

#include <algorithm>

#include "common/resources.hpp"

namespace rayd::node {

resource_map lease_queue::available() const {
  auto out = total_;
  if (draining_) {
    for (auto& [_, v] : out)
      v = 0;
    return out;
  }
  for (auto& [_, l] : leases_)
    for (auto& [k, v] : l.shape)
      out[k] -= v;
  return out;
}

bool lease_queue::begin_drain() {
  if (!leases_.empty() || !queue_.empty())
    return false;
  draining_ = true;
  return true;
}

uint64_t lease_queue::reserve(resource_map shape, std::string job_id, uint64_t worker_id,
                              bool actor) {
  auto id = next_lease_id_++;
  leases_[id] = lease_record{std::move(shape), std::move(job_id), worker_id, false, actor};
  return id;
}

std::optional<uint64_t> lease_queue::release(uint64_t lease_id) {
  auto i = leases_.find(lease_id);
  if (i == leases_.end())
    return std::nullopt;
  auto wid = i->second.worker_id;
  leases_.erase(i);
  return wid;
}

void lease_queue::release_worker(uint64_t worker_id) {
  for (auto i = leases_.begin(); i != leases_.end();)
    if (i->second.worker_id == worker_id)
      i = leases_.erase(i);
    else
      ++i;
}

bool lease_queue::holds_lease(const std::string& job_id) const {
  for (auto& [_, l] : leases_)
    if (l.job_id == job_id && !l.actor)
      return true;
  return false;
}

const lease_record* lease_queue::find(uint64_t lease_id) const {
  auto i = leases_.find(lease_id);
  return i == leases_.end() ? nullptr : &i->second;
}

lease_decision lease_queue::decide_arrival(const wire::lease_request& req,
                                           const peer_capacity& self,
                                           const std::vector<peer_capacity>& peers) {
  auto d = decide_lease(req.shape, req.label_selector, self, peers, !req.spilled_from.empty());
  if (d.kind == lease_decision::infeasible)
    d = {lease_decision::queue, "", "",
         "checking whether a node can hold " + describe_shape(req.shape)};
  return d;
}

void lease_queue::enqueue(uint64_t conn_id, wire::lease_request req,
                          clock_type::time_point now) {
  queue_.push_back({conn_id, std::move(req), now});
}

void lease_queue::forget_connection(uint64_t conn_id) {
  queue_.erase(std::remove_if(queue_.begin(), queue_.end(),
                              [conn_id](auto& q) { return q.conn_id == conn_id; }),
               queue_.end());
}

bool lease_queue::set_backlog(uint64_t conn_id, uint32_t count) {
  for (auto& q : queue_)
    if (q.conn_id == conn_id) {
      q.req.backlog = count;
      return true;
    }
  return false;
}

std::vector<resource_demand> lease_queue::demands() const {
  std::vector<resource_demand> ds;
  for (auto& q : queue_) {
    // A waiting request stands for its driver's whole backlog of the shape.
    uint64_t n = std::max<uint64_t>(1, q.req.backlog);
    auto it = std::find_if(ds.begin(), ds.end(),
                           [&q](auto& d) { return d.shape == q.req.shape; });
    if (it == ds.end())
      ds.push_back({q.req.shape, n});
    else
      it->count += n;
  }
  return ds;
}

std::vector<lease_queue::departure>
lease_queue::run(const peer_capacity& self, const std::vector<peer_capacity>& peers,
                 clock_type::time_point view_at) {
  std::vector<departure> out;
  if (queue_.empty())
    return out;
  auto here = self;
  here.available = available();
  std::deque<waiting> keep;
  for (auto& q : queue_) {
    // A request spilled here is not spilled on at arrival (the sender's
    // view said it fits here); once this node's own view is newer than the
    // request and shows room elsewhere (nodes the autoscaler launched
    // meanwhile), it moves on instead of waiting for this node.
    bool stays = !q.req.spilled_from.empty() && view_at <= q.arrived;
    auto d = decide_lease(q.req.shape, q.req.label_selector, here, peers, stays);
    if (d.kind == lease_decision::grant) {
      for (auto& [k, v] : q.req.shape)
        here.available[k] -= v;
    } else if (d.kind == lease_decision::queue
               || (d.kind == lease_decision::infeasible && view_at <= q.arrived)) {
      keep.push_back(std::move(q));
      continue;
    }
    out.push_back({q.conn_id, std::move(q.req), std::move(d)});
  }
  queue_ = std::move(keep);
  return out;
}

std::vector<uint64_t>
lease_queue::rebalance(clock_type::time_point now,
                       const std::function<bool(uint64_t worker_id)>& serving) {
  std::vector<uint64_t> out;
  if (queue_.empty())
    return out;
  std::map<std::string, int> held;
  for (auto& [_, l] : leases_)
    if (!l.draining && !l.actor && serving(l.worker_id))
      ++held[l.job_id];
  for (auto& q : queue_) {
    if (now - q.arrived < fairness_delay)
      continue;
    uint64_t victim = 0;
    int most = 0;
    for (auto& [id, l] : leases_) {
      if (l.draining || l.actor || l.job_id == q.req.job_id || !serving(l.worker_id)
          || !fits(q.req.shape, l.shape))
        continue;
      if (held[l.job_id] > most) {
        most = held[l.job_id];
        victim = id;
      }
    }
    if (victim == 0 || most <= held[q.req.job_id] + 1)
      continue;
    auto& l = leases_.at(victim);
    l.draining = true;
    --held[l.job_id];
    ++held[q.req.job_id]; // as if it went to this request
    out.push_back(victim);
  }
  return out;
}

} // namespace rayd::node
