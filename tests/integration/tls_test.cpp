// TLS on the head's API port and the version handshake (docs/cli.md, "TLS";
// docs/architecture.md, "Connections and timeouts"), against real heads on
// loopback. The certificates are made here with the openssl command: a CA and
// a head certificate it signed (CN and IP SAN 127.0.0.1), and an unrelated
// self-signed "wrong CA".
//
// What fails when the feature breaks:
//  - rayd refuses half or mismatched TLS flags (exit 2, before starting);
//  - rayctl with the right CA works, with a wrong CA / no CA / against a
//    plain head fails in one line within a bound, the head keeps serving;
//  - a loopback tap between rayctl and the head sees the token in the plain
//    case (the tap works) and never with TLS (first bytes: a TLS handshake);
//  - a plain-text peer on the TLS port is closed at once, a silent one at
//    the 5 s authentication deadline (the handshake is inside that window);
//  - a client claiming another API version fails naming both, within a bound.

#define BOOST_TEST_MODULE tls
#include <boost/test/unit_test.hpp>

#include <arpa/inet.h>
#include <netinet/in.h>
#include <poll.h>
#include <sys/socket.h>
#include <unistd.h>

#include <atomic>
#include <mutex>
#include <thread>

#include "common/error.hpp"
#include "schemas/api_client.hpp"
#include "schemas/rayd_api.capnp.h"
#include "tests/integration/harness.hpp"

using namespace rayd::integration;

namespace {

/// A CA, a head certificate signed by it for 127.0.0.1, and a wrong CA.
struct pki {
  std::string dir;
  std::string ca, head_cert, head_key, wrong_ca, wrong_key;
  bool ok = false;
  std::string why;

  explicit pki(const std::string& d) : dir(d) {
    ca = dir + "/ca.pem";
    head_cert = dir + "/head.pem";
    head_key = dir + "/head.key";
    wrong_ca = dir + "/wrong.pem";
    wrong_key = dir + "/wrong.key";
    auto sh = [this](const std::string& cmd) {
      auto r = run({"/bin/sh", "-c", cmd}, {}, 60s);
      if (r.exit_code != 0)
        why = "openssl: " + r.describe();
      return r.exit_code == 0;
    };
    const std::string quiet = " 2>/dev/null";
    ok = sh("command -v openssl >/dev/null")
         && sh("cd " + dir
               + " && openssl req -x509 -newkey rsa:2048 -nodes -keyout ca.key -out ca.pem"
                 " -days 2 -subj /CN=rayd-test-ca"
               + quiet
               + " && openssl req -newkey rsa:2048 -nodes -keyout head.key -out head.csr"
                 " -subj /CN=127.0.0.1"
               + quiet
               + " && printf 'subjectAltName=IP:127.0.0.1\\n' > head.ext"
                 " && openssl x509 -req -in head.csr -CA ca.pem -CAkey ca.key"
                 " -CAcreateserial -out head.pem -days 2 -extfile head.ext"
               + quiet
               // The one-command self-signed pair of docs/cli.md, as the wrong CA.
               + " && openssl req -x509 -newkey rsa:2048 -nodes -keyout wrong.key"
                 " -out wrong.pem -days 2 -subj /CN=127.0.0.1"
                 " -addext subjectAltName=IP:127.0.0.1"
               + quiet);
    if (!ok && why.empty())
      why = "the openssl command is missing (scripts/deps.sh installs it)";
  }
};

/// A loopback TCP tap: forwards one connection at a time to `upstream` and
/// records every byte the client sent.
class tap {
public:
  explicit tap(uint16_t upstream) : upstream_(upstream) {
    lfd_ = ::socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
    sockaddr_in a{};
    a.sin_family = AF_INET;
    a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    ::bind(lfd_, reinterpret_cast<sockaddr*>(&a), sizeof(a));
    ::listen(lfd_, 8);
    socklen_t len = sizeof(a);
    ::getsockname(lfd_, reinterpret_cast<sockaddr*>(&a), &len);
    port_ = ntohs(a.sin_port);
    thread_ = std::thread([this] { loop(); });
  }
  ~tap() {
    stop_ = true;
    thread_.join();
    ::close(lfd_);
  }
  std::string address() const {
    return "127.0.0.1:" + std::to_string(port_);
  }
  std::string sent() {
    std::lock_guard<std::mutex> g{mu_};
    return sent_;
  }

private:
  void loop() {
    while (!stop_) {
      pollfd p{lfd_, POLLIN, 0};
      if (::poll(&p, 1, 50) <= 0)
        continue;
      int c = ::accept4(lfd_, nullptr, nullptr, SOCK_CLOEXEC);
      if (c < 0)
        continue;
      int u = ::socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
      sockaddr_in a{};
      a.sin_family = AF_INET;
      a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
      a.sin_port = htons(upstream_);
      if (::connect(u, reinterpret_cast<sockaddr*>(&a), sizeof(a)) == 0)
        pump(c, u);
      ::close(u);
      ::close(c);
    }
  }
  void pump(int c, int u) {
    char buf[16384];
    while (!stop_) {
      pollfd p[2] = {{c, POLLIN, 0}, {u, POLLIN, 0}};
      if (::poll(p, 2, 50) <= 0)
        continue;
      if (p[0].revents != 0) {
        auto n = ::read(c, buf, sizeof(buf));
        if (n <= 0)
          return;
        {
          std::lock_guard<std::mutex> g{mu_};
          sent_.append(buf, static_cast<size_t>(n));
        }
        if (::write(u, buf, static_cast<size_t>(n)) != n)
          return;
      }
      if (p[1].revents != 0) {
        auto n = ::read(u, buf, sizeof(buf));
        if (n <= 0 || ::write(c, buf, static_cast<size_t>(n)) != n)
          return;
      }
    }
  }

