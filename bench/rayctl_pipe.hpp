#pragma once
// `rayd-bench rayctl-pipe`: `rayctl actor call --stdin` (docs/cli.md,
// "Scripting") as a shell script uses it — N requests piped into one rayctl,
// one JSON answer per line, in order — reported as calls per second with
// rayctl's own start included (issue 11's rayctl_pipe_calls, target
// >= 20,000/s), and the time of a 1-line run (the start alone); measured as
// a remote client through the API port alone (rayd://, the figure)
// and inside the cluster, alternating in one run.

#include <string>

#include <nlohmann/json.hpp>

#include "bench/bench_util.hpp"

namespace rayd::bench {

struct rayctl_pipe_options {
  int lines = 10000; // requests per run
  int runs = 5;      // the median is reported
  /// examples/scripting's task library (default: the build's).
  std::string lib;
};

nlohmann::json run_rayctl_pipe(const settings& s, const rayctl_pipe_options& o);

} // namespace rayd::bench
