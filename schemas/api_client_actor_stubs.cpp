// TEMPORARY until the ActorService client lands (issue 9): keeps the tree linking.
#include "schemas/api_client.hpp"

#include "common/error.hpp"

namespace rayd::rpc {
namespace {
caf::error not_yet() {
  return make_error(errc::unavailable, "the actor API is not implemented yet");
}
} // namespace
caf::expected<std::vector<actor_info>> client::actor_create(const std::vector<actor_create_request>&) {
  return not_yet();
}
caf::expected<std::vector<actor_info>> client::actor_wait(const std::vector<std::string>&, uint32_t) {
  return not_yet();
}
caf::expected<actor_info> client::actor_get(const std::string&, const std::string&) {
  return not_yet();
}
caf::expected<std::vector<actor_info>> client::actor_list() {
  return not_yet();
}
caf::expected<actor_info> client::actor_kill(const std::string&, const std::string&, bool,
                                             const std::string&) {
  return not_yet();
}
} // namespace rayd::rpc
