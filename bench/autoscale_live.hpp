#pragma once
// `rayd-bench autoscale`: issue 10's live figures, with real processes on
// loopback (docs/autoscaler.md, "Benchmark"). A head with 0 CPUs runs the
// autoscaler (`--autoscaling-config`, provider `processes`) in a private
// RAYD_TMPDIR, every port 0; demand is submitted and the nodes it brings up
// are watched through the API (status every `poll_ms`):
//
//   first node   one head for all runs; per run, demand for one 2-CPU node,
//                submitted two ways in turn — a driver program
//                (autoscale_driver --case tasks, from its spawn: a bound that
//                includes the driver's own start) and an explicit resource
//                request (request_resources, a precise clock) — then the
//                time until the new node is ALIVE in the GCS; the run ends
//                once the node was terminated after the idle timeout (so the
//                next run starts from no workers).
//   burst        a fresh head; one driver with `burst_nodes` x CPUs 1-CPU
//                tasks long enough to need every node at once → time until
//                all of them are ALIVE, how many were launched (exactly
//                `burst_nodes`: no overshoot) and how long after the work
//                ended they were all terminated.
//
// Times are wall-clock milliseconds of this host on both sides (ours, the
// GCS's node start_time_ms, the instance history's time_ms), so a breakdown
// (decided, create called, process started, joined, seen) is in one clock.
//
// The simulated issue-10 figures (autoscale-policy, autoscale-trace with
// their defaults) are added under "simulated" unless `simulated` is false, so
// one command prints every figure of the issue.
//
// Clean-up: the worker nodes are not children of the head (the provider
// detaches them); after stopping the head the benchmark terminates whatever
// the provider's state file still lists, through autoscale::processes_provider
// (by recorded pid, checked against its start time and command line). On an
// interrupt (SIGINT, SIGTERM, SIGHUP) every node the state file named is
// SIGKILLed if its /proc/<pid>/cmdline still names its session dir, before
// bench_util's clean-up kills our own children and removes the temp dirs.

#include <string>

#include <nlohmann/json_fwd.hpp>

#include "bench/bench_util.hpp"

namespace rayd::bench {

struct autoscale_live_options {
  int runs = 5;                 // first-node samples per demand kind
  double poll_ms = 5;           // status poll interval
  double idle_timeout_s = 1;    // idle_timeout_seconds of the config
  double worker_cpus = 2;       // CPUs of the first-node worker type
  int burst_nodes = 20;         // max_workers of the burst, and nodes needed
  double burst_worker_cpus = 1; // CPUs of the burst's worker type
  int burst_task_ms = 8000;     // long enough for every node to be needed at once
  double upscaling_speed = 1.0; // of both configs (Ray's default)
  double settle_ms = 1000;      // pause after a scale-down, before the next demand
  double timeout_s = 120;       // per wait
  bool simulated = true;        // also run autoscale-policy and autoscale-trace
  std::string driver;           // autoscale_driver (empty: the build's)
};

nlohmann::json run_autoscale_live(const settings& s, const autoscale_live_options& o);

} // namespace rayd::bench
