// The job log actor (head): appends from supervisors, reads and follows from
// the API. Group commit as in the KV actor: appends are staged, the first one
// of a round sends `flush` to the actor itself, and every writer hears back
// after the one fsync that covers it. A follower's read parks until bytes
// past its offset are durable, the log is closed, or its wait ends.

#include <algorithm>
#include <map>
#include <set>
#include <vector>

#include <caf/all.hpp>
#include <spdlog/spdlog.h>

#include "actors/gcs/log_table.hpp"
#include "actors/gcs/job_log_actor.hpp"
#include "actors/gcs/spawn.hpp"
#include "common/error.hpp"

namespace rayd::gcs {

namespace {

using clock_type = std::chrono::steady_clock;

constexpr uint64_t max_read_bytes = 4u << 20;

struct parked_read {
  caf::typed_response_promise<log_slice> rp;
  std::string id;
  uint64_t offset;
  uint64_t max_bytes;
  bool terminal;
  clock_type::time_point deadline;
};

struct log_state_t {
  std::shared_ptr<log_table> table;
  std::vector<std::pair<caf::typed_response_promise<uint64_t>, uint64_t>> writers;
  std::vector<parked_read> readers;
  /// Jobs the job manager said have ended (since this head started).
  std::set<std::string> closed;
  bool flush_scheduled = false;
  static inline const char* name = "rayd.job.log";
};

using log_actor_t = job_log_actor::stateful_pointer<log_state_t>;

/// The answer for a read now: bytes, or closed. nullopt: nothing yet.
std::optional<caf::expected<log_slice>> try_read(log_actor_t self,
                                                 const std::string& id,
                                                 uint64_t offset,
                                                 uint64_t max_bytes,
                                                 bool terminal, bool force) {
  auto& st = self->state;
  terminal = terminal || st.closed.count(id) > 0;
  // Readers see only durable bytes: staged ones may still fail to commit.
  auto len = st.table->durable_length(id);
  if (offset < len) {
    auto data = st.table->read(id, offset,
                               std::min({max_bytes, max_read_bytes, len - offset}));
    if (!data)
      return caf::expected<log_slice>{data.error()};
    bool closed = terminal && offset + data->size() >= len;
    return caf::expected<log_slice>{log_slice{offset, std::move(*data), closed}};
  }
  if (terminal || force)
    return caf::expected<log_slice>{log_slice{std::min(offset, len), {}, terminal}};
  return std::nullopt;
}

void wake_readers(log_actor_t self, bool expired_only) {
  auto& st = self->state;
  auto now = clock_type::now();
  std::vector<parked_read> keep;
  for (auto& r : st.readers) {
    bool expired = now >= r.deadline;
    if (expired_only && !expired) {
      keep.push_back(std::move(r));
      continue;
    }
    auto answer = try_read(self, r.id, r.offset, r.max_bytes, r.terminal, expired);
    if (!answer) {
      keep.push_back(std::move(r));
      continue;
    }
    if (*answer)
      r.rp.deliver(std::move(**answer));
    else
      r.rp.deliver(answer->error());
  }
  st.readers = std::move(keep);
}

} // namespace

job_log_actor spawn_log_actor(caf::actor_system& sys,
                              std::shared_ptr<log_table> table) {
  return sys.spawn([table](log_actor_t self) -> job_log_actor::behavior_type {
    self->state.table = table;
    return {
      [self](atoms::log_append, std::string& id, uint64_t offset,
             std::string& data) -> caf::result<uint64_t> {
        auto& st = self->state;
        if (st.closed.count(id))
          return st.table->length(id); // late bytes of an ended job
        auto len = st.table->append(id, offset, data);
        if (!len)
          return len.error();
        if (!st.table->dirty())
          return *len;
        auto rp = self->make_response_promise<uint64_t>();
        st.writers.emplace_back(rp, *len);
        if (!st.flush_scheduled) {
          st.flush_scheduled = true;
          self->send(self, atoms::flush::value);
        }
        return rp;
      },
      [self](atoms::log_read, std::string& id, uint64_t offset,
             uint64_t max_bytes, int64_t wait_ms,
             bool terminal) -> caf::result<log_slice> {
        auto answer = try_read(self, id, offset, max_bytes, terminal, wait_ms <= 0);
        if (answer) {
          if (*answer)
            return std::move(**answer);
          return answer->error();
        }
        auto rp = self->make_response_promise<log_slice>();
        auto wait = std::chrono::milliseconds{wait_ms};
        self->state.readers.push_back(
          {rp, id, offset, max_bytes, terminal, clock_type::now() + wait});
        self->delayed_send(self, wait, atoms::tick::value);
        return rp;
      },
      [self](atoms::log_close, std::string& id) {
        self->state.closed.insert(id);
        wake_readers(self, false);
      },
      [self](atoms::log_drop, std::string& id) {
        auto& st = self->state;
        st.table->drop(id);
        st.closed.erase(id);
        if (!st.flush_scheduled) {
          st.flush_scheduled = true;
          self->send(self, atoms::flush::value);
        }
      },
      [self](atoms::flush) {
        auto& st = self->state;
        st.flush_scheduled = false;
        auto err = st.table->commit();
        if (err)
          spdlog::error("job log commit failed: {}", describe(err));
        auto writers = std::move(st.writers);
        st.writers.clear();
        for (auto& [rp, len] : writers) {
          if (err)
            rp.deliver(err);
          else
            rp.deliver(len);
        }
        if (!err)
          wake_readers(self, false);
      },
      [self](atoms::tick) { wake_readers(self, true); },
    };
  });
}

} // namespace rayd::gcs
