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
  // The same rayctl, inside the cluster and as a remote client through the
  // API port alone (rayd://, docs/client.md), one actor each, alternating.
  auto base_for = [&](bool remote) {
    return std::vector<std::string>{rayctl, "--address",
                                    (remote ? "rayd://" : "") + c.head().api_address,
                                    "--token-file", c.token_file()};
  };
  auto write_input = [&c](const std::string& actor, int n) {
    auto path = c.tmpdir() + "/lines-" + actor + "-" + std::to_string(n) + ".jsonl";
    std::ofstream f{path};
    for (int i = 0; i < n; ++i)
      f << "{\"actor\": \"" << actor << "\", \"method\": \"add\", \"args\": [1]}\n";
    return path;
  };
  struct mode {
    bool remote;
    std::string actor, big, one;
    std::vector<double> rates, starts;
    int64_t expected_last = 0;
    bool ok = true;
  };
  std::vector<mode> modes{{true, "pipe-remote", "", "", {}, {}, 0, true},
                          {false, "pipe", "", "", {}, {}, 0, true}};
  for (auto& m : modes) {
    std::string created;
    auto create = base_for(m.remote);
    create.insert(create.end(), {"actor", "create", "Counter", "[0]", "--lib", o.lib, "--name",
                                 m.actor});
    if (run_capture(create, created) != 0) {
      out["error"] = "rayctl actor create failed";
      return out;
    }
    m.big = write_input(m.actor, o.lines);
    m.one = write_input(m.actor, 1);
  }
  auto piped = [&](const mode& m, const std::string& input, std::string& answers) {
    auto base = base_for(m.remote);
    std::vector<std::string> sh{"/bin/sh", "-c", "\"$0\" \"$@\" actor call --stdin < \"$IN\""};
    sh.insert(sh.end(), base.begin(), base.end());
    sh[2] = "IN='" + input + "'; export IN; " + sh[2];
    auto t0 = steady::now();
    int rc = run_capture(sh, answers, true);
    return std::make_pair(rc, ms_since(t0));
  };
  for (int r = 0; r < o.runs; ++r)
    for (auto& m : modes) {
      std::string answers;
      auto [rc, ms] = piped(m, m.big, answers);
      m.expected_last += o.lines;
      m.ok = m.ok && rc == 0 && count_lines(answers) == o.lines
             && answers.find("{\"result\":" + std::to_string(m.expected_last) + "}")
                  != std::string::npos;
      m.rates.push_back(o.lines / (ms / 1000.0));
      std::string first;
      auto [rc1, ms1] = piped(m, m.one, first);
      m.expected_last += 1;
      m.ok = m.ok && rc1 == 0;
      m.starts.push_back(ms1);
    }
  auto remote_rate = summarize(modes[0].rates);
  auto local_rate = summarize(modes[1].rates);
  auto remote_start = summarize(modes[0].starts);
  auto local_start = summarize(modes[1].starts);
  out["answers_in_order"] = modes[0].ok && modes[1].ok;
  auto what = std::to_string(o.lines)
              + " actor calls piped into one `rayctl actor call --stdin` (rayctl's start and "
                "exit included), answers checked in order";
  out["metrics"] = {
    {"rayctl_pipe_calls",
     {{"value", remote_rate.median},
      {"unit", "calls/s (median of runs)"},
      {"min", remote_rate.min},
      {"max", remote_rate.max},
      {"what", what + "; rayctl is a remote client (--address rayd://, the API port alone)"}}},
    {"rayctl_pipe_calls_in_cluster",
     {{"value", local_rate.median},
      {"unit", "calls/s (median of runs)"},
      {"min", local_rate.min},
      {"max", local_rate.max},
      {"what", what + "; rayctl is a driver inside the cluster"}}},
    {"rayctl_start_ms",
     {{"value", remote_start.median},
      {"unit", "ms (median)"},
      {"what", "1 line as a remote client: rayctl's start, connect, session, one call, exit"}}},
    {"rayctl_start_in_cluster_ms",
     {{"value", local_start.median},
      {"unit", "ms (median)"},
      {"what", "1 line inside the cluster: rayctl's start, connect, one call, exit"}}}};
  bool met = modes[0].ok && modes[1].ok && remote_rate.median >= 20000
             && local_rate.median >= 20000;
  out["targets"] = {{"rayctl_pipe_calls_ge_20000", {{"met", met}}}};
  out["all_targets_met"] = met;
  return out;
}

} // namespace rayd::bench
