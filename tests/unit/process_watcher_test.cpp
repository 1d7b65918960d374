// Unit tests of rayd::node::process_watcher with the real rayd-job-shim (found
// through RAYD_BIN_DIR): results, start failures, stop with SIGKILL after the
// grace period, children in their own process group, fate sharing, leftovers
// after a normal exit, a dying shim, and 200 jobs at once.
#define BOOST_TEST_MODULE process_watcher
#include <boost/test/unit_test.hpp>

#include <signal.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include <chrono>
#include <condition_variable>
#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <iostream>
#include <mutex>
#include <sstream>
#include <thread>
#include <vector>

#include "actors/node/process_watcher.hpp"
#include "common/error.hpp"

using namespace rayd;
using namespace rayd::node;
using namespace std::chrono_literals;
namespace fs = std::filesystem;
using clock_type = std::chrono::steady_clock;

namespace {

struct temp_dir {
  std::string path;
  temp_dir() {
    char tmpl[] = "/tmp/rayd-unit-XXXXXX";
    path = fs::canonical(::mkdtemp(tmpl)).string();
  }
  ~temp_dir() {
    std::error_code ec;
    fs::remove_all(path, ec);
  }
};

std::string shim_path() {
  const char* dir = std::getenv("RAYD_BIN_DIR");
  BOOST_REQUIRE_MESSAGE(dir, "RAYD_BIN_DIR must name the directory of rayd-job-shim");
  return std::string{dir} + "/rayd-job-shim";
}

// Boost.Test builds the message even when the check passes.
std::string why(const caf::expected<uint64_t>& x) {
  return x ? std::string{"ok"} : describe(x.error());
}

std::string read_file(const std::string& path) {
  std::ifstream in{path};
  std::stringstream ss;
  ss << in.rdbuf();
  return ss.str();
}

void write_file(const std::string& path, const std::string& text) {
  std::ofstream{path} << text;
}

struct proc_stat {
  char state = 0;
  int ppid = 0, pgrp = 0, session = 0;
};

// False when the process is gone (or only a zombie left).
bool stat_of(int pid, proc_stat& out) {
  auto text = read_file("/proc/" + std::to_string(pid) + "/stat");
  auto rp = text.rfind(')');
  if (rp == std::string::npos)
    return false;
  std::istringstream in{text.substr(rp + 1)};
  in >> out.state >> out.ppid >> out.pgrp >> out.session;
  return in && out.state != 'Z' && out.state != 'X';
}

bool alive(int pid) {
  proc_stat st;
  return pid > 0 && stat_of(pid, st);
}

// Polls `pred` until it holds or `timeout` passed (for conditions nothing
// notifies us about, such as another process's death).
template <class Pred>
bool eventually(Pred pred, std::chrono::milliseconds timeout = 5s) {
  auto deadline = clock_type::now() + timeout;
  while (!pred()) {
    if (clock_type::now() >= deadline)
      return pred();
    std::this_thread::sleep_for(5ms);
  }
  return true;
}

// A pid written by the job's script (e.g. its background child's).
int wait_pid_file(const std::string& path) {
  int pid = 0;
  eventually([&] {
    auto text = read_file(path);
    return !text.empty() && text.back() == '\n' && (pid = std::atoi(text.c_str())) > 0;
  });
  BOOST_REQUIRE_MESSAGE(pid > 0, "no pid in " << path);
  return pid;
}

// Whether `pid` ignores SIGTERM (so that only SIGKILL can end it).
bool ignores_term(int pid) {
  std::istringstream in{read_file("/proc/" + std::to_string(pid) + "/status")};
  std::string line;
  while (std::getline(in, line))
    if (line.rfind("SigIgn:", 0) == 0)
      return (std::stoull(line.substr(7), nullptr, 16) >> (SIGTERM - 1)) & 1;
  return false;
}

// SIGKILLs, at the end of a test case, what it started and is still alive.
struct reaper {
  std::vector<int> pids;
  ~reaper() {
    for (int pid : pids)
      if (alive(pid))
        ::kill(pid, SIGKILL);
  }
};

// One job's events, in order, with the time each arrived.
struct recorder {
  std::mutex mtx;
  std::condition_variable cv;
  std::vector<process_event> events;
  std::vector<clock_type::time_point> times;

