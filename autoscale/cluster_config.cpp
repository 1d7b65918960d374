#include "autoscale/cluster_config.hpp"

#include <algorithm>
#include <cctype>
#include <cerrno>
#include <climits>
#include <cmath>
#include <cstdlib>
#include <cstring>
#include <fstream>
#include <optional>
#include <set>
#include <sstream>

#include <nlohmann/json.hpp>
#include <yaml-cpp/eventhandler.h>
#include <yaml-cpp/yaml.h>

#include "common/error.hpp"

namespace rayd::autoscale {

const char* to_string(provider_kind x) {
  switch (x) {
    case provider_kind::processes:
      return "processes";
    case provider_kind::fake:
      return "fake";
    case provider_kind::command:
      return "command";
  }
  return "?";
}

namespace {

// Limits on node_config, which is converted to JSON: YAML aliases can make a
// small file expand exponentially ("billion laughs"), so the walk is bounded.
constexpr int max_json_depth = 64;
constexpr std::size_t max_json_values = 100000;

// Largest idle timeout accepted, in milliseconds (about 31 years): keeps the
// conversion to std::chrono::milliseconds exact and far from overflow.
constexpr double max_idle_timeout_ms = 1e12;

const std::vector<std::string> top_level_keys = {
  "cluster_name",         "max_workers",
  "upscaling_speed",      "idle_timeout_minutes",
  "idle_timeout_seconds", "provider",
  "auth",                 "available_node_types",
  "head_node_type",       "file_mounts",
  "setup_commands",       "head_start_rayd_commands",
  "worker_start_rayd_commands",
};

// Keys Ray users carry over that rayd names differently or does not have:
// said plainly instead of a guess by edit distance.
const std::map<std::string, std::string> top_level_hints = {
  {"head_start_ray_commands", "this is rayd: use 'head_start_rayd_commands'"},
  {"worker_start_ray_commands",
   "this is rayd: use 'worker_start_rayd_commands'"},
  {"min_workers", "rayd sets min_workers per node type, under "
                  "available_node_types.NAME.min_workers"},
  {"head_setup_commands", "a Ray key rayd does not support; use "
                          "setup_commands (run on every node)"},
  {"worker_setup_commands", "a Ray key rayd does not support; use "
                            "setup_commands (run on every node)"},
  {"initialization_commands", "a Ray key rayd does not support"},
  {"docker", "a Ray key rayd does not support"},
  {"cluster_synced_files", "a Ray key rayd does not support"},
  {"rsync_exclude", "a Ray key rayd does not support"},
  {"rsync_filter", "a Ray key rayd does not support"},
  {"file_mounts_sync_continuously", "a Ray key rayd does not support"},
  {"head_node", "Ray's old format: declare the head under "
                "available_node_types and name it in head_node_type"},
  {"worker_nodes", "Ray's old format: declare workers under "
                   "available_node_types"},
};

const std::vector<std::string> node_type_keys = {
  "resources", "labels", "min_workers", "max_workers", "node_config",
};

const std::vector<std::string> auth_keys = {"ssh_user", "ssh_private_key"};

const std::vector<std::string> fake_keys = {"type", "launch_delay_s",
                                            "failure_rate"};
const std::vector<std::string> command_keys = {"type", "command",
                                               "timeout_s"};
const std::vector<std::string> processes_keys = {"type"};

const std::vector<std::string> provider_types = {"processes", "fake",
                                                 "command"};

/// Counts documents and remembers where the second one starts; ignores the
/// rest. yaml-cpp 0.7.0's LoadAll never ends on some input (a ',' outside
/// brackets yields one empty document after another until memory runs out),
/// so documents are counted through the parser and never more than two read.
class document_counter : public YAML::EventHandler {
public:
  int documents = 0;
  int second_line = 1;

