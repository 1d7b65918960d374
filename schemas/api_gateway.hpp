#pragma once
// The API gateway: the Cap'n Proto server on the head's API port. It runs its
// own kj event loop on its own thread and never blocks on CAF: each call
// becomes a CAF request sent by one long-lived bridge actor, whose answers
// come back to the loop in batches (see bridge.hpp). Accepting, the
// authentication deadline and the cap on unauthenticated connections are
// the listener's (api_listener.hpp).
//
// Lifetime: start() returns once the socket listens; the destructor stops the
// loop and joins the thread. The actor system must outlive the gateway. If
// the loop breaks while serving, on_fatal is called: the gateway never dies
// silently while the daemon goes on.

#include <cstdint>
#include <functional>
#include <memory>
#include <string>

#include <caf/expected.hpp>
#include <caf/fwd.hpp>

#include "actors/gcs/actor_manager_actor.hpp"
#include "actors/gcs/autoscaler_actor.hpp"
#include "actors/gcs/blob_actor.hpp"
#include "actors/gcs/job_log_actor.hpp"
#include "actors/gcs/job_manager_actor.hpp"
#include "actors/gcs/kv_actor.hpp"
#include "actors/gcs/node_actor.hpp"
#include "actors/gcs/task_actor.hpp"
#include "common/client_ops.hpp"
#include "common/net.hpp"
#include "schemas/connection_limits.hpp"
#include "schemas/tls_files.hpp"

namespace rayd::rpc {

struct gateway_config {
  caf::actor_system* sys = nullptr; // REQUIRED
  gcs_node_actor nodes;             // REQUIRED
  gcs_kv_actor kv;                  // REQUIRED
  job_manager_actor jobs;           // REQUIRED
  job_log_actor logs;               // REQUIRED: job log reads
  gcs_blob_actor blobs;             // REQUIRED
  gcs_task_actor tasks;             // REQUIRED
  actor_manager_actor actors;       // REQUIRED
  autoscaler_actor autoscaler;      // unset: the cluster has no autoscaler
  /// Remote clients' sessions (docs/client.md); null: ClientService refuses.
  /// Must outlive the gateway.
  client_ops::host* clients = nullptr;
  std::string token;                // REQUIRED: the cluster token
  listener socket;                  // REQUIRED: a listening socket (owned)
  listener_limits limits;           // auth timeout, unauthenticated cap
  /// Empty: the port speaks plain Cap'n Proto. Else it speaks only TLS with
  /// this certificate and key (checked already by load_tls_pair).
  tls_pair tls;
  /// Called (on the gateway thread) if the gateway breaks after start()
  /// returned; the daemon must exit rather than go on without its API.
  std::function<void(const std::string&)> on_fatal;
};

class gateway {
public:
  static caf::expected<std::unique_ptr<gateway>> start(gateway_config cfg);
  ~gateway();

  uint16_t port() const {
    return port_;
  }

  struct impl;

private:
  gateway() = default;
  std::unique_ptr<impl> impl_;
  uint16_t port_ = 0;
};

} // namespace rayd::rpc
