#define BOOST_TEST_MODULE persistence
#include <boost/test/unit_test.hpp>

#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <memory>
#include <string>
#include <thread>

#include <boost/mpl/list.hpp>
#include <sys/stat.h>
#include <unistd.h>

#include "common/error.hpp"
#include "persistence/group_commit.hpp"
#include "persistence/store.hpp"
#include "persistence/table.hpp"
#include "persistence/test_store.hpp"
#include "tests/support/skip.hpp"
#include "tests/support/unprivileged.hpp"

#include <rocksdb/db.h>

namespace rayd {
// Lets BOOST_TEST print codes in failure messages (found by ADL).
std::ostream& boost_test_print_type(std::ostream& os, errc x) {
  return os << to_string(x);
}
} // namespace rayd

namespace fs = std::filesystem;
using namespace rayd;
using namespace rayd::persistence;

namespace {

// A fresh directory under /tmp, removed with everything in it at scope exit.
struct temp_dir {
  fs::path path;

  temp_dir() {
    std::string tmpl = "/tmp/rayd_persistence_test_XXXXXX";
    char* p = ::mkdtemp(tmpl.data());
    BOOST_REQUIRE_MESSAGE(p != nullptr, "mkdtemp failed");
    path = p;
  }
  ~temp_dir() {
    std::error_code ec;
    fs::remove_all(path, ec);
  }
  temp_dir(const temp_dir&) = delete;
  temp_dir& operator=(const temp_dir&) = delete;
};

// BOOST_*_MESSAGE evaluates its message even when the check passes, and
// error() of a successful expected is undefined; this is safe either way.
template <class T>
std::string why(const caf::expected<T>& x) {
  return x ? std::string{"ok"} : describe(x.error());
}

std::unique_ptr<store> open_or_fail(const rocksdb_options& opts) {
  auto res = open_rocksdb(opts);
  BOOST_REQUIRE_MESSAGE(res, "open_rocksdb failed: " << why(res));
  return std::move(*res);
}

rocksdb_options options_for(const fs::path& dir) {
  rocksdb_options opts;
  opts.path = dir.string();
  return opts;
}

// The two backends behind the shared behavioural tests below.
struct memory_backend {
  std::unique_ptr<store> db = make_memory_store();
};

struct rocksdb_backend {
  temp_dir dir;
  std::unique_ptr<store> db = open_or_fail(options_for(dir.path / "db"));
  ~rocksdb_backend() {
    db.reset(); // close before the directory goes away
  }
};

using backends = boost::mpl::list<memory_backend, rocksdb_backend>;

std::optional<std::string> get_or_fail(store& s, std::string_view table,
                                       std::string_view key) {
  auto res = s.get(table, key);
  BOOST_REQUIRE_MESSAGE(res, "get failed: " << why(res));
  return *res;
}

std::vector<key_value> scan_or_fail(store& s, std::string_view table,
                                    std::string_view prefix,
                                    std::size_t limit
                                    = std::numeric_limits<std::size_t>::max()) {
  auto res = s.scan(table, prefix, limit);
  BOOST_REQUIRE_MESSAGE(res, "scan failed: " << why(res));
  return *res;
}

void require_ok(const caf::error& err) {
  BOOST_REQUIRE_MESSAGE(!err, "unexpected error: " << describe(err));
}

} // namespace

// -- behaviour shared by both stores ------------------------------------------

BOOST_AUTO_TEST_CASE_TEMPLATE(get_missing_is_nullopt, B, backends) {
  B b;
  BOOST_TEST(!get_or_fail(*b.db, "kv", "nope").has_value());
}

BOOST_AUTO_TEST_CASE_TEMPLATE(put_get_overwrite_delete, B, backends) {
  B b;
  auto& s = *b.db;
  require_ok(s.put("kv", "a", "1"));
  BOOST_TEST(get_or_fail(s, "kv", "a").value_or("<none>") == "1");
  // Tables are separate key spaces.
  BOOST_TEST(!get_or_fail(s, "nodes", "a").has_value());
  require_ok(s.put("kv", "a", "2"));
  BOOST_TEST(get_or_fail(s, "kv", "a").value_or("<none>") == "2");
  require_ok(s.del("kv", "a"));
  BOOST_TEST(!get_or_fail(s, "kv", "a").has_value());
  // Deleting what is not there is not an error.
  require_ok(s.del("kv", "a"));
}

