#include "autoscale/processes_provider.hpp"

#include <cerrno>
#include <csignal>
#include <cstdio>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <set>
#include <sstream>
#include <thread>

#include <fcntl.h>
#include <sys/file.h>
#include <sys/stat.h>
#include <unistd.h>

#include <nlohmann/json.hpp>

#include "autoscale/detached_process.hpp"
#include "common/error.hpp"
#include "common/session.hpp"
#include "common/util.hpp"

namespace rayd::autoscale {

namespace {

using json = nlohmann::json;
using clock_type = std::chrono::steady_clock;

// One instance as the state file records it.
struct record {
  std::string id;
  pid_t pid = -1;
  uint64_t start_ticks = 0;
  std::string node_type;
  std::map<std::string, std::string> tags;
  std::string session_dir;
  bool terminating = false;
};

std::string errno_text(const std::string& what) {
  return what + ": " + std::strerror(errno);
}

// --- /proc -----------------------------------------------------------------

// Field 22 of /proc/<pid>/stat (start time in clock ticks since boot); 0 if
// there is no such process or it is a zombie.
uint64_t start_ticks_of(pid_t pid) {
  std::ifstream in{"/proc/" + std::to_string(pid) + "/stat"};
  std::string line;
  if (pid <= 0 || !std::getline(in, line))
    return 0;
  auto close = line.rfind(')');
  if (close == std::string::npos)
    return 0;
  std::istringstream rest{line.substr(close + 1)};
  std::string field;
  // After "pid (comm)": state is field 3, starttime field 22.
  for (int i = 3; i <= 22; ++i) {
    if (!(rest >> field))
      return 0;
    if (i == 3 && (field == "Z" || field == "X"))
      return 0;
  }
  try {
    return std::stoull(field);
  } catch (...) {
    return 0;
  }
}

std::vector<std::string> cmdline_of(pid_t pid) {
  std::ifstream in{"/proc/" + std::to_string(pid) + "/cmdline", std::ios::binary};
  std::vector<std::string> args;
  std::string arg;
  while (std::getline(in, arg, '\0'))
    args.push_back(arg);
  return args;
}

// Whether the record's process still runs: same pid, same start time, and a
// command line naming its session dir (so a recycled pid never matches).
bool still_running(const record& r) {
  if (r.pid <= 0 || r.start_ticks == 0)
    return false;
  if (start_ticks_of(r.pid) != r.start_ticks)
    return false;
  for (auto& a : cmdline_of(r.pid))
    if (a == r.session_dir || a == "--session-dir=" + r.session_dir)
      return true;
  return false;
}

/// Finds the node process of records written before their spawn (pid 0): a
/// provider that crashed between the fork and recording the pid left a node
/// running that only its command line (its session dir) names. Returns
/// whether a record changed.
bool adopt_unrecorded(std::vector<record>& records) {
  bool any = false;
  for (auto& r : records)
    any = any || r.pid <= 0;
  if (!any)
    return false;
  bool changed = false;
  std::error_code ec;
  for (auto& entry : std::filesystem::directory_iterator{"/proc", ec}) {
    auto name = entry.path().filename().string();
    if (name.empty() || name.find_first_not_of("0123456789") != std::string::npos)
      continue;
    auto pid = static_cast<pid_t>(std::stol(name));
    auto args = cmdline_of(pid);
    for (auto& r : records) {
      if (r.pid > 0)
        continue;
      bool names_it = false;
      for (std::size_t i = 0; i + 1 < args.size(); ++i)
        names_it = names_it || (args[i] == "--session-dir" && args[i + 1] == r.session_dir);
      for (auto& a : args)
        names_it = names_it || a == "--session-dir=" + r.session_dir;
      if (names_it) {
        r.pid = pid;
        r.start_ticks = start_ticks_of(pid);
        changed = true;
      }
    }
  }
  return changed;
}

// --- state file -------------------------------------------------------------

// An exclusive flock on the cluster's lock file, held while a call reads and
// rewrites the state.
class state_lock {
 public:
  explicit state_lock(const std::string& path) {
    fd_ = ::open(path.c_str(), O_RDWR | O_CREAT | O_CLOEXEC, 0600);
    if (fd_ >= 0)
      while (::flock(fd_, LOCK_EX) != 0 && errno == EINTR) {
      }
  }
  ~state_lock() {
    if (fd_ >= 0)
      ::close(fd_); // releases the lock
  }
  state_lock(const state_lock&) = delete;
  state_lock& operator=(const state_lock&) = delete;
  bool ok() const { return fd_ >= 0; }

