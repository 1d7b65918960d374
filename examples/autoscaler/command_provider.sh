#!/usr/bin/env bash
# An example `command` node provider for the rayd autoscaler
# (docs/autoscaler.md, "Node providers" has the protocol). It reads one JSON request
# on stdin and prints one JSON reply on stdout.
#
# This one only tracks fake instances in a JSON state file, so it shows the
# protocol and the rules a real provider must keep (instances tagged with the
# cluster name, create() idempotent per launch request id, terminate() of an
# unknown id is fine). A real provider calls a cloud's API where this script
# edits the state file: create → run instances with the request's tags,
# terminate → delete them, list → describe instances filtered by the
# "rayd-cluster-name" tag.
#
# Usage: command_provider.sh STATE_FILE   (needs bash, jq and flock)
set -euo pipefail

state=${1:?usage: command_provider.sh STATE_FILE}
command -v jq >/dev/null || { echo "command_provider.sh: jq is required" >&2; exit 3; }

request=$(cat)
op=$(jq -r '.op // empty' <<<"$request") || { echo "request is not JSON" >&2; exit 2; }

# One call at a time on the state file.
exec 9>"$state.lock"
flock 9
[[ -s "$state" ]] || echo '{"instances": []}' >"$state"

save() { # writes stdin to the state file atomically
  cat >"$state.tmp" && mv "$state.tmp" "$state"
}

case "$op" in
  create)
    # Instances already created for this launch request count towards
    # "count", so a retried request never launches twice.
    new_ids=()
    existing=$(jq -r --argjson req "$request" '
      [.instances[] | select(.cluster == $req.cluster
        and .tags["rayd-launch-request"] == $req.tags["rayd-launch-request"]
        and (.status == "pending" or .status == "running"))] | length' "$state")
    count=$(jq -r '.count' <<<"$request")
    for ((i = existing; i < count; i++)); do
      new_ids+=("cmd-$(od -An -N6 -tx1 /dev/urandom | tr -d ' \n')")
    done
    ids_json=$(printf '%s\n' "${new_ids[@]+"${new_ids[@]}"}" | jq -R . | jq -s 'map(select(. != ""))')
    jq --argjson req "$request" --argjson ids "$ids_json" '
      .instances += [$ids[] | {instance_id: ., cluster: $req.cluster,
        node_type: $req.node_type, status: "running", tags: $req.tags, error: ""}]' \
      "$state" | save
    jq -c --argjson req "$request" '
      {instance_ids: [.instances[] | select(.cluster == $req.cluster
        and .tags["rayd-launch-request"] == $req.tags["rayd-launch-request"]
        and (.status == "pending" or .status == "running")) | .instance_id]
        | .[0:$req.count]}' "$state"
    ;;
  terminate)
    jq --argjson req "$request" '
      .instances |= map(select(.instance_id as $id | $req.instance_ids | index($id) | not))' \
      "$state" | save
    echo '{}'
    ;;
  list)
    jq -c --argjson req "$request" '
      {instances: [.instances[] | select(.cluster == $req.cluster)
        | {instance_id, node_type, status, tags, error}]}' "$state"
    ;;
  *)
    echo "command_provider.sh: unknown op '$op'" >&2
    exit 2
    ;;
esac
