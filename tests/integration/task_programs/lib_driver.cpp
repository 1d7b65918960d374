// A driver that calls functions it does not contain: they live in a task
// library ($TASK_LIB) shipped with code_search_path. Prints one JSON line.
#include <cstdlib>
#include <iostream>

#include <rayd/rayd.hpp>

int main() {
  rayd::init_options opts;
  if (const char* lib = std::getenv("TASK_LIB"))
    opts.code_search_path = {lib};
  rayd::init(opts); // first: in a worker process this serves tasks
  int tripled = rayd::get(rayd::task<int>("lib_triple").remote(14));
  auto greeting = rayd::get(rayd::task<std::string>("lib_greet").remote(std::string("rayd")));
  std::cout << "{\"tripled\": " << tripled << ", \"greeting\": \"" << greeting << "\"}"
            << std::endl;
  rayd::shutdown();
  return 0;
}
