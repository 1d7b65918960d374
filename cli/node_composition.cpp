// Every node's composition: the job agent, the object store, the task server
// on the node port and the node manager; returns once the node joined (see
// composition.hpp for the order and the error contract).

#include <unistd.h>

#include <chrono>
#include <filesystem>

#include <caf/all.hpp>
#include <spdlog/spdlog.h>

#include "actors/node/actor_bridge.hpp"
#include "actors/node/job_agent.hpp"
#include "actors/node/object_store.hpp"
#include "actors/node/process_watcher.hpp"
#include "actors/node/task_server.hpp"
#include "cli/composition.hpp"
#include "common/error.hpp"
#include "common/net.hpp"

namespace fs = std::filesystem;

namespace rayd::cli {

namespace {

caf::timespan seconds(double s) {
  return std::chrono::duration_cast<caf::timespan>(std::chrono::duration<double>{s});
}

caf::error fatal(std::string text) {
  return make_error(errc::unavailable, std::move(text));
}

/// One-shot "the node joined" flag with the first join reply.
class join_latch {
public:
  void set(const join_reply& r) {
    std::lock_guard<std::mutex> guard{mtx_};
    if (!reply_) {
      reply_ = r;
      cv_.notify_all();
    }
  }

  void fail() {
    std::lock_guard<std::mutex> guard{mtx_};
    failed_ = true;
    cv_.notify_all();
  }

