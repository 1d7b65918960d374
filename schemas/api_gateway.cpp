#include "schemas/api_gateway.hpp"

#include <unistd.h>

#include <future>
#include <thread>

#include <kj/async-io.h>
#include <kj/compat/tls.h>
#include <spdlog/spdlog.h>

#include "common/error.hpp"
#include "common/token.hpp"
#include "schemas/api_listener.hpp"
#include "schemas/bridge.hpp"
#include "schemas/client_service.hpp"
#include "schemas/convert.hpp"
#include "common/package_uri.hpp"

namespace rayd::rpc {

namespace {

constexpr uint32_t api_version = schema::CURRENT_API_VERSION;

/// Turns a CAF error into the exception a Cap'n Proto client sees.
[[noreturn]] void throw_error(const caf::error& err) {
  auto type = code_of(err) == errc::unavailable ? kj::Exception::Type::DISCONNECTED
                                                : kj::Exception::Type::FAILED;
  kj::throwFatalException(
    kj::Exception(type, __FILE__, __LINE__, kj::str(describe(err).c_str())));
}

class cluster_impl final : public schema::ClusterService::Server {
public:
  cluster_impl(const gateway_config& cfg, bridge& br) : cfg_(cfg), br_(br) {
  }

  kj::Promise<void> status(StatusContext ctx) override {
    return br_.ask<cluster_view>(cfg_.nodes, atoms::nodes::value)
      .then([ctx](caf::expected<cluster_view> view) mutable {
        if (!view)
          throw_error(view.error());
        fill(ctx.getResults().initStatus(), *view);
      });
  }

  kj::Promise<void> autoscalerStatus(AutoscalerStatusContext ctx) override {
    if (!cfg_.autoscaler) {
      ctx.getResults().setEnabled(false);
      return kj::READY_NOW;
    }
    return br_.ask<std::string>(cfg_.autoscaler, atoms::autoscale_status::value)
      .then([ctx](caf::expected<std::string> json) mutable {
        if (!json)
          throw_error(json.error());
        auto res = ctx.getResults();
        res.setEnabled(true);
        res.setStatusJson(*json);
      });
  }

  kj::Promise<void> requestResources(RequestResourcesContext ctx) override {
    if (!cfg_.autoscaler)
      throw_error(make_error(errc::unavailable,
                             "this cluster has no autoscaler (start the head with "
                             "--autoscaling-config)"));
    std::vector<resource_map> bundles;
    for (auto b : ctx.getParams().getBundles())
      bundles.push_back(read_resources(b.getResources()));
    return br_.ask<bool>(cfg_.autoscaler, atoms::request_resources::value, std::move(bundles))
      .then([](caf::expected<bool> ok) {
        if (!ok)
          throw_error(ok.error());
      });
  }

private:
  const gateway_config& cfg_;
  bridge& br_;
};

class kv_impl final : public schema::KvService::Server {
public:
  kv_impl(const gateway_config& cfg, bridge& br) : cfg_(cfg), br_(br) {
  }

  kj::Promise<void> put(PutContext ctx) override {
    auto p = ctx.getParams();
    return br_.ask<bool>(cfg_.kv, atoms::kv_put::value,
                     to_std(p.getNamespace()), to_std(p.getKey()),
                     to_std(p.getValue()), p.getOverwrite())
      .then([ctx](caf::expected<bool> added) mutable {
        if (!added)
          throw_error(added.error());
        ctx.getResults().setAdded(*added);
      });
  }

  kj::Promise<void> get(GetContext ctx) override {
    auto p = ctx.getParams();
    return br_.ask<std::string>(cfg_.kv, atoms::kv_get::value,
                            to_std(p.getNamespace()), to_std(p.getKey()))
      .then([ctx](caf::expected<std::string> value) mutable {
        auto res = ctx.getResults();
        if (!value) {
          if (code_of(value.error()) != errc::not_found)
            throw_error(value.error());
          res.setFound(false);
          return;
        }
        res.setFound(true);
        res.setValue(as_data(*value));
      });
  }

  kj::Promise<void> del(DelContext ctx) override {
    auto p = ctx.getParams();
    return br_.ask<bool>(cfg_.kv, atoms::kv_del::value,
                     to_std(p.getNamespace()), to_std(p.getKey()))
      .then([ctx](caf::expected<bool> deleted) mutable {
        if (!deleted)
          throw_error(deleted.error());
        ctx.getResults().setDeleted(*deleted);
      });
  }