  void OnDocumentStart(const YAML::Mark& mark) override {
    if (++documents == 2)
      second_line = mark.line >= 0 ? mark.line + 1 : 1;
  }
  void OnDocumentEnd() override {
    // Nothing: only starts are counted.
  }
  void OnNull(const YAML::Mark&, YAML::anchor_t) override {
    // Nothing: the content is read by YAML::Load.
  }
  void OnAlias(const YAML::Mark&, YAML::anchor_t) override {
    // Nothing: see OnNull.
  }
  void OnScalar(const YAML::Mark&, const std::string&, YAML::anchor_t,
                const std::string&) override {
    // Nothing: see OnNull.
  }
  void OnSequenceStart(const YAML::Mark&, const std::string&, YAML::anchor_t,
                       YAML::EmitterStyle::value) override {
    // Nothing: see OnNull.
  }
  void OnSequenceEnd() override {
    // Nothing: see OnNull.
  }
  void OnMapStart(const YAML::Mark&, const std::string&, YAML::anchor_t,
                  YAML::EmitterStyle::value) override {
    // Nothing: see OnNull.
  }
  void OnMapEnd() override {
    // Nothing: see OnNull.
  }
};

/// One key of a mapping with the line it is on (1-based).
struct entry {
  std::string key;
  int line = 1;
  YAML::Node value;
};

/// Builds errors that all read "<source>:<line>: <path>: <problem>".
class reporter {
public:
  explicit reporter(const std::string& source) : source_(source) {
    // Nothing: the source name is only a prefix.
  }

