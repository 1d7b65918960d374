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

const currentApiVersion :UInt32 = 1;
# The API's version: the head answers it from Gate.apiVersion, and every
# client asks it right after connecting, before authenticate sends the
# token. The rule is equality: a client and a head talk only when their
# numbers are equal; otherwise the client fails with one line naming both
# (docs/architecture.md, "Connections and timeouts"). Bump it on any change
# an older peer cannot read or answer (a removed or renumbered field or
# method, a changed meaning); adding a field or method that old peers may
# ignore (Cap'n Proto's schema evolution) does not bump it. Gate itself never
# changes: it is how two versions find out they differ.

interface Gate {
  # The bootstrap interface.
  apiVersion @0 () -> (version :UInt32);
  authenticate @1 (token :Text) -> (services :Services);
  # Throws "invalid cluster token" for a wrong or empty token.
}

struct Services {
  cluster @0 :ClusterService;
  kv @1 :KvService;
  jobs @2 :JobService;
  tasks @3 :TaskService;
  actors @4 :ActorService;
  client @5 :ClientService;
}

interface ClusterService {
  status @0 () -> (status :ClusterStatus);
  autoscalerStatus @1 () -> (enabled :Bool, statusJson :Text);
  # The autoscaler's last round as JSON (docs/autoscaler.md, "Status");
  # enabled is false when the head runs without --autoscaling-config.
  requestResources @2 (bundles :List(Bundle)) -> ();
  # Explicit requests (Ray's request_resources): the cluster scales to hold
  # all bundles at once, whatever runs; replaces the previous request; an
  # empty list clears it. Fails without an autoscaler.
}