  kj::Promise<void> list(ListContext ctx) override {
    auto p = ctx.getParams();
    return br_.ask<std::vector<std::string>>(cfg_.kv,
                                         atoms::kv_list::value,
                                         to_std(p.getNamespace()),
                                         to_std(p.getPrefix()))
      .then([ctx](caf::expected<std::vector<std::string>> keys) mutable {
        if (!keys)
          throw_error(keys.error());
        auto out = ctx.getResults().initKeys(static_cast<unsigned>(keys->size()));
        for (unsigned i = 0; i < keys->size(); ++i)
          out.set(i, as_data((*keys)[i]));
      });
  }

private:
  const gateway_config& cfg_;
  bridge& br_;
};

/// Long polls are capped so that a call never outlives the bridge's deadline.
constexpr uint32_t max_wait_ms = 10000;

class jobs_impl final : public schema::JobService::Server {
public:
  jobs_impl(const gateway_config& cfg, bridge& br) : cfg_(cfg), br_(br) {
  }

  kj::Promise<void> submit(SubmitContext ctx) override {
    auto s = from_capnp(ctx.getParams().getSubmission());
    return br_.ask<job_info>(cfg_.jobs, atoms::job_submit::value, std::move(s))
      .then([ctx](caf::expected<job_info> job) mutable {
        if (!job)
          throw_error(job.error());
        fill(ctx.getResults().initJob(), *job);
      });
  }

  kj::Promise<void> status(StatusContext ctx) override {
    return get(to_std(ctx.getParams().getSubmissionId()), 0)
      .then([ctx](caf::expected<job_info> job) mutable {
        if (!job)
          throw_error(job.error());
        ctx.getResults().setState(to_capnp(job->state));
        ctx.getResults().setMessage(job->message);
      });
  }

  kj::Promise<void> info(InfoContext ctx) override {
    return get(to_std(ctx.getParams().getSubmissionId()), 0)
      .then([ctx](caf::expected<job_info> job) mutable {
        if (!job)
          throw_error(job.error());
        fill(ctx.getResults().initJob(), *job);
      });
  }

  kj::Promise<void> wait(WaitContext ctx) override {
    auto p = ctx.getParams();
    auto wait = std::max<uint32_t>(1, std::min(p.getTimeoutMs(), max_wait_ms));
    return get(to_std(p.getSubmissionId()), wait)
      .then([ctx](caf::expected<job_info> job) mutable {
        if (!job)
          throw_error(job.error());
        fill(ctx.getResults().initJob(), *job);
      });
  }

  kj::Promise<void> list(ListContext ctx) override {
    return br_.ask<std::vector<job_info>>(cfg_.jobs, atoms::job_list::value)
      .then([ctx](caf::expected<std::vector<job_info>> jobs) mutable {
        if (!jobs)
          throw_error(jobs.error());
        auto out = ctx.getResults().initJobs(static_cast<unsigned>(jobs->size()));
        for (unsigned i = 0; i < jobs->size(); ++i)
          fill(out[i], (*jobs)[i]);
      });
  }

  kj::Promise<void> stop(StopContext ctx) override {
    return br_.ask<job_info>(cfg_.jobs, atoms::job_stop::value,
                         to_std(ctx.getParams().getSubmissionId()))
      .then([ctx](caf::expected<job_info> job) mutable {
        if (!job)
          throw_error(job.error());
        fill(ctx.getResults().initJob(), *job);
      });
  }

  kj::Promise<void> delete_(DeleteContext ctx) override {
    return br_.ask<bool>(cfg_.jobs, atoms::job_delete::value,
                     to_std(ctx.getParams().getSubmissionId()))
      .then([ctx](caf::expected<bool> deleted) mutable {
        if (!deleted)
          throw_error(deleted.error());
        ctx.getResults().setDeleted(*deleted);
      });
  }

  kj::Promise<void> logs(LogsContext ctx) override {
    auto p = ctx.getParams();
    auto wait = static_cast<int64_t>(std::min(p.getWaitMs(), max_wait_ms));
    return br_.ask<log_slice>(cfg_.logs, atoms::job_logs::value,
                          to_std(p.getSubmissionId()), uint64_t{p.getOffset()},
                          uint64_t{p.getMaxBytes()}, wait)
      .then([ctx](caf::expected<log_slice> slice) mutable {
        if (!slice)
          throw_error(slice.error());
        auto res = ctx.getResults();
        res.setOffset(slice->offset);
        res.setData(as_data(slice->data));
        res.setClosed(slice->closed);
      });
  }

