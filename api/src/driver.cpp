// The driver core (docs/tasks.md): leases, dispatch, results, retries,
// objects. One instance per driver process, behind core::runtime.
//
// Threads: all state sits under one mutex. Network progress is made by
// whoever "drives": a caller blocked in get()/wait() polls the sockets
// itself (so a synchronous call costs one wake-up on this side, like a
// plain TCP round trip), and a background thread drives when work is
// outstanding and no caller has driven for a millisecond (so submitted
// tasks start without anyone waiting for them). Submitting never waits for
// the network: a TASK frame is written at once if the socket takes it.
//
// Task lifecycle in the driver:
//
//   submit ─► WAITING_DEPS ─(all argument objects ready)─► READY ─(a lease has room)─► INFLIGHT
//                 │ a dependency failed                    ▲ worker died: retry          │
//                 ▼                                        └─────────────────────────────┤
//               FAILED ◄─ infeasible / retries used up / the task threw ◄────────────────┤
//                                                                         result ─► DONE ┘

#include <fcntl.h>
#include <netdb.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <poll.h>
#include <signal.h>
#include <sys/eventfd.h>
#include <sys/prctl.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include <algorithm>
#include <atomic>
#include <cmath>
#include <condition_variable>
#include <cstdlib>
#include <deque>
#include <filesystem>
#include <fstream>
#include <map>
#include <memory>
#include <mutex>
#include <set>
#include <sstream>
#include <thread>
#include <unordered_map>

#include "common/archive.hpp"
#include "common/error.hpp"
#include "common/net.hpp"
#include "common/session.hpp"
#include "common/token.hpp"
#include "common/util.hpp"
#include "common/wire.hpp"
#include "rayd/core.hpp"
#include "rayd/errors.hpp"
#include "api/src/shared_put.hpp"
#include "schemas/api_client.hpp"

namespace fs = std::filesystem;

namespace rayd::core {

namespace {

using clock_type = std::chrono::steady_clock;
using namespace std::chrono_literals;

/// Tasks in flight per leased thread before more leases are asked for.
constexpr std::size_t inflight_per_thread = 256;
/// Tasks that run shorter than this (on average, round trip included) are
/// pipelined: sent to a lease whose threads are all busy. Above it, the
/// round trip a pipelined task saves is a few percent of its run time.
constexpr double pipeline_below_us = 1000;
/// A lease request that broke without an answer is asked of the home node
/// again after this, at most this many times in a row.
constexpr auto request_retry_delay = 100ms;
constexpr int max_request_retries = 50;
/// A lease without work for this long is given back.
constexpr auto lease_idle_timeout = 1000ms;
/// How long a caller-less background thread waits before driving.
constexpr auto background_delay = 1ms;

std::string shape_key(const std::map<std::string, double>& shape,
                      const std::map<std::string, std::string>& selector) {
  std::ostringstream out;
  for (auto& [k, v] : shape)
    out << k << '=' << v << ';';
  out << '|';
  for (auto& [k, v] : selector)
    out << k << '=' << v << ';';
  return out.str();
}

/// connect_tcp() with the reason in `why` and -1 on failure.
int connect_node(const std::string& address, std::string& why) {
  auto fd = connect_tcp(address);
  if (!fd) {
    why = describe(fd.error());
    return -1;
  }
  return *fd;
}

void set_nonblocking(int fd) {
  ::fcntl(fd, F_SETFL, ::fcntl(fd, F_GETFL) | O_NONBLOCK);
}

// -- the embedded local cluster ---------------------------------------------------

/// A rayd head started for this process's lifetime (rayd::init() with no
/// cluster around). It dies with this process (PR_SET_PDEATHSIG).
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

// -- the driver -------------------------------------------------------------------

struct object_entry {
  enum state_t { pending, ready_value, ready_stored, failed };
  state_t state = pending;
  std::string value;
  wire::object_loc loc;
  // failed:
  bool lost = false;
  std::string function, error_type, error_message, node_id;
  int refs = 0;
  /// Pending tasks that take this object as an argument.
  int pinned = 0;
  std::vector<uint64_t> waiters; // task seqs waiting for it
};

struct task_rec {
  uint64_t seq = 0;
  std::string function;
  std::vector<arg> args;
  std::string pool;
  object_id result;
  int attempt = 0;
  int max_retries = 3;
  std::size_t deps_missing = 0;
  // while in flight:
  uint64_t lease = 0;
  uint64_t wire_id = 0;
  clock_type::time_point sent{}; // when sent to a free thread (else epoch)
  uint8_t reported = 255; // the last state recorded for `rayctl tasks`
};

/// One task state change for `rayctl tasks`: compact, since it is recorded
/// on the hot path; turned into strings only when reported.
struct event_rec {
  uint64_t seq = 0;
  uint8_t state = 0;
  uint32_t attempt = 0;
  uint32_t function = 0; // index into interned names
  uint32_t node = 0;     // index into interned node ids
  int64_t time_ms = 0;
};

enum task_state : uint8_t { st_pending = 0, st_running = 1, st_finished = 2, st_failed = 3 };

constexpr std::size_t max_recorded_events = 2000;
constexpr auto report_interval = 500ms;

struct lease_conn {
  uint64_t id = 0;
  int fd = -1;
  std::string pool;
  std::string node_id;
  std::string address;
  uint32_t threads = 1;
  wire::frame_reader reader;
  std::string out; // frames the socket did not take yet
  std::map<uint64_t, uint64_t> inflight; // wire task id → task seq
  uint64_t next_wire_id = 1;
  /// The node asked for the lease back (another job waits): no new tasks;
  /// given back once the ones in flight are answered.
  bool draining = false;
  clock_type::time_point idle_since = clock_type::now();
};

/// A lease being negotiated: LEASE sent, waiting for GRANTED / SPILLBACK /
/// QUEUED / REFUSED.
struct lease_request {
  uint64_t id = 0;
  int fd = -1;
  std::string pool;
  std::string address;
  std::string spilled_from;
  wire::frame_reader reader;
};

struct pool_t {
  std::string key;
  std::map<std::string, double> shape;
  std::map<std::string, std::string> selector;
  std::deque<uint64_t> ready; // task seqs
  std::vector<uint64_t> leases;
  uint64_t requesting = 0; // a lease_request id, 0 if none
  /// Mean run time (µs, moving average, as seen from here) of the pool's
  /// tasks that found a free thread; < 0 until one came back.
  double run_us = -1;
  /// A lease request broke without an answer: no new one before this.
  clock_type::time_point retry_at{};
  int broken_requests = 0; // in a row
};

/// A node this driver talks to for objects (GET, PUT, FREE): one
/// authenticated connection, used one request at a time.
struct node_session {
  int fd = -1;
  wire::frame_reader reader;
  std::mutex mtx;
};

class driver final : public runtime {
public:
  driver(const init_options& opts) : max_inline_put_bytes_{opts.max_inline_put_bytes} {
    connect_cluster(opts);
    ship_code(opts);
    job_prefix_ = random_hex(6);
    job_id_ = "driver-" + job_prefix_;
    if (auto* j = std::getenv("RAYD_JOB_ID"); j && *j)
      job_id_ = std::string{j} + "-" + job_prefix_;
    event_fd_ = ::eventfd(0, EFD_CLOEXEC | EFD_NONBLOCK);
    // The home node: where this driver's puts go and its leases are asked.
    home_ = session_for(home_address_);
    background_ = std::thread([this] { background_loop(); });
  }

