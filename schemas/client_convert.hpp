#pragma once
// ClientService's ops and replies: Cap'n Proto ↔ common/client_ops.hpp.
// Used by the gateway (reads ops, writes replies) and by the client (writes
// ops, reads replies). Readers never trust the peer: an unknown union member
// becomes an op the session answers with an error.

#include <vector>

#include "common/client_ops.hpp"
#include "schemas/rayd_api.capnp.h"

namespace rayd::rpc {

client_ops::op read_op(schema::ClientOp::Reader in);
void fill(schema::ClientOp::Builder out, const client_ops::op& in);

client_ops::reply read_reply(schema::ClientReply::Reader in);
void fill(schema::ClientReply::Builder out, const client_ops::reply& in);

wire::code_ref read_code(capnp::List<schema::CodeFile>::Reader in);
void fill(capnp::List<schema::CodeFile>::Builder out, const wire::code_ref& in);

} // namespace rayd::rpc
