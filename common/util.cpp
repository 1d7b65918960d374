#include "common/util.hpp"

#include <arpa/inet.h>
#include <ifaddrs.h>
#include <net/if.h>
#include <sched.h>
#include <unistd.h>

#include <chrono>
#include <cmath>
#include <cstdio>
#include <filesystem>
#include <fstream>
#include <regex>

#include <nlohmann/json.hpp>

#include "common/error.hpp"

namespace rayd {

int64_t now_ms() {
  using namespace std::chrono;
  return duration_cast<milliseconds>(system_clock::now().time_since_epoch())
    .count();
}

std::string random_hex(std::size_t n) {
  std::string bytes(n, '\0');
  std::ifstream in{"/dev/urandom", std::ios::binary};
  in.read(bytes.data(), static_cast<std::streamsize>(n));
  static constexpr char digits[] = "0123456789abcdef";
  std::string out;
  out.reserve(2 * n);
  for (unsigned char c : bytes) {
    out += digits[c >> 4];
    out += digits[c & 0xF];
  }
  return out;
}

std::string host_port::to_string() const {
  if (host.find(':') != std::string::npos)
    return "[" + host + "]:" + std::to_string(port);
  return host + ":" + std::to_string(port);
}

caf::expected<host_port> parse_host_port(std::string_view text,
                                         std::string_view what) {
  auto bad = [&](const std::string& why) {
    return make_error(errc::invalid_argument,
                      std::string{what} + " '" + std::string{text}
                        + "': " + why);
  };
  auto colon = text.rfind(':');
  if (colon == std::string_view::npos || colon == 0)
    return bad("expected HOST:PORT");
  std::string host{text.substr(0, colon)};
  if (host.size() > 2 && host.front() == '[' && host.back() == ']')
    host = host.substr(1, host.size() - 2);
  auto port_text = text.substr(colon + 1);
  if (port_text.empty() || port_text.size() > 5)
    return bad("port must be a number 0-65535");
  unsigned long port = 0;
  for (char c : port_text) {
    if (c < '0' || c > '9')
      return bad("port must be a number 0-65535");
    port = port * 10 + static_cast<unsigned long>(c - '0');
  }
  if (port > 65535)
    return bad("port must be a number 0-65535");
  return host_port{std::move(host), static_cast<uint16_t>(port)};
}

namespace {

caf::expected<nlohmann::json> parse_object(std::string_view text,
                                           std::string_view flag) {
  auto j = nlohmann::json::parse(text.begin(), text.end(), nullptr, false);
  if (j.is_discarded())
    return make_error(errc::invalid_argument,
                      std::string{flag} + ": not valid JSON: '"
                        + std::string{text} + "'");
  if (!j.is_object())
    return make_error(errc::invalid_argument,
                      std::string{flag} + ": expected a JSON object, got '"
                        + std::string{text} + "'");
  return j;
}

} // namespace

caf::expected<resource_map> parse_resources_json(std::string_view text,
                                                 std::string_view flag) {
  auto j = parse_object(text, flag);
  if (!j)
    return j.error();
  resource_map out;
  for (auto& [k, v] : j->items()) {
    if (!v.is_number() || !std::isfinite(v.get<double>())
        || v.get<double>() < 0)
      return make_error(errc::invalid_argument,
                        std::string{flag} + ": resource '" + k
                          + "' must be a non-negative number, got "
                          + v.dump());
    if (k.empty())
      return make_error(errc::invalid_argument,
                        std::string{flag} + ": empty resource name");
    out.emplace(k, v.get<double>());
  }
  return out;
}

caf::expected<label_map> parse_labels_json(std::string_view text,
                                           std::string_view flag) {
  auto j = parse_object(text, flag);
  if (!j)
    return j.error();
  label_map out;
  for (auto& [k, v] : j->items()) {
    if (!v.is_string())
      return make_error(errc::invalid_argument,
                        std::string{flag} + ": label '" + k
                          + "' must be a string, got " + v.dump());
    out.emplace(k, v.get<std::string>());
  }
  return out;
}

int detect_cpus() {
  cpu_set_t set;
  CPU_ZERO(&set);
  if (sched_getaffinity(0, sizeof(set), &set) == 0) {
    int n = CPU_COUNT(&set);
    if (n > 0)
      return n;
  }
  long n = sysconf(_SC_NPROCESSORS_ONLN);
  return n > 0 ? static_cast<int>(n) : 1;
}

int detect_gpus() {
  int n = 0;
  std::error_code ec;
  static const std::regex pattern{"nvidia[0-9]+"};
  for (auto& e : std::filesystem::directory_iterator{"/dev", ec})
    if (std::regex_match(e.path().filename().string(), pattern))
      ++n;
  return n;
}

double detect_memory_bytes() {
  return static_cast<double>(sysconf(_SC_PHYS_PAGES))
         * static_cast<double>(sysconf(_SC_PAGESIZE));
}

std::string host_name() {
  char buf[256] = {};
  if (gethostname(buf, sizeof(buf) - 1) != 0 || buf[0] == '\0')
    return "localhost";
  return buf;
}

std::string primary_ipv4() {
  ifaddrs* list = nullptr;
  std::string result = "127.0.0.1";
  if (getifaddrs(&list) != 0)
    return result;
  for (auto* i = list; i != nullptr; i = i->ifa_next) {
    if (i->ifa_addr == nullptr || i->ifa_addr->sa_family != AF_INET)
      continue;
    if ((i->ifa_flags & IFF_UP) == 0 || (i->ifa_flags & IFF_LOOPBACK) != 0)
      continue;
    char buf[INET_ADDRSTRLEN];
    auto* sin = reinterpret_cast<sockaddr_in*>(i->ifa_addr);
    if (inet_ntop(AF_INET, &sin->sin_addr, buf, sizeof(buf)) != nullptr) {
      result = buf;
      break;
    }
  }
  freeifaddrs(list);
  return result;
}

const std::string& boot_id() {
  static const std::string id = [] {
    std::string s;
    std::ifstream{"/proc/sys/kernel/random/boot_id"} >> s;
    return s;
  }();
  return id;
}

} // namespace rayd