BOOST_AUTO_TEST_CASE_TEMPLATE(binary_keys_and_values, B, backends) {
  B b;
  auto& s = *b.db;
  const std::string key{"k\0x", 3};
  const std::string value{"\0\xff\n", 3};
  require_ok(s.put("blobs", key, value));
  BOOST_TEST(get_or_fail(s, "blobs", key).value_or("<none>") == value);
  BOOST_TEST(!get_or_fail(s, "blobs", "k").has_value());
}

BOOST_AUTO_TEST_CASE_TEMPLATE(batch_applies_all, B, backends) {
  B b;
  auto& s = *b.db;
  require_ok(s.put("jobs", "gone", "x"));
  require_ok(s.write({write_op::put("jobs", "j1", "a"),
                      write_op::put("actors", "x1", "b"),
                      write_op::del("jobs", "gone")}));
  BOOST_TEST(get_or_fail(s, "jobs", "j1").value_or("<none>") == "a");
  BOOST_TEST(get_or_fail(s, "actors", "x1").value_or("<none>") == "b");
  BOOST_TEST(!get_or_fail(s, "jobs", "gone").has_value());
  require_ok(s.write({}));
}

BOOST_AUTO_TEST_CASE_TEMPLATE(batch_with_unknown_table_applies_nothing, B,
                              backends) {
  B b;
  auto& s = *b.db;
  require_ok(s.put("kv", "keep", "old"));
  auto err = s.write({write_op::put("kv", "new", "1"),
                      write_op::del("kv", "keep"),
                      write_op::put("no_such_table", "k", "v"),
                      write_op::put("kv", "later", "2")});
  BOOST_TEST(code_of(err) == errc::invalid_argument);
  BOOST_TEST(describe(err).find("no_such_table") != std::string::npos);
  BOOST_TEST(!get_or_fail(s, "kv", "new").has_value());
  BOOST_TEST(!get_or_fail(s, "kv", "later").has_value());
  BOOST_TEST(get_or_fail(s, "kv", "keep").value_or("<none>") == "old");
}

BOOST_AUTO_TEST_CASE_TEMPLATE(scan_prefix_order_and_limit, B, backends) {
  B b;
  auto& s = *b.db;
  // Written out of order; neighbours on both sides of the prefix range.
  require_ok(s.write({write_op::put("nodes", "n/3", "c"),
                      write_op::put("nodes", "n/1", "a"),
                      write_op::put("nodes", "m", "before"),
                      write_op::put("nodes", "n/2", "b"),
                      write_op::put("nodes", "o", "after"),
                      write_op::put("nodes", "n", "short")}));
  const std::vector<key_value> all_n{
    {"n/1", "a"}, {"n/2", "b"}, {"n/3", "c"}};
  BOOST_TEST(scan_or_fail(s, "nodes", "n/") == all_n);
  BOOST_TEST(scan_or_fail(s, "nodes", "n/", 2)
             == (std::vector<key_value>{{"n/1", "a"}, {"n/2", "b"}}));
  BOOST_TEST(scan_or_fail(s, "nodes", "n/", 0).empty());
  BOOST_TEST(scan_or_fail(s, "nodes", "zzz").empty());
  BOOST_TEST(scan_or_fail(s, "kv", "").empty());
  // The empty prefix is the whole table, in key order.
  auto everything = scan_or_fail(s, "nodes", "");
  BOOST_REQUIRE_EQUAL(everything.size(), 6u);
  BOOST_TEST(everything.front().first == "m");
  BOOST_TEST(everything[1].first == "n");
  BOOST_TEST(everything.back().first == "o");
}

