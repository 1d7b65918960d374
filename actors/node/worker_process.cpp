#include "actors/node/worker_process.hpp"

#include <fcntl.h>
#include <signal.h>
#include <spawn.h>
#include <sys/socket.h>
#include <sys/wait.h>
#include <unistd.h>

#include <cstring>
#include <filesystem>

#include "common/error.hpp"

extern char** environ;

namespace rayd::node {

caf::expected<started_process> start_worker_process(const worker_launch& l) {
  if (l.paths.empty())
    return make_error(errc::unavailable, "no worker executable");
  int sv[2];
  if (::socketpair(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0, sv) != 0)
    return make_error(errc::unavailable, std::string{"socketpair: "} + std::strerror(errno));
  std::string libs;
  for (std::size_t i = 1; i < l.paths.size(); ++i)
    libs += (libs.empty() ? "" : ":") + l.paths[i];
  std::vector<std::string> env;
  for (char** e = environ; e != nullptr && *e != nullptr; ++e) {
    std::string kv{*e};
    if (kv.rfind("RAYD_WORKER_", 0) == 0 || kv.rfind("RAYD_TOKEN", 0) == 0
        || kv.rfind("RAYD_ADDRESS=", 0) == 0 || kv.rfind("RAYD_NODE_", 0) == 0)
      continue;
    env.push_back(kv);
  }
  env.push_back("RAYD_WORKER_FD=3");
  env.push_back("RAYD_JOB_ID=" + l.job_id);
  env.push_back("RAYD_NODE_ID=" + l.node_id);
  env.push_back("RAYD_WORKER_LIBS=" + libs);
  env.push_back("RAYD_NODE_ADDRESS=" + l.node_address);
  if (!l.api_address.empty())
    env.push_back("RAYD_ADDRESS=" + l.api_address);
  if (!l.token.empty())
    env.push_back("RAYD_TOKEN=" + l.token);
  std::error_code ec;
  std::filesystem::create_directories(std::filesystem::path{l.log_file}.parent_path(), ec);
  posix_spawn_file_actions_t fa;
  posix_spawn_file_actions_init(&fa);
  posix_spawn_file_actions_adddup2(&fa, sv[1], 3);
  posix_spawn_file_actions_addopen(&fa, 0, "/dev/null", O_RDONLY, 0);
  posix_spawn_file_actions_addopen(&fa, 1, l.log_file.c_str(), O_WRONLY | O_CREAT | O_APPEND,
                                   0640);
  posix_spawn_file_actions_adddup2(&fa, 1, 2);
  // rayd's own sockets (CAF's among them) must not live on in the worker:
  // a dead node would otherwise look alive to the head.
  posix_spawn_file_actions_addclosefrom_np(&fa, 4);
  posix_spawnattr_t attr;
  posix_spawnattr_init(&attr);
  sigset_t none, all;
  sigemptyset(&none);
  sigfillset(&all);
  posix_spawnattr_setsigmask(&attr, &none);
  posix_spawnattr_setsigdefault(&attr, &all);
  posix_spawnattr_setflags(&attr, POSIX_SPAWN_SETSIGMASK | POSIX_SPAWN_SETSIGDEF);
  std::vector<char*> argv{const_cast<char*>(l.paths[0].c_str()), nullptr};
  std::vector<char*> envp;
  for (auto& e : env)
    envp.push_back(e.data());
  envp.push_back(nullptr);
  pid_t pid = -1;
  int rc = ::posix_spawn(&pid, l.paths[0].c_str(), &fa, &attr, argv.data(), envp.data());
  posix_spawn_file_actions_destroy(&fa);
  posix_spawnattr_destroy(&attr);
  ::close(sv[1]);
  if (rc != 0) {
    ::close(sv[0]);
    return make_error(errc::unavailable,
                      "cannot start worker " + l.paths[0] + ": " + std::strerror(rc));
  }
  return started_process{pid, sv[0]};
}

std::string describe_exit_status(int status) {
  if (WIFEXITED(status))
    return "exited with code " + std::to_string(WEXITSTATUS(status));
  if (WIFSIGNALED(status))
    return "killed by signal " + std::to_string(WTERMSIG(status)) + " ("
           + strsignal(WTERMSIG(status)) + ")";
  return "ended (status " + std::to_string(status) + ")";
}

} // namespace rayd::node
