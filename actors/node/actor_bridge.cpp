#include "actors/node/actor_bridge.hpp"

#include <map>
#include <vector>

#include <caf/all.hpp>
#include <spdlog/spdlog.h>

namespace rayd::node {

namespace {

struct bridge_state {
  actor_bridge_config cfg;
  gcs_gate_actor gate;
  uint64_t next = 1;
  std::map<uint64_t, caf::typed_response_promise<actor_hosted>> hosting;
  std::map<uint64_t, caf::typed_response_promise<bool>> unhosting;
  std::map<uint64_t, caf::typed_response_promise<bool>> draining;
  /// Reports made while no gate was known, sent after the next join.
  std::vector<std::function<void(const gcs_gate_actor&)>> unsent;
  static inline const char* name = "rayd.actor_bridge";
};

using bridge_ptr = actor_bridge_actor::stateful_pointer<bridge_state>;

void report(bridge_ptr self, std::function<void(const gcs_gate_actor&)> send) {
  if (self->state.gate)
    send(self->state.gate);
  else
    self->state.unsent.push_back(std::move(send));
}

} // namespace

actor_bridge_actor spawn_actor_bridge(caf::actor_system& sys, actor_bridge_config cfg) {
  return sys.spawn([cfg](bridge_ptr self) -> actor_bridge_actor::behavior_type {
    self->state.cfg = cfg;
    return {
      [self](atoms::actor_host, actor_launch& l) -> caf::result<actor_hosted> {
        auto& st = self->state;
        auto id = st.next++;
        auto rp = self->make_response_promise<actor_hosted>();
        st.hosting.emplace(id, rp);
        actor_bridge_actor me = self;
        st.cfg.host(std::move(l), [me, id](caf::expected<actor_hosted> r) {
          if (r)
            caf::anon_send(me, bridge_atoms::host_done::value, id, std::move(*r), caf::error{});
          else
            caf::anon_send(me, bridge_atoms::host_done::value, id, actor_hosted{},
                           std::move(r.error()));
        });
        return rp;
      },
      [self](bridge_atoms::host_done, uint64_t id, actor_hosted& h, caf::error& err) {
        auto i = self->state.hosting.find(id);
        if (i == self->state.hosting.end())
          return;
        if (err)
          i->second.deliver(std::move(err));
        else
          i->second.deliver(std::move(h));
        self->state.hosting.erase(i);
      },
      [self](atoms::actor_unhost, std::string& actor_id) -> caf::result<bool> {
        auto& st = self->state;
        auto id = st.next++;
        auto rp = self->make_response_promise<bool>();
        st.unhosting.emplace(id, rp);
        actor_bridge_actor me = self;
        st.cfg.unhost(std::move(actor_id), [me, id](bool known) {
          caf::anon_send(me, bridge_atoms::unhost_done::value, id, known);
        });
        return rp;
      },
      [self](bridge_atoms::unhost_done, uint64_t id, bool known) {
        auto i = self->state.unhosting.find(id);
        if (i == self->state.unhosting.end())
          return;
        i->second.deliver(known);
        self->state.unhosting.erase(i);
      },
      [self](atoms::drain, bool on) -> caf::result<bool> {
        auto& st = self->state;
        if (!st.cfg.drain)
          return false;
        auto id = st.next++;
        auto rp = self->make_response_promise<bool>();
        st.draining.emplace(id, rp);
        actor_bridge_actor me = self;
        st.cfg.drain(on, [me, id](bool ok) {
          caf::anon_send(me, bridge_atoms::drain_done::value, id, ok);
        });
        return rp;
      },
      [self](bridge_atoms::drain_done, uint64_t id, bool ok) {
        auto i = self->state.draining.find(id);
        if (i == self->state.draining.end())
          return;
        i->second.deliver(ok);
        self->state.draining.erase(i);
      },
      [self](atoms::head_changed, gcs_gate_actor& gate, std::string& api_address) {
        auto& st = self->state;
        st.gate = std::move(gate);
        if (!st.gate)
          return; // the head was lost: reports wait for the next join
        if (st.cfg.on_api_address)
          st.cfg.on_api_address(api_address);
        auto unsent = std::move(st.unsent);
        st.unsent.clear();
        for (auto& send : unsent)
          send(st.gate);
      },
      [self](atoms::actor_exited, std::string& actor_id, int32_t pid, std::string& cause) {
        auto& st = self->state;
        spdlog::info("actor {} ended with its worker process: {}", actor_id, cause);
        report(self, [self, token = st.cfg.token, node = st.cfg.node_id, actor_id, pid,
                      cause](const gcs_gate_actor& gate) {
          self->send(gate, atoms::actor_exited::value, token, actor_id, node, pid, cause);
        });
      },
      [self](atoms::job_gone, std::string& job_id) {
        auto& st = self->state;
        report(self, [self, token = st.cfg.token, job_id](const gcs_gate_actor& gate) {
          self->send(gate, atoms::job_gone::value, token, job_id);
        });
      },
    };
  });
}

} // namespace rayd::node