BOOST_AUTO_TEST_CASE_TEMPLATE(unknown_table_is_invalid_argument, B, backends) {
  B b;
  auto& s = *b.db;
  auto got = s.get("bogus", "k");
  BOOST_REQUIRE(!got);
  BOOST_TEST(code_of(got.error()) == errc::invalid_argument);
  auto scanned = s.scan("bogus");
  BOOST_REQUIRE(!scanned);
  BOOST_TEST(code_of(scanned.error()) == errc::invalid_argument);
  BOOST_TEST(code_of(s.put("bogus", "k", "v")) == errc::invalid_argument);
  BOOST_TEST(code_of(s.del("bogus", "k")) == errc::invalid_argument);
  // RocksDB's own default column family is not one of our tables.
  BOOST_TEST(code_of(s.put("default", "k", "v")) == errc::invalid_argument);
}

BOOST_AUTO_TEST_CASE_TEMPLATE(every_table_is_usable, B, backends) {
  B b;
  auto& s = *b.db;
  for (const auto& t : table_names())
    require_ok(s.put(t, "k", t));
  for (const auto& t : table_names())
    BOOST_TEST(get_or_fail(s, t, "k").value_or("<none>") == t);
}

BOOST_AUTO_TEST_CASE_TEMPLATE(concurrent_writers_all_land, B, backends) {
  B b;
  auto& s = *b.db;
  constexpr int threads = 4;
  constexpr int per_thread = 50;
  std::vector<std::thread> workers;
  std::vector<caf::error> first_error(threads);
  for (int t = 0; t < threads; ++t)
    workers.emplace_back([&s, &first_error, t] {
      for (int i = 0; i < per_thread && !first_error[t]; ++i)
        first_error[t] = s.put("kv", "t" + std::to_string(t) + "/"
                                       + std::to_string(i),
                               "v");
    });
  for (auto& w : workers)
    w.join();
  for (const auto& err : first_error)
    require_ok(err);
  for (int t = 0; t < threads; ++t)
    BOOST_TEST(scan_or_fail(s, "kv", "t" + std::to_string(t) + "/").size()
               == static_cast<std::size_t>(per_thread));
}

// -- RocksDB only --------------------------------------------------------------

BOOST_AUTO_TEST_SUITE(rocksdb_store)

BOOST_AUTO_TEST_CASE(reopen_keeps_data) {
  temp_dir dir;
  auto opts = options_for(dir.path / "db");
  {
    auto s = open_or_fail(opts);
    require_ok(s->write({write_op::put("meta", "cluster_id", "c-1"),
                         write_op::put("kv", "a", "1"),
                         write_op::put("kv", "b", "2")}));
    require_ok(s->del("kv", "b"));
  }
  opts.create_if_missing = false;
  auto s = open_or_fail(opts);
  BOOST_TEST(get_or_fail(*s, "meta", "cluster_id").value_or("<none>") == "c-1");
  BOOST_TEST(get_or_fail(*s, "kv", "a").value_or("<none>") == "1");
  BOOST_TEST(!get_or_fail(*s, "kv", "b").has_value());
}

BOOST_AUTO_TEST_CASE(unsynced_writes_work_too) {
  temp_dir dir;
  auto opts = options_for(dir.path / "db");
  opts.sync = false;
  {
    auto s = open_or_fail(opts);
    require_ok(s->put("kv", "a", "1"));
  }
  // A clean close flushes the WAL even without per-write fsync.
  auto s = open_or_fail(opts);
  BOOST_TEST(get_or_fail(*s, "kv", "a").value_or("<none>") == "1");
}

