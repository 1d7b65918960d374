// Unit tests of the shared helpers: flag/JSON parsing, addresses, tokens,
// session files.
#define BOOST_TEST_MODULE common
#include <boost/test/unit_test.hpp>

#include <sys/stat.h>
#include <unistd.h>

#include <cstdlib>
#include <filesystem>

#include "common/error.hpp"
#include "common/session.hpp"
#include "common/token.hpp"
#include "common/util.hpp"

using namespace rayd;
namespace fs = std::filesystem;

namespace {

struct temp_dir {
  std::string path;
  temp_dir() {
    char tmpl[] = "/tmp/rayd-unit-XXXXXX";
    path = ::mkdtemp(tmpl);
  }
  ~temp_dir() {
    std::error_code ec;
    fs::remove_all(path, ec);
  }
};

} // namespace

BOOST_AUTO_TEST_CASE(resources_json) {
  auto ok = parse_resources_json(R"({"ssd": 2, "x": 0.5})", "--resources");
  BOOST_REQUIRE(ok);
  BOOST_CHECK_EQUAL(ok->at("ssd"), 2);
  BOOST_CHECK_EQUAL(ok->at("x"), 0.5);
  for (auto* bad : {"{bad", "[1]", R"({"a": "1"})", R"({"a": -1})", R"({"": 1})"}) {
    auto r = parse_resources_json(bad, "--resources");
    BOOST_REQUIRE_MESSAGE(!r, bad);
    BOOST_CHECK(code_of(r.error()) == errc::invalid_argument);
    BOOST_CHECK(describe(r.error()).find("--resources") != std::string::npos);
    BOOST_CHECK(describe(r.error()).find('\n') == std::string::npos);
  }
}

BOOST_AUTO_TEST_CASE(labels_json) {
  auto ok = parse_labels_json(R"({"zone": "a"})", "--labels");
  BOOST_REQUIRE(ok);
  BOOST_CHECK_EQUAL(ok->at("zone"), "a");
  BOOST_CHECK(!parse_labels_json(R"({"a": 1})", "--labels"));
  BOOST_CHECK(!parse_labels_json("nope", "--labels"));
}

BOOST_AUTO_TEST_CASE(host_port_parsing) {
  auto hp = parse_host_port("127.0.0.1:6379");
  BOOST_REQUIRE(hp);
  BOOST_CHECK_EQUAL(hp->host, "127.0.0.1");
  BOOST_CHECK_EQUAL(hp->port, 6379);
  auto v6 = parse_host_port("[::1]:80");
  BOOST_REQUIRE(v6);
  BOOST_CHECK_EQUAL(v6->host, "::1");
  BOOST_CHECK_EQUAL(v6->to_string(), "[::1]:80");
  for (auto* bad : {"", "host", ":80", "h:", "h:65536", "h:8x", "h:123456"})
    BOOST_CHECK_MESSAGE(!parse_host_port(bad), bad);
}

BOOST_AUTO_TEST_CASE(tokens) {
  auto t = generate_token();
  BOOST_CHECK_EQUAL(t.size(), 64u);
  BOOST_CHECK(t != generate_token());
  BOOST_CHECK(token_matches(t, t));
  BOOST_CHECK(!token_matches(t, t.substr(1)));
  BOOST_CHECK(!token_matches(t, ""));
  BOOST_CHECK(!token_matches("", ""));
  auto flipped = t;
  flipped[10] = flipped[10] == 'a' ? 'b' : 'a';
  BOOST_CHECK(!token_matches(t, flipped));
}

BOOST_AUTO_TEST_CASE(token_files_are_private) {
  temp_dir d;
  auto path = d.path + "/auth_token";
  BOOST_REQUIRE(!write_token_file(path, "secret"));
  struct stat st{};
  BOOST_REQUIRE(::stat(path.c_str(), &st) == 0);
  BOOST_CHECK_EQUAL(st.st_mode & 0777, 0600);
  auto back = read_token_file(path);
  BOOST_REQUIRE(back);
  BOOST_CHECK_EQUAL(*back, "secret");
  BOOST_CHECK(code_of(read_token_file(d.path + "/missing").error()) == errc::not_found);
}

BOOST_AUTO_TEST_CASE(token_precedence) {
  temp_dir d;
  auto path = d.path + "/tok";
  BOOST_REQUIRE(!write_token_file(path, "from-file"));
  ::unsetenv("RAYD_TOKEN");
  ::unsetenv("RAYD_TOKEN_FILE");
  BOOST_CHECK_EQUAL(*token_from_flags_or_env("flag", path), "flag");
  BOOST_CHECK_EQUAL(*token_from_flags_or_env("", path), "from-file");
  ::setenv("RAYD_TOKEN", "env", 1);
  BOOST_CHECK_EQUAL(*token_from_flags_or_env("", ""), "env");
  ::unsetenv("RAYD_TOKEN");
  ::setenv("RAYD_TOKEN_FILE", path.c_str(), 1);
  BOOST_CHECK_EQUAL(*token_from_flags_or_env("", ""), "from-file");
  ::unsetenv("RAYD_TOKEN_FILE");
  BOOST_CHECK_EQUAL(*token_from_flags_or_env("", ""), "");
}

BOOST_AUTO_TEST_CASE(node_file_round_trip_and_local_lookup) {
  temp_dir d;
  ::setenv("RAYD_TMPDIR", d.path.c_str(), 1);
  auto dir = make_default_session_dir();
  BOOST_REQUIRE(dir);
  BOOST_CHECK(fs::is_symlink(d.path + "/session_latest"));
  node_file nf;
  nf.node_id = "abc";
  nf.is_head = true;
  nf.pid = ::getpid();
  nf.pid_start_ticks = process_start_ticks(::getpid());
  nf.api_address = "127.0.0.1:9";
  nf.cluster_address = "127.0.0.1:8";
  BOOST_REQUIRE(!write_node_file(*dir, nf));
  BOOST_REQUIRE(!write_token_file(*dir + "/auth_token", "tok"));
  auto back = read_node_file(d.path + "/session_latest");
  BOOST_REQUIRE(back);
  BOOST_CHECK_EQUAL(back->node_id, "abc");
  BOOST_CHECK_EQUAL(back->pid_start_ticks, nf.pid_start_ticks);
  BOOST_CHECK_EQUAL(*find_local_token("127.0.0.1:9"), "tok");
  BOOST_CHECK(!find_local_token("127.0.0.1:10"));
  // A remote client names the same port rayd://HOST:PORT.
  BOOST_REQUIRE(find_local_token("rayd://127.0.0.1:9"));
  BOOST_CHECK_EQUAL(*find_local_token("rayd://127.0.0.1:9"), "tok");
  BOOST_CHECK_EQUAL(*find_local_head_session("127.0.0.1:8"), *dir);
  BOOST_CHECK_EQUAL(node_files_under(*dir).size(), 1u);
  ::unsetenv("RAYD_TMPDIR");
}

BOOST_AUTO_TEST_CASE(process_start_ticks_detects_gone_pids) {
  BOOST_CHECK(process_start_ticks(::getpid()) != 0);
  BOOST_CHECK_EQUAL(process_start_ticks(0), 0u);
  BOOST_CHECK_EQUAL(process_start_ticks(999999999), 0u);
}
