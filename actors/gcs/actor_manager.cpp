// The actor manager (head): see actor_manager.hpp for what each message
// does. Durability follows the job manager: every change is staged in the
// actor table and committed in one batch per mailbox round
// (persistence/group_commit.hpp); replies, hosting and waking waiters run
// after that commit.

#include "actors/gcs/actor_manager.hpp"

#include <algorithm>
#include <cctype>
#include <map>
#include <set>

#include <caf/all.hpp>
#include <spdlog/spdlog.h>

#include "actors/gcs/actor_placement.hpp"
#include "actors/gcs/node_actor.hpp"
#include "actors/gcs/spawn.hpp"
#include "common/error.hpp"
#include "common/util.hpp"
#include "persistence/group_commit.hpp"

namespace rayd::gcs {

actor_info to_info(const actor_row& r) {
  actor_info out;
  out.actor_id = r.actor_id;
  out.name = r.spec.name;
  out.ray_namespace = r.spec.ray_namespace;
  out.class_name = r.spec.class_name;
  out.owner_job = r.spec.owner_job;
  out.state = to_string(r.state);
  out.node_id = r.node_id;
  out.pid = static_cast<int32_t>(r.pid);
  out.address = r.address;
  out.restarts = r.restarts;
  out.max_restarts = r.spec.max_restarts;
  out.max_task_retries = r.spec.max_task_retries;
  out.detached = r.spec.detached;
  out.death_cause = r.death_cause;
  out.create_time_ms = r.create_time_ms;
  out.end_time_ms = r.end_time_ms;
  return out;
}

namespace {

using clock_type = std::chrono::steady_clock;
using namespace std::chrono_literals;

/// An actor sent to a node and not answered yet. `restarts` names the
/// incarnation: a reply for an earlier one is stale.
struct in_flight {
  std::string node_id;
  uint64_t seq = 0;
  int32_t restarts = 0;
  resource_map shape;
};

struct wait_entry {
  caf::typed_response_promise<std::vector<actor_info>> rp;
  std::vector<std::string> ids;
};

struct am_state_t {
  actor_manager_config cfg;
  std::shared_ptr<actor_table> table;
  std::map<std::string, node_info> nodes;
  /// Node managers looked up already (dropped when a node dies or re-joins).
  std::map<std::string, node_manager_actor> managers;
  bool have_nodes = false;
  /// PENDING_CREATION / RESTARTING actors waiting for a node.
  std::set<std::string> to_place;
  std::map<std::string, in_flight> flying;
  uint64_t next_seq = 1;
  /// After a failed hosting: not before then, and how many failed in a row.
  std::map<std::string, clock_type::time_point> not_before;
  std::map<std::string, int> host_failures;
  /// Why an actor waits for a node (shown in the log, throttled).
  std::map<std::string, std::string> unplaced;
  /// Log lines that could repeat per actor: when each kind was last written.
  std::map<std::string, clock_type::time_point> last_logged;
  std::map<uint64_t, wait_entry> waits;
  std::multimap<std::string, uint64_t> waits_by_actor;
  uint64_t next_wait = 1;
  /// Actors whose staged change may settle a wait once durable.
  std::set<std::string> changed;
  persistence::group_commit commits;
  bool refreshing = false;
  /// A placement pass is due once the current flush has run its actions.
  bool place_due = false;
  static inline const char* name = "rayd.actor.manager";
};

using am_actor_t = actor_manager_impl_actor::stateful_pointer<am_state_t>;

/// Whether a log line of `kind` may be written now: at most one per kind
/// every 5 s, so 10,000 actors waiting for the same reason write one line.
bool may_log(am_actor_t self, const std::string& kind) {
  auto now = clock_type::now();
  auto& last = self->state.last_logged[kind];
  if (last != clock_type::time_point{} && now - last < 5s)
    return false;
  last = now;
  return true;
}

bool settled(actor_state s) {
  return s == actor_state::alive || s == actor_state::dead;
}

bool wants_node(actor_state s) {
  return s == actor_state::pending_creation || s == actor_state::restarting;
}

std::string node_label(am_actor_t self, const std::string& node_id) {
  auto i = self->state.nodes.find(node_id);
  if (i == self->state.nodes.end() || i->second.name.empty())
    return node_id;
  return i->second.name + " (" + node_id + ")";
}

void then(am_actor_t self, persistence::group_commit::action f) {
  self->state.commits.then(std::move(f));
}

void note_change(am_actor_t self, const std::string& id) {
  self->state.changed.insert(id);
  self->state.commits.staged();
}

void place(am_actor_t self);

/// Queues `ids` for placement once the staged changes are durable (a node
/// must never host an actor whose row could still be discarded).
void place_after_commit(am_actor_t self, std::vector<std::string> ids) {
  if (ids.empty())
    return;
  then(self, [self, ids](const caf::error& err) {
    auto& st = self->state;
    for (auto& id : ids)
      if (auto* row = st.table->find(id); row && wants_node(row->state))
        st.to_place.insert(id);
    if (!err)
      st.place_due = true; // one pass after the commit, however many actors
  });
}

/// Runs `f` with node `node_id`'s manager, looked up through the node actor
/// once; `fail` gets the lookup's error.
template <class F, class Fail>
void with_manager(am_actor_t self, const std::string& node_id, F f, Fail fail) {
  auto& st = self->state;
  if (auto i = st.managers.find(node_id); i != st.managers.end()) {
    f(i->second);
    return;
  }
  self->request(st.cfg.nodes, 5s, atoms::lookup::value, node_id)
    .then(
      [self, node_id, f](node_manager_actor& nm) mutable {
        self->state.managers[node_id] = nm;
        f(nm);
      },
      [fail](caf::error& err) mutable { fail(err); });
}

/// Best effort: a node that is gone has dropped its actors anyway.
void unhost(am_actor_t self, const std::string& node_id, const std::string& id) {
  if (node_id.empty())
    return;
  with_manager(
    self, node_id,
    [self, id](node_manager_actor& nm) {
      self->request(nm, 10s, atoms::actor_unhost::value, id)
        .then([](bool) {},
              [id](caf::error& err) {
                spdlog::debug("actor {}: unhost failed: {}", id, describe(err));
              });
    },
    [](const caf::error&) {});
}

/// Staged a failure of `id`: RESTARTING actors go back to placement.
void fail(am_actor_t self, const std::string& id, const std::string& cause) {
  auto r = self->state.table->mark_failed(id, cause, now_ms());
  if (!r)
    return;
  note_change(self, id);
  if (r->state == actor_state::restarting) {
    spdlog::debug("actor {} RESTARTING ({} of {}): {}", id, r->restarts,
                 r->spec.max_restarts, cause);
    place_after_commit(self, {id});
  } else {
    spdlog::debug("actor {} DEAD: {}", id, r->death_cause);
  }
}

void host_failed(am_actor_t self, const std::string& id, const std::string& node_id,
                 const std::string& why) {
  auto& st = self->state;
  auto n = ++st.host_failures[id];
  auto backoff = std::min<clock_type::duration>(500ms * (1 << std::min(n - 1, 5)), 10s);
  st.not_before[id] = clock_type::now() + backoff;
  if (may_log(self, "host:" + node_id))
    spdlog::warn("node {} could not host actor {} ({} time(s) in a row; it is tried "
                 "again, on any node that fits): {}",
                 node_label(self, node_id), id, n, why);
  if (auto* row = st.table->find(id); row && wants_node(row->state))
    st.to_place.insert(id);
}

void on_hosted(am_actor_t self, const std::string& id, const std::string& node_id,
               uint64_t seq, const actor_hosted& h) {
  auto& st = self->state;
  auto f = st.flying.find(id);
  if (f == st.flying.end() || f->second.seq != seq) {
    // Its node was declared dead meanwhile and the actor went elsewhere.
    if (h.ok)
      spdlog::debug("actor {}: stale host reply from node {}", id, node_id);
    return;
  }
  auto incarnation = f->second.restarts;
  st.flying.erase(f);
  auto* row = st.table->find(id);
  if (!row || !wants_node(row->state) || row->restarts != incarnation) {
    // Killed, owner gone or restarted while it was being constructed.
    if (h.ok)
      unhost(self, node_id, id);
    if (row && wants_node(row->state))
      st.to_place.insert(id);
    place(self);
    return;
  }
  if (h.ok) {
    auto n = st.nodes.find(node_id);
    auto address = n == st.nodes.end() ? std::string{} : n->second.address;
    if (!st.table->mark_alive(id, node_id, h.pid, address))
      return;
    st.host_failures.erase(id);
    st.not_before.erase(id);
    st.unplaced.erase(id);
    note_change(self, id);
    spdlog::debug("actor {} ALIVE on node {} (pid {})", id, node_label(self, node_id), h.pid);
    then(self, [self, id](const caf::error& err) {
      // A discarded ALIVE: the row is waiting again; hosting it once more
      // gets the same pid from the node.
      if (err)
        if (auto* r = self->state.table->find(id); r && wants_node(r->state))
          self->state.to_place.insert(id);
    });
    return;
  }
  if (h.constructor_failed) {
    auto what = h.error_type.empty() ? h.error_message
                                     : h.error_type + ": " + h.error_message;
    if (st.table->mark_constructor_failed(id, what, now_ms())) {
      note_change(self, id);
      spdlog::info("actor {} DEAD: constructor threw {}", id, what);
    }
    return;
  }
  host_failed(self, id, node_id,
              h.error_message.empty() ? "unknown error" : h.error_message);
}

void host(am_actor_t self, const actor_row& row, const std::string& node_id) {
  auto& st = self->state;
  auto seq = st.next_seq++;
  auto id = row.actor_id;
  st.flying[id] = in_flight{node_id, seq, row.restarts, row.spec.resources};
  actor_launch launch{id,        row.spec.owner_job, row.spec.class_name, row.spec.args,
                      row.spec.code, row.spec.resources, row.spec.max_concurrency};
  auto timeout = st.cfg.host_timeout;
  auto failed = [self, id, node_id, seq](const caf::error& err) {
    auto& st = self->state;
    auto f = st.flying.find(id);
    if (f == st.flying.end() || f->second.seq != seq)
      return;
    st.flying.erase(f);
    host_failed(self, id, node_id, describe(err));
  };
  with_manager(
    self, node_id,
    [self, id, node_id, seq, launch, timeout, failed](node_manager_actor& nm) {
      self->request(nm, timeout, atoms::actor_host::value, launch)
        .then([self, id, node_id,
               seq](actor_hosted& h) { on_hosted(self, id, node_id, seq, h); },
              [failed](caf::error& err) { failed(err); });
    },
    failed);
}

/// One placement pass over the actors waiting for a node.
void place(am_actor_t self) {
  auto& st = self->state;
  if (!st.have_nodes || st.to_place.empty())
    return;
  std::vector<actor_node_slot> slots;
  std::map<std::string, std::size_t> index;
  for (auto& [id, n] : st.nodes) {
    index[id] = slots.size();
    slots.push_back({id, n.get_state() == node_state::alive, n.labels, n.resources_total,
                     n.resources_available, {}, 0});
  }
  for (auto* row : st.table->rows())
    if (row->state == actor_state::alive)
      if (auto i = index.find(row->node_id); i != index.end())
        ++slots[i->second].actors;
  for (auto& [_, f] : st.flying)
    if (auto i = index.find(f.node_id); i != index.end()) {
      auto& s = slots[i->second];
      ++s.actors;
      for (auto& [name, amount] : f.shape)
        s.reserved[name] += amount;
    }
  auto now = clock_type::now();
  auto waiting = st.to_place;
  for (auto& id : waiting) {
    auto* row = st.table->find(id);
    if (!row || !wants_node(row->state)) {
      st.to_place.erase(id);
      st.unplaced.erase(id);
      st.not_before.erase(id);
      st.host_failures.erase(id);
      continue;
    }
    if (st.flying.count(id))
      continue; // its reply decides
    if (auto nb = st.not_before.find(id); nb != st.not_before.end() && now < nb->second)
      continue;
    auto chosen = place_actor(row->spec.resources, row->spec.label_selector, slots);
    if (!chosen) {
      auto why = why_unplaced(row->spec.resources, row->spec.label_selector, slots);
      auto& last = st.unplaced[id];
      if (last != why && may_log(self, "unplaced:" + why))
        spdlog::info("actor {} (and maybe others) waits for a node: {}", id, why);
      last = why;
      continue;
    }
    st.to_place.erase(id);
    auto& s = slots[index[*chosen]];
    ++s.actors;
    for (auto& [name, amount] : row->spec.resources)
      s.reserved[name] += amount;
    host(self, *row, *chosen);
  }
}

/// Settled waits answer once their rows are durable.
void wake(am_actor_t self, const std::set<std::string>& ids);

std::vector<actor_info> rows_of(am_actor_t self, const std::vector<std::string>& ids) {
  std::vector<actor_info> out;
  out.reserve(ids.size());
  for (auto& id : ids) {
    if (auto* row = self->state.table->find(id)) {
      out.push_back(to_info(*row));
    } else {
      actor_info dead;
      dead.actor_id = id;
      dead.state = "DEAD";
      dead.death_cause = "no such actor";
      out.push_back(std::move(dead));
    }
  }
  return out;
}

bool all_settled(am_actor_t self, const std::vector<std::string>& ids) {
  for (auto& id : ids) {
    auto* row = self->state.table->find(id);
    if (row && !settled(row->state))
      return false;
  }
  return true;
}

void finish_wait(am_actor_t self, uint64_t wid) {
  auto& st = self->state;
  auto w = st.waits.find(wid);
  if (w == st.waits.end())
    return;
  for (auto& id : w->second.ids) {
    auto range = st.waits_by_actor.equal_range(id);
    for (auto i = range.first; i != range.second;)
      i = i->second == wid ? st.waits_by_actor.erase(i) : std::next(i);
  }
  w->second.rp.deliver(rows_of(self, w->second.ids));
  st.waits.erase(w);
}

void wake(am_actor_t self, const std::set<std::string>& ids) {
  auto& st = self->state;
  std::set<uint64_t> candidates;
  for (auto& id : ids) {
    auto range = st.waits_by_actor.equal_range(id);
    for (auto i = range.first; i != range.second; ++i)
      candidates.insert(i->second);
  }
  for (auto wid : candidates)
    if (auto w = st.waits.find(wid); w != st.waits.end() && all_settled(self, w->second.ids))
      finish_wait(self, wid);
}

/// Answers with `make()` now, or after the pending commit when changes are
/// staged (a reply never shows a change that is not durable yet).
template <class T, class Make>
caf::result<T> when_durable(am_actor_t self, Make make) {
  auto& st = self->state;
  if (!st.table->dirty() && !st.commits.scheduled())
    return make();
  auto rp = self->make_response_promise<T>();
  then(self, [rp, make](const caf::error& err) mutable {
    if (err)
      rp.deliver(err);
    else
      rp.deliver(make());
  });
  return rp;
}

void on_node(am_actor_t self, const node_info& n) {
  auto& st = self->state;
  st.nodes[n.node_id] = n;
  st.managers.erase(n.node_id); // a re-joined node has a new handle
  if (n.get_state() != node_state::alive) {
    auto why = "node " + node_label(self, n.node_id) + " died"
               + (n.death_reason.empty() ? std::string{} : ": " + n.death_reason);
    for (auto i = st.flying.begin(); i != st.flying.end();) {
      if (i->second.node_id != n.node_id) {
        ++i;
        continue;
      }
      st.to_place.insert(i->first);
      i = st.flying.erase(i);
    }
    std::vector<std::string> victims;
    for (auto* row : st.table->rows())
      if (row->state == actor_state::alive && row->node_id == n.node_id)
        victims.push_back(row->actor_id);
    for (auto& id : victims)
      fail(self, id, why);
    if (!victims.empty())
      spdlog::info("{}: {} actor(s) on it failed (restarted where restarts remain)", why,
                   victims.size());
  }
  place(self);
}

/// After the first node view: ALIVE actors on nodes the table does not know
/// (any more) fail over.
void check_orphans(am_actor_t self) {
  auto& st = self->state;
  std::vector<std::string> orphans;
  for (auto* row : st.table->rows())
    if (row->state == actor_state::alive && !st.nodes.count(row->node_id))
      orphans.push_back(row->actor_id);
  for (auto& id : orphans)
    fail(self, id, "its node " + st.table->find(id)->node_id + " is not in the cluster");
}

/// Reads the node table again: available resources for placement, and any
/// node death an event did not bring.
void refresh_nodes(am_actor_t self) {
  auto& st = self->state;
  if (st.refreshing)
    return;
  st.refreshing = true;
  self->request(st.cfg.nodes, 5s, atoms::nodes::value)
    .then(
      [self](cluster_view& view) {
        auto& st = self->state;
        st.refreshing = false;
        bool first = !st.have_nodes;
        st.have_nodes = true;
        for (auto& n : view.nodes) {
          auto old = st.nodes.find(n.node_id);
          bool was_alive = old != st.nodes.end()
                           && old->second.get_state() == node_state::alive;
          bool alive = n.get_state() == node_state::alive;
          if (first || was_alive != alive || old == st.nodes.end()) {
            on_node(self, n);
          } else {
            // Same state: only the soft fields (available resources).
            old->second = n;
          }
        }
        if (first)
          check_orphans(self);
        place(self);
      },
      [self](caf::error& err) {
        self->state.refreshing = false;
        spdlog::debug("actor manager: cannot read the node table: {}", describe(err));
      });
}

caf::result<std::vector<actor_info>> on_create(am_actor_t self,
                                               std::vector<actor_create_request>& reqs) {
  auto& st = self->state;
  if (reqs.size() > 100000)
    return make_error(errc::invalid_argument, "at most 100000 actor creates in one batch");
  // Per request: the row id to answer with, or the error.
  std::vector<std::pair<std::string, std::string>> answers;
  answers.reserve(reqs.size());
  std::vector<std::string> created;
  auto now = now_ms();
  for (auto& q : reqs) {
    auto& id = q.actor_id;
    bool id_ok = !id.empty() && id.size() <= 64
                 && std::all_of(id.begin(), id.end(), [](char c) {
                      return std::isalnum(static_cast<unsigned char>(c)) || c == '-'
                             || c == '_';
                    });
    if (!id_ok) {
      answers.emplace_back("", "invalid actor id '" + id.substr(0, 80)
                                 + "': 1 to 64 characters of [0-9A-Za-z_-]");
      continue;
    }
    if (st.table->find(id) != nullptr) {
      answers.emplace_back(id, ""); // a retry: the recorded row
      continue;
    }
    actor_spec s;
    s.name = std::move(q.name);
    s.ray_namespace = q.ray_namespace.empty() ? "default" : std::move(q.ray_namespace);
    s.class_name = std::move(q.class_name);
    s.owner_job = std::move(q.owner_job);
    s.detached = q.detached;
    s.get_if_exists = q.get_if_exists;
    s.max_restarts = q.max_restarts;
    s.max_task_retries = q.max_task_retries;
    s.max_concurrency = q.max_concurrency;
    s.resources = std::move(q.resources);
    s.label_selector = std::move(q.label_selector);
    s.args = std::move(q.args);
    s.code = std::move(q.code);
    auto r = st.table->create(id, std::move(s), now);
    if (!r) {
      answers.emplace_back("", describe(r.error()));
      continue;
    }
    answers.emplace_back(r->actor_id, "");
    if (r->actor_id == id) {
      created.push_back(id);
      st.commits.staged();
    }
  }
  if (!created.empty())
    spdlog::debug("actor manager: {} actor(s) created", created.size());
  place_after_commit(self, created);
  auto rp = self->make_response_promise<std::vector<actor_info>>();
  then(self, [self, rp, answers](const caf::error& err) mutable {
    if (err) {
      rp.deliver(err);
      return;
    }
    std::vector<actor_info> out;
    out.reserve(answers.size());
    for (auto& [id, error] : answers) {
      if (!error.empty()) {
        actor_info failed;
        failed.error = error;
        out.push_back(std::move(failed));
      } else if (auto* row = self->state.table->find(id)) {
        out.push_back(to_info(*row));
      } else {
        actor_info failed;
        failed.error = "actor " + id + " vanished before its create was durable";
        out.push_back(std::move(failed));
      }
    }
    rp.deliver(std::move(out));
  });
  return rp;
}

const actor_row* find_by_id_or_name(am_actor_t self, const std::string& id_or_name,
                                    const std::string& ns) {
  auto& t = *self->state.table;
  if (auto* row = t.find(id_or_name))
    return row;
  return t.find_named(ns.empty() ? "default" : ns, id_or_name);
}

caf::result<actor_info> on_kill(am_actor_t self, const std::string& id_or_name,
                                const std::string& ns, bool no_restart,
                                const std::string& by) {
  auto& st = self->state;
  auto* row = find_by_id_or_name(self, id_or_name, ns);
  if (!row)
    return make_error(errc::not_found, "no actor with id or live name '" + id_or_name
                                         + "' in namespace '"
                                         + (ns.empty() ? "default" : ns) + "'");
  auto id = row->actor_id;
  auto prev = *row;
  if (prev.state != actor_state::dead) {
    auto who = by.empty() ? std::string{"an unnamed caller"} : by;
    auto r = st.table->kill(id, who, no_restart, now_ms());
    if (!r)
      return r.error();
    note_change(self, id);
    if (prev.state == actor_state::alive)
      unhost(self, prev.node_id, id);
    spdlog::info("actor {} killed by {} ({}): now {}", id, who,
                 no_restart ? "no restart" : "restart allowed", to_string(r->state));
    if (r->state == actor_state::restarting)
      place_after_commit(self, {id});
  }
  return when_durable<actor_info>(self, [self, id] {
    auto* r = self->state.table->find(id);
    return r ? to_info(*r) : actor_info{};
  });
}

void on_tick(am_actor_t self) {
  auto& st = self->state;
  if (!st.to_place.empty() || !st.have_nodes)
    refresh_nodes(self); // places once the view is in
}

actor_manager_impl_actor::behavior_type am_behavior(am_actor_t self) {
  auto& st = self->state;
  self->send(st.cfg.nodes, atoms::subscribe::value,
             caf::actor_cast<node_listener_actor>(self));
  std::vector<std::string> on_head;
  for (auto* row : st.table->rows()) {
    if (wants_node(row->state))
      st.to_place.insert(row->actor_id);
    else if (row->state == actor_state::alive && !st.cfg.head_node_id.empty()
             && row->node_id == st.cfg.head_node_id)
      on_head.push_back(row->actor_id);
  }
  for (auto& id : on_head)
    fail(self, id,
         "the head node restarted: its worker process ended with the previous head process");
  if (!on_head.empty())
    spdlog::info("{} actor(s) ran on the head node before it restarted: failed over",
                 on_head.size());
  if (!st.to_place.empty())
    spdlog::info("recovered actors: {} waiting for a node", st.to_place.size());
  refresh_nodes(self);
  self->delayed_send(self, st.cfg.tick_interval, atoms::tick::value);
  return {
    [self](atoms::actor_create, std::vector<actor_create_request>& reqs) {
      return on_create(self, reqs);
    },
    [self](atoms::actor_wait, std::vector<std::string>& ids,
           uint32_t timeout_ms) -> caf::result<std::vector<actor_info>> {
      auto& st = self->state;
      if (ids.size() > 100000)
        return make_error(errc::invalid_argument, "at most 100000 actor ids in one wait");
      if (all_settled(self, ids) || timeout_ms == 0)
        return when_durable<std::vector<actor_info>>(self,
                                                     [self, ids] { return rows_of(self, ids); });
      auto rp = self->make_response_promise<std::vector<actor_info>>();
      auto wid = st.next_wait++;
      for (auto& id : ids)
        st.waits_by_actor.emplace(id, wid);
      st.waits.emplace(wid, wait_entry{rp, std::move(ids)});
      auto ms = std::min<uint32_t>(timeout_ms, 10000);
      self->delayed_send(self, std::chrono::milliseconds{ms}, atoms::expire::value, wid);
      return rp;
    },
    [self](atoms::expire, uint64_t wid) {
      // Answer with the rows as they are; staged changes first become durable.
      if (self->state.table->dirty() || self->state.commits.scheduled())
        then(self, [self, wid](const caf::error&) { finish_wait(self, wid); });
      else
        finish_wait(self, wid);
    },
    [self](atoms::actor_get, std::string& name,
           std::string& ns) -> caf::result<actor_info> {
      if (ns.empty())
        ns = "default";
      if (!self->state.table->find_named(ns, name))
        return make_error(errc::not_found, "no actor named '" + name + "' in namespace '"
                                             + ns + "'");
      auto rp = self->make_response_promise<actor_info>();
      auto answer = [self, rp, name, ns]() mutable {
        if (auto* row = self->state.table->find_named(ns, name))
          rp.deliver(to_info(*row));
        else
          rp.deliver(make_error(errc::not_found, "no actor named '" + name
                                                   + "' in namespace '" + ns + "'"));
      };
      if (self->state.table->dirty() || self->state.commits.scheduled())
        then(self, [answer, rp](const caf::error& err) mutable {
          if (err)
            rp.deliver(err);
          else
            answer();
        });
      else
        answer();
      return rp;
    },
    [self](atoms::actor_list) {
      return when_durable<std::vector<actor_info>>(self, [self] {
        std::vector<actor_info> out;
        for (auto* row : self->state.table->rows())
          out.push_back(to_info(*row));
        return out;
      });
    },
    [self](atoms::actor_kill, std::string& id_or_name, std::string& ns, bool no_restart,
           std::string& by) { return on_kill(self, id_or_name, ns, no_restart, by); },
    [self](atoms::actor_exited, std::string& id, std::string& node_id, int32_t pid,
           std::string& cause) {
      auto* row = self->state.table->find(id);
      if (!row || row->state != actor_state::alive || row->node_id != node_id
          || row->pid != pid) {
        spdlog::debug("actor {}: ignored exit report from node {} pid {} (not its "
                      "current incarnation)",
                      id, node_id, pid);
        return;
      }
      spdlog::info("actor {}: its process {} on node {} ended: {}", id, pid, node_id, cause);
      fail(self, id, cause.empty() ? "its process " + std::to_string(pid) + " ended" : cause);
    },
    [self](atoms::job_gone, std::string& job_id) {
      auto gone = self->state.table->owner_gone(job_id, now_ms());
      for (auto& r : gone) {
        note_change(self, r.actor_id);
        if (r.pid != 0)
          unhost(self, r.node_id, r.actor_id);
      }
      if (!gone.empty())
        spdlog::info("job {} is gone: {} of its actor(s) DEAD", job_id, gone.size());
    },
    [self](atoms::node_event, node_info& n) { on_node(self, n); },
    [self](atoms::demand) {
      auto& st = self->state;
      demand_report out;
      for (auto& [id, _] : st.unplaced)
        if (auto* row = st.table->find(id); row != nullptr && wants_node(row->state))
          add_demand(out.demands,
                     {row->spec.resources, row->spec.label_selector, 1, "actor"});
      for (auto* row : st.table->rows())
        if (row->state == actor_state::alive)
          ++out.per_node[row->node_id];
      return out;
    },
    [self](atoms::tick) {
      on_tick(self);
      place(self);
      self->delayed_send(self, self->state.cfg.tick_interval, atoms::tick::value);
    },
    [self](atoms::flush) {
      auto& st = self->state;
      auto changed = std::move(st.changed);
      st.changed.clear();
      auto err = st.commits.flush([&st] { return st.table->commit(); });
      if (err) {
        // The staged rows are gone: what waits for a node is read again.
        for (auto* row : st.table->rows())
          if (wants_node(row->state))
            st.to_place.insert(row->actor_id);
        return;
      }
      wake(self, changed);
      if (st.place_due) {
        st.place_due = false;
        place(self);
      }
    },
  };
}

} // namespace

caf::expected<actor_manager_actor> spawn_actor_manager(caf::actor_system& sys,
                                                       actor_manager_config cfg) {
  auto table = std::make_shared<actor_table>(*cfg.db);
  if (auto err = table->load())
    return err;
  actor_manager_impl_actor impl = sys.spawn(
    [cfg, table](am_actor_t self) -> actor_manager_impl_actor::behavior_type {
      self->state.cfg = cfg;
      self->state.table = table;
      self->state.commits = persistence::group_commit{
        "actor table", [self] { self->send(self, atoms::flush::value); }};
      return am_behavior(self);
    });
  return actor_manager_actor{impl};
}

} // namespace rayd::gcs
