#pragma once
// `rayd-bench autoscale-policy`: the autoscaler's decision time at scale
// (autoscale/policy.hpp; issue 10's target: <= 50 ms with 1,000 nodes and
// 10,000 pending shapes) and one round launching 1,000 pending workers. No
// processes: the rounds are autoscale/scenarios.hpp's, the ones the policy's
// unit test bounds.

#include <nlohmann/json.hpp>

namespace rayd::bench {

struct autoscale_policy_options {
  int runs = 11; // decide() calls per scenario; the median is reported
};

nlohmann::json run_autoscale_policy(const autoscale_policy_options& o);

} // namespace rayd::bench
