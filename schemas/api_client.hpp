#pragma once
// A synchronous client of the head's API for rayctl, benchmarks and tests.
// Hides Cap'n Proto entirely; every call has a deadline.
//
// Thread-safety: one client belongs to the thread that connected it (it owns
// a kj event loop). Use one client per thread.

#include <chrono>
#include <functional>
#include <string_view>
#include <memory>
#include <optional>
#include <string>
#include <vector>

#include <caf/expected.hpp>

#include "actors/actor_types.hpp"
#include "actors/job_types.hpp"
#include "actors/types.hpp"
#include "common/client_ops.hpp"

namespace rayd::rpc {

/// How to reach the head's API port.
struct connect_options {
  /// Deadline of the connection, of the handshakes and of every call.
  std::chrono::milliseconds timeout{5000};
  /// A PEM file of the CA that signed the head's certificate: the client
  /// speaks TLS and checks the head's certificate against this CA only (not
  /// the system's store) and against the host of the address (OpenSSL's
  /// host-name check: a DNS name must be in the certificate's DNS names, an
  /// IP address in its CN when it has no DNS names — see docs/cli.md,
  /// "TLS"). Empty: $RAYD_TLS_CA, and when that is unset too, plain text.
  std::string tls_ca;
  /// Test-only: the API version this client claims in the version handshake
  /// (unset: schema::CURRENT_API_VERSION).
  std::optional<uint32_t> claimed_api_version;
};

class client {
public:
  /// Connects to `address` (HOST:PORT, optionally prefixed rayd://), checks
  /// the API version (before the token is sent), then authenticates with
  /// `token`. Every step is bounded by the timeout; none hangs. Errors:
  ///  - errc::unavailable: "cannot reach the head at ...", the versions
  ///    differ ("the head at H speaks API version N, this client version M"),
  ///    the head speaks TLS and no CA was given, the head's certificate is
  ///    not vouched for by the CA, the head does not speak TLS but a CA was
  ///    given;
  ///  - errc::invalid_argument: the CA file is unreadable or not PEM;
  ///  - errc::unauthenticated: "the head refused the cluster token";
  ///  - errc::timeout.
  static caf::expected<std::unique_ptr<client>>
  connect(const std::string& address, const std::string& token,
          const connect_options& opts);
  static caf::expected<std::unique_ptr<client>>
  connect(const std::string& address, const std::string& token,
          std::chrono::milliseconds timeout = std::chrono::seconds{5});

  ~client();

  caf::expected<cluster_view> status();
  /// The autoscaler's status JSON; nullopt when the cluster has none.
  caf::expected<std::optional<std::string>> autoscaler_status();
  /// Replaces the explicit resource request (empty clears it). Errors:
  /// errc::unavailable without an autoscaler, errc::invalid_argument.
  caf::expected<void> request_resources(const std::vector<resource_map>& bundles);

  caf::expected<bool> kv_put(const std::string& ns, const std::string& key,
                             const std::string& value, bool overwrite = true);
  caf::expected<std::optional<std::string>> kv_get(const std::string& ns,
                                                   const std::string& key);
  caf::expected<bool> kv_del(const std::string& ns, const std::string& key);
  caf::expected<std::vector<std::string>> kv_list(const std::string& ns,
                                                  const std::string& prefix);

  // -- jobs (see JobService in rayd_api.capnp) --------------------------------
  caf::expected<job_info> job_submit(const job_submission& s);
  caf::expected<job_info> job_get(const std::string& id);
  caf::expected<std::vector<job_info>> job_list();
  caf::expected<job_info> job_stop(const std::string& id);
  caf::expected<bool> job_delete(const std::string& id);
  /// Bytes of the log from `offset`; with `wait_ms` > 0 a long poll (the
  /// head caps it at 10 s) for bytes past `offset` or the log's close.
  caf::expected<log_slice> job_logs(const std::string& id, uint64_t offset,
                                    uint32_t max_bytes, uint32_t wait_ms);
  /// The job once it ended, or as it is after `timeout_ms` (≤ 10 s a call).
  caf::expected<job_info> job_wait(const std::string& id, uint32_t timeout_ms);
  /// Stores a working_dir package; returns its URI "gcs://<sha256>.tar.gz".
  caf::expected<std::string> upload_package(const std::string& bytes);
  caf::expected<bool> has_package(const std::string& uri);

  // -- tasks (see TaskService) ------------------------------------------------
  caf::expected<void> task_report(const std::string& job_id, const task_counts& counts,
                                  const std::vector<task_event>& events);
  caf::expected<task_list_reply> task_list(uint32_t limit);

  // -- actors (see ActorService) ----------------------------------------------
  caf::expected<std::vector<actor_info>>
  actor_create(const std::vector<actor_create_request>& requests);
  caf::expected<std::vector<actor_info>> actor_wait(const std::vector<std::string>& ids,
                                                    uint32_t timeout_ms);
  /// Errors: errc::not_found when no live actor has that name.
  caf::expected<actor_info> actor_get(const std::string& name, const std::string& ns);
  caf::expected<std::vector<actor_info>> actor_list();
  caf::expected<actor_info> actor_kill(const std::string& id_or_name, const std::string& ns,
                                       bool no_restart, const std::string& by);

  // -- remote client sessions (see ClientService; docs/client.md) -----------
  /// Opens a session (resume_id "") or resumes one on this connection.
  caf::expected<client_ops::opened> session_open(const std::string& resume_id,
                                                 const std::string& job_name,
                                                 const wire::code_ref& code, uint64_t grace_ms);
  /// Starts an exec call and returns at once; `done` runs inside a later
  /// poll() (or another call's wait) on this thread, with the replies or
  /// the error (errc::unavailable when the connection broke).
  void session_exec(const std::string& session, uint64_t ack,
                    const std::vector<client_ops::op>& ops,
                    std::function<void(caf::expected<std::vector<client_ops::reply>>)> done);
  caf::expected<uint64_t> session_write_chunk(const std::string& session, uint64_t stream,
                                              uint64_t offset, std::string_view data);
  caf::expected<std::string> session_read_chunk(const std::string& session, uint64_t stream,
                                                uint64_t offset);
  /// `data` (the bytes from `offset`) as writeChunk calls of `chunk` bytes,
  /// up to `window` in flight; the session's next offset once all answered.
  caf::expected<uint64_t> session_write_chunks(const std::string& session, uint64_t stream,
                                               uint64_t offset, std::string_view data,
                                               std::size_t chunk, std::size_t window);
  /// The bytes [offset, end) of a stream as readChunk calls of `chunk` bytes
  /// (the session's chunk size), up to `window` in flight, appended to `out`;
  /// returns the offset reached.
  caf::expected<uint64_t> session_read_chunks(const std::string& session, uint64_t stream,
                                              uint64_t offset, uint64_t end, std::size_t chunk,
                                              std::size_t window, std::string& out);
  caf::expected<void> session_close(const std::string& session);
  /// Runs this client's event loop (completing session_exec calls) until
  /// `wake_fd` (an eventfd) is readable or `max` passed.
  void poll(int wake_fd, std::chrono::milliseconds max);

  struct impl;

private:
  explicit client(std::unique_ptr<impl> p);
  std::unique_ptr<impl> impl_;
};

} // namespace rayd::rpc
