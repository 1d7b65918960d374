#include "schemas/api_client.hpp"

#include <algorithm>
#include <deque>

#include <cstdlib>
#include <optional>
#include <utility>

#include <capnp/rpc-twoparty.h>
#include <kj/async-io.h>
#include <kj/compat/tls.h>

#include "common/error.hpp"
#include "common/session.hpp"
#include "schemas/client_convert.hpp"
#include "schemas/convert.hpp"
#include "schemas/tls_files.hpp"

namespace rayd::rpc {

namespace {

/// "rayd://HOST:PORT" or "HOST:PORT" → "HOST:PORT".
std::string strip_scheme(const std::string& address) {
  const std::string scheme = "rayd://";
  return address.rfind(scheme, 0) == 0 ? address.substr(scheme.size()) : address;
}

/// The host part of HOST:PORT ("[v6]:PORT" → "v6"): what the head's
/// certificate must name.
std::string host_of(const std::string& address) {
  if (!address.empty() && address.front() == '[') {
    auto close = address.find(']');
    return close == std::string::npos ? address : address.substr(1, close - 1);
  }
  auto colon = address.rfind(':');
  return colon == std::string::npos ? address : address.substr(0, colon);
}

bool mentions(const std::string& what, const char* needle) {
  return what.find(needle) != std::string::npos;
}

/// A TLS handshake refused because of the peer's certificate (as opposed to
/// a peer that does not speak TLS at all: "wrong version number", or an
/// early close, which kj reports as "TLS peer provided no certificate").
bool certificate_refused(const std::string& what) {
  return mentions(what, "certificate verify failed") || mentions(what, "not trusted");
}

} // namespace

struct client::impl {
  // Declaration order is destruction order reversed: the services and the
  // RPC system go before the stream, the stream before TLS and the loop.
  std::string address;
  std::string ca_file;
  kj::Duration timeout;
  kj::AsyncIoContext io;
  kj::Own<kj::TlsContext> tls;
  kj::Own<kj::AsyncIoStream> stream;
  kj::Own<capnp::TwoPartyClient> rpc;
  schema::ClusterService::Client cluster = nullptr;
  schema::KvService::Client kv = nullptr;
  schema::JobService::Client jobs = nullptr;
  schema::TaskService::Client tasks = nullptr;
  schema::ActorService::Client actors = nullptr;
  schema::ClientService::Client sessions = nullptr;
  /// Calls started by exec_async(), alive until they complete.
  struct ignore_errors final : kj::TaskSet::ErrorHandler {
    void taskFailed(kj::Exception&&) override {
    }
  } on_task_error;
  kj::TaskSet calls{on_task_error};
  int wake_fd = -1;
  kj::Own<kj::AsyncInputStream> wake;
  uint64_t wake_buf = 0;

  impl(const std::string& addr, std::chrono::milliseconds t)
    : address(addr), timeout(t.count() * kj::MILLISECONDS), io(kj::setupAsyncIo()) {
  }

  /// Waits for `p` with the deadline; translates kj exceptions.
  template <class T>
  caf::expected<T> wait(kj::Promise<T>&& p,
                        std::chrono::milliseconds extra = std::chrono::milliseconds{0}) {
    auto failure = wait_raw(kj::mv(p), extra);
    if (failure.second)
      return translate(*failure.second);
    return std::move(*failure.first);
  }

  /// Like wait() but hands the kj exception back untranslated.
  template <class T>
  std::pair<std::optional<T>, std::optional<kj::Exception>>
  wait_raw(kj::Promise<T>&& p, std::chrono::milliseconds extra = std::chrono::milliseconds{0}) {
    auto& timer = io.provider->getTimer();
    // The deadline is read from the clock itself, not from the timer's
    // now(), which only advances when the loop polls (after an idle spell it
    // is stale). The event loop's timer runs on the same monotonic clock; no
    // poll() per call (one epoll_wait syscall fewer per round trip).
    auto deadline = kj::systemPreciseMonotonicClock().now() + timeout
                    + extra.count() * kj::MILLISECONDS;
    std::optional<T> result;
    kj::Maybe<kj::Exception> failure = kj::runCatchingExceptions([&] {
      result.emplace(timer.timeoutAt(deadline, kj::mv(p)).wait(io.waitScope));
    });
    KJ_IF_MAYBE (e, failure)
      return {std::nullopt, kj::mv(*e)};
    return {std::move(result), std::nullopt};
  }