  ~driver() override {
    {
      std::lock_guard<std::mutex> guard{mtx_};
      quitting_ = true;
    }
    cv_.notify_all();
    bg_cv_.notify_all();
    wake();
    if (background_.joinable())
      background_.join();
    for (auto& [_, l] : leases_)
      ::close(l.fd);
    for (auto& [_, r] : requests_)
      ::close(r.fd);
    for (auto& [_, s] : sessions_)
      if (s->fd >= 0)
        ::close(s->fd);
    if (event_fd_ >= 0)
      ::close(event_fd_);
    embedded_.reset();
  }

  // -- runtime ----------------------------------------------------------------------

  object_id submit(const std::string& function, std::vector<arg> args,
                   const task_options& opts) override {
    std::unique_lock<std::mutex> lock{mtx_};
    auto id = new_id();
    auto& obj = objects_[id];
    obj.function = function;
    obj.refs = 1; // the caller's
    task_rec t;
    t.seq = next_seq_++;
    t.function = function;
    t.result = id;
    t.max_retries = std::max(0, opts.max_retries);
    t.pool = shape_key(opts.resources, opts.label_selector);
    auto& pool = pools_[t.pool];
    if (pool.key.empty()) {
      pool.key = t.pool;
      pool.shape = opts.resources;
      pool.selector = opts.label_selector;
    }
    for (auto& a : args) {
      if (!a.is_ref)
        continue;
      auto it = objects_.find(a.ref);
      if (it == objects_.end()) {
        fail_object(obj, "rayd::object_lost", "argument object " + a.ref + " does not exist",
                    "", true);
        return id;
      }
      ++it->second.pinned;
      if (it->second.state == object_entry::pending) {
        ++t.deps_missing;
        it->second.waiters.push_back(t.seq);
      }
    }
    t.args = std::move(args);
    auto seq = t.seq;
    bool ready = t.deps_missing == 0;
    auto& stored = tasks_.emplace(seq, std::move(t)).first->second;
    note(stored, st_pending, "");
    if (ready)
      make_ready(seq);
    return id;
  }

  object_id put(std::string bytes) override {
    std::unique_lock<std::mutex> lock{mtx_};
    auto id = new_id();
    if (bytes.size() <= std::min(max_inline_put_bytes_, wire::inline_object_bytes)) {
      auto& obj = objects_[id];
      obj.state = object_entry::ready_value;
      obj.value = std::move(bytes);
      obj.refs = 1; // the caller's
      return id;
    }
    objects_[id].refs = 1; // pending while it travels
    lock.unlock();
    auto loc = put_remote(id, bytes);
    lock.lock();
    auto& obj = objects_[id];
    obj.state = object_entry::ready_stored;
    obj.loc = loc;
    return id;
  }

  /// A large value is written straight into the home node's store when it
  /// is on this host (api/src/shared_put.hpp); else as put() does.
  object_id put_packed(std::size_t size, const std::function<void(char*)>& fill) override {
    if (size > std::min(max_inline_put_bytes_, wire::inline_object_bytes) && shared_put_.usable()) {
      object_id id;
      std::vector<std::string> frees; // dropped objects of the home node: FREE them first
      {
        std::lock_guard<std::mutex> guard{mtx_};
        id = new_id();
        for (auto& loc : frees_) {
          if (loc.address == home_address_)
            frees.push_back(loc.object_id);
          free_later_.push_back(loc); // the background loop FREEs them everywhere
        }
        frees_.clear();
        if (!free_later_.empty())
          bg_cv_.notify_all();
      }
      auto r = shared_put::result::fallback;
      {
        std::lock_guard<std::mutex> guard{home_->mtx};
        ensure_session(*home_, home_address_);
        r = shared_put_.put(home_->fd, home_->reader, id, size, fill, std::move(frees));
        if (r == shared_put::result::broken) {
          ::close(home_->fd);
          home_->fd = -1;
        }
      }
      if (r == shared_put::result::stored) {
        std::lock_guard<std::mutex> guard{mtx_};
        auto& obj = objects_[id];
        obj.refs = 1; // the caller's
        obj.state = object_entry::ready_stored;
        obj.loc.object_id = id;
        obj.loc.address = home_address_;
        obj.loc.size = size;
        return id;
      }
    }
    return runtime::put_packed(size, fill);
  }

  std::vector<std::string> get(const std::vector<object_id>& ids,
                               std::optional<std::chrono::milliseconds> timeout) override {
    auto deadline = timeout ? clock_type::now() + *timeout : clock_type::time_point::max();
    std::unique_lock<std::mutex> lock{mtx_};
    for (;;) {
      bool all = true;
      for (auto& id : ids) {
        auto it = objects_.find(id);
        if (it == objects_.end())
          throw object_lost("object " + id + " does not exist (freed or never created)");
        if (it->second.state == object_entry::failed)
          throw_failure(it->second);
        if (it->second.state == object_entry::pending)
          all = false;
      }
      if (all)
        break;
      if (!progress(lock, deadline))
        throw get_timeout("get: " + std::to_string(ids.size())
                          + " object(s) not ready within the timeout");
    }
    std::vector<std::string> out;
    out.reserve(ids.size());
    std::vector<std::pair<std::size_t, wire::object_loc>> remote;
    for (std::size_t i = 0; i < ids.size(); ++i) {
      auto& obj = objects_.at(ids[i]);
      if (obj.state == object_entry::ready_value) {
        out.push_back(obj.value);
      } else {
        out.emplace_back();
        remote.emplace_back(i, obj.loc);
      }
    }
    lock.unlock();
    for (auto& [i, loc] : remote)
      out[i] = fetch_remote(loc);
    return out;
  }

