// rayd-job-shim: runs one job's entrypoint for rayd and makes sure every
// process of the job ends with it. Exec'd once per job by
// rayd::node::process_watcher; plain libc so that it starts fast.
//
//   rayd-job-shim --control-fd N --log PATH --cwd DIR --grace-ms MS -- PROGRAM [ARGS...]
//
// The entrypoint runs in its own session (its pid is the session id and the
// process group id), stdin from /dev/null, stdout+stderr appended to PATH, in
// DIR, with the shim's environment.
//
// Control protocol on fd N, one ASCII line per message, '\n'-terminated:
//   shim -> rayd  R <pid>        the entrypoint runs (its exec succeeded)
//                 E <message>    it could not be started; the shim exits 1
//                 X <code>       it exited with <code>
//                 K <signal>     it was killed by <signal>
//   rayd -> shim  S <grace_ms>   stop the job now
// X/K is sent as soon as the entrypoint has ended; the shim then ends what is
// left of the job's session and exits 0, so EOF on fd N means "every process
// of the job is gone". EOF from rayd (it closed fd N or died, even by SIGKILL)
// and SIGTERM/SIGHUP/SIGINT to the shim mean "stop the job with --grace-ms".
//
// Stopping = SIGTERM (+ SIGCONT, for stopped processes) to every process of
// the session, re-checked every 10 ms until none is left or the grace period
// is over, then SIGKILL until none is left. A process that called setsid()
// itself has left the session and is out of reach (that needs cgroups).
//
// Exit codes: 0 after X/K, 1 after E, 2 for a bad command line.

#include <dirent.h>
#include <fcntl.h>
#include <poll.h>
#include <signal.h>
#include <sys/syscall.h>
#include <sys/types.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <climits>
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <string>
#include <vector>

