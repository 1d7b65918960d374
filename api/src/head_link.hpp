#pragma once

// The driver's one thread that talks to the head's API after init: it sends
// task events (for `rayctl tasks`) every 500 ms and, when asked, fetches the
// cluster's alive nodes (a node could not be reached: a restarted node comes
// back on a new node port, and the driver must learn where).
//
// Contract: the head's API being down costs nothing but stale `rayctl tasks`
// figures: every call has a short deadline, a failed one drops the
// connection and the next round connects again; events are taken from the
// driver only once the API answers (so they wait, bounded, while it is
// down); nothing here throws into the driver. A node list asked for is
// fetched every 250 ms until the head answers once. stop() (and the
// destructor) sends the last events, best effort, then joins the thread.
//
// Thread rules: owns one thread and the rpc client it connects (a client
// belongs to the thread that made it). The hooks run on that thread without
// any lock of this class held; they take the driver's lock themselves, so
// the driver must not hold it while calling stop().

#include <condition_variable>
#include <functional>
#include <mutex>
#include <optional>
#include <string>
#include <thread>
#include <vector>

#include "node_directory.hpp"
#include "task_events.hpp"

namespace rayd::core {

class head_link {
public:
  struct hooks {
    /// True if task events changed since the last collect().
    std::function<bool()> dirty;
    /// What changed in the task events since the last call, or nullopt.
    std::function<std::optional<task_events::report>()> collect;
    /// The alive nodes of a fresh status.
    std::function<void(std::vector<node_directory::node>)> nodes;
  };

  head_link(std::string api_address, std::string token, std::string job_id, hooks h);
  ~head_link();
  head_link(const head_link&) = delete;
  head_link& operator=(const head_link&) = delete;

  /// Fetch the alive nodes soon (answered through hooks.nodes).
  void want_nodes();
  void stop();

private:
  void loop();

  const std::string address_;
  const std::string token_;
  const std::string job_id_;
  const hooks hooks_;
  std::mutex mtx_;
  std::condition_variable cv_;
  bool quit_ = false;
  bool want_nodes_ = false;
  std::thread thread_;
};

} // namespace rayd::core