  std::vector<bool> wait(const std::vector<object_id>& ids, std::size_t num_returns,
                         std::optional<std::chrono::milliseconds> timeout) override {
    auto deadline = timeout ? clock_type::now() + *timeout : clock_type::time_point::max();
    std::unique_lock<std::mutex> lock{mtx_};
    for (;;) {
      std::vector<bool> ready(ids.size());
      std::size_t n = 0;
      for (std::size_t i = 0; i < ids.size(); ++i) {
        auto it = objects_.find(ids[i]);
        ready[i] = it == objects_.end() || it->second.state != object_entry::pending;
        n += ready[i] ? 1 : 0;
      }
      if (n >= num_returns || !progress(lock, deadline))
        return ready;
    }
  }

  void add_ref(const object_id& id) override {
    std::lock_guard<std::mutex> guard{mtx_};
    if (auto it = objects_.find(id); it != objects_.end())
      ++it->second.refs;
  }

  void release(const object_id& id) override {
    std::unique_lock<std::mutex> lock{mtx_};
    auto it = objects_.find(id);
    if (it == objects_.end())
      return;
    if (--it->second.refs > 0 || it->second.pinned > 0)
      return;
    maybe_forget(it);
  }

private:
  // -- cluster, code -------------------------------------------------------------

  void connect_cluster(const init_options& opts) {
    std::string address = opts.address;
    if (address.empty())
      if (auto* a = std::getenv("RAYD_ADDRESS"); a && *a)
        address = a;
    if (address.empty())
      if (auto nf = read_node_file(rayd_tmpdir() + "/session_latest");
          nf && !nf->api_address.empty() && process_start_ticks(nf->pid) == nf->pid_start_ticks)
        address = nf->api_address;
    std::string token = opts.token;
    if (token.empty()) {
      auto t = token_from_flags_or_env("", opts.token_file);
      if (!t)
        throw connection_error("rayd: " + describe(t.error()));
      token = *t;
    }
    if (address.empty()) {
      if (!opts.embedded_if_absent)
        throw connection_error("rayd: no cluster to connect to: set RAYD_ADDRESS or "
                               "init_options.address");
      embedded_ = embedded_cluster::start(opts.embedded_num_cpus);
      address = embedded_->address();
      token = embedded_->token();
    }
    if (token.empty())
      if (auto local = find_local_token(address))
        token = *local;
    if (token.empty())
      throw connection_error("rayd: no cluster token for " + address
                             + ": set RAYD_TOKEN or init_options.token");
    auto c = rpc::client::connect(address, token);
    if (!c)
      throw connection_error("rayd: " + describe(c.error()));
    client_ = std::move(*c);
    token_ = token;
    address_ = address;
    auto view = client_->status();
    if (!view)
      throw connection_error("rayd: " + describe(view.error()));
    const char* my_node = std::getenv("RAYD_NODE_ID");
    for (auto& n : view->nodes) {
      if (n.get_state() != node_state::alive)
        continue;
      if ((my_node && n.node_id == my_node) || (home_address_.empty() && n.is_head))
        home_address_ = n.address;
    }
    if (home_address_.empty())
      throw connection_error("rayd: the cluster at " + address + " has no alive node");
  }

  /// Uploads this executable (and task libraries) once per content hash.
  void ship_code(const init_options& opts) {
    std::vector<std::string> files{fs::read_symlink("/proc/self/exe").string()};
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
      auto present = client_->has_package(uri);
      if (!present)
        throw connection_error("rayd: " + describe(present.error()));
      if (!*present) {
        auto up = client_->upload_package(bytes);
        if (!up)
          throw connection_error("rayd: cannot ship " + path + " to the cluster: "
                                 + describe(up.error()));
      }
      code_.files.push_back({hash, fs::path{path}.filename().string()});
    }
  }

  // -- object sessions (GET / PUT / FREE) -------------------------------------------

  node_session* session_for(const std::string& address) {
    std::lock_guard<std::mutex> guard{sessions_mtx_};
    auto& s = sessions_[address];
    if (!s)
      s = std::make_unique<node_session>();
    return s.get();
  }

  /// REQUIRES: s.mtx held. Connects and authenticates if needed.
  void ensure_session(node_session& s, const std::string& address) {
    if (s.fd >= 0)
      return;
    std::string why;
    int fd = connect_node(address, why);
    if (fd < 0)
      throw object_lost(why);
    s.reader = wire::frame_reader{};
    if (wire::write_all(fd, wire::encode(wire::msg::hello,
                                         wire::hello{wire::magic, token_, "driver", job_id_}))) {
      ::close(fd);
      throw object_lost("node " + address + " closed the connection");
    }
    auto w = wire::read_frame(fd, s.reader, 10000);
    if (!w || w->type != wire::msg::welcome) {
      ::close(fd);
      throw connection_error("rayd: node " + address + " refused this driver");
    }
    s.fd = fd;
  }

  wire::object_loc put_remote(const object_id& id, const std::string& bytes) {
    auto& s = *home_;
    std::lock_guard<std::mutex> guard{s.mtx};
    ensure_session(s, home_address_);
    std::string msg = wire::encode(wire::msg::put,
                                   wire::put_request{id, bytes.size(), job_id_});
    caf::error err = wire::write_all(s.fd, msg);
    for (std::size_t off = 0; !err && off < bytes.size(); off += wire::chunk_bytes)
      err = wire::write_all(s.fd, wire::encode_raw(wire::msg::chunk,
                                                   std::string_view{bytes}.substr(
                                                     off, wire::chunk_bytes)));
    if (err) {
      ::close(s.fd);
      s.fd = -1;
      throw object_store_full("rayd: put failed: " + describe(err));
    }
    auto r = wire::read_frame(s.fd, s.reader);
    if (!r) {
      ::close(s.fd);
      s.fd = -1;
      throw object_store_full("rayd: put failed: " + describe(r.error()));
    }
    if (r->type != wire::msg::put_ok) {
      auto e = wire::decode<wire::error_msg>(r->payload);
      throw object_store_full(e ? e->message : "rayd: put refused");
    }
    wire::object_loc loc;
    loc.object_id = id;
    loc.address = home_address_;
    loc.size = bytes.size();
    return loc;
  }

