#pragma once
// A node provider that delegates to an external executable: each call runs the
// command once, writes one JSON request to its stdin and reads one JSON reply
// from its stdout (the protocol: docs/autoscaler.md, "Node providers"). This is the
// extension point for clouds and in-house systems; the command is run
// directly (fork/exec, no shell), with the request in a memory file on stdin.
//
// Failure handling: a command that runs longer than `timeout` is killed by its
// pid (SIGKILL) and the call fails with errc::timeout; a non-zero exit, a
// death by signal, output that is not one JSON object, or a reply of the
// wrong shape fail with an error naming the command, the operation, the exit
// status and the tail of its stderr. A reply {"error": "..."} fails the call
// with that message (errc::unavailable).
//
// Thread rules: none of its own; calls block for up to `timeout` each.

#include <chrono>
#include <cstddef>
#include <string>
#include <vector>

#include <caf/expected.hpp>

#include "autoscale/node_provider.hpp"

namespace rayd::autoscale {

struct command_provider_options {
  /// The cluster whose instances list() shows; sent in every request. Required.
  std::string cluster_name;
  /// argv of the command; argv[0] is a path, or a name looked up on PATH.
  /// Required.
  std::vector<std::string> command;
  /// Each call's deadline; the command is killed when it passes. Default: 30 s.
  std::chrono::milliseconds timeout{30'000};
  /// stdout or stderr beyond this many bytes is dropped. Default: 16 MiB.
  std::size_t max_output_bytes = 16u << 20;
};

class command_provider : public node_provider {
 public:
  explicit command_provider(command_provider_options options);

  std::string kind() const override { return "command"; }
  caf::expected<std::vector<std::string>> create(const instance_spec& spec,
                                                 int32_t count) override;
  caf::error terminate(const std::vector<std::string>& instance_ids) override;
  caf::expected<std::vector<provider_instance>> list() override;

 private:
  command_provider_options options_;
};

} // namespace rayd::autoscale
