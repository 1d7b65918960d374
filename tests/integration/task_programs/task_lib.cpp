// A prebuilt task library: its functions are registered when a worker
// dlopens it (init_options::code_search_path), not linked into the driver.
#include <string>

#include <rayd/rayd.hpp>

int lib_triple(int x) {
  return 3 * x;
}

std::string lib_greet(std::string who) {
  return "hello, " + who + " (from the task library)";
}

RAYD_REMOTE(lib_triple, lib_greet);
