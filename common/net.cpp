#include "common/net.hpp"

#include <arpa/inet.h>
#include <netdb.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <sys/socket.h>
#include <unistd.h>

#include <cerrno>
#include <cstring>

#include "common/error.hpp"
#include "common/util.hpp"

namespace rayd {

caf::expected<listener> listen_tcp(const std::string& host, uint16_t port,
                                   const std::string& what) {
  auto fail = [&](const std::string& why) {
    return make_error(errc::unavailable, "cannot listen on " + host + ":"
                                           + std::to_string(port) + " ("
                                           + what + "): " + why);
  };
  addrinfo hints{};
  hints.ai_family = AF_UNSPEC;
  hints.ai_socktype = SOCK_STREAM;
  hints.ai_flags = AI_PASSIVE | AI_NUMERICSERV;
  addrinfo* res = nullptr;
  auto port_str = std::to_string(port);
  if (int rc = getaddrinfo(host.c_str(), port_str.c_str(), &hints, &res); rc != 0)
    return fail(gai_strerror(rc));
  int fd = ::socket(res->ai_family, SOCK_STREAM | SOCK_CLOEXEC, 0);
  if (fd < 0) {
    freeaddrinfo(res);
    return fail(std::strerror(errno));
  }
  int one = 1;
  ::setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof(one));
  if (::bind(fd, res->ai_addr, res->ai_addrlen) != 0 || ::listen(fd, 128) != 0) {
    auto why = std::string{std::strerror(errno)};
    ::close(fd);
    freeaddrinfo(res);
    return fail(why);
  }
  freeaddrinfo(res);
  sockaddr_storage ss{};
  socklen_t len = sizeof(ss);
  ::getsockname(fd, reinterpret_cast<sockaddr*>(&ss), &len);
  uint16_t bound = ss.ss_family == AF_INET6
                     ? ntohs(reinterpret_cast<sockaddr_in6*>(&ss)->sin6_port)
                     : ntohs(reinterpret_cast<sockaddr_in*>(&ss)->sin_port);
  return listener{fd, bound};
}

caf::expected<listener> listen_tcp_preferring(const std::string& host,
                                              uint16_t preferred, uint16_t port,
                                              const std::string& what) {
  if (preferred != 0 && port == 0)
    if (auto l = listen_tcp(host, preferred, what))
      return l;
  return listen_tcp(host, port, what);
}

std::string local_address_towards(const std::string& host, uint16_t port) {
  addrinfo hints{};
  hints.ai_family = AF_UNSPEC;
  hints.ai_socktype = SOCK_DGRAM;
  addrinfo* res = nullptr;
  auto port_str = std::to_string(port == 0 ? 9 : port);
  if (getaddrinfo(host.c_str(), port_str.c_str(), &hints, &res) != 0)
    return "127.0.0.1";
  std::string result = "127.0.0.1";
  int fd = ::socket(res->ai_family, SOCK_DGRAM | SOCK_CLOEXEC, 0);
  if (fd >= 0 && ::connect(fd, res->ai_addr, res->ai_addrlen) == 0) {
    sockaddr_storage ss{};
    socklen_t len = sizeof(ss);
    char buf[INET6_ADDRSTRLEN] = {};
    if (::getsockname(fd, reinterpret_cast<sockaddr*>(&ss), &len) == 0) {
      const void* addr = ss.ss_family == AF_INET6
                           ? static_cast<const void*>(
                               &reinterpret_cast<sockaddr_in6*>(&ss)->sin6_addr)
                           : static_cast<const void*>(
                               &reinterpret_cast<sockaddr_in*>(&ss)->sin_addr);
      if (inet_ntop(ss.ss_family, addr, buf, sizeof(buf)) != nullptr)
        result = buf;
    }
  }
  if (fd >= 0)
    ::close(fd);
  freeaddrinfo(res);
  return result;
}

caf::expected<int> connect_tcp(const std::string& address, const std::string& what) {
  auto hp = parse_host_port(address, what + " address");
  if (!hp)
    return hp.error();
  addrinfo hints{};
  hints.ai_socktype = SOCK_STREAM;
  addrinfo* res = nullptr;
  if (::getaddrinfo(hp->host.c_str(), std::to_string(hp->port).c_str(), &hints, &res) != 0
      || res == nullptr)
    return make_error(errc::unavailable, "cannot resolve " + what + " " + address);
  int fd = -1;
  int last_errno = 0;
  for (auto* ai = res; ai != nullptr; ai = ai->ai_next) {
    fd = ::socket(ai->ai_family, ai->ai_socktype | SOCK_CLOEXEC, ai->ai_protocol);
    if (fd < 0) {
      last_errno = errno;
      continue;
    }
    if (::connect(fd, ai->ai_addr, ai->ai_addrlen) == 0)
      break;
    last_errno = errno;
    ::close(fd);
    fd = -1;
  }
  ::freeaddrinfo(res);
  if (fd < 0)
    return make_error(errc::unavailable, "cannot connect to " + what + " " + address + ": "
                                           + std::strerror(last_errno));
  int one = 1;
  ::setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof one);
  return fd;
}

accept_result accept_connection(int listen_fd) {
  for (;;) {
    int fd = ::accept4(listen_fd, nullptr, nullptr, SOCK_NONBLOCK | SOCK_CLOEXEC);
    if (fd >= 0) {
      int one = 1;
      ::setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof one);
      return {accept_result::connection, fd, 0};
    }
    switch (errno) {
      case EINTR:
        continue;
      case EAGAIN:
#if EWOULDBLOCK != EAGAIN
      case EWOULDBLOCK:
#endif
      // The connection was reset, or a network error already pending on
      // it: the next one may be fine (accept(2) says to treat them as EAGAIN).
      case ECONNABORTED:
      case EPROTO:
      case ENETDOWN:
      case ENOPROTOOPT:
      case EHOSTDOWN:
      case ENONET:
      case EHOSTUNREACH:
      case EOPNOTSUPP:
      case ENETUNREACH:
        return {accept_result::none, -1, errno};
      case EMFILE:
      case ENFILE:
      case ENOMEM:
      case ENOBUFS:
        return {accept_result::exhausted, -1, errno};
      default:
        return {accept_result::failed, -1, errno};
    }
  }
}

bool accept_backoff::on_exhausted(clock_type::time_point now) {
  resume_at_ = now + pause_;
  ++burst_failures_;
  if (in_burst_)
    return false;
  in_burst_ = true;
  return true;
}

uint64_t accept_backoff::on_accepted() {
  auto n = burst_failures_;
  in_burst_ = false;
  burst_failures_ = 0;
  return n;
}

} // namespace rayd
