#pragma once
// The API port's TLS material, read and checked before anything starts
// (docs/architecture.md, "TLS"). Plain values: the daemon checks the head's
// pair at start-up (exit 2 on a bad file), the gateway builds its kj
// TlsContext from the PEM text, and clients check a CA file once.
//
// Thread rules: free functions without shared state (OpenSSL 3 is
// thread-safe without set-up).

#include <string>

#include <caf/expected.hpp>

namespace rayd::rpc {

/// A server's certificate (chain) and private key, as PEM text.
struct tls_pair {
  std::string cert_pem;
  std::string key_pem;
};

/// Reads `cert_file` and `key_file` and checks that the certificate parses,
/// the key parses (unencrypted) and the key belongs to the certificate.
/// Errors: errc::invalid_argument naming the file and what is wrong.
caf::expected<tls_pair> load_tls_pair(const std::string& cert_file,
                                      const std::string& key_file);

/// Reads a CA file (one or more PEM certificates) and checks that it parses.
/// Errors: errc::invalid_argument naming the file.
caf::expected<std::string> load_tls_ca(const std::string& ca_file);

} // namespace rayd::rpc
