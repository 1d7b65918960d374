#pragma once

// What tasks_test.cpp and tasks_failure_test.cpp share: running the driver
// program task_programs/task_driver.cpp against a test cluster, reading the
// JSON it prints, clusters whose nodes carry the resources n0, n1, ... (so a
// task can be forced onto one), and worker-log dumps on failure.

#include <csignal>
#include <cstdlib>
#include <filesystem>
#include <iostream>
#include <memory>
#include <sstream>
#include <string>
#include <vector>

#include <boost/test/unit_test.hpp>

#include "tests/integration/harness.hpp"

namespace rayd::integration {

// The driver binary: $RAYD_TASK_DRIVER (set by CTest), else next to the
// tests of RAYD_BIN_DIR's build tree.
inline std::string task_driver_bin() {
  if (const char* p = std::getenv("RAYD_TASK_DRIVER"); p != nullptr && *p != '\0')
    return p;
  return bin_dir() + "/../tests/integration/task_driver";
}

// RAYD_ADDRESS / RAYD_TOKEN of the cluster's head, and its RAYD_TMPDIR.
inline env_list driver_env(cluster& c) {
  return {{"RAYD_ADDRESS", c.head().api_address()},
          {"RAYD_TOKEN", trim(read_file(c.head().token_file()))},
          {"RAYD_TMPDIR", c.rayd_tmpdir()}};
}

// The JSON object on the last non-empty line of `out`; a discarded json if none.
inline json last_json(const std::string& out) {
  auto lines = nonempty_lines(out);
  if (lines.empty())
    return json(json::value_t::discarded);
  return json::parse(lines.back(), nullptr, false);
}

inline std::vector<std::string> driver_argv(const std::string& name,
                                            const std::vector<std::string>& args) {
  std::vector<std::string> argv{task_driver_bin(), "--case", name};
  argv.insert(argv.end(), args.begin(), args.end());
  return argv;
}

// Runs a driver case to completion; a failed BOOST_REQUIRE unless it exits 0
// and prints its JSON.
inline json run_case(cluster& c, const std::string& name, const std::vector<std::string>& args,
                     milliseconds timeout = 120s) {
  exec_result r = run(driver_argv(name, args), driver_env(c), timeout);
  BOOST_TEST_MESSAGE("driver --case " << name << ": " << r.elapsed_ms << " ms");
  json j = last_json(r.out);
  BOOST_REQUIRE_MESSAGE(r.exit_code == 0 && !j.is_discarded(),
                        "driver --case " << name << " failed: " << r.describe());
  return j;
}

// A driver case running in the background (the test acts while it runs).
struct background_driver {
  std::unique_ptr<process> proc;
  std::string name;

  background_driver(cluster& c, const std::string& case_name,
                    const std::vector<std::string>& args, const env_list& env)
      : name(case_name) {
    proc = std::make_unique<process>(driver_argv(case_name, args), env, c.root() + "/logs",
                                     "driver-" + case_name);
    c.add_log(proc->err_path());
  }
  background_driver(cluster& c, const std::string& case_name,
                    const std::vector<std::string>& args)
      : background_driver(c, case_name, args, driver_env(c)) {}

  // Waits for the exit; a failed BOOST_REQUIRE unless it exits 0 in time
  // with its JSON.
  json finish(milliseconds timeout = 120s) {
    auto code = proc->wait_exit(timeout);
    json j = last_json(proc->out());
    BOOST_REQUIRE_MESSAGE(code.has_value(), "driver --case " << name << " still runs after "
                                                             << timeout.count() << " ms\n"
                                                             << proc->out() << proc->err());
    BOOST_REQUIRE_MESSAGE(*code == 0 && !j.is_discarded(),
                          "driver --case " << name << " exited " << *code << "\n--- stdout\n"
                                           << proc->out() << "\n--- stderr\n"
                                           << proc->err());
    return j;
  }
};

// On destruction, if the test failed, prints the tails of every worker log
// under the given session dirs (cluster prints the rayd logs itself).
class worker_logs_on_failure {
 public:
  void add(const std::string& session_dir) { dirs_.push_back(session_dir); }
  ~worker_logs_on_failure() {
    if (!current_test_failed())
      return;
    std::ostringstream os;
    for (const auto& d : dirs_) {
      std::error_code ec;
      for (auto it = std::filesystem::directory_iterator(d + "/workers", ec);
           !ec && it != std::filesystem::directory_iterator(); it.increment(ec)) {
        std::string t = tail_file(it->path().string(), 30);
        if (!t.empty())
          os << "---- " << it->path().string() << " (tail) ----\n" << t << "\n";
      }
    }
    std::cerr << os.str() << std::flush;
  }

 private:
  std::vector<std::string> dirs_;
};

// `{"n<i>": 1}` for --resources.
inline std::string node_resource(int i, const std::string& more = "") {
  return "{\"n" + std::to_string(i) + "\": 1" + (more.empty() ? "" : ", " + more) + "}";
}


// Names of the files in `dir` starting with `prefix` (ignoring *.tmp*).
inline std::vector<std::string> files_with_prefix(const std::string& dir,
                                                  const std::string& prefix) {
  std::vector<std::string> out;
  std::error_code ec;
  for (auto it = std::filesystem::directory_iterator(dir, ec);
       !ec && it != std::filesystem::directory_iterator(); it.increment(ec)) {
    std::string n = it->path().filename().string();
    if (n.rfind(prefix, 0) == 0 && n.find(".tmp") == std::string::npos)
      out.push_back(n);
  }
  return out;
}

}  // namespace rayd::integration
