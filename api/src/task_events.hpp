#pragma once

// Task state changes recorded for `rayctl tasks` (docs/tasks.md): compact
// records on the hot path, turned into strings only when a report is taken.
//
// Contract: record() keeps per-state counts exactly (a task counts in the
// state it was last recorded in) and keeps the newest `max_events` changes
// and failure messages; older ones are dropped (task events are soft state).
// take() hands over what changed since the last take(): one event per task
// (its latest), and the counts.
//
// Thread rules: none of its own; the driver's state mutex guards it (record
// runs on the hot path under that mutex: a hash lookup per name, no
// allocation once a name was seen).

#include <cstdint>
#include <deque>
#include <map>
#include <string>
#include <unordered_map>
#include <vector>

#include "actors/types.hpp"

namespace rayd::core {

class task_events {
public:
  enum state : uint8_t { pending = 0, running = 1, finished = 2, failed = 3 };
  /// "never recorded" (a task's slot before its first record()).
  static constexpr uint8_t none = 255;
  static constexpr std::size_t max_events = 2000;

  /// What the head's task actor takes (actors/types.hpp): the latest event
  /// of each task, and the counts by state.
  struct report {
    std::vector<task_event> events;
    task_counts counts;
  };

  explicit task_events(std::string task_prefix) : prefix_{std::move(task_prefix)} {
  }

  /// Task `seq` entered `s`. `last` is the task's own slot (the state it was
  /// last recorded in, `none` at first); updated here.
  void record(uint64_t seq, uint8_t& last, state s, const std::string& function,
              uint32_t attempt, const std::string& node, const std::string& error = {});

  /// True if something changed since the last take().
  bool dirty() const {
    return dirty_;
  }
  report take();
  uint64_t count(state s) const {
    return counts_[s];
  }

private:
  /// A small number standing for a name (hash lookup, not a scan).
  struct interned {
    std::vector<std::string> names;
    std::unordered_map<std::string, uint32_t> index;
    uint32_t of(const std::string& s);
  };

  struct rec {
    uint64_t seq = 0;
    uint8_t state = 0;
    uint32_t attempt = 0;
    uint32_t function = 0;
    uint32_t node = 0;
    int64_t time_ms = 0;
  };

  std::string prefix_;
  std::deque<rec> events_;
  std::map<uint64_t, std::string> errors_;
  interned functions_;
  interned nodes_;
  uint64_t counts_[4] = {0, 0, 0, 0};
  bool dirty_ = false;
};

} // namespace rayd::core
