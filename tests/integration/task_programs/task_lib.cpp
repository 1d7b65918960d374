// A prebuilt task library: its functions are registered when a worker
// dlopens it (init_options::code_search_path), not linked into the driver.
#include <stdexcept>
#include <string>

#include <rayd/rayd.hpp>

int lib_triple(int x) {
  return 3 * x;
}

std::string lib_greet(std::string who) {
  return "hello, " + who + " (from the task library)";
}

RAYD_REMOTE(lib_triple, lib_greet);

// An actor class for `rayctl actor create/call` (tests/integration/scripting_test.cpp).
class LibCounter {
public:
  explicit LibCounter(long start) : value_(start) {
  }
  long add(long n) {
    value_ += n;
    return value_;
  }
  long value() const {
    return value_;
  }
  std::string tag(std::string who, bool loud) const {
    return (loud ? "HELLO " : "hello ") + who + " at " + std::to_string(value_);
  }
  long fail(std::string why) {
    throw std::runtime_error(why);
  }

private:
  long value_;
};
RAYD_ACTOR(LibCounter, (long), add, value, tag, fail);