struct Bundle {
  resources @0 :List(Resource);
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
  # Soft state from the node's last report:
  pendingDemands @12 :List(ResourceDemand);
  objectStoreUsed @13 :UInt64;
  objectStoreSpilled @14 :UInt64;
  objectStoreCapacity @15 :UInt64;
  objectCount @16 :UInt64;
  leases @17 :UInt32;
  workers @18 :UInt32;
  openFilesLimit @19 :Int64;
  # The node daemon's open-file soft limit, raised to the hard limit at start.
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

struct Entry {
  key @0 :Text;
  value @1 :Text;
}

enum JobState {
  pending @0;
  running @1;
  succeeded @2;
  failed @3;
  stopped @4;
}

struct JobSubmission {
  submissionId @0 :Text;
  # Empty: the head generates one ("rayd_job_<hex>"). Otherwise unique,
  # 1-128 characters of A-Z a-z 0-9 _ . -
  entrypoint @1 :Text;
  # A shell command line, run with /bin/sh -c on the chosen node.
  metadata @2 :List(Entry);
  envVars @3 :List(Entry);
  workingDir @4 :Text;
  # "" (a fresh directory), "gcs://<sha256>.tar.gz" (see uploadPackage) or
  # "file:///ABSOLUTE/DIR" (a directory that exists on the nodes).
  runtimeEnvJson @5 :Text;
  # The runtime env as the user wrote it, kept for display.
  resources @6 :List(Resource);
  # Entrypoint resources (CPU, GPU, memory, custom). Empty: run on the head.
}

struct JobInfo {
  submission @0 :JobSubmission;
  state @1 :JobState;
  message @2 :Text;
  exitCode @3 :Int32;
  # -1 while unknown or when a signal ended the entrypoint.
  exitSignal @4 :Int32;
  submitTimeMs @5 :Int64;
  startTimeMs @6 :Int64;
  endTimeMs @7 :Int64;
  nodeId @8 :Text;
  nodeName @9 :Text;
  pid @10 :Int32;
  queuePosition @11 :UInt64;
  # PENDING jobs waiting for admission: their 1-based place in the queue.
  stopRequested @12 :Bool;
}

interface JobService {
  # Jobs: run a command on the cluster, keep its logs, tell how it ended.
  # Errors name the problem: unknown id, duplicate id, bad submission, ...
  submit @0 (submission :JobSubmission) -> (job :JobInfo);
  # Returns once the job is durably PENDING (or already placed).
  status @1 (submissionId :Text) -> (state :JobState, message :Text);
  info @2 (submissionId :Text) -> (job :JobInfo);
  list @3 () -> (jobs :List(JobInfo));
  stop @4 (submissionId :Text) -> (job :JobInfo);
  # Works in every state: a queued job is STOPPED at once; a running one gets
  # SIGTERM on all its processes, SIGKILL after the head's grace period.
  delete @5 (submissionId :Text) -> (deleted :Bool);
  # Only ended jobs; deletes the log too.
  logs @6 (submissionId :Text, offset :UInt64, maxBytes :UInt32, waitMs :UInt32)
      -> (offset :UInt64, data :Data, closed :Bool);
  # A cursor over the log: bytes from `offset` (at most maxBytes, the head
  # caps it at 4 MiB). With waitMs > 0 the call returns when bytes past
  # `offset` exist, the log is closed, or waitMs (capped at 10 s) passed.
  # `closed`: the job has ended and nothing follows these bytes.
  wait @7 (submissionId :Text, timeoutMs :UInt32) -> (job :JobInfo);
  # Returns when the job has ended or after timeoutMs (capped at 10 s).
  uploadPackage @8 (data :Data) -> (uri :Text);
  # Stores a working_dir package (tar.gz, at most 100 MiB) by the SHA-256 of
  # its bytes; returns its URI "gcs://<sha256>.tar.gz".
  hasPackage @9 (uri :Text) -> (present :Bool);
}

struct TaskEvent {
  taskId @0 :Text;
  function @1 :Text;
  state @2 :Text;
  # PENDING (waiting for arguments or a lease), RUNNING, FINISHED, FAILED
  nodeId @3 :Text;
  attempt @4 :UInt32;
  error @5 :Text;
  updateTimeMs @6 :Int64;
  jobId @7 :Text;
}

struct TaskCounts {
  pending @0 :UInt64;
  running @1 :UInt64;
  finished @2 :UInt64;
  failed @3 :UInt64;
}

interface TaskService {
  # Drivers report their tasks; rayctl reads them. The head keeps the most
  # recent events (bounded) and each live driver's counts.
  report @0 (jobId :Text, counts :TaskCounts, events :List(TaskEvent)) -> ();
  list @1 (limit :UInt32) -> (tasks :List(TaskEvent), counts :TaskCounts);
  # The newest `limit` events (at most 10,000), and the counts summed over
  # drivers that reported within the last 10 s.
}

struct CodeFile {
  hash @0 :Text;
  name @1 :Text;
}

struct ActorCreate {
  actorId @0 :Text;
  # Chosen by the creator (20 hex characters); a retried create of a
  # recorded id answers with that row.
  name @1 :Text;
  namespace @2 :Text;
  className @3 :Text;
  ownerJob @4 :Text;
  detached @5 :Bool;
  getIfExists @6 :Bool;
  maxRestarts @7 :Int32;
  maxTaskRetries @8 :Int32;
  maxConcurrency @9 :Int32;
  resources @10 :List(Resource);
  labelSelector @11 :List(Label);
  args @12 :List(Data);
  # msgpack bytes of each constructor argument
  code @13 :List(CodeFile);
}

struct ActorInfo {
  actorId @0 :Text;
  name @1 :Text;
  namespace @2 :Text;
  className @3 :Text;
  ownerJob @4 :Text;
  state @5 :Text;
  # PENDING_CREATION, ALIVE, RESTARTING, DEAD
  nodeId @6 :Text;
  pid @7 :Int32;
  address @8 :Text;
  # the node port of its node: callers attach there to `pid`
  restarts @9 :Int32;
  maxRestarts @10 :Int32;
  maxTaskRetries @11 :Int32;
  detached @12 :Bool;
  deathCause @13 :Text;
  createTimeMs @14 :Int64;
  endTimeMs @15 :Int64;
  error @16 :Text;
  # only in create replies: why this create failed ("" = it did not)
}

interface ActorService {
  # User actors (docs/actors.md). Calls to actors do not pass here: callers
  # reach the actor's worker process directly.
  create @0 (requests :List(ActorCreate)) -> (actors :List(ActorInfo));
  # One durable commit for the batch; replies in request order once each
  # row is durably PENDING_CREATION (or with `error` set).
  wait @1 (actorIds :List(Text), timeoutMs :UInt32) -> (actors :List(ActorInfo));
  # Returns once each actor is ALIVE or DEAD, or after timeoutMs (capped at
  # 10 s) as they are.
  get @2 (name :Text, namespace :Text) -> (actor :ActorInfo);
  # The live actor of that name; throws "not found" otherwise.
  list @3 () -> (actors :List(ActorInfo));
  kill @4 (idOrName :Text, namespace :Text, noRestart :Bool, by :Text) -> (actor :ActorInfo);
}

# -- remote clients (docs/client.md) -------------------------------------------
#
# A program outside the cluster's network runs as a client: its runtime calls
# travel as ops to a session on the head, which runs them with a driver of
# its own. Ops carry sequence numbers; the session keeps each reply until the
# client acknowledges it, so a client that reconnects (open with resumeId)
# resends what it has no reply for and nothing runs twice.

interface ClientService {
  open @0 (resumeId :Text, jobName :Text, code :List(CodeFile), graceMs :UInt64)
       -> (sessionId :Text, graceMs :UInt64, lastSeq :UInt64);
  # resumeId "": a new session for the program whose code is `code` (uploaded
  # with JobService.uploadPackage first); graceMs 0 takes the head's
  # --client-reconnect-grace. Else resumes that session on this connection:
  # fails "session S expired ..." after its grace, "session S is unknown to
  # this head" after a head restart. lastSeq: the highest op seq it has seen.
  exec @1 (sessionId :Text, ack :UInt64, ops :List(ClientOp)) -> (replies :List(ClientReply));
  # Runs the ops in seq order (a seq already seen is answered, not re-run);
  # returns once every op of this call has its reply. `ack`: the client has
  # every reply up to that seq, and the session forgets them.
  writeChunk @2 (sessionId :Text, stream :UInt64, offset :UInt64, data :Data)
             -> (next :UInt64);
  # Bytes of a putStream op's value; a chunk below `next` is a resend and is
  # ignored. Returns the offset the session expects next.
  readChunk @3 (sessionId :Text, stream :UInt64, offset :UInt64) -> (data :Data);
  # The bytes of a streamed get value at `offset` (the next chunk, or the
  # last one again after a resend).
  close @4 (sessionId :Text) -> ();
  # Ends the session now: its objects and non-detached actors are freed.
}

struct ClientArg {
  union {
    value @0 :Data;
    ref @1 :Text;
  }
}

struct ClientOp {
  seq @0 :UInt64;
  union {
    submit @1 :SubmitOp;
    put @2 :PutOp;
    putStream @3 :PutStreamOp;
    get @4 :GetOp;
    wait @5 :WaitOp;
    addRef @6 :Text;
    release @7 :Text;
    createActor @8 :CreateActorOp;
    callActor @9 :CallActorOp;
    getActor @10 :GetActorOp;
    killActor @11 :KillActorOp;
  }
}

struct SubmitOp {
  result @0 :Text;
  # the id the client gave the result (ids are the client's; the session maps them)
  function @1 :Text;
  args @2 :List(ClientArg);
  resources @3 :List(Resource);
  maxRetries @4 :Int32;
  labelSelector @5 :List(Label);
}

struct PutOp {
  result @0 :Text;
  data @1 :Data;
}

struct PutStreamOp {
  result @0 :Text;
  size @1 :UInt64;
  stream @2 :UInt64;
  # chosen by the client; the bytes follow as writeChunk calls
}

struct GetOp {
  ids @0 :List(Text);
  timeoutMs @1 :Int64;
  # -1: no timeout
}

struct WaitOp {
  ids @0 :List(Text);
  numReturns @1 :UInt64;
  timeoutMs @2 :Int64;
}

struct CreateActorOp {
  className @0 :Text;
  args @1 :List(Data);
  name @2 :Text;
  namespace @3 :Text;
  getIfExists @4 :Bool;
  detached @5 :Bool;
  maxRestarts @6 :Int32;
  maxTaskRetries @7 :Int32;
  maxConcurrency @8 :Int32;
  resources @9 :List(Resource);
  labelSelector @10 :List(Label);
}

struct CallActorOp {
  result @0 :Text;
  actorId @1 :Text;
  method @2 :Text;
  args @3 :List(ClientArg);
}

struct GetActorOp {
  name @0 :Text;
  namespace @1 :Text;
}

struct KillActorOp {
  actorId @0 :Text;
  noRestart @1 :Bool;
}

struct ClientValue {
  union {
    inline @0 :Data;
    stream @1 :StreamedValue;
  }
}

struct StreamedValue {
  stream @0 :UInt64;
  size @1 :UInt64;
}

struct ClientReply {
  seq @0 :UInt64;
  errorKind @1 :Text;
  # "" = success; else the rayd exception to raise: task_error, actor_died,
  # object_lost, get_timeout, store_full, connection, error
  error @2 :Text;
  function @3 :Text;
  remoteType @4 :Text;
  remoteMessage @5 :Text;
  nodeId @6 :Text;
  values @7 :List(ClientValue);
  # get: one per id
  ready @8 :List(Bool);
  # wait: one per id
  actorId @9 :Text;
  className @10 :Text;
}
