#include "api/src/shared_put.hpp"

#include <fcntl.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <unistd.h>

#include <algorithm>
#include <fstream>

#include "common/util.hpp"
#include "rayd/errors.hpp"

namespace rayd::core {

namespace {

std::string refusal(const wire::frame& f) {
  auto e = wire::decode<wire::error_msg>(f.payload);
  return e ? e->message : std::string{"rayd: put refused"};
}

} // namespace

shared_put::~shared_put() {
  for (auto& m : maps_)
    ::munmap(m.addr, m.len);
}

char* shared_put::map_region(const wire::put_region_msg& region, uint64_t size) {
  ++uses_;
  for (auto i = maps_.begin(); i != maps_.end(); ++i) {
    if (i->dev != region.dev || i->ino != region.ino)
      continue;
    if (i->len >= size) {
      i->used = uses_;
      return i->addr;
    }
    ::munmap(i->addr, i->len); // the file grew: mapped anew below
    maps_.erase(i);
    break;
  }
  // Same kernel, and the very file the node allocated: a pid from another
  // host may name an unrelated local process.
  if (boot_id().empty() || region.boot_id != boot_id()) {
    off_ = true;
    return nullptr;
  }
  auto path = "/proc/" + std::to_string(region.pid) + "/fd/" + std::to_string(region.fd);
  int fd = ::open(path.c_str(), O_RDWR | O_CLOEXEC | O_NONBLOCK | O_NOCTTY);
  if (fd < 0) {
    off_ = true; // no ptrace rights over the node (another user): stream instead
    return nullptr;
  }
  struct stat st{};
  if (::fstat(fd, &st) != 0 || !S_ISREG(st.st_mode)
      || static_cast<uint64_t>(st.st_dev) != region.dev
      || static_cast<uint64_t>(st.st_ino) != region.ino
      || static_cast<uint64_t>(st.st_size) != size) {
    ::close(fd);
    off_ = true;
    return nullptr;
  }
  // MAP_POPULATE: the page tables are filled in one go rather than by one
  // fault per 4 KiB page while the value is written.
  void* addr = ::mmap(nullptr, size, PROT_READ | PROT_WRITE, MAP_SHARED | MAP_POPULATE, fd, 0);
  ::close(fd);
  if (addr == MAP_FAILED)
    return nullptr;
  if (maps_.size() >= max_mappings) {
    auto lru = std::min_element(maps_.begin(), maps_.end(),
                                [](const mapping& a, const mapping& b) { return a.used < b.used; });
    ::munmap(lru->addr, lru->len);
    maps_.erase(lru);
  }
  maps_.push_back(mapping{region.dev, region.ino, static_cast<char*>(addr), size, uses_});
  return static_cast<char*>(addr);
}

shared_put::result shared_put::put(int sock, wire::frame_reader& reader, const std::string& id,
                                   uint64_t size, const std::function<void(char*)>& fill,
                                   std::vector<std::string> frees_first) {
  if (off_ || size == 0)
    return result::fallback;
  if (!frees_first.empty()
      && wire::write_all(sock, wire::encode(wire::msg::free,
                                            wire::free_request{std::move(frees_first)})))
    return result::broken;
  if (wire::write_all(sock, wire::encode(wire::msg::put_alloc, wire::put_alloc_msg{id, size})))
    return result::broken;
  auto r = wire::read_frame(sock, reader);
  if (!r)
    return result::broken;
  if (r->type == wire::msg::error) {
    auto e = wire::decode<wire::error_msg>(r->payload);
    if (e && e->code == static_cast<uint8_t>(wire::wire_error::store_full))
      throw object_store_full(e->message);
    off_ = true; // a node that does not offer shared puts (it closes the session)
    return result::broken;
  }
  auto region = r->type == wire::msg::put_region ? wire::decode<wire::put_region_msg>(r->payload)
                                                 : caf::expected<wire::put_region_msg>{caf::error{}};
  if (!region || region->object_id != id)
    return result::broken;
  auto abort = [sock, &id] {
    return wire::write_all(sock, wire::encode(wire::msg::put_abort, wire::object_id_msg{id}))
             ? result::broken
             : result::fallback;
  };
  char* dst = map_region(*region, size);
  if (dst == nullptr)
    return abort();
  try {
    fill(dst);
  } catch (...) {
    abort();
    throw;
  }
  if (wire::write_all(sock, wire::encode(wire::msg::put_commit, wire::object_id_msg{id})))
    return result::broken;
  auto ok = wire::read_frame(sock, reader);
  if (!ok)
    return result::broken;
  if (ok->type != wire::msg::put_ok)
    throw object_store_full(refusal(*ok));
  return result::stored;
}

} // namespace rayd::core
