#pragma once
// Bridge from a kj event loop to CAF: ask an actor, get a kj::Promise.
//
// Each call spawns a tiny event-based actor that sends the request and, when
// the answer comes (on a CAF thread), fulfills a cross-thread fulfiller that
// resumes the promise on the kj thread. The kj loop never blocks.
// Include only in gateway translation units (pulls in kj and caf/all).

#include <chrono>
#include <memory>

#include <caf/all.hpp>
#include <kj/async.h>

namespace rayd::rpc {

template <class Reply, class Handle, class... Ts>
kj::Promise<caf::expected<Reply>> ask(caf::actor_system& sys,
                                      const Handle& dest, Ts... xs) {
  auto paf = kj::newPromiseAndCrossThreadFulfiller<caf::expected<Reply>>();
  auto fulfiller = std::make_shared<
    kj::Own<kj::CrossThreadPromiseFulfiller<caf::expected<Reply>>>>(
    kj::mv(paf.fulfiller));
  sys.spawn([dest, fulfiller, xs...](caf::event_based_actor* self) {
    self->request(dest, std::chrono::seconds{30}, xs...)
      .then([fulfiller](Reply& r) { (*fulfiller)->fulfill(std::move(r)); },
            [fulfiller](caf::error& e) {
              (*fulfiller)->fulfill(caf::expected<Reply>{std::move(e)});
            });
  });
  return kj::mv(paf.promise);
}

} // namespace rayd::rpc
