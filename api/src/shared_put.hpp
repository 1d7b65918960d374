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
//   open /proc/<pid>/fd/<fd>, check it is that file, mmap, fill, munmap
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
// Thread-safety: one thread at a time (the caller holds the session's lock).

#include <cstdint>
#include <functional>
#include <string>

#include "common/wire.hpp"

namespace rayd::core {

class shared_put {
public:
  enum class result {
    stored,   // committed: the object is in the node's store
    fallback, // nothing stored, the session is fine: stream the bytes
    broken,   // nothing stored, the session failed: close it, then stream
  };

  /// Stores object `id` of `size` bytes that `fill` writes, through the
  /// authenticated node session `sock` (with its `reader`). Throws
  /// rayd::object_store_full when the node refuses the object, and whatever
  /// `fill` throws (the allocation is aborted first).
  result put(int sock, wire::frame_reader& reader, const std::string& id, uint64_t size,
             const std::function<void(char*)>& fill);

  /// False once the node's memory proved unreachable from here.
  bool usable() const {
    return !off_;
  }

private:
  bool off_ = false;
};

} // namespace rayd::core
