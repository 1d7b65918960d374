// See cluster_connect.hpp.

#include "cluster_connect.hpp"

#include <fcntl.h>
#include <signal.h>
#include <sys/prctl.h>
#include <sys/wait.h>
#include <unistd.h>

#include <algorithm>
#include <chrono>
#include <cstdlib>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <sstream>
#include <thread>

#include "common/archive.hpp"
#include "common/error.hpp"
#include "common/session.hpp"
#include "common/token.hpp"
#include "common/util.hpp"
#include "rayd/errors.hpp"
#include "schemas/api_client.hpp"

namespace fs = std::filesystem;

namespace rayd::core {

namespace {
using clock_type = std::chrono::steady_clock;
using namespace std::chrono_literals;
} // namespace

class embedded_cluster {
public:
  static std::unique_ptr<embedded_cluster> start(int num_cpus) {
    auto rayd = find_rayd();
    if (rayd.empty())
      throw connection_error("rayd: no cluster to connect to (no RAYD_ADDRESS, no local "
                             "session) and no rayd binary found to start an embedded one "
                             "(set RAYD_BIN_DIR or put rayd on PATH)");
    char tmpl[] = "/tmp/rayd-embedded-XXXXXX";
    if (::mkdtemp(tmpl) == nullptr)
      throw connection_error(std::string{"rayd: mkdtemp: "} + std::strerror(errno));
    auto c = std::unique_ptr<embedded_cluster>(new embedded_cluster);
    c->dir_ = tmpl;
    auto session = c->dir_ + "/head";
    std::vector<std::string> args{rayd, "--head", "--block", "--port", "0", "--api-port",
                                  "0", "--session-dir", session};
    if (num_cpus > 0) {
      args.push_back("--num-cpus");
      args.push_back(std::to_string(num_cpus));
    }
    pid_t parent = ::getpid();
    pid_t pid = ::fork();
    if (pid < 0)
      throw connection_error(std::string{"rayd: fork: "} + std::strerror(errno));
    if (pid == 0) {
      ::prctl(PR_SET_PDEATHSIG, SIGTERM);
      if (::getppid() != parent)
        ::_exit(1);
      int devnull = ::open("/dev/null", O_RDWR);
      auto log = c->dir_ + "/rayd.out";
      int out = ::open(log.c_str(), O_WRONLY | O_CREAT | O_APPEND, 0600);
      ::dup2(devnull, 0);
      ::dup2(out, 1);
      ::dup2(out, 2);
      ::setenv("RAYD_TMPDIR", c->dir_.c_str(), 1);
      std::vector<char*> argv;
      for (auto& a : args)
        argv.push_back(a.data());
      argv.push_back(nullptr);
      ::execv(argv[0], argv.data());
      ::_exit(127);
    }
    c->pid_ = pid;
    auto deadline = clock_type::now() + 30s;
    while (clock_type::now() < deadline) {
      if (auto nf = read_node_file(session); nf && nf->pid == pid) {
        c->address_ = nf->api_address;
        if (auto tok = read_token_file(session + "/auth_token"))
          c->token_ = *tok;
        return c;
      }
      int status = 0;
      if (::waitpid(pid, &status, WNOHANG) == pid) {
        c->pid_ = -1;
        throw connection_error("rayd: the embedded cluster did not start; see " + c->dir_
                               + "/rayd.out");
      }
      std::this_thread::sleep_for(5ms);
    }
    throw connection_error("rayd: the embedded cluster did not come up within 30 s");
  }

  ~embedded_cluster() {
    if (pid_ > 0) {
      ::kill(pid_, SIGTERM);
      for (int i = 0; i < 500; ++i) {
        if (::waitpid(pid_, nullptr, WNOHANG) == pid_) {
          pid_ = -1;
          break;
        }
        std::this_thread::sleep_for(10ms);
      }
      if (pid_ > 0) {
        ::kill(pid_, SIGKILL);
        ::waitpid(pid_, nullptr, 0);
      }
    }
    std::error_code ec;
    if (!dir_.empty())
      fs::remove_all(dir_, ec);
  }

  const std::string& address() const {
    return address_;
  }
  const std::string& token() const {
    return token_;
  }

private:
  embedded_cluster() = default;

  static std::string find_rayd() {
    std::vector<std::string> dirs;
    if (auto* d = std::getenv("RAYD_BIN_DIR"))
      dirs.push_back(d);
#ifdef RAYD_INSTALL_BINDIR
    dirs.push_back(RAYD_INSTALL_BINDIR);
#endif
#ifdef RAYD_BUILD_BINDIR
    dirs.push_back(RAYD_BUILD_BINDIR);
#endif
    if (auto* path = std::getenv("PATH")) {
      std::stringstream ss{path};
      std::string d;
      while (std::getline(ss, d, ':'))
        dirs.push_back(d);
    }
    for (auto& d : dirs) {
      auto p = d + "/rayd";
      if (::access(p.c_str(), X_OK) == 0)
        return p;
    }
    return {};
  }