  std::string fetch_remote(const wire::object_loc& loc) {
    auto* s = session_for(loc.address);
    std::lock_guard<std::mutex> guard{s->mtx};
    try {
      ensure_session(*s, loc.address);
    } catch (const error&) {
      throw object_lost("object " + loc.object_id + " is lost: its node " + loc.node_id
                        + " (" + loc.address + ") cannot be reached");
    }
    auto fail = [&](const std::string& why) -> std::string {
      ::close(s->fd);
      s->fd = -1;
      throw object_lost("object " + loc.object_id + " is lost: " + why);
    };
    if (wire::write_all(s->fd, wire::encode(wire::msg::get,
                                            wire::object_id_msg{loc.object_id})))
      return fail("node " + loc.address + " closed the connection");
    auto h = wire::read_frame(s->fd, s->reader);
    if (!h)
      return fail(describe(h.error()));
    if (h->type != wire::msg::object) {
      auto e = wire::decode<wire::error_msg>(h->payload);
      throw object_lost("object " + loc.object_id + " is lost: "
                        + (e ? e->message : std::string{"not found"}));
    }
    auto hdr = wire::decode<wire::object_header>(h->payload);
    if (!hdr)
      return fail("malformed OBJECT");
    std::string out;
    out.reserve(hdr->size);
    while (out.size() < hdr->size) {
      auto c = wire::read_frame(s->fd, s->reader);
      if (!c || c->type != wire::msg::chunk)
        return fail("the transfer broke off");
      out += c->payload;
    }
    return out;
  }

  /// Sends one FREE with `ids` to the node at `address`.
  void send_free(const std::string& address, std::vector<std::string> ids) {
    auto* s = session_for(address);
    std::lock_guard<std::mutex> guard{s->mtx};
    try {
      ensure_session(*s, address);
    } catch (const error&) {
      return; // the node is gone, and the objects with it
    }
    if (wire::write_all(s->fd, wire::encode(wire::msg::free,
                                            wire::free_request{std::move(ids)}))) {
      ::close(s->fd);
      s->fd = -1;
    }
  }

  // -- objects -----------------------------------------------------------------------

  object_id new_id() {
    std::ostringstream out;
    out << job_prefix_ << std::hex << next_object_++;
    return out.str();
  }

  [[noreturn]] void throw_failure(const object_entry& obj) {
    if (obj.lost)
      throw object_lost(obj.error_message);
    throw task_error(obj.function, obj.error_type, obj.error_message, obj.node_id);
  }

  /// REQUIRES: mtx_ held.
  void fail_object(object_entry& obj, std::string type, std::string message,
                   std::string node, bool lost = false) {
    obj.state = object_entry::failed;
    obj.error_type = std::move(type);
    obj.error_message = std::move(message);
    obj.node_id = std::move(node);
    obj.lost = lost;
  }

  /// Frees an object nobody refers to any more. REQUIRES: mtx_ held.
  void maybe_forget(std::unordered_map<object_id, object_entry>::iterator it) {
    if (it->second.state == object_entry::pending)
      return; // its task's result will arrive; forget it then
    if (it->second.state == object_entry::ready_stored) {
      auto loc = it->second.loc;
      objects_.erase(it);
      frees_.push_back(loc);
      return;
    }
    objects_.erase(it);
  }

  /// An object became ready or failed: tasks waiting for it move on.
  void resolved(const object_id& id) {
    auto it = objects_.find(id);
    if (it == objects_.end())
      return;
    auto waiters = std::move(it->second.waiters);
    it->second.waiters.clear();
    bool failed = it->second.state == object_entry::failed;
    auto src = it->second;
    for (auto seq : waiters) {
      auto t = tasks_.find(seq);
      if (t == tasks_.end())
        continue;
      if (failed) {
        auto& obj = objects_[t->second.result];
        if (obj.state == object_entry::pending) {
          fail_object(obj, src.error_type, src.error_message, src.node_id, src.lost);
          finish_task(seq);
        }
        continue;
      }
      if (--t->second.deps_missing == 0)
        make_ready(seq);
    }
    cv_.notify_all();
    it = objects_.find(id); // the loop may have rehashed the map
    if (it != objects_.end() && it->second.refs <= 0 && it->second.pinned <= 0)
      maybe_forget(it);
  }

  /// The task is over: its arguments are no longer pinned by it.
  void finish_task(uint64_t seq) {
    auto t = tasks_.find(seq);
    if (t == tasks_.end())
      return;
    if (auto o = objects_.find(t->second.result); o != objects_.end()) {
      bool failed = o->second.state == object_entry::failed;
      note(t->second, failed ? st_failed : st_finished,
           o->second.node_id,
           failed ? o->second.error_type + ": " + o->second.error_message : std::string{});
    }
    auto args = std::move(t->second.args);
    auto result = t->second.result;
    tasks_.erase(t);
    for (auto& a : args) {
      if (!a.is_ref)
        continue;
      auto it = objects_.find(a.ref);
      if (it == objects_.end())
        continue;
      if (--it->second.pinned <= 0 && it->second.refs <= 0)
        maybe_forget(it);
    }
    resolved(result);
  }

  // -- task events (rayctl tasks) -----------------------------------------------------

  /// A small number standing for `s` in `names` (recorded on the hot path,
  /// so a hash lookup, not a scan).
  struct interned {
    std::vector<std::string> names;
    std::unordered_map<std::string, uint32_t> index;
    uint32_t of(const std::string& s) {
      auto [it, added] = index.emplace(s, static_cast<uint32_t>(names.size()));
      if (added)
        names.push_back(s);
      return it->second;
    }
  };

