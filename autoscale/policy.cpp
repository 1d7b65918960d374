#include "autoscale/policy.hpp"

#include <algorithm>
#include <cmath>
#include <cstdio>
#include <limits>
#include <memory>
#include <numeric>
#include <set>
#include <tuple>

namespace rayd::autoscale {

namespace {

constexpr double epsilon = 1e-9;

// Resource maps become dense vectors over the round's resource names, so the
// inner loops of bin-packing compare a few doubles instead of walking maps.
using vec = std::vector<double>;

struct resource_index {
  std::map<std::string, size_t> ids;
  std::vector<std::string> names;

  void add(const resource_map& m) {
    for (auto& [name, amount] : m)
      if (ids.emplace(name, names.size()).second)
        names.push_back(name);
  }

  vec dense(const resource_map& m) const {
    vec out(names.size(), 0.0);
    for (auto& [name, amount] : m)
      out[ids.at(name)] = amount;
    return out;
  }
};

/// How many units of `need` fit into `room`, at most `cap`. A shape asking
/// for nothing fits `cap` times.
int64_t how_many(const vec& need, const vec& room, int64_t cap) {
  double n = static_cast<double>(cap);
  for (size_t i = 0; i < need.size(); ++i)
    if (need[i] > 0)
      n = std::min(n, std::floor((room[i] + epsilon) / need[i]));
  return n <= 0 ? 0 : static_cast<int64_t>(n);
}

void take(vec& room, const vec& need, int64_t units) {
  for (size_t i = 0; i < need.size(); ++i)
    room[i] -= need[i] * static_cast<double>(units);
}

/// Leaves of `width` numbers under a binary tree whose inner nodes hold the
/// per-column max (or min) of their leaves, so a search for the leftmost
/// leaf that can hold something skips every subtree whose bound says none
/// there can. First fit over thousands of nodes or shapes costs about
/// log(n) per placement instead of a scan.
class bound_tree {
public:
  enum class mode { max, min };

  bound_tree(size_t width, mode m, const std::vector<vec>& leaves)
    : width_(width), mode_(m) {
    size_ = 1;
    while (size_ < leaves.size())
      size_ *= 2;
    double pad = m == mode::max ? -std::numeric_limits<double>::infinity()
                                : std::numeric_limits<double>::infinity();
    data_.assign(2 * size_ * width_, pad);
    for (size_t i = 0; i < leaves.size(); ++i)
      std::copy(leaves[i].begin(), leaves[i].end(), at(size_ + i));
    for (size_t n = size_; n-- > 1;)
      pull(n);
  }

  void set(size_t leaf, const vec& value) {
    std::copy(value.begin(), value.end(), at(size_ + leaf));
    for (size_t n = (size_ + leaf) / 2; n >= 1; n /= 2)
      pull(n);
  }

  static constexpr size_t none = std::numeric_limits<size_t>::max();

  /// The leftmost leaf >= `from` with `accept(leaf)`, visiting only subtrees
  /// for which `hopeless(bound)` is false.
  template <class Hopeless, class Accept>
  size_t find(size_t from, const Hopeless& hopeless, const Accept& accept) const {
    return find(1, 0, size_, from, hopeless, accept);
  }

private:
  double* at(size_t node) {
    return data_.data() + node * width_;
  }
  const double* at(size_t node) const {
    return data_.data() + node * width_;
  }

  void pull(size_t n) {
    auto out = at(n);
    auto l = at(2 * n);
    auto r = at(2 * n + 1);
    for (size_t i = 0; i < width_; ++i)
      out[i] = mode_ == mode::max ? std::max(l[i], r[i]) : std::min(l[i], r[i]);
  }

  template <class Hopeless, class Accept>
  size_t find(size_t n, size_t lo, size_t hi, size_t from, const Hopeless& hopeless,
              const Accept& accept) const {
    if (hi <= from || hopeless(at(n)))
      return none;
    if (hi - lo == 1)
      return accept(lo) ? lo : none;
    size_t mid = (lo + hi) / 2;
    auto r = find(2 * n, lo, mid, from, hopeless, accept);
    return r != none ? r : find(2 * n + 1, mid, hi, from, hopeless, accept);
  }

  size_t width_;
  mode mode_;
  size_t size_;
  std::vector<double> data_;
};

// A place demand can go: an existing node (its available or, if pending, its
// total) or a node this round launches (its total).
enum class bin_kind { running, pending, planned };

struct bin {
  bin_kind kind;
  vec room;
  const label_map* labels;
  int64_t node = -1; // index into snapshot::nodes; -1 for provider surplus / planned
  std::string type;
  bool took_demand = false;
};

// Demands with the same shape and selector are packed as one group, so the
// work grows with the number of distinct shapes, not with their counts.
struct group {
  vec need;
  const resource_map* shape;
  const label_map* selector;
  double size = 0;               // sort key: normalised amount, bigger first
  int64_t remaining = 0;
  std::vector<int64_t> members;  // indices into the demand / request list
  std::vector<wait_part> parts;  // what became of its units, in order
  std::map<std::string, std::pair<int64_t, int32_t>> launched; // type → units, nodes
};

struct type_info {
  const node_type_config* config;
  vec total;
  int32_t all = 0;    // workers of the type that exist (max_workers counts these)
  int32_t alive = 0;  // running or pending (min_workers counts these)
  int32_t budget = 0; // launches left under the type's max_workers
  bool backing_off = false;
  int32_t planned = 0;
};

std::string plural(int64_t n, const char* one, const char* many) {
  return std::to_string(n) + " " + (n == 1 ? one : many);
}

const char* kind_noun(demand_kind k, int64_t n) {
  switch (k) {
    case demand_kind::task: return n == 1 ? "task" : "tasks";
    case demand_kind::actor: return n == 1 ? "actor" : "actors";
    case demand_kind::job: return n == 1 ? "job entrypoint" : "job entrypoints";
  }
  return "demands";
}

std::string describe_selector(const label_map& selector) {
  std::string out;
  for (auto& [k, v] : selector)
    out += (out.empty() ? "" : ",") + k + "=" + v;
  return out;
}

std::string describe_demand(const demand& d) {
  auto out = std::to_string(d.count) + " " + describe_shape(d.shape) + " "
             + kind_noun(d.kind, d.count);
  if (!d.selector.empty())
    out += " on labels " + describe_selector(d.selector);
  return out;
}

/// The round's state while deciding; `decide` runs its steps in order.
class planner {
public:
  planner(const snapshot& snap, const autoscaling_config& config,
          const policy_options& options)
    : snap_(snap), config_(config), options_(options) {
  }

