// Monte-Carlo estimate of pi over many tasks: each task throws `samples`
// random darts at the unit square and counts those inside the quarter
// circle; the driver sums the counts.
//
//   ./pi [tasks] [samples per task]        (default 200 tasks x 1,000,000)
//
// With RAYD_ADDRESS set (or a local cluster running) it uses that cluster;
// with none it starts an embedded one for its own lifetime.

#include <chrono>
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <random>
#include <vector>

#include <rayd/rayd.hpp>

uint64_t darts_inside(uint64_t seed, uint64_t samples) {
  std::mt19937_64 rng{seed};
  std::uniform_real_distribution<double> unit{0.0, 1.0};
  uint64_t inside = 0;
  for (uint64_t i = 0; i < samples; ++i) {
    double x = unit(rng), y = unit(rng);
    inside += x * x + y * y <= 1.0 ? 1 : 0;
  }
  return inside;
}
RAYD_REMOTE(darts_inside);

int main(int argc, char** argv) {
  rayd::init(); // first thing in main: in a worker process it serves tasks instead
  uint64_t tasks = argc > 1 ? std::strtoull(argv[1], nullptr, 10) : 200;
  uint64_t samples = argc > 2 ? std::strtoull(argv[2], nullptr, 10) : 1000000;
  auto t0 = std::chrono::steady_clock::now();
  std::vector<rayd::object_ref<uint64_t>> parts;
  for (uint64_t i = 0; i < tasks; ++i)
    parts.push_back(rayd::task(darts_inside).remote(i + 1, samples));
  uint64_t inside = 0;
  for (auto n : rayd::get(parts))
    inside += n;
  double secs = std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
  double pi = 4.0 * static_cast<double>(inside) / static_cast<double>(tasks * samples);
  std::printf("pi ~= %.6f from %llu darts in %llu tasks (%.2f s)\n", pi,
              static_cast<unsigned long long>(tasks * samples),
              static_cast<unsigned long long>(tasks), secs);
  rayd::shutdown();
  return 0;
}
