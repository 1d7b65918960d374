// Unit tests of worker mode (api/src/worker.cpp): the test plays the node
// (the control socketpair) and the driver (a leased socketpair) around a
// forked child that runs core::run_worker.
#define BOOST_TEST_MODULE worker
#include <boost/test/unit_test.hpp>

#include <poll.h>
#include <signal.h>
#include <sys/mman.h>
#include <sys/socket.h>
#include <sys/syscall.h>
#include <sys/wait.h>
#include <unistd.h>

#include <chrono>
#include <condition_variable>
#include <cstdio>
#include <cstdlib>
#include <deque>
#include <mutex>
#include <set>
#include <stdexcept>
#include <string>
#include <string_view>
#include <thread>
#include <vector>

#include <msgpack.hpp>

#include "common/wire.hpp"
#include "rayd/actor_registry.hpp"
#include "rayd/core.hpp"
#include "rayd/remote.hpp"

using namespace rayd;
using namespace std::chrono_literals;

namespace {

// -- the functions the worker runs --------------------------------------------

template <class T>
std::string pack(const T& value) {
  msgpack::sbuffer buf;
  msgpack::pack(buf, value);
  return {buf.data(), buf.size()};
}

template <class T>
T unpack(std::string_view bytes) {
  auto oh = msgpack::unpack(bytes.data(), bytes.size());
  return oh.get().as<T>();
}

int add(int a, int b) {
  return a + b;
}

void noop() {}

int fails() {
  throw std::runtime_error("boom");
}

/// A string of n 'x'.
std::string big(std::size_t n) {
  return std::string(n, 'x');
}

std::size_t length(const std::string& s) {
  return s.size();
}

/// Waits (up to 5 s) until two calls are inside at once: true if they met.
bool meet() {
  static std::mutex mu;
  static std::condition_variable cv;
  static int arrived = 0;
  std::unique_lock<std::mutex> lock{mu};
  ++arrived;
  cv.notify_all();
  return cv.wait_for(lock, 5s, [] { return arrived >= 2; });
}

void crash() {
  ::raise(SIGSEGV);
}

void aborts() {
  std::abort();
}

} // namespace

RAYD_REMOTE(add, noop, fails, big, length, meet, crash, aborts);

namespace {

/// The actor the worker hosts in the actor cases.
class Account {
public:
  explicit Account(int balance) : balance_(balance) {
    if (balance < 0)
      throw std::invalid_argument("negative balance");
  }
  int deposit(int n) {
    return balance_ += n;
  }
  int balance() const {
    return balance_;
  }
  /// Its argument (safe to call concurrently).
  int echo(int x) const {
    return x;
  }
  std::string big(std::size_t n) const {
    return std::string(n, 'y');
  }
  /// Sleeps `ms`, then returns it.
  int nap(int ms) {
    std::this_thread::sleep_for(std::chrono::milliseconds(ms));
    return ms;
  }
  /// True when two calls of this actor are inside at once (max_concurrency).
  bool meet() {
    std::unique_lock<std::mutex> lock{mu_};
    ++arrived_;
    cv_.notify_all();
    return cv_.wait_for(lock, 5s, [this] { return arrived_ >= 2; });
  }

private:
  int balance_;
  std::mutex mu_;
  std::condition_variable cv_;
  int arrived_ = 0;
};

} // namespace

RAYD_ACTOR(Account, (int), deposit, balance, echo, big, nap, meet);

namespace {

// -- the fixture: node and driver around a forked worker --------------------------

constexpr int timeout_ms = 5000;

wire::task_arg value_arg(std::string bytes) {
  wire::task_arg a;
  a.data = std::move(bytes);
  return a;
}

wire::task_arg ref_arg(wire::object_loc loc) {
  wire::task_arg a;
  a.kind = wire::task_arg::ref;
  a.loc = std::move(loc);
  return a;
}

std::string task_frame(uint64_t id, std::string function, std::vector<wire::task_arg> args = {}) {
  return wire::encode(wire::msg::task, wire::task{id, std::move(function), std::move(args), 0});
}

/// A memfd holding `bytes`.
int memfd_with(std::string_view bytes) {
  int fd = ::memfd_create("test-object", MFD_CLOEXEC);
  BOOST_REQUIRE(fd >= 0);
  BOOST_REQUIRE(::write(fd, bytes.data(), bytes.size()) == static_cast<ssize_t>(bytes.size()));
  return fd;
}

/// Kills and reaps the child, also when the fixture's constructor fails.
struct child_process {
  pid_t pid = -1;
  ~child_process() {
    if (pid > 0) {
      ::kill(pid, SIGKILL);
      ::waitpid(pid, nullptr, 0);
    }
  }
};

struct worker_fixture {
  child_process child;
  int control = -1; // the node's end
  wire::frame_reader control_reader;
  std::deque<int> control_fds;
  int driver = -1; // the driver's end of the leased socket
  wire::frame_reader driver_reader;
  wire::adopt_msg lease{11, 22, 1, "node-1", "10.0.0.1:7000"};

