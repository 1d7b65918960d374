# The rayd API, served on the head's API port (default 10001).
#
# Versioning: this is version 1. Fields and methods are only ever added (with
# new ordinals), never renumbered or removed, so old clients keep working.
#
# Security: the bootstrap capability offers nothing but authenticate(); every
# service is a capability handed out in exchange for the cluster token.
@0xa2de50d4abf96b0c;

using Cxx = import "/capnp/c++.capnp";
$Cxx.namespace("rayd::schema");

interface Gate {
  # The bootstrap interface.
  apiVersion @0 () -> (version :UInt32);
  authenticate @1 (token :Text) -> (services :Services);
  # Throws "invalid cluster token" for a wrong or empty token.
}

struct Services {
  cluster @0 :ClusterService;
  kv @1 :KvService;
}

interface ClusterService {
  status @0 () -> (status :ClusterStatus);
}

struct Resource {
  name @0 :Text;
  amount @1 :Float64;
}

struct Label {
  key @0 :Text;
  value @1 :Text;
}

enum NodeState {
  alive @0;
  dead @1;
}

struct Node {
  nodeId @0 :Text;
  name @1 :Text;
  address @2 :Text;
  state @3 :NodeState;
  isHead @4 :Bool;
  pid @5 :Int32;
  resourcesTotal @6 :List(Resource);
  resourcesAvailable @7 :List(Resource);
  labels @8 :List(Label);
  deathReason @9 :Text;
  startTimeMs @10 :Int64;
  deathTimeMs @11 :Int64;
}

struct ResourceDemand {
  shape @0 :List(Resource);
  count @1 :UInt64;
}

struct ClusterStatus {
  clusterId @0 :Text;
  epoch @1 :UInt64;
  nodes @2 :List(Node);
  pendingDemands @3 :List(ResourceDemand);
}

interface KvService {
  # Namespaced internal KV. A successful write is durable on the head.
  put @0 (namespace :Text, key :Data, value :Data, overwrite :Bool) -> (added :Bool);
  get @1 (namespace :Text, key :Data) -> (found :Bool, value :Data);
  del @2 (namespace :Text, key :Data) -> (deleted :Bool);
  list @3 (namespace :Text, prefix :Data) -> (keys :List(Data));
}