  caf::error fail(int line, const std::string& path,
                  const std::string& problem) const {
    std::string msg = source_ + ":" + std::to_string(line) + ": ";
    if (!path.empty())
      msg += path + ": ";
    msg += problem;
    return make_error(errc::invalid_argument, std::move(msg));
  }

private:
  const std::string& source_;
};

int line_of(const YAML::Node& node, int fallback) {
  auto mark = node.Mark();
  return mark.line >= 0 ? mark.line + 1 : fallback;
}

/// The line an error about `e`'s value is reported on: the value's own line
/// for lists and mappings spread over lines, else the key's.
int value_line(const entry& e) {
  if (e.value.IsNull() || e.value.IsScalar())
    return e.line;
  return line_of(e.value, e.line);
}

/// `text` with control characters as \xNN, so that a message stays one line
/// whatever bytes the file holds.
std::string printable(const std::string& text) {
  std::string out;
  for (char c : text) {
    auto u = static_cast<unsigned char>(c);
    if (u < 0x20 || u == 0x7f) {
      static const char hex[] = "0123456789abcdef";
      out += "\\x";
      out += hex[u >> 4];
      out += hex[u & 0xf];
    } else {
      out += c;
    }
  }
  return out;
}

std::string join(const std::string& path, const std::string& key) {
  return path.empty() ? printable(key) : path + "." + printable(key);
}

bool is_quoted(const YAML::Node& node) {
  // yaml-cpp tags a quoted scalar "!" and a plain one "?".
  return node.Tag() == "!";
}

std::string quote(const std::string& text) {
  constexpr std::size_t limit = 40;
  if (text.size() <= limit)
    return "'" + printable(text) + "'";
  return "'" + printable(text.substr(0, limit)) + "...'";
}

/// "nothing", "a list", "a mapping", "the string '2'" or "'abc'": how an
/// unexpected value reads in a message.
std::string what_is(const YAML::Node& node) {
  if (!node.IsDefined() || node.IsNull())
    return "nothing";
  if (node.IsSequence())
    return "a list";
  if (node.IsMap())
    return "a mapping";
  if (is_quoted(node))
    return "the string " + quote(node.Scalar());
  return quote(node.Scalar());
}

bool is_yaml_null(const std::string& s) {
  return s.empty() || s == "~" || s == "null" || s == "Null" || s == "NULL";
}

bool is_yaml_non_finite(const std::string& s) {
  static const std::set<std::string> names = {
    ".inf", ".Inf", ".INF", "+.inf", "+.Inf", "+.INF", "-.inf", "-.Inf",
    "-.INF", ".nan", ".NaN", ".NAN", "inf", "nan", "-inf", "+inf",
  };
  return names.count(s) > 0;
}

/// Whole-string decimal parses (no leading blanks, nothing left over).
bool parse_double(const std::string& s, double& out) {
  if (s.empty() || std::isspace(static_cast<unsigned char>(s[0])))
    return false;
  errno = 0;
  char* end = nullptr;
  out = std::strtod(s.c_str(), &end);
  return end == s.c_str() + s.size() && errno != ERANGE;
}

bool parse_int(const std::string& s, long long& out) {
  if (s.empty() || std::isspace(static_cast<unsigned char>(s[0])))
    return false;
  errno = 0;
  char* end = nullptr;
  out = std::strtoll(s.c_str(), &end, 10);
  return end == s.c_str() + s.size() && errno != ERANGE;
}

/// Collects the keys of the mapping `node` (null reads as empty) in file
/// order. Rejects non-scalar, empty and duplicate keys, and, when `allowed`
/// is given, any key not in it (with a hint or a "did you mean").
caf::error entries_of(const reporter& r, const YAML::Node& node,
                      const std::string& path, int line,
                      const std::vector<std::string>* allowed,
                      const std::map<std::string, std::string>* hints,
                      std::vector<entry>& out) {
  out.clear();
  if (!node.IsDefined() || node.IsNull())
    return caf::none;
  if (!node.IsMap())
    return r.fail(line_of(node, line), path,
                  "expected a mapping, got " + what_is(node));
  std::map<std::string, int> seen;
  for (const auto& kv : node) {
    const YAML::Node& key = kv.first;
    int key_line = line_of(key, line);
    if (!key.IsScalar())
      return r.fail(key_line, path,
                    "expected a name as key, got " + what_is(key));
    const std::string& name = key.Scalar();
    if (name.empty())
      return r.fail(key_line, path, "a key must not be empty");
    auto [it, fresh] = seen.emplace(name, key_line);
    if (!fresh)
      return r.fail(key_line, join(path, name),
                    "duplicate key (first at line "
                      + std::to_string(it->second) + ")");
    if (allowed != nullptr
        && std::find(allowed->begin(), allowed->end(), name)
             == allowed->end()) {
      std::string problem = "unknown key";
      const std::string* hint = nullptr;
      if (hints != nullptr)
        if (auto it = hints->find(name); it != hints->end())
          hint = &it->second;
      if (hint != nullptr) {
        problem += " (" + *hint + ")";
      } else if (auto near = suggest_key(name, *allowed); !near.empty()) {
        problem += " (did you mean '" + near + "'?)";
      } else {
        std::string list;
        for (const auto& k : *allowed)
          list += (list.empty() ? "" : ", ") + k;
        problem += " (allowed here: " + list + ")";
      }
      return r.fail(key_line, join(path, name), problem);
    }
    out.push_back(entry{name, key_line, kv.second});
  }
  return caf::none;
}

caf::error get_string(const reporter& r, const YAML::Node& node,
                      const std::string& path, int line, bool non_empty,
                      std::string& out) {
  if (!node.IsDefined() || node.IsNull() || !node.IsScalar()) {
    std::string problem = "expected a string, got " + what_is(node);
    if (node.IsMap())
      problem += " (quote the text if it contains ': ')";
    return r.fail(line, path, problem);
  }
  if (non_empty && node.Scalar().empty())
    return r.fail(line, path, "must not be empty");
  out = node.Scalar();
  return caf::none;
}

caf::error get_string(const reporter& r, const entry& e,
                      const std::string& path, bool non_empty,
                      std::string& out) {
  return get_string(r, e.value, path, value_line(e), non_empty, out);
}

/// A finite number in [min, max]; `min_exclusive` makes the lower bound
/// strict.
caf::error get_number(const reporter& r, const entry& e,
                      const std::string& path, double min, double max,
                      bool min_exclusive, double& out) {
  const auto& v = e.value;
  int line = value_line(e);
  if (!v.IsDefined() || v.IsNull() || !v.IsScalar() || is_quoted(v))
    return r.fail(line, path, "expected a number, got " + what_is(v));
  const auto& text = v.Scalar();
  double x = 0;
  if (is_yaml_non_finite(text) || (parse_double(text, x) && !std::isfinite(x)))
    return r.fail(line, path, "expected a finite number, got " + quote(text));
  if (!parse_double(text, x))
    return r.fail(line, path, "expected a number, got " + quote(text));
  if (min_exclusive ? !(x > min) : !(x >= min)) {
    if (min == 0)
      return r.fail(line, path,
                    std::string{min_exclusive ? "must be greater than 0"
                                              : "must not be negative"}
                      + ", got " + printable(text));
    return r.fail(line, path, "out of range, got " + printable(text));
  }
  if (x > max) {
    std::ostringstream bound;
    bound << max;
    return r.fail(line, path,
                  "must be at most " + bound.str() + ", got " + printable(text));
  }
  out = x;
  return caf::none;
}

/// A non-negative whole number that fits an int32_t.
caf::error get_count(const reporter& r, const entry& e,
                     const std::string& path, int32_t& out) {
  const auto& v = e.value;
  int line = value_line(e);
  if (!v.IsDefined() || v.IsNull() || !v.IsScalar() || is_quoted(v))
    return r.fail(line, path,
                  "expected a non-negative whole number, got " + what_is(v));
  const auto& text = v.Scalar();
  long long n = 0;
  if (!parse_int(text, n)) {
    double x = 0;
    if (parse_double(text, x) && std::isfinite(x))
      return r.fail(line, path, "expected a whole number, got " + printable(text));
    return r.fail(line, path,
                  "expected a non-negative whole number, got " + quote(text));
  }
  if (n < 0)
    return r.fail(line, path, "must not be negative, got " + printable(text));
  if (n > INT32_MAX)
    return r.fail(line, path,
                  "must be at most " + std::to_string(INT32_MAX) + ", got "
                    + printable(text));
  out = static_cast<int32_t>(n);
  return caf::none;
}

caf::error get_string_list(const reporter& r, const entry& e,
                           const std::string& path,
                           std::vector<std::string>& out) {
  out.clear();
  const auto& v = e.value;
  if (!v.IsDefined() || v.IsNull())
    return caf::none;
  if (!v.IsSequence())
    return r.fail(value_line(e), path,
                  "expected a list of strings, got " + what_is(v));
  std::size_t i = 0;
  for (const auto& item : v) {
    std::string s;
    auto item_path = path + "[" + std::to_string(i++) + "]";
    if (auto err = get_string(r, item, item_path, line_of(item, e.line), false,
                              s))
      return err;
    out.push_back(std::move(s));
  }
  return caf::none;
}

caf::error get_string_map(const reporter& r, const entry& e,
                          const std::string& path,
                          std::map<std::string, std::string>& out) {
  out.clear();
  std::vector<entry> items;
  if (auto err = entries_of(r, e.value, path, value_line(e), nullptr, nullptr,
                            items))
    return err;
  for (const auto& item : items) {
    std::string s;
    if (auto err = get_string(r, item, join(path, item.key), false, s))
      return err;
    out.emplace(item.key, std::move(s));
  }
  return caf::none;
}

/// A plain YAML scalar as JSON: null, true/false, an integer, a finite
/// number, else a string. Quoted scalars are always strings.
nlohmann::json scalar_to_json(const YAML::Node& node) {
  const auto& s = node.Scalar();
  if (is_quoted(node))
    return s;
  if (is_yaml_null(s))
    return nullptr;
  if (s == "true" || s == "True" || s == "TRUE")
    return true;
  if (s == "false" || s == "False" || s == "FALSE")
    return false;
  long long n = 0;
  if (parse_int(s, n))
    return n;
  double x = 0;
  if (parse_double(s, x) && std::isfinite(x))
    return x;
  return s;
}

struct json_walk {
  const reporter& r;
  std::size_t values = 0;

