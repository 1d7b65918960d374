// Remote clients through the head's API port (docs/client.md), on loopback:
//  - existing driver programs (actor_driver, task_driver) run unchanged as
//    remote clients (RAYD_ADDRESS=rayd://...) and get the same results;
//  - ClientService at the protocol level: a resent op is answered, not run
//    again (on the same connection and after a resume on a new one), an
//    acknowledged reply is gone, a session not heard from for its grace
//    period expires with a tombstone that says so, an unknown session id is
//    told the head does not know it;
//  - a client and a head of different API versions fail in one line, fast;
//  - TLS: a remote driver with the right CA works, with a wrong CA it is
//    refused with the reason.
// The network-namespace cases (only the API port reachable, cut links, a
// head kill -9) are in remote_client_test.cpp.
#define BOOST_TEST_MODULE client_session

#include <sys/eventfd.h>
#include <unistd.h>

#include <chrono>
#include <cstdlib>
#include <fstream>
#include <future>
#include <iterator>
#include <optional>
#include <string>
#include <thread>
#include <vector>

#include <boost/test/unit_test.hpp>
#include <capnp/ez-rpc.h>

#include "common/client_ops.hpp"
#include "common/error.hpp"
#include "common/util.hpp"
#include "schemas/api_client.hpp"
#include "schemas/rayd_api.capnp.h"
#include "tests/integration/harness.hpp"
#include "tests/integration/tasks_common.hpp"

using namespace rayd::integration;
using namespace std::chrono_literals;
using rayd::client_ops::kind;
using rayd::client_ops::op;
using rayd::client_ops::reply;

namespace {

std::string program(const char* env, const char* name) {
  if (const char* p = std::getenv(env); p != nullptr && *p != '\0')
    return p;
  return bin_dir() + "/../tests/integration/" + name;
}

env_list client_env(cluster& c) {
  auto env = driver_env(c);
  for (auto& [k, v] : env)
    if (k == "RAYD_ADDRESS")
      v = "rayd://" + v;
  return env;
}

json run_client_case(cluster& c, const char* env_name, const char* prog, const std::string& name,
                     const std::vector<std::string>& args = {}) {
  std::vector<std::string> argv{program(env_name, prog), "--case", name};
  argv.insert(argv.end(), args.begin(), args.end());
  auto r = run(argv, client_env(c), 120s);
  BOOST_TEST_MESSAGE(prog << " --case " << name << " as a remote client: " << r.elapsed_ms
                          << " ms");
  json j = last_json(r.out);
  BOOST_REQUIRE_MESSAGE(r.exit_code == 0 && !j.is_discarded(),
                        prog << " --case " << name << " failed: " << r.describe());
  return j;
}

/// A synchronous ClientService caller over rpc::client (its exec is async).
struct raw_client {
  std::unique_ptr<rayd::rpc::client> c;
  int efd = ::eventfd(0, EFD_CLOEXEC | EFD_NONBLOCK);

  raw_client(const std::string& address, const std::string& token) {
    auto x = rayd::rpc::client::connect(address, token);
    BOOST_REQUIRE_MESSAGE(x, "connect: " << (x ? "" : rayd::describe(x.error())));
    c = std::move(*x);
  }
  ~raw_client() {
    c.reset();
    ::close(efd);
  }