  worker_fixture() {
    ::setenv("RAYD_JOB_ID", "job-7", 1);
    ::setenv("RAYD_NODE_ID", "node-1", 1);
    ::setenv("RAYD_NODE_ADDRESS", "10.0.0.1:7000", 1);
    ::setenv("RAYD_WORKER_LIBS", "", 1);
    int sv[2];
    BOOST_REQUIRE(::socketpair(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0, sv) == 0);
    std::fflush(nullptr); // else the child's exit repeats our buffered output
    child.pid = ::fork();
    BOOST_REQUIRE(child.pid >= 0);
    if (child.pid == 0) {
      // The child must never return into Boost.Test, whose signal handlers
      // would turn a crashing task into a test failure in the child.
      ::close(sv[0]);
      for (int sig : {SIGSEGV, SIGABRT, SIGBUS, SIGFPE, SIGILL})
        ::signal(sig, SIG_DFL);
      try {
        core::run_worker(sv[1]);
      } catch (...) {
      }
      ::_exit(99);
    }
    ::close(sv[1]);
    control = sv[0];
    auto ready = expect_control(wire::msg::ready);
    auto msg = wire::decode<wire::ready_msg>(ready.payload);
    BOOST_REQUIRE(msg);
    BOOST_CHECK_EQUAL(msg->pid, child.pid);
    BOOST_CHECK_EQUAL(msg->job_id, "job-7");
  }

  ~worker_fixture() {
    for (int fd : control_fds)
      ::close(fd);
    if (control >= 0)
      ::close(control);
    if (driver >= 0)
      ::close(driver);
  }

  wire::frame read_control() {
    for (;;) {
      auto next = control_reader.next();
      BOOST_REQUIRE(next);
      if (*next)
        return std::move(**next);
      pollfd pfd{control, POLLIN, 0};
      BOOST_REQUIRE_MESSAGE(::poll(&pfd, 1, timeout_ms) == 1, "no frame on the control socket");
      char buf[64 * 1024];
      auto n = wire::recv_with_fds(control, buf, sizeof buf, control_fds);
      BOOST_REQUIRE(n);
      BOOST_REQUIRE_MESSAGE(*n > 0, "the worker closed the control socket");
      control_reader.feed(buf, *n);
    }
  }

  wire::frame expect_control(wire::msg type) {
    auto f = read_control();
    BOOST_REQUIRE_EQUAL(wire::to_string(f.type), wire::to_string(type));
    return f;
  }

  int pop_control_fd() {
    BOOST_REQUIRE(!control_fds.empty());
    int fd = control_fds.front();
    control_fds.pop_front();
    return fd;
  }

  template <class T>
  void send_control(wire::msg type, const T& body, std::vector<int> fds = {}) {
    BOOST_REQUIRE(!wire::send_with_fds(control, wire::encode(type, body), fds));
  }

  /// ADOPT of a fresh "driver socket"; checks GRANTED.
  void adopt(uint32_t threads = 1) {
    int sv[2];
    BOOST_REQUIRE(::socketpair(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0, sv) == 0);
    lease.threads = threads;
    send_control(wire::msg::adopt, lease, {sv[1]});
    ::close(sv[1]);
    driver = sv[0];
    auto f = read_driver();
    BOOST_REQUIRE_EQUAL(wire::to_string(f.type), "GRANTED");
    auto g = wire::decode<wire::granted>(f.payload);
    BOOST_REQUIRE(g);
    BOOST_CHECK_EQUAL(g->request_id, lease.request_id);
    BOOST_CHECK_EQUAL(g->worker_pid, child.pid);
    BOOST_CHECK_EQUAL(g->threads, threads);
    BOOST_CHECK_EQUAL(g->node_id, lease.node_id);
  }