  decision run() {
    index_resources();
    count_types();
    compute_backoffs();
    compute_budget();
    build_bins();
    launch_min_workers();
    place_requests();
    place_demands();
    explain_demands();
    choose_terminations();
    emit_launches();
    return std::move(out_);
  }

private:
  // -- setup ------------------------------------------------------------------

  void index_resources() {
    for (auto& n : snap_.nodes) {
      res_.add(n.total);
      res_.add(n.available);
    }
    for (auto& d : snap_.demands)
      res_.add(d.shape);
    for (auto& r : snap_.requests)
      res_.add(r);
    for (auto& [name, t] : config_.node_types)
      res_.add(t.resources);
    // Normalisation for the sort key: the largest amount of each resource
    // any node or type offers.
    scale_.assign(res_.names.size(), 0.0);
    auto widen = [this](const resource_map& m) {
      for (auto& [name, amount] : m) {
        auto& s = scale_[res_.ids.at(name)];
        s = std::max(s, amount);
      }
    };
    for (auto& n : snap_.nodes)
      widen(n.total);
    for (auto& [name, t] : config_.node_types)
      widen(t.resources);
    for (auto& s : scale_)
      if (s <= 0)
        s = 1;
  }

  double size_of(const vec& need) const {
    double s = 0;
    for (size_t i = 0; i < need.size(); ++i)
      s += need[i] / scale_[i];
    return s;
  }

  void count_types() {
    for (auto& [name, t] : config_.node_types) {
      auto& info = types_[name];
      info.config = &t;
      info.total = res_.dense(t.resources);
    }
    std::map<std::string, int32_t> seen;
    for (auto& n : snap_.nodes) {
      if (n.is_head)
        continue;
      ++workers_all_;
      if (n.state == node_state::running)
        ++workers_running_;
      else if (n.state == node_state::pending)
        ++workers_pending_;
      auto i = types_.find(n.type);
      if (i == types_.end())
        continue;
      ++seen[n.type];
      ++i->second.all;
      if (n.state != node_state::draining)
        ++i->second.alive;
    }
    // Instances the provider has that have not shown up as nodes yet are
    // pending nodes: counted, and their totals take demand.
    for (auto& [name, view] : snap_.provider) {
      auto i = types_.find(name);
      if (i == types_.end())
        continue;
      int32_t surplus = view.instances - seen[name];
      if (surplus <= 0)
        continue;
      surplus_[name] = surplus;
      i->second.all += surplus;
      i->second.alive += surplus;
      workers_all_ += surplus;
      workers_pending_ += surplus;
    }
    for (auto& [name, info] : types_)
      info.budget = std::max(0, info.config->max_workers - info.all);
    cluster_budget_ = std::max(0, config_.max_workers - workers_all_);
  }

  void compute_backoffs() {
    for (auto& [name, view] : snap_.provider) {
      auto i = types_.find(name);
      if (i == types_.end())
        continue;
      int32_t k = 0;
      duration last{std::numeric_limits<duration::rep>::min()};
      std::string last_error;
      for (auto& f : view.failures) {
        if (snap_.now - f.at > options_.failure_window)
          continue;
        ++k;
        if (f.at >= last) {
          last = f.at;
          last_error = f.error;
        }
      }
      if (k == 0)
        continue;
      auto wait = options_.backoff_base;
      for (int32_t j = 1; j < k && wait < options_.backoff_max; ++j)
        wait *= 2;
      wait = std::min(wait, options_.backoff_max);
      auto retry_at = last + wait;
      if (snap_.now >= retry_at)
        continue;
      i->second.backing_off = true;
      type_backoff b;
      b.type = name;
      b.failures = k;
      b.retry_in = retry_at - snap_.now;
      b.last_error = last_error;
      b.text = "type " + name + " backing off after "
               + plural(k, "failed launch", "failed launches") + " (last: "
               + last_error + "), retry in " + format_duration(b.retry_in);
      out_.backoffs.push_back(std::move(b));
    }
  }

