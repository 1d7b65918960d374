#include "actors/node/object_service.hpp"

#include <fcntl.h>
#include <poll.h>
#include <sys/mman.h>
#include <sys/sendfile.h>
#include <sys/socket.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <cstring>
#include <thread>

#include "common/error.hpp"
#include "common/net.hpp"

namespace rayd::node {

namespace {

void set_blocking(int fd, bool blocking) {
  int flags = ::fcntl(fd, F_GETFL);
  ::fcntl(fd, F_SETFL, blocking ? (flags & ~O_NONBLOCK) : (flags | O_NONBLOCK));
}

/// Streams an object: OBJECT header, then CHUNK frames straight from the
/// object's descriptor (sendfile, no copy through user space).
caf::error stream_object(int sock, const std::string& id, int fd, uint64_t size) {
  if (auto err = wire::write_all(sock, wire::encode(wire::msg::object,
                                                    wire::object_header{id, size})))
    return err;
  off_t off = 0;
  while (static_cast<uint64_t>(off) < size) {
    auto n = std::min<uint64_t>(wire::chunk_bytes, size - static_cast<uint64_t>(off));
    auto header = wire::encode_raw(wire::msg::chunk, {});
    auto len = static_cast<uint32_t>(n + 1);
    for (int i = 0; i < 4; ++i)
      header[static_cast<std::size_t>(i)] = static_cast<char>((len >> (8 * i)) & 0xff);
    if (auto err = wire::write_all(sock, header))
      return err;
    uint64_t left = n;
    while (left > 0) {
      auto sent = ::sendfile(sock, fd, &off, left);
      if (sent < 0 && errno == EINTR)
        continue;
      if (sent < 0 && errno == EAGAIN) {
        pollfd pfd{sock, POLLOUT, 0};
        ::poll(&pfd, 1, -1);
        continue;
      }
      if (sent <= 0)
        return make_error(errc::unavailable,
                          std::string{"sending object failed: "} + std::strerror(errno));
      left -= static_cast<uint64_t>(sent);
    }
  }
  return caf::none;
}

/// Receives `size` bytes of CHUNK frames straight into the destination's
/// pages (a shared mapping of its descriptor): no buffer in between, one
/// recv per piece the kernel has, whatever the frame boundaries.
caf::error receive_chunks(int sock, wire::frame_reader& reader, int dest, uint64_t size) {
  if (size == 0)
    return caf::none;
  auto* map = static_cast<char*>(
    ::mmap(nullptr, size, PROT_READ | PROT_WRITE, MAP_SHARED, dest, 0));
  if (map == MAP_FAILED)
    return make_error(errc::storage_error,
                      std::string{"object store full: cannot map: "} + std::strerror(errno));
  uint64_t got = 0;      // object bytes received
  uint64_t in_frame = 0; // payload bytes left in the current CHUNK
  char header[5];
  std::size_t header_got = 0;
  caf::error err;
  // Bytes the reader already holds come first, then the socket.
  std::string pending = reader.take_buffered();
  std::size_t pending_pos = 0;
  auto next_bytes = [&](char* into, std::size_t want) -> ssize_t {
    if (pending_pos < pending.size()) {
      auto n = std::min(want, pending.size() - pending_pos);
      std::memcpy(into, pending.data() + pending_pos, n);
      pending_pos += n;
      return static_cast<ssize_t>(n);
    }
    for (;;) {
      auto n = ::recv(sock, into, want, 0);
      if (n < 0 && errno == EINTR)
        continue;
      return n;
    }
  };
  while (got < size) {
    if (in_frame == 0) {
      auto n = next_bytes(header + header_got, sizeof header - header_got);
      if (n <= 0) {
        err = make_error(errc::unavailable, "the transfer broke off");
        break;
      }
      header_got += static_cast<std::size_t>(n);
      if (header_got < sizeof header)
        continue;
      header_got = 0;
      uint32_t len = 0;
      for (int i = 0; i < 4; ++i)
        len |= static_cast<uint32_t>(static_cast<unsigned char>(header[i])) << (8 * i);
      if (static_cast<wire::msg>(header[4]) != wire::msg::chunk || len < 1
          || len - 1 > size - got) {
        err = make_error(errc::invalid_argument, "malformed object stream");
        break;
      }
      in_frame = len - 1;
      continue;
    }
    auto n = next_bytes(map + got, static_cast<std::size_t>(in_frame));
    if (n <= 0) {
      err = make_error(errc::unavailable, "the transfer broke off");
      break;
    }
    got += static_cast<uint64_t>(n);
    in_frame -= static_cast<uint64_t>(n);
  }
  ::munmap(map, size);
  return err;
}

/// Pulls an object from another node into `store`.
caf::error pull_object(const wire::object_loc& loc, const std::string& token,
                       const std::string& job_id, object_store& store) {
  auto sock = connect_tcp(loc.address);
  if (!sock)
    return sock.error();
  int fd = *sock;
  auto close_fd = [fd] { ::close(fd); };
  wire::frame_reader reader;
  auto fail = [&](caf::error err) {
    close_fd();
    return err;
  };
  if (auto err = wire::write_all(fd, wire::encode(wire::msg::hello,
                                                  wire::hello{wire::magic, token, "peer",
                                                              job_id})))
    return fail(err);
  auto w = wire::read_frame(fd, reader, 10000);
  if (!w)
    return fail(w.error());
  if (w->type != wire::msg::welcome)
    return fail(make_error(errc::unauthenticated, "node " + loc.address
                                                    + " refused this node"));
  if (auto err = wire::write_all(fd, wire::encode(wire::msg::get,
                                                  wire::object_id_msg{loc.object_id})))
    return fail(err);
  auto h = wire::read_frame(fd, reader, 30000);
  if (!h)
    return fail(h.error());
  if (h->type != wire::msg::object) {
    auto e = wire::decode<wire::error_msg>(h->payload);
    return fail(make_error(errc::not_found, e ? e->message : "object not found"));
  }
  auto hdr = wire::decode<wire::object_header>(h->payload);
  if (!hdr)
    return fail(hdr.error());
  auto p = store.begin(loc.object_id, hdr->size, job_id);
  if (!p)
    return fail(p.error());
  if (auto err = receive_chunks(fd, reader, p->fd, hdr->size)) {
    store.abort(*p);
    return fail(err);
  }
  close_fd();
  return store.commit(*p);
}

} // namespace

void send_error(int fd, wire::wire_error code, const std::string& message) {
  (void) wire::write_all(fd, wire::encode(wire::msg::error,
                                          wire::error_msg{static_cast<uint8_t>(code), message}));
}

object_service::object_service(object_store& store, event_loop& loop, std::string node_id,
                               std::string token, fetch_answer answer)
  : store_(store),
    loop_(loop),
    node_id_(std::move(node_id)),
    token_(std::move(token)),
    answer_(std::move(answer)) {
}

conn_verdict object_service::begin_put(connection& c, const wire::frame& f) {
  auto r = wire::decode<wire::put_request>(f.payload);
  if (!r || c.role != "driver") {
    send_error(c.fd, wire::wire_error::invalid, "malformed PUT");
    return conn_verdict::close;
  }
  auto& st = c.put;
  st.active = true;
  st.object_id = r->object_id;
  st.size = r->size;
  st.got = 0;
  st.error = caf::error{};
  auto p = store_.begin(r->object_id, r->size, c.job_id);
  if (p)
    st.pending = std::move(*p);
  else
    st.error = p.error();
  if (st.size == 0)
    finish_put(c);
  return conn_verdict::keep;
}

conn_verdict object_service::put_chunk(connection& c, const wire::frame& f) {
  auto& st = c.put;
  if (f.type != wire::msg::chunk || st.got + f.payload.size() > st.size) {
    send_error(c.fd, wire::wire_error::invalid, "malformed PUT stream");
    return conn_verdict::close;
  }
  if (st.pending && ::pwrite(st.pending->fd, f.payload.data(), f.payload.size(),
                             static_cast<off_t>(st.got))
                      != static_cast<ssize_t>(f.payload.size())) {
    st.error = make_error(errc::storage_error,
                          std::string{"object store full: "} + std::strerror(errno));
    store_.abort(*st.pending);
    st.pending.reset();
  }
  st.got += f.payload.size();
  if (st.got == st.size)
    finish_put(c);
  return conn_verdict::keep;
}

void object_service::finish_put(connection& c) {
  auto& st = c.put;
  st.active = false;
  if (st.pending) {
    st.error = store_.commit(*st.pending);
    st.pending.reset();
  }
  if (st.error)
    send_error(c.fd, wire::wire_error::store_full, describe(st.error));
  else
    (void) wire::write_all(c.fd, wire::encode(wire::msg::put_ok,
                                              wire::object_id_msg{st.object_id}));
}

void object_service::abort_put(put_state& st) {
  if (st.pending)
    store_.abort(*st.pending);
  st.pending.reset();
  st.active = false;
}

conn_verdict object_service::get(connection& c, const wire::frame& f,
                                 std::function<void(bool ok)> given_back) {
  auto r = wire::decode<wire::object_id_msg>(f.payload);
  if (!r)
    return conn_verdict::close;
  auto obj = store_.open(r->object_id);
  if (!obj) {
    send_error(c.fd, wire::wire_error::not_found,
               "object " + r->object_id + " is not on node " + node_id_);
    return conn_verdict::keep;
  }
  if (obj->second <= wire::inline_object_bytes) {
    auto err = stream_object(c.fd, r->object_id, obj->first, obj->second);
    ::close(obj->first);
    return err ? conn_verdict::close : conn_verdict::keep;
  }
  // An object may be large: a helper thread serves it.
  loop_.unwatch(c.fd);
  int sock = c.fd;
  auto oid = r->object_id;
  set_blocking(sock, true);
  auto* loop = &loop_;
  std::thread([loop, sock, oid, obj, given_back] {
    auto err = stream_object(sock, oid, obj->first, obj->second);
    ::close(obj->first);
    bool ok = !err;
    loop->post([sock, ok, given_back] {
      set_blocking(sock, false);
      given_back(ok);
    });
  }).detach();
  return conn_verdict::handed_off;
}

bool object_service::free(const wire::frame& f) {
  auto r = wire::decode<wire::free_request>(f.payload);
  if (!r)
    return false;
  for (auto& oid : r->object_ids)
    store_.free(oid);
  return true;
}

void object_service::store_from_worker(int ctrl, int fd, const wire::frame& f,
                                       const std::string& job_id) {
  auto r = wire::decode<wire::store_msg>(f.payload);
  if (!r || fd < 0) {
    if (fd >= 0)
      ::close(fd);
    return;
  }
  auto err = store_.put_fd(r->object_id, fd, r->size, job_id);
  if (err)
    (void) wire::write_all(ctrl, wire::encode(wire::msg::control_error,
                                              wire::object_error{r->object_id,
                                                                 static_cast<uint8_t>(
                                                                   wire::wire_error::store_full),
                                                                 describe(err)}));
  else
    (void) wire::write_all(ctrl, wire::encode(wire::msg::stored,
                                              wire::object_id_msg{r->object_id}));
}

void object_service::send_fetched(int ctrl, const std::string& oid, const caf::error& err) {
  if (!err) {
    if (auto obj = store_.open(oid)) {
      (void) wire::send_with_fds(ctrl,
                                 wire::encode(wire::msg::fetched,
                                              wire::object_header{oid, obj->second}),
                                 {obj->first});
      ::close(obj->first);
      return;
    }
  }
  (void) wire::write_all(
    ctrl, wire::encode(wire::msg::control_error,
                       wire::object_error{oid, static_cast<uint8_t>(wire::wire_error::lost),
                                          err ? describe(err) : "object " + oid + " is gone"}));
}

void object_service::fetch(uint64_t worker_id, const std::string& job_id,
                           const wire::object_loc& loc) {
  if (store_.contains(loc.object_id) || loc.node_id == node_id_) {
    answer_(worker_id, loc.object_id,
            store_.contains(loc.object_id)
              ? caf::error{}
              : make_error(errc::not_found, "object " + loc.object_id
                                              + " is no longer on node " + node_id_));
    return;
  }
  auto& waiting = pulls_[loc.object_id];
  waiting.push_back(worker_id);
  if (waiting.size() > 1)
    return;
  auto* store = &store_;
  auto token = token_;
  std::thread([this, store, token, loc, job_id] {
    auto err = pull_object(loc, token, job_id, *store);
    if (err)
      err = make_error(errc::not_found, "object " + loc.object_id + " could not be read "
                                          "from node " + loc.node_id + " (" + loc.address
                                          + "): " + describe(err));
    loop_.post([this, loc, err] {
      auto ws = std::move(pulls_[loc.object_id]);
      pulls_.erase(loc.object_id);
      for (auto wid : ws)
        answer_(wid, loc.object_id, err);
    });
  }).detach();
}

} // namespace rayd::node
