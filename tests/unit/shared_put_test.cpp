// Shared puts (docs/tasks.md, "Shared puts"): the counting msgpack stream
// and in-place packing the typed put uses; the node's bookkeeping of
// allocated-but-uncommitted objects (put_allocations over a real
// object_store); and the driver's half (shared_put) against that node half
// over a socketpair in this process, where /proc/self/fd names the store's
// memfds just as /proc/<rayd pid>/fd does for a real driver.
#define BOOST_TEST_MODULE shared_put
#include <boost/test/unit_test.hpp>

#include <fcntl.h>
#include <sys/mman.h>
#include <sys/socket.h>
#include <unistd.h>

#include <atomic>
#include <cstdint>
#include <cstdlib>
#include <cstring>
#include <filesystem>
#include <map>
#include <string>
#include <thread>
#include <vector>

#include <rayd/rayd.hpp>
#include <rayd/sized_pack.hpp>

#include "actors/node/object_alloc.hpp"
#include "actors/node/object_store.hpp"
#include "api/src/shared_put.hpp"
#include "common/error.hpp"
#include "common/wire.hpp"

namespace {

struct point {
  double x = 0, y = 0;
  std::string name;
  MSGPACK_DEFINE(x, y, name);
};

template <class T>
void check_sized_pack(const T& value) {
  auto want = rayd::detail::pack(value);
  BOOST_REQUIRE_EQUAL(rayd::detail::packed_size(value), want.size());
  // A guard byte past the end must stay untouched.
  std::string buf(want.size() + 1, '\x5a');
  rayd::detail::pack_into(value, buf.data(), want.size());
  BOOST_CHECK(buf.substr(0, want.size()) == want);
  BOOST_CHECK_EQUAL(buf.back(), '\x5a');
}

/// An object store in a fresh directory, removed afterwards.
struct temp_store {
  explicit temp_store(uint64_t memory) {
    char tmpl[] = "/tmp/rayd-shared-put-test-XXXXXX";
    BOOST_REQUIRE(::mkdtemp(tmpl) != nullptr);
    dir = tmpl;
    store = std::make_unique<rayd::node::object_store>(
      rayd::node::object_store_options{memory, dir + "/spill"});
  }
  ~temp_store() {
    store.reset();
    std::error_code ec;
    std::filesystem::remove_all(dir, ec);
  }
  /// The stored object's bytes ("" if absent).
  std::string read(const std::string& id) {
    auto o = store->open(id);
    if (!o)
      return "";
    std::string out(o->second, '\0');
    auto n = ::pread(o->first, out.data(), out.size(), 0);
    ::close(o->first);
    BOOST_REQUIRE_EQUAL(n, static_cast<ssize_t>(out.size()));
    return out;
  }
  std::string dir;
  std::unique_ptr<rayd::node::object_store> store;
};

/// Writes `bytes` into the region a PUT_ALLOC returned, as a driver does.
void write_region(const rayd::wire::put_region_msg& r, const std::string& bytes) {
  auto path = "/proc/" + std::to_string(r.pid) + "/fd/" + std::to_string(r.fd);
  int fd = ::open(path.c_str(), O_RDWR);
  BOOST_REQUIRE(fd >= 0);
  BOOST_REQUIRE_EQUAL(::pwrite(fd, bytes.data(), bytes.size(), 0),
                      static_cast<ssize_t>(bytes.size()));
  ::close(fd);
}

constexpr uint64_t mib = uint64_t{1} << 20;

/// The node's half on one end of a socketpair: FREE, PUT_ALLOC,
/// PUT_COMMIT, PUT_ABORT, as the task server serves them.
struct fake_node {
  explicit fake_node(rayd::node::object_store& store) : allocs(store), store_(store) {
    int sv[2];
    BOOST_REQUIRE(::socketpair(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0, sv) == 0);
    client = sv[0];
    server = sv[1];
    thread = std::thread([this] { serve(); });
  }
  ~fake_node() {
    ::shutdown(client, SHUT_RDWR);
    thread.join();
    ::close(client);
    ::close(server);
  }
  void serve() {
    rayd::wire::frame_reader reader;
    for (;;) {
      auto f = rayd::wire::read_frame(server, reader);
      if (!f)
        break;
      if (f->type == rayd::wire::msg::free) {
        auto r = rayd::wire::decode<rayd::wire::free_request>(f->payload);
        for (auto& id : r->object_ids)
          store_.free(id);
        continue;
      }
      auto reply = allocs.on_frame(1, "job", *f);
      if (!reply) {
        errors++;
        break;
      }
      if (reply->empty())
        continue;
      if (!other_host.empty() && f->type == rayd::wire::msg::put_alloc) {
        rayd::wire::frame_reader rr;
        rr.feed(reply->data(), reply->size());
        auto parsed = rr.next();
        auto region = rayd::wire::decode<rayd::wire::put_region_msg>((*parsed)->payload);
        if (region) {
          region->boot_id = other_host;
          *reply = rayd::wire::encode(rayd::wire::msg::put_region, *region);
        }
      }
      (void) rayd::wire::write_all(server, *reply);
    }
    allocs.drop_conn(1);
  }
  rayd::node::put_allocations allocs;
  rayd::node::object_store& store_;
  int client = -1, server = -1;
  std::thread thread;
  std::atomic<int> errors{0};
  std::string other_host; // non-empty: PUT_REGION claims this boot id
};

} // namespace