  uint16_t upstream_;
  int lfd_ = -1;
  uint16_t port_ = 0;
  std::atomic<bool> stop_{false};
  std::mutex mu_;
  std::string sent_;
  std::thread thread_;
};

/// A TCP connection to 127.0.0.1:`port`, or -1.
int connect_raw(uint16_t port) {
  int fd = ::socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
  sockaddr_in a{};
  a.sin_family = AF_INET;
  a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  a.sin_port = htons(port);
  if (::connect(fd, reinterpret_cast<sockaddr*>(&a), sizeof(a)) != 0) {
    ::close(fd);
    return -1;
  }
  return fd;
}

/// Waits until the peer closes `fd` (EOF or error); false at `deadline_ms`.
bool wait_closed(int fd, int64_t deadline_ms) {
  while (now_ms() < deadline_ms) {
    pollfd p{fd, POLLIN, 0};
    if (::poll(&p, 1, 100) > 0) {
      char buf[256];
      if (::read(fd, buf, sizeof(buf)) <= 0)
        return true;
    }
  }
  return false;
}

/// rayctl status against `address` with the head's token and extra flags.
exec_result rayctl_status(cluster& c, const std::string& address,
                          const std::vector<std::string>& extra, const env_list& env = {}) {
  std::vector<std::string> argv{rayctl_bin(), "--address", address, "--token-file",
                                c.head().token_file()};
  argv.insert(argv.end(), extra.begin(), extra.end());
  argv.push_back("status");
  auto e = c.base_env();
  e.insert(e.end(), env.begin(), env.end());
  return run(argv, e, 20s);
}

} // namespace

BOOST_AUTO_TEST_CASE(tls_flags_are_checked_before_starting) {
  if (!require_or_skip(binaries_present(), "rayd/rayctl binaries not built"))
    return;
  temp_dir tmp{"rayd_tls_flags"};
  pki keys{tmp.path()};
  if (!require_or_skip(keys.ok, keys.why))
    return;
  auto session = tmp.path() + "/s";
  session_guard guard{session};
  std::vector<std::string> base{rayd_bin(), "--head", "--port", "0", "--api-port", "0",
                                "--session-dir", session};
  auto with = [&base](std::vector<std::string> more) {
    auto v = base;
    v.insert(v.end(), more.begin(), more.end());
    return v;
  };
  auto half = run(with({"--tls-cert", keys.head_cert}), {}, 10s);
  BOOST_CHECK_EQUAL(half.exit_code, 2);
  BOOST_CHECK_MESSAGE(contains_ci(half.err, "both --tls-cert and --tls-key"), half.describe());
  auto mismatched = run(with({"--tls-cert", keys.head_cert, "--tls-key", keys.wrong_key}), {},
                        10s);
  BOOST_CHECK_EQUAL(mismatched.exit_code, 2);
  BOOST_CHECK_MESSAGE(contains_ci(mismatched.err, "is not the key of the certificate"),
                      mismatched.describe());
  auto missing
    = run(with({"--tls-cert", tmp.path() + "/nope.pem", "--tls-key", keys.head_key}), {}, 10s);
  BOOST_CHECK_EQUAL(missing.exit_code, 2);
  BOOST_CHECK_MESSAGE(contains_ci(missing.err, "cannot read"), missing.describe());
  // Nothing started: no node.json.
  BOOST_CHECK(!file_exists(session + "/node.json"));
}

