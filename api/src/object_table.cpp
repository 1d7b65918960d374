// See object_table.hpp.

#include "object_table.hpp"

#include <sstream>

namespace rayd::core {

std::string object_table::new_id() {
  std::ostringstream out;
  out << prefix_ << std::hex << next_++;
  return out.str();
}

object_table::entry& object_table::create_pending(const std::string& id,
                                                  const std::string& function) {
  auto& e = objects_[id];
  e.function = function;
  e.refs = 1; // the caller's
  return e;
}

void object_table::create_value(const std::string& id, std::string bytes) {
  auto& e = objects_[id];
  e.state = entry::ready_value;
  e.value = std::move(bytes);
  e.refs = 1; // the caller's
}

object_table::entry* object_table::find(const std::string& id) {
  auto it = objects_.find(id);
  return it == objects_.end() ? nullptr : &it->second;
}

object_table::entry& object_table::slot(const std::string& id) {
  return objects_[id];
}

void object_table::erase(const std::string& id) {
  objects_.erase(id);
}

void object_table::fail(entry& e, std::string type, std::string message, std::string node,
                        bool lost) {
  e.state = entry::failed;
  e.error_type = std::move(type);
  e.error_message = std::move(message);
  e.node_id = std::move(node);
  e.lost = lost;
}

void object_table::apply_result(entry& e, const wire::task_result& r) {
  switch (r.kind) {
    case wire::task_result::value:
      e.state = entry::ready_value;
      e.value = r.data;
      break;
    case wire::task_result::stored:
      e.state = entry::ready_stored;
      e.loc = r.loc;
      break;
    default:
      fail(e, r.error_type, r.error_message, r.node_id, r.error_type == "rayd::object_lost");
  }
  e.node_id = r.node_id;
}

bool object_table::pin(const std::string& arg, uint64_t seq, bool& waits) {
  auto it = objects_.find(arg);
  if (it == objects_.end())
    return false;
  ++it->second.pinned;
  waits = it->second.state == entry::pending;
  if (waits)
    it->second.waiters.push_back(seq);
  return true;
}

void object_table::unpin(const std::string& arg) {
  auto it = objects_.find(arg);
  if (it == objects_.end())
    return;
  if (--it->second.pinned <= 0 && it->second.refs <= 0)
    maybe_forget(it);
}

void object_table::add_ref(const std::string& id) {
  if (auto it = objects_.find(id); it != objects_.end())
    ++it->second.refs;
}

void object_table::release(const std::string& id) {
  auto it = objects_.find(id);
  if (it == objects_.end())
    return;
  if (--it->second.refs > 0 || it->second.pinned > 0)
    return;
  maybe_forget(it);
}

object_table::settled object_table::settle(const std::string& id) {
  settled out;
  auto it = objects_.find(id);
  if (it == objects_.end())
    return out;
  auto& e = it->second;
  out.waiters = std::move(e.waiters);
  e.waiters.clear();
  if (e.state == entry::failed) {
    out.failed = true;
    out.lost = e.lost;
    out.error_type = e.error_type;
    out.error_message = e.error_message;
    out.node_id = e.node_id;
  }
  // Its waiters pin it, so it stays while they need it.
  if (e.refs <= 0 && e.pinned <= 0)
    maybe_forget(it);
  return out;
}

std::vector<wire::object_loc> object_table::take_frees() {
  auto out = std::move(frees_);
  frees_.clear();
  return out;
}

void object_table::maybe_forget(std::unordered_map<std::string, entry>::iterator it) {
  if (it->second.state == entry::pending)
    return; // its task's result will arrive; forget it then
  if (it->second.state == entry::ready_stored)
    frees_.push_back(it->second.loc);
  objects_.erase(it);
}

} // namespace rayd::core