BOOST_AUTO_TEST_SUITE(sized_pack)

BOOST_AUTO_TEST_CASE(packed_size_matches_pack_and_pack_into_writes_the_same_bytes) {
  check_sized_pack(0);
  check_sized_pack(-123456789);
  check_sized_pack(3.25);
  check_sized_pack(std::string("hello"));
  check_sized_pack(std::string(70000, 'x'));
  check_sized_pack(std::vector<uint8_t>(3 * mib, 7)); // BIN 32
  check_sized_pack(std::vector<int>{1, 300, -5, 70000});
  check_sized_pack(std::map<std::string, std::vector<double>>{{"a", {1.5, 2}}, {"b", {}}});
  check_sized_pack(point{1.5, -2, "p"});
  check_sized_pack(std::vector<point>(1000, point{0.1, 0.2, "n"}));
}

BOOST_AUTO_TEST_CASE(pack_into_refuses_a_buffer_of_another_size) {
  std::vector<uint8_t> v(1000, 1);
  auto size = rayd::detail::packed_size(v);
  std::string small(size - 1 + 1, '\x5a');
  BOOST_CHECK_THROW(rayd::detail::pack_into(v, small.data(), size - 1),
                    rayd::serialization_error);
  BOOST_CHECK_EQUAL(small.back(), '\x5a'); // nothing written past the end
  std::string big(size + 1, '\0');
  BOOST_CHECK_THROW(rayd::detail::pack_into(v, big.data(), size + 1), rayd::serialization_error);
}

BOOST_AUTO_TEST_SUITE_END()

BOOST_AUTO_TEST_SUITE(put_allocations)

BOOST_AUTO_TEST_CASE(pending_objects_are_unreadable_count_against_memory_and_commit_or_abort) {
  temp_store t(8 * mib);
  rayd::node::put_allocations allocs(*t.store);
  auto r = allocs.allocate(1, "a", 6 * mib, "job");
  BOOST_REQUIRE_MESSAGE(r, (r ? std::string() : rayd::describe(r.error())));
  BOOST_CHECK_EQUAL(allocs.pending_count(), 1u);
  BOOST_CHECK(!t.store->contains("a"));
  BOOST_CHECK(!t.store->open("a"));
  BOOST_CHECK_EQUAL(r->pid, ::getpid());
  // The 6 MiB reservation leaves no room in memory for 4 MiB more: spilled.
  auto b = allocs.allocate(2, "b", 4 * mib, "job");
  BOOST_REQUIRE(b);
  BOOST_REQUIRE(!allocs.commit(2, "b"));
  BOOST_CHECK_EQUAL(t.store->spilled_bytes(), 4 * mib);
  std::string bytes(6 * mib, 'q');
  bytes[12345] = 'z';
  write_region(*r, bytes);
  BOOST_REQUIRE(!allocs.commit(1, "a"));
  BOOST_CHECK_EQUAL(allocs.pending_count(), 0u);
  BOOST_CHECK(t.read("a") == bytes);
  BOOST_CHECK_EQUAL(t.store->memory_used(), 6 * mib);
  // A second commit of the same id is a protocol error, not a second object.
  BOOST_CHECK(allocs.commit(1, "a"));
  // Aborted: gone, and its reservation with it.
  auto c = allocs.allocate(1, "c", 1 * mib, "job");
  BOOST_REQUIRE(c);
  allocs.abort(1, "c");
  BOOST_CHECK_EQUAL(allocs.pending_count(), 0u);
  BOOST_CHECK(!t.store->contains("c"));
  t.store->free("a");
  BOOST_CHECK_EQUAL(t.store->memory_used(), 0u);
  auto d = allocs.allocate(1, "d", 7 * mib, "job"); // fits in memory again
  BOOST_REQUIRE(d);
  BOOST_REQUIRE(!allocs.commit(1, "d"));
  BOOST_CHECK_EQUAL(t.store->memory_used(), 7 * mib);
}