  caf::expected<std::vector<reply>> exec(const std::string& sid, uint64_t ack,
                                         const std::vector<op>& ops) {
    std::optional<caf::expected<std::vector<reply>>> out;
    c->session_exec(sid, ack, ops, [&out](caf::expected<std::vector<reply>> r) {
      out = std::move(r);
    });
    auto deadline = std::chrono::steady_clock::now() + 30s;
    while (!out && std::chrono::steady_clock::now() < deadline)
      c->poll(efd, 50ms);
    BOOST_REQUIRE_MESSAGE(out.has_value(), "exec: no answer within 30 s");
    return std::move(*out);
  }
};

std::string read_binary(const std::string& path) {
  std::ifstream in{path, std::ios::binary};
  return {std::istreambuf_iterator<char>{in}, std::istreambuf_iterator<char>{}};
}

/// actor_driver's binary in the blob store: the code a session runs.
rayd::wire::code_ref upload_actor_driver(raw_client& rc) {
  auto bytes = read_binary(program("RAYD_ACTOR_DRIVER", "actor_driver"));
  BOOST_REQUIRE(!bytes.empty());
  auto uri = rc.c->upload_package(bytes);
  BOOST_REQUIRE_MESSAGE(uri, "upload: " << (uri ? "" : rayd::describe(uri.error())));
  auto hash = uri->substr(std::string{"gcs://"}.size());
  hash = hash.substr(0, hash.find('.'));
  rayd::wire::code_ref code;
  code.files.push_back({hash, "actor_driver"});
  return code;
}

op make_op(uint64_t seq, kind k) {
  op o;
  o.seq = seq;
  o.what = k;
  return o;
}

op call_add(uint64_t seq, const std::string& actor, const std::string& result) {
  auto o = make_op(seq, kind::call_actor);
  o.target = actor;
  o.name = "Counter::add";
  o.result = result;
  o.args.push_back({false, std::string(1, '\x01')}); // msgpack 1
  return o;
}

op get_of(uint64_t seq, const std::string& id) {
  auto o = make_op(seq, kind::get);
  o.ids = {id};
  o.timeout_ms = 20000;
  return o;
}

/// The msgpack positive fixint in a get reply's only value.
int fixint(const reply& r) {
  BOOST_REQUIRE_MESSAGE(r.error_kind.empty(), "reply " << r.seq << ": " << r.error);
  BOOST_REQUIRE_EQUAL(r.values.size(), 1u);
  BOOST_REQUIRE_EQUAL(r.values[0].bytes.size(), 1u);
  return static_cast<unsigned char>(r.values[0].bytes[0]);
}

} // namespace

BOOST_AUTO_TEST_CASE(existing_driver_programs_run_unchanged_as_remote_clients) {
  cluster c{"client-parity"};
  c.start_head({}, 2);
  // Actors: call order across threads, names, kills, a throwing constructor,
  // a handle passed to a task.
  auto order = run_client_case(c, "RAYD_ACTOR_DRIVER", "actor_driver", "order", {"create=1"});
  BOOST_CHECK_EQUAL(order.value("in_order", false), true);
  BOOST_CHECK_EQUAL(order.value("total", 0), 8000);
  auto named = run_client_case(c, "RAYD_ACTOR_DRIVER", "actor_driver", "named");
  BOOST_CHECK_EQUAL(named.value("same_id", false), true);
  BOOST_CHECK_EQUAL(named.value("value", 0), 42);
  BOOST_CHECK(named["duplicate"].value("what", "").find("already exists") != std::string::npos);
  auto killed = run_client_case(c, "RAYD_ACTOR_DRIVER", "actor_driver", "kill");
  BOOST_CHECK_EQUAL(killed["after_kill"].value("kind", ""), "actor_died_error");
  BOOST_CHECK(killed["after_kill"].value("what", "").find("killed by job client-")
              != std::string::npos);
  auto ctor = run_client_case(c, "RAYD_ACTOR_DRIVER", "actor_driver", "ctor_throws");
  BOOST_CHECK(ctor["call"].value("what", "").find("constructor threw std::invalid_argument")
              != std::string::npos);
  auto handle = run_client_case(c, "RAYD_ACTOR_DRIVER", "actor_driver", "handle_to_task");
  BOOST_CHECK_EQUAL(handle.value("from_task", 0), handle.value("after", -1));
  // Tasks: 2,000 of them, and a type mismatch reported as in the cluster.
  auto many = run_client_case(c, "RAYD_TASK_DRIVER", "task_driver", "many");
  BOOST_CHECK_EQUAL(many.value("count", 0), 2000);
  BOOST_CHECK_EQUAL(many.value("sum", 0), 2001000);
  auto types = run_client_case(c, "RAYD_TASK_DRIVER", "task_driver", "types");
  BOOST_CHECK_EQUAL(types["arity"].value("remote_type", ""), "rayd::type_mismatch");
  // Every one of them was a client session's job, not a driver's.
  auto jobs = c.rayctl({"actors", "--json"});
  BOOST_CHECK(jobs.out.find("client-") != std::string::npos);
}

