#pragma once
// rayctl's commands, as plain functions over a connected API client. Kept
// free of CLI11 (only rayctl_main.cpp includes it).

#include <map>
#include <utility>
#include <memory>
#include <string>
#include <vector>

#include <caf/expected.hpp>
#include <nlohmann/json_fwd.hpp>

#include "actors/actor_types.hpp"
#include "actors/types.hpp"

namespace rayd::rpc {
class client;
}

namespace rayd::cli {

struct rayctl_target {
  std::string address;    // --address
  std::string token;      // --token
  std::string token_file; // --token-file
  std::string tls_ca;     // --tls-ca (else RAYD_TLS_CA; see rpc::connect_options)
};

/// Resolves address and token (flags, environment, local session) and
/// connects. Shared by every command.
caf::expected<std::unique_ptr<rpc::client>> connect(const rayctl_target& t);

/// The head's API address and the token, as connect() resolves them.
caf::expected<std::pair<std::string, std::string>> resolve_target(const rayctl_target& t);

/// Prints "rayctl: <error>" on stderr; returns 1.
int fail(const caf::error& err);

/// `rayctl status`'s node summary in Ray's layout (Active / Idle / Pending /
/// Recent failures) and the autoscaler's demands with their reasons
/// (cli/rayctl_autoscale.cpp); `as` is the autoscaler's status JSON, null
/// when the cluster has no autoscaler.
void print_node_summary(const cluster_view& v, const nlohmann::json* as);
void print_autoscaler_demands(const nlohmann::json& as);

/// `rayctl request-resources (--num-cpus N | --bundles JSON | --clear)`:
/// exit 2 for bad flags, 1 when the head refuses (no autoscaler).
int rayctl_request_resources(const rayctl_target& t, double num_cpus,
                             const std::string& bundles_json, bool clear);

/// Each returns the process exit code: 0 ok, 1 failure (one line on stderr).
int rayctl_status(const rayctl_target& t, bool json);
int rayctl_nodes(const rayctl_target& t, bool json);
int rayctl_tasks(const rayctl_target& t, uint32_t limit, bool json);
int rayctl_kv_put(const rayctl_target& t, const std::string& ns,
                  const std::string& key, const std::string& value);
int rayctl_kv_get(const rayctl_target& t, const std::string& ns,
                  const std::string& key);
int rayctl_kv_del(const rayctl_target& t, const std::string& ns,
                  const std::string& key);
int rayctl_kv_list(const rayctl_target& t, const std::string& ns,
                   const std::string& prefix, bool json);

/// `rayctl actors [--state S] [--name N] [--json]`: the actor table (bad
/// --state: exit 1 before connecting).
int rayctl_actors(const rayctl_target& t, const std::string& state, const std::string& name,
                  bool json);
/// `rayctl actor get NAME [--namespace NS]`: exit 1 when no live actor has it.
int rayctl_actor_get(const rayctl_target& t, const std::string& name, const std::string& ns,
                     bool json);
/// `rayctl actor kill NAME|ID [--namespace NS] [--no-restart]`: exit 1 when
/// neither an id nor a live name matches.
int rayctl_actor_kill(const rayctl_target& t, const std::string& id_or_name,
                      const std::string& ns, bool no_restart, bool json);
/// Flags of the scripting commands (cli/rayctl_script.cpp).
struct script_options {
  std::string lib;            // --lib: the task library defining the function / class
  std::string binary;         // --binary: a rayd program defining it (instead of --lib)
  std::string name;           // actor create --name
  std::string ns;             // --namespace ("" = "default")
  bool detached = false;      // actor create --detached (always so: see rayctl_script.cpp)
  double num_cpus = -1;       // --num-cpus (< 0: the default)
  std::string resources_json; // actor create --resources
  int max_restarts = 0;       // actor create --max-restarts
  double timeout_s = 60;      // --timeout: how long a result may take
  bool json = false;          // --json: results and errors as JSON on stdout
  bool stdin_mode = false;    // actor call --stdin
};

/// `rayctl call FUNCTION [ARGS_JSON] --lib PATH`, `rayctl actor create CLASS
/// [ARGS_JSON] --lib PATH ...`, `rayctl actor call NAME|ID METHOD [ARGS_JSON]
/// [--stdin]`. Exit codes: 0 ok, 1 unreachable, 2 usage (bad JSON, a type
/// mismatch), 3 not found, 4 remote error (it threw, the actor died).
int rayctl_call(const rayctl_target& t, const std::string& function,
                const std::string& args_json, const script_options& o);
int rayctl_actor_create(const rayctl_target& t, const std::string& cls,
                        const std::string& args_json, const script_options& o);
int rayctl_actor_call(const rayctl_target& t, const std::string& actor,
                      const std::string& method, const std::string& args_json,
                      const script_options& o);

/// {"PENDING_CREATION": n, "ALIVE": n, "RESTARTING": n, "DEAD": n} for status.
nlohmann::json actor_counts_json(const std::vector<actor_info>& actors);

/// `rayctl job submit`: every flag of the command line.
struct job_submit_options {
  std::string submission_id;
  std::string working_dir;
  std::vector<std::string> env; // K=V
  std::string runtime_env_json;
  std::string metadata_json;
  double num_cpus = 0;
  double num_gpus = 0;
  double memory = 0;
  std::string resources_json;
  bool no_wait = false;
  std::vector<std::string> entrypoint;
};

int rayctl_job_submit(const rayctl_target& t, const job_submit_options& o, bool json);
int rayctl_job_status(const rayctl_target& t, const std::string& id, bool json);
int rayctl_job_logs(const rayctl_target& t, const std::string& id, bool follow,
                    bool json);
int rayctl_job_stop(const rayctl_target& t, const std::string& id, bool no_wait,
                    bool json);
int rayctl_job_list(const rayctl_target& t, bool json);
int rayctl_job_delete(const rayctl_target& t, const std::string& id, bool json);

// -- the cluster launcher (rayctl_launch.cpp, docs/autoscaler.md) ------------

/// `rayctl up CONFIG` / `rayctl down CONFIG`.
struct launch_options {
  std::string config;
  bool yes = false;        // --yes: no confirmation prompt
  double timeout_s = 120;  // up --timeout: for the head and min_workers together
};

/// Starts the head (or applies a changed config to the running one) and waits
/// for every type's min_workers. Exit 0 up, 1 failure or timeout, 2 bad
/// config or no confirmation.
int rayctl_up(const launch_options& o);
/// Stops the head, then every worker the processes provider lists for the
/// cluster. Exit 0 also when nothing runs.
int rayctl_down(const launch_options& o);
/// Runs COMMAND on the head (this host): cwd its session dir, RAYD_ADDRESS
/// and RAYD_TOKEN_FILE set, RAYD_TOKEN unset, rayctl's own directory first in
/// PATH. Replaces rayctl: the exit code is the command's.
int rayctl_exec(const std::string& config, const std::vector<std::string>& command);
/// An interactive $SHELL (else /bin/bash) with exec's environment.
int rayctl_attach(const std::string& config);
/// Prints the head's API address (exit 1 when no head runs).
int rayctl_get_head_address(const std::string& config);

} // namespace rayd::cli
