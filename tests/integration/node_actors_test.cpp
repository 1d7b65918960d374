// The node's half of actors (docs/actors.md) with a real worker process: an
// in-process task server (no head: the test plays the actor manager through
// host_actor / unhost_actor) hosts actors of the actor_worker binary; the
// test then plays a caller on the node port (HELLO, ATTACH{pid}, CALL ...).
#define BOOST_TEST_MODULE node_actors
#include <boost/test/unit_test.hpp>

#include <signal.h>
#include <sys/socket.h>
#include <unistd.h>

#include <chrono>
#include <condition_variable>
#include <cstdlib>
#include <filesystem>
#include <future>
#include <mutex>
#include <set>
#include <string>
#include <thread>
#include <vector>

#include <msgpack.hpp>

#include "actors/node/object_store.hpp"
#include "actors/node/task_server.hpp"
#include "common/error.hpp"
#include "common/net.hpp"
#include "common/wire.hpp"

using namespace rayd;
using namespace std::chrono_literals;
namespace fs = std::filesystem;

namespace {

constexpr int timeout_ms = 10000;

template <class T>
std::string pack(const T& v) {
  msgpack::sbuffer b;
  msgpack::pack(b, v);
  return {b.data(), b.size()};
}

template <class T>
T unpack(const std::string& s) {
  return msgpack::unpack(s.data(), s.size()).get().as<T>();
}

struct exit_report {
  std::string actor_id;
  int32_t pid = 0;
  std::string cause;
};

/// A task server on loopback whose "code" is the actor_worker binary.
struct node_fixture {
  fs::path dir;
  std::unique_ptr<node::object_store> store;
  std::unique_ptr<node::task_server> server;
  std::string address;
  std::mutex mu;
  std::condition_variable cv;
  std::vector<exit_report> exits;  // under mu
  std::vector<std::string> gone;   // under mu
  std::vector<pid_t> started;      // workers to kill at the end

  node_fixture() {
    const char* worker = std::getenv("RAYD_ACTOR_WORKER");
    BOOST_REQUIRE_MESSAGE(worker != nullptr, "RAYD_ACTOR_WORKER is not set (run through ctest)");
    std::string worker_path = worker;
    dir = fs::temp_directory_path() / ("rayd-node-actors-" + std::to_string(::getpid()));
    fs::create_directories(dir);
    node::object_store_options so;
    so.memory_bytes = 64u << 20;
    so.spill_dir = (dir / "objects").string();
    store = std::make_unique<node::object_store>(so);
    auto sock = listen_tcp("127.0.0.1", 0, "node port");
    BOOST_REQUIRE(sock);
    address = "127.0.0.1:" + std::to_string(sock->port);
    node::task_server_config cfg;
    cfg.node_id = "node-a";
    cfg.address = address;
    cfg.token = "secret";
    cfg.socket = *sock;
    cfg.total = {{"CPU", 2}};
    cfg.session_dir = dir.string();
    cfg.store = store.get();
    cfg.fetch_code = [worker_path](const std::string&) -> caf::expected<std::string> {
      return worker_path;
    };
    auto ts = node::task_server::start(std::move(cfg));
    BOOST_REQUIRE(ts);
    server = std::move(*ts);
    server->set_api_address("127.0.0.1:1");
    server->set_actor_hooks(
      [this](std::string id, int32_t pid, std::string cause) {
        std::lock_guard<std::mutex> guard{mu};
        exits.push_back({id, pid, cause});
        cv.notify_all();
      },
      [this](std::string job) {
        std::lock_guard<std::mutex> guard{mu};
        gone.push_back(job);
        cv.notify_all();
      });
  }

  ~node_fixture() {
    server.reset(); // workers see their control socket close and exit
    for (auto pid : started)
      ::kill(pid, SIGKILL); // in case one did not
    std::error_code ec;
    fs::remove_all(dir, ec);
  }