BOOST_AUTO_TEST_CASE(a_resent_op_is_answered_not_run_again) {
  cluster c{"client-replay"};
  c.start_head({}, 2);
  auto token = trim(read_file(c.head().token_file()));
  std::string sid;
  std::string actor;
  {
    raw_client rc{c.head().api_address(), token};
    auto code = upload_actor_driver(rc);
    auto opened = rc.c->session_open("", "replay-test", code, 0);
    BOOST_REQUIRE_MESSAGE(opened, "open: " << (opened ? "" : rayd::describe(opened.error())));
    sid = opened->session_id;
    BOOST_CHECK_EQUAL(opened->grace_ms, 300000u); // the head's default: 5 minutes

    auto create = make_op(1, kind::create_actor);
    create.target = "Counter";
    create.values.push_back(std::string(1, '\x00')); // Counter(0)
    auto r1 = rc.exec(sid, 0, {create});
    BOOST_REQUIRE(r1);
    BOOST_REQUIRE_MESSAGE(r1->at(0).error_kind.empty(), r1->at(0).error);
    actor = r1->at(0).actor_id;
    BOOST_REQUIRE(!actor.empty());

    auto r2 = rc.exec(sid, 0, {call_add(2, actor, "r1"), get_of(3, "r1")});
    BOOST_REQUIRE(r2);
    BOOST_CHECK_EQUAL(fixint(r2->at(1)), 1);
    // The same ops again, as after a reply lost on the way: answered from
    // what the session kept; the add did not run a second time.
    auto again = rc.exec(sid, 0, {call_add(2, actor, "r1"), get_of(3, "r1")});
    BOOST_REQUIRE(again);
    BOOST_CHECK_EQUAL(fixint(again->at(1)), 1);
  } // the connection closes
  {
    raw_client rc{c.head().api_address(), token};
    auto resumed = rc.c->session_open(sid, "replay-test", {}, 0);
    BOOST_REQUIRE_MESSAGE(resumed, "resume: " << (resumed ? "" : rayd::describe(resumed.error())));
    BOOST_CHECK_EQUAL(resumed->last_seq, 3u);
    auto again = rc.exec(sid, 0, {call_add(2, actor, "r1"), get_of(3, "r1")});
    BOOST_REQUIRE(again);
    BOOST_CHECK_EQUAL(fixint(again->at(1)), 1);
    // A new add sees 2: the first ran exactly once. Acknowledging 3 frees
    // the kept replies; a resend of an acknowledged op is refused.
    auto next = rc.exec(sid, 3, {call_add(4, actor, "r2"), get_of(5, "r2")});
    BOOST_REQUIRE(next);
    BOOST_CHECK_EQUAL(fixint(next->at(1)), 2);
    auto stale = rc.exec(sid, 5, {get_of(3, "r1")});
    BOOST_REQUIRE(stale);
    BOOST_CHECK(stale->at(0).error.find("acknowledged already") != std::string::npos);
    BOOST_CHECK(rc.c->session_close(sid));
    auto closed = rc.exec(sid, 5, {get_of(6, "r2")});
    BOOST_REQUIRE(!closed);
    BOOST_CHECK_MESSAGE(rayd::describe(closed.error()).find("closed by its client")
                          != std::string::npos,
                        rayd::describe(closed.error()));
  }
}