  kj::Promise<void> uploadPackage(UploadPackageContext ctx) override {
    return br_.ask<std::string>(cfg_.blobs, atoms::blob_put::value,
                            to_std(ctx.getParams().getData()))
      .then([ctx](caf::expected<std::string> hash) mutable {
        if (!hash)
          throw_error(hash.error());
        ctx.getResults().setUri(package_uri(*hash));
      });
  }

  kj::Promise<void> hasPackage(HasPackageContext ctx) override {
    auto uri = to_std(ctx.getParams().getUri());
    auto hash = package_hash(uri);
    if (!hash)
      throw_error(make_error(errc::invalid_argument,
                             "not a package URI: '" + uri.substr(0, 100) + "'"));
    return br_.ask<uint64_t>(cfg_.blobs, atoms::blob_size::value, *hash)
      .then([ctx](caf::expected<uint64_t> size) mutable {
        if (!size && code_of(size.error()) != errc::not_found)
          throw_error(size.error());
        ctx.getResults().setPresent(static_cast<bool>(size));
      });
  }

private:
  kj::Promise<caf::expected<job_info>> get(std::string id, uint32_t wait_ms) {
    return br_.ask<job_info>(cfg_.jobs, atoms::job_get::value,
                         std::move(id), static_cast<int64_t>(wait_ms));
  }

  const gateway_config& cfg_;
  bridge& br_;
};

class tasks_impl final : public schema::TaskService::Server {
public:
  tasks_impl(const gateway_config& cfg, bridge& br) : cfg_(cfg), br_(br) {
  }

  kj::Promise<void> report(ReportContext ctx) override {
    auto p = ctx.getParams();
    std::vector<task_event> events;
    auto in = p.getEvents();
    if (in.size() > 100000)
      throw_error(make_error(errc::invalid_argument, "too many task events in one report"));
    events.reserve(in.size());
    for (auto e : in)
      events.push_back(from_capnp(e));
    caf::anon_send(cfg_.tasks, atoms::task_report::value, to_std(p.getJobId()),
                   from_capnp(p.getCounts()), std::move(events));
    return kj::READY_NOW;
  }

  kj::Promise<void> list(ListContext ctx) override {
    auto limit = std::min<uint32_t>(ctx.getParams().getLimit(), 10000);
    return br_.ask<task_list_reply>(cfg_.tasks, atoms::task_list::value, limit)
      .then([ctx](caf::expected<task_list_reply> r) mutable {
        if (!r)
          throw_error(r.error());
        auto res = ctx.getResults();
        auto out = res.initTasks(static_cast<unsigned>(r->tasks.size()));
        for (unsigned i = 0; i < r->tasks.size(); ++i)
          fill(out[i], r->tasks[i]);
        fill(res.initCounts(), r->counts);
      });
  }

private:
  const gateway_config& cfg_;
  bridge& br_;
};

class actors_impl final : public schema::ActorService::Server {
public:
  actors_impl(const gateway_config& cfg, bridge& br) : cfg_(cfg), br_(br) {
  }

  kj::Promise<void> create(CreateContext ctx) override {
    auto in = ctx.getParams().getRequests();
    if (in.size() > 100000)
      throw_error(make_error(errc::invalid_argument, "at most 100000 actor creates in one call"));
    std::vector<actor_create_request> reqs;
    reqs.reserve(in.size());
    for (auto r : in)
      reqs.push_back(from_capnp(r));
    return br_.ask<std::vector<actor_info>>(cfg_.actors, atoms::actor_create::value,
                                            std::move(reqs))
      .then([ctx](caf::expected<std::vector<actor_info>> r) mutable {
        if (!r)
          throw_error(r.error());
        fill_list(ctx.getResults().initActors(static_cast<unsigned>(r->size())), *r);
      });
  }

