// Unit tests of the typed C++ API without a cluster: serialization, the
// invokers RAYD_REMOTE registers, the registry, task builders and argument
// packing. Nothing here calls rayd::init (or anything that needs it).
#define BOOST_TEST_MODULE api
#include <boost/test/unit_test.hpp>

#include <algorithm>
#include <cstdint>
#include <limits>
#include <map>
#include <optional>
#include <stdexcept>
#include <string>
#include <tuple>
#include <vector>

#include <rayd/rayd.hpp>

namespace {

struct point {
  double x = 0, y = 0;
  MSGPACK_DEFINE(x, y);
  bool operator==(const point& o) const {
    return x == o.x && y == o.y;
  }
};

std::ostream& operator<<(std::ostream& os, const point& p) {
  return os << "(" << p.x << ", " << p.y << ")";
}

// Converts implicitly from a double; travels as an array of one.
struct celsius {
  double degrees = 0;
  celsius() = default;
  celsius(double d) : degrees(d) {
  }
  MSGPACK_DEFINE(degrees);
};

int add(int a, int b) {
  return a + b;
}

point mid(point a, point b) {
  return {(a.x + b.x) / 2, (a.y + b.y) / 2};
}

int noop_calls = 0;
void noop() {
  ++noop_calls;
}

std::string join(const std::string& sep, const std::vector<std::string>& parts) {
  std::string out;
  for (auto& p : parts)
    out += (out.empty() ? "" : sep) + p;
  return out;
}

int at_index(const std::vector<int>& v, std::size_t i) {
  return v.at(i);
}

int throws_int(int) {
  throw 42;
}

int negate(int a) noexcept {
  return -a;
}

template <class A, class B>
long long pair_sum(A a, B b) {
  return static_cast<long long>(a) + static_cast<long long>(b);
}

int never_registered(int a) {
  return a;
}

} // namespace

namespace geo {

struct bad_shape : std::runtime_error {
  using std::runtime_error::runtime_error;
};

double area(const std::map<std::string, double>& dims) {
  if (!dims.count("w") || !dims.count("h"))
    throw bad_shape("need w and h");
  return dims.at("w") * dims.at("h");
}

} // namespace geo

RAYD_REMOTE(add, mid, noop);
RAYD_REMOTE(join, at_index, throws_int, negate, geo::area);
RAYD_REMOTE(pair_sum<int, long>);

// Where a string_view argument's bytes lie: inside the packed argument
// (zero copy) or elsewhere.
const char* last_view_data = nullptr;
uint64_t view_size(std::string_view v) {
  last_view_data = v.data();
  return v.size();
}
RAYD_REMOTE(view_size);

using namespace rayd;
using detail::pack;

namespace {

template <class T>
T round_trip(const T& v) {
  return detail::unpack<T>(pack(v), "test value");
}

detail::invoke_result call(std::string_view name, const std::vector<std::string>& args) {
  auto f = detail::find_function(name);
  BOOST_REQUIRE_MESSAGE(f != nullptr, "no function " << name);
  std::vector<std::string_view> views(args.begin(), args.end());
  return f(views);
}

template <class T>
T result_of(const detail::invoke_result& r) {
  BOOST_REQUIRE_MESSAGE(r.ok, r.error_type << ": " << r.error_message);
  return detail::unpack<T>(r.value, "result");
}

// The message of the serialization_error `f` throws ("" if none).
template <class F>
std::string serialization_message(F f) {
  try {
    f();
  } catch (const serialization_error& e) {
    return e.what();
  }
  return "";
}

msgpack::type::object_type kind_of(const std::string& bytes) {
  return msgpack::unpack(bytes.data(), bytes.size())->type;
}

} // namespace

// ---- serialization -------------------------------------------------------

