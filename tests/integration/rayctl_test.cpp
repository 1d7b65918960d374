#define BOOST_TEST_MODULE rayctl
#include <boost/test/unit_test.hpp>

#include <filesystem>
#include <set>

#include <sys/stat.h>

#include "tests/integration/harness.hpp"

using namespace rayd::integration;
namespace fs = std::filesystem;

namespace {

// A head and a rayctl that names it explicitly.
struct one_head {
  cluster c{"rayctl"};
  rayd_node* head = nullptr;
  one_head() { head = &c.start_head({}, 1); }

  std::string address() const { return head->api_address(); }
  std::string token_file() const { return head->token_file(); }
  std::string token() const { return trim(read_file(head->token_file())); }

  // rayctl with exactly these arguments (no implicit flags) and RAYD_TMPDIR.
  exec_result raw(const std::vector<std::string>& args, env_list env = {}) const {
    std::vector<std::string> argv{rayctl_bin()};
    argv.insert(argv.end(), args.begin(), args.end());
    env_list e = c.base_env();
    e.insert(e.end(), env.begin(), env.end());
    return run(argv, e, 15s);
  }
  // rayctl --address A --token-file F <args>
  exec_result ctl(const std::vector<std::string>& args) const { return c.rayctl(args); }
};

// The keys in `rayctl kv list --json` output: an array of keys or of
// {"key": ...} objects, an object keyed by key, or {"keys": [...]}.
std::set<std::string> keys_of(const json& j) {
  std::set<std::string> keys;
  if (j.is_array()) {
    for (const auto& e : j) {
      if (e.is_string())
        keys.insert(e.get<std::string>());
      else if (e.is_object() && e.contains("key") && e["key"].is_string())
        keys.insert(e["key"].get<std::string>());
    }
  } else if (j.is_object()) {
    if (j.contains("keys") && j["keys"].is_array())
      return keys_of(j["keys"]);
    for (const auto& [k, v] : j.items())
      keys.insert(k);
  }
  return keys;
}

std::set<std::string> list_keys(const one_head& h, std::vector<std::string> extra) {
  std::vector<std::string> args{"kv", "list", "--json"};
  args.insert(args.end(), extra.begin(), extra.end());
  exec_result r = h.ctl(args);
  BOOST_REQUIRE_MESSAGE(r.exit_code == 0, r.describe());
  json j = json::parse(r.out, nullptr, false);
  BOOST_REQUIRE_MESSAGE(!j.is_discarded(), "kv list --json: invalid JSON:\n" << r.out);
  return keys_of(j);
}

void check_one_line_error(const exec_result& r, const std::string& what) {
  auto lines = nonempty_lines(r.err);
  BOOST_CHECK_MESSAGE(lines.size() == 1,
                      what << ": expected one line on stderr, got " << lines.size() << ":\n"
                           << r.err);
}

}  // namespace

BOOST_AUTO_TEST_CASE(kv_put_get_del_list_and_namespaces) {
  one_head h;
  auto ok = [&](const std::vector<std::string>& args) {
    exec_result r = h.ctl(args);
    BOOST_CHECK_MESSAGE(r.exit_code == 0, "rayctl kv ...: " << r.describe());
    return r;
  };
  auto value = [&](const std::vector<std::string>& args) { return trim(ok(args).out); };

  ok({"kv", "put", "alpha", "1"});
  ok({"kv", "put", "beta", "two words"});
  ok({"kv", "put", "pre_x", "3"});
  ok({"kv", "put", "alpha", "in-ns1", "--namespace", "ns1"});
  ok({"kv", "put", "gamma", "g1", "--namespace", "ns1"});

  BOOST_CHECK_EQUAL(value({"kv", "get", "alpha"}), "1");
  BOOST_CHECK_EQUAL(value({"kv", "get", "beta"}), "two words");
  BOOST_CHECK_EQUAL(value({"kv", "get", "alpha", "--namespace", "ns1"}), "in-ns1");
  BOOST_CHECK_EQUAL(value({"kv", "get", "gamma", "--namespace", "ns1"}), "g1");

  // Namespaces are isolated both ways.
  BOOST_CHECK_EQUAL(h.ctl({"kv", "get", "gamma"}).exit_code, 1);
  BOOST_CHECK_EQUAL(h.ctl({"kv", "get", "beta", "--namespace", "ns1"}).exit_code, 1);
  BOOST_CHECK_EQUAL(h.ctl({"kv", "get", "alpha", "--namespace", "ns2"}).exit_code, 1);

  // A missing key: exit 1 with one line on stderr.
  exec_result missing = h.ctl({"kv", "get", "no_such_key"});
  BOOST_CHECK_MESSAGE(missing.exit_code == 1, missing.describe());
  BOOST_CHECK(trim(missing.out).empty());
  check_one_line_error(missing, "kv get of a missing key");

  // Overwrite.
  ok({"kv", "put", "beta", "2"});
  BOOST_CHECK_EQUAL(value({"kv", "get", "beta"}), "2");

  // list, per namespace and by prefix.
  BOOST_CHECK((list_keys(h, {}) == std::set<std::string>{"alpha", "beta", "pre_x"}));
  BOOST_CHECK((list_keys(h, {"--namespace", "ns1"}) == std::set<std::string>{"alpha", "gamma"}));
  BOOST_CHECK((list_keys(h, {"--prefix", "pre_"}) == std::set<std::string>{"pre_x"}));
  BOOST_CHECK((list_keys(h, {"--namespace", "ns1", "--prefix", "g"}) ==
               std::set<std::string>{"gamma"}));
  BOOST_CHECK(list_keys(h, {"--namespace", "empty_ns"}).empty());
  exec_result human = ok({"kv", "list"});
  BOOST_CHECK_MESSAGE(human.out.find("pre_x") != std::string::npos, human.out);

  // del only touches its own namespace.
  ok({"kv", "del", "alpha", "--namespace", "ns1"});
  BOOST_CHECK_EQUAL(h.ctl({"kv", "get", "alpha", "--namespace", "ns1"}).exit_code, 1);
  BOOST_CHECK_EQUAL(value({"kv", "get", "alpha"}), "1");
  ok({"kv", "del", "alpha"});
  BOOST_CHECK_EQUAL(h.ctl({"kv", "get", "alpha"}).exit_code, 1);
  BOOST_CHECK((list_keys(h, {}) == std::set<std::string>{"beta", "pre_x"}));
  BOOST_CHECK((list_keys(h, {"--namespace", "ns1"}) == std::set<std::string>{"gamma"}));
}

