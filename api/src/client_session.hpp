#pragma once
// One remote client's session on the head (docs/client.md, "Sessions"): a
// driver of its own (hosted_driver.hpp) that runs the client's ops, and the
// bookkeeping that makes a reconnect safe — replies kept until acknowledged,
// ops answered (not re-run) when a seq comes again, the client's object ids
// mapped to the driver's.
//
// Threads: a sequencer thread of the session makes its driver, then takes
// ops in seq order and runs the quick ones itself (submit, small puts,
// actor calls, references, and a get whose objects are ready). They do not
// wait for answers, but they may connect to a node, so they never run on
// the gateway's thread, where one unreachable node would stall every client.
// Ops that wait (get, wait, named creates, lookups, kills, larger puts,
// streamed puts and gets) go to a pool of worker threads, so one client
// thread's get never holds up another's calls. Every public member may be
// called from any thread; callbacks run on the session's threads.
//
// Large values: a put_stream op's bytes arrive as write_chunk calls and are
// copied into the node's store as they come; a get of a stored value over
// inline_limit answers with a stream the client reads with read_chunk
// (session_streams.hpp: bounded windows both ways, whatever the size).
//
// Lifecycle: starting → serving → closed. close() (the registry calls it
// when the grace period ran out, the client closed it, or the head stops)
// fails what waits, joins the threads and destroys the driver, which frees
// the session's objects; the node then reports its job gone and its
// non-detached actors die.

#include <chrono>
#include <condition_variable>
#include <cstdint>
#include <deque>
#include <functional>
#include <map>
#include <memory>
#include <mutex>
#include <string>
#include <thread>
#include <unordered_map>
#include <vector>

#include "hosted_driver.hpp"
#include "session_streams.hpp"

#include "common/client_ops.hpp"

namespace rayd::core {

class client_session {
public:
  /// Values of a get above this size are streamed (read_chunk).
  static constexpr std::size_t inline_limit = 8u << 20;

  /// Starts the session: `ready` is called once its driver is connected
  /// (or failed to).
  client_session(std::string id, hosted_options opts, client_ops::callback<bool> ready);
  ~client_session();

  client_session(const client_session&) = delete;
  client_session& operator=(const client_session&) = delete;

  const std::string& id() const {
    return id_;
  }

  /// The highest seq this session has taken.
  uint64_t last_seq() const;

  void exec(uint64_t ack, std::vector<client_ops::op> ops,
            client_ops::callback<std::vector<client_ops::reply>> done);
  void write_chunk(uint64_t stream, uint64_t offset, std::string data,
                   client_ops::callback<uint64_t> done);
  void read_chunk(uint64_t stream, uint64_t offset, client_ops::callback<std::string> done);

  /// Fails what waits and stops; idempotent. Blocks until the driver is gone.
  void close();

private:
  struct batch;

  /// The sequencer thread: makes the driver, then runs the mailbox.
  void start(hosted_options opts, client_ops::callback<bool> ready);
  void take(uint64_t ack, std::vector<client_ops::op>& ops,
            client_ops::callback<std::vector<client_ops::reply>>& done);
  void run_quick(client_ops::op& o);
  /// Whether a get's objects are ready and small (it can run inline); with
  /// `may_wait`, after up to 2 ms while no other op of the client waits.
  bool ready_soon(const client_ops::op& o, bool may_wait);
  // The pool's work.
  void post(std::function<void()> job);
  void pool_loop();
  client_ops::reply run_waiting(client_ops::op& o);
  client_ops::reply get(const client_ops::op& o);
  client_ops::reply put_stream(const client_ops::op& o);
  /// Streams a stored value into get stream `stream` (a pool job).
  void produce(uint64_t stream, object_id id);

  /// REQUIRES: mtx_ held. Records `r` and answers the batches it completes.
  void complete(client_ops::reply r, std::unique_lock<std::mutex>& lock);
  object_id map_id(const std::string& client_id);
  std::vector<object_id> map_ids(const std::vector<std::string>& client_ids);
  /// driver wait() for `n` of `ids` within `timeout_ms` (-1: none), in
  /// slices; throws rayd::error when the session closes meanwhile.
  std::vector<bool> wait_for(const std::vector<object_id>& ids, std::size_t n,
                             int64_t timeout_ms);
  std::vector<arg> map_args(std::vector<client_ops::arg>& args);

  const std::string id_;
  session_streams streams_; // large values in chunks, both ways
  std::unique_ptr<hosted_runtime> driver_; // set (under mtx_) before the session opens

  mutable std::mutex mtx_;
  std::condition_variable pool_cv_; // the pool's queue
  bool closing_ = false;
  std::condition_variable seq_cv_; // the sequencer's mailbox
  std::deque<std::function<void()>> mailbox_;
  std::deque<std::function<void()>> jobs_;
  std::size_t idle_workers_ = 0;
  std::vector<std::thread> workers_;
  uint64_t max_seq_ = 0;
  std::map<uint64_t, client_ops::reply> replies_; // until acknowledged
  std::map<uint64_t, std::vector<std::shared_ptr<batch>>> waiting_; // seq → batches
  std::unordered_map<std::string, std::pair<object_id, int>> ids_; // client id → id, refs
  std::thread sequencer_;
};

} // namespace rayd::core
