#include "task_events.hpp"

#include "common/util.hpp"

namespace rayd::core {

uint32_t task_events::interned::of(const std::string& s) {
  auto [it, added] = index.emplace(s, static_cast<uint32_t>(names.size()));
  if (added)
    names.push_back(s);
  return it->second;
}

void task_events::record(uint64_t seq, uint8_t& last, state s, const std::string& function,
                         uint32_t attempt, const std::string& node, const std::string& error) {
  if (last != none && counts_[last] > 0)
    --counts_[last];
  ++counts_[s];
  last = s;
  // Names are bounded so a program with endless distinct node ids or
  // function names cannot grow this without limit.
  if (nodes_.names.size() < 4096 && functions_.names.size() < 4096) {
    events_.push_back({seq, static_cast<uint8_t>(s), attempt, functions_.of(function),
                       nodes_.of(node), now_ms()});
    if (events_.size() > max_events)
      events_.pop_front();
  }
  if (!error.empty()) {
    errors_[seq] = error;
    if (errors_.size() > max_events)
      errors_.erase(errors_.begin());
  }
  dirty_ = true;
}

task_events::report task_events::take() {
  static const char* names[] = {"PENDING", "RUNNING", "FINISHED", "FAILED"};
  report out;
  std::map<uint64_t, std::size_t> latest;
  for (auto& e : events_) {
    task_event te;
    te.task_id = prefix_ + "-" + std::to_string(e.seq);
    te.function = functions_.names[e.function];
    te.state = names[e.state];
    te.node_id = nodes_.names[e.node];
    te.attempt = e.attempt;
    te.update_time_ms = e.time_ms;
    if (auto i = errors_.find(e.seq); i != errors_.end() && e.state == failed)
      te.error = i->second;
    if (auto l = latest.find(e.seq); l != latest.end())
      out.events[l->second] = std::move(te);
    else {
      latest[e.seq] = out.events.size();
      out.events.push_back(std::move(te));
    }
  }
  events_.clear();
  dirty_ = false;
  out.counts = {counts_[pending], counts_[running], counts_[finished], counts_[failed]};
  return out;
}

} // namespace rayd::core
