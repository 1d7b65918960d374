// The gate: the only GCS actor published on the cluster port. It checks the
// cluster token on every message before anything else sees it.

#include <caf/all.hpp>
#include <spdlog/spdlog.h>

#include "actors/gcs/spawn.hpp"
#include "common/error.hpp"
#include "common/token.hpp"

namespace rayd::gcs {

gcs_gate_actor spawn_gate(caf::actor_system& sys, std::string token,
                          gcs_node_actor nodes) {
  return sys.spawn([token, nodes](gcs_gate_actor::pointer self)
                     -> gcs_gate_actor::behavior_type {
    return {
      [self, token, nodes](atoms::join, join_request& req,
                           node_manager_actor& nm)
        -> caf::result<join_reply> {
        if (!token_matches(token, req.token)) {
          spdlog::warn("refused join of node {} ({}, {}): {} cluster token",
                       req.node.node_id, req.node.name, req.node.address,
                       req.token.empty() ? "missing" : "wrong");
          return make_error(errc::unauthenticated,
                            req.token.empty()
                              ? "join refused: no cluster token given"
                              : "join refused: wrong cluster token");
        }
        req.token.clear();
        return self->delegate(nodes, atoms::join::value, std::move(req),
                              std::move(nm));
      },
      [self, token, nodes](atoms::leave, std::string& presented,
                           std::string& node_id) -> caf::result<bool> {
        if (!token_matches(token, presented))
          return make_error(errc::unauthenticated, "leave refused: wrong cluster token");
        return self->delegate(nodes, atoms::leave::value, std::move(node_id));
      },
    };
  });
}

} // namespace rayd::gcs
