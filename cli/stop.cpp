// `rayd stop`: ends the rayd processes recorded in one session directory (and
// the sessions nested in it), never anything else: a pid is signalled only if
// it is alive with the start time recorded in its node.json.

#include <signal.h>

#include <chrono>
#include <filesystem>
#include <iostream>
#include <thread>

#include "cli/daemon.hpp"
#include "common/session.hpp"

namespace fs = std::filesystem;

namespace rayd::cli {

int run_stop(const stop_options& o) {
  std::string dir = o.session_dir;
  if (dir.empty()) {
    std::error_code ec;
    auto latest = fs::path{rayd_tmpdir()} / "session_latest";
    dir = fs::canonical(latest, ec).string();
    if (ec) {
      std::cout << "rayd stop: no session at " << latest.string()
                << "; nothing to stop" << std::endl;
      return 0;
    }
  }
  if (!fs::is_directory(dir)) {
    std::cerr << "rayd stop: " << dir << " is not a session directory" << std::endl;
    return 1;
  }
  struct target {
    int pid;
    uint64_t ticks;
    std::string what;
  };
  std::vector<target> targets;
  for (auto& [path, nf] : node_files_under(dir)) {
    if (nf.pid <= 0 || nf.pid_start_ticks == 0)
      continue;
    if (process_start_ticks(nf.pid) != nf.pid_start_ticks)
      continue; // gone, or the pid now belongs to another process
    targets.push_back({nf.pid, nf.pid_start_ticks,
                       std::string{nf.is_head ? "head" : "worker"} + " node "
                         + nf.node_id + " (pid " + std::to_string(nf.pid) + ")"});
  }
  if (targets.empty()) {
    std::cout << "rayd stop: no running rayd process in " << dir << std::endl;
    return 0;
  }
  // Workers first, so they do not spend the grace period reconnecting.
  std::stable_sort(targets.begin(), targets.end(), [](auto& a, auto& b) {
    return a.what.rfind("worker", 0) == 0 && b.what.rfind("head", 0) == 0;
  });
  auto alive = [](const target& t) { return process_start_ticks(t.pid) == t.ticks; };
  for (auto& t : targets)
    ::kill(t.pid, o.force ? SIGKILL : SIGTERM);
  auto deadline = std::chrono::steady_clock::now()
                  + std::chrono::duration<double>{o.grace_period_s};
  for (;;) {
    bool any = false;
    for (auto& t : targets)
      any = any || alive(t);
    if (!any)
      break;
    if (std::chrono::steady_clock::now() >= deadline) {
      for (auto& t : targets)
        if (alive(t)) {
          std::cerr << "rayd stop: " << t.what
                    << " ignored SIGTERM; sending SIGKILL" << std::endl;
          ::kill(t.pid, SIGKILL);
        }
      break;
    }
    std::this_thread::sleep_for(std::chrono::milliseconds{10});
  }
  for (auto& t : targets)
    std::cout << "stopped " << t.what << std::endl;
  return 0;
}

} // namespace rayd::cli
