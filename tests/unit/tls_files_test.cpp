// load_tls_pair / load_tls_ca (schemas/tls_files.hpp): what the head checks
// before starting and a client before connecting. Keys and certificates are
// made in-process with OpenSSL (EC P-256: fast), written as PEM files.

#define BOOST_TEST_MODULE tls_files
#include <boost/test/unit_test.hpp>

#include <cstdio>
#include <filesystem>
#include <fstream>
#include <string>

#include <unistd.h>

#include <openssl/evp.h>
#include <openssl/pem.h>
#include <openssl/x509.h>

#include "common/error.hpp"
#include "schemas/tls_files.hpp"

namespace fs = std::filesystem;
using rayd::rpc::load_tls_ca;
using rayd::rpc::load_tls_pair;

namespace {

struct files {
  fs::path dir;
  files() {
    dir = fs::temp_directory_path()
          / ("rayd_tls_files_" + std::to_string(::getpid()) + "_"
             + std::to_string(reinterpret_cast<uintptr_t>(this)));
    fs::create_directories(dir);
  }
  ~files() {
    std::error_code ec;
    fs::remove_all(dir, ec);
  }
  std::string path(const std::string& name) const {
    return (dir / name).string();
  }
};

EVP_PKEY* new_key() {
  return EVP_EC_gen("P-256");
}

/// A self-signed certificate for `key`, CN=127.0.0.1.
X509* self_signed(EVP_PKEY* key) {
  X509* x = X509_new();
  X509_set_version(x, 2);
  ASN1_INTEGER_set(X509_get_serialNumber(x), 1);
  X509_gmtime_adj(X509_getm_notBefore(x), 0);
  X509_gmtime_adj(X509_getm_notAfter(x), 3600);
  X509_set_pubkey(x, key);
  auto* name = X509_get_subject_name(x);
  X509_NAME_add_entry_by_txt(name, "CN", MBSTRING_ASC,
                             reinterpret_cast<const unsigned char*>("127.0.0.1"), -1, -1, 0);
  X509_set_issuer_name(x, name);
  X509_sign(x, key, EVP_sha256());
  return x;
}

void write_cert(const std::string& path, X509* x) {
  FILE* f = std::fopen(path.c_str(), "w");
  PEM_write_X509(f, x);
  std::fclose(f);
}

void write_key(const std::string& path, EVP_PKEY* k, const char* password = nullptr) {
  FILE* f = std::fopen(path.c_str(), "w");
  if (password == nullptr)
    PEM_write_PrivateKey(f, k, nullptr, nullptr, 0, nullptr, nullptr);
  else
    PEM_write_PrivateKey(f, k, EVP_aes_128_cbc(),
                         reinterpret_cast<const unsigned char*>(password),
                         static_cast<int>(std::string{password}.size()), nullptr, nullptr);
  std::fclose(f);
}

void write_text(const std::string& path, const std::string& text) {
  std::ofstream{path} << text;
}

struct pki : files {
  std::string cert, key, other_key, locked_key;
  pki() {
    EVP_PKEY* k = new_key();
    EVP_PKEY* k2 = new_key();
    X509* x = self_signed(k);
    cert = path("cert.pem");
    key = path("key.pem");
    other_key = path("other.key");
    locked_key = path("locked.key");
    write_cert(cert, x);
    write_key(key, k);
    write_key(other_key, k2);
    write_key(locked_key, k, "secret");
    X509_free(x);
    EVP_PKEY_free(k);
    EVP_PKEY_free(k2);
  }
};

bool says(const caf::error& err, const std::string& what) {
  return rayd::describe(err).find(what) != std::string::npos;
}

} // namespace

BOOST_FIXTURE_TEST_CASE(a_matching_pair_loads, pki) {
  auto p = load_tls_pair(cert, key);
  BOOST_REQUIRE(p);
  BOOST_CHECK(p->cert_pem.find("BEGIN CERTIFICATE") != std::string::npos);
  BOOST_CHECK(p->key_pem.find("PRIVATE KEY") != std::string::npos);
}

BOOST_FIXTURE_TEST_CASE(a_key_of_another_certificate_is_refused, pki) {
  auto p = load_tls_pair(cert, other_key);
  BOOST_REQUIRE(!p);
  BOOST_CHECK(rayd::code_of(p.error()) == rayd::errc::invalid_argument);
  BOOST_CHECK_MESSAGE(says(p.error(), "is not the key of the certificate in " + cert),
                      rayd::describe(p.error()));
}

BOOST_FIXTURE_TEST_CASE(an_encrypted_key_is_refused_without_a_prompt, pki) {
  auto p = load_tls_pair(cert, locked_key);
  BOOST_REQUIRE(!p);
  BOOST_CHECK_MESSAGE(says(p.error(), "holds no unencrypted PEM private key"),
                      rayd::describe(p.error()));
}

BOOST_FIXTURE_TEST_CASE(missing_and_non_pem_files_are_named, pki) {
  auto missing = load_tls_pair(path("nope.pem"), key);
  BOOST_REQUIRE(!missing);
  BOOST_CHECK(says(missing.error(), "cannot read the --tls-cert file " + path("nope.pem")));
  write_text(path("junk.pem"), "not a certificate\n");
  auto junk = load_tls_pair(path("junk.pem"), key);
  BOOST_REQUIRE(!junk);
  BOOST_CHECK(says(junk.error(), "--tls-cert " + path("junk.pem") + " holds no PEM certificate"));
  // The key where the certificate should be, and the other way round.
  auto swapped = load_tls_pair(key, cert);
  BOOST_REQUIRE(!swapped);
  BOOST_CHECK(says(swapped.error(), "holds no PEM certificate"));
}

BOOST_FIXTURE_TEST_CASE(ca_files, pki) {
  auto ok = load_tls_ca(cert);
  BOOST_REQUIRE(ok);
  BOOST_CHECK(ok->find("BEGIN CERTIFICATE") != std::string::npos);
  auto missing = load_tls_ca(path("nope.pem"));
  BOOST_REQUIRE(!missing);
  BOOST_CHECK(says(missing.error(), "cannot read the TLS CA file " + path("nope.pem")));
  auto not_cert = load_tls_ca(key);
  BOOST_REQUIRE(!not_cert);
  BOOST_CHECK(says(not_cert.error(), "the TLS CA file " + key + " holds no PEM certificate"));
}
