// See task_table.hpp.

#include "task_table.hpp"

namespace rayd::core {

task_table::task& task_table::add(task t) {
  t.state = t.deps_missing == 0 ? ready : waiting_deps;
  auto seq = t.seq;
  return tasks_.insert_or_assign(seq, std::move(t)).first->second;
}

task_table::task* task_table::find(uint64_t seq) {
  auto it = tasks_.find(seq);
  return it == tasks_.end() ? nullptr : &it->second;
}

bool task_table::dep_ready(uint64_t seq) {
  auto* t = find(seq);
  if (t == nullptr || t->state != waiting_deps || t->deps_missing == 0)
    return false;
  if (--t->deps_missing > 0)
    return false;
  t->state = ready;
  return true;
}

bool task_table::sent(task& t, uint64_t lease, uint64_t wire_id, clock_type::time_point at) {
  if (t.state != ready)
    return false;
  t.state = inflight;
  t.lease = lease;
  t.wire_id = wire_id;
  t.sent = at;
  return true;
}

bool task_table::lost(task& t) {
  if (t.state != inflight || t.attempt >= t.max_retries)
    return false;
  ++t.attempt;
  t.state = ready;
  t.lease = 0;
  t.wire_id = 0;
  return true;
}

std::optional<task_table::task> task_table::finish(uint64_t seq) {
  auto it = tasks_.find(seq);
  if (it == tasks_.end())
    return std::nullopt;
  auto t = std::move(it->second);
  tasks_.erase(it);
  return t;
}

} // namespace rayd::core