  void send_driver(std::string_view bytes) {
    BOOST_REQUIRE(!wire::write_all(driver, bytes));
  }

  wire::frame read_driver() {
    auto f = wire::read_frame(driver, driver_reader, timeout_ms);
    if (!f)
      BOOST_FAIL("no frame from the worker: " + describe(f.error()));
    return std::move(*f);
  }

  wire::task_result read_result() {
    auto f = read_driver();
    BOOST_REQUIRE_EQUAL(wire::to_string(f.type), "RESULT");
    auto r = wire::decode<wire::task_result>(f.payload);
    BOOST_REQUIRE(r);
    BOOST_CHECK_EQUAL(r->node_id, lease.node_id);
    return std::move(*r);
  }

  /// Waits for the child to end; returns its wait status.
  int wait_exit() {
    int pidfd = static_cast<int>(::syscall(SYS_pidfd_open, child.pid, 0));
    BOOST_REQUIRE(pidfd >= 0);
    pollfd pfd{pidfd, POLLIN, 0};
    int ready = ::poll(&pfd, 1, timeout_ms);
    ::close(pidfd);
    BOOST_REQUIRE_MESSAGE(ready == 1, "the worker did not exit");
    int status = 0;
    BOOST_REQUIRE_EQUAL(::waitpid(child.pid, &status, 0), child.pid);
    child.pid = -1;
    return status;
  }

  /// Reads the driver socket until EOF (a result may not come first).
  void expect_driver_eof() {
    for (;;) {
      auto f = wire::read_frame(driver, driver_reader, timeout_ms);
      if (!f) {
        BOOST_CHECK(code_of(f.error()) == errc::unavailable);
        return;
      }
    }
  }
};

} // namespace

BOOST_FIXTURE_TEST_SUITE(worker, worker_fixture)

BOOST_AUTO_TEST_CASE(value_result) {
  adopt();
  send_driver(task_frame(5, "add", {value_arg(pack(2)), value_arg(pack(40))}));
  auto r = read_result();
  BOOST_CHECK_EQUAL(r.task_id, 5u);
  BOOST_REQUIRE_EQUAL(r.kind, wire::task_result::value);
  BOOST_CHECK_EQUAL(unpack<int>(r.data), 42);
}

BOOST_AUTO_TEST_CASE(pipelined_tasks_are_all_answered) {
  adopt();
  std::string batch;
  for (int i = 1; i <= 100; ++i)
    batch += task_frame(i, "add", {value_arg(pack(i)), value_arg(pack(1000))});
  send_driver(batch);
  std::set<uint64_t> seen;
  for (int i = 1; i <= 100; ++i) {
    auto r = read_result();
    BOOST_REQUIRE_EQUAL(r.kind, wire::task_result::value);
    BOOST_CHECK_EQUAL(unpack<int>(r.data), static_cast<int>(r.task_id) + 1000);
    seen.insert(r.task_id);
  }
  BOOST_CHECK_EQUAL(seen.size(), 100u);
  BOOST_CHECK_EQUAL(*seen.begin(), 1u);
  BOOST_CHECK_EQUAL(*seen.rbegin(), 100u);
}

// Many tasks in odd-sized pieces, split across frames, with 1 and 4 threads:
// write-combining must never strand a result.
BOOST_AUTO_TEST_CASE(streamed_tasks_with_several_threads) {
  for (uint32_t threads : {1u, 4u}) {
    BOOST_TEST_CONTEXT("threads " << threads) {
      if (driver >= 0)
        ::close(driver);
      driver_reader = wire::frame_reader{};
      adopt(threads);
      constexpr int count = 20000;
      std::string all;
      for (int i = 1; i <= count; ++i)
        all += task_frame(i, "noop");
      int fd = driver;
      std::thread writer{[fd, all] {
        for (std::size_t off = 0; off < all.size(); off += 977)
          if (wire::write_all(fd, std::string_view{all}.substr(off, 977)))
            return;
      }};
      // A failed check below unwinds through here: stop the writer first.
      struct joiner {
        std::thread& t;
        int fd;
        ~joiner() {
          ::shutdown(fd, SHUT_RDWR);
          t.join();
        }
      } join_writer{writer, fd};
      std::set<uint64_t> seen;
      for (int i = 0; i < count; ++i)
        seen.insert(read_result().task_id);
      BOOST_CHECK_EQUAL(seen.size(), static_cast<std::size_t>(count));
    }
  }
}