BOOST_AUTO_TEST_CASE(hostile_ops_get_error_replies_and_the_head_lives) {
  cluster c{"client-hostile"};
  c.start_head({}, 1);
  auto token = trim(read_file(c.head().token_file()));
  raw_client rc{c.head().api_address(), token};
  auto code = upload_actor_driver(rc);
  auto opened = rc.c->session_open("", "hostile", code, 0);
  BOOST_REQUIRE(opened);
  auto sid = opened->session_id;
  std::vector<op> ops;
  auto huge = make_op(1, kind::put_stream); // 4 EiB announced
  huge.result = "h";
  huge.count = 1ull << 62;
  huge.stream = 1;
  ops.push_back(huge);
  auto missing = make_op(2, kind::get);
  missing.ids = {"no-such-object"};
  missing.timeout_ms = 1000;
  ops.push_back(missing);
  auto bad_wait = make_op(3, kind::wait); // more returns than ids
  bad_wait.ids = {"no-such-object"};
  bad_wait.count = 5;
  bad_wait.timeout_ms = 100;
  ops.push_back(bad_wait);
  auto no_class = make_op(4, kind::create_actor);
  no_class.target = "NoSuchClass";
  no_class.name = "x";
  ops.push_back(no_class);
  auto no_actor = make_op(5, kind::kill_actor);
  no_actor.target = "00000000000000000000";
  ops.push_back(no_actor);
  auto lookup = make_op(6, kind::get_actor);
  lookup.name = "nobody";
  ops.push_back(lookup);
  auto r = rc.exec(sid, 0, ops);
  BOOST_REQUIRE_MESSAGE(r, "exec: " << (r ? "" : rayd::describe(r.error())));
  BOOST_REQUIRE_EQUAL(r->size(), ops.size());
  for (auto& x : *r)
    BOOST_TEST_MESSAGE("seq " << x.seq << ": " << x.error_kind << ": " << x.error);
  BOOST_CHECK_EQUAL(r->at(0).error_kind, "store_full"); // no 4 EiB put
  BOOST_CHECK_EQUAL(r->at(1).error_kind, "object_lost");
  BOOST_CHECK_EQUAL(r->at(2).ready.size(), 1u);
  // (A create of a class no worker knows is accepted here; the actor dies
  // when its worker cannot construct it, as for an in-cluster driver.)
  BOOST_CHECK(r->at(4).error.find("no actor with id") != std::string::npos);
  BOOST_CHECK(r->at(5).error.find("no actor named 'nobody'") != std::string::npos);
  // Chunks for streams that do not exist, and a gap.
  BOOST_CHECK(!rc.c->session_read_chunk(sid, 77, 0));
  BOOST_CHECK(!rc.c->session_write_chunk(sid, 78, 4096, "late"));
  BOOST_CHECK(!rc.c->session_write_chunk("not-a-session", 1, 0, "x"));
  // The head still serves.
  auto st = c.try_status();
  BOOST_CHECK(st.has_value());
}

BOOST_AUTO_TEST_CASE(a_silent_session_expires_and_says_so) {
  cluster c{"client-grace"};
  c.start_head({"--client-reconnect-grace", "1", "--client-max-sessions", "1"}, 1);
  auto token = trim(read_file(c.head().token_file()));
  raw_client rc{c.head().api_address(), token};
  auto code = upload_actor_driver(rc);
  auto opened = rc.c->session_open("", "grace-test", code, 0);
  BOOST_REQUIRE(opened);
  BOOST_CHECK_EQUAL(opened->grace_ms, 1000u); // --client-reconnect-grace 1
  auto sid = opened->session_id;
  // Within the grace the session answers (and each call counts as heard).
  BOOST_REQUIRE(rc.exec(sid, 0, {}));
  // Silent for longer: it expires, and a resume says why.
  std::string why;
  BOOST_CHECK(wait_until(
    [&] {
      auto r = rc.c->session_open(sid, "grace-test", {}, 0);
      if (r)
        return false; // still there: the resume itself counted as heard
      why = rayd::describe(r.error());
      return true;
    },
    10s, 1500ms));
  BOOST_CHECK_MESSAGE(why.find("expired") != std::string::npos
                        && why.find("1 s") != std::string::npos,
                      why);
  // A head full of sessions refuses one more, saying so (this head: 1;
  // the expired one is gone, so one fits, and then no second).
  auto first = rc.c->session_open("", "grace-test", code, 5000);
  BOOST_REQUIRE_MESSAGE(first, "open: " << (first ? "" : rayd::describe(first.error())));
  auto second = rc.c->session_open("", "grace-test", code, 5000);
  BOOST_REQUIRE(!second);
  BOOST_CHECK_MESSAGE(rayd::describe(second.error()).find("1 client sessions already")
                        != std::string::npos,
                      rayd::describe(second.error()));
  // An id this head never had.
  auto unknown = rc.c->session_open("0123456789abcdef0123456789abcdef", "x", {}, 0);
  BOOST_REQUIRE(!unknown);
  BOOST_CHECK_MESSAGE(rayd::describe(unknown.error()).find("unknown to this head")
                        != std::string::npos,
                      rayd::describe(unknown.error()));
}

