#pragma once
// `rayd-bench autoscale-trace`: the autoscaler's policy (autoscale/policy.hpp)
// replayed against a day-like demand trace, simulated — no processes, no
// clock. Issue 10's targets: node-seconds used <= 1.3 x the lower bound of an
// oracle that knows the future, and p95 wait of a demand beyond the launch
// delay <= 1 round. The trace and the bound are defined in docs/autoscaler.md
// ("Trace replay benchmark").
//
// Two parts, each a pure function of its inputs:
//   generate_trace  seed -> the demand (deterministic: equal options, equal
//                   trace), dumpable as JSON lines (--write-trace);
//   run_autoscale_trace  trace + cluster knobs -> the simulation's metrics.
//
// The simulator's round, every `round_s` simulated seconds:
//   work ends -> launched nodes past the launch delay become ALIVE -> arrivals
//   queue -> queued work is placed on ALIVE nodes by rayd's rules (placement)
//   -> a snapshot of what still waits goes to decide() -> its launches start
//   pending nodes and its terminations remove idle nodes.
//
// Thread rules: none; the functions read their arguments and return values.

#include <cstdint>
#include <string>
#include <vector>

#include <nlohmann/json.hpp>

namespace rayd::bench {

/// One demand of the trace: a unit of 1 CPU that arrives at `arrive_s` and,
/// once started, holds its CPU for `duration_s` simulated seconds.
struct trace_item {
  int64_t id = 0;
  double arrive_s = 0;
  double duration_s = 0;
  double cpus = 1;
  std::string kind; // "task" or "actor"
  std::string phase; // "burst", "tail" or "actor": which part of the day
};

struct trace_options {
  uint64_t seed = 1;
  double length_s = 3600; // arrivals stop after this
  /// CPUs the zero-wait schedule may use at any instant (the cluster's
  /// capacity: max_workers x CPUs per worker); bursts are clipped to it so
  /// the oracle below is feasible.
  double capacity_cpus = 40;
  double idle_timeout_s = 10; // idle gaps are drawn longer than this
};

/// The day: cycles of a burst (many 1-CPU tasks at one instant, each a few
/// seconds; sometimes a second burst shortly after), now and then a long tail
/// (a few tasks of minutes), now and then an actor (long-lived demand), then
/// an idle gap longer than the idle timeout. Sorted by arrival, then id.
std::vector<trace_item> generate_trace(const trace_options& o);

/// One JSON object per line.
std::string trace_to_json_lines(const std::vector<trace_item>& trace);

/// The inverse of trace_to_json_lines (blank lines skipped; missing `cpus`,
/// `kind`, `phase` default to 1, "task", "burst"), sorted by arrival. Throws
/// std::invalid_argument naming the line on a line that is not such an
/// object or has a negative time.
std::vector<trace_item> parse_trace_json_lines(const std::string& text);

struct autoscale_trace_options {
  trace_options trace;
  std::string write_trace; // a file to dump the trace to ("" = none)
  std::string replay;      // a JSON-lines trace to replay instead ("" = generate)
  double round_s = 1;
  int launch_delay_rounds = 2; // launch -> ALIVE
  double worker_cpus = 2;
  int max_workers = 20;
  double idle_timeout_s = 10;
  double upscaling_speed = 1.0;
  /// How queued work is placed on ALIVE nodes: "spread" (rayd's rules:
  /// tasks to the most free CPU, actors to the fewest actors), "pack" (the
  /// fullest node that fits) or "first_fit" (launch order). See place_on in
  /// autoscale_trace.cpp.
  std::string placement = "spread";
  /// Place waiting actors before waiting tasks each round (default: one
  /// FIFO by arrival, ties by trace id). In rayd the GCS places actors and
  /// the head's lease queue places tasks, independently; which takes a slot
  /// that frees or a node that comes up first is a race, so both orders are
  /// models of it.
  bool actors_first = false;
};

/// Simulates the policy on `trace` (its `trace` options are not read):
/// {"metrics": ..., "targets": ..., "all_targets_met": ...}.
nlohmann::json simulate_trace(const std::vector<trace_item>& trace,
                              const autoscale_trace_options& o);

/// Generates the trace (or reads `replay`), writes it if asked, simulates:
/// simulate_trace's object plus "workload", or {"workload", "error"} if a
/// trace file cannot be read, parsed or written.
nlohmann::json run_autoscale_trace(const autoscale_trace_options& o);

} // namespace rayd::bench
