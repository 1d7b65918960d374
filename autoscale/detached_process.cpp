#include "autoscale/detached_process.hpp"

#include <cerrno>
#include <csignal>
#include <cstdint>
#include <cstring>

#include <fcntl.h>
#include <sys/syscall.h>
#include <sys/wait.h>
#include <unistd.h>

#include "common/error.hpp"

namespace rayd::autoscale {

namespace {

std::string errno_text(const std::string& what) {
  return what + ": " + std::strerror(errno);
}

} // namespace

// Two forks: the intermediate child calls setsid() and forks the program,
// then exits at once; the program reports its pid through a CLOEXEC pipe,
// and, should exec fail, its errno through the same pipe (descriptor 3).
caf::expected<pid_t> spawn_detached(const std::vector<std::string>& argv,
                                    const std::string& dir, const std::string& what) {
  auto out_path = dir + "/rayd.out";
  auto err_path = dir + "/rayd.err";
  int null_fd = ::open("/dev/null", O_RDONLY | O_CLOEXEC);
  int out_fd = ::open(out_path.c_str(), O_WRONLY | O_CREAT | O_APPEND | O_CLOEXEC, 0600);
  int err_fd = ::open(err_path.c_str(), O_WRONLY | O_CREAT | O_APPEND | O_CLOEXEC, 0600);
  int report[2] = {-1, -1};
  auto cleanup = [&null_fd, &out_fd, &err_fd, &report] {
    for (int fd : {null_fd, out_fd, err_fd, report[0], report[1]})
      if (fd >= 0)
        ::close(fd);
  };
  if (null_fd < 0 || out_fd < 0 || err_fd < 0) {
    auto err = make_error(errc::storage_error, errno_text(what + ": open " + out_path));
    cleanup();
    return err;
  }
  if (::pipe2(report, O_CLOEXEC) != 0) {
    auto err = make_error(errc::internal, errno_text(what + ": pipe"));
    cleanup();
    return err;
  }
  std::vector<char*> cargv;
  for (auto& a : argv)
    cargv.push_back(const_cast<char*>(a.c_str()));
  cargv.push_back(nullptr);
  long max_fd = ::sysconf(_SC_OPEN_MAX);
  if (max_fd < 0 || max_fd > 65536)
    max_fd = 65536;
  pid_t mid = ::fork();
  if (mid < 0) {
    auto err = make_error(errc::internal, errno_text(what + ": fork"));
    cleanup();
    return err;
  }
  if (mid == 0) {
    // Intermediate child: only async-signal-safe calls from here on.
    ::setsid();
    pid_t node = ::fork();
    if (node == 0) {
      ::dup2(null_fd, 0);
      ::dup2(out_fd, 1);
      ::dup2(err_fd, 2);
      ::dup2(report[1], 3);
      ::fcntl(3, F_SETFD, FD_CLOEXEC);
      // No descriptor of the caller (sockets, stores) leaks into the node.
      if (::syscall(SYS_close_range, 4u, ~0u, 0u) != 0)
        for (long fd = 4; fd < max_fd; ++fd)
          ::close(static_cast<int>(fd));
      sigset_t none;
      sigemptyset(&none);
      ::sigprocmask(SIG_SETMASK, &none, nullptr);
      for (int sig : {SIGTERM, SIGINT, SIGHUP, SIGPIPE, SIGCHLD, SIGQUIT})
        ::signal(sig, SIG_DFL);
      if (::chdir(dir.c_str()) != 0) {
        // Stay where we are; the session dir flag is absolute anyway.
      }
      ::execv(cargv[0], cargv.data());
      int e = errno;
      (void) !::write(3, &e, sizeof(e));
      ::_exit(127);
    }
    int32_t p = node;
    (void) !::write(report[1], &p, sizeof(p));
    ::_exit(node > 0 ? 0 : 1);
  }
  ::close(report[1]);
  report[1] = -1;
  int status = 0;
  while (::waitpid(mid, &status, 0) < 0 && errno == EINTR) {
  }
  int32_t node_pid = -1;
  auto n = ::read(report[0], &node_pid, sizeof(node_pid));
  if (n != sizeof(node_pid) || node_pid <= 0) {
    cleanup();
    return make_error(errc::internal, what + ": could not fork the node process");
  }
  int exec_errno = 0;
  ssize_t m;
  while ((m = ::read(report[0], &exec_errno, sizeof(exec_errno))) < 0 && errno == EINTR) {
  }
  cleanup();
  if (m == sizeof(exec_errno))
    return make_error(errc::invalid_argument, what + ": cannot run " + argv[0] + ": "
                                                + std::strerror(exec_errno));
  return static_cast<pid_t>(node_pid);
}

std::string binary_next_to_self(const std::string& name) {
  char buf[4096];
  auto n = ::readlink("/proc/self/exe", buf, sizeof(buf) - 1);
  if (n <= 0)
    return name;
  std::string self{buf, static_cast<std::size_t>(n)};
  auto slash = self.rfind('/');
  return (slash == std::string::npos ? std::string{"."} : self.substr(0, slash)) + "/" + name;
}

} // namespace rayd::autoscale
