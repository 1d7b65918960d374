#include "actors/gcs/actor_table.hpp"

#include <optional>

#include "common/error.hpp"
#include "persistence/json_codec.hpp"

namespace rayd::gcs {

std::string to_string(actor_state s) {
  switch (s) {
    case actor_state::pending_creation:
      return "PENDING_CREATION";
    case actor_state::alive:
      return "ALIVE";
    case actor_state::restarting:
      return "RESTARTING";
    case actor_state::dead:
      return "DEAD";
  }
  return "UNKNOWN";
}

namespace {

// The constructor's msgpack bytes as hex: JSON has no byte strings (and
// nlohmann's binary values do not survive dump() and parse()).
std::string to_hex(const std::string& bytes) {
  static const char digits[] = "0123456789abcdef";
  std::string out;
  out.reserve(bytes.size() * 2);
  for (unsigned char c : bytes) {
    out += digits[c >> 4];
    out += digits[c & 15];
  }
  return out;
}

std::optional<std::string> from_hex(const std::string& hex) {
  auto nibble = [](char c) -> int {
    if (c >= '0' && c <= '9')
      return c - '0';
    if (c >= 'a' && c <= 'f')
      return c - 'a' + 10;
    return -1;
  };
  if (hex.size() % 2 != 0)
    return std::nullopt;
  std::string out;
  out.reserve(hex.size() / 2);
  for (std::size_t i = 0; i < hex.size(); i += 2) {
    int hi = nibble(hex[i]), lo = nibble(hex[i + 1]);
    if (hi < 0 || lo < 0)
      return std::nullopt;
    out += static_cast<char>(hi << 4 | lo);
  }
  return out;
}

nlohmann::json args_hex(const std::vector<std::string>& args) {
  auto out = nlohmann::json::array();
  for (auto& a : args)
    out.push_back(to_hex(a));
  return out;
}

nlohmann::json code_json(const std::vector<code_file_ref>& code) {
  auto out = nlohmann::json::array();
  for (auto& c : code)
    out.push_back({{"hash", c.hash}, {"name", c.name}});
  return out;
}

struct actor_json {
  using row_type = actor_row;
  static constexpr const char* what = "actor";

  static nlohmann::json to_json(const actor_row& r) {
    const auto& s = r.spec;
    return {{"v", 1},
            {"actor_id", r.actor_id},
            {"name", s.name},
            {"namespace", s.ray_namespace},
            {"class", s.class_name},
            {"owner_job", s.owner_job},
            {"detached", s.detached},
            {"max_restarts", s.max_restarts},
            {"max_task_retries", s.max_task_retries},
            {"max_concurrency", s.max_concurrency},
            {"resources", s.resources},
            {"label_selector", s.label_selector},
            {"args_hex", args_hex(s.args)},
            {"code", code_json(s.code)},
            {"state", static_cast<int>(r.state)},
            {"node_id", r.node_id},
            {"pid", r.pid},
            {"address", r.address},
            {"restarts", r.restarts},
            {"death_cause", r.death_cause},
            {"create_time_ms", r.create_time_ms},
            {"end_time_ms", r.end_time_ms}};
  }

