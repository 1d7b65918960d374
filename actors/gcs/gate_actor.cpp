// The gate: the only GCS actor published on the cluster port. It checks the
// cluster token on every message before anything else sees it, then hands
// the message to the actor in charge (delegate: the answer goes straight
// back to the sender).

#include <caf/all.hpp>
#include <spdlog/spdlog.h>

#include "actors/gcs/spawn.hpp"
#include "common/error.hpp"
#include "common/token.hpp"

namespace rayd::gcs {

gcs_gate_actor spawn_gate(caf::actor_system& sys, std::string token,
                          gate_targets to) {
  return sys.spawn([token, to](gcs_gate_actor::pointer self)
                     -> gcs_gate_actor::behavior_type {
    auto refused = [](const char* what) {
      return make_error(errc::unauthenticated,
                        std::string{what} + " refused: wrong cluster token");
    };
    return {
      [self, token, to](atoms::join, join_request& req,
                        node_manager_actor& nm) -> caf::result<join_reply> {
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
        return self->delegate(to.nodes, atoms::join::value, std::move(req),
                              std::move(nm));
      },
      [self, token, to, refused](atoms::leave, std::string& presented,
                                 std::string& node_id) -> caf::result<bool> {
        if (!token_matches(token, presented))
          return refused("leave");
        return self->delegate(to.nodes, atoms::leave::value, std::move(node_id));
      },
      [self, token, to, refused](atoms::job_report, std::string& presented,
                                 job_report& report) -> caf::result<bool> {
        if (!token_matches(token, presented))
          return refused("job report");
        return self->delegate(to.jobs, atoms::job_report::value, std::move(report));
      },
      [self, token, to, refused](atoms::log_append, std::string& presented,
                                 std::string& id, uint64_t offset,
                                 std::string& data) -> caf::result<uint64_t> {
        if (!token_matches(token, presented))
          return refused("log append");
        return self->delegate(to.logs, atoms::log_append::value, std::move(id),
                              offset, std::move(data));
      },
      [self, token, to, refused](atoms::report, std::string& presented,
                                 node_report& r) -> caf::result<std::vector<peer_view>> {
        if (!token_matches(token, presented))
          return refused("node report");
        return self->delegate(to.nodes, atoms::report::value, std::move(r));
      },
      [self, token, to, refused](atoms::blob_read, std::string& presented,
                                 std::string& hash, uint64_t offset,
                                 uint64_t max_bytes) -> caf::result<std::string> {
        if (!token_matches(token, presented))
          return refused("package fetch");
        return self->delegate(to.blobs, atoms::blob_read::value, std::move(hash),
                              offset, max_bytes);
      },
      [self, token, to](atoms::actor_exited, std::string& presented, std::string& actor_id,
                        std::string& node_id, int32_t pid, std::string& cause) {
        if (!token_matches(token, presented) || !to.actors)
          return;
        self->send(to.actors, atoms::actor_exited::value, std::move(actor_id),
                   std::move(node_id), pid, std::move(cause));
      },
      [self, token, to](atoms::job_gone, std::string& presented, std::string& job_id) {
        if (!token_matches(token, presented) || !to.actors)
          return;
        self->send(to.actors, atoms::job_gone::value, std::move(job_id));
      },
    };
  });
}

} // namespace rayd::gcs