  process_watcher::callback cb() {
    return [this](const process_event& ev) {
      std::lock_guard<std::mutex> guard{mtx};
      events.push_back(ev);
      times.push_back(clock_type::now());
      cv.notify_all();
    };
  }
  // Waits for the exited/failed event; returns all events so far.
  std::vector<process_event> wait_final(std::chrono::milliseconds timeout = 10s) {
    std::unique_lock<std::mutex> guard{mtx};
    cv.wait_for(guard, timeout, [this] {
      return !events.empty() && events.back().what != process_event::kind::started;
    });
    return events;
  }
  int wait_started(std::chrono::milliseconds timeout = 10s) {
    std::unique_lock<std::mutex> guard{mtx};
    cv.wait_for(guard, timeout, [this] { return !events.empty(); });
    BOOST_REQUIRE(!events.empty());
    BOOST_REQUIRE_MESSAGE(events[0].what == process_event::kind::started,
                          "not started: " << events[0].message);
    return events[0].pid;
  }
};

struct fixture {
  temp_dir tmp;
  launch_spec spec(std::vector<std::string> argv, int64_t grace_ms = 3000) {
    launch_spec s;
    s.shim_path = shim_path();
    s.argv = std::move(argv);
    s.env = {"PATH=/usr/local/bin:/usr/bin:/bin", "FOO=bar-from-env"};
    s.cwd = tmp.path;
    s.log_path = tmp.path + "/job.log";
    s.grace_ms = grace_ms;
    return s;
  }
  std::vector<std::string> script(const std::string& body) {
    write_file(tmp.path + "/job.sh", body);
    return {"/bin/sh", tmp.path + "/job.sh"};
  }
};

} // namespace

BOOST_FIXTURE_TEST_CASE(exit_code_log_cwd_and_env, fixture) {
  recorder rec;
  process_watcher w;
  auto id = w.launch(spec({"/bin/sh", "-c", "echo out; echo err >&2; pwd; echo \"$FOO\"; exit 3"}),
                     rec.cb());
  BOOST_REQUIRE_MESSAGE(id, why(id));
  auto evs = rec.wait_final();
  BOOST_REQUIRE_EQUAL(evs.size(), 2u);
  BOOST_CHECK(evs[0].what == process_event::kind::started);
  BOOST_CHECK_GT(evs[0].pid, 0);
  BOOST_CHECK(evs[1].what == process_event::kind::exited);
  BOOST_CHECK_EQUAL(evs[1].exit_code, 3);
  BOOST_CHECK_EQUAL(evs[1].signal, 0);
  BOOST_CHECK_EQUAL(read_file(tmp.path + "/job.log"),
                    "out\nerr\n" + tmp.path + "\nbar-from-env\n");
  mode_t mask = ::umask(0);
  ::umask(mask);
  struct stat st{};
  BOOST_REQUIRE_EQUAL(::stat((tmp.path + "/job.log").c_str(), &st), 0);
  BOOST_CHECK_EQUAL(st.st_mode & 0777, 0640 & ~mask);
  BOOST_CHECK_EQUAL(w.running(), 0u);
  // Finished and unknown ids: no-ops.
  w.stop(*id, 0);
  w.stop(*id + 1000, 0);
  // The log is appended to, never truncated.
  recorder again;
  BOOST_REQUIRE(w.launch(spec({"/bin/sh", "-c", "echo more"}), again.cb()));
  BOOST_CHECK_EQUAL(again.wait_final().back().exit_code, 0);
  BOOST_CHECK_EQUAL(read_file(tmp.path + "/job.log"),
                    "out\nerr\n" + tmp.path + "\nbar-from-env\nmore\n");
}

