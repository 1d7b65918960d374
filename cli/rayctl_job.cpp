// `rayctl job …`: submit, status, logs, stop, list, delete.
//
// A local working_dir is packed here (tar.gz, .git and "excludes" skipped,
// at most 100 MiB), uploaded once by content hash, and named in the
// submission as gcs://<sha256>.tar.gz; the nodes fetch and unpack it.

#include <cstdio>
#include <ctime>
#include <iomanip>
#include <iostream>
#include <sstream>
#include <thread>

#include <nlohmann/json.hpp>

#include "cli/rayctl.hpp"
#include "common/archive.hpp"
#include "common/error.hpp"
#include "common/util.hpp"
#include "schemas/api_client.hpp"

namespace rayd::cli {

namespace {

using json = nlohmann::json;
using namespace std::chrono_literals;

constexpr uint32_t log_chunk_bytes = 1u << 20;
constexpr uint32_t follow_wait_ms = 5000;
/// How long a follower keeps trying to reach a head that went away.
constexpr auto reconnect_patience = 60s;

caf::error usage(std::string msg) {
  return make_error(errc::invalid_argument, std::move(msg));
}

/// Words that the shell would split or expand are single-quoted.
std::string shell_quote(const std::string& w) {
  bool plain = !w.empty() && w.find_first_not_of(
                               "abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ"
                               "0123456789_-.,/:=@%+")
                               == std::string::npos;
  if (plain)
    return w;
  std::string out = "'";
  for (char c : w) {
    if (c == '\'')
      out += "'\\''";
    else
      out += c;
  }
  return out + "'";
}

/// One word is a shell command line as written; several are a command and
/// its arguments, quoted so the shell passes them on unchanged.
std::string entrypoint_of(const std::vector<std::string>& words) {
  if (words.size() == 1)
    return words[0];
  std::string out;
  for (auto& w : words) {
    if (!out.empty())
      out += ' ';
    out += shell_quote(w);
  }
  return out;
}

caf::expected<json> parse_object(const std::string& text, const std::string& flag) {
  auto j = json::parse(text, nullptr, false);
  if (j.is_discarded() || !j.is_object())
    return usage(flag + ": expected a JSON object, got '" + text.substr(0, 80) + "'");
  return j;
}

/// Packs and uploads a local directory (unless the head has it already).
caf::expected<std::string> upload_working_dir(rpc::client& c, const std::string& dir,
                                              const std::vector<std::string>& excludes) {
  pack_options po;
  po.excludes = excludes;
  auto pkg = pack_directory(dir, po);
  if (!pkg)
    return pkg.error();
  auto uri = "gcs://" + sha256_hex(*pkg) + ".tar.gz";
  auto present = c.has_package(uri);
  if (!present)
    return present.error();
  if (*present)
    return uri;
  return c.upload_package(*pkg);
}

/// Builds the submission from the flags; uploads the working_dir.
caf::expected<job_submission> make_submission(rpc::client& c,
                                              const job_submit_options& o) {
  job_submission s;
  s.submission_id = o.submission_id;
  if (o.entrypoint.empty())
    return usage("no entrypoint: put the command after --, e.g. "
                 "rayctl job submit -- echo hello");
  s.entrypoint = entrypoint_of(o.entrypoint);
  std::vector<std::string> excludes;
  std::string working_dir = o.working_dir;
  if (!o.runtime_env_json.empty()) {
    auto env = parse_object(o.runtime_env_json, "--runtime-env-json");
    if (!env)
      return env.error();
    for (auto& [key, value] : env->items()) {
      try {
        if (key == "env_vars") {
          for (auto& [k, v] : value.items())
            s.env_vars[k] = v.is_string() ? v.get<std::string>() : v.dump();
        } else if (key == "working_dir") {
          if (working_dir.empty())
            working_dir = value.get<std::string>();
        } else if (key == "excludes") {
          excludes = value.get<std::vector<std::string>>();
        } else {
          return usage("--runtime-env-json: '" + key
                       + "' is not supported (rayd supports env_vars, "
                         "working_dir, excludes)");
        }
      } catch (const std::exception& e) {
        return usage("--runtime-env-json: bad '" + key + "': " + e.what());
      }
    }
    s.runtime_env_json = env->dump();
  }
  for (auto& kv : o.env) {
    auto eq = kv.find('=');
    if (eq == std::string::npos || eq == 0)
      return usage("--env " + kv + ": expected NAME=VALUE");
    s.env_vars[kv.substr(0, eq)] = kv.substr(eq + 1);
  }
  if (!o.metadata_json.empty()) {
    auto meta = parse_object(o.metadata_json, "--metadata-json");
    if (!meta)
      return meta.error();
    for (auto& [k, v] : meta->items())
      s.metadata[k] = v.is_string() ? v.get<std::string>() : v.dump();
  }
  if (!o.resources_json.empty()) {
    auto res = parse_resources_json(o.resources_json, "--entrypoint-resources");
    if (!res)
      return res.error();
    s.resources = *res;
  }
  for (auto [name, amount] : {std::pair{"CPU", o.num_cpus}, std::pair{"GPU", o.num_gpus},
                              std::pair{"memory", o.memory}}) {
    if (amount < 0)
      return usage(std::string{"entrypoint "} + name + " must not be negative");
    if (amount > 0)
      s.resources[name] = amount;
  }
  if (!working_dir.empty()) {
    if (working_dir.rfind("gcs://", 0) == 0 || working_dir.rfind("file://", 0) == 0) {
      s.working_dir = working_dir;
    } else {
      auto uri = upload_working_dir(c, working_dir, excludes);
      if (!uri)
        return uri.error();
      s.working_dir = *uri;
    }
  }
  return s;
}

std::string format_time(int64_t ms) {
  if (ms <= 0)
    return "-";
  std::time_t t = ms / 1000;
  std::tm tm{};
  localtime_r(&t, &tm);
  std::ostringstream out;
  out << std::put_time(&tm, "%Y-%m-%d %H:%M:%S");
  return out.str();
}

json to_json(const job_info& j) {
  json runtime_env = json::object();
  if (!j.spec.runtime_env_json.empty()) {
    auto parsed = json::parse(j.spec.runtime_env_json, nullptr, false);
    if (!parsed.is_discarded())
      runtime_env = parsed;
  }
  if (!j.spec.env_vars.empty())
    runtime_env["env_vars"] = j.spec.env_vars;
  if (!j.spec.working_dir.empty())
    runtime_env["working_dir"] = j.spec.working_dir;
  return {{"submission_id", j.spec.submission_id},
          {"entrypoint", j.spec.entrypoint},
          {"status", to_string(j.state)},
          {"message", j.message},
          {"exit_code", j.exit_code},
          {"exit_signal", j.exit_signal},
          {"submit_time_ms", j.submit_time_ms},
          {"start_time_ms", j.start_time_ms},
          {"end_time_ms", j.end_time_ms},
          {"node_id", j.node_id},
          {"node_name", j.node_name},
          {"pid", j.pid},
          {"queue_position", j.queue_position},
          {"stop_requested", j.stop_requested},
          {"metadata", j.spec.metadata},
          {"runtime_env", runtime_env},
          {"entrypoint_resources", j.spec.resources}};
}

void print_info(const job_info& j) {
  std::cout << "Job:         " << j.spec.submission_id << "\n"
            << "Status:      " << to_string(j.state) << "\n"
            << "Message:     " << j.message << "\n"
            << "Entrypoint:  " << j.spec.entrypoint << "\n";
  if (!j.node_id.empty())
    std::cout << "Node:        " << j.node_name << " (" << j.node_id << ")"
              << (j.pid ? ", pid " + std::to_string(j.pid) : std::string{}) << "\n";
  if (!j.spec.resources.empty()) {
    std::cout << "Resources:  ";
    for (auto& [k, v] : j.spec.resources)
      std::cout << " " << k << "=" << format_amount(k, v);
    std::cout << "\n";
  }
  std::cout << "Submitted:   " << format_time(j.submit_time_ms) << "\n"
            << "Started:     " << format_time(j.start_time_ms) << "\n"
            << "Ended:       " << format_time(j.end_time_ms) << "\n";
  if (is_terminal(j.state) && j.exit_signal == 0 && j.exit_code >= 0)
    std::cout << "Exit code:   " << j.exit_code << "\n";
  std::cout.flush();
}

/// Connects, retrying while the head is unreachable (a head restart), for
/// at most `reconnect_patience`.
caf::expected<std::unique_ptr<rpc::client>> reconnect(const rayctl_target& t) {
  auto deadline = std::chrono::steady_clock::now() + reconnect_patience;
  for (;;) {
    auto c = connect(t);
    if (c || code_of(c.error()) != errc::unavailable
        || std::chrono::steady_clock::now() > deadline)
      return c;
    std::this_thread::sleep_for(500ms);
  }
}

/// Copies the log to stdout from offset 0 until it is closed (follow) or
/// until its current end. Survives a head restart by reconnecting.
caf::error stream_logs(const rayctl_target& t, std::unique_ptr<rpc::client>& c,
                       const std::string& id, bool follow, bool json_lines) {
  uint64_t offset = 0;
  for (;;) {
    auto slice = c->job_logs(id, offset, log_chunk_bytes, follow ? follow_wait_ms : 0);
    if (!slice) {
      if (!follow || code_of(slice.error()) != errc::unavailable)
        return slice.error();
      auto again = reconnect(t);
      if (!again)
        return again.error();
      c = std::move(*again);
      continue;
    }
    if (!slice->data.empty()) {
      if (json_lines)
        std::cout << json{{"offset", slice->offset}, {"data", slice->data}}.dump()
                  << "\n";
      else
        std::cout.write(slice->data.data(),
                        static_cast<std::streamsize>(slice->data.size()));
      std::cout.flush();
    }
    offset = slice->offset + slice->data.size();
    if (slice->closed)
      return caf::none;
    if (!follow && slice->data.empty())
      return caf::none;
  }
}

/// Waits (in ≤ 10 s calls) until the job has ended.
caf::expected<job_info> wait_terminal(std::unique_ptr<rpc::client>& c,
                                      const std::string& id) {
  for (;;) {
    auto j = c->job_wait(id, 10000);
    if (!j || is_terminal(j->state))
      return j;
  }
}

} // namespace

int rayctl_job_submit(const rayctl_target& t, const job_submit_options& o, bool as_json) {
  auto c = connect(t);
  if (!c)
    return fail(c.error());
  auto s = make_submission(**c, o);
  if (!s)
    return fail(s.error());
  auto j = (*c)->job_submit(*s);
  if (!j)
    return fail(j.error());
  auto id = j->spec.submission_id;
  if (o.no_wait) {
    if (as_json) {
      std::cout << to_json(*j).dump(2) << std::endl;
    } else {
      std::cout << "Job '" << id << "' submitted successfully.\n"
                << "  Query its status:  rayctl job status " << id << "\n"
                << "  Follow its logs:   rayctl job logs " << id << " --follow\n"
                << "  Stop it:           rayctl job stop " << id << std::endl;
    }
    return 0;
  }
  if (!as_json)
    std::cerr << "Job '" << id << "' submitted; its logs follow." << std::endl;
  if (auto err = stream_logs(t, *c, id, true, as_json))
    return fail(err);
  auto final = wait_terminal(*c, id);
  if (!final)
    return fail(final.error());
  if (as_json)
    std::cout << to_json(*final).dump(2) << std::endl;
  else
    std::cerr << "Job '" << id << "' " << to_string(final->state) << ": "
              << final->message << std::endl;
  return final->state == job_state::succeeded ? 0 : 1;
}

int rayctl_job_status(const rayctl_target& t, const std::string& id, bool as_json) {
  auto c = connect(t);
  if (!c)
    return fail(c.error());
  auto j = (*c)->job_get(id);
  if (!j)
    return fail(j.error());
  if (as_json)
    std::cout << to_json(*j).dump(2) << std::endl;
  else
    print_info(*j);
  return 0;
}

int rayctl_job_logs(const rayctl_target& t, const std::string& id, bool follow,
                    bool as_json) {
  auto c = connect(t);
  if (!c)
    return fail(c.error());
  if (as_json && !follow) {
    // The whole log as one object.
    std::string all;
    uint64_t offset = 0;
    bool closed = false;
    for (;;) {
      auto slice = (*c)->job_logs(id, offset, log_chunk_bytes, 0);
      if (!slice)
        return fail(slice.error());
      all += slice->data;
      offset = slice->offset + slice->data.size();
      closed = slice->closed;
      if (slice->data.empty() || closed)
        break;
    }
    std::cout << json{{"submission_id", id}, {"logs", all}, {"complete", closed}}.dump()
              << std::endl;
    return 0;
  }
  if (auto err = stream_logs(t, *c, id, follow, as_json))
    return fail(err);
  return 0;
}

int rayctl_job_stop(const rayctl_target& t, const std::string& id, bool no_wait,
                    bool as_json) {
  auto c = connect(t);
  if (!c)
    return fail(c.error());
  auto j = (*c)->job_stop(id);
  if (!j)
    return fail(j.error());
  if (!no_wait && !is_terminal(j->state)) {
    auto final = wait_terminal(*c, id);
    if (!final)
      return fail(final.error());
    j = final;
  }
  if (as_json)
    std::cout << to_json(*j).dump(2) << std::endl;
  else
    std::cout << "Job '" << id << "' " << to_string(j->state) << ": " << j->message
              << std::endl;
  return 0;
}

int rayctl_job_list(const rayctl_target& t, bool as_json) {
  auto c = connect(t);
  if (!c)
    return fail(c.error());
  auto jobs = (*c)->job_list();
  if (!jobs)
    return fail(jobs.error());
  if (as_json) {
    auto out = json::array();
    for (auto& j : *jobs)
      out.push_back(to_json(j));
    std::cout << out.dump(2) << std::endl;
    return 0;
  }
  std::cout << std::left << std::setw(34) << "SUBMISSION_ID" << std::setw(11) << "STATUS"
            << std::setw(21) << "SUBMITTED" << std::setw(16) << "NODE"
            << "ENTRYPOINT\n";
  for (auto& j : *jobs) {
    auto entry = j.spec.entrypoint;
    if (entry.size() > 60)
      entry = entry.substr(0, 57) + "...";
    std::cout << std::left << std::setw(34) << j.spec.submission_id << std::setw(11)
              << to_string(j.state) << std::setw(21) << format_time(j.submit_time_ms)
              << std::setw(16) << (j.node_name.empty() ? "-" : j.node_name) << entry
              << "\n";
  }
  std::cout.flush();
  return 0;
}

int rayctl_job_delete(const rayctl_target& t, const std::string& id, bool as_json) {
  auto c = connect(t);
  if (!c)
    return fail(c.error());
  auto deleted = (*c)->job_delete(id);
  if (!deleted)
    return fail(deleted.error());
  if (as_json)
    std::cout << json{{"submission_id", id}, {"deleted", *deleted}}.dump() << std::endl;
  else
    std::cout << "Job '" << id << "' deleted (with its logs)." << std::endl;
  return 0;
}

} // namespace rayd::cli
