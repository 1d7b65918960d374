#pragma once
// A store for unit tests of the layers above persistence: it forwards to
// another store (usually make_memory_store()) and lets a test see and steer
// the writes — how many batches and of what size, fail the next ones with
// errc::storage_error, or hold a write until the test releases it (to fill an
// actor's mailbox while it is inside a commit). The fault seam in the spirit
// of LevelDB's test Env; never used outside tests.
//
// Thread-safety: as the store it wraps; the counters and switches may be used
// from the test thread while an actor writes.

#include <condition_variable>
#include <cstddef>
#include <memory>
#include <mutex>
#include <vector>

#include "common/error.hpp"
#include "persistence/store.hpp"

namespace rayd::persistence {

class test_store final : public store {
public:
  explicit test_store(std::unique_ptr<store> inner = make_memory_store())
    : inner_(std::move(inner)) {
  }

  /// The next `n` non-empty write() calls fail and change nothing.
  void fail_writes(std::size_t n) {
    std::lock_guard<std::mutex> guard{mtx_};
    failures_ = n;
  }

  /// While held, write() waits (after it was counted as started).
  void hold(bool on) {
    {
      std::lock_guard<std::mutex> guard{mtx_};
      held_ = on;
    }
    cv_.notify_all();
  }

  /// write() calls that began / that returned (empty batches not counted).
  std::size_t writes_started() const {
    std::lock_guard<std::mutex> guard{mtx_};
    return started_;
  }
  std::size_t writes_done() const {
    std::lock_guard<std::mutex> guard{mtx_};
    return batch_sizes_.size();
  }

  /// The size of each batch written (failed ones included), in order.
  std::vector<std::size_t> batch_sizes() const {
    std::lock_guard<std::mutex> guard{mtx_};
    return batch_sizes_;
  }

  caf::expected<std::optional<std::string>>
  get(std::string_view table, std::string_view key) override {
    return inner_->get(table, key);
  }

  caf::error write(const std::vector<write_op>& batch) override {
    if (batch.empty())
      return caf::none;
    std::unique_lock<std::mutex> guard{mtx_};
    ++started_;
    cv_.wait(guard, [this] { return !held_; });
    bool fail = failures_ > 0;
    if (fail)
      --failures_;
    caf::error err;
    if (fail)
      err = make_error(errc::storage_error, "injected write failure");
    else
      err = inner_->write(batch);
    batch_sizes_.push_back(batch.size());
    return err;
  }

  caf::expected<std::vector<key_value>>
  scan(std::string_view table, std::string_view prefix,
       std::size_t limit) override {
    return inner_->scan(table, prefix, limit);
  }

private:
  std::unique_ptr<store> inner_;
  mutable std::mutex mtx_;
  std::condition_variable cv_;
  std::size_t failures_ = 0;
  std::size_t started_ = 0;
  bool held_ = false;
  std::vector<std::size_t> batch_sizes_;
};

} // namespace rayd::persistence
