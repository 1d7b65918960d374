// See node_link.hpp.

#include "node_link.hpp"

#include <fcntl.h>
#include <poll.h>
#include <sys/eventfd.h>
#include <sys/socket.h>
#include <unistd.h>

#include <cerrno>

#include "common/error.hpp"
#include "common/net.hpp"

namespace rayd::core {

node_link::node_link() : event_fd_{::eventfd(0, EFD_CLOEXEC | EFD_NONBLOCK)} {
}

node_link::~node_link() {
  if (event_fd_ >= 0)
    ::close(event_fd_);
}

void node_link::wake() {
  uint64_t one = 1;
  [[maybe_unused]] auto n = ::write(event_fd_, &one, sizeof one);
}

int node_link::open_request(const std::string& address, const std::string& token,
                            const std::string& job_id, const wire::lease_request& req,
                            std::string& why) {
  auto fd = connect_tcp(address);
  if (!fd) {
    why = describe(fd.error());
    return -1;
  }
  auto hello = wire::encode(wire::msg::hello, wire::hello{wire::magic, token, "driver", job_id});
  if (wire::write_all(*fd, hello + wire::encode(wire::msg::lease, req))) {
    ::close(*fd);
    why = "node " + address + " closed the connection";
    return -1;
  }
  ::fcntl(*fd, F_SETFL, ::fcntl(*fd, F_GETFL) | O_NONBLOCK);
  return *fd;
}

node_link::flush_result node_link::flush(int fd, std::string& out) {
  while (!out.empty()) {
    auto n = ::send(fd, out.data(), out.size(), MSG_NOSIGNAL | MSG_DONTWAIT);
    if (n > 0) {
      out.erase(0, static_cast<std::size_t>(n));
      continue;
    }
    if (n < 0 && errno == EINTR)
      continue;
    if (n < 0 && (errno == EAGAIN || errno == EWOULDBLOCK))
      return flush_result::full;
    return flush_result::broken; // the reader sees EOF too
  }
  return flush_result::done;
}

bool node_link::read(int fd, wire::frame_reader& reader, std::size_t chunk) {
  char buf[256 * 1024];
  chunk = std::min(chunk, sizeof buf);
  for (;;) {
    auto n = ::recv(fd, buf, chunk, MSG_DONTWAIT);
    if (n > 0) {
      reader.feed(buf, static_cast<std::size_t>(n));
      if (static_cast<std::size_t>(n) < chunk)
        return true;
      continue;
    }
    if (n < 0 && errno == EINTR)
      continue;
    if (n < 0 && (errno == EAGAIN || errno == EWOULDBLOCK))
      return true;
    return false;
  }
}

void node_link::poll(const std::vector<watch>& watches, int timeout_ms,
                     std::vector<event>& ready) {
  ready.clear();
  fds_.clear();
  for (auto& w : watches)
    fds_.push_back({w.fd, static_cast<short>(POLLIN | (w.want_out ? POLLOUT : 0)), 0});
  fds_.push_back({event_fd_, POLLIN, 0});
  int n = ::poll(fds_.data(), fds_.size(), timeout_ms);
  if (n <= 0)
    return;
  for (std::size_t i = 0; i < watches.size(); ++i) {
    auto r = fds_[i].revents;
    if (r == 0)
      continue;
    ready.push_back(
      {watches[i].tag, (r & (POLLIN | POLLHUP | POLLERR)) != 0, (r & POLLOUT) != 0});
  }
  if (fds_.back().revents != 0) {
    uint64_t v;
    [[maybe_unused]] auto r = ::read(event_fd_, &v, sizeof v);
  }
}

} // namespace rayd::core