  void compute_budget() {
    // Ray's rule: at most max(5, upscaling_speed × workers running or
    // pending) launches per round, so a cluster grows geometrically and a
    // burst of demand cannot start thousands of nodes from nothing at once.
    double speed = config_.upscaling_speed > 0 ? config_.upscaling_speed : 0.0; // NaN too
    double by_speed = std::min(
      speed * static_cast<double>(workers_running_ + workers_pending_), 1e9);
    budget_ = std::max<int32_t>(5, static_cast<int32_t>(std::floor(by_speed)));
    out_.launch_budget = budget_;
  }

  void build_bins() {
    max_total_.assign(res_.names.size(), 0.0);
    for (auto& n : snap_.nodes) {
      node_totals_.push_back(res_.dense(n.total));
      if (n.state != node_state::draining)
        for (size_t i = 0; i < max_total_.size(); ++i)
          max_total_[i] = std::max(max_total_[i], node_totals_.back()[i]);
    }
    for (size_t i = 0; i < snap_.nodes.size(); ++i) {
      auto& n = snap_.nodes[i];
      if (n.state == node_state::running)
        bins_.push_back({bin_kind::running, res_.dense(n.available), &n.labels,
                         static_cast<int64_t>(i), n.type});
    }
    for (size_t i = 0; i < snap_.nodes.size(); ++i) {
      auto& n = snap_.nodes[i];
      if (n.state == node_state::pending)
        bins_.push_back({bin_kind::pending, res_.dense(n.total), &n.labels,
                         static_cast<int64_t>(i), n.type});
    }
    for (auto& [name, count] : surplus_) {
      auto& t = types_.at(name);
      for (int32_t j = 0; j < count; ++j)
        bins_.push_back({bin_kind::pending, t.total, &t.config->labels, -1, name});
    }
  }

  // -- launching --------------------------------------------------------------

  bool can_launch(const type_info& t) const {
    return !t.backing_off && t.budget > 0 && cluster_budget_ > 0 && budget_ > 0;
  }

  /// Adds `n` nodes of `type` to the plan; returns how many fit the limits.
  int32_t plan(type_info& t, int32_t n) {
    n = std::min({n, t.budget, cluster_budget_, budget_});
    if (n <= 0)
      return 0;
    t.budget -= n;
    cluster_budget_ -= n;
    budget_ -= n;
    t.planned += n;
    return n;
  }

  void add_planned_bins(const type_info& t, int32_t n, const vec& room) {
    for (int32_t j = 0; j < n; ++j)
      bins_.push_back({bin_kind::planned, room, &t.config->labels, -1,
                       t.config->name});
  }

  void launch_min_workers() {
    for (auto& [name, t] : types_) {
      int32_t missing = t.config->min_workers - t.alive;
      if (missing <= 0)
        continue;
      int32_t n = plan(t, missing);
      if (n == 0)
        continue;
      purposes_[name].push_back({launch_cause::min_workers, -1, n});
      min_text_[name] = std::to_string(n) + " for min_workers "
                        + std::to_string(t.config->min_workers) + " (has "
                        + std::to_string(t.alive) + ")";
      add_planned_bins(t, n, t.total);
    }
  }

  std::vector<group> make_groups(const std::vector<const resource_map*>& shapes,
                                 const std::vector<const label_map*>& selectors,
                                 const std::vector<int64_t>& counts) {
    // Keyed by the dense shape (cheap to compare) and the selector.
    using key = std::pair<const vec*, const label_map*>;
    auto less = [](const key& a, const key& b) {
      if (*a.first != *b.first)
        return *a.first < *b.first;
      return *a.second < *b.second;
    };
    std::map<key, size_t, decltype(less)> by_key(less);
    std::vector<vec> needs(shapes.size());
    std::vector<group> groups;
    for (size_t i = 0; i < shapes.size(); ++i) {
      if (counts[i] <= 0)
        continue;
      needs[i] = res_.dense(*shapes[i]);
      auto [it, fresh] = by_key.emplace(key{&needs[i], selectors[i]}, groups.size());
      if (fresh) {
        group g;
        g.need = needs[i];
        g.shape = shapes[i];
        g.selector = selectors[i];
        g.size = size_of(g.need);
        groups.push_back(std::move(g));
      }
      auto& g = groups[it->second];
      g.remaining += counts[i];
      g.members.push_back(static_cast<int64_t>(i));
    }
    // First fit decreasing: big shapes first, ties in input order.
    std::stable_sort(groups.begin(), groups.end(),
                     [](const group& a, const group& b) { return a.size > b.size; });
    return groups;
  }

