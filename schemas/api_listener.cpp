#include "schemas/api_listener.hpp"

#include <sys/resource.h>

#include <algorithm>
#include <string>

#include <capnp/rpc-twoparty.h>
#include <kj/compat/tls.h>
#include <spdlog/spdlog.h>

#include "schemas/read_ahead_stream.hpp"

namespace rayd::rpc {

namespace {

constexpr std::chrono::milliseconds first_backoff{10};
constexpr std::chrono::milliseconds max_backoff{200};
/// Evictions are logged at most this often (with the count since).
constexpr std::chrono::seconds evict_log_interval{10};

std::string fd_limit_text() {
  rlimit rl{};
  if (::getrlimit(RLIMIT_NOFILE, &rl) != 0)
    return "unknown";
  return rl.rlim_cur == RLIM_INFINITY ? std::string{"unlimited"}
                                      : std::to_string(rl.rlim_cur);
}

} // namespace

struct api_listener::connection {
  connection(kj::Own<kj::AsyncIoStream> s, capnp::Capability::Client boot,
             capnp::ReaderOptions opts)
    : stream(kj::mv(s)),
      network(*stream, capnp::rpc::twoparty::Side::SERVER, opts),
      rpc(capnp::makeRpcServer(network, kj::mv(boot))) {
  }
  // Destroyed bottom-up: the RPC system, its network, then the socket.
  kj::Own<kj::AsyncIoStream> stream;
  capnp::TwoPartyVatNetwork network;
  capnp::RpcSystem<capnp::rpc::twoparty::VatId> rpc;
};

void connection_auth::mark_authenticated() {
  if (authenticated_)
    return;
  authenticated_ = true;
  if (owner_ != nullptr)
    owner_->authenticated(*this);
}

api_listener::api_listener(kj::AsyncIoContext& io, int fd, capnp::ReaderOptions opts,
                           listener_limits limits, make_bootstrap bootstrap,
                           kj::TlsContext* tls)
  : io_(io),
    receiver_(io.lowLevelProvider->wrapListenSocketFd(
      fd, kj::LowLevelAsyncIoProvider::TAKE_OWNERSHIP
            | kj::LowLevelAsyncIoProvider::ALREADY_CLOEXEC)),
    opts_(opts),
    limits_(limits),
    bootstrap_(std::move(bootstrap)),
    tls_(tls),
    tasks_(*this) {
}

api_listener::~api_listener() = default;

kj::Promise<void> api_listener::run() {
  return accept_loop();
}

kj::Promise<void> api_listener::accept_loop() {
  // evalNow: kj's accept() may throw at once (EMFILE on the first try)
  // rather than reject; both must land in the error branch below.
  return kj::evalNow([this] { return receiver_->accept(); }).then(
    [this](kj::Own<kj::AsyncIoStream> stream) -> kj::Promise<void> {
      if (failed_accepts_ > 0) {
        auto ms = std::chrono::duration_cast<std::chrono::milliseconds>(
                    std::chrono::steady_clock::now() - burst_start_)
                    .count();
        spdlog::info("API port: accepting again after {} failed accepts over {} ms",
                     failed_accepts_, ms);
        failed_accepts_ = 0;
      }
      auto err = kj::runCatchingExceptions([this, &stream] { admit(kj::mv(stream)); });
      KJ_IF_MAYBE (e, err)
        spdlog::warn("API port: dropped a new connection: {}", e->getDescription().cStr());
      return accept_loop();
    },
    [this](kj::Exception&& e) -> kj::Promise<void> {
      // EMFILE, ENFILE, ENOMEM, ENOBUFS...: the listener stays; existing
      // connections are served while we wait for descriptors to free up.
      if (failed_accepts_++ == 0) {
        burst_start_ = std::chrono::steady_clock::now();
        backoff_ = first_backoff;
        spdlog::warn("API port: {} ({} connections open, open-file limit {}); "
                     "retrying with back-off up to {} ms",
                     e.getDescription().cStr(), open_, fd_limit_text(), max_backoff.count());
      } else {
        backoff_ = std::min(backoff_ * 2, max_backoff);
      }
      return io_.provider->getTimer()
        .afterDelay(backoff_.count() * kj::MILLISECONDS)
        .then([this] { return accept_loop(); });
    });
}

void api_listener::admit(kj::Own<kj::AsyncIoStream> stream) {
  if (waiting_.size() >= limits_.max_unauthenticated && !waiting_.empty()) {
    // Make room: the oldest connection still waiting to authenticate goes.
    auto oldest = waiting_.front();
    waiting_.pop_front();
    oldest->owner_ = nullptr;
    if (oldest->evict_)
      oldest->evict_->fulfill();
    ++evicted_;
    auto now = std::chrono::steady_clock::now();
    if (evicted_ == 1 || now - last_evict_log_ >= evict_log_interval) {
      spdlog::warn("API port: {} connections waiting to authenticate (the cap); closed "
                   "the oldest ({} so far)",
                   limits_.max_unauthenticated, evicted_);
      last_evict_log_ = now;
    }
  }
  auto auth = std::make_shared<connection_auth>();
  auto evict = kj::newPromiseAndFulfiller<void>();
  auth->owner_ = this;
  auth->evict_ = kj::mv(evict.fulfiller);
  auth->pos_ = waiting_.insert(waiting_.end(), auth);
  // With TLS the handshake comes first, inside the authentication window;
  // cancelled with the rest when the deadline or an eviction comes first.
  kj::Promise<kj::Own<kj::AsyncIoStream>> ready = nullptr;
  if (tls_ != nullptr)
    ready = tls_->wrapServer(kj::mv(stream));
  else
    // Read ahead: a call and its Finish cost one read() instead of ~5.
    ready = kj::Own<kj::AsyncIoStream>(kj::heap<read_ahead_stream>(kj::mv(stream)));
  auto opts = opts_;
  auto disconnected = ready.then(
    [this, auth, opts](kj::Own<kj::AsyncIoStream> s) -> kj::Promise<void> {
      auto conn = kj::heap<connection>(kj::mv(s), bootstrap_(auth), opts);
      auto gone = conn->network.onDisconnect();
      return gone.attach(kj::mv(conn));
    });
  auto deadline
    = io_.provider->getTimer()
        .afterDelay(limits_.auth_timeout.count() * kj::MILLISECONDS)
        .then([this, auth]() -> kj::Promise<void> {
          if (auth->authenticated())
            return kj::NEVER_DONE;
          spdlog::debug("API port: closed a connection that did not authenticate "
                        "within {} ms", limits_.auth_timeout.count());
          return kj::READY_NOW;
        });
  ++open_;
  tasks_.add(disconnected.exclusiveJoin(kj::mv(deadline))
               .exclusiveJoin(kj::mv(evict.promise))
               .then([this, auth] { closed(*auth); },
                     [this, auth](kj::Exception&& e) {
                       spdlog::debug("API port: connection ended: {}",
                                     e.getDescription().cStr());
                       closed(*auth);
                     }));
}

void api_listener::authenticated(connection_auth& a) {
  if (a.owner_ != this)
    return;
  waiting_.erase(a.pos_);
  a.owner_ = nullptr;
}

void api_listener::closed(connection_auth& a) {
  --open_;
  if (a.owner_ == this) {
    waiting_.erase(a.pos_);
    a.owner_ = nullptr;
  }
}

void api_listener::taskFailed(kj::Exception&& e) {
  spdlog::debug("API port: connection ended: {}", e.getDescription().cStr());
}

} // namespace rayd::rpc
