#pragma once
// The task wire protocol (docs/tasks.md): frames on the node port between
// drivers, node task servers and workers, and on the unix control socket
// between a node and its worker processes.
//
// A frame is `u32 length` (little-endian; of type + payload) · `u8 type` ·
// payload. Payloads are msgpack arrays of the structs below (MSGPACK_DEFINE),
// except CHUNK, whose payload is raw bytes. Frames above `max_frame_bytes`
// are refused. Decoding never trusts its input: malformed bytes give an
// errc::invalid_argument, never an exception or a crash.
//
// Thread-safety: the free functions are reentrant; a frame_reader belongs
// to one thread at a time.

#include <cstddef>
#include <cstdint>
#include <deque>
#include <map>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include <caf/error.hpp>
#include <caf/expected.hpp>
#include <msgpack.hpp>

#include "common/error.hpp"

namespace rayd::wire {

constexpr uint32_t max_frame_bytes = 64u << 20;
/// Results and puts up to this size travel inline; larger ones are stored.
constexpr std::size_t inline_object_bytes = 100 * 1024;
/// Object bytes travel in CHUNK frames of at most this size.
constexpr std::size_t chunk_bytes = 1u << 20;
constexpr const char* magic = "rayd-task-1";

enum class msg : uint8_t {
  // node port: handshake and leases
  hello = 1,
  welcome = 2,
  lease = 3,
  granted = 4,
  spillback = 5,
  queued = 6,
  refused = 7,
  /// driver → node on a QUEUED request's socket (backlog_msg): how many
  /// tasks of the shape now wait; the node reports them as demand. A worker
  /// that adopted the socket meanwhile ignores it.
  backlog = 8,
  // leased socket: driver <-> worker
  task = 10,
  result = 11,
  // node port: objects
  put = 20,
  chunk = 21,
  put_ok = 22,
  get = 23,
  object = 24,
  free = 25,
  error = 26,
  ping = 27,
  pong = 28,
  // unix control socket: node <-> worker process
  ready = 40,   // worker → node
  adopt = 41,   // node → worker, with the leased socket's fd
  lease_done = 42, // worker → node
  store = 43,   // worker → node, with a memfd holding the object
  stored = 44,  // node → worker
  fetch = 45,   // worker → node
  fetched = 46, // node → worker, with a memfd (read-only use)
  exit = 47,    // node → worker: no leases for a while, exit
  control_error = 48, // node → worker: a STORE or FETCH failed
  /// node → worker (lease_done_msg): another job waits; the worker passes it
  /// on to the driver on the leased socket (empty payload), which sends no
  /// more tasks there and gives the lease back once its results are in.
  drain = 49,
  // node port: one-copy puts from a driver on the node's host
  // (docs/tasks.md, "Shared puts"; api/src/shared_put.hpp)
  put_alloc = 50,  // driver → node (put_alloc_msg)
  put_region = 51, // node → driver (put_region_msg), or ERROR
  put_commit = 52, // driver → node (object_id_msg); PUT_OK or ERROR
  put_abort = 53,  // driver → node (object_id_msg); no reply
  // actors (docs/actors.md, "Wire"): a caller attaches a node-port socket
  // to the worker process hosting an actor, then calls it directly
  attach = 60,        // caller → node, after HELLO (attach_msg); ERROR not_found if no such worker
  attached = 61,      // worker → caller (attach_msg), first frame once it serves the socket
  call = 62,          // caller → worker (actor_call); answered by RESULT (task_id = call_id)
  create_actor = 63,  // node → worker, control (actor_create_msg)
  actor_created = 64, // worker → node, control (actor_created_msg)
  kill_actor = 65,    // node → worker, control (actor_id_msg); no reply
  adopt_caller = 66,  // node → worker, control (attach_msg), with the caller's socket
};

const char* to_string(msg x);

/// Error codes carried by ERROR and REFUSED (a subset of rayd::errc values).
enum class wire_error : uint8_t {
  invalid = 1,        // malformed request
  unauthenticated = 2,
  not_found = 3,      // unknown object
  infeasible = 4,     // no node can ever hold the shape
  unavailable = 5,    // cannot start a worker, fetch code, reach a node, ...
  store_full = 6,     // the object store cannot take the object (memory and disk)
  lost = 7,           // the object's node is gone
};

// -- payloads ----------------------------------------------------------------

struct hello {
  std::string magic_text;
  std::string token;
  std::string role; // "driver" or "peer"
  std::string job_id;
  MSGPACK_DEFINE(magic_text, token, role, job_id)
};

struct welcome {
  std::string node_id;
  MSGPACK_DEFINE(node_id)
};

/// One file of a job's code: a blob in the GCS named by its SHA-256.
struct code_file {
  std::string hash;
  std::string name;
  MSGPACK_DEFINE(hash, name)
};

/// What a worker of a job runs: `files[0]` is the executable (the driver's
/// own binary); further files are task libraries the worker dlopens.
struct code_ref {
  std::vector<code_file> files;
  MSGPACK_DEFINE(files)
};

struct lease_request {
  uint64_t request_id = 0;
  std::map<std::string, double> shape;
  std::map<std::string, std::string> label_selector;
  std::string job_id;
  code_ref code;
  /// The node that spilled this request here ("" for the first ask).
  std::string spilled_from;
  /// Tasks of this shape the driver has waiting for a lease when it asks
  /// (Ray's backlog): a queued request counts as that much demand, so the
  /// autoscaler sizes a launch for all of them, not one lease at a time.
  uint32_t backlog = 0;
  MSGPACK_DEFINE(request_id, shape, label_selector, job_id, code, spilled_from, backlog)
};

struct backlog_msg {
  uint64_t request_id = 0;
  uint32_t count = 0;
  MSGPACK_DEFINE(request_id, count)
};

struct granted {
  uint64_t request_id = 0;
  int32_t worker_pid = 0;
  uint32_t threads = 1;
  std::string node_id;
  MSGPACK_DEFINE(request_id, worker_pid, threads, node_id)
};

struct spillback {
  uint64_t request_id = 0;
  std::string node_id;
  std::string address;
  MSGPACK_DEFINE(request_id, node_id, address)
};

struct queued {
  uint64_t request_id = 0;
  std::string reason;
  MSGPACK_DEFINE(request_id, reason)
};

struct refused {
  uint64_t request_id = 0;
  uint8_t code = 0; // wire_error
  std::string reason;
  MSGPACK_DEFINE(request_id, code, reason)
};

/// Where a stored object lives.
struct object_loc {
  std::string object_id;
  std::string node_id;
  std::string address; // the node port
  uint64_t size = 0;
  MSGPACK_DEFINE(object_id, node_id, address, size)
};

struct task_arg {
  enum kind_t : uint8_t { value = 0, ref = 1 };
  uint8_t kind = value;
  std::string data; // value: msgpack bytes of the argument
  object_loc loc;   // ref: the stored object holding them
  MSGPACK_DEFINE(kind, data, loc)
};

struct task {
  uint64_t task_id = 0;
  std::string function;
  std::vector<task_arg> args;
  uint32_t attempt = 0;
  MSGPACK_DEFINE(task_id, function, args, attempt)
};

struct task_result {
  enum kind_t : uint8_t { value = 0, stored = 1, error = 2 };
  uint64_t task_id = 0;
  uint8_t kind = value;
  std::string data;       // value: msgpack bytes of the result
  object_loc loc;         // stored
  std::string error_type; // error: the exception's type (demangled)
  std::string error_message;
  std::string node_id;    // where it ran
  MSGPACK_DEFINE(task_id, kind, data, loc, error_type, error_message, node_id)
};

struct put_request {
  std::string object_id;
  uint64_t size = 0;
  std::string job_id;
  MSGPACK_DEFINE(object_id, size, job_id)
};

/// PUT_ALLOC: a writable object of `size` bytes in the node's store, for a
/// driver that writes it in place. The job is the session's (HELLO).
struct put_alloc_msg {
  std::string object_id;
  uint64_t size = 0;
  MSGPACK_DEFINE(object_id, size)
};

/// PUT_REGION: where the allocated object's bytes are: descriptor `fd` of
/// process `pid` (the node), opened as /proc/<pid>/fd/<fd>. The opener checks
/// it reached that very file: same boot (`boot_id`), same `dev` and `ino`.
struct put_region_msg {
  std::string object_id;
  int32_t pid = 0;
  int32_t fd = -1;
  uint64_t dev = 0;
  uint64_t ino = 0;
  std::string boot_id;
  MSGPACK_DEFINE(object_id, pid, fd, dev, ino, boot_id)
};

struct object_id_msg {
  std::string object_id;
  MSGPACK_DEFINE(object_id)
};

struct object_header {
  std::string object_id;
  uint64_t size = 0;
  MSGPACK_DEFINE(object_id, size)
};

struct free_request {
  std::vector<std::string> object_ids;
  MSGPACK_DEFINE(object_ids)
};

struct error_msg {
  uint8_t code = 0; // wire_error
  std::string message;
  MSGPACK_DEFINE(code, message)
};

// control socket
struct ready_msg {
  int32_t pid = 0;
  std::string job_id;
  MSGPACK_DEFINE(pid, job_id)
};

struct adopt_msg {
  uint64_t lease_id = 0;
  uint64_t request_id = 0;
  uint32_t threads = 1;
  std::string node_id;
  std::string address; // the node port, for object_locs of stored results
  MSGPACK_DEFINE(lease_id, request_id, threads, node_id, address)
};

struct lease_done_msg {
  uint64_t lease_id = 0;
  MSGPACK_DEFINE(lease_id)
};

struct store_msg {
  std::string object_id;
  uint64_t size = 0;
  MSGPACK_DEFINE(object_id, size)
};

struct fetch_msg {
  object_loc loc;
  MSGPACK_DEFINE(loc)
};

/// STORE or FETCH of `object_id` failed.
struct object_error {
  std::string object_id;
  uint8_t code = 0; // wire_error
  std::string message;
  MSGPACK_DEFINE(object_id, code, message)
};

// actors (docs/actors.md, "Wire")

/// ATTACH / ATTACHED / ADOPT_CALLER: the worker process `pid` of the node.
struct attach_msg {
  int32_t pid = 0;
  MSGPACK_DEFINE(pid)
};

/// CALL: one method call of an actor hosted by the worker the socket is
/// attached to. Calls of one socket to one actor run in the order they
/// arrive (max_concurrency 1). An actor this process does not host (any
/// more) answers RESULT error "rayd::actor_died".
struct actor_call {
  uint64_t call_id = 0;
  std::string actor_id;
  std::string method; // registered name, "Class::method"
  std::vector<task_arg> args;
  uint32_t attempt = 0;
  MSGPACK_DEFINE(call_id, actor_id, method, args, attempt)
};

/// CREATE_ACTOR: construct `class_name` from `args` (msgpack bytes of each
/// constructor argument) as actor `actor_id`, serving up to
/// `max_concurrency` calls at once.
struct actor_create_msg {
  std::string actor_id;
  std::string class_name;
  std::vector<std::string> args;
  uint32_t max_concurrency = 1;
  MSGPACK_DEFINE(actor_id, class_name, args, max_concurrency)
};

/// ACTOR_CREATED: the constructor ran (ok) or failed (its exception, or
/// "rayd::unknown_class").
struct actor_created_msg {
  std::string actor_id;
  bool ok = false;
  std::string error_type;
  std::string error_message;
  MSGPACK_DEFINE(actor_id, ok, error_type, error_message)
};

struct actor_id_msg {
  std::string actor_id;
  MSGPACK_DEFINE(actor_id)
};

// -- frames ------------------------------------------------------------------

struct frame {
  msg type = msg::error;
  std::string payload;
};

/// Building a frame in place: begin_frame() writes the header with a
/// length to fill in, the caller packs the payload into `buf`, end_frame()
/// sets the length. (encode() below; a hot path reuses one buffer.)
inline void begin_frame(msgpack::sbuffer& buf, msg type) {
  buf.write("\0\0\0\0", 4);
  char t = static_cast<char>(type);
  buf.write(&t, 1);
}
inline void end_frame(msgpack::sbuffer& buf) {
  auto len = static_cast<uint32_t>(buf.size() - 4);
  char* p = buf.data();
  for (int i = 0; i < 4; ++i)
    p[i] = static_cast<char>((len >> (8 * i)) & 0xff);
}

/// A frame with a msgpack payload.
template <class T>
std::string encode(msg type, const T& body) {
  msgpack::sbuffer buf;
  begin_frame(buf, type);
  msgpack::pack(buf, body);
  end_frame(buf);
  return std::string{buf.data(), buf.size()};
}

/// A frame whose payload is `bytes` as they are (CHUNK, or an empty frame).
std::string encode_raw(msg type, std::string_view bytes);

/// Limits for decoding untrusted msgpack: no payload of ours nests deeper or
/// holds more elements than this.
msgpack::unpack_limit untrusted_limits();

/// Decodes a msgpack payload into T. Errors: errc::invalid_argument.
caf::error decode_into(std::string_view payload, msgpack::object_handle& out);

template <class T>
caf::expected<T> decode(std::string_view payload);

/// Splits a byte stream into frames.
class frame_reader {
public:
  /// Appends received bytes.
  void feed(const char* data, std::size_t n);
  /// The next complete frame, or nullopt if more bytes are needed.
  /// Errors: errc::invalid_argument for an oversized or empty frame (the
  /// stream is then unusable).
  caf::expected<std::optional<frame>> next();
  /// Bytes received but not yet returned as frames.
  std::size_t buffered() const {
    return buf_.size() - pos_;
  }

