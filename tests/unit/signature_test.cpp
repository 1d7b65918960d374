// Unit tests of the signatures the registries record (api/rayd/signature.hpp):
// RAYD_REMOTE and RAYD_ACTOR derive a type descriptor per parameter and for
// the result from the C++ types; lookups by name return them, and their
// text form is what a human reads ("int64, string -> double").
#define BOOST_TEST_MODULE signature
#include <boost/test/unit_test.hpp>

#include <array>
#include <cstddef>
#include <cstdint>
#include <list>
#include <map>
#include <optional>
#include <set>
#include <string>
#include <string_view>
#include <tuple>
#include <unordered_map>
#include <vector>

#include <msgpack.hpp>

#include "rayd/actor_registry.hpp"
#include "rayd/remote.hpp"
#include "rayd/signature.hpp"

namespace demo {

struct point {
  int x = 0;
  double y = 0;
  MSGPACK_DEFINE(x, y);
};

double mean(int64_t n, const std::string& label) {
  return static_cast<double>(n) + static_cast<double>(label.size());
}
void nothing() {
}
std::optional<point> find(std::string_view key, std::map<std::string, std::vector<uint16_t>> m) {
  return key.empty() || m.empty() ? std::nullopt : std::optional<point>(point{});
}
std::vector<unsigned char> raw(std::array<int, 3> a, std::pair<bool, float> p) noexcept {
  return {static_cast<unsigned char>(a[0] + p.first)};
}

class Counter {
public:
  Counter(int64_t start, std::string label) : n_(start), label_(std::move(label)) {
  }
  int64_t add(int32_t k) {
    return n_ += k;
  }
  const std::string& label() const {
    return label_;
  }
  void reset() noexcept {
    n_ = 0;
  }

private:
  int64_t n_;
  std::string label_;
};

} // namespace demo

int unsigned_bits(unsigned short) {
  return 16;
}

RAYD_REMOTE(demo::mean, demo::nothing, demo::find, demo::raw);
RAYD_REMOTE(unsigned_bits);
RAYD_ACTOR(demo::Counter, (int64_t, std::string), add, label, reset);

using rayd::detail::describe;
using rayd::detail::signature;
using rayd::detail::type_desc;

BOOST_AUTO_TEST_CASE(function_signatures_name_each_parameter_and_the_result) {
  auto s = rayd::detail::signature_of_function("demo::mean");
  BOOST_REQUIRE(s);
  BOOST_TEST(s->name == "demo::mean");
  BOOST_TEST((s->k == signature::kind::function));
  BOOST_REQUIRE_EQUAL(s->params.size(), 2u);
  BOOST_TEST((s->params[0].k == type_desc::kind::integer));
  BOOST_TEST(s->params[0].bits == 64);
  BOOST_TEST(s->params[0].is_signed);
  BOOST_TEST((s->params[1].k == type_desc::kind::string));
  BOOST_TEST((s->result.k == type_desc::kind::floating));
  BOOST_TEST(s->result.bits == 64);
  BOOST_TEST(to_string(*s) == "int64, string -> double");

  BOOST_TEST(to_string(*rayd::detail::signature_of_function("demo::nothing")) == "() -> nil");
  BOOST_TEST(to_string(*rayd::detail::signature_of_function("demo::find"))
             == "string, map<string, array<uint16>> -> optional<opaque<demo::point>>");
  BOOST_TEST(to_string(*rayd::detail::signature_of_function("demo::raw"))
             == "array<int32, 3>, tuple<bool, float> -> bytes");
  BOOST_TEST(to_string(*rayd::detail::signature_of_function("unsigned_bits")) == "uint16 -> int32");
}

BOOST_AUTO_TEST_CASE(unknown_names_have_no_signature) {
  BOOST_TEST(!rayd::detail::signature_of_function("no_such_function"));
  BOOST_TEST(!rayd::detail::signature_of_constructor("NoSuchClass"));
  BOOST_TEST(!rayd::detail::signature_of_method("demo::Counter::no_such_method"));
  BOOST_TEST(!rayd::detail::signature_of_method("NoSuchClass::add"));
  BOOST_TEST(!rayd::detail::signature_of_method("add"));
  BOOST_TEST(!rayd::detail::signature_of_method("::add"));
}

