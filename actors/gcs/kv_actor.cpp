// The GCS KV actor. Group commit (persistence/group_commit.hpp): a write is
// staged and its reply parked; the first staged write of a round sends
// `flush` to the actor itself, which lands behind every request already in
// the mailbox. So one fsync covers all writes that arrived meanwhile, and
// each writer hears back only after that fsync. A read of a key with a staged
// change waits for the same commit: it must not show a change before it is
// durable (nor one a failed commit discards).

#include <utility>
#include <vector>

#include <caf/all.hpp>

#include "actors/gcs/kv_table.hpp"
#include "actors/gcs/spawn.hpp"
#include "common/error.hpp"
#include "persistence/group_commit.hpp"

namespace rayd::gcs {

namespace {

struct kv_state_t {
  std::shared_ptr<kv_table> table;
  persistence::group_commit commits;
  static inline const char* name = "rayd.gcs.kv";
};

using kv_actor_t = gcs_kv_actor::stateful_pointer<kv_state_t>;

/// Answers with `answer` (a value or an error) once the staged changes are
/// durable, or with the commit's error.
template <class T>
caf::result<T> after_commit(kv_actor_t self, caf::expected<T> answer) {
  auto rp = self->make_response_promise<T>();
  if (answer) {
    self->state.commits.reply(rp, std::move(*answer));
    return rp;
  }
  self->state.commits.then(
    [rp, err = answer.error()](const caf::error& commit_err) mutable {
      rp.deliver(commit_err ? commit_err : err);
    });
  return rp;
}

caf::expected<std::string> value_of(caf::expected<std::optional<std::string>> v,
                                    const std::string& key) {
  if (!v)
    return v.error();
  if (!*v)
    return make_error(errc::not_found, "key '" + key + "' not found");
  return std::move(**v);
}

} // namespace

gcs_kv_actor spawn_kv_actor(caf::actor_system& sys, persistence::store& db) {
  auto table = std::make_shared<kv_table>(db);
  return sys.spawn([table](kv_actor_t self) -> gcs_kv_actor::behavior_type {
    self->state.table = table;
    self->state.commits = persistence::group_commit{
      "kv", [self] { self->send(self, atoms::flush::value); }};
    return {
      [self](atoms::kv_put, std::string& ns, std::string& key,
             std::string& value, bool overwrite) -> caf::result<bool> {
        auto added = self->state.table->put(ns, key, std::move(value), overwrite);
        if (!added)
          return added.error(); // bad input: nothing was staged
        return after_commit(self, std::move(added));
      },
      [self](atoms::kv_get, std::string& ns,
             std::string& key) -> caf::result<std::string> {
        auto& st = self->state;
        auto v = value_of(st.table->get(ns, key), key);
        if (st.table->is_staged(ns, key))
          return after_commit(self, std::move(v));
        if (!v)
          return v.error();
        return std::move(*v);
      },
      [self](atoms::kv_del, std::string& ns,
             std::string& key) -> caf::result<bool> {
        auto existed = self->state.table->del(ns, key);
        if (!existed)
          return existed.error(); // bad input: nothing was staged
        return after_commit(self, std::move(existed));
      },
      [self](atoms::kv_list, std::string& ns,
             std::string& prefix) -> caf::result<std::vector<std::string>> {
        auto& st = self->state;
        auto keys = st.table->keys(ns, prefix);
        if (st.table->is_staged_under(ns, prefix))
          return after_commit(self, std::move(keys));
        if (!keys)
          return keys.error();
        return std::move(*keys);
      },
      [self](atoms::flush) {
        auto& st = self->state;
        st.commits.flush([&st] { return st.table->commit(); });
      },
    };
  });
}

} // namespace rayd::gcs
