#pragma once
// Small helpers shared by every binary: wall-clock time, ids, host:port
// parsing, JSON flag parsing, machine resource detection.

#include <cstdint>
#include <map>
#include <string>
#include <string_view>

#include <caf/expected.hpp>

#include "common/resources.hpp"

namespace rayd {


/// Milliseconds since the Unix epoch (wall clock; comparable across processes
/// on one host, which the tests rely on).
int64_t now_ms();

/// `n` random bytes from the kernel's CSPRNG, hex-encoded (2n characters).
std::string random_hex(std::size_t n);

struct host_port {
  std::string host;
  uint16_t port = 0;
  std::string to_string() const;
};

/// Parses "HOST:PORT" (PORT 0..65535; "[v6]:port" accepted).
/// Errors: errc::invalid_argument naming `what` and the offending text.
caf::expected<host_port> parse_host_port(std::string_view text,
                                         std::string_view what = "address");

/// Parses a JSON object of non-negative numbers, e.g. '{"GPU": 2}'.
/// Errors name `flag` (e.g. "--resources: expected a JSON object ...").
caf::expected<resource_map> parse_resources_json(std::string_view text,
                                                 std::string_view flag);

/// Parses a JSON object of strings, e.g. '{"zone": "a"}'.
caf::expected<label_map> parse_labels_json(std::string_view text,
                                           std::string_view flag);

/// Cores this process may run on (sched_getaffinity), at least 1.
int detect_cpus();
/// NVIDIA devices visible as /dev/nvidia<N>, else 0.
int detect_gpus();
/// Physical memory in bytes.
double detect_memory_bytes();

/// This kernel's boot id (/proc/sys/kernel/random/boot_id; "" if unknown):
/// equal in two processes iff they run on the same kernel, so a pid one of
/// them names can be looked up by the other.
const std::string& boot_id();

/// The host's name (gethostname), "localhost" if unavailable.
std::string host_name();

/// First non-loopback IPv4 address of an interface that is up, else
/// "127.0.0.1".
std::string primary_ipv4();


} // namespace rayd
