// rayd's composition root. Start-up order (head):
//   options → session dir → [detach] → storage → cluster meta (epoch+1) →
//   GCS actors → gate on the cluster port → API gateway → token file →
//   node manager on its own port → local join → node.json → ready.
// A worker skips the GCS steps and joins the head over the network.
// Nothing is announced (node.json, readiness) before every step succeeded;
// a failure exits non-zero with one line naming the problem.

#include "cli/daemon.hpp"

#include <fcntl.h>
#include <signal.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include <chrono>
#include <condition_variable>
#include <cstdio>
#include <filesystem>
#include <iostream>
#include <mutex>
#include <optional>
#include <thread>

#include <caf/all.hpp>
#include <caf/io/middleman.hpp>
#include <spdlog/sinks/basic_file_sink.h>
#include <spdlog/sinks/stdout_color_sinks.h>
#include <spdlog/spdlog.h>

#include "actors/gcs/cluster_meta.hpp"
#include "actors/gcs/spawn.hpp"
#include "actors/gcs/log_table.hpp"
#include "actors/node/process_watcher.hpp"
#include "actors/gcs/blob_actor.hpp"
#include "actors/gcs/gate_actor.hpp"
#include "actors/gcs/job_manager_actor.hpp"
#include "actors/gcs/task_actor.hpp"
#include "actors/node/job_agent.hpp"
#include "actors/node/node_manager.hpp"
#include "actors/node/object_store.hpp"
#include "actors/node/task_server.hpp"
#include "actors/registry.hpp"
#include "common/error.hpp"
#include "common/net.hpp"
#include "common/session.hpp"
#include "common/token.hpp"
#include "common/util.hpp"
#include "persistence/store.hpp"
#include "schemas/api_gateway.hpp"

namespace fs = std::filesystem;

namespace rayd::cli {

namespace {

/// Where the daemon's outcome goes: a pipe to the waiting parent when rayd
/// detached, else the terminal.
class announcer {
public:
  explicit announcer(int fd = -1) : fd_(fd) {
  }

  void ready(const std::string& text) {
    send('0', text);
  }

  void failed(const std::string& text) {
    send('1', text);
  }

private:
  void send(char code, const std::string& text) {
    if (fd_ < 0) {
      (code == '0' ? std::cout : std::cerr) << text << std::endl;
      return;
    }
    std::string msg = code + text;
    auto n = ::write(fd_, msg.data(), msg.size());
    (void) n;
    ::close(fd_);
    fd_ = -1;
  }

  int fd_;
};

/// Set once: by a signal (exit 0) or by a fatal node-manager error (exit 1).
class shutdown_latch {
public:
  void request(int code, std::string why) {
    std::lock_guard<std::mutex> guard{mtx_};
    if (code_)
      return;
    code_ = code;
    why_ = std::move(why);
    cv_.notify_all();
  }