namespace {

struct options {
  int control_fd = -1;
  std::string log_path;
  std::string cwd;
  int64_t grace_ms = -1;
  char** argv = nullptr; // PROGRAM [ARGS...], null-terminated (from main's argv)
};

int usage(const char* why) {
  std::fprintf(stderr,
               "rayd-job-shim: %s\n"
               "usage: rayd-job-shim --control-fd N --log PATH --cwd DIR "
               "--grace-ms MS -- PROGRAM [ARGS...]\n",
               why);
  return 2;
}

bool parse_int(const char* text, int64_t& out) {
  if (!*text)
    return false;
  char* end = nullptr;
  errno = 0;
  long long v = std::strtoll(text, &end, 10);
  if (errno != 0 || *end != '\0' || v < 0)
    return false;
  out = v;
  return true;
}

// Returns 0 on success, else the exit code (after printing why).
int parse_args(int argc, char** argv, options& o) {
  int i = 1;
  for (; i < argc; ++i) {
    std::string a = argv[i];
    if (a == "--") {
      ++i;
      break;
    }
    if (i + 1 >= argc)
      return usage(("missing value for " + a).c_str());
    const char* v = argv[++i];
    int64_t n = 0;
    if (a == "--control-fd") {
      if (!parse_int(v, n) || n < 3 || n > INT_MAX || ::fcntl(static_cast<int>(n), F_GETFD) < 0)
        return usage("--control-fd: not an open file descriptor of 3 or more");
      o.control_fd = static_cast<int>(n);
    } else if (a == "--log") {
      o.log_path = v;
    } else if (a == "--cwd") {
      o.cwd = v;
    } else if (a == "--grace-ms") {
      if (!parse_int(v, n))
        return usage("--grace-ms: expected a non-negative integer");
      o.grace_ms = n;
    } else {
      return usage(("unknown option " + a).c_str());
    }
  }
  if (o.control_fd < 0 || o.log_path.empty() || o.cwd.empty() || o.grace_ms < 0)
    return usage("--control-fd, --log, --cwd and --grace-ms are required");
  if (i >= argc)
    return usage("missing PROGRAM after --");
  o.argv = argv + i;
  return 0;
}

int64_t now_ms() {
  timespec ts{};
  ::clock_gettime(CLOCK_MONOTONIC, &ts);
  return int64_t{ts.tv_sec} * 1000 + ts.tv_nsec / 1000000;
}

// Closes every inherited descriptor except 0-2 and `keep` (>= 3), so that
// nothing of rayd's (listening sockets, other jobs' files) leaks into the shim
// or the job; and opens /dev/null on any of 0-2 that is closed, so that no
// later descriptor of ours lands there and gets replaced in the child.
void tidy_fds(int keep) {
  for (int fd = 0; fd <= 2; ++fd)
    if (::fcntl(fd, F_GETFD) < 0)
      ::open("/dev/null", O_RDWR); // takes the lowest free number: fd

#ifdef SYS_close_range
  auto range = [](unsigned lo, unsigned hi) {
    return lo > hi || ::syscall(SYS_close_range, lo, hi, 0) == 0;
  };
  if (range(3, static_cast<unsigned>(keep) - 1) && range(static_cast<unsigned>(keep) + 1, ~0U))
    return;
#endif
  if (DIR* d = ::opendir("/proc/self/fd")) {
    std::vector<int> fds;
    while (dirent* e = ::readdir(d)) {
      int fd = std::atoi(e->d_name);
      if (fd > 2 && fd != keep && fd != ::dirfd(d))
        fds.push_back(fd);
    }
    ::closedir(d);
    for (int fd : fds)
      ::close(fd);
  }
}

// --- the control channel -----------------------------------------------------

int g_control = -1;

// Best effort: when rayd is gone the write fails (SIGPIPE is ignored) and the
// EOF on the read side drives the shutdown.
void send_line(const std::string& line) {
  if (g_control < 0)
    return;
  std::string msg = line + "\n";
  const char* p = msg.data();
  size_t left = msg.size();
  while (left > 0) {
    ssize_t n = ::write(g_control, p, left);
    if (n < 0 && errno == EINTR)
      continue;
    if (n <= 0)
      return;
    p += n;
    left -= static_cast<size_t>(n);
  }
}

std::string one_line(std::string s) {
  for (char& c : s)
    if (c == '\n' || c == '\r')
      c = ' ';
  return s;
}

// --- signals to the shim itself ----------------------------------------------

int g_signal_pipe[2] = {-1, -1};

extern "C" void on_stop_signal(int) {
  int saved = errno;
  char b = 1;
  [[maybe_unused]] ssize_t n = ::write(g_signal_pipe[1], &b, 1);
  errno = saved;
}

// --- the job's processes -----------------------------------------------------

// Live (non-zombie) processes whose process group or session is `sid`. Field 5
// of /proc/<p>/stat is the group, field 6 the session; a child that moved to
// its own group keeps the session.
std::vector<pid_t> session_processes(pid_t sid) {
  std::vector<pid_t> out;
  DIR* d = ::opendir("/proc");
  if (!d)
    return out;
  char path[sizeof "/proc//stat" + sizeof dirent::d_name];
  char buf[512];
  while (dirent* e = ::readdir(d)) {
    if (e->d_name[0] < '0' || e->d_name[0] > '9')
      continue;
    std::snprintf(path, sizeof path, "/proc/%s/stat", e->d_name);
    int fd = ::open(path, O_RDONLY | O_CLOEXEC);
    if (fd < 0)
      continue; // exited meanwhile
    ssize_t n = ::read(fd, buf, sizeof buf - 1);
    ::close(fd);
    if (n <= 0)
      continue;
    buf[n] = '\0';
    // "pid (comm) state ppid pgrp session ..."; comm may hold spaces and ')'.
    const char* rp = std::strrchr(buf, ')');
    if (!rp)
      continue;
    char state = 0;
    int ppid = 0, pgrp = 0, session = 0;
    if (std::sscanf(rp + 1, " %c %d %d %d", &state, &ppid, &pgrp, &session) != 4)
      continue;
    if ((pgrp == sid || session == sid) && state != 'Z' && state != 'X')
      out.push_back(static_cast<pid_t>(std::atoi(e->d_name)));
  }
  ::closedir(d);
  return out;
}

// Signals the job's process group and every process of its session; returns
// whether any live process was found.
bool signal_job(pid_t sid, int sig) {
  ::kill(-sid, sig);
  auto procs = session_processes(sid);
  for (pid_t p : procs)
    ::kill(p, sig);
  if (sig == SIGTERM) {
    ::kill(-sid, SIGCONT);
    for (pid_t p : procs)
      ::kill(p, SIGCONT);
  }
  return !procs.empty();
}

// --- starting the entrypoint -------------------------------------------------

enum class child_stage : int { redirect = 1, chdir = 2, exec = 3 };
struct child_failure {
  int stage;
  int err;
};

// Runs in the forked child: only async-signal-safe calls until exec.
[[noreturn]] void run_child(const options& o, int log_fd, int report_fd) {
  auto fail = [report_fd](child_stage s) {
    child_failure f{static_cast<int>(s), errno};
    [[maybe_unused]] ssize_t n = ::write(report_fd, &f, sizeof f);
    ::_exit(127);
  };
  ::setsid();
  // Ignored dispositions and the mask survive exec; the job starts clean.
  struct sigaction dfl {};
  dfl.sa_handler = SIG_DFL;
  for (int s : {SIGPIPE, SIGTERM, SIGHUP, SIGINT})
    ::sigaction(s, &dfl, nullptr);
  sigset_t none;
  ::sigemptyset(&none);
  ::sigprocmask(SIG_SETMASK, &none, nullptr);
  int null_fd = ::open("/dev/null", O_RDONLY);
  if (null_fd < 0 || ::dup2(null_fd, 0) < 0 || ::dup2(log_fd, 1) < 0 || ::dup2(log_fd, 2) < 0)
    fail(child_stage::redirect);
  if (null_fd > 2)
    ::close(null_fd);
  if (::chdir(o.cwd.c_str()) != 0)
    fail(child_stage::chdir);
  ::close(o.control_fd);
  ::execvp(o.argv[0], o.argv);
  fail(child_stage::exec);
  ::_exit(127); // not reached: fail() exits
}

// Forks the entrypoint and waits until its exec succeeded. Returns its pid, or
// -1 after sending E.
pid_t start_entrypoint(const options& o, int log_fd) {
  int report[2];
  if (::pipe2(report, O_CLOEXEC) != 0) {
    send_line(std::string{"E cannot create a pipe: "} + std::strerror(errno));
    return -1;
  }
  pid_t pid = ::fork();
  if (pid < 0) {
    send_line(std::string{"E cannot fork: "} + std::strerror(errno));
    return -1;
  }
  if (pid == 0) {
    ::close(report[0]);
    run_child(o, log_fd, report[1]);
  }
  ::close(report[1]);
  // EOF without data: the exec closed the (close-on-exec) write end.
  child_failure f{};
  size_t got = 0;
  while (got < sizeof f) {
    ssize_t n = ::read(report[0], reinterpret_cast<char*>(&f) + got, sizeof f - got);
    if (n < 0 && errno == EINTR)
      continue;
    if (n <= 0)
      break;
    got += static_cast<size_t>(n);
  }
  ::close(report[0]);
  if (got == 0)
    return pid;
  int status = 0;
  while (::waitpid(pid, &status, 0) < 0 && errno == EINTR) {
  }
  std::string why;
  switch (static_cast<child_stage>(f.stage)) {
    case child_stage::redirect:
      why = "cannot redirect the job's output to " + o.log_path;
      break;
    case child_stage::chdir:
      why = "cannot enter working directory " + o.cwd;
      break;
    default:
      why = std::string{"cannot execute "} + o.argv[0];
  }
  send_line("E " + one_line(why + ": " + std::strerror(f.err)));
  return -1;
}

// --- the main loop -----------------------------------------------------------

// Waits for the entrypoint and the control channel; stops the job on request.
// Returns the shim's exit code.
int supervise(const options& o, pid_t pid) {
  // Without pidfds (kernel < 5.3) the loop polls waitid every 10 ms instead.
  int pidfd = -1;
#ifdef SYS_pidfd_open
  pidfd = static_cast<int>(::syscall(SYS_pidfd_open, pid, 0));
#endif
  bool control_open = true;
  bool exited = false; // the entrypoint ended and X/K was sent (not yet reaped)
  enum class phase { running, terminating, killing } ph = phase::running;
  int64_t deadline = 0;
  bool all_gone = false; // set when a stop finds nothing left to signal
  std::string inbuf;

  auto begin_stop = [&](int64_t grace_ms) {
    int64_t d = now_ms() + std::min<int64_t>(grace_ms, int64_t{86400} * 1000);
    if (ph == phase::running) {
      ph = phase::terminating;
      deadline = d;
      all_gone = !signal_job(pid, SIGTERM) && exited;
    } else if (ph == phase::terminating && d < deadline) {
      deadline = d; // a later request with a shorter grace wins
    }
  };

  for (;;) {
    pollfd fds[3];
    nfds_t nfds = 0;
    int ctl_idx = -1;
    if (control_open) {
      ctl_idx = static_cast<int>(nfds);
      fds[nfds++] = {o.control_fd, POLLIN, 0};
    }
    if (!exited && pidfd >= 0)
      fds[nfds++] = {pidfd, POLLIN, 0}; // readable once the entrypoint ended
    int sig_idx = static_cast<int>(nfds);
    fds[nfds++] = {g_signal_pipe[0], POLLIN, 0};
    int timeout = (ph != phase::running || (!exited && pidfd < 0)) ? 10 : -1;
    int r = ::poll(fds, nfds, timeout);
    if (r < 0)
      r = 0; // EINTR (our own signal handler); the state is re-checked below

    if (!exited) {
      // WNOWAIT: the zombie keeps the pid (= group and session id) reserved
      // while the rest of the session is being cleaned up.
      siginfo_t si{};
      int w = ::waitid(P_PID, static_cast<id_t>(pid), &si, WEXITED | WNOHANG | WNOWAIT);
      if (w < 0 && errno == ECHILD) {
        // Cannot happen unless someone else reaped it; never spin on the pidfd.
        exited = true;
        send_line("E lost track of the entrypoint (pid " + std::to_string(pid) + ")");
        begin_stop(o.grace_ms);
      } else if (w == 0 && si.si_pid == pid) {
        exited = true;
        if (si.si_code == CLD_EXITED)
          send_line("X " + std::to_string(si.si_status));
        else
          send_line("K " + std::to_string(si.si_status));
        // Whatever the entrypoint left behind ends with it.
        begin_stop(o.grace_ms);
      }
    }
    if (r > 0 && (fds[sig_idx].revents & POLLIN)) {
      char b[16];
      [[maybe_unused]] ssize_t n = ::read(g_signal_pipe[0], b, sizeof b);
      begin_stop(o.grace_ms);
    }
    if (ctl_idx >= 0 && r > 0 && fds[ctl_idx].revents) {
      char b[512];
      ssize_t n = ::read(o.control_fd, b, sizeof b);
      if (n < 0 && (errno == EINTR || errno == EAGAIN)) {
        // retry on the next round
      } else if (n <= 0) {
        control_open = false; // rayd closed the channel or died
        ::close(o.control_fd);
        g_control = -1;
        begin_stop(o.grace_ms);
      } else {
        inbuf.append(b, static_cast<size_t>(n));
        size_t nl;
        while ((nl = inbuf.find('\n')) != std::string::npos) {
          std::string line = inbuf.substr(0, nl);
          inbuf.erase(0, nl + 1);
          int64_t grace = 0;
          if (line.size() > 2 && line[0] == 'S' && line[1] == ' '
              && parse_int(line.c_str() + 2, grace))
            begin_stop(grace);
          // Anything else is ignored: newer rayds may send more.
        }
        if (inbuf.size() > 4096)
          inbuf.clear();
      }
    }

    if (all_gone)
      break; // the common case: the entrypoint ended and left nothing behind
    if (ph == phase::terminating && now_ms() >= deadline)
      ph = phase::killing;
    if (ph == phase::killing) {
      // Repeated each round: catches processes forked in the meantime.
      bool any = signal_job(pid, SIGKILL);
      if (!any && exited)
        break;
    } else if (ph == phase::terminating && exited && session_processes(pid).empty()) {
      break;
    }
  }
  int status = 0;
  while (::waitpid(pid, &status, 0) < 0 && errno == EINTR) {
  }
  return 0;
}

} // namespace