BOOST_AUTO_TEST_CASE(address_and_token_flags_before_or_after_the_subcommand) {
  one_head h;
  const std::string a = h.address(), f = h.token_file(), t = h.token();
  BOOST_REQUIRE(!t.empty());

  auto expect_ok = [&](const std::vector<std::string>& args) {
    exec_result r = h.raw(args);
    std::string line;
    for (const auto& s : args)
      line += " " + s;
    BOOST_CHECK_MESSAGE(r.exit_code == 0, "rayctl" << line << ": " << r.describe());
    return r;
  };
  expect_ok({"kv", "put", "k", "after", "--address", a, "--token-file", f});
  BOOST_CHECK_EQUAL(trim(expect_ok({"--address", a, "--token-file", f, "kv", "get", "k"}).out),
                    "after");
  BOOST_CHECK_EQUAL(trim(expect_ok({"kv", "get", "k", "--address", a, "--token", t}).out), "after");
  BOOST_CHECK_EQUAL(trim(expect_ok({"--token", t, "kv", "get", "k", "--address", a}).out), "after");
  expect_ok({"status", "--json", "--address", a, "--token-file", f});
  expect_ok({"--address", a, "status", "--token-file", f});
  expect_ok({"--address", a, "--token", t, "nodes", "--json"});
  expect_ok({"nodes", "--address", a, "--token", t});
  expect_ok({"kv", "list", "--address", a, "--token-file", f});
  expect_ok({"--address", a, "--token-file", f, "kv", "del", "k"});
}

BOOST_AUTO_TEST_CASE(address_and_token_from_the_environment) {
  one_head h;
  exec_result r1 = h.raw({"status", "--json"},
                         {{"RAYD_ADDRESS", h.address()}, {"RAYD_TOKEN_FILE", h.token_file()}});
  BOOST_CHECK_MESSAGE(r1.exit_code == 0, "RAYD_ADDRESS + RAYD_TOKEN_FILE: " << r1.describe());
  json j = json::parse(r1.out, nullptr, false);
  BOOST_CHECK(!j.is_discarded() && find_node(j, h.head->node_id()) != nullptr);

  exec_result r2 = h.raw({"kv", "put", "ek", "ev"},
                         {{"RAYD_ADDRESS", h.address()}, {"RAYD_TOKEN", h.token()}});
  BOOST_CHECK_MESSAGE(r2.exit_code == 0, "RAYD_ADDRESS + RAYD_TOKEN: " << r2.describe());
  BOOST_CHECK_EQUAL(trim(h.ctl({"kv", "get", "ek"}).out), "ev");

  // An explicit flag wins over the environment.
  exec_result r3 = h.raw({"--address", h.address(), "status"},
                         {{"RAYD_ADDRESS", "127.0.0.1:" + std::to_string(unused_port())},
                          {"RAYD_TOKEN_FILE", h.token_file()}});
  BOOST_CHECK_MESSAGE(r3.exit_code == 0, "--address over RAYD_ADDRESS: " << r3.describe());
}

