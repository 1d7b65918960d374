// The job manager (head): admission, placement, the job table, and every
// path by which a job ends. See job_types.hpp for the state diagram and
// docs/jobs.md for the reasons a job can end with.
//
// Durability: every change is staged in the job table and committed in one
// batch per mailbox round (persistence/group_commit.hpp). Whatever must only
// happen once a change is durable — answering the client, starting the
// entrypoint on a node, telling the log store a job exists, ended or was
// deleted — is queued with then() and runs after that commit. Reads made
// while changes are staged are answered after the commit too. A failed
// commit discards the staged rows (persistence/table.hpp): every waiting
// action gets the error and reconcile() re-derives the queue from the rows.

#include <algorithm>
#include <functional>
#include <map>
#include <set>

#include <caf/all.hpp>
#include <spdlog/spdlog.h>

#include "actors/gcs/job_placement.hpp"
#include "actors/gcs/job_manager_actor.hpp"
#include "actors/gcs/node_actor.hpp"
#include "actors/gcs/spawn.hpp"
#include "common/error.hpp"
#include "persistence/group_commit.hpp"

namespace rayd::gcs {

namespace {

using clock_type = std::chrono::steady_clock;
using namespace std::chrono_literals;

struct waiter {
  caf::typed_response_promise<job_info> rp;
  std::string id;
  clock_type::time_point deadline;
};

struct jm_state_t {
  job_manager_config cfg;
  std::shared_ptr<job_table> table;
  std::map<std::string, node_capacity> nodes;
  bool have_nodes = false;
  /// PENDING jobs not yet placed, in admission order.
  std::set<std::pair<uint64_t, std::string>> queue;
  /// Why each queued job waits (kept in memory; shown as its message).
  std::map<std::string, std::string> pending_reason;
  /// Node types the autoscaler may still launch (feasibility only).
  std::vector<launchable_type> launchable;
  std::vector<waiter> waiters;
  /// After a head restart: jobs placed on workers, until they report again.
  std::map<std::string, clock_type::time_point> awaiting_report;
  persistence::group_commit commits;
  /// Set after a failed commit: the next tick redoes what the discarded
  /// changes did (admission, jobs on dead nodes); not at once, so a failing
  /// disk is not retried in a tight loop.
  bool resync_due = false;
  bool retention_due = true;
  clock_type::time_point last_retention = clock_type::now();
  static inline const char* name = "rayd.job.manager";
};

using jm_actor_t = job_manager_actor::stateful_pointer<jm_state_t>;

void admit(jm_actor_t self);
void resync(jm_actor_t self);

std::string node_label(jm_actor_t self, const std::string& node_id) {
  auto i = self->state.nodes.find(node_id);
  if (i == self->state.nodes.end() || i->second.name.empty())
    return node_id;
  return i->second.name + " (" + node_id + ")";
}

/// The row as clients see it: with queue position and pending reason.
job_info info_of(jm_actor_t self, const job_info& row) {
  auto out = row;
  auto& st = self->state;
  if (row.state == job_state::pending && row.node_id.empty()) {
    uint64_t pos = 1;
    for (auto& [seq, id] : st.queue) {
      if (id == row.spec.submission_id)
        break;
      ++pos;
    }
    out.queue_position = pos;
    if (auto r = st.pending_reason.find(row.spec.submission_id);
        r != st.pending_reason.end())
      out.message = r->second + " (position " + std::to_string(pos)
                    + " in the queue)";
  }
  return out;
}

void stage(jm_actor_t self, const job_info& row) {
  self->state.table->stage(row);
  self->state.commits.staged();
}

/// Runs `f` after the commit that holds every change staged so far.
void then(jm_actor_t self, persistence::group_commit::action f) {
  self->state.commits.then(std::move(f));
}

/// Answers `rp` with the job's row once the staged changes are durable.
template <class Promise>
void reply_after_commit(jm_actor_t self, Promise rp, std::string id) {
  then(self, [self, rp, id](const caf::error& err) mutable {
    if (err) {
      rp.deliver(err);
      return;
    }
    if (auto* row = self->state.table->find(id))
      rp.deliver(info_of(self, *row));
    else
      rp.deliver(make_error(errc::not_found, "no job with submission id " + id));
  });
}

/// Answers `rp` with the job's row: now, or after the commit when changes
/// are staged (the row may hold one that is not durable yet).
template <class Promise>
void reply_row(jm_actor_t self, Promise rp, const std::string& id) {
  if (self->state.table->dirty()) {
    reply_after_commit(self, rp, id);
    return;
  }
  if (auto* row = self->state.table->find(id))
    rp.deliver(info_of(self, *row));
  else
    rp.deliver(make_error(errc::not_found, "job " + id + " was deleted"));
}

void wake_waiters(jm_actor_t self, const std::string& id);

/// Answers true once the staged changes are durable (or the error).
caf::result<bool> true_after_commit(jm_actor_t self) {
  auto rp = self->make_response_promise<bool>();
  then(self, [rp](const caf::error& err) mutable {
    if (err)
      rp.deliver(err);
    else
      rp.deliver(true);
  });
  return rp;
}

/// Deletes an ended job (staged) and, once that is durable, its log.
void erase_job(jm_actor_t self, const std::string& id) {
  self->state.table->stage_erase(id);
  then(self, [self, id](const caf::error& err) {
    if (err)
      return;
    self->send(self->state.cfg.logs, atoms::log_drop::value, id);
    wake_waiters(self, id);
  });
}

void wake_waiters(jm_actor_t self, const std::string& id) {
  auto& st = self->state;
  auto* row = st.table->find(id);
  std::vector<waiter> keep;
  for (auto& w : st.waiters) {
    if (w.id != id) {
      keep.push_back(std::move(w));
      continue;
    }
    if (row)
      w.rp.deliver(info_of(self, *row));
    else
      w.rp.deliver(make_error(errc::not_found, "job " + id + " was deleted"));
  }
  st.waiters = std::move(keep);
}

/// Moves a job to a terminal state. Followers and waiters hear of it once it
/// is durable; freed resources admit the next queued jobs.
void finish(jm_actor_t self, job_info row, job_state state, std::string message) {
  auto& st = self->state;
  auto id = row.spec.submission_id;
  row.state = state;
  row.message = std::move(message);
  row.end_time_ms = now_ms();
  st.queue.erase({row.seq, id});
  st.pending_reason.erase(id);
  st.awaiting_report.erase(id);
  st.retention_due = true;
  spdlog::info("job {} {}: {}", id, to_string(state), row.message);
  stage(self, row);
  then(self, [self, id](const caf::error& err) {
    if (err)
      return;
    self->send(self->state.cfg.logs, atoms::log_close::value, id);
    wake_waiters(self, id);
  });
  if (!row.node_id.empty())
    admit(self);
}

/// Ends a job whose node is gone (or whose report never came back).
void lose(jm_actor_t self, const job_info& row, const std::string& why) {
  if (row.stop_requested)
    finish(self, row, job_state::stopped, "stopped on request; " + why);
  else
    finish(self, row, job_state::failed, why);
}

void on_dispatch_failed(jm_actor_t self, const std::string& id,
                        const std::string& node_id, const caf::error& err) {
  auto& st = self->state;
  auto* row = st.table->find(id);
  if (!row || is_terminal(row->state) || row->node_id != node_id
      || row->state != job_state::pending)
    return;
  if (code_of(err) == errc::not_found) {
    // The node left before it got the job: nothing ran, so queue it again.
    auto again = *row;
    again.node_id.clear();
    again.node_name.clear();
    again.message.clear();
    st.queue.emplace(again.seq, id);
    stage(self, again);
    admit(self);
    return;
  }
  finish(self, *row, job_state::failed,
         "could not start the entrypoint on node " + node_label(self, node_id)
           + ": " + describe(err));
}

/// Hands a placed job to its node (after the placement is durable).
void dispatch(jm_actor_t self, const std::string& id) {
  auto& st = self->state;
  auto* row = st.table->find(id);
  if (!row || is_terminal(row->state) || row->node_id.empty())
    return;
  job_launch launch{id, row->spec.entrypoint, row->spec.env_vars,
                    row->spec.working_dir, st.cfg.stop_grace_ms};
  auto node_id = row->node_id;
  self->request(st.cfg.nodes, 5s, atoms::lookup::value, node_id)
    .then(
      [self, id, node_id, launch](node_manager_actor& nm) {
        self->request(nm, 10s, atoms::job_start::value, launch)
          .then([](bool) {},
                [self, id, node_id](caf::error& err) {
                  on_dispatch_failed(self, id, node_id, err);
                });
      },
      [self, id, node_id](caf::error& err) {
        on_dispatch_failed(self, id, node_id, err);
      });
}

/// Asks the node running a job to stop it (best effort: a node that is gone
/// ends the job through the node-death path).
void send_stop(jm_actor_t self, const std::string& id, const std::string& node_id) {
  auto grace = self->state.cfg.stop_grace_ms;
  self->request(self->state.cfg.nodes, 5s, atoms::lookup::value, node_id)
    .then(
      [self, id, grace](node_manager_actor& nm) {
        self->request(nm, 10s, atoms::job_stop::value, id, grace)
          .then([](bool) {},
                [id](caf::error& err) {
                  spdlog::warn("could not stop job {}: {}", id, describe(err));
                });
      },
      [](caf::error&) {});
}

std::vector<node_capacity> capacities(jm_actor_t self) {
  auto& st = self->state;
  std::map<std::string, node_capacity> caps = st.nodes;
  for (auto& [_, c] : caps)
    c.reserved.clear();
  for (auto* row : st.table->by_seq()) {
    if (is_terminal(row->state) || row->node_id.empty())
      continue;
    auto i = caps.find(row->node_id);
    if (i == caps.end())
      continue;
    for (auto& [name, amount] : row->spec.resources)
      i->second.reserved[name] += amount;
  }
  std::vector<node_capacity> out;
  for (auto& [_, c] : caps)
    out.push_back(std::move(c));
  for (auto& t : st.launchable) {
    node_capacity c;
    c.node_id = "type:" + t.name;
    c.total = t.resources;
    c.launchable = true;
    out.push_back(std::move(c));
  }
  return out;
}

bool wants_nothing(const resource_map& shape) {
  return std::all_of(shape.begin(), shape.end(),
                     [](auto& kv) { return kv.second <= 0; });
}

/// One admission pass over the queue, in FIFO order. A job that asks for
/// resources which are busy blocks the jobs behind it (strict FIFO); jobs
/// asking for nothing never wait.
void admit(jm_actor_t self) {
  auto& st = self->state;
  if (!st.have_nodes || st.queue.empty())
    return;
  auto caps = capacities(self);
  bool blocked = false;
  auto queue = st.queue; // finish() and placement modify st.queue
  for (auto& [seq, id] : queue) {
    auto* found = st.table->find(id);
    if (!found) {
      st.queue.erase({seq, id});
      continue;
    }
    auto row = *found;
    bool zero = wants_nothing(row.spec.resources);
    auto p = place_entrypoint(row.spec.resources, caps);
    // Infeasible fails at once, even behind a blocked queue: waiting could
    // not make it fit.
    if (p.kind == placement::infeasible) {
      finish(self, row, job_state::failed, p.reason);
      continue;
    }
    if (blocked && !zero) {
      st.pending_reason[id] = "queued behind earlier jobs that wait for resources";
      continue;
    }
    if (p.kind == placement::busy) {
      st.pending_reason[id] = p.reason;
      if (!zero)
        blocked = true;
      continue;
    }
    st.queue.erase({seq, id});
    st.pending_reason.erase(id);
    for (auto& c : caps)
      if (c.node_id == p.node_id)
        for (auto& [name, amount] : row.spec.resources)
          c.reserved[name] += amount;
    row.node_id = p.node_id;
    row.node_name = st.nodes[p.node_id].name;
    row.message = "starting on node " + node_label(self, p.node_id);
    stage(self, row);
    then(self, [self, id](const caf::error& err) {
      if (!err)
        dispatch(self, id);
    });
  }
}

void on_node(jm_actor_t self, const node_info& n) {
  auto& st = self->state;
  auto& c = st.nodes[n.node_id];
  c.node_id = n.node_id;
  c.name = n.name;
  c.is_head = n.is_head;
  c.alive = n.get_state() == node_state::alive;
  c.total = n.resources_total;
  if (!c.alive) {
    auto why = "node " + node_label(self, n.node_id) + " died: "
               + (n.death_reason.empty() ? "unknown reason" : n.death_reason);
    for (auto* row : st.table->by_seq())
      if (!is_terminal(row->state) && row->node_id == n.node_id)
        lose(self, *row, why);
  }
  admit(self);
}

job_state final_state(const job_info& row, const job_report& r,
                      std::string& message) {
  if (row.stop_requested || r.stopped) {
    message = "stopped on request";
    if (r.kind == job_report::exited && r.exit_signal != 0)
      message += " (the entrypoint ended by signal "
                 + std::to_string(r.exit_signal) + ")";
    return job_state::stopped;
  }
  if (r.kind == job_report::failed) {
    message = r.message;
    return job_state::failed;
  }
  if (r.exit_signal != 0) {
    message = "the entrypoint was killed by signal " + std::to_string(r.exit_signal)
              + " (" + strsignal(r.exit_signal) + ")";
    return job_state::failed;
  }
  message = "the entrypoint exited with code " + std::to_string(r.exit_code);
  return r.exit_code == 0 ? job_state::succeeded : job_state::failed;
}

caf::result<bool> on_report(jm_actor_t self, job_report& r) {
  auto& st = self->state;
  auto* found = st.table->find(r.submission_id);
  if (!found || is_terminal(found->state))
    return false;
  if (found->node_id != r.node_id) {
    spdlog::warn("ignored a report of job {} from node {}: it is placed on {}",
                 r.submission_id, r.node_id, found->node_id);
    return false;
  }
  st.awaiting_report.erase(r.submission_id);
  auto row = *found;
  if (r.kind == job_report::running) {
    if (row.state == job_state::running && row.pid == r.pid)
      return true; // a re-report after a head restart: nothing changed
    row.state = job_state::running;
    row.pid = r.pid;
    if (row.start_time_ms == 0)
      row.start_time_ms = now_ms();
    row.message = "running on node " + node_label(self, r.node_id) + " (pid "
                  + std::to_string(r.pid) + ")";
    spdlog::info("job {} RUNNING on node {} (pid {})", r.submission_id,
                 r.node_id, r.pid);
    stage(self, row);
  } else {
    row.exit_code = r.exit_code;
    row.exit_signal = r.exit_signal;
    if (r.pid != 0)
      row.pid = r.pid;
    std::string message;
    auto state = final_state(row, r, message);
    finish(self, row, state, std::move(message));
  }
  return true_after_commit(self);
}

void run_retention(jm_actor_t self) {
  auto& st = self->state;
  st.retention_due = false;
  st.last_retention = clock_type::now();
  auto victims = st.table->retention_victims(st.cfg.retention, now_ms());
  for (auto& id : victims)
    erase_job(self, id);
  if (!victims.empty())
    spdlog::info("retention: deleted {} finished job(s) and their logs",
                 victims.size());
}

void on_tick(jm_actor_t self) {
  auto& st = self->state;
  auto now = clock_type::now();
  // Waits that ran out answer with the current state.
  std::vector<waiter> keep;
  for (auto& w : st.waiters) {
    if (now < w.deadline) {
      keep.push_back(std::move(w));
      continue;
    }
    reply_row(self, w.rp, w.id);
  }
  st.waiters = std::move(keep);
  if (st.resync_due) {
    st.resync_due = false;
    resync(self);
  }
  // Pending too long.
  auto limit_ms = std::chrono::duration_cast<std::chrono::milliseconds>(
                    st.cfg.pending_timeout)
                    .count();
  auto wall = now_ms();
  for (auto* row : st.table->by_seq()) {
    if (row->state != job_state::pending || wall - row->submit_time_ms <= limit_ms)
      continue;
    auto copy = *row;
    std::string why = copy.node_id.empty()
                        ? (st.pending_reason.count(copy.spec.submission_id)
                             ? st.pending_reason[copy.spec.submission_id]
                             : std::string{"not admitted"})
                        : "its runtime environment was still being set up on node "
                            + node_label(self, copy.node_id);
    if (!copy.node_id.empty())
      send_stop(self, copy.spec.submission_id, copy.node_id);
    finish(self, copy, job_state::failed,
           "pending for more than " + std::to_string(limit_ms / 1000)
             + " s (the pending timeout): " + why);
  }
  // Jobs that were running when the head restarted and never reported again.
  auto awaiting = st.awaiting_report;
  for (auto& [id, deadline] : awaiting) {
    if (now < deadline)
      continue;
    if (auto* row = st.table->find(id); row && !is_terminal(row->state))
      lose(self, *row,
           "lost: node " + node_label(self, row->node_id)
             + " did not report the job again after the head restarted");
    st.awaiting_report.erase(id);
  }
  // Ended jobs age out without any event: check at least every 60 s, and as
  // often as the age bound when that is shorter.
  auto period = std::chrono::duration_cast<clock_type::duration>(60s);
  if (st.cfg.retention.max_age_ms > 0)
    period = std::min(period, std::chrono::duration_cast<clock_type::duration>(
                                std::chrono::milliseconds{st.cfg.retention.max_age_ms}));
  if (st.retention_due || now - st.last_retention >= period)
    run_retention(self);
}

/// After a head restart: every job that was not over is accounted for.
void recover(jm_actor_t self) {
  auto& st = self->state;
  auto deadline = clock_type::now() + st.cfg.reattach_timeout;
  for (auto* row : st.table->by_seq()) {
    if (is_terminal(row->state))
      continue;
    auto id = row->spec.submission_id;
    if (row->node_id.empty()) {
      st.queue.emplace(row->seq, id);
    } else if (row->node_id == st.cfg.head_node_id) {
      lose(self, *row,
           "the head node restarted: the entrypoint ran on it and ended with "
           "the previous head process");
    } else {
      st.awaiting_report[id] = deadline;
    }
  }
  if (!st.queue.empty() || !st.awaiting_report.empty())
    spdlog::info("recovered jobs: {} queued, {} awaiting their node's report",
                 st.queue.size(), st.awaiting_report.size());
}

/// After a failed commit the rows are again what is on disk (the staged
/// changes were discarded): re-derive the admission queue from them and drop
/// what no longer applies. The next tick redoes the rest (resync).
void reconcile(jm_actor_t self) {
  auto& st = self->state;
  st.queue.clear();
  std::set<std::string> queued;
  for (auto* row : st.table->by_seq()) {
    if (row->state == job_state::pending && row->node_id.empty()) {
      st.queue.emplace(row->seq, row->spec.submission_id);
      queued.insert(row->spec.submission_id);
    }
  }
  for (auto i = st.pending_reason.begin(); i != st.pending_reason.end();)
    i = queued.count(i->first) ? std::next(i) : st.pending_reason.erase(i);
  for (auto i = st.awaiting_report.begin(); i != st.awaiting_report.end();) {
    auto* row = st.table->find(i->first);
    bool placed = row && !is_terminal(row->state) && !row->node_id.empty();
    i = placed ? std::next(i) : st.awaiting_report.erase(i);
  }
  st.resync_due = true;
}

/// Redoes, from the rows, what a discarded commit had done: jobs on nodes
/// that died end again, and the queue gets an admission pass.
void resync(jm_actor_t self) {
  auto& st = self->state;
  for (auto* row : st.table->by_seq()) {
    if (is_terminal(row->state) || row->node_id.empty())
      continue;
    auto n = st.nodes.find(row->node_id);
    if (n != st.nodes.end() && !n->second.alive)
      lose(self, *row, "node " + node_label(self, row->node_id) + " died");
  }
  admit(self);
}

job_manager_actor::behavior_type jm_behavior(jm_actor_t self) {
  auto& st = self->state;
  self->send(st.cfg.nodes, atoms::subscribe::value,
             caf::actor_cast<node_listener_actor>(self));
  self->request(st.cfg.nodes, caf::infinite, atoms::nodes::value)
    .then([self](cluster_view& view) {
      self->state.have_nodes = true;
      for (auto& n : view.nodes)
        on_node(self, n);
      admit(self);
    });
  recover(self);
  self->delayed_send(self, st.cfg.tick_interval, atoms::tick::value);
  return {
    [self](atoms::job_submit, job_submission& s) -> caf::result<job_info> {
      auto& st = self->state;
      if (auto err = check_submission(s))
        return err;
      if (auto* old = st.table->find(s.submission_id))
        return make_error(errc::already_exists,
                          "a job with submission id " + s.submission_id
                            + " exists already (" + to_string(old->state)
                            + "); submission ids are unique");
      job_info row;
      row.spec = std::move(s);
      row.submit_time_ms = now_ms();
      row.seq = st.table->next_seq();
      auto id = row.spec.submission_id;
      spdlog::info("job {} submitted: {}", id, row.spec.entrypoint);
      stage(self, row);
      // Before anything admit() queues: the log store must know the job
      // before it hears that the job ended.
      then(self, [self, id](const caf::error& err) {
        if (!err)
          self->send(self->state.cfg.logs, atoms::log_open::value, id);
      });
      st.queue.emplace(row.seq, id);
      st.pending_reason[id] = st.have_nodes ? "waiting for admission"
                                            : "waiting for the node list";
      admit(self);
      auto rp = self->make_response_promise<job_info>();
      reply_after_commit(self, rp, id);
      return rp;
    },
    [self](atoms::job_get, std::string& id, int64_t wait_ms) -> caf::result<job_info> {
      auto& st = self->state;
      auto* row = st.table->find(id);
      if (!row)
        return make_error(errc::not_found, "no job with submission id " + id);
      auto rp = self->make_response_promise<job_info>();
      if (wait_ms <= 0 || is_terminal(row->state)) {
        reply_row(self, rp, id);
        return rp;
      }
      st.waiters.push_back(
        {rp, id, clock_type::now() + std::chrono::milliseconds{wait_ms}});
      return rp;
    },
    [self](atoms::job_list) -> caf::result<std::vector<job_info>> {
      auto list = [self] {
        std::vector<job_info> out;
        for (auto* row : self->state.table->by_seq())
          out.push_back(info_of(self, *row));
        return out;
      };
      if (!self->state.table->dirty())
        return list();
      auto rp = self->make_response_promise<std::vector<job_info>>();
      then(self, [rp, list](const caf::error& err) mutable {
        if (err)
          rp.deliver(err);
        else
          rp.deliver(list());
      });
      return rp;
    },
    [self](atoms::job_stop, std::string& id) -> caf::result<job_info> {
      auto& st = self->state;
      auto* found = st.table->find(id);
      if (!found)
        return make_error(errc::not_found, "no job with submission id " + id);
      auto rp = self->make_response_promise<job_info>();
      if (is_terminal(found->state)) {
        reply_row(self, rp, id);
        return rp;
      }
      auto row = *found;
      if (row.node_id.empty()) {
        finish(self, row, job_state::stopped, "stopped before it started");
      } else if (!row.stop_requested) {
        row.stop_requested = true;
        row.message = "stopping (SIGTERM, then SIGKILL after "
                      + std::to_string(st.cfg.stop_grace_ms) + " ms)";
        stage(self, row);
        auto node_id = row.node_id;
        then(self, [self, id, node_id](const caf::error& err) {
          if (!err)
            send_stop(self, id, node_id);
        });
      }
      reply_after_commit(self, rp, id);
      return rp;
    },
    [self](atoms::job_delete, std::string& id) -> caf::result<bool> {
      auto& st = self->state;
      auto* row = st.table->find(id);
      if (!row)
        return make_error(errc::not_found, "no job with submission id " + id);
      if (!is_terminal(row->state))
        return make_error(errc::invalid_argument,
                          "job " + id + " is " + to_string(row->state)
                            + ": only ended jobs can be deleted (stop it first)");
      erase_job(self, id);
      return true_after_commit(self);
    },
    [self](atoms::job_report, job_report& r) { return on_report(self, r); },
    [self](atoms::node_event, node_info& n) { on_node(self, n); },
    [self](atoms::demand) {
      auto& st = self->state;
      demand_report out;
      for (auto& [_, id] : st.queue)
        if (auto* row = st.table->find(id); row != nullptr && !wants_nothing(row->spec.resources))
          add_demand(out.demands, {row->spec.resources, {}, 1, "job"});
      for (auto* row : st.table->by_seq())
        if (!is_terminal(row->state) && !row->node_id.empty())
          ++out.per_node[row->node_id];
      return out;
    },
    [self](atoms::set_launchable, std::vector<launchable_type>& types) {
      self->state.launchable = std::move(types);
      admit(self);
    },
    [self](atoms::tick) {
      on_tick(self);
      self->delayed_send(self, self->state.cfg.tick_interval, atoms::tick::value);
    },
    [self](atoms::flush) {
      auto& st = self->state;
      if (st.commits.flush([&st] { return st.table->commit(); }))
        reconcile(self);
    },
  };
}

} // namespace

caf::expected<job_manager_actor> spawn_job_manager(caf::actor_system& sys,
                                                   job_manager_config cfg) {
  auto table = std::make_shared<job_table>(*cfg.db);
  if (auto err = table->load())
    return err;
  // The log store learns of every existing job before this returns, so
  // before the API (started later) can ask it for a job's log.
  for (auto* row : table->by_seq()) {
    if (is_terminal(row->state))
      caf::anon_send(cfg.logs, atoms::log_close::value, row->spec.submission_id);
    else
      caf::anon_send(cfg.logs, atoms::log_open::value, row->spec.submission_id);
  }
  return sys.spawn([cfg, table](jm_actor_t self) -> job_manager_actor::behavior_type {
    self->state.cfg = cfg;
    self->state.table = table;
    self->state.commits = persistence::group_commit{
      "job table", [self] { self->send(self, atoms::flush::value); }};
    return jm_behavior(self);
  });
}

} // namespace rayd::gcs
