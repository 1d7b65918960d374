// A key-value service actor used by many tasks: word-count tasks (spread
// over the cluster) each count the words of one text and add their counts
// to the shared service through its handle, which travels to them as an
// argument. The service runs calls one at a time, so no update is lost.
//
//   ./kv_service [texts]          (default 64 generated texts)

#include <cstdio>
#include <cstdlib>
#include <functional>
#include <map>
#include <sstream>
#include <string>
#include <vector>

#include <rayd/rayd.hpp>

class KvService {
public:
  KvService() = default;
  /// Adds `counts` to the stored values; returns how many keys it holds.
  std::size_t add_all(std::map<std::string, long> counts) {
    for (auto& [k, v] : counts)
      values_[k] += v;
    return values_.size();
  }
  long get(std::string key) const {
    auto i = values_.find(key);
    return i == values_.end() ? 0 : i->second;
  }
  std::map<std::string, long> top(std::size_t n) const {
    std::multimap<long, std::string, std::greater<>> by_count;
    for (auto& [k, v] : values_)
      by_count.emplace(v, k);
    std::map<std::string, long> out;
    for (auto& [v, k] : by_count) {
      if (out.size() == n)
        break;
      out[k] = v;
    }
    return out;
  }

private:
  std::map<std::string, long> values_;
};
RAYD_ACTOR(KvService, (), add_all, get, top);

/// A task: counts the words of `text` and adds them to the service.
long count_into(rayd::actor_handle<KvService> kv, std::string text) {
  std::map<std::string, long> counts;
  std::istringstream in(text);
  long words = 0;
  for (std::string w; in >> w; ++words)
    ++counts[w];
  rayd::get(kv.task(&KvService::add_all).remote(counts));
  return words;
}
RAYD_REMOTE(count_into);

int main(int argc, char** argv) {
  rayd::init(); // first thing in main: in a worker process it serves instead
  int texts = argc > 1 ? std::atoi(argv[1]) : 64;
  static const char* vocabulary[] = {"actor", "task", "object", "node", "cluster", "head"};
  auto kv = rayd::actor<KvService>().remote();
  std::vector<rayd::object_ref<long>> parts;
  long expected_actor = 0;
  for (int t = 0; t < texts; ++t) {
    std::string text;
    for (int w = 0; w < 100 + t; ++w) {
      const char* word = vocabulary[(t * 7 + w * 3) % 6];
      expected_actor += std::string(word) == "actor" ? 1 : 0;
      text += word;
      text += ' ';
    }
    parts.push_back(rayd::task(count_into).remote(kv, text));
  }
  long words = 0;
  for (long n : rayd::get(parts))
    words += n;
  long actor_count = rayd::get(kv.task(&KvService::get).remote(std::string("actor")));
  std::printf("%d tasks counted %ld words into the service; 'actor' = %ld (expected %ld)\n",
              texts, words, actor_count, expected_actor);
  for (auto& [k, v] : rayd::get(kv.task(&KvService::top).remote(std::size_t{3})))
    std::printf("  %s: %ld\n", k.c_str(), v);
  rayd::shutdown();
  return actor_count == expected_actor ? 0 : 1;
}