 private:
  int fd_ = -1;
};

caf::expected<std::vector<record>> load_state(const std::string& path) {
  std::ifstream in{path};
  if (!in)
    return std::vector<record>{}; // nothing launched yet
  std::stringstream buf;
  buf << in.rdbuf();
  auto j = json::parse(buf.str(), nullptr, false);
  if (j.is_discarded() || !j.is_object() || !j.contains("instances")
      || !j["instances"].is_array())
    return make_error(errc::storage_error, "processes provider: " + path
                                             + " is not a valid state file");
  std::vector<record> out;
  try {
    for (auto& i : j["instances"]) {
      record r;
      r.id = i.at("instance_id").get<std::string>();
      r.pid = i.at("pid").get<pid_t>();
      r.start_ticks = i.at("start_ticks").get<uint64_t>();
      r.node_type = i.at("node_type").get<std::string>();
      r.tags = i.at("tags").get<std::map<std::string, std::string>>();
      r.session_dir = i.at("session_dir").get<std::string>();
      r.terminating = i.value("terminating", false);
      out.push_back(std::move(r));
    }
  } catch (const std::exception& e) {
    return make_error(errc::storage_error, "processes provider: " + path
                                             + " has a bad instance entry: " + e.what());
  }
  return out;
}

caf::error save_state(const std::string& path, const std::vector<record>& records) {
  json arr = json::array();
  for (auto& r : records)
    arr.push_back({{"instance_id", r.id},
                   {"pid", r.pid},
                   {"start_ticks", r.start_ticks},
                   {"node_type", r.node_type},
                   {"tags", r.tags},
                   {"session_dir", r.session_dir},
                   {"terminating", r.terminating}});
  json doc = {{"version", 1}, {"instances", arr}};
  auto tmp = path + ".tmp";
  {
    std::ofstream out{tmp, std::ios::trunc};
    out << doc.dump(1) << '\n';
    out.flush();
    if (!out)
      return make_error(errc::storage_error, "processes provider: cannot write " + tmp);
  }
  if (::rename(tmp.c_str(), path.c_str()) != 0)
    return make_error(errc::storage_error, errno_text("processes provider: rename " + tmp));
  return caf::none;
}

/// The state as every call reads it (under the lock): loaded, with a record
/// written before its spawn completed from the node that runs (adopted, and
/// saved back).
caf::expected<std::vector<record>> read_state(const std::string& path) {
  auto records = load_state(path);
  if (!records)
    return records;
  if (adopt_unrecorded(*records))
    if (auto err = save_state(path, *records))
      return err;
  return records;
}

std::string number_text(double x) {
  return json(x).dump();
}

bool valid_cluster_name(const std::string& name) {
  if (name.empty() || name == "." || name == "..")
    return false;
  for (char c : name)
    if (!(std::isalnum(static_cast<unsigned char>(c)) || c == '-' || c == '_' || c == '.'))
      return false;
  return true;
}

} // namespace

processes_provider::processes_provider(processes_provider_options options)
  : options_(std::move(options)) {
  if (options_.base_dir.empty())
    options_.base_dir = rayd_tmpdir() + "/autoscaler";
  if (options_.rayd_binary.empty())
    options_.rayd_binary = binary_next_to_self("rayd");
}

std::string processes_provider::cluster_dir() const {
  return options_.base_dir + "/" + options_.cluster_name;
}

std::string processes_provider::session_dir(const std::string& id) const {
  return cluster_dir() + "/" + id;
}

caf::expected<std::vector<std::string>> processes_provider::create(const instance_spec& spec,
                                                                   int32_t count) {
  if (auto err = check_create_args(spec, count))
    return err;
  if (!valid_cluster_name(options_.cluster_name))
    return make_error(errc::invalid_argument,
                      "processes provider: the cluster name '" + options_.cluster_name
                        + "' must be non-empty letters, digits, '-', '_' or '.'");
  if (options_.head_address.empty() || options_.token_file.empty())
    return make_error(errc::invalid_argument,
                      "processes provider: the head address and the token file are required");
  if (::access(options_.rayd_binary.c_str(), X_OK) != 0)
    return make_error(errc::invalid_argument, "processes provider: " + options_.rayd_binary
                                                + " is not an executable rayd binary");
  // The node's resources as rayd flags: the built-in ones have their own flag
  // (and default to what the host has, so absent CPU/GPU mean 0 here: the
  // node offers what the policy planned with, nothing more).
  std::vector<std::string> resource_args;
  json custom = json::object();
  double cpus = 0;
  double gpus = 0;
  for (auto& [name, amount] : spec.resources) {
    if (!(amount >= 0))
      return make_error(errc::invalid_argument, "processes provider: resource '" + name
                                                  + "' of type '" + spec.node_type
                                                  + "' is negative");
    if (name == "CPU")
      cpus = amount;
    else if (name == "GPU")
      gpus = amount;
    else if (name == "memory")
      resource_args.insert(resource_args.end(), {"--memory", number_text(amount)});
    else
      custom[name] = amount;
  }
  resource_args.insert(resource_args.end(), {"--num-cpus", number_text(cpus), "--num-gpus",
                                             number_text(gpus), "--resources", custom.dump(),
                                             "--labels", json(spec.labels).dump()});
  if (auto err = ensure_dir(options_.base_dir))
    return err;
  if (auto err = ensure_dir(cluster_dir()))
    return err;
  state_lock lock{cluster_dir() + "/instances.lock"};
  if (!lock.ok())
    return make_error(errc::storage_error, errno_text("processes provider: lock "
                                                      + cluster_dir() + "/instances.lock"));
  auto state_path = cluster_dir() + "/instances.json";
  auto records = read_state(state_path);
  if (!records)
    return records.error();
  const auto& request = spec.tags.at(tag_launch_request);
  std::vector<std::string> ids;
  for (auto& r : *records) {
    if (static_cast<int32_t>(ids.size()) == count)
      break;
    auto t = r.tags.find(tag_launch_request);
    if (t != r.tags.end() && t->second == request && !r.terminating && still_running(r))
      ids.push_back(r.id);
  }
  while (static_cast<int32_t>(ids.size()) < count) {
    record r;
    r.id = "p-" + random_hex(6);
    r.node_type = spec.node_type;
    r.tags = instance_tags(spec, options_.cluster_name);
    r.session_dir = session_dir(r.id);
    if (::mkdir(r.session_dir.c_str(), 0700) != 0) {
      if (errno == EEXIST)
        continue; // an id taken before: draw another
      return make_error(errc::storage_error,
                        errno_text("processes provider: mkdir " + r.session_dir));
    }
    std::vector<std::string> argv{options_.rayd_binary,
                                  "--address=" + options_.head_address,
                                  "--block",
                                  "--session-dir",
                                  r.session_dir,
                                  "--token-file",
                                  options_.token_file};
    argv.insert(argv.end(), resource_args.begin(), resource_args.end());
    argv.insert(argv.end(), options_.extra_args.begin(), options_.extra_args.end());
    // Recorded before the spawn (pid 0): if this process dies before the pid
    // is written, the next provider object finds the node by its session dir
    // (adopt_unrecorded) instead of launching a second one for the request.
    records->push_back(r);
    if (auto err = save_state(state_path, *records))
      return err;
    records->pop_back();
    auto pid = spawn_detached(argv, r.session_dir, "processes provider");
    if (!pid) {
      (void) save_state(state_path, *records);
      return pid.error();
    }
    r.pid = *pid;
    r.start_ticks = start_ticks_of(*pid);
    // exec() has replaced the image when spawn returns, but the kernel sets
    // up the new command line a moment later; until then list() would call
    // the node terminated. Wait for it (a node that exits at once stops the
    // wait early and is listed as terminated, with its rayd.err).
    auto deadline = clock_type::now() + std::chrono::seconds{2};
    while (!still_running(r) && start_ticks_of(r.pid) == r.start_ticks
           && clock_type::now() < deadline)
      std::this_thread::sleep_for(std::chrono::milliseconds{1});
    // The pid recorded at once: a crash later in this call still leaves the
    // node findable (and terminable) by the next provider object.
    records->push_back(r);
    if (auto err = save_state(state_path, *records))
      return err;
    ids.push_back(r.id);
  }
  return ids;
}

caf::expected<std::vector<provider_instance>> processes_provider::list() {
  std::vector<provider_instance> out;
  state_lock lock{cluster_dir() + "/instances.lock"};
  auto state_path = cluster_dir() + "/instances.json";
  if (!lock.ok()) {
    if (::access(cluster_dir().c_str(), F_OK) != 0)
      return out; // nothing was ever launched for this cluster
    return make_error(errc::storage_error, errno_text("processes provider: lock "
                                                      + cluster_dir() + "/instances.lock"));
  }
  auto records = read_state(state_path);
  if (!records)
    return records.error();
  for (auto& r : *records) {
    auto c = r.tags.find(tag_cluster);
    if (c == r.tags.end() || c->second != options_.cluster_name)
      continue;
    provider_instance inst;
    inst.instance_id = r.id;
    inst.node_type = r.node_type;
    inst.tags = r.tags;
    if (still_running(r)) {
      inst.state = r.terminating ? provider_instance::terminating : provider_instance::running;
    } else {
      inst.state = provider_instance::terminated;
      if (!r.terminating)
        inst.error = r.pid <= 0 ? "its rayd process never started (the provider stopped "
                                  "during the launch)"
                                : "the rayd process (pid " + std::to_string(r.pid)
                                    + ") exited; see " + r.session_dir + "/rayd.err";
    }
    out.push_back(std::move(inst));
  }
  return out;
}

std::optional<pid_t> processes_provider::pid_of(const std::string& id) {
  state_lock lock{cluster_dir() + "/instances.lock"};
  if (!lock.ok())
    return std::nullopt;
  auto records = read_state(cluster_dir() + "/instances.json");
  if (!records)
    return std::nullopt;
  for (auto& r : *records)
    if (r.id == id && still_running(r))
      return r.pid;
  return std::nullopt;
}

caf::error processes_provider::terminate(const std::vector<std::string>& instance_ids) {
  if (instance_ids.empty())
    return caf::none;
  state_lock lock{cluster_dir() + "/instances.lock"};
  if (!lock.ok())
    return ::access(cluster_dir().c_str(), F_OK) != 0
             ? caf::error{} // nothing was ever launched: all already gone
             : make_error(errc::storage_error, errno_text("processes provider: lock "
                                                          + cluster_dir() + "/instances.lock"));
  auto state_path = cluster_dir() + "/instances.json";
  auto records = read_state(state_path);
  if (!records)
    return records.error();
  std::set<std::string> wanted(instance_ids.begin(), instance_ids.end());
  std::vector<record*> targets;
  for (auto& r : *records)
    if (wanted.count(r.id) > 0)
      targets.push_back(&r);
  // Marked first, so a crash during the grace period leaves them reported
  // as terminating, not running.
  for (auto* r : targets)
    r->terminating = true;
  if (auto err = save_state(state_path, *records))
    return err;
  auto signal_live = [&targets](int sig) {
    for (auto* r : targets)
      if (still_running(*r)) // re-checked right before: never a recycled pid
        ::kill(r->pid, sig);
  };
  auto all_gone = [&targets] {
    for (auto* r : targets)
      if (still_running(*r))
        return false;
    return true;
  };
  auto wait_gone = [&all_gone](std::chrono::milliseconds limit) {
    auto deadline = clock_type::now() + limit;
    while (!all_gone()) {
      if (clock_type::now() >= deadline)
        return false;
      std::this_thread::sleep_for(std::chrono::milliseconds{20});
    }
    return true;
  };
  signal_live(SIGTERM);
  if (!wait_gone(options_.terminate_grace)) {
    signal_live(SIGKILL);
    wait_gone(std::chrono::milliseconds{5000});
  }
  std::string stuck;
  std::vector<record> kept;
  for (auto& r : *records) {
    if (wanted.count(r.id) == 0) {
      kept.push_back(r);
    } else if (still_running(r)) {
      stuck += (stuck.empty() ? "" : ", ") + r.id + " (pid " + std::to_string(r.pid) + ")";
      kept.push_back(r);
    }
  }
  if (auto err = save_state(state_path, kept))
    return err;
  if (!stuck.empty())
    return make_error(errc::timeout, "processes provider: still running after SIGKILL: " + stuck);
  return caf::none;
}

} // namespace rayd::autoscale
