#pragma once
// Message interface of the GCS task-event actor (head).

#include <cstdint>
#include <string>
#include <vector>

#include <caf/replies_to.hpp>
#include <caf/typed_actor.hpp>

#include "actors/types.hpp"

namespace rayd {

/// Task events reported by drivers (soft state, in memory, bounded).
using gcs_task_actor = caf::typed_actor<
  /// (job id, counts, newest events) from a driver.
  caf::reacts_to<atoms::task_report, std::string, task_counts, std::vector<task_event>>,
  /// limit → (the newest `limit` events, counts over live drivers).
  caf::replies_to<atoms::task_list, uint32_t>::with<task_list_reply>>;

} // namespace rayd
