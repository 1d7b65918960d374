#pragma once
// Converters between rayd's C++ types and the generated Cap'n Proto types.
// Generated names stay inside schemas/.

#include <string>

#include <capnp/common.h>

#include "actors/actor_types.hpp"
#include "actors/job_types.hpp"
#include "actors/types.hpp"
#include "schemas/rayd_api.capnp.h"

namespace rayd::rpc {

inline std::string to_std(capnp::Text::Reader t) {
  return std::string{t.cStr(), t.size()};
}

inline std::string to_std(capnp::Data::Reader d) {
  return std::string{reinterpret_cast<const char*>(d.begin()), d.size()};
}

inline capnp::Data::Reader as_data(const std::string& s) {
  return capnp::Data::Reader{reinterpret_cast<const kj::byte*>(s.data()), s.size()};
}

void fill_resources(capnp::List<schema::Resource>::Builder out, const resource_map& in);
resource_map read_resources(capnp::List<schema::Resource>::Reader in);

void fill(schema::ClusterStatus::Builder out, const cluster_view& in);
cluster_view from_capnp(schema::ClusterStatus::Reader in);

schema::JobState to_capnp(job_state x);
job_state from_capnp(schema::JobState x);
void fill(schema::JobSubmission::Builder out, const job_submission& in);
job_submission from_capnp(schema::JobSubmission::Reader in);
void fill(schema::JobInfo::Builder out, const job_info& in);
void fill(schema::TaskEvent::Builder out, const task_event& in);
task_event from_capnp(schema::TaskEvent::Reader in);
void fill(schema::TaskCounts::Builder out, const task_counts& in);
task_counts from_capnp(schema::TaskCounts::Reader in);
job_info from_capnp(schema::JobInfo::Reader in);
void fill(schema::ActorCreate::Builder out, const actor_create_request& in);
actor_create_request from_capnp(schema::ActorCreate::Reader in);
void fill(schema::ActorInfo::Builder out, const actor_info& in);
actor_info from_capnp(schema::ActorInfo::Reader in);

} // namespace rayd::rpc