BOOST_AUTO_TEST_CASE(no_flags_at_all_with_session_latest) {
  cluster c("rayctl_latest");
  std::string latest = c.rayd_tmpdir() + "/session_latest";
  // No --session-dir: the head makes $RAYD_TMPDIR/session_<time>_<pid> and the link.
  auto& head = c.spawn_node("head",
                            {rayd_bin(), "--head", "--block", "--port", "0", "--api-port", "0",
                             "--num-cpus", "1"},
                            latest);
  c.set_head(head);
  BOOST_REQUIRE_MESSAGE(c.wait_ready(head, 10s), "no node.json in " << latest << "\n"
                                                                    << head.all_output());
  std::error_code ec;
  BOOST_CHECK(fs::is_symlink(latest, ec));
  fs::path real = fs::canonical(latest, ec);
  BOOST_CHECK_MESSAGE(real.filename().string().rfind("session_", 0) == 0 &&
                          real.parent_path() == fs::canonical(c.rayd_tmpdir()),
                      "session_latest points at " << real);
  BOOST_CHECK(file_exists(latest + "/auth_token"));
  struct stat st {};
  if (::stat((latest + "/auth_token").c_str(), &st) == 0)
    BOOST_CHECK_EQUAL(st.st_mode & 0777, 0600u);

  auto bare = [&](const std::vector<std::string>& args) {
    std::vector<std::string> argv{rayctl_bin()};
    argv.insert(argv.end(), args.begin(), args.end());
    return run(argv, c.base_env(), 15s);
  };
  exec_result s = bare({"status", "--json"});
  BOOST_REQUIRE_MESSAGE(s.exit_code == 0, "rayctl with no flags: " << s.describe());
  json j = json::parse(s.out, nullptr, false);
  BOOST_CHECK(!j.is_discarded() && find_node(j, head.node_id()) != nullptr);
  BOOST_CHECK_EQUAL(bare({"kv", "put", "nk", "nv"}).exit_code, 0);
  BOOST_CHECK_EQUAL(trim(bare({"kv", "get", "nk"}).out), "nv");
  BOOST_CHECK_EQUAL(bare({"status"}).exit_code, 0);

  // --address alone: the token is that of the local head session serving it.
  exec_result by_addr = bare({"--address", head.api_address(), "status"});
  BOOST_CHECK_MESSAGE(by_addr.exit_code == 0, "--address without a token: " << by_addr.describe());

  // A worker started on this host without --session-dir nests under the head's session.
  auto& w = c.spawn_node("w1",
                         {rayd_bin(), "--address=" + head.cluster_address(), "--block",
                          "--token-file", latest + "/auth_token", "--num-cpus", "1"},
                         latest + "/nodes");
  bool nested = wait_until(
      [&] {
        for (const auto& d : fs::directory_iterator(latest + "/nodes", ec)) {
          auto info = read_node_json(d.path().string());
          if (info && (*info)["pid"] == w.pid() &&
              d.path().filename().string().rfind("node_", 0) == 0)
            return true;
        }
        return !w.proc->running();
      },
      10s);
  BOOST_CHECK_MESSAGE(nested && w.proc->running(),
                      "no node.json of the worker under " << latest << "/nodes/node_*");
}

BOOST_AUTO_TEST_CASE(wrong_token_fails_fast_with_one_line) {
  one_head h;
  for (const auto& args : std::vector<std::vector<std::string>>{
           {"--address", h.address(), "--token", "wrong", "status"},
           {"--address", h.address(), "--token", "wrong", "kv", "get", "k"},
       }) {
    exec_result r = h.raw(args);
    BOOST_CHECK_MESSAGE(r.exit_code == 1, "wrong token: " << r.describe());
    BOOST_CHECK_MESSAGE(r.elapsed_ms < 5000, "wrong token took " << r.elapsed_ms << " ms");
    check_one_line_error(r, "wrong token");
  }
  // Nothing was written with the wrong token.
  h.raw({"--address", h.address(), "--token", "wrong", "kv", "put", "wk", "x"});
  BOOST_CHECK_EQUAL(h.ctl({"kv", "get", "wk"}).exit_code, 1);
}

BOOST_AUTO_TEST_CASE(unreachable_head_fails_fast_with_one_line) {
  temp_dir tmp("rayd_it_unreach");
  uint16_t port = unused_port();
  BOOST_REQUIRE(port != 0);
  exec_result r = run({rayctl_bin(), "--address", "127.0.0.1:" + std::to_string(port), "--token",
                       "whatever", "status"},
                      {{"RAYD_TMPDIR", tmp.path()}}, 15s);
  BOOST_CHECK_MESSAGE(r.exit_code == 1, "unreachable head: " << r.describe());
  BOOST_CHECK_MESSAGE(r.elapsed_ms < 5000, "unreachable head took " << r.elapsed_ms << " ms");
  check_one_line_error(r, "unreachable head");
}