BOOST_AUTO_TEST_CASE(second_open_while_open_is_in_use) {
  temp_dir dir;
  auto opts = options_for(dir.path / "db");
  auto first = open_or_fail(opts);
  auto second = open_rocksdb(opts);
  BOOST_REQUIRE(!second);
  BOOST_TEST(code_of(second.error()) == errc::storage_error);
  auto msg = describe(second.error());
  BOOST_TEST_MESSAGE("second open: " << msg);
  BOOST_TEST(msg.find("in use") != std::string::npos);
  BOOST_TEST(msg.find(opts.path) != std::string::npos);
  BOOST_TEST(msg.find('\n') == std::string::npos);
  // The first handle is unaffected.
  require_ok(first->put("kv", "k", "v"));
  first.reset();
  // Once closed, the directory can be opened again.
  auto third = open_or_fail(opts);
  BOOST_TEST(get_or_fail(*third, "kv", "k").value_or("<none>") == "v");
}

BOOST_AUTO_TEST_CASE(uncreatable_directory_is_storage_error) {
  temp_dir dir;
  // A regular file as parent defeats mkdir even for root.
  auto file = dir.path / "plain_file";
  std::ofstream{file} << "not a directory";
  auto opts = options_for(file / "db");
  auto res = open_rocksdb(opts);
  BOOST_REQUIRE(!res);
  BOOST_TEST(code_of(res.error()) == errc::storage_error);
  auto msg = describe(res.error());
  BOOST_TEST_MESSAGE("under a file: " << msg);
  BOOST_TEST(msg.find(opts.path) != std::string::npos);
  BOOST_TEST(msg.find("Not a directory") != std::string::npos);
  BOOST_TEST(msg.find('\n') == std::string::npos);

  // Permission bits restrict everyone but root, so this part runs as
  // "nobody" in a child (tests/support/unprivileged.hpp) when we are root.
  auto ro = dir.path / "read_only";
  fs::create_directory(ro);
  fs::permissions(ro, fs::perms::owner_read | fs::perms::owner_exec | fs::perms::group_read |
                          fs::perms::group_exec | fs::perms::others_read |
                          fs::perms::others_exec);
  BOOST_REQUIRE(tests::make_traversable(ro.string(), dir.path.string()));
  auto ro_opts = options_for(ro / "db");
  auto child = tests::as_unprivileged([ro_opts]() -> std::string {
    auto ro_res = open_rocksdb(ro_opts);
    if (ro_res)
      return "opened";
    return std::string(to_string(code_of(ro_res.error()))) + "\n" + describe(ro_res.error());
  });
  fs::permissions(ro, fs::perms::owner_all);
  if (!tests::skip_part_unless(child.ran, "read-only parent: cannot run as an unprivileged "
                                          "user: " + child.output))
    return;
  BOOST_TEST_MESSAGE("under a read-only directory: " << child.output);
  auto nl = child.output.find('\n');
  BOOST_REQUIRE_MESSAGE(nl != std::string::npos, "opened under a read-only directory");
  BOOST_TEST(child.output.substr(0, nl) == to_string(errc::storage_error));
  auto ro_msg = child.output.substr(nl + 1);
  BOOST_TEST(ro_msg.find(ro_opts.path) != std::string::npos);
  BOOST_TEST(ro_msg.find("Permission denied") != std::string::npos);
}

BOOST_AUTO_TEST_CASE(missing_db_without_create_is_not_found) {
  temp_dir dir;
  auto opts = options_for(dir.path);
  opts.create_if_missing = false;
  auto res = open_rocksdb(opts);
  BOOST_REQUIRE(!res);
  BOOST_TEST(code_of(res.error()) == errc::not_found);
  BOOST_TEST_MESSAGE("empty dir: " << describe(res.error()));
  BOOST_TEST(describe(res.error()).find(opts.path) != std::string::npos);

  // A path that does not exist at all: same answer, and nothing is created.
  auto absent = options_for(dir.path / "absent");
  absent.create_if_missing = false;
  auto res2 = open_rocksdb(absent);
  BOOST_REQUIRE(!res2);
  BOOST_TEST(code_of(res2.error()) == errc::not_found);
  BOOST_TEST(!fs::exists(dir.path / "absent"));
}

