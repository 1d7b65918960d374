#pragma once
// A node's object store (docs/tasks.md): immutable objects by id, each held
// in a memfd while the store is within its memory bound, else in a file
// under the spill directory. Objects are handed out as read-only file
// descriptors, so workers and the network sender read them without copies.
//
// Thread-safety: every member may be called from any thread.

#include <cstdint>
#include <map>
#include <mutex>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include <caf/error.hpp>
#include <caf/expected.hpp>

namespace rayd::node {

struct object_store_options {
  /// Bytes kept in memory; beyond it new objects are spilled to disk.
  /// Default 2 GiB (rayd's --object-store-memory sets it).
  uint64_t memory_bytes = uint64_t{2} << 30;
  /// Where spilled objects go. REQUIRED.
  std::string spill_dir;
};

class object_store {
public:
  explicit object_store(object_store_options opts);
  ~object_store();

  object_store(const object_store&) = delete;
  object_store& operator=(const object_store&) = delete;

  /// Takes ownership of `fd` (a memfd holding `size` bytes of the object).
  /// When the memory bound would be exceeded the bytes are copied to a spill
  /// file instead. Errors: errc::storage_error ("object store full: ...")
  /// when neither memory nor disk can take it. Putting an id twice keeps the
  /// first copy (objects are immutable) and closes `fd`.
  caf::error put_fd(const std::string& id, int fd, uint64_t size,
                    const std::string& job_id);

  /// A writable destination for `size` bytes (memfd or spill file): write
  /// into it, then commit() or abort(). Errors as for put_fd.
  struct pending {
    std::string id;
    int fd = -1;
    uint64_t size = 0;
    std::string job_id;
    std::string spill_path; // empty: in memory
  };
  caf::expected<pending> begin(const std::string& id, uint64_t size,
                               const std::string& job_id);
  caf::error commit(pending p);
  void abort(pending p);

  /// A new read-only descriptor of the object and its size, or nullopt.
  /// The caller closes it.
  std::optional<std::pair<int, uint64_t>> open(const std::string& id);

  bool contains(const std::string& id);

  void free(const std::string& id);

  /// Frees every object of a job (its driver disconnected).
  void free_job(const std::string& job_id);

  uint64_t memory_used();
  uint64_t spilled_bytes();
  uint64_t capacity() const {
    return opts_.memory_bytes;
  }
  std::size_t count();

private:
  struct entry {
    int fd = -1;
    uint64_t size = 0;
    std::string job_id;
    std::string spill_path;
  };

  void drop(entry& e);

  /// Closes pooled descriptors until `need` more bytes fit in memory.
  /// REQUIRES: mtx_ held.
  void trim_pool(uint64_t need);

  object_store_options opts_;
  std::mutex mtx_;
  std::map<std::string, entry> objects_;
  uint64_t memory_used_ = 0;
  uint64_t reserved_ = 0; // begun, not yet committed, in memory
  uint64_t spilled_ = 0;
  /// Freed in-memory objects' memfds (size → fd), reused by begin(): their
  /// pages exist already, so the next large object is written at memory
  /// speed instead of paying a page fault and a kernel page clear per 4 KiB.
  /// Counted against the memory bound; evicted first when space is needed.
  std::multimap<uint64_t, int> pool_;
  uint64_t pooled_ = 0;
};

} // namespace rayd::node
