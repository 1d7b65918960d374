// See actor_caller.hpp.

#include "actor_caller.hpp"

#include <unistd.h>

#include <limits>
#include <map>

namespace rayd::core {

actor_caller::~actor_caller() {
  for (auto& [_, c] : calls_.conns())
    ::close(c.fd);
}

void actor_caller::call(const actor_id& actor, uint64_t seq) {
  bool created = false;
  auto& a = calls_.get(actor, created);
  a.queue.push_back(seq);
  pump(a);
}

void actor_caller::creating(const actor_id& id) {
  bool created = false;
  auto& a = calls_.get(id, created);
  if (created)
    a.st = actor_calls::state::creating;
}

void actor_caller::ready(const actor_id& actor) {
  if (auto* a = calls_.find(actor))
    pump(*a);
}

void actor_caller::watches(std::vector<node_link::watch>& out, uint64_t tag) const {
  for (auto& [id, c] : const_cast<actor_calls&>(calls_).conns())
    out.push_back({c.fd, !c.out.empty(), id | tag});
}

void actor_caller::on_event(uint64_t cid, bool in, bool out) {
  auto* c = calls_.find_conn(cid);
  if (c == nullptr)
    return;
  if (out)
    flush_conn(*c);
  if (in && !read_conn(cid))
    conn_lost(cid, "connection to the actor's process lost");
}

void actor_caller::housekeeping(clock_type::time_point now) {
  check_slow_calls(now);
  if (retry_wanted_.empty()) {
    retry_wanted_at_ = {};
    return;
  }
  if (retry_wanted_at_ == clock_type::time_point{}) {
    retry_wanted_at_ = now + std::chrono::milliseconds{50};
    return;
  }
  if (now < retry_wanted_at_)
    return;
  auto ids = std::move(retry_wanted_);
  retry_wanted_.clear();
  retry_wanted_at_ = {};
  for (auto& id : ids)
    if (auto* a = calls_.find(id)) {
      a->wanted = false;
      want_actor(id);
    }
}

/// Asks the GCS where actor `id` is, once at a time. REQUIRES: mtx_ held.
void actor_caller::want_actor(const actor_id& id) {
  bool created = false;
  auto& a = calls_.get(id, created);
  if (a.st == actor_calls::state::resolving && !a.wanted) {
    a.wanted = true;
    host_.want(id);
  }
}

/// Fails an actor call that has not been sent (or cannot be again).
void actor_caller::fail_call(uint64_t seq, const std::string& why, const std::string& node) {
  host_.fail_task(seq, "rayd::actor_died", why, node);
}

/// Sends the actor's queued calls while the first is ready and its
/// process's socket is attached; resolves or connects when needed.
/// REQUIRES: mtx_ held.
void actor_caller::pump(actor_calls::actor& a) {
  if (a.st == actor_calls::state::dead) {
    auto queue = std::move(a.queue);
    a.queue.clear();
    for (auto seq : queue)
      fail_call(seq, "actor " + a.id + " is dead: " + a.death_cause);
    return;
  }
  if (a.queue.empty())
    return;
  if (a.st != actor_calls::state::alive) {
    want_actor(a.id);
    return;
  }
  auto* c = calls_.find_conn(a.conn);
  if (c == nullptr) {
    c = calls_.conn_to(a.at.address, a.at.pid);
    if (c == nullptr) {
      std::string why;
      int fd = actor_calls::open_attach(a.at.address, token_, job_id_, a.at.pid, why);
      if (fd < 0) { // its node is gone: the GCS will say where it went
        actor_calls::mark_stale(a, clock_type::now());
        want_actor(a.id);
        return;
      }
      c = &calls_.add_conn(fd, a.at.address, a.at.pid);
      host_.wake();
    }
    a.conn = c->id;
  }
  if (!c->attached)
    return; // ATTACHED pumps again
  auto now = clock_type::now();
  // A call to an idle socket is written at once (a synchronous call costs
  // one round trip); calls behind others in flight are written together
  // when the driving thread next polls (within a millisecond; at once when
  // a caller waits in get), which saves a send per call for pipelined ones.
  const bool idle = c->inflight.empty();
  while (!a.queue.empty()) {
    auto seq = a.queue.front();
    auto* t = host_.tasks().find(seq);
    if (t == nullptr) {
      a.queue.pop_front();
      continue;
    }
    if (t->state == task_table::waiting_deps)
      break;
    a.queue.pop_front();
    if (!t->doomed.empty()) { // lost with the old process, out of retries
      fail_call(seq, t->doomed, a.node_id);
      continue;
    }
    wire::actor_call call;
    call.call_id = c->next_call_id;
    call.actor_id = a.id;
    call.method = t->function;
    call.attempt = static_cast<uint32_t>(t->attempt);
    if (!host_.args_to_wire(*t, call.args)) {
      host_.fail_task(seq, "rayd::object_lost", "an argument object of the call is gone", "", true);
      continue;
    }
    t->max_retries = a.max_task_retries < 0 ? std::numeric_limits<int>::max()
                                            : a.max_task_retries;
    if (!task_table::sent(*t, c->id, call.call_id, now))
      continue;
    ++c->next_call_id;
    c->inflight[call.call_id] = seq;
    c->inflight_actor[call.call_id] = a.id;
    c->out += wire::encode(wire::msg::call, call);
    host_.note(*t, task_events::running, a.node_id);
    if (c->out.size() > 256 * 1024)
      flush_conn(*c);
  }
  if (c->out.empty())
    return;
  if (idle || c->out.size() > 64 * 1024)
    flush_conn(*c);
  else
    host_.wake();
}

void actor_caller::flush_conn(actor_calls::conn& c) {
  if (node_link::flush(c.fd, c.out) == node_link::flush_result::full) {
    host_.wake();
  }
}

/// Answers to asynchronous creates. REQUIRES: mtx_ held.
void actor_caller::on_created(const std::vector<actor_info>& rows) {
  for (auto& r : rows) {
    bool created = false;
    auto& a = calls_.get(r.actor_id, created);
    if (a.st == actor_calls::state::creating)
      a.st = actor_calls::state::resolving;
    if (!r.error.empty()) {
      a.st = actor_calls::state::dead;
      a.death_cause = r.error;
      pump(a);
      continue;
    }
    want_actor(r.actor_id);
  }
}

/// Rows from the GCS: where actors are, or why they died. REQUIRES: mtx_ held.
void actor_caller::on_actor_rows(const std::vector<actor_info>& rows) {
  auto now = clock_type::now();
  for (auto& r : rows) {
    auto* a = calls_.find(r.actor_id);
    if (a == nullptr)
      continue;
    a->wanted = false;
    if (r.state == "DEAD") {
      a->st = actor_calls::state::dead;
      a->death_cause = r.death_cause.empty() ? "no reason given" : r.death_cause;
      a->conn = 0;
      fail_doomed(*a, "actor " + a->id + " is dead: " + a->death_cause);
      pump(*a);
      continue;
    }
    actor_calls::incarnation at{r.address, r.pid, r.restarts};
    if (r.state != "ALIVE" && a->st == actor_calls::state::alive)
      actor_calls::mark_stale(*a, now); // restarting: the life we know is over
    // The GCS still shows the incarnation we lost. Usually it has not heard
    // yet that the process died (ask again in a moment); after 2 s we
    // believe it and connect again (a socket can break while its process
    // lives): the GCS, not the caller, decides that an actor is dead.
    bool believe = a->stale && at == a->gone && now - a->stale_since >= std::chrono::seconds{2};
    if (r.state != "ALIVE" || (a->stale && at == a->gone && !believe)) {
      retry_wanted_.push_back(a->id); // not placed yet, restarting, or not heard yet
      continue;
    }
    if (a->st == actor_calls::state::alive && !(at == a->at)) {
      // A newer incarnation while we still talk to the old one: the old
      // process (or its node) is gone without our socket noticing.
      if (auto* c = calls_.find_conn(a->conn))
        conn_lost(c->id, "the actor was restarted elsewhere");
    }
    bool restarted = a->stale && !(at == a->gone);
    a->st = actor_calls::state::alive;
    a->stale = false;
    a->at = at;
    a->node_id = r.node_id;
    a->max_task_retries = r.max_task_retries;
    if (restarted)
      fail_doomed(*a, "");
    pump(*a);
  }
  if (!retry_wanted_.empty())
    host_.wake();
}

/// Fails the calls of `a` that were lost out of retries (`why`: the
/// actor's death; "" when it was restarted). REQUIRES: mtx_ held.
void actor_caller::fail_doomed(actor_calls::actor& a, const std::string& why) {
  std::deque<uint64_t> keep;
  for (auto seq : a.queue) {
    auto* t = host_.tasks().find(seq);
    if (t == nullptr)
      continue;
    if (t->doomed.empty()) {
      keep.push_back(seq);
      continue;
    }
    fail_call(seq, why.empty() ? t->doomed + "; the actor was restarted" : why, a.node_id);
  }
  a.queue = std::move(keep);
}

/// The socket to a worker process broke (or is given up on): its calls
/// are retried within their actors' max_task_retries, the rest doomed;
/// its actors are looked up again. REQUIRES: mtx_ held.
void actor_caller::conn_lost(uint64_t cid, const std::string& why) {
  auto c = calls_.remove_conn(cid);
  if (!c)
    return;
  ::close(c->fd);
  auto now = clock_type::now();
  std::map<actor_id, std::vector<uint64_t>> lost; // per actor, in call order
  for (auto& [call_id, seq] : c->inflight) {
    auto* t = host_.tasks().find(seq);
    if (t == nullptr || t->state != task_table::inflight)
      continue;
    auto& aid = c->inflight_actor[call_id];
    if (!task_table::lost(*t)) {
      t->state = task_table::ready;
      t->doomed = "the actor's process was lost while the call ran (" + why + ") and its "
                  + std::to_string(t->max_retries) + " retries (max_task_retries) are used up";
    }
    host_.note(*t, task_events::pending, "");
    lost[aid].push_back(seq);
  }
  for (auto* a : calls_.actors_on(cid)) {
    actor_calls::mark_stale(*a, now);
    want_actor(a->id);
  }
  for (auto& [aid, seqs] : lost) {
    auto* a = calls_.find(aid);
    if (a == nullptr)
      continue;
    a->queue.insert(a->queue.begin(), seqs.begin(), seqs.end());
    if (a->st == actor_calls::state::alive) { // it moved already; we had not noticed
      actor_calls::mark_stale(*a, now);
      want_actor(a->id);
    }
  }
}

void actor_caller::on_call_result(actor_calls::conn& c, const wire::task_result& r) {
  auto it = c.inflight.find(r.task_id);
  if (it == c.inflight.end())
    return;
  auto seq = it->second;
  c.inflight.erase(it);
  auto ai = c.inflight_actor.find(r.task_id);
  actor_id aid = ai != c.inflight_actor.end() ? std::move(ai->second) : actor_id{};
  if (ai != c.inflight_actor.end())
    c.inflight_actor.erase(ai);
  auto* t = host_.tasks().find(seq);
  if (t == nullptr)
    return;
  if (r.kind == wire::task_result::error && r.error_type == "rayd::actor_died") {
    // The process no longer hosts it (killed, or being restarted): the
    // GCS says which; the call is retried or fails with its verdict.
    auto* a = calls_.find(aid);
    if (a != nullptr && a->st == actor_calls::state::dead) {
      fail_call(seq, "actor " + a->id + " is dead: " + a->death_cause, r.node_id);
      return;
    }
    if (!task_table::lost(*t)) {
      t->state = task_table::ready;
      t->doomed = r.error_message;
    }
    if (a == nullptr) {
      fail_call(seq, r.error_message, r.node_id);
      return;
    }
    a->queue.push_front(seq);
    if (a->st == actor_calls::state::alive)
      actor_calls::mark_stale(*a, clock_type::now());
    want_actor(a->id);
    return;
  }
  object_table::apply_result(host_.objects().slot(t->result), r);
  host_.finish_task(seq);
}

/// Reads what arrived on a socket to a worker process. False when it broke.
bool actor_caller::read_conn(uint64_t cid) {
  auto* c = calls_.find_conn(cid);
  if (c == nullptr)
    return true;
  bool open = node_link::read(c->fd, c->reader, 256 * 1024);
  for (;;) {
    auto f = c->reader.next();
    if (!f)
      return false;
    if (!*f)
      return open;
    auto& frame = **f;
    switch (frame.type) {
      case wire::msg::attached: {
        c->attached = true;
        for (auto* a : calls_.actors_on(cid))
          pump(*a);
        c = calls_.find_conn(cid); // pumping may not remove it, but be sure
        if (c == nullptr)
          return true;
        break;
      }
      case wire::msg::result: {
        auto r = wire::decode<wire::task_result>(frame.payload);
        if (!r)
          return false;
        on_call_result(*c, *r);
        break;
      }
      case wire::msg::welcome: // the node's answer to HELLO, before ATTACHED
      case wire::msg::pong:
        break;
      default: // ERROR (no such worker process) or garbage
        return false;
    }
  }
}

/// Whether actor calls need the network driven.
bool actor_caller::outstanding() const {
  for (auto& [_, c] : const_cast<actor_calls&>(calls_).conns())
    if (!c.inflight.empty() || !c.attached || !c.out.empty())
      return true;
  return !retry_wanted_.empty();
}

/// Calls waiting longer than a second: ask the GCS whether their actors
/// are still where we think (a node cut off does not close our socket).
void actor_caller::check_slow_calls(clock_type::time_point now) {
  for (auto& [cid, c] : calls_.conns()) {
    if (c.inflight.empty() || now - c.oldest_check < std::chrono::seconds{1})
      continue;
    auto* t = host_.tasks().find(c.inflight.begin()->second);
    if (t == nullptr || t->sent == clock_type::time_point{}
        || now - t->sent < std::chrono::seconds{1})
      continue;
    c.oldest_check = now;
    for (auto* a : calls_.actors_on(cid))
      if (!a->wanted) {
        a->wanted = true;
        host_.want(a->id);
      }
  }
}

} // namespace rayd::core
