// The job supervisor: one per job, on the node that runs its entrypoint.
//
//   spawn ─► PREPARING ─(working dir ready)─► launch ─► RUNNING ─(exit)─► FINISHING ─► quit
//               │ runtime-env failure / stop            │ stop: TERM→KILL      │
//               └──────────────────────────────► FINISHING                     │
//   FINISHING: ship the rest of the log, then the final report; quit once the
//   head acknowledged it. The head is reached through the gate; if it is gone
//   (restart), everything is re-sent when the node manager hands over the new
//   gate (head_changed). The entrypoint's output goes straight to a file on
//   this node, so a slow or absent head never blocks the job.

#include "actors/node/job_supervisor.hpp"

#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>

#include <filesystem>
#include <map>

#include <caf/all.hpp>
#include <spdlog/spdlog.h>

#include "actors/node/process_watcher.hpp"
#include "common/error.hpp"
#include "common/session.hpp"

extern char** environ;

namespace rayd::node {

namespace {

namespace fs = std::filesystem;
using namespace std::chrono_literals;

constexpr uint64_t ship_chunk_bytes = 1u << 20;
constexpr auto ship_interval = 50ms;
constexpr auto retry_interval = 1s;

enum class phase { preparing, running, finishing };

struct sup_state_t {
  supervisor_config cfg;
  job_launch job;
  phase ph = phase::preparing;
  std::string dir;
  std::string log_path;
  uint64_t launch_id = 0;
  int32_t pid = 0;
  bool stop_requested = false;
  int64_t stop_grace_ms = 0;
  /// The head does not want this job any more: stop it, report nothing.
  bool abandoned = false;
  /// The report the head has to acknowledge (running, then the final one).
  std::optional<job_report> report;
  bool report_in_flight = false;
  bool report_acked = false;
  /// Log bytes the head acknowledged; `synced` once that number is known
  /// for the current gate.
  uint64_t shipped = 0;
  bool synced = true;
  bool ship_in_flight = false;
  /// Bumped at every head change. A request to a head that died may never be
  /// answered (it only times out), so answers of an older gate are ignored
  /// and nothing waits for them.
  uint64_t gate_epoch = 0;
  bool ship_timer = false;
  bool retry_timer = false;
  static inline const char* name = "rayd.job.supervisor";
};

using sup_actor_t = job_supervisor_actor::stateful_pointer<sup_state_t>;

uint64_t file_size(const std::string& path) {
  struct stat sb {};
  return ::stat(path.c_str(), &sb) == 0 ? static_cast<uint64_t>(sb.st_size) : 0;
}

caf::expected<std::string> read_at(const std::string& path, uint64_t offset,
                                   uint64_t max) {
  int fd = ::open(path.c_str(), O_RDONLY | O_CLOEXEC);
  if (fd < 0)
    return make_error(errc::storage_error,
                      "cannot read " + path + ": " + std::strerror(errno));
  std::string out(max, '\0');
  auto n = ::pread(fd, out.data(), max, static_cast<off_t>(offset));
  ::close(fd);
  if (n < 0)
    return make_error(errc::storage_error,
                      "cannot read " + path + ": " + std::strerror(errno));
  out.resize(static_cast<size_t>(n));
  return out;
}

void retry_later(sup_actor_t self) {
  if (!self->state.retry_timer) {
    self->state.retry_timer = true;
    self->delayed_send(self, retry_interval, atoms::tick::value);
  }
}

bool log_complete(sup_actor_t self) {
  return self->state.synced && self->state.shipped >= file_size(self->state.log_path);
}

void send_report(sup_actor_t self);

/// Sends the next piece of the log. One append is in flight at a time; its
/// answer is the length the head holds, which is where the next one starts.
/// Until that length is known for the current gate (a head may have
/// restarted), the append is empty: it only asks.
void ship(sup_actor_t self) {
  auto& st = self->state;
  if (st.ship_in_flight || !st.cfg.gate || st.abandoned)
    return;
  auto id = st.job.submission_id;
  std::string data;
  if (st.synced) {
    auto size = file_size(st.log_path);
    if (st.shipped >= size) {
      send_report(self); // a final report may have waited for the log
      return;
    }
    auto chunk = read_at(st.log_path, st.shipped,
                         std::min<uint64_t>(ship_chunk_bytes, size - st.shipped));
    if (!chunk || chunk->empty()) {
      spdlog::warn("job {}: {}", id, chunk ? "log shrank" : describe(chunk.error()));
      return;
    }
    data = std::move(*chunk);
  }
  st.ship_in_flight = true;
  auto epoch = st.gate_epoch;
  self->request(st.cfg.gate, 30s, atoms::log_append::value, st.cfg.token, id,
                st.synced ? st.shipped : uint64_t{0}, std::move(data))
    .then(
      [self, epoch](uint64_t len) {
        auto& st = self->state;
        if (epoch != st.gate_epoch)
          return; // an answer of a head that is gone
        st.ship_in_flight = false;
        st.synced = true;
        st.shipped = len;
        ship(self);
      },
      [self, epoch](caf::error& err) {
        auto& st = self->state;
        if (epoch != st.gate_epoch)
          return;
        st.ship_in_flight = false;
        if (code_of(err) == errc::unauthenticated)
          spdlog::error("job {}: head refused the log: {}", st.job.submission_id,
                        describe(err));
        else
          spdlog::debug("job {}: head unreachable for logs: {}", st.job.submission_id,
                        describe(err));
        retry_later(self);
      });
}

/// Keeps new log bytes flowing while the entrypoint runs.
void arm_ship_timer(sup_actor_t self) {
  auto& st = self->state;
  if (!st.ship_timer && st.ph != phase::preparing) {
    st.ship_timer = true;
    self->delayed_send(self, ship_interval, atoms::ship::value);
  }
}

void send_report(sup_actor_t self) {
  auto& st = self->state;
  if (!st.report || st.report_in_flight || st.report_acked || !st.cfg.gate
      || st.abandoned)
    return;
  bool final = st.report->kind != job_report::running;
  // The final report goes only once the whole log is with the head, so a
  // client that sees the terminal state also sees every line.
  if (final && !log_complete(self)) {
    ship(self);
    return;
  }
  st.report->log_bytes = st.shipped;
  st.report_in_flight = true;
  auto sent = *st.report;
  auto epoch = st.gate_epoch;
  self->request(st.cfg.gate, 10s, atoms::job_report::value, st.cfg.token, sent)
    .then(
      [self, sent, epoch](bool keep) {
        auto& st = self->state;
        if (epoch != st.gate_epoch)
          return;
        st.report_in_flight = false;
        bool still_current = st.report && st.report->kind == sent.kind;
        if (sent.kind != job_report::running) {
          self->quit();
          return;
        }
        if (!keep) {
          spdlog::warn("job {}: the head no longer knows this job; stopping it",
                       st.job.submission_id);
          st.abandoned = true;
          if (st.launch_id != 0)
            st.cfg.watcher->stop(st.launch_id, st.stop_grace_ms);
          return;
        }
        if (still_current)
          st.report_acked = true;
        else
          send_report(self); // the final report came meanwhile
      },
      [self, epoch](caf::error& err) {
        if (epoch != self->state.gate_epoch)
          return;
        self->state.report_in_flight = false;
        spdlog::debug("job {}: report not delivered: {}",
                      self->state.job.submission_id, describe(err));
        retry_later(self);
      });
}

void set_report(sup_actor_t self, job_report r) {
  auto& st = self->state;
  r.submission_id = st.job.submission_id;
  r.node_id = st.cfg.node_id;
  st.report = std::move(r);
  st.report_acked = false;
  send_report(self);
}

void finish(sup_actor_t self, job_report r) {
  auto& st = self->state;
  st.ph = phase::finishing;
  r.stopped = r.stopped || st.stop_requested;
  if (st.abandoned) {
    self->quit();
    return;
  }
  set_report(self, std::move(r));
  arm_ship_timer(self);
}

void fail(sup_actor_t self, std::string message) {
  job_report r;
  r.kind = job_report::failed;
  r.message = std::move(message);
  finish(self, std::move(r));
}

std::vector<std::string> job_environment(sup_actor_t self) {
  auto& st = self->state;
  std::map<std::string, std::string> env;
  for (char** e = environ; e != nullptr && *e != nullptr; ++e) {
    std::string kv{*e};
    auto eq = kv.find('=');
    if (eq != std::string::npos)
      env[kv.substr(0, eq)] = kv.substr(eq + 1);
  }
  env.erase("RAYD_TOKEN_FILE");
  for (auto& [k, v] : st.job.env_vars)
    env[k] = v;
  // A driver started by the job joins this cluster with no flags.
  env["RAYD_ADDRESS"] = st.cfg.api_address;
  env["RAYD_TOKEN"] = st.cfg.token;
  env["RAYD_JOB_ID"] = st.job.submission_id;
  env["RAYD_NODE_ID"] = st.cfg.node_id;
  std::vector<std::string> out;
  for (auto& [k, v] : env)
    out.push_back(k + "=" + v);
  return out;
}

void launch(sup_actor_t self, const std::string& cwd) {
  auto& st = self->state;
  if (st.stop_requested) {
    job_report r;
    r.kind = job_report::exited;
    r.stopped = true;
    finish(self, std::move(r));
    return;
  }
  launch_spec spec;
  spec.shim_path = st.cfg.shim_path;
  spec.argv = {"/bin/sh", "-c", st.job.entrypoint};
  spec.env = job_environment(self);
  spec.cwd = cwd;
  spec.log_path = st.log_path;
  spec.grace_ms = st.job.stop_grace_ms;
  auto handle = caf::actor_cast<caf::actor>(self);
  auto id = st.cfg.watcher->launch(spec, [handle](const process_event& ev) {
    caf::anon_send(handle, atoms::proc_event::value, static_cast<uint8_t>(ev.what),
                   static_cast<int32_t>(ev.pid), static_cast<int32_t>(ev.exit_code),
                   static_cast<int32_t>(ev.signal), ev.message);
  });
  if (!id) {
    fail(self, "cannot start the entrypoint: " + describe(id.error()));
    return;
  }
  st.launch_id = *id;
  st.ph = phase::running;
}

/// Resolves the working directory, then launches.
void prepare(sup_actor_t self) {
  auto& st = self->state;
  auto& wd = st.job.working_dir;
  if (wd.empty()) {
    auto cwd = st.dir + "/work";
    std::error_code ec;
    fs::create_directories(cwd, ec);
    if (ec) {
      fail(self, "runtime env: cannot create " + cwd + ": " + ec.message());
      return;
    }
    launch(self, cwd);
    return;
  }
  self->request(st.cfg.agent, caf::infinite, atoms::prepare::value, wd)
    .then([self](std::string& cwd) { launch(self, cwd); },
          [self](caf::error& err) {
            fail(self, "runtime env: " + describe(err));
          });
}

} // namespace

job_supervisor_actor spawn_supervisor(caf::actor_system& sys,
                                      supervisor_config cfg, job_launch job) {
  return sys.spawn([cfg, job](sup_actor_t self)
                     -> job_supervisor_actor::behavior_type {
    auto& st = self->state;
    st.cfg = cfg;
    st.job = job;
    st.stop_grace_ms = job.stop_grace_ms;
    st.dir = cfg.session_dir + "/jobs/" + job.submission_id;
    st.log_path = st.dir + "/output.log";
    std::error_code ec;
    fs::create_directories(st.dir, ec);
    if (!ec) {
      // Fresh, empty log: a job id seen again on this node starts over.
      int fd = ::open(st.log_path.c_str(),
                      O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0640);
      if (fd >= 0)
        ::close(fd);
      else
        ec = std::error_code{errno, std::generic_category()};
    }
    if (ec)
      fail(self, "cannot create the job directory " + st.dir + ": " + ec.message());
    else
      prepare(self);
    return {
      [self](atoms::job_stop, int64_t grace_ms) {
        auto& st = self->state;
        if (st.stop_requested || st.ph == phase::finishing)
          return;
        st.stop_requested = true;
        st.stop_grace_ms = grace_ms;
        if (st.launch_id != 0)
          st.cfg.watcher->stop(st.launch_id, grace_ms);
        // PREPARING: launch() sees the flag and reports STOPPED instead.
      },
      [self](atoms::head_changed, gcs_gate_actor& gate, std::string& api) {
        auto& st = self->state;
        st.cfg.gate = std::move(gate);
        st.cfg.api_address = std::move(api);
        st.synced = false; // the new head tells what log it holds
        st.report_acked = false;
        ++st.gate_epoch; // forget requests to the old gate
        st.ship_in_flight = false;
        st.report_in_flight = false;
        ship(self);
      },
      [self](atoms::proc_event, uint8_t kind, int32_t pid, int32_t code,
             int32_t sig, std::string& message) {
        auto& st = self->state;
        switch (static_cast<process_event::kind>(kind)) {
          case process_event::kind::started: {
            st.pid = pid;
            job_report r;
            r.kind = job_report::running;
            r.pid = pid;
            set_report(self, std::move(r));
            arm_ship_timer(self);
            break;
          }
          case process_event::kind::exited: {
            job_report r;
            r.kind = job_report::exited;
            r.pid = st.pid;
            r.exit_code = code;
            r.exit_signal = sig;
            finish(self, std::move(r));
            break;
          }
          case process_event::kind::failed:
            fail(self, message);
            break;
        }
      },
      [self](atoms::ship) {
        self->state.ship_timer = false;
        ship(self);
        arm_ship_timer(self);
      },
      [self](atoms::tick) {
        self->state.retry_timer = false;
        ship(self);
        send_report(self);
      },
    };
  });
}

} // namespace rayd::node
