#pragma once
// The head's remote-client sessions (docs/client.md, "Sessions"): which
// exist, and when one has not heard from its client for longer than its
// grace period. Implements client_ops::host for the gateway.
//
//   open ──► live ──(nothing from the client for the grace period)──► expired
//             ▲  │                                                   (tombstone)
//             └──┘ any call (a connected client sends a heartbeat every second)
//                  — open(resume) from a new connection included
//
// Time since the last message rather than "connection closed": a link cut
// silently (no FIN, no RST) leaves the server's socket open for many minutes,
// but it stops the messages. An expired or closed session leaves a tombstone
// (the last 10,000), so a client that comes back is told why its session is
// gone; an id the head never had (it restarted since) is told that instead.
//
// Threads: every member may be called from any thread (the gateway's kj
// thread calls them); one clock thread expires sessions; sessions are closed
// on a reaper thread, never on the caller's (closing waits for a driver).

#include <chrono>
#include <condition_variable>
#include <cstdint>
#include <deque>
#include <map>
#include <memory>
#include <mutex>
#include <string>
#include <thread>
#include <vector>

#include "common/client_ops.hpp"

namespace rayd::core {

class client_session;

struct session_registry_config {
  std::string api_address; // the head's API as its own drivers reach it
  std::string token;
  std::chrono::milliseconds default_grace{std::chrono::minutes{5}};
  /// Sessions alive at once, at most (each costs the head a driver and
  /// about five threads); an open beyond is refused, saying so.
  std::size_t max_sessions = 1000;
};

class session_registry final : public client_ops::host {
public:
  explicit session_registry(session_registry_config cfg);
  ~session_registry() override; // closes every session

  void open(std::string resume_id, std::string job_name, wire::code_ref code,
            uint64_t grace_ms, client_ops::callback<client_ops::opened> done) override;
  void exec(const std::string& session, uint64_t ack,
            std::vector<client_ops::op> ops,
            client_ops::callback<std::vector<client_ops::reply>> done) override;
  void write_chunk(const std::string& session, uint64_t stream, uint64_t offset,
                   std::string data, client_ops::callback<uint64_t> done) override;
  void read_chunk(const std::string& session, uint64_t stream, uint64_t offset,
                  client_ops::callback<std::string> done) override;
  void close(const std::string& session, client_ops::callback<bool> done) override;

  /// Sessions alive (attached or within their grace).
  std::size_t size() const;

private:
  struct entry {
    std::shared_ptr<client_session> session;
    std::chrono::milliseconds grace{0};
    std::chrono::steady_clock::time_point last_heard{};
  };

  /// The session (and it was heard from now), or null and why not.
  std::shared_ptr<client_session> find(const std::string& id, std::string& why);
  std::string gone_reason(const std::string& id) const; // REQUIRES: mtx_ held
  /// REQUIRES: mtx_ held. Removes it, leaves `reason` and closes it later.
  void retire(const std::string& id, std::string reason);
  void clock_loop();
  void reaper_loop();

  const session_registry_config cfg_;
  mutable std::mutex mtx_;
  std::condition_variable cv_;
  bool stopping_ = false;
  std::map<std::string, entry> sessions_;
  std::map<std::string, std::string> tombstones_;
  std::deque<std::string> tombstone_order_;
  std::deque<std::shared_ptr<client_session>> to_close_;
  std::thread clock_;
  std::thread reaper_;
};

} // namespace rayd::core