BOOST_AUTO_TEST_CASE(round_trips_scalars) {
  BOOST_CHECK_EQUAL(round_trip(0), 0);
  BOOST_CHECK_EQUAL(round_trip(-1), -1);
  BOOST_CHECK_EQUAL(round_trip(std::numeric_limits<int>::max()), std::numeric_limits<int>::max());
  BOOST_CHECK_EQUAL(round_trip(std::numeric_limits<int64_t>::min()),
                    std::numeric_limits<int64_t>::min());
  BOOST_CHECK_EQUAL(round_trip(std::numeric_limits<uint64_t>::max()),
                    std::numeric_limits<uint64_t>::max());
  BOOST_CHECK_EQUAL(round_trip(true), true);
  BOOST_CHECK_EQUAL(round_trip(2.5), 2.5);
  BOOST_CHECK_EQUAL(round_trip(-1e300), -1e300);
  BOOST_CHECK_EQUAL(round_trip(0.1f), 0.1f);
  BOOST_CHECK_EQUAL(round_trip(std::string("héllo")), "héllo");
  BOOST_CHECK_EQUAL(round_trip(std::string("a\0b", 3)), std::string("a\0b", 3));
  BOOST_CHECK_EQUAL(round_trip(std::string()), "");
}

BOOST_AUTO_TEST_CASE(round_trips_containers_and_structs) {
  std::vector<int> v{1, -2, 3};
  BOOST_CHECK(round_trip(v) == v);
  BOOST_CHECK(round_trip(std::vector<int>{}).empty());
  BOOST_CHECK(round_trip(std::map<std::string, int>{}).empty());
  BOOST_CHECK(round_trip(std::vector<std::string>{""}) == std::vector<std::string>{""});

  std::map<std::string, double> m{{"a", 1.5}, {"b", -2}};
  BOOST_CHECK(round_trip(m) == m);

  std::map<std::string, std::vector<std::pair<int, std::string>>> nested{
    {"x", {{1, "one"}, {2, "two"}}}, {"empty", {}}};
  BOOST_CHECK(round_trip(nested) == nested);

  std::tuple<int, std::string, std::optional<double>> t{7, "seven", std::nullopt};
  BOOST_CHECK(round_trip(t) == t);
  BOOST_CHECK(round_trip(std::optional<int>(5)) == std::optional<int>(5));

  BOOST_CHECK_EQUAL(round_trip(point{1.25, -3}), (point{1.25, -3}));
  std::vector<point> ps{{1, 2}, {3, 4}};
  BOOST_CHECK(round_trip(ps) == ps);
}

BOOST_AUTO_TEST_CASE(round_trips_large_strings) {
  std::string big(10 << 20, 'x');
  for (std::size_t i = 0; i < big.size(); i += 4096)
    big[i] = static_cast<char>(i / 4096);
  auto bytes = pack(big);
  BOOST_CHECK_LT(bytes.size(), big.size() + 16); // packed as one str, not per byte
  BOOST_CHECK(detail::unpack<std::string>(bytes, "big") == big);
}

BOOST_AUTO_TEST_CASE(unpack_mismatch_says_what_the_bytes_hold) {
  BOOST_CHECK_EQUAL(
    serialization_message([] { detail::unpack<int>(pack(std::string("x")), "object 3f2a"); }),
    "object 3f2a holds a string, not int");
  BOOST_CHECK_EQUAL(serialization_message([] { detail::unpack<unsigned char>(pack(300), "v"); }),
                    "v holds an integer (300), not unsigned char");
  BOOST_CHECK_EQUAL(serialization_message([] { detail::unpack<unsigned>(pack(-1), "v"); }),
                    "v holds a negative integer (-1), not unsigned int");
  BOOST_CHECK_EQUAL(serialization_message([] { detail::unpack<int>(pack(2.5), "v"); }),
                    "v holds a double (2.5), not int");
  BOOST_CHECK_EQUAL(serialization_message([] {
                      detail::unpack<std::vector<int>>(pack(std::map<int, int>{{1, 2}}), "v");
                    }),
                    "v holds a map of 1 entries, not std::vector<int>");
  BOOST_CHECK_EQUAL(
    serialization_message([] { detail::unpack<std::string>(detail::pack_nil(), "v"); }),
    "v holds nil, not std::string");
  BOOST_CHECK_EQUAL(serialization_message([] { detail::unpack<point>(pack(1), "v"); }),
                    "v holds an integer (1), not (anonymous namespace)::point");
  BOOST_CHECK_EQUAL(serialization_message([] { detail::unpack<int>("", "v"); }),
                    "v holds no bytes, not int");
  BOOST_CHECK_EQUAL(serialization_message([] { detail::unpack<int>(pack(1) + pack(2), "v"); }),
                    "v holds 1 stray bytes after an integer (1), not int");
  auto malformed = serialization_message([] { detail::unpack<int>("\xc1", "v"); });
  BOOST_CHECK_MESSAGE(malformed.rfind("v holds malformed msgpack", 0) == 0, malformed);
  auto truncated = serialization_message(
    [] { detail::unpack<std::string>(pack(std::string(100, 'a')).substr(0, 50), "v"); });
  BOOST_CHECK_MESSAGE(truncated.rfind("v holds malformed msgpack", 0) == 0, truncated);
}