  /// Packs each group into `bins_` (in order: running, pending, planned),
  /// first fit; with `record_parts`, notes where the units went. Each
  /// distinct selector searches its own tree over the bins whose labels it
  /// matches, so a selector never walks the bins of other zones.
  void pack_into_bins(std::vector<group>& groups, bool record_parts) {
    if (bins_.empty())
      return;
    struct view {
      std::vector<size_t> bins;    // leaf → index into bins_
      std::vector<size_t> leaf_of; // index into bins_ → leaf (none: not here)
      std::unique_ptr<bound_tree> tree;
    };
    std::map<label_map, view> views;
    auto view_for = [this, &views](const label_map& selector) -> view& {
      auto [it, fresh] = views.try_emplace(selector);
      auto& v = it->second;
      if (fresh) {
        v.leaf_of.assign(bins_.size(), bound_tree::none);
        std::vector<vec> rooms;
        for (size_t bi = 0; bi < bins_.size(); ++bi)
          if (labels_match(selector, *bins_[bi].labels)) {
            v.leaf_of[bi] = v.bins.size();
            v.bins.push_back(bi);
            rooms.push_back(bins_[bi].room);
          }
        v.tree = std::make_unique<bound_tree>(res_.names.size(), bound_tree::mode::max, rooms);
      }
      return v;
    };
    for (auto& g : groups) {
      int64_t on_running = 0, on_pending = 0;
      auto& v = view_for(*g.selector);
      // A subtree is hopeless when even its roomiest bin lacks a resource.
      auto hopeless = [&need = g.need](const double* most) {
        for (size_t i = 0; i < need.size(); ++i)
          if (need[i] > 0 && most[i] + epsilon < need[i])
            return true;
        return false;
      };
      auto accept = [this, &g, &v](size_t leaf) {
        return leaf < v.bins.size() && how_many(g.need, bins_[v.bins[leaf]].room, 1) == 1;
      };
      for (size_t from = 0; g.remaining > 0;) {
        auto leaf = v.tree->find(from, hopeless, accept);
        if (leaf == bound_tree::none)
          break;
        auto bi = v.bins[leaf];
        auto& b = bins_[bi];
        auto n = how_many(g.need, b.room, g.remaining);
        take(b.room, g.need, n);
        for (auto& [_, other] : views) // every tree that holds this bin
          if (other.leaf_of[bi] != bound_tree::none)
            other.tree->set(other.leaf_of[bi], b.room);
        g.remaining -= n;
        b.took_demand = true;
        if (b.kind == bin_kind::running)
          on_running += n;
        else if (b.kind == bin_kind::pending)
          on_pending += n;
        else
          g.launched[b.type].first += n;
        from = leaf + 1;
      }
      if (!record_parts)
        continue;
      if (on_running > 0) {
        wait_part p;
        p.reason = wait_reason::fits_existing;
        p.units = on_running;
        g.parts.push_back(std::move(p));
      }
      if (on_pending > 0) {
        wait_part p;
        p.reason = wait_reason::fits_pending;
        p.units = on_pending;
        g.parts.push_back(std::move(p));
      }
    }
  }

  struct pack_result {
    std::vector<std::pair<size_t, int64_t>> units; // group → units per node
    vec room;
    double utilization = 0;
    int64_t total_units = 0;
  };

  /// The groups an empty node of one type can hold at all, split by which
  /// resources they ask for (their signature), each run biggest first under
  /// a min-tree of their needs: within one signature every column is asked
  /// for, so a subtree whose smallest need exceeds the room is skipped whole,
  /// and a node fills in a few searches whatever the number of shapes. The
  /// last column marks used-up groups (+inf) so searches skip them.
  struct signature_run {
    std::vector<size_t> groups;
    std::unique_ptr<bound_tree> tree;
  };
  struct candidates {
    std::vector<signature_run> runs;
    std::map<size_t, std::pair<size_t, size_t>> where; // group → run, leaf
  };

  candidates candidates_for(const type_info& t, const std::vector<group>& groups) const {
    std::map<std::vector<bool>, size_t> by_signature;
    candidates c;
    for (size_t gi = 0; gi < groups.size(); ++gi) {
      auto& g = groups[gi];
      if (g.remaining == 0 || !labels_match(*g.selector, t.config->labels)
          || how_many(g.need, t.total, 1) != 1)
        continue;
      std::vector<bool> sig(g.need.size());
      for (size_t i = 0; i < g.need.size(); ++i)
        sig[i] = g.need[i] > 0;
      auto [it, fresh] = by_signature.emplace(std::move(sig), c.runs.size());
      if (fresh)
        c.runs.emplace_back();
      auto& run = c.runs[it->second];
      c.where[gi] = {it->second, run.groups.size()};
      run.groups.push_back(gi);
    }
    for (auto& r : c.runs) {
      std::vector<vec> leaves;
      leaves.reserve(r.groups.size());
      for (auto gi : r.groups) {
        leaves.push_back(groups[gi].need);
        leaves.back().push_back(0.0);
      }
      r.tree = std::make_unique<bound_tree>(res_.names.size() + 1,
                                            bound_tree::mode::min, leaves);
    }
    return c;
  }

  static vec used_up(size_t width) {
    return vec(width + 1, std::numeric_limits<double>::infinity());
  }

