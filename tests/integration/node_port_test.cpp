// Hostile bytes on a node's port (the task server): random data, frames
// claiming huge sizes, truncated frames, requests before or without the
// token, garbage after a good handshake. The node must refuse each one,
// stay up, and keep running tasks for a real driver.
#define BOOST_TEST_MODULE node_port
#include <boost/test/unit_test.hpp>

#include <sys/socket.h>
#include <unistd.h>

#include <random>

#include "tests/integration/tasks_common.hpp"

using namespace rayd::integration;

namespace {

std::string frame(uint8_t type, const std::string& payload, uint32_t claimed_len = 0) {
  uint32_t len = claimed_len ? claimed_len : static_cast<uint32_t>(payload.size() + 1);
  std::string out(5, '\0');
  for (int i = 0; i < 4; ++i)
    out[static_cast<size_t>(i)] = static_cast<char>((len >> (8 * i)) & 0xff);
  out[4] = static_cast<char>(type);
  return out + payload;
}

// msgpack of ["rayd-task-1", token, role, job]: a fixarray of 4 fixstrs.
std::string hello_payload(const std::string& token) {
  auto str = [](const std::string& s) {
    std::string out;
    if (s.size() < 32) {
      out += static_cast<char>(0xa0 | s.size());
    } else {
      out += static_cast<char>(0xd9);
      out += static_cast<char>(s.size());
    }
    return out + s;
  };
  return std::string(1, static_cast<char>(0x94)) + str("rayd-task-1") + str(token)
         + str("driver") + str("job-x");
}

/// Sends `bytes` on a fresh connection, then reads until the node closes
/// it (or 3 s pass); true if it closed.
bool node_closes_after(const std::string& address, const std::string& bytes) {
  int fd = tcp_connect(address);
  BOOST_REQUIRE(fd >= 0);
  send_all(fd, bytes);
  timeval tv{3, 0};
  ::setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof tv);
  char buf[4096];
  bool closed = false;
  for (;;) {
    auto n = ::recv(fd, buf, sizeof buf, 0);
    if (n == 0) {
      closed = true;
      break;
    }
    if (n < 0)
      break; // timed out: still open
  }
  ::close(fd);
  return closed;
}

} // namespace

BOOST_AUTO_TEST_CASE(hostile_bytes_on_the_node_port_are_refused_and_the_node_keeps_serving) {
  cluster c{"node_port"};
  auto& head = c.start_head({}, 2);
  std::string address = head.info.value("node_address", std::string());
  BOOST_REQUIRE(!address.empty());
  std::string token = trim(read_file(head.token_file()));
  std::mt19937 rng{42};
  std::string random(64 * 1024, '\0');
  for (auto& ch : random)
    ch = static_cast<char>(rng());

  BOOST_CHECK(node_closes_after(address, random));
  // A frame claiming 1 GiB (above the 64 MiB limit): refused at once.
  BOOST_CHECK(node_closes_after(address, frame(1, "", 1u << 30)));
  // An empty frame.
  BOOST_CHECK(node_closes_after(address, std::string(4, '\0')));
  // A LEASE before any HELLO.
  BOOST_CHECK(node_closes_after(address, frame(3, "\x90")));
  // A HELLO with the wrong token, and one that is not msgpack at all.
  BOOST_CHECK(node_closes_after(address, frame(1, hello_payload("wrong"))));
  BOOST_CHECK(node_closes_after(address, frame(1, "not msgpack")));
  // The right token, then garbage of a known type and an unknown type.
  BOOST_CHECK(node_closes_after(address, frame(1, hello_payload(token)) + frame(3, "\xc1")));
  BOOST_CHECK(node_closes_after(address, frame(1, hello_payload(token)) + frame(200, "x")));
  // A truncated frame, then the connection dropped half way.
  {
    int fd = tcp_connect(address);
    BOOST_REQUIRE(fd >= 0);
    send_all(fd, frame(1, hello_payload(token)).substr(0, 7));
    ::close(fd);
  }
  // A PUT claiming more than the node could ever hold, then a hang-up.
  {
    int fd = tcp_connect(address);
    BOOST_REQUIRE(fd >= 0);
    // ["id", 2^62, "job-x"]
    std::string put = std::string("\x93\xa2id\xcf\x40\x00\x00\x00\x00\x00\x00\x00\xa5job-x", 17);
    send_all(fd, frame(1, hello_payload(token)) + frame(20, put) + frame(21, "abc"));
    ::close(fd);
  }
  // Shared puts (PUT_ALLOC 50, PUT_COMMIT 52): before HELLO, malformed,
  // absurd sizes, a commit of nothing pending, and an allocation left
  // pending when the connection drops.
  {
    std::string alloc = std::string("\x92\xa2id\xcf\x40\x00\x00\x00\x00\x00\x00\x00", 13);
    std::string small = std::string("\x92\xa2ok\xce\x00\x10\x00\x00", 9); // 1 MiB
    BOOST_CHECK(node_closes_after(address, frame(50, small)));
    BOOST_CHECK(node_closes_after(address, frame(1, hello_payload(token)) + frame(50, "\xc1")));
    BOOST_CHECK(node_closes_after(address, frame(1, hello_payload(token)) + frame(50, alloc)));
    BOOST_CHECK(node_closes_after(address, frame(1, hello_payload(token))
                                             + frame(52, std::string("\x91\xa2id", 4))));
    int fd = tcp_connect(address);
    BOOST_REQUIRE(fd >= 0);
    send_all(fd, frame(1, hello_payload(token)) + frame(50, small));
    ::close(fd);
  }

  // The node is alive, ALIVE in the GCS, and runs tasks for a real driver.
  BOOST_CHECK(pid_alive(head.pid()));
  auto status = c.status_json();
  BOOST_CHECK_EQUAL(node_state(status, head.node_id()), "ALIVE");
  auto j = run_case(c, "types", {});
  BOOST_CHECK_EQUAL(j["after"].get<int>(), 42);
}
