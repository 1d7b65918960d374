#pragma once
// The cluster config file (YAML, Ray's key names): what the launcher and the
// autoscaler are told about a cluster. Every key, its type and its default is
// documented in docs/autoscaler.md ("Cluster config").
//
// Contract: parsing is a pure function of the text (no I/O, no globals); the
// result is either a fully validated config with every default filled in, or
// one errc::invalid_argument error whose message reads
//     <source>:<line>: <key path>: <problem>
// e.g. "cluster.yaml:12: available_node_types.cpu_worker.max_worker: unknown
// key (did you mean 'max_workers'?)". Lines are 1-based; errors about the
// text as a whole (YAML syntax, an empty file) have no key path. Bad input of
// any kind (malformed YAML, wrong types, hostile aliases) returns an error;
// nothing throws out of these functions. Thread-safe: no shared state.

#include <map>
#include <string>
#include <vector>

#include <caf/expected.hpp>

#include "autoscale/autoscaling_config.hpp"

namespace rayd::autoscale {

/// Which node provider creates and terminates the cluster's nodes.
enum class provider_kind {
  processes, // rayd processes on this machine (the default for trying it)
  fake,      // simulated nodes, no processes (policy and scale tests)
  command,   // an external executable speaking JSON on stdin/stdout
};

/// "processes", "fake", "command" (the spelling of `provider.type`).
const char* to_string(provider_kind x);

/// `provider:` keys of the fake provider.
struct fake_provider_config {
  /// Seconds from a create request until the simulated node is up (≥ 0).
  double launch_delay_s = 0;
  /// Fraction of create requests that fail, 0..1.
  double failure_rate = 0;
};

/// `provider:` keys of the command provider.
struct command_provider_config {
  /// The executable, as written in the file (required, non-empty).
  std::string command;
  /// Seconds one call of the executable may take before it counts as failed (> 0).
  double timeout_s = 30;
};

/// The `provider:` section. Only the member for `type` is meaningful; keys of
/// another provider are rejected as unknown.
struct provider_config {
  provider_kind type = provider_kind::processes;
  fake_provider_config fake;
  command_provider_config command;
};

/// The `auth:` section, kept as given for the providers that reach nodes over
/// SSH (none yet). Empty when absent.
struct auth_config {
  std::string ssh_user;
  std::string ssh_private_key;
};

struct cluster_config {
  /// Where the text came from, as passed to the parser (a path or a name):
  /// the prefix of every message about this config.
  std::string source_name;
  std::string cluster_name = "default";
  provider_config provider;
  auth_config auth;
  /// The policy's view: limits, idle timeout, node types, head type.
  autoscaling_config autoscaling;
  /// Remote path → local path, copied to every node before setup.
  std::map<std::string, std::string> file_mounts;
  /// Shell commands run on every node before rayd starts.
  std::vector<std::string> setup_commands;
  /// Shell commands that start rayd on the head / on a worker; empty means the
  /// provider's own way of starting it.
  std::vector<std::string> head_start_rayd_commands;
  std::vector<std::string> worker_start_rayd_commands;
};

/// Parses and validates `yaml_text`. `source_name` prefixes every error
/// message (e.g. "cluster.yaml").
/// Errors: errc::invalid_argument as described at the top of this file.
caf::expected<cluster_config> parse_cluster_config(const std::string& yaml_text,
                                                   const std::string& source_name);

/// Reads the file at `path` and parses it with `path` as the source name.
/// Errors: errc::not_found if the file cannot be read ("<path>: cannot read
/// the cluster config: <reason>"), errc::invalid_argument if it is larger than
/// 16 MiB, otherwise as parse_cluster_config.
caf::expected<cluster_config> load_cluster_config(const std::string& path);

/// The allowed key of `allowed` nearest to `key` by edit distance (ignoring
/// case), or "" if none is close enough to be a plausible typo.
std::string suggest_key(const std::string& key,
                        const std::vector<std::string>& allowed);

} // namespace rayd::autoscale
