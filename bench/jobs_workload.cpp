// `rayd-bench jobs` (see workloads.hpp).

#include "bench/workloads.hpp"

#include <arpa/inet.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <poll.h>
#include <signal.h>
#include <sys/prctl.h>
#include <sys/socket.h>
#include <sys/utsname.h>
#include <sys/wait.h>
#include <unistd.h>

#include <algorithm>
#include <atomic>
#include <cmath>
#include <cstdio>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <future>
#include <map>
#include <mutex>
#include <optional>
#include <set>
#include <sstream>
#include <tuple>
#include <thread>

#include <nlohmann/json.hpp>

#include "common/error.hpp"
#include "schemas/api_client.hpp"


namespace rayd::bench {

using json = nlohmann::json;
using namespace std::chrono_literals;

} // namespace rayd::bench

// ------------------------------------------------------------- jobs

namespace rayd::bench {

namespace {

/// Runs bench/slurm_jobs.py; its JSON, or {"skipped": why}.
json run_slurm(const jobs_options& o) {
  std::string script = o.slurm_script;
#ifdef RAYD_BENCH_SOURCE_DIR
  if (script.empty())
    script = std::string{RAYD_BENCH_SOURCE_DIR} + "/slurm_jobs.py";
#endif
  if (script.empty() || !file_exists(script))
    return {{"skipped", "slurm_jobs.py not found (pass --slurm-script)"}};
  // Slurm's python script needs only the standard library: the system one.
  std::string python = o.python.empty() ? "/usr/bin/python3" : o.python;
  std::string out;
  note("jobs: running Slurm side by side (" + script + ")");
  // Stock Slurm drains ~1 job/s here: the drain uses fewer jobs (a rate is
  // a rate) and no array, so the comparison takes minutes, not 40.
  int rc = run_capture({"/usr/bin/env", python, script, "--runs", std::to_string(o.runs),
                        "--queued", std::to_string(o.slurm_queued), "--no-array"},
                       out);
  auto j = json::parse(out, nullptr, false);
  if (j.is_discarded())
    return {{"skipped", "slurm_jobs.py printed no JSON (exit " + std::to_string(rc) + ")"}};
  return j;
}

/// Polls a job until it left PENDING; the wall time of the first sighting.
std::optional<steady::time_point> wait_running(rpc::client& c, const std::string& id,
                                               std::chrono::milliseconds timeout) {
  auto deadline = steady::now() + timeout;
  while (steady::now() < deadline) {
    auto j = c.job_get(id);
    if (!j)
      return std::nullopt;
    if (j->state != job_state::pending)
      return steady::now();
  }
  return std::nullopt;
}

} // namespace

json run_jobs(const settings& s, const jobs_options& o) {
  const std::string name = "jobs";
  double background = background_busy_pct(name);
  cluster c{s, "jobs"};
  // Two CPUs for entrypoints, whatever the machine has: the drain test
  // admits two 1-CPU jobs at a time.
  if (c.spawn_head({"--num-cpus", "2", "--job-history-max-count",
                    std::to_string(o.queued + 10 * o.runs + 100)})
        < 0
      || !c.wait_head())
    return error_result(name, "the head did not come up");
  std::string e;
  auto cli = connect_until(c.head().api_address, c.token(), steady::now() + 30s, e);
  if (!cli)
    return error_result(name, "cannot connect: " + e);
  std::string first_error;
  auto remember = [&first_error](const caf::error& err) {
    if (first_error.empty())
      first_error = describe(err);
  };

  // submit → RUNNING (the job then runs until it is stopped).
  std::vector<double> to_running;
  for (int i = 0; i < o.runs; ++i) {
    job_submission sub;
    sub.entrypoint = "sleep 30";
    auto t0 = steady::now();
    auto j = cli->job_submit(sub);
    if (!j) {
      remember(j.error());
      continue;
    }
    auto seen = wait_running(*cli, j->spec.submission_id, 10s);
    if (seen)
      to_running.push_back(std::chrono::duration<double, std::milli>(*seen - t0).count());
    cli->job_stop(j->spec.submission_id);
  }
  // submit → SUCCEEDED for `true`: submit, then one wait call that returns
  // when the job has ended (no polling).
  std::vector<double> to_done;
  int succeeded = 0;
  for (int i = 0; i < o.runs; ++i) {
    job_submission sub;
    sub.entrypoint = "true";
    auto t0 = steady::now();
    auto j = cli->job_submit(sub);
    if (!j) {
      remember(j.error());
      continue;
    }
    auto done = cli->job_wait(j->spec.submission_id, 10000);
    auto ms = ms_since(t0);
    if (!done) {
      remember(done.error());
      continue;
    }
    if (done->state == job_state::succeeded) {
      ++succeeded;
      to_done.push_back(ms);
    }
  }
  // 1,000 queued jobs drained: each asks for 1 of the head's 2 CPUs, so at
  // most two run at a time and the rest wait in the FIFO queue.
  note("jobs: submitting " + std::to_string(o.queued) + " queued jobs");
  std::atomic<int> submitted{0}, submit_errors{0};
  std::vector<std::string> ids(static_cast<std::size_t>(o.queued));
  auto drain_t0 = steady::now();
  {
    std::vector<std::thread> threads;
    std::atomic<int> next{0};
    for (int t = 0; t < o.submitters; ++t)
      threads.emplace_back([&] {
        std::string err;
        auto mine = connect_until(c.head().api_address, c.token(), steady::now() + 10s, err);
        if (!mine)
          return;
        for (int i; (i = next++) < o.queued;) {
          job_submission sub;
          sub.submission_id = "drain-" + std::to_string(i);
          sub.entrypoint = "true";
          sub.resources = {{"CPU", 1}};
          auto j = mine->job_submit(sub);
          if (j) {
            ids[static_cast<std::size_t>(i)] = sub.submission_id;
            ++submitted;
          } else {
            ++submit_errors;
          }
        }
      });
    for (auto& th : threads)
      th.join();
  }
  double submit_s = ms_since(drain_t0) / 1000;
  int drained = 0, drain_failed = 0;
  for (auto& id : ids) {
    if (id.empty())
      continue;
    for (;;) {
      auto j = cli->job_wait(id, 10000);
      if (!j) {
        remember(j.error());
        ++drain_failed;
        break;
      }
      if (is_terminal(j->state)) {
        (j->state == job_state::succeeded ? drained : drain_failed)++;
        break;
      }
      if (ms_since(drain_t0) > 600000)
        break;
    }
  }
  double drain_s = ms_since(drain_t0) / 1000;
  double head_rss = vm_rss_bytes(c.head_pid()) / mib;

  auto run_sum = summarize(to_running);
  auto done_sum = summarize(to_done);
  double jobs_per_s = drained / drain_s;
  json out{{"workload", name},
           {"machine", machine_info()},
           {"background_busy_pct", background},
           {"submit_to_running_ms", to_json(run_sum, 2)},
           {"submit_to_succeeded_ms", to_json(done_sum, 2)},
           {"succeeded", succeeded},
           {"queued_drain",
            {{"jobs", o.queued},
             {"submitters", o.submitters},
             {"submitted", submitted.load()},
             {"submit_errors", submit_errors.load()},
             {"submit_seconds", round_to(submit_s, 3)},
             {"succeeded", drained},
             {"failed", drain_failed},
             {"total_seconds", round_to(drain_s, 3)},
             {"jobs_per_s", round_to(jobs_per_s, 1)}}},
           {"head_rss_mib", round_to(head_rss, 1)},
           {"first_error", first_error},
           {"target_submit_to_succeeded_median_ms", 50},
           {"met", done_sum.n > 0 && done_sum.median <= 50}};
  finish(c, out);
  if (o.compare_slurm) {
    auto slurm = run_slurm(o);
    out["slurm"] = slurm;
    auto median_of = [](const json& j, const char* key) -> double {
      if (j.contains(key) && j[key].is_object() && j[key].contains("median"))
        return j[key]["median"].get<double>();
      return 0;
    };
    double sd = median_of(slurm, "submit_to_done_ms");
    if (sd > 0 && done_sum.median > 0)
      out["ratio_slurm_over_rayd_submit_to_done"] = round_to(sd / done_sum.median, 1);
    double sr = median_of(slurm, "submit_to_running_ms");
    if (sr > 0 && run_sum.median > 0)
      out["ratio_slurm_over_rayd_submit_to_running"] = round_to(sr / run_sum.median, 1);
  }
  note("jobs: submit->SUCCEEDED median " + std::to_string(done_sum.median) + " ms, drain "
       + std::to_string(jobs_per_s) + " jobs/s");
  return out;
}

} // namespace rayd::bench