BOOST_AUTO_TEST_CASE(tls_head_refuses_wrong_ca_and_plain_clients) {
  if (!require_or_skip(binaries_present(), "rayd/rayctl binaries not built"))
    return;
  cluster c{"tls"};
  pki keys{c.root()};
  if (!require_or_skip(keys.ok, keys.why))
    return;
  auto& head = c.start_head({"--tls-cert", keys.head_cert, "--tls-key", keys.head_key}, 1);
  auto address = head.api_address();
  BOOST_CHECK_EQUAL(head.info.value("api_tls", false), true);
  // A peer that connects and never starts a handshake: closed by the 5 s
  // authentication deadline (checked at the end of the case).
  int silent = connect_raw(port_of(address));
  auto silent_since = now_ms();
  BOOST_REQUIRE_GE(silent, 0);

  // The right CA, by flag and by RAYD_TLS_CA.
  auto good = rayctl_status(c, address, {"--tls-ca", keys.ca});
  BOOST_REQUIRE_MESSAGE(good.exit_code == 0, good.describe());
  auto by_env = rayctl_status(c, address, {}, {{"RAYD_TLS_CA", keys.ca}});
  BOOST_CHECK_MESSAGE(by_env.exit_code == 0, by_env.describe());

  // A wrong CA: refused in one line, fast.
  auto wrong = rayctl_status(c, address, {"--tls-ca", keys.wrong_ca});
  BOOST_CHECK_EQUAL(wrong.exit_code, 1);
  BOOST_CHECK_MESSAGE(contains_ci(wrong.err, "presents a certificate not signed by CA "
                                               + keys.wrong_ca),
                      wrong.describe());
  BOOST_CHECK_EQUAL(nonempty_lines(wrong.err).size(), 1u);
  BOOST_CHECK_LT(wrong.elapsed_ms, 5000);

  // No CA: told the head speaks TLS.
  auto none = rayctl_status(c, address, {});
  BOOST_CHECK_EQUAL(none.exit_code, 1);
  BOOST_CHECK_MESSAGE(contains_ci(none.err, "speaks TLS: give --tls-ca or RAYD_TLS_CA"),
                      none.describe());
  BOOST_CHECK_LT(none.elapsed_ms, 5000);

  // A raw plain-text peer: the head closes it (a failed handshake), well
  // within the 5 s authentication window, and keeps serving.
  {
    int fd = connect_raw(port_of(address));
    BOOST_REQUIRE_GE(fd, 0);
    const char plain[] = "\x00\x00\x00\x00\x10\x00\x00\x00plain cap'n proto, no TLS......";
    BOOST_REQUIRE_GT(::write(fd, plain, sizeof(plain)), 0);
    auto t0 = now_ms();
    bool closed = wait_closed(fd, t0 + 7000);
    ::close(fd);
    BOOST_CHECK_MESSAGE(closed, "the TLS port kept a plain-text connection open");
    BOOST_CHECK_LT(now_ms() - t0, 4000); // a failed handshake, not the deadline
  }
  auto still = rayctl_status(c, address, {"--tls-ca", keys.ca});
  BOOST_CHECK_MESSAGE(still.exit_code == 0, still.describe());

  // The token never crosses in clear: every byte rayctl sent through a
  // loopback tap, the first of them a TLS handshake record.
  auto token = trim(read_file(head.token_file()));
  BOOST_REQUIRE(!token.empty());
  tap t{port_of(address)};
  auto tapped = rayctl_status(c, t.address(), {"--tls-ca", keys.ca});
  BOOST_CHECK_MESSAGE(tapped.exit_code == 0, tapped.describe());
  auto bytes = t.sent();
  BOOST_REQUIRE_GT(bytes.size(), 100u);
  BOOST_CHECK_EQUAL(static_cast<int>(static_cast<unsigned char>(bytes[0])), 0x16);
  BOOST_CHECK_EQUAL(static_cast<int>(static_cast<unsigned char>(bytes[1])), 0x03);
  BOOST_CHECK_MESSAGE(bytes.find(token) == std::string::npos,
                      "the token crossed the TLS port in clear");

  // The version handshake over TLS: another version is named, fast.
  rayd::rpc::connect_options o;
  o.tls_ca = keys.ca;
  o.claimed_api_version = rayd::schema::CURRENT_API_VERSION + 1;
  auto t0 = now_ms();
  auto cl = rayd::rpc::client::connect(address, token, o);
  BOOST_REQUIRE(!cl);
  auto what = rayd::describe(cl.error());
  BOOST_CHECK_MESSAGE(
    what.find("speaks API version " + std::to_string(rayd::schema::CURRENT_API_VERSION)
              + ", this client API version "
              + std::to_string(rayd::schema::CURRENT_API_VERSION + 1))
      != std::string::npos,
    what);
  BOOST_CHECK_LT(now_ms() - t0, 5000);

  // The silent peer: open while the others were served, closed at the 5 s
  // deadline (not before 4 s: the handshake does not close it by itself).
  bool silent_closed = wait_closed(silent, silent_since + 9000);
  auto silent_ms = now_ms() - silent_since;
  ::close(silent);
  BOOST_CHECK_MESSAGE(silent_closed, "a silent connection outlived the 5 s deadline");
  BOOST_CHECK_MESSAGE(silent_ms >= 4000, "closed after " << silent_ms << " ms");
}

