#pragma once
// The workloads of rayd-bench. Each returns one JSON object describing the
// run (figures, samples, targets met or not, and anything odd seen in the
// processes' logs); progress goes to stderr.

#include <memory>
#include <string>
#include <vector>

#include <nlohmann/json.hpp>

#include "bench/bench_util.hpp"

namespace rayd {
struct cluster_view;
namespace rpc {
class client;
} // namespace rpc
} // namespace rayd

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

// ------------------------------------------------ shared by the workload files

constexpr double mib = 1024.0 * 1024.0;

/// `x` rounded to `digits` decimals (for the JSON figures).
double round_to(double x, int digits);

/// A summary's n, median, min, max and mean, rounded.
nlohmann::json to_json(const summary& s, int digits = 1);

/// Each of `xs` rounded, as a JSON array.
nlohmann::json rounded(const std::vector<double>& xs, int digits = 1);

/// `s` without leading and trailing white space.
std::string trim(std::string s);

/// The first interpreter that can `import distributed` (for the Dask
/// comparisons): `explicit_python` if given, else python3, then
/// /usr/bin/python3. Empty if none; `tried` lists the candidates.
std::string pick_dask_python(const std::string& explicit_python, std::string& tried);

/// `j[key]` if it is a number, else `fallback`.
double number_or(const nlohmann::json& j, const char* key, double fallback = -1);

/// {"workload": workload, "error": what}, and a note on stderr.
nlohmann::json error_result(const std::string& workload, const std::string& what);

/// Stops the cluster and adds its cleanup report and log trouble to `out`.
void finish(cluster& c, nlohmann::json& out);

/// An API client of the head at `address`, retrying while it is not reachable
/// yet, until `deadline`; nullptr (and `last_error`) if none.
std::unique_ptr<rpc::client> connect_until(const std::string& address,
                                           const std::string& token,
                                           steady::time_point deadline,
                                           std::string& last_error);

std::size_t count_alive(const cluster_view& v);

/// Round trips/s of an 8-byte message between this process and a forked
/// child over loopback TCP (TCP_NODELAY), both sides in blocking reads: the
/// floor under any synchronous request/response between two processes. The
/// child echoes until EOF (and dies with us: PR_SET_PDEATHSIG). -1 on failure.
/// REQUIRES: no other threads in this process (it forks).
double tcp_pingpong(double seconds);

/// The outcome of one workload's driver processes.
struct driver_run {
  std::vector<nlohmann::json> outputs; // each driver's JSON line
  std::string error;                   // empty if every driver printed its JSON
  nlohmann::json cpu;                  // who burnt CPU during the timed window
};

/// Runs `n` processes of the driver program `driver` (rayd-micro-driver's
/// flags: --workload, --barrier, then `args`) at once: spawned with the
/// cluster's token and an address, started together through a file barrier
/// once all have warmed up; CPU is sampled from go to the last exit (head,
/// `worker` node, their task workers, the drivers). `address` empty: the
/// head's API address and the cluster's RAYD_TMPDIR (an in-cluster driver);
/// else RAYD_ADDRESS=`address` alone (a remote client, e.g. rayd://HOST:PORT).
driver_run run_drivers(cluster& c, pid_t worker, const std::string& driver,
                       const std::string& workload, int n,
                       const std::vector<std::string>& args, double timeout_s,
                       const std::string& address = {});

} // namespace rayd::bench
