#pragma once
// The node manager: every node runs one. For now it joins the cluster and
// keeps the membership alive; later it grants worker leases and holds the
// node's object store.
//
// Lifecycle:
//
//        spawn + start(address)
//              │
//              ▼         connect+join ok
//        CONNECTING ───────────────────────► JOINED ◄───────┐
//          │   ▲  │ refused (token/cluster)    │            │ re-join ok
//          │   │  ▼                            │ head lost  │
//          │   │ EXIT(1) ◄── deadline ── RECONNECTING ──────┘
//          │   └── retry with back-off (50 ms doubling to 500 ms)
//          └── (a head's own node manager joins its local gate directly)

#include <functional>
#include <optional>
#include <string>

#include <caf/fwd.hpp>
#include <caf/timespan.hpp>

#include "actors/gcs/gate_actor.hpp"
#include "actors/node/actor_bridge.hpp"
#include "actors/node/job_agent_actor.hpp"
#include "actors/node/node_manager_actor.hpp"
#include "actors/types.hpp"
#include "common/util.hpp"

namespace rayd::node {

struct node_manager_config {
  /// This node's row (node_id, name, address, pid, resources, labels). REQUIRED.
  node_info self;
  /// The cluster token presented on join. REQUIRED.
  std::string token;
  /// Worker nodes: the head's cluster port. Head: unset, `local_gate` set.
  std::optional<host_port> head;
  gcs_gate_actor local_gate;
  /// Exit after the head has been unreachable this long. Default 60 s.
  caf::timespan gcs_reconnect_timeout = std::chrono::seconds{60};
  /// This node's job agent: gets job_start/job_stop from the head and the
  /// gate after every (re-)join. REQUIRED.
  job_agent_actor job_agent;
  /// What this node reports to the GCS (its task server's snapshot); called
  /// on an actor thread every `report_interval`. Unset: nothing is reported.
  std::function<node_report()> snapshot;
  /// Receives the cluster as the GCS answered the last report.
  std::function<void(std::vector<peer_view>)> on_peers;
  /// How often the snapshot is checked; an unchanged one is sent once a
  /// second. Default 100 ms.
  caf::timespan report_interval = std::chrono::milliseconds{100};
  /// Hosts this node's actors (actor_host / actor_unhost are delegated to
  /// it; it hears the gate after every join). Unset: this node hosts none.
  actor_bridge_actor actor_bridge;
  /// Called (on an actor thread) after every successful join and re-join.
  std::function<void(const join_reply&)> on_joined;
  /// Called (on an actor thread) when the node must exit: refused, or the
  /// head stayed unreachable past the deadline. The actor quits afterwards.
  std::function<void(const caf::error&)> on_fatal;
};

node_manager_actor spawn_node_manager(caf::actor_system& sys,
                                      node_manager_config cfg);

} // namespace rayd::node
