#pragma once
// What the test driver programs (task_driver.cpp, actor_driver.cpp) share:
// their key=value arguments and the files they signal the test through.

#include <unistd.h>

#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <fstream>
#include <map>
#include <string>
#include <thread>

namespace rayd::test_programs {

using args_t = std::map<std::string, std::string>;

inline std::string arg(const args_t& a, const std::string& key, const std::string& def = "") {
  auto i = a.find(key);
  return i == a.end() ? def : i->second;
}

inline uint64_t num(const args_t& a, const std::string& key, uint64_t def) {
  auto i = a.find(key);
  return i == a.end() ? def : std::strtoull(i->second.c_str(), nullptr, 10);
}

inline bool exists(const std::string& path) {
  return ::access(path.c_str(), F_OK) == 0;
}

/// Writes `content` to `path` atomically (a reader never sees half of it).
inline void publish(const std::string& path, const std::string& content) {
  auto tmp = path + ".tmp" + std::to_string(::getpid());
  {
    std::ofstream out(tmp, std::ios::trunc);
    out << content;
  }
  std::rename(tmp.c_str(), path.c_str());
}

/// Blocks until `path` exists (the test's signal); false after `limit`.
inline bool await_file(const std::string& path, std::chrono::milliseconds limit) {
  auto deadline = std::chrono::steady_clock::now() + limit;
  while (!exists(path)) {
    if (std::chrono::steady_clock::now() > deadline)
      return false;
    std::this_thread::sleep_for(std::chrono::milliseconds{10});
  }
  return true;
}

} // namespace rayd::test_programs