  actor_launch launch(std::string id, std::vector<std::string> args, int concurrency = 1,
                      resource_map resources = {}) {
    actor_launch l;
    l.actor_id = std::move(id);
    l.job_id = "job-1";
    l.class_name = "Counter";
    l.args = std::move(args);
    l.code = {{"hash-1", "actor_worker"}};
    l.resources = std::move(resources);
    l.max_concurrency = concurrency;
    return l;
  }

  caf::expected<actor_hosted> host(actor_launch l) {
    auto p = std::make_shared<std::promise<caf::expected<actor_hosted>>>();
    auto f = p->get_future();
    server->host_actor(std::move(l), [p](caf::expected<actor_hosted> r) {
      p->set_value(std::move(r));
    });
    BOOST_REQUIRE(f.wait_for(15s) == std::future_status::ready);
    auto r = f.get();
    if (r && r->ok)
      started.push_back(r->pid);
    return r;
  }

  bool unhost(std::string id) {
    auto p = std::make_shared<std::promise<bool>>();
    auto f = p->get_future();
    server->unhost_actor(std::move(id), [p](bool known) { p->set_value(known); });
    BOOST_REQUIRE(f.wait_for(5s) == std::future_status::ready);
    return f.get();
  }

  /// Polls until the node's free CPU is `want` (up to 5 s).
  bool wait_free_cpu(double want) {
    auto deadline = std::chrono::steady_clock::now() + 5s;
    while (free_cpu() != want) {
      if (std::chrono::steady_clock::now() > deadline)
        return false;
      std::this_thread::sleep_for(5ms);
    }
    return true;
  }

  double free_cpu() {
    auto snap = server->snapshot();
    return snap.available.count("CPU") ? snap.available.at("CPU") : 0.0;
  }
};

/// A caller's connection to the node port.
struct caller {
  int fd = -1;
  wire::frame_reader reader;

  explicit caller(const std::string& address) {
    auto c = connect_tcp(address);
    BOOST_REQUIRE(c);
    fd = *c;
    send(wire::encode(wire::msg::hello, wire::hello{wire::magic, "secret", "driver", "job-1"}));
    BOOST_REQUIRE_EQUAL(wire::to_string(read().type), "WELCOME");
  }
  ~caller() {
    if (fd >= 0)
      ::close(fd);
  }

  void send(const std::string& bytes) {
    BOOST_REQUIRE(!wire::write_all(fd, bytes));
  }
  wire::frame read() {
    auto f = wire::read_frame(fd, reader, timeout_ms);
    if (!f)
      BOOST_FAIL("no frame: " + describe(f.error()));
    return std::move(*f);
  }
  void call(uint64_t id, const std::string& actor, const std::string& method,
            std::vector<std::string> args = {}) {
    std::vector<wire::task_arg> a;
    for (auto& x : args) {
      wire::task_arg t;
      t.data = x;
      a.push_back(t);
    }
    send(wire::encode(wire::msg::call, wire::actor_call{id, actor, method, a, 0}));
  }
  wire::task_result result() {
    auto f = read();
    BOOST_REQUIRE_EQUAL(wire::to_string(f.type), "RESULT");
    auto r = wire::decode<wire::task_result>(f.payload);
    BOOST_REQUIRE(r);
    return *r;
  }
  void attach(int32_t pid) {
    send(wire::encode(wire::msg::attach, wire::attach_msg{pid}));
    auto f = read();
    BOOST_REQUIRE_EQUAL(wire::to_string(f.type), "ATTACHED");
    BOOST_CHECK_EQUAL(wire::decode<wire::attach_msg>(f.payload)->pid, pid);
  }
};

} // namespace

BOOST_FIXTURE_TEST_SUITE(node_actors, node_fixture)