  /// Removes and returns those bytes (for a caller that reads the rest of
  /// the stream itself, e.g. straight into an object's pages).
  std::string take_buffered() {
    std::string out = buf_.substr(pos_);
    buf_.clear();
    pos_ = 0;
    return out;
  }

private:
  std::string buf_;
  std::size_t pos_ = 0;
};

// -- blocking socket helpers ---------------------------------------------------

/// Writes all of `bytes` (retrying on EINTR/partial writes; waits with poll
/// on a non-blocking socket). Errors: errc::unavailable with errno's text.
caf::error write_all(int fd, std::string_view bytes);

/// Reads one frame (blocking). `reader` keeps bytes that arrived beyond it.
/// Errors: errc::unavailable (closed, reset), errc::invalid_argument
/// (malformed), errc::timeout when `timeout_ms` >= 0 elapses first.
caf::expected<frame> read_frame(int fd, frame_reader& reader, int timeout_ms = -1);

/// Sends a frame together with file descriptors (SCM_RIGHTS) on a unix socket.
caf::error send_with_fds(int fd, std::string_view frame_bytes,
                         const std::vector<int>& fds);

/// Receives bytes and any attached descriptors (appended to `fds`). Returns
/// the number of bytes (0 = closed). Errors: errc::unavailable.
caf::expected<std::size_t> recv_with_fds(int fd, char* buf, std::size_t n,
                                         std::deque<int>& fds);

// -- implementation of decode --------------------------------------------------

template <class T>
caf::expected<T> decode(std::string_view payload) {
  msgpack::object_handle oh;
  if (auto err = decode_into(payload, oh))
    return err;
  try {
    T out;
    oh.get().convert(out);
    return out;
  } catch (const std::exception& e) {
    return make_error(errc::invalid_argument,
                      std::string{"malformed message: "} + e.what());
  }
}

} // namespace rayd::wire