  /// Records a state change and keeps the counts. REQUIRES: mtx_ held.
  void note(task_rec& t, task_state state, const std::string& node,
            const std::string& error = {}) {
    if (t.reported != 255) {
      auto& c = counts_[t.reported];
      if (c > 0)
        --c;
    }
    ++counts_[state];
    t.reported = state;
    if (node_names_.names.size() < 4096 && function_names_.names.size() < 4096) {
      events_.push_back({t.seq, static_cast<uint8_t>(state), static_cast<uint32_t>(t.attempt),
                         function_names_.of(t.function), node_names_.of(node),
                         now_ms()});
      if (events_.size() > max_recorded_events)
        events_.pop_front();
    }
    if (!error.empty()) {
      errors_[t.seq] = error;
      if (errors_.size() > max_recorded_events)
        errors_.erase(errors_.begin());
    }
    events_dirty_ = true;
  }

  /// Sends what changed to the head (from the background thread).
  void report_events(std::unique_lock<std::mutex>& lock) {
    static const char* names[] = {"PENDING", "RUNNING", "FINISHED", "FAILED"};
    std::vector<task_event> out;
    std::map<uint64_t, std::size_t> latest;
    for (auto& e : events_) {
      task_event te;
      te.task_id = job_prefix_ + "-" + std::to_string(e.seq);
      te.function = function_names_.names[e.function];
      te.state = names[e.state];
      te.node_id = node_names_.names[e.node];
      te.attempt = e.attempt;
      te.update_time_ms = e.time_ms;
      if (auto i = errors_.find(e.seq); i != errors_.end() && e.state == st_failed)
        te.error = i->second;
      if (auto l = latest.find(e.seq); l != latest.end())
        out[l->second] = std::move(te);
      else {
        latest[e.seq] = out.size();
        out.push_back(std::move(te));
      }
    }
    events_.clear();
    events_dirty_ = false;
    task_counts counts{counts_[st_pending], counts_[st_running], counts_[st_finished],
                       counts_[st_failed]};
    lock.unlock();
    if (!report_client_) {
      auto c = rpc::client::connect(address_, token_);
      if (c)
        report_client_ = std::move(*c);
    }
    if (report_client_ && !report_client_->task_report(job_id_, counts, out))
      report_client_.reset(); // reconnect next time (e.g. the head restarted)
    lock.lock();
  }

  // -- dispatch ---------------------------------------------------------------------

  void make_ready(uint64_t seq) {
    auto& t = tasks_.at(seq);
    pools_.at(t.pool).ready.push_back(seq);
    dispatch(pools_.at(t.pool));
  }

  wire::task to_wire(task_rec& t, uint64_t wire_id) {
    wire::task w;
    w.task_id = wire_id;
    w.function = t.function;
    w.attempt = static_cast<uint32_t>(t.attempt);
    w.args.reserve(t.args.size());
    for (auto& a : t.args) {
      wire::task_arg wa;
      if (!a.is_ref) {
        wa.kind = wire::task_arg::value;
        wa.data = a.value;
      } else {
        auto& obj = objects_.at(a.ref);
        if (obj.state == object_entry::ready_value) {
          wa.kind = wire::task_arg::value;
          wa.data = obj.value;
        } else {
          wa.kind = wire::task_arg::ref;
          wa.loc = obj.loc;
        }
      }
      w.args.push_back(std::move(wa));
    }
    return w;
  }

  /// Sends ready tasks of `pool` to its leases with room; asks for another
  /// lease when they are all full. REQUIRES: mtx_ held.
  void dispatch(pool_t& pool) {
    while (!pool.ready.empty()) {
      lease_conn* best = nullptr;
      for (auto lid : pool.leases) {
        auto& l = leases_.at(lid);
        if (l.draining || l.inflight.size() >= l.threads * inflight_per_thread)
          continue;
        if (best == nullptr || l.inflight.size() < best->inflight.size())
          best = &l;
      }
      if (best == nullptr)
        break;
      // Spread: a lease with a task per thread already gets more only if no
      // new lease is coming, or if the pool's tasks are short (pipelining
      // them is what makes many small tasks fast). A longer task waits here
      // for a free thread or a new lease, rather than queue behind a busy
      // one while other nodes have room; waiting, it is pending demand.
      bool behind = best->inflight.size() >= best->threads;
      if (behind) {
        if (pool.requesting == 0 && clock_type::now() >= pool.retry_at)
          request_lease(pool, home_address_, "");
        bool short_tasks = pool.run_us >= 0 && pool.run_us < pipeline_below_us;
        if (!short_tasks)
          break;
      }
      auto seq = pool.ready.front();
      pool.ready.pop_front();
      auto& t = tasks_.at(seq);
      t.sent = behind ? clock_type::time_point{} : clock_type::now();
      auto wid = best->next_wire_id++;
      t.lease = best->id;
      t.wire_id = wid;
      best->inflight[wid] = seq;
      best->out += wire::encode(wire::msg::task, to_wire(t, wid));
      note(t, st_running, best->node_id);
      // Write at once when nothing else is queued: the fast path.
      if (pool.ready.empty() || best->out.size() > 256 * 1024)
        flush(*best);
    }
    for (auto lid : pool.leases)
      if (!leases_.at(lid).out.empty())
        flush(leases_.at(lid));
    if (!pool.ready.empty() && pool.requesting == 0 && clock_type::now() >= pool.retry_at)
      request_lease(pool, home_address_, "");
  }

  /// Writes what the socket takes now; the rest waits for POLLOUT.
  void flush(lease_conn& l) {
    while (!l.out.empty()) {
      auto n = ::send(l.fd, l.out.data(), l.out.size(), MSG_NOSIGNAL | MSG_DONTWAIT);
      if (n > 0) {
        l.out.erase(0, static_cast<std::size_t>(n));
        continue;
      }
      if (n < 0 && errno == EINTR)
        continue;
      if (n < 0 && (errno == EAGAIN || errno == EWOULDBLOCK)) {
        wake(); // whoever drives must poll for POLLOUT
        bg_cv_.notify_one();
        return;
      }
      return; // broken: the reader sees EOF and retries the tasks
    }
  }

