#include "actors/node/connection_table.hpp"

#include <algorithm>

#include "common/error.hpp"
#include "common/token.hpp"

namespace rayd::node {

caf::expected<wire::hello> check_hello(const wire::frame& f, const std::string& token) {
  auto h = f.type == wire::msg::hello ? wire::decode<wire::hello>(f.payload)
                                      : caf::expected<wire::hello>{caf::error{}};
  if (!h || h->magic_text != wire::magic || (h->role != "driver" && h->role != "peer"))
    return make_error(errc::invalid_argument, "expected a rayd HELLO");
  if (!token_matches(token, h->token))
    return make_error(errc::unauthenticated, "wrong cluster token");
  return h;
}

connection* connection_table::admit(int fd, clock_type::time_point now) {
  if (unauthenticated_ >= limits_.max_unauthenticated)
    return nullptr;
  auto c = std::make_unique<connection>();
  c->id = next_id_++;
  c->fd = fd;
  c->opened = now;
  auto* raw = c.get();
  conns_[raw->id] = std::move(c);
  ++unauthenticated_;
  return raw;
}

void connection_table::authenticate(connection& c, const wire::hello& h) {
  if (!c.authed)
    --unauthenticated_;
  c.authed = true;
  c.role = h.role;
  c.job_id = h.job_id;
}

connection* connection_table::find(uint64_t id) {
  auto i = conns_.find(id);
  return i == conns_.end() ? nullptr : i->second.get();
}

std::unique_ptr<connection> connection_table::take(uint64_t id) {
  auto i = conns_.find(id);
  if (i == conns_.end())
    return nullptr;
  auto c = std::move(i->second);
  conns_.erase(i);
  if (!c->authed)
    --unauthenticated_;
  return c;
}

std::vector<uint64_t> connection_table::overdue(clock_type::time_point now) const {
  std::vector<uint64_t> out;
  if (unauthenticated_ == 0)
    return out;
  for (auto& [id, c] : conns_)
    if (!c->authed && now - c->opened >= limits_.hello_timeout)
      out.push_back(id);
  return out;
}

bool connection_table::has_driver_of(const std::string& job_id) const {
  return std::any_of(conns_.begin(), conns_.end(), [&job_id](auto& kv) {
    return kv.second->authed && kv.second->role == "driver" && kv.second->job_id == job_id;
  });
}

} // namespace rayd::node
