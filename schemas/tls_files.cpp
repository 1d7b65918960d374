#include "schemas/tls_files.hpp"

#include <fstream>
#include <memory>
#include <sstream>

#include <openssl/bio.h>
#include <openssl/err.h>
#include <openssl/pem.h>
#include <openssl/x509.h>

#include "common/error.hpp"

namespace rayd::rpc {

namespace {

caf::expected<std::string> read_file(const std::string& path, const char* what) {
  std::ifstream in{path, std::ios::binary};
  if (!in)
    return make_error(errc::invalid_argument,
                      std::string{"cannot read the "} + what + " file " + path);
  std::ostringstream ss;
  ss << in.rdbuf();
  return ss.str();
}

/// The last OpenSSL error as text (and clears the queue).
std::string openssl_reason() {
  unsigned long last = 0;
  while (auto e = ERR_get_error())
    last = e;
  if (last == 0)
    return "not PEM";
  char buf[256];
  ERR_error_string_n(last, buf, sizeof(buf));
  return buf;
}

using bio_ptr = std::unique_ptr<BIO, decltype(&BIO_free)>;
using x509_ptr = std::unique_ptr<X509, decltype(&X509_free)>;
using pkey_ptr = std::unique_ptr<EVP_PKEY, decltype(&EVP_PKEY_free)>;

bio_ptr mem_bio(const std::string& text) {
  return bio_ptr{BIO_new_mem_buf(text.data(), static_cast<int>(text.size())), &BIO_free};
}

/// A password callback that refuses: an encrypted key is an error, never a
/// prompt on the terminal of a daemon.
int no_password(char*, int, int, void*) {
  return -1;
}

} // namespace

caf::expected<tls_pair> load_tls_pair(const std::string& cert_file,
                                      const std::string& key_file) {
  auto cert = read_file(cert_file, "--tls-cert");
  if (!cert)
    return cert.error();
  auto key = read_file(key_file, "--tls-key");
  if (!key)
    return key.error();
  ERR_clear_error();
  auto cb = mem_bio(*cert);
  x509_ptr x{PEM_read_bio_X509(cb.get(), nullptr, no_password, nullptr), &X509_free};
  if (!x)
    return make_error(errc::invalid_argument, "--tls-cert " + cert_file
                                                + " holds no PEM certificate ("
                                                + openssl_reason() + ")");
  auto kb = mem_bio(*key);
  pkey_ptr k{PEM_read_bio_PrivateKey(kb.get(), nullptr, no_password, nullptr),
             &EVP_PKEY_free};
  if (!k)
    return make_error(errc::invalid_argument,
                      "--tls-key " + key_file
                        + " holds no unencrypted PEM private key (" + openssl_reason() + ")");
  if (X509_check_private_key(x.get(), k.get()) != 1) {
    ERR_clear_error();
    return make_error(errc::invalid_argument, "--tls-key " + key_file
                                                + " is not the key of the certificate in "
                                                + cert_file);
  }
  return tls_pair{std::move(*cert), std::move(*key)};
}

caf::expected<std::string> load_tls_ca(const std::string& ca_file) {
  auto ca = read_file(ca_file, "TLS CA");
  if (!ca)
    return ca.error();
  ERR_clear_error();
  auto b = mem_bio(*ca);
  x509_ptr x{PEM_read_bio_X509(b.get(), nullptr, no_password, nullptr), &X509_free};
  if (!x)
    return make_error(errc::invalid_argument, "the TLS CA file " + ca_file
                                                + " holds no PEM certificate ("
                                                + openssl_reason() + ")");
  return ca;
}

} // namespace rayd::rpc
