#pragma once
// `rayd-bench client`: issue 11's remote-client figures, under Ray's names
// (ray/_private/ray_client_microbenchmark.py), on a local head (--num-cpus 2)
// and one worker node (--num-cpus 1) on loopback. Every driver runs as a
// remote client: RAYD_ADDRESS=rayd://HOST:API_PORT and the token, nothing
// else (no RAYD_TMPDIR, no session directory), so all its calls travel over
// the head's API port.
//
//   client__1_1_actor_calls_sync        get(a.small_value()) one at a time
//   client__1_1_actor_calls_async       1000 calls on one actor, get all; calls/s
//   client__1_1_actor_calls_concurrent  the same on an actor with max_concurrency
//                                       16 (as Ray: one client thread, batches)
//   client__get_calls / client__put_calls   small get / put per second (the
//                                       puts until the session ran them all)
//   client__put_gigabytes               put of a 1 GiB value (freed at once), GB/s
//   client__tasks_and_get_batch         1000 small tasks then get all; batches/s
//                                       (Ray's unit; tasks/s shown too)
//   tcp_pingpong                        loopback round trips/s, same run
//   client__head_extra_rss_mib          the head's RssAnon peak minus at rest,
//                                       while the client puts and gets a 2 GiB
//                                       object (sampled every 20 ms; each run
//                                       on a fresh cluster)
//
// These figures run rayd-micro-driver (the micro workloads, unchanged) and
// rayd-client-driver (put_calls with its drain, the large transfer); each is
// measured --runs times and the median is reported with the samples.
//
// Thread rules: run_client() is called from the main thread of a process that
// has no other threads (tcp_pingpong forks); it starts and joins a memory
// sampler thread of its own around each transfer.

#include <string>
#include <vector>

#include <nlohmann/json.hpp>

#include "bench/bench_util.hpp"

namespace rayd::bench {

struct client_bench_options {
  double seconds = 2;           // timed window of each rate workload
  int runs = 3;                 // repetitions of every figure (median reported)
  double gigabytes = 2;         // GiB of the transfer the head's memory is sampled over
  double put_gibibytes = 1;     // size of each put of client__put_gigabytes
  double pingpong_seconds = 2;  // each tcp_pingpong sample
  double sample_ms = 20;        // period of the head's memory samples
  std::string micro_driver;     // empty: rayd-micro-driver next to rayd-bench
  std::string client_driver;    // empty: rayd-client-driver next to rayd-bench
  std::vector<std::string> only; // empty: every figure; else just these names
  /// The drivers run in the cluster instead (the head's plain API address and
  /// its RAYD_TMPDIR, as `micro` runs them): the same figures without the
  /// client path, for comparison. The output says so ("mode").
  bool in_cluster = false;
};

nlohmann::json run_client(const settings& s, const client_bench_options& o);

} // namespace rayd::bench
