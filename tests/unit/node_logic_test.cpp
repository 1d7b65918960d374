// Unit tests of a node's task-side logic without sockets: the lease policy
// (fit, spillback choice, queue, infeasible) and the object store (memfd,
// spill to disk, full disk, job-scoped freeing).
#define BOOST_TEST_MODULE node_logic
#include <boost/test/unit_test.hpp>

#include <sys/mman.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cstdlib>
#include <filesystem>
#include <string>

#include "actors/node/lease_policy.hpp"
#include "actors/node/object_store.hpp"
#include "common/error.hpp"

using namespace rayd;
using namespace rayd::node;

namespace {

peer_capacity peer(std::string id, resource_map total, resource_map available,
                   label_map labels = {}, bool alive = true) {
  return {id, "127.0.0.1:" + std::to_string(1000 + id.size()), alive, std::move(total),
          std::move(available), std::move(labels)};
}

int memfd_with(const std::string& bytes) {
  int fd = ::memfd_create("test", MFD_CLOEXEC);
  BOOST_REQUIRE(fd >= 0);
  BOOST_REQUIRE_EQUAL(::write(fd, bytes.data(), bytes.size()),
                      static_cast<ssize_t>(bytes.size()));
  return fd;
}

std::string read_all(int fd, std::size_t size) {
  std::string out(size, '\0');
  BOOST_REQUIRE_EQUAL(::pread(fd, out.data(), size, 0), static_cast<ssize_t>(size));
  return out;
}

struct temp_dir {
  std::string path;
  temp_dir() {
    char tmpl[] = "/tmp/rayd-node-unit-XXXXXX";
    path = ::mkdtemp(tmpl);
  }
  ~temp_dir() {
    std::error_code ec;
    std::filesystem::remove_all(path, ec);
  }
};

} // namespace

BOOST_AUTO_TEST_SUITE(lease_policy_suite)

BOOST_AUTO_TEST_CASE(a_shape_that_fits_here_is_granted_here) {
  auto self = peer("self", {{"CPU", 2}}, {{"CPU", 1}});
  auto d = decide_lease({{"CPU", 1}}, {}, self, {peer("b", {{"CPU", 8}}, {{"CPU", 8}})}, false);
  BOOST_CHECK(d.kind == lease_decision::grant);
}

BOOST_AUTO_TEST_CASE(spillback_goes_to_the_node_with_the_most_free_cpu) {
  auto self = peer("self", {{"CPU", 2}}, {{"CPU", 0}});
  std::vector<peer_capacity> peers{peer("a", {{"CPU", 4}}, {{"CPU", 1}}),
                                   peer("b", {{"CPU", 4}}, {{"CPU", 3}}),
                                   peer("dead", {{"CPU", 64}}, {{"CPU", 64}}, {}, false),
                                   peer("self", {{"CPU", 2}}, {{"CPU", 2}})}; // stale self
  auto d = decide_lease({{"CPU", 1}}, {}, self, peers, false);
  BOOST_REQUIRE(d.kind == lease_decision::spill);
  BOOST_CHECK_EQUAL(d.node_id, "b");
  BOOST_CHECK_EQUAL(d.address, peers[1].address);
  // A request that was spilled once waits here instead of bouncing on.
  d = decide_lease({{"CPU", 1}}, {}, self, peers, true);
  BOOST_CHECK(d.kind == lease_decision::queue);
}

BOOST_AUTO_TEST_CASE(busy_everywhere_means_queue_never_means_infeasible) {
  auto self = peer("self", {{"CPU", 2}}, {{"CPU", 0}});
  auto d = decide_lease({{"CPU", 2}}, {}, self, {peer("a", {{"CPU", 1}}, {{"CPU", 1}})}, false);
  BOOST_CHECK(d.kind == lease_decision::queue);
  BOOST_CHECK(d.reason.find("CPU") != std::string::npos);
}