BOOST_AUTO_TEST_CASE(a_closed_session_drops_only_its_own_pending_objects) {
  temp_store t(64 * mib);
  rayd::node::put_allocations allocs(*t.store);
  BOOST_REQUIRE(allocs.allocate(1, "x", mib, "job"));
  BOOST_REQUIRE(allocs.allocate(1, "y", mib, "job"));
  BOOST_REQUIRE(allocs.allocate(2, "z", mib, "job"));
  allocs.drop_conn(1);
  BOOST_CHECK_EQUAL(allocs.pending_count(), 1u);
  BOOST_CHECK(allocs.commit(1, "x")); // dropped: nothing to commit
  BOOST_CHECK(!allocs.commit(2, "z"));
  BOOST_CHECK(t.store->contains("z"));
  BOOST_CHECK(!t.store->contains("x"));
  BOOST_CHECK_EQUAL(t.store->memory_used(), mib);
}

// A driver keeps its mappings; the store must still give the memory back
// when it lets an object's memfd go (here: too small to pool).
BOOST_AUTO_TEST_CASE(a_freed_object_leaves_no_pages_behind_in_a_kept_mapping) {
  temp_store t(64 * mib);
  rayd::node::put_allocations allocs(*t.store);
  const uint64_t size = 256 * 1024; // below the pool's minimum: closed when freed
  auto r = allocs.allocate(1, "k", size, "job");
  BOOST_REQUIRE(r);
  auto path = "/proc/self/fd/" + std::to_string(r->fd);
  int fd = ::open(path.c_str(), O_RDWR);
  BOOST_REQUIRE(fd >= 0);
  auto* map = static_cast<char*>(::mmap(nullptr, size, PROT_READ | PROT_WRITE, MAP_SHARED, fd, 0));
  ::close(fd);
  BOOST_REQUIRE(map != MAP_FAILED);
  std::memset(map, 'k', size);
  BOOST_REQUIRE(!allocs.commit(1, "k"));
  BOOST_CHECK_EQUAL(t.read("k")[size - 1], 'k');
  t.store->free("k");
  BOOST_CHECK_EQUAL(map[0], '\0'); // punched out: reads as a hole
  BOOST_CHECK_EQUAL(map[size - 1], '\0');
  ::munmap(map, size);
}

BOOST_AUTO_TEST_CASE(bad_requests_are_refused) {
  temp_store t(64 * mib);
  rayd::node::put_allocations allocs(*t.store);
  BOOST_CHECK(!allocs.allocate(1, "e", 0, "job"));        // empty
  BOOST_CHECK(!allocs.allocate(1, "", mib, "job"));       // no id
  BOOST_CHECK(!allocs.allocate(1, "../x", mib, "job"));   // not a name
  BOOST_CHECK(!allocs.allocate(1, "h", uint64_t{1} << 60, "job"));
  for (std::size_t i = 0; i < rayd::node::put_allocations::max_per_conn; ++i)
    BOOST_REQUIRE(allocs.allocate(1, "p" + std::to_string(i), mib, "job"));
  BOOST_CHECK(!allocs.allocate(1, "one-more", mib, "job"));
  BOOST_CHECK(!allocs.allocate(1, "p0", mib, "job")); // pending already
  BOOST_CHECK(allocs.commit(2, "p0")); // another session's: an error
  // Frames: malformed payloads and commits of unknown ids are errors (the
  // task server closes the connection); a store that is full is a reply.
  rayd::wire::frame junk{rayd::wire::msg::put_alloc, "\xc1"};
  BOOST_CHECK(!allocs.on_frame(1, "job", junk));
  rayd::wire::frame commit{rayd::wire::msg::put_commit, ""};
  auto encoded = rayd::wire::encode(rayd::wire::msg::put_commit,
                                    rayd::wire::object_id_msg{"nope"});
  commit.payload = encoded.substr(5);
  BOOST_CHECK(!allocs.on_frame(1, "job", commit));
  temp_store tiny(mib);
  std::filesystem::remove_all(tiny.dir); // nowhere to spill either
  ::close(::open(tiny.dir.c_str(), O_CREAT | O_WRONLY, 0600)); // a file where the dir was
  rayd::node::put_allocations tiny_allocs(*tiny.store);
  auto big = rayd::wire::encode(rayd::wire::msg::put_alloc,
                                rayd::wire::put_alloc_msg{"big", 4 * mib});
  auto reply = tiny_allocs.on_frame(1, "job", {rayd::wire::msg::put_alloc, big.substr(5)});
  BOOST_REQUIRE(reply);
  BOOST_CHECK_EQUAL(static_cast<int>(static_cast<uint8_t>((*reply)[4])),
                    static_cast<int>(rayd::wire::msg::error));
  std::filesystem::remove(tiny.dir);
}

