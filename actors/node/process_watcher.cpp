#include "actors/node/process_watcher.hpp"

#include <fcntl.h>
#include <poll.h>
#include <signal.h>
#include <spawn.h>
#include <sys/epoll.h>
#include <sys/eventfd.h>
#include <sys/socket.h>
#include <sys/syscall.h>
#include <sys/wait.h>
#include <unistd.h>

#include <algorithm>
#include <atomic>
#include <cerrno>
#include <chrono>
#include <cstring>
#include <map>
#include <mutex>
#include <optional>
#include <thread>

#include "common/error.hpp"

namespace rayd::node {

namespace {

// The control socket's number inside the shim.
constexpr int shim_control_fd = 3;
// epoll tags: 0 is the wake-up eventfd; a job's control socket is its id; a
// shim's pidfd (armed after EOF when the shim has not exited yet) is
// id | pidfd_tag.
constexpr uint64_t pidfd_tag = uint64_t{1} << 63;

int open_pidfd(pid_t pid) {
#ifdef SYS_pidfd_open
  return static_cast<int>(::syscall(SYS_pidfd_open, pid, 0));
#else
  errno = ENOSYS;
  return -1;
#endif
}

std::string describe_status(int status) {
  if (WIFEXITED(status))
    return "exit code " + std::to_string(WEXITSTATUS(status));
  if (WIFSIGNALED(status)) {
    int sig = WTERMSIG(status);
    const char* name = ::strsignal(sig);
    return "killed by signal " + std::to_string(sig) + (name ? std::string{" ("} + name + ")" : "");
  }
  return "status " + std::to_string(status);
}

bool parse_int(const std::string& s, size_t from, long long& out) {
  if (from >= s.size())
    return false;
  char* end = nullptr;
  errno = 0;
  out = std::strtoll(s.c_str() + from, &end, 10);
  return errno == 0 && *end == '\0';
}

int64_t steady_ms() {
  using namespace std::chrono;
  return duration_cast<milliseconds>(steady_clock::now().time_since_epoch()).count();
}

} // namespace

struct process_watcher::impl {
  struct job {
    uint64_t id = 0;
    pid_t shim_pid = 0;
    int64_t grace_ms = 0;
    // Guarded by mtx (stop() writes to fd; the thread closes it):
    int fd = -1;        // control socket, -1 once closed
    bool done = false;  // exited/failed decided; later input is ignored
    // The watcher thread's own (and the destructor's, after the join):
    int pidfd = -1;     // armed after EOF while the shim is still exiting
    bool reaped = false;
    int entry_pid = 0;  // from R
    // From X/K: delivered once the shim exits, i.e. once every process of
    // the job is gone.
    std::optional<process_event> exit_event;
    std::string inbuf;
    callback cb;
  };

  mutable std::mutex mtx;
  // Erased only by the watcher thread, so it may use a job* without the lock.
  std::map<uint64_t, std::unique_ptr<job>> jobs;
  size_t unfinished = 0;
  std::atomic<uint64_t> next_id{1};
  std::atomic<bool> quitting{false};
  int epfd = -1;
  int wake_fd = -1;
  std::thread thread;

  job* find(uint64_t id) {
    std::lock_guard<std::mutex> guard{mtx};
    auto i = jobs.find(id);
    return i == jobs.end() ? nullptr : i->second.get();
  }

  // Runs the callback unless the destructor has begun.
  void deliver(job& j, const process_event& ev) {
    if (!quitting.load() && j.cb)
      j.cb(ev);
  }

  // Marks the job finished; false if it already was.
  bool finish(job& j) {
    std::lock_guard<std::mutex> guard{mtx};
    if (j.done)
      return false;
    j.done = true;
    --unfinished;
    return true;
  }

