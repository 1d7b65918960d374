#include "common/node_stop.hpp"

#include <signal.h>

#include <thread>

#include "common/session.hpp"

namespace rayd {

namespace {

std::optional<stop_target> target_of(const node_file& nf) {
  if (nf.pid <= 0 || nf.pid_start_ticks == 0)
    return std::nullopt;
  if (process_start_ticks(nf.pid) != nf.pid_start_ticks)
    return std::nullopt; // gone, or the pid now belongs to another process
  return stop_target{nf.pid, nf.pid_start_ticks,
                     std::string{nf.is_head ? "head" : "worker"} + " node " + nf.node_id
                       + " (pid " + std::to_string(nf.pid) + ")",
                     nf.is_head};
}

bool alive(const stop_target& t) {
  return process_start_ticks(t.pid) == t.start_ticks;
}

// Polls until no target in `xs` is alive or `deadline` passes.
bool wait_gone(const std::vector<stop_result>& xs,
               std::chrono::steady_clock::time_point deadline) {
  for (;;) {
    bool any = false;
    for (auto& x : xs)
      any = any || alive(x.target);
    if (!any)
      return true;
    if (std::chrono::steady_clock::now() >= deadline)
      return false;
    std::this_thread::sleep_for(std::chrono::milliseconds{10});
  }
}

} // namespace

std::optional<stop_target> running_node_in(const std::string& session_dir) {
  auto nf = read_node_file(session_dir);
  if (!nf)
    return std::nullopt;
  return target_of(*nf);
}

std::vector<stop_target> running_nodes_under(const std::string& dir) {
  std::vector<stop_target> out;
  for (auto& [path, nf] : node_files_under(dir))
    if (auto t = target_of(nf))
      out.push_back(std::move(*t));
  return out;
}

std::vector<stop_result> stop_processes(
  const std::vector<stop_target>& targets, std::chrono::milliseconds grace, bool force,
  const std::function<void(const stop_target&)>& on_kill) {
  std::vector<stop_result> out;
  for (auto& t : targets)
    out.push_back({t, force, false});
  for (auto& x : out)
    if (alive(x.target)) // re-checked right before the signal
      ::kill(x.target.pid, force ? SIGKILL : SIGTERM);
  auto now = std::chrono::steady_clock::now();
  if (!wait_gone(out, now + grace)) {
    for (auto& x : out)
      if (alive(x.target)) {
        if (on_kill)
          on_kill(x.target);
        x.killed = true;
        ::kill(x.target.pid, SIGKILL);
      }
    wait_gone(out, std::chrono::steady_clock::now() + std::chrono::seconds{5});
  }
  for (auto& x : out)
    x.still_alive = alive(x.target);
  return out;
}

} // namespace rayd
