// rayctl's actor-level scripting (issue 11; docs/cli.md "Scripting"), in the
// cluster: `rayctl call` of a task library's function, `rayctl actor create`
// of its actor class with JSON constructor arguments, `rayctl actor call`
// by name with JSON arguments and results, `--stdin` with 10,000 lines in
// order, and the exit codes of every error (usage 2, not found 3, remote
// error 4) with their JSON on stdout under --json.

#define BOOST_TEST_MODULE scripting
#include <boost/test/unit_test.hpp>

#include <cstdlib>
#include <string>
#include <thread>
#include <vector>

#include "tests/integration/harness.hpp"

using namespace rayd::integration;

namespace {

std::string task_lib() {
  if (const char* p = std::getenv("RAYD_TASK_LIB"); p != nullptr && *p != '\0')
    return p;
  return bin_dir() + "/../tests/integration/libtask_lib.so";
}

std::string actor_driver() {
  if (const char* p = std::getenv("RAYD_ACTOR_DRIVER"); p != nullptr && *p != '\0')
    return p;
  return bin_dir() + "/../tests/integration/actor_driver";
}

/// The JSON object on the last line of `out`.
json last(const std::string& out) {
  auto lines = nonempty_lines(out);
  return lines.empty() ? json(json::value_t::discarded)
                       : json::parse(lines.back(), nullptr, false);
}

struct scripted {
  cluster c{"scripting"};
  scripted() {
    c.start_head({}, 2);
  }
  exec_result rayctl(std::vector<std::string> args, milliseconds timeout = 60s) {
    return c.rayctl(args, timeout);
  }
};

} // namespace

BOOST_AUTO_TEST_CASE(functions_and_actors_are_called_with_json) {
  scripted s;
  auto lib = task_lib();
  auto r = s.rayctl({"call", "lib_triple", "[14]", "--lib", lib});
  BOOST_REQUIRE_MESSAGE(r.exit_code == 0, r.describe());
  BOOST_CHECK_EQUAL(trim(r.out), "42");
  r = s.rayctl({"call", "lib_greet", "[\"bob\"]", "--lib", lib, "--json"});
  BOOST_CHECK_EQUAL(last(r.out).value("result", ""), "hello, bob (from the task library)");

  r = s.rayctl({"actor", "create", "LibCounter", "[10]", "--lib", lib, "--name", "counter",
                "--json"});
  BOOST_REQUIRE_MESSAGE(r.exit_code == 0, r.describe());
  auto created = last(r.out);
  BOOST_CHECK_EQUAL(created.value("class", ""), "LibCounter");
  BOOST_CHECK(!created.value("actor_id", "").empty());
  // It outlives the rayctl that created it (longer than the 2 s after
  // which an owner's actors would die).
  std::this_thread::sleep_for(2500ms);
  r = s.rayctl({"actor", "call", "counter", "add", "[5]"});
  BOOST_REQUIRE_MESSAGE(r.exit_code == 0, r.describe());
  BOOST_CHECK_EQUAL(trim(r.out), "15");
  r = s.rayctl({"actor", "call", created.value("actor_id", ""), "tag", "[\"ann\", true]",
                "--json"});
  BOOST_CHECK_EQUAL(last(r.out).value("result", ""), "HELLO ann at 15");
  BOOST_CHECK_EQUAL(s.rayctl({"actor", "kill", "counter"}).exit_code, 0);
}

BOOST_AUTO_TEST_CASE(stdin_answers_ten_thousand_lines_in_order) {
  scripted s;
  auto lib = task_lib();
  BOOST_REQUIRE_EQUAL(
    s.rayctl({"actor", "create", "LibCounter", "[0]", "--lib", lib, "--name", "pipe"}).exit_code,
    0);
  std::string input;
  for (int i = 0; i < 10000; ++i)
    input += "{\"actor\": \"pipe\", \"method\": \"add\", \"args\": [1]}\n";
  input += "not json\n";
  input += "{\"actor\": \"pipe\", \"method\": \"value\"}\n";
  auto in_path = s.c.root() + "/lines.jsonl";
  BOOST_REQUIRE(write_file(in_path, input));
  auto r = run({"/bin/sh", "-c",
                "\"$0\" --address \"$1\" --token-file \"$2\" actor call --stdin < \"$3\"",
                rayctl_bin(), s.c.head().api_address(), s.c.head().token_file(), in_path},
               {{"RAYD_TMPDIR", s.c.rayd_tmpdir()}}, 120s);
  auto lines = nonempty_lines(r.out);
  BOOST_REQUIRE_EQUAL(lines.size(), 10002u);
  bool in_order = true;
  for (int i = 0; i < 10000; ++i)
    in_order = in_order && json::parse(lines[i]).value("result", -1) == i + 1;
  BOOST_CHECK(in_order);
  auto bad = json::parse(lines[10000]);
  BOOST_CHECK_EQUAL(bad["error"].value("code", 0), 2);
  BOOST_CHECK_EQUAL(json::parse(lines[10001]).value("result", -1), 10000);
  BOOST_CHECK_EQUAL(r.exit_code, 2); // the worst line's code
}