  void handle_line(job& j, const std::string& line) {
    if (line.size() < 2 || line[1] != ' ')
      return; // not ours: ignored, so that newer shims may say more
    long long n = 0;
    process_event ev{};
    ev.pid = j.entry_pid;
    switch (line[0]) {
      case 'R':
        if (!parse_int(line, 2, n) || n <= 0 || j.entry_pid != 0)
          return;
        j.entry_pid = static_cast<int>(n);
        ev.what = process_event::kind::started;
        ev.pid = j.entry_pid;
        if (!j.done)
          deliver(j, ev);
        return;
      case 'X':
      case 'K':
        if (!parse_int(line, 2, n) || j.done || j.exit_event)
          return;
        ev.what = process_event::kind::exited;
        ev.exit_code = line[0] == 'X' ? static_cast<int>(n) : -1;
        ev.signal = line[0] == 'K' ? static_cast<int>(n) : 0;
        j.exit_event = ev; // the shim now stops the leftovers, then exits
        return;
      case 'E':
        if (!finish(j))
          return;
        ev.what = process_event::kind::failed;
        ev.message = line.substr(2);
        deliver(j, ev);
        j.cb = nullptr;
        return;
      default:
        return;
    }
  }

  void on_readable(job& j) {
    char buf[4096];
    ssize_t n = ::read(j.fd, buf, sizeof buf);
    if (n < 0 && (errno == EINTR || errno == EAGAIN))
      return; // level-triggered: epoll reports it again
    if (n <= 0) {
      on_eof(j);
      return;
    }
    j.inbuf.append(buf, static_cast<size_t>(n));
    size_t nl;
    while ((nl = j.inbuf.find('\n')) != std::string::npos) {
      std::string line = j.inbuf.substr(0, nl);
      j.inbuf.erase(0, nl + 1);
      handle_line(j, line);
    }
    if (j.inbuf.size() > 65536)
      j.inbuf.clear(); // a runaway line; the protocol has none this long
  }

  // The shim closes its end only by exiting, so it has exited or is about to.
  void on_eof(job& j) {
    {
      std::lock_guard<std::mutex> guard{mtx};
      ::epoll_ctl(epfd, EPOLL_CTL_DEL, j.fd, nullptr);
      ::close(j.fd);
      j.fd = -1;
    }
    int status = 0;
    pid_t r = ::waitpid(j.shim_pid, &status, WNOHANG);
    if (r == 0) {
      j.pidfd = open_pidfd(j.shim_pid);
      if (j.pidfd >= 0) {
        epoll_event ev{};
        ev.events = EPOLLIN;
        ev.data.u64 = j.id | pidfd_tag;
        if (::epoll_ctl(epfd, EPOLL_CTL_ADD, j.pidfd, &ev) == 0)
          return; // on_shim_exit follows
        ::close(j.pidfd);
        j.pidfd = -1;
      }
      r = ::waitpid(j.shim_pid, &status, 0);
    }
    on_shim_exit(j, r == j.shim_pid, status);
  }

  void on_shim_exit(job& j, bool have_status, int status) {
    j.reaped = true;
    if (j.pidfd >= 0) {
      ::epoll_ctl(epfd, EPOLL_CTL_DEL, j.pidfd, nullptr);
      ::close(j.pidfd);
      j.pidfd = -1;
    }
    bool clean = have_status && WIFEXITED(status) && WEXITSTATUS(status) == 0;
    if (j.exit_event && finish(j)) {
      // The shim was killed while stopping leftovers: finish its work.
      if (!clean && j.entry_pid > 0)
        ::kill(-j.entry_pid, SIGKILL);
      deliver(j, *j.exit_event);
    } else if (finish(j)) {
      // The shim did not clean up: end the job's process group ourselves.
      if (j.entry_pid > 0)
        ::kill(-j.entry_pid, SIGKILL);
      process_event ev{};
      ev.what = process_event::kind::failed;
      ev.pid = j.entry_pid;
      ev.message = "the job shim (pid " + std::to_string(j.shim_pid) + ") died unexpectedly: "
                   + (have_status ? describe_status(status) : "status unknown (reaped elsewhere)");
      deliver(j, ev);
    }
    std::lock_guard<std::mutex> guard{mtx};
    jobs.erase(j.id);
  }