BOOST_FIXTURE_TEST_CASE(start_failures, fixture) {
  process_watcher w;
  {
    recorder rec;
    BOOST_REQUIRE(w.launch(spec({"/bin/nope-rayd-test", "x"}), rec.cb()));
    auto evs = rec.wait_final();
    BOOST_REQUIRE_EQUAL(evs.size(), 1u); // no `started`
    BOOST_CHECK(evs[0].what == process_event::kind::failed);
    BOOST_CHECK_EQUAL(evs[0].message,
                      "cannot execute /bin/nope-rayd-test: No such file or directory");
  }
  {
    recorder rec;
    auto s = spec({"/bin/true"});
    s.cwd = tmp.path + "/missing";
    BOOST_REQUIRE(w.launch(s, rec.cb()));
    auto evs = rec.wait_final();
    BOOST_REQUIRE_EQUAL(evs.size(), 1u);
    BOOST_CHECK(evs[0].what == process_event::kind::failed);
    BOOST_CHECK_MESSAGE(evs[0].message.find("cannot enter working directory " + s.cwd)
                          != std::string::npos,
                        evs[0].message);
  }
  {
    recorder rec;
    auto s = spec({"/bin/true"});
    s.log_path = tmp.path + "/missing/job.log";
    BOOST_REQUIRE(w.launch(s, rec.cb()));
    auto evs = rec.wait_final();
    BOOST_REQUIRE_EQUAL(evs.size(), 1u);
    BOOST_CHECK_MESSAGE(evs[0].message.find("cannot open log " + s.log_path) != std::string::npos,
                        evs[0].message);
  }
  auto s = spec({"/bin/true"});
  s.shim_path = tmp.path + "/no-such-shim";
  auto bad = w.launch(s, nullptr);
  BOOST_REQUIRE(!bad);
  BOOST_CHECK(code_of(bad.error()) == errc::unavailable);
  BOOST_CHECK(describe(bad.error()).find(s.shim_path) != std::string::npos);
  s = spec({});
  BOOST_CHECK(code_of(w.launch(s, nullptr).error()) == errc::invalid_argument);
  BOOST_CHECK_EQUAL(w.running(), 0u);
}

BOOST_FIXTURE_TEST_CASE(stop_kills_term_ignoring_processes_after_grace, fixture) {
  reaper r;
  recorder rec;
  process_watcher w;
  // Ignored signals stay ignored in the shell's children, so neither the shell
  // nor `sleep` ends on SIGTERM.
  auto id = w.launch(spec(script("trap '' TERM\nsleep 1000 &\necho $! > child.pid\nwait\n")),
                     rec.cb());
  BOOST_REQUIRE(id);
  int entry = rec.wait_started();
  r.pids.push_back(entry);
  int child = wait_pid_file(tmp.path + "/child.pid");
  r.pids.push_back(child);
  BOOST_REQUIRE(ignores_term(entry));
  BOOST_REQUIRE(ignores_term(child));
  auto t0 = clock_type::now();
  w.stop(*id, 200);
  auto evs = rec.wait_final();
  auto took = std::chrono::duration_cast<std::chrono::milliseconds>(clock_type::now() - t0);
  BOOST_REQUIRE_EQUAL(evs.size(), 2u);
  BOOST_CHECK(evs[1].what == process_event::kind::exited);
  BOOST_CHECK_EQUAL(evs[1].signal, SIGKILL);
  BOOST_CHECK_EQUAL(evs[1].exit_code, -1);
  BOOST_CHECK_GE(took.count(), 190);  // SIGKILL only after the grace period
  BOOST_CHECK_LE(took.count(), 1200); // ... and promptly after it
  BOOST_CHECK(eventually([&] { return !alive(child); }, 1s));
  BOOST_CHECK_EQUAL(w.running(), 0u);
}