  caf::error convert(const YAML::Node& node, const std::string& path,
                     int line, int depth, nlohmann::json& out) {
    if (depth > max_json_depth)
      return r.fail(line, path,
                    "nested deeper than " + std::to_string(max_json_depth)
                      + " levels");
    if (++values > max_json_values)
      return r.fail(line, path,
                    "more than " + std::to_string(max_json_values)
                      + " values (after expanding aliases)");
    if (!node.IsDefined() || node.IsNull()) {
      out = nullptr;
    } else if (node.IsScalar()) {
      out = scalar_to_json(node);
    } else if (node.IsSequence()) {
      out = nlohmann::json::array();
      std::size_t i = 0;
      for (const auto& item : node) {
        nlohmann::json x;
        if (auto err = convert(item, path + "[" + std::to_string(i++) + "]",
                               line_of(item, line), depth + 1, x))
          return err;
        out.push_back(std::move(x));
      }
    } else {
      std::vector<entry> items;
      if (auto err = entries_of(r, node, path, line, nullptr, nullptr, items))
        return err;
      out = nlohmann::json::object();
      for (const auto& item : items) {
        nlohmann::json x;
        if (auto err = convert(item.value, join(path, item.key),
                               value_line(item), depth + 1, x))
          return err;
        out[item.key] = std::move(x);
      }
    }
    return caf::none;
  }
};

/// What the parser remembers beyond the config: where things were, for the
/// checks that relate keys to each other.
struct node_type_lines {
  int line = 1;             // the type's name
  int min_workers_line = 0; // 0: not given
  bool max_workers_given = false;
};

caf::error parse_node_type(const reporter& r, const entry& e,
                           const std::string& path, node_type_config& out,
                           node_type_lines& lines) {
  out.name = e.key;
  lines.line = e.line;
  std::vector<entry> keys;
  if (auto err = entries_of(r, e.value, path, value_line(e), &node_type_keys,
                            nullptr, keys))
    return err;
  for (const auto& k : keys) {
    auto p = join(path, k.key);
    if (k.key == "resources") {
      std::vector<entry> items;
      if (auto err = entries_of(r, k.value, p, value_line(k), nullptr, nullptr,
                                items))
        return err;
      for (const auto& item : items) {
        double x = 0;
        if (auto err = get_number(r, item, join(p, item.key), 0, HUGE_VAL,
                                  false, x))
          return err;
        out.resources.emplace(item.key, x);
      }
    } else if (k.key == "labels") {
      if (auto err = get_string_map(r, k, p, out.labels))
        return err;
    } else if (k.key == "min_workers") {
      if (auto err = get_count(r, k, p, out.min_workers))
        return err;
      lines.min_workers_line = k.line;
    } else if (k.key == "max_workers") {
      if (auto err = get_count(r, k, p, out.max_workers))
        return err;
      lines.max_workers_given = true;
    } else if (k.key == "node_config") {
      if (!k.value.IsDefined() || k.value.IsNull()) {
        out.node_config_json = "{}";
        continue;
      }
      if (!k.value.IsMap())
        return r.fail(value_line(k), p,
                      "expected a mapping, got " + what_is(k.value));
      json_walk walk{r};
      nlohmann::json j;
      if (auto err = walk.convert(k.value, p, value_line(k), 0, j))
        return err;
      out.node_config_json = j.dump();
    }
  }
  return caf::none;
}

caf::error parse_provider(const reporter& r, const entry& e,
                          provider_config& out) {
  const std::string path = "provider";
  std::vector<entry> keys;
  if (auto err = entries_of(r, e.value, path, value_line(e), nullptr, nullptr,
                            keys))
    return err;
  auto type_it = std::find_if(keys.begin(), keys.end(),
                              [](const entry& k) { return k.key == "type"; });
  if (type_it == keys.end())
    return r.fail(value_line(e), path + ".type",
                  "missing (one of: processes, fake, command)");
  std::string type;
  if (auto err = get_string(r, *type_it, path + ".type", true, type))
    return err;
  const std::vector<std::string>* allowed = nullptr;
  if (type == "processes") {
    out.type = provider_kind::processes;
    allowed = &processes_keys;
  } else if (type == "fake") {
    out.type = provider_kind::fake;
    allowed = &fake_keys;
  } else if (type == "command") {
    out.type = provider_kind::command;
    allowed = &command_keys;
  } else {
    std::string problem = "unknown provider type " + quote(type);
    if (type == "fake_multinode")
      problem += " (Ray's fake_multinode is rayd's 'processes')";
    else if (type == "local")
      problem += " (a fixed list of SSH hosts; not available yet)";
    else if (auto near = suggest_key(type, provider_types); !near.empty())
      problem += " (did you mean '" + near + "'?)";
    else
      problem += " (known: processes, fake, command)";
    return r.fail(type_it->line, path + ".type", problem);
  }
  bool command_given = false;
  for (const auto& k : keys) {
    auto p = join(path, k.key);
    if (std::find(allowed->begin(), allowed->end(), k.key) == allowed->end()) {
      std::string problem = "unknown key for provider type '" + type + "'";
      std::string owner;
      for (const auto* other : {&fake_keys, &command_keys})
        if (other != allowed
            && std::find(other->begin(), other->end(), k.key) != other->end())
          owner = other == &fake_keys ? "fake" : "command";
      if (!owner.empty())
        problem += " (it belongs to provider type '" + owner + "')";
      else if (auto near = suggest_key(k.key, *allowed); !near.empty())
        problem += " (did you mean '" + near + "'?)";
      else if (allowed == &processes_keys)
        problem += " (it has no key besides 'type')";
      return r.fail(k.line, p, problem);
    }
    if (k.key == "launch_delay_s") {
      if (auto err = get_number(r, k, p, 0, 1e9, false, out.fake.launch_delay_s))
        return err;
    } else if (k.key == "failure_rate") {
      if (auto err = get_number(r, k, p, 0, 1, false, out.fake.failure_rate))
        return err;
    } else if (k.key == "command") {
      if (auto err = get_string(r, k, p, true, out.command.command))
        return err;
      command_given = true;
    } else if (k.key == "timeout_s") {
      if (auto err = get_number(r, k, p, 0, 1e9, true, out.command.timeout_s))
        return err;
    }
  }
  if (out.type == provider_kind::command && !command_given)
    return r.fail(value_line(e), path + ".command",
                  "missing (the executable the command provider runs)");
  return caf::none;
}

bool valid_cluster_name(const std::string& name) {
  if (name.empty() || name.size() > 64)
    return false;
  return std::all_of(name.begin(), name.end(), [](char c) {
    return std::isalnum(static_cast<unsigned char>(c)) || c == '-' || c == '_'
           || c == '.';
  });
}

caf::expected<cluster_config> parse(const std::string& text,
                                    const std::string& source) {
  reporter r{source};
  YAML::Node root;
  try {
    std::istringstream in{text};
    YAML::Parser parser{in};
    document_counter counter;
    while (counter.documents < 2 && parser.HandleNextDocument(counter)) {
      // Reads one document per call.
    }
    if (counter.documents > 1)
      return r.fail(counter.second_line, "",
                    "a second YAML document starts here (a cluster config is "
                    "one document; a '---' line or a stray ',' ends the "
                    "first)");
    root = YAML::Load(text);
  } catch (const YAML::Exception& ex) {
    int line = ex.mark.line >= 0 ? ex.mark.line + 1 : 1;
    return r.fail(line, "", "YAML syntax error: " + printable(ex.msg));
  }
  if (!root.IsDefined() || root.IsNull())
    return r.fail(1, "",
                  "the config is empty (it needs at least provider, "
                  "available_node_types and head_node_type)");
  std::vector<entry> top;
  if (!root.IsMap())
    return r.fail(line_of(root, 1), "",
                  "expected a mapping of keys (cluster_name, provider, ...), "
                  "got "
                    + what_is(root));
  if (auto err = entries_of(r, root, "", 1, &top_level_keys, &top_level_hints,
                            top))
    return err;
  int root_line = line_of(root, 1);

  cluster_config cfg;
  cfg.source_name = source;
  auto& as = cfg.autoscaling;
  int max_workers_line = 0;
  int idle_minutes_line = 0;
  int idle_seconds_line = 0;
  int head_type_line = 0;
  bool provider_given = false;
  bool node_types_given = false;
  std::map<std::string, node_type_lines> type_lines;

  for (const auto& e : top) {
    const auto& k = e.key;
    if (k == "cluster_name") {
      if (auto err = get_string(r, e, k, true, cfg.cluster_name))
        return err;
      if (!valid_cluster_name(cfg.cluster_name))
        return r.fail(e.line, k,
                      "use 1 to 64 letters, digits, '-', '_' or '.', got "
                        + quote(cfg.cluster_name));
    } else if (k == "max_workers") {
      if (auto err = get_count(r, e, k, as.max_workers))
        return err;
      max_workers_line = e.line;
    } else if (k == "upscaling_speed") {
      if (auto err = get_number(r, e, k, 0, 1e9, false, as.upscaling_speed))
        return err;
    } else if (k == "idle_timeout_minutes" || k == "idle_timeout_seconds") {
      bool minutes = k == "idle_timeout_minutes";
      int other = minutes ? idle_seconds_line : idle_minutes_line;
      if (other != 0)
        return r.fail(e.line, k,
                      "give idle_timeout_minutes or idle_timeout_seconds, not "
                      "both (the other is at line "
                        + std::to_string(other) + ")");
      double x = 0;
      double unit_ms = minutes ? 60000.0 : 1000.0;
      if (auto err = get_number(r, e, k, 0, max_idle_timeout_ms / unit_ms,
                                false, x))
        return err;
      as.idle_timeout = std::chrono::milliseconds{
        static_cast<int64_t>(std::llround(x * unit_ms))};
      (minutes ? idle_minutes_line : idle_seconds_line) = e.line;
    } else if (k == "provider") {
      if (auto err = parse_provider(r, e, cfg.provider))
        return err;
      provider_given = true;
    } else if (k == "auth") {
      std::vector<entry> keys;
      if (auto err = entries_of(r, e.value, k, value_line(e), &auth_keys,
                                nullptr, keys))
        return err;
      for (const auto& a : keys) {
        auto& field = a.key == "ssh_user" ? cfg.auth.ssh_user
                                          : cfg.auth.ssh_private_key;
        if (auto err = get_string(r, a, join(k, a.key), true, field))
          return err;
      }
    } else if (k == "available_node_types") {
      std::vector<entry> types;
      if (auto err = entries_of(r, e.value, k, value_line(e), nullptr, nullptr,
                                types))
        return err;
      if (types.empty())
        return r.fail(e.line, k, "declares no node type (at least the head's)");
      for (const auto& t : types) {
        node_type_config nt;
        node_type_lines lines;
        if (auto err = parse_node_type(r, t, join(k, t.key), nt, lines))
          return err;
        as.node_types.emplace(t.key, std::move(nt));
        type_lines.emplace(t.key, lines);
      }
      node_types_given = true;
    } else if (k == "head_node_type") {
      if (auto err = get_string(r, e, k, true, as.head_node_type))
        return err;
      head_type_line = e.line;
    } else if (k == "file_mounts") {
      if (auto err = get_string_map(r, e, k, cfg.file_mounts))
        return err;
      for (const auto& [remote, local] : cfg.file_mounts)
        if (local.empty())
          return r.fail(e.line, join(k, remote), "the local path is empty");
    } else if (k == "setup_commands") {
      if (auto err = get_string_list(r, e, k, cfg.setup_commands))
        return err;
    } else if (k == "head_start_rayd_commands") {
      if (auto err = get_string_list(r, e, k, cfg.head_start_rayd_commands))
        return err;
    } else if (k == "worker_start_rayd_commands") {
      if (auto err = get_string_list(r, e, k, cfg.worker_start_rayd_commands))
        return err;
    }
  }

  // Required keys, then the checks that relate keys to each other.
  if (!provider_given)
    return r.fail(root_line, "provider",
                  "missing (required; type: processes, fake or command)");
  if (!node_types_given)
    return r.fail(root_line, "available_node_types",
                  "missing (required; declare the head's type and the "
                  "workers')");
  if (head_type_line == 0)
    return r.fail(root_line, "head_node_type",
                  "missing (required; the available_node_types entry the head "
                  "uses)");
  if (as.node_types.count(as.head_node_type) == 0) {
    std::vector<std::string> names;
    std::string list;
    for (const auto& [name, nt] : as.node_types) {
      names.push_back(name);
      list += (list.empty() ? "" : ", ") + name;
    }
    std::string problem = quote(as.head_node_type)
                          + " is not declared in available_node_types";
    if (auto near = suggest_key(as.head_node_type, names); !near.empty())
      problem += " (did you mean '" + near + "'?)";
    else
      problem += " (declared: " + list + ")";
    return r.fail(head_type_line, "head_node_type", problem);
  }
  int64_t sum_min = 0;
  for (auto& [name, nt] : as.node_types) {
    const auto& lines = type_lines[name];
    if (!lines.max_workers_given)
      nt.max_workers = as.max_workers; // Ray's default: the cluster's limit
    if (nt.min_workers > nt.max_workers)
      return r.fail(lines.min_workers_line,
                    "available_node_types." + name + ".min_workers",
                    std::to_string(nt.min_workers) + " exceeds max_workers ("
                      + std::to_string(nt.max_workers)
                      + (lines.max_workers_given ? "" : ", the cluster's")
                      + ")");
    sum_min += nt.min_workers;
  }
  if (sum_min > as.max_workers)
    return r.fail(max_workers_line != 0 ? max_workers_line : root_line,
                  "max_workers",
                  std::to_string(as.max_workers)
                    + (max_workers_line != 0 ? "" : " (the default)")
                    + " is less than the sum of the node types' min_workers ("
                    + std::to_string(sum_min) + ")");
  return cfg;
}

} // namespace

std::string suggest_key(const std::string& key,
                        const std::vector<std::string>& allowed) {
  auto lower = [](std::string s) {
    for (auto& c : s)
      c = static_cast<char>(std::tolower(static_cast<unsigned char>(c)));
    return s;
  };
  auto a = lower(key);
  std::string best;
  std::size_t best_distance = SIZE_MAX;
  for (const auto& candidate : allowed) {
    auto b = lower(candidate);
    // Levenshtein distance, one row at a time.
    std::vector<std::size_t> row(b.size() + 1);
    for (std::size_t j = 0; j <= b.size(); ++j)
      row[j] = j;
    for (std::size_t i = 1; i <= a.size(); ++i) {
      std::size_t diagonal = row[0];
      row[0] = i;
      for (std::size_t j = 1; j <= b.size(); ++j) {
        std::size_t up = row[j];
        row[j] = std::min({row[j] + 1, row[j - 1] + 1,
                           diagonal + (a[i - 1] == b[j - 1] ? 0 : 1)});
        diagonal = up;
      }
    }
    if (row[b.size()] < best_distance) {
      best_distance = row[b.size()];
      best = candidate;
    }
  }
  // A typo changes a few characters; beyond a third of the word it is
  // another word, and a guess would mislead.
  std::size_t limit = std::max<std::size_t>(2, std::max(a.size(), best.size()) / 3);
  return best_distance <= limit && best_distance < a.size() ? best : "";
}

caf::expected<cluster_config> parse_cluster_config(const std::string& yaml_text,
                                                   const std::string& source_name) {
  // yaml-cpp reports some failures (bad conversions, its recursion guard) by
  // exceptions; they end here as errors, like every other bad input.
  try {
    return parse(yaml_text, source_name);
  } catch (const YAML::Exception& ex) {
    int line = ex.mark.line >= 0 ? ex.mark.line + 1 : 1;
    return make_error(errc::invalid_argument,
                      source_name + ":" + std::to_string(line)
                        + ": YAML error: " + printable(ex.msg));
  } catch (const std::exception& ex) {
    return make_error(errc::invalid_argument,
                      source_name + ":1: cannot read the config: "
                        + ex.what());
  }
}

caf::expected<cluster_config> load_cluster_config(const std::string& path) {
  // A config is a few kilobytes; the cap keeps a wrong path (a device, a huge
  // log) from being read into memory.
  constexpr std::size_t max_bytes = 16u << 20;
  std::ifstream in{path, std::ios::binary};
  if (!in)
    return make_error(errc::not_found, path + ": cannot read the cluster config: "
                                         + std::strerror(errno));
  std::string text(max_bytes + 1, '\0');
  in.read(text.data(), static_cast<std::streamsize>(text.size()));
  if (in.bad())
    return make_error(errc::not_found, path + ": cannot read the cluster config");
  text.resize(static_cast<std::size_t>(in.gcount()));
  if (text.size() > max_bytes)
    return make_error(errc::invalid_argument,
                      path + ": larger than 16 MiB; not a cluster config");
  return parse_cluster_config(text, path);
}

} // namespace rayd::autoscale
