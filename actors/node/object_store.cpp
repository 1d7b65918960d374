#include "actors/node/object_store.hpp"

#include <fcntl.h>
#include <sys/mman.h>
#include <sys/sendfile.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cerrno>
#include <cstring>
#include <filesystem>

#include "common/error.hpp"

namespace rayd::node {

namespace {

/// Objects smaller than this are not worth pooling.
constexpr uint64_t pool_min_bytes = uint64_t{1} << 20;

caf::error full(const std::string& why) {
  return make_error(errc::storage_error, "object store full: " + why);
}

/// Closes an object's descriptor after freeing its storage: a driver on
/// this host may still map it (shared puts keep their mappings for reuse,
/// api/src/shared_put.hpp), and its pages must not outlive the object.
void release_fd(int fd) {
  if (fd < 0)
    return;
  struct stat st{};
  if (::fstat(fd, &st) == 0 && S_ISREG(st.st_mode) && st.st_size > 0)
    (void) ::fallocate(fd, FALLOC_FL_PUNCH_HOLE | FALLOC_FL_KEEP_SIZE, 0, st.st_size);
  ::close(fd);
}

/// Copies `size` bytes from `in` (offset 0) to `out`.
bool copy_fd(int in, int out, uint64_t size) {
  off_t off = 0;
  while (static_cast<uint64_t>(off) < size) {
    auto n = ::sendfile(out, in, &off, static_cast<size_t>(size - static_cast<uint64_t>(off)));
    if (n <= 0 && errno != EINTR)
      return false;
  }
  return true;
}

} // namespace

object_store::object_store(object_store_options opts) : opts_(std::move(opts)) {
  std::error_code ec;
  std::filesystem::create_directories(opts_.spill_dir, ec);
}

object_store::~object_store() {
  std::lock_guard<std::mutex> guard{mtx_};
  for (auto& [_, e] : objects_)
    drop(e);
  for (auto& [_, fd] : pool_)
    release_fd(fd);
}

void object_store::drop(entry& e) {
  if (!e.spill_path.empty()) {
    release_fd(e.fd);
    ::unlink(e.spill_path.c_str());
    spilled_ -= e.size;
  } else {
    memory_used_ -= e.size;
    // Keep large memfds for reuse while the pool stays within a quarter of
    // the bound; a new object overwrites every byte before anyone reads it.
    if (e.fd >= 0 && e.size >= pool_min_bytes
        && pooled_ + e.size <= opts_.memory_bytes / 4) {
      pool_.emplace(e.size, e.fd);
      pooled_ += e.size;
    } else {
      release_fd(e.fd);
    }
  }
  e.fd = -1;
}

void object_store::trim_pool(uint64_t need) {
  while (!pool_.empty() && memory_used_ + reserved_ + pooled_ + need > opts_.memory_bytes) {
    auto last = std::prev(pool_.end());
    release_fd(last->second);
    pooled_ -= last->first;
    pool_.erase(last);
  }
}

caf::expected<object_store::pending>
object_store::begin(const std::string& id, uint64_t size, const std::string& job_id) {
  pending p;
  p.id = id;
  p.size = size;
  p.job_id = job_id;
  {
    std::lock_guard<std::mutex> guard{mtx_};
    // A pooled memfd of about this size (at most twice it) is reused.
    auto reuse = size >= pool_min_bytes ? pool_.lower_bound(size) : pool_.end();
    if (reuse != pool_.end() && reuse->first <= 2 * size) {
      p.fd = reuse->second;
      pooled_ -= reuse->first;
      pool_.erase(reuse);
    }
    trim_pool(size);
    if (memory_used_ + reserved_ + pooled_ + size <= opts_.memory_bytes) {
      reserved_ += size;
    } else {
      p.spill_path = opts_.spill_dir + "/" + id;
      release_fd(p.fd);
      p.fd = -1;
    }
  }
  if (p.spill_path.empty() && p.fd >= 0) {
    if (::ftruncate(p.fd, static_cast<off_t>(size)) == 0)
      return p;
    release_fd(p.fd); // fall back to a fresh one
    p.fd = -1;
  }
  if (p.spill_path.empty()) {
    p.fd = ::memfd_create("rayd-object", MFD_CLOEXEC);
    if (p.fd < 0 || ::ftruncate(p.fd, static_cast<off_t>(size)) != 0) {
      auto err = std::string{std::strerror(errno)};
      if (p.fd >= 0)
        ::close(p.fd);
      std::lock_guard<std::mutex> guard{mtx_};
      reserved_ -= size;
      return full("cannot allocate " + std::to_string(size) + " bytes in memory: " + err);
    }
    return p;
  }
  p.fd = ::open(p.spill_path.c_str(), O_RDWR | O_CREAT | O_TRUNC | O_CLOEXEC, 0600);
  if (p.fd < 0)
    return full("cannot create spill file " + p.spill_path + ": " + std::strerror(errno));
  // Reserve the disk space now, so a full disk fails here, not halfway.
  if (int rc = ::posix_fallocate(p.fd, 0, static_cast<off_t>(size)); rc != 0) {
    ::close(p.fd);
    ::unlink(p.spill_path.c_str());
    return full("cannot spill " + std::to_string(size) + " bytes to " + opts_.spill_dir
                + ": " + std::strerror(rc));
  }
  return p;
}

caf::error object_store::commit(pending p) {
  std::lock_guard<std::mutex> guard{mtx_};
  if (p.spill_path.empty())
    reserved_ -= p.size;
  if (objects_.count(p.id)) {
    entry dup{p.fd, p.size, p.job_id, p.spill_path};
    if (p.spill_path.empty())
      memory_used_ += p.size; // drop() subtracts it again
    else
      spilled_ += p.size;
    drop(dup);
    return caf::none;
  }
  if (p.spill_path.empty())
    memory_used_ += p.size;
  else
    spilled_ += p.size;
  objects_[p.id] = entry{p.fd, p.size, p.job_id, p.spill_path};
  return caf::none;
}

void object_store::abort(pending p) {
  release_fd(p.fd);
  if (!p.spill_path.empty())
    ::unlink(p.spill_path.c_str());
  std::lock_guard<std::mutex> guard{mtx_};
  if (p.spill_path.empty())
    reserved_ -= p.size;
}

caf::error object_store::put_fd(const std::string& id, int fd, uint64_t size,
                                const std::string& job_id) {
  {
    std::lock_guard<std::mutex> guard{mtx_};
    if (objects_.count(id)) {
      ::close(fd);
      return caf::none;
    }
    trim_pool(size);
    if (memory_used_ + reserved_ + pooled_ + size <= opts_.memory_bytes) {
      memory_used_ += size;
      objects_[id] = entry{fd, size, job_id, ""};
      return caf::none;
    }
  }
  // Over the memory bound: this object goes to disk.
  auto p = begin(id, size, job_id);
  if (!p) {
    ::close(fd);
    return p.error();
  }
  bool ok = copy_fd(fd, p->fd, size);
  ::close(fd);
  if (!ok) {
    auto err = full("cannot write spill file " + p->spill_path + ": " + std::strerror(errno));
    abort(*p);
    return err;
  }
  return commit(*p);
}

std::optional<std::pair<int, uint64_t>> object_store::open(const std::string& id) {
  std::lock_guard<std::mutex> guard{mtx_};
  auto i = objects_.find(id);
  if (i == objects_.end())
    return std::nullopt;
  int fd = -1;
  if (!i->second.spill_path.empty())
    fd = ::open(i->second.spill_path.c_str(), O_RDONLY | O_CLOEXEC);
  else
    fd = ::open(("/proc/self/fd/" + std::to_string(i->second.fd)).c_str(),
                O_RDONLY | O_CLOEXEC);
  if (fd < 0)
    return std::nullopt;
  return std::make_pair(fd, i->second.size);
}

bool object_store::contains(const std::string& id) {
  std::lock_guard<std::mutex> guard{mtx_};
  return objects_.count(id) > 0;
}

void object_store::free(const std::string& id) {
  std::lock_guard<std::mutex> guard{mtx_};
  auto i = objects_.find(id);
  if (i == objects_.end())
    return;
  drop(i->second);
  objects_.erase(i);
}

void object_store::free_job(const std::string& job_id) {
  std::lock_guard<std::mutex> guard{mtx_};
  for (auto i = objects_.begin(); i != objects_.end();) {
    if (i->second.job_id == job_id) {
      drop(i->second);
      i = objects_.erase(i);
    } else {
      ++i;
    }
  }
}

uint64_t object_store::memory_used() {
  std::lock_guard<std::mutex> guard{mtx_};
  return memory_used_;
}

uint64_t object_store::spilled_bytes() {
  std::lock_guard<std::mutex> guard{mtx_};
  return spilled_;
}

std::size_t object_store::count() {
  std::lock_guard<std::mutex> guard{mtx_};
  return objects_.size();
}

} // namespace rayd::node