  /// What one empty node of type `t` would hold of the remaining groups:
  /// first fit, bigger groups first (the runs in the order of their biggest
  /// remaining group, each run in its own order).
  pack_result pack_one(const type_info& t, const std::vector<group>& groups,
                       candidates& c) const {
    pack_result r;
    r.room = t.total;
    const size_t k = res_.names.size();
    auto all_used = [k](const double* least) { return std::isinf(least[k]); };
    auto any = [](size_t) { return true; };
    std::vector<std::pair<size_t, size_t>> order; // (first live group, run)
    for (size_t ri = 0; ri < c.runs.size(); ++ri) {
      auto j = c.runs[ri].tree->find(0, all_used, any);
      if (j != bound_tree::none)
        order.emplace_back(c.runs[ri].groups[j], ri);
    }
    std::sort(order.begin(), order.end());
    for (auto& [first, ri] : order) {
      auto& run = c.runs[ri];
      auto& room = r.room;
      auto hopeless = [&room, k](const double* least) {
        if (std::isinf(least[k]))
          return true;
        for (size_t i = 0; i < k; ++i)
          if (least[i] > room[i] + epsilon)
            return true;
        return false;
      };
      auto accept = [&groups, &run, &room](size_t j) {
        auto& g = groups[run.groups[j]];
        return g.remaining > 0 && how_many(g.need, room, 1) == 1;
      };
      for (size_t from = 0;;) {
        auto j = run.tree->find(from, hopeless, accept);
        if (j == bound_tree::none)
          break;
        auto gi = run.groups[j];
        auto& g = groups[gi];
        auto n = how_many(g.need, room, g.remaining);
        take(room, g.need, n);
        r.units.emplace_back(gi, n);
        r.total_units += n;
        from = j + 1;
      }
    }
    if (r.units.empty())
      return r;
    // Utilization: the mean, over the resources the packed units ask for and
    // the resources the type offers that nobody here asks for (a GPU on a
    // CPU-only pack counts as 0), of used / offered. memory and
    // object_store_memory count only when asked for: every type has them.
    double sum = 0;
    int n = 0;
    for (size_t i = 0; i < t.total.size(); ++i) {
      double used = t.total[i] - r.room[i];
      bool asked = used > epsilon;
      bool offered = t.total[i] > epsilon;
      const auto& name = res_.names[i];
      bool generic = name == "memory" || name == "object_store_memory";
      if (asked || (offered && !generic)) {
        sum += offered ? std::min(1.0, used / t.total[i]) : 0.0;
        ++n;
      }
    }
    r.utilization = n == 0 ? 1.0 : sum / n;
    return r;
  }

  /// Launches the best-fitting types for what `groups` still need, until
  /// nothing is left or no type may launch.
  void launch_for(std::vector<group>& groups, bool for_requests) {
    std::map<std::string, candidates> cands;
    for (auto& [name, t] : types_)
      if (can_launch(t))
        cands.emplace(name, candidates_for(t, groups));
    for (;;) {
      type_info* best = nullptr;
      pack_result best_pack;
      for (auto& [name, t] : types_) {
        if (!can_launch(t))
          continue;
        auto p = pack_one(t, groups, cands.at(name));
        if (p.units.empty())
          continue;
        // Score: higher utilization (least waste), then more units (fewer
        // nodes), then the type name (map order) for determinism.
        if (best == nullptr
            || p.utilization > best_pack.utilization + epsilon
            || (std::fabs(p.utilization - best_pack.utilization) <= epsilon
                && p.total_units > best_pack.total_units)) {
          best = &t;
          best_pack = std::move(p);
        }
      }
      if (best == nullptr)
        return;
      // The same pack repeats until a group in it runs out: one step plans
      // many identical nodes, so 1,000 nodes cost one step, not 1,000.
      int64_t repeat = std::numeric_limits<int32_t>::max();
      for (auto& [gi, units] : best_pack.units)
        repeat = std::min(repeat, groups[gi].remaining / units);
      int32_t n = plan(*best, static_cast<int32_t>(std::max<int64_t>(1, repeat)));
      if (n == 0)
        return;
      for (auto& [gi, units] : best_pack.units) {
        auto& g = groups[gi];
        g.remaining -= units * n;
        if (g.remaining == 0)
          for (auto& [name, c] : cands) {
            auto w = c.where.find(gi);
            if (w != c.where.end())
              c.runs[w->second.first].tree->set(w->second.second,
                                                used_up(res_.names.size()));
          }
        auto& l = g.launched[best->config->name];
        l.first += units * n;
        l.second += n;
      }
      // Requests' nodes are offered whole to the demand placed after them.
      add_planned_bins(*best, n, for_requests ? best->total : best_pack.room);
    }
  }

  void place_requests() {
    if (snap_.requests.empty())
      return;
    std::vector<const resource_map*> shapes;
    std::vector<const label_map*> selectors;
    std::vector<int64_t> counts;
    for (auto& r : snap_.requests) {
      shapes.push_back(&r);
      selectors.push_back(&no_labels_);
      counts.push_back(1);
    }
    auto groups = make_groups(shapes, selectors, counts);
    // Requests are packed against totals, whatever runs now: a scratch copy
    // of every existing and planned node at its full size.
    std::vector<bin> scratch;
    for (auto& b : bins_) {
      bin s = b;
      if (b.node >= 0)
        s.room = node_totals_[static_cast<size_t>(b.node)];
      else
        s.room = types_.at(b.type).total;
      scratch.push_back(std::move(s));
    }
    std::swap(scratch, bins_);
    pack_into_bins(groups, false);
    std::swap(scratch, bins_);
    // A node a request counts on stays, idle or not: removing it would
    // launch a replacement next round.
    for (auto& b : scratch)
      if (b.took_demand && b.node >= 0)
        requested_nodes_.insert(static_cast<size_t>(b.node));
    launch_for(groups, true);
    for (auto& g : groups)
      for (auto& [type, l] : g.launched)
        if (l.second > 0)
          purposes_[type].push_back(
            {launch_cause::request, g.members.front(), l.first});
    for (auto& g : groups) {
      if (g.remaining == 0)
        continue;
      wait_part p;
      p.units = g.remaining;
      blocked_part(g, p);
      p.text = "request " + describe_shape(*g.shape) + " × "
               + std::to_string(g.remaining) + ": " + p.text;
      out_.unmet_requests.push_back(std::move(p));
    }
  }

