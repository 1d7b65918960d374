#pragma once
// Resource shapes and labels: the one place that decides whether a shape
// fits, how a shape reads in a message, and whether labels match a selector.
// The node's lease policy, the job placement on the head and the autoscaler
// all use these, so a task, a job and a scaling decision agree on "fits".

#include <map>
#include <string>

namespace rayd {

/// Resource name → amount ("CPU" → 2, "memory" → bytes, custom names).
using resource_map = std::map<std::string, double>;
/// Node labels, and label selectors (every key must be equal).
using label_map = std::map<std::string, std::string>;

/// Whether `shape` fits into `available`: every positive amount is there
/// (a missing resource counts as 0; amounts within 1e-9 count as equal).
bool fits(const resource_map& shape, const resource_map& available);

/// `from` minus `amounts`, per resource (may go negative).
resource_map subtract(resource_map from, const resource_map& amounts);

/// "{CPU: 2, memory: 1 GiB}" for messages and status lines.
std::string describe_shape(const resource_map& shape);

/// Whether a node with `labels` satisfies `selector` (every key equal).
bool labels_match(const label_map& selector, const label_map& labels);

/// Formats a resource amount the way humans read them: "2", "0.5", "3.2 GiB".
std::string format_amount(const std::string& resource, double value);

} // namespace rayd