BOOST_AUTO_TEST_CASE(every_error_has_its_exit_code_and_json) {
  scripted s;
  auto lib = task_lib();
  BOOST_REQUIRE_EQUAL(
    s.rayctl({"actor", "create", "LibCounter", "[1]", "--lib", lib, "--name", "e"}).exit_code, 0);
  struct expect {
    std::vector<std::string> args;
    int code;
    std::string says;
  };
  std::vector<expect> cases{
    {{"actor", "call", "e", "add", "[\"x\"]"}, 2, "argument 1: expected int64, got string"},
    {{"actor", "call", "e", "add", "[1, 2]"}, 2, "expects 1 argument"},
    {{"actor", "call", "e", "add", "{not json"}, 2, ""},
    {{"actor", "call", "e", "nope"}, 3, "has no method nope"},
    {{"actor", "call", "nobody", "add", "[1]"}, 3, "no live actor"},
    {{"actor", "call", "e", "fail", "[\"on purpose\"]"}, 4, "on purpose"},
    {{"call", "no_such_function", "[]", "--lib", lib}, 3, "no function"},
    {{"call", "lib_triple", "[true]", "--lib", lib}, 2, "expected int32"},
    {{"actor", "create", "NoClass", "[]", "--lib", lib}, 3, "no actor class"},
  };
  for (auto& e : cases) {
    auto args = e.args;
    args.push_back("--json");
    auto r = s.rayctl(args);
    BOOST_CHECK_MESSAGE(r.exit_code == e.code, r.describe());
    auto j = last(r.out);
    BOOST_CHECK_MESSAGE(j.is_object() && j.contains("error"), r.describe());
    if (j.is_object() && j.contains("error")) {
      BOOST_CHECK_EQUAL(j["error"].value("code", 0), e.code);
      BOOST_CHECK_MESSAGE(j["error"].value("message", "").find(e.says) != std::string::npos,
                          j.dump());
    }
    // Without --json: one line on stderr, nothing on stdout.
    auto plain = s.rayctl(e.args);
    BOOST_CHECK_EQUAL(plain.exit_code, e.code);
    BOOST_CHECK(trim(plain.out).empty());
    BOOST_CHECK_EQUAL(nonempty_lines(plain.err).size(), 1u);
  }
}

BOOST_AUTO_TEST_CASE(an_actor_a_cpp_driver_created_is_called_by_name) {
  // The driver's runtime publishes the class's signatures when it creates
  // the first actor of it: rayctl needs no library.
  scripted s;
  auto r = run({actor_driver(), "--case", "named", "name=kv", "ns=t", "start=40"},
               {{"RAYD_ADDRESS", s.c.head().api_address()},
                {"RAYD_TOKEN", trim(read_file(s.c.head().token_file()))},
                {"RAYD_TMPDIR", s.c.rayd_tmpdir()}},
               60s);
  BOOST_REQUIRE_MESSAGE(r.exit_code == 0, r.describe());
  auto call = s.rayctl({"actor", "call", "kv", "add", "[1]", "--namespace", "t"});
  BOOST_REQUIRE_MESSAGE(call.exit_code == 0, call.describe());
  BOOST_CHECK_EQUAL(trim(call.out), "43"); // 40, +2 by the driver, +1 here
  auto bad = s.rayctl({"actor", "call", "kv", "add", "[1.5]", "--namespace", "t"});
  BOOST_CHECK_EQUAL(bad.exit_code, 2);
  BOOST_CHECK(bad.err.find("expected int32") != std::string::npos);
}

BOOST_AUTO_TEST_CASE(programs_by_binary_and_rayctl_as_a_remote_client) {
  scripted s;
  // Through the API port alone (docs/client.md): rayctl as a remote client.
  auto remote = [&s](std::vector<std::string> args) {
    args.insert(args.end(), {"--address", "rayd://" + s.c.head().api_address(), "--token-file",
                             s.c.head().token_file()});
    args.insert(args.begin(), rayctl_bin());
    return run(args, s.c.base_env(), 60s);
  };
  // A class registered in a program, not a library: its workers run it.
  auto r = remote({"actor", "create", "Counter", "[3]", "--binary", actor_driver(), "--name",
                   "bin-counter"});
  BOOST_REQUIRE_MESSAGE(r.exit_code == 0, r.describe());
  r = remote({"actor", "call", "bin-counter", "add", "[4]"});
  BOOST_REQUIRE_MESSAGE(r.exit_code == 0, r.describe());
  BOOST_CHECK_EQUAL(trim(r.out), "7");
  // The same actor from inside the cluster (signatures were published).
  r = s.rayctl({"actor", "call", "bin-counter", "value"});
  BOOST_CHECK_EQUAL(trim(r.out), "7");
  // A function of a program, as a remote client.
  r = remote({"call", "lib_triple", "[5]", "--lib", task_lib()});
  BOOST_CHECK_MESSAGE(r.exit_code == 0 && trim(r.out) == "15", r.describe());
  // Errors: not a rayd program, both flags, neither.
  r = remote({"call", "x", "--binary", "/bin/true"});
  BOOST_CHECK_EQUAL(r.exit_code, 2);
  BOOST_CHECK(r.err.find("registers no functions or classes") != std::string::npos);
  r = remote({"call", "x", "--binary", actor_driver(), "--lib", task_lib()});
  BOOST_CHECK_EQUAL(r.exit_code, 2);
  r = remote({"actor", "create", "Counter", "[1]"});
  BOOST_CHECK_EQUAL(r.exit_code, 2);
  BOOST_CHECK(r.err.find("exactly one of --lib PATH") != std::string::npos);
  r = remote({"actor", "create", "NoSuchClass", "--binary", actor_driver()});
  BOOST_CHECK_EQUAL(r.exit_code, 3);
  BOOST_CHECK_EQUAL(s.rayctl({"actor", "kill", "bin-counter"}).exit_code, 0);
}
