// The head's composition: storage and cluster identity, the GCS actors, the
// gate on the cluster port, the API gateway and the token file (see
// composition.hpp for the order and the error contract).

#include <unistd.h>

#include <chrono>

#include <caf/all.hpp>
#include <caf/io/middleman.hpp>
#include <spdlog/spdlog.h>

#include "actors/gcs/autoscaler_actor.hpp"
#include "api/src/session_registry.hpp"
#include "actors/gcs/blob_actor.hpp"
#include "actors/gcs/job_manager_actor.hpp"
#include "actors/gcs/log_table.hpp"
#include "actors/gcs/spawn.hpp"
#include "actors/gcs/task_actor.hpp"
#include "cli/composition.hpp"
#include "common/error.hpp"
#include "common/net.hpp"
#include "common/token.hpp"
#include "schemas/api_gateway.hpp"

namespace rayd::cli {

namespace {

caf::timespan seconds(double s) {
  return std::chrono::duration_cast<caf::timespan>(std::chrono::duration<double>{s});
}

/// Why CAF could not listen on host:port: CAF's own error is vague, so a
/// plain bind probe supplies the errno ("Address already in use").
std::string listen_failure(const caf::error& err, const std::string& host,
                           uint16_t port, const std::string& flag) {
  auto probe = listen_tcp(host, port, flag);
  if (!probe)
    return describe(probe.error());
  ::close(probe->fd);
  return "cannot listen on " + host + ":" + std::to_string(port) + " (" + flag
         + "): " + describe(err);
}

caf::error fatal(std::string text) {
  return make_error(errc::unavailable, std::move(text));
}

} // namespace

head_services::head_services() = default;
head_services::head_services(head_services&&) noexcept = default;
head_services& head_services::operator=(head_services&&) noexcept = default;
head_services::~head_services() = default;

caf::expected<head_storage> open_head_storage(const resolved& r) {
  persistence::rocksdb_options ropts;
  ropts.path = r.storage;
  auto opened = persistence::open_rocksdb(ropts);
  if (!opened)
    return fatal("--storage " + r.storage + ": " + describe(opened.error()));
  head_storage out;
  out.db = std::move(*opened);
  auto m = gcs::start_epoch(*out.db, r.token);
  if (!m)
    return fatal("storage " + r.storage + ": " + describe(m.error()));
  out.meta = *m;
  spdlog::info("cluster {} epoch {} ({}), storage {}", out.meta.cluster_id, out.meta.epoch,
               out.meta.created ? "created" : "recovered", r.storage);
  return out;
}

caf::expected<head_services> start_head(caf::actor_system& sys, const daemon_options& o,
                                        const resolved& r, head_storage& storage,
                                        shutdown_latch& latch) {
  auto& db = *storage.db;
  const auto& meta = storage.meta;
  head_services out;
  // -- API socket first: it gives the precise "port in use" error -----------
  auto api_sock = listen_tcp_preferring(r.api_bind, meta.api_port, o.api_port, "--api-port");
  if (!api_sock)
    return fatal(describe(api_sock.error()));
  auto give_up = [&api_sock](std::string text) {
    ::close(api_sock->fd);
    return fatal(std::move(text));
  };
  gcs::node_actor_config ncfg;
  ncfg.db = &db;
  ncfg.cluster_id = meta.cluster_id;
  ncfg.epoch = meta.epoch;
  out.api_address = host_port{r.api_ip, api_sock->port}.to_string();
  ncfg.api_address = out.api_address;
  ncfg.reconnect_timeout = seconds(o.node_reconnect_timeout_s);
  auto nodes = gcs::spawn_node_actor(sys, ncfg);
  if (!nodes)
    return give_up("storage " + r.storage + ": " + describe(nodes.error()));
  auto kv = gcs::spawn_kv_actor(sys, db);
  auto blobs = gcs::spawn_blob_actor(sys, db);
  auto tasks = gcs::spawn_task_actor(sys);
  auto log_tbl = std::make_shared<gcs::log_table>(db);
  if (auto err = log_tbl->load())
    return give_up("storage " + r.storage + ": " + describe(err));
  auto logs = gcs::spawn_log_actor(sys, log_tbl);
  gcs::job_manager_config jcfg;
  jcfg.db = &db;
  jcfg.nodes = *nodes;
  jcfg.logs = logs;
  jcfg.blobs = blobs;
  jcfg.head_node_id = meta.head_node_id;
  jcfg.pending_timeout = seconds(o.job_pending_timeout_s);
  jcfg.stop_grace_ms = static_cast<int64_t>(o.job_stop_grace_s * 1000);
  jcfg.retention.max_count = static_cast<std::size_t>(o.job_history_max_count);
  jcfg.retention.max_age_ms = static_cast<int64_t>(o.job_history_max_age_s * 1000);
  jcfg.reattach_timeout = seconds(o.node_reconnect_timeout_s + 5);
  auto jobs = gcs::spawn_job_manager(sys, jcfg);
  if (!jobs)
    return give_up("storage " + r.storage + ": " + describe(jobs.error()));
  gcs::actor_manager_config acfg;
  acfg.db = &db;
  acfg.nodes = *nodes;
  acfg.head_node_id = meta.head_node_id;
  auto actors = gcs::spawn_actor_manager(sys, acfg);
  if (!actors)
    return give_up("storage " + r.storage + ": " + describe(actors.error()));
  gcs::gate_targets targets;
  targets.nodes = *nodes;
  targets.jobs = *jobs;
  targets.logs = logs;
  targets.blobs = blobs;
  targets.actors = *actors;
  out.gate = gcs::spawn_gate(sys, meta.token, targets);
  // -- cluster port ------------------------------------------------------------
  auto& mm = sys.middleman();
  caf::expected<uint16_t> cport{caf::error{}};
  if (o.port == 0 && meta.cluster_port != 0)
    cport = mm.publish(out.gate, meta.cluster_port, r.bind.c_str(), true);
  if (!cport)
    cport = mm.publish(out.gate, o.port, r.bind.c_str(), true);
  if (!cport)
    return give_up(listen_failure(cport.error(), r.bind, o.port, "--port"));
  out.cluster_address = host_port{r.node_ip, *cport}.to_string();
  // -- autoscaler (it launches nodes that join the cluster port) --------------
  if (!o.autoscaling_config.empty()) {
    gcs::autoscaler_config scfg;
    scfg.db = &db;
    scfg.nodes = *nodes;
    scfg.actors = *actors;
    scfg.jobs = *jobs;
    scfg.config_path = o.autoscaling_config;
    scfg.head_address = out.cluster_address;
    scfg.token_file = r.session_dir + "/auth_token";
    auto scaler = gcs::spawn_autoscaler(sys, scfg);
    if (!scaler)
      return give_up(describe(scaler.error()));
    out.autoscaler = *scaler;
  }
  // -- API gateway ---------------------------------------------------------------
  rpc::gateway_config gcfg;
  gcfg.sys = &sys;
  gcfg.nodes = *nodes;
  gcfg.kv = kv;
  gcfg.jobs = *jobs;
  gcfg.logs = logs;
  gcfg.blobs = blobs;
  gcfg.tasks = tasks;
  gcfg.actors = *actors;
  gcfg.autoscaler = out.autoscaler;
  gcfg.token = meta.token;
  core::session_registry_config ccfg;
  ccfg.api_address = out.api_address;
  ccfg.token = meta.token;
  ccfg.default_grace = std::chrono::milliseconds{
    static_cast<int64_t>(o.client_reconnect_grace_s * 1000)};
  ccfg.max_sessions = static_cast<std::size_t>(o.client_max_sessions);
  out.sessions = std::make_unique<core::session_registry>(std::move(ccfg));
  gcfg.clients = out.sessions.get();
  gcfg.socket = *api_sock;
  if (!o.tls_cert.empty()) {
    // Checked by rayd_main already; read again here (the daemon may have
    // detached since), and a file gone meanwhile is fatal, never plain text.
    auto pair = rpc::load_tls_pair(o.tls_cert, o.tls_key);
    if (!pair)
      return give_up(describe(pair.error()));
    gcfg.tls = std::move(*pair);
  }
  auto* latchp = &latch;
  gcfg.on_fatal = [latchp](const std::string& why) { latchp->request(1, why); };
  auto gw = rpc::gateway::start(std::move(gcfg));
  if (!gw)
    return fatal(describe(gw.error()));
  out.gateway = std::move(*gw);
  if (auto err = gcs::save_ports(db, *cport, api_sock->port))
    spdlog::warn("cannot record ports: {}", describe(err));
  if (auto err = write_token_file(r.session_dir + "/auth_token", meta.token))
    return fatal(describe(err));
  spdlog::info("GCS listening on {} (cluster port), API on {}", out.cluster_address,
               out.api_address);
  return out;
}

} // namespace rayd::cli