BOOST_AUTO_TEST_CASE(self_signed_pair_and_local_discovery) {
  if (!require_or_skip(binaries_present(), "rayd/rayctl binaries not built"))
    return;
  cluster c{"tls_local"};
  pki keys{c.root()};
  if (!require_or_skip(keys.ok, keys.why))
    return;
  // The one-command self-signed pair of docs/cli.md (keys.wrong_*), the head's
  // session under RAYD_TMPDIR so local tools find its node.json.
  auto& head = c.start_head({"--tls-cert", keys.wrong_ca, "--tls-key", keys.wrong_key}, 1,
                            c.rayd_tmpdir() + "/session_tls");
  BOOST_CHECK_EQUAL(head.info.value("api_tls", false), true);
  BOOST_CHECK_EQUAL(head.info.value("api_tls_cert", std::string{}), keys.wrong_ca);
  // The certificate as its own CA.
  auto explicit_ca = rayctl_status(c, head.api_address(), {"--tls-ca", keys.wrong_ca});
  BOOST_CHECK_MESSAGE(explicit_ca.exit_code == 0, explicit_ca.describe());
  // No CA given: the local head's node.json names its certificate.
  auto local = rayctl_status(c, head.api_address(), {});
  BOOST_CHECK_MESSAGE(local.exit_code == 0, local.describe());
  // The CA of another head is refused even so.
  auto other = rayctl_status(c, head.api_address(), {"--tls-ca", keys.ca});
  BOOST_CHECK_EQUAL(other.exit_code, 1);
  BOOST_CHECK_MESSAGE(contains_ci(other.err, "not signed by CA"), other.describe());
}

BOOST_AUTO_TEST_CASE(plain_head_version_mismatch_and_tls_client) {
  if (!require_or_skip(binaries_present(), "rayd/rayctl binaries not built"))
    return;
  cluster c{"plain"};
  pki keys{c.root()};
  if (!require_or_skip(keys.ok, keys.why))
    return;
  auto& head = c.start_head({}, 1);
  auto address = head.api_address();
  auto token = trim(read_file(head.token_file()));

  // The tap sees the token here: it does see what crosses.
  {
    tap t{port_of(address)};
    auto tapped = rayctl_status(c, t.address(), {});
    BOOST_CHECK_MESSAGE(tapped.exit_code == 0, tapped.describe());
    BOOST_CHECK_MESSAGE(t.sent().find(token) != std::string::npos,
                        "the tap did not see the plain token: it proves nothing");
  }

  // A TLS client against a plain head: one line, fast.
  auto tls_client = rayctl_status(c, address, {"--tls-ca", keys.ca});
  BOOST_CHECK_EQUAL(tls_client.exit_code, 1);
  BOOST_CHECK_MESSAGE(contains_ci(tls_client.err, "does not speak TLS"), tls_client.describe());
  BOOST_CHECK_LT(tls_client.elapsed_ms, 5000);

  // Version mismatch, both directions of "newer".
  for (uint32_t claimed : {rayd::schema::CURRENT_API_VERSION + 1, uint32_t{0}}) {
    rayd::rpc::connect_options o;
    o.claimed_api_version = claimed;
    auto t0 = now_ms();
    auto cl = rayd::rpc::client::connect(address, token, o);
    BOOST_REQUIRE(!cl);
    auto what = rayd::describe(cl.error());
    BOOST_CHECK_MESSAGE(what.find("this client API version " + std::to_string(claimed))
                          != std::string::npos,
                        what);
    BOOST_CHECK_EQUAL(what.find('\n'), std::string::npos);
    BOOST_CHECK_LT(now_ms() - t0, 5000);
  }
  // The same version still works.
  auto ok = rayd::rpc::client::connect(address, token, rayd::rpc::connect_options{});
  if (!ok)
    BOOST_FAIL("connect: " + rayd::describe(ok.error()));
  BOOST_CHECK((*ok)->status());
}
