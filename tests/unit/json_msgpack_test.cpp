// Unit tests of the type-directed JSON ↔ msgpack conversion
// (common/json_msgpack.hpp). The arguments it makes are checked the way
// they are used: through the real invokers of functions and actor methods
// registered with RAYD_REMOTE and RAYD_ACTOR, and byte for byte against
// what the C++ caller packs.
#define BOOST_TEST_MODULE json_msgpack
#include <boost/test/unit_test.hpp>

#include <array>
#include <cmath>
#include <cstdint>
#include <limits>
#include <map>
#include <optional>
#include <random>
#include <string>
#include <string_view>
#include <tuple>
#include <vector>

#include <msgpack.hpp>
#include <nlohmann/json.hpp>

#include "common/error.hpp"
#include "common/json_msgpack.hpp"
#include "rayd/actor_registry.hpp"
#include "rayd/remote.hpp"

using nlohmann::json;

namespace shapes {

struct point {
  int x = 0;
  double y = 0;
  MSGPACK_DEFINE(x, y);
};

} // namespace shapes

namespace {

int32_t add(int32_t a, int32_t b) {
  return a + b;
}
double scale(double x, float f) {
  return x * f;
}
std::string greet(const std::string& name, std::optional<int> times) {
  std::string out;
  for (int i = 0; i < times.value_or(1); ++i)
    out += "hi " + name + ";";
  return out;
}
uint8_t low(uint8_t v) {
  return v;
}
int8_t negate8(int8_t v) {
  return static_cast<int8_t>(-v);
}
uint64_t big(uint64_t v) {
  return v;
}
std::vector<int64_t> doubled(std::vector<int64_t> v) {
  for (auto& x : v)
    x *= 2;
  return v;
}
std::map<std::string, double> totals(const std::map<std::string, std::vector<double>>& m) {
  std::map<std::string, double> out;
  for (auto& [k, v] : m) {
    auto& sum = out[k];
    for (double d : v)
      sum += d;
  }
  return out;
}
std::vector<char> reversed(std::vector<char> b) {
  return {b.rbegin(), b.rend()};
}
std::size_t view_size(std::string_view s) {
  return s.size();
}
shapes::point moved(shapes::point p, std::tuple<int, double> by) {
  return {p.x + std::get<0>(by), p.y + std::get<1>(by)};
}
std::map<int, std::string> keyed(std::map<int, std::string> m) {
  m[-1] = "added";
  return m;
}
bool flip(bool b) {
  return !b;
}
void nothing() {
}
float half(float f) {
  return f / 2;
}
std::array<int, 3> rotate(std::array<int, 3> a) {
  return {a[1], a[2], a[0]};
}
std::string raw_text(std::string s) {
  return s;
}
double not_a_number() {
  return std::nan("");
}
std::optional<std::string> maybe(bool give) {
  return give ? std::optional<std::string>("yes") : std::nullopt;
}

class Account {
public:
  Account(std::string owner, int64_t balance) : owner_(std::move(owner)), balance_(balance) {
  }
  int64_t deposit(int64_t amount) {
    return balance_ += amount;
  }
  std::map<std::string, int64_t> summary() const {
    return {{owner_, balance_}};
  }

private:
  std::string owner_;
  int64_t balance_;
};

} // namespace

RAYD_REMOTE(add, scale, greet, low, negate8, big, doubled, totals, reversed, view_size, moved);
RAYD_REMOTE(keyed, flip, nothing, half, rotate, raw_text, not_a_number, maybe);
RAYD_ACTOR(Account, (std::string, int64_t), deposit, summary);