BOOST_AUTO_TEST_CASE(an_actor_is_hosted_attached_to_and_called_in_order) {
  auto h = host(launch("a1", {pack(5)}, 1, {{"CPU", 1}}));
  BOOST_REQUIRE(h);
  BOOST_REQUIRE_MESSAGE(h->ok, h->error_type + ": " + h->error_message);
  BOOST_CHECK_GT(h->pid, 0);
  BOOST_CHECK_EQUAL(free_cpu(), 1.0); // its shape is reserved
  auto again = host(launch("a1", {pack(5)}));
  BOOST_REQUIRE(again && again->ok);
  BOOST_CHECK_EQUAL(again->pid, h->pid); // idempotent

  caller c{address};
  // A process the node does not run: ERROR not_found, the connection stays.
  c.send(wire::encode(wire::msg::attach, wire::attach_msg{h->pid + 1000000}));
  auto err = c.read();
  BOOST_REQUIRE_EQUAL(wire::to_string(err.type), "ERROR");
  auto e = wire::decode<wire::error_msg>(err.payload);
  BOOST_REQUIRE(e);
  BOOST_CHECK_EQUAL(e->code, static_cast<uint8_t>(wire::wire_error::not_found));
  BOOST_CHECK_NE(e->message.find("no worker process"), std::string::npos);
  c.attach(h->pid);
  for (int i = 1; i <= 100; ++i)
    c.call(i, "a1", "Counter::add", {pack(1)});
  for (int i = 1; i <= 100; ++i) {
    auto r = c.result();
    BOOST_REQUIRE_EQUAL(r.task_id, static_cast<uint64_t>(i));
    BOOST_REQUIRE_EQUAL(r.kind, wire::task_result::value);
    BOOST_REQUIRE_EQUAL(unpack<int>(r.data), 5 + i);
    BOOST_CHECK_EQUAL(r.node_id, "node-a");
  }
  c.call(200, "nobody", "Counter::value");
  auto died = c.result();
  BOOST_CHECK_EQUAL(died.kind, wire::task_result::error);
  BOOST_CHECK_EQUAL(died.error_type, "rayd::actor_died");
  // The worker's environment lets its code call actors.
  c.call(201, "a1", "Counter::env", {pack(std::string("RAYD_ADDRESS"))});
  BOOST_CHECK_EQUAL(unpack<std::string>(c.result().data), "127.0.0.1:1");
  c.call(202, "a1", "Counter::env", {pack(std::string("RAYD_TOKEN"))});
  BOOST_CHECK_EQUAL(unpack<std::string>(c.result().data), "secret");
  c.call(203, "a1", "Counter::env", {pack(std::string("RAYD_NODE_ADDRESS"))});
  BOOST_CHECK_EQUAL(unpack<std::string>(c.result().data), address);

  // Unhosting kills it and releases its shape; its process stays.
  BOOST_CHECK(unhost("a1"));
  BOOST_CHECK(!unhost("a1"));
  // The kill reaches the worker on its control socket, the call on the
  // caller's: a call sent right after may still be served. It dies soon.
  std::string last;
  auto deadline = std::chrono::steady_clock::now() + 5s;
  for (uint64_t id = 204; last != "rayd::actor_died" && std::chrono::steady_clock::now() < deadline;
       ++id) {
    c.call(id, "a1", "Counter::value");
    last = c.result().error_type;
  }
  BOOST_CHECK_EQUAL(last, "rayd::actor_died");
  BOOST_CHECK_EQUAL(free_cpu(), 2.0);
}

BOOST_AUTO_TEST_CASE(failed_constructors_unknown_classes_and_no_room_are_reported) {
  auto h = host(launch("b1", {pack(-1)}, 1, {{"CPU", 1}}));
  BOOST_REQUIRE(h);
  BOOST_CHECK(!h->ok);
  BOOST_CHECK(h->constructor_failed);
  BOOST_CHECK_EQUAL(h->error_type, "std::invalid_argument");
  BOOST_CHECK_EQUAL(h->error_message, "negative start");
  BOOST_CHECK_EQUAL(free_cpu(), 2.0); // released
  auto l = launch("b2", {});
  l.class_name = "Nope";
  h = host(l);
  BOOST_REQUIRE(h);
  BOOST_CHECK(!h->ok);
  BOOST_CHECK_EQUAL(h->error_type, "rayd::unknown_class");
  h = host(launch("b3", {pack(0)}, 1, {{"CPU", 5}}));
  BOOST_REQUIRE(!h);
  BOOST_CHECK(code_of(h.error()) == errc::unavailable);
  BOOST_CHECK_NE(describe(h.error()).find("no room"), std::string::npos);
}

