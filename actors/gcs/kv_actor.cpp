// The GCS KV actor. Group commit: a write is staged and its response promise
// parked; the first staged write of a round sends `flush` to the actor itself,
// which lands behind every request already in the mailbox. So one fsync covers
// all writes that arrived meanwhile, and each writer hears back only after
// that fsync.

#include <utility>
#include <vector>

#include <caf/all.hpp>
#include <spdlog/spdlog.h>

#include "actors/gcs/kv_table.hpp"
#include "actors/gcs/spawn.hpp"
#include "common/error.hpp"

namespace rayd::gcs {

namespace {

struct kv_state_t {
  std::shared_ptr<kv_table> table;
  /// Writers waiting for the next commit, with the answer they will get.
  std::vector<std::pair<caf::typed_response_promise<bool>, bool>> waiting;
  bool flush_scheduled = false;
  static inline const char* name = "rayd.gcs.kv";
};

using kv_actor_t = gcs_kv_actor::stateful_pointer<kv_state_t>;

caf::result<bool> park(kv_actor_t self, caf::expected<bool> staged) {
  if (!staged)
    return staged.error();
  auto& st = self->state;
  auto rp = self->make_response_promise<bool>();
  st.waiting.emplace_back(rp, *staged);
  if (!st.flush_scheduled) {
    st.flush_scheduled = true;
    self->send(self, atoms::flush::value);
  }
  return rp;
}

} // namespace

gcs_kv_actor spawn_kv_actor(caf::actor_system& sys, persistence::store& db) {
  auto table = std::make_shared<kv_table>(db);
  return sys.spawn([table](kv_actor_t self) -> gcs_kv_actor::behavior_type {
    self->state.table = table;
    return {
      [self](atoms::kv_put, std::string& ns, std::string& key,
             std::string& value, bool overwrite) -> caf::result<bool> {
        return park(self, self->state.table->put(ns, key, std::move(value),
                                                 overwrite));
      },
      [self](atoms::kv_get, std::string& ns,
             std::string& key) -> caf::result<std::string> {
        auto v = self->state.table->get(ns, key);
        if (!v)
          return v.error();
        if (!*v)
          return make_error(errc::not_found, "key '" + key + "' not found");
        return std::move(**v);
      },
      [self](atoms::kv_del, std::string& ns,
             std::string& key) -> caf::result<bool> {
        return park(self, self->state.table->del(ns, key));
      },
      [self](atoms::kv_list, std::string& ns,
             std::string& prefix) -> caf::result<std::vector<std::string>> {
        auto keys = self->state.table->keys(ns, prefix);
        if (!keys)
          return keys.error();
        return std::move(*keys);
      },
      [self](atoms::flush) {
        auto& st = self->state;
        st.flush_scheduled = false;
        auto err = st.table->commit();
        if (err)
          spdlog::error("kv commit of {} writes failed: {}", st.waiting.size(),
                        describe(err));
        auto waiting = std::move(st.waiting);
        st.waiting.clear();
        for (auto& [rp, answer] : waiting) {
          if (err)
            rp.deliver(err);
          else
            rp.deliver(answer);
        }
      },
    };
  });
}

} // namespace rayd::gcs
