#!/usr/bin/env bash
# The run command: installs what is missing, builds, starts a local cluster
# (a head and two worker nodes, on OS-picked ports, in a private $RAYD_TMPDIR),
# uses it (the durable KV, two jobs, C++ tasks: pi and a word count, C++ actors: a
# counter and a key-value service; actors scripted from the shell with rayctl;
# then pi, the counter and the scripts again as remote clients through the API port),
# prints `rayctl status`, and stops it cleanly.
# Then the autoscaler: `rayctl up` starts a second cluster from a YAML file, a
# C++ program's tasks make it launch workers, `rayctl status` shows them, and
# `rayctl down` stops everything it started.
set -euo pipefail
cd "$(dirname "$0")/.."
scripts/deps.sh
scripts/build.sh

bin="$PWD/build/cli"
export RAYD_TMPDIR
RAYD_TMPDIR="$(mktemp -d /tmp/rayd-run-XXXXXX)"
demo_config="$RAYD_TMPDIR/autoscale-demo.yaml"
cleanup() {
  if [[ -f "$demo_config" ]]; then "$bin/rayctl" down "$demo_config" --yes || true; fi
  "$bin/rayd" stop --grace-period 5 || true
  rm -rf "$RAYD_TMPDIR"
}
trap cleanup EXIT

echo "== starting the head"
"$bin/rayd" --head --port 0 --api-port 0
cluster_address=$(sed -n 's/.*"cluster_address": "\(.*\)".*/\1/p' \
  "$RAYD_TMPDIR/session_latest/node.json")

echo "== starting two worker nodes"
# On the head's host, workers nest under the head's session and find its
# token there: no flags beyond the address, and `rayd stop` stops all three.
"$bin/rayd" --address="$cluster_address" --node-name worker-1 --num-cpus 1 \
  --resources '{"ssd": 1}' --labels '{"zone": "a"}'
"$bin/rayd" --address="$cluster_address" --node-name worker-2 --num-cpus 1 \
  --labels '{"zone": "b"}'

echo "== using the cluster's durable KV"
"$bin/rayctl" kv put greeting "hello from rayd" --namespace demo
"$bin/rayctl" kv get greeting --namespace demo

echo "== a job: word count over texts shipped as its working_dir"
"$bin/rayctl" job submit --submission-id wordcount-demo \
  --working-dir examples/jobs/wordcount -- ./count.sh

echo "== a job that asks for the ssd resource only worker-1 has"
"$bin/rayctl" job submit --entrypoint-resources '{"ssd": 1}' -- \
  'echo "running on $(hostname) as node $RAYD_NODE_ID"'
"$bin/rayctl" job list

echo "== tasks from C++: Monte-Carlo pi over 100 tasks, spread over the three nodes"
build/examples/pi/pi 100 500000

echo "== map-reduce word count (texts as objects, merge tasks take object refs)"
build/examples/wordcount/wordcount examples/jobs/wordcount/texts 5

echo "== actors: a counter (calls in call order, found by name), then a key-value service"
echo "   actor that 64 word-count tasks update through a handle passed to them"
build/examples/counter/counter 1000
build/examples/kv_service/kv_service 64
"$bin/rayctl" actors

echo "== actor-level scripting from the shell: a counter and a key-value actor driven by"
echo "   rayctl actor create/call with JSON (examples/scripting/demo.sh checks every answer)"
examples/scripting/demo.sh build/examples/scripting/libscripting_actors.so "$bin/rayctl"

echo "== remote clients (docs/client.md): the same programs and scripts through the head's"
echo "   API port alone, as from a host outside the cluster's network (rayd://)"
api_address=$(sed -n 's/.*"api_address": "\(.*\)".*/\1/p' "$RAYD_TMPDIR/session_latest/node.json")
RAYD_ADDRESS="rayd://$api_address" build/examples/pi/pi 40 500000
RAYD_ADDRESS="rayd://$api_address" build/examples/counter/counter 1000
RAYD_ADDRESS="rayd://$api_address" \
  examples/scripting/demo.sh build/examples/scripting/libscripting_actors.so "$bin/rayctl"
echo "== rayctl tasks (newest first)"
"$bin/rayctl" tasks --limit 5

echo "== rayctl status"
"$bin/rayctl" status
echo "== the autoscaler: a cluster from examples/autoscaler/processes.yaml (head: 0 CPUs,"
echo "   2-CPU workers launched as rayd processes when work waits), idle timeout 5 s here"
sed -e 's/^idle_timeout_minutes: .*/idle_timeout_seconds: 5/' \
  -e 's/^cluster_name: .*/cluster_name: run-demo/' \
  examples/autoscaler/processes.yaml >"$demo_config"
"$bin/rayctl" up "$demo_config" --yes
demo_address=$("$bin/rayctl" get-head-address "$demo_config" | tail -n 1)
echo "== 40 pi tasks of 1 CPU on a head with none: the autoscaler launches workers"
RAYD_ADDRESS="$demo_address" build/examples/pi/pi 40 2000000
"$bin/rayctl" --address "$demo_address" status
"$bin/rayctl" down "$demo_config" --yes
rm -f "$demo_config"
