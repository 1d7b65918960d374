// The API gateway's bridge (schemas/bridge.hpp): kj promises for CAF
// requests, answered through the reply sink and the eventfd wake-up.
#define BOOST_TEST_MODULE bridge
#include <boost/test/unit_test.hpp>

#include <memory>
#include <string>
#include <vector>

#include <caf/all.hpp>
#include <kj/async-io.h>

#include "actors/gcs/kv_actor.hpp"
#include "actors/registry.hpp"
#include "common/error.hpp"
#include "schemas/bridge.hpp"
#include "schemas/read_ahead_stream.hpp"
#include "tests/support/actor_config.hpp"

using namespace rayd;

namespace {

struct fixture {
  caf::actor_system_config cfg;
  std::unique_ptr<caf::actor_system> sys;
  fixture() {
    test::quiet_config(cfg);
    cfg.set("scheduler.max-threads", 2);
    sys = std::make_unique<caf::actor_system>(cfg);
  }
};

struct parked_state {
  std::vector<caf::typed_response_promise<bool>> parked;
};

/// A KV stand-in: get answers "ns/key" (or not_found for "missing"); put
/// parks its promise and answers all of a batch of `batch` at once, like the
/// KV actor's group commit.
gcs_kv_actor spawn_fake_kv(caf::actor_system& sys, size_t batch) {
  return sys.spawn([batch](gcs_kv_actor::stateful_pointer<parked_state> self)
                     -> gcs_kv_actor::behavior_type {
    return {
      [self, batch](atoms::kv_put, std::string&, std::string&, std::string&,
                    bool) -> caf::result<bool> {
        auto rp = self->make_response_promise<bool>();
        self->state.parked.push_back(rp);
        if (self->state.parked.size() == batch) {
          for (auto& p : self->state.parked)
            p.deliver(true);
          self->state.parked.clear();
        }
        return rp;
      },
      [](atoms::kv_get, std::string& ns, std::string& key) -> caf::result<std::string> {
        if (key == "missing")
          return make_error(errc::not_found, "key 'missing' not found");
        return ns + "/" + key;
      },
      [](atoms::kv_del, std::string&, std::string&) -> caf::result<bool> { return false; },
      [](atoms::kv_list, std::string&, std::string&)
        -> caf::result<std::vector<std::string>> { return std::vector<std::string>{}; },
      [](atoms::flush) {},
    };
  });
}

} // namespace

BOOST_FIXTURE_TEST_SUITE(bridge_suite, fixture)

BOOST_AUTO_TEST_CASE(answers_and_errors_reach_the_loop) {
  auto io = kj::setupAsyncIo();
  rpc::bridge br{*sys, io};
  auto loop = br.run().eagerlyEvaluate(nullptr);
  auto kv = spawn_fake_kv(*sys, 1);
  auto v = br.ask<std::string>(kv, atoms::kv_get::value, std::string{"ns"}, std::string{"k"})
             .wait(io.waitScope);
  BOOST_REQUIRE(v);
  BOOST_CHECK_EQUAL(*v, "ns/k");
  auto e = br.ask<std::string>(kv, atoms::kv_get::value, std::string{"ns"},
                               std::string{"missing"})
             .wait(io.waitScope);
  BOOST_REQUIRE(!e);
  BOOST_CHECK(code_of(e.error()) == errc::not_found);
  BOOST_CHECK_EQUAL(br.pending(), 0u);
  caf::anon_send_exit(kv, caf::exit_reason::kill);
}

BOOST_AUTO_TEST_CASE(a_batch_answered_at_once_resolves_every_call) {
  auto io = kj::setupAsyncIo();
  rpc::bridge br{*sys, io};
  auto loop = br.run().eagerlyEvaluate(nullptr);
  constexpr size_t n = 500;
  auto kv = spawn_fake_kv(*sys, 50);
  auto calls = kj::heapArrayBuilder<kj::Promise<caf::expected<bool>>>(n);
  for (size_t i = 0; i < n; ++i)
    calls.add(br.ask<bool>(kv, atoms::kv_put::value, std::string{"ns"}, std::to_string(i),
                           std::string{"v"}, true));
  auto results = kj::joinPromises(calls.finish()).wait(io.waitScope);
  size_t ok = 0;
  for (auto& r : results)
    ok += (r && *r) ? 1 : 0;
  BOOST_CHECK_EQUAL(ok, n);
  BOOST_CHECK_EQUAL(br.pending(), 0u);
  caf::anon_send_exit(kv, caf::exit_reason::kill);
}

