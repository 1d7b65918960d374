#pragma once
// Synthetic rounds at scale for the policy's tests and benchmark
// (tests/unit/autoscale_policy_test.cpp, `rayd-bench autoscale-policy`): one
// definition of "1,000 nodes and 10,000 pending shapes", so the figure the
// bench reports is the case the test bounds. Deterministic (seeded).

#include <utility>

#include "autoscale/autoscaling_config.hpp"
#include "autoscale/policy.hpp"

namespace rayd::autoscale::scenarios {

/// 1,000 workers of four types (half of them busy) plus the head, and
/// 10,000 pending demand entries over seven shapes and two zone selectors
/// (`distinct_shapes`: every entry's shape differs slightly, the worst case
/// for grouping). One shape (32 CPUs) fits no type: it is infeasible.
std::pair<snapshot, autoscaling_config> big_round(bool distinct_shapes);

/// 1,000 busy 2-CPU workers and 4,000 one-CPU demands with room for 5,000
/// workers: the launch budget (upscaling_speed 1.0) allows 1,000 launches.
std::pair<snapshot, autoscaling_config> thousand_launches();

} // namespace rayd::autoscale::scenarios