  void request_lease(pool_t& pool, const std::string& address,
                     const std::string& spilled_from) {
    std::string why;
    int fd = connect_node(address, why);
    if (fd < 0) {
      // The home node unreachable is final; a node it spilled to may have
      // died without the home node knowing yet.
      if (spilled_from.empty() || !retry_later(pool))
        fail_pool(pool, "rayd::unavailable", why);
      return;
    }
    lease_request r;
    r.id = next_seq_++;
    r.fd = fd;
    r.pool = pool.key;
    r.address = address;
    r.spilled_from = spilled_from;
    wire::lease_request req;
    req.request_id = r.id;
    req.shape = pool.shape;
    req.label_selector = pool.selector;
    req.job_id = job_id_;
    req.code = code_;
    req.spilled_from = spilled_from;
    auto hello = wire::encode(wire::msg::hello,
                              wire::hello{wire::magic, token_, "driver", job_id_});
    if (wire::write_all(fd, hello + wire::encode(wire::msg::lease, req))) {
      ::close(fd);
      if (!retry_later(pool))
        fail_pool(pool, "rayd::unavailable", "node " + address + " closed the connection");
      return;
    }
    set_nonblocking(fd);
    pool.requesting = r.id;
    requests_.emplace(r.id, std::move(r));
    wake();
    bg_cv_.notify_one(); // the answer must be read even if nobody calls get()
  }

  /// A lease request broke without an answer: the node spilled to died (the
  /// home node may not know yet), or the worker the lease was handed to died
  /// before taking it. No task was sent on it: true if the pool asks the
  /// home node again in a moment, false when it is time to give up.
  bool retry_later(pool_t& pool) {
    if (++pool.broken_requests > max_request_retries) {
      pool.broken_requests = 0;
      return false;
    }
    pool.retry_at = clock_type::now() + request_retry_delay;
    bg_cv_.notify_one();
    return true;
  }

  /// Fails every task waiting in the pool (no lease can be had).
  void fail_pool(pool_t& pool, const std::string& type, const std::string& why) {
    auto ready = std::move(pool.ready);
    pool.ready.clear();
    for (auto seq : ready) {
      auto& t = tasks_.at(seq);
      fail_object(objects_[t.result], type, why, "");
      finish_task(seq);
    }
  }

  /// A lease socket broke: its worker or node died. Retry its tasks.
  void lease_lost(uint64_t lid, const std::string& why) {
    auto it = leases_.find(lid);
    if (it == leases_.end())
      return;
    auto l = std::move(it->second);
    leases_.erase(it);
    ::close(l.fd);
    auto& pool = pools_.at(l.pool);
    pool.leases.erase(std::remove(pool.leases.begin(), pool.leases.end(), lid),
                      pool.leases.end());
    std::vector<uint64_t> retry;
    for (auto& [wid, seq] : l.inflight) {
      auto& t = tasks_.at(seq);
      if (t.attempt < t.max_retries) {
        ++t.attempt;
        note(t, st_pending, "");
        retry.push_back(seq);
      } else {
        fail_object(objects_[t.result], "rayd::worker_died",
                    "the worker running it died (" + why + ") and its "
                      + std::to_string(t.max_retries) + " retries are used up",
                    l.node_id);
        finish_task(seq);
      }
    }
    for (auto i = retry.rbegin(); i != retry.rend(); ++i)
      pool.ready.push_front(*i);
    if (!pool.ready.empty())
      dispatch(pool);
  }

  // -- frames ------------------------------------------------------------------------

  void on_result(lease_conn& l, const wire::task_result& r) {
    auto it = l.inflight.find(r.task_id);
    if (it == l.inflight.end())
      return;
    auto seq = it->second;
    l.inflight.erase(it);
    if (l.inflight.empty())
      l.idle_since = clock_type::now();
    auto& t = tasks_.at(seq);
    if (t.sent != clock_type::time_point{}) {
      auto& pool = pools_.at(l.pool);
      double us = std::chrono::duration<double, std::micro>(clock_type::now() - t.sent).count();
      pool.run_us = pool.run_us < 0 ? us : 0.8 * pool.run_us + 0.2 * us;
    }
    auto& obj = objects_[t.result];
    switch (r.kind) {
      case wire::task_result::value:
        obj.state = object_entry::ready_value;
        obj.value = r.data;
        break;
      case wire::task_result::stored:
        obj.state = object_entry::ready_stored;
        obj.loc = r.loc;
        break;
      default:
        fail_object(obj, r.error_type, r.error_message, r.node_id,
                    r.error_type == "rayd::object_lost");
    }
    obj.node_id = r.node_id;
    finish_task(seq);
    // Room on this lease again: tasks waiting in its pool may go.
    if (auto& pool = pools_.at(l.pool); !pool.ready.empty())
      dispatch(pool);
  }

  /// Reads what arrived on a lease. False when it broke.
  bool read_lease(lease_conn& l) {
    char buf[256 * 1024];
    for (;;) {
      auto n = ::recv(l.fd, buf, sizeof buf, MSG_DONTWAIT);
      if (n > 0) {
        l.reader.feed(buf, static_cast<std::size_t>(n));
        if (static_cast<std::size_t>(n) < sizeof buf)
          break;
        continue;
      }
      if (n < 0 && errno == EINTR)
        continue;
      if (n < 0 && (errno == EAGAIN || errno == EWOULDBLOCK))
        break;
      return false;
    }
    for (;;) {
      auto f = l.reader.next();
      if (!f)
        return false;
      if (!*f)
        return true;
      if ((*f)->type == wire::msg::drain) {
        l.draining = true;
        continue;
      }
      if ((*f)->type != wire::msg::result)
        return false;
      auto r = wire::decode<wire::task_result>((*f)->payload);
      if (!r)
        return false;
      on_result(l, *r);
    }
  }

