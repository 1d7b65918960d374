// See rayctl_pipe.hpp.

#include "bench/rayctl_pipe.hpp"

#include <chrono>
#include <fstream>
#include <vector>

#include "bench/workloads.hpp"

namespace rayd::bench {

using json = nlohmann::json;

namespace {

int count_lines(const std::string& s) {
  int n = 0;
  for (char c : s)
    n += c == '\n';
  return n;
}

} // namespace

json run_rayctl_pipe(const settings& s, const rayctl_pipe_options& o_in) {
  const std::string workload = "rayctl-pipe";
  auto o = o_in;
  if (o.lib.empty())
    o.lib = RAYD_SCRIPTING_LIB;
  json out{{"workload", workload}, {"machine", machine_info()}};
  if (o.lib.empty() || !file_exists(o.lib)) {
    out["error"] = "no scripting library at '" + o.lib
                   + "' (build the target scripting_actors, or pass --lib)";
    return out;
  }
  out["background_busy_pct"] = background_busy_pct(workload);
  out["config"] = {{"lines", o.lines}, {"runs", o.runs}, {"lib", o.lib}};
  cluster c{s, "rayctl-pipe"};
  if (c.spawn_head({"--num-cpus", "2"}) < 0 || !c.wait_head()) {
    out["error"] = "the head did not come up";
    return out;
  }
  auto rayctl = s.bin_dir + "/rayctl";
  std::vector<std::string> base{rayctl, "--address", c.head().api_address, "--token-file",
                                c.token_file()};
  std::string created;
  auto create = base;
  create.insert(create.end(), {"actor", "create", "Counter", "[0]", "--lib", o.lib, "--name",
                               "pipe"});
  if (run_capture(create, created) != 0) {
    out["error"] = "rayctl actor create failed";
    return out;
  }
  auto write_input = [&c](int n) {
    auto path = c.tmpdir() + "/lines-" + std::to_string(n) + ".jsonl";
    std::ofstream f{path};
    for (int i = 0; i < n; ++i)
      f << "{\"actor\": \"pipe\", \"method\": \"add\", \"args\": [1]}\n";
    return path;
  };
  auto big = write_input(o.lines);
  auto one = write_input(1);
  auto piped = [&](const std::string& input, std::string& answers) {
    std::vector<std::string> sh{"/bin/sh", "-c", "\"$0\" \"$@\" actor call --stdin < \"$IN\""};
    sh.insert(sh.end(), base.begin(), base.end());
    sh[2] = "IN='" + input + "'; export IN; " + sh[2];
    auto t0 = steady::now();
    int rc = run_capture(sh, answers, true);
    return std::make_pair(rc, ms_since(t0));
  };
  std::vector<double> rates, starts;
  int64_t expected_last = 0;
  bool all_ok = true;
  for (int r = 0; r < o.runs; ++r) {
    std::string answers;
    auto [rc, ms] = piped(big, answers);
    expected_last += o.lines;
    bool ok = rc == 0 && count_lines(answers) == o.lines
              && answers.find("{\"result\":" + std::to_string(expected_last) + "}")
                   != std::string::npos;
    all_ok = all_ok && ok;
    rates.push_back(o.lines / (ms / 1000.0));
    std::string first;
    auto [rc1, ms1] = piped(one, first);
    expected_last += 1;
    all_ok = all_ok && rc1 == 0;
    starts.push_back(ms1);
  }
  auto rate = summarize(rates);
  auto start = summarize(starts);
  out["answers_in_order"] = all_ok;
  out["metrics"] = {
    {"rayctl_pipe_calls",
     {{"value", rate.median},
      {"unit", "calls/s (median of runs)"},
      {"min", rate.min},
      {"max", rate.max},
      {"what", std::to_string(o.lines)
                 + " actor calls piped into one `rayctl actor call --stdin` (rayctl's start "
                   "and exit included), answers checked in order"}}},
    {"rayctl_start_ms",
     {{"value", start.median},
      {"unit", "ms (median)"},
      {"what", "the same with 1 line: rayctl's start, connect, one call, exit"}}}};
  bool met = all_ok && rate.median >= 20000;
  out["targets"] = {{"rayctl_pipe_calls_ge_20000", {{"met", met}}}};
  out["all_targets_met"] = met;
  return out;
}

} // namespace rayd::bench