  std::string dir_;
  pid_t pid_ = -1;
  std::string address_;
  std::string token_;
};

cluster_connection::cluster_connection() = default;
cluster_connection::cluster_connection(cluster_connection&&) noexcept = default;
cluster_connection& cluster_connection::operator=(cluster_connection&&) noexcept = default;
cluster_connection::~cluster_connection() = default;

namespace {

/// The token init_options or the environment name ("" for none).
std::string explicit_token(const init_options& opts) {
  if (!opts.token.empty())
    return opts.token;
  auto t = token_from_flags_or_env("", opts.token_file);
  if (!t)
    throw connection_error("rayd: " + describe(t.error()));
  return *t;
}

} // namespace

std::string token_for(const init_options& opts, const std::string& address) {
  auto token = explicit_token(opts);
  if (token.empty())
    if (auto local = find_local_token(address))
      token = *local;
  if (token.empty())
    throw connection_error("rayd: no cluster token for " + address
                           + ": set RAYD_TOKEN or init_options.token");
  return token;
}

namespace {

/// Finds the cluster and the home node (see the header).
void find_cluster(const init_options& opts, cluster_connection& out,
                  std::unique_ptr<rpc::client>& client) {
  std::string address = opts.address;
  if (address.empty())
    if (auto* a = std::getenv("RAYD_ADDRESS"); a && *a)
      address = a;
  if (address.empty())
    if (auto nf = read_node_file(rayd_tmpdir() + "/session_latest");
        nf && !nf->api_address.empty() && process_start_ticks(nf->pid) == nf->pid_start_ticks)
      address = nf->api_address;
  std::string token = explicit_token(opts);
  if (address.empty()) {
    if (!opts.embedded_if_absent)
      throw connection_error("rayd: no cluster to connect to: set RAYD_ADDRESS or "
                             "init_options.address");
    out.embedded = embedded_cluster::start(opts.embedded_num_cpus);
    address = out.embedded->address();
    token = out.embedded->token();
  }
  if (token.empty())
    token = token_for(opts, address);
  auto c = rpc::client::connect(address, token);
  if (!c)
    throw connection_error("rayd: " + describe(c.error()));
  client = std::move(*c);
  out.token = token;
  out.api_address = address;
  auto view = client->status();
  if (!view)
    throw connection_error("rayd: " + describe(view.error()));
  // The home node: where this driver's puts go and its leases are asked
  // first; the other alive nodes are where it turns while the home is down.
  const char* my_node = std::getenv("RAYD_NODE_ID");
  auto& home_id = out.home_id;
  auto& home_address = out.home_address;
  auto& alive = out.alive;
  for (auto& n : view->nodes) {
    if (n.get_state() != node_state::alive)
      continue;
    alive.push_back({n.node_id, n.address});
    if ((my_node && n.node_id == my_node) || (home_address.empty() && n.is_head)) {
      home_id = n.node_id;
      home_address = n.address;
    }
  }
  if (home_address.empty())
    throw connection_error("rayd: the cluster at " + address + " has no alive node");
}

} // namespace

wire::code_ref ship_code(const init_options& opts, rpc::client& client) {
  wire::code_ref code;
  std::vector<std::string> files{opts.executable.empty()
                                   ? fs::read_symlink("/proc/self/exe").string()
                                   : opts.executable};
  for (auto& p : opts.code_search_path) {
    std::error_code ec;
    if (fs::is_directory(p, ec)) {
      std::vector<std::string> libs;
      for (auto& e : fs::directory_iterator(p))
        if (e.path().extension() == ".so")
          libs.push_back(e.path().string());
      std::sort(libs.begin(), libs.end());
      files.insert(files.end(), libs.begin(), libs.end());
    } else if (fs::exists(p, ec)) {
      files.push_back(p);
    } else {
      throw error("rayd: code_search_path entry " + p + " does not exist");
    }
  }
  for (auto& path : files) {
    std::ifstream in{path, std::ios::binary};
    std::string bytes{std::istreambuf_iterator<char>{in}, std::istreambuf_iterator<char>{}};
    if (!in && !in.eof())
      throw error("rayd: cannot read " + path);
    auto hash = sha256_hex(bytes);
    auto uri = "gcs://" + hash + ".tar.gz"; // the blob store's naming
    auto present = client.has_package(uri);
    if (!present)
      throw connection_error("rayd: " + describe(present.error()));
    if (!*present) {
      auto up = client.upload_package(bytes);
      if (!up)
        throw connection_error("rayd: cannot ship " + path + " to the cluster: "
                               + describe(up.error()));
    }
    code.files.push_back({hash, fs::path{path}.filename().string()});
  }
  return code;
}

cluster_connection connect_cluster(const init_options& opts, const wire::code_ref* code) {
  cluster_connection out;
  std::unique_ptr<rpc::client> client;
  find_cluster(opts, out, client);
  if (code != nullptr)
    out.code = *code;
  else
    out.code = ship_code(opts, *client);
  return out;
}

} // namespace rayd::core
