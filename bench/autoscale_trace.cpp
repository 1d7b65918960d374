// See autoscale_trace.hpp; the trace and the oracle bound are described in
// docs/autoscaler.md ("Trace replay benchmark").

#include "bench/autoscale_trace.hpp"

#include <algorithm>
#include <chrono>
#include <cmath>
#include <cstdio>
#include <deque>
#include <fstream>
#include <map>
#include <random>
#include <sstream>
#include <stdexcept>

#include "autoscale/policy.hpp"

namespace rayd::bench {

namespace {

using json = nlohmann::json;

/// The seed's stream. std::mt19937_64 is specified bit for bit by the
/// standard, and the draws below use only its raw output (the standard's
/// distributions may differ between libraries), so a seed gives the same
/// trace everywhere.
class draws {
public:
  explicit draws(uint64_t seed) : gen_{seed} {
  }
  /// Uniform integer in [lo, hi].
  int64_t between(int64_t lo, int64_t hi) {
    return lo + static_cast<int64_t>(gen_() % static_cast<uint64_t>(hi - lo + 1));
  }
  /// True with probability p.
  bool chance(double p) {
    return static_cast<double>(gen_() >> 11) * 0x1.0p-53 < p;
  }

private:
  std::mt19937_64 gen_;
};

/// The largest CPU load of `items`, started at their arrival, over [a, b).
double max_load(const std::vector<trace_item>& items, double a, double b) {
  std::vector<double> points{a};
  for (const auto& x : items)
    if (x.arrive_s > a && x.arrive_s < b)
      points.push_back(x.arrive_s);
  double best = 0;
  for (double t : points) {
    double load = 0;
    for (const auto& x : items)
      if (x.arrive_s <= t && t < x.arrive_s + x.duration_s)
        load += x.cpus;
    best = std::max(best, load);
  }
  return best;
}

double round3(double x) {
  return std::round(x * 1000) / 1000;
}

/// The p-th percentile (nearest rank) of sorted values.
double percentile(const std::vector<double>& sorted, double p) {
  if (sorted.empty())
    return 0;
  auto rank = static_cast<size_t>(std::ceil(p / 100 * static_cast<double>(sorted.size())));
  return sorted[std::min(sorted.size() - 1, rank == 0 ? 0 : rank - 1)];
}

} // namespace

std::vector<trace_item> generate_trace(const trace_options& o) {
  draws d{o.seed};
  std::vector<trace_item> items;
  int64_t next_id = 0;
  // Adds up to `n` one-CPU items at `at`, clipped so the zero-wait load never
  // exceeds the capacity (the oracle must be feasible).
  auto add = [&items, &next_id, &o](double at, int64_t n, std::vector<double> durations,
                                    const char* kind, const char* phase) {
    double longest = *std::max_element(durations.begin(), durations.end());
    auto room = static_cast<int64_t>(o.capacity_cpus - max_load(items, at, at + longest));
    n = std::min<int64_t>(n, std::max<int64_t>(0, room));
    for (int64_t i = 0; i < n; ++i)
      items.push_back({next_id++, at, durations[static_cast<size_t>(i)], 1, kind, phase});
  };
  auto timeout = static_cast<int64_t>(std::ceil(o.idle_timeout_s));
  double t = 0;
  while (t < o.length_s) {
    // The day's shape: bursts grow towards mid-day and shrink again.
    double busy = 0.5 - 0.5 * std::cos(2 * std::acos(-1.0) * t / o.length_s);
    auto burst = 8 + d.between(0, static_cast<int64_t>(32 * busy));
    std::vector<double> durations;
    for (int64_t i = 0; i < burst; ++i)
      durations.push_back(static_cast<double>(d.between(2, 8)));
    add(t, burst, durations, "task", "burst");
    double end = t + 8;
    if (d.chance(0.4)) { // a second wave shortly after
      double at = t + static_cast<double>(d.between(3, 6));
      auto n = d.between(4, 20);
      std::vector<double> ds;
      for (int64_t i = 0; i < n; ++i)
        ds.push_back(static_cast<double>(d.between(2, 8)));
      add(at, n, ds, "task", "burst");
      end = at + 8;
    }
    if (d.chance(0.25)) { // the long tail: a few tasks of minutes
      double at = t + static_cast<double>(d.between(0, 5));
      auto n = d.between(1, 3);
      std::vector<double> ds;
      for (int64_t i = 0; i < n; ++i)
        ds.push_back(static_cast<double>(d.between(60, 300)));
      add(at, n, ds, "task", "tail");
    }
    if (d.chance(0.15)) // an actor: long-lived demand
      add(t, 1, {static_cast<double>(d.between(300, 1200))}, "actor", "actor");
    // An idle gap longer than the idle timeout (no arrivals).
    t = end + static_cast<double>(d.between(timeout + timeout / 2 + 1, 9 * timeout));
  }
  std::stable_sort(items.begin(), items.end(), [](const trace_item& a, const trace_item& b) {
    return a.arrive_s < b.arrive_s;
  });
  return items;
}

std::string trace_to_json_lines(const std::vector<trace_item>& trace) {
  std::string out;
  for (const auto& x : trace)
    out += json{{"id", x.id},
                {"arrive_s", x.arrive_s},
                {"duration_s", x.duration_s},
                {"cpus", x.cpus},
                {"kind", x.kind},
                {"phase", x.phase}}
             .dump()
           + "\n";
  return out;
}

std::vector<trace_item> parse_trace_json_lines(const std::string& text) {
  std::vector<trace_item> out;
  std::istringstream in{text};
  std::string line;
  for (int64_t no = 1; std::getline(in, line); ++no) {
    if (line.find_first_not_of(" \t\r") == std::string::npos)
      continue;
    auto j = json::parse(line, nullptr, false);
    auto bad = [no](const std::string& why) {
      return std::invalid_argument{"trace line " + std::to_string(no) + ": " + why};
    };
    if (!j.is_object() || !j.contains("arrive_s") || !j["arrive_s"].is_number()
        || !j.contains("duration_s") || !j["duration_s"].is_number())
      throw bad("not an object with numbers arrive_s and duration_s");
    trace_item x;
    x.id = j.value("id", static_cast<int64_t>(out.size()));
    x.arrive_s = j["arrive_s"].get<double>();
    x.duration_s = j["duration_s"].get<double>();
    if (j.contains("cpus") && j["cpus"].is_number())
      x.cpus = j["cpus"].get<double>();
    x.kind = j.contains("kind") && j["kind"].is_string() ? j["kind"].get<std::string>() : "task";
    x.phase =
      j.contains("phase") && j["phase"].is_string() ? j["phase"].get<std::string>() : "burst";
    if (x.arrive_s < 0 || x.duration_s < 0 || x.cpus <= 0)
      throw bad("negative time or non-positive cpus");
    out.push_back(std::move(x));
  }
  std::stable_sort(out.begin(), out.end(), [](const trace_item& a, const trace_item& b) {
    return a.arrive_s < b.arrive_s;
  });
  return out;
}

namespace {

struct sim_node {
  std::string id;
  int64_t launched = 0; // round
  int64_t ready = 0;    // round it becomes ALIVE
  bool alive = false;
  double available = 0;
  int64_t idle_since = 0; // round its last work ended (or it came up)
  int tasks = 0;
  int actors = 0;
  int long_work = 0; // of its tasks and actors, the tail tasks and actors
  bool ever_used = false; // ran any work before its termination
};

struct sim_work {
  int64_t arrive = 0; // round
  int64_t start = -1;
  int64_t end = -1;
  /// It did not fit the ALIVE nodes in its arrival round, so its start
  /// needed capacity that was not up yet (a launch, or a node to free up).
  bool needed_new = false;
  bool saw_cap = false;     // the cluster was at max_workers while it waited
  bool saw_throttle = false; // a round while it waited was throttled
  std::string node;
};

/// Zero-wait oracle bound: integral over time of ceil(load(t) / worker_cpus)
/// with every item running from its arrival for its duration.
double oracle_node_seconds(const std::vector<trace_item>& trace, double worker_cpus) {
  std::map<double, double> delta;
  for (const auto& x : trace) {
    delta[x.arrive_s] += x.cpus;
    delta[x.arrive_s + x.duration_s] -= x.cpus;
  }
  double load = 0, total = 0, last = 0;
  for (const auto& [t, dl] : delta) {
    total += (t - last) * std::ceil(load / worker_cpus - 1e-9);
    load += dl;
    last = t;
  }
  return total;
}

/// Where a queued demand starts, the way rayd places it (the simulated
/// driver sits on a head that offers no CPU, so every task is spilled):
///   spread  tasks: the node with the most free CPU (actors/node/
///           lease_policy.cpp, decide_lease's spillback); actors: the node
///           with the fewest actors (actors/gcs/actor_placement.cpp);
///   pack    both: the node with the least free CPU that still fits;
///   first_fit  the first node in launch order that fits (this benchmark's
///           first model, kept for comparison; rayd never did this).
/// Ties go to the lower node id (= launch order), as in rayd.
std::vector<sim_node>::iterator place_on(std::vector<sim_node>& nodes, const trace_item& x,
                                         const std::string& placement) {
  auto best = nodes.end();
  for (auto n = nodes.begin(); n != nodes.end(); ++n) {
    if (!n->alive || n->available < x.cpus - 1e-9)
      continue;
    if (best == nodes.end()) {
      best = n;
      if (placement == "first_fit")
        break;
      continue;
    }
    bool better = false;
    if (placement == "pack")
      better = n->available < best->available - 1e-9;
    else if (x.kind == "actor")
      better = n->actors < best->actors;
    else
      better = n->available > best->available + 1e-9;
    if (better) // nodes are in id order, so a tie keeps the lower id
      best = n;
  }
  return best;
}

/// The bound above for a cluster that also keeps every node until it has
/// been idle for `timeout_s` (the policy's idle timeout): a node busy at s
/// still exists at any t < s + timeout_s, so at t at least
/// max over s in (t - timeout_s, t] of ceil(load(s) / worker_cpus) nodes
/// exist. Booting stays free and work still starts at arrival, so this too is
/// a lower bound; it is what the idle timeout alone costs on top of the
/// oracle, whatever the policy and the placement.
double oracle_with_timeout_node_seconds(const std::vector<trace_item>& trace,
                                        double worker_cpus, double timeout_s) {
  std::map<double, double> delta;
  for (const auto& x : trace) {
    delta[x.arrive_s] += x.cpus;
    delta[x.arrive_s + x.duration_s] -= x.cpus;
  }
  // n(t) as steps: from steps[k].first on, steps[k].second nodes.
  std::vector<std::pair<double, double>> steps;
  double load = 0;
  for (const auto& [t, dl] : delta) {
    load += dl;
    steps.emplace_back(t, std::ceil(load / worker_cpus - 1e-9));
  }
  if (steps.empty())
    return 0;
  std::vector<double> points;
  for (const auto& [t, n] : steps) {
    points.push_back(t);
    points.push_back(t + timeout_s);
  }
  std::sort(points.begin(), points.end());
  points.erase(std::unique(points.begin(), points.end()), points.end());
  // Between two points the window's max is constant: evaluate at the left
  // one. The window (p - timeout, p] meets step k when step k starts at or
  // before p and ends after p - timeout; both ends move forward with p.
  double total = 0;
  size_t lo = 0;
  for (size_t i = 0; i + 1 < points.size(); ++i) {
    double p = points[i];
    while (lo + 1 < steps.size() && steps[lo + 1].first <= p - timeout_s)
      ++lo;
    double best = 0;
    for (size_t k = lo; k < steps.size() && steps[k].first <= p; ++k)
      best = std::max(best, steps[k].second);
    total += (points[i + 1] - p) * best;
  }
  return total;
}

} // namespace

json run_autoscale_trace(const autoscale_trace_options& o) {
  auto error = [](const std::string& e) {
    return json{{"workload", "autoscale-trace"}, {"error", e}};
  };
  std::vector<trace_item> trace;
  if (o.replay.empty()) {
    trace = generate_trace(o.trace);
  } else {
    std::ifstream f{o.replay};
    if (!f)
      return error("cannot read the trace " + o.replay);
    std::stringstream text;
    text << f.rdbuf();
    try {
      trace = parse_trace_json_lines(text.str());
    } catch (const std::invalid_argument& e) {
      return error(o.replay + ": " + e.what());
    }
  }
  if (!o.write_trace.empty()) {
    std::ofstream f{o.write_trace};
    f << trace_to_json_lines(trace);
    if (!f)
      return error("cannot write the trace to " + o.write_trace);
  }
  auto j = simulate_trace(trace, o);
  j["workload"] = "autoscale-trace";
  if (o.replay.empty())
    j["metrics"]["trace"]["seed"] = o.trace.seed;
  else
    j["metrics"]["trace"]["replayed_from"] = o.replay;
  return j;
}

json simulate_trace(const std::vector<trace_item>& trace, const autoscale_trace_options& o) {
  using ms = std::chrono::milliseconds;

  autoscale::autoscaling_config config;
  config.max_workers = o.max_workers;
  config.upscaling_speed = o.upscaling_speed;
  config.idle_timeout = ms{static_cast<int64_t>(o.idle_timeout_s * 1000)};
  autoscale::node_type_config cpu2;
  cpu2.name = "cpu2";
  cpu2.resources = {{"CPU", o.worker_cpus}};
  cpu2.max_workers = o.max_workers;
  config.node_types[cpu2.name] = cpu2;

  const double R = o.round_s;
  auto to_round = [R](double s) { return static_cast<int64_t>(std::ceil(s / R - 1e-9)); };
  auto at_ms = [R](int64_t round) {
    return ms{static_cast<int64_t>(std::llround(static_cast<double>(round) * R * 1000))};
  };

  std::vector<sim_work> work(trace.size());
  for (size_t i = 0; i < trace.size(); ++i)
    work[i].arrive = to_round(trace[i].arrive_s);
  std::vector<sim_node> nodes; // launch order = id order
  std::deque<size_t> queue;    // arrived, not started, by arrival
  std::vector<size_t> running; // started, not ended
  size_t next_arrival = 0;
  int64_t node_counter = 0;
  int64_t launches = 0, terminations = 0, launch_rounds = 0, busy_terminations = 0;
  int64_t terminations_while_queued = 0, flaps = 0, never_used = 0;
  int64_t last_termination = -1, last_arrival = -1;
  int64_t booting_rounds = 0, busy_rounds = 0, idle_rounds = 0, peak_nodes = 0;
  int64_t partly_used_rounds = 0; // busy with some of its CPUs free
  int64_t long_only_rounds = 0;   // busy with tail tasks or actors only
  double used_cpu_rounds = 0;
  int64_t ended = 0;
  int64_t last_round_with_nodes = 0;
  const int64_t last_arrival_round = trace.empty() ? 0 : work.back().arrive;

  for (int64_t r = 0;; ++r) {
    // 1. work ends
    for (auto it = running.begin(); it != running.end();) {
      auto& w = work[*it];
      if (w.end > r) {
        ++it;
        continue;
      }
      for (auto& n : nodes)
        if (n.id == w.node) {
          n.available += trace[*it].cpus;
          (trace[*it].kind == "actor" ? n.actors : n.tasks) -= 1;
          n.long_work -= trace[*it].phase != "burst" ? 1 : 0;
          if (n.tasks + n.actors == 0)
            n.idle_since = r;
        }
      ++ended;
      it = running.erase(it);
    }
    // 2. launched nodes come up
    for (auto& n : nodes)
      if (!n.alive && n.ready <= r) {
        n.alive = true;
        n.available = o.worker_cpus;
        n.idle_since = r;
      }
    // 3. arrivals
    while (next_arrival < trace.size() && work[next_arrival].arrive <= r) {
      queue.push_back(next_arrival++);
      last_arrival = r;
    }
    // 4. the scheduler: rayd's placement rules on ALIVE nodes (place_on);
    // with actors_first, actors waiting go before tasks that arrived with
    // or before them (the GCS places actors, the head's lease queue tasks,
    // and which of the two sees a new node first within a round is a race)
    if (o.actors_first)
      std::stable_partition(queue.begin(), queue.end(),
                            [&trace](size_t i) { return trace[i].kind == "actor"; });
    for (auto it = queue.begin(); it != queue.end();) {
      auto i = *it;
      auto n = place_on(nodes, trace[i], o.placement);
      if (n == nodes.end()) {
        ++it;
        continue;
      }
      n->available -= trace[i].cpus;
      n->ever_used = true;
      (trace[i].kind == "actor" ? n->actors : n->tasks) += 1;
      n->long_work += trace[i].phase != "burst" ? 1 : 0;
      auto& w = work[i];
      w.start = r;
      w.end = r + std::max<int64_t>(1, to_round(trace[i].duration_s));
      w.node = n->id;
      w.needed_new = r > w.arrive;
      running.push_back(i);
      it = queue.erase(it);
    }
    if (ended == static_cast<int64_t>(trace.size()) && nodes.empty())
      break;
    if (r > last_arrival_round + 100000) // a stuck simulation still ends
      break;
    // 5. the snapshot
    autoscale::snapshot snap;
    snap.now = at_ms(r);
    for (const auto& n : nodes) {
      autoscale::node_view v;
      v.id = n.id;
      v.type = "cpu2";
      v.total = {{"CPU", o.worker_cpus}};
      if (n.alive) {
        v.state = autoscale::node_state::running;
        v.available = {{"CPU", n.available}};
        v.has_running_work = n.tasks > 0;
        v.has_actors = n.actors > 0;
        if (n.tasks + n.actors == 0)
          v.idle_for = at_ms(r - n.idle_since);
      } else {
        v.state = autoscale::node_state::pending;
        v.available = v.total;
      }
      snap.nodes.push_back(std::move(v));
    }
    int64_t queued_tasks = 0, queued_actors = 0;
    for (auto i : queue)
      (trace[i].kind == "actor" ? queued_actors : queued_tasks) += 1;
    if (queued_tasks > 0)
      snap.demands.push_back({{{"CPU", 1.0}}, {}, queued_tasks, autoscale::demand_kind::task});
    if (queued_actors > 0)
      snap.demands.push_back(
        {{{"CPU", 1.0}}, {}, queued_actors, autoscale::demand_kind::actor});
    snap.provider["cpu2"].instances = static_cast<int32_t>(nodes.size());
    // 6. decide and apply
    auto dec = autoscale::decide(snap, config);
    for (const auto& t : dec.terminations) {
      auto n = std::find_if(nodes.begin(), nodes.end(),
                            [&t](const sim_node& x) { return x.id == t.node_id; });
      if (n == nodes.end())
        continue;
      if (n->tasks + n->actors > 0)
        ++busy_terminations;
      never_used += n->ever_used ? 0 : 1;
      nodes.erase(n);
      ++terminations;
      last_termination = r;
      if (!queue.empty())
        ++terminations_while_queued;
    }
    auto count = dec.launches_of("cpu2");
    if (count > 0) {
      ++launch_rounds;
      // A flap: a node was terminated and this launch follows with no new
      // demand arriving in between (the same idle gap, or the same round).
      if (last_termination >= 0 && last_arrival <= last_termination)
        ++flaps;
    }
    for (int32_t k = 0; k < count; ++k) {
      char id[32];
      std::snprintf(id, sizeof id, "w%06lld", static_cast<long long>(node_counter++));
      nodes.push_back({id, r, r + o.launch_delay_rounds, false, 0, r, 0, 0, 0});
      ++launches;
    }
    bool throttled = false;
    for (const auto& ds : dec.demands)
      for (const auto& p : ds.parts)
        throttled = throttled || p.reason == autoscale::wait_reason::throttled;
    bool at_cap = static_cast<int>(nodes.size()) >= o.max_workers;
    for (auto i : queue) {
      work[i].saw_cap = work[i].saw_cap || at_cap;
      work[i].saw_throttle = work[i].saw_throttle || throttled;
    }
    // 7. this round's node time
    peak_nodes = std::max<int64_t>(peak_nodes, static_cast<int64_t>(nodes.size()));
    if (!nodes.empty())
      last_round_with_nodes = r;
    for (const auto& n : nodes) {
      if (!n.alive)
        ++booting_rounds;
      else if (n.tasks + n.actors > 0) {
        ++busy_rounds;
        partly_used_rounds += n.available > 1e-9 ? 1 : 0;
        long_only_rounds += n.long_work == n.tasks + n.actors ? 1 : 0;
      }
      else
        ++idle_rounds;
      if (n.alive)
        used_cpu_rounds += o.worker_cpus - n.available;
    }
  }

  // -- metrics ---------------------------------------------------------------
  double node_s = static_cast<double>(booting_rounds + busy_rounds + idle_rounds) * R;
  double oracle_s = oracle_node_seconds(trace, o.worker_cpus);
  double cpu_s = 0;
  for (const auto& x : trace)
    cpu_s += x.cpus * x.duration_s;
  double ratio = oracle_s > 0 ? node_s / oracle_s : 0;

  std::vector<double> extra;
  std::map<std::string, std::vector<double>> extra_by_phase;
  int64_t over_one = 0, over_one_cap = 0, over_one_throttle = 0, not_started = 0;
  for (size_t i = 0; i < trace.size(); ++i) {
    const auto& w = work[i];
    if (w.start < 0) {
      ++not_started;
      continue;
    }
    auto wait = w.start - w.arrive;
    auto e = static_cast<double>(w.needed_new ? std::max<int64_t>(0, wait - o.launch_delay_rounds)
                                               : wait);
    extra.push_back(e);
    extra_by_phase[trace[i].phase].push_back(e);
    if (e > 1) {
      ++over_one;
      over_one_cap += w.saw_cap ? 1 : 0;
      over_one_throttle += w.saw_throttle ? 1 : 0;
    }
  }
  std::sort(extra.begin(), extra.end());
  double p95 = percentile(extra, 95);
  json by_phase = json::object();
  for (auto& [phase, v] : extra_by_phase) {
    std::sort(v.begin(), v.end());
    by_phase[phase] = {{"demands", v.size()},
                       {"p50", percentile(v, 50)},
                       {"p95", percentile(v, 95)},
                       {"max", v.empty() ? 0 : v.back()}};
  }
  int64_t bursts = 0, tails = 0, actors = 0;
  for (const auto& x : trace)
    (x.phase == "burst" ? bursts : x.phase == "tail" ? tails : actors) += 1;

  json metrics = json::object();
  metrics["trace"] = {{"demands", trace.size()},
                      {"burst_tasks", bursts},
                      {"tail_tasks", tails},
                      {"actors", actors},
                      {"last_arrival_s", trace.empty() ? 0 : trace.back().arrive_s},
                      {"cpu_seconds", round3(cpu_s)},
                      {"what", "day-like demand (docs/autoscaler.md, Trace replay benchmark): "
                               "bursts of 1-CPU tasks of 2-8 s, a long tail of 60-300 s tasks, "
                               "actors of 300-1200 s, idle gaps of 1.5-9 idle timeouts"}};
  metrics["node_seconds"] = {
    {"value", round3(node_s)},
    {"unit", "node-s"},
    {"booting", round3(static_cast<double>(booting_rounds) * R)},
    {"busy", round3(static_cast<double>(busy_rounds) * R)},
    {"busy_partly_used", round3(static_cast<double>(partly_used_rounds) * R)},
    {"busy_with_tail_or_actors_only", round3(static_cast<double>(long_only_rounds) * R)},
    {"idle", round3(static_cast<double>(idle_rounds) * R)},
    {"cpu_utilization_of_alive_busy_nodes",
     busy_rounds > 0 ? round3(used_cpu_rounds / (static_cast<double>(busy_rounds) * o.worker_cpus))
                     : 0},
    {"what", "simulated cluster: every worker from its launch to its termination, split into "
             "booting (launched, not ALIVE), busy (ALIVE with work; busy_partly_used: some of "
             "its CPUs free) and idle (ALIVE, nothing to do, waiting for the idle timeout)"}};
  metrics["oracle_node_seconds"] = {
    {"value", round3(oracle_s)},
    {"unit", "node-s"},
    {"cpu_seconds_over_worker_cpus", round3(cpu_s / o.worker_cpus)},
    {"what", "lower bound for any schedule that starts every demand at its arrival: the "
             "integral over time of ceil(CPUs of the demands running at t / CPUs per worker), "
             "nodes free to boot and to vanish (the weaker schedule-free bound, "
             "CPU-seconds / CPUs per worker, next to it)"}};
  double oracle_timeout_s = oracle_with_timeout_node_seconds(trace, o.worker_cpus, o.idle_timeout_s);
  metrics["oracle_with_idle_timeout_node_seconds"] = {
    {"value", round3(oracle_timeout_s)},
    {"unit", "node-s"},
    {"ratio_of_node_seconds", oracle_timeout_s > 0 ? round3(node_s / oracle_timeout_s) : 0},
    {"ratio_to_oracle", oracle_s > 0 ? round3(oracle_timeout_s / oracle_s) : 0},
    {"what", "lower bound for any schedule that starts every demand at its arrival and keeps "
             "a node until it has been idle for the idle timeout: the integral of the max of "
             "ceil(load / CPUs per worker) over the last idle timeout (booting free); "
             "ratio_to_oracle is what the idle timeout alone costs, whatever the policy"}};
  metrics["node_seconds_ratio"] = {
    {"value", round3(ratio)},
    {"what", "node_seconds / oracle_node_seconds"}};
  metrics["extra_wait_rounds"] = {
    {"p50", percentile(extra, 50)},
    {"p95", p95},
    {"max", extra.empty() ? 0 : extra.back()},
    {"demands", extra.size()},
    {"over_1_round", over_one},
    {"over_1_round_while_at_max_workers", over_one_cap},
    {"over_1_round_while_throttled", over_one_throttle},
    {"not_started", not_started},
    {"by_phase", by_phase},
    {"what", "arrival -> start in rounds, minus the launch delay (not below 0) when the "
             "demand did not fit the ALIVE nodes in its arrival round"}};
  metrics["launches"] = {{"value", launches},
                         {"rounds_with_launches", launch_rounds},
                         {"peak_workers", peak_nodes}};
  metrics["terminations"] = {{"value", terminations},
                             {"of_busy_nodes", busy_terminations},
                             {"never_used", never_used},
                             {"while_demand_queued", terminations_while_queued}};
  metrics["flaps"] = {{"value", flaps},
                      {"what", "launch rounds that follow a termination with no demand "
                               "arriving in between (same round included)"}};
  metrics["simulated_s"] = round3(static_cast<double>(last_round_with_nodes + 1) * R);
  metrics["config"] = {{"round_s", R},
                       {"placement", o.placement},
                       {"actors_first", o.actors_first},
                       {"launch_delay_rounds", o.launch_delay_rounds},
                       {"worker_cpus", o.worker_cpus},
                       {"max_workers", o.max_workers},
                       {"idle_timeout_s", o.idle_timeout_s},
                       {"upscaling_speed", o.upscaling_speed}};

  json targets = json::object();
  bool ratio_met = ratio <= 1.3;
  bool wait_met = p95 <= 1;
  bool flaps_met = flaps == 0 && busy_terminations == 0 && not_started == 0;
  targets["node_seconds_ratio_le_1_3"] = {
    {"value", round3(ratio)}, {"target", 1.3}, {"what", "x the oracle bound, at most"},
    {"met", ratio_met}};
  targets["p95_extra_wait_le_1_round"] = {
    {"value", p95}, {"target", 1}, {"what", "rounds, at most"}, {"met", wait_met}};
  targets["no_flapping"] = {{"value", flaps},
                            {"target", 0},
                            {"what", "flaps (and busy nodes terminated, demands never started)"},
                            {"met", flaps_met}};
  return {{"metrics", metrics},
          {"targets", targets},
          {"all_targets_met", ratio_met && wait_met && flaps_met}};
}

} // namespace rayd::bench
