#include "rayd/errors.hpp"

namespace rayd {

task_error::task_error(std::string function, std::string remote_type,
                       std::string remote_message, std::string node_id)
  : error("task " + function + " failed" + (node_id.empty() ? "" : " on node " + node_id)
          + ": " + remote_type + ": " + remote_message),
    function_(std::move(function)),
    remote_type_(std::move(remote_type)),
    remote_message_(std::move(remote_message)),
    node_id_(std::move(node_id)) {
}

} // namespace rayd
