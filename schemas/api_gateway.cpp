#include "schemas/api_gateway.hpp"

#include <unistd.h>

#include <future>
#include <thread>

#include <capnp/ez-rpc.h>
#include <kj/async-io.h>
#include <spdlog/spdlog.h>

#include "actors/gcs/blob_table.hpp"
#include "common/error.hpp"
#include "common/token.hpp"
#include "schemas/bridge.hpp"
#include "schemas/convert.hpp"

namespace rayd::rpc {

namespace {

constexpr uint32_t api_version = 1;

/// Turns a CAF error into the exception a Cap'n Proto client sees.
[[noreturn]] void throw_error(const caf::error& err) {
  auto type = code_of(err) == errc::unavailable ? kj::Exception::Type::DISCONNECTED
                                                : kj::Exception::Type::FAILED;
  kj::throwFatalException(
    kj::Exception(type, __FILE__, __LINE__, kj::str(describe(err).c_str())));
}

class cluster_impl final : public schema::ClusterService::Server {
public:
  explicit cluster_impl(const gateway_config& cfg) : cfg_(cfg) {
  }

  kj::Promise<void> status(StatusContext ctx) override {
    return ask<cluster_view>(*cfg_.sys, cfg_.nodes, atoms::nodes::value)
      .then([ctx](caf::expected<cluster_view> view) mutable {
        if (!view)
          throw_error(view.error());
        fill(ctx.getResults().initStatus(), *view);
      });
  }

private:
  const gateway_config& cfg_;
};

class kv_impl final : public schema::KvService::Server {
public:
  explicit kv_impl(const gateway_config& cfg) : cfg_(cfg) {
  }

