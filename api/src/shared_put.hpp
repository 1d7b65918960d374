#pragma once
// Shared puts, the driver's half (docs/tasks.md, "Shared puts"): a large
// put is serialized once, straight into the object's memory in the home
// node's store, instead of into a buffer that is then streamed over TCP
// and copied again by the node.
//
//   driver                                  node (task server)
//   PUT_ALLOC{id, size}          ──────▶    store.begin(): a memfd (pooled,
//                                           warm pages), pending, not readable
//                                ◀──────    PUT_REGION{pid, fd, dev, ino, boot}
//   open /proc/<pid>/fd/<fd>, check it is that file, mmap (or reuse the
//   mapping of that file kept from an earlier put), fill
//   PUT_COMMIT{id}               ──────▶    store.commit(): readable
//                                ◀──────    PUT_OK (or ERROR store_full)
//   (PUT_ABORT{id} instead if anything failed here; no reply)
//
// The kernel lets a process open another's /proc/<pid>/fd/<n> only with
// ptrace rights over it (same user, or root): the OS, not this protocol,
// decides who may write there. When the open fails (another user, another
// host, another PID namespace) or reaches a different file (checked by
// boot id, device and inode: a pid of a remote node may name some local
// process), the put is aborted and falls back to the chunked stream, and
// this client stops trying for the rest of its life.
//
// Mappings are kept for reuse (at most `max_mappings`, least recently used
// dropped): the node recycles the memfds of freed objects, and filling the
// page tables of a fresh mapping, then tearing them down, costs about as
// much as the copy itself (4 KiB pages). The value is written only inside
// put(), into the region the node just allocated for it; when the node
// frees a memfd for good it punches its pages out first, so a kept mapping
// never holds memory the store no longer counts.
//
// Thread-safety: put() one thread at a time (the caller holds the
// session's lock); usable() from any thread.

#include <atomic>
#include <cstdint>
#include <functional>
#include <string>
#include <vector>

#include "common/wire.hpp"

namespace rayd::core {

class shared_put {
public:
  enum class result {
    stored,   // committed: the object is in the node's store
    fallback, // nothing stored, the session is fine: stream the bytes
    broken,   // nothing stored, the session failed: close it, then stream
  };

  static constexpr std::size_t max_mappings = 8;

  shared_put() = default;
  ~shared_put();
  shared_put(const shared_put&) = delete;
  shared_put& operator=(const shared_put&) = delete;

  /// Stores object `id` of `size` bytes that `fill` writes, through the
  /// authenticated node session `sock` (with its `reader`). `frees_first`:
  /// objects of that node to FREE before allocating (the driver batches
  /// FREEs; a put of the size of one just dropped would otherwise miss its
  /// warm memfd in the node's pool). Throws rayd::object_store_full when the
  /// node refuses the object, and whatever `fill` throws (the allocation is
  /// aborted first).
  result put(int sock, wire::frame_reader& reader, const std::string& id, uint64_t size,
             const std::function<void(char*)>& fill,
             std::vector<std::string> frees_first = {});

  /// False once the node's memory proved unreachable from here. The one
  /// member any thread may call.
  bool usable() const {
    return !off_.load(std::memory_order_relaxed);
  }

  /// Mappings kept (for tests).
  std::size_t mappings() const {
    return maps_.size();
  }

private:
  struct mapping {
    uint64_t dev = 0;
    uint64_t ino = 0;
    char* addr = nullptr;
    uint64_t len = 0;
    uint64_t used = 0; // `uses_` at the last use
  };

  /// The start of a writable mapping of `size` bytes of the region's file,
  /// kept or new; nullptr if the region cannot be opened from here (sets
  /// off_ when it never will).
  char* map_region(const wire::put_region_msg& region, uint64_t size);

  std::atomic<bool> off_{false};
  std::vector<mapping> maps_;
  uint64_t uses_ = 0;
};

} // namespace rayd::core
