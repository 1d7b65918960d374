// The head's autoscaler actor (autoscaler_actor.hpp). The decisions are
// autoscale::autoscaler's; this file only gathers a round's input, carries
// the side effects out and feeds their outcome back.
//
// Threads: the provider's calls block (they start processes, wait for an
// executable), so they run in a detached actor of their own — one call at a
// time, in the order asked — and never on the scheduler's threads.

#include "actors/gcs/spawn.hpp"

#include <sys/stat.h>

#include <chrono>
#include <filesystem>
#include <fstream>
#include <memory>
#include <sstream>

#include <caf/all.hpp>
#include <spdlog/spdlog.h>

#include "autoscale/autoscaler.hpp"
#include "autoscale/cluster_config.hpp"
#include "autoscale/command_provider.hpp"
#include "autoscale/fake_provider.hpp"
#include "autoscale/processes_provider.hpp"
#include "common/error.hpp"
#include "common/util.hpp"

CAF_ALLOW_UNSAFE_MESSAGE_TYPE(rayd::autoscale::create_call)
CAF_ALLOW_UNSAFE_MESSAGE_TYPE(rayd::autoscale::terminate_call)
CAF_ALLOW_UNSAFE_MESSAGE_TYPE(std::vector<rayd::autoscale::provider_instance>)