BOOST_AUTO_TEST_CASE(max_concurrency_two_runs_two_calls_at_once) {
  auto h = host(launch("c1", {pack(0)}, 2));
  BOOST_REQUIRE(h && h->ok);
  caller c{address};
  c.attach(h->pid);
  c.call(1, "c1", "Counter::meet");
  c.call(2, "c1", "Counter::meet");
  for (int i = 0; i < 2; ++i) {
    auto r = c.result();
    BOOST_REQUIRE_EQUAL(r.kind, wire::task_result::value);
    BOOST_CHECK(unpack<bool>(r.data));
  }
}

BOOST_AUTO_TEST_CASE(a_killed_worker_process_reports_its_actors) {
  auto h1 = host(launch("d1", {pack(0)}, 1, {{"CPU", 1}}));
  auto h2 = host(launch("d2", {pack(0)}));
  BOOST_REQUIRE(h1 && h1->ok && h2 && h2->ok);
  BOOST_CHECK_EQUAL(h1->pid, h2->pid); // the job's one worker process
  caller c{address};
  c.attach(h1->pid);
  BOOST_REQUIRE_EQUAL(::kill(h1->pid, SIGKILL), 0);
  std::unique_lock<std::mutex> lock{mu};
  BOOST_REQUIRE(cv.wait_for(lock, 10s, [this] { return exits.size() >= 2; }));
  for (auto& x : exits) {
    BOOST_CHECK(x.actor_id == "d1" || x.actor_id == "d2");
    BOOST_CHECK_EQUAL(x.pid, h1->pid);
    BOOST_CHECK_NE(x.cause.find("worker process " + std::to_string(h1->pid)), std::string::npos);
    BOOST_CHECK_NE(x.cause.find("killed by signal 9"), std::string::npos);
  }
  lock.unlock();
  // Reported first, released right after (on the same loop turn).
  BOOST_CHECK(wait_free_cpu(2.0));
  // Hosting again starts a new process.
  auto h3 = host(launch("d1", {pack(0)}));
  BOOST_REQUIRE(h3 && h3->ok);
  BOOST_CHECK_NE(h3->pid, h1->pid);
}

BOOST_AUTO_TEST_CASE(a_job_whose_driver_left_is_reported_gone_once) {
  {
    caller c{address}; // a driver connection of job-1, then gone
  }
  std::unique_lock<std::mutex> lock{mu};
  BOOST_REQUIRE(cv.wait_for(lock, 10s, [this] { return !gone.empty(); }));
  BOOST_CHECK_EQUAL(gone[0], "job-1");
  lock.unlock();
  {
    caller c{address}; // it comes and goes again: not reported twice
  }
  std::this_thread::sleep_for(2500ms); // longer than the 2 s grace
  lock.lock();
  BOOST_CHECK_EQUAL(gone.size(), 1u);
}

BOOST_AUTO_TEST_CASE(ten_thousand_actors_share_one_process) {
  constexpr int n = 10000;
  std::mutex m;
  std::condition_variable done_cv;
  int done = 0, ok = 0;
  std::set<int32_t> pids;
  auto t0 = std::chrono::steady_clock::now();
  for (int i = 0; i < n; ++i)
    server->host_actor(launch("m" + std::to_string(i), {pack(i)}),
                       [&m, &done_cv, &done, &ok, &pids](caf::expected<actor_hosted> r) {
                         std::lock_guard<std::mutex> guard{m};
                         ++done;
                         if (r && r->ok) {
                           ++ok;
                           pids.insert(r->pid);
                         }
                         done_cv.notify_all();
                       });
  {
    std::unique_lock<std::mutex> lock{m};
    BOOST_REQUIRE(done_cv.wait_for(lock, 60s, [&done] { return done == n; }));
  }
  auto secs = std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
  std::printf("hosted %d actors in %.2f s\n", n, secs);
  BOOST_CHECK_EQUAL(ok, n);
  BOOST_REQUIRE_EQUAL(pids.size(), 1u);
  started.push_back(*pids.begin());
  caller c{address};
  c.attach(*pids.begin());
  for (int i = 0; i < n; ++i)
    c.call(i, "m" + std::to_string(i), "Counter::value");
  for (int i = 0; i < n; ++i) {
    auto r = c.result();
    BOOST_REQUIRE_EQUAL(r.kind, wire::task_result::value);
    BOOST_REQUIRE_EQUAL(unpack<int>(r.data), static_cast<int>(r.task_id));
  }
}

