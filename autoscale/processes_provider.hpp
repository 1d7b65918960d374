#pragma once
// A node provider whose nodes are real `rayd` worker processes on this host:
// the default for trying the autoscaler (Ray's fake_multinode does the same).
// Each instance runs
//
//   rayd --address=<head> --block --session-dir <base>/<cluster>/<id>
//        --token-file <file> --num-cpus N --resources JSON --labels JSON
//
// (the spec's "CPU" becomes --num-cpus, every other resource goes into
// --resources), in its own session (setsid), detached from the caller (it is
// not our child, so it outlives a crashed head and is reaped by init), with
// stdout/stderr in rayd.out / rayd.err of its session dir.
//
// State: <base>/<cluster>/instances.json records, per instance, the id, pid,
// the pid's start time, node type, tags and session dir; every change is
// written atomically (temp file + rename) under an flock on
// <base>/<cluster>/instances.lock, so a second provider object over the same
// base dir (a restarted head) lists and terminates what the first started.
// An instance is recorded before its process is spawned (pid 0) and its pid
// right after; a pid-0 record found later (the provider died in between) is
// completed from the process whose command line names its session dir.
//
// Liveness: an instance is running while its pid is alive with the recorded
// start time AND /proc/<pid>/cmdline still names its session dir; anything
// else is terminated (a recycled pid is never taken for the node, never
// signalled). terminate() sends SIGTERM to those pids only, SIGKILL after
// `terminate_grace`, and forgets the instances once their processes are gone.
// It never signals a process it did not start, never by name or group.
//
// Lifecycle of one instance: pending is never reported (the provider does not
// watch the node register; the autoscaler sees that in the GCS):
//
//   create --> running --(terminate: SIGTERM .. SIGKILL)--> forgotten
//                 |
//                 +--(process died on its own)--> terminated --(terminate)--> forgotten

#include <chrono>
#include <optional>
#include <string>
#include <vector>

#include <sys/types.h>

#include "autoscale/node_provider.hpp"

namespace rayd::autoscale {

struct processes_provider_options {
  /// The cluster name tagged on every instance; also the state subdirectory.
  /// Required: letters, digits, '-', '_', '.'.
  std::string cluster_name;
  /// The head's cluster address (HOST:PORT) the nodes join. Required.
  std::string head_address;
  /// The cluster token file passed to every node (--token-file). Required:
  /// nodes never join without the token.
  std::string token_file;
  /// Where session dirs and the state file live.
  /// Default: $RAYD_TMPDIR/autoscaler (common/session.hpp's rayd_tmpdir()).
  std::string base_dir;
  /// The rayd binary. Default: `rayd` next to this process's executable.
  std::string rayd_binary;
  /// SIGTERM → SIGKILL delay of terminate(). Default: 5 s.
  std::chrono::milliseconds terminate_grace{5000};
  /// Extra flags for every node (e.g. {"--bind", "127.0.0.1"}). Default: none.
  std::vector<std::string> extra_args;
};

class processes_provider : public node_provider {
 public:
  explicit processes_provider(processes_provider_options options);

  std::string kind() const override { return "processes"; }
  caf::expected<std::vector<std::string>> create(const instance_spec& spec,
                                                 int32_t count) override;
  caf::error terminate(const std::vector<std::string>& instance_ids) override;
  caf::expected<std::vector<provider_instance>> list() override;

  /// <base>/<cluster>: the session dirs and the state file.
  std::string cluster_dir() const;
  /// The session dir of instance `id`.
  std::string session_dir(const std::string& id) const;
  /// The recorded pid of instance `id`, if it is known and still that process.
  std::optional<pid_t> pid_of(const std::string& id);

 private:
  processes_provider_options options_;
};

} // namespace rayd::autoscale
