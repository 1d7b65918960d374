#pragma once
// Message types of the autoscaler (docs/autoscaler.md): what the head's
// managers report as pending demand, what the autoscaler tells the node
// actor it could still launch, and the drain of a node before termination.
// Each has its `inspect` overload and is registered in
// register_message_types() (actors/registry.cpp).

#include <cstdint>
#include <map>
#include <string>
#include <vector>

#include <caf/atom.hpp>
#include <caf/meta/type_name.hpp>

#include "common/resources.hpp"

namespace rayd {

namespace atoms {
/// To the actor and job managers: their pending demand.
using demand = caf::atom_constant<caf::atom("r_demand")>;
/// To the node actor and the job manager: the node types the autoscaler may
/// still launch (so demand that fits one waits instead of failing).
using set_launchable = caf::atom_constant<caf::atom("r_slaunch")>;
/// To a node manager: stop taking work if idle (true) or take it again.
using drain = caf::atom_constant<caf::atom("r_drain")>;
/// API → autoscaler.
using autoscale_status = caf::atom_constant<caf::atom("r_asstat")>;
using request_resources = caf::atom_constant<caf::atom("r_asreq")>;
/// Autoscaler ↔ its provider worker.
using provider_list = caf::atom_constant<caf::atom("r_plist")>;
using provider_create = caf::atom_constant<caf::atom("r_pcreate")>;
using provider_terminate = caf::atom_constant<caf::atom("r_pterm")>;
} // namespace atoms

/// `count` units of one shape waiting for a node; `kind` is "task", "actor"
/// or "job".
struct pending_demand {
  resource_map shape;
  label_map selector;
  uint64_t count = 0;
  std::string kind;
};

template <class Inspector>
typename Inspector::result_type inspect(Inspector& f, pending_demand& x) {
  return f(caf::meta::type_name("rayd::pending_demand"), x.shape, x.selector, x.count,
           x.kind);
}

/// A manager's answer to `demand`: what waits for a node, and what it has
/// placed on each node (a node holding live actors is not idle).
struct demand_report {
  std::vector<pending_demand> demands;
  std::map<std::string, uint32_t> per_node; // node id → live actors / jobs
};

template <class Inspector>
typename Inspector::result_type inspect(Inspector& f, demand_report& x) {
  return f(caf::meta::type_name("rayd::demand_report"), x.demands, x.per_node);
}

/// A node type the autoscaler may still launch: what one node of it offers.
struct launchable_type {
  std::string name;
  resource_map resources;
  label_map labels;
};

template <class Inspector>
typename Inspector::result_type inspect(Inspector& f, launchable_type& x) {
  return f(caf::meta::type_name("rayd::launchable_type"), x.name, x.resources, x.labels);
}

/// Adds `d` to `out`, merging it with an entry of equal shape, selector and
/// kind.
void add_demand(std::vector<pending_demand>& out, const pending_demand& d);

} // namespace rayd