BOOST_AUTO_TEST_CASE(infeasible_when_no_alive_node_can_ever_hold_it) {
  auto self = peer("self", {{"CPU", 2}}, {{"CPU", 2}});
  std::vector<peer_capacity> peers{peer("a", {{"CPU", 4}}, {{"CPU", 4}}),
                                   peer("gone", {{"GPU", 8}}, {{"GPU", 8}}, {}, false)};
  auto d = decide_lease({{"GPU", 1}}, {}, self, peers, false);
  BOOST_CHECK(d.kind == lease_decision::infeasible);
  BOOST_CHECK(d.reason.find("GPU") != std::string::npos);
  // Shapes larger than any single node, even if the sum would hold them.
  d = decide_lease({{"CPU", 5}}, {}, self, peers, false);
  BOOST_CHECK(d.kind == lease_decision::infeasible);
}

BOOST_AUTO_TEST_CASE(label_selectors_restrict_where_a_lease_may_go) {
  auto self = peer("self", {{"CPU", 2}}, {{"CPU", 2}}, {{"zone", "a"}});
  std::vector<peer_capacity> peers{peer("b", {{"CPU", 2}}, {{"CPU", 2}}, {{"zone", "b"}})};
  auto d = decide_lease({{"CPU", 1}}, {{"zone", "b"}}, self, peers, false);
  BOOST_REQUIRE(d.kind == lease_decision::spill);
  BOOST_CHECK_EQUAL(d.node_id, "b");
  d = decide_lease({{"CPU", 1}}, {{"zone", "c"}}, self, peers, false);
  BOOST_CHECK(d.kind == lease_decision::infeasible);
  BOOST_CHECK(d.reason.find("zone=c") != std::string::npos);
  BOOST_CHECK(labels_match({}, {{"x", "y"}}));
  BOOST_CHECK(!labels_match({{"x", "z"}}, {{"x", "y"}}));
}

BOOST_AUTO_TEST_SUITE_END()

BOOST_AUTO_TEST_SUITE(object_store_suite)

BOOST_AUTO_TEST_CASE(objects_in_memory_are_handed_out_as_descriptors) {
  temp_dir tmp;
  object_store store{{1 << 20, tmp.path}};
  BOOST_REQUIRE(!store.put_fd("a", memfd_with("hello"), 5, "job1"));
  BOOST_CHECK(store.contains("a"));
  BOOST_CHECK_EQUAL(store.memory_used(), 5u);
  auto obj = store.open("a");
  BOOST_REQUIRE(obj);
  BOOST_CHECK_EQUAL(obj->second, 5u);
  BOOST_CHECK_EQUAL(read_all(obj->first, 5), "hello");
  ::close(obj->first);
  // Objects are immutable: a second put of the id keeps the first.
  BOOST_REQUIRE(!store.put_fd("a", memfd_with("other"), 5, "job1"));
  obj = store.open("a");
  BOOST_CHECK_EQUAL(read_all(obj->first, 5), "hello");
  ::close(obj->first);
  store.free("a");
  BOOST_CHECK(!store.contains("a"));
  BOOST_CHECK_EQUAL(store.memory_used(), 0u);
}

BOOST_AUTO_TEST_CASE(beyond_the_memory_bound_objects_spill_to_disk) {
  temp_dir tmp;
  object_store store{{100, tmp.path}};
  BOOST_REQUIRE(!store.put_fd("small", memfd_with(std::string(80, 's')), 80, "j"));
  std::string big(1000, 'b');
  BOOST_REQUIRE(!store.put_fd("big", memfd_with(big), big.size(), "j"));
  BOOST_CHECK_EQUAL(store.memory_used(), 80u);
  BOOST_CHECK_EQUAL(store.spilled_bytes(), 1000u);
  BOOST_CHECK(std::filesystem::exists(tmp.path + "/big"));
  auto obj = store.open("big");
  BOOST_REQUIRE(obj);
  BOOST_CHECK(read_all(obj->first, obj->second) == big);
  ::close(obj->first);
  // Streaming writes (PUT over the network) obey the same bound.
  auto p = store.begin("streamed", 500, "j");
  BOOST_REQUIRE(p);
  BOOST_CHECK(!p->spill_path.empty());
  BOOST_REQUIRE_EQUAL(::pwrite(p->fd, std::string(500, 'x').data(), 500, 0), 500);
  BOOST_REQUIRE(!store.commit(*p));
  BOOST_CHECK_EQUAL(store.spilled_bytes(), 1500u);
  store.free("big");
  BOOST_CHECK(!std::filesystem::exists(tmp.path + "/big"));
}

