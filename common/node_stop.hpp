#pragma once
// Stopping rayd processes of this host by the pid and start time they
// recorded (node.json), never by name or process group: `rayd stop` and the
// launcher's `rayctl down` share this, so both keep the same promise.
//
// Contract: a target is signalled only while it is alive with its recorded
// start time (a recycled pid is never signalled). stop_processes sends
// SIGTERM (SIGKILL with `force`) to every target at once, waits up to
// `grace` for all of them to end, then SIGKILLs the ones still there and
// waits for those too (a bounded, short wait). Blocking; no shared state.

#include <chrono>
#include <cstdint>
#include <functional>
#include <optional>
#include <string>
#include <vector>

namespace rayd {

/// One process to stop: its pid, the start time it recorded, and how
/// messages name it ("head node 3f2a… (pid 1234)").
struct stop_target {
  int pid = 0;
  uint64_t start_ticks = 0;
  std::string what;
  bool is_head = false;
};

/// The running node recorded in `<session_dir>/node.json` (that directory
/// only), if its pid is alive with the recorded start time.
std::optional<stop_target> running_node_in(const std::string& session_dir);

/// Every running node recorded at `dir` or below (the nested sessions of
/// workers started on the head's host included).
std::vector<stop_target> running_nodes_under(const std::string& dir);

struct stop_result {
  stop_target target;
  bool killed = false;      // needed SIGKILL after the grace period
  bool still_alive = false; // survived even SIGKILL's short wait
};

/// Stops `targets` as described above. `on_kill` (optional) is called for a
/// target just before it gets SIGKILL because it outlived `grace`.
std::vector<stop_result> stop_processes(
  const std::vector<stop_target>& targets, std::chrono::milliseconds grace, bool force,
  const std::function<void(const stop_target&)>& on_kill = nullptr);

} // namespace rayd
