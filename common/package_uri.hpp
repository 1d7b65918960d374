#pragma once
// Names of content-addressed packages (working_dir archives, shipped code):
// "gcs://<sha256 as 64 lower-case hex>.tar.gz". The API gateway hands them
// out, the job manager checks them, node agents fetch by them.

#include <optional>
#include <string>

namespace rayd {

/// Whether `h` is a SHA-256 in lower-case hex (64 characters).
bool is_sha256_hex(const std::string& h);

/// "gcs://<64 hex>.tar.gz" → the hash; nullopt for anything else.
std::optional<std::string> package_hash(const std::string& uri);

/// The URI of a package with this hash.
std::string package_uri(const std::string& hash);

} // namespace rayd
