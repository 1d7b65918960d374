#include "head_link.hpp"

#include <chrono>

#include "schemas/api_client.hpp"

namespace rayd::core {

namespace {

using namespace std::chrono_literals;

constexpr auto report_interval = 500ms;
constexpr auto nodes_retry = 250ms;
constexpr auto call_timeout = 1000ms;

} // namespace

head_link::head_link(std::string api_address, std::string token, std::string job_id, hooks h)
  : address_{std::move(api_address)},
    token_{std::move(token)},
    job_id_{std::move(job_id)},
    hooks_{std::move(h)} {
  thread_ = std::thread([this] { loop(); });
}

head_link::~head_link() {
  stop();
}

void head_link::want_nodes() {
  {
    std::lock_guard<std::mutex> guard{mtx_};
    if (want_nodes_)
      return;
    want_nodes_ = true;
  }
  cv_.notify_one();
}

void head_link::stop() {
  {
    std::lock_guard<std::mutex> guard{mtx_};
    quit_ = true;
  }
  cv_.notify_one();
  if (thread_.joinable())
    thread_.join();
}

void head_link::loop() {
  std::unique_ptr<rpc::client> client;
  auto connected = [this, &client]() -> rpc::client* {
    if (!client) {
      auto c = rpc::client::connect(address_, token_, call_timeout);
      if (c)
        client = std::move(*c);
    }
    return client.get();
  };
  auto send_events = [this, &connected, &client] {
    // Taken only once the head's API answers: while it is down the events
    // stay where they are recorded (the newest ones, bounded).
    if (!hooks_.dirty())
      return;
    auto* c = connected();
    if (c == nullptr)
      return;
    auto r = hooks_.collect();
    if (!r)
      return;
    if (!c->task_report(job_id_, r->counts, r->events))
      client.reset(); // the head restarted or is gone: connect again next time
  };
  auto next_report = std::chrono::steady_clock::now() + report_interval;
  // One round: the node list if asked for, the task events when due.
  auto round = [this, &connected, &client, &send_events, &next_report](bool nodes) {
    if (nodes) {
      if (auto* c = connected()) {
        if (auto view = c->status()) {
          std::vector<node_directory::node> alive;
          for (auto& n : view->nodes)
            if (n.get_state() == node_state::alive)
              alive.push_back({n.node_id, n.address});
          {
            std::lock_guard<std::mutex> guard{mtx_};
            want_nodes_ = false;
          }
          hooks_.nodes(std::move(alive));
        } else {
          client.reset();
        }
      }
    }
    if (std::chrono::steady_clock::now() >= next_report) {
      send_events();
      next_report = std::chrono::steady_clock::now() + report_interval;
    }
  };
  std::unique_lock<std::mutex> lock{mtx_};
  while (!quit_) {
    auto until = want_nodes_ ? std::min(next_report, std::chrono::steady_clock::now()
                                                       + nodes_retry)
                             : next_report;
    cv_.wait_until(lock, until, [this] { return quit_ || want_nodes_; });
    if (quit_)
      break;
    bool nodes = want_nodes_;
    lock.unlock();
    try {
      round(nodes);
    } catch (...) {
      // A client that throws (it should not) is dropped, never the driver.
      client.reset();
    }
    lock.lock();
    // A failed status fetch: wait nodes_retry before the next (the loop's
    // wait ends at once while want_nodes_ is set otherwise).
    if (want_nodes_ && nodes)
      cv_.wait_for(lock, nodes_retry, [this] { return quit_; });
  }
  lock.unlock();
  try {
    send_events(); // the final states of a short program
  } catch (...) {
  }
  client.reset(); // on this thread, which made it
}

} // namespace rayd::core
