#pragma once

// The nodes a driver knows, and which of them it asks for a lease or hands a
// large put (docs/tasks.md, "The driver": failure rules).
//
// Contract: the home node (the driver's own node, else the head) is asked
// first. A node that refused a connection is skipped for `down_for`; while
// the home is skipped, another known node is asked (the driver learns nodes
// from the cluster's status at init and later, from GRANTED and from
// SPILLBACK). A node is known by its id: a node that restarts (the head after
// a kill) comes back with a new node port, and learn() moves it there, so the
// driver uses it again. pick() answers "" only when every known node is
// skipped; the caller then waits and asks again, it does not give up at once.
//
// Thread rules: none of its own; the driver's state mutex guards it. No I/O.

#include <chrono>
#include <map>
#include <string>
#include <vector>

namespace rayd::core {

class node_directory {
public:
  using clock_type = std::chrono::steady_clock;

  /// How long a node that refused a connection is not asked again.
  static constexpr std::chrono::milliseconds down_for{1000};

  /// A node seen alive, as a status or a reply names it.
  struct node {
    std::string node_id;
    std::string address; // its node port (task server)
  };

  node_directory() = default;
  node_directory(std::string home_id, std::string home_address);

  /// A node is alive at `address` (a new address replaces the old one; a
  /// node learnt again is no longer skipped unless its address is the same).
  void learn(const std::string& node_id, const std::string& address);

  /// The alive nodes of a fresh status: nodes missing from it are forgotten
  /// (the home never is: it may be on its way back).
  void replace(const std::vector<node>& alive);

  /// A connection to `address` was refused or broke unanswered: skip the
  /// node until `now + down_for`.
  void mark_down(const std::string& address, clock_type::time_point now);

  /// Where to ask next: the home unless skipped, else the first known node
  /// not skipped; "" if every node is skipped.
  std::string pick(clock_type::time_point now) const;

  /// True while some node is skipped (a fresh status may tell where it went).
  bool any_down(clock_type::time_point now) const;

  const std::string& home_id() const {
    return home_id_;
  }
  /// The home's address ("" if unknown).
  std::string home_address() const;
  std::size_t size() const {
    return nodes_.size();
  }

private:
  struct entry {
    std::string address;
    clock_type::time_point down_until{};
  };

  std::string home_id_;
  std::map<std::string, entry> nodes_; // by node id
};

} // namespace rayd::core