  caf::error translate(const kj::Exception& e) {
    std::string what = e.getDescription().cStr();
    const std::string remote = "remote exception: ";
    if (what.rfind(remote, 0) == 0)
      what = what.substr(remote.size());
    if (what.find("invalid cluster token") != std::string::npos)
      return make_error(errc::unauthenticated,
                        "the head at " + address + " refused the cluster token");
    if (what.find("timed out") != std::string::npos
        || what.find("timeout") != std::string::npos)
      return make_error(errc::timeout, "no answer from the head at " + address
                                         + " within the deadline");
    if (e.getType() == kj::Exception::Type::DISCONNECTED
        || what.find("connect") != std::string::npos)
      return make_error(errc::unavailable,
                        "cannot reach the head at " + address + ": " + what);
    return make_error(errc::internal, what);
  }

  /// A fresh TCP connection to the head (no TLS yet).
  caf::expected<kj::Own<kj::AsyncIoStream>> open_tcp() {
    auto addr = wait_raw(io.provider->getNetwork().parseAddress(address));
    if (addr.second)
      return make_error(errc::unavailable, "cannot reach the head at " + address + ": "
                                             + addr.second->getDescription().cStr());
    auto s = wait_raw((*addr.first)->connect());
    if (s.second) {
      if (mentions(s.second->getDescription().cStr(), "timed out"))
        return make_error(errc::timeout, "no answer from the head at " + address
                                           + " within the deadline");
      return make_error(errc::unavailable, "cannot reach the head at " + address + ": "
                                             + s.second->getDescription().cStr());
    }
    return std::move(*s.first);
  }

  /// TLS over `raw`, the head's certificate checked against the CA and the
  /// address's host.
  caf::expected<kj::Own<kj::AsyncIoStream>> handshake(kj::Own<kj::AsyncIoStream> raw) {
    auto host = host_of(address);
    auto s = wait_raw(tls->wrapClient(kj::mv(raw), host));
    if (!s.second)
      return std::move(*s.first);
    std::string what = s.second->getDescription().cStr();
    if (mentions(what, "timed out"))
      return make_error(errc::timeout, "no TLS handshake with the head at " + address
                                         + " within the deadline");
    if (certificate_refused(what))
      return make_error(errc::unavailable, "the head at " + address
                                             + " presents a certificate not signed by CA "
                                             + ca_file + " (or not issued for " + host + ")");
    return make_error(errc::unavailable, "the head at " + address
                                           + " does not speak TLS (a plain API port?): "
                                             "drop --tls-ca / RAYD_TLS_CA for it");
  }