BOOST_AUTO_TEST_CASE(a_full_spill_disk_is_a_clear_error) {
  temp_dir tmp;
  // A spill directory that cannot be written stands in for a full disk.
  object_store store{{10, tmp.path + "/no/such/dir/\x01"}};
  std::filesystem::remove_all(tmp.path + "/no");
  auto err = store.put_fd("x", memfd_with(std::string(100, 'x')), 100, "j");
  BOOST_REQUIRE(err);
  BOOST_CHECK(describe(err).find("object store full") != std::string::npos);
  BOOST_CHECK(!store.contains("x"));
  auto p = store.begin("y", 100, "j");
  BOOST_REQUIRE(!p);
  BOOST_CHECK(describe(p.error()).find("object store full") != std::string::npos);
}

BOOST_AUTO_TEST_CASE(a_job_s_objects_go_when_its_driver_goes) {
  temp_dir tmp;
  object_store store{{1 << 20, tmp.path}};
  BOOST_REQUIRE(!store.put_fd("a1", memfd_with("1"), 1, "jobA"));
  BOOST_REQUIRE(!store.put_fd("a2", memfd_with("2"), 1, "jobA"));
  BOOST_REQUIRE(!store.put_fd("b1", memfd_with("3"), 1, "jobB"));
  store.free_job("jobA");
  BOOST_CHECK(!store.contains("a1") && !store.contains("a2"));
  BOOST_CHECK(store.contains("b1"));
  BOOST_CHECK_EQUAL(store.count(), 1u);
}

BOOST_AUTO_TEST_CASE(freed_memory_is_reused_for_the_next_large_object) {
  temp_dir tmp;
  object_store store{{64 << 20, tmp.path}};
  const uint64_t size = 4 << 20;
  auto p = store.begin("first", size, "j");
  BOOST_REQUIRE(p);
  // The memfd's identity is its inode: a descriptor number proves nothing,
  // the kernel hands out the lowest free number to any new file anyway.
  struct stat first_sb {};
  BOOST_REQUIRE_EQUAL(::fstat(p->fd, &first_sb), 0);
  BOOST_REQUIRE_EQUAL(::pwrite(p->fd, std::string(size, 'a').data(), size, 0),
                      static_cast<ssize_t>(size));
  BOOST_REQUIRE(!store.commit(*p));
  store.free("first");
  BOOST_CHECK_EQUAL(store.memory_used(), 0u);
  // The same memfd (its pages already there) takes the next object, whose
  // bytes then replace the old ones entirely.
  auto q = store.begin("second", size - 1000, "j");
  BOOST_REQUIRE(q);
  struct stat reused_sb {};
  BOOST_REQUIRE_EQUAL(::fstat(q->fd, &reused_sb), 0);
  BOOST_CHECK_MESSAGE(reused_sb.st_ino == first_sb.st_ino && reused_sb.st_dev == first_sb.st_dev,
                      "the second object got a new memfd (inode " << reused_sb.st_ino
                                                                  << ", first was "
                                                                  << first_sb.st_ino << ")");
  std::string second(size - 1000, 'b');
  BOOST_REQUIRE_EQUAL(::pwrite(q->fd, second.data(), second.size(), 0),
                      static_cast<ssize_t>(second.size()));
  BOOST_REQUIRE(!store.commit(*q));
  auto obj = store.open("second");
  BOOST_REQUIRE(obj);
  BOOST_CHECK_EQUAL(obj->second, second.size());
  BOOST_CHECK(read_all(obj->first, obj->second) == second);
  struct stat sb {};
  BOOST_REQUIRE_EQUAL(::fstat(obj->first, &sb), 0);
  BOOST_CHECK_EQUAL(static_cast<uint64_t>(sb.st_size), second.size());
  ::close(obj->first);
  // Small objects and a full bound are not pooled: memory stays bounded.
  BOOST_CHECK_EQUAL(store.memory_used(), second.size());
}

BOOST_AUTO_TEST_SUITE_END()