BOOST_AUTO_TEST_CASE(get_unpack_helper_names_the_object) {
  // What get(ref) does with the bytes core returns.
  std::string id = "3f2a9c0d1e2f3a4b5c6d";
  BOOST_CHECK_EQUAL(
    serialization_message([&] { detail::value_of<int>(pack(std::string("s")), id); }),
    "object 3f2a9c0d1e2f… holds a string, not int");
  BOOST_CHECK_EQUAL(detail::value_of<int>(pack(41), id), 41);
  // void: any bytes, nothing returned (and nothing thrown).
  BOOST_CHECK_NO_THROW(detail::value_of<void>(detail::pack_nil(), id));
  BOOST_CHECK_EQUAL(detail::short_id("short"), "short");
  BOOST_CHECK_EQUAL(detail::short_id(std::string("\x01\xff\x00\x10\x20\x30\x40", 7)),
                    "01ff00102030…");
}

BOOST_AUTO_TEST_CASE(type_names_are_readable) {
  BOOST_CHECK_EQUAL(detail::type_name<std::string>(), "std::string");
  BOOST_CHECK_EQUAL(detail::type_name<std::vector<std::string>>(), "std::vector<std::string>");
  BOOST_CHECK_EQUAL((detail::type_name<std::map<std::string, std::vector<int>>>()),
                    "std::map<std::string, std::vector<int>>");
  BOOST_CHECK_EQUAL(detail::type_name<double>(), "double");
}

// ---- invokers ------------------------------------------------------------

BOOST_AUTO_TEST_CASE(invoker_computes_the_result) {
  BOOST_CHECK_EQUAL(result_of<int>(call("add", {pack(1), pack(2)})), 3);
  BOOST_CHECK_EQUAL(result_of<point>(call("mid", {pack(point{0, 0}), pack(point{2, 4})})),
                    (point{1, 2}));
  BOOST_CHECK_EQUAL(result_of<int>(call("negate", {pack(5)})), -5);
  BOOST_CHECK_EQUAL(result_of<long long>(call("pair_sum<int, long>", {pack(1), pack(2)})), 3);
  // An int argument for a double parameter: msgpack widens it.
  BOOST_CHECK_EQUAL(
    result_of<double>(call("geo::area", {pack(std::map<std::string, int>{{"w", 2}, {"h", 3}})})),
    6);
}

BOOST_AUTO_TEST_CASE(string_view_parameters_read_the_argument_without_copying) {
  std::string big(3 << 20, 'z');
  std::vector<std::string> args{pack(big)};
  auto r = call("view_size", args);
  BOOST_CHECK_EQUAL(result_of<uint64_t>(r), big.size());
  // The view points into the packed argument itself: no copy was made.
  const char* begin = args[0].data();
  BOOST_CHECK(last_view_data >= begin && last_view_data < begin + args[0].size());
  // A non-string argument is a clear mismatch.
  auto bad = call("view_size", {pack(42)});
  BOOST_CHECK(!bad.ok);
  BOOST_CHECK_EQUAL(bad.error_type, "rayd::type_mismatch");
}

