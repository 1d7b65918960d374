#pragma once
// The one interface the autoscaler uses to get machines: create instances of a
// node type, terminate them, list what exists (docs/autoscaler.md, "Node providers").
// Implementations: `processes` (rayd processes on this host), `fake`
// (simulated, for policy and scale tests), `command` (an external executable
// speaking JSON); SSH, Slurm and Kubernetes providers fit the same calls.
//
// Thread rules: every call blocks (it may start processes, wait for them or
// talk to a cloud), so the autoscaler calls a provider from a helper thread,
// never from its actor thread. Calls on one provider object must not overlap:
// the caller serializes them. Two provider objects over the same backing state
// (a restarted head) are allowed one after the other.
//
// Tags are how a provider finds what an earlier process launched: every
// instance carries the cluster name and the launch request id it was created
// for. list() returns only instances whose cluster tag names this provider's
// cluster, so a restarted head sees the nodes its predecessor created and
// nothing else. create() is idempotent per launch request id: when instances
// tagged with the spec's launch request id already exist (and have not failed
// or terminated), they count towards `count` and only the remainder is
// created, so a head that crashed between create() and recording its ids can
// retry the same request without launching twice. (`command` providers are
// expected to do the same; the example script does.)
//
// An instance's lifecycle, as list() reports it:
//
//   create() --> pending --> running --> terminating --> terminated
//                   |           |                            ^
//                   v           +----(died on its own)-------+
//                 failed
//
// `failed` and `terminated` instances are not nodes any more: the caller
// treats them as gone and calls terminate() on them so the provider may forget
// them. Once terminate(ids) has succeeded those ids are no longer listed
// (a backend that keeps showing them reports them as terminated).

#include <cstdint>
#include <map>
#include <optional>
#include <string>
#include <vector>

#include <caf/error.hpp>
#include <caf/expected.hpp>

#include "common/resources.hpp"

namespace rayd::autoscale {

/// Tag keys every provider sets on what it creates.
constexpr const char* tag_cluster = "rayd-cluster-name";
constexpr const char* tag_launch_request = "rayd-launch-request";
constexpr const char* tag_node_type = "rayd-node-type";

/// Node labels of every node the autoscaler launches (and, for the type, of a
/// head the launcher starts): how a GCS node is matched to its node type and
/// to its instance-table row. The instance id is also a provider tag.
constexpr const char* label_node_type = "rayd-node-type";
constexpr const char* label_instance_id = "rayd-instance-id";

/// What to launch: one node of `node_type`, `count` times.
struct instance_spec {
  std::string node_type;
  resource_map resources; // what the node offers ("CPU" → 2, custom names)
  label_map labels;
  /// The provider's own settings for this type, as JSON text ("{}" if none).
  std::string node_config_json = "{}";
  /// Put on every instance. The provider adds tag_cluster (its own cluster
  /// name, overriding any value here) and tag_node_type; the caller sets
  /// tag_launch_request (create() refuses a spec without it).
  std::map<std::string, std::string> tags;
};

struct provider_instance {
  enum status { pending, running, terminating, terminated, failed };
  std::string instance_id;
  std::string node_type;
  status state = pending;
  std::map<std::string, std::string> tags;
  /// Why it failed or terminated on its own ("" otherwise).
  std::string error;
};

/// "pending", "running", "terminating", "terminated", "failed".
const char* to_string(provider_instance::status x);
/// The inverse of to_string; nullopt for any other text.
std::optional<provider_instance::status> parse_status(const std::string& text);

// --- for implementations ---

/// Checks create()'s arguments: count >= 1, a non-empty node type and launch
/// request tag. Errors: invalid_argument naming what is missing.
caf::error check_create_args(const instance_spec& spec, int32_t count);

/// The tags an instance created for `spec` in `cluster` carries: spec.tags
/// plus tag_cluster and tag_node_type.
std::map<std::string, std::string> instance_tags(const instance_spec& spec,
                                                 const std::string& cluster);

/// Whether an instance in state `x` still counts as (becoming) a node.
bool is_live(provider_instance::status x);

class node_provider {
 public:
  virtual ~node_provider() = default;

  /// The provider's kind, for messages ("processes", "fake", "command").
  virtual std::string kind() const = 0;

  /// Launches instances until `count` of them carry the spec's launch request
  /// id (see the idempotency rule above) and returns all their ids. Returning
  /// does not mean the nodes are up: they may be pending for minutes, or fail.
  /// Errors: invalid_argument (no launch request tag, count < 1, a spec the
  /// provider cannot express), unavailable/internal/timeout when the backend
  /// failed; on an error some instances may have been created anyway, and
  /// list() shows them.
  virtual caf::expected<std::vector<std::string>> create(const instance_spec& spec,
                                                         int32_t count)
    = 0;

  /// Stops the instances and waits until they are gone (or the provider's
  /// grace period ends). Ids the provider does not know are already gone: not
  /// an error. Errors: timeout when some instance would not stop, other codes
  /// when the backend failed.
  virtual caf::error terminate(const std::vector<std::string>& instance_ids) = 0;

  /// Every instance of this provider's cluster (by tag), in any state.
  virtual caf::expected<std::vector<provider_instance>> list() = 0;
};

} // namespace rayd::autoscale
