// Unit tests of the actor class registry (api/rayd/actor_registry.hpp):
// RAYD_ACTOR registers a class with its factory, deleter and methods; the
// worker constructs and calls through it; callers find method names from
// member pointers.
#define BOOST_TEST_MODULE actor_registry
#include <boost/test/unit_test.hpp>

#include <stdexcept>
#include <string>
#include <vector>

#include <msgpack.hpp>

#include "rayd/actor_registry.hpp"

namespace {

int live_counters = 0;

class Counter {
public:
  Counter(int start, std::string label) : n_(start), label_(std::move(label)) {
    if (start < 0)
      throw std::invalid_argument("negative start");
    ++live_counters;
  }
  ~Counter() {
    --live_counters;
  }
  int add(int k) {
    return n_ += k;
  }
  int value() const {
    return n_;
  }
  std::string label() const noexcept {
    return label_;
  }
  void reset() {
    n_ = 0;
  }

private:
  int n_;
  std::string label_;
};

class Empty {
public:
  int one() {
    return 1;
  }
  int two() {
    return 2;
  }
};

template <class T>
std::string bytes_of(const T& v) {
  msgpack::sbuffer b;
  msgpack::pack(b, v);
  return {b.data(), b.size()};
}

template <class T>
T value_of(const std::string& s) {
  return msgpack::unpack(s.data(), s.size()).get().as<T>();
}

std::vector<std::string_view> views(const std::vector<std::string>& v) {
  return {v.begin(), v.end()};
}

} // namespace

RAYD_ACTOR(Counter, (int, std::string), add, value, label, reset);
RAYD_ACTOR(Empty, (), one, two);

using namespace rayd::detail;

BOOST_AUTO_TEST_CASE(a_class_is_constructed_called_and_destroyed_by_name) {
  auto* c = find_actor_class("Counter");
  BOOST_REQUIRE(c != nullptr);
  std::vector<std::string> args{bytes_of(5), bytes_of(std::string("c1"))};
  invoke_result why;
  void* self = construct(*c, views(args), why);
  BOOST_REQUIRE(self != nullptr);
  BOOST_CHECK_EQUAL(live_counters, 1);
  auto add = find_method(*c, "Counter::add");
  BOOST_REQUIRE(add != nullptr);
  std::vector<std::string> three{bytes_of(3)};
  auto r = add(self, views(three));
  BOOST_REQUIRE(r.ok);
  BOOST_CHECK_EQUAL(value_of<int>(r.value), 8);
  auto label = find_method(*c, "Counter::label");
  BOOST_REQUIRE(label != nullptr);
  BOOST_CHECK_EQUAL(value_of<std::string>(label(self, {}).value), "c1");
  auto reset = find_method(*c, "Counter::reset");
  BOOST_REQUIRE(reset != nullptr);
  BOOST_CHECK(reset(self, {}).ok); // void: nil
  BOOST_CHECK_EQUAL(value_of<int>(find_method(*c, "Counter::value")(self, {}).value), 0);
  BOOST_CHECK(find_method(*c, "Counter::nope") == nullptr);
  BOOST_CHECK(find_method(*c, "add") == nullptr); // only the qualified name
  destroy(*c, self);
  BOOST_CHECK_EQUAL(live_counters, 0);
  BOOST_CHECK(find_actor_class("Nope") == nullptr);
}

BOOST_AUTO_TEST_CASE(mismatched_arguments_and_throwing_constructors_are_reported) {
  auto* c = find_actor_class("Counter");
  BOOST_REQUIRE(c != nullptr);
  invoke_result why;
  std::vector<std::string> wrong{bytes_of(std::string("x")), bytes_of(std::string("c"))};
  BOOST_CHECK(construct(*c, views(wrong), why) == nullptr);
  BOOST_CHECK_EQUAL(why.error_type, "rayd::type_mismatch");
  BOOST_CHECK_NE(why.error_message.find("constructor of Counter"), std::string::npos);
  BOOST_CHECK_NE(why.error_message.find("argument 1"), std::string::npos);
  std::vector<std::string> few{bytes_of(1)};
  BOOST_CHECK(construct(*c, views(few), why) == nullptr);
  BOOST_CHECK_NE(why.error_message.find("expects 2 arguments, got 1"), std::string::npos);
  std::vector<std::string> negative{bytes_of(-1), bytes_of(std::string("c"))};
  BOOST_CHECK(construct(*c, views(negative), why) == nullptr);
  BOOST_CHECK_EQUAL(why.error_type, "std::invalid_argument");
  BOOST_CHECK_EQUAL(why.error_message, "negative start");
  BOOST_CHECK_EQUAL(live_counters, 0);

  std::vector<std::string> ok{bytes_of(1), bytes_of(std::string("c"))};
  void* self = construct(*c, views(ok), why);
  BOOST_REQUIRE(self != nullptr);
  std::vector<std::string> bad_arg{bytes_of(std::string("no"))};
  auto r = find_method(*c, "Counter::add")(self, views(bad_arg));
  BOOST_CHECK(!r.ok);
  BOOST_CHECK_EQUAL(r.error_type, "rayd::type_mismatch");
  BOOST_CHECK_NE(r.error_message.find("Counter::add"), std::string::npos);
  destroy(*c, self);
}

BOOST_AUTO_TEST_CASE(member_pointers_map_to_registered_names) {
  BOOST_CHECK_EQUAL(actor_class_name(typeid(Counter)), "Counter");
  BOOST_CHECK_EQUAL(actor_method_name(&Counter::add), "Counter::add");
  BOOST_CHECK_EQUAL(actor_method_name(&Counter::value), "Counter::value");
  BOOST_CHECK_EQUAL(actor_method_name(&Counter::label), "Counter::label");
  BOOST_CHECK_EQUAL(actor_method_name(&Empty::two), "Empty::two");
  BOOST_CHECK_EQUAL(actor_class_name(typeid(int)), "");
  auto* e = find_actor_class("Empty");
  BOOST_REQUIRE(e != nullptr);
  invoke_result why;
  std::vector<std::string> extra{bytes_of(1)};
  BOOST_CHECK(construct(*e, views(extra), why) == nullptr); // takes none
  void* self = construct(*e, {}, why);
  BOOST_REQUIRE(self != nullptr);
  BOOST_CHECK_EQUAL(value_of<int>(find_method(*e, "Empty::two")(self, {}).value), 2);
  destroy(*e, self);
}