BOOST_AUTO_TEST_CASE(opens_db_with_unknown_extra_column_family) {
  // A database touched by a newer version may carry a column family this
  // build does not know; RocksDB only opens it if every family is named.
  temp_dir dir;
  auto path = (dir.path / "db").string();
  {
    rocksdb::Options o;
    o.create_if_missing = true;
    rocksdb::DB* raw = nullptr;
    BOOST_REQUIRE(rocksdb::DB::Open(o, path, &raw).ok());
    std::unique_ptr<rocksdb::DB> db{raw};
    rocksdb::ColumnFamilyHandle* cf = nullptr;
    BOOST_REQUIRE(
      db->CreateColumnFamily(rocksdb::ColumnFamilyOptions{}, "future", &cf)
        .ok());
    BOOST_REQUIRE(db->DestroyColumnFamilyHandle(cf).ok());
  }
  auto opts = options_for(path);
  opts.create_if_missing = false;
  auto s = open_or_fail(opts);
  require_ok(s->put("kv", "k", "v"));
  BOOST_TEST(get_or_fail(*s, "kv", "k").value_or("<none>") == "v");
  // Present on disk, but not one of our tables.
  BOOST_TEST(code_of(s->put("future", "k", "v")) == errc::invalid_argument);
}

BOOST_AUTO_TEST_CASE(creates_missing_parent_directories) {
  temp_dir dir;
  auto opts = options_for(dir.path / "a" / "b" / "db");
  auto s = open_or_fail(opts);
  require_ok(s->put("kv", "k", "v"));
  BOOST_TEST(fs::is_directory(dir.path / "a" / "b" / "db"));
}

BOOST_AUTO_TEST_SUITE_END()

// ----------------------------------------------------------- typed tables

namespace {

/// A row type with its codec: "name=count".
struct counter {
  std::string name;
  int count = 0;
};

struct counter_codec {
  using row_type = counter;
  static std::string encode(const counter& c) {
    return c.name + "=" + std::to_string(c.count);
  }
  static caf::expected<counter> decode(const std::string& key,
                                       const std::string& bytes) {
    auto eq = bytes.find('=');
    if (eq == std::string::npos)
      return make_error(errc::storage_error, "corrupt counter row " + key);
    return counter{bytes.substr(0, eq), std::stoi(bytes.substr(eq + 1))};
  }
};

using counters = cached_table<counter_codec>;

} // namespace

BOOST_AUTO_TEST_SUITE(typed_table_suite)

BOOST_AUTO_TEST_CASE(cached_rows_round_trip_under_their_prefix) {
  auto db = make_memory_store();
  BOOST_REQUIRE(!db->put("kv", "other", "not a counter")); // outside the prefix
  {
    counters t{*db, "kv", "c/"};
    BOOST_REQUIRE(!t.load());
    t.stage("a", counter{"apples", 3});
    t.stage("b", counter{"bees", 7});
    BOOST_CHECK_EQUAL(t.find("a")->count, 3); // staged: seen at once
    BOOST_CHECK(t.find_durable("a") == nullptr);
    BOOST_CHECK(!db->get("kv", "c/a")->has_value()); // ...but not written
    BOOST_CHECK(t.dirty());
    BOOST_REQUIRE(!t.commit());
    BOOST_CHECK(!t.dirty());
    BOOST_CHECK_EQUAL(**db->get("kv", "c/a"), "apples=3");
    BOOST_CHECK_EQUAL(t.find_durable("b")->name, "bees");
  }
  counters again{*db, "kv", "c/"};
  BOOST_REQUIRE(!again.load());
  BOOST_CHECK_EQUAL(again.size(), 2u);
  auto all = again.all();
  BOOST_REQUIRE_EQUAL(all.size(), 2u);
  BOOST_CHECK_EQUAL(*all[0].first, "a");
  BOOST_CHECK_EQUAL(all[0].second->name, "apples");
  BOOST_CHECK_EQUAL(all[1].second->count, 7);
}