  kj::Promise<void> wait(WaitContext ctx) override {
    auto p = ctx.getParams();
    std::vector<std::string> ids;
    for (auto id : p.getActorIds())
      ids.push_back(to_std(id));
    if (ids.size() > 100000)
      throw_error(make_error(errc::invalid_argument, "at most 100000 actor ids in one wait"));
    auto timeout = std::min<uint32_t>(p.getTimeoutMs(), 10000);
    return br_.ask<std::vector<actor_info>>(cfg_.actors, atoms::actor_wait::value,
                                            std::move(ids), timeout)
      .then([ctx](caf::expected<std::vector<actor_info>> r) mutable {
        if (!r)
          throw_error(r.error());
        fill_list(ctx.getResults().initActors(static_cast<unsigned>(r->size())), *r);
      });
  }

  kj::Promise<void> get(GetContext ctx) override {
    auto p = ctx.getParams();
    return br_.ask<actor_info>(cfg_.actors, atoms::actor_get::value, to_std(p.getName()),
                               to_std(p.getNamespace()))
      .then([ctx](caf::expected<actor_info> r) mutable {
        if (!r)
          throw_error(r.error());
        fill(ctx.getResults().initActor(), *r);
      });
  }

  kj::Promise<void> list(ListContext ctx) override {
    return br_.ask<std::vector<actor_info>>(cfg_.actors, atoms::actor_list::value)
      .then([ctx](caf::expected<std::vector<actor_info>> r) mutable {
        if (!r)
          throw_error(r.error());
        fill_list(ctx.getResults().initActors(static_cast<unsigned>(r->size())), *r);
      });
  }

  kj::Promise<void> kill(KillContext ctx) override {
    auto p = ctx.getParams();
    return br_.ask<actor_info>(cfg_.actors, atoms::actor_kill::value,
                               to_std(p.getIdOrName()), to_std(p.getNamespace()),
                               p.getNoRestart(), to_std(p.getBy()))
      .then([ctx](caf::expected<actor_info> r) mutable {
        if (!r)
          throw_error(r.error());
        fill(ctx.getResults().initActor(), *r);
      });
  }

private:
  static void fill_list(capnp::List<schema::ActorInfo>::Builder out,
                        const std::vector<actor_info>& in) {
    for (unsigned i = 0; i < in.size(); ++i)
      fill(out[i], in[i]);
  }

  const gateway_config& cfg_;
  bridge& br_;
};

/// The services an authenticated connection receives; one set shared by all
/// connections (capabilities are reference-counted on the kj thread).
struct service_set {
  service_set(const gateway_config& cfg, bridge& br)
    : cluster(kj::heap<cluster_impl>(cfg, br)),
      kv(kj::heap<kv_impl>(cfg, br)),
      jobs(kj::heap<jobs_impl>(cfg, br)),
      tasks(kj::heap<tasks_impl>(cfg, br)),
      actors(kj::heap<actors_impl>(cfg, br)) {
  }
  schema::ClusterService::Client cluster;
  schema::KvService::Client kv;
  schema::JobService::Client jobs;
  schema::TaskService::Client tasks;
  schema::ActorService::Client actors;
};

/// The bootstrap capability, one per connection: nothing but the version and
/// authenticate(), which also tells the listener the connection may stay.
class gate_impl final : public schema::Gate::Server {
public:
  gate_impl(const gateway_config& cfg, service_set& services,
            std::shared_ptr<connection_auth> auth)
    : cfg_(cfg), services_(services), auth_(std::move(auth)) {
  }

  kj::Promise<void> apiVersion(ApiVersionContext ctx) override {
    ctx.getResults().setVersion(api_version);
    return kj::READY_NOW;
  }