  void on_lease_reply(lease_request& r, const wire::frame& f) {
    auto& pool = pools_.at(r.pool);
    auto done = [&] {
      if (pool.requesting == r.id)
        pool.requesting = 0;
    };
    switch (f.type) {
      case wire::msg::welcome:
        return;
      case wire::msg::queued:
        return; // keep waiting; the node counts us as demand
      case wire::msg::granted: {
        auto g = wire::decode<wire::granted>(f.payload);
        done();
        pool.broken_requests = 0;
        lease_conn l;
        l.id = next_seq_++;
        l.fd = r.fd;
        l.pool = r.pool;
        l.address = r.address;
        l.node_id = g ? g->node_id : "";
        l.threads = g ? std::max<uint32_t>(1, g->threads) : 1;
        r.fd = -1;
        if (r.reader.buffered() > 0) { // a result cannot precede our tasks
          ::close(l.fd);
          return;
        }
        if (pool.ready.empty())
          l.idle_since = clock_type::now();
        pool.leases.push_back(l.id);
        // Results this job leaves on that node are freed when our session
        // with it closes: make sure there is one.
        if (sessions_open_.insert(l.address).second) {
          sessions_wanted_.push_back(l.address);
          bg_cv_.notify_one();
        }
        leases_.emplace(l.id, std::move(l));
        // The node granted one lease; if work still waits, ask for more.
        dispatch(pool);
        return;
      }
      case wire::msg::spillback: {
        auto s = wire::decode<wire::spillback>(f.payload);
        done();
        if (s && !pool.ready.empty())
          request_lease(pool, s->address, r.address);
        return;
      }
      case wire::msg::refused:
      case wire::msg::error: {
        done();
        std::string why = "the lease was refused";
        std::string type = "rayd::unavailable";
        if (auto x = wire::decode<wire::refused>(f.payload); x && f.type == wire::msg::refused) {
          why = x->reason;
          if (x->code == static_cast<uint8_t>(wire::wire_error::infeasible))
            type = "rayd::infeasible";
        } else if (auto e = wire::decode<wire::error_msg>(f.payload)) {
          why = e->message;
        }
        fail_pool(pool, type, why);
        return;
      }
      default:
        done();
        fail_pool(pool, "rayd::unavailable",
                  std::string{"unexpected "} + wire::to_string(f.type) + " from a node");
    }
  }

  /// Reads a pending lease request's socket. False when it is finished
  /// (granted, spilled, refused, or broken).
  bool read_request(lease_request& r) {
    char buf[4096];
    auto n = ::recv(r.fd, buf, sizeof buf, MSG_DONTWAIT);
    if (n == 0 || (n < 0 && errno != EAGAIN && errno != EINTR)) {
      auto& pool = pools_.at(r.pool);
      if (pool.requesting == r.id)
        pool.requesting = 0;
      if (!retry_later(pool))
        fail_pool(pool, "rayd::unavailable", "node " + r.address + " closed the connection");
      return false;
    }
    if (n > 0)
      r.reader.feed(buf, static_cast<std::size_t>(n));
    for (;;) {
      auto f = r.reader.next();
      if (!f) {
        auto& pool = pools_.at(r.pool);
        if (pool.requesting == r.id)
          pool.requesting = 0;
        fail_pool(pool, "rayd::unavailable", "node " + r.address + " sent garbage");
        return false;
      }
      if (!*f)
        return true;
      on_lease_reply(r, **f);
      if (r.fd < 0 || pools_.at(r.pool).requesting != r.id)
        return false;
    }
  }

  // -- driving ------------------------------------------------------------------------

  void wake() {
    uint64_t one = 1;
    [[maybe_unused]] auto n = ::write(event_fd_, &one, sizeof one);
  }

  bool outstanding() const {
    if (!requests_.empty())
      return true;
    for (auto& [_, l] : leases_)
      if (!l.inflight.empty() || !l.out.empty())
        return true;
    return false;
  }

  /// One round of network progress, or a wait on another driver's progress.
  /// False once `deadline` passed. REQUIRES: `lock` holds mtx_.
  bool progress(std::unique_lock<std::mutex>& lock, clock_type::time_point deadline) {
    if (clock_type::now() >= deadline)
      return false;
    if (driving_) {
      cv_.wait_until(lock, std::min(deadline, clock_type::now() + 50ms));
      return true;
    }
    drive_once(lock, deadline);
    return true;
  }

  /// Polls every socket once (blocking up to `deadline`) and handles what
  /// arrived. REQUIRES: `lock` holds mtx_ and nobody else drives.
  void drive_once(std::unique_lock<std::mutex>& lock, clock_type::time_point deadline) {
    driving_ = true;
    std::vector<pollfd> fds;
    std::vector<std::pair<int, uint64_t>> who; // 0 lease, 1 request, 2 event
    for (auto& [id, l] : leases_) {
      fds.push_back({l.fd, static_cast<short>(POLLIN | (l.out.empty() ? 0 : POLLOUT)), 0});
      who.emplace_back(0, id);
    }
    for (auto& [id, r] : requests_) {
      fds.push_back({r.fd, POLLIN, 0});
      who.emplace_back(1, id);
    }
    fds.push_back({event_fd_, POLLIN, 0});
    who.emplace_back(2, 0);
    auto now = clock_type::now();
    int timeout = deadline == clock_type::time_point::max()
                    ? 200
                    : static_cast<int>(std::clamp<int64_t>(
                      std::chrono::duration_cast<std::chrono::milliseconds>(deadline - now)
                        .count(),
                      0, 200));
    lock.unlock();
    int n = ::poll(fds.data(), fds.size(), timeout);
    lock.lock();
    driving_ = false;
    if (n > 0) {
      for (std::size_t i = 0; i < fds.size(); ++i) {
        if (fds[i].revents == 0)
          continue;
        auto [kind, id] = who[i];
        if (kind == 2) {
          uint64_t v;
          [[maybe_unused]] auto r = ::read(event_fd_, &v, sizeof v);
        } else if (kind == 0) {
          auto it = leases_.find(id);
          if (it == leases_.end())
            continue;
          if (fds[i].revents & POLLOUT)
            flush(it->second);
          if ((fds[i].revents & (POLLIN | POLLHUP | POLLERR)) && !read_lease(it->second))
            lease_lost(id, "connection to node " + it->second.address + " lost");
        } else {
          auto it = requests_.find(id);
          if (it == requests_.end())
            continue;
          if (!read_request(it->second)) {
            if (it->second.fd >= 0)
              ::close(it->second.fd);
            requests_.erase(it);
          }
        }
      }
    }
    housekeeping();
    cv_.notify_all();
  }