BOOST_AUTO_TEST_CASE(all_merges_staged_changes_in_key_order) {
  auto db = make_memory_store();
  counters t{*db, "kv"};
  t.stage("b", counter{"b", 1});
  t.stage("d", counter{"d", 1});
  BOOST_REQUIRE(!t.commit());
  t.stage("a", counter{"a", 2}); // new
  t.stage("b", counter{"b", 2}); // replaced
  t.erase("d");                  // removed
  t.stage("c", counter{"c", 2}); // new
  t.stage("c", counter{"c", 3}); // coalesces with the one before
  BOOST_CHECK_EQUAL(t.staged(), 4u);
  std::string seen;
  for (auto& [key, row] : t.all())
    seen += *key + std::to_string(row->count);
  BOOST_CHECK_EQUAL(seen, "a2b2c3");
  BOOST_CHECK_EQUAL(t.size(), 3u);
}

BOOST_AUTO_TEST_CASE(uncached_table_reads_staged_then_store) {
  auto db = make_memory_store();
  table<bytes_codec> t{*db, "kv", "p/"};
  t.stage("x1", "one");
  t.stage("x2", "two");
  BOOST_REQUIRE(!t.commit());
  t.erase("x1");
  t.stage("x3", "three");
  BOOST_CHECK(!t.get("x1")->has_value());
  BOOST_CHECK_EQUAL(**t.get("x2"), "two");
  BOOST_CHECK_EQUAL(**t.get("x3"), "three");
  auto keys = t.keys("x");
  BOOST_REQUIRE(keys);
  BOOST_CHECK((*keys == std::vector<std::string>{"x2", "x3"}));
  BOOST_CHECK(t.is_staged("x1"));
  BOOST_CHECK(t.is_staged_under("x"));
  BOOST_CHECK(!t.is_staged_under("y"));
}

BOOST_AUTO_TEST_CASE(a_row_that_does_not_decode_fails_the_load) {
  auto db = make_memory_store();
  BOOST_REQUIRE(!db->put("kv", "bad", "no equals sign"));
  counters t{*db, "kv"};
  BOOST_CHECK(code_of(t.load()) == errc::storage_error);
  table<counter_codec> u{*db, "kv"};
  auto row = u.get("bad");
  BOOST_CHECK(!row && code_of(row.error()) == errc::storage_error);
}

// The failed-commit policy: everything staged is discarded, the table shows
// what is on disk, and nothing of it is written later.
BOOST_AUTO_TEST_CASE(failed_commit_discards_what_was_staged) {
  test_store db;
  counters t{db, "kv"};
  t.stage("kept", counter{"kept", 1});
  t.stage("gone", counter{"gone", 1});
  BOOST_REQUIRE(!t.commit());
  t.stage("kept", counter{"kept", 2}); // an update
  t.erase("gone");                     // a removal
  t.stage("new", counter{"new", 1});   // an insert
  db.fail_writes(1);
  auto err = t.commit();
  BOOST_CHECK(code_of(err) == errc::storage_error);
  BOOST_CHECK(!t.dirty());
  BOOST_CHECK_EQUAL(t.find("kept")->count, 1);
  BOOST_REQUIRE(t.find("gone") != nullptr);
  BOOST_CHECK(t.find("new") == nullptr);
  // Not retried: the next commit has nothing to write.
  BOOST_REQUIRE(!t.commit());
  BOOST_CHECK_EQUAL(db.writes_done(), 2u);
  counters fresh{db, "kv"};
  BOOST_REQUIRE(!fresh.load());
  BOOST_CHECK_EQUAL(fresh.find("kept")->count, 1);
  BOOST_CHECK(fresh.find("new") == nullptr);
  // A retry of the discarded change does it afresh.
  t.stage("new", counter{"new", 1});
  BOOST_REQUIRE(!t.commit());
  BOOST_CHECK(db.get("kv", "new")->has_value());
}

BOOST_AUTO_TEST_CASE(uncached_failed_commit_discards_too) {
  test_store db;
  table<bytes_codec> t{db, "kv"};
  t.stage("k", "v1");
  BOOST_REQUIRE(!t.commit());
  t.stage("k", "v2");
  db.fail_writes(1);
  BOOST_CHECK(t.commit());
  BOOST_CHECK_EQUAL(**t.get("k"), "v1");
}

