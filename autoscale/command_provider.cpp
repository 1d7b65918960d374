#include "autoscale/command_provider.hpp"

#include <cerrno>
#include <cstring>
#include <thread>

#include <fcntl.h>
#include <poll.h>
#include <signal.h>
#include <sys/mman.h>
#include <sys/wait.h>
#include <unistd.h>

#include <nlohmann/json.hpp>

#include "common/error.hpp"

namespace rayd::autoscale {

namespace {

using json = nlohmann::json;
using clock_type = std::chrono::steady_clock;

struct run_result {
  bool timed_out = false;
  int wait_status = 0;
  pid_t pid = -1;
  std::string out;
  std::string err;
};

void close_fd(int& fd) {
  if (fd >= 0)
    ::close(fd);
  fd = -1;
}

// Reads what is available from `fd` into `into` (at most `cap` bytes kept);
// closes `fd` at EOF or on an error.
void drain(int& fd, std::string& into, std::size_t cap) {
  char buf[8192];
  for (;;) {
    auto n = ::read(fd, buf, sizeof(buf));
    if (n > 0) {
      auto keep = std::min<std::size_t>(static_cast<std::size_t>(n),
                                        cap > into.size() ? cap - into.size() : 0);
      into.append(buf, keep);
      continue;
    }
    if (n < 0 && errno == EINTR)
      continue;
    if (n < 0 && (errno == EAGAIN || errno == EWOULDBLOCK))
      return;
    close_fd(fd); // EOF or a hard error
    return;
  }
}

// Runs argv with `input` on stdin, collecting stdout and stderr, killing the
// child by its pid when `timeout` passes. No shell is involved.
caf::expected<run_result> run_with_input(const std::vector<std::string>& argv,
                                         const std::string& input,
                                         std::chrono::milliseconds timeout,
                                         std::size_t cap) {
  // The request goes through a memory file, not a pipe: a command that never
  // reads its stdin can neither block us nor raise SIGPIPE in this process.
  int in_fd = ::memfd_create("rayd-provider-request", MFD_CLOEXEC);
  if (in_fd < 0)
    return make_error(errc::internal, std::string{"memfd_create: "} + std::strerror(errno));
  for (std::size_t off = 0; off < input.size();) {
    auto n = ::write(in_fd, input.data() + off, input.size() - off);
    if (n < 0 && errno == EINTR)
      continue;
    if (n <= 0) {
      ::close(in_fd);
      return make_error(errc::internal, std::string{"writing the request: "}
                                          + std::strerror(errno));
    }
    off += static_cast<std::size_t>(n);
  }
  ::lseek(in_fd, 0, SEEK_SET);
  int out_pipe[2];
  int err_pipe[2];
  if (::pipe2(out_pipe, O_CLOEXEC) != 0) {
    ::close(in_fd);
    return make_error(errc::internal, std::string{"pipe: "} + std::strerror(errno));
  }
  if (::pipe2(err_pipe, O_CLOEXEC) != 0) {
    ::close(in_fd);
    ::close(out_pipe[0]);
    ::close(out_pipe[1]);
    return make_error(errc::internal, std::string{"pipe: "} + std::strerror(errno));
  }
  // Everything the child touches is prepared before fork (only
  // async-signal-safe calls after it).
  std::vector<char*> cargv;
  for (auto& a : argv)
    cargv.push_back(const_cast<char*>(a.c_str()));
  cargv.push_back(nullptr);
  static constexpr char exec_failed[] = "exec failed: ";
  pid_t pid = ::fork();
  if (pid < 0) {
    ::close(in_fd);
    for (int fd : {out_pipe[0], out_pipe[1], err_pipe[0], err_pipe[1]})
      ::close(fd);
    return make_error(errc::internal, std::string{"fork: "} + std::strerror(errno));
  }
  if (pid == 0) {
    ::dup2(in_fd, 0);
    ::dup2(out_pipe[1], 1);
    ::dup2(err_pipe[1], 2);
    sigset_t none;
    sigemptyset(&none);
    ::sigprocmask(SIG_SETMASK, &none, nullptr);
    ::signal(SIGPIPE, SIG_DFL);
    ::execvp(cargv[0], cargv.data());
    auto e = errno;
    (void) !::write(2, exec_failed, sizeof(exec_failed) - 1);
    const char* msg = ::strerror(e);
    (void) !::write(2, msg, ::strlen(msg));
    ::_exit(127);
  }
  ::close(in_fd);
  ::close(out_pipe[1]);
  ::close(err_pipe[1]);
  int out_fd = out_pipe[0];
  int err_fd = err_pipe[0];
  ::fcntl(out_fd, F_SETFL, O_NONBLOCK);
  ::fcntl(err_fd, F_SETFL, O_NONBLOCK);
  run_result res;
  res.pid = pid;
  auto deadline = clock_type::now() + timeout;
  bool exited = false;
  for (;;) {
    pollfd fds[2];
    nfds_t n = 0;
    if (out_fd >= 0)
      fds[n++] = pollfd{out_fd, POLLIN, 0};
    if (err_fd >= 0)
      fds[n++] = pollfd{err_fd, POLLIN, 0};
    auto left = std::chrono::duration_cast<std::chrono::milliseconds>(deadline
                                                                      - clock_type::now());
    int wait_ms = static_cast<int>(std::max<int64_t>(0, std::min<int64_t>(50, left.count())));
    if (n > 0)
      ::poll(fds, n, wait_ms);
    else
      std::this_thread::sleep_for(std::chrono::milliseconds{std::min(wait_ms, 10)});
    if (out_fd >= 0)
      drain(out_fd, res.out, cap);
    if (err_fd >= 0)
      drain(err_fd, res.err, cap);
    int status = 0;
    auto r = ::waitpid(pid, &status, WNOHANG);
    if (r == pid) {
      exited = true;
      res.wait_status = status;
      // What the command wrote before exiting is in the pipes; a grandchild
      // that keeps them open is not waited for.
      if (out_fd >= 0)
        drain(out_fd, res.out, cap);
      if (err_fd >= 0)
        drain(err_fd, res.err, cap);
      break;
    }
    if (clock_type::now() >= deadline)
      break;
  }
  if (!exited) {
    res.timed_out = true;
    ::kill(pid, SIGKILL); // our own child, by its pid
    int status = 0;
    while (::waitpid(pid, &status, 0) < 0 && errno == EINTR) {
    }
    res.wait_status = status;
  }
  close_fd(out_fd);
  close_fd(err_fd);
  return res;
}

std::string join(const std::vector<std::string>& argv) {
  std::string s;
  for (auto& a : argv) {
    if (!s.empty())
      s += ' ';
    s += a;
  }
  return s;
}

// The last lines of a command's stderr, for an error message.
std::string tail(const std::string& text, std::size_t max_chars = 2000) {
  auto end = text.find_last_not_of(" \n\r\t");
  if (end == std::string::npos)
    return "";
  auto t = text.substr(0, end + 1);
  if (t.size() > max_chars)
    t = "..." + t.substr(t.size() - max_chars);
  return t;
}

std::string exit_text(int wait_status) {
  if (WIFEXITED(wait_status))
    return "exit status " + std::to_string(WEXITSTATUS(wait_status));
  if (WIFSIGNALED(wait_status))
    return "killed by signal " + std::to_string(WTERMSIG(wait_status));
  return "status " + std::to_string(wait_status);
}

caf::expected<std::map<std::string, std::string>> string_map(const json& j,
                                                              const std::string& what) {
  std::map<std::string, std::string> out;
  if (j.is_null())
    return out;
  if (!j.is_object())
    return make_error(errc::invalid_argument, what + " is not a JSON object");
  for (auto& [k, v] : j.items()) {
    if (!v.is_string())
      return make_error(errc::invalid_argument, what + "." + k + " is not a string");
    out[k] = v.get<std::string>();
  }
  return out;
}

} // namespace

command_provider::command_provider(command_provider_options options)
  : options_(std::move(options)) {
}

namespace {

// One call: request → reply object, or an error naming the command.
caf::expected<json> call(const command_provider_options& opts, const json& request) {
  auto op = request.value("op", std::string{});
  auto who = "command provider \"" + join(opts.command) + "\" (" + op + ")";
  if (opts.command.empty())
    return make_error(errc::invalid_argument, "command provider: no command configured");
  auto res = run_with_input(opts.command, request.dump() + "\n", opts.timeout,
                            opts.max_output_bytes);
  if (!res)
    return make_error(code_of(res.error()), who + ": " + describe(res.error()));
  auto err_tail = tail(res->err);
  auto with_stderr = [&err_tail](std::string msg) {
    if (!err_tail.empty())
      msg += "; stderr: " + err_tail;
    return msg;
  };
  if (res->timed_out)
    return make_error(errc::timeout,
                      with_stderr(who + ": no reply within "
                                  + std::to_string(opts.timeout.count())
                                  + " ms; killed pid " + std::to_string(res->pid)));
  if (!WIFEXITED(res->wait_status) || WEXITSTATUS(res->wait_status) != 0)
    return make_error(errc::unavailable,
                      with_stderr(who + ": failed with " + exit_text(res->wait_status)));
  auto reply = json::parse(res->out, nullptr, false);
  if (reply.is_discarded() || !reply.is_object()) {
    auto shown = tail(res->out, 200);
    return make_error(errc::invalid_argument,
                      with_stderr(who + ": " + exit_text(res->wait_status)
                                  + ", but stdout is not one JSON object: \""
                                  + (shown.empty() ? std::string{"(empty)"} : shown) + "\""));
  }
  if (reply.contains("error") && !reply["error"].is_null()) {
    auto& e = reply["error"];
    return make_error(errc::unavailable,
                      with_stderr(who + ": the command reported an error: "
                                  + (e.is_string() ? e.get<std::string>() : e.dump())));
  }
  return reply;
}

caf::error reply_error(const command_provider_options& opts, const std::string& op,
                       const std::string& what) {
  return make_error(errc::invalid_argument, "command provider \"" + join(opts.command)
                                              + "\" (" + op + "): bad reply: " + what);
}

} // namespace

caf::expected<std::vector<std::string>> command_provider::create(const instance_spec& spec,
                                                                 int32_t count) {
  if (auto err = check_create_args(spec, count))
    return err;
  auto config = json::parse(spec.node_config_json.empty() ? "{}" : spec.node_config_json,
                            nullptr, false);
  if (config.is_discarded() || !config.is_object())
    return make_error(errc::invalid_argument, "create: node_config of type '" + spec.node_type
                                                + "' is not a JSON object");
  json req = {{"version", 1},
              {"op", "create"},
              {"cluster", options_.cluster_name},
              {"node_type", spec.node_type},
              {"count", count},
              {"resources", spec.resources},
              {"labels", spec.labels},
              {"node_config", config},
              {"tags", instance_tags(spec, options_.cluster_name)}};
  auto reply = call(options_, req);
  if (!reply)
    return reply.error();
  auto& ids = (*reply)["instance_ids"];
  if (!ids.is_array())
    return reply_error(options_, "create", "\"instance_ids\" is missing or not an array");
  if (ids.size() > static_cast<std::size_t>(count))
    return reply_error(options_, "create", std::to_string(ids.size()) + " instance ids for "
                                             + std::to_string(count) + " requested");
  std::vector<std::string> out;
  for (auto& id : ids) {
    if (!id.is_string() || id.get<std::string>().empty())
      return reply_error(options_, "create", "an instance id is not a non-empty string");
    out.push_back(id.get<std::string>());
  }
  return out;
}

caf::error command_provider::terminate(const std::vector<std::string>& instance_ids) {
  if (instance_ids.empty())
    return caf::none;
  json req = {{"version", 1},
              {"op", "terminate"},
              {"cluster", options_.cluster_name},
              {"instance_ids", instance_ids}};
  auto reply = call(options_, req);
  if (!reply)
    return reply.error();
  return caf::none;
}

caf::expected<std::vector<provider_instance>> command_provider::list() {
  json req = {{"version", 1}, {"op", "list"}, {"cluster", options_.cluster_name}};
  auto reply = call(options_, req);
  if (!reply)
    return reply.error();
  auto& items = (*reply)["instances"];
  if (!items.is_array())
    return reply_error(options_, "list", "\"instances\" is missing or not an array");
  std::vector<provider_instance> out;
  for (auto& item : items) {
    if (!item.is_object())
      return reply_error(options_, "list", "an instance is not a JSON object");
    provider_instance inst;
    auto id = item.value("instance_id", json{});
    if (!id.is_string() || id.get<std::string>().empty())
      return reply_error(options_, "list", "an instance has no \"instance_id\" string");
    inst.instance_id = id.get<std::string>();
    auto where = "instance " + inst.instance_id;
    auto status = item.value("status", json{});
    auto parsed = status.is_string() ? parse_status(status.get<std::string>()) : std::nullopt;
    if (!parsed)
      return reply_error(options_, "list", where + ": \"status\" is not one of pending, "
                                                   "running, terminating, terminated, failed");
    inst.state = *parsed;
    auto type = item.value("node_type", json{});
    if (!type.is_null() && !type.is_string())
      return reply_error(options_, "list", where + ": \"node_type\" is not a string");
    auto tags = string_map(item.value("tags", json{}), where + ": tags");
    if (!tags)
      return reply_error(options_, "list", describe(tags.error()));
    inst.tags = std::move(*tags);
    inst.node_type = type.is_string() ? type.get<std::string>() : "";
    if (inst.node_type.empty()) {
      auto t = inst.tags.find(tag_node_type);
      if (t != inst.tags.end())
        inst.node_type = t->second;
    }
    auto err = item.value("error", json{});
    if (err.is_string())
      inst.error = err.get<std::string>();
    // The command was asked for this cluster only; an instance tagged for
    // another one is never reported (so never terminated by us).
    auto c = inst.tags.find(tag_cluster);
    if (c != inst.tags.end() && c->second != options_.cluster_name)
      continue;
    out.push_back(std::move(inst));
  }
  return out;
}

} // namespace rayd::autoscale
