#include "actors/gcs/job_table.hpp"

#include <algorithm>
#include <cmath>
#include <cctype>

#include "common/error.hpp"
#include "common/package_uri.hpp"
#include "common/util.hpp"
#include "persistence/json_codec.hpp"

namespace rayd::gcs {

job_table::job_table(persistence::store& db) : rows_(db, "jobs") {
}

namespace {

constexpr std::size_t max_entrypoint_bytes = 64 * 1024;
constexpr std::size_t max_metadata_bytes = 64 * 1024;
constexpr std::size_t max_env_bytes = 1024 * 1024;

struct job_row {
  using row_type = job_info;
  static constexpr const char* what = "job";

  static nlohmann::json to_json(const job_info& j) {
    const auto& s = j.spec;
    return {{"v", 1},
            {"submission_id", s.submission_id},
            {"entrypoint", s.entrypoint},
            {"metadata", s.metadata},
            {"env_vars", s.env_vars},
            {"working_dir", s.working_dir},
            {"runtime_env_json", s.runtime_env_json},
            {"resources", s.resources},
            {"state", static_cast<int>(j.state)},
            {"message", j.message},
            {"exit_code", j.exit_code},
            {"exit_signal", j.exit_signal},
            {"submit_time_ms", j.submit_time_ms},
            {"start_time_ms", j.start_time_ms},
            {"end_time_ms", j.end_time_ms},
            {"node_id", j.node_id},
            {"node_name", j.node_name},
            {"pid", j.pid},
            {"seq", j.seq},
            {"stop_requested", j.stop_requested}};
  }