BOOST_AUTO_TEST_CASE(commit_all_writes_tables_in_one_batch_or_none) {
  test_store db;
  counters a{db, "kv", "a/"};
  table<bytes_codec> b{db, "kv", "b/"};
  a.stage("1", counter{"one", 1});
  b.stage("1", "raw");
  BOOST_REQUIRE(!commit_all(db, {&a, &b}));
  BOOST_CHECK((db.batch_sizes() == std::vector<std::size_t>{2}));
  a.stage("2", counter{"two", 2});
  b.stage("2", "raw2");
  db.fail_writes(1);
  BOOST_CHECK(commit_all(db, {&a, &b}));
  BOOST_CHECK(!a.dirty() && !b.dirty());
  BOOST_CHECK(a.find("2") == nullptr);
  BOOST_CHECK(!b.get("2")->has_value());
  BOOST_CHECK(!db.get("kv", "a/2")->has_value());
  // Nothing staged: no batch at all.
  BOOST_REQUIRE(!commit_all(db, {&a, &b}));
  BOOST_CHECK_EQUAL(db.batch_sizes().size(), 2u);
}

BOOST_AUTO_TEST_SUITE_END()

// ----------------------------------------------------------- group commit

BOOST_AUTO_TEST_SUITE(group_commit_suite)

BOOST_AUTO_TEST_CASE(many_changes_one_flush_one_commit_then_every_action) {
  int flushes_asked = 0;
  group_commit gc{"test", [&flushes_asked] { ++flushes_asked; }};
  std::vector<int> ran;
  for (int i = 0; i < 5; ++i) {
    gc.staged();
    gc.then([&ran, i](const caf::error& err) {
      BOOST_CHECK(!err);
      ran.push_back(i);
    });
  }
  BOOST_CHECK_EQUAL(flushes_asked, 1);
  BOOST_CHECK(gc.scheduled());
  BOOST_CHECK_EQUAL(gc.waiting(), 5u);
  BOOST_CHECK(ran.empty()); // nothing runs before the commit
  int commits = 0;
  BOOST_REQUIRE(!gc.flush([&commits, &ran] {
    BOOST_CHECK(ran.empty()); // the commit comes first
    ++commits;
    return caf::error{};
  }));
  BOOST_CHECK_EQUAL(commits, 1);
  BOOST_CHECK((ran == std::vector<int>{0, 1, 2, 3, 4}));
  BOOST_CHECK(!gc.scheduled());
  BOOST_CHECK_EQUAL(gc.waiting(), 0u);
}

BOOST_AUTO_TEST_CASE(a_failed_commit_reaches_every_waiting_action) {
  group_commit gc{"test", [] {}};
  int errors = 0;
  for (int i = 0; i < 3; ++i)
    gc.then([&errors](const caf::error& err) {
      if (code_of(err) == errc::storage_error)
        ++errors;
    });
  auto err = gc.flush(
    [] { return make_error(errc::storage_error, "disk on fire"); });
  BOOST_CHECK(code_of(err) == errc::storage_error);
  BOOST_CHECK_EQUAL(errors, 3);
}

BOOST_AUTO_TEST_CASE(what_actions_stage_starts_the_next_round) {
  int flushes_asked = 0;
  group_commit gc{"test", [&flushes_asked] { ++flushes_asked; }};
  bool second_ran = false;
  gc.then([&gc, &second_ran](const caf::error&) {
    gc.then([&second_ran](const caf::error&) { second_ran = true; });
  });
  BOOST_REQUIRE(!gc.flush([] { return caf::error{}; }));
  BOOST_CHECK(!second_ran);
  BOOST_CHECK_EQUAL(flushes_asked, 2);
  BOOST_REQUIRE(!gc.flush([] { return caf::error{}; }));
  BOOST_CHECK(second_ran);
}

BOOST_AUTO_TEST_SUITE_END()