BOOST_AUTO_TEST_CASE(invoker_takes_const_ref_parameters) {
  auto r = call("join", {pack(std::string(", ")), pack(std::vector<std::string>{"a", "b", "c"})});
  BOOST_CHECK_EQUAL(result_of<std::string>(r), "a, b, c");
  BOOST_CHECK_EQUAL(result_of<int>(call("at_index", {pack(std::vector<int>{7, 8}), pack(1)})), 8);
}

BOOST_AUTO_TEST_CASE(invoker_of_void_returns_nil) {
  noop_calls = 0;
  auto r = call("noop", {});
  BOOST_REQUIRE(r.ok);
  BOOST_CHECK_EQUAL(noop_calls, 1);
  BOOST_CHECK(r.value == detail::pack_nil());
  BOOST_CHECK_EQUAL(kind_of(r.value), msgpack::type::NIL);
}

BOOST_AUTO_TEST_CASE(invoker_reports_type_mismatch) {
  auto r = call("add", {pack(1), pack(std::string("x"))});
  BOOST_CHECK(!r.ok);
  BOOST_CHECK_EQUAL(r.error_type, "rayd::type_mismatch");
  BOOST_CHECK_EQUAL(r.error_message, "add: argument 2 expects int, got a string");

  r = call("add", {pack(1.5), pack(2)});
  BOOST_CHECK_EQUAL(r.error_type, "rayd::type_mismatch");
  BOOST_CHECK_EQUAL(r.error_message, "add: argument 1 expects int, got a double (1.5)");

  r = call("join", {pack(std::string(",")), pack(std::map<int, int>{})});
  BOOST_CHECK_EQUAL(r.error_message,
                    "join: argument 2 expects std::vector<std::string>, got a map of 0 entries");

  r = call("mid", {pack(point{}), pack(std::string("p"))});
  BOOST_CHECK_EQUAL(r.error_message,
                    "mid: argument 2 expects (anonymous namespace)::point, got a string");

  r = call("add", {pack(1), std::string("\xc1")});
  BOOST_CHECK_EQUAL(r.error_type, "rayd::type_mismatch");
  BOOST_CHECK_MESSAGE(r.error_message.rfind("add: argument 2 expects int, got malformed msgpack", 0)
                        == 0,
                      r.error_message);
}

BOOST_AUTO_TEST_CASE(invoker_reports_wrong_argument_count) {
  auto r = call("add", {pack(1)});
  BOOST_CHECK(!r.ok);
  BOOST_CHECK_EQUAL(r.error_type, "rayd::type_mismatch");
  BOOST_CHECK_EQUAL(r.error_message, "add: expects 2 arguments, got 1");
  r = call("add", {pack(1), pack(2), pack(3)});
  BOOST_CHECK_EQUAL(r.error_message, "add: expects 2 arguments, got 3");
  r = call("negate", {});
  BOOST_CHECK_EQUAL(r.error_message, "negate: expects 1 argument, got 0");
  noop_calls = 0;
  r = call("noop", {pack(1)});
  BOOST_CHECK_EQUAL(r.error_message, "noop: expects 0 arguments, got 1");
  BOOST_CHECK_EQUAL(noop_calls, 0);
}

BOOST_AUTO_TEST_CASE(invoker_reports_the_functions_exception) {
  auto r = call("at_index", {pack(std::vector<int>{}), pack(3)});
  BOOST_CHECK(!r.ok);
  BOOST_CHECK_EQUAL(r.error_type, "std::out_of_range");
  BOOST_CHECK_MESSAGE(r.error_message.find("vector") != std::string::npos, r.error_message);

  // The dynamic type, not the type it was caught as.
  r = call("geo::area", {pack(std::map<std::string, double>{{"w", 1}})});
  BOOST_CHECK_EQUAL(r.error_type, "geo::bad_shape");
  BOOST_CHECK_EQUAL(r.error_message, "need w and h");

  r = call("throws_int", {pack(1)});
  BOOST_CHECK_EQUAL(r.error_type, "unknown exception");
  BOOST_CHECK_EQUAL(r.error_message, "a value of type int was thrown");
}

