// ClientService's ops and replies survive Cap'n Proto both ways
// (schemas/client_convert.hpp): every op kind with every field it uses, the
// error and value forms of a reply, and an op of a kind this head does not
// know (a newer client) reads as `unknown` rather than as something else.
#define BOOST_TEST_MODULE client_convert

#include <boost/test/unit_test.hpp>
#include <capnp/message.h>

#include "schemas/client_convert.hpp"

using namespace rayd;
using client_ops::kind;

namespace {

client_ops::op round_trip(const client_ops::op& in) {
  capnp::MallocMessageBuilder m;
  auto b = m.initRoot<schema::ClientOp>();
  rpc::fill(b, in);
  return rpc::read_op(b.asReader());
}

client_ops::op base(kind k) {
  client_ops::op o;
  o.seq = 42;
  o.what = k;
  return o;
}

} // namespace

BOOST_AUTO_TEST_CASE(submit_and_calls_keep_arguments_refs_and_options) {
  auto o = base(kind::submit);
  o.result = "c1g0n7";
  o.name = "pi_slice";
  o.args = {{false, std::string("\x01\x02", 2)}, {true, "c1g0n3"}};
  o.resources = {{"CPU", 1.5}, {"GPU", 1}};
  o.labels = {{"zone", "a"}};
  o.max_retries = 5;
  auto r = round_trip(o);
  BOOST_CHECK(r.what == kind::submit);
  BOOST_CHECK_EQUAL(r.seq, 42u);
  BOOST_CHECK_EQUAL(r.result, "c1g0n7");
  BOOST_CHECK_EQUAL(r.name, "pi_slice");
  BOOST_REQUIRE_EQUAL(r.args.size(), 2u);
  BOOST_CHECK(!r.args[0].is_ref);
  BOOST_CHECK_EQUAL(r.args[0].value, std::string("\x01\x02", 2));
  BOOST_CHECK(r.args[1].is_ref);
  BOOST_CHECK_EQUAL(r.args[1].value, "c1g0n3");
  BOOST_CHECK(r.resources == o.resources);
  BOOST_CHECK(r.labels == o.labels);
  BOOST_CHECK_EQUAL(r.max_retries, 5);

  auto c = base(kind::call_actor);
  c.result = "c1g0n8";
  c.target = "actor-id";
  c.name = "Counter::add";
  c.args = {{false, std::string(1, '\0')}};
  auto rc = round_trip(c);
  BOOST_CHECK(rc.what == kind::call_actor);
  BOOST_CHECK_EQUAL(rc.target, "actor-id");
  BOOST_CHECK_EQUAL(rc.name, "Counter::add");
  BOOST_CHECK_EQUAL(rc.args.at(0).value, std::string(1, '\0'));
}

