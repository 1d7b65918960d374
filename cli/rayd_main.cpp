// rayd: parses flags (CLI11 lives only in this file) and hands a plain
// options struct to the daemon or to `rayd stop`.

#include <arpa/inet.h>
#include <malloc.h>
#include <netinet/in.h>

#include <cstdlib>
#include <filesystem>
#include <iostream>

#include <CLI/CLI.hpp>

#include "autoscale/cluster_config.hpp"
#include "cli/daemon.hpp"
#include "common/error.hpp"
#include "schemas/tls_files.hpp"

int main(int argc, char** argv) {
  using rayd::cli::daemon_options;
  daemon_options o;
  rayd::cli::stop_options so;
  CLI::App app{"rayd: a node of a rayd cluster.\n"
               "  rayd --head [options]               start a head node\n"
               "  rayd --address=HOST:PORT [options]  start a worker node\n"
               "  rayd stop [--session-dir DIR]       stop this host's session"};
  app.set_help_flag("-h,--help", "Print this help and exit");
  app.add_flag("--head", o.head, "Start a head node (GCS, API, autoscaler, and a node)");
  app.add_option("--address", o.address,
                 "Start a worker node joining the head's cluster port HOST:PORT");
  app.add_option("--port", o.port,
                 "Head: the cluster port node managers join; 0 = the OS picks")
    ->default_val(6379);
  app.add_option("--api-port", o.api_port,
                 "Head: the Cap'n Proto API port for rayctl and drivers; 0 = the OS picks")
    ->default_val(10001);
  app.add_option("--node-port", o.node_port,
                 "This node manager's own port for peer traffic; 0 = the OS picks")
    ->default_val(0);
  app.add_option("--bind", o.bind,
                 "Address to listen on. Default: head 127.0.0.1 (nothing reachable from "
                 "the network unless you say so); worker: the local address that "
                 "reaches the head");
  app.add_option("--api-bind", o.api_bind,
                 "Head: address the API port alone listens on (IPv4/IPv6 literal), e.g. "
                 "a public interface while --bind keeps the cluster and node ports "
                 "private. Default: the --bind address");
  app.add_option("--node-ip", o.node_ip,
                 "Address this node advertises (default: the bind address, or the first "
                 "non-loopback IPv4 when binding 0.0.0.0)");
  app.add_option("--storage", o.storage,
                 "Head: the GCS's RocksDB directory (default: <session-dir>/gcs if "
                 "--session-dir is given, else $RAYD_TMPDIR/storage/head_<port>)");
  app.add_option("--session-dir", o.session_dir,
                 "Session directory (default: a new $RAYD_TMPDIR/session_<time>_<pid>, "
                 "RAYD_TMPDIR defaults to /tmp/rayd)");
  app.add_option("--num-cpus", o.num_cpus, "CPU resource (default: detected cores)");
  app.add_option("--num-gpus", o.num_gpus, "GPU resource (default: detected, else 0)");
  app.add_option("--memory", o.memory, "memory resource in bytes (default: physical memory)");
  app.add_option("--object-store-memory", o.object_store_memory,
                 "Bytes of memory this node's object store may use before objects "
                 "spill to disk under the session dir (default: 30 % of memory)");
  app.add_option("--resources", o.resources_json,
                 "Custom resources as JSON, e.g. '{\"ssd\": 2}'")
    ->default_val("{}");
  app.add_option("--labels", o.labels_json, "Node labels as JSON, e.g. '{\"zone\": \"a\"}'")
    ->default_val("{}");
  app.add_option("--node-name", o.node_name, "Human name of the node (default: host name)");
  app.add_option("--token", o.token,
                 "Cluster token (else --token-file, RAYD_TOKEN, RAYD_TOKEN_FILE; a head "
                 "keeps its token in its storage or makes a new one)");
  app.add_option("--token-file", o.token_file, "File holding the cluster token");
  app.add_option("--tls-cert", o.tls_cert,
                 "Head: PEM certificate (chain) of the API port; with --tls-key the port "
                 "speaks only TLS (the token is still required)");
  app.add_option("--tls-key", o.tls_key,
                 "Head: PEM private key (unencrypted) of --tls-cert");
  app.add_flag("--block", o.block,
               "Stay in the foreground (systemd, containers, tests); default: detach");
  app.add_option("--gcs-reconnect-timeout", o.gcs_reconnect_timeout_s,
                 "Worker: seconds without the head before exiting")
    ->default_val(60);
  app.add_option("--node-reconnect-timeout", o.node_reconnect_timeout_s,
                 "Head: seconds nodes of a previous head run may take to re-join after "
                 "a restart before they are declared DEAD")
    ->default_val(10);
  app.add_option("--health-timeout-ms", o.health_timeout_ms,
                 "A node silent this long (no heartbeat) is declared DEAD")
    ->default_val(2000)
    ->check(CLI::Range(int64_t{200}, int64_t{600000}));

  app.add_option("--job-pending-timeout", o.job_pending_timeout_s,
                 "Head: seconds a job may stay PENDING before it FAILS")
    ->default_val(600)
    ->check(CLI::PositiveNumber);
  app.add_option("--job-stop-grace-period", o.job_stop_grace_s,
                 "Head: seconds between SIGTERM and SIGKILL when a job is stopped")
    ->default_val(3)
    ->check(CLI::NonNegativeNumber);
  app.add_option("--job-history-max-count", o.job_history_max_count,
                 "Head: ended jobs kept (with their logs); the oldest go first; 0 = no bound")
    ->default_val(1000)
    ->check(CLI::NonNegativeNumber);
  app.add_option("--job-history-max-age", o.job_history_max_age_s,
                 "Head: seconds ended jobs (and their logs) are kept; 0 = no bound")
    ->default_val(7 * 24 * 3600)
    ->check(CLI::NonNegativeNumber);

  app.add_option("--autoscaling-config", o.autoscaling_config,
                 "Head: run the autoscaler with this cluster config (YAML, "
                 "docs/autoscaler.md); re-read when the file changes");

  app.add_option("--client-reconnect-grace", o.client_reconnect_grace_s,
                 "Head: seconds a remote client's session (its objects, actors and "
                 "unanswered calls) lives after the last message from its client (docs/client.md)")
    ->default_val(300)
    ->check(CLI::Range(1.0, 7.0 * 24 * 3600));
  app.add_option("--client-max-sessions", o.client_max_sessions,
                 "Head: remote client sessions alive at once, at most (each costs the head a "
                 "driver and about five threads); more are refused, saying so")
    ->default_val(1000)
    ->check(CLI::Range(1, 100000));

  auto* stop = app.add_subcommand("stop", "Stop the rayd processes of one session on this host");
  stop->add_option("--session-dir", so.session_dir,
                   "The session to stop (default: $RAYD_TMPDIR/session_latest)");
  stop->add_option("--grace-period", so.grace_period_s,
                   "Seconds between SIGTERM and SIGKILL")
    ->default_val(10);
  stop->add_flag("-f,--force", so.force, "SIGKILL at once");

  try {
    app.parse(argc, argv);
  } catch (const CLI::CallForHelp& e) {
    return app.exit(e);
  } catch (const CLI::ParseError& e) {
    std::cerr << "rayd: " << e.what() << " (see rayd --help)" << std::endl;
    return 2;
  }
  if (stop->parsed())
    return rayd::cli::run_stop(so);
  if (o.head == !o.address.empty()) {
    std::cerr << "rayd: give exactly one of --head or --address=HOST:PORT (see rayd --help)"
              << std::endl;
    return 2;
  }
  if (!o.api_bind.empty()) {
    if (!o.head) {
      std::cerr << "rayd: --api-bind places the head's API port: give it with --head"
                << std::endl;
      return 2;
    }
    // A literal, not a name: the port must land on exactly the interface meant.
    unsigned char buf[sizeof(in6_addr)];
    if (::inet_pton(AF_INET, o.api_bind.c_str(), buf) != 1
        && ::inet_pton(AF_INET6, o.api_bind.c_str(), buf) != 1) {
      std::cerr << "rayd: --api-bind '" << o.api_bind
                << "': not an IPv4 or IPv6 address (e.g. 0.0.0.0 or 192.0.2.10)" << std::endl;
      return 2;
    }
  }
  if (!o.autoscaling_config.empty()) {
    if (!o.head) {
      std::cerr << "rayd: --autoscaling-config runs the autoscaler on the head: give it "
                   "with --head"
                << std::endl;
      return 2;
    }
    // Checked before anything starts: the message names the file, line and key.
    if (auto c = rayd::autoscale::load_cluster_config(o.autoscaling_config); !c) {
      std::cerr << "rayd: " << rayd::describe(c.error()) << std::endl;
      return 2;
    }
  }
  if (!o.tls_cert.empty() || !o.tls_key.empty()) {
    if (!o.head) {
      std::cerr << "rayd: --tls-cert/--tls-key secure the head's API port: give them "
                   "with --head"
                << std::endl;
      return 2;
    }
    if (o.tls_cert.empty() || o.tls_key.empty()) {
      std::cerr << "rayd: give both --tls-cert and --tls-key, or neither" << std::endl;
      return 2;
    }
    // Checked before anything starts: unreadable, not PEM, or a key that is
    // not the certificate's.
    if (auto pair = rayd::rpc::load_tls_pair(o.tls_cert, o.tls_key); !pair) {
      std::cerr << "rayd: " << rayd::describe(pair.error()) << std::endl;
      return 2;
    }
    // Absolute: read again after detaching, and recorded in node.json.
    std::error_code ec;
    o.tls_cert = std::filesystem::absolute(o.tls_cert, ec).string();
    o.tls_key = std::filesystem::absolute(o.tls_key, ec).string();
    // Remote clients' sessions run drivers in this process that talk to this
    // API port: they trust RAYD_TLS_CA when given, else this certificate
    // (right for a self-signed one). Set before any thread starts.
    ::setenv("RAYD_TLS_CA", o.tls_cert.c_str(), 0);
  }
  // Large buffers (a remote client's 4 MiB chunks, objects in transit) are
  // mapped and returned on free: with glibc's sliding threshold they would
  // stay in per-thread arenas after a transfer and the head's memory grow.
  ::mallopt(M_MMAP_THRESHOLD, 1 << 20);
  return rayd::cli::run_daemon(o);
}