namespace {

using rayd::detail::describe;

/// Calls the registered function `name` with `args` (JSON text) through
/// its real invoker; the result as JSON, or the first error's message.
struct outcome {
  bool ok = false;
  json value;
  std::string error;
};

/// The error's text, "" without one (Boost formats a message even when the
/// check passes, so error() must not be reached on a value).
template <class T>
std::string error_text(const caf::expected<T>& x) {
  return x ? std::string() : rayd::describe(x.error());
}

std::vector<std::string_view> views(const std::vector<std::string>& v) {
  return {v.begin(), v.end()};
}

outcome call(const std::string& name, const std::string& args_text) {
  outcome r;
  auto sig = rayd::detail::signature_of_function(name);
  BOOST_REQUIRE_MESSAGE(sig, "no signature for " << name);
  auto args = rayd::parse_json(args_text);
  if (!args) {
    r.error = rayd::describe(args.error());
    return r;
  }
  auto packed = rayd::json_to_arguments(*sig, *args);
  if (!packed) {
    BOOST_TEST((rayd::code_of(packed.error()) == rayd::errc::invalid_argument));
    r.error = rayd::describe(packed.error());
    return r;
  }
  auto f = rayd::detail::find_function(name);
  BOOST_REQUIRE(f);
  auto res = f(views(*packed));
  BOOST_REQUIRE_MESSAGE(res.ok, name << " refused converted arguments: " << res.error_message);
  auto out = rayd::msgpack_to_json(sig->result, res.value);
  BOOST_REQUIRE_MESSAGE(out, error_text(out));
  r.ok = true;
  r.value = *out;
  return r;
}

} // namespace

BOOST_AUTO_TEST_CASE(arguments_round_trip_through_the_real_invokers) {
  struct row {
    std::string fn, args, result;
  };
  std::vector<row> rows = {
    {"add", "[2, 3]", "5"},
    {"add", "[-2147483648, 0]", "-2147483648"},
    {"add", "[3.0, 1e1]", "13"}, // whole floats are accepted for integers
    {"scale", "[2.5, 2]", "5.0"}, // a double result stays a JSON float
    {"scale", "[1, 0.5]", "0.5"},
    {"greet", R"(["ann", 2])", R"("hi ann;hi ann;")"},
    {"greet", R"(["bob", null])", R"("hi bob;")"},
    {"greet", R"(["\u00e9", 1])", R"("hi é;")"},
    {"low", "[255]", "255"},
    {"negate8", "[-127]", "127"},
    {"big", "[18446744073709551615]", "18446744073709551615"},
    {"doubled", "[[1, -2, 4611686018427387903]]", "[2, -4, 9223372036854775806]"},
    {"doubled", "[[]]", "[]"},
    {"totals", R"([{"a": [1, 2.5], "b": []}])", R"({"a": 3.5, "b": 0.0})"},
    {"reversed", R"([{"$bytes": "AAEC/w=="}])", R"({"$bytes": "/wIBAA=="})"},
    {"reversed", R"(["abc"])", R"({"$bytes": "Y2Jh"})"},
    {"view_size", R"(["hello"])", "5"},
    {"moved", "[[1, 2.5], [10, 0.25]]", "[11, 2.75]"},
    {"keyed", R"([{"7": "seven"}])", R"({"-1": "added", "7": "seven"})"},
    {"flip", "[false]", "true"},
    {"nothing", "[]", "null"},
    {"half", "[0.2]", "0.1"}, // float results print as the float they are
    {"rotate", "[[1, 2, 3]]", "[2, 3, 1]"},
    {"raw_text", R"([{"$bytes": "/w=="}])", R"({"$bytes": "/w=="})"}, // not UTF-8
    {"not_a_number", "[]", "null"},
    {"maybe", "[true]", R"("yes")"},
    {"maybe", "[false]", "null"},
  };
  for (auto& r : rows) {
    BOOST_TEST_CONTEXT(r.fn << r.args) {
      auto o = call(r.fn, r.args);
      BOOST_TEST(o.ok, o.error);
      BOOST_TEST(o.value == json::parse(r.result));
      // Floats stay floats and integers integers in the printed result.
      BOOST_TEST(o.value.dump() == json::parse(r.result).dump());
    }
  }
}

