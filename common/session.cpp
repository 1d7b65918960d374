#include "common/session.hpp"

#include <sys/stat.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <cstdlib>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <sstream>

#include <nlohmann/json.hpp>

#include "common/error.hpp"
#include "common/token.hpp"
#include "common/util.hpp"

namespace fs = std::filesystem;

namespace rayd {

std::string rayd_tmpdir() {
  if (auto env = std::getenv("RAYD_TMPDIR"); env != nullptr && *env != '\0')
    return env;
  return "/tmp/rayd";
}

caf::error ensure_dir(const std::string& dir) {
  std::error_code ec;
  fs::create_directories(dir, ec);
  if (ec)
    return make_error(errc::storage_error,
                      "cannot create directory " + dir + ": " + ec.message());
  if (!fs::is_directory(dir, ec))
    return make_error(errc::storage_error, dir + " is not a directory");
  return caf::none;
}

caf::expected<std::string> make_default_session_dir() {
  auto base = rayd_tmpdir();
  if (auto err = ensure_dir(base))
    return err;
  auto t = std::time(nullptr);
  std::tm tm{};
  localtime_r(&t, &tm);
  char stamp[64];
  std::strftime(stamp, sizeof(stamp), "%Y-%m-%d_%H-%M-%S", &tm);
  auto name = std::string{"session_"} + stamp + "_" + std::to_string(getpid());
  auto dir = base + "/" + name;
  if (auto err = ensure_dir(dir))
    return err;
  // Replace the link atomically: make a new one, rename over the old.
  auto link = base + "/session_latest";
  auto tmp_link = link + ".tmp" + std::to_string(getpid());
  std::error_code ec;
  fs::remove(tmp_link, ec);
  fs::create_directory_symlink(name, tmp_link, ec);
  if (!ec)
    fs::rename(tmp_link, link, ec);
  return dir;
}

caf::error write_node_file(const std::string& session_dir, const node_file& nf) {
  nlohmann::json j{{"node_id", nf.node_id},
                   {"is_head", nf.is_head},
                   {"pid", nf.pid},
                   {"pid_start_ticks", nf.pid_start_ticks},
                   {"start_time_ms", nf.start_time_ms},
                   {"cluster_address", nf.cluster_address},
                   {"api_address", nf.api_address},
                   {"api_tls", nf.api_tls},
                   {"api_tls_cert", nf.api_tls_cert},
                   {"node_address", nf.node_address},
                   {"session_dir", nf.session_dir},
                   {"cluster_id", nf.cluster_id}};
  auto path = session_dir + "/node.json";
  auto tmp = path + ".tmp";
  {
    std::ofstream out{tmp, std::ios::trunc};
    out << j.dump(2) << "\n";
    if (!out)
      return make_error(errc::storage_error, "cannot write " + tmp);
  }
  if (::rename(tmp.c_str(), path.c_str()) != 0)
    return make_error(errc::storage_error,
                      "cannot rename " + tmp + ": " + std::strerror(errno));
  return caf::none;
}

caf::expected<node_file> read_node_file(const std::string& session_dir) {
  auto path = session_dir + "/node.json";
  std::ifstream in{path};
  if (!in)
    return make_error(errc::not_found, "no node.json in " + session_dir);
  auto j = nlohmann::json::parse(in, nullptr, false);
  if (j.is_discarded() || !j.is_object())
    return make_error(errc::invalid_argument, path + " is not valid JSON");
  node_file nf;
  try {
    nf.node_id = j.value("node_id", "");
    nf.is_head = j.value("is_head", false);
    nf.pid = j.value("pid", 0);
    nf.pid_start_ticks = j.value("pid_start_ticks", uint64_t{0});
    nf.start_time_ms = j.value("start_time_ms", int64_t{0});
    nf.cluster_address = j.value("cluster_address", "");
    nf.api_address = j.value("api_address", "");
    nf.api_tls = j.value("api_tls", false);
    nf.api_tls_cert = j.value("api_tls_cert", "");
    nf.node_address = j.value("node_address", "");
    nf.session_dir = j.value("session_dir", session_dir);
    nf.cluster_id = j.value("cluster_id", "");
  } catch (const std::exception& e) {
    return make_error(errc::invalid_argument, path + ": " + e.what());
  }
  return nf;
}

std::vector<std::pair<std::string, node_file>> local_head_sessions() {
  std::vector<std::pair<std::string, node_file>> result;
  auto base = rayd_tmpdir();
  std::error_code ec;
  std::string latest;
  if (auto target = fs::read_symlink(base + "/session_latest", ec); !ec)
    latest = (fs::path{base} / target).lexically_normal().string();
  std::vector<std::pair<fs::file_time_type, std::string>> dirs;
  for (auto& e : fs::directory_iterator{base, ec}) {
    auto name = e.path().filename().string();
    // Any directory directly under $RAYD_TMPDIR may be a head session
    // (default ones are named session_*; --session-dir may choose others).
    if (name == "session_latest" || e.is_symlink() || !e.is_directory())
      continue;
    dirs.emplace_back(fs::last_write_time(e.path(), ec), e.path().string());
  }
  // Heads started by the cluster launcher (`rayctl up`): clusters/<name>/head.
  for (auto& e : fs::directory_iterator{base + "/clusters", ec}) {
    auto head = e.path() / "head";
    if (!e.is_symlink() && e.is_directory() && fs::is_directory(head, ec))
      dirs.emplace_back(fs::last_write_time(head, ec), head.string());
  }
  std::sort(dirs.begin(), dirs.end(), std::greater<>{});
  if (!latest.empty()) {
    auto i = std::find_if(dirs.begin(), dirs.end(),
                          [&](auto& d) { return d.second == latest; });
    if (i != dirs.end())
      std::rotate(dirs.begin(), i, i + 1);
  }
  for (auto& [_, dir] : dirs)
    if (auto nf = read_node_file(dir); nf && nf->is_head)
      result.emplace_back(dir, std::move(*nf));
  return result;
}

namespace {

/// "rayd://HOST:PORT" (a remote client's address of the same port) or
/// "HOST:PORT" → "HOST:PORT".
std::string without_scheme(const std::string& address) {
  const std::string scheme = "rayd://";
  return address.rfind(scheme, 0) == 0 ? address.substr(scheme.size()) : address;
}

} // namespace

std::optional<std::string> find_local_token(const std::string& api_address) {
  auto address = without_scheme(api_address);
  for (auto& [dir, nf] : local_head_sessions())
    if (nf.api_address == address)
      if (auto tok = read_token_file(dir + "/auth_token"))
        return *tok;
  return std::nullopt;
}

std::optional<std::string> find_local_tls_cert(const std::string& api_address) {
  auto address = without_scheme(api_address);
  for (auto& [dir, nf] : local_head_sessions())
    if (nf.api_address == address && nf.api_tls && !nf.api_tls_cert.empty())
      return nf.api_tls_cert;
  return std::nullopt;
}

std::optional<std::string> find_local_head_session(const std::string& cluster_address) {
  for (auto& [dir, nf] : local_head_sessions())
    if (nf.cluster_address == cluster_address && process_start_ticks(nf.pid) != 0)
      return dir;
  return std::nullopt;
}

std::vector<std::pair<std::string, node_file>> node_files_under(const std::string& dir) {
  std::vector<std::pair<std::string, node_file>> result;
  std::error_code ec;
  if (auto nf = read_node_file(dir))
    result.emplace_back(dir, std::move(*nf));
  fs::recursive_directory_iterator it{dir, ec}, end;
  for (; !ec && it != end; it.increment(ec)) {
    if (it.depth() > 4) {
      it.disable_recursion_pending();
      continue;
    }
    if (it->is_directory(ec) && !it->is_symlink(ec))
      if (auto nf = read_node_file(it->path().string()))
        result.emplace_back(it->path().string(), std::move(*nf));
  }
  return result;
}

uint64_t process_start_ticks(int pid) {
  if (pid <= 0)
    return 0;
  std::ifstream in{"/proc/" + std::to_string(pid) + "/stat"};
  std::string line;
  if (!std::getline(in, line))
    return 0;
  // The command name (field 2) may contain spaces: skip past its ')'.
  auto close = line.rfind(')');
  if (close == std::string::npos)
    return 0;
  std::istringstream rest{line.substr(close + 2)};
  std::string field;
  // Fields 3..22; field 22 is starttime.
  for (int i = 3; i <= 22; ++i)
    if (!(rest >> field))
      return 0;
  // A zombie has exited already: treat as gone.
  if (line[close + 2] == 'Z')
    return 0;
  return std::stoull(field);
}

} // namespace rayd
