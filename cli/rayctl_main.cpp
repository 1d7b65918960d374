// rayctl: parses flags (CLI11 lives only here) and runs one command.
// --address/--token/--token-file/--tls-ca are accepted before or after the
// subcommand.

#include <cstdlib>
#include <iostream>

#include <rayd/rayd.hpp>

#include <CLI/CLI.hpp>

#include "cli/rayctl.hpp"

int main(int argc, char** argv) {
  // Workers started for rayctl's tasks and actors (rayctl call / actor
  // create) run this binary: serve them, never return.
  if (const char* fd = std::getenv("RAYD_WORKER_FD"); fd != nullptr && *fd != '\0')
    rayd::init();
  rayd::cli::rayctl_target t;
  CLI::App app{"rayctl: talk to a rayd cluster through its head's API port"};
  app.require_subcommand(1);
  app.fallthrough();
  app.add_option("--address", t.address,
                 "The head's API address HOST:PORT (else RAYD_ADDRESS, else the local "
                 "session_latest)");
  app.add_option("--token", t.token,
                 "Cluster token (else --token-file, RAYD_TOKEN, RAYD_TOKEN_FILE, else the "
                 "local head session's auth_token)");
  app.add_option("--token-file", t.token_file, "File holding the cluster token");
  app.add_option("--tls-ca", t.tls_ca,
                 "PEM file of the CA that signed the head's API certificate: speak TLS "
                 "(else RAYD_TLS_CA, else the local head's own certificate when its API "
                 "port speaks TLS, else plain)");

  bool json = false;
  auto* status = app.add_subcommand("status", "Show the cluster: nodes, resources, demands");
  status->add_flag("--json", json, "Machine-readable output");
  auto* nodes = app.add_subcommand("nodes", "List the nodes");
  nodes->add_flag("--json", json, "Machine-readable output");

  uint32_t task_limit = 100;
  auto* tasks = app.add_subcommand("tasks", "List recent tasks (id, function, state, node, "
                                            "attempt, error)");
  tasks->add_option("--limit", task_limit, "At most this many, newest first")
    ->capture_default_str();
  tasks->add_flag("--json", json, "Machine-readable output");

  std::string ns, key, value, prefix;
  auto* kv = app.add_subcommand("kv", "The cluster's internal key-value store");
  kv->require_subcommand(1);
  kv->fallthrough();
  auto add_ns = [&ns](CLI::App* c) {
    c->add_option("--namespace", ns, "Namespace (default: the empty namespace)");
    c->fallthrough();
  };
  auto* put = kv->add_subcommand("put", "Store VALUE under KEY (durable when it returns)");
  put->add_option("key", key, "Key")->required();
  put->add_option("value", value, "Value")->required();
  add_ns(put);
  auto* get = kv->add_subcommand("get", "Print the value of KEY (exit 1 if missing)");
  get->add_option("key", key, "Key")->required();
  add_ns(get);
  auto* del = kv->add_subcommand("del", "Delete KEY (exit 1 if missing)");
  del->add_option("key", key, "Key")->required();
  add_ns(del);
  auto* list = kv->add_subcommand("list", "List keys");
  list->add_option("--prefix", prefix, "Only keys starting with this");
  list->add_flag("--json", json, "Machine-readable output");
  add_ns(list);

  // -- rayctl job ------------------------------------------------------------
  auto* job = app.add_subcommand("job", "Submit and manage jobs (a command run on the cluster)");
  job->require_subcommand(1);
  job->fallthrough();
  rayd::cli::job_submit_options so;
  std::string job_id;
  bool follow = false, no_wait = false;
  auto* jsubmit = job->add_subcommand(
    "submit", "Run COMMAND on the cluster: rayctl job submit [options] -- COMMAND...\n"
              "Without --no-wait, streams its logs; exit 0 if it SUCCEEDED, else 1");
  jsubmit->add_option("--submission-id", so.submission_id,
                      "Unique id (default: generated)");
  jsubmit->add_option("--working-dir", so.working_dir,
                      "Local directory uploaded as the job's working directory "
                      "(.git skipped; at most 100 MiB packed), or gcs://… / file:///…");
  jsubmit->add_option("--env", so.env, "Environment variable NAME=VALUE (repeatable)");
  jsubmit->add_option("--runtime-env-json", so.runtime_env_json,
                      "Runtime env as JSON: {\"env_vars\": {…}, \"working_dir\": "
                      "\"…\", \"excludes\": [\"*.log\", …]}");
  jsubmit->add_option("--metadata-json", so.metadata_json, "Metadata as a JSON object");
  jsubmit->add_option("--entrypoint-num-cpus", so.num_cpus,
                      "CPUs the entrypoint reserves (then it may run on any node)");
  jsubmit->add_option("--entrypoint-num-gpus", so.num_gpus, "GPUs the entrypoint reserves");
  jsubmit->add_option("--entrypoint-memory", so.memory,
                      "Memory (bytes) the entrypoint reserves");
  jsubmit->add_option("--entrypoint-resources", so.resources_json,
                      "Custom resources as JSON, e.g. '{\"ssd\": 1}'");
  jsubmit->add_flag("--no-wait", so.no_wait, "Return once submitted");
  jsubmit->add_flag("--json", json, "Machine-readable output");
  jsubmit->add_option("entrypoint", so.entrypoint,
                      "The command (after --): one word is a shell command line, "
                      "several are a command and its arguments");
  jsubmit->fallthrough();
  auto* jstatus = job->add_subcommand("status", "Show a job's state and details");
  auto* jlogs = job->add_subcommand("logs", "Print a job's logs");
  jlogs->add_flag("-f,--follow", follow, "Keep printing until the job ends");
  auto* jstop = job->add_subcommand(
    "stop", "Stop a job (SIGTERM to all its processes, SIGKILL after the grace period)");
  jstop->add_flag("--no-wait", no_wait, "Return without waiting for the job to end");
  auto* jlist = job->add_subcommand("list", "List jobs");
  auto* jdelete = job->add_subcommand("delete", "Delete an ended job and its logs");
  for (auto* sub : {jstatus, jlogs, jstop, jdelete})
    sub->add_option("submission_id", job_id, "The job's submission id")->required();
  for (auto* sub : {jstatus, jlogs, jstop, jlist, jdelete}) {
    sub->add_flag("--json", json, "Machine-readable output");
    sub->fallthrough();
  }

  // -- rayctl actors / actor ------------------------------------------------
  std::string actor_state, actor_name, actor_ns;
  bool no_restart = false;
  auto* actors = app.add_subcommand(
    "actors", "List user actors (id, name, namespace, class, state, node, pid, restarts, "
              "death cause)");
  actors->add_option("--state", actor_state,
                     "Only actors in this state: PENDING_CREATION, ALIVE, RESTARTING, DEAD");
  actors->add_option("--name", actor_name, "Only actors of this name");
  actors->add_flag("--json", json, "Machine-readable output");
  auto* actor = app.add_subcommand("actor", "Inspect or kill one user actor");
  actor->require_subcommand(1);
  actor->fallthrough();
  auto* aget = actor->add_subcommand("get", "Show the live actor named NAME (exit 1 if none)");
  aget->add_option("name", actor_name, "The actor's name")->required();
  auto* akill = actor->add_subcommand(
    "kill", "Kill an actor by id or live name (restarted while restarts remain, unless "
            "--no-restart)");
  akill->add_option("actor", actor_name, "The actor's id or name")->required();
  akill->add_flag("--no-restart", no_restart, "Do not restart it: it stays DEAD");
  for (auto* sub : {aget, akill}) {
    sub->add_option("--namespace", actor_ns, "The actor's namespace (default: \"default\")");
    sub->add_flag("--json", json, "Machine-readable output");
    sub->fallthrough();
  }

  // -- scripting: rayctl call / actor create / actor call ----------------------
  rayd::cli::script_options sc;
  std::string fn_name, class_name, method_name, args_json;
  auto* acreate = actor->add_subcommand(
    "create", "Create an actor of CLASS (registered with RAYD_ACTOR in --lib or --binary) from JSON "
              "constructor arguments; prints its id");
  acreate->add_option("class", class_name, "The actor class")->required();
  acreate->add_option("args", args_json, "Constructor arguments as a JSON array");
  acreate->add_option("--lib", sc.lib, "The task library defining CLASS");
  acreate->add_option("--binary", sc.binary,
                      "A rayd program defining CLASS (instead of --lib): its workers run it");
  acreate->add_option("--name", sc.name, "Name the actor (it outlives rayctl)");
  acreate->add_flag("--detached", sc.detached,
                    "Accepted for Ray's flag: actors rayctl creates are always detached (they "
                    "live until `rayctl actor kill`)");
  acreate->add_option("--resources", sc.resources_json, "Resources it holds, as JSON");
  acreate->add_option("--max-restarts", sc.max_restarts, "Restarts after a crash (-1: any)");
  auto* acall = actor->add_subcommand(
    "call", "Call METHOD of the actor NAME (or id) with JSON arguments; prints the result "
            "as JSON (--stdin: one request per input line, pipelined)");
  acall->add_option("actor", actor_name, "The actor's name or id");
  acall->add_option("method", method_name, "The method");
  acall->add_option("args", args_json, "Arguments as a JSON array (default: [])");
  acall->add_flag("--stdin", sc.stdin_mode,
                  "Read {\"actor\": ..., \"method\": ..., \"args\": [...]} lines from stdin; "
                  "one JSON result per line, in order");
  auto* call = app.add_subcommand(
    "call", "Run FUNCTION (registered with RAYD_REMOTE in --lib or --binary) with JSON arguments; "
            "prints the result as JSON");
  call->add_option("function", fn_name, "The function")->required();
  call->add_option("args", args_json, "Arguments as a JSON array (default: [])");
  call->add_option("--lib", sc.lib, "The task library defining FUNCTION");
  call->add_option("--binary", sc.binary,
                   "A rayd program defining FUNCTION (instead of --lib): its workers run it");
  for (auto* sub : {acreate, acall, call}) {
    sub->add_option("--namespace", sc.ns, "The actor's namespace (default: \"default\")");
    sub->add_option("--num-cpus", sc.num_cpus, "CPUs it needs");
    sub->add_option("--timeout", sc.timeout_s, "Seconds a result may take (default 60)");
    sub->add_flag("--json", sc.json, "Results and errors as JSON on stdout");
    sub->fallthrough();
  }

  // -- rayctl request-resources (the autoscaler) -------------------------------
  double req_cpus = -1;
  std::string req_bundles;
  bool req_clear = false;
  auto* request = app.add_subcommand(
    "request-resources",
    "Ask the autoscaler to scale the cluster so it can hold these bundles at once "
    "(Ray's request_resources); replaces the previous request");
  request->add_option("--num-cpus", req_cpus, "That many 1-CPU bundles");
  request->add_option("--bundles", req_bundles,
                      "A JSON array of resource bundles, e.g. '[{\"CPU\": 2}, {\"GPU\": 1}]'");
  request->add_flag("--clear", req_clear, "Withdraw the request");

  // -- the cluster launcher (docs/autoscaler.md, "The launcher") --------------
  rayd::cli::launch_options lo;
  std::vector<std::string> exec_command;
  auto* up = app.add_subcommand(
    "up", "Start the cluster of CONFIG on this host (head, then min_workers), or apply a "
          "changed CONFIG to it; safe to re-run");
  up->add_option("--timeout", lo.timeout_s,
                 "Seconds to wait for the head and every type's min_workers")
    ->capture_default_str()
    ->check(CLI::PositiveNumber);
  auto* down = app.add_subcommand(
    "down", "Stop the cluster of CONFIG: its head, then every worker it launched");
  for (auto* sub : {up, down}) {
    sub->add_option("config", lo.config, "The cluster config (YAML)")->required();
    sub->add_flag("-y,--yes", lo.yes, "Do not ask for confirmation");
  }
  auto* exec = app.add_subcommand(
    "exec", "Run a command on the cluster's head: rayctl exec CONFIG -- COMMAND...\n"
            "(cwd: the head's session dir; RAYD_ADDRESS and RAYD_TOKEN_FILE set; "
            "exit code: the command's)");
  exec->add_option("config", lo.config, "The cluster config (YAML)")->required();
  exec->add_option("command", exec_command,
                   "The command (after --): one word is a shell command line, several are "
                   "a program and its arguments")
    ->required();
  auto* attach = app.add_subcommand(
    "attach", "Open an interactive shell on the cluster's head (same environment as exec)");
  attach->add_option("config", lo.config, "The cluster config (YAML)")->required();
  auto* head_address = app.add_subcommand(
    "get-head-address", "Print the API address of the cluster's head (exit 1 if none runs)");
  head_address->add_option("config", lo.config, "The cluster config (YAML)")->required();

  try {
    app.parse(argc, argv);
  } catch (const CLI::CallForHelp& e) {
    return app.exit(e);
  } catch (const CLI::ParseError& e) {
    std::cerr << "rayctl: " << e.what() << " (see rayctl --help)" << std::endl;
    return 2;
  }
  using namespace rayd::cli;
  if (status->parsed())
    return rayctl_status(t, json);
  if (nodes->parsed())
    return rayctl_nodes(t, json);
  if (tasks->parsed())
    return rayctl_tasks(t, task_limit, json);
  if (put->parsed())
    return rayctl_kv_put(t, ns, key, value);
  if (get->parsed())
    return rayctl_kv_get(t, ns, key);
  if (del->parsed())
    return rayctl_kv_del(t, ns, key);
  if (list->parsed())
    return rayctl_kv_list(t, ns, prefix, json);
  if (jsubmit->parsed())
    return rayctl_job_submit(t, so, json);
  if (jstatus->parsed())
    return rayctl_job_status(t, job_id, json);
  if (jlogs->parsed())
    return rayctl_job_logs(t, job_id, follow, json);
  if (jstop->parsed())
    return rayctl_job_stop(t, job_id, no_wait, json);
  if (jlist->parsed())
    return rayctl_job_list(t, json);
  if (actors->parsed())
    return rayctl_actors(t, actor_state, actor_name, json);
  if (aget->parsed())
    return rayctl_actor_get(t, actor_name, actor_ns, json);
  if (akill->parsed())
    return rayctl_actor_kill(t, actor_name, actor_ns, no_restart, json);
  if (up->parsed())
    return rayctl_up(lo);
  if (down->parsed())
    return rayctl_down(lo);
  if (exec->parsed())
    return rayctl_exec(lo.config, exec_command);
  if (attach->parsed())
    return rayctl_attach(lo.config);
  if (head_address->parsed())
    return rayctl_get_head_address(lo.config);
  if (jdelete->parsed())
    return rayctl_job_delete(t, job_id, json);
  if (acreate->parsed())
    return rayctl_actor_create(t, class_name, args_json, sc);
  if (acall->parsed()) {
    if (!sc.stdin_mode && (actor_name.empty() || method_name.empty())) {
      std::cerr << "rayctl actor call: give NAME METHOD [ARGS_JSON], or --stdin" << std::endl;
      return 2;
    }
    return rayctl_actor_call(t, actor_name, method_name, args_json, sc);
  }
  if (call->parsed())
    return rayctl_call(t, fn_name, args_json, sc);
  if (request->parsed())
    return rayctl_request_resources(t, req_cpus, req_bundles, req_clear);
  std::cerr << "rayctl: no command given (see rayctl --help)" << std::endl;
  return 2;
}