BOOST_AUTO_TEST_CASE(mismatches_name_the_argument_and_the_expected_type) {
  struct row {
    std::string fn, args, message;
  };
  std::vector<row> rows = {
    {"add", R"([1, "x"])", R"(argument 2: expected int32, got string "x")"},
    {"add", "[1.5, 1]", "argument 1: expected int32, got number 1.5"},
    {"add", "[2147483648, 1]",
     "argument 1: expected int32, got integer 2147483648 (out of range -2147483648..2147483647)"},
    {"add", "[1e300, 1]", "argument 1: expected int32, got number 1e+300 (out of range"},
    {"add", "[true, 1]", "argument 1: expected int32, got boolean true"},
    {"add", "[null, 1]", "argument 1: expected int32, got null"},
    {"add", "[1]", "add expects 2 arguments (int32, int32), got 1"},
    {"add", "[1, 2, 3]", "add expects 2 arguments (int32, int32), got 3"},
    {"nothing", "[1]", "nothing expects 0 arguments, got 1"},
    {"add", R"({"a": 1})", "arguments must be a JSON array, got object of 1 member"},
    {"low", "[256]", "argument 1: expected uint8, got integer 256 (out of range 0..255)"},
    {"low", "[-1]", "argument 1: expected uint8, got integer -1 (out of range 0..255)"},
    {"negate8", "[-129]", "argument 1: expected int8, got integer -129 (out of range -128..127)"},
    {"big", "[-1]", "argument 1: expected uint64, got integer -1 (out of range"},
    {"half", "[1e39]", "argument 1: expected float, got number 1e+39 (out of range)"},
    {"scale", R"(["2", 1])", R"(argument 1: expected double, got string "2")"},
    {"greet", "[1, 1]", "argument 1: expected string, got integer 1"},
    {"greet", R"(["a", "b"])", R"(argument 2: expected int32, got string "b")"},
    {"flip", "[0]", "argument 1: expected bool, got integer 0"},
    {"doubled", "[[1, 2, \"3\"]]", R"(argument 1 at /2: expected int64, got string "3")"},
    {"doubled", "[{}]", "argument 1: expected array<int64>, got object of 0 members"},
    {"totals", R"([{"a/b~": [1, null]}])", "argument 1 at /a~1b~0/1: expected double, got null"},
    {"keyed", R"([{"x": "y"}])",
     R"(argument 1 at /x: expected a key of type int32 (decimal), got string "x")"},
    {"keyed", R"([{"1.5": "y"}])", "expected a key of type int32 (decimal)"},
    {"keyed", R"([{"99999999999": "y"}])", "out of range"},
    {"rotate", "[[1, 2]]", "argument 1: expected array<int32, 3>, got array of 2 elements"},
    {"moved", "[[1, 2], [1]]", "argument 2: expected tuple<int32, double>, got array of 1 element"},
    {"reversed", R"([{"$bytes": "a$=="}])", "argument 1 at /$bytes: invalid base64"},
    {"reversed", "[[1, 2]]", "argument 1: expected bytes, got array of 2 elements"},
    {"greet", R"(["0123456789012345678901234567890123456789", "x"])",
     R"(argument 2: expected int32, got string "x")"},
    {"add", R"(["0123456789012345678901234567890123456789", 1])",
     R"(argument 1: expected int32, got string "01234567890123456789012345678901"… (40 bytes))"},
  };
  for (auto& r : rows) {
    BOOST_TEST_CONTEXT(r.fn << r.args) {
      auto o = call(r.fn, r.args);
      BOOST_TEST(!o.ok);
      BOOST_TEST(o.error.find(r.message) != std::string::npos, o.error);
    }
  }
}

BOOST_AUTO_TEST_CASE(opaque_structs_take_their_msgpack_array_layout_and_the_invoker_checks_it) {
  // A struct is packed by its JSON shape; a wrong shape reaches the invoker,
  // which refuses it with rayd::type_mismatch (never undefined behaviour).
  auto sig = rayd::detail::signature_of_function("moved");
  BOOST_REQUIRE(sig);
  auto packed = rayd::json_to_arguments(*sig, json::parse(R"([["x", 1], [1, 2]])"));
  BOOST_REQUIRE(packed);
  auto res = rayd::detail::find_function("moved")(views(*packed));
  BOOST_TEST(!res.ok);
  BOOST_TEST(res.error_type == "rayd::type_mismatch");
  BOOST_TEST(res.error_message.find("argument 1 expects shapes::point") != std::string::npos,
             res.error_message);
}