  std::pair<int, std::string> wait() {
    std::unique_lock<std::mutex> guard{mtx_};
    cv_.wait(guard, [this] { return code_.has_value(); });
    return {*code_, why_};
  }

private:
  std::mutex mtx_;
  std::condition_variable cv_;
  std::optional<int> code_;
  std::string why_;
};

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

struct resolved {
  std::string session_dir;
  std::string storage;
  std::string bind;
  std::string node_ip;
  std::optional<host_port> head; // workers
  std::string token;             // may be empty on a head (then from storage)
  node_info self;
};

caf::expected<resolved> resolve(const daemon_options& o) {
  resolved r;
  auto resources = parse_resources_json(o.resources_json, "--resources");
  if (!resources)
    return resources.error();
  auto labels = parse_labels_json(o.labels_json, "--labels");
  if (!labels)
    return labels.error();
  for (auto [name, flag] : {std::pair{"CPU", "--num-cpus"},
                            std::pair{"GPU", "--num-gpus"},
                            std::pair{"memory", "--memory"}})
    if (resources->count(name))
      return make_error(errc::invalid_argument,
                        std::string{"--resources: set "} + name + " with "
                          + flag + ", not --resources");
  if (!o.head) {
    auto hp = parse_host_port(o.address, "--address");
    if (!hp)
      return hp.error();
    if (hp->port == 0)
      return make_error(errc::invalid_argument,
                        "--address: the head's port must not be 0");
    r.head = *hp;
  }
  auto token = token_from_flags_or_env(o.token, o.token_file);
  if (!token)
    return token.error();
  r.token = *token;
  // Bind address and advertised address.
  if (!o.bind.empty())
    r.bind = o.bind;
  else if (o.head)
    r.bind = "127.0.0.1";
  else
    r.bind = local_address_towards(r.head->host, r.head->port);
  if (!o.node_ip.empty())
    r.node_ip = o.node_ip;
  else if (r.bind == "0.0.0.0" || r.bind == "::")
    r.node_ip = primary_ipv4();
  else
    r.node_ip = r.bind;
  // Session directory.
  if (!o.session_dir.empty()) {
    if (auto err = ensure_dir(o.session_dir))
      return err;
    r.session_dir = fs::absolute(o.session_dir).lexically_normal().string();
  } else if (!o.head) {
    if (auto head_session = find_local_head_session(o.address)) {
      auto dir = *head_session + "/nodes/node_" + std::to_string(now_ms()) + "_"
                 + std::to_string(getpid());
      if (auto err = ensure_dir(dir))
        return err;
      r.session_dir = dir;
    }
  }
  if (r.session_dir.empty()) {
    auto dir = make_default_session_dir();
    if (!dir)
      return dir.error();
    r.session_dir = *dir;
  }
  // Worker without a token: the local head session it nests under has one.
  if (!o.head && r.token.empty()) {
    for (auto dir = fs::path{r.session_dir}; dir.has_parent_path() && dir != dir.root_path();
         dir = dir.parent_path()) {
      if (auto nf = read_node_file(dir.string()); nf && nf->is_head) {
        if (auto t = read_token_file(dir.string() + "/auth_token"))
          r.token = *t;
        break;
      }
    }
    if (r.token.empty())
      return make_error(errc::unauthenticated,
                        "no cluster token: pass --token, --token-file, "
                        "RAYD_TOKEN or RAYD_TOKEN_FILE (the head writes it to "
                        "<head session>/auth_token)");
  }
  // Storage (head).
  if (o.head) {
    if (!o.storage.empty())
      r.storage = o.storage;
    else if (!o.session_dir.empty())
      r.storage = r.session_dir + "/gcs";
    else
      r.storage = rayd_tmpdir() + "/storage/head_" + std::to_string(o.port);
  }
  // This node's row.
  auto& n = r.self;
  n.node_id = random_hex(14);
  n.name = o.node_name.empty() ? host_name() : o.node_name;
  n.is_head = o.head;
  n.resources_total = *resources;
  n.resources_total["CPU"] = o.num_cpus >= 0 ? o.num_cpus : detect_cpus();
  n.resources_total["GPU"] = o.num_gpus >= 0 ? o.num_gpus : detect_gpus();
  n.resources_total["memory"] = o.memory >= 0 ? o.memory : detect_memory_bytes();
  if (n.resources_total["GPU"] == 0)
    n.resources_total.erase("GPU");
  n.resources_available = n.resources_total;
  n.labels = *labels;
  return r;
}

void setup_logging(const std::string& session_dir, bool to_stderr) {
  std::vector<spdlog::sink_ptr> sinks;
  sinks.push_back(std::make_shared<spdlog::sinks::basic_file_sink_mt>(
    session_dir + "/rayd.log"));
  if (to_stderr)
    sinks.push_back(std::make_shared<spdlog::sinks::stderr_color_sink_mt>());
  auto logger = std::make_shared<spdlog::logger>("rayd", sinks.begin(), sinks.end());
  logger->set_pattern("[%Y-%m-%d %H:%M:%S.%e] [%l] %v");
  logger->flush_on(spdlog::level::info);
  spdlog::set_default_logger(logger);
}

/// Blocks the termination signals in this thread (and every thread started
/// after) and turns them into a shutdown request on a dedicated thread.
void watch_signals(shutdown_latch& latch) {
  sigset_t set;
  sigemptyset(&set);
  sigaddset(&set, SIGTERM);
  sigaddset(&set, SIGINT);
  sigaddset(&set, SIGHUP);
  pthread_sigmask(SIG_BLOCK, &set, nullptr);
  ::signal(SIGPIPE, SIG_IGN);
  std::thread t{[set, &latch] {
    int sig = 0;
    sigwait(&set, &sig);
    latch.request(0, std::string{"received "} + strsignal(sig));
  }};
  t.detach();
}

/// The path of this executable (its siblings: rayd-job-shim).
std::string self_exe() {
  std::error_code ec;
  auto p = fs::read_symlink("/proc/self/exe", ec);
  return ec ? std::string{"rayd"} : p.string();
}

caf::timespan seconds(double s) {
  return std::chrono::duration_cast<caf::timespan>(std::chrono::duration<double>{s});
}

std::string next_steps(const node_file& nf, const std::string& session) {
  std::string s;
  s += "rayd: started " + std::string{nf.is_head ? "head" : "worker"} + " node "
       + nf.node_id + " (pid " + std::to_string(nf.pid) + ")\n";
  s += "  session: " + session + "\n";
  if (nf.is_head) {
    s += "  To add a worker node (on another host, copy the token file or pass --token):\n";
    s += "    rayd --address=" + nf.cluster_address + " --token-file " + session
         + "/auth_token\n";
    s += "  To use the cluster from this host:\n";
    s += "    export RAYD_ADDRESS=" + nf.api_address + "\n";
    s += "    rayctl status\n";
  } else {
    s += "  joined the cluster at " + nf.cluster_address + " (API " + nf.api_address
         + ")\n";
  }
  s += "  To stop: rayd stop --session-dir " + session;
  return s;
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

/// The part of the daemon that runs after detaching. Returns the exit code.
[[noreturn]] void serve(const daemon_options& o, resolved r, announcer& ann) {
  shutdown_latch latch;
  watch_signals(latch);
  r.self.pid = static_cast<int32_t>(getpid()); // after a detaching fork
  // Every exit path leaves through _Exit: CAF's orderly shutdown waits for
  // every actor and connection, and there is nothing to flush — the store
  // made each acknowledged change durable already, and the log flushes per
  // line. A stop is therefore exactly as safe as the kill -9 we test.
  auto fail = [&ann](const std::string& msg) {
    ann.failed(msg);
    std::_Exit(1);
  };
  // -- storage and cluster identity (head) ----------------------------------
  std::unique_ptr<persistence::store> db;
  gcs::cluster_meta meta;
  if (o.head) {
    persistence::rocksdb_options ropts;
    ropts.path = r.storage;
    auto opened = persistence::open_rocksdb(ropts);
    if (!opened) {
      fail("rayd: --storage " + r.storage + ": " + describe(opened.error()));
    }
    db = std::move(*opened);
    auto m = gcs::start_epoch(*db, r.token);
    if (!m) {
      fail("rayd: storage " + r.storage + ": " + describe(m.error()));
    }
    meta = *m;
    r.token = meta.token;
    r.self.node_id = meta.head_node_id;
    spdlog::info("cluster {} epoch {} ({}), storage {}", meta.cluster_id,
                 meta.epoch, meta.created ? "created" : "recovered", r.storage);
  }
  // -- actor system ----------------------------------------------------------
  caf::actor_system_config cfg;
  register_message_types(cfg);
  register_error_category(cfg);
  cfg.load<caf::io::middleman>();
  cfg.set("scheduler.max-threads", 2);
  // The work-stealing default sleeps between polls, which adds wake-up
  // latency to every request the gateway bridges; sharing wakes at once.
  cfg.set("scheduler.policy", caf::atom("sharing"));
  cfg.set("logger.file-verbosity", caf::atom("quiet"));
  cfg.set("logger.console-verbosity", caf::atom("quiet"));
  auto health = std::chrono::milliseconds{o.health_timeout_ms};
  cfg.set("middleman.heartbeat-interval", caf::timespan{health / 8});
  cfg.set("middleman.connection-timeout", caf::timespan{health});
  caf::actor_system sys{cfg};
  auto& mm = sys.middleman();
  // -- jobs: every node runs entrypoints through rayd-job-shim ----------------
  auto shim = fs::path{self_exe()}.parent_path() / "rayd-job-shim";
  if (::access(shim.c_str(), X_OK) != 0)
    fail("rayd: cannot run jobs: " + shim.string()
         + " is missing or not executable (it is built and installed next to rayd)");
  // Never destroyed: every exit is _Exit, and the shims stop their jobs when
  // this process is gone (fate sharing), exactly as after a kill -9.
  auto* watcher = new node::process_watcher;

  std::unique_ptr<rpc::gateway> gateway;
  gcs_gate_actor gate;
  job_manager_actor gateway_jobs;
  gcs_blob_actor gateway_blobs;
  gcs_task_actor gateway_tasks;
  std::string cluster_address;
  std::string api_address;
  if (o.head) {
    // -- API socket first: it gives the precise "port in use" error ---------
    auto api_sock = listen_tcp_preferring(r.bind, meta.api_port, o.api_port,
                                          "--api-port");
    if (!api_sock) {
      fail("rayd: " + describe(api_sock.error()));
    }
    gcs::node_actor_config ncfg;
    ncfg.db = db.get();
    ncfg.cluster_id = meta.cluster_id;
    ncfg.epoch = meta.epoch;
    api_address = host_port{r.node_ip, api_sock->port}.to_string();
    ncfg.api_address = api_address;
    ncfg.reconnect_timeout = seconds(o.node_reconnect_timeout_s);
    auto nodes = gcs::spawn_node_actor(sys, ncfg);
    if (!nodes) {
      ::close(api_sock->fd);
      fail("rayd: storage " + r.storage + ": " + describe(nodes.error()));
    }
    auto kv = gcs::spawn_kv_actor(sys, *db);
    auto blobs = gcs::spawn_blob_actor(sys, *db);
    gateway_tasks = gcs::spawn_task_actor(sys);
    auto log_tbl = std::make_shared<gcs::log_table>(*db);
    if (auto err = log_tbl->load()) {
      ::close(api_sock->fd);
      fail("rayd: storage " + r.storage + ": " + describe(err));
    }
    auto logs = gcs::spawn_log_actor(sys, log_tbl);
    gcs::job_manager_config jcfg;
    jcfg.db = db.get();
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
    if (!jobs) {
      ::close(api_sock->fd);
      fail("rayd: storage " + r.storage + ": " + describe(jobs.error()));
    }
    gcs::gate_targets targets;
    targets.nodes = *nodes;
    targets.jobs = *jobs;
    targets.logs = logs;
    targets.blobs = blobs;
    gate = gcs::spawn_gate(sys, meta.token, targets);
    gateway_jobs = *jobs;
    gateway_blobs = blobs;
    // -- cluster port ------------------------------------------------------
    caf::expected<uint16_t> cport{caf::error{}};
    if (o.port == 0 && meta.cluster_port != 0)
      cport = mm.publish(gate, meta.cluster_port, r.bind.c_str(), true);
    if (!cport)
      cport = mm.publish(gate, o.port, r.bind.c_str(), true);
    if (!cport) {
      ::close(api_sock->fd);
      fail("rayd: " + listen_failure(cport.error(), r.bind, o.port, "--port"));
    }
    cluster_address = host_port{r.node_ip, *cport}.to_string();
    rpc::gateway_config gcfg;
    gcfg.sys = &sys;
    gcfg.nodes = *nodes;
    gcfg.kv = kv;
    gcfg.jobs = gateway_jobs;
    gcfg.logs = logs;
    gcfg.blobs = gateway_blobs;
    gcfg.tasks = gateway_tasks;
    gcfg.token = meta.token;
    gcfg.socket = *api_sock;
    auto gw = rpc::gateway::start(std::move(gcfg));
    if (!gw) {
      fail("rayd: " + describe(gw.error()));
    }
    gateway = std::move(*gw);
    if (auto err = gcs::save_ports(*db, *cport, api_sock->port))
      spdlog::warn("cannot record ports: {}", describe(err));
    if (auto err = write_token_file(r.session_dir + "/auth_token", meta.token)) {
      fail("rayd: " + describe(err));
    }
    spdlog::info("GCS listening on {} (cluster port), API on {}",
                 cluster_address, api_address);
  } else {
    cluster_address = r.head->to_string();
  }
  // -- node manager ------------------------------------------------------------
  join_latch joined;
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
  ncfg.local_gate = gate;
  ncfg.gcs_reconnect_timeout = seconds(o.gcs_reconnect_timeout_s);
  node::job_agent_config acfg;
  acfg.node_id = r.self.node_id;
  acfg.node_name = r.self.name;
  acfg.token = r.token;
  acfg.session_dir = r.session_dir;
  acfg.shim_path = shim.string();
  acfg.watcher = watcher;
  ncfg.job_agent = node::spawn_job_agent(sys, acfg);
  auto session_dir = r.session_dir;
  ncfg.on_joined = [&joined, node_file_base, session_dir](const join_reply& reply) {
    // Re-joins rewrite node.json: the head's API address may have moved.
    if (!node_file_base->node_address.empty()) {
      auto nf = *node_file_base;
      nf.api_address = reply.api_address;
      nf.cluster_id = reply.cluster_id;
      if (auto err = write_node_file(session_dir, nf))
        spdlog::warn("cannot update node.json: {}", describe(err));
    }
    joined.set(reply);
  };
  ncfg.on_fatal = [&latch, &joined](const caf::error& err) {
    joined.fail();
    latch.request(1, describe(err));
  };
  // -- the node port: the task server (leases, workers, objects) --------------
  auto node_sock = listen_tcp(r.bind, o.node_port, "--node-port");
  if (!node_sock)
    fail("rayd: " + describe(node_sock.error()));
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
    fail("rayd: " + describe(tasks.error()));
  auto* task_srv = tasks->release();
  ncfg.snapshot = [task_srv] { return task_srv->snapshot(); };
  ncfg.on_peers = [task_srv](std::vector<peer_view> peers) {
    task_srv->set_peers(std::move(peers));
  };
  auto nm = node::spawn_node_manager(sys, ncfg);
  caf::anon_send(nm, atoms::start::value, node_address);
  auto reply = joined.wait();
  if (!reply) {
    fail("rayd: " + latch.wait().second);
  }
  node_file_base->node_address = node_address;
  auto nf = *node_file_base;
  nf.api_address = reply->api_address;
  nf.cluster_id = reply->cluster_id;
  if (auto err = write_node_file(r.session_dir, nf)) {
    fail("rayd: " + describe(err));
  }
  spdlog::info("node {} up: {} node at {}, session {}", nf.node_id,
               o.head ? "head" : "worker", node_address, r.session_dir);
  ann.ready(next_steps(nf, r.session_dir));
  // -- run until told to stop ---------------------------------------------------
  auto [code, why] = latch.wait();
  if (code == 0)
    spdlog::info("shutting down: {}", why);
  else
    spdlog::error("exiting: {}", why);
  if (code == 0) {
    // Graceful stop: record this node as stopped rather than failed.
    caf::scoped_actor self{sys};
    self->request(nm, std::chrono::seconds{3}, atoms::leave::value)
      .receive([](bool) {},
               [](caf::error& err) {
                 spdlog::warn("could not tell the GCS this node leaves: {}",
                              describe(err));
               });
  }
  gateway.reset();
  if (code != 0)
    std::cerr << "rayd: " << why << std::endl;
  std::cout.flush();
  std::_Exit(code);
}

} // namespace

int run_daemon(const daemon_options& o) {
  auto r = resolve(o);
  if (!r) {
    std::cerr << "rayd: " << describe(r.error()) << std::endl;
    return code_of(r.error()) == errc::invalid_argument ? 2 : 1;
  }
  if (o.block) {
    setup_logging(r->session_dir, true);
    announcer ann;
    serve(o, std::move(*r), ann);
  }
  // Detach: the child becomes the daemon; the parent waits for its outcome.
  int fds[2];
  if (::pipe2(fds, O_CLOEXEC) != 0) {
    std::perror("rayd: pipe");
    return 1;
  }
  std::cout.flush();
  std::cerr.flush();
  pid_t child = ::fork();
  if (child < 0) {
    std::perror("rayd: fork");
    return 1;
  }
  if (child == 0) {
    ::close(fds[0]);
    ::setsid();
    int devnull = ::open("/dev/null", O_RDONLY);
    ::dup2(devnull, STDIN_FILENO);
    auto out_path = r->session_dir + "/rayd.out";
    int out = ::open(out_path.c_str(), O_WRONLY | O_CREAT | O_APPEND, 0644);
    if (out >= 0) {
      ::dup2(out, STDOUT_FILENO);
      ::dup2(out, STDERR_FILENO);
    }
    setup_logging(r->session_dir, false);
    announcer ann{fds[1]};
    serve(o, std::move(*r), ann);
  }
  ::close(fds[1]);
  std::string msg;
  char buf[4096];
  ssize_t n;
  while ((n = ::read(fds[0], buf, sizeof(buf))) > 0 || (n < 0 && errno == EINTR))
    if (n > 0)
      msg.append(buf, static_cast<size_t>(n));
  ::close(fds[0]);
  if (msg.empty()) {
    int status = 0;
    ::waitpid(child, &status, 0);
    std::cerr << "rayd: the daemon exited during start-up; see "
              << r->session_dir << "/rayd.log" << std::endl;
    return 1;
  }
  if (msg[0] == '0') {
    std::cout << msg.substr(1) << std::endl;
    return 0;
  }
  ::waitpid(child, nullptr, 0);
  std::cerr << msg.substr(1) << std::endl;
  return 1;
}

} // namespace rayd::cli
