// Map-reduce word count over a directory of text files. The texts become
// objects (rayd::put), one map task per file counts its words, and merge
// tasks combine the counts pairwise in a tree: every task takes object refs,
// so the data moves between tasks (and nodes) without passing through the
// driver until the final result.
//
//   ./wordcount [DIR] [top N]      (default: examples/jobs/wordcount/texts, 10)

#include <algorithm>
#include <cctype>
#include <cstdio>
#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <iterator>
#include <map>
#include <string>
#include <vector>

#include <rayd/rayd.hpp>

using counts = std::map<std::string, uint64_t>;

counts count_words(const std::string& text) {
  counts out;
  std::string word;
  for (char c : text + " ") {
    if (std::isalpha(static_cast<unsigned char>(c))) {
      word += static_cast<char>(std::tolower(static_cast<unsigned char>(c)));
    } else if (!word.empty()) {
      ++out[word];
      word.clear();
    }
  }
  return out;
}

counts merge(const counts& a, const counts& b) {
  counts out = a;
  for (auto& [w, n] : b)
    out[w] += n;
  return out;
}
RAYD_REMOTE(count_words, merge);

int main(int argc, char** argv) {
  rayd::init(); // first thing in main: in a worker process it serves tasks instead
  std::string dir = argc > 1 ? argv[1] : "examples/jobs/wordcount/texts";
  std::size_t top = argc > 2 ? std::strtoul(argv[2], nullptr, 10) : 10;
  std::vector<std::string> files;
  for (auto& e : std::filesystem::directory_iterator(dir))
    if (e.is_regular_file())
      files.push_back(e.path().string());
  std::sort(files.begin(), files.end());
  if (files.empty()) {
    std::fprintf(stderr, "wordcount: no files in %s\n", dir.c_str());
    return 1;
  }
  // Map: one task per file, its text passed as an object.
  std::vector<rayd::object_ref<counts>> level;
  for (auto& f : files) {
    std::ifstream in{f, std::ios::binary};
    std::string text{std::istreambuf_iterator<char>{in}, std::istreambuf_iterator<char>{}};
    level.push_back(rayd::task(count_words).remote(rayd::put(text)));
  }
  // Reduce: merge pairwise until one result is left.
  while (level.size() > 1) {
    std::vector<rayd::object_ref<counts>> next;
    for (std::size_t i = 0; i + 1 < level.size(); i += 2)
      next.push_back(rayd::task(merge).remote(level[i], level[i + 1]));
    if (level.size() % 2 == 1)
      next.push_back(level.back());
    level = std::move(next);
  }
  auto total = rayd::get(level[0]);
  std::vector<std::pair<uint64_t, std::string>> ranked;
  uint64_t words = 0;
  for (auto& [w, n] : total) {
    ranked.emplace_back(n, w);
    words += n;
  }
  std::sort(ranked.begin(), ranked.end(),
            [](auto& a, auto& b) { return a.first != b.first ? a.first > b.first : a.second < b.second; });
  std::printf("%zu files, %llu words, %zu distinct\n", files.size(),
              static_cast<unsigned long long>(words), total.size());
  for (std::size_t i = 0; i < ranked.size() && i < top; ++i)
    std::printf("%8llu %s\n", static_cast<unsigned long long>(ranked[i].first),
                ranked[i].second.c_str());
  rayd::shutdown();
  return 0;
}