BOOST_AUTO_TEST_SUITE_END()

BOOST_AUTO_TEST_SUITE(shared_put_client)

BOOST_AUTO_TEST_CASE(values_are_written_in_place_and_mappings_reused) {
  temp_store t(256 * mib);
  fake_node node(*t.store);
  rayd::core::shared_put client;
  rayd::wire::frame_reader reader;
  std::vector<uint8_t> value(8 * mib);
  for (std::size_t i = 0; i < value.size(); ++i)
    value[i] = static_cast<uint8_t>(i * 7);
  auto size = rayd::detail::packed_size(value);
  auto fill = [&value, size](char* dst) { rayd::detail::pack_into(value, dst, size); };
  auto r = client.put(node.client, reader, "v1", size, fill);
  BOOST_REQUIRE(r == rayd::core::shared_put::result::stored);
  BOOST_CHECK(t.read("v1") == rayd::detail::pack(value));
  BOOST_CHECK_EQUAL(client.mappings(), 1u);
  // v1 freed first (as the driver does with dropped objects): its memfd
  // comes back from the pool and the kept mapping is used again.
  value[5] = 99;
  r = client.put(node.client, reader, "v2", size, fill, {"v1"});
  BOOST_REQUIRE(r == rayd::core::shared_put::result::stored);
  BOOST_CHECK(!t.store->contains("v1"));
  BOOST_CHECK(t.read("v2") == rayd::detail::pack(value));
  BOOST_CHECK_EQUAL(client.mappings(), 1u);
  // A fill that throws stores nothing and leaves nothing pending.
  auto throwing = [](char*) { throw rayd::serialization_error("no"); };
  BOOST_CHECK_THROW(client.put(node.client, reader, "v3", size, throwing),
                    rayd::serialization_error);
  r = client.put(node.client, reader, "v4", size, fill); // the session still works
  BOOST_REQUIRE(r == rayd::core::shared_put::result::stored);
  BOOST_CHECK(!t.store->contains("v3"));
  BOOST_CHECK_EQUAL(node.allocs.pending_count(), 0u);
  BOOST_CHECK_EQUAL(node.errors.load(), 0);
}

BOOST_AUTO_TEST_CASE(a_region_on_another_host_falls_back_and_is_never_opened) {
  temp_store t(64 * mib);
  fake_node node(*t.store);
  node.other_host = "00000000-0000-0000-0000-000000000000";
  rayd::core::shared_put client;
  rayd::wire::frame_reader reader;
  bool filled = false;
  auto r = client.put(node.client, reader, "w", mib, [&filled](char*) { filled = true; });
  BOOST_CHECK(r == rayd::core::shared_put::result::fallback);
  BOOST_CHECK(!filled);
  BOOST_CHECK(!client.usable());
  BOOST_CHECK(!t.store->contains("w"));
  // PUT_ABORT has no reply: wait for the node to process it.
  for (int i = 0; i < 2000 && node.allocs.pending_count() > 0; ++i)
    ::usleep(1000);
  BOOST_CHECK_EQUAL(node.allocs.pending_count(), 0u);
  BOOST_CHECK_EQUAL(client.mappings(), 0u);
}

BOOST_AUTO_TEST_SUITE_END()