int main(int argc, char** argv) {
  options o;
  if (int rc = parse_args(argc, argv, o))
    return rc;
  tidy_fds(o.control_fd);
  ::fcntl(o.control_fd, F_SETFD, FD_CLOEXEC);
  g_control = o.control_fd;

  struct sigaction ign {};
  ign.sa_handler = SIG_IGN;
  ::sigaction(SIGPIPE, &ign, nullptr);
  if (::pipe2(g_signal_pipe, O_CLOEXEC | O_NONBLOCK) != 0) {
    send_line(std::string{"E cannot create a pipe: "} + std::strerror(errno));
    return 1;
  }
  struct sigaction stop {};
  stop.sa_handler = on_stop_signal;
  ::sigemptyset(&stop.sa_mask);
  for (int s : {SIGTERM, SIGHUP, SIGINT})
    ::sigaction(s, &stop, nullptr);

  int log_fd = ::open(o.log_path.c_str(), O_WRONLY | O_CREAT | O_APPEND | O_CLOEXEC, 0640);
  if (log_fd < 0) {
    send_line(one_line("E cannot open log " + o.log_path + ": " + std::strerror(errno)));
    return 1;
  }
  pid_t pid = start_entrypoint(o, log_fd);
  if (pid < 0)
    return 1;
  ::close(log_fd);
  send_line("R " + std::to_string(pid));
  return supervise(o, pid);
}
