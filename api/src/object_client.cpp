// See object_client.hpp.

#include "object_client.hpp"

#include <unistd.h>

#include "common/error.hpp"
#include "common/net.hpp"
#include "rayd/errors.hpp"

namespace rayd::core {

object_client::object_client(std::string token, std::string job_id)
  : token_{std::move(token)}, job_id_{std::move(job_id)} {
}

object_client::~object_client() {
  for (auto& [_, s] : sessions_)
    drop(*s);
}

object_client::session& object_client::session_for(const std::string& address) {
  std::lock_guard<std::mutex> guard{mtx_};
  auto& s = sessions_[address];
  if (!s)
    s = std::make_unique<session>();
  return *s;
}

void object_client::drop(session& s) {
  if (s.fd >= 0)
    ::close(s.fd);
  s.fd = -1;
}

void object_client::ensure(session& s, const std::string& address) {
  if (s.fd >= 0)
    return;
  auto fd = connect_tcp(address);
  if (!fd)
    throw object_lost(describe(fd.error()));
  s.reader = wire::frame_reader{};
  if (wire::write_all(*fd, wire::encode(wire::msg::hello,
                                        wire::hello{wire::magic, token_, "driver", job_id_}))) {
    ::close(*fd);
    throw object_lost("node " + address + " closed the connection");
  }
  auto w = wire::read_frame(*fd, s.reader, 10000);
  if (!w || w->type != wire::msg::welcome) {
    ::close(*fd);
    throw connection_error("rayd: node " + address + " refused this driver");
  }
  s.fd = *fd;
}

std::optional<wire::object_loc> object_client::put(const std::string& id,
                                                   const std::string& bytes,
                                                   const std::string& address) {
  auto& s = session_for(address);
  std::lock_guard<std::mutex> guard{s.mtx};
  for (int attempt = 0;; ++attempt) {
    bool reused = s.fd >= 0;
    try {
      ensure(s, address);
    } catch (const object_lost&) {
      return std::nullopt; // could not connect
    }
    std::string msg = wire::encode(wire::msg::put, wire::put_request{id, bytes.size(), job_id_});
    caf::error err = wire::write_all(s.fd, msg);
    for (std::size_t off = 0; !err && off < bytes.size(); off += wire::chunk_bytes)
      err = wire::write_all(s.fd, wire::encode_raw(wire::msg::chunk,
                                                   std::string_view{bytes}.substr(
                                                     off, wire::chunk_bytes)));
    std::optional<wire::frame> reply;
    if (!err) {
      auto r = wire::read_frame(s.fd, s.reader);
      if (r)
        reply = std::move(*r);
      else
        err = r.error();
    }
    if (err) {
      drop(s);
      if (reused && attempt == 0)
        continue; // the node restarted since the last use: once more, afresh
      throw object_store_full("rayd: put failed: " + describe(err));
    }
    if (reply->type != wire::msg::put_ok) {
      auto e = wire::decode<wire::error_msg>(reply->payload);
      throw object_store_full(e ? e->message : "rayd: put refused");
    }
    wire::object_loc loc;
    loc.object_id = id;
    loc.address = address;
    loc.size = bytes.size();
    return loc;
  }
}

std::optional<wire::object_loc>
object_client::put_in_place(const std::string& id, std::size_t size,
                            const std::function<void(char*)>& fill, const std::string& address,
                            std::vector<std::string> frees_first) {
  std::lock_guard<std::mutex> shared_guard{shared_mtx_};
  auto& s = session_for(address);
  std::lock_guard<std::mutex> guard{s.mtx};
  try {
    ensure(s, address);
  } catch (const object_lost&) {
    return std::nullopt;
  }
  auto r = shared_.put(s.fd, s.reader, id, size, fill, std::move(frees_first));
  if (r == shared_put::result::broken)
    drop(s);
  if (r != shared_put::result::stored)
    return std::nullopt;
  wire::object_loc loc;
  loc.object_id = id;
  loc.address = address;
  loc.size = size;
  return loc;
}

std::string object_client::get(const wire::object_loc& loc) {
  std::string out;
  get_to(loc, [&out](std::size_t size, std::string_view chunk) {
    if (out.capacity() < size)
      out.reserve(size);
    out += chunk;
  });
  return out;
}

void object_client::get_to(const wire::object_loc& loc,
                           const std::function<void(std::size_t, std::string_view)>& sink) {
  auto& s = session_for(loc.address);
  std::lock_guard<std::mutex> guard{s.mtx};
  try {
    ensure(s, loc.address);
  } catch (const error&) {
    throw object_lost("object " + loc.object_id + " is lost: its node " + loc.node_id + " ("
                      + loc.address + ") cannot be reached");
  }
  auto fail = [&s, &loc](const std::string& why) {
    drop(s);
    throw object_lost("object " + loc.object_id + " is lost: " + why);
  };
  if (wire::write_all(s.fd, wire::encode(wire::msg::get, wire::object_id_msg{loc.object_id})))
    fail("node " + loc.address + " closed the connection");
  auto h = wire::read_frame(s.fd, s.reader);
  if (!h)
    fail(describe(h.error()));
  if (h->type != wire::msg::object) {
    auto e = wire::decode<wire::error_msg>(h->payload);
    throw object_lost("object " + loc.object_id + " is lost: "
                      + (e ? e->message : std::string{"not found"}));
  }
  auto hdr = wire::decode<wire::object_header>(h->payload);
  if (!hdr)
    fail("malformed OBJECT");
  std::size_t got = 0;
  if (hdr->size == 0)
    sink(0, {});
  while (got < hdr->size) {
    auto c = wire::read_frame(s.fd, s.reader);
    if (!c || c->type != wire::msg::chunk)
      fail("the transfer broke off");
    got += c->payload.size();
    try {
      sink(hdr->size, c->payload);
    } catch (...) {
      drop(s); // the rest of the object is still on the socket
      throw;
    }
  }
}

void object_client::free(const std::string& address, std::vector<std::string> ids) {
  auto& s = session_for(address);
  std::lock_guard<std::mutex> guard{s.mtx};
  try {
    ensure(s, address);
  } catch (const error&) {
    return; // the node is gone, and the objects with it
  }
  if (wire::write_all(s.fd, wire::encode(wire::msg::free, wire::free_request{std::move(ids)})))
    drop(s);
}

void object_client::open(const std::string& address) {
  auto& s = session_for(address);
  std::lock_guard<std::mutex> guard{s.mtx};
  try {
    ensure(s, address);
  } catch (const error&) {
  }
}

} // namespace rayd::core
