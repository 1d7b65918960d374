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

using namespace rayd;

namespace {

struct fixture {
  caf::actor_system_config cfg;
  std::unique_ptr<caf::actor_system> sys;
  fixture() {
    register_message_types(cfg);
    register_error_category(cfg);
    cfg.set("logger.file-verbosity", caf::atom("quiet"));
    cfg.set("logger.console-verbosity", caf::atom("quiet"));
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

BOOST_AUTO_TEST_SUITE_END()
