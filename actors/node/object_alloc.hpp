#pragma once
// Shared puts, the node's half (docs/tasks.md, "Shared puts";
// api/src/shared_put.hpp has the driver's half and the exchange): objects a
// driver on this host writes in place. PUT_ALLOC takes a writable object
// from the store (object_store::begin: a pooled memfd when one fits, so its
// pages are warm) and tells the driver which descriptor of this process
// holds it; PUT_COMMIT makes it readable, PUT_ABORT drops it.
//
// Lifecycle of one allocation (keyed by connection and object id):
//
//   PUT_ALLOC ──▶ pending ──PUT_COMMIT──▶ in the store (readable; gone from here)
//                    │
//                    └──PUT_ABORT / connection closed──▶ dropped
//
// While pending, an object is not readable (GET: not found) and its size
// counts against the store's memory bound (object_store's reservation).
// Only authenticated driver sessions reach this class (the task server
// checks); sizes are validated; nothing from the driver is used as a path
// or descriptor: the descriptor named is one this process opened.
//
// Thread-safety: not synchronized; the task server's loop thread owns it.

#include <cstdint>
#include <map>
#include <string>
#include <utility>

#include <caf/error.hpp>
#include <caf/expected.hpp>

#include "actors/node/object_store.hpp"
#include "common/wire.hpp"

namespace rayd::node {

class put_allocations {
public:
  /// Pending allocations one connection may hold at once (a driver has one
  /// at a time; the bound stops a misbehaving one from hoarding memory).
  static constexpr std::size_t max_per_conn = 4;

  explicit put_allocations(object_store& store);
  ~put_allocations();

  put_allocations(const put_allocations&) = delete;
  put_allocations& operator=(const put_allocations&) = delete;

  /// Serves PUT_ALLOC / PUT_COMMIT / PUT_ABORT from the authenticated driver
  /// session `conn` of job `job_id`. Returns the reply frame ("" for none).
  /// Errors (errc::invalid_argument): a malformed frame or a protocol
  /// violation; the caller then closes the connection.
  caf::expected<std::string> on_frame(uint64_t conn, const std::string& job_id,
                                      const wire::frame& f);

  /// PUT_ALLOC: the region to write. Errors: errc::invalid_argument (size 0,
  /// an id already pending or stored, too many pending), errc::storage_error
  /// (the store cannot take it).
  caf::expected<wire::put_region_msg> allocate(uint64_t conn, const std::string& id,
                                               uint64_t size, const std::string& job_id);

  /// PUT_COMMIT. Errors: errc::invalid_argument (not pending on `conn`),
  /// errc::storage_error (from the store).
  caf::error commit(uint64_t conn, const std::string& id);

  /// PUT_ABORT; unknown ids are ignored.
  void abort(uint64_t conn, const std::string& id);

  /// The connection closed: drops everything it left pending.
  void drop_conn(uint64_t conn);

  std::size_t pending_count() const {
    return pending_.size();
  }

private:
  using key = std::pair<uint64_t, std::string>;

  object_store& store_;
  std::map<key, object_store::pending> pending_;
  std::map<uint64_t, std::size_t> per_conn_;
};

} // namespace rayd::node
