// rayd-bench: the benchmark harness of rayd. Starts real rayd processes on
// loopback in private temporary directories, measures, stops them, and prints
// one JSON object per workload run on stdout (progress on stderr).
//
//   rayd-bench cluster-start [--runs 5] [--compare-dask]
//   rayd-bench join [--nodes 100] [--idle-seconds 10]
//   rayd-bench kv [--clients 16] [--seconds 5]
//   rayd-bench failure-detect [--runs 5]
//   rayd-bench jobs [--runs 30] [--queued 1000] [--compare-slurm]
//   rayd-bench autoscale [--runs 5] [--burst-nodes 20] [--no-simulated]
//                             (issue 10's live figures with real processes, plus
//                              autoscale-policy and autoscale-trace)
//   rayd-bench autoscale-trace [--seed 1] [--write-trace FILE] [--replay FILE]
//   rayd-bench rayctl-pipe [--lines 10000] [--runs 5]
//                             (the policy replayed on a demand trace, simulated)
//   rayd-bench micro [--seconds 2] [--clients 4] [--compare-dask]
//   rayd-bench client [--seconds 2] [--runs 3] [--gigabytes 2]
//                             (issue 11's remote client: Ray's client__ figures,
//                              the drivers reaching the head's API port only)
//   rayd-bench all [--compare-dask] [--compare-slurm]
//                             (every workload; a JSON array, which
//                              bench/results_table.py turns into the table
//                              of bench/RESULTS.md)
//
// Common flags: --bin-dir (where rayd lives), --tmp-root, --keep-temp, --pretty.

#include <unistd.h>

#include <iostream>

#include <CLI/CLI.hpp>
#include <nlohmann/json.hpp>

#include "bench/autoscale_live.hpp"
#include "bench/autoscale_policy.hpp"
#include "bench/autoscale_trace.hpp"
#include "bench/client_bench.hpp"
#include "bench/rayctl_pipe.hpp"
#include "bench/bench_util.hpp"
#include "bench/build_info.hpp"
#include "bench/workloads.hpp"

#ifndef RAYD_DEFAULT_BIN_DIR
#define RAYD_DEFAULT_BIN_DIR "build/cli"
#endif

