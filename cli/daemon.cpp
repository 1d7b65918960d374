// rayd's composition root. Start-up order (head):
//   options → session dir → [detach] → open-file limit → storage → cluster
//   meta (epoch+1) → actor system → [start_head: GCS actors → gate on the
//   cluster port → API gateway → token file] → [start_node: node manager on
//   its own port → local join] → node.json → ready.
// A worker skips the head's steps and joins the head over the network. The
// head's and the node's parts live in head_composition.cpp and
// node_composition.cpp (composition.hpp); this file only sequences them.
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

#include "actors/registry.hpp"
#include "cli/composition.hpp"
#include "cli/process_limits.hpp"
#include "common/error.hpp"
#include "common/net.hpp"
#include "common/session.hpp"
#include "common/token.hpp"
#include "common/util.hpp"
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
  // The API port may listen elsewhere (--api-bind: exposed alone on a public
  // interface); advertised as itself unless it is a wildcard.
  r.api_bind = o.api_bind.empty() ? r.bind : o.api_bind;
  if (o.api_bind.empty() || o.api_bind == "0.0.0.0" || o.api_bind == "::")
    r.api_ip = r.node_ip;
  else
    r.api_ip = o.api_bind;
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
    if (nf.api_tls)
      s += "    export RAYD_TLS_CA=<the CA file that signed " + nf.api_tls_cert
           + "> (the API port speaks TLS; local tools try that certificate itself)\n";
    s += "    rayctl status\n";
  } else {
    s += "  joined the cluster at " + nf.cluster_address + " (API " + nf.api_address
         + ")\n";
  }
  s += "  To stop: rayd stop --session-dir " + session;
  return s;
}

/// The part of the daemon that runs after detaching. Never returns.
[[noreturn]] void serve(const daemon_options& o, resolved r, announcer& ann) {
  shutdown_latch latch;
  watch_signals(latch);
  r.self.pid = static_cast<int32_t>(getpid()); // after a detaching fork
  r.self.open_files_limit = raise_open_file_limit();
  // Every exit path leaves through _Exit: CAF's orderly shutdown waits for
  // every actor and connection, and there is nothing to flush — the store
  // made each acknowledged change durable already, and the log flushes per
  // line. A stop is therefore exactly as safe as the kill -9 we test.
  auto fail = [&ann](const caf::error& err) {
    ann.failed("rayd: " + describe(err));
    std::_Exit(1);
  };
  spdlog::info("open-file limit {}", r.self.open_files_limit);
  // -- storage and cluster identity (head) ----------------------------------
  head_storage storage;
  if (o.head) {
    auto opened = open_head_storage(r);
    if (!opened)
      fail(opened.error());
    storage = std::move(*opened);
    r.token = storage.meta.token;
    r.self.node_id = storage.meta.head_node_id;
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
  // -- jobs: every node runs entrypoints through rayd-job-shim ----------------
  auto shim = job_shim_path();
  if (!shim)
    fail(shim.error());
  // -- the head's GCS side, then this node -------------------------------------
  head_services head;
  if (o.head) {
    auto started = start_head(sys, o, r, storage, latch);
    if (!started)
      fail(started.error());
    head = std::move(*started);
  } else {
    head.cluster_address = r.head->to_string();
  }
  auto node = start_node(sys, o, r, head.cluster_address, head.gate, *shim, latch);
  if (!node)
    fail(node.error());
  if (o.head && !o.tls_cert.empty()) {
    node->file.api_tls = true;
    node->file.api_tls_cert = o.tls_cert;
  }
  if (auto err = write_node_file(r.session_dir, node->file))
    fail(err);
  spdlog::info("node {} up: {} node at {}, session {}", node->file.node_id,
               o.head ? "head" : "worker", node->file.node_address, r.session_dir);
  ann.ready(next_steps(node->file, r.session_dir));
  // -- run until told to stop ---------------------------------------------------
  auto [code, why] = latch.wait();
  if (code == 0)
    spdlog::info("shutting down: {}", why);
  else
    spdlog::error("exiting: {}", why);
  if (code == 0) {
    // Graceful stop: record this node as stopped rather than failed.
    caf::scoped_actor self{sys};
    self->request(node->manager, std::chrono::seconds{3}, atoms::leave::value)
      .receive([](bool) {},
               [](caf::error& err) {
                 spdlog::warn("could not tell the GCS this node leaves: {}",
                              describe(err));
               });
  }
  head.gateway.reset();
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