// ---- registry ------------------------------------------------------------

BOOST_AUTO_TEST_CASE(registry_maps_functions_to_names) {
  using detail::function_key;
  BOOST_CHECK_EQUAL(detail::name_of(reinterpret_cast<function_key>(&add)), "add");
  BOOST_CHECK_EQUAL(detail::name_of(reinterpret_cast<function_key>(&geo::area)), "geo::area");
  BOOST_CHECK_EQUAL(detail::name_of(reinterpret_cast<function_key>(&pair_sum<int, long>)),
                    "pair_sum<int, long>");
  BOOST_CHECK_EQUAL(detail::name_of(reinterpret_cast<function_key>(&never_registered)), "");

  BOOST_CHECK(detail::find_function("nope") == nullptr);
  BOOST_CHECK(detail::find_function("never_registered") == nullptr);
  BOOST_CHECK(detail::find_function("") == nullptr);

  auto names = detail::registered_functions();
  std::vector<std::string> expected{"add",    "at_index", "geo::area",           "join",      "mid",
                                    "negate", "noop",     "pair_sum<int, long>", "throws_int"};
  // Sorted, and every RAYD_REMOTE name is there (other cases may add more).
  BOOST_CHECK(std::is_sorted(names.begin(), names.end()));
  for (auto& name : expected)
    BOOST_CHECK_MESSAGE(std::binary_search(names.begin(), names.end(), name), name << " missing");
}

BOOST_AUTO_TEST_CASE(later_registration_wins) {
  using detail::function_key;
  auto add_f = detail::find_function("add");
  auto negate_f = detail::find_function("negate");
  BOOST_REQUIRE(add_f && negate_f);
  detail::register_function("alias", add_f);
  BOOST_CHECK(detail::find_function("alias") == add_f);
  detail::register_function("alias", negate_f);
  BOOST_CHECK(detail::find_function("alias") == negate_f);
  // Registering without an address leaves name_of alone; with one, the
  // latest name wins.
  auto add_key = reinterpret_cast<function_key>(&add);
  BOOST_CHECK_EQUAL(detail::name_of(add_key), "add");
  detail::register_function("add_again", add_f, add_key);
  BOOST_CHECK_EQUAL(detail::name_of(add_key), "add_again");
  detail::register_function("add", add_f, add_key);
  BOOST_CHECK_EQUAL(detail::name_of(add_key), "add");
}

BOOST_AUTO_TEST_CASE(remote_splits_names) {
  static_assert(detail::count_names("add, mid, noop") == 3);
  static_assert(detail::count_names("pair_sum<int, long>, f") == 2);
  static_assert(detail::count_names("") == 0);
  auto names = detail::split_names("add,  geo::area , pair_sum<int, long>");
  std::vector<std::string> expected{"add", "geo::area", "pair_sum<int, long>"};
  BOOST_CHECK_EQUAL_COLLECTIONS(names.begin(), names.end(), expected.begin(), expected.end());
}

// ---- task builders and argument packing -----------------------------------

BOOST_AUTO_TEST_CASE(task_of_unregistered_function_throws) {
  try {
    rayd::task(never_registered);
    BOOST_FAIL("task() of an unregistered function did not throw");
  } catch (const rayd::error& e) {
    BOOST_CHECK_MESSAGE(std::string(e.what()).find("RAYD_REMOTE") != std::string::npos, e.what());
  }
}