int main(int argc, char** argv) {
  using namespace rayd::bench;
  CLI::App app{"rayd-bench: benchmarks of a local rayd cluster (loopback only)"};
  app.require_subcommand(1);
  app.fallthrough();

  settings s;
  s.bin_dir = RAYD_DEFAULT_BIN_DIR;
  if (const char* t = std::getenv("TMPDIR"); t != nullptr && *t != '\0')
    s.tmp_root = t;
  bool pretty = false;
  app.add_option("--bin-dir", s.bin_dir, "Directory holding the rayd binary")
    ->capture_default_str();
  app.add_option("--tmp-root", s.tmp_root,
                 "Where the private RAYD_TMPDIRs are created (default $TMPDIR "
                 "or /tmp); the head's RocksDB lives there too")
    ->capture_default_str();
  app.add_flag("--keep-temp", s.keep_temp,
               "Keep the temporary directories (logs, storage) for inspection");
  app.add_flag("--pretty", pretty, "Indent the JSON output");

  cluster_start_options cs;
  auto* start = app.add_subcommand(
    "cluster-start", "Head + 2 workers until all ALIVE (target <= 500 ms)");
  start->add_option("--runs", cs.runs, "Repetitions")->capture_default_str();
  start->add_option("--poll-ms", cs.poll_ms, "Status poll interval")
    ->capture_default_str();
  start->add_flag("--compare-dask", cs.compare_dask,
                  "Also time Dask's LocalCluster(n_workers=2) (needs "
                  "python3-distributed)");
  start->add_option("--python", cs.python,
                    "Python for the Dask comparison (default: python3, then "
                    "/usr/bin/python3)");
  start->add_option("--dask-script", cs.dask_script,
                    "Path of dask_cluster_start.py");

  join_options jo;
  auto* join = app.add_subcommand(
    "join", "N workers join one head; head RSS and idle CPU");
  join->add_option("--nodes", jo.nodes, "Worker nodes to start")
    ->capture_default_str();
  join->add_option("--poll-ms", jo.poll_ms, "Status poll interval")
    ->capture_default_str();
  join->add_option("--idle-seconds", jo.idle_seconds,
                   "Window over which the head's idle CPU is measured")
    ->capture_default_str();
  join->add_option("--settle-seconds", jo.settle_seconds,
                   "Pause between all ALIVE and the idle window")
    ->capture_default_str();
  join->add_option("--timeout", jo.timeout_seconds,
                   "Give up if not all ALIVE after this many seconds")
    ->capture_default_str();

  kv_options kv;
  auto* kvc = app.add_subcommand(
    "kv", "Durable KV writes/s through the API (target >= 20k/s at 16 clients)");
  kvc->add_option("--clients", kv.clients, "Concurrent clients (threads)")
    ->capture_default_str();
  kvc->add_option("--seconds", kv.seconds, "Duration")->capture_default_str();
  kvc->add_option("--key-bytes", kv.key_bytes, "Key size (>= 16)")
    ->capture_default_str()
    ->check(CLI::Range(16, 1024));
  kvc->add_option("--value-bytes", kv.value_bytes, "Value size")
    ->capture_default_str()
    ->check(CLI::Range(0, 1 << 20));

  failure_options fo;
  auto* fd = app.add_subcommand(
    "failure-detect", "SIGKILL and SIGSTOP detection latency of a worker");
  fd->add_option("--runs", fo.runs, "Repetitions per signal")
    ->capture_default_str();
  fd->add_option("--poll-ms", fo.poll_ms, "Status poll interval")
    ->capture_default_str();

  jobs_options jb;
  auto* jobs = app.add_subcommand(
    "jobs", "Job submission: submit->RUNNING, submit->SUCCEEDED for `true` (target "
            "median <= 50 ms), N queued jobs drained");
  jobs->add_option("--runs", jb.runs, "Samples per latency")->capture_default_str();
  jobs->add_option("--queued", jb.queued, "Queued jobs to drain")->capture_default_str();
  jobs->add_option("--submitters", jb.submitters, "Client threads submitting them")
    ->capture_default_str();
  jobs->add_flag("--compare-slurm", jb.compare_slurm,
                 "Also run bench/slurm_jobs.py (a private single-node Slurm)");
  jobs->add_option("--slurm-queued", jb.slurm_queued,
                   "Jobs in Slurm's drain (stock Slurm runs ~1 job/s here)")
    ->capture_default_str();
  jobs->add_option("--python", jb.python, "Python for the Slurm script");
  jobs->add_option("--slurm-script", jb.slurm_script, "Path of slurm_jobs.py");

  autoscale_live_options al;
  bool no_simulated = false;
  auto* live = app.add_subcommand(
    "autoscale", "The autoscaler with real rayd processes: demand -> first new node ALIVE "
                 "(target <= 1 s), 20 nodes from one burst (no overshoot) and their "
                 "scale-down; plus autoscale-policy and autoscale-trace's figures");
  live->add_option("--runs", al.runs, "First-node samples per kind of demand")
    ->capture_default_str()
    ->check(CLI::Range(1, 100));
  live->add_option("--poll-ms", al.poll_ms, "Status poll interval")
    ->capture_default_str()
    ->check(CLI::PositiveNumber);
  live->add_option("--idle-timeout", al.idle_timeout_s, "idle_timeout_seconds of the configs")
    ->capture_default_str()
    ->check(CLI::PositiveNumber);
  live->add_option("--worker-cpus", al.worker_cpus, "CPUs of the first-node worker type")
    ->capture_default_str()
    ->check(CLI::PositiveNumber);
  live->add_option("--burst-nodes", al.burst_nodes, "Nodes the burst needs (its max_workers)")
    ->capture_default_str()
    ->check(CLI::Range(1, 200));
  live->add_option("--burst-worker-cpus", al.burst_worker_cpus, "CPUs of the burst's worker type")
    ->capture_default_str()
    ->check(CLI::Range(1, 16));
  live->add_option("--burst-task-ms", al.burst_task_ms,
                   "Duration of each burst task (long enough to need every node at once)")
    ->capture_default_str()
    ->check(CLI::Range(100, 600000));
  live->add_option("--upscaling-speed", al.upscaling_speed, "upscaling_speed of the configs")
    ->capture_default_str()
    ->check(CLI::NonNegativeNumber);
  live->add_option("--settle-ms", al.settle_ms,
                   "Pause after a first-node run's scale-down before the next demand")
    ->capture_default_str()
    ->check(CLI::NonNegativeNumber);
  live->add_option("--timeout", al.timeout_s, "Seconds any one wait may take")
    ->capture_default_str()
    ->check(CLI::PositiveNumber);
  live->add_option("--driver", al.driver, "Path of autoscale_driver (default: the build's)");
  live->add_flag("--no-simulated", no_simulated,
                 "Skip the simulated figures (autoscale-policy, autoscale-trace)");

  autoscale_policy_options ap;
  auto* policy = app.add_subcommand(
    "autoscale-policy", "The autoscaler's decision time with 1,000 nodes and 10,000 pending "
                        "shapes (target <= 50 ms), and 1,000 launches in one round");
  policy->add_option("--runs", ap.runs, "decide() calls per scenario (median reported)")
    ->capture_default_str()
    ->check(CLI::PositiveNumber);

  rayctl_pipe_options rp;
  auto* pipe = app.add_subcommand(
    "rayctl-pipe", "rayctl actor call --stdin: N piped actor calls per rayctl run, calls/s "
                   "with rayctl's start included (target >= 20,000/s)");
  pipe->add_option("--lines", rp.lines, "Requests per run")
    ->capture_default_str()
    ->check(CLI::PositiveNumber);
  pipe->add_option("--runs", rp.runs, "Runs (median reported)")
    ->capture_default_str()
    ->check(CLI::PositiveNumber);
  pipe->add_option("--lib", rp.lib, "examples/scripting's task library (default: the build's)");

  autoscale_trace_options at;
  auto* trace = app.add_subcommand(
    "autoscale-trace", "The autoscaler's policy replayed on a simulated day of demand: "
                       "node-seconds vs an oracle's bound (target <= 1.3x), p95 extra wait "
                       "(target <= 1 round), no flapping");
  trace->add_option("--seed", at.trace.seed, "Seed of the trace generator")->capture_default_str();
  trace->add_option("--length", at.trace.length_s, "Simulated seconds of arrivals")
    ->capture_default_str()
    ->check(CLI::PositiveNumber);
  trace->add_option("--write-trace", at.write_trace,
                    "Write the trace to this file (JSON lines)");
  trace->add_option("--replay", at.replay,
                    "Replay this JSON-lines trace (as --write-trace writes) instead of "
                    "generating one");
  trace->add_option("--round", at.round_s, "Simulated seconds per autoscaler round")
    ->capture_default_str()
    ->check(CLI::PositiveNumber);
  trace->add_option("--launch-delay", at.launch_delay_rounds, "Rounds from launch to ALIVE")
    ->capture_default_str()
    ->check(CLI::NonNegativeNumber);
  trace->add_option("--worker-cpus", at.worker_cpus, "CPUs of the worker type")
    ->capture_default_str()
    ->check(CLI::PositiveNumber);
  trace->add_option("--max-workers", at.max_workers, "max_workers of the cluster and type")
    ->capture_default_str()
    ->check(CLI::PositiveNumber);
  trace->add_option("--idle-timeout", at.idle_timeout_s, "Idle timeout, simulated seconds")
    ->capture_default_str()
    ->check(CLI::PositiveNumber);
  trace->add_option("--upscaling-speed", at.upscaling_speed, "upscaling_speed")
    ->capture_default_str()
    ->check(CLI::PositiveNumber);
  trace->add_option("--placement", at.placement,
                    "How work is placed on nodes: spread (rayd's rules), pack (fullest node "
                    "that fits), first_fit (launch order)")
    ->capture_default_str()
    ->check(CLI::IsMember({"spread", "pack", "first_fit"}));
  trace->add_flag("--actors-first", at.actors_first,
                  "Place waiting actors before waiting tasks each round (default: one FIFO "
                  "by arrival)");

  micro_options mo;
  auto* micro = app.add_subcommand(
    "micro", "Ray's microbenchmarks (single_client_tasks_sync, ...) through "
             "rayd-micro-driver, a loopback TCP ping-pong floor, optionally Dask");
  micro->add_option("--seconds", mo.seconds, "Timed window of each workload")
    ->capture_default_str()
    ->check(CLI::PositiveNumber);
  micro->add_option("--clients", mo.clients,
                    "Driver processes of multi_client_tasks_async")
    ->capture_default_str()
    ->check(CLI::Range(1, 64));
  micro->add_option("--transfer-runs", mo.transfer_runs,
                    "Samples of object_transfer_gbps (1 GiB each; median reported)")
    ->capture_default_str()
    ->check(CLI::Range(1, 20));
  micro->add_option("--pingpong-seconds", mo.pingpong_seconds,
                    "Duration of each tcp_pingpong sample")
    ->capture_default_str()
    ->check(CLI::PositiveNumber);
  micro->add_flag("--compare-dask", mo.compare_dask,
                  "Also run the task workloads on Dask (bench/dask_micro.py; needs "
                  "python3-distributed)");
  micro->add_option("--python", mo.python,
                    "Python for the Dask comparison (default: python3, then "
                    "/usr/bin/python3)");
  micro->add_option("--dask-script", mo.dask_script, "Path of dask_micro.py");
  micro->add_option("--only", mo.only,
                    "Run just these metrics (e.g. --only single_client_get_calls); "
                    "a partial run, for trying things out")
    ->delimiter(',');
  micro->add_option("--driver", mo.driver,
                    "Path of rayd-micro-driver (default: next to rayd-bench)");

  client_bench_options cb;
  auto* client = app.add_subcommand(
    "client", "Ray's client__ figures with every driver a remote client (rayd://HOST:API_PORT "
              "only), tcp_pingpong of the same run, and the head's extra memory during a "
              "2 GiB put and get (targets: sync >= 0.4x tcp_pingpong, async >= 50,000/s, "
              "put >= 0.5 GB/s, head <= 64 MiB)");
  client->add_option("--seconds", cb.seconds, "Timed window of each rate workload")
    ->capture_default_str()
    ->check(CLI::PositiveNumber);
  client->add_option("--runs", cb.runs, "Repetitions of every figure (median reported)")
    ->capture_default_str()
    ->check(CLI::Range(1, 50));
  client->add_option("--gigabytes", cb.gigabytes,
                     "GiB of the put and get over which the head's memory is sampled")
    ->capture_default_str()
    ->check(CLI::Range(0.001, 64.0));
  client->add_option("--put-gib", cb.put_gibibytes,
                     "GiB of each put of client__put_gigabytes")
    ->capture_default_str()
    ->check(CLI::Range(0.001, 64.0));
  client->add_option("--pingpong-seconds", cb.pingpong_seconds,
                     "Duration of each tcp_pingpong sample")
    ->capture_default_str()
    ->check(CLI::PositiveNumber);
  client->add_option("--sample-ms", cb.sample_ms, "Period of the head's memory samples")
    ->capture_default_str()
    ->check(CLI::Range(1.0, 1000.0));
  client->add_option("--only", cb.only,
                     "Run just these figures (e.g. --only client__put_calls); a partial "
                     "run, for trying things out")
    ->delimiter(',');
  client->add_flag("--in-cluster", cb.in_cluster,
                   "Run the same drivers inside the cluster instead of as remote clients "
                   "(for comparison; the output's \"mode\" says so)");
  client->add_option("--micro-driver", cb.micro_driver,
                     "Path of rayd-micro-driver (default: next to rayd-bench)");
  client->add_option("--client-driver", cb.client_driver,
                     "Path of rayd-client-driver (default: next to rayd-bench)");

  bool all_dask = false;
  auto* all = app.add_subcommand(
    "all", "Every workload with its defaults (kv with 16 and with 1 client); "
           "a JSON array");
  all->add_flag("--compare-dask", all_dask,
                "Include the Dask comparisons (cluster-start, micro)");
  all->add_flag("--compare-slurm", jb.compare_slurm,
                "Include the Slurm comparison (jobs; needs slurm-wlm and munge)");
  all->add_option("--nodes", jo.nodes, "join: worker nodes")
    ->capture_default_str();

  try {
    app.parse(argc, argv);
  } catch (const CLI::ParseError& e) {
    int rc = app.exit(e);
    return rc == 0 ? 0 : 2; // usage errors: exit code 2, as rayd does
  }

  // The autoscale workloads are simulated: they start no rayd.
  bool simulated = *policy || *trace;
  if (!simulated && ::access((s.bin_dir + "/rayd").c_str(), X_OK) != 0) {
    std::cerr << "rayd-bench: no executable rayd in " << s.bin_dir
              << " (pass --bin-dir)" << std::endl;
    return 2;
  }
  install_signal_cleanup();

  // Every object printed names the commit it was built from, so a figure can
  // be traced to its code (the workloads add background_busy_pct).
  auto stamp = [](nlohmann::json& j) {
    if (j.is_object())
      j["build"] = {{"commit", build_commit()}, {"dirty", build_dirty()}};
  };
  auto print = [&](nlohmann::json j) {
    if (j.is_array())
      for (auto& e : j)
        stamp(e);
    else
      stamp(j);
    std::cout << (pretty ? j.dump(2) : j.dump()) << std::endl;
  };
  auto failed = [](const nlohmann::json& j) {
    return j.is_object() && j.contains("error");
  };

  try {
    if (*start) {
      auto j = run_cluster_start(s, cs);
      print(j);
      return failed(j) ? 1 : 0;
    }
    if (*join) {
      auto j = run_join(s, jo);
      print(j);
      return failed(j) ? 1 : 0;
    }
    if (*kvc) {
      auto j = run_kv(s, kv);
      print(j);
      return failed(j) ? 1 : 0;
    }
    if (*fd) {
      auto j = run_failure_detect(s, fo);
      print(j);
      return failed(j) ? 1 : 0;
    }
    if (*jobs) {
      auto j = run_jobs(s, jb);
      print(j);
      return failed(j) ? 1 : 0;
    }
    if (*live) {
      al.simulated = !no_simulated;
      raise_nofile_limit();
      auto j = run_autoscale_live(s, al);
      print(j);
      return failed(j) ? 1 : 0;
    }
    if (*pipe) {
      auto j = run_rayctl_pipe(s, rp);
      print(j);
      return failed(j) ? 1 : 0;
    }
    if (*policy) {
      auto j = run_autoscale_policy(ap);
      print(j);
      return failed(j) ? 1 : 0;
    }
    if (*trace) {
      at.trace.capacity_cpus = at.max_workers * at.worker_cpus;
      at.trace.idle_timeout_s = at.idle_timeout_s;
      auto j = run_autoscale_trace(at);
      if (!failed(j))
        j["machine"] = machine_info();
      print(j);
      return failed(j) ? 1 : 0;
    }
    if (*micro) {
      auto j = run_micro(s, mo);
      print(j);
      return failed(j) ? 1 : 0;
    }
    if (*client) {
      auto j = run_client(s, cb);
      print(j);
      return failed(j) ? 1 : 0;
    }
    if (*all) {
      auto out = nlohmann::json::array();
      cs.compare_dask = all_dask;
      out.push_back(run_cluster_start(s, cs));
      out.push_back(run_join(s, jo));
      out.push_back(run_kv(s, kv));
      kv_options one = kv;
      one.clients = 1;
      out.push_back(run_kv(s, one));
      out.push_back(run_failure_detect(s, fo));
      out.push_back(run_jobs(s, jb));
      mo.compare_dask = all_dask;
      out.push_back(run_micro(s, mo));
      print(out);
      for (auto& j : out)
        if (failed(j))
          return 1;
      return 0;
    }
  } catch (const std::exception& e) {
    std::cerr << "rayd-bench: " << e.what() << std::endl;
    return 1;
  }
  return 2;
}
