#pragma once
// rayd's C++ API: the one header programs include.
//
//   #include <rayd/rayd.hpp>
//   int add(int a, int b) { return a + b; }
//   RAYD_REMOTE(add);
//
//   int main() {
//     rayd::init();
//     int three = rayd::get(rayd::task(add).remote(1, 2));
//     rayd::shutdown();
//   }
//
// What lives where: remote.hpp (RAYD_REMOTE), task.hpp (task(fn) and its
// options), object_ref.hpp (object_ref, get, put, wait), serialize.hpp
// (how values become msgpack bytes), errors.hpp (what is thrown), core.hpp
// (init_options and the untyped runtime underneath). docs/tasks.md has the
// design.

#include "rayd/actor_registry.hpp"
#include "rayd/core.hpp"
#include "rayd/errors.hpp"
#include "rayd/object_ref.hpp"
#include "rayd/remote.hpp"
#include "rayd/serialize.hpp"
#include "rayd/actor.hpp"
#include "rayd/task.hpp"

namespace rayd {

/// Connects this program to a cluster (see init_options for how one is
/// found or started). In a worker process (started by a node) it serves
/// tasks instead and never returns, so call it early in main(), before
/// work that only the driver should do.
inline void init(const init_options& opts = {}) {
  core::start(opts);
}

/// Disconnects: the job's objects are freed and object_refs still alive
/// become inert (dropping them does nothing; get on them throws).
inline void shutdown() {
  core::stop();
}

/// Whether init() ran and shutdown() did not.
inline bool is_initialized() {
  return core::running();
}

} // namespace rayd
