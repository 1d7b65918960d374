#include "actors/gcs/cluster_meta.hpp"

#include "common/error.hpp"
#include "common/token.hpp"
#include "common/util.hpp"

namespace rayd::gcs {

namespace {

constexpr const char* table = "meta";

caf::expected<std::string> get_or(persistence::store& db, const char* key,
                                  std::string fallback) {
  auto v = db.get(table, key);
  if (!v)
    return v.error();
  return *v ? **v : fallback;
}

uint64_t to_u64(const std::string& s) {
  try {
    return s.empty() ? 0 : std::stoull(s);
  } catch (...) {
    return 0;
  }
}

} // namespace

caf::expected<cluster_meta> start_epoch(persistence::store& db,
                                        const std::string& token_override) {
  cluster_meta m;
  auto id = get_or(db, "cluster_id", "");
  auto epoch = get_or(db, "epoch", "0");
  auto token = get_or(db, "token", "");
  auto head = get_or(db, "head_node_id", "");
  auto cport = get_or(db, "cluster_port", "0");
  auto aport = get_or(db, "api_port", "0");
  for (auto* e : {&id, &epoch, &token, &head, &cport, &aport})
    if (!*e)
      return e->error();
  m.created = id->empty();
  m.cluster_id = m.created ? random_hex(16) : *id;
  m.epoch = to_u64(*epoch) + 1;
  m.token = !token_override.empty() ? token_override
            : token->empty()        ? generate_token()
                                    : *token;
  m.head_node_id = head->empty() ? random_hex(14) : *head;
  m.cluster_port = static_cast<uint16_t>(to_u64(*cport));
  m.api_port = static_cast<uint16_t>(to_u64(*aport));
  using op = persistence::write_op;
  auto err = db.write({op::put(table, "cluster_id", m.cluster_id),
                       op::put(table, "epoch", std::to_string(m.epoch)),
                       op::put(table, "token", m.token),
                       op::put(table, "head_node_id", m.head_node_id)});
  if (err)
    return err;
  return m;
}

caf::error save_ports(persistence::store& db, uint16_t cluster_port,
                      uint16_t api_port) {
  using op = persistence::write_op;
  return db.write({op::put(table, "cluster_port", std::to_string(cluster_port)),
                   op::put(table, "api_port", std::to_string(api_port))});
}

} // namespace rayd::gcs
