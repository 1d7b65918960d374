#pragma once

// Runs a piece of a test as an unprivileged user, so permission checks bite
// even when the suite runs as root (CI does): root reads a mode-0000 file and
// writes into a read-only directory, so such cases would otherwise test nothing.
//
// as_unprivileged(fn) forks; the child drops to the "nobody" user and group
// (setgroups/setgid/setuid, so no capability survives) when it runs as root,
// runs `fn`, and sends back the string `fn` returns. The parent waits for it
// (bounded). Not root at all: the child just runs `fn` as the current user.
//
// The child is a copy of a possibly multi-threaded process: `fn` must only do
// what the test needs (open, read, a library call) and return; it cannot use
// Boost.Test assertions (they would count in the child only). Paths `fn` uses
// must be reachable by "nobody": make_traversable() opens the directories above.

#include <cerrno>
#include <chrono>
#include <csignal>
#include <cstring>
#include <exception>
#include <functional>
#include <optional>
#include <string>

#include <grp.h>
#include <pwd.h>
#include <poll.h>
#include <sys/stat.h>
#include <sys/types.h>
#include <sys/wait.h>
#include <unistd.h>

namespace rayd::tests {

struct unprivileged_result {
  bool ran = false;     // the child dropped its privileges (if any) and ran fn
  std::string output;   // what fn returned, or why it did not run
};

// Gives "others" search (x) permission on `dir` and every parent up to `stop`
// (inclusive, both absolute paths; `dir` must lie under `stop`), so a child
// running as "nobody" reaches the files below. Returns false on a failed chmod.
inline bool make_traversable(const std::string& dir, const std::string& stop) {
  std::string p = dir;
  for (;;) {
    struct stat st {};
    if (::stat(p.c_str(), &st) != 0)
      return false;
    if (::chmod(p.c_str(), (st.st_mode & 07777) | S_IXOTH | S_IXGRP) != 0)
      return false;
    if (p == stop || p.size() <= stop.size())
      return true;
    auto slash = p.rfind('/');
    if (slash == std::string::npos || slash == 0)
      return true;
    p = p.substr(0, slash);
  }
}

inline unprivileged_result as_unprivileged(const std::function<std::string()>& fn,
                                           std::chrono::milliseconds timeout =
                                               std::chrono::seconds(30)) {
  unprivileged_result res;
  uid_t uid = 65534;
  gid_t gid = 65534;
  if (const passwd* pw = ::getpwnam("nobody")) {
    uid = pw->pw_uid;
    gid = pw->pw_gid;
  }
  const bool drop = ::geteuid() == 0;
  int fds[2];
  if (::pipe(fds) != 0) {
    res.output = std::string("pipe: ") + std::strerror(errno);
    return res;
  }
  pid_t pid = ::fork();
  if (pid < 0) {
    res.output = std::string("fork: ") + std::strerror(errno);
    ::close(fds[0]);
    ::close(fds[1]);
    return res;
  }
  if (pid == 0) {
    ::close(fds[0]);
    // 'R' + output once fn ran; 'E' + why otherwise.
    std::string msg;
    if (drop && (::setgroups(0, nullptr) != 0 || ::setgid(gid) != 0 || ::setuid(uid) != 0)) {
      msg = std::string("E") + "cannot drop to uid " + std::to_string(uid) + ": " +
            std::strerror(errno);
    } else if (drop && ::setuid(0) == 0) {
      msg = "Edropped privileges came back (setuid(0) succeeded)";
    } else {
      try {
        msg = "R" + fn();
      } catch (const std::exception& e) {
        msg = std::string("E") + "exception in the unprivileged child: " + e.what();
      } catch (...) {
        msg = "Eunknown exception in the unprivileged child";
      }
    }
    size_t done = 0;
    while (done < msg.size()) {
      ssize_t n = ::write(fds[1], msg.data() + done, msg.size() - done);
      if (n <= 0)
        break;
      done += static_cast<size_t>(n);
    }
    ::_exit(0);  // no atexit handlers, no destructors of the parent's objects
  }
  ::close(fds[1]);
  std::string got;
  char buf[4096];
  auto deadline = std::chrono::steady_clock::now() + timeout;
  bool timed_out = false;
  for (;;) {
    auto left = std::chrono::duration_cast<std::chrono::milliseconds>(
        deadline - std::chrono::steady_clock::now());
    if (left.count() <= 0) {
      timed_out = true;
      break;
    }
    pollfd pfd{fds[0], POLLIN, 0};
    int ready = ::poll(&pfd, 1, static_cast<int>(left.count()));
    if (ready < 0 && errno == EINTR)
      continue;
    if (ready <= 0)
      continue;  // the deadline check above ends the wait
    ssize_t n = ::read(fds[0], buf, sizeof(buf));
    if (n > 0) {
      got.append(buf, static_cast<size_t>(n));
      continue;
    }
    if (n < 0 && errno == EINTR)
      continue;
    break;  // EOF: the child exited (or closed the pipe)
  }
  ::close(fds[0]);
  int status = 0;
  if (timed_out)
    ::kill(pid, SIGKILL);  // our own child, by pid
  while (::waitpid(pid, &status, 0) < 0 && errno == EINTR) {
  }
  if (timed_out) {
    res.output = "the unprivileged child did not finish in time";
  } else if (!got.empty() && got[0] == 'R') {
    res.ran = true;
    res.output = got.substr(1);
  } else if (!got.empty()) {
    res.output = got.substr(1);
  } else {
    res.output = "the unprivileged child died without an answer (status " +
                 std::to_string(status) + ")";
  }
  return res;
}

}  // namespace rayd::tests