BOOST_AUTO_TEST_CASE(exception_becomes_error_result) {
  adopt();
  send_driver(task_frame(1, "fails"));
  auto r = read_result();
  BOOST_REQUIRE_EQUAL(r.kind, wire::task_result::error);
  BOOST_CHECK_EQUAL(r.error_type, "std::runtime_error");
  BOOST_CHECK_EQUAL(r.error_message, "boom");
}

BOOST_AUTO_TEST_CASE(unknown_function) {
  adopt();
  send_driver(task_frame(1, "no_such_function"));
  auto r = read_result();
  BOOST_REQUIRE_EQUAL(r.kind, wire::task_result::error);
  BOOST_CHECK_EQUAL(r.error_type, "rayd::unknown_function");
  BOOST_CHECK(r.error_message.find("no_such_function") != std::string::npos);
  BOOST_CHECK(r.error_message.find("add") != std::string::npos);
}

BOOST_AUTO_TEST_CASE(large_result_is_stored) {
  adopt();
  constexpr std::size_t n = 200 * 1024;
  send_driver(task_frame(3, "big", {value_arg(pack(n))}));
  auto f = expect_control(wire::msg::store);
  auto store = wire::decode<wire::store_msg>(f.payload);
  BOOST_REQUIRE(store);
  int fd = pop_control_fd();
  auto expected = pack(std::string(n, 'x'));
  BOOST_CHECK_EQUAL(store->size, expected.size());
  BOOST_CHECK_EQUAL(store->object_id.size(), 20u);
  std::string bytes(expected.size(), '\0');
  BOOST_CHECK_EQUAL(::pread(fd, bytes.data(), bytes.size(), 0),
                    static_cast<ssize_t>(bytes.size()));
  ::close(fd);
  BOOST_CHECK(bytes == expected);
  send_control(wire::msg::stored, wire::object_id_msg{store->object_id});
  auto r = read_result();
  BOOST_CHECK_EQUAL(r.task_id, 3u);
  BOOST_REQUIRE_EQUAL(r.kind, wire::task_result::stored);
  BOOST_CHECK_EQUAL(r.loc.object_id, store->object_id);
  BOOST_CHECK_EQUAL(r.loc.node_id, lease.node_id);
  BOOST_CHECK_EQUAL(r.loc.address, lease.address);
  BOOST_CHECK_EQUAL(r.loc.size, expected.size());
}

BOOST_AUTO_TEST_CASE(store_refused_fails_the_task) {
  adopt();
  send_driver(task_frame(3, "big", {value_arg(pack(std::size_t{300 * 1024}))}));
  auto store = wire::decode<wire::store_msg>(expect_control(wire::msg::store).payload);
  BOOST_REQUIRE(store);
  ::close(pop_control_fd());
  send_control(wire::msg::control_error,
               wire::object_error{store->object_id,
                                  static_cast<uint8_t>(wire::wire_error::store_full),
                                  "spill disk full"});
  auto r = read_result();
  BOOST_REQUIRE_EQUAL(r.kind, wire::task_result::error);
  BOOST_CHECK_EQUAL(r.error_type, "rayd::object_store_full");
  BOOST_CHECK_EQUAL(r.error_message, "spill disk full");
}

BOOST_AUTO_TEST_CASE(ref_argument_is_fetched) {
  adopt();
  auto bytes = pack(std::string{"hello, object"});
  wire::object_loc loc{"0123456789abcdef0123", "node-2", "10.0.0.2:7000", bytes.size()};
  send_driver(task_frame(8, "length", {ref_arg(loc)}));
  auto fetch = wire::decode<wire::fetch_msg>(expect_control(wire::msg::fetch).payload);
  BOOST_REQUIRE(fetch);
  BOOST_CHECK_EQUAL(fetch->loc.object_id, loc.object_id);
  BOOST_CHECK_EQUAL(fetch->loc.node_id, loc.node_id);
  BOOST_CHECK_EQUAL(fetch->loc.address, loc.address);
  BOOST_CHECK_EQUAL(fetch->loc.size, loc.size);
  int fd = memfd_with(bytes);
  send_control(wire::msg::fetched, wire::object_header{loc.object_id, bytes.size()}, {fd});
  ::close(fd);
  auto r = read_result();
  BOOST_CHECK_EQUAL(r.task_id, 8u);
  BOOST_REQUIRE_EQUAL(r.kind, wire::task_result::value);
  BOOST_CHECK_EQUAL(unpack<std::size_t>(r.data), 13u);
}