BOOST_AUTO_TEST_CASE(bytes_are_those_the_cpp_caller_packs) {
  using rayd::detail::pack;
  struct row {
    rayd::detail::type_desc type;
    std::string json_text;
    std::string expected;
  };
  std::vector<row> rows = {
    {describe<int32_t>(), "5", pack(int32_t{5})},
    {describe<int32_t>(), "-1", pack(int32_t{-1})},
    {describe<int16_t>(), "300", pack(int16_t{300})},
    {describe<int64_t>(), "-9223372036854775808", pack(std::numeric_limits<int64_t>::min())},
    {describe<uint64_t>(), "18446744073709551615", pack(std::numeric_limits<uint64_t>::max())},
    {describe<uint32_t>(), "4294967295.0", pack(uint32_t{4294967295u})},
    {describe<char>(), "65", pack('A')},
    {describe<double>(), "2.5", pack(2.5)},
    {describe<double>(), "3", pack(3.0)},
    {describe<double>(), "-0.0", pack(-0.0)},
    {describe<float>(), "0.1", pack(0.1f)},
    {describe<bool>(), "true", pack(true)},
    {describe<std::string>(), R"("héllo")", pack(std::string("héllo"))},
    {describe<std::vector<char>>(), R"({"$bytes": "AP8="})", pack(std::vector<char>{0, '\xff'})},
    {describe<std::optional<int>>(), "null", pack(std::optional<int>())},
    {describe<std::optional<int>>(), "7", pack(std::optional<int>(7))},
    {describe<std::map<std::string, int>>(), R"({"b": 2, "a": 1})",
     pack(std::map<std::string, int>{{"a", 1}, {"b", 2}})},
    {describe<std::map<int64_t, bool>>(), R"({"-5": true, "10": false})",
     pack(std::map<int64_t, bool>{{-5, true}, {10, false}})},
    {describe<std::vector<std::optional<double>>>(), "[1.5, null, 2]",
     pack(std::vector<std::optional<double>>{1.5, std::nullopt, 2.0})},
    {describe<std::tuple<int, std::string>>(), R"([1, "a"])",
     pack(std::make_tuple(1, std::string("a")))},
    {describe<shapes::point>(), "[4, 0.5]", pack(shapes::point{4, 0.5})},
  };
  for (auto& r : rows) {
    BOOST_TEST_CONTEXT(to_string(r.type) << " " << r.json_text) {
      auto got = rayd::json_to_msgpack(r.type, json::parse(r.json_text));
      BOOST_REQUIRE_MESSAGE(got, error_text(got));
      BOOST_TEST(*got == r.expected);
      // And back: the JSON read from the caller's bytes is the same value.
      auto back = rayd::msgpack_to_json(r.type, r.expected);
      BOOST_REQUIRE(back);
      BOOST_TEST(*back == json::parse(r.json_text));
    }
  }
}

