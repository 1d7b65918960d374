#include "persistence/table.hpp"

namespace rayd::persistence {

caf::error commit_all(store& db, std::initializer_list<staged_table*> tables) {
  std::vector<write_op> ops;
  for (auto* t : tables)
    t->collect(ops);
  if (ops.empty())
    return caf::none;
  auto err = db.write(ops);
  for (auto* t : tables)
    t->settle(!err);
  return err;
}

} // namespace rayd::persistence