BOOST_AUTO_TEST_CASE(lost_argument_fails_the_task) {
  adopt();
  wire::object_loc loc{"aaaaaaaaaaaaaaaaaaaa", "node-2", "10.0.0.2:7000", 10};
  send_driver(task_frame(9, "length", {ref_arg(loc)}));
  BOOST_REQUIRE(wire::decode<wire::fetch_msg>(expect_control(wire::msg::fetch).payload));
  send_control(wire::msg::control_error,
               wire::object_error{loc.object_id, static_cast<uint8_t>(wire::wire_error::lost),
                                  "node-2 is gone"});
  auto r = read_result();
  BOOST_REQUIRE_EQUAL(r.kind, wire::task_result::error);
  BOOST_CHECK_EQUAL(r.error_type, "rayd::object_lost");
  BOOST_CHECK_EQUAL(r.error_message, "node-2 is gone");
}

BOOST_AUTO_TEST_CASE(two_threads_run_tasks_concurrently) {
  adopt(2);
  send_driver(task_frame(1, "meet") + task_frame(2, "meet"));
  for (int i = 0; i < 2; ++i) {
    auto r = read_result();
    BOOST_REQUIRE_EQUAL(r.kind, wire::task_result::value);
    BOOST_CHECK_MESSAGE(unpack<bool>(r.data), "task " << r.task_id << " ran alone");
  }
}

BOOST_AUTO_TEST_CASE(closing_the_driver_socket_ends_the_lease) {
  adopt(3);
  send_driver(task_frame(1, "noop"));
  read_result();
  ::close(driver);
  driver = -1;
  auto done = wire::decode<wire::lease_done_msg>(expect_control(wire::msg::lease_done).payload);
  BOOST_REQUIRE(done);
  BOOST_CHECK_EQUAL(done->lease_id, lease.lease_id);
}

BOOST_AUTO_TEST_CASE(exit_message_ends_the_worker) {
  adopt();
  BOOST_REQUIRE(!wire::write_all(control, wire::encode_raw(wire::msg::exit, {})));
  int status = wait_exit();
  BOOST_REQUIRE(WIFEXITED(status));
  BOOST_CHECK_EQUAL(WEXITSTATUS(status), 0);
}

BOOST_AUTO_TEST_CASE(node_death_ends_the_worker) {
  adopt();
  ::close(control);
  control = -1;
  int status = wait_exit();
  BOOST_REQUIRE(WIFEXITED(status));
  BOOST_CHECK_EQUAL(WEXITSTATUS(status), 0);
  expect_driver_eof();
}

BOOST_AUTO_TEST_CASE(crashing_task_kills_the_worker) {
  adopt();
  send_driver(task_frame(1, "crash"));
  int status = wait_exit();
  BOOST_REQUIRE(WIFSIGNALED(status));
  BOOST_CHECK_EQUAL(WTERMSIG(status), SIGSEGV);
  expect_driver_eof();
}

BOOST_AUTO_TEST_CASE(aborting_task_kills_the_worker) {
  adopt();
  send_driver(task_frame(1, "aborts"));
  int status = wait_exit();
  BOOST_REQUIRE(WIFSIGNALED(status));
  BOOST_CHECK_EQUAL(WTERMSIG(status), SIGABRT);
  expect_driver_eof();
}

BOOST_AUTO_TEST_SUITE_END()

// -- actors (worker_actors.cpp) -------------------------------------------------------

namespace {

std::string call_frame(uint64_t id, const std::string& actor, const std::string& method,
                       std::vector<wire::task_arg> args = {}) {
  return wire::encode(wire::msg::call, wire::actor_call{id, actor, method, std::move(args), 0});
}

struct actor_fixture : worker_fixture {
  /// CREATE_ACTOR; returns ACTOR_CREATED.
  wire::actor_created_msg create(const std::string& id, const std::string& cls,
                                 std::vector<std::string> args, uint32_t concurrency = 1) {
    send_control(wire::msg::create_actor,
                 wire::actor_create_msg{id, cls, std::move(args), concurrency});
    auto f = expect_control(wire::msg::actor_created);
    auto m = wire::decode<wire::actor_created_msg>(f.payload);
    BOOST_REQUIRE(m);
    BOOST_CHECK_EQUAL(m->actor_id, id);
    return *m;
  }

