#pragma once
// Group commit for an actor that owns tables (table.hpp): many changes, one
// durable batch, one fsync.
//
// As requests arrive, the actor stages changes in its tables and parks what
// may only happen once they are durable: the replies to their writers, and
// follow-ups (telling other actors, starting work). The first change of a
// round calls `schedule_flush`, which sends `flush` to the actor itself; that
// message lands behind every request already in the mailbox, so one commit
// covers all of them. flush() then commits once and runs every parked action
// in order, with the commit's error or none.
//
//            staged() / then() / reply()            flush(commit)
//   IDLE ───────────────────────────────► SCHEDULED ─────────────► IDLE
//                                          │    ▲
//                                          └────┘ more changes join the round
//
// A failed commit: the tables discard what was staged (the failed-commit
// policy in table.hpp), every parked reply delivers the error and every
// follow-up is handed it, so nobody is told of a change that is not on disk.
// The owner re-derives any in-memory state it built on the discarded rows.
//
// Actions run inside flush(); what they stage or park joins the next round.
// Not thread-safe: owned by one actor's state.

#include <cstddef>
#include <functional>
#include <string>
#include <utility>
#include <vector>

#include <caf/error.hpp>
#include <caf/typed_response_promise.hpp>

namespace rayd::persistence {

class group_commit {
public:
  using action = std::function<void(const caf::error&)>;

  /// An unbound group commit; bind it before use (actor state is built
  /// before the actor handle exists).
  group_commit() = default;

  /// `name` names the committer in the log line of a failed commit.
  /// `schedule_flush` is called once per round and must lead to exactly one
  /// later call of flush() (an actor sends `flush` to itself). REQUIRED.
  group_commit(std::string name, std::function<void()> schedule_flush)
    : name_(std::move(name)), schedule_flush_(std::move(schedule_flush)) {
  }

  /// A change was staged: make sure a flush is on its way.
  void staged() {
    if (!scheduled_) {
      scheduled_ = true;
      schedule_flush_();
    }
  }

  /// Runs `f` after the commit that covers everything staged so far.
  void then(action f) {
    actions_.push_back(std::move(f));
    staged();
  }

  /// Delivers `answer` to `rp` after that commit, or the commit's error.
  template <class T>
  void reply(caf::typed_response_promise<T> rp, T answer) {
    then([rp, answer = std::move(answer)](const caf::error& err) mutable {
      if (err)
        rp.deliver(err);
      else
        rp.deliver(std::move(answer));
    });
  }

  /// Whether a flush is on its way.
  bool scheduled() const {
    return scheduled_;
  }

  /// Actions waiting for the next commit.
  std::size_t waiting() const {
    return actions_.size();
  }

  /// The `flush` handler: calls `commit` once (it writes every staged table
  /// in one batch), logs a failure, then runs the parked actions in order.
  /// Returns the commit's error.
  caf::error flush(const std::function<caf::error()>& commit);

private:
  std::string name_;
  std::function<void()> schedule_flush_;
  std::vector<action> actions_;
  bool scheduled_ = false;
};

} // namespace rayd::persistence
