// The smallest actor: a counter living in a worker process of the cluster.
// Calls from this program run in the order they are made; a second program
// finds the counter by name while it lives.
//
//   ./counter [increments]        (default 1000)
//
// With RAYD_ADDRESS set (or a local cluster running) it uses that cluster;
// with none it starts an embedded one for its own lifetime.

#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <vector>

#include <rayd/rayd.hpp>

class Counter {
public:
  explicit Counter(long start) : value_(start) {
  }
  long add(long n) {
    value_ += n;
    return value_;
  }
  long value() const {
    return value_;
  }

private:
  long value_;
};
RAYD_ACTOR(Counter, (long), add, value);

int main(int argc, char** argv) {
  rayd::init(); // first thing in main: in a worker process it serves actors instead
  long increments = argc > 1 ? std::strtol(argv[1], nullptr, 10) : 1000;
  auto t0 = std::chrono::steady_clock::now();
  auto counter = rayd::actor<Counter>(0L).name("example-counter").remote();
  std::vector<rayd::object_ref<long>> steps;
  for (long i = 0; i < increments; ++i)
    steps.push_back(counter.task(&Counter::add).remote(1L));
  // In order: the i-th call saw i+1.
  auto seen = rayd::get(steps);
  bool in_order = true;
  for (long i = 0; i < increments; ++i)
    in_order = in_order && seen[static_cast<std::size_t>(i)] == i + 1;
  // Found by name, as another program would.
  auto same = rayd::get_actor<Counter>("example-counter");
  long total = rayd::get(same.task(&Counter::value).remote());
  double ms = std::chrono::duration<double, std::milli>(std::chrono::steady_clock::now() - t0)
                .count();
  std::printf("counter = %ld after %ld calls (%s), %.1f ms\n", total, increments,
              in_order ? "in call order" : "OUT OF ORDER", ms);
  rayd::kill(counter);
  rayd::shutdown();
  return total == increments && in_order ? 0 : 1;
}