  /// ADOPT_CALLER of a fresh caller socket (the driver's end); checks ATTACHED.
  void attach() {
    int sv[2];
    BOOST_REQUIRE(::socketpair(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0, sv) == 0);
    send_control(wire::msg::adopt_caller, wire::attach_msg{child.pid}, {sv[1]});
    ::close(sv[1]);
    driver = sv[0];
    auto f = read_driver();
    BOOST_REQUIRE_EQUAL(wire::to_string(f.type), "ATTACHED");
    auto a = wire::decode<wire::attach_msg>(f.payload);
    BOOST_REQUIRE(a);
    BOOST_CHECK_EQUAL(a->pid, child.pid);
  }
};

} // namespace

BOOST_FIXTURE_TEST_SUITE(worker_actors, actor_fixture)

BOOST_AUTO_TEST_CASE(calls_of_one_socket_run_in_order_on_the_actor) {
  BOOST_CHECK(create("a1", "Account", {pack(10)}).ok);
  BOOST_CHECK(create("a1", "Account", {pack(10)}).ok); // again: hosted already
  attach();
  std::string batch;
  for (int i = 1; i <= 200; ++i)
    batch += call_frame(i, "a1", "Account::deposit", {value_arg(pack(1))});
  send_driver(batch);
  for (int i = 1; i <= 200; ++i) {
    auto r = read_result();
    BOOST_REQUIRE_EQUAL(r.task_id, static_cast<uint64_t>(i));
    BOOST_REQUIRE_EQUAL(r.kind, wire::task_result::value);
    BOOST_REQUIRE_EQUAL(unpack<int>(r.data), 10 + i); // in call order
  }
  send_driver(wire::encode_raw(wire::msg::ping, {}));
  BOOST_CHECK_EQUAL(wire::to_string(read_driver().type), "PONG");
  // Errors of a call: wrong arguments, unknown method, unknown actor.
  send_driver(call_frame(300, "a1", "Account::deposit", {value_arg(pack(std::string("x")))}));
  auto r = read_result();
  BOOST_CHECK_EQUAL(r.kind, wire::task_result::error);
  BOOST_CHECK_EQUAL(r.error_type, "rayd::type_mismatch");
  send_driver(call_frame(301, "a1", "Account::nope"));
  BOOST_CHECK_EQUAL(read_result().error_type, "rayd::unknown_method");
  send_driver(call_frame(302, "ghost", "Account::balance"));
  r = read_result();
  BOOST_CHECK_EQUAL(r.task_id, 302u);
  BOOST_CHECK_EQUAL(r.error_type, "rayd::actor_died");
  BOOST_CHECK_NE(r.error_message.find("not hosted"), std::string::npos);
}

// Results of calls with more queued behind them are written together, but
// never held back behind a call that may take long (one that has not run
// yet, or ran over 50 us last time): the caller of the quick calls gets
// their results while the long one runs.
BOOST_AUTO_TEST_CASE(held_back_results_do_not_wait_for_a_slow_call) {
  BOOST_CHECK(create("b1", "Account", {pack(0)}).ok);
  attach();
  for (int round = 0; round < 2; ++round) { // nap unknown, then known to be slow
    std::string batch;
    for (int i = 1; i <= 20; ++i)
      batch += call_frame(round * 100 + i, "b1", "Account::deposit", {value_arg(pack(1))});
    batch += call_frame(round * 100 + 50, "b1", "Account::nap", {value_arg(pack(1500))});
    auto t0 = std::chrono::steady_clock::now();
    send_driver(batch);
    for (int i = 1; i <= 20; ++i)
      BOOST_REQUIRE_EQUAL(read_result().task_id, static_cast<uint64_t>(round * 100 + i));
    auto quick_ms = std::chrono::duration_cast<std::chrono::milliseconds>(
                      std::chrono::steady_clock::now() - t0)
                      .count();
    BOOST_CHECK_MESSAGE(quick_ms < 1000, "round " << round << ": the quick results took "
                                                  << quick_ms << " ms (behind the 1.5 s nap)");
    BOOST_CHECK_EQUAL(read_result().task_id, static_cast<uint64_t>(round * 100 + 50));
  }
}