BOOST_AUTO_TEST_CASE(a_registration_without_a_signature_drops_an_older_one) {
  auto f = rayd::detail::find_function("demo::mean");
  rayd::detail::register_function("sig_test_plain", f);
  BOOST_TEST(!rayd::detail::signature_of_function("sig_test_plain"));
  rayd::detail::register_function("sig_test_plain", f,
                                  reinterpret_cast<rayd::detail::function_key>(&demo::mean),
                                  &rayd::detail::build_signature<double, int64_t, std::string>);
  BOOST_TEST(rayd::detail::signature_of_function("sig_test_plain").has_value());
  rayd::detail::register_function("sig_test_plain", f);
  BOOST_TEST(!rayd::detail::signature_of_function("sig_test_plain"));
  // Still callable: signatures are an addition, not a condition.
  BOOST_TEST(rayd::detail::find_function("sig_test_plain") == f);
}

BOOST_AUTO_TEST_CASE(constructor_and_method_signatures_of_a_namespaced_class) {
  auto c = rayd::detail::signature_of_constructor("demo::Counter");
  BOOST_REQUIRE(c);
  BOOST_TEST((c->k == signature::kind::constructor));
  BOOST_TEST(c->name == "demo::Counter");
  BOOST_TEST(to_string(*c) == "int64, string -> nil");

  auto add = rayd::detail::signature_of_method("demo::Counter::add");
  BOOST_REQUIRE(add);
  BOOST_TEST((add->k == signature::kind::method));
  BOOST_TEST(to_string(*add) == "int32 -> int64");
  BOOST_TEST(to_string(*rayd::detail::signature_of_method("demo::Counter::label"))
             == "() -> string");
  BOOST_TEST(to_string(*rayd::detail::signature_of_method("demo::Counter::reset")) == "() -> nil");
}

BOOST_AUTO_TEST_CASE(the_listing_holds_functions_then_classes_sorted) {
  auto all = rayd::detail::registered_signatures();
  std::vector<std::string> names;
  for (auto& s : all)
    names.push_back(s.name);
  std::vector<std::string> expected = {"demo::find",    "demo::mean",         "demo::nothing",
                                       "demo::raw",     "unsigned_bits",      "demo::Counter",
                                       "demo::Counter::add", "demo::Counter::label",
                                       "demo::Counter::reset"};
  BOOST_TEST(names == expected, boost::test_tools::per_element());
}

BOOST_AUTO_TEST_CASE(descriptors_of_std_types) {
  struct row {
    std::string text;
    type_desc desc;
  };
  std::vector<row> rows = {
    {"bool", describe<bool>()},
    {"int8", describe<signed char>()},
    {"uint8", describe<uint8_t>()},
    {"int16", describe<const short&>()},
    {"uint32", describe<unsigned>()},
    {"uint64", describe<std::size_t>()},
    {"float", describe<float>()},
    {"double", describe<double&&>()},
    {"string", describe<std::string>()},
    {"string", describe<std::string_view>()},
    {"bytes", describe<std::vector<char>>()},
    {"bytes", describe<std::vector<std::byte>>()},
    {"bytes", describe<std::array<unsigned char, 4>>()},
    {"array<int32>", describe<std::list<int>>()},
    {"array<int8>", describe<std::set<signed char>>()},
    {"array<array<double>>", describe<std::vector<std::vector<double>>>()},
    {"map<int32, string>", describe<std::unordered_map<int, std::string>>()},
    {"optional<bytes>", describe<std::optional<std::vector<char>>>()},
    {"tuple<>", describe<std::tuple<>>()},
    {"tuple<int64, opaque<demo::point>>", describe<std::tuple<long, demo::point>>()},
    {"nil", describe<void>()},
  };
  for (auto& r : rows)
    BOOST_TEST(to_string(r.desc) == r.text);
  BOOST_TEST(describe<demo::point>().cpp_name == "demo::point");
  BOOST_TEST((describe<std::array<int, 3>>().fixed_size == 3));
  BOOST_TEST((describe<int>() == describe<const int&>()));
  BOOST_TEST((describe<int>() != describe<unsigned>()));
}
