#pragma once

// A driver's GET / PUT / FREE of stored objects on nodes (docs/tasks.md,
// "Objects"): one authenticated connection per node, opened on first use and
// kept (a node frees what a job left there when the job's driver closes its
// connection to it), used one request at a time.
//
// Contract: put() answers nullopt when the node cannot be reached (the caller
// tries another node) and throws rayd::object_store_full when the node
// refuses or the transfer breaks; a connection found broken on reuse (its
// node restarted) is opened again once before that. get() throws
// rayd::object_lost when the object or its node is gone. free() and open()
// are best effort: a node that is gone took the objects with it.
//
// Thread rules: thread-safe. Each node's connection has its own mutex; calls
// to different nodes run in parallel. Never called under the driver's state
// mutex (these calls block on the network).

#include <functional>
#include <map>
#include <memory>
#include <mutex>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "api/src/shared_put.hpp"
#include "common/wire.hpp"

namespace rayd::core {

class object_client {
public:
  object_client(std::string token, std::string job_id);
  ~object_client();
  object_client(const object_client&) = delete;
  object_client& operator=(const object_client&) = delete;

  std::optional<wire::object_loc> put(const std::string& id, const std::string& bytes,
                                      const std::string& address);
  /// A value of `size` bytes that `fill` writes straight into the store of
  /// the node at `address` when that node is on this host (shared_put.hpp);
  /// `frees_first` are FREEd there before (so the node's pool has their
  /// warm memfds back). nullopt when that path cannot be used (node on
  /// another host, unreachable, session broken): the caller streams the
  /// value with put(). Throws what shared_put::put throws.
  std::optional<wire::object_loc> put_in_place(const std::string& id, std::size_t size,
                                               const std::function<void(char*)>& fill,
                                               const std::string& address,
                                               std::vector<std::string> frees_first);
  /// Whether put_in_place may still succeed from this process.
  bool in_place_usable() const {
    return shared_.usable();
  }
  std::string get(const wire::object_loc& loc);
  /// Like get(), but hands the bytes to `sink` chunk by chunk as they
  /// arrive, with the object's total size (memory stays one chunk). If
  /// `sink` throws, the connection is dropped and the exception passes on.
  void get_to(const wire::object_loc& loc,
              const std::function<void(std::size_t, std::string_view)>& sink);
  void free(const std::string& address, std::vector<std::string> ids);
  /// Opens the connection to the node at `address` if there is none.
  void open(const std::string& address);

private:
  struct session {
    int fd = -1;
    wire::frame_reader reader;
    std::mutex mtx;
  };

  session& session_for(const std::string& address);
  /// REQUIRES: s.mtx held. Connects and authenticates if needed; throws
  /// object_lost if the node cannot be reached, connection_error if it
  /// refuses this driver.
  void ensure(session& s, const std::string& address);
  static void drop(session& s);

  const std::string token_;
  const std::string job_id_;
  std::mutex shared_mtx_; // one put_in_place at a time (shared_ keeps mappings)
  shared_put shared_;
  std::mutex mtx_; // guards sessions_ (the map, not a session)
  std::map<std::string, std::unique_ptr<session>> sessions_;
};

} // namespace rayd::core