BOOST_AUTO_TEST_CASE(unknown_classes_and_throwing_constructors_fail_the_create) {
  auto m = create("a2", "Nope", {});
  BOOST_CHECK(!m.ok);
  BOOST_CHECK_EQUAL(m.error_type, "rayd::unknown_class");
  m = create("a3", "Account", {pack(-5)});
  BOOST_CHECK(!m.ok);
  BOOST_CHECK_EQUAL(m.error_type, "std::invalid_argument");
  BOOST_CHECK_EQUAL(m.error_message, "negative balance");
  m = create("a4", "Account", {pack(std::string("ten"))});
  BOOST_CHECK(!m.ok);
  BOOST_CHECK_EQUAL(m.error_type, "rayd::type_mismatch");
  attach();
  send_driver(call_frame(1, "a3", "Account::balance"));
  BOOST_CHECK_EQUAL(read_result().error_type, "rayd::actor_died");
}

BOOST_AUTO_TEST_CASE(a_killed_actor_answers_its_queued_calls_with_actor_died) {
  BOOST_REQUIRE(create("k1", "Account", {pack(0)}).ok);
  attach();
  std::string batch = call_frame(1, "k1", "Account::nap", {value_arg(pack(300))});
  for (int i = 2; i <= 4; ++i)
    batch += call_frame(i, "k1", "Account::balance");
  send_driver(batch + wire::encode_raw(wire::msg::ping, {}));
  // PONG: the socket's frames before it are in the mailbox; then the nap
  // starts (the rest stay queued behind it).
  BOOST_REQUIRE_EQUAL(wire::to_string(read_driver().type), "PONG");
  std::this_thread::sleep_for(50ms);
  send_control(wire::msg::kill_actor, wire::actor_id_msg{"k1"});
  auto first = read_result();
  BOOST_CHECK_EQUAL(first.task_id, 1u);
  BOOST_CHECK_EQUAL(first.kind, wire::task_result::value); // it was running
  for (int i = 2; i <= 4; ++i) {
    auto r = read_result();
    BOOST_CHECK_EQUAL(r.task_id, static_cast<uint64_t>(i));
    BOOST_CHECK_EQUAL(r.error_type, "rayd::actor_died");
  }
  send_driver(call_frame(5, "k1", "Account::balance"));
  BOOST_CHECK_EQUAL(read_result().error_type, "rayd::actor_died");
}

BOOST_AUTO_TEST_CASE(max_concurrency_lets_calls_overlap) {
  BOOST_REQUIRE(create("c2", "Account", {pack(0)}, 2).ok);
  attach();
  send_driver(call_frame(1, "c2", "Account::meet") + call_frame(2, "c2", "Account::meet"));
  for (int i = 0; i < 2; ++i) {
    auto r = read_result();
    BOOST_REQUIRE_EQUAL(r.kind, wire::task_result::value);
    BOOST_CHECK(unpack<bool>(r.data)); // both were inside at once
  }
  // Executors are handed out again once free: more calls than executors,
  // each answered once (in any order).
  std::string batch;
  for (int i = 10; i < 20; ++i)
    batch += call_frame(i, "c2", "Account::echo", {value_arg(pack(i))});
  send_driver(batch);
  std::set<int> values;
  for (int i = 0; i < 10; ++i) {
    auto r = read_result();
    BOOST_CHECK_EQUAL(unpack<int>(r.data), static_cast<int>(r.task_id));
    values.insert(unpack<int>(r.data));
  }
  BOOST_CHECK_EQUAL(values.size(), 10u);
  BOOST_CHECK_EQUAL(*values.begin(), 10);
  BOOST_CHECK_EQUAL(*values.rbegin(), 19);
}

BOOST_AUTO_TEST_CASE(a_large_actor_result_is_stored) {
  BOOST_REQUIRE(create("s1", "Account", {pack(0)}).ok);
  attach();
  send_driver(call_frame(1, "s1", "Account::big", {value_arg(pack(std::size_t{200000}))}));
  auto f = expect_control(wire::msg::store);
  auto st = wire::decode<wire::store_msg>(f.payload);
  BOOST_REQUIRE(st);
  ::close(pop_control_fd());
  send_control(wire::msg::stored, wire::object_id_msg{st->object_id});
  auto r = read_result();
  BOOST_CHECK_EQUAL(r.kind, wire::task_result::stored);
  BOOST_CHECK_EQUAL(r.loc.object_id, st->object_id);
  BOOST_CHECK_EQUAL(r.loc.node_id, "node-1");
  BOOST_CHECK_EQUAL(r.loc.address, "10.0.0.1:7000"); // RAYD_NODE_ADDRESS
}

