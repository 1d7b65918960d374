#include "common/token.hpp"

#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cerrno>
#include <cstdlib>
#include <cstring>
#include <fstream>
#include <sstream>

#include "common/error.hpp"
#include "common/util.hpp"

namespace rayd {

std::string generate_token() {
  return random_hex(32);
}

bool token_matches(std::string_view expected, std::string_view presented) {
  if (expected.empty() || expected.size() != presented.size())
    return false;
  unsigned char diff = 0;
  for (std::size_t i = 0; i < expected.size(); ++i)
    diff |= static_cast<unsigned char>(expected[i] ^ presented[i]);
  return diff == 0;
}

namespace {

std::string trim(std::string s) {
  auto ws = " \t\r\n";
  auto b = s.find_first_not_of(ws);
  if (b == std::string::npos)
    return {};
  auto e = s.find_last_not_of(ws);
  return s.substr(b, e - b + 1);
}

} // namespace

caf::expected<std::string> read_token_file(const std::string& path) {
  std::ifstream in{path};
  if (!in)
    return make_error(errc::not_found, "cannot read token file " + path + ": "
                                         + std::strerror(errno));
  std::stringstream ss;
  ss << in.rdbuf();
  auto token = trim(ss.str());
  if (token.empty())
    return make_error(errc::invalid_argument, "token file " + path + " is empty");
  return token;
}

caf::error write_token_file(const std::string& path, const std::string& token) {
  auto tmp = path + ".tmp";
  int fd = ::open(tmp.c_str(), O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0600);
  if (fd < 0)
    return make_error(errc::storage_error,
                      "cannot write " + tmp + ": " + std::strerror(errno));
  ::fchmod(fd, 0600);
  auto data = token + "\n";
  auto n = ::write(fd, data.data(), data.size());
  ::close(fd);
  if (n != static_cast<ssize_t>(data.size()))
    return make_error(errc::storage_error, "cannot write " + tmp);
  if (::rename(tmp.c_str(), path.c_str()) != 0)
    return make_error(errc::storage_error,
                      "cannot rename " + tmp + ": " + std::strerror(errno));
  return caf::none;
}

caf::expected<std::string> token_from_flags_or_env(const std::string& flag_token,
                                                   const std::string& flag_token_file) {
  if (!flag_token.empty())
    return flag_token;
  if (!flag_token_file.empty())
    return read_token_file(flag_token_file);
  if (auto env = std::getenv("RAYD_TOKEN"); env != nullptr && *env != '\0')
    return std::string{env};
  if (auto env = std::getenv("RAYD_TOKEN_FILE"); env != nullptr && *env != '\0')
    return read_token_file(env);
  return std::string{};
}

} // namespace rayd
