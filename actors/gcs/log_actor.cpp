// The job log actor (head): appends from supervisors, reads and follows from
// the API. Group commit (persistence/group_commit.hpp): appends are staged,
// the first one of a round sends `flush` to the actor itself, and every
// writer hears back after the one fsync that covers it. A follower's read
// parks until bytes past its offset are durable, the job has ended, or its
// wait runs out.

#include <algorithm>
#include <chrono>
#include <map>
#include <vector>

#include <caf/all.hpp>
#include <spdlog/spdlog.h>

#include "actors/gcs/job_log_actor.hpp"
#include "actors/gcs/log_table.hpp"
#include "actors/gcs/spawn.hpp"
#include "common/error.hpp"
#include "persistence/group_commit.hpp"

namespace rayd::gcs {

namespace {

using clock_type = std::chrono::steady_clock;
using namespace std::chrono_literals;

constexpr uint64_t max_read_bytes = 4u << 20;

/// After a failed commit, a dropped log is dropped again this much later (its
/// bytes must not become the start of a later job with the same id).
constexpr auto drop_retry = 1s;

struct parked_read {
  caf::typed_response_promise<log_slice> rp;
  std::string id;
  uint64_t offset;
  uint64_t max_bytes;
  clock_type::time_point deadline;
};

struct log_state_t {
  std::shared_ptr<log_table> table;
  persistence::group_commit commits;
  std::vector<parked_read> readers;
  /// The jobs the job manager told of: id → whether the job has ended.
  std::map<std::string, bool> jobs;
  static inline const char* name = "rayd.job.log";
};

using log_actor_t = job_log_actor::stateful_pointer<log_state_t>;

bool ended(log_actor_t self, const std::string& id) {
  auto i = self->state.jobs.find(id);
  return i != self->state.jobs.end() && i->second;
}

/// The answer for a read now: bytes, or closed. nullopt: nothing yet.
std::optional<caf::expected<log_slice>> try_read(log_actor_t self,
                                                 const std::string& id,
                                                 uint64_t offset,
                                                 uint64_t max_bytes, bool force) {
  auto& st = self->state;
  auto terminal = ended(self, id);
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
    auto answer = try_read(self, r.id, r.offset, r.max_bytes, expired);
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

void drop(log_actor_t self, const std::string& id) {
  auto& st = self->state;
  st.jobs.erase(id);
  st.table->drop(id);
  st.commits.then([self, id](const caf::error& err) {
    if (err)
      self->delayed_send(self, drop_retry, atoms::log_drop::value, id);
  });
}

} // namespace

job_log_actor spawn_log_actor(caf::actor_system& sys,
                              std::shared_ptr<log_table> table) {
  return sys.spawn([table](log_actor_t self) -> job_log_actor::behavior_type {
    self->state.table = table;
    self->state.commits = persistence::group_commit{
      "job log", [self] { self->send(self, atoms::flush::value); }};
    return {
      [self](atoms::log_append, std::string& id, uint64_t offset,
             std::string& data) -> caf::result<uint64_t> {
        auto& st = self->state;
        if (ended(self, id))
          return st.table->durable_length(id); // late bytes of an ended job
        auto len = st.table->append(id, offset, data);
        if (!len)
          return len.error();
        if (*len <= st.table->durable_length(id))
          return *len; // nothing new, and all of it durable
        auto rp = self->make_response_promise<uint64_t>();
        st.commits.reply(rp, *len);
        return rp;
      },
      [self](atoms::job_logs, std::string& id, uint64_t offset,
             uint64_t max_bytes, int64_t wait_ms) -> caf::result<log_slice> {
        if (self->state.jobs.count(id) == 0)
          return make_error(errc::not_found, "no job with submission id " + id);
        auto answer = try_read(self, id, offset, max_bytes, wait_ms <= 0);
        if (answer) {
          if (*answer)
            return std::move(**answer);
          return answer->error();
        }
        auto rp = self->make_response_promise<log_slice>();
        auto wait = std::chrono::milliseconds{wait_ms};
        self->state.readers.push_back(
          {rp, id, offset, max_bytes, clock_type::now() + wait});
        self->delayed_send(self, wait, atoms::tick::value);
        return rp;
      },
      [self](atoms::log_open, std::string& id) {
        self->state.jobs.emplace(id, false);
      },
      [self](atoms::log_close, std::string& id) {
        self->state.jobs[id] = true;
        wake_readers(self, false);
      },
      [self](atoms::log_drop, std::string& id) { drop(self, id); },
      [self](atoms::flush) {
        auto& st = self->state;
        auto err = st.commits.flush([&st] { return st.table->commit(); });
        if (!err)
          wake_readers(self, false);
      },
      [self](atoms::tick) { wake_readers(self, true); },
    };
  });
}

} // namespace rayd::gcs