BOOST_AUTO_TEST_CASE(many_actors_in_one_process_and_the_call_rate) {
  // 10,000 actors are cheap: no thread each, little memory.
  auto rss_kib = [this] {
    std::FILE* f = std::fopen(("/proc/" + std::to_string(child.pid) + "/status").c_str(), "r");
    BOOST_REQUIRE(f != nullptr);
    char line[256];
    long kib = -1;
    while (std::fgets(line, sizeof line, f) != nullptr)
      if (std::sscanf(line, "VmRSS: %ld kB", &kib) == 1)
        break;
    std::fclose(f);
    return kib;
  };
  BOOST_REQUIRE(create("m-first", "Account", {pack(0)}).ok); // the actor system exists
  auto before = rss_kib();
  for (int i = 0; i < 10000; ++i)
    send_control(wire::msg::create_actor,
                 wire::actor_create_msg{"m" + std::to_string(i), "Account", {pack(i)}, 1});
  for (int i = 0; i < 10000; ++i)
    BOOST_REQUIRE(wire::decode<wire::actor_created_msg>(
                    expect_control(wire::msg::actor_created).payload)->ok);
  auto per_actor = (rss_kib() - before) * 1024 / 10000;
  std::printf("memory per hosted actor: %ld bytes\n", per_actor);
  BOOST_CHECK_LT(per_actor, 4096);
  attach();
  send_driver(call_frame(1, "m9999", "Account::balance"));
  BOOST_CHECK_EQUAL(unpack<int>(read_result().data), 9999);
  // Synchronous round trips, then a pipelined stream (printed, not asserted:
  // the benchmark owns the targets).
  constexpr int sync_calls = 5000;
  auto t0 = std::chrono::steady_clock::now();
  for (int i = 0; i < sync_calls; ++i) {
    send_driver(call_frame(10 + i, "m1", "Account::balance"));
    BOOST_REQUIRE_EQUAL(read_result().kind, wire::task_result::value);
  }
  auto t1 = std::chrono::steady_clock::now();
  constexpr int async_calls = 100000;
  std::thread writer([this] {
    std::string batch;
    for (int i = 0; i < async_calls; ++i) {
      batch += call_frame(100000 + i, "m2", "Account::deposit", {value_arg(pack(1))});
      if (batch.size() > 64 * 1024) {
        (void) wire::write_all(driver, batch);
        batch.clear();
      }
    }
    (void) wire::write_all(driver, batch);
  });
  int last = 0;
  for (int i = 0; i < async_calls; ++i) {
    auto r = read_result();
    last = unpack<int>(r.data);
  }
  writer.join();
  auto t2 = std::chrono::steady_clock::now();
  BOOST_CHECK_EQUAL(last, 2 + async_calls);
  auto us = [](auto d) { return std::chrono::duration<double, std::micro>(d).count(); };
  std::printf("actor calls on a unix socket: sync %.1f us per call; async %.0f calls/s\n",
              us(t1 - t0) / sync_calls, async_calls / (us(t2 - t1) / 1e6));
}

BOOST_AUTO_TEST_SUITE_END()

BOOST_AUTO_TEST_CASE(missing_task_library_exits_1) {
  ::setenv("RAYD_WORKER_LIBS", "/nonexistent/libtasks.so", 1);
  int sv[2];
  BOOST_REQUIRE(::socketpair(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0, sv) == 0);
  std::fflush(nullptr);
  pid_t pid = ::fork();
  BOOST_REQUIRE(pid >= 0);
  if (pid == 0) {
    ::close(sv[0]);
    ::close(STDERR_FILENO); // the expected complaint
    core::run_worker(sv[1]);
  }
  ::close(sv[1]);
  pollfd pfd{sv[0], POLLIN, 0};
  if (::poll(&pfd, 1, timeout_ms) != 1) {
    ::kill(pid, SIGKILL);
    ::waitpid(pid, nullptr, 0);
    BOOST_FAIL("the worker neither exited nor said anything");
  }
  char byte;
  BOOST_CHECK_EQUAL(::read(sv[0], &byte, 1), 0); // EOF, no READY
  ::close(sv[0]);
  int status = 0;
  BOOST_REQUIRE_EQUAL(::waitpid(pid, &status, 0), pid);
  BOOST_REQUIRE(WIFEXITED(status));
  BOOST_CHECK_EQUAL(WEXITSTATUS(status), 1);
  ::setenv("RAYD_WORKER_LIBS", "", 1);
}
