// The job agent (every node): starts one supervisor per job the head hands
// this node, passes stops and head changes on, and prepares working_dir
// packages. A package is fetched from the GCS in chunks through the gate,
// checked against its SHA-256 name, unpacked once per node into
// <session>/runtime/packages/<sha256>/ (concurrent jobs wanting the same
// package wait for the one fetch), and reused by later jobs.

#include <sys/stat.h>

#include <filesystem>
#include <map>

#include <caf/all.hpp>
#include <spdlog/spdlog.h>

#include "actors/gcs/blob_table.hpp"
#include "actors/job/job_supervisor.hpp"
#include "actors/job/spawn.hpp"
#include "common/archive.hpp"
#include "common/error.hpp"

namespace rayd::job {

namespace {

namespace fs = std::filesystem;
using namespace std::chrono_literals;

constexpr uint64_t fetch_chunk_bytes = 4u << 20;
constexpr uint64_t max_package_bytes = uint64_t{100} << 20;

struct agent_state_t {
  job_agent_config cfg;
  gcs_gate_actor gate;
  std::string api_address;
  std::map<std::string, job_supervisor_actor> supervisors;
  std::map<caf::actor_addr, std::string> by_addr;
  /// Packages being fetched, with everyone waiting for them.
  std::map<std::string, std::vector<caf::typed_response_promise<std::string>>>
    fetching;
  static inline const char* name = "rayd.job.agent";
};

using agent_actor_t = job_agent_actor::stateful_pointer<agent_state_t>;

std::string package_dir(agent_actor_t self, const std::string& hash) {
  return self->state.cfg.session_dir + "/runtime/packages/" + hash;
}

void package_done(agent_actor_t self, const std::string& hash,
                  caf::expected<std::string> result) {
  auto waiting = std::move(self->state.fetching[hash]);
  self->state.fetching.erase(hash);
  for (auto& rp : waiting) {
    if (result)
      rp.deliver(*result);
    else
      rp.deliver(result.error());
  }
}

/// Verifies and unpacks on a thread of its own (it may take a while), then
/// moves the tree into place atomically.
void unpack(agent_actor_t self, const std::string& hash,
            std::shared_ptr<std::string> bytes) {
  auto dest = package_dir(self, hash);
  auto worker = self->spawn<caf::detached>([](caf::event_based_actor* w) -> caf::behavior {
    return {[w](const std::string& hash, const std::string& dest,
                const std::string& bytes) -> caf::result<std::string> {
      w->quit();
      if (sha256_hex(bytes) != hash)
        return make_error(errc::invalid_argument,
                          "package " + gcs::package_uri(hash)
                            + " arrived corrupted (its SHA-256 differs)");
      std::error_code ec;
      fs::create_directories(fs::path{dest}.parent_path(), ec);
      auto tmp = dest + ".tmp." + random_hex(6);
      if (auto err = unpack_archive(bytes, tmp))
        return make_error(errc::invalid_argument,
                          describe(err) + " (" + gcs::package_uri(hash) + ")");
      fs::rename(tmp, dest, ec);
      if (ec) {
        fs::remove_all(tmp, ec);
        if (!fs::is_directory(dest))
          return make_error(errc::storage_error,
                            "cannot move the unpacked package to " + dest);
      }
      return dest;
    }};
  });
  self->request(worker, caf::infinite, hash, dest, std::move(*bytes))
    .then([self, hash](std::string& dir) { package_done(self, hash, dir); },
          [self, hash](caf::error& err) { package_done(self, hash, err); });
}

void fetch(agent_actor_t self, const std::string& hash,
           std::shared_ptr<std::string> bytes) {
  auto& st = self->state;
  if (!st.gate) {
    package_done(self, hash,
                 make_error(errc::unavailable, "the head is not reachable"));
    return;
  }
  self->request(st.gate, 60s, atoms::blob_read::value, st.cfg.token, hash,
                static_cast<uint64_t>(bytes->size()), fetch_chunk_bytes)
    .then(
      [self, hash, bytes](std::string& chunk) {
        if (chunk.empty()) {
          unpack(self, hash, bytes);
          return;
        }
        bytes->append(chunk);
        if (bytes->size() > max_package_bytes) {
          package_done(self, hash,
                       make_error(errc::invalid_argument,
                                  "package " + gcs::package_uri(hash)
                                    + " is larger than 100 MiB"));
          return;
        }
        fetch(self, hash, bytes);
      },
      [self, hash](caf::error& err) {
        if (code_of(err) == errc::not_found)
          err = make_error(errc::not_found,
                           "working_dir package " + gcs::package_uri(hash)
                             + " is not in the GCS (was it uploaded?)");
        package_done(self, hash, err);
      });
}

caf::result<std::string> prepare(agent_actor_t self, const std::string& uri) {
  if (uri.rfind("file://", 0) == 0) {
    auto dir = uri.substr(7);
    std::error_code ec;
    if (!fs::is_directory(dir, ec))
      return make_error(errc::not_found,
                        "working_dir " + dir + " does not exist on node "
                          + self->state.cfg.node_name);
    return dir;
  }
  auto hash = gcs::package_hash(uri);
  if (!hash)
    return make_error(errc::invalid_argument, "unsupported working_dir " + uri);
  auto dir = package_dir(self, *hash);
  std::error_code ec;
  if (fs::is_directory(dir, ec))
    return dir;
  auto rp = self->make_response_promise<std::string>();
  auto& waiting = self->state.fetching[*hash];
  waiting.push_back(rp);
  if (waiting.size() == 1) {
    spdlog::info("fetching working_dir package {}", uri);
    fetch(self, *hash, std::make_shared<std::string>());
  }
  return rp;
}

} // namespace

job_agent_actor spawn_job_agent(caf::actor_system& sys, job_agent_config cfg) {
  return sys.spawn([cfg](agent_actor_t self) -> job_agent_actor::behavior_type {
    self->state.cfg = cfg;
    self->set_down_handler([self](caf::down_msg& dm) {
      auto& st = self->state;
      auto i = st.by_addr.find(dm.source);
      if (i == st.by_addr.end())
        return;
      st.supervisors.erase(i->second);
      st.by_addr.erase(i);
    });
    return {
      [self](atoms::job_start, job_launch& job) {
        auto& st = self->state;
        if (st.supervisors.count(job.submission_id))
          return true; // the head asked again: already on it
        supervisor_config sc;
        sc.node_id = st.cfg.node_id;
        sc.token = st.cfg.token;
        sc.session_dir = st.cfg.session_dir;
        sc.shim_path = st.cfg.shim_path;
        sc.watcher = st.cfg.watcher;
        sc.agent = self;
        sc.gate = st.gate;
        sc.api_address = st.api_address;
        auto id = job.submission_id;
        spdlog::info("starting job {}: {}", id, job.entrypoint);
        auto sup = spawn_supervisor(self->system(), std::move(sc), std::move(job));
        self->monitor(sup);
        st.by_addr[sup.address()] = id;
        st.supervisors[id] = sup;
        return true;
      },
      [self](atoms::job_stop, std::string& id, int64_t grace_ms) {
        auto& st = self->state;
        auto i = st.supervisors.find(id);
        if (i == st.supervisors.end())
          return false;
        self->send(i->second, atoms::job_stop::value, grace_ms);
        return true;
      },
      [self](atoms::head_changed, gcs_gate_actor& gate, std::string& api) {
        auto& st = self->state;
        st.gate = gate;
        st.api_address = api;
        for (auto& [_, sup] : st.supervisors)
          self->send(sup, atoms::head_changed::value, gate, api);
      },
      [self](atoms::prepare, std::string& uri) { return prepare(self, uri); },
    };
  });
}

} // namespace rayd::job
