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
  std::string address;
  /// The cluster token. Default: $RAYD_TOKEN, $RAYD_TOKEN_FILE, else the
  /// token of the local head session serving `address`.
  std::string token;
  std::string token_file;
  /// Task libraries (.so files, or directories holding them) shipped to the
  /// cluster and loaded by every worker of this job. Default: none (the
  /// driver's own executable carries its RAYD_REMOTE functions).
  std::vector<std::string> code_search_path;
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
