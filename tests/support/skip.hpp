#pragma once

// Skips that cannot pass unnoticed. A test that cannot set up what it needs
// (a network namespace, a tmpfs mount, an unprivileged user) calls
// require_or_skip() (the whole case) or skip_part() (one part of a case) instead
// of returning quietly. Either:
//   - prints a line starting with "SKIPPED" and the reason on stdout, whatever
//     the log level (scripts/test.sh collects these lines into its summary; a
//     binary of one such case can let CTest report it as skipped with
//     SKIP_REGULAR_EXPRESSION "SKIPPED: ", as netns_test does);
//   - counts it: a skipped case is recorded as skipped in Boost.Test's results,
//     so the short report says "N test case(s) out of M skipped"; at exit the
//     module prints how many cases and parts it skipped;
//   - under the environment CI=true, fails the case instead: CI must run every
//     multi-host and fault case, and a skip there means the runner lost a
//     capability the suite relies on.
//
// Usage, at the top of a case, before anything is asserted:
//     if (!require_or_skip(net.ready(), "network namespace: " + net.why_not()))
//       return;
// The case must return at once: once it is marked skipped, later assertions
// no longer decide its outcome. Header-only, so unit and integration tests
// share it; single-threaded use from the test's own thread.

#include <cstdlib>
#include <iostream>
#include <string>

#include <boost/test/framework.hpp>
#include <boost/test/results_collector.hpp>
#include <boost/test/tree/test_unit.hpp>
#include <boost/test/unit_test.hpp>

namespace rayd::tests {

// True when the environment says this is a CI run (CI=true, as CI services set it).
inline bool in_ci() {
  const char* ci = std::getenv("CI");
  return ci != nullptr && std::string(ci) == "true";
}

namespace detail {

// The module's skips; printed once when the test binary exits.
struct skip_tally {
  int cases = 0;
  int parts = 0;
  ~skip_tally() {
    if (cases + parts > 0)
      std::cout << "SKIPPED in this module: " << cases << " test case(s), " << parts
                << " part(s) of test cases" << std::endl;
  }
};

inline skip_tally& tally() {
  static skip_tally t;
  return t;
}

inline std::string current_case_name() {
  try {
    return boost::unit_test::framework::current_test_case().full_name();
  } catch (...) {
    return "<no test case>";
  }
}

}  // namespace detail

// Returns `ok`. When it is false: under CI=true a failed assertion naming the
// reason; otherwise "SKIPPED: <case>: <reason>" on stdout and the running case
// recorded as skipped (unless it has already failed: a failure is never turned
// into a skip).
inline bool require_or_skip(bool ok, const std::string& reason) {
  if (ok)
    return true;
  const std::string name = detail::current_case_name();
  if (in_ci()) {
    BOOST_ERROR("cannot run under CI=true: " << reason);
    return false;
  }
  ++detail::tally().cases;
  std::cout << "SKIPPED: " << name << ": " << reason << std::endl;
  using namespace boost::unit_test;
  try {
    const test_case& tc = framework::current_test_case();
    const test_results& r = results_collector.results(tc.p_id);
    if (r.p_assertions_failed == 0 && !r.p_aborted)
      results_collector.test_unit_skipped(tc, reason);
  } catch (...) {
    // Outside a running case (a fixture): the printed line still tells.
  }
  return false;
}

// As require_or_skip, for one part of a case that goes on without it (the
// case keeps its outcome; only the line and the count tell of the part).
inline bool skip_part_unless(bool ok, const std::string& reason) {
  if (ok)
    return true;
  if (in_ci()) {
    BOOST_ERROR("part cannot run under CI=true: " << reason);
    return false;
  }
  ++detail::tally().parts;
  std::cout << "SKIPPED (part): " << detail::current_case_name() << ": " << reason
            << std::endl;
  return false;
}

}  // namespace rayd::tests
