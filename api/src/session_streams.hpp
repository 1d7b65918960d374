#pragma once
// The large values of one client session on their way (docs/client.md,
// "Large objects"), each way through a bounded queue:
//
//   put:  client ──writeChunk──► write() ──queue (≤ window)──► drain_into() ──► node's store
//   get:  node's store ──► push() ──queue (≤ window)──► read() ──readChunk──► client
//
// Back-pressure: a write() that fills the window is answered only once the
// store took bytes; a push() into a full window blocks its producer until the
// client read. Resends after a reconnect are harmless: a chunk below the
// expected offset is acknowledged and dropped, and the last chunks handed out
// are handed out again. Reads may be pipelined; they are answered in order.
//
// Threads: every member may be called from any thread. Callbacks are called
// without the lock held. close() fails every parked callback and wakes every
// blocked producer and consumer (they throw rayd::error).

#include <condition_variable>
#include <cstddef>
#include <cstdint>
#include <map>
#include <memory>
#include <mutex>
#include <string>

#include "common/client_ops.hpp"

namespace rayd::core {

class session_streams {
public:
  /// Bytes a stream queues at most, each way (plus, for a get, the last
  /// chunks handed out, kept for resends): with the chunks a client has in
  /// flight, the head's memory per transfer stays under 64 MiB.
  static constexpr std::size_t window_bytes = 16u << 20;
  /// The size of the chunks a streamed get hands out (the last may be shorter).
  static constexpr std::size_t chunk_bytes = 4u << 20;
  /// Chunks kept for resends: as many as a client has reads in flight.
  static constexpr std::size_t recent_chunks = 4;

  explicit session_streams(std::string session_id);
  ~session_streams();

  // -- put: the client's bytes into the store --------------------------------------

  /// A chunk at `offset` of put stream `stream` (created on first use);
  /// answers the offset expected next.
  void write(uint64_t stream, uint64_t offset, std::string data,
             client_ops::callback<uint64_t> done);
  /// Copies `size` bytes of the stream into `dst` as they arrive. Throws
  /// rayd::error on close, a failure, or more bytes than `size`.
  void drain_into(uint64_t stream, char* dst, uint64_t size);
  /// The put is over (stored, or failed with `why`): parked writers are
  /// answered, and the stream is forgotten.
  void end_put(uint64_t stream, const std::string& why);

  // -- get: a stored value to the client ---------------------------------------------

  /// A new get stream of `size` bytes; returns its id.
  uint64_t open_get(uint64_t size);
  /// Appends bytes read from the store; blocks while the window is full.
  /// Throws rayd::error once closed.
  void push(uint64_t stream, std::string chunk);
  /// The producer failed: reads get `why`.
  void fail_get(uint64_t stream, const std::string& why);
  /// The chunk at `offset` (answered in order, when it is there).
  void read(uint64_t stream, uint64_t offset, client_ops::callback<std::string> done);
  /// Forgets get streams read to the end (a client's next batch means it
  /// is done with them).
  void forget_read();

  /// Fails what waits; later calls fail too.
  void close();

private:
  struct inbound;
  struct outbound;

  std::shared_ptr<inbound> inbound_for(uint64_t stream); // REQUIRES: mtx_ held
  std::string closed_text() const;

  const std::string session_id_;
  mutable std::mutex mtx_;
  std::condition_variable cv_; // chunks in or out, room in a window, close
  bool closed_ = false;
  std::map<uint64_t, std::shared_ptr<inbound>> inbound_;
  std::map<uint64_t, std::shared_ptr<outbound>> outbound_;
  uint64_t next_get_ = 1ull << 63; // ours; a client's put streams count up from 1
};

} // namespace rayd::core
