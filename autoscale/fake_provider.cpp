#include "autoscale/fake_provider.hpp"

#include <cstdio>

#include "common/error.hpp"

namespace rayd::autoscale {

fake_provider::fake_provider(fake_provider_options options)
  : options_(std::move(options)), rng_(options_.seed) {
  if (!options_.clock)
    options_.clock = [] { return std::chrono::steady_clock::now(); };
}

std::chrono::steady_clock::time_point fake_provider::now() const {
  return options_.clock();
}

void fake_provider::advance(entry& e, std::chrono::steady_clock::time_point now) const {
  if (e.inst.state == provider_instance::pending && now >= e.ready_at)
    e.inst.state = provider_instance::running;
}

caf::expected<std::vector<std::string>> fake_provider::create(const instance_spec& spec,
                                                              int32_t count) {
  std::lock_guard<std::mutex> guard{mtx_};
  ++create_calls_;
  if (auto err = check_create_args(spec, count))
    return err;
  const auto& request = spec.tags.at(tag_launch_request);
  std::vector<std::string> ids;
  for (auto& [id, e] : instances_) {
    if (static_cast<int32_t>(ids.size()) == count)
      break;
    auto i = e.inst.tags.find(tag_launch_request);
    if (i != e.inst.tags.end() && i->second == request && is_live(e.inst.state))
      ids.push_back(id);
  }
  auto t = now();
  std::uniform_real_distribution<double> roll{0.0, 1.0};
  while (static_cast<int32_t>(ids.size()) < count) {
    char buf[32];
    std::snprintf(buf, sizeof(buf), "fake-%08lld", static_cast<long long>(next_id_++));
    entry e;
    e.inst.instance_id = buf;
    e.inst.node_type = spec.node_type;
    e.inst.tags = instance_tags(spec, options_.cluster_name);
    e.ready_at = t + options_.launch_delay;
    if (options_.failure_rate > 0 && roll(rng_) < options_.failure_rate) {
      e.inst.state = provider_instance::failed;
      e.inst.error = "simulated launch failure";
    }
    ids.push_back(buf);
    instances_.emplace(buf, std::move(e));
  }
  return ids;
}

caf::error fake_provider::terminate(const std::vector<std::string>& instance_ids) {
  std::lock_guard<std::mutex> guard{mtx_};
  for (auto& id : instance_ids)
    instances_.erase(id);
  return caf::none;
}

caf::expected<std::vector<provider_instance>> fake_provider::list() {
  std::lock_guard<std::mutex> guard{mtx_};
  auto t = now();
  std::vector<provider_instance> out;
  out.reserve(instances_.size());
  for (auto& [id, e] : instances_) {
    advance(e, t);
    out.push_back(e.inst);
  }
  return out;
}

bool fake_provider::set_running(const std::string& id) {
  std::lock_guard<std::mutex> guard{mtx_};
  auto i = instances_.find(id);
  if (i == instances_.end())
    return false;
  i->second.inst.state = provider_instance::running;
  i->second.inst.error.clear();
  return true;
}

bool fake_provider::set_terminated(const std::string& id, const std::string& why) {
  std::lock_guard<std::mutex> guard{mtx_};
  auto i = instances_.find(id);
  if (i == instances_.end())
    return false;
  i->second.inst.state = provider_instance::terminated;
  i->second.inst.error = why;
  return true;
}

bool fake_provider::set_failed(const std::string& id, const std::string& why) {
  std::lock_guard<std::mutex> guard{mtx_};
  auto i = instances_.find(id);
  if (i == instances_.end())
    return false;
  i->second.inst.state = provider_instance::failed;
  i->second.inst.error = why;
  return true;
}

int64_t fake_provider::create_calls() const {
  std::lock_guard<std::mutex> guard{mtx_};
  return create_calls_;
}

int64_t fake_provider::instances_created() const {
  std::lock_guard<std::mutex> guard{mtx_};
  return next_id_ - 1;
}

} // namespace rayd::autoscale