  /// Gives back idle leases, cancels lease requests nobody needs, sends
  /// queued FREEs. REQUIRES: mtx_ held.
  void housekeeping() {
    auto now = clock_type::now();
    std::vector<uint64_t> idle;
    for (auto& [id, l] : leases_)
      if (l.inflight.empty() && l.out.empty()
          && (l.draining
              || (pools_.at(l.pool).ready.empty() && now - l.idle_since > lease_idle_timeout)))
        idle.push_back(id);
    for (auto id : idle) {
      auto& l = leases_.at(id);
      ::close(l.fd); // the worker sees EOF and gives the resources back
      auto& pool = pools_.at(l.pool);
      pool.leases.erase(std::remove(pool.leases.begin(), pool.leases.end(), id),
                        pool.leases.end());
      leases_.erase(id);
    }
    for (auto& [_, pool] : pools_) // a lease request broke: ask again
      if (!pool.ready.empty() && pool.requesting == 0 && now >= pool.retry_at)
        dispatch(pool);
    for (auto it = requests_.begin(); it != requests_.end();) {
      auto& pool = pools_.at(it->second.pool);
      if (pool.ready.empty() && pool.requesting == it->first) {
        pool.requesting = 0;
        ::close(it->second.fd);
        it = requests_.erase(it);
      } else {
        ++it;
      }
    }
    if (!frees_.empty()) {
      auto frees = std::move(frees_);
      frees_.clear();
      for (auto& loc : frees)
        free_later_.push_back(loc);
    }
  }

  /// Drives when work is outstanding and no caller has driven for a
  /// millisecond; sends FREEs. Woken by bg_cv_ (lease requests, full
  /// sockets, shutdown) — never per task, so a synchronous loop costs it
  /// nothing.
  void background_loop() {
    std::unique_lock<std::mutex> lock{mtx_};
    while (!quitting_) {
      if (events_dirty_ && clock_type::now() - last_report_ > report_interval) {
        last_report_ = clock_type::now();
        report_events(lock);
        continue;
      }
      if (!sessions_wanted_.empty()) {
        auto wanted = std::move(sessions_wanted_);
        sessions_wanted_.clear();
        lock.unlock();
        for (auto& address : wanted) {
          auto* s = session_for(address);
          std::lock_guard<std::mutex> guard{s->mtx};
          try {
            ensure_session(*s, address);
          } catch (const error&) {
          }
        }
        lock.lock();
        continue;
      }
      if (!free_later_.empty()) {
        // An object may have been copied to any node that ran a task on it
        // (pulled there): every node this driver works with hears the FREE.
        std::map<std::string, std::vector<std::string>> by_node;
        for (auto& loc : free_later_) {
          by_node[loc.address].push_back(loc.object_id);
          for (auto& address : sessions_open_)
            if (address != loc.address)
              by_node[address].push_back(loc.object_id);
        }
        free_later_.clear();
        lock.unlock();
        for (auto& [address, ids] : by_node)
          send_free(address, std::move(ids));
        lock.lock();
        continue;
      }
      if (!outstanding()) {
        bg_cv_.wait_for(lock, events_dirty_ ? report_interval : 250ms);
        if (!quitting_ && !driving_ && !outstanding())
          housekeeping();
        continue;
      }
      if (driving_) {
        bg_cv_.wait_for(lock, 5ms);
        continue;
      }
      // Let a caller in get() drive first: it reacts faster.
      bg_cv_.wait_for(lock, background_delay);
      if (quitting_ || driving_ || !outstanding())
        continue;
      drive_once(lock, clock_type::now() + 200ms);
    }
    if (events_dirty_)
      report_events(lock); // the final states of a short program
    // A kj client belongs to the thread that made it: destroy it here.
    auto client = std::move(report_client_);
    lock.unlock();
    client.reset();
  }

  // -- state ---------------------------------------------------------------------------

  std::unique_ptr<embedded_cluster> embedded_;
  const std::size_t max_inline_put_bytes_;
  shared_put shared_put_; // guarded by home_->mtx
  std::unique_ptr<rpc::client> client_;
  std::string token_;
  std::string address_;
  std::string home_address_;
  std::string job_id_;
  std::string job_prefix_;
  wire::code_ref code_;
  node_session* home_ = nullptr;
  int event_fd_ = -1;

  std::mutex sessions_mtx_;
  std::map<std::string, std::unique_ptr<node_session>> sessions_;

  std::mutex mtx_;
  std::condition_variable cv_;    // callers waiting for another's progress
  std::condition_variable bg_cv_; // the background thread
  bool driving_ = false;
  bool quitting_ = false;
  uint64_t next_seq_ = 1;
  uint64_t next_object_ = 1;
  std::unordered_map<object_id, object_entry> objects_;
  std::map<uint64_t, task_rec> tasks_;
  std::map<std::string, pool_t> pools_;
  std::map<uint64_t, lease_conn> leases_;
  std::map<uint64_t, lease_request> requests_;
  std::vector<wire::object_loc> frees_;
  std::vector<wire::object_loc> free_later_;
  std::set<std::string> sessions_open_;
  std::vector<std::string> sessions_wanted_;
  // rayctl tasks
  std::deque<event_rec> events_;
  std::map<uint64_t, std::string> errors_;
  interned function_names_;
  interned node_names_;
  uint64_t counts_[4] = {0, 0, 0, 0};
  bool events_dirty_ = false;
  clock_type::time_point last_report_;
  std::unique_ptr<rpc::client> report_client_; // the background thread's
  std::thread background_;
};

std::mutex runtime_mtx;
std::unique_ptr<driver> the_runtime;

} // namespace

void start(const init_options& opts) {
  if (auto* fd = std::getenv("RAYD_WORKER_FD"); fd && *fd)
    run_worker(std::atoi(fd));
  std::lock_guard<std::mutex> guard{runtime_mtx};
  if (the_runtime)
    throw error("rayd: init() was called twice (call shutdown() first)");
  ::signal(SIGPIPE, SIG_IGN);
  the_runtime = std::make_unique<driver>(opts);
}

runtime& current() {
  std::lock_guard<std::mutex> guard{runtime_mtx};
  if (!the_runtime)
    throw std::logic_error("rayd: not initialized (call rayd::init() first)");
  return *the_runtime;
}

bool running() {
  std::lock_guard<std::mutex> guard{runtime_mtx};
  return the_runtime != nullptr;
}

void stop() {
  std::unique_ptr<driver> r;
  {
    std::lock_guard<std::mutex> guard{runtime_mtx};
    r = std::move(the_runtime);
  }
  r.reset();
}

} // namespace rayd::core
