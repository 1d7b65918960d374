#pragma once
// The object side of a node port (docs/tasks.md, "Objects"): PUT, GET and
// FREE from drivers and peer nodes, STORE and FETCH from the node's worker
// processes, and pulls of objects from other nodes for them. The bytes live
// in the object_store; this moves them in and out.
//
// Threads: every member runs on the task server's loop thread. A large GET
// and a pull from a peer run on a helper thread, which owns the socket (or
// the pull) until it posts its outcome back to the loop; the callbacks given
// here are called on the loop.

#include <cstdint>
#include <functional>
#include <map>
#include <string>
#include <vector>

#include <caf/error.hpp>

#include "actors/node/connection_table.hpp"
#include "actors/node/event_loop.hpp"
#include "actors/node/object_store.hpp"
#include "common/wire.hpp"

namespace rayd::node {

/// What a handler wants done with the connection after a frame.
enum class conn_verdict {
  keep,       // read on
  close,      // close it now (a reply, if any, was sent)
  handed_off, // a helper thread owns the socket for now: stop reading it
};

/// Sends an ERROR frame (failures show as the peer's EOF).
void send_error(int fd, wire::wire_error code, const std::string& message);

class object_service {
public:
  /// Called on the loop when a pull a worker waits for ends (`err` empty:
  /// the object is in the store now).
  using fetch_answer
    = std::function<void(uint64_t worker_id, const std::string& object_id, const caf::error& err)>;

  object_service(object_store& store, event_loop& loop, std::string node_id, std::string token,
                 fetch_answer answer);

  // -- drivers and peers, on the node port ------------------------------------

  /// A PUT header: the CHUNKs that follow go into `st` (drivers only).
  conn_verdict begin_put(connection& c, const wire::frame& f);

  /// A frame while `c.put.active`: the next CHUNK of the PUT.
  conn_verdict put_chunk(connection& c, const wire::frame& f);

  /// Drops a PUT that will not finish (its connection closed).
  void abort_put(put_state& st);

  /// A GET: small objects are sent at once; larger ones on a helper thread,
  /// which calls `given_back(ok)` on the loop when the socket is the
  /// connection's again (then blocking mode is restored to non-blocking).
  conn_verdict get(connection& c, const wire::frame& f,
                   std::function<void(bool ok)> given_back);

  /// A FREE (drivers only). False when malformed.
  bool free(const wire::frame& f);

  // -- worker processes, on their control sockets ------------------------------

  /// STORE: a worker hands over an object it wrote (descriptor `fd`, owned).
  void store_from_worker(int ctrl, int fd, const wire::frame& f, const std::string& job_id);

  /// FETCH: makes the object local (pulling it from its node when needed,
  /// once for all workers waiting for it), then `answer` is called.
  void fetch(uint64_t worker_id, const std::string& job_id, const wire::object_loc& loc);

  /// FETCHED with the object's descriptor, or a control ERROR.
  void send_fetched(int ctrl, const std::string& object_id, const caf::error& err);

private:
  void finish_put(connection& c);

  object_store& store_;
  event_loop& loop_;
  std::string node_id_;
  std::string token_;
  fetch_answer answer_;
  /// Objects being pulled from peers, with the workers waiting for them.
  std::map<std::string, std::vector<uint64_t>> pulls_;
};

} // namespace rayd::node
