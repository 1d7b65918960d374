#pragma once
// The ops of a remote client's session (docs/client.md) as plain C++: what
// ClientService (schemas/rayd_api.capnp) carries, without Cap'n Proto. The
// gateway converts between the two (schemas/client_service.cpp); the head's
// sessions (api/src/client_session.hpp) and the client's runtime
// (api/src/client_runtime.cpp) work on these.

#include <cstdint>
#include <functional>
#include <map>
#include <memory>
#include <string>
#include <vector>

#include "common/wire.hpp"

namespace rayd::client_ops {

/// One argument of a task or actor call: msgpack bytes or an object id.
struct arg {
  bool is_ref = false;
  std::string value; // msgpack bytes, or the id
};

enum class kind : uint8_t {
  submit,
  put,
  put_stream,
  get,
  wait,
  add_ref,
  release,
  create_actor,
  call_actor,
  get_actor,
  kill_actor,
  unknown, // a member this head does not know (a newer client): answered with an error
};

/// One op. Which fields count depends on `what` (see ClientOp).
struct op {
  uint64_t seq = 0;
  kind what = kind::submit;
  std::string result;        // submit, put, put_stream, call_actor: the new id
  std::string name;          // submit: function; call_actor: method; create/get_actor: name
  std::string target;        // call/kill_actor: the actor; create_actor: class; add_ref/release: id
  std::string ns;            // create/get_actor
  std::vector<arg> args;     // submit, call_actor
  std::vector<std::string> values;        // create_actor: constructor args; put: [bytes]
  std::vector<std::string> ids;           // get, wait
  std::map<std::string, double> resources;        // submit, create_actor
  std::map<std::string, std::string> labels;      // submit, create_actor
  int64_t timeout_ms = -1;   // get, wait: -1 none
  uint64_t count = 0;        // wait: num_returns; put_stream: size
  uint64_t stream = 0;       // put_stream
  int32_t max_retries = 0;   // submit: max_retries; create_actor: max_restarts
  int32_t max_task_retries = 0;
  int32_t max_concurrency = 1;
  bool flag = false;         // create_actor: detached; kill_actor: no_restart
  bool get_if_exists = false;
};

/// A value in a get reply: inline bytes, or a stream to read in chunks.
struct value {
  bool streamed = false;
  std::string bytes;
  uint64_t stream = 0;
  uint64_t size = 0;
};

struct reply {
  uint64_t seq = 0;
  std::string error_kind; // "" = success (see ClientReply)
  std::string error;
  std::string function, remote_type, remote_message, node_id;
  std::vector<value> values;
  std::vector<bool> ready;
  std::string actor_id, class_name;
};

/// What opening or resuming a session answers.
struct opened {
  std::string session_id;
  uint64_t grace_ms = 0;
  uint64_t last_seq = 0;
};

/// A callback with a result or an error message; called once, on any thread.
template <class T>
struct result {
  bool ok = false;
  T value{};
  std::string error;
};
template <class T>
using callback = std::function<void(result<T>)>;

/// The head's side of ClientService, implemented by the session registry
/// (api/src/session_registry.hpp); the gateway calls it from its kj thread.
/// Every method returns at once; the callback may run on another thread.
class host {
public:
  virtual ~host() = default;
  virtual void open(std::string resume_id, std::string job_name, wire::code_ref code,
                    uint64_t grace_ms, callback<opened> done) = 0;
  virtual void exec(const std::string& session, uint64_t ack, std::vector<op> ops,
                    callback<std::vector<reply>> done) = 0;
  virtual void write_chunk(const std::string& session, uint64_t stream, uint64_t offset,
                           std::string data, callback<uint64_t> done) = 0;
  virtual void read_chunk(const std::string& session, uint64_t stream, uint64_t offset,
                          callback<std::string> done) = 0;
  virtual void close(const std::string& session, callback<bool> done) = 0;
};

} // namespace rayd::client_ops