BOOST_AUTO_TEST_CASE(task_options_map_onto_core) {
  auto t = rayd::task(add);
  BOOST_CHECK_EQUAL(t.name(), "add");
  core::task_options defaults;
  BOOST_CHECK(t.options().resources == defaults.resources);
  BOOST_CHECK_EQUAL(t.options().resources.at("CPU"), 1.0);
  BOOST_CHECK_EQUAL(t.options().max_retries, defaults.max_retries);

  t.num_cpus(0.5)
    .num_gpus(1)
    .memory(1 << 20)
    .resources({{"ssd", 2}})
    .max_retries(1)
    .label_selector({{"zone", "a"}});
  std::map<std::string, double> shape{{"CPU", 0.5}, {"GPU", 1}, {"memory", 1 << 20}, {"ssd", 2}};
  BOOST_CHECK(t.options().resources == shape);
  BOOST_CHECK_EQUAL(t.options().max_retries, 1);
  BOOST_CHECK(t.options().label_selector == (std::map<std::string, std::string>{{"zone", "a"}}));

  BOOST_CHECK_THROW(t.num_cpus(-1), rayd::error);
  BOOST_CHECK_THROW(t.resources({{"x", std::numeric_limits<double>::infinity()}}), rayd::error);
  BOOST_CHECK_THROW(t.max_retries(-1), rayd::error);
  BOOST_CHECK_EQUAL(t.options().resources.at("CPU"), 0.5); // unchanged by refused values

  auto named = rayd::task<int>("lib_fn").num_cpus(2);
  BOOST_CHECK_EQUAL(named.name(), "lib_fn");
  BOOST_CHECK_EQUAL(named.options().resources.at("CPU"), 2.0);

  // task() of a noexcept function works too.
  BOOST_CHECK_EQUAL(rayd::task(negate).name(), "negate");
}

BOOST_AUTO_TEST_CASE(arguments_are_packed_as_the_parameter_type) {
  // Typed: converted to the parameter first.
  auto a = detail::to_arg<float>(0.1, 0);
  BOOST_CHECK(!a.is_ref);
  BOOST_CHECK_EQUAL(kind_of(a.value), msgpack::type::FLOAT32);
  auto c2 = detail::to_arg<const celsius&>(21.5, 0);
  BOOST_CHECK(c2.value == pack(celsius(21.5))); // an array of one, not a bare double
  BOOST_CHECK_EQUAL(kind_of(c2.value), msgpack::type::ARRAY);

  auto s = detail::to_arg<const std::string&>("hi", 0);
  BOOST_CHECK(s.value == pack(std::string("hi")));

  auto p = detail::to_arg<point>(point{1, 2}, 0);
  BOOST_CHECK_EQUAL(detail::unpack<point>(p.value, "p"), (point{1, 2}));

  // By name: as given, C strings as strings.
  BOOST_CHECK(detail::to_arg<void>("hi", 0).value == pack(std::string("hi")));
  const char* c = "c";
  BOOST_CHECK(detail::to_arg<void>(c, 0).value == pack(std::string("c")));
  BOOST_CHECK_EQUAL(kind_of(detail::to_arg<void>(7, 0).value), msgpack::type::POSITIVE_INTEGER);
}

// Compile-time argument checks of task(fn).remote.
static_assert(detail::arg_fits<int, int>());
static_assert(detail::arg_fits<const std::string&, const char (&)[3]>());
static_assert(detail::arg_fits<double, object_ref<int>>());
static_assert(detail::arg_fits<const point&, object_ref<point>&>());
static_assert(!detail::arg_fits<int, std::string>());
static_assert(!detail::arg_fits<int, object_ref<std::string>>());
static_assert(!detail::arg_fits<int, object_ref<void>>());
static_assert(!detail::arg_fits<point, int>());

// What task(fn).remote returns.
static_assert(std::is_same_v<decltype(rayd::task(add).remote(1, 2)), object_ref<int>>);
static_assert(std::is_same_v<decltype(rayd::task(noop).remote()), object_ref<void>>);
static_assert(std::is_same_v<decltype(rayd::task(join).remote(",", std::vector<std::string>{})),
                             object_ref<std::string>>);
static_assert(std::is_same_v<decltype(rayd::put("s")), object_ref<std::string>>);
