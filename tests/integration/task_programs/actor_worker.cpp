// A worker binary with registered actor classes, for node_actors_test: the
// test's in-process task server starts it as a job's worker process.

#include <chrono>
#include <condition_variable>
#include <cstdlib>
#include <mutex>
#include <stdexcept>
#include <string>
#include <thread>

#include <rayd/rayd.hpp>

namespace {

class Counter {
public:
  explicit Counter(int start) : n_(start) {
    if (start < 0)
      throw std::invalid_argument("negative start");
  }
  int add(int k) {
    return n_ += k;
  }
  int value() const {
    return n_;
  }
  /// True when two calls of this actor are inside at once.
  bool meet() {
    std::unique_lock<std::mutex> lock{mu_};
    ++arrived_;
    cv_.notify_all();
    return cv_.wait_for(lock, std::chrono::seconds(5), [this] { return arrived_ >= 2; });
  }
  /// The worker's environment variable `name` ("" if unset).
  std::string env(const std::string& name) const {
    const char* v = std::getenv(name.c_str());
    return v != nullptr ? v : "";
  }

private:
  int n_;
  std::mutex mu_;
  std::condition_variable cv_;
  int arrived_ = 0;
};

} // namespace

RAYD_ACTOR(Counter, (int), add, value, meet, env);

int main() {
  if (const char* fd = std::getenv("RAYD_WORKER_FD"); fd != nullptr && *fd != '\0')
    rayd::core::run_worker(std::atoi(fd));
  return 2; // only ever run as a worker
}