  void place_demands() {
    std::vector<const resource_map*> shapes;
    std::vector<const label_map*> selectors;
    std::vector<int64_t> counts;
    for (auto& d : snap_.demands) {
      shapes.push_back(&d.shape);
      selectors.push_back(&d.selector);
      counts.push_back(d.count);
    }
    groups_ = make_groups(shapes, selectors, counts);
    pack_into_bins(groups_, true);
    // Units packed into nodes planned for min_workers or requests count as
    // launching on those nodes.
    for (auto& g : groups_) {
      for (auto& [type, l] : g.launched) {
        wait_part p;
        p.reason = wait_reason::launching;
        p.units = l.first;
        p.node_type = type;
        g.parts.push_back(std::move(p));
      }
      g.launched.clear();
    }
    launch_for(groups_, false);
    for (auto& g : groups_)
      for (auto& [type, l] : g.launched) {
        auto same = std::find_if(g.parts.begin(), g.parts.end(), [&type](const wait_part& p) {
          return p.reason == wait_reason::launching && p.node_type == type;
        });
        if (same != g.parts.end()) { // one part per type: all its planned nodes
          same->units += l.first;
          continue;
        }
        wait_part p;
        p.reason = wait_reason::launching;
        p.units = l.first;
        p.node_type = type;
        p.nodes = l.second;
        g.parts.push_back(std::move(p));
      }
  }

  // -- explaining -------------------------------------------------------------

  std::vector<type_check> check_types(const group& g) const {
    std::vector<type_check> out;
    for (auto& [name, t] : types_) {
      type_check c;
      c.type = name;
      for (size_t i = 0; i < g.need.size(); ++i)
        if (g.need[i] > t.total[i] + epsilon)
          c.missing[res_.names[i]] = g.need[i] - t.total[i];
      for (auto& [k, v] : *g.selector) {
        auto l = t.config->labels.find(k);
        if (l == t.config->labels.end() || l->second != v)
          c.label_mismatch.push_back(k + "=" + v);
      }
      out.push_back(std::move(c));
    }
    return out;
  }

  /// The node whose total would hold `g` once its work finishes, if any.
  const node_view* busy_node_for(const group& g) const {
    for (size_t i = 0; i < g.need.size(); ++i)
      if (g.need[i] > max_total_[i] + epsilon)
        return nullptr;
    for (size_t i = 0; i < snap_.nodes.size(); ++i) {
      auto& n = snap_.nodes[i];
      if (n.state != node_state::draining && labels_match(*g.selector, n.labels)
          && how_many(g.need, node_totals_[i], 1) == 1)
        return &n;
    }
    return nullptr;
  }

  void blocked_part(const group& g, wait_part& p) const {
    std::vector<std::string> fitting;
    for (auto& [name, t] : types_)
      if (how_many(g.need, t.total, 1) == 1 && labels_match(*g.selector, t.config->labels))
        fitting.push_back(name);
    if (fitting.empty()) {
      auto checks = check_types(g);
      if (auto n = busy_node_for(g)) {
        p.reason = wait_reason::waits_for_busy;
        p.text = "no node type can hold it; waits for node " + n->id
                 + " (total " + describe_shape(n->total) + ") to free up";
        return;
      }
      p.reason = wait_reason::infeasible;
      std::string why;
      for (auto& c : checks) {
        why += (why.empty() ? "" : "; ") + c.type;
        if (!c.missing.empty())
          why += " lacks " + describe_shape(c.missing);
        for (auto& l : c.label_mismatch)
          why += (c.missing.empty() ? " lacks label " : ", label ") + l;
      }
      p.text = "infeasible: no node type can hold it ("
               + (checks.empty() ? std::string{"no node types configured"}
                                 : "checked: " + why)
               + ")";
      p.checked = std::move(checks);
      return;
    }
    // The types that could hold it: say what stops the first of them, in
    // the order a user can act on (speed, cluster cap, type cap, failures).
    for (auto& name : fitting) {
      auto& t = types_.at(name);
      if (!t.backing_off && t.budget > 0 && cluster_budget_ > 0) {
        p.reason = wait_reason::throttled;
        p.node_type = name;
        p.text = "throttled: upscaling_speed " + format_number(config_.upscaling_speed)
                 + " allows " + std::to_string(out_.launch_budget)
                 + " launches this round, all planned";
        return;
      }
    }
    for (auto& name : fitting) {
      auto& t = types_.at(name);
      if (!t.backing_off && t.budget > 0) {
        p.reason = wait_reason::cluster_max_workers;
        p.text = "cluster max_workers reached (" + std::to_string(config_.max_workers)
                 + ")";
        return;
      }
    }
    for (auto& name : fitting) {
      auto& t = types_.at(name);
      if (!t.backing_off) {
        p.reason = wait_reason::type_max_workers;
        p.node_type = name;
        p.text = "max_workers reached for type " + name + " ("
                 + std::to_string(t.config->max_workers) + ")";
        return;
      }
    }
    p.reason = wait_reason::backing_off;
    p.node_type = fitting.front();
    for (auto& b : out_.backoffs)
      if (b.type == p.node_type) {
        p.retry_in = b.retry_in;
        p.text = b.text;
      }
  }

  static std::string format_number(double x) {
    char buf[32];
    std::snprintf(buf, sizeof(buf), "%g", x);
    return buf;
  }

