#include "schemas/client_service.hpp"

#include <memory>
#include <utility>

#include <kj/async.h>

#include "schemas/client_convert.hpp"
#include "schemas/convert.hpp"

namespace rayd::rpc {

namespace {

[[noreturn]] void fail(const std::string& why) {
  kj::throwFatalException(
    kj::Exception(kj::Exception::Type::FAILED, __FILE__, __LINE__, kj::str(why.c_str())));
}

/// A promise on this kj loop for a callback the registry calls on its own
/// thread: the fulfiller crosses threads, the promise stays here.
template <class T>
std::pair<kj::Promise<client_ops::result<T>>, client_ops::callback<T>> bridge_callback() {
  auto paf = kj::newPromiseAndCrossThreadFulfiller<client_ops::result<T>>();
  auto fulfiller = std::make_shared<kj::Own<kj::CrossThreadPromiseFulfiller<client_ops::result<T>>>>(
    kj::mv(paf.fulfiller));
  client_ops::callback<T> cb = [fulfiller](client_ops::result<T> r) {
    (*fulfiller)->fulfill(kj::mv(r));
  };
  return {kj::mv(paf.promise), std::move(cb)};
}

class client_impl final : public schema::ClientService::Server {
public:
  explicit client_impl(client_ops::host* host) : host_(host) {
  }

  kj::Promise<void> open(OpenContext ctx) override {
    check();
    auto p = ctx.getParams();
    auto [promise, cb] = bridge_callback<client_ops::opened>();
    host_->open(to_std(p.getResumeId()), to_std(p.getJobName()), read_code(p.getCode()),
                p.getGraceMs(), std::move(cb));
    return promise.then([ctx](client_ops::result<client_ops::opened> r) mutable {
      if (!r.ok)
        fail(r.error);
      auto res = ctx.getResults();
      res.setSessionId(r.value.session_id);
      res.setGraceMs(r.value.grace_ms);
      res.setLastSeq(r.value.last_seq);
    });
  }

  kj::Promise<void> exec(ExecContext ctx) override {
    check();
    auto p = ctx.getParams();
    std::vector<client_ops::op> ops;
    ops.reserve(p.getOps().size());
    for (auto o : p.getOps())
      ops.push_back(read_op(o));
    auto [promise, cb] = bridge_callback<std::vector<client_ops::reply>>();
    host_->exec(to_std(p.getSessionId()), p.getAck(), std::move(ops), std::move(cb));
    return promise.then([ctx](client_ops::result<std::vector<client_ops::reply>> r) mutable {
      if (!r.ok)
        fail(r.error);
      auto out = ctx.getResults().initReplies(static_cast<unsigned>(r.value.size()));
      for (unsigned i = 0; i < r.value.size(); ++i)
        fill(out[i], r.value[i]);
    });
  }

  kj::Promise<void> writeChunk(WriteChunkContext ctx) override {
    check();
    auto p = ctx.getParams();
    auto [promise, cb] = bridge_callback<uint64_t>();
    host_->write_chunk(to_std(p.getSessionId()), p.getStream(), p.getOffset(),
                       to_std(p.getData()), std::move(cb));
    return promise.then([ctx](client_ops::result<uint64_t> r) mutable {
      if (!r.ok)
        fail(r.error);
      ctx.getResults().setNext(r.value);
    });
  }

  kj::Promise<void> readChunk(ReadChunkContext ctx) override {
    check();
    auto p = ctx.getParams();
    auto [promise, cb] = bridge_callback<std::string>();
    host_->read_chunk(to_std(p.getSessionId()), p.getStream(), p.getOffset(), std::move(cb));
    return promise.then([ctx](client_ops::result<std::string> r) mutable {
      if (!r.ok)
        fail(r.error);
      ctx.getResults().setData(as_data(r.value));
    });
  }

  kj::Promise<void> close(CloseContext ctx) override {
    check();
    auto [promise, cb] = bridge_callback<bool>();
    host_->close(to_std(ctx.getParams().getSessionId()), std::move(cb));
    return promise.then([](client_ops::result<bool> r) {
      if (!r.ok)
        fail(r.error);
    });
  }

private:
  void check() const {
    if (host_ == nullptr)
      fail("this head serves no remote clients");
  }

  client_ops::host* host_;
};

} // namespace

schema::ClientService::Client make_client_service(client_ops::host* host) {
  return kj::heap<client_impl>(host);
}

} // namespace rayd::rpc
