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
#include "persistence/store.hpp"
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