BOOST_AUTO_TEST_CASE(an_actor_is_constructed_and_called_with_converted_arguments) {
  auto ctor = rayd::detail::signature_of_constructor("Account");
  BOOST_REQUIRE(ctor);
  auto cls = rayd::detail::find_actor_class("Account");
  BOOST_REQUIRE(cls);
  auto args = rayd::json_to_arguments(*ctor, json::parse(R"(["ann", 100])"));
  BOOST_REQUIRE(args);
  rayd::detail::invoke_result why;
  void* self = rayd::detail::construct(*cls, views(*args), why);
  BOOST_REQUIRE_MESSAGE(self, why.error_message);

  auto deposit = rayd::detail::signature_of_method("Account::deposit");
  BOOST_REQUIRE(deposit);
  auto dep_args = rayd::json_to_arguments(*deposit, json::parse("[-30]"));
  BOOST_REQUIRE(dep_args);
  auto res = rayd::detail::find_method(*cls, "Account::deposit")(self, views(*dep_args));
  BOOST_REQUIRE(res.ok);
  BOOST_TEST(*rayd::msgpack_to_json(deposit->result, res.value) == json(70));

  auto summary = rayd::detail::signature_of_method("Account::summary");
  BOOST_REQUIRE(summary);
  res = rayd::detail::find_method(*cls, "Account::summary")(self, {});
  BOOST_REQUIRE(res.ok);
  BOOST_TEST(*rayd::msgpack_to_json(summary->result, res.value) == json::parse(R"({"ann": 70})"));

  auto bad = rayd::json_to_arguments(*deposit, json::parse(R"(["lots"])"));
  BOOST_REQUIRE(!bad);
  BOOST_TEST(rayd::describe(bad.error()) == R"(argument 1: expected int64, got string "lots")");
  auto count = rayd::json_to_arguments(*ctor, json::parse(R"(["ann"])"));
  BOOST_REQUIRE(!count);
  BOOST_TEST(rayd::describe(count.error()) == "Account expects 2 arguments (string, int64), got 1");
  rayd::detail::destroy(*cls, self);
}

BOOST_AUTO_TEST_CASE(results_that_do_not_fit_the_descriptor_are_errors) {
  using rayd::detail::pack;
  struct row {
    rayd::detail::type_desc type;
    std::string bytes;
    std::string message;
  };
  std::vector<row> rows = {
    {describe<int>(), pack(std::string("x")), "result: expected int32, got a string"},
    {describe<std::vector<int>>(), pack(std::vector<std::string>{"a"}),
     "result at /0: expected int32, got a string"},
    {describe<int>(), "", "result: no bytes"},
    {describe<int>(), "\xc1", "result: malformed msgpack"},
    {describe<std::string>(), "\xa5" "ab", "result: malformed msgpack"},
    {describe<int>(), pack(1) + pack(2), "result: 1 stray bytes after an integer (1)"},
    {describe<shapes::point>(), pack(std::map<std::vector<int>, int>{{{1}, 2}}),
     "cannot be written in JSON"},
    {describe<std::tuple<int, int>>(), pack(std::make_tuple(1)),
     "result: expected tuple<int32, int32>, got an array of 1 elements"},
  };
  for (auto& r : rows) {
    BOOST_TEST_CONTEXT(to_string(r.type)) {
      auto got = rayd::msgpack_to_json(r.type, r.bytes);
      BOOST_REQUIRE(!got);
      BOOST_TEST((rayd::code_of(got.error()) == rayd::errc::invalid_argument));
      BOOST_TEST(rayd::describe(got.error()).find(r.message) != std::string::npos,
                 rayd::describe(got.error()));
    }
  }
}

BOOST_AUTO_TEST_CASE(nesting_is_bounded_on_every_path) {
  rayd::json_limits limits;
  limits.max_depth = 8;
  auto nested = [](std::size_t n) { return std::string(n, '[') + std::string(n, ']'); };
  // Parsing.
  BOOST_TEST(static_cast<bool>(rayd::parse_json(nested(8), limits)));
  auto deep = rayd::parse_json(nested(9), limits);
  BOOST_REQUIRE(!deep);
  BOOST_TEST(rayd::describe(deep.error()).find("deeper than 8") != std::string::npos);
  // A default-limited parse of a very deep text fails cleanly.
  BOOST_TEST(!rayd::parse_json(nested(100000)));
  auto big = rayd::json_limits{};
  big.max_text_bytes = 4;
  BOOST_TEST(!rayd::parse_json("[1, 2]", big));

  // Conversion of an opaque value, however deep the JSON given.
  json v = json::array();
  for (int i = 0; i < 20; ++i)
    v = json::array({v});
  auto packed = rayd::json_to_msgpack(describe<shapes::point>(), v, limits);
  BOOST_REQUIRE(!packed);
  BOOST_TEST(rayd::describe(packed.error()).find("nested deeper than 8 levels")
             != std::string::npos);

  // Results: 1,000 nested msgpack arrays.
  std::string bytes(1000, '\x91');
  bytes += '\xc0';
  auto out = rayd::msgpack_to_json(describe<shapes::point>(), bytes, limits);
  BOOST_REQUIRE(!out);
  BOOST_TEST(rayd::describe(out.error()).find("deeper than 8") != std::string::npos,
             rayd::describe(out.error()));
}