  void explain_demands() {
    out_.demands.resize(snap_.demands.size());
    for (size_t i = 0; i < snap_.demands.size(); ++i)
      out_.demands[i].index = static_cast<int64_t>(i);
    for (auto& g : groups_) {
      if (g.remaining > 0) {
        wait_part p;
        p.units = g.remaining;
        blocked_part(g, p);
        g.parts.push_back(std::move(p));
      }
      for (auto& p : g.parts) {
        if (p.reason == wait_reason::fits_existing)
          p.text = "fits running nodes now";
        else if (p.reason == wait_reason::fits_pending)
          p.text = "fits nodes already launched, not yet up";
        else if (p.reason == wait_reason::launching) {
          int32_t nodes = p.nodes;
          if (nodes == 0) // placed on nodes planned for min_workers/requests
            nodes = types_.at(p.node_type).planned;
          p.nodes = nodes;
          p.text = "launching " + std::to_string(nodes) + " of type " + p.node_type;
        }
      }
      // Hand the group's parts to its member demands in input order.
      size_t part = 0;
      int64_t left_in_part = g.parts.empty() ? 0 : g.parts[0].units;
      for (auto m : g.members) {
        auto& st = out_.demands[static_cast<size_t>(m)];
        int64_t need = snap_.demands[static_cast<size_t>(m)].count;
        while (need > 0 && part < g.parts.size()) {
          int64_t k = std::min(need, left_in_part);
          if (k > 0) {
            auto p = g.parts[part];
            p.units = k;
            st.parts.push_back(std::move(p));
            need -= k;
            left_in_part -= k;
          }
          if (left_in_part == 0 && ++part < g.parts.size())
            left_in_part = g.parts[part].units;
        }
        if (st.parts.empty())
          continue;
        st.reason = describe_demand(snap_.demands[static_cast<size_t>(m)]) + ": ";
        for (size_t j = 0; j < st.parts.size(); ++j) {
          auto& p = st.parts[j];
          st.reason += (j == 0 ? "" : "; ") + std::to_string(p.units) + " "
                       + p.text;
        }
      }
    }
  }

  // -- scaling down -----------------------------------------------------------

  void keep(const node_view& n, keep_reason r, std::string text) {
    out_.kept.push_back({n.id, n.type, r, n.idle_for, std::move(text)});
  }

  void choose_terminations() {
    std::vector<size_t> idle;
    for (size_t i = 0; i < snap_.nodes.size(); ++i) {
      auto& n = snap_.nodes[i];
      if (n.is_head) {
        if (n.idle_for > duration{0} && n.idle_for >= config_.idle_timeout)
          keep(n, keep_reason::head, "head node is never terminated");
        continue;
      }
      if (n.state == node_state::running && n.idle_for > duration{0})
        idle.push_back(i);
    }
    // Longest idle first; ties by id, so the choice is stable across rounds.
    std::sort(idle.begin(), idle.end(), [this](size_t a, size_t b) {
      auto& x = snap_.nodes[a];
      auto& y = snap_.nodes[b];
      return std::tie(y.idle_for, x.id) < std::tie(x.idle_for, y.id);
    });
    std::map<size_t, bool> took_demand;
    for (auto& b : bins_)
      if (b.node >= 0 && b.took_demand)
        took_demand[static_cast<size_t>(b.node)] = true;
    std::map<std::string, int32_t> alive, all;
    for (auto& [name, t] : types_) {
      alive[name] = t.alive;
      all[name] = t.all;
    }
    int32_t cluster_all = workers_all_;
    auto timeout = format_duration(config_.idle_timeout);
    for (auto i : idle) {
      auto& n = snap_.nodes[i];
      auto t = types_.find(n.type);
      bool known = t != types_.end();
      auto idle_text = "idle " + format_duration(n.idle_for);
      auto terminate = [this, &n, &cluster_all, &alive, &all, known](
                         termination_cause cause, std::string reason) {
        out_.terminations.push_back({n.id, n.type, cause, n.idle_for, std::move(reason)});
        --cluster_all;
        if (known) {
          --alive[n.type];
          --all[n.type];
        }
      };
      if (!known) {
        // Joined by hand or left from an older config: not ours to remove.
        keep(n, keep_reason::not_managed,
             idle_text + " but its type '" + n.type
               + "' is not in the cluster config");
        continue;
      }
      bool safe = !n.has_running_work && !n.has_actors && !n.holds_needed_objects;
      if (n.idle_for < config_.idle_timeout) {
        // Over a cap lowered since launch: the idle ones go first, at once.
        if (safe && known && all[n.type] > t->second.config->max_workers) {
          terminate(termination_cause::over_max_workers,
                    "type " + n.type + " has " + std::to_string(all[n.type])
                      + " workers > max_workers "
                      + std::to_string(t->second.config->max_workers));
        } else if (safe && cluster_all > config_.max_workers) {
          terminate(termination_cause::over_max_workers,
                    "cluster has " + std::to_string(cluster_all)
                      + " workers > max_workers "
                      + std::to_string(config_.max_workers));
        } else {
          keep(n, keep_reason::idle_below_timeout,
               idle_text + " < " + timeout + " (idle timeout)");
        }
        continue;
      }
      if (n.has_running_work) {
        keep(n, keep_reason::running_work, idle_text + " but has running work");
      } else if (n.has_actors) {
        keep(n, keep_reason::holds_actors, idle_text + " but holds actors");
      } else if (n.holds_needed_objects) {
        keep(n, keep_reason::holds_objects,
             idle_text + " but holds objects other nodes need");
      } else if (n.drain_refused) {
        keep(n, keep_reason::drain_refused,
             idle_text + " but refused its last drain (work arrived)");
      } else if (requested_nodes_.count(i) > 0) {
        keep(n, keep_reason::requested,
             idle_text + " but an explicit resource request counts on it");
      } else if (took_demand.count(i) > 0) {
        keep(n, keep_reason::demand_fits,
             idle_text + " but pending demand fits it");
      } else if (known && t->second.planned > 0) {
        keep(n, keep_reason::type_launching,
             idle_text + " but type " + n.type + " is being launched this round");
      } else if (known && alive[n.type] <= t->second.config->min_workers) {
        keep(n, keep_reason::min_workers,
             idle_text + " but type " + n.type + " keeps min_workers "
               + std::to_string(t->second.config->min_workers));
      } else {
        terminate(termination_cause::idle, idle_text + " > " + timeout);
      }
    }
  }