BOOST_AUTO_TEST_CASE(a_dead_callee_fails_the_call_at_once) {
  auto io = kj::setupAsyncIo();
  rpc::bridge br{*sys, io};
  auto loop = br.run().eagerlyEvaluate(nullptr);
  auto kv = spawn_fake_kv(*sys, 1);
  caf::scoped_actor self{*sys};
  self->monitor(kv);
  caf::anon_send_exit(kv, caf::exit_reason::kill);
  self->receive([](caf::down_msg&) {});
  auto r = io.provider->getTimer()
             .timeoutAfter(5 * kj::SECONDS,
                           br.ask<std::string>(kv, atoms::kv_get::value, std::string{"ns"},
                                               std::string{"k"}))
             .wait(io.waitScope);
  BOOST_CHECK(!r); // an error, not a hang (timeoutAfter would throw)
}

BOOST_AUTO_TEST_CASE(an_unanswered_call_times_out_and_frees_its_slot) {
  auto io = kj::setupAsyncIo();
  rpc::bridge br{*sys, io, std::chrono::milliseconds{50}};
  auto loop = br.run().eagerlyEvaluate(nullptr);
  auto kv = spawn_fake_kv(*sys, 2); // one put alone is parked for ever
  auto call = br.ask<bool>(kv, atoms::kv_put::value, std::string{"ns"}, std::string{"k"},
                           std::string{"v"}, true);
  BOOST_CHECK_EQUAL(br.pending(), 1u);
  // Nothing expires before the deadline...
  br.expire();
  BOOST_CHECK_EQUAL(br.pending(), 1u);
  // ...and run()'s once-a-second sweep fails it after.
  auto r = io.provider->getTimer().timeoutAfter(5 * kj::SECONDS, kj::mv(call)).wait(io.waitScope);
  BOOST_REQUIRE(!r);
  BOOST_CHECK(code_of(r.error()) == errc::timeout);
  BOOST_CHECK_EQUAL(br.pending(), 0u);
  caf::anon_send_exit(kv, caf::exit_reason::kill);
}

BOOST_AUTO_TEST_SUITE_END()

namespace {

/// Counts the reads that reach the wrapped stream.
class counting_stream final : public kj::AsyncIoStream {
public:
  explicit counting_stream(kj::Own<kj::AsyncIoStream> s) : inner(kj::mv(s)) {
  }
  kj::Promise<size_t> tryRead(void* buf, size_t min_bytes, size_t max_bytes) override {
    ++reads;
    return inner->tryRead(buf, min_bytes, max_bytes);
  }
  kj::Promise<void> write(const void* buf, size_t n) override {
    return inner->write(buf, n);
  }
  kj::Promise<void> write(kj::ArrayPtr<const kj::ArrayPtr<const kj::byte>> p) override {
    return inner->write(p);
  }
  kj::Promise<void> whenWriteDisconnected() override {
    return inner->whenWriteDisconnected();
  }
  void shutdownWrite() override {
    inner->shutdownWrite();
  }
  kj::Own<kj::AsyncIoStream> inner;
  size_t reads = 0;
};

std::string read_exactly(kj::AsyncInputStream& in, size_t n, kj::WaitScope& ws) {
  std::string out(n, '\0');
  size_t got = in.tryRead(&out[0], n, n).wait(ws);
  out.resize(got);
  return out;
}

} // namespace

BOOST_AUTO_TEST_CASE(read_ahead_serves_small_reads_from_one_read) {
  auto io = kj::setupAsyncIo();
  auto pipe = io.provider->newTwoWayPipe();
  auto counted = kj::heap<counting_stream>(kj::mv(pipe.ends[1]));
  auto& counter = *counted;
  rpc::read_ahead_stream in{kj::mv(counted)};
  // Three "messages" in one write, read back in exact-size pieces as Cap'n
  // Proto does (header word, then the rest).
  std::string a = "hdr-one." + std::string(40, 'a');
  std::string b = "hdr-two." + std::string(16, 'b');
  std::string c = "hdr-3...." + std::string(100, 'c');
  std::string all = a + b + c;
  pipe.ends[0]->write(all.data(), all.size()).wait(io.waitScope);
  std::string back;
  for (size_t n : {8, 40, 8, 16, 9, 100})
    back += read_exactly(in, n, io.waitScope);
  BOOST_CHECK(back == all);
  BOOST_CHECK_EQUAL(counter.reads, 1u);

  // A read larger than the buffer bypasses it, and every byte arrives.
  std::string big(200000, '\0');
  for (size_t i = 0; i < big.size(); ++i)
    big[i] = static_cast<char>(i * 7);
  auto w = pipe.ends[0]->write(big.data(), big.size());
  std::string big_back = read_exactly(in, 3, io.waitScope);
  big_back += read_exactly(in, big.size() - 3, io.waitScope);
  w.wait(io.waitScope);
  BOOST_CHECK(big_back == big);

  // At the end of the stream a read returns what is left (here nothing).
  pipe.ends[0]->shutdownWrite();
  BOOST_CHECK_EQUAL(read_exactly(in, 8, io.waitScope).size(), 0u);
}