BOOST_AUTO_TEST_CASE(random_bytes_and_json_never_crash) {
  std::mt19937 rng(42);
  std::vector<rayd::detail::type_desc> types = {
    describe<shapes::point>(), describe<std::map<std::string, std::vector<double>>>(),
    describe<std::optional<std::tuple<int, std::string>>>(), describe<std::vector<char>>(),
    describe<std::map<int, float>>()};
  std::uniform_int_distribution<int> byte(0, 255), len(1, 64);
  int decoded = 0;
  for (int i = 0; i < 20000; ++i) {
    std::string b(static_cast<std::size_t>(len(rng)), '\0');
    for (auto& c : b)
      c = static_cast<char>(byte(rng));
    auto& t = types[static_cast<std::size_t>(i) % types.size()];
    auto j = rayd::msgpack_to_json(t, b);
    if (j) {
      ++decoded;
      // Whatever was decoded is printable JSON (valid UTF-8 throughout).
      BOOST_CHECK_NO_THROW(j->dump());
    }
  }
  BOOST_TEST(decoded > 0);
  // Random JSON texts made of JSON's own punctuation.
  const std::string alphabet = "[]{}\",:0123456789.-eEtruefalsn \\$bytes";
  std::uniform_int_distribution<std::size_t> pick(0, alphabet.size() - 1);
  for (int i = 0; i < 20000; ++i) {
    std::string text(static_cast<std::size_t>(len(rng)), ' ');
    for (auto& c : text)
      c = alphabet[pick(rng)];
    auto j = rayd::parse_json(text);
    if (!j)
      continue;
    for (auto& t : types)
      (void) rayd::json_to_msgpack(t, *j);
  }
}

BOOST_AUTO_TEST_CASE(base64_round_trips_and_rejects_garbage) {
  std::string all;
  for (int i = 0; i < 256; ++i)
    all += static_cast<char>(i);
  for (std::size_t n = 0; n <= 7; ++n) {
    auto s = all.substr(250 - n, n);
    auto enc = rayd::base64_encode(s);
    BOOST_TEST(enc.size() % 4 == 0);
    BOOST_TEST(*rayd::base64_decode(enc) == s);
  }
  BOOST_TEST(rayd::base64_encode("foobar") == "Zm9vYmFy");
  BOOST_TEST(rayd::base64_encode("fo") == "Zm8=");
  BOOST_TEST(*rayd::base64_decode("Zm8") == "fo"); // padding optional
  BOOST_TEST(!rayd::base64_decode("Zm9vY"));
  BOOST_TEST(!rayd::base64_decode("Zm 8="));
  BOOST_TEST(!rayd::base64_decode("Z==="));
}