  static caf::expected<actor_row> from_json(const nlohmann::json& j) {
    actor_row r;
    auto& s = r.spec;
    r.actor_id = j.at("actor_id").get<std::string>();
    s.name = j.at("name").get<std::string>();
    s.ray_namespace = j.at("namespace").get<std::string>();
    s.class_name = j.at("class").get<std::string>();
    s.owner_job = j.at("owner_job").get<std::string>();
    s.detached = j.at("detached").get<bool>();
    s.max_restarts = j.at("max_restarts").get<int32_t>();
    s.max_task_retries = j.at("max_task_retries").get<int32_t>();
    s.max_concurrency = j.at("max_concurrency").get<int32_t>();
    s.resources = j.at("resources").get<resource_map>();
    s.label_selector = j.at("label_selector").get<label_map>();
    for (auto& a : j.at("args_hex")) {
      auto arg = from_hex(a.get<std::string>());
      if (!arg)
        return make_error(errc::storage_error, "actor row with malformed args_hex");
      s.args.push_back(std::move(*arg));
    }
    for (auto& c : j.at("code"))
      s.code.push_back({c.at("hash").get<std::string>(), c.at("name").get<std::string>()});
    auto state = j.at("state").get<int>();
    if (state < 0 || state > static_cast<int>(actor_state::dead))
      return make_error(errc::storage_error, "actor row with unknown state "
                                               + std::to_string(state));
    r.state = static_cast<actor_state>(state);
    r.node_id = j.at("node_id").get<std::string>();
    r.pid = j.at("pid").get<int64_t>();
    r.address = j.at("address").get<std::string>();
    r.restarts = j.at("restarts").get<int32_t>();
    r.death_cause = j.at("death_cause").get<std::string>();
    r.create_time_ms = j.at("create_time_ms").get<int64_t>();
    r.end_time_ms = j.at("end_time_ms").get<int64_t>();
    return r;
  }
};

using json_rows = persistence::json_codec<actor_json>;

} // namespace

std::string actor_table::codec::encode(const actor_row& r) {
  return json_rows::encode(r);
}

caf::expected<actor_row> actor_table::codec::decode(const std::string& key,
                                                    const std::string& bytes) {
  return json_rows::decode(key, bytes);
}

actor_table::actor_table(persistence::store& db) : rows_(db, "actors") {
}

caf::error actor_table::load() {
  auto err = rows_.load();
  rebuild_names();
  return err;
}

void actor_table::rebuild_names() {
  names_.clear();
  for (auto& [_, r] : rows_.all())
    if (r->state != actor_state::dead && !r->spec.name.empty())
      names_[{r->spec.ray_namespace, r->spec.name}] = r->actor_id;
}

void actor_table::stage(const actor_row& r) {
  std::pair<std::string, std::string> key{r.spec.ray_namespace, r.spec.name};
  if (!r.spec.name.empty()) {
    if (r.state != actor_state::dead)
      names_[key] = r.actor_id;
    else if (auto i = names_.find(key); i != names_.end() && i->second == r.actor_id)
      names_.erase(i);
  }
  rows_.stage(r.actor_id, r);
}

const actor_row* actor_table::find(const std::string& id) const {
  return rows_.find(id);
}

const actor_row* actor_table::find_named(const std::string& ns,
                                         const std::string& name) const {
  if (name.empty())
    return nullptr;
  auto i = names_.find({ns, name});
  return i == names_.end() ? nullptr : rows_.find(i->second);
}

std::vector<actor_row> actor_table::list() const {
  std::vector<actor_row> out;
  for (auto& [_, r] : rows_.all())
    out.push_back(*r);
  return out;
}

std::vector<const actor_row*> actor_table::rows() const {
  std::vector<const actor_row*> out;
  for (auto& [_, r] : rows_.all())
    out.push_back(r);
  return out;
}

caf::error actor_table::commit() {
  auto err = rows_.commit();
  if (err)
    rebuild_names(); // the staged rows were discarded
  return err;
}

caf::expected<actor_row> actor_table::create(const std::string& id, actor_spec spec,
                                             int64_t now_ms) {
  if (spec.class_name.empty())
    return make_error(errc::invalid_argument, "an actor needs a class name");
  if (spec.max_restarts < -1 || spec.max_task_retries < -1 || spec.max_concurrency < 1)
    return make_error(errc::invalid_argument,
                      "max_restarts and max_task_retries must be >= -1 (-1: unlimited), "
                      "max_concurrency >= 1");
  if (rows_.find(id) != nullptr)
    return make_error(errc::already_exists, "actor id " + id + " is taken");
  if (auto* live = find_named(spec.ray_namespace, spec.name)) {
    if (spec.get_if_exists)
      return *live;
    return make_error(errc::already_exists,
                      "an actor named '" + spec.name + "' already exists in namespace '"
                        + spec.ray_namespace + "' (" + live->actor_id + ", "
                        + to_string(live->state) + "); ask get_if_exists to use it");
  }
  actor_row r;
  r.actor_id = id;
  r.spec = std::move(spec);
  r.spec.get_if_exists = false; // a request flag, not part of the actor
  r.create_time_ms = now_ms;
  stage(r);
  return r;
}

caf::expected<actor_row> actor_table::mark_alive(const std::string& id,
                                                 const std::string& node_id, int64_t pid,
                                                 const std::string& address) {
  auto* cur = rows_.find(id);
  if (cur == nullptr)
    return make_error(errc::not_found, "no actor " + id);
  if (cur->state == actor_state::dead)
    return make_error(errc::invalid_argument,
                      "actor " + id + " is DEAD (" + cur->death_cause + ")");
  auto r = *cur;
  r.state = actor_state::alive;
  r.node_id = node_id;
  r.pid = pid;
  r.address = address;
  stage(r);
  return r;
}

caf::expected<actor_row> actor_table::die(const actor_row& cur, std::string cause,
                                          int64_t now_ms) {
  auto r = cur;
  r.state = actor_state::dead;
  r.death_cause = std::move(cause);
  r.end_time_ms = now_ms;
  r.address.clear();
  stage(r);
  return r;
}

caf::expected<actor_row> actor_table::mark_failed(const std::string& id,
                                                  const std::string& cause, int64_t now_ms) {
  auto* cur = rows_.find(id);
  if (cur == nullptr)
    return make_error(errc::not_found, "no actor " + id);
  if (cur->state == actor_state::dead)
    return *cur;
  auto limit = cur->spec.max_restarts;
  if (limit >= 0 && cur->restarts >= limit)
    return die(*cur,
               limit == 0 ? cause + " (max_restarts is 0)"
                          : "restarts exhausted (" + std::to_string(limit) + "): " + cause,
               now_ms);
  auto r = *cur;
  r.state = actor_state::restarting;
  r.restarts += 1;
  r.death_cause = cause; // why the last incarnation ended
  r.address.clear();
  r.pid = 0;
  stage(r);
  return r;
}

caf::expected<actor_row> actor_table::mark_constructor_failed(const std::string& id,
                                                              const std::string& what,
                                                              int64_t now_ms) {
  auto* cur = rows_.find(id);
  if (cur == nullptr)
    return make_error(errc::not_found, "no actor " + id);
  if (cur->state == actor_state::dead)
    return *cur;
  return die(*cur, "constructor threw " + what, now_ms);
}

caf::expected<actor_row> actor_table::kill(const std::string& id, const std::string& by,
                                           bool no_restart, int64_t now_ms) {
  auto* cur = rows_.find(id);
  if (cur == nullptr)
    return make_error(errc::not_found, "no actor " + id);
  if (cur->state == actor_state::dead)
    return *cur;
  if (no_restart)
    return die(*cur, "killed by " + by, now_ms);
  return mark_failed(id, "killed by " + by + " (restart allowed)", now_ms);
}

std::vector<actor_row> actor_table::owner_gone(const std::string& job_id, int64_t now_ms) {
  std::vector<std::string> ids;
  for (auto& [_, r] : rows_.all())
    if (!r->spec.detached && r->spec.owner_job == job_id && r->state != actor_state::dead)
      ids.push_back(r->actor_id);
  std::vector<actor_row> out;
  for (auto& id : ids)
    if (auto r = die(*rows_.find(id), "owner job " + job_id + " ended", now_ms))
      out.push_back(std::move(*r));
  return out;
}

} // namespace rayd::gcs
