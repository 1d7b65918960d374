#include "common/wire.hpp"

#include <poll.h>
#include <sys/socket.h>
#include <unistd.h>

#include <cerrno>
#include <cstring>

#include "common/error.hpp"

namespace rayd::wire {

namespace {

caf::error sys_error(const char* what) {
  return make_error(errc::unavailable, std::string{what} + ": " + std::strerror(errno));
}

} // namespace

msgpack::unpack_limit untrusted_limits() {
  return msgpack::unpack_limit(1u << 20,  // array elements
                               1u << 16,  // map entries
                               max_frame_bytes, // str
                               max_frame_bytes, // bin
                               1u << 10,  // ext
                               32);       // depth
}

const char* to_string(msg x) {
  switch (x) {
    case msg::hello: return "HELLO";
    case msg::welcome: return "WELCOME";
    case msg::lease: return "LEASE";
    case msg::backlog: return "BACKLOG";
    case msg::granted: return "GRANTED";
    case msg::spillback: return "SPILLBACK";
    case msg::queued: return "QUEUED";
    case msg::refused: return "REFUSED";
    case msg::task: return "TASK";
    case msg::result: return "RESULT";
    case msg::put: return "PUT";
    case msg::chunk: return "CHUNK";
    case msg::put_ok: return "PUT_OK";
    case msg::get: return "GET";
    case msg::object: return "OBJECT";
    case msg::free: return "FREE";
    case msg::error: return "ERROR";
    case msg::ping: return "PING";
    case msg::pong: return "PONG";
    case msg::ready: return "READY";
    case msg::adopt: return "ADOPT";
    case msg::lease_done: return "LEASE_DONE";
    case msg::store: return "STORE";
    case msg::stored: return "STORED";
    case msg::fetch: return "FETCH";
    case msg::fetched: return "FETCHED";
    case msg::exit: return "EXIT";
    case msg::attach: return "ATTACH";
    case msg::attached: return "ATTACHED";
    case msg::call: return "CALL";
    case msg::create_actor: return "CREATE_ACTOR";
    case msg::actor_created: return "ACTOR_CREATED";
    case msg::kill_actor: return "KILL_ACTOR";
    case msg::adopt_caller: return "ADOPT_CALLER";
    case msg::control_error: return "CONTROL_ERROR";
    case msg::drain: return "DRAIN";
    case msg::put_alloc: return "PUT_ALLOC";
    case msg::put_region: return "PUT_REGION";
    case msg::put_commit: return "PUT_COMMIT";
    case msg::put_abort: return "PUT_ABORT";
  }
  return "UNKNOWN";
}

std::string encode_raw(msg type, std::string_view bytes) {
  std::string out;
  out.resize(5 + bytes.size());
  auto len = static_cast<uint32_t>(bytes.size() + 1);
  for (int i = 0; i < 4; ++i)
    out[static_cast<std::size_t>(i)] = static_cast<char>((len >> (8 * i)) & 0xff);
  out[4] = static_cast<char>(type);
  if (!bytes.empty())
    std::memcpy(out.data() + 5, bytes.data(), bytes.size());
  return out;
}

caf::error decode_into(std::string_view payload, msgpack::object_handle& out) {
  try {
    std::size_t off = 0;
    out = msgpack::unpack(payload.data(), payload.size(), off, nullptr, nullptr,
                          untrusted_limits());
    if (off != payload.size())
      return make_error(errc::invalid_argument,
                        "malformed message: trailing bytes after the payload");
    return caf::none;
  } catch (const std::exception& e) {
    return make_error(errc::invalid_argument,
                      std::string{"malformed message: "} + e.what());
  }
}

void frame_reader::feed(const char* data, std::size_t n) {
  // Compact once the consumed prefix dominates, so the buffer stays small.
  if (pos_ > 0 && pos_ >= buf_.size() / 2) {
    buf_.erase(0, pos_);
    pos_ = 0;
  }
  buf_.append(data, n);
}

caf::expected<std::optional<frame>> frame_reader::next() {
  if (buf_.size() - pos_ < 4)
    return std::optional<frame>{};
  const auto* p = reinterpret_cast<const unsigned char*>(buf_.data() + pos_);
  uint32_t len = static_cast<uint32_t>(p[0]) | (static_cast<uint32_t>(p[1]) << 8)
                 | (static_cast<uint32_t>(p[2]) << 16)
                 | (static_cast<uint32_t>(p[3]) << 24);
  if (len == 0)
    return make_error(errc::invalid_argument, "malformed frame: empty");
  if (len > max_frame_bytes + 1)
    return make_error(errc::invalid_argument,
                      "malformed frame: " + std::to_string(len)
                        + " bytes, above the limit of "
                        + std::to_string(max_frame_bytes));
  if (buf_.size() - pos_ < 4 + static_cast<std::size_t>(len))
    return std::optional<frame>{};
  frame f;
  f.type = static_cast<msg>(buf_[pos_ + 4]);
  f.payload.assign(buf_, pos_ + 5, len - 1);
  pos_ += 4 + len;
  if (pos_ == buf_.size()) {
    buf_.clear();
    pos_ = 0;
  }
  return std::optional<frame>{std::move(f)};
}

caf::error write_all(int fd, std::string_view bytes) {
  while (!bytes.empty()) {
    auto n = ::send(fd, bytes.data(), bytes.size(), MSG_NOSIGNAL);
    if (n > 0) {
      bytes.remove_prefix(static_cast<std::size_t>(n));
      continue;
    }
    if (n < 0 && errno == EINTR)
      continue;
    if (n < 0 && (errno == EAGAIN || errno == EWOULDBLOCK)) {
      pollfd pfd{fd, POLLOUT, 0};
      ::poll(&pfd, 1, -1);
      continue;
    }
    return sys_error("send");
  }
  return caf::none;
}

caf::expected<frame> read_frame(int fd, frame_reader& reader, int timeout_ms) {
  char buf[64 * 1024];
  for (;;) {
    auto next = reader.next();
    if (!next)
      return next.error();
    if (*next)
      return std::move(**next);
    if (timeout_ms >= 0) {
      pollfd pfd{fd, POLLIN, 0};
      int r = ::poll(&pfd, 1, timeout_ms);
      if (r == 0)
        return make_error(errc::timeout, "no frame within the deadline");
      if (r < 0 && errno != EINTR)
        return sys_error("poll");
    }
    auto n = ::recv(fd, buf, sizeof buf, 0);
    if (n > 0) {
      reader.feed(buf, static_cast<std::size_t>(n));
      continue;
    }
    if (n == 0)
      return make_error(errc::unavailable, "connection closed by the peer");
    if (errno == EINTR)
      continue;
    if (errno == EAGAIN || errno == EWOULDBLOCK) {
      pollfd pfd{fd, POLLIN, 0};
      ::poll(&pfd, 1, timeout_ms);
      continue;
    }
    return sys_error("recv");
  }
}

caf::error send_with_fds(int fd, std::string_view frame_bytes,
                         const std::vector<int>& fds) {
  if (fds.empty())
    return write_all(fd, frame_bytes);
  msghdr mh{};
  iovec iov{const_cast<char*>(frame_bytes.data()), frame_bytes.size()};
  mh.msg_iov = &iov;
  mh.msg_iovlen = 1;
  std::vector<char> ctrl(CMSG_SPACE(sizeof(int) * fds.size()));
  mh.msg_control = ctrl.data();
  mh.msg_controllen = ctrl.size();
  auto* cm = CMSG_FIRSTHDR(&mh);
  cm->cmsg_level = SOL_SOCKET;
  cm->cmsg_type = SCM_RIGHTS;
  cm->cmsg_len = CMSG_LEN(sizeof(int) * fds.size());
  std::memcpy(CMSG_DATA(cm), fds.data(), sizeof(int) * fds.size());
  // The descriptors ride with the first byte; the rest may follow normally.
  ssize_t n;
  do {
    n = ::sendmsg(fd, &mh, MSG_NOSIGNAL);
  } while (n < 0 && errno == EINTR);
  if (n < 0)
    return sys_error("sendmsg");
  return write_all(fd, frame_bytes.substr(static_cast<std::size_t>(n)));
}

caf::expected<std::size_t> recv_with_fds(int fd, char* buf, std::size_t n,
                                         std::deque<int>& fds) {
  msghdr mh{};
  iovec iov{buf, n};
  mh.msg_iov = &iov;
  mh.msg_iovlen = 1;
  alignas(cmsghdr) char ctrl[CMSG_SPACE(sizeof(int) * 16)];
  mh.msg_control = ctrl;
  mh.msg_controllen = sizeof ctrl;
  ssize_t got;
  do {
    got = ::recvmsg(fd, &mh, MSG_CMSG_CLOEXEC);
  } while (got < 0 && errno == EINTR);
  if (got < 0)
    return sys_error("recvmsg");
  for (auto* cm = CMSG_FIRSTHDR(&mh); cm != nullptr; cm = CMSG_NXTHDR(&mh, cm)) {
    if (cm->cmsg_level != SOL_SOCKET || cm->cmsg_type != SCM_RIGHTS)
      continue;
    auto count = (cm->cmsg_len - CMSG_LEN(0)) / sizeof(int);
    for (std::size_t i = 0; i < count; ++i) {
      int received;
      std::memcpy(&received, CMSG_DATA(cm) + i * sizeof(int), sizeof(int));
      fds.push_back(received);
    }
  }
  return static_cast<std::size_t>(got);
}

} // namespace rayd::wire
