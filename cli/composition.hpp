#pragma once
// The parts rayd is composed of, wired by daemon.cpp's serve():
//
//   serve()  options → resolved → [head: open_head_storage] → actor system →
//            [head: start_head] → start_node → node.json → ready → wait
//
// start_head (head_composition.cpp) owns the GCS side: storage, cluster meta,
// the GCS actors, the gate on the cluster port, the API gateway and the
// token file. start_node (node_composition.cpp) owns what every node runs:
// the job agent, the object store, the task server on the node port and the
// node manager, and waits for the node to join. New head-side managers (the
// actor manager, the autoscaler) plug into start_head; new node-side parts
// into start_node; serve() does not grow.
//
// Errors: every function returns a caf::error whose text is the complete
// message for the operator (serve() prefixes "rayd: " and exits 1). Nothing
// here announces or exits by itself.
// Thread rules: called once, in this order, on serve()'s thread.

#include <condition_variable>
#include <cstdint>
#include <functional>
#include <memory>
#include <mutex>
#include <optional>
#include <string>
#include <utility>

#include <caf/expected.hpp>
#include <caf/fwd.hpp>

#include "actors/gcs/cluster_meta.hpp"
#include "actors/gcs/autoscaler_actor.hpp"
#include "actors/gcs/gate_actor.hpp"
#include "actors/node/node_manager.hpp"
#include "cli/daemon.hpp"
#include "common/session.hpp"
#include "common/util.hpp"
#include "persistence/store.hpp"

namespace rayd::rpc {
class gateway;
} // namespace rayd::rpc

namespace rayd::core {
class session_registry;
} // namespace rayd::core

namespace rayd::cli {

/// The options after defaults, discovery and validation (daemon.cpp).
struct resolved {
  std::string session_dir;
  std::string storage;
  std::string bind;
  std::string node_ip;
  std::string api_bind; // head: where the API port listens (--api-bind, else bind)
  std::string api_ip;   // head: the API address it advertises
  std::optional<host_port> head; // workers
  std::string token;             // may be empty on a head (then from storage)
  node_info self;
};

/// Set once: by a signal (exit 0) or by a fatal error of a part (exit 1).
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

// -- head ----------------------------------------------------------------------

/// Opened before the actor system starts, so a storage problem fails fast.
struct head_storage {
  std::unique_ptr<persistence::store> db;
  gcs::cluster_meta meta; // this run's epoch; its token is the cluster's
};

/// Opens --storage and starts a new epoch (the token, the head's node id).
caf::expected<head_storage> open_head_storage(const resolved& r);

/// What the head side hands to the node side and keeps alive.
struct head_services {
  gcs_gate_actor gate; // the local node manager joins through it
  std::string cluster_address;
  std::string api_address;
  /// Remote clients' sessions (docs/client.md); outlives the gateway.
  std::unique_ptr<core::session_registry> sessions;
  std::unique_ptr<rpc::gateway> gateway;
  autoscaler_actor autoscaler; // unset without --autoscaling-config
  head_services();
  head_services(head_services&&) noexcept;
  head_services& operator=(head_services&&) noexcept;
  ~head_services();
};

/// Spawns the GCS actors, publishes the gate on the cluster port, starts the
/// API gateway and writes the token file. A part that breaks later requests
/// a shutdown with exit code 1 through `latch`.
caf::expected<head_services> start_head(caf::actor_system& sys, const daemon_options& o,
                                        const resolved& r, head_storage& storage,
                                        shutdown_latch& latch);

// -- every node ----------------------------------------------------------------

/// The running node: its manager and what node.json records.
struct node_services {
  node_manager_actor manager;
  node_file file; // complete: node address, API address, cluster id
};

/// rayd-job-shim next to this executable (every node runs job entrypoints
/// through it). Errors: it is missing or not executable.
caf::expected<std::string> job_shim_path();

/// Starts the job agent, the object store, the task server and the node
/// manager, and waits until the node joined (through `head.gate` on a head,
/// over the network to r.head on a worker). A fatal node-manager error
/// before or after the join requests a shutdown through `latch`.
caf::expected<node_services> start_node(caf::actor_system& sys, const daemon_options& o,
                                        const resolved& r, const std::string& cluster_address,
                                        const gcs_gate_actor& local_gate,
                                        const std::string& shim_path, shutdown_latch& latch);

} // namespace rayd::cli
