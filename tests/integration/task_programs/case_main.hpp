#pragma once
// The main() the test driver programs share (task_driver, actor_driver,
// autoscale_driver, client_driver), and outcome() for their cases.
// `--case NAME key=value...` picks one case, which returns a JSON object; it is printed on one line with "elapsed_ms" (and
// "fatal" when the case threw). Exit 0, 1 when the case threw, 2 for an
// unknown case. rayd::init() is the caller's first line (in a worker process
// it serves and never returns); this shuts the runtime down.

#include <chrono>
#include <functional>
#include <iostream>
#include <map>
#include <string>

#include <nlohmann/json.hpp>
#include <rayd/rayd.hpp>

#include "program_util.hpp"

namespace rayd::test_programs {

using case_fn = nlohmann::json (*)(const args_t&);

/// What `f` threw, as JSON ({"kind": "none"} if it did not): the kind of
/// rayd exception, what(), and a task error's details.
template <class F>
nlohmann::json outcome(F&& f) {
  auto task_fields = [](const char* kind, const rayd::task_error& e) {
    return nlohmann::json{{"kind", kind},
                          {"function", e.function()},
                          {"remote_type", e.remote_type()},
                          {"remote_message", e.remote_message()},
                          {"node_id", e.node_id()},
                          {"what", e.what()}};
  };
  try {
    f();
    return {{"kind", "none"}};
  } catch (const rayd::actor_died_error& e) {
    return task_fields("actor_died_error", e);
  } catch (const rayd::task_error& e) {
    return task_fields("task_error", e);
  } catch (const rayd::connection_error& e) {
    return {{"kind", "connection_error"}, {"what", e.what()}};
  } catch (const rayd::object_lost& e) {
    return {{"kind", "object_lost"}, {"what", e.what()}};
  } catch (const rayd::serialization_error& e) {
    return {{"kind", "serialization_error"}, {"what", e.what()}};
  } catch (const rayd::get_timeout& e) {
    return {{"kind", "get_timeout"}, {"what", e.what()}};
  } catch (const rayd::error& e) {
    return {{"kind", "rayd::error"}, {"what", e.what()}};
  } catch (const std::exception& e) {
    return {{"kind", "std::exception"}, {"what", e.what()}};
  }
}

/// `on_fatal` runs inside the catch block (it may rethrow with `throw;` to
/// look at the exception) and may add fields to the output.
inline int run_case_main(int argc, char** argv, const char* program,
                         const std::map<std::string, case_fn>& cases,
                         const std::function<void(nlohmann::json&)>& on_fatal = {}) {
  std::string name;
  args_t a;
  for (int i = 1; i < argc; ++i) {
    std::string s = argv[i];
    if (s == "--case" && i + 1 < argc)
      name = argv[++i];
    else if (auto eq = s.find('='); eq != std::string::npos)
      a[s.substr(0, eq)] = s.substr(eq + 1);
  }
  auto c = cases.find(name);
  if (c == cases.end()) {
    std::cerr << program << ": unknown --case '" << name << "'\n";
    return 2;
  }
  nlohmann::json out;
  int code = 0;
  auto t0 = std::chrono::steady_clock::now();
  try {
    out = c->second(a);
  } catch (const std::exception& e) {
    out["fatal"] = e.what();
    if (on_fatal)
      on_fatal(out);
    std::cerr << program << ": " << name << ": " << e.what() << "\n";
    code = 1;
  }
  out["elapsed_ms"] = std::chrono::duration_cast<std::chrono::milliseconds>(
                        std::chrono::steady_clock::now() - t0)
                        .count();
  std::cout << out.dump() << std::endl;
  rayd::shutdown();
  return code;
}

} // namespace rayd::test_programs
