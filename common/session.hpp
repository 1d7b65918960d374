#pragma once
// The session directory of a node: where a running rayd says who it is
// (node.json), keeps its log and, on the head, the cluster token. Local tools
// (rayctl, rayd stop, drivers) find clusters on this host only through these
// files, so many clusters can share one host without seeing each other.
//
//   $RAYD_TMPDIR (default /tmp/rayd)
//   ├── session_latest -> session_<time>_<pid>
//   ├── session_<time>_<pid>/
//   │   ├── node.json  auth_token (head, 0600)  rayd.log
//   │   └── nodes/node_<time>_<pid>/   workers started on the head's host
//   └── clusters/<name>/head/   a head started by `rayctl up` (docs/autoscaler.md)

#include <cstdint>
#include <optional>
#include <string>
#include <vector>

#include <caf/error.hpp>
#include <caf/expected.hpp>

namespace rayd {

/// Contents of node.json. Written once the node is up.
struct node_file {
  std::string node_id;
  bool is_head = false;
  int32_t pid = 0;
  /// Kernel start time of `pid` (/proc/<pid>/stat field 22): guards
  /// `rayd stop` against a recycled pid.
  uint64_t pid_start_ticks = 0;
  int64_t start_time_ms = 0;
  std::string cluster_address; // the head's cluster port
  std::string api_address;     // the head's API port
  /// Head: whether the API port speaks only TLS, and its certificate file
  /// (absolute; local clients use it as the CA when given none).
  bool api_tls = false;
  std::string api_tls_cert;
  std::string node_address;    // this node's own port
  std::string session_dir;
  std::string cluster_id;
};

/// $RAYD_TMPDIR, or /tmp/rayd.
std::string rayd_tmpdir();

/// Creates a fresh `$RAYD_TMPDIR/session_<time>_<pid>` and points
/// `session_latest` at it.
caf::expected<std::string> make_default_session_dir();

/// Creates `dir` (and parents) with mode 0700 if missing.
caf::error ensure_dir(const std::string& dir);

caf::error write_node_file(const std::string& session_dir, const node_file& nf);
caf::expected<node_file> read_node_file(const std::string& session_dir);

/// Directories directly under $RAYD_TMPDIR, and the launcher's
/// $RAYD_TMPDIR/clusters/<name>/head, whose node.json describes a head
/// (newest first; `session_latest` target first).
std::vector<std::pair<std::string, node_file>> local_head_sessions();

/// The token of the local head session whose api_address is `api_address`
/// (HOST:PORT, or rayd://HOST:PORT as a remote client names it).
std::optional<std::string> find_local_token(const std::string& api_address);

/// The certificate file of the local head session whose api_address is
/// `api_address` (with or without rayd://), when that head's API port
/// speaks TLS.
std::optional<std::string> find_local_tls_cert(const std::string& api_address);

/// The local head session whose cluster_address is `cluster_address`.
std::optional<std::string> find_local_head_session(const std::string& cluster_address);

/// Every node.json at `dir` or below (depth-limited), as (dir, contents).
std::vector<std::pair<std::string, node_file>> node_files_under(const std::string& dir);

/// The start time of `pid` in clock ticks since boot, 0 if it does not exist.
uint64_t process_start_ticks(int pid);

} // namespace rayd
