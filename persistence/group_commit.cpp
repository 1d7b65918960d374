#include "persistence/group_commit.hpp"

#include <spdlog/spdlog.h>

#include "common/error.hpp"

namespace rayd::persistence {

caf::error group_commit::flush(const std::function<caf::error()>& commit) {
  // Cleared first: whatever the actions stage starts the next round.
  scheduled_ = false;
  auto err = commit();
  auto actions = std::move(actions_);
  actions_.clear();
  if (err)
    spdlog::error("{}: commit failed, {} waiting request(s) get the error: {}",
                  name_, actions.size(), describe(err));
  for (auto& f : actions)
    f(err);
  return err;
}

} // namespace rayd::persistence
