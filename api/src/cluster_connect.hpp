#pragma once

// How a driver finds its cluster and gets its code there (docs/tasks.md, "The
// driver"): the address and token as rayctl finds them, an embedded head
// when there is none, the cluster's alive nodes and the home node among them,
// and the program's executable (and task libraries) uploaded to the head's
// blob store once per content hash.
//
// Contract: connect_cluster() either returns a usable connection or throws
// the API's documented errors (rayd::connection_error, rayd::error for a bad
// code_search_path). It talks to the head's API only during the call (a
// client belongs to the thread that made it); afterwards the driver talks to
// the head through head_link.
//
// Thread rules: called once, on the thread running rayd::init(). The
// embedded head (if any) lives as long as the returned object and is
// stopped (SIGTERM, then SIGKILL) when it goes.

#include <memory>
#include <string>
#include <vector>

#include "node_directory.hpp"

#include "common/wire.hpp"
#include "rayd/core.hpp"

namespace rayd::rpc {
class client;
} // namespace rayd::rpc

namespace rayd::core {

/// A rayd head started for this process's lifetime (rayd::init() with no
/// cluster around). It dies with this process (PR_SET_PDEATHSIG).
class embedded_cluster;

struct cluster_connection {
  cluster_connection();
  cluster_connection(cluster_connection&&) noexcept;
  cluster_connection& operator=(cluster_connection&&) noexcept;
  ~cluster_connection();

  std::unique_ptr<embedded_cluster> embedded; // null when a cluster was found
  std::string api_address;                    // the head's API
  std::string token;
  std::string home_id;      // the node this driver runs on, else the head
  std::string home_address; // its node port
  std::vector<node_directory::node> alive;
  wire::code_ref code; // what a lease names for the worker to run
};

/// `code` set: the code was shipped already (a remote client's session on
/// the head); nothing of this process is uploaded.
cluster_connection connect_cluster(const init_options& opts,
                                   const wire::code_ref* code = nullptr);

/// The token for the cluster at `address`: init_options', $RAYD_TOKEN or
/// $RAYD_TOKEN_FILE's, else the local head session's serving it. Throws
/// rayd::connection_error when there is none.
std::string token_for(const init_options& opts, const std::string& address);

/// Uploads this process's executable and opts.code_search_path's task
/// libraries to the head's blob store, each once per content hash; returns
/// what a lease names. Throws rayd::error / rayd::connection_error.
wire::code_ref ship_code(const init_options& opts, rpc::client& client);

} // namespace rayd::core