  kj::Promise<void> put(PutContext ctx) override {
    auto p = ctx.getParams();
    return ask<bool>(*cfg_.sys, cfg_.kv, atoms::kv_put::value,
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
    return ask<std::string>(*cfg_.sys, cfg_.kv, atoms::kv_get::value,
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
    return ask<bool>(*cfg_.sys, cfg_.kv, atoms::kv_del::value,
                     to_std(p.getNamespace()), to_std(p.getKey()))
      .then([ctx](caf::expected<bool> deleted) mutable {
        if (!deleted)
          throw_error(deleted.error());
        ctx.getResults().setDeleted(*deleted);
      });
  }

  kj::Promise<void> list(ListContext ctx) override {
    auto p = ctx.getParams();
    return ask<std::vector<std::string>>(*cfg_.sys, cfg_.kv,
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
};

/// Long polls are capped so that a call never outlives the bridge's deadline.
constexpr uint32_t max_wait_ms = 10000;

class jobs_impl final : public schema::JobService::Server {
public:
  explicit jobs_impl(const gateway_config& cfg) : cfg_(cfg) {
  }

  kj::Promise<void> submit(SubmitContext ctx) override {
    auto s = from_capnp(ctx.getParams().getSubmission());
    return ask<job_info>(*cfg_.sys, cfg_.jobs, atoms::job_submit::value, std::move(s))
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
    return ask<std::vector<job_info>>(*cfg_.sys, cfg_.jobs, atoms::job_list::value)
      .then([ctx](caf::expected<std::vector<job_info>> jobs) mutable {
        if (!jobs)
          throw_error(jobs.error());
        auto out = ctx.getResults().initJobs(static_cast<unsigned>(jobs->size()));
        for (unsigned i = 0; i < jobs->size(); ++i)
          fill(out[i], (*jobs)[i]);
      });
  }

  kj::Promise<void> stop(StopContext ctx) override {
    return ask<job_info>(*cfg_.sys, cfg_.jobs, atoms::job_stop::value,
                         to_std(ctx.getParams().getSubmissionId()))
      .then([ctx](caf::expected<job_info> job) mutable {
        if (!job)
          throw_error(job.error());
        fill(ctx.getResults().initJob(), *job);
      });
  }

  kj::Promise<void> delete_(DeleteContext ctx) override {
    return ask<bool>(*cfg_.sys, cfg_.jobs, atoms::job_delete::value,
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
    return ask<log_slice>(*cfg_.sys, cfg_.logs, atoms::job_logs::value,
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
    return ask<std::string>(*cfg_.sys, cfg_.blobs, atoms::blob_put::value,
                            to_std(ctx.getParams().getData()))
      .then([ctx](caf::expected<std::string> hash) mutable {
        if (!hash)
          throw_error(hash.error());
        ctx.getResults().setUri(gcs::package_uri(*hash));
      });
  }

  kj::Promise<void> hasPackage(HasPackageContext ctx) override {
    auto uri = to_std(ctx.getParams().getUri());
    auto hash = gcs::package_hash(uri);
    if (!hash)
      throw_error(make_error(errc::invalid_argument,
                             "not a package URI: '" + uri.substr(0, 100) + "'"));
    return ask<uint64_t>(*cfg_.sys, cfg_.blobs, atoms::blob_size::value, *hash)
      .then([ctx](caf::expected<uint64_t> size) mutable {
        if (!size && code_of(size.error()) != errc::not_found)
          throw_error(size.error());
        ctx.getResults().setPresent(static_cast<bool>(size));
      });
  }

private:
  kj::Promise<caf::expected<job_info>> get(std::string id, uint32_t wait_ms) {
    return ask<job_info>(*cfg_.sys, cfg_.jobs, atoms::job_get::value,
                         std::move(id), static_cast<int64_t>(wait_ms));
  }

  const gateway_config& cfg_;
};

class tasks_impl final : public schema::TaskService::Server {
public:
  explicit tasks_impl(const gateway_config& cfg) : cfg_(cfg) {
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
    return ask<task_list_reply>(*cfg_.sys, cfg_.tasks, atoms::task_list::value, limit)
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
};

/// The bootstrap capability: nothing but the version and authenticate().
class gate_impl final : public schema::Gate::Server {
public:
  explicit gate_impl(const gateway_config& cfg)
    : cfg_(cfg),
      cluster_(kj::heap<cluster_impl>(cfg)),
      kv_(kj::heap<kv_impl>(cfg)),
      jobs_(kj::heap<jobs_impl>(cfg)),
      tasks_(kj::heap<tasks_impl>(cfg)) {
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
    auto services = ctx.getResults().initServices();
    services.setCluster(cluster_);
    services.setKv(kv_);
    services.setJobs(jobs_);
    services.setTasks(tasks_);
    return kj::READY_NOW;
  }

private:
  const gateway_config& cfg_;
  schema::ClusterService::Client cluster_;
  schema::KvService::Client kv_;
  schema::JobService::Client jobs_;
  schema::TaskService::Client tasks_;
};

} // namespace

struct gateway::impl {
  gateway_config cfg;
  std::thread thread;
  kj::Own<kj::CrossThreadPromiseFulfiller<void>> stop;
};

caf::expected<std::unique_ptr<gateway>> gateway::start(gateway_config cfg) {
  std::unique_ptr<gateway> gw{new gateway};
  gw->impl_ = std::make_unique<impl>();
  gw->impl_->cfg = std::move(cfg);
  gw->port_ = gw->impl_->cfg.socket.port;
  auto* state = gw->impl_.get();
  std::promise<kj::Own<kj::CrossThreadPromiseFulfiller<void>>> ready;
  auto ready_future = ready.get_future();
  state->thread = std::thread([state, &ready] {
    bool announced = false;
    try {
    // Generous limits for one message (KV values up to 16 MiB), and a
    // nesting limit that keeps hostile payloads cheap to reject.
    capnp::ReaderOptions opts;
    opts.traversalLimitInWords = 8 * 1024 * 1024 * 4;
    opts.nestingLimit = 32;
    capnp::EzRpcServer server(kj::heap<gate_impl>(state->cfg),
                              state->cfg.socket.fd, state->cfg.socket.port,
                              opts);
    auto& ws = server.getWaitScope();
    auto paf = kj::newPromiseAndCrossThreadFulfiller<void>();
    ready.set_value(kj::mv(paf.fulfiller));
    announced = true;
    paf.promise.wait(ws);
    } catch (const kj::Exception& e) {
      spdlog::error("API gateway failed: {}", e.getDescription().cStr());
      if (!announced)
        ready.set_value(kj::Own<kj::CrossThreadPromiseFulfiller<void>>());
    }
  });
  state->stop = ready_future.get();
  if (state->stop.get() == nullptr) {
    state->thread.join();
    return make_error(errc::unavailable, "the API gateway could not start");
  }
  spdlog::info("API gateway listening on port {}", gw->port_);
  return gw;
}

gateway::~gateway() {
  if (impl_ && impl_->thread.joinable()) {
    impl_->stop->fulfill();
    impl_->thread.join();
  }
}

} // namespace rayd::rpc