BOOST_AUTO_TEST_CASE(call_rates_over_tcp) {
  // Printed, not asserted (the benchmark owns the targets): a synchronous
  // call against a TCP ping-pong of the same sizes on this machine, and a
  // pipelined stream.
  auto h = host(launch("e1", {pack(0)}));
  BOOST_REQUIRE(h && h->ok);
  caller c{address};
  c.attach(h->pid);
  auto us = [](auto d) { return std::chrono::duration<double, std::micro>(d).count(); };
  constexpr int sync_calls = 3000;
  // Both loops send prepared bytes and read without a deadline (no poll).
  std::string ping = wire::encode(wire::msg::call, wire::actor_call{1, "e1", "Counter::value", {}, 0});
  auto t0 = std::chrono::steady_clock::now();
  for (int i = 0; i < sync_calls; ++i) {
    BOOST_REQUIRE(!wire::write_all(c.fd, ping));
    auto f = wire::read_frame(c.fd, c.reader);
    BOOST_REQUIRE(f && f->type == wire::msg::result);
  }
  auto sync_us = us(std::chrono::steady_clock::now() - t0) / sync_calls;
  // The TCP ping-pong: an echo thread on loopback, frames of the same size.
  auto l = listen_tcp("127.0.0.1", 0, "echo");
  BOOST_REQUIRE(l);
  std::thread echo([fd = l->fd] {
    int s = ::accept(fd, nullptr, nullptr);
    char buf[4096];
    for (;;) {
      auto n = ::recv(s, buf, sizeof buf, 0);
      if (n <= 0)
        break;
      (void) wire::write_all(s, std::string_view(buf, static_cast<std::size_t>(n)));
    }
    ::close(s);
  });
  auto e = connect_tcp("127.0.0.1:" + std::to_string(l->port));
  BOOST_REQUIRE(e);
  std::string back(ping.size(), '\0');
  t0 = std::chrono::steady_clock::now();
  for (int i = 0; i < sync_calls; ++i) {
    BOOST_REQUIRE(!wire::write_all(*e, ping));
    std::size_t got = 0;
    while (got < back.size()) {
      auto n = ::recv(*e, back.data() + got, back.size() - got, 0);
      BOOST_REQUIRE(n > 0);
      got += static_cast<std::size_t>(n);
    }
  }
  auto pingpong_us = us(std::chrono::steady_clock::now() - t0) / sync_calls;
  ::close(*e);
  echo.join();
  ::close(l->fd);
  constexpr int async_calls = 100000;
  t0 = std::chrono::steady_clock::now();
  std::thread writer([&c] {
    std::string batch;
    for (int i = 0; i < async_calls; ++i) {
      std::vector<wire::task_arg> a(1);
      a[0].data = pack(1);
      batch += wire::encode(wire::msg::call, wire::actor_call{1000000u + i, "e1", "Counter::add",
                                                              a, 0});
      if (batch.size() > 64 * 1024) {
        (void) wire::write_all(c.fd, batch);
        batch.clear();
      }
    }
    (void) wire::write_all(c.fd, batch);
  });
  int last = 0;
  for (int i = 0; i < async_calls; ++i)
    last = unpack<int>(c.result().data);
  writer.join();
  auto async_s = us(std::chrono::steady_clock::now() - t0) / 1e6;
  BOOST_CHECK_EQUAL(last, async_calls);
  std::printf("actor calls over TCP: sync %.1f us (TCP ping-pong %.1f us: %.2fx); "
              "async %.0f calls/s\n",
              sync_us, pingpong_us, pingpong_us / sync_us, async_calls / async_s);
}

BOOST_AUTO_TEST_SUITE_END()
