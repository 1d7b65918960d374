// The GCS task actor: what drivers report about their tasks, for `rayctl
// tasks` and the task counts of `rayctl status`. Soft state: kept in memory,
// bounded (the newest events win), never persisted — a driver re-reports.

#include <algorithm>
#include <deque>
#include <map>

#include <caf/all.hpp>

#include "actors/gcs/spawn.hpp"

namespace rayd::gcs {

namespace {

using clock_type = std::chrono::steady_clock;

/// A driver that has not reported for this long no longer counts.
constexpr auto driver_timeout = std::chrono::seconds{10};

struct task_state_t {
  std::size_t max_events = 10000;
  std::map<std::string, task_event> events; // by task id
  std::deque<std::pair<int64_t, std::string>> order; // (update time, id), oldest first
  std::map<std::string, std::pair<task_counts, clock_type::time_point>> drivers;
  static inline const char* name = "rayd.gcs.tasks";
};

using task_actor_t = gcs_task_actor::stateful_pointer<task_state_t>;

} // namespace

gcs_task_actor spawn_task_actor(caf::actor_system& sys, std::size_t max_events) {
  return sys.spawn([max_events](task_actor_t self) -> gcs_task_actor::behavior_type {
    self->state.max_events = max_events;
    return {
      [self](atoms::task_report, std::string& job, task_counts counts,
             std::vector<task_event>& events) {
        auto& st = self->state;
        st.drivers[job] = {counts, clock_type::now()};
        for (auto& e : events) {
          e.job_id = job;
          st.order.emplace_back(e.update_time_ms, e.task_id);
          st.events[e.task_id] = std::move(e);
        }
        // Evict the oldest; an id re-reported later stays (its newer entry
        // in `order` keeps it).
        while (st.events.size() > st.max_events && !st.order.empty()) {
          auto [t, id] = st.order.front();
          st.order.pop_front();
          auto i = st.events.find(id);
          if (i != st.events.end() && i->second.update_time_ms == t)
            st.events.erase(i);
        }
        if (st.order.size() > 4 * st.max_events) {
          std::deque<std::pair<int64_t, std::string>> fresh;
          for (auto& [t, id] : st.order)
            if (auto i = st.events.find(id); i != st.events.end() && i->second.update_time_ms == t)
              fresh.emplace_back(t, id);
          st.order = std::move(fresh);
        }
      },
      [self](atoms::task_list, uint32_t limit) {
        auto& st = self->state;
        std::vector<task_event> out;
        out.reserve(st.events.size());
        for (auto& [_, e] : st.events)
          out.push_back(e);
        std::sort(out.begin(), out.end(), [](auto& a, auto& b) {
          return a.update_time_ms > b.update_time_ms;
        });
        if (out.size() > limit)
          out.resize(limit);
        task_counts total;
        auto now = clock_type::now();
        for (auto i = st.drivers.begin(); i != st.drivers.end();) {
          if (now - i->second.second > driver_timeout) {
            i = st.drivers.erase(i);
            continue;
          }
          total.pending += i->second.first.pending;
          total.running += i->second.first.running;
          total.finished += i->second.first.finished;
          total.failed += i->second.first.failed;
          ++i;
        }
        return task_list_reply{std::move(out), total};
      },
    };
  });
}

} // namespace rayd::gcs