BOOST_FIXTURE_TEST_CASE(stop_reaches_children_in_their_own_process_group, fixture) {
  reaper r;
  recorder rec;
  process_watcher w;
  auto id = w.launch(
    spec(script("perl -e 'setpgrp(0, 0); exec q(sleep), 1000' &\necho $! > child.pid\nwait\n")),
    rec.cb());
  BOOST_REQUIRE(id);
  int entry = rec.wait_started();
  r.pids.push_back(entry);
  int child = wait_pid_file(tmp.path + "/child.pid");
  r.pids.push_back(child);
  proc_stat st;
  BOOST_REQUIRE(eventually([&] { return stat_of(child, st) && st.pgrp == child; }));
  BOOST_REQUIRE_EQUAL(st.session, entry); // left the group, not the session
  w.stop(*id, 200);
  auto evs = rec.wait_final();
  BOOST_REQUIRE_EQUAL(evs.size(), 2u);
  BOOST_CHECK(evs[1].what == process_event::kind::exited);
  BOOST_CHECK(eventually([&] { return !alive(child); }, 2s));
}

BOOST_FIXTURE_TEST_CASE(destroying_the_watcher_ends_its_jobs, fixture) {
  reaper r;
  recorder rec;
  auto w = std::make_unique<process_watcher>();
  auto s = spec(script("trap '' TERM\nsleep 1000 &\necho $! > child.pid\nwait\n"), 200);
  BOOST_REQUIRE(w->launch(s, rec.cb()));
  int entry = rec.wait_started();
  r.pids.push_back(entry);
  int child = wait_pid_file(tmp.path + "/child.pid");
  r.pids.push_back(child);
  auto t0 = clock_type::now();
  w.reset(); // closes the control sockets: the same EOF as when rayd dies
  auto took = std::chrono::duration_cast<std::chrono::milliseconds>(clock_type::now() - t0);
  // The destructor waited for the shims, so everything is gone already.
  BOOST_CHECK(!alive(entry));
  BOOST_CHECK(!alive(child));
  BOOST_CHECK_GE(took.count(), 190);
  BOOST_CHECK_LE(took.count(), 2200);
  std::lock_guard<std::mutex> guard{rec.mtx};
  BOOST_CHECK_EQUAL(rec.events.size(), 1u); // no callback after destruction began
}

BOOST_FIXTURE_TEST_CASE(sigkill_of_the_owner_ends_its_jobs, fixture) {
  reaper r;
  auto s = spec(script("trap '' TERM\necho $$ > entry.pid\nsleep 1000 &\necho $! > child.pid\n"
                       "wait\n"),
                200);
  // The owner plays rayd: a forked copy of this (so far single-threaded)
  // process that starts a job and then gets SIGKILLed.
  pid_t owner = ::fork();
  BOOST_REQUIRE(owner >= 0);
  if (owner == 0) {
    process_watcher w;
    if (!w.launch(s, nullptr))
      ::_exit(1);
    for (;;)
      ::pause();
  }
  r.pids.push_back(owner);
  int entry = wait_pid_file(tmp.path + "/entry.pid");
  r.pids.push_back(entry);
  int child = wait_pid_file(tmp.path + "/child.pid");
  r.pids.push_back(child);
  ::kill(owner, SIGKILL);
  int status = 0;
  BOOST_REQUIRE_EQUAL(::waitpid(owner, &status, 0), owner);
  BOOST_CHECK(alive(entry)); // it ignores SIGTERM: the grace period runs
  BOOST_CHECK(eventually([&] { return !alive(entry) && !alive(child); }, 1200ms));
}

BOOST_FIXTURE_TEST_CASE(leftovers_are_killed_after_a_normal_exit, fixture) {
  reaper r;
  recorder rec;
  process_watcher w;
  auto s = spec(script("trap '' TERM\nsleep 1000 &\necho $! > child.pid\nexit 0\n"), 300);
  BOOST_REQUIRE(w.launch(s, rec.cb()));
  auto evs = rec.wait_final();
  BOOST_REQUIRE_EQUAL(evs.size(), 2u);
  BOOST_CHECK(evs[1].what == process_event::kind::exited);
  BOOST_CHECK_EQUAL(evs[1].exit_code, 0);
  int child = wait_pid_file(tmp.path + "/child.pid");
  r.pids.push_back(child);
  // `exited` waited for the cleanup: the child that ignored SIGTERM is gone,
  // after the grace period.
  BOOST_CHECK(!alive(child));
  auto after = std::chrono::duration_cast<std::chrono::milliseconds>(rec.times[1]
                                                                      - rec.times[0]);
  BOOST_CHECK_GE(after.count(), 250);
}