namespace {

/// A head of another API version: Gate answers 999 and nothing else.
class other_version_gate final : public rayd::schema::Gate::Server {
  kj::Promise<void> apiVersion(ApiVersionContext ctx) override {
    ctx.getResults().setVersion(999);
    return kj::READY_NOW;
  }
};

} // namespace

BOOST_AUTO_TEST_CASE(a_head_of_another_version_is_named_in_one_line) {
  using stopper = kj::Own<kj::CrossThreadPromiseFulfiller<void>>;
  std::promise<std::pair<uint16_t, stopper>> started;
  std::thread server([&started] {
    capnp::EzRpcServer s{kj::heap<other_version_gate>(), "127.0.0.1", 0};
    auto port = s.getPort().wait(s.getWaitScope());
    auto paf = kj::newPromiseAndCrossThreadFulfiller<void>();
    started.set_value({static_cast<uint16_t>(port), kj::mv(paf.fulfiller)});
    paf.promise.wait(s.getWaitScope());
  });
  auto [p, stop] = started.get_future().get();
  env_list env;
  env.emplace_back("RAYD_ADDRESS", "rayd://127.0.0.1:" + std::to_string(p));
  env.emplace_back("RAYD_TOKEN", "not-sent");
  auto r = run({program("RAYD_ACTOR_DRIVER", "actor_driver"), "--case", "named"}, env, 30s);
  stop->fulfill();
  server.join();
  BOOST_CHECK_NE(r.exit_code, 0);
  BOOST_CHECK_LT(r.elapsed_ms, 10000);
  BOOST_CHECK_MESSAGE(r.err.find("speaks API version 999, this client API version "
                                 + std::to_string(rayd::schema::CURRENT_API_VERSION))
                        != std::string::npos,
                      r.describe());
}

BOOST_AUTO_TEST_CASE(tls_remote_driver_right_ca_works_wrong_ca_refused) {
  temp_dir dir{"client-tls"};
  // The one-command self-signed pair of docs/cli.md, and another one.
  auto sh = [](const std::string& cmd) {
    return run({"/bin/sh", "-c", cmd}, {}, 60s).exit_code == 0;
  };
  bool made =
    sh("command -v openssl >/dev/null")
    && sh("cd " + dir.path()
          + " && openssl req -x509 -newkey rsa:2048 -nodes -keyout head.key -out head.pem"
            " -days 2 -subj /CN=127.0.0.1 -addext subjectAltName=IP:127.0.0.1 2>/dev/null"
            " && openssl req -x509 -newkey rsa:2048 -nodes -keyout other.key -out other.pem"
            " -days 2 -subj /CN=127.0.0.1 -addext subjectAltName=IP:127.0.0.1 2>/dev/null");
  BOOST_REQUIRE_MESSAGE(made, "cannot make certificates with the openssl command "
                              "(scripts/deps.sh installs it)");
  cluster c{"client-tls"};
  c.start_head({"--tls-cert", dir.path() + "/head.pem", "--tls-key", dir.path() + "/head.key"},
               2);
  auto env = client_env(c);
  env.push_back({"RAYD_TLS_CA", dir.path() + "/head.pem"});
  auto ok = run({program("RAYD_ACTOR_DRIVER", "actor_driver"), "--case", "named"}, env, 60s);
  BOOST_CHECK_MESSAGE(ok.exit_code == 0, ok.describe());
  BOOST_CHECK_EQUAL(last_json(ok.out).value("value", 0), 42);
  env.back().second = dir.path() + "/other.pem";
  auto refused = run({program("RAYD_ACTOR_DRIVER", "actor_driver"), "--case", "named"}, env, 30s);
  BOOST_CHECK_NE(refused.exit_code, 0);
  BOOST_CHECK_MESSAGE(refused.err.find("not signed by CA") != std::string::npos,
                      refused.describe());
}