  void run() {
    epoll_event evs[64];
    while (!quitting.load()) {
      int n = ::epoll_wait(epfd, evs, 64, -1);
      for (int i = 0; i < n && !quitting.load(); ++i) {
        uint64_t tag = evs[i].data.u64;
        if (tag == 0) {
          uint64_t v;
          [[maybe_unused]] ssize_t r = ::read(wake_fd, &v, sizeof v);
          continue;
        }
        job* j = find(tag & ~pidfd_tag);
        if (!j)
          continue;
        if (tag & pidfd_tag) {
          int status = 0;
          pid_t r = ::waitpid(j->shim_pid, &status, WNOHANG);
          if (r == 0)
            continue;
          on_shim_exit(*j, r == j->shim_pid, status);
        } else if (j->fd >= 0) {
          on_readable(*j);
        }
      }
    }
  }

  // After the thread has been joined: fate sharing for every job still here.
  void shut_down() {
    int64_t max_grace = 0;
    for (auto& [id, j] : jobs) {
      if (j->fd >= 0) {
        ::close(j->fd); // EOF: the shim stops its job
        j->fd = -1;
      }
      if (!j->reaped)
        max_grace = std::max(max_grace, j->grace_ms);
    }
    int64_t deadline = steady_ms() + max_grace + 2000;
    for (auto& [id, j] : jobs) {
      if (j->reaped)
        continue;
      int pidfd = j->pidfd >= 0 ? j->pidfd : open_pidfd(j->shim_pid);
      int status = 0;
      for (;;) {
        pid_t r = ::waitpid(j->shim_pid, &status, WNOHANG);
        if (r != 0)
          break; // reaped, or not our child any more
        int64_t left = deadline - steady_ms();
        if (left <= 0) {
          ::kill(j->shim_pid, SIGKILL);
          if (j->entry_pid > 0)
            ::kill(-j->entry_pid, SIGKILL);
          ::waitpid(j->shim_pid, &status, 0);
          break;
        }
        // Without a pidfd, look again every 10 ms.
        pollfd p{pidfd, POLLIN, 0};
        if (pidfd >= 0)
          ::poll(&p, 1, static_cast<int>(left));
        else
          ::poll(nullptr, 0, static_cast<int>(std::min<int64_t>(left, 10)));
      }
      if (pidfd >= 0)
        ::close(pidfd);
      j->pidfd = -1;
      j->reaped = true;
    }
    jobs.clear();
  }
};

process_watcher::process_watcher() : impl_{std::make_unique<impl>()} {
  auto& d = *impl_;
  d.epfd = ::epoll_create1(EPOLL_CLOEXEC);
  d.wake_fd = ::eventfd(0, EFD_CLOEXEC | EFD_NONBLOCK);
  epoll_event ev{};
  ev.events = EPOLLIN;
  ev.data.u64 = 0;
  ::epoll_ctl(d.epfd, EPOLL_CTL_ADD, d.wake_fd, &ev);
  d.thread = std::thread{[this] { impl_->run(); }};
}

process_watcher::~process_watcher() {
  auto& d = *impl_;
  d.quitting.store(true);
  uint64_t one = 1;
  [[maybe_unused]] ssize_t r = ::write(d.wake_fd, &one, sizeof one);
  d.thread.join();
  d.shut_down();
  ::close(d.epfd);
  ::close(d.wake_fd);
}

caf::expected<uint64_t> process_watcher::launch(const launch_spec& spec, callback cb) {
  if (spec.shim_path.empty() || spec.argv.empty() || spec.cwd.empty() || spec.log_path.empty())
    return make_error(errc::invalid_argument,
                      "launch_spec: shim_path, argv, cwd and log_path are required");
  int64_t grace = std::max<int64_t>(0, spec.grace_ms);
  std::vector<std::string> args{spec.shim_path, "--control-fd", std::to_string(shim_control_fd),
                                "--log", spec.log_path, "--cwd", spec.cwd,
                                "--grace-ms", std::to_string(grace), "--"};
  args.insert(args.end(), spec.argv.begin(), spec.argv.end());
  std::vector<char*> argv;
  for (auto& a : args)
    argv.push_back(const_cast<char*>(a.c_str()));
  argv.push_back(nullptr);
  std::vector<char*> envp;
  for (auto& e : spec.env)
    envp.push_back(const_cast<char*>(e.c_str()));
  envp.push_back(nullptr);

  // Both ends close-on-exec: no other child of this process may hold a copy,
  // or the shim would not see EOF when rayd dies.
  int sv[2];
  if (::socketpair(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0, sv) != 0)
    return make_error(errc::unavailable, "cannot start the job shim " + spec.shim_path
                                           + ": socketpair: " + std::strerror(errno));
  if (sv[1] == shim_control_fd) {
    // dup2 onto itself would keep close-on-exec set.
    int moved = ::fcntl(sv[1], F_DUPFD_CLOEXEC, shim_control_fd + 1);
    ::close(sv[1]);
    sv[1] = moved;
  }
  posix_spawn_file_actions_t fa;
  posix_spawnattr_t attr;
  ::posix_spawn_file_actions_init(&fa);
  ::posix_spawnattr_init(&attr);
  ::posix_spawn_file_actions_adddup2(&fa, sv[1], shim_control_fd);
  sigset_t none, all;
  ::sigemptyset(&none);
  ::sigfillset(&all);
  ::posix_spawnattr_setsigmask(&attr, &none);
  ::posix_spawnattr_setsigdefault(&attr, &all);
  ::posix_spawnattr_setpgroup(&attr, 0);
  ::posix_spawnattr_setflags(&attr, POSIX_SPAWN_SETSIGMASK | POSIX_SPAWN_SETSIGDEF
                                      | POSIX_SPAWN_SETPGROUP);
  pid_t pid = 0;
  int rc = sv[1] < 0 ? errno
                     : ::posix_spawn(&pid, spec.shim_path.c_str(), &fa, &attr, argv.data(),
                                     envp.data());
  ::posix_spawn_file_actions_destroy(&fa);
  ::posix_spawnattr_destroy(&attr);
  if (sv[1] >= 0)
    ::close(sv[1]);
  if (rc != 0) {
    ::close(sv[0]);
    return make_error(errc::unavailable,
                      "cannot start the job shim " + spec.shim_path + ": " + std::strerror(rc));
  }
  ::fcntl(sv[0], F_SETFL, ::fcntl(sv[0], F_GETFL) | O_NONBLOCK);

  auto j = std::make_unique<impl::job>();
  j->id = impl_->next_id++;
  j->shim_pid = pid;
  j->grace_ms = grace;
  j->fd = sv[0];
  j->cb = std::move(cb);
  uint64_t id = j->id;
  auto& d = *impl_;
  std::lock_guard<std::mutex> guard{d.mtx};
  epoll_event ev{};
  ev.events = EPOLLIN;
  ev.data.u64 = id;
  if (::epoll_ctl(d.epfd, EPOLL_CTL_ADD, sv[0], &ev) != 0) {
    int err = errno;
    ::close(sv[0]); // EOF: the shim stops the job and exits
    int status = 0;
    ::waitpid(pid, &status, 0);
    return make_error(errc::unavailable, "cannot watch the job shim " + spec.shim_path + ": "
                                           + std::strerror(err));
  }
  d.jobs.emplace(id, std::move(j));
  ++d.unfinished;
  return id;
}

void process_watcher::stop(uint64_t id, int64_t grace_ms) {
  auto& d = *impl_;
  std::lock_guard<std::mutex> guard{d.mtx};
  auto i = d.jobs.find(id);
  if (i == d.jobs.end() || i->second->done || i->second->fd < 0)
    return;
  std::string msg = "S " + std::to_string(std::max<int64_t>(0, grace_ms)) + "\n";
  // Best effort: if the shim is gone, its EOF reports the job.
  [[maybe_unused]] ssize_t n = ::send(i->second->fd, msg.data(), msg.size(),
                                      MSG_NOSIGNAL | MSG_DONTWAIT);
}

size_t process_watcher::running() const {
  std::lock_guard<std::mutex> guard{impl_->mtx};
  return impl_->unfinished;
}

} // namespace rayd::node
