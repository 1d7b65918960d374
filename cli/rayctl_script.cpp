// rayctl's actor-level scripting (issue 11; docs/cli.md "Scripting"):
// `rayctl call`, `rayctl actor create`, `rayctl actor call [--stdin]`. rayctl
// runs as a driver of the cluster (rayd::init, so workers started for it run
// this same binary in worker mode) and converts JSON to and from msgpack by
// the signatures RAYD_REMOTE and RAYD_ACTOR record (common/json_msgpack.hpp).
//
// Where signatures come from: `--lib PATH` is dlopen'ed here (its
// registrations land in this process's registry) and shipped to the workers.
// A class's signatures are in the GCS KV store (namespace "rayd.signatures",
// key: the class name; detail::encode_signatures), put there by `actor
// create` and by every driver's runtime at its first create of the class,
// so that `actor call` needs only the actor's name. Exit codes: 0 ok, 1 unreachable, 2 usage (bad
// flags, bad JSON, a type mismatch), 3 not found, 4 remote error.

#include <dlfcn.h>
#include <fcntl.h>
#include <spawn.h>
#include <sys/wait.h>
#include <unistd.h>

#include <cerrno>
#include <chrono>
#include <cstring>
#include <filesystem>
#include <cstdlib>
#include <deque>
#include <future>
#include <map>
#include <iostream>
#include <optional>
#include <string>
#include <vector>

#include <nlohmann/json.hpp>
#include <rayd/rayd.hpp>

#include "cli/rayctl.hpp"
#include "common/error.hpp"
#include "common/json_msgpack.hpp"
#include "common/util.hpp"
#include "schemas/api_client.hpp"