BOOST_AUTO_TEST_CASE(objects_and_actors_ops_keep_their_fields) {
  auto p = base(kind::put);
  p.result = "x";
  p.values = {std::string(1000, 'v')};
  BOOST_CHECK_EQUAL(round_trip(p).values.at(0), std::string(1000, 'v'));

  auto ps = base(kind::put_stream);
  ps.result = "big";
  ps.count = 3ull << 30;
  ps.stream = 9;
  auto rps = round_trip(ps);
  BOOST_CHECK(rps.what == kind::put_stream);
  BOOST_CHECK_EQUAL(rps.count, 3ull << 30);
  BOOST_CHECK_EQUAL(rps.stream, 9u);

  auto g = base(kind::get);
  g.ids = {"a", "b"};
  g.timeout_ms = -1;
  auto rg = round_trip(g);
  BOOST_CHECK(rg.ids == g.ids);
  BOOST_CHECK_EQUAL(rg.timeout_ms, -1);

  auto w = base(kind::wait);
  w.ids = {"a"};
  w.count = 1;
  w.timeout_ms = 250;
  auto rw = round_trip(w);
  BOOST_CHECK(rw.what == kind::wait);
  BOOST_CHECK_EQUAL(rw.count, 1u);
  BOOST_CHECK_EQUAL(rw.timeout_ms, 250);

  for (auto k : {kind::add_ref, kind::release}) {
    auto x = base(k);
    x.target = "obj";
    auto rx = round_trip(x);
    BOOST_CHECK(rx.what == k);
    BOOST_CHECK_EQUAL(rx.target, "obj");
  }

  auto ca = base(kind::create_actor);
  ca.target = "Counter";
  ca.values = {std::string(1, '\x05')};
  ca.name = "c";
  ca.ns = "ns";
  ca.get_if_exists = true;
  ca.flag = true;
  ca.max_retries = -1;
  ca.max_task_retries = 2;
  ca.max_concurrency = 8;
  ca.resources = {{"CPU", 1}};
  auto rca = round_trip(ca);
  BOOST_CHECK(rca.what == kind::create_actor);
  BOOST_CHECK_EQUAL(rca.target, "Counter");
  BOOST_CHECK_EQUAL(rca.name, "c");
  BOOST_CHECK_EQUAL(rca.ns, "ns");
  BOOST_CHECK(rca.get_if_exists);
  BOOST_CHECK(rca.flag);
  BOOST_CHECK_EQUAL(rca.max_retries, -1);
  BOOST_CHECK_EQUAL(rca.max_task_retries, 2);
  BOOST_CHECK_EQUAL(rca.max_concurrency, 8);
  BOOST_CHECK(rca.values == ca.values);

  auto ga = base(kind::get_actor);
  ga.name = "c";
  ga.ns = "ns";
  auto rga = round_trip(ga);
  BOOST_CHECK(rga.what == kind::get_actor);
  BOOST_CHECK_EQUAL(rga.ns, "ns");

  auto ka = base(kind::kill_actor);
  ka.target = "id";
  ka.flag = true;
  auto rka = round_trip(ka);
  BOOST_CHECK(rka.what == kind::kill_actor);
  BOOST_CHECK(rka.flag);
}

BOOST_AUTO_TEST_CASE(an_op_with_no_member_set_reads_as_unknown) {
  // A newer client's op: its union member is one this schema lacks, so the
  // test writes a discriminant past the last member.
  capnp::MallocMessageBuilder m;
  auto b = m.initRoot<schema::ClientOp>();
  b.setSeq(7);
  // The union's discriminant: the 16 bits after seq in the data section.
  auto raw = m.getRoot<capnp::AnyStruct>().getDataSection();
  BOOST_REQUIRE_GE(raw.size(), 10u);
  raw[8] = 0xff;
  raw[9] = 0x7f;
  auto r = rpc::read_op(m.getRoot<schema::ClientOp>().asReader());
  BOOST_CHECK(r.what == kind::unknown);
  BOOST_CHECK_EQUAL(r.seq, 7u);
}

BOOST_AUTO_TEST_CASE(replies_keep_errors_values_and_streams) {
  client_ops::reply in;
  in.seq = 9;
  in.error_kind = "actor_died";
  in.error = "why";
  in.function = "Counter::add";
  in.remote_type = "rayd::actor_died";
  in.remote_message = "killed";
  in.node_id = "n1";
  in.values.resize(2);
  in.values[0].bytes = std::string("\x00\x01", 2);
  in.values[1].streamed = true;
  in.values[1].stream = 5;
  in.values[1].size = 1ull << 31;
  in.ready = {true, false, true};
  in.actor_id = "a";
  in.class_name = "Counter";
  capnp::MallocMessageBuilder m;
  auto b = m.initRoot<schema::ClientReply>();
  rpc::fill(b, in);
  auto r = rpc::read_reply(b.asReader());
  BOOST_CHECK_EQUAL(r.seq, 9u);
  BOOST_CHECK_EQUAL(r.error_kind, "actor_died");
  BOOST_CHECK_EQUAL(r.remote_message, "killed");
  BOOST_CHECK_EQUAL(r.node_id, "n1");
  BOOST_REQUIRE_EQUAL(r.values.size(), 2u);
  BOOST_CHECK_EQUAL(r.values[0].bytes, std::string("\x00\x01", 2));
  BOOST_CHECK(!r.values[0].streamed);
  BOOST_CHECK(r.values[1].streamed);
  BOOST_CHECK_EQUAL(r.values[1].stream, 5u);
  BOOST_CHECK_EQUAL(r.values[1].size, 1ull << 31);
  BOOST_CHECK(r.ready == in.ready);
  BOOST_CHECK_EQUAL(r.class_name, "Counter");
}