  /// The reply, or nullopt when the node failed first.
  std::optional<join_reply> wait() {
    std::unique_lock<std::mutex> guard{mtx_};
    cv_.wait(guard, [this] { return reply_.has_value() || failed_; });
    return reply_;
  }

private:
  std::mutex mtx_;
  std::condition_variable cv_;
  std::optional<join_reply> reply_;
  bool failed_ = false;
};

/// The path of this executable (its siblings: rayd-job-shim).
std::string self_exe() {
  std::error_code ec;
  auto p = fs::read_symlink("/proc/self/exe", ec);
  return ec ? std::string{"rayd"} : p.string();
}

} // namespace

caf::expected<std::string> job_shim_path() {
  auto shim = fs::path{self_exe()}.parent_path() / "rayd-job-shim";
  if (::access(shim.c_str(), X_OK) != 0)
    return fatal("cannot run jobs: " + shim.string()
                 + " is missing or not executable (it is built and installed next to rayd)");
  return shim.string();
}

caf::expected<node_services> start_node(caf::actor_system& sys, const daemon_options& o,
                                        const resolved& r, const std::string& cluster_address,
                                        const gcs_gate_actor& local_gate,
                                        const std::string& shim_path, shutdown_latch& latch) {
  // Never destroyed: every exit is _Exit, and the shims stop their jobs when
  // this process is gone (fate sharing), exactly as after a kill -9.
  auto* watcher = new node::process_watcher;
  // Outlives this function: re-joins call on_joined for the node's lifetime.
  auto joined = std::make_shared<join_latch>();
  auto node_file_base = std::make_shared<node_file>();
  node_file_base->node_id = r.self.node_id;
  node_file_base->is_head = o.head;
  node_file_base->pid = static_cast<int32_t>(getpid());
  node_file_base->pid_start_ticks = process_start_ticks(getpid());
  node_file_base->start_time_ms = now_ms();
  node_file_base->cluster_address = cluster_address;
  node_file_base->session_dir = r.session_dir;
  node::node_manager_config ncfg;
  ncfg.self = r.self;
  ncfg.token = r.token;
  ncfg.head = r.head;
  ncfg.local_gate = local_gate;
  ncfg.gcs_reconnect_timeout = seconds(o.gcs_reconnect_timeout_s);
  node::job_agent_config acfg;
  acfg.node_id = r.self.node_id;
  acfg.node_name = r.self.name;
  acfg.token = r.token;
  acfg.session_dir = r.session_dir;
  acfg.shim_path = shim_path;
  acfg.watcher = watcher;
  ncfg.job_agent = node::spawn_job_agent(sys, acfg);
  auto session_dir = r.session_dir;
  ncfg.on_joined = [joined, node_file_base, session_dir](const join_reply& reply) {
    // Re-joins rewrite node.json: the head's API address may have moved.
    if (!node_file_base->node_address.empty()) {
      auto nf = *node_file_base;
      nf.api_address = reply.api_address;
      nf.cluster_id = reply.cluster_id;
      if (auto err = write_node_file(session_dir, nf))
        spdlog::warn("cannot update node.json: {}", describe(err));
    }
    joined->set(reply);
  };
  auto* latchp = &latch;
  ncfg.on_fatal = [latchp, joined](const caf::error& err) {
    joined->fail();
    latchp->request(1, describe(err));
  };
  // -- the node port: the task server (leases, workers, objects) --------------
  auto node_sock = listen_tcp(r.bind, o.node_port, "--node-port");
  if (!node_sock)
    return fatal(describe(node_sock.error()));
  auto node_address = host_port{r.node_ip, node_sock->port}.to_string();
  node::object_store_options sopts;
  sopts.memory_bytes = o.object_store_memory > 0
                         ? static_cast<uint64_t>(o.object_store_memory)
                         : static_cast<uint64_t>(detect_memory_bytes() * 0.3);
  sopts.spill_dir = r.session_dir + "/objects";
  // Never destroyed either (every exit is _Exit): spill files live in the
  // session directory.
  auto* store = new node::object_store(sopts);
  node::task_server_config tcfg;
  tcfg.node_id = r.self.node_id;
  tcfg.address = node_address;
  tcfg.token = r.token;
  tcfg.socket = *node_sock;
  tcfg.total = r.self.resources_total;
  tcfg.labels = r.self.labels;
  tcfg.session_dir = r.session_dir;
  tcfg.store = store;
  auto agent = ncfg.job_agent;
  auto* sysp = &sys;
  tcfg.fetch_code = [sysp, agent](const std::string& uri) -> caf::expected<std::string> {
    caf::scoped_actor self{*sysp};
    caf::expected<std::string> out{caf::error{}};
    self->request(agent, std::chrono::minutes{5}, atoms::prepare::value, uri)
      .receive([&out](std::string& path) { out = std::move(path); },
               [&out](caf::error& err) { out = std::move(err); });
    return out;
  };
  auto tasks = node::task_server::start(std::move(tcfg));
  if (!tasks)
    return fatal(describe(tasks.error()));
  // Never destroyed (every exit is _Exit).
  auto* task_srv = tasks->release();
  // Actors: the bridge hands actor_host/unhost to the task server, and its
  // reports (a hosting worker process ended, a job's driver gone) to the head.
  node::actor_bridge_config bcfg;
  bcfg.node_id = r.self.node_id;
  bcfg.token = r.token;
  bcfg.host = [task_srv](actor_launch l, node::task_server::host_reply done) {
    task_srv->host_actor(std::move(l), std::move(done));
  };
  bcfg.unhost = [task_srv](std::string id, std::function<void(bool)> done) {
    task_srv->unhost_actor(std::move(id), std::move(done));
  };
  bcfg.drain = [task_srv](bool on, std::function<void(bool)> done) {
    task_srv->drain(on, std::move(done));
  };
  bcfg.on_api_address = [task_srv](std::string address) {
    task_srv->set_api_address(std::move(address));
  };
  auto bridge = node::spawn_actor_bridge(sys, bcfg);
  task_srv->set_actor_hooks(
    [bridge](std::string actor_id, int32_t pid, std::string cause) {
      caf::anon_send(bridge, atoms::actor_exited::value, std::move(actor_id), pid,
                     std::move(cause));
    },
    [bridge](std::string job_id) {
      caf::anon_send(bridge, atoms::job_gone::value, std::move(job_id));
    });
  ncfg.actor_bridge = bridge;
  ncfg.snapshot = [task_srv] { return task_srv->snapshot(); };
  ncfg.on_peers = [task_srv](std::vector<peer_view> peers) {
    task_srv->set_peers(std::move(peers));
  };
  node_services out;
  out.manager = node::spawn_node_manager(sys, ncfg);
  caf::anon_send(out.manager, atoms::start::value, node_address);
  auto reply = joined->wait();
  if (!reply)
    return fatal(latch.wait().second);
  node_file_base->node_address = node_address;
  out.file = *node_file_base;
  out.file.api_address = reply->api_address;
  out.file.cluster_id = reply->cluster_id;
  return out;
}

} // namespace rayd::cli
