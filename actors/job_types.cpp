#include "actors/job_types.hpp"

#include <cctype>

namespace rayd {

const char* to_string(job_state x) {
  switch (x) {
    case job_state::pending: return "PENDING";
    case job_state::running: return "RUNNING";
    case job_state::succeeded: return "SUCCEEDED";
    case job_state::failed: return "FAILED";
    case job_state::stopped: return "STOPPED";
  }
  return "UNKNOWN";
}

bool from_string(const std::string& text, job_state& out) {
  std::string up;
  for (char c : text)
    up += static_cast<char>(std::toupper(static_cast<unsigned char>(c)));
  for (auto x : {job_state::pending, job_state::running, job_state::succeeded,
                 job_state::failed, job_state::stopped})
    if (up == to_string(x)) {
      out = x;
      return true;
    }
  return false;
}

} // namespace rayd