namespace rayd::gcs {

namespace {

using namespace std::chrono_literals;
namespace fs = std::filesystem;

std::unique_ptr<autoscale::node_provider>
make_provider(const autoscale::cluster_config& c, const autoscaler_config& cfg) {
  switch (c.provider.type) {
    case autoscale::provider_kind::processes: {
      autoscale::processes_provider_options o;
      o.cluster_name = c.cluster_name;
      o.head_address = cfg.head_address;
      o.token_file = cfg.token_file;
      return std::make_unique<autoscale::processes_provider>(std::move(o));
    }
    case autoscale::provider_kind::fake: {
      autoscale::fake_provider_options o;
      o.cluster_name = c.cluster_name;
      o.launch_delay = std::chrono::milliseconds{
        static_cast<int64_t>(c.provider.fake.launch_delay_s * 1000)};
      o.failure_rate = c.provider.fake.failure_rate;
      return std::make_unique<autoscale::fake_provider>(std::move(o));
    }
    case autoscale::provider_kind::command: {
      autoscale::command_provider_options o;
      o.cluster_name = c.cluster_name;
      // A relative path is relative to the config file's directory.
      fs::path cmd = c.provider.command.command;
      if (cmd.is_relative() && c.provider.command.command.find('/') != std::string::npos)
        cmd = fs::path{cfg.config_path}.parent_path() / cmd;
      o.command = {cmd.string()};
      o.timeout = std::chrono::milliseconds{
        static_cast<int64_t>(c.provider.command.timeout_s * 1000)};
      return std::make_unique<autoscale::command_provider>(std::move(o));
    }
  }
  return nullptr;
}

/// Runs one provider call; an exception out of a provider becomes an error
/// (a provider bug must not end the autoscaler).
template <class F>
auto guarded(const char* what, F f) -> decltype(f()) {
  try {
    return f();
  } catch (const std::exception& e) {
    return make_error(errc::internal, std::string{"provider "} + what + " threw: " + e.what());
  } catch (...) {
    return make_error(errc::internal, std::string{"provider "} + what + " threw");
  }
}

/// The provider's thread: one blocking call at a time.
caf::behavior provider_worker(caf::event_based_actor* self,
                              std::shared_ptr<autoscale::node_provider> p) {
  (void) self;
  return {
    [p](atoms::provider_list) -> caf::result<std::vector<autoscale::provider_instance>> {
      auto r = guarded("list", [&p] { return p->list(); });
      if (!r)
        return r.error();
      return std::move(*r);
    },
    [p](atoms::provider_create, autoscale::create_call& c) -> caf::result<bool> {
      auto r = guarded("create", [&p, &c] { return p->create(c.spec, 1); });
      if (!r)
        return r.error();
      return true;
    },
    [p](atoms::provider_terminate, autoscale::terminate_call& c) -> caf::result<bool> {
      auto err = guarded("terminate", [&p, &c] { return p->terminate(c.provider_ids); });
      if (err)
        return err;
      return true;
    },
  };
}

struct file_stamp {
  int64_t mtime_ns = 0;
  int64_t size = -1;
  bool operator==(const file_stamp& o) const {
    return mtime_ns == o.mtime_ns && size == o.size;
  }
};

file_stamp stamp_of(const std::string& path) {
  struct stat sb {};
  if (::stat(path.c_str(), &sb) != 0)
    return {};
  return {static_cast<int64_t>(sb.st_mtim.tv_sec) * 1000000000 + sb.st_mtim.tv_nsec,
          static_cast<int64_t>(sb.st_size)};
}

struct as_state_t {
  autoscaler_config cfg;
  std::shared_ptr<autoscale::autoscaler> core;
  caf::actor provider; // the provider's thread
  autoscale::cluster_config config;
  file_stamp config_stamp;
  std::vector<launchable_type> published;
  bool published_once = false;
  bool round_running = false;
  /// Rounds in a row whose provider list failed: the next round waits
  /// longer (back-off up to 10 s), so a broken provider is not hammered.
  int list_failures = 0;
  /// The time between rounds for this provider (see spawn_autoscaler).
  caf::timespan interval{};
  static inline const char* name = "rayd.gcs.autoscaler";
};

using round_atom = caf::atom_constant<caf::atom("r_asround")>;

using autoscaler_impl_actor = autoscaler_actor::extend<caf::reacts_to<round_atom>>;
using as_actor_t = autoscaler_impl_actor::stateful_pointer<as_state_t>;

/// Re-reads the config file when it changed. A bad file keeps the config
/// in force and is reported; a changed provider type needs a head restart.
void reload_config(as_actor_t self) {
  auto& st = self->state;
  auto stamp = stamp_of(st.cfg.config_path);
  if (stamp == st.config_stamp)
    return;
  st.config_stamp = stamp;
  auto c = autoscale::load_cluster_config(st.cfg.config_path);
  if (!c) {
    spdlog::warn("autoscaler: keeping the config in force: {}", describe(c.error()));
    st.core->set_config_error(describe(c.error()));
    return;
  }
  if (c->provider.type != st.config.provider.type || c->cluster_name != st.config.cluster_name) {
    auto why = st.cfg.config_path
               + ": provider.type and cluster_name cannot change while the head runs "
                 "(restart the head); keeping the config in force";
    spdlog::warn("autoscaler: {}", why);
    st.core->set_config_error(why);
    return;
  }
  spdlog::info("autoscaler: config {} reloaded", st.cfg.config_path);
  st.config = *c;
  st.core->set_config(c->autoscaling);
}

void publish_launchable(as_actor_t self) {
  auto& st = self->state;
  auto types = st.core->launchable();
  bool same = st.published_once && types.size() == st.published.size()
              && std::equal(types.begin(), types.end(), st.published.begin(),
                            [](auto& a, auto& b) {
                              return a.name == b.name && a.resources == b.resources
                                     && a.labels == b.labels;
                            });
  if (same)
    return;
  st.published = types;
  st.published_once = true;
  self->send(st.cfg.nodes, atoms::set_launchable::value, types);
  self->send(st.cfg.jobs, atoms::set_launchable::value, types);
}

void carry_out(as_actor_t self, autoscale::round_actions acts);

void terminate(as_actor_t self, autoscale::terminate_call call) {
  auto& st = self->state;
  self->request(st.provider, caf::infinite, atoms::provider_terminate::value, call)
    .then(
      [self, call](bool) {
        spdlog::info("autoscaler: terminated {} instance(s)", call.provider_ids.size());
        self->state.core->terminated(call, {}, now_ms());
      },
      [self, call](caf::error& err) {
        spdlog::warn("autoscaler: terminate failed: {}", describe(err));
        self->state.core->terminated(call, err, now_ms());
      });
}

void drain(as_actor_t self, autoscale::drain_call call) {
  auto& st = self->state;
  auto refused = [self, call](const std::string& why) {
    spdlog::info("autoscaler: drain of node {} refused: {}", call.node_id, why);
    carry_out(self, self->state.core->drained(call, false, now_ms()));
  };
  self->request(st.cfg.nodes, 5s, atoms::lookup::value, call.node_id)
    .then(
      [self, call, refused](node_manager_actor& nm) {
        self->request(nm, 5s, atoms::drain::value, true)
          .then(
            [self, call, refused](bool ok) {
              if (!ok) {
                refused("work arrived");
                return;
              }
              carry_out(self, self->state.core->drained(call, true, now_ms()));
            },
            [refused](caf::error& err) { refused(describe(err)); });
      },
      [self, call](caf::error&) {
        // Not connected (it died meanwhile): terminate without a drain.
        carry_out(self, self->state.core->drained(call, true, now_ms()));
      });
}

void carry_out(as_actor_t self, autoscale::round_actions acts) {
  auto& st = self->state;
  for (auto& c : acts.creates) {
    spdlog::info("autoscaler: launching {} ({})", c.instance_id, c.spec.node_type);
    auto id = c.instance_id;
    self->request(st.provider, caf::infinite, atoms::provider_create::value, c)
      .then([self, id](bool) { self->state.core->created(id, {}, now_ms()); },
            [self, id](caf::error& err) {
              spdlog::warn("autoscaler: launching {} failed: {}", id, describe(err));
              self->state.core->created(id, err, now_ms());
            });
  }
  for (auto& d : acts.drains)
    drain(self, d);
  for (auto& t : acts.terminates)
    terminate(self, t);
}

/// One round: the provider's list, then the GCS's view, then the decision.
void run_round(as_actor_t self) {
  auto& st = self->state;
  if (st.round_running)
    return;
  st.round_running = true;
  reload_config(self);
  publish_launchable(self);
  auto in = std::make_shared<autoscale::round_input>();
  // A failed step ends the round without a decision (the core reports it).
  auto fail = [self, in](caf::error err) {
    in->now_ms = now_ms();
    if (in->provider)
      in->gcs = std::move(err); // the list came; a GCS actor did not answer
    else
      in->provider = std::move(err);
    self->state.core->round(*in);
    self->state.round_running = false;
  };
  auto finish = [self, in] {
    in->now_ms = now_ms();
    auto acts = self->state.core->round(*in);
    self->state.round_running = false;
    carry_out(self, std::move(acts));
  };
  auto ask_jobs = [self, in, finish, fail] {
    self->request(self->state.cfg.jobs, 5s, atoms::demand::value)
      .then(
        [in, finish](demand_report& r) {
          for (auto& d : r.demands)
            add_demand(in->demands, d);
          for (auto& [n, c] : r.per_node)
            in->placed[n] += c;
          finish();
        },
        [fail](caf::error& err) { fail(err); });
  };
  auto ask_actors = [self, in, ask_jobs, fail] {
    self->request(self->state.cfg.actors, 5s, atoms::demand::value)
      .then(
        [in, ask_jobs](demand_report& r) {
          in->demands = std::move(r.demands);
          in->placed = std::move(r.per_node);
          ask_jobs();
        },
        [fail](caf::error& err) { fail(err); });
  };
  auto ask_nodes = [self, in, ask_actors, fail] {
    self->request(self->state.cfg.nodes, 5s, atoms::nodes::value)
      .then(
        [in, ask_actors](cluster_view& v) {
          in->nodes = std::move(v.nodes);
          ask_actors();
        },
        [fail](caf::error& err) { fail(err); });
  };
  // The provider's list may wait behind creates and terminations on its
  // thread: that is the point (their effect is observed in this round).
  self->request(st.provider, caf::infinite, atoms::provider_list::value)
    .then(
      [self, in, ask_nodes](std::vector<autoscale::provider_instance>& list) {
        self->state.list_failures = 0;
        in->provider = std::move(list);
        ask_nodes();
      },
      [self, in, fail](caf::error& err) {
        if (self->state.list_failures++ == 0 || self->state.list_failures % 10 == 0)
          spdlog::warn("autoscaler: the provider's list failed ({} in a row): {}",
                       self->state.list_failures, describe(err));
        fail(err);
      });
}

} // namespace

caf::expected<autoscaler_actor> spawn_autoscaler(caf::actor_system& sys,
                                                 autoscaler_config cfg) {
  auto config = autoscale::load_cluster_config(cfg.config_path);
  if (!config)
    return config.error();
  autoscale::autoscaler_settings s;
  s.cluster_name = config->cluster_name;
  s.provider_type = autoscale::to_string(config->provider.type);
  s.config = config->autoscaling;
  auto core = std::make_shared<autoscale::autoscaler>(*cfg.db, s);
  if (auto err = core->load())
    return make_error(errc::storage_error,
                      "cannot read the autoscaler's instance table: " + describe(err));
  std::shared_ptr<autoscale::node_provider> provider = make_provider(*config, cfg);
  auto worker = sys.spawn<caf::detached>(provider_worker, provider);
  auto stamp = stamp_of(cfg.config_path);
  spdlog::info("autoscaler: cluster {} with the {} provider, config {}",
               config->cluster_name, s.provider_type, cfg.config_path);
  return sys.spawn([cfg, config = *config, stamp, worker, core](
                     as_actor_t self) mutable -> autoscaler_impl_actor::behavior_type {
    auto& st = self->state;
    st.cfg = cfg;
    st.config = config;
    st.config_stamp = stamp;
    st.provider = worker;
    // Every round lists the provider's instances: cheap for processes and
    // fake (a file, /proc), one process spawn for command — which then
    // runs its rounds at most once a second.
    st.interval = config.provider.type == autoscale::provider_kind::command
                    ? std::max<caf::timespan>(cfg.round_interval, std::chrono::seconds{1})
                    : cfg.round_interval;
    st.core = core;
    self->link_to(worker);
    self->send(self, round_atom::value);
    return {
      [self](atoms::autoscale_status) { return self->state.core->status_json(); },
      [self](atoms::request_resources,
             std::vector<resource_map>& bundles) -> caf::result<bool> {
        if (auto err = self->state.core->set_requests(std::move(bundles)))
          return err;
        return true;
      },
      [self](round_atom) {
        auto& st = self->state;
        run_round(self);
        auto wait = st.interval;
        for (int k = 0; k < st.list_failures && wait < std::chrono::seconds{10}; ++k)
          wait *= 2;
        self->delayed_send(self, std::min<caf::timespan>(wait, std::chrono::seconds{10}),
                           round_atom::value);
      },
    };
  });
}

} // namespace rayd::gcs
