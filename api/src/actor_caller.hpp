#pragma once

// The caller's logic of actor calls (docs/actors.md): queues each call
// behind its actor's earlier ones, sends them once the actor's process is
// attached, turns RESULT frames into results, retries calls lost with a
// process within max_task_retries, and asks the GCS (through the host)
// where actors went. The tables it works on, and the lifecycle of an actor
// as its caller sees it, are actor_calls.hpp's.
//
// The driver is its host: the task and object tables are the driver's
// (actor calls are tasks with an actor, so get/wait/references work the
// same), and so are the poll loop and the line to the GCS.
//
// Thread rules: every member runs under the driver's state mutex; no
// thread of its own. No blocking I/O but connecting to a node port.

#include <chrono>
#include <cstdint>
#include <string>
#include <vector>

#include "actor_calls.hpp"
#include "node_link.hpp"
#include "object_table.hpp"
#include "task_events.hpp"
#include "task_table.hpp"

#include "actors/actor_types.hpp"
#include "common/wire.hpp"

namespace rayd::core {

class actor_caller {
public:
  using clock_type = std::chrono::steady_clock;

  /// What the driver lends it; every call is made under the driver's mutex.
  class host {
  public:
    virtual ~host() = default;
    virtual task_table& tasks() = 0;
    virtual object_table& objects() = 0;
    /// The arguments of `t` as they travel; false if an object is gone.
    virtual bool args_to_wire(const task_table::task& t, std::vector<wire::task_arg>& out) = 0;
    /// Settles a call's result as failed / finishes it (its result settled).
    virtual void fail_task(uint64_t seq, std::string type, std::string why, std::string node,
                           bool lost = false) = 0;
    virtual void finish_task(uint64_t seq) = 0;
    virtual void note(task_table::task& t, task_events::state s, const std::string& node,
                      const std::string& error = {}) = 0;
    /// A socket has something to send or a lookup is due: drive soon.
    virtual void wake() = 0;
    /// Ask the GCS for actor `id`'s row (answered through on_actor_rows).
    virtual void want(const actor_id& id) = 0;
  };

  actor_caller(host& h, std::string token, std::string job_id)
    : host_{h}, token_{std::move(token)}, job_id_{std::move(job_id)} {
  }
  ~actor_caller(); // closes the sockets

  /// A new call (task `seq`, already in the host's table) of `actor`.
  void call(const actor_id& actor, uint64_t seq);
  /// A call's argument objects became ready: it may go.
  void ready(const actor_id& actor);
  /// The actor is known to exist (a named create, get_actor): look it up.
  void want_actor(const actor_id& id);
  /// An anonymous create is on its way to the GCS: calls wait for its
  /// answer before anyone asks where the actor is.
  void creating(const actor_id& id);

  /// Answers from the GCS.
  void on_created(const std::vector<actor_info>& rows);
  void on_actor_rows(const std::vector<actor_info>& rows);

  /// The sockets to poll, tagged `tag | conn id`.
  void watches(std::vector<node_link::watch>& out, uint64_t tag) const;
  /// A polled socket is readable (`in`) and/or writable (`out`).
  void on_event(uint64_t conn_id, bool in, bool out);
  /// Whether calls need the network driven.
  bool outstanding() const;
  /// Lookups due again, calls that wait too long.
  void housekeeping(clock_type::time_point now);

private:
  void fail_call(uint64_t seq, const std::string& why, const std::string& node = "");
  void pump(actor_calls::actor& a);
  void flush_conn(actor_calls::conn& c);
  void fail_doomed(actor_calls::actor& a, const std::string& why);
  void conn_lost(uint64_t cid, const std::string& why);
  void on_call_result(actor_calls::conn& c, const wire::task_result& r);
  bool read_conn(uint64_t cid);
  void check_slow_calls(clock_type::time_point now);

  host& host_;
  const std::string token_;
  const std::string job_id_;
  actor_calls calls_;
  /// Actors to look up again in a moment (not placed yet, or the GCS still
  /// shows an incarnation we lost), and when.
  std::vector<actor_id> retry_wanted_;
  clock_type::time_point retry_wanted_at_{};
};

} // namespace rayd::core