BOOST_AUTO_TEST_CASE(types_and_signatures_travel_as_text) {
  std::vector<rayd::detail::type_desc> types = {
    describe<void>(),
    describe<bool>(),
    describe<int8_t>(),
    describe<uint64_t>(),
    describe<float>(),
    describe<double>(),
    describe<std::string>(),
    describe<std::vector<std::byte>>(),
    describe<std::array<std::vector<int16_t>, 4>>(),
    describe<std::map<std::string, std::optional<std::tuple<>>>>(),
    describe<std::tuple<int, std::pair<bool, shapes::point>, std::map<int, std::string>>>(),
    describe<std::vector<std::map<std::string, std::vector<int>>>>(),
  };
  for (auto& t : types) {
    auto text = to_string(t);
    BOOST_TEST_CONTEXT(text) {
      auto back = rayd::parse_type(text);
      BOOST_REQUIRE_MESSAGE(back, error_text(back));
      BOOST_TEST((*back == t));
    }
  }
  // A templated opaque name keeps its own brackets and commas.
  auto tmpl = rayd::parse_type("array<opaque<geo::grid<int, 3>>>");
  BOOST_REQUIRE(tmpl);
  BOOST_TEST(tmpl->elements.at(0).cpp_name == "geo::grid<int, 3>");

  std::vector<std::string> bad_types = {"",
                                       "int7",
                                       "array",
                                       "array<>",
                                       "map<string>",
                                       "array<int32, 0>",
                                       "opaque<x",
                                       "tuple<int32 string>",
                                       "int32 int32",
                                       "array<int32, 3, 4>",
                                       std::string(200, 'a') + "rray<"};
  for (const auto& bad : bad_types) {
    BOOST_TEST_CONTEXT(bad) {
      auto t = rayd::parse_type(bad);
      BOOST_TEST(!t);
    }
  }
  std::string deep;
  for (int i = 0; i < 100; ++i)
    deep += "optional<";
  BOOST_TEST(!rayd::parse_type(deep + "int32" + std::string(100, '>')));

  for (const auto& s : rayd::detail::registered_signatures()) {
    auto j = rayd::signature_to_json(s);
    BOOST_TEST(j.at("text") == to_string(s));
    auto back = rayd::signature_from_json(j);
    BOOST_REQUIRE_MESSAGE(back, error_text(back));
    BOOST_TEST(back->name == s.name);
    BOOST_TEST((back->k == s.k));
    BOOST_TEST((back->params == s.params));
    BOOST_TEST((back->result == s.result));
  }
  auto add = rayd::signature_to_json(*rayd::detail::signature_of_method("Account::deposit"));
  BOOST_TEST(add == json::parse(R"({"name": "Account::deposit", "kind": "method",
    "params": ["int64"], "result": "int64", "text": "int64 -> int64"})"));
  BOOST_TEST(!rayd::signature_from_json(json::parse(R"({"name": 1})")));
  BOOST_TEST(!rayd::signature_from_json(json::parse(
    R"({"name": "f", "kind": "lambda", "params": [], "result": "nil"})")));
  BOOST_TEST(!rayd::signature_from_json(json::parse(
    R"({"name": "f", "kind": "function", "params": ["int99"], "result": "nil"})")));
}

BOOST_AUTO_TEST_CASE(published_signatures_read_back_the_same) {
  // What a driver publishes for `rayctl actor call` (encode_signatures) and
  // what rayctl reads (decode_signatures) agree for every registration.
  auto all = rayd::detail::registered_signatures();
  BOOST_REQUIRE(!all.empty());
  for (auto& one : all)
    BOOST_CHECK_MESSAGE(rayd::decode_signatures(rayd::detail::encode_signatures({one})),
                        "cannot read back " << rayd::detail::encode_signatures({one}));
  auto back = rayd::decode_signatures(rayd::detail::encode_signatures(all));
  BOOST_REQUIRE(back);
  BOOST_REQUIRE_EQUAL(back->size(), all.size());
  for (std::size_t i = 0; i < all.size(); ++i) {
    BOOST_CHECK_EQUAL((*back)[i].name, all[i].name);
    BOOST_CHECK((*back)[i].k == all[i].k);
    BOOST_CHECK_EQUAL(rayd::detail::to_string((*back)[i]), rayd::detail::to_string(all[i]));
  }
  BOOST_CHECK(!rayd::decode_signatures("method\tX::y\n"));
  BOOST_CHECK(!rayd::decode_signatures("gadget\tX\tnil\n"));
  BOOST_CHECK(!rayd::decode_signatures("method\tX::y\tint33\n"));
}