namespace rayd::cli {

namespace {

using json = nlohmann::json;

constexpr const char* signature_ns = "rayd.signatures";

enum exit_code { ok = 0, unreachable = 1, usage = 2, not_found = 3, remote = 4 };

const char* kind_of(int code) {
  switch (code) {
    case usage: return "usage";
    case not_found: return "not_found";
    case remote: return "remote_error";
    default: return "unreachable";
  }
}

/// One error: JSON on stdout with --json, one line on stderr otherwise.
int report(const script_options& o, int code, const std::string& message) {
  if (o.json)
    std::cout << json{{"error", {{"code", code}, {"kind", kind_of(code)}, {"message", message}}}}
                   .dump()
              << std::endl;
  else
    std::cerr << "rayctl: " << message << std::endl;
  return code;
}

/// The exit code for an exception out of the runtime: the cluster could not
/// be reached, or else a remote error (the function or method threw, the
/// actor died, no result within --timeout).
int code_of_exception(const std::exception& e) {
  return dynamic_cast<const rayd::connection_error*>(&e) != nullptr ? unreachable : remote;
}

/// Loads --lib into this process, so its RAYD_REMOTE / RAYD_ACTOR
/// registrations (and signatures) are known here.
std::optional<std::string> load_lib(const std::string& path) {
  if (path.empty())
    return std::nullopt;
  if (::dlopen(path.c_str(), RTLD_NOW | RTLD_GLOBAL) == nullptr) {
    const char* why = ::dlerror();
    return "cannot load --lib " + path + ": " + (why ? why : "unknown error");
  }
  return std::nullopt;
}

/// The signatures a program registers: run with RAYD_PRINT_SIGNATURES=1,
/// its rayd::init() prints them and exits before anything else runs.
caf::expected<std::vector<detail::signature>> program_signatures(const std::string& path) {
  int fds[2];
  if (::pipe2(fds, O_CLOEXEC) != 0)
    return make_error(errc::internal, "pipe failed");
  std::vector<std::string> env_text;
  for (char** e = environ; *e != nullptr; ++e)
    if (std::strncmp(*e, "RAYD_WORKER_FD=", 15) != 0)
      env_text.emplace_back(*e);
  env_text.emplace_back("RAYD_PRINT_SIGNATURES=1");
  std::vector<char*> envp;
  for (auto& e : env_text)
    envp.push_back(e.data());
  envp.push_back(nullptr);
  std::string arg0 = path;
  char* argv[] = {arg0.data(), nullptr};
  posix_spawn_file_actions_t fa;
  posix_spawn_file_actions_init(&fa);
  posix_spawn_file_actions_adddup2(&fa, fds[1], 1);
  posix_spawn_file_actions_addopen(&fa, 0, "/dev/null", O_RDONLY, 0);
  pid_t pid = -1;
  int rc = ::posix_spawn(&pid, path.c_str(), &fa, nullptr, argv, envp.data());
  posix_spawn_file_actions_destroy(&fa);
  ::close(fds[1]);
  if (rc != 0) {
    ::close(fds[0]);
    return make_error(errc::invalid_argument,
                      "cannot run --binary " + path + ": " + std::strerror(rc));
  }
  std::string text;
  char buf[4096];
  for (ssize_t n; (n = ::read(fds[0], buf, sizeof buf)) != 0;) {
    if (n < 0 && errno == EINTR)
      continue;
    if (n < 0)
      break;
    text.append(buf, static_cast<std::size_t>(n));
  }
  ::close(fds[0]);
  int status = 0;
  while (::waitpid(pid, &status, 0) < 0 && errno == EINTR) {
  }
  if (!WIFEXITED(status) || WEXITSTATUS(status) != 0)
    return make_error(errc::invalid_argument,
                      "--binary " + path
                        + " did not list its functions and classes (is it a rayd program "
                          "that calls rayd::init() first?)");
  auto sigs = decode_signatures(text);
  if (sigs && sigs->empty())
    return make_error(errc::invalid_argument,
                      "--binary " + path + " registers no functions or classes (is it a rayd "
                                           "program that calls rayd::init() first?)");
  return sigs;
}

/// What --lib or --binary registers, by name: functions, constructors (by
/// class name) and methods ("Class::method").
caf::expected<std::map<std::string, detail::signature>> code_signatures(const script_options& o,
                                                                        const char* command) {
  if (o.lib.empty() == o.binary.empty())
    return make_error(errc::invalid_argument,
                      std::string{command}
                        + " needs exactly one of --lib PATH (a task library) or --binary PATH "
                          "(a rayd program)");
  std::vector<detail::signature> all;
  if (!o.lib.empty()) {
    if (auto err = load_lib(o.lib))
      return make_error(errc::invalid_argument, *err);
    all = detail::registered_signatures();
  } else {
    auto sigs = program_signatures(o.binary);
    if (!sigs)
      return sigs.error();
    all = std::move(*sigs);
  }
  std::map<std::string, detail::signature> out;
  for (auto& s : all)
    out[s.name] = std::move(s);
  return out;
}

/// Starts the runtime against the cluster rayctl would talk to.
std::optional<std::string> start_runtime(const rayctl_target& t, const script_options& o) {
  auto target = resolve_target(t);
  if (!target)
    return describe(target.error());
  if (!t.tls_ca.empty())
    ::setenv("RAYD_TLS_CA", t.tls_ca.c_str(), 1);
  init_options opts;
  opts.address = target->first;
  opts.token = target->second;
  opts.embedded_if_absent = false;
  if (!o.lib.empty())
    opts.code_search_path = {o.lib};
  if (!o.binary.empty()) // its workers run the program itself
    opts.executable = std::filesystem::absolute(o.binary).string();
  try {
    rayd::init(opts);
  } catch (const std::exception& e) {
    return std::string{e.what()};
  }
  return std::nullopt;
}

std::chrono::milliseconds timeout_of(const script_options& o) {
  return std::chrono::milliseconds{static_cast<int64_t>(o.timeout_s * 1000)};
}

/// Waits for one result and prints it as JSON by `result`'s type.
int print_result(const script_options& o, const core::object_id& id,
                 const detail::type_desc& result) {
  auto& rt = core::current();
  std::string bytes;
  try {
    bytes = rt.get({id}, timeout_of(o)).at(0);
  } catch (const std::exception& e) {
    rt.release(id);
    return report(o, code_of_exception(e), e.what());
  }
  rt.release(id);
  auto value = msgpack_to_json(result, bytes);
  if (!value)
    return report(o, remote, describe(value.error()));
  if (o.json)
    std::cout << json{{"result", *value}}.dump() << std::endl;
  else
    std::cout << value->dump() << std::endl;
  return ok;
}

/// The JSON arguments of `sig` as msgpack; an error message on failure.
caf::expected<std::vector<core::arg>> arguments(const detail::signature& sig,
                                                const std::string& args_json) {
  auto parsed = parse_json(args_json.empty() ? "[]" : args_json);
  if (!parsed)
    return parsed.error();
  auto packed = json_to_arguments(sig, *parsed);
  if (!packed)
    return packed.error();
  std::vector<core::arg> out;
  for (auto& p : *packed)
    out.push_back({false, std::move(p), {}});
  return out;
}

/// The published signatures of `cls`: constructor and methods by name
/// ("Class::method").
caf::expected<std::map<std::string, detail::signature>> published(rpc::client& c,
                                                                  const std::string& cls) {
  auto raw = c.kv_get(signature_ns, cls);
  if (!raw)
    return raw.error();
  if (!*raw)
    return make_error(errc::not_found,
                      "no signatures known for class " + cls
                        + ": its actors were created by a program built before signatures "
                          "were published, or by none (use `rayctl actor create ... --lib PATH`)");
  auto sigs = decode_signatures(**raw);
  if (!sigs)
    return make_error(errc::internal, "the signatures published for class " + cls
                                        + " cannot be read: " + describe(sigs.error()));
  std::map<std::string, detail::signature> out;
  for (auto& s : *sigs)
    out[s.name] = s;
  return out;
}

} // namespace

int rayctl_call(const rayctl_target& t, const std::string& function,
                const std::string& args_json, const script_options& o) {
  auto sigs = code_signatures(o, "rayctl call");
  if (!sigs)
    return report(o, usage, describe(sigs.error()));
  auto where = o.lib.empty() ? o.binary : o.lib;
  auto found = sigs->find(function);
  if (found == sigs->end() || found->second.k != detail::signature::kind::function)
    return report(o, not_found, "no function " + function + " in " + where);
  auto* sig = &found->second;
  auto args = arguments(*sig, args_json);
  if (!args)
    return report(o, usage, describe(args.error()));
  if (auto err = start_runtime(t, o))
    return report(o, unreachable, *err);
  core::task_options topts;
  if (o.num_cpus >= 0)
    topts.resources["CPU"] = o.num_cpus;
  auto id = core::current().submit(function, std::move(*args), topts);
  int code = print_result(o, id, sig->result);
  rayd::shutdown();
  return code;
}

int rayctl_actor_create(const rayctl_target& t, const std::string& cls,
                        const std::string& args_json, const script_options& o) {
  auto sigs = code_signatures(o, "rayctl actor create");
  if (!sigs)
    return report(o, usage, describe(sigs.error()));
  auto where = o.lib.empty() ? o.binary : o.lib;
  auto found = sigs->find(cls);
  if (found == sigs->end() || found->second.k != detail::signature::kind::constructor)
    return report(o, not_found, "no actor class " + cls + " in " + where);
  auto* ctor = &found->second;
  auto args = arguments(*ctor, args_json);
  if (!args)
    return report(o, usage, describe(args.error()));
  core::actor_options aopts;
  aopts.name = o.name;
  aopts.ray_namespace = o.ns;
  // rayctl exits at once: an actor owned by its job would die with it (a
  // named one too). Actors it creates live until killed (`actor kill`).
  aopts.detached = true;
  aopts.max_restarts = o.max_restarts;
  if (!o.resources_json.empty()) {
    auto r = parse_resources_json(o.resources_json, "--resources");
    if (!r)
      return report(o, usage, describe(r.error()));
    aopts.resources = *r;
  }
  if (o.num_cpus >= 0)
    aopts.resources["CPU"] = o.num_cpus;
  // The class's signatures, so that `actor call` needs only the name (a
  // C++ driver's runtime publishes them the same way).
  std::vector<detail::signature> mine{*ctor};
  for (auto& [name, sig] : *sigs)
    if (sig.k == detail::signature::kind::method && name.rfind(cls + "::", 0) == 0)
      mine.push_back(sig);
  auto published_sigs = detail::encode_signatures(mine);
  {
    // An API client owns its thread's event loop: it is gone before the
    // runtime starts its own.
    auto c = connect(t);
    if (!c)
      return report(o, unreachable, describe(c.error()));
    if (auto put = (*c)->kv_put(signature_ns, cls, published_sigs, true); !put)
      return report(o, unreachable, describe(put.error()));
  }
  if (auto err = start_runtime(t, o))
    return report(o, unreachable, *err);
  std::vector<std::string> raw;
  for (auto& a : *args)
    raw.push_back(std::move(a.value));
  std::string id;
  try {
    id = core::current().create_actor(cls, std::move(raw), aopts);
  } catch (const std::exception& e) {
    rayd::shutdown();
    return report(o, remote, e.what());
  }
  rayd::shutdown();
  json out{{"actor_id", id}, {"class", cls}, {"name", o.name},
           {"namespace", o.ns.empty() ? "default" : o.ns}};
  std::cout << (o.json ? out.dump() : id) << std::endl;
  return ok;
}

int rayctl_actor_call(const rayctl_target& t, const std::string& actor,
                      const std::string& method, const std::string& args_json,
                      const script_options& flags) {
  // With --stdin, output line i answers input line i: {"result": ...} or
  // {"error": ...}, both on stdout.
  auto o = flags;
  o.json = o.json || o.stdin_mode;
  // Actors by name (or id) with their class's signatures, looked up once
  // each, through the API on a thread of their own (an API client owns its
  // thread's event loop, and the runtime has one on this thread).
  struct target_actor {
    std::string id, cls;
    std::map<std::string, detail::signature> sigs;
  };
  std::map<std::string, caf::expected<target_actor>> known;
  auto resolve = [&](const std::string& who) -> const caf::expected<target_actor>& {
    auto i = known.find(who);
    if (i != known.end())
      return i->second;
    auto find = [&t, &o, who]() -> caf::expected<target_actor> {
      auto c = connect(t);
      if (!c)
        return c.error();
      target_actor a;
      if (auto found = (*c)->actor_get(who, o.ns)) {
        a.id = found->actor_id;
        a.cls = found->class_name;
      } else {
        auto all = (*c)->actor_list();
        if (!all)
          return all.error();
        for (auto& x : *all)
          if (x.actor_id == who && x.state != "DEAD") {
            a.id = x.actor_id;
            a.cls = x.class_name;
          }
        if (a.id.empty())
          return make_error(errc::not_found,
                            "no live actor named or with id '" + who + "' in namespace '"
                              + (o.ns.empty() ? "default" : o.ns) + "'");
      }
      auto sigs = published(**c, a.cls);
      if (!sigs)
        return sigs.error();
      a.sigs = std::move(*sigs);
      return a;
    };
    return known.emplace(who, std::async(std::launch::async, find).get()).first->second;
  };
  auto code_for = [](const caf::error& err) {
    return code_of(err) == errc::not_found ? not_found
           : code_of(err) == errc::invalid_argument ? usage
                                                    : unreachable;
  };
  // One call, sent at once; what to print comes later, in request order.
  struct pending {
    std::optional<core::object_id> ref;
    detail::type_desc result;
    int code = ok;
    std::string error;
  };
  bool started = false;
  auto call = [&](const std::string& who, const std::string& m, const std::string& a) {
    pending p;
    auto& target = resolve(who);
    if (!target) {
      p.code = code_for(target.error());
      p.error = describe(target.error());
      return p;
    }
    auto full = target->cls + "::" + m;
    auto s = target->sigs.find(full);
    if (s == target->sigs.end()) {
      p.code = not_found;
      p.error = "actor class " + target->cls + " has no method " + m;
      return p;
    }
    auto args = arguments(s->second, a);
    if (!args) {
      p.code = usage;
      p.error = describe(args.error());
      return p;
    }
    if (!started) {
      if (auto err = start_runtime(t, o)) {
        p.code = unreachable;
        p.error = *err;
        return p;
      }
      started = true;
    }
    p.result = s->second.result;
    try {
      p.ref = core::current().call_actor(target->id, full, std::move(*args));
    } catch (const std::exception& e) {
      p.code = code_of_exception(e);
      p.error = e.what();
    }
    return p;
  };
  auto finish = [&](pending& p) {
    return p.code != ok ? report(o, p.code, p.error) : print_result(o, *p.ref, p.result);
  };
  int worst = ok;
  if (!o.stdin_mode) {
    auto p = call(actor, method, args_json);
    worst = finish(p);
  } else {
    // --stdin: one request per line, pipelined (each call is sent as it is
    // read), one result per line in the same order.
    std::deque<pending> window;
    std::string line;
    while (std::getline(std::cin, line)) {
      if (line.find_first_not_of(" \t\r") == std::string::npos)
        continue;
      auto req = parse_json(line);
      if (!req || !req->is_object()) {
        pending p;
        p.code = usage;
        p.error = "a --stdin line must be a JSON object {\"actor\": ..., \"method\": ..., "
                  "\"args\": [...]}, got: " + line.substr(0, 80);
        window.push_back(std::move(p));
      } else {
        auto who = req->contains("actor") && (*req)["actor"].is_string()
                     ? (*req)["actor"].get<std::string>() : actor;
        auto m = req->contains("method") && (*req)["method"].is_string()
                   ? (*req)["method"].get<std::string>() : method;
        auto a = req->contains("args") ? (*req)["args"].dump() : std::string{"[]"};
        window.push_back(call(who, m, a));
      }
      if (window.size() >= 4096) { // bounded: older results are printed first
        worst = std::max(worst, finish(window.front()));
        window.pop_front();
      }
    }
    for (auto& p : window)
      worst = std::max(worst, finish(p));
  }
  if (started)
    rayd::shutdown();
  return worst;
}

} // namespace rayd::cli
