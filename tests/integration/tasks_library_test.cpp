// A prebuilt task library named in code_search_path: the driver ships it,
// every worker of the job dlopens it, and its RAYD_REMOTE functions run,
// called by name from a driver that does not contain them.
#define BOOST_TEST_MODULE tasks_library
#include <boost/test/unit_test.hpp>

#include <cstdlib>

#include "tests/integration/harness.hpp"

using namespace rayd::integration;

BOOST_AUTO_TEST_CASE(functions_of_a_shipped_task_library_run_by_name) {
  const char* driver = std::getenv("RAYD_LIB_DRIVER");
  const char* lib = std::getenv("RAYD_TASK_LIB");
  BOOST_REQUIRE_MESSAGE(driver && lib, "RAYD_LIB_DRIVER and RAYD_TASK_LIB must be set (CTest does)");
  cluster c{"tasks_library"};
  auto& head = c.start_head({}, 1);
  env_list env{{"RAYD_ADDRESS", head.api_address()},
               {"RAYD_TOKEN", trim(read_file(head.token_file()))},
               {"RAYD_TMPDIR", c.rayd_tmpdir()},
               {"TASK_LIB", lib}};
  auto r = run({driver}, env, 60s);
  BOOST_REQUIRE_MESSAGE(r.exit_code == 0, r.describe());
  auto lines = nonempty_lines(r.out);
  BOOST_REQUIRE(!lines.empty());
  auto j = json::parse(lines.back(), nullptr, false);
  BOOST_REQUIRE_MESSAGE(!j.is_discarded(), r.out);
  BOOST_CHECK_EQUAL(j["tripled"].get<int>(), 42);
  BOOST_CHECK_EQUAL(j["greeting"].get<std::string>(), "hello, rayd (from the task library)");
  // Without the library the same calls fail clearly: the function is unknown.
  env.pop_back();
  auto without = run({driver}, env, 60s);
  BOOST_CHECK_NE(without.exit_code, 0);
  BOOST_CHECK_MESSAGE(contains_ci(without.err, "unknown_function")
                        || contains_ci(without.err, "no remote function"),
                      without.describe());
}
