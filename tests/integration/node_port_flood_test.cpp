// A flood of idle and half-closed connections on a node's port, beyond the
// descriptor limit of its rayd (docs/tasks.md, "The node port"): the node
// backs off while it is out of descriptors instead of giving up on its
// port, closes what its peers closed at once (no CLOSE-WAIT left), closes
// connections that never say HELLO after the timeout, and afterwards runs
// tasks through that port while `rayctl status` answers within a second.
#define BOOST_TEST_MODULE node_port_flood
#include <boost/test/unit_test.hpp>

#include <fcntl.h>
#include <netinet/in.h>
#include <poll.h>
#include <sys/resource.h>
#include <sys/socket.h>
#include <unistd.h>

#include <arpa/inet.h>

#include <fstream>
#include <sstream>

#include "tests/integration/tasks_common.hpp"

using namespace rayd::integration;

namespace {

/// The node's descriptor limit in this test, and how many connections go at it.
constexpr int fd_limit = 256;
constexpr int idle_count = 280;
constexpr int half_closed_count = 60;

/// Sockets of `port` in CLOSE-WAIT on this host (the server side of a
/// connection its peer closed and it did not), from /proc/net/tcp{,6}.
int close_wait_on(uint16_t port) {
  int n = 0;
  for (const char* table : {"/proc/net/tcp", "/proc/net/tcp6"}) {
    std::ifstream in{table};
    std::string line;
    std::getline(in, line); // header
    while (std::getline(in, line)) {
      std::istringstream ls{line};
      std::string slot, local, remote, state;
      ls >> slot >> local >> remote >> state;
      auto colon = local.rfind(':');
      if (colon == std::string::npos)
        continue;
      auto lport = static_cast<uint16_t>(std::stoul(local.substr(colon + 1), nullptr, 16));
      if (lport == port && state == "08") // TCP_CLOSE_WAIT
        ++n;
    }
  }
  return n;
}

int open_fds(pid_t pid) {
  int n = 0;
  std::error_code ec;
  for (auto it = std::filesystem::directory_iterator("/proc/" + std::to_string(pid) + "/fd", ec);
       !ec && it != std::filesystem::directory_iterator(); it.increment(ec))
    ++n;
  return n;
}

/// A non-blocking connect (a full backlog must not block the test).
int start_connect(uint16_t port) {
  int fd = ::socket(AF_INET, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
  BOOST_REQUIRE(fd >= 0);
  sockaddr_in sa{};
  sa.sin_family = AF_INET;
  sa.sin_port = htons(port);
  sa.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  int rc = ::connect(fd, reinterpret_cast<sockaddr*>(&sa), sizeof sa);
  BOOST_REQUIRE_MESSAGE(rc == 0 || errno == EINPROGRESS,
                        "connect to the node port: " << std::strerror(errno));
  return fd;
}

struct flood_conn {
  int fd = -1;
  bool half_close = false;
  bool connected = false;
  bool shut = false;    // our write side is closed (half-closed)
  bool closed = false;  // the node closed its side (we read EOF)
  int64_t closed_ms = 0;
};

} // namespace

BOOST_AUTO_TEST_CASE(a_flood_beyond_the_descriptor_limit_leaves_the_node_port_serving) {
  // The test holds a few hundred sockets itself.
  rlimit lim{};
  ::getrlimit(RLIMIT_NOFILE, &lim);
  if (lim.rlim_cur < lim.rlim_max) {
    lim.rlim_cur = lim.rlim_max;
    ::setrlimit(RLIMIT_NOFILE, &lim);
  }
  BOOST_REQUIRE_MESSAGE(lim.rlim_cur >= 1024, "the test needs 1024 descriptors, has "
                                                << lim.rlim_cur);

  cluster c{"node_flood"};
  worker_logs_on_failure logs;
  auto& head = c.start_head({"--resources", node_resource(0)}, 1);
  // A node whose rayd may hold only fd_limit descriptors (soft and hard).
  std::string dir = c.root() + "/limited";
  auto& node = c.spawn_node(
    "limited",
    {"/bin/bash", "-c", "ulimit -n " + std::to_string(fd_limit) + " && exec \"$0\" \"$@\"",
     rayd_bin(), "--address=" + head.cluster_address(), "--block", "--session-dir", dir,
     "--token-file", head.token_file(), "--num-cpus", "1", "--resources", node_resource(1)},
    dir);
  BOOST_REQUIRE_MESSAGE(c.wait_ready(node, 15s), "the limited node did not come up\n"
                                                   << node.all_output());
  logs.add(head.session_dir);
  logs.add(dir);
  BOOST_REQUIRE(wait_for_alive(c, 2, 10s));
  pid_t pid = node.pid();
  std::string address = node.info.value("node_address", std::string());
  uint16_t port = port_of(address);
  BOOST_REQUIRE_MESSAGE(port != 0, "no node_address in node.json: " << node.info.dump());
  int baseline = open_fds(pid);
  BOOST_TEST_MESSAGE("limited node: pid " << pid << ", port " << port << ", " << baseline
                                          << " descriptors open before the flood");
  BOOST_REQUIRE(baseline > 0 && baseline < fd_limit / 2);

  // The flood: idle connections first (they take every descriptor the node
  // has), then half-closed ones (the node must read their EOF and close).
  std::vector<flood_conn> conns;
  auto t0 = now_ms();
  for (int i = 0; i < idle_count + half_closed_count; ++i)
    conns.push_back({start_connect(port), i >= idle_count});

  // Drive the flood until the node has closed every connection: half-closed
  // ones as soon as they are accepted, idle ones after the HELLO timeout
  // (the backlog is accepted as descriptors free up).
  int peak_close_wait = 0;
  int peak_fds = 0;
  auto drive = [&] {
    std::vector<pollfd> pfds;
    std::vector<flood_conn*> who;
    for (auto& fc : conns) {
      if (fc.closed)
        continue;
      pfds.push_back({fc.fd, static_cast<short>(fc.connected ? POLLIN : POLLOUT), 0});
      who.push_back(&fc);
    }
    if (pfds.empty())
      return true;
    ::poll(pfds.data(), pfds.size(), 50);
    for (std::size_t i = 0; i < pfds.size(); ++i) {
      auto& fc = *who[i];
      if (!fc.connected && (pfds[i].revents & (POLLOUT | POLLERR | POLLHUP))) {
        int err = 0;
        socklen_t len = sizeof err;
        ::getsockopt(fc.fd, SOL_SOCKET, SO_ERROR, &err, &len);
        if (err != 0) { // refused or reset: closed by the node
          fc.closed = true;
          fc.closed_ms = now_ms();
          continue;
        }
        fc.connected = true;
        if (fc.half_close && !fc.shut) {
          ::shutdown(fc.fd, SHUT_WR);
          fc.shut = true;
        }
      } else if (fc.connected && (pfds[i].revents & (POLLIN | POLLERR | POLLHUP))) {
        char buf[256];
        auto n = ::recv(fc.fd, buf, sizeof buf, 0);
        if (n <= 0) {
          fc.closed = true;
          fc.closed_ms = now_ms();
        }
      }
    }
    peak_close_wait = std::max(peak_close_wait, close_wait_on(port));
    peak_fds = std::max(peak_fds, open_fds(pid));
    return false;
  };
  bool all_closed = wait_until(drive, 30s, 1ms);
  // A connection whose handshake the kernel completed while the node's
  // backlog was full may never have reached the node (the kernel dropped
  // it): its client cannot tell while it sends nothing. One byte tells: a
  // reset if the node has no such connection, else the HELLO timeout
  // closes it as any other.
  int probed = 0;
  if (!all_closed) {
    for (auto& fc : conns)
      if (!fc.closed && fc.connected && !fc.shut) {
        (void) ::send(fc.fd, "x", 1, MSG_NOSIGNAL);
        ++probed;
      }
    all_closed = wait_until(drive, 15s, 1ms);
  }
  int still_open = 0;
  int never_connected = 0;
  for (auto& fc : conns) {
    still_open += fc.closed ? 0 : 1;
    never_connected += fc.connected ? 0 : 1;
  }
  BOOST_TEST_MESSAGE("flood: " << conns.size() << " connections, the node peaked at "
                               << peak_fds << " descriptors and " << peak_close_wait
                               << " CLOSE-WAIT; " << probed << " probed; "
                               << never_connected << " never connected; all closed by the node"
                               << " after " << (now_ms() - t0) << " ms");
  BOOST_CHECK_MESSAGE(all_closed, still_open << " connections still open after 45 s");
  BOOST_CHECK(pid_alive(pid));

  // The flood did go beyond the limit: the node ran out of descriptors,
  // said so once per burst, and kept its port.
  std::string log = read_file(node.log_path());
  BOOST_CHECK_MESSAGE(log.find("cannot accept on the node port") != std::string::npos,
                      "the node never ran out of descriptors (peak " << peak_fds << ")");
  BOOST_CHECK_GE(peak_fds, fd_limit - 8);

  // Idle connections were closed after the HELLO timeout, not before, and
  // the half-closed ones at once when accepted (well before the timeout).
  int64_t first_idle_close = INT64_MAX;
  int64_t first_half_close = INT64_MAX;
  for (auto& fc : conns) {
    if (!fc.closed)
      continue;
    auto& first = fc.half_close ? first_half_close : first_idle_close;
    first = std::min(first, fc.closed_ms - t0);
  }
  BOOST_TEST_MESSAGE("first idle connection closed after " << first_idle_close
                                                           << " ms, first half-closed after "
                                                           << first_half_close << " ms");
  BOOST_CHECK_GE(first_idle_close, 4500);
  BOOST_CHECK_LT(first_idle_close, 8000);

  // Nothing left behind: no CLOSE-WAIT on the port, descriptors back near
  // where they were.
  BOOST_CHECK(wait_until([&] { return close_wait_on(port) == 0; }, 10s, 20ms));
  BOOST_CHECK_EQUAL(close_wait_on(port), 0);
  BOOST_CHECK_MESSAGE(wait_until([&] { return open_fds(pid) <= baseline + 8; }, 10s, 20ms),
                      "the node holds " << open_fds(pid) << " descriptors, " << baseline
                                        << " before the flood");
  for (auto& fc : conns)
    ::close(fc.fd);

  // The node still serves: a task pinned to it runs through its port, and
  // the cluster answers rayctl at once.
  auto status = c.status_json();
  BOOST_CHECK_EQUAL(node_state(status, node.node_id()), "ALIVE");
  json out = run_case(c, "placement",
                      {"nodes=" + head.node_id() + "," + node.node_id(), "count=4", "ms=10"},
                      60s);
  BOOST_REQUIRE(out["pinned"].is_array() && out["pinned"].size() == 2);
  BOOST_CHECK_EQUAL(out["pinned"][1].get<std::string>(), node.node_id());
  auto r = c.rayctl({"status"});
  if (r.exit_code == 0 && r.elapsed_ms >= 1000) // a loaded machine: once more
    r = c.rayctl({"status"});
  BOOST_CHECK_MESSAGE(r.exit_code == 0, r.describe());
  BOOST_CHECK_LT(r.elapsed_ms, 1000);
  BOOST_CHECK(pid_alive(pid));
}