  kj::Promise<void> authenticate(AuthenticateContext ctx) override {
    if (!token_matches(cfg_.token, to_std(ctx.getParams().getToken()))) {
      spdlog::warn("API: refused authentication (invalid cluster token)");
      kj::throwFatalException(kj::Exception(kj::Exception::Type::FAILED,
                                            __FILE__, __LINE__,
                                            kj::str("invalid cluster token")));
    }
    auth_->mark_authenticated();
    auto services = ctx.getResults().initServices();
    services.setCluster(services_.cluster);
    services.setKv(services_.kv);
    services.setJobs(services_.jobs);
    services.setTasks(services_.tasks);
    services.setActors(services_.actors);
    services.setClient(make_client_service(cfg_.clients));
    return kj::READY_NOW;
  }

private:
  const gateway_config& cfg_;
  service_set& services_;
  std::shared_ptr<connection_auth> auth_;
};

} // namespace

struct gateway::impl {
  gateway_config cfg;
  std::thread thread;
  kj::Own<kj::CrossThreadPromiseFulfiller<void>> stop;
};

namespace {

/// The gateway thread's body: everything kj lives and dies here. Returns
/// when `stop` is fulfilled; throws when the loop itself breaks.
void run_loop(gateway::impl& state,
              std::promise<kj::Own<kj::CrossThreadPromiseFulfiller<void>>>& ready) {
  auto io = kj::setupAsyncIo();
  // Generous limits for one message (KV values up to 16 MiB), and a
  // nesting limit that keeps hostile payloads cheap to reject.
  capnp::ReaderOptions opts;
  opts.traversalLimitInWords = 8 * 1024 * 1024 * 4;
  opts.nestingLimit = 32;
  bridge br{*state.cfg.sys, io};
  service_set services{state.cfg, br};
  const auto& cfg = state.cfg;
  // TLS: the server side only (clients are not asked for certificates: the
  // cluster token still authenticates them, now inside the tunnel).
  kj::Maybe<kj::TlsKeypair> keypair;
  kj::Own<kj::TlsContext> tls;
  if (!cfg.tls.cert_pem.empty()) {
    keypair = kj::TlsKeypair{kj::TlsPrivateKey(cfg.tls.key_pem.c_str()),
                             kj::TlsCertificate(cfg.tls.cert_pem.c_str())};
    kj::TlsContext::Options o;
    o.useSystemTrustStore = false;
    o.minVersion = kj::TlsVersion::TLS_1_2;
    o.defaultKeypair = KJ_ASSERT_NONNULL(keypair);
    tls = kj::heap<kj::TlsContext>(kj::mv(o));
  }
  api_listener listener{io,
                        cfg.socket.fd,
                        opts,
                        cfg.limits,
                        [&cfg, &services](std::shared_ptr<connection_auth> auth)
                          -> capnp::Capability::Client {
                          return kj::heap<gate_impl>(cfg, services, std::move(auth));
                        },
                        tls.get()};
  auto paf = kj::newPromiseAndCrossThreadFulfiller<void>();
  ready.set_value(kj::mv(paf.fulfiller));
  // The listener and the bridge never resolve; either rejecting means the
  // loop is broken, which run_loop's caller turns into a daemon exit.
  auto broken = listener.run().exclusiveJoin(br.run()).then([] {
    kj::throwFatalException(kj::Exception(kj::Exception::Type::FAILED, __FILE__, __LINE__,
                                          kj::str("the accept loop ended")));
  });
  paf.promise.exclusiveJoin(kj::mv(broken)).wait(io.waitScope);
}

} // namespace

caf::expected<std::unique_ptr<gateway>> gateway::start(gateway_config cfg) {
  std::unique_ptr<gateway> gw{new gateway};
  gw->impl_ = std::make_unique<impl>();
  gw->impl_->cfg = std::move(cfg);
  gw->port_ = gw->impl_->cfg.socket.port;
  auto* state = gw->impl_.get();
  std::promise<kj::Own<kj::CrossThreadPromiseFulfiller<void>>> ready;
  auto ready_future = ready.get_future();
  state->thread = std::thread([state, &ready] {
    std::string failure;
    try {
      run_loop(*state, ready);
      return;
    } catch (const kj::Exception& e) {
      failure = e.getDescription().cStr();
    } catch (const std::exception& e) {
      failure = e.what();
    }
    spdlog::error("API gateway failed: {}", failure);
    try {
      ready.set_value(kj::Own<kj::CrossThreadPromiseFulfiller<void>>());
    } catch (const std::future_error&) {
      // Announced already: the daemon was serving, so it must not go on
      // pretending to. on_fatal takes it down (a supervisor restarts it).
      if (state->cfg.on_fatal)
        state->cfg.on_fatal("API gateway failed: " + failure);
    }
  });
  state->stop = ready_future.get();
  if (state->stop.get() == nullptr) {
    state->thread.join();
    return make_error(errc::unavailable, "the API gateway could not start");
  }
  spdlog::info("API gateway listening on port {}{}", gw->port_,
               state->cfg.tls.cert_pem.empty() ? "" : " (TLS)");
  return gw;
}

gateway::~gateway() {
  if (impl_ && impl_->thread.joinable()) {
    if (impl_->stop)
      impl_->stop->fulfill();
    impl_->thread.join();
  }
}

} // namespace rayd::rpc