  static caf::expected<job_info> from_json(const nlohmann::json& j) {
    job_info r;
    auto& s = r.spec;
    s.submission_id = j.at("submission_id").get<std::string>();
    s.entrypoint = j.value("entrypoint", "");
    s.metadata = j.value("metadata", string_map{});
    s.env_vars = j.value("env_vars", string_map{});
    s.working_dir = j.value("working_dir", "");
    s.runtime_env_json = j.value("runtime_env_json", "");
    s.resources = j.value("resources", resource_map{});
    auto st = j.value("state", 0);
    if (st < 0 || st > static_cast<int>(job_state::stopped))
      return make_error(errc::storage_error,
                        "corrupt job row " + s.submission_id + ": bad state");
    r.state = static_cast<job_state>(st);
    r.message = j.value("message", "");
    r.exit_code = j.value("exit_code", -1);
    r.exit_signal = j.value("exit_signal", 0);
    r.submit_time_ms = j.value("submit_time_ms", int64_t{0});
    r.start_time_ms = j.value("start_time_ms", int64_t{0});
    r.end_time_ms = j.value("end_time_ms", int64_t{0});
    r.node_id = j.value("node_id", "");
    r.node_name = j.value("node_name", "");
    r.pid = j.value("pid", 0);
    r.seq = j.value("seq", uint64_t{0});
    r.stop_requested = j.value("stop_requested", false);
    return r;
  }
};

} // namespace

std::string job_table::codec::encode(const job_info& j) {
  return persistence::json_codec<job_row>::encode(j);
}

caf::expected<job_info> job_table::codec::decode(const std::string& key,
                                                 const std::string& bytes) {
  return persistence::json_codec<job_row>::decode(key, bytes);
}

caf::error job_table::load() {
  if (auto err = rows_.load())
    return err;
  max_seq_ = 0;
  for (auto& [_, r] : rows_.all())
    max_seq_ = std::max(max_seq_, r->seq);
  return caf::none;
}

const job_info* job_table::find(const std::string& id) const {
  return rows_.find(id);
}

void job_table::stage(const job_info& row) {
  max_seq_ = std::max(max_seq_, row.seq);
  auto copy = row;
  copy.queue_position = 0; // derived, never stored
  rows_.stage(row.spec.submission_id, std::move(copy));
}

void job_table::stage_erase(const std::string& id) {
  rows_.erase(id);
}

caf::error job_table::commit() {
  return rows_.commit();
}

std::vector<const job_info*> job_table::by_seq() const {
  std::vector<const job_info*> out;
  for (auto& [_, r] : rows_.all())
    out.push_back(r);
  std::sort(out.begin(), out.end(),
            [](auto* a, auto* b) { return a->seq < b->seq; });
  return out;
}

std::vector<std::string>
job_table::retention_victims(const retention_policy& policy,
                             int64_t now_ms) const {
  std::vector<const job_info*> done;
  for (auto& [_, r] : rows_.all())
    if (is_terminal(r->state))
      done.push_back(r);
  std::sort(done.begin(), done.end(), [](auto* a, auto* b) {
    return a->end_time_ms != b->end_time_ms ? a->end_time_ms < b->end_time_ms
                                            : a->seq < b->seq;
  });
  std::vector<std::string> out;
  std::size_t keep_from = 0;
  if (policy.max_count > 0 && done.size() > policy.max_count)
    keep_from = done.size() - policy.max_count;
  for (std::size_t i = 0; i < done.size(); ++i) {
    bool too_old = policy.max_age_ms > 0
                   && now_ms - done[i]->end_time_ms > policy.max_age_ms;
    if (i < keep_from || too_old)
      out.push_back(done[i]->spec.submission_id);
  }
  return out;
}

caf::error check_submission(job_submission& s) {
  if (s.entrypoint.empty())
    return make_error(errc::invalid_argument, "the entrypoint is empty");
  if (s.entrypoint.size() > max_entrypoint_bytes)
    return make_error(errc::invalid_argument,
                      "the entrypoint is longer than 64 KiB");
  if (s.entrypoint.find('\0') != std::string::npos)
    return make_error(errc::invalid_argument,
                      "the entrypoint must not contain NUL bytes");
  std::size_t meta = 0;
  for (auto& [k, v] : s.metadata)
    meta += k.size() + v.size();
  if (meta > max_metadata_bytes)
    return make_error(errc::invalid_argument, "metadata is larger than 64 KiB");
  std::size_t env = 0;
  for (auto& [k, v] : s.env_vars) {
    bool ok = !k.empty() && !std::isdigit(static_cast<unsigned char>(k[0]))
              && std::all_of(k.begin(), k.end(), [](char c) {
                   return std::isalnum(static_cast<unsigned char>(c)) || c == '_';
                 });
    if (!ok)
      return make_error(errc::invalid_argument,
                        "invalid environment variable name '" + k + "'");
    if (v.find('\0') != std::string::npos)
      return make_error(errc::invalid_argument,
                        "environment variable " + k + " contains a NUL byte");
    env += k.size() + v.size();
  }
  if (env > max_env_bytes)
    return make_error(errc::invalid_argument,
                      "environment variables exceed 1 MiB in total");
  for (auto& [name, amount] : s.resources)
    if (!std::isfinite(amount) || amount < 0 || name.empty())
      return make_error(errc::invalid_argument,
                        "entrypoint resource '" + name
                          + "' must be a non-negative number");
  auto& wd = s.working_dir;
  if (!wd.empty() && !package_hash(wd)
      && !(wd.rfind("file:///", 0) == 0 && wd.size() > 8))
    return make_error(errc::invalid_argument,
                      "working_dir '" + wd
                        + "' must be a package URI gcs://<sha256>.tar.gz or "
                          "file:///ABSOLUTE/DIR on the nodes (rayctl uploads "
                          "local directories)");
  if (s.submission_id.empty())
    s.submission_id = "rayd_job_" + random_hex(8);
  return check_submission_id(s.submission_id);
}

caf::error check_submission_id(const std::string& id) {
  auto ok = !id.empty() && id.size() <= 128
            && std::all_of(id.begin(), id.end(), [](char c) {
                 return std::isalnum(static_cast<unsigned char>(c)) || c == '_'
                        || c == '-' || c == '.';
               });
  if (!ok)
    return make_error(errc::invalid_argument,
                      "invalid submission id '" + id
                        + "': use 1 to 128 characters of A-Z a-z 0-9 _ . -");
  return caf::none;
}

} // namespace rayd::gcs
