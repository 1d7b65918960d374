// The job agent (every node): starts one supervisor per job the head hands
// this node, passes stops and head changes on, and makes blobs of the GCS
// local: working_dir packages and the code of task workers
// ("code://<sha256>/<name>", an executable file). A package is fetched from the GCS in chunks through the gate,
// checked against its SHA-256 name, unpacked once per node into
// <session>/runtime/packages/<sha256>/ (concurrent jobs wanting the same
// package wait for the one fetch), and reused by later jobs.

#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>

#include <filesystem>
#include <map>
#include <optional>

#include <caf/all.hpp>
#include <spdlog/spdlog.h>

#include "actors/node/job_supervisor.hpp"
#include "actors/gcs/gate_actor.hpp"
#include "actors/node/job_agent.hpp"
#include "actors/node/job_agent_actor.hpp"
#include "actors/node/job_supervisor_actor.hpp"
#include "common/archive.hpp"
#include "common/error.hpp"
#include "common/package_uri.hpp"

namespace rayd::node {

namespace {

namespace fs = std::filesystem;
using namespace std::chrono_literals;

constexpr uint64_t fetch_chunk_bytes = 4u << 20;
/// Larger than the working_dir limit: code (a driver's executable) may be big.
constexpr uint64_t max_blob_bytes = uint64_t{1} << 30;

struct agent_state_t {
  job_agent_config cfg;
  gcs_gate_actor gate;
  std::string api_address;
  std::map<std::string, job_supervisor_actor> supervisors;
  std::map<caf::actor_addr, std::string> by_addr;
  /// Blobs being fetched (by destination), with everyone waiting for them.
  std::map<std::string, std::vector<caf::typed_response_promise<std::string>>>
    fetching;
  static inline const char* name = "rayd.job.agent";
};

using agent_actor_t = job_agent_actor::stateful_pointer<agent_state_t>;

/// What a fetched blob becomes on this node: an unpacked working_dir
/// package (a directory) or a code file (an executable file).
struct blob_target {
  std::string hash;
  std::string uri;  // as the caller named it
  std::string dest; // the directory or file it ends up as
  bool code = false;
};

void target_done(agent_actor_t self, const std::string& dest,
                 caf::expected<std::string> result) {
  auto waiting = std::move(self->state.fetching[dest]);
  self->state.fetching.erase(dest);
  for (auto& rp : waiting) {
    if (result)
      rp.deliver(*result);
    else
      rp.deliver(result.error());
  }
}

/// Verifies the bytes and moves them into place atomically, on a thread of
/// its own (unpacking may take a while): a package is unpacked, a code file
/// written with mode 0755.
caf::expected<std::string> materialize(const blob_target& t, const std::string& bytes) {
  if (sha256_hex(bytes) != t.hash)
    return make_error(errc::invalid_argument,
                      t.uri + " arrived corrupted (its SHA-256 differs)");
  std::error_code ec;
  fs::create_directories(fs::path{t.dest}.parent_path(), ec);
  auto tmp = t.dest + ".tmp." + random_hex(6);
  if (t.code) {
    int fd = ::open(tmp.c_str(), O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, 0755);
    bool ok = fd >= 0
              && ::write(fd, bytes.data(), bytes.size())
                   == static_cast<ssize_t>(bytes.size());
    if (fd >= 0)
      ::close(fd);
    if (!ok) {
      fs::remove(tmp, ec);
      return make_error(errc::storage_error, "cannot write " + tmp);
    }
  } else if (auto err = unpack_archive(bytes, tmp)) {
    return make_error(errc::invalid_argument, describe(err) + " (" + t.uri + ")");
  }
  fs::rename(tmp, t.dest, ec);
  if (ec) {
    fs::remove_all(tmp, ec);
    if (!fs::exists(t.dest))
      return make_error(errc::storage_error, "cannot move " + t.uri + " to " + t.dest);
  }
  return t.dest;
}

void finish_fetch(agent_actor_t self, blob_target t, std::shared_ptr<std::string> bytes) {
  auto worker = self->spawn<caf::detached>([](caf::event_based_actor* w) -> caf::behavior {
    return {[w](const std::string& hash, const std::string& uri, const std::string& dest,
                bool code, const std::string& bytes) -> caf::result<std::string> {
      w->quit();
      auto r = materialize(blob_target{hash, uri, dest, code}, bytes);
      if (!r)
        return r.error();
      return *r;
    }};
  });
  auto dest = t.dest;
  self->request(worker, caf::infinite, t.hash, t.uri, t.dest, t.code, std::move(*bytes))
    .then([self, dest](std::string& out) { target_done(self, dest, out); },
          [self, dest](caf::error& err) { target_done(self, dest, err); });
}

void fetch(agent_actor_t self, blob_target t, std::shared_ptr<std::string> bytes) {
  auto& st = self->state;
  if (!st.gate) {
    target_done(self, t.dest, make_error(errc::unavailable, "the head is not reachable"));
    return;
  }
  self->request(st.gate, 60s, atoms::blob_read::value, st.cfg.token, t.hash,
                static_cast<uint64_t>(bytes->size()), fetch_chunk_bytes)
    .then(
      [self, t, bytes](std::string& chunk) {
        if (chunk.empty()) {
          finish_fetch(self, t, bytes);
          return;
        }
        bytes->append(chunk);
        if (bytes->size() > max_blob_bytes) {
          target_done(self, t.dest,
                      make_error(errc::invalid_argument,
                                 t.uri + " is larger than the blob limit"));
          return;
        }
        fetch(self, t, bytes);
      },
      [self, t](caf::error& err) {
        if (code_of(err) == errc::not_found)
          err = make_error(errc::not_found, (t.code ? "code " : "working_dir package ")
                                              + t.uri
                                              + " is not in the GCS (was it uploaded?)");
        target_done(self, t.dest, err);
      });
}

/// "code://<sha256>/<file name>" → its target; nullopt for anything else.
std::optional<blob_target> code_target(agent_actor_t self, const std::string& uri) {
  const std::string scheme = "code://";
  if (uri.rfind(scheme, 0) != 0 || uri.size() < scheme.size() + 66)
    return std::nullopt;
  auto hash = uri.substr(scheme.size(), 64);
  auto name = uri.substr(scheme.size() + 65);
  if (uri[scheme.size() + 64] != '/' || name.empty() || name.find('/') != std::string::npos
      || name == "." || name == ".." || !package_hash("gcs://" + hash + ".tar.gz"))
    return std::nullopt;
  return blob_target{hash, uri,
                     self->state.cfg.session_dir + "/runtime/code/" + hash + "/" + name,
                     true};
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
  std::optional<blob_target> t;
  if (auto hash = package_hash(uri))
    t = blob_target{*hash, uri,
                    self->state.cfg.session_dir + "/runtime/packages/" + *hash, false};
  else
    t = code_target(self, uri);
  if (!t)
    return make_error(errc::invalid_argument, "unsupported URI " + uri);
  std::error_code ec;
  if (fs::exists(t->dest, ec))
    return t->dest;
  auto rp = self->make_response_promise<std::string>();
  auto& waiting = self->state.fetching[t->dest];
  waiting.push_back(rp);
  if (waiting.size() == 1) {
    spdlog::info("fetching {}", uri);
    fetch(self, *t, std::make_shared<std::string>());
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

} // namespace rayd::node