  /// After a plain connection failed: does the head speak TLS? A handshake
  /// that trusts nothing fails on the certificate when it does, on the
  /// first bytes when it does not.
  bool head_speaks_tls() {
    auto raw = open_tcp();
    if (!raw)
      return false;
    kj::TlsContext::Options o;
    o.useSystemTrustStore = false;
    kj::TlsContext probe{kj::mv(o)};
    auto s = wait_raw(probe.wrapClient(kj::mv(*raw), host_of(address)));
    return s.second && certificate_refused(s.second->getDescription().cStr());
  }
};

client::client(std::unique_ptr<impl> p) : impl_(std::move(p)) {
}

client::~client() = default;

caf::expected<std::unique_ptr<client>>
client::connect(const std::string& address, const std::string& token,
                std::chrono::milliseconds timeout) {
  connect_options opts;
  opts.timeout = timeout;
  return connect(address, token, opts);
}

caf::expected<std::unique_ptr<client>>
client::connect(const std::string& address, const std::string& token,
                const connect_options& opts) {
  auto ca_file = opts.tls_ca;
  if (ca_file.empty())
    if (auto* env = std::getenv("RAYD_TLS_CA"); env != nullptr)
      ca_file = env;
  // A head on this host that says (node.json) its port speaks TLS: its own
  // certificate is the CA to try (right for a self-signed one).
  if (ca_file.empty())
    if (auto local = find_local_tls_cert(strip_scheme(address)))
      ca_file = *local;
  std::string ca_pem;
  if (!ca_file.empty()) {
    auto ca = load_tls_ca(ca_file);
    if (!ca)
      return ca.error();
    ca_pem = std::move(*ca);
  }
  std::unique_ptr<impl> p;
  kj::Maybe<kj::Exception> failure = kj::runCatchingExceptions([&] {
    p = std::make_unique<impl>(strip_scheme(address), opts.timeout);
    p->ca_file = ca_file;
    if (!ca_pem.empty()) {
      kj::TlsCertificate ca{ca_pem.c_str()};
      kj::TlsContext::Options o;
      o.useSystemTrustStore = false;
      o.minVersion = kj::TlsVersion::TLS_1_2;
      o.trustedCertificates = kj::arrayPtr(&ca, 1);
      p->tls = kj::heap<kj::TlsContext>(kj::mv(o));
    }
  });
  KJ_IF_MAYBE (e, failure)
    return make_error(errc::unavailable, "cannot reach the head at " + address + ": "
                                           + e->getDescription().cStr());
  auto raw = p->open_tcp();
  if (!raw)
    return raw.error();
  if (p->tls) {
    auto s = p->handshake(kj::mv(*raw));
    if (!s)
      return s.error();
    p->stream = kj::mv(*s);
  } else {
    p->stream = kj::mv(*raw);
  }
  p->rpc = kj::heap<capnp::TwoPartyClient>(*p->stream);
  auto gate = p->rpc->bootstrap().castAs<schema::Gate>();
  // The version handshake: before the token crosses, and bounded.
  auto version = p->wait(gate.apiVersionRequest().send().then(
    [](auto resp) { return resp.getVersion(); }));
  if (!version) {
    if (!p->tls && p->head_speaks_tls())
      return make_error(errc::unavailable, "the head at " + address
                                             + " speaks TLS: give --tls-ca or RAYD_TLS_CA");
    return version.error();
  }
  auto mine = opts.claimed_api_version.value_or(schema::CURRENT_API_VERSION);
  if (*version != mine)
    return make_error(errc::unavailable,
                      "the head at " + address + " speaks API version "
                        + std::to_string(*version) + ", this client API version "
                        + std::to_string(mine) + ": use a client of the head's version");
  auto req = gate.authenticateRequest();
  req.setToken(token);
  auto services = p->wait(req.send().then([](auto resp) {
    auto s = resp.getServices();
    return std::make_tuple(s.getCluster(), s.getKv(), s.getJobs(), s.getTasks(),
                           s.getActors(), s.getClient());
  }));
  if (!services)
    return services.error();
  p->cluster = std::get<0>(*services);
  p->kv = std::get<1>(*services);
  p->jobs = std::get<2>(*services);
  p->tasks = std::get<3>(*services);
  p->actors = std::get<4>(*services);
  p->sessions = std::get<5>(*services);
  return std::unique_ptr<client>{new client(std::move(p))};
}

caf::expected<cluster_view> client::status() {
  return impl_->wait(impl_->cluster.statusRequest().send().then(
    [](auto resp) { return from_capnp(resp.getStatus()); }));
}

caf::expected<std::optional<std::string>> client::autoscaler_status() {
  return impl_->wait(impl_->cluster.autoscalerStatusRequest().send().then(
    [](auto resp) -> std::optional<std::string> {
      if (!resp.getEnabled())
        return std::nullopt;
      return to_std(resp.getStatusJson());
    }));
}

caf::expected<void> client::request_resources(const std::vector<resource_map>& bundles) {
  auto req = impl_->cluster.requestResourcesRequest();
  auto list = req.initBundles(static_cast<unsigned>(bundles.size()));
  for (unsigned i = 0; i < bundles.size(); ++i)
    fill_resources(list[i].initResources(static_cast<unsigned>(bundles[i].size())), bundles[i]);
  auto r = impl_->wait(req.send().then([](auto) { return true; }));
  if (!r)
    return r.error();
  return caf::unit;
}

caf::expected<bool> client::kv_put(const std::string& ns, const std::string& key,
                                   const std::string& value, bool overwrite) {
  auto req = impl_->kv.putRequest();
  req.setNamespace(ns);
  req.setKey(as_data(key));
  req.setValue(as_data(value));
  req.setOverwrite(overwrite);
  return impl_->wait(req.send().then([](auto r) { return r.getAdded(); }));
}

caf::expected<std::optional<std::string>> client::kv_get(const std::string& ns,
                                                         const std::string& key) {
  auto req = impl_->kv.getRequest();
  req.setNamespace(ns);
  req.setKey(as_data(key));
  return impl_->wait(req.send().then([](auto r) -> std::optional<std::string> {
    if (!r.getFound())
      return std::nullopt;
    return to_std(r.getValue());
  }));
}

caf::expected<bool> client::kv_del(const std::string& ns, const std::string& key) {
  auto req = impl_->kv.delRequest();
  req.setNamespace(ns);
  req.setKey(as_data(key));
  return impl_->wait(req.send().then([](auto r) { return r.getDeleted(); }));
}

caf::expected<std::vector<std::string>> client::kv_list(const std::string& ns,
                                                        const std::string& prefix) {
  auto req = impl_->kv.listRequest();
  req.setNamespace(ns);
  req.setPrefix(as_data(prefix));
  return impl_->wait(req.send().then([](auto r) {
    std::vector<std::string> out;
    for (auto k : r.getKeys())
      out.push_back(to_std(k));
    return out;
  }));
}

caf::expected<job_info> client::job_submit(const job_submission& s) {
  auto req = impl_->jobs.submitRequest();
  fill(req.initSubmission(), s);
  return impl_->wait(req.send().then([](auto r) { return from_capnp(r.getJob()); }));
}

caf::expected<job_info> client::job_get(const std::string& id) {
  auto req = impl_->jobs.infoRequest();
  req.setSubmissionId(id);
  return impl_->wait(req.send().then([](auto r) { return from_capnp(r.getJob()); }));
}

caf::expected<std::vector<job_info>> client::job_list() {
  return impl_->wait(impl_->jobs.listRequest().send().then([](auto r) {
    std::vector<job_info> out;
    for (auto j : r.getJobs())
      out.push_back(from_capnp(j));
    return out;
  }));
}

caf::expected<job_info> client::job_stop(const std::string& id) {
  auto req = impl_->jobs.stopRequest();
  req.setSubmissionId(id);
  return impl_->wait(req.send().then([](auto r) { return from_capnp(r.getJob()); }));
}

caf::expected<bool> client::job_delete(const std::string& id) {
  auto req = impl_->jobs.deleteRequest();
  req.setSubmissionId(id);
  return impl_->wait(req.send().then([](auto r) { return r.getDeleted(); }));
}

caf::expected<log_slice> client::job_logs(const std::string& id, uint64_t offset,
                                          uint32_t max_bytes, uint32_t wait_ms) {
  auto req = impl_->jobs.logsRequest();
  req.setSubmissionId(id);
  req.setOffset(offset);
  req.setMaxBytes(max_bytes);
  req.setWaitMs(wait_ms);
  return impl_->wait(req.send().then([](auto r) {
                       return log_slice{r.getOffset(), to_std(r.getData()),
                                        r.getClosed()};
                     }),
                     std::chrono::milliseconds{wait_ms});
}

caf::expected<job_info> client::job_wait(const std::string& id, uint32_t timeout_ms) {
  auto req = impl_->jobs.waitRequest();
  req.setSubmissionId(id);
  req.setTimeoutMs(timeout_ms);
  return impl_->wait(req.send().then([](auto r) { return from_capnp(r.getJob()); }),
                     std::chrono::milliseconds{timeout_ms});
}

caf::expected<std::string> client::upload_package(const std::string& bytes) {
  auto req = impl_->jobs.uploadPackageRequest();
  req.setData(as_data(bytes));
  // Large packages take a while to cross and to be stored: 1 s per 10 MiB.
  auto extra = std::chrono::milliseconds{bytes.size() / (10 << 20) * 1000};
  return impl_->wait(req.send().then([](auto r) { return to_std(r.getUri()); }),
                     extra);
}

caf::expected<void> client::task_report(const std::string& job_id, const task_counts& counts,
                                        const std::vector<task_event>& events) {
  auto req = impl_->tasks.reportRequest();
  req.setJobId(job_id);
  fill(req.initCounts(), counts);
  auto out = req.initEvents(static_cast<unsigned>(events.size()));
  for (unsigned i = 0; i < events.size(); ++i)
    fill(out[i], events[i]);
  auto r = impl_->wait(req.send().then([](auto) { return true; }));
  if (!r)
    return r.error();
  return caf::unit;
}

caf::expected<task_list_reply> client::task_list(uint32_t limit) {
  auto req = impl_->tasks.listRequest();
  req.setLimit(limit);
  return impl_->wait(req.send().then([](auto r) {
    task_list_reply out;
    for (auto e : r.getTasks())
      out.tasks.push_back(from_capnp(e));
    out.counts = from_capnp(r.getCounts());
    return out;
  }));
}

caf::expected<bool> client::has_package(const std::string& uri) {
  auto req = impl_->jobs.hasPackageRequest();
  req.setUri(uri);
  return impl_->wait(req.send().then([](auto r) { return r.getPresent(); }));
}

namespace {

/// The head says "no actor ..." for an unknown id or name; the client's
/// callers check for errc::not_found.
caf::error not_found_if_unknown(caf::error err) {
  auto what = describe(err);
  if (what.rfind("no actor", 0) == 0)
    return make_error(errc::not_found, what);
  return err;
}

template <class List>
std::vector<actor_info> read_actors(List in) {
  std::vector<actor_info> out;
  out.reserve(in.size());
  for (auto a : in)
    out.push_back(from_capnp(a));
  return out;
}

} // namespace

caf::expected<std::vector<actor_info>>
client::actor_create(const std::vector<actor_create_request>& requests) {
  auto req = impl_->actors.createRequest();
  auto out = req.initRequests(static_cast<unsigned>(requests.size()));
  for (unsigned i = 0; i < requests.size(); ++i)
    fill(out[i], requests[i]);
  return impl_->wait(
    req.send().then([](auto r) { return read_actors(r.getActors()); }));
}

caf::expected<std::vector<actor_info>> client::actor_wait(const std::vector<std::string>& ids,
                                                          uint32_t timeout_ms) {
  auto req = impl_->actors.waitRequest();
  auto out = req.initActorIds(static_cast<unsigned>(ids.size()));
  for (unsigned i = 0; i < ids.size(); ++i)
    out.set(i, ids[i]);
  req.setTimeoutMs(timeout_ms);
  auto capped = std::min<uint32_t>(timeout_ms, 10000);
  return impl_->wait(req.send().then([](auto r) { return read_actors(r.getActors()); }),
                     std::chrono::milliseconds{capped});
}

caf::expected<actor_info> client::actor_get(const std::string& name, const std::string& ns) {
  auto req = impl_->actors.getRequest();
  req.setName(name);
  req.setNamespace(ns);
  auto r = impl_->wait(req.send().then([](auto r) { return from_capnp(r.getActor()); }));
  if (!r)
    return not_found_if_unknown(r.error());
  return r;
}

caf::expected<std::vector<actor_info>> client::actor_list() {
  return impl_->wait(impl_->actors.listRequest().send().then(
    [](auto r) { return read_actors(r.getActors()); }));
}

caf::expected<actor_info> client::actor_kill(const std::string& id_or_name,
                                             const std::string& ns, bool no_restart,
                                             const std::string& by) {
  auto req = impl_->actors.killRequest();
  req.setIdOrName(id_or_name);
  req.setNamespace(ns);
  req.setNoRestart(no_restart);
  req.setBy(by);
  auto r = impl_->wait(req.send().then([](auto r) { return from_capnp(r.getActor()); }));
  if (!r)
    return not_found_if_unknown(r.error());
  return r;
}

// -- remote client sessions (ClientService) -----------------------------------

caf::expected<client_ops::opened> client::session_open(const std::string& resume_id,
                                                       const std::string& job_name,
                                                       const wire::code_ref& code,
                                                       uint64_t grace_ms) {
  auto req = impl_->sessions.openRequest();
  req.setResumeId(resume_id);
  req.setJobName(job_name);
  fill(req.initCode(static_cast<unsigned>(code.files.size())), code);
  req.setGraceMs(grace_ms);
  // A new session connects a driver on the head: allow it more time.
  return impl_->wait(req.send().then([](auto r) {
    client_ops::opened o;
    o.session_id = to_std(r.getSessionId());
    o.grace_ms = r.getGraceMs();
    o.last_seq = r.getLastSeq();
    return o;
  }), std::chrono::milliseconds{10000});
}

void client::session_exec(const std::string& session, uint64_t ack,
                          const std::vector<client_ops::op>& ops,
                          std::function<void(caf::expected<std::vector<client_ops::reply>>)> done) {
  auto req = impl_->sessions.execRequest();
  req.setSessionId(session);
  req.setAck(ack);
  auto list = req.initOps(static_cast<unsigned>(ops.size()));
  for (unsigned i = 0; i < ops.size(); ++i)
    fill(list[i], ops[i]);
  auto* self = impl_.get();
  auto shared = std::make_shared<decltype(done)>(std::move(done));
  impl_->calls.add(req.send()
                     .then(
                       [shared](auto r) {
                         std::vector<client_ops::reply> out;
                         out.reserve(r.getReplies().size());
                         for (auto x : r.getReplies())
                           out.push_back(read_reply(x));
                         (*shared)(std::move(out));
                       },
                       [shared, self](kj::Exception&& e) {
                         (*shared)(self->translate(e));
                       }));
}

caf::expected<uint64_t> client::session_write_chunk(const std::string& session,
                                                    uint64_t stream, uint64_t offset,
                                                    std::string_view data) {
  auto req = impl_->sessions.writeChunkRequest();
  req.setSessionId(session);
  req.setStream(stream);
  req.setOffset(offset);
  req.setData(capnp::Data::Reader{reinterpret_cast<const kj::byte*>(data.data()), data.size()});
  return impl_->wait(req.send().then([](auto r) { return r.getNext(); }));
}

caf::expected<uint64_t> client::session_write_chunks(const std::string& session,
                                                     uint64_t stream, uint64_t offset,
                                                     std::string_view data,
                                                     std::size_t chunk, std::size_t window) {
  std::deque<kj::Promise<uint64_t>> inflight;
  std::size_t at = 0;
  uint64_t next = offset;
  while (at < data.size() || !inflight.empty()) {
    while (at < data.size() && inflight.size() < window) {
      auto n = std::min(chunk, data.size() - at);
      auto req = impl_->sessions.writeChunkRequest();
      req.setSessionId(session);
      req.setStream(stream);
      req.setOffset(offset + at);
      req.setData(capnp::Data::Reader{reinterpret_cast<const kj::byte*>(data.data() + at), n});
      inflight.push_back(req.send().then([](auto r) { return r.getNext(); }));
      at += n;
    }
    // A full window of the session's stream parks the answer until the store
    // took bytes: allow more than a plain call's deadline.
    auto r = impl_->wait(kj::mv(inflight.front()), std::chrono::seconds{30});
    inflight.pop_front();
    if (!r)
      return r.error(); // the rest are cancelled with `inflight`
    next = std::max(next, *r);
  }
  return next;
}

caf::expected<uint64_t> client::session_read_chunks(const std::string& session,
                                                    uint64_t stream, uint64_t offset,
                                                    uint64_t end, std::size_t chunk,
                                                    std::size_t window, std::string& out) {
  std::deque<kj::Promise<std::string>> inflight;
  uint64_t asked = offset;
  uint64_t got = offset;
  while (asked < end || !inflight.empty()) {
    while (asked < end && inflight.size() < window) {
      auto req = impl_->sessions.readChunkRequest();
      req.setSessionId(session);
      req.setStream(stream);
      req.setOffset(asked);
      inflight.push_back(req.send().then([](auto r) { return to_std(r.getData()); }));
      asked += std::min<uint64_t>(chunk, end - asked);
    }
    auto r = impl_->wait(kj::mv(inflight.front()), std::chrono::seconds{30});
    inflight.pop_front();
    if (!r)
      return r.error();
    if (r->empty())
      return make_error(errc::internal, "the head sent an empty chunk");
    out.append(*r);
    got += r->size();
  }
  return got;
}

caf::expected<std::string> client::session_read_chunk(const std::string& session,
                                                      uint64_t stream, uint64_t offset) {
  auto req = impl_->sessions.readChunkRequest();
  req.setSessionId(session);
  req.setStream(stream);
  req.setOffset(offset);
  return impl_->wait(req.send().then([](auto r) { return to_std(r.getData()); }));
}

caf::expected<void> client::session_close(const std::string& session) {
  auto req = impl_->sessions.closeRequest();
  req.setSessionId(session);
  auto r = impl_->wait(req.send().then([](auto) { return true; }));
  if (!r)
    return r.error();
  return caf::unit;
}

void client::poll(int wake_fd, std::chrono::milliseconds max) {
  auto& p = *impl_;
  if (p.wake_fd != wake_fd) {
    p.wake = p.io.lowLevelProvider->wrapInputFd(wake_fd);
    p.wake_fd = wake_fd;
  }
  auto woken = p.wake->tryRead(&p.wake_buf, 1, sizeof(p.wake_buf)).ignoreResult();
  auto& timer = p.io.provider->getTimer();
  kj::runCatchingExceptions([&] {
    woken.exclusiveJoin(timer.afterDelay(max.count() * kj::MILLISECONDS)).wait(p.io.waitScope);
  });
}

} // namespace rayd::rpc
