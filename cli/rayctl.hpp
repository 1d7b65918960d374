#pragma once
// rayctl's commands, as plain functions over a connected API client. Kept
// free of CLI11 (only rayctl_main.cpp includes it).

#include <string>

namespace rayd::cli {

struct rayctl_target {
  std::string address;    // --address
  std::string token;      // --token
  std::string token_file; // --token-file
};

/// Each returns the process exit code: 0 ok, 1 failure (one line on stderr).
int rayctl_status(const rayctl_target& t, bool json);
int rayctl_nodes(const rayctl_target& t, bool json);
int rayctl_kv_put(const rayctl_target& t, const std::string& ns,
                  const std::string& key, const std::string& value);
int rayctl_kv_get(const rayctl_target& t, const std::string& ns,
                  const std::string& key);
int rayctl_kv_del(const rayctl_target& t, const std::string& ns,
                  const std::string& key);
int rayctl_kv_list(const rayctl_target& t, const std::string& ns,
                   const std::string& prefix, bool json);

} // namespace rayd::cli
