#pragma once
// The untyped core under rayd's C++ API: what the typed front end
// (rayd/rayd.hpp) calls. One runtime per process, created by rayd::init().
// Users need not include this header.
//
// Thread-safety: every member of runtime may be called from any thread.

#include <chrono>
#include <cstddef>
#include <functional>
#include <map>
#include <optional>
#include <string>
#include <vector>

namespace rayd {

/// Options of rayd::init(). Every field states its default.
struct init_options {
  /// The head's API address HOST:PORT. Default: $RAYD_ADDRESS, else the
  /// cluster of this host's latest session, else an embedded local cluster.
  /// `rayd://HOST:PORT` makes this program a remote client: every call goes
  /// through the head's API port and nothing else (docs/client.md).
  std::string address;
  /// Remote client: how long the head keeps this client's session (its
  /// objects, actors, unanswered calls) while the connection is down; the
  /// client reconnects within it and loses nothing. Default (0): the head's
  /// --client-reconnect-grace, 5 minutes unless set.
  std::chrono::milliseconds client_reconnect_grace{0};
  /// Remote client: a PEM file of the CA that signed the head's TLS
  /// certificate. Default: $RAYD_TLS_CA; unset, the API port must be plain.
  std::string tls_ca;
  /// The cluster token. Default: $RAYD_TOKEN, $RAYD_TOKEN_FILE, else the
  /// token of the local head session serving `address`.
  std::string token;
  std::string token_file;
  /// Task libraries (.so files, or directories holding them) shipped to the
  /// cluster and loaded by every worker of this job. Default: none (the
  /// driver's own executable carries its RAYD_REMOTE functions).
  std::vector<std::string> code_search_path;
  /// The program whose worker processes run this job's tasks and actors.
  /// Default: this process's own executable. (`rayctl --binary PROGRAM`
  /// runs a program's RAYD_REMOTE functions and RAYD_ACTOR classes this way.)
  std::string executable;
  /// Start an embedded local cluster (a rayd head as a child process, for
  /// the program's lifetime) when no cluster is found. Default: true.
  bool embedded_if_absent = true;
  /// CPUs of the embedded cluster's node. Default: detected cores.
  int embedded_num_cpus = -1;
  /// put() keeps values up to this many bytes in the driver (they travel
  /// inline with the tasks that use them); larger ones go to the node's
  /// shared object store, where every process on the node can read them.
  /// 0 sends every put to the store, as Ray's ray.put does. Default 100 KiB.
  std::size_t max_inline_put_bytes = 100 * 1024;
};

namespace core {

using object_id = std::string;

struct task_options {
  /// Resources each run reserves. Default: {CPU: 1}.
  std::map<std::string, double> resources{{"CPU", 1.0}};
  /// Re-runs after a worker or node died under the task. Default 3.
  int max_retries = 3;
  /// Node labels a node must have. Default: none.
  std::map<std::string, std::string> label_selector;
};

/// One argument of a task: msgpack bytes, or a reference to an object.
struct arg {
  bool is_ref = false;
  std::string value;
  object_id ref;
};

/// Options of an actor (rayd::actor<T>(...) builder; docs/actors.md).
struct actor_options {
  std::string name;          // "" = anonymous
  std::string ray_namespace; // "" = "default"
  bool get_if_exists = false;
  bool detached = false;     // outlives its creator's job
  int max_restarts = 0;      // -1 = unlimited
  int max_task_retries = 0;  // -1 = unlimited
  int max_concurrency = 1;
  /// Resources it holds while alive. Default: none (like Ray's actors,
  /// which need a CPU to be placed but hold none while they run).
  std::map<std::string, double> resources;
  std::map<std::string, std::string> label_selector;
};

using actor_id = std::string;

/// A live actor found by name.
struct actor_found {
  actor_id id;
  std::string class_name;
};

class runtime {
public:
  virtual ~runtime() = default;

  /// Submits `function` (a RAYD_REMOTE name) and returns its result's id at
  /// once, carrying one reference (release() it when done); the task runs
  /// when its reference arguments are ready.
  virtual object_id submit(const std::string& function, std::vector<arg> args,
                           const task_options& opts) = 0;

  /// Stores msgpack bytes; returns their id, carrying one reference.
  virtual object_id put(std::string bytes) = 0;

  /// Stores a value whose msgpack bytes number `size`: `fill` writes exactly
  /// them into the destination it is given (it may throw; then nothing is
  /// stored). A runtime may hand it shared memory, so the value is
  /// serialized once, in place. Returns the id, carrying one reference.
  /// Default: into a string, then put().
  virtual object_id put_packed(std::size_t size, const std::function<void(char*)>& fill) {
    std::string bytes(size, '\0');
    fill(bytes.data());
    return put(std::move(bytes));
  }

  /// The msgpack bytes of each object, in order, once all are ready.
  /// Throws rayd::task_error (the task threw or could not be scheduled),
  /// rayd::object_lost, rayd::get_timeout (after `timeout`).
  virtual std::vector<std::string>
  get(const std::vector<object_id>& ids,
      std::optional<std::chrono::milliseconds> timeout) = 0;

  /// Which of `ids` are ready once `num_returns` are or `timeout` passed.
  virtual std::vector<bool> wait(const std::vector<object_id>& ids,
                                 std::size_t num_returns,
                                 std::optional<std::chrono::milliseconds> timeout)
    = 0;

  /// Reference counting by the typed object_ref: an object is freed when
  /// the last reference is gone and no pending task needs it.
  virtual void add_ref(const object_id& id) = 0;
  virtual void release(const object_id& id) = 0;

  // -- actors (docs/actors.md) --------------------------------------------------

  /// Creates an actor of `class_name` (a RAYD_ACTOR name) from the msgpack
  /// bytes of its constructor's arguments. An anonymous actor's id is
  /// returned at once (the create travels in the background; if it fails,
  /// calls fail with rayd::actor_died_error saying why). A named one
  /// returns after the GCS recorded it: throws rayd::error when a live
  /// actor has that name in that namespace (unless get_if_exists, which
  /// returns that actor's id).
  virtual actor_id create_actor(const std::string& class_name, std::vector<std::string> args,
                                const actor_options& opts) = 0;

  /// Calls `method` ("Class::method") of the actor; returns its result's id
  /// at once, carrying one reference, like submit(). Calls of this process
  /// to one actor run in the order they were made.
  virtual object_id call_actor(const actor_id& actor, const std::string& method,
                               std::vector<arg> args) = 0;

  /// The live actor named `name` in `ns` ("" = "default"). Throws
  /// rayd::error when there is none.
  virtual actor_found get_actor(const std::string& name, const std::string& ns) = 0;

  /// Kills the actor; with `no_restart` false it is restarted while its
  /// max_restarts allow. Throws rayd::error for an unknown actor.
  virtual void kill_actor(const actor_id& actor, bool no_restart) = 0;
};

/// Starts the runtime (see rayd::init). In a worker process (started by a
/// node with RAYD_WORKER_FD set) it serves tasks instead and never returns.
void start(const init_options& opts);

/// The runtime. Throws std::logic_error before start() / after stop().
runtime& current();

/// Whether start() ran and stop() did not.
bool running();

/// Stops the runtime: releases leases, frees this job's objects, stops an
/// embedded cluster.
void stop();

/// Worker mode: serve tasks on the control socket `control_fd` until the
/// node says exit. Never returns. (api/src/worker.cpp)
[[noreturn]] void run_worker(int control_fd);

} // namespace core
} // namespace rayd
