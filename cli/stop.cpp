// `rayd stop`: ends the rayd processes recorded in one session directory (and
// the sessions nested in it), never anything else: a pid is signalled only if
// it is alive with the start time recorded in its node.json.

#include <algorithm>
#include <chrono>
#include <filesystem>
#include <iostream>

#include "cli/daemon.hpp"
#include "common/node_stop.hpp"
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
  auto targets = running_nodes_under(dir);
  if (targets.empty()) {
    std::cout << "rayd stop: no running rayd process in " << dir << std::endl;
    return 0;
  }
  // Workers first, so they do not spend the grace period reconnecting.
  std::stable_sort(targets.begin(), targets.end(),
                   [](auto& a, auto& b) { return !a.is_head && b.is_head; });
  auto grace = std::chrono::duration_cast<std::chrono::milliseconds>(
    std::chrono::duration<double>{o.grace_period_s});
  auto results = stop_processes(targets, grace, o.force, [](const stop_target& t) {
    std::cerr << "rayd stop: " << t.what << " ignored SIGTERM; sending SIGKILL" << std::endl;
  });
  for (auto& r : results)
    std::cout << "stopped " << r.target.what << std::endl;
  return 0;
}

} // namespace rayd::cli