BOOST_FIXTURE_TEST_CASE(a_dying_shim_fails_the_job_and_kills_its_group, fixture) {
  reaper r;
  recorder rec;
  process_watcher w;
  BOOST_REQUIRE(w.launch(spec(script("sleep 1000 &\necho $! > child.pid\nwait\n")), rec.cb()));
  int entry = rec.wait_started();
  r.pids.push_back(entry);
  int child = wait_pid_file(tmp.path + "/child.pid");
  r.pids.push_back(child);
  proc_stat st;
  BOOST_REQUIRE(stat_of(entry, st));
  int shim = st.ppid;
  BOOST_REQUIRE_GT(shim, 1);
  BOOST_REQUIRE(read_file("/proc/" + std::to_string(shim) + "/cmdline").find("rayd-job-shim")
                != std::string::npos);
  ::kill(shim, SIGKILL);
  auto evs = rec.wait_final();
  BOOST_REQUIRE_EQUAL(evs.size(), 2u);
  BOOST_CHECK(evs[1].what == process_event::kind::failed);
  BOOST_CHECK_MESSAGE(evs[1].message.find("the job shim (pid " + std::to_string(shim)
                                          + ") died unexpectedly: killed by signal 9")
                        != std::string::npos,
                      evs[1].message);
  BOOST_CHECK(eventually([&] { return !alive(entry) && !alive(child); }, 2s));
  BOOST_CHECK_EQUAL(w.running(), 0u);
}

BOOST_FIXTURE_TEST_CASE(sigterm_to_the_shim_stops_the_job_first, fixture) {
  reaper r;
  recorder rec;
  process_watcher w;
  BOOST_REQUIRE(w.launch(spec({"sleep", "1000"}), rec.cb()));
  int entry = rec.wait_started();
  r.pids.push_back(entry);
  proc_stat st;
  BOOST_REQUIRE(stat_of(entry, st));
  ::kill(st.ppid, SIGTERM); // e.g. a service manager stopping everything
  auto evs = rec.wait_final();
  BOOST_REQUIRE_EQUAL(evs.size(), 2u);
  BOOST_CHECK(evs[1].what == process_event::kind::exited);
  BOOST_CHECK_EQUAL(evs[1].signal, SIGTERM);
  BOOST_CHECK(!alive(entry));
}

BOOST_FIXTURE_TEST_CASE(two_hundred_jobs_at_once, fixture) {
  constexpr int n = 200;
  std::mutex mtx;
  std::condition_variable cv;
  int exited_ok = 0, other = 0;
  process_watcher w;
  auto t0 = clock_type::now();
  for (int i = 0; i < n; ++i) {
    auto id = w.launch(spec({"true"}), [&mtx, &cv, &exited_ok, &other](const process_event& ev) {
      if (ev.what == process_event::kind::started)
        return;
      std::lock_guard<std::mutex> guard{mtx};
      (ev.what == process_event::kind::exited && ev.exit_code == 0 ? exited_ok : other)++;
      cv.notify_all();
    });
    BOOST_REQUIRE_MESSAGE(id, why(id));
  }
  auto launched = clock_type::now();
  std::unique_lock<std::mutex> guard{mtx};
  cv.wait_for(guard, 60s, [&] { return exited_ok + other == n; });
  auto done = clock_type::now();
  BOOST_CHECK_EQUAL(exited_ok, n);
  BOOST_CHECK_EQUAL(other, 0);
  BOOST_CHECK_EQUAL(w.running(), 0u);
  using ms = std::chrono::milliseconds;
  std::cout << "process_watcher: " << n << " jobs of `true`: launched in "
            << std::chrono::duration_cast<ms>(launched - t0).count() << " ms, all exited after "
            << std::chrono::duration_cast<ms>(done - t0).count() << " ms" << std::endl;
}
