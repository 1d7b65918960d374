// The installed CMake package: `cmake --install` the build, then build
// examples/pi as an outside project with find_package(rayd) and run it. With
// no cluster around it starts the embedded one from the installed binaries,
// computes, and leaves no rayd process behind.
#define BOOST_TEST_MODULE package
#include <boost/test/unit_test.hpp>

#include <cstdlib>

#include "tests/integration/harness.hpp"

using namespace rayd::integration;

namespace {

std::string env_of(const char* name) {
  const char* v = std::getenv(name);
  return v ? v : "";
}

} // namespace

BOOST_AUTO_TEST_CASE(an_outside_project_builds_and_runs_against_the_installed_package) {
  auto src = env_of("RAYD_SOURCE_DIR");
  auto build = env_of("RAYD_BUILD_DIR");
  BOOST_REQUIRE_MESSAGE(!src.empty() && !build.empty(),
                        "RAYD_SOURCE_DIR and RAYD_BUILD_DIR must be set (CTest does)");
  temp_dir tmp{"rayd_pkg"};
  auto prefix = tmp.sub("prefix");
  // The embedded head runs from <prefix>/bin: should it outlive the driver,
  // it is killed by pid before the tree goes.
  session_guard strays(prefix);
  auto install = run({"cmake", "--install", build, "--prefix", prefix}, {}, 120s);
  BOOST_REQUIRE_MESSAGE(install.exit_code == 0, install.describe());
  BOOST_REQUIRE(file_exists(prefix + "/lib/cmake/rayd/raydConfig.cmake"));
  BOOST_REQUIRE(file_exists(prefix + "/include/rayd/rayd.hpp"));

  auto out = tmp.sub("pi-build");
  auto configure = run({"cmake", "-S", src + "/examples/pi", "-B", out,
                        "-DCMAKE_PREFIX_PATH=" + prefix, "-DCMAKE_BUILD_TYPE=Release"},
                       {}, 120s);
  BOOST_REQUIRE_MESSAGE(configure.exit_code == 0, configure.describe());
  auto compile = run({"cmake", "--build", out}, {}, 300s);
  BOOST_REQUIRE_MESSAGE(compile.exit_code == 0, compile.describe());

  // No cluster: RAYD_TMPDIR is empty, RAYD_ADDRESS unset (the harness strips
  // RAYD_* from children), so init() starts the installed rayd.
  auto rt = tmp.sub("rt");
  auto pi = run({out + "/pi", "8", "20000"},
                {{"RAYD_TMPDIR", rt}, {"RAYD_BIN_DIR", prefix + "/bin"}}, 120s);
  BOOST_REQUIRE_MESSAGE(pi.exit_code == 0, pi.describe());
  BOOST_CHECK_MESSAGE(pi.out.find("pi ~= 3.1") != std::string::npos, pi.out);
  // The embedded head ran from the installed bin directory and is gone.
  BOOST_CHECK(wait_until([&] { return processes_mentioning(prefix + "/bin/rayd").empty(); },
                         10s));

  // An actor example (RAYD_ACTOR from the installed headers), the same way.
  auto counter_out = tmp.sub("counter-build");
  auto configure2 = run({"cmake", "-S", src + "/examples/counter", "-B", counter_out,
                         "-DCMAKE_PREFIX_PATH=" + prefix, "-DCMAKE_BUILD_TYPE=Release"},
                        {}, 120s);
  BOOST_REQUIRE_MESSAGE(configure2.exit_code == 0, configure2.describe());
  auto compile2 = run({"cmake", "--build", counter_out}, {}, 300s);
  BOOST_REQUIRE_MESSAGE(compile2.exit_code == 0, compile2.describe());
  auto counter = run({counter_out + "/counter", "200"},
                     {{"RAYD_TMPDIR", rt}, {"RAYD_BIN_DIR", prefix + "/bin"}}, 120s);
  BOOST_REQUIRE_MESSAGE(counter.exit_code == 0, counter.describe());
  BOOST_CHECK_MESSAGE(counter.out.find("counter = 200 after 200 calls (in call order)")
                        != std::string::npos,
                      counter.out);
  BOOST_CHECK(wait_until([&] { return processes_mentioning(prefix + "/bin/rayd").empty(); },
                         10s));
}
