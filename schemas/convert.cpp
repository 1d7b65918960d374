#include "schemas/convert.hpp"

#include <algorithm>

namespace rayd::rpc {

void fill_resources(capnp::List<schema::Resource>::Builder out,
                    const resource_map& in) {
  unsigned i = 0;
  for (auto& [name, amount] : in) {
    out[i].setName(name);
    out[i].setAmount(amount);
    ++i;
  }
}

resource_map read_resources(capnp::List<schema::Resource>::Reader in) {
  resource_map out;
  for (auto r : in)
    out[to_std(r.getName())] = r.getAmount();
  return out;
}

namespace {

void fill_entries(capnp::List<schema::Entry>::Builder out, const string_map& in) {
  unsigned i = 0;
  for (auto& [k, v] : in) {
    out[i].setKey(k);
    out[i].setValue(v);
    ++i;
  }
}

string_map read_entries(capnp::List<schema::Entry>::Reader in) {
  string_map out;
  for (auto e : in)
    out[to_std(e.getKey())] = to_std(e.getValue());
  return out;
}

} // namespace

schema::JobState to_capnp(job_state x) {
  switch (x) {
    case job_state::pending: return schema::JobState::PENDING;
    case job_state::running: return schema::JobState::RUNNING;
    case job_state::succeeded: return schema::JobState::SUCCEEDED;
    case job_state::failed: return schema::JobState::FAILED;
    case job_state::stopped: return schema::JobState::STOPPED;
  }
  return schema::JobState::FAILED;
}

job_state from_capnp(schema::JobState x) {
  switch (x) {
    case schema::JobState::PENDING: return job_state::pending;
    case schema::JobState::RUNNING: return job_state::running;
    case schema::JobState::SUCCEEDED: return job_state::succeeded;
    case schema::JobState::FAILED: return job_state::failed;
    case schema::JobState::STOPPED: return job_state::stopped;
  }
  return job_state::failed; // an enumerant from a newer peer
}

void fill(schema::JobSubmission::Builder out, const job_submission& in) {
  out.setSubmissionId(in.submission_id);
  out.setEntrypoint(in.entrypoint);
  fill_entries(out.initMetadata(static_cast<unsigned>(in.metadata.size())),
               in.metadata);
  fill_entries(out.initEnvVars(static_cast<unsigned>(in.env_vars.size())),
               in.env_vars);
  out.setWorkingDir(in.working_dir);
  out.setRuntimeEnvJson(in.runtime_env_json);
  fill_resources(out.initResources(static_cast<unsigned>(in.resources.size())),
                 in.resources);
}

job_submission from_capnp(schema::JobSubmission::Reader in) {
  job_submission out;
  out.submission_id = to_std(in.getSubmissionId());
  out.entrypoint = to_std(in.getEntrypoint());
  out.metadata = read_entries(in.getMetadata());
  out.env_vars = read_entries(in.getEnvVars());
  out.working_dir = to_std(in.getWorkingDir());
  out.runtime_env_json = to_std(in.getRuntimeEnvJson());
  out.resources = read_resources(in.getResources());
  return out;
}

void fill(schema::JobInfo::Builder out, const job_info& in) {
  fill(out.initSubmission(), in.spec);
  out.setState(to_capnp(in.state));
  out.setMessage(in.message);
  out.setExitCode(in.exit_code);
  out.setExitSignal(in.exit_signal);
  out.setSubmitTimeMs(in.submit_time_ms);
  out.setStartTimeMs(in.start_time_ms);
  out.setEndTimeMs(in.end_time_ms);
  out.setNodeId(in.node_id);
  out.setNodeName(in.node_name);
  out.setPid(in.pid);
  out.setQueuePosition(in.queue_position);
  out.setStopRequested(in.stop_requested);
}

job_info from_capnp(schema::JobInfo::Reader in) {
  job_info out;
  out.spec = from_capnp(in.getSubmission());
  out.state = from_capnp(in.getState());
  out.message = to_std(in.getMessage());
  out.exit_code = in.getExitCode();
  out.exit_signal = in.getExitSignal();
  out.submit_time_ms = in.getSubmitTimeMs();
  out.start_time_ms = in.getStartTimeMs();
  out.end_time_ms = in.getEndTimeMs();
  out.node_id = to_std(in.getNodeId());
  out.node_name = to_std(in.getNodeName());
  out.pid = in.getPid();
  out.queue_position = in.getQueuePosition();
  out.stop_requested = in.getStopRequested();
  return out;
}

void fill(schema::TaskEvent::Builder out, const task_event& in) {
  out.setTaskId(in.task_id);
  out.setFunction(in.function);
  out.setState(in.state);
  out.setNodeId(in.node_id);
  out.setAttempt(in.attempt);
  out.setError(in.error);
  out.setUpdateTimeMs(in.update_time_ms);
  out.setJobId(in.job_id);
}

task_event from_capnp(schema::TaskEvent::Reader in) {
  task_event out;
  out.task_id = to_std(in.getTaskId());
  out.function = to_std(in.getFunction());
  out.state = to_std(in.getState());
  out.node_id = to_std(in.getNodeId());
  out.attempt = in.getAttempt();
  out.error = to_std(in.getError());
  out.update_time_ms = in.getUpdateTimeMs();
  out.job_id = to_std(in.getJobId());
  return out;
}

void fill(schema::TaskCounts::Builder out, const task_counts& in) {
  out.setPending(in.pending);
  out.setRunning(in.running);
  out.setFinished(in.finished);
  out.setFailed(in.failed);
}

task_counts from_capnp(schema::TaskCounts::Reader in) {
  return {in.getPending(), in.getRunning(), in.getFinished(), in.getFailed()};
}

void fill(schema::ClusterStatus::Builder out, const cluster_view& in) {
  out.setClusterId(in.cluster_id);
  out.setEpoch(in.epoch);
  auto nodes = out.initNodes(static_cast<unsigned>(in.nodes.size()));
  for (unsigned i = 0; i < in.nodes.size(); ++i) {
    auto& n = in.nodes[i];
    auto b = nodes[i];
    b.setNodeId(n.node_id);
    b.setName(n.name);
    b.setAddress(n.address);
    b.setState(n.get_state() == node_state::alive ? schema::NodeState::ALIVE
                                                  : schema::NodeState::DEAD);
    b.setIsHead(n.is_head);
    b.setPid(n.pid);
    fill_resources(b.initResourcesTotal(static_cast<unsigned>(n.resources_total.size())),
                   n.resources_total);
    fill_resources(b.initResourcesAvailable(
                     static_cast<unsigned>(n.resources_available.size())),
                   n.resources_available);
    auto labels = b.initLabels(static_cast<unsigned>(n.labels.size()));
    unsigned j = 0;
    for (auto& [k, v] : n.labels) {
      labels[j].setKey(k);
      labels[j].setValue(v);
      ++j;
    }
    b.setDeathReason(n.death_reason);
    b.setStartTimeMs(n.start_time_ms);
    b.setDeathTimeMs(n.death_time_ms);
    auto ds = b.initPendingDemands(static_cast<unsigned>(n.load.demands.size()));
    for (unsigned j = 0; j < n.load.demands.size(); ++j) {
      auto& d = n.load.demands[j];
      fill_resources(ds[j].initShape(static_cast<unsigned>(d.shape.size())), d.shape);
      ds[j].setCount(d.count);
    }
    b.setObjectStoreUsed(n.load.object_store_used);
    b.setObjectStoreSpilled(n.load.object_store_spilled);
    b.setObjectStoreCapacity(n.load.object_store_capacity);
    b.setObjectCount(n.load.object_count);
    b.setLeases(n.load.leases);
    b.setWorkers(n.load.workers);
    b.setOpenFilesLimit(n.open_files_limit);
  }
  auto total = cluster_demands(in.nodes);
  auto pd = out.initPendingDemands(static_cast<unsigned>(total.size()));
  for (unsigned j = 0; j < total.size(); ++j) {
    fill_resources(pd[j].initShape(static_cast<unsigned>(total[j].shape.size())),
                   total[j].shape);
    pd[j].setCount(total[j].count);
  }
}

cluster_view from_capnp(schema::ClusterStatus::Reader in) {
  cluster_view out;
  out.cluster_id = to_std(in.getClusterId());
  out.epoch = in.getEpoch();
  for (auto b : in.getNodes()) {
    node_info n;
    n.node_id = to_std(b.getNodeId());
    n.name = to_std(b.getName());
    n.address = to_std(b.getAddress());
    n.state = static_cast<uint8_t>(b.getState() == schema::NodeState::ALIVE
                                     ? node_state::alive
                                     : node_state::dead);
    n.is_head = b.getIsHead();
    n.pid = b.getPid();
    n.resources_total = read_resources(b.getResourcesTotal());
    n.resources_available = read_resources(b.getResourcesAvailable());
    for (auto l : b.getLabels())
      n.labels[to_std(l.getKey())] = to_std(l.getValue());
    n.death_reason = to_std(b.getDeathReason());
    n.start_time_ms = b.getStartTimeMs();
    n.death_time_ms = b.getDeathTimeMs();
    for (auto d : b.getPendingDemands())
      n.load.demands.push_back({read_resources(d.getShape()), d.getCount()});
    n.load.object_store_used = b.getObjectStoreUsed();
    n.load.object_store_spilled = b.getObjectStoreSpilled();
    n.load.object_store_capacity = b.getObjectStoreCapacity();
    n.load.object_count = b.getObjectCount();
    n.load.leases = b.getLeases();
    n.load.workers = b.getWorkers();
    n.open_files_limit = b.getOpenFilesLimit();
    out.nodes.push_back(std::move(n));
  }
  return out;
}

void fill(schema::ActorCreate::Builder out, const actor_create_request& in) {
  out.setActorId(in.actor_id);
  out.setName(in.name);
  out.setNamespace(in.ray_namespace);
  out.setClassName(in.class_name);
  out.setOwnerJob(in.owner_job);
  out.setDetached(in.detached);
  out.setGetIfExists(in.get_if_exists);
  out.setMaxRestarts(in.max_restarts);
  out.setMaxTaskRetries(in.max_task_retries);
  out.setMaxConcurrency(in.max_concurrency);
  fill_resources(out.initResources(static_cast<unsigned>(in.resources.size())),
                 in.resources);
  auto labels = out.initLabelSelector(static_cast<unsigned>(in.label_selector.size()));
  unsigned j = 0;
  for (auto& [k, v] : in.label_selector) {
    labels[j].setKey(k);
    labels[j].setValue(v);
    ++j;
  }
  auto args = out.initArgs(static_cast<unsigned>(in.args.size()));
  for (unsigned i = 0; i < in.args.size(); ++i)
    args.set(i, as_data(in.args[i]));
  auto code = out.initCode(static_cast<unsigned>(in.code.size()));
  for (unsigned i = 0; i < in.code.size(); ++i) {
    code[i].setHash(in.code[i].hash);
    code[i].setName(in.code[i].name);
  }
}

actor_create_request from_capnp(schema::ActorCreate::Reader in) {
  actor_create_request out;
  out.actor_id = to_std(in.getActorId());
  out.name = to_std(in.getName());
  out.ray_namespace = to_std(in.getNamespace());
  out.class_name = to_std(in.getClassName());
  out.owner_job = to_std(in.getOwnerJob());
  out.detached = in.getDetached();
  out.get_if_exists = in.getGetIfExists();
  out.max_restarts = in.getMaxRestarts();
  out.max_task_retries = in.getMaxTaskRetries();
  out.max_concurrency = in.getMaxConcurrency();
  out.resources = read_resources(in.getResources());
  for (auto l : in.getLabelSelector())
    out.label_selector[to_std(l.getKey())] = to_std(l.getValue());
  for (auto a : in.getArgs())
    out.args.push_back(to_std(a));
  for (auto c : in.getCode())
    out.code.push_back({to_std(c.getHash()), to_std(c.getName())});
  return out;
}

void fill(schema::ActorInfo::Builder out, const actor_info& in) {
  out.setActorId(in.actor_id);
  out.setName(in.name);
  out.setNamespace(in.ray_namespace);
  out.setClassName(in.class_name);
  out.setOwnerJob(in.owner_job);
  out.setState(in.state);
  out.setNodeId(in.node_id);
  out.setPid(in.pid);
  out.setAddress(in.address);
  out.setRestarts(in.restarts);
  out.setMaxRestarts(in.max_restarts);
  out.setMaxTaskRetries(in.max_task_retries);
  out.setDetached(in.detached);
  out.setDeathCause(in.death_cause);
  out.setCreateTimeMs(in.create_time_ms);
  out.setEndTimeMs(in.end_time_ms);
  out.setError(in.error);
}

actor_info from_capnp(schema::ActorInfo::Reader in) {
  actor_info out;
  out.actor_id = to_std(in.getActorId());
  out.name = to_std(in.getName());
  out.ray_namespace = to_std(in.getNamespace());
  out.class_name = to_std(in.getClassName());
  out.owner_job = to_std(in.getOwnerJob());
  out.state = to_std(in.getState());
  out.node_id = to_std(in.getNodeId());
  out.pid = in.getPid();
  out.address = to_std(in.getAddress());
  out.restarts = in.getRestarts();
  out.max_restarts = in.getMaxRestarts();
  out.max_task_retries = in.getMaxTaskRetries();
  out.detached = in.getDetached();
  out.death_cause = to_std(in.getDeathCause());
  out.create_time_ms = in.getCreateTimeMs();
  out.end_time_ms = in.getEndTimeMs();
  out.error = to_std(in.getError());
  return out;
}

} // namespace rayd::rpc
