#pragma once
// The exceptions rayd's C++ API throws. All derive from rayd::error.

#include <stdexcept>
#include <string>

namespace rayd {

class error : public std::runtime_error {
public:
  using std::runtime_error::runtime_error;
};

/// A task failed: it threw (remote_type() names the exception's type), its
/// function is unknown to the worker, its arguments did not match, or it
/// could not be scheduled (remote_type() "rayd::infeasible"), or it ran out
/// of retries after its worker or node died ("rayd::worker_died").
class task_error : public error {
public:
  task_error(std::string function, std::string remote_type, std::string remote_message,
             std::string node_id);
  const std::string& function() const noexcept {
    return function_;
  }
  const std::string& remote_type() const noexcept {
    return remote_type_;
  }
  const std::string& remote_message() const noexcept {
    return remote_message_;
  }
  /// The node it ran on ("" if it never ran).
  const std::string& node_id() const noexcept {
    return node_id_;
  }

private:
  std::string function_;
  std::string remote_type_;
  std::string remote_message_;
  std::string node_id_;
};

/// A call on an actor that is dead, or whose process or node died under the
/// call with its max_task_retries used up (remote_type() "rayd::actor_died").
/// what() says why: killed (by whom), its node died, its process crashed,
/// its constructor threw, restarts exhausted.
class actor_died_error : public task_error {
public:
  using task_error::task_error;
};

/// The object lived on a node that died (or was freed) and cannot be read.
class object_lost : public error {
public:
  using error::error;
};

/// get() or wait() ran out of time.
class get_timeout : public error {
public:
  using error::error;
};

/// The bytes of an object do not hold the type the caller asked for, or a
/// value could not be serialized.
class serialization_error : public error {
public:
  using error::error;
};

/// The object store cannot take an object (memory bound reached and the
/// spill disk is full).
class object_store_full : public error {
public:
  using error::error;
};

/// No cluster could be reached or started, or the token was refused.
class connection_error : public error {
public:
  using error::error;
};

} // namespace rayd
