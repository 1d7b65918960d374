// The GCS node actor: membership and failure detection.
//
// A node is watched through the node manager handle it sent with its join:
// CAF delivers a down_msg at once when the connection closes (process killed,
// socket reset) and, with middleman heartbeats on, when the peer is silent for
// the connection timeout (frozen process, cut link). Either way the row turns
// DEAD, durably, and subscribers hear of it.

#include <algorithm>
#include <map>
#include <memory>
#include <set>

#include <caf/all.hpp>
#include <spdlog/spdlog.h>

#include "actors/gcs/node_table.hpp"
#include "actors/gcs/spawn.hpp"
#include "common/error.hpp"

namespace rayd::gcs {

namespace {

struct node_state_t {
  node_actor_config cfg;
  std::shared_ptr<node_table> table;
  /// The handle each live node joined with; only its down_msg counts.
  std::map<std::string, node_manager_actor> handles;
  std::map<caf::actor_addr, std::string> node_of;
  /// Nodes of the previous incarnation that have not re-joined yet.
  std::set<std::string> awaiting_rejoin;
  std::vector<node_listener_actor> listeners;
  /// Node types the autoscaler may still launch (docs/autoscaler.md):
  /// handed to every node with the cluster view.
  std::vector<launchable_type> launchable;
  static inline const char* name = "rayd.gcs.node";
};

using node_actor_t = gcs_node_actor::stateful_pointer<node_state_t>;

void publish(node_actor_t self, const node_info& n) {
  for (auto& l : self->state.listeners)
    self->send(l, atoms::node_event::value, n);
}

void declare_dead(node_actor_t self, const std::string& id,
                  const std::string& reason) {
  auto row = self->state.table->set_dead(id, reason, now_ms());
  if (!row) {
    spdlog::error("cannot record death of node {}: {}", id, describe(row.error()));
    return;
  }
  spdlog::warn("node {} ({}) is DEAD: {}", id, row->name, reason);
  publish(self, *row);
}

gcs_node_actor::behavior_type node_behavior(node_actor_t self) {
  self->set_down_handler([self](caf::down_msg& dm) {
    auto& st = self->state;
    auto& ls = st.listeners;
    ls.erase(std::remove_if(ls.begin(), ls.end(),
                            [&](auto& l) { return l.address() == dm.source; }),
             ls.end());
    auto i = st.node_of.find(dm.source);
    if (i == st.node_of.end())
      return;
    auto id = i->second;
    st.node_of.erase(i);
    auto h = st.handles.find(id);
    // A node that re-joined already has a newer handle: ignore the old one.
    if (h == st.handles.end() || h->second.address() != dm.source)
      return;
    st.handles.erase(h);
    // CAF 0.17 reports a closed and a silent (heartbeat-timed-out)
    // connection alike, so the reason names both.
    declare_dead(self, id,
                 "lost contact: the node's connection closed or stayed silent "
                 "past the health timeout (process died, froze, or the network "
                 "failed)");
  });
  if (!self->state.awaiting_rejoin.empty())
    self->delayed_send(self, self->state.cfg.reconnect_timeout,
                       atoms::expire::value);
  return {
    [self](atoms::join, join_request& req,
           node_manager_actor& nm) -> caf::result<join_reply> {
      auto& st = self->state;
      auto& n = req.node;
      if (!req.cluster_id.empty() && req.cluster_id != st.cfg.cluster_id) {
        spdlog::warn("refused node {} ({}): it belongs to cluster {}, this is "
                     "cluster {}",
                     n.node_id, n.address, req.cluster_id, st.cfg.cluster_id);
        return make_error(errc::wrong_cluster,
                          "node belongs to cluster " + req.cluster_id
                            + " but this head serves cluster "
                            + st.cfg.cluster_id
                            + " (was the head's storage replaced?)");
      }
      if (!nm)
        return make_error(errc::invalid_argument, "join without a node manager");
      bool rejoin = st.table->find(n.node_id) != nullptr;
      auto row = st.table->set_alive(n, now_ms());
      if (!row)
        return row.error();
      if (auto old = st.handles.find(n.node_id); old != st.handles.end())
        st.node_of.erase(old->second.address());
      st.handles[n.node_id] = nm;
      st.node_of[nm.address()] = n.node_id;
      st.awaiting_rejoin.erase(n.node_id);
      self->monitor(nm);
      spdlog::info("node {} ({}, {}) {}", n.node_id, n.name, n.address,
                   rejoin ? "re-joined" : "joined");
      publish(self, *row);
      return join_reply{st.cfg.cluster_id, st.cfg.epoch, st.cfg.api_address};
    },
    [self](atoms::nodes) {
      auto& st = self->state;
      return cluster_view{st.cfg.cluster_id, st.cfg.epoch, st.table->rows()};
    },
    [self](atoms::leave, std::string& id) {
      auto& st = self->state;
      if (st.table->find(id) == nullptr)
        return false;
      if (auto h = st.handles.find(id); h != st.handles.end()) {
        st.node_of.erase(h->second.address());
        self->demonitor(h->second.address());
        st.handles.erase(h);
      }
      declare_dead(self, id, "stopped by its operator (SIGTERM / rayd stop)");
      return true;
    },
    [self](atoms::report, node_report& r) {
      auto& st = self->state;
      st.table->apply_report(r);
      std::vector<peer_view> out;
      for (auto& n : st.table->rows())
        if (n.get_state() == node_state::alive)
          out.push_back({n.node_id, n.address, true, n.resources_total,
                         n.resources_available, n.labels, false});
      for (auto& t : st.launchable)
        out.push_back({"type:" + t.name, "", false, t.resources, {}, t.labels, true});
      return out;
    },
    [self](atoms::set_launchable, std::vector<launchable_type>& types) {
      self->state.launchable = std::move(types);
    },
    [self](atoms::lookup, std::string& id) -> caf::result<node_manager_actor> {
      auto& st = self->state;
      auto h = st.handles.find(id);
      if (h == st.handles.end())
        return make_error(errc::not_found, "node " + id + " is not connected");
      return h->second;
    },
    [self](atoms::subscribe, node_listener_actor& l) {
      self->state.listeners.push_back(l);
      self->monitor(l);
    },
    [self](atoms::expire) {
      auto pending = std::move(self->state.awaiting_rejoin);
      self->state.awaiting_rejoin.clear();
      for (auto& id : pending)
        declare_dead(self, id,
                     "did not re-join after the head restarted");
    },
  };
}

} // namespace

caf::expected<gcs_node_actor> spawn_node_actor(caf::actor_system& sys,
                                               node_actor_config cfg) {
  auto table = std::make_shared<node_table>(*cfg.db);
  if (auto err = table->load())
    return err;
  return sys.spawn(
    [cfg, table](node_actor_t self) -> gcs_node_actor::behavior_type {
      auto& st = self->state;
      st.cfg = cfg;
      st.table = table;
      for (auto& id : table->alive_ids())
        st.awaiting_rejoin.insert(id);
      return node_behavior(self);
    });
}

} // namespace rayd::gcs
