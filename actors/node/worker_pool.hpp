#pragma once
// The bookkeeping of a node's worker processes (docs/tasks.md, "Worker
// processes"): one per job and code, which leases each serves, the sockets
// waiting for it to be ready, and when an idle one is told to go. Starting
// the process is worker_process.hpp's; sending on its control socket is the
// task server's. Plain state with time passed in, unit-tested without
// processes.
//
// A worker process's life:
//
//   first lease of a (job, code) ──► FETCHING the code (helper thread)
//      │ fetched and spawned                 │ fetch or spawn fails
//      ▼                                      ▼
//   STARTING (pid, control socket;       FAILED: its waiting leases are
//      │ leases wait in `waiting`)         refused (unavailable) ──► removed
//      │ READY on the control socket
//      ▼
//   SERVING ── leases are handed over at once (ADOPT + the socket); actors
//      │       are created (CREATE_ACTOR; sent when READY came, until then
//      │       kept in `backlog`)
//      │ no lease and no actor for the idle timeout
//      ▼
//   EXITING ── EXIT sent; it is no longer found for its key, so the next
//      │       lease of the job starts a new process
//      ▼ control socket EOF (from any state above) → waitpid
//   REAPED: its leases are released ──► removed
//
// Threads: the task server's loop thread only.

#include <sys/types.h>

#include <chrono>
#include <cstdint>
#include <deque>
#include <map>
#include <memory>
#include <set>
#include <string>
#include <vector>

#include "common/wire.hpp"

namespace rayd::node {

/// A granted lease whose socket waits for its worker to be ready.
struct pending_adopt {
  int fd = -1; // the driver's socket (owned until handed over)
  uint64_t lease_id = 0;
  uint64_t request_id = 0;
  uint32_t threads = 1;
};

struct worker_record {
  using clock_type = std::chrono::steady_clock;
  enum state_t { fetching, starting, serving, exiting };

  uint64_t id = 0;
  std::string key; // job id + code hashes
  std::string job_id;
  state_t state = fetching;
  pid_t pid = -1;
  int ctrl = -1;               // control socket (owned)
  wire::frame_reader reader;   // frames on `ctrl`
  std::deque<int> fds;         // descriptors received on `ctrl`, not yet used (owned)
  std::set<uint64_t> leases;   // leases it serves
  std::vector<pending_adopt> waiting; // until SERVING
  std::set<std::string> actors;        // actors it hosts or is creating
  std::vector<std::string> backlog;    // control frames to send once SERVING
  clock_type::time_point idle_since{};
};

class worker_pool {
public:
  using clock_type = worker_record::clock_type;

  worker_pool() = default;
  worker_pool(const worker_pool&) = delete;
  worker_pool& operator=(const worker_pool&) = delete;
  /// Closes the descriptors of every record still held.
  ~worker_pool();

  /// The worker for `key` that is not exiting; a new one in FETCHING when
  /// there is none (`created` tells which).
  worker_record& for_key(const std::string& key, const std::string& job_id,
                         clock_type::time_point now, bool& created);

  worker_record* find(uint64_t id);

  /// FETCHING → STARTING: the process runs (the pool owns `ctrl` from now).
  void started(worker_record& w, pid_t pid, int ctrl);

  /// STARTING → SERVING; returns the leases that waited for it (the caller
  /// hands them over now).
  std::vector<pending_adopt> ready(worker_record& w);

  /// True if `id` is SERVING (only such leases may be asked back).
  bool serving(uint64_t id) const;

  /// Attaches a granted lease; handed over at once when SERVING (returns
  /// true), else kept in `waiting` (returns false).
  bool attach(worker_record& w, const pending_adopt& pa);

  /// The lease ended; a worker left without leases starts its idle time.
  void detach(uint64_t worker_id, uint64_t lease_id, clock_type::time_point now);

  /// Actor `actor_id` is hosted by (or being created in) worker `w`: the
  /// worker does not retire while it hosts actors.
  void add_actor(worker_record& w, const std::string& actor_id);

  /// The actor is gone; a worker left without leases and actors starts its
  /// idle time.
  void remove_actor(uint64_t worker_id, const std::string& actor_id,
                    clock_type::time_point now);

  /// The SERVING worker with process id `pid`, or nullptr.
  worker_record* find_pid(pid_t pid);

  /// SERVING workers without leases, actors or waiting sockets for longer than
  /// `timeout` become EXITING (and are no longer found for their key);
  /// returns them (the caller sends EXIT).
  std::vector<uint64_t> retire_idle(clock_type::time_point now,
                                    std::chrono::milliseconds timeout);

  /// Removes a record and closes what it owns (control socket, received
  /// descriptors, waiting sockets). The caller stops watching `ctrl` first
  /// and answers waiting sockets it wants answered.
  void remove(uint64_t id);

  std::size_t size() const {
    return workers_.size();
  }

  const std::map<uint64_t, std::unique_ptr<worker_record>>& all() const {
    return workers_;
  }

private:
  std::map<uint64_t, std::unique_ptr<worker_record>> workers_;
  std::map<std::string, uint64_t> by_key_;
  uint64_t next_id_ = 1;
};

} // namespace rayd::node
