#pragma once
// The workloads of rayd-bench. Each returns one JSON object describing the
// run (figures, samples, targets met or not, and anything odd seen in the
// processes' logs); progress goes to stderr.

#include <string>
#include <vector>

#include <nlohmann/json_fwd.hpp>

#include "bench/bench_util.hpp"

namespace rayd::bench {

struct cluster_start_options {
  int runs = 5;
  double poll_ms = 5;
  bool compare_dask = false;
  std::string python;      // empty: try python3, then /usr/bin/python3
  std::string dask_script; // empty: <source dir>/dask_cluster_start.py
};

struct join_options {
  int nodes = 100;
  double poll_ms = 20;
  double idle_seconds = 10;
  double settle_seconds = 2;
  double timeout_seconds = 120;
};

struct kv_options {
  int clients = 16;
  double seconds = 5;
  int key_bytes = 16;
  int value_bytes = 64;
};

struct failure_options {
  int runs = 5;
  double poll_ms = 2;
  double settle_ms = 300;
};

struct jobs_options {
  int runs = 30;         // submit → RUNNING and submit → SUCCEEDED samples
  int queued = 1000;     // jobs submitted at once and drained
  int submitters = 4;    // client threads submitting the queued jobs
  bool compare_slurm = false;
  int slurm_queued = 100; // jobs in Slurm's drain (it runs ~1 job/s stock)
  std::string python;       // empty: python3
  std::string slurm_script; // empty: <source dir>/slurm_jobs.py
};

nlohmann::json run_jobs(const settings& s, const jobs_options& o);

/// `micro`: Ray's microbenchmarks (ray/_private/ray_perf.py names) through
/// rayd-micro-driver on a head (--num-cpus 2) and one worker node
/// (--num-cpus 1, resource "far"), a loopback TCP ping-pong floor measured in
/// the same run, and optionally the task workloads on Dask (dask_micro.py).
struct micro_options {
  double seconds = 2;          // timed window of each workload
  int clients = 4;             // multi_client_tasks_async driver processes
  int transfer_runs = 5;       // object_transfer_gbps samples (median reported)
  double pingpong_seconds = 2; // each tcp_pingpong sample
  bool compare_dask = false;
  std::string python;      // empty: try python3, then /usr/bin/python3
  std::string dask_script; // empty: <source dir>/dask_micro.py
  std::string driver;      // empty: rayd-micro-driver next to rayd-bench
  std::vector<std::string> only; // empty: every metric; else just these names
};

nlohmann::json run_micro(const settings& s, const micro_options& o);

nlohmann::json run_cluster_start(const settings& s, const cluster_start_options& o);
nlohmann::json run_join(const settings& s, const join_options& o);
nlohmann::json run_kv(const settings& s, const kv_options& o);
nlohmann::json run_failure_detect(const settings& s, const failure_options& o);

/// Machine-wide busy CPU (% of all cores) over `ms` before a workload starts:
/// other work on the host (a build, say) skews every figure; say so.
double background_busy_pct(const std::string& workload, double ms = 500);

/// nproc, kernel, CPU model.
nlohmann::json machine_info();

} // namespace rayd::bench
