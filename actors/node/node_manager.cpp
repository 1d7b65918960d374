#include "actors/node/node_manager.hpp"

#include <chrono>
#include <optional>

#include <caf/all.hpp>
#include <caf/io/middleman.hpp>
#include <spdlog/spdlog.h>

#include "common/error.hpp"

namespace rayd::node {

namespace {

using std::chrono::milliseconds;
using clock_type = std::chrono::steady_clock;

constexpr auto min_backoff = milliseconds{50};
constexpr auto max_backoff = milliseconds{500};
constexpr auto join_timeout = std::chrono::seconds{5};

struct nm_state_t {
  node_manager_config cfg;
  /// Learned on the first join; presented on every re-join.
  std::string cluster_id;
  gcs_gate_actor gate;
  /// The proxy of the gate whose connection was lost. CAF's middleman caches
  /// the proxy per host:port until its own down_msg arrives, so a quick
  /// reconnect can hand back this very (dead) proxy object; joining through
  /// it would hang until the timeout. A new connection to the same head
  /// yields a new proxy object with the same address, so compare objects.
  caf::strong_actor_ptr lost_gate;
  bool joined = false;
  bool attempt_running = false;
  bool report_in_flight = false;
  std::optional<node_report> last_report;
  clock_type::time_point last_report_time;
  clock_type::time_point lost_since = clock_type::now();
  milliseconds backoff = min_backoff;
  static inline const char* name = "rayd.node_manager";
};

using nm_actor_t = node_manager_actor::stateful_pointer<nm_state_t>;

bool same(const node_report& a, const node_report& b) {
  return a.available == b.available && a.load == b.load;
}

/// Sends the snapshot when it changed or while lease requests wait here
/// (the reply refreshes the view they are placed by: a node that left or
/// joined is seen within one interval), else once a second.
void report(nm_actor_t self) {
  auto& st = self->state;
  if (!st.cfg.snapshot || !st.joined || !st.gate || st.report_in_flight)
    return;
  auto r = st.cfg.snapshot();
  r.node_id = st.cfg.self.node_id;
  auto now = clock_type::now();
  if (st.last_report && same(*st.last_report, r) && r.load.demands.empty()
      && now - st.last_report_time < std::chrono::seconds{1})
    return;
  st.report_in_flight = true;
  st.last_report = r;
  st.last_report_time = now;
  self->request(st.gate, std::chrono::seconds{2}, atoms::report::value, st.cfg.token, r)
    .then(
      [self](std::vector<peer_view>& peers) {
        self->state.report_in_flight = false;
        if (self->state.cfg.on_peers)
          self->state.cfg.on_peers(std::move(peers));
      },
      [self](caf::error&) {
        self->state.report_in_flight = false;
        self->state.last_report.reset(); // send again soon
      });
}

void fatal(nm_actor_t self, const caf::error& err) {
  spdlog::error("{}", describe(err));
  if (self->state.cfg.on_fatal)
    self->state.cfg.on_fatal(err);
  self->quit();
}

void retry_later(nm_actor_t self) {
  auto& st = self->state;
  st.attempt_running = false;
  self->delayed_send(self, st.backoff, atoms::connect::value);
  st.backoff = std::min(st.backoff * 2, max_backoff);
}

void join(nm_actor_t self, gcs_gate_actor gate) {
  auto& st = self->state;
  join_request req{st.cfg.token, st.cluster_id, st.cfg.self};
  req.node.start_time_ms = 0; // the GCS stamps (re-)join times
  self->request(gate, join_timeout, atoms::join::value, std::move(req),
                node_manager_actor{self})
    .then(
      [self, gate](join_reply& reply) {
        auto& st = self->state;
        bool first = st.cluster_id.empty();
        st.cluster_id = reply.cluster_id;
        st.gate = gate;
        st.lost_gate = nullptr;
        st.joined = true;
        st.attempt_running = false;
        st.last_report.reset(); // a (new) head hears the state at once
        st.backoff = min_backoff;
        if (st.cfg.head)
          self->monitor(gate);
        spdlog::info("{} cluster {} (head epoch {})",
                     first ? "joined" : "re-joined", reply.cluster_id,
                     reply.epoch);
        if (st.cfg.job_agent)
          self->send(st.cfg.job_agent, atoms::head_changed::value, gate,
                     reply.api_address);
        if (st.cfg.actor_bridge)
          self->send(st.cfg.actor_bridge, atoms::head_changed::value, gate, reply.api_address);
        if (st.cfg.on_joined)
          st.cfg.on_joined(reply);
      },
      [self](caf::error& err) {
        auto code = code_of(err);
        if (code == errc::unauthenticated || code == errc::wrong_cluster) {
          fatal(self, make_error(code, "the head refused this node: "
                                         + describe(err)));
          return;
        }
        spdlog::warn("join failed: {}; retrying", describe(err));
        retry_later(self);
      });
}

void connect(nm_actor_t self) {
  auto& st = self->state;
  if (st.joined || st.attempt_running)
    return;
  if (!st.cfg.head) {
    st.attempt_running = true;
    join(self, st.cfg.local_gate);
    return;
  }
  if (clock_type::now() - st.lost_since > st.cfg.gcs_reconnect_timeout) {
    auto secs = std::chrono::duration_cast<std::chrono::seconds>(
                  st.cfg.gcs_reconnect_timeout)
                  .count();
    fatal(self, make_error(errc::unavailable,
                           "cannot reach the head (GCS) at "
                             + st.cfg.head->to_string() + " for "
                             + std::to_string(secs) + " s; giving up"));
    return;
  }
  st.attempt_running = true;
  auto mm = self->system().middleman().actor_handle();
  self->request(mm, join_timeout, caf::connect_atom::value, st.cfg.head->host,
                st.cfg.head->port)
    .then(
      [self](caf::node_id&, caf::strong_actor_ptr& ptr,
             std::set<std::string>& ifs) {
        if (!ptr) {
          spdlog::warn("head at {} has no gate; retrying",
                       self->state.cfg.head->to_string());
          retry_later(self);
          return;
        }
        if (ptr.get() == self->state.lost_gate.get()) {
          retry_later(self); // the middleman's stale cache entry
          return;
        }
        if (ifs != self->system().message_types<gcs_gate_actor>()) {
          fatal(self, make_error(errc::wrong_cluster,
                                 "the process at "
                                   + self->state.cfg.head->to_string()
                                   + " is not a compatible rayd head"));
          return;
        }
        join(self, caf::actor_cast<gcs_gate_actor>(std::move(ptr)));
      },
      [self](caf::error& err) {
        spdlog::debug("cannot connect to head: {}", describe(err));
        retry_later(self);
      });
}

} // namespace

node_manager_actor spawn_node_manager(caf::actor_system& sys,
                                      node_manager_config cfg) {
  return sys.spawn([cfg](nm_actor_t self) -> node_manager_actor::behavior_type {
    auto& st = self->state;
    st.cfg = cfg;
    st.lost_since = clock_type::now();
    if (st.cfg.snapshot)
      self->send(self, atoms::report::value);
    self->set_down_handler([self](caf::down_msg& dm) {
      auto& st = self->state;
      if (dm.source != st.gate.address())
        return;
      spdlog::warn("lost the head ({}); reconnecting", describe(dm.reason));
      st.joined = false;
      st.lost_gate = caf::actor_cast<caf::strong_actor_ptr>(st.gate);
      st.gate = nullptr;
      st.lost_since = clock_type::now();
      st.backoff = min_backoff;
      if (st.cfg.actor_bridge) // its reports wait for the next join
        self->send(st.cfg.actor_bridge, atoms::head_changed::value, gcs_gate_actor{},
                   std::string{});
      self->send(self, atoms::connect::value);
      self->delayed_send(self, st.cfg.gcs_reconnect_timeout, atoms::give_up::value);
    });
    return {
      [self](atoms::ping) { return self->state.cfg.self.node_id; },
      [self](atoms::start, std::string& address) {
        auto& st = self->state;
        st.cfg.self.address = std::move(address);
        st.lost_since = clock_type::now();
        connect(self);
        if (st.cfg.head)
          self->delayed_send(self, st.cfg.gcs_reconnect_timeout,
                             atoms::give_up::value);
      },
      [self](atoms::connect) { connect(self); },
      [self](atoms::report) {
        report(self);
        self->delayed_send(self, self->state.cfg.report_interval, atoms::report::value);
      },
      [self](atoms::job_start, job_launch& job) -> caf::result<bool> {
        if (!self->state.cfg.job_agent)
          return make_error(errc::unavailable, "this node runs no jobs");
        return self->delegate(self->state.cfg.job_agent, atoms::job_start::value,
                              std::move(job));
      },
      [self](atoms::job_stop, std::string& id, int64_t grace_ms) -> caf::result<bool> {
        if (!self->state.cfg.job_agent)
          return false;
        return self->delegate(self->state.cfg.job_agent, atoms::job_stop::value,
                              std::move(id), grace_ms);
      },
      [self](atoms::actor_host, actor_launch& l) -> caf::result<actor_hosted> {
        if (!self->state.cfg.actor_bridge)
          return make_error(errc::unavailable, "this node hosts no actors");
        return self->delegate(self->state.cfg.actor_bridge, atoms::actor_host::value,
                              std::move(l));
      },
      [self](atoms::actor_unhost, std::string& id) -> caf::result<bool> {
        if (!self->state.cfg.actor_bridge)
          return false;
        return self->delegate(self->state.cfg.actor_bridge, atoms::actor_unhost::value,
                              std::move(id));
      },
      [self](atoms::drain, bool on) -> caf::result<bool> {
        if (!self->state.cfg.actor_bridge)
          return false;
        return self->delegate(self->state.cfg.actor_bridge, atoms::drain::value, on);
      },
      [self](atoms::leave) -> caf::result<bool> {
        auto& st = self->state;
        if (!st.joined || !st.gate)
          return false;
        st.joined = false; // a lost head from now on is expected
        self->demonitor(st.gate.address());
        auto rp = self->make_response_promise<bool>();
        self->request(st.gate, std::chrono::seconds{2}, atoms::leave::value,
                      st.cfg.token, st.cfg.self.node_id)
          .then([rp](bool known) mutable { rp.deliver(known); },
                [rp](caf::error& err) mutable { rp.deliver(std::move(err)); });
        return rp;
      },
      [self](atoms::give_up) {
        auto& st = self->state;
        if (st.joined)
          return;
        if (clock_type::now() - st.lost_since < st.cfg.gcs_reconnect_timeout)
          return;
        st.attempt_running = false;
        connect(self); // reports the deadline as fatal
      },
    };
  });
}

} // namespace rayd::node
