#pragma once
// The rayd daemon's composition root: from parsed options to running actors.
// Kept free of CLI11 (only rayd_main.cpp includes it).

#include <cstdint>
#include <string>

namespace rayd::cli {

/// Everything `rayd --head | --address` takes. Defaults are in docs/cli.md
/// and in the --help text of rayd_main.cpp; empty strings mean "not given".
struct daemon_options {
  bool head = false;
  std::string address; // worker: HEAD:PORT
  uint16_t port = 6379;
  uint16_t api_port = 10001;
  uint16_t node_port = 0;
  std::string bind;    // empty: head 127.0.0.1, worker towards the head
  std::string api_bind; // head's API port only; empty: `bind` (checked in rayd_main)
  std::string node_ip; // empty: derived from bind
  std::string storage;
  std::string session_dir;
  double num_cpus = -1; // < 0: detect
  double num_gpus = -1;
  double memory = -1;
  double object_store_memory = -1; // < 0: 30 % of physical memory
  std::string resources_json = "{}";
  std::string labels_json = "{}";
  std::string node_name;
  std::string token;
  std::string token_file;
  // TLS on the API port (head): both files or neither; checked before start.
  std::string tls_cert;
  std::string tls_key;
  bool block = false;
  double gcs_reconnect_timeout_s = 60;
  double node_reconnect_timeout_s = 10;
  int64_t health_timeout_ms = 2000;
  // Jobs (head).
  double job_pending_timeout_s = 600;
  double job_stop_grace_s = 3;
  int64_t job_history_max_count = 1000;
  double job_history_max_age_s = 7 * 24 * 3600;
  // Autoscaler (head): the cluster config file; empty = no autoscaler.
  std::string autoscaling_config;
  /// Head: seconds a remote client's session outlives its connection.
  double client_reconnect_grace_s = 300;
  /// Head: remote client sessions alive at once, at most.
  int client_max_sessions = 1000;
};

/// Runs a node until it is stopped. Returns the process exit code.
int run_daemon(const daemon_options& opts);

struct stop_options {
  std::string session_dir; // empty: $RAYD_TMPDIR/session_latest
  double grace_period_s = 10;
  bool force = false;
};

/// `rayd stop`: signals the rayd processes recorded in one session.
int run_stop(const stop_options& opts);

} // namespace rayd::cli
