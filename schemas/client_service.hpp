#pragma once
// ClientService on the API port (docs/client.md): one server object per
// authenticated connection, converting Cap'n Proto ops and replies to the
// plain ones of common/client_ops.hpp and back, and handing them to the
// head's session registry (client_ops::host). The registry answers on its
// own threads; answers come back to the kj loop through cross-thread
// fulfillers, so the gateway never blocks on a session.
//
// Lifetime: the object lives as long as its connection holds it. Include
// only in gateway translation units.

#include <cstdint>

#include "common/client_ops.hpp"
#include "schemas/rayd_api.capnp.h"

namespace rayd::rpc {

/// The ClientService of one connection. With `host` null (a head built
/// without client sessions) every call fails with a clear message.
schema::ClientService::Client make_client_service(client_ops::host* host);

} // namespace rayd::rpc
