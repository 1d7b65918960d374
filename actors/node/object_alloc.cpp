#include "actors/node/object_alloc.hpp"

#include <sys/stat.h>
#include <unistd.h>

#include <cerrno>
#include <cstring>
#include <fstream>

#include "common/error.hpp"
#include "common/util.hpp"

namespace rayd::node {

namespace {

caf::error invalid(const std::string& why) {
  return make_error(errc::invalid_argument, why);
}

} // namespace

put_allocations::put_allocations(object_store& store) : store_(store) {
}

put_allocations::~put_allocations() {
  for (auto& [_, p] : pending_)
    store_.abort(p);
}

caf::expected<wire::put_region_msg>
put_allocations::allocate(uint64_t conn, const std::string& id, uint64_t size,
                          const std::string& job_id) {
  if (id.empty() || id.size() > 256 || id.find('/') != std::string::npos)
    return invalid("PUT_ALLOC: bad object id");
  if (size == 0)
    return invalid("PUT_ALLOC: empty object");
  if (size > (uint64_t{1} << 48))
    return invalid("PUT_ALLOC: object of " + std::to_string(size) + " bytes");
  if (per_conn_[conn] >= max_per_conn)
    return invalid("PUT_ALLOC: more than " + std::to_string(max_per_conn) + " pending");
  if (pending_.count({conn, id}) > 0 || store_.contains(id))
    return invalid("PUT_ALLOC: object " + id + " exists");
  auto p = store_.begin(id, size, job_id);
  if (!p)
    return p.error();
  struct stat st{};
  if (::fstat(p->fd, &st) != 0) {
    auto err = make_error(errc::storage_error,
                          std::string{"object store: fstat: "} + std::strerror(errno));
    store_.abort(*p);
    return err;
  }
  wire::put_region_msg out;
  out.object_id = id;
  out.pid = static_cast<int32_t>(::getpid());
  out.fd = p->fd;
  out.dev = static_cast<uint64_t>(st.st_dev);
  out.ino = static_cast<uint64_t>(st.st_ino);
  out.boot_id = boot_id();
  pending_.emplace(key{conn, id}, std::move(*p));
  ++per_conn_[conn];
  return out;
}

caf::error put_allocations::commit(uint64_t conn, const std::string& id) {
  auto i = pending_.find({conn, id});
  if (i == pending_.end())
    return invalid("PUT_COMMIT: object " + id + " is not pending");
  auto p = std::move(i->second);
  pending_.erase(i);
  if (--per_conn_[conn] == 0)
    per_conn_.erase(conn);
  return store_.commit(std::move(p));
}

void put_allocations::abort(uint64_t conn, const std::string& id) {
  auto i = pending_.find({conn, id});
  if (i == pending_.end())
    return;
  store_.abort(std::move(i->second));
  pending_.erase(i);
  if (--per_conn_[conn] == 0)
    per_conn_.erase(conn);
}

void put_allocations::drop_conn(uint64_t conn) {
  for (auto i = pending_.lower_bound({conn, std::string{}});
       i != pending_.end() && i->first.first == conn;) {
    store_.abort(std::move(i->second));
    i = pending_.erase(i);
  }
  per_conn_.erase(conn);
}

caf::expected<std::string> put_allocations::on_frame(uint64_t conn, const std::string& job_id,
                                                     const wire::frame& f) {
  auto error_frame = [](const caf::error& err) {
    auto code = code_of(err) == errc::storage_error ? wire::wire_error::store_full
                                           : wire::wire_error::invalid;
    return wire::encode(wire::msg::error,
                        wire::error_msg{static_cast<uint8_t>(code), describe(err)});
  };
  switch (f.type) {
    case wire::msg::put_alloc: {
      auto r = wire::decode<wire::put_alloc_msg>(f.payload);
      if (!r)
        return r.error();
      auto region = allocate(conn, r->object_id, r->size, job_id);
      if (!region) {
        if (code_of(region.error()) != errc::storage_error)
          return region.error();
        return error_frame(region.error()); // the session stays usable
      }
      return wire::encode(wire::msg::put_region, *region);
    }
    case wire::msg::put_commit: {
      auto r = wire::decode<wire::object_id_msg>(f.payload);
      if (!r)
        return r.error();
      if (pending_.count({conn, r->object_id}) == 0)
        return invalid("PUT_COMMIT: object " + r->object_id + " is not pending");
      if (auto err = commit(conn, r->object_id))
        return error_frame(err);
      return wire::encode(wire::msg::put_ok, wire::object_id_msg{r->object_id});
    }
    case wire::msg::put_abort: {
      auto r = wire::decode<wire::object_id_msg>(f.payload);
      if (!r)
        return r.error();
      abort(conn, r->object_id);
      return std::string{};
    }
    default:
      return invalid(std::string{"unexpected "} + wire::to_string(f.type));
  }
}

} // namespace rayd::node