  void emit_launches() {
    for (auto& [name, t] : types_) {
      if (t.planned == 0)
        continue;
      launch l;
      l.type = name;
      l.count = t.planned;
      l.purposes = purposes_[name];
      auto i = min_text_.find(name);
      if (i != min_text_.end())
        l.reason = i->second;
      for (auto& p : l.purposes) {
        if (p.cause == launch_cause::request) {
          l.reason += (l.reason.empty() ? "" : "; ") + std::string{"request "}
                      + describe_shape(snap_.requests[static_cast<size_t>(p.index)])
                      + " × " + std::to_string(p.units);
        }
      }
      // Demand purposes: from the per-demand launching parts.
      for (auto& st : out_.demands)
        for (auto& p : st.parts)
          if (p.reason == wait_reason::launching && p.node_type == name) {
            l.purposes.push_back({launch_cause::demand, st.index, p.units});
            auto& d = snap_.demands[static_cast<size_t>(st.index)];
            l.reason += (l.reason.empty() ? "" : "; ") + std::to_string(p.units)
                        + " of " + describe_demand(d);
          }
      out_.launches.push_back(std::move(l));
    }
  }

  const snapshot& snap_;
  const autoscaling_config& config_;
  const policy_options& options_;
  const label_map no_labels_;
  resource_index res_;
  vec scale_;
  std::map<std::string, type_info> types_;
  std::map<std::string, int32_t> surplus_;
  int32_t workers_all_ = 0;
  int32_t workers_running_ = 0;
  int32_t workers_pending_ = 0;
  int32_t cluster_budget_ = 0;
  int32_t budget_ = 0;
  std::set<size_t> requested_nodes_; // nodes requests were packed onto
  std::vector<vec> node_totals_; // per snapshot::nodes entry
  vec max_total_;                // per resource, over nodes not draining
  std::vector<bin> bins_;
  std::vector<group> groups_;
  std::map<std::string, std::vector<launch_purpose>> purposes_;
  std::map<std::string, std::string> min_text_;
  decision out_;
};

} // namespace

int32_t decision::launches_of(const std::string& type) const {
  for (auto& l : launches)
    if (l.type == type)
      return l.count;
  return 0;
}

int32_t decision::total_launches() const {
  int32_t n = 0;
  for (auto& l : launches)
    n += l.count;
  return n;
}

decision decide(const snapshot& snap, const autoscaling_config& config,
                const policy_options& options) {
  return planner{snap, config, options}.run();
}

const char* to_string(wait_reason x) {
  switch (x) {
    case wait_reason::fits_existing: return "fits_existing";
    case wait_reason::fits_pending: return "fits_pending";
    case wait_reason::launching: return "launching";
    case wait_reason::waits_for_busy: return "waits_for_busy";
    case wait_reason::infeasible: return "infeasible";
    case wait_reason::throttled: return "throttled";
    case wait_reason::type_max_workers: return "type_max_workers";
    case wait_reason::cluster_max_workers: return "cluster_max_workers";
    case wait_reason::backing_off: return "backing_off";
  }
  return "unknown";
}

const char* to_string(keep_reason x) {
  switch (x) {
    case keep_reason::head: return "head";
    case keep_reason::idle_below_timeout: return "idle_below_timeout";
    case keep_reason::min_workers: return "min_workers";
    case keep_reason::running_work: return "running_work";
    case keep_reason::holds_actors: return "holds_actors";
    case keep_reason::holds_objects: return "holds_objects";
    case keep_reason::drain_refused: return "drain_refused";
    case keep_reason::requested: return "requested";
    case keep_reason::demand_fits: return "demand_fits";
    case keep_reason::type_launching: return "type_launching";
    case keep_reason::not_managed: return "not_managed";
  }
  return "unknown";
}

const char* to_string(launch_cause x) {
  switch (x) {
    case launch_cause::min_workers: return "min_workers";
    case launch_cause::request: return "request";
    case launch_cause::demand: return "demand";
  }
  return "unknown";
}

const char* to_string(termination_cause x) {
  switch (x) {
    case termination_cause::idle: return "idle";
    case termination_cause::over_max_workers: return "over_max_workers";
  }
  return "unknown";
}

const char* to_string(demand_kind x) {
  switch (x) {
    case demand_kind::task: return "task";
    case demand_kind::actor: return "actor";
    case demand_kind::job: return "job";
  }
  return "unknown";
}

std::string format_duration(duration d) {
  char buf[32];
  double s = static_cast<double>(d.count()) / 1000.0;
  if (s >= 10 || s == std::floor(s))
    std::snprintf(buf, sizeof(buf), "%.0f s", std::floor(s));
  else
    std::snprintf(buf, sizeof(buf), "%.1f s", s);
  return buf;
}

} // namespace rayd::autoscale
