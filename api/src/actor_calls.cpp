// See actor_calls.hpp.

#include "actor_calls.hpp"

#include <fcntl.h>
#include <unistd.h>

#include "common/error.hpp"
#include "common/net.hpp"

namespace rayd::core {

actor_calls::actor& actor_calls::get(const actor_id& id, bool& created) {
  auto [it, inserted] = actors_.try_emplace(id);
  created = inserted;
  if (inserted)
    it->second.id = id;
  return it->second;
}

actor_calls::actor* actor_calls::find(const actor_id& id) {
  auto it = actors_.find(id);
  return it == actors_.end() ? nullptr : &it->second;
}

actor_calls::conn* actor_calls::conn_to(const std::string& address, int32_t pid) {
  for (auto& [_, c] : conns_)
    if (c.at.pid == pid && c.at.address == address)
      return &c;
  return nullptr;
}

actor_calls::conn* actor_calls::find_conn(uint64_t id) {
  auto it = conns_.find(id);
  return it == conns_.end() ? nullptr : &it->second;
}

actor_calls::conn& actor_calls::add_conn(int fd, const std::string& address, int32_t pid) {
  auto id = next_conn_++;
  auto& c = conns_[id];
  c.id = id;
  c.fd = fd;
  c.at.address = address;
  c.at.pid = pid;
  return c;
}

std::optional<actor_calls::conn> actor_calls::remove_conn(uint64_t id) {
  auto it = conns_.find(id);
  if (it == conns_.end())
    return std::nullopt;
  auto out = std::move(it->second);
  conns_.erase(it);
  return out;
}

std::vector<actor_calls::actor*> actor_calls::actors_on(uint64_t conn_id) {
  std::vector<actor*> out;
  for (auto& [_, a] : actors_)
    if (a.conn == conn_id)
      out.push_back(&a);
  return out;
}

void actor_calls::mark_stale(actor& a, clock_type::time_point now) {
  if (a.st != state::alive)
    return;
  a.stale = true;
  a.gone = a.at;
  a.stale_since = now;
  a.st = state::resolving;
  a.conn = 0;
}

int actor_calls::open_attach(const std::string& address, const std::string& token,
                             const std::string& job_id, int32_t pid, std::string& why) {
  auto fd = connect_tcp(address);
  if (!fd) {
    why = describe(fd.error());
    return -1;
  }
  auto hello = wire::encode(wire::msg::hello, wire::hello{wire::magic, token, "driver", job_id});
  if (wire::write_all(*fd, hello + wire::encode(wire::msg::attach, wire::attach_msg{pid}))) {
    ::close(*fd);
    why = "node " + address + " closed the connection";
    return -1;
  }
  ::fcntl(*fd, F_SETFL, ::fcntl(*fd, F_GETFL) | O_NONBLOCK);
  return *fd;
}

} // namespace rayd::core
