#pragma once
// A simulated node provider for policy and scale tests: instances are entries
// in a table, no process runs, thousands of them cost a few kilobytes.
//
// Timing and failure are injected: an instance is `pending` until
// `launch_delay` has passed on the injected clock, then `running`; with
// probability `failure_rate` (a seeded generator, so a test is repeatable) a
// created instance is `failed` at once with an error. Tests move instances
// with set_running / set_terminated / set_failed (a node that came up early,
// crashed, or broke). Follows node_provider's lifecycle and idempotency rules.
//
// Thread rules: all calls lock one mutex, so a test thread may mark instances
// while another thread calls the provider.

#include <chrono>
#include <cstdint>
#include <functional>
#include <mutex>
#include <random>
#include <string>
#include <vector>

#include "autoscale/node_provider.hpp"

namespace rayd::autoscale {

struct fake_provider_options {
  /// The cluster whose instances list() shows. Required.
  std::string cluster_name;
  /// How long a new instance stays pending. Default: 0 (running at once).
  std::chrono::milliseconds launch_delay{0};
  /// Probability in [0, 1] that a created instance fails. Default: 0.
  double failure_rate = 0.0;
  /// Seed of the failure generator. Default: 1.
  uint64_t seed = 1;
  /// The clock launch_delay is measured on. Default: steady_clock::now.
  std::function<std::chrono::steady_clock::time_point()> clock;
};

class fake_provider : public node_provider {
 public:
  explicit fake_provider(fake_provider_options options);

  std::string kind() const override { return "fake"; }
  caf::expected<std::vector<std::string>> create(const instance_spec& spec,
                                                 int32_t count) override;
  caf::error terminate(const std::vector<std::string>& instance_ids) override;
  caf::expected<std::vector<provider_instance>> list() override;

  // --- for tests: false if the id is unknown ---
  bool set_running(const std::string& id);
  /// A node that died on its own: listed as terminated until terminate().
  bool set_terminated(const std::string& id, const std::string& why = "simulated crash");
  bool set_failed(const std::string& id, const std::string& why);

  /// Calls of create() so far (also the ones that created nothing).
  int64_t create_calls() const;
  /// Instances created so far, including forgotten ones.
  int64_t instances_created() const;

 private:
  struct entry {
    provider_instance inst;
    std::chrono::steady_clock::time_point ready_at;
  };
  std::chrono::steady_clock::time_point now() const;
  void advance(entry& e, std::chrono::steady_clock::time_point now) const;

  fake_provider_options options_;
  mutable std::mutex mtx_;
  std::mt19937_64 rng_;
  std::map<std::string, entry> instances_; // ordered: list() is repeatable
  int64_t next_id_ = 1;
  int64_t create_calls_ = 0;
};

} // namespace rayd::autoscale
