#!/usr/bin/env bash
# Actor-level scripting from the shell (docs/cli.md, "Scripting"): creates a
# counter and a key-value actor, drives them with rayctl, checks every
# answer, then kills both. Usage: demo.sh LIB [RAYCTL]
#   LIB     the built scripting_actors library (libscripting_actors.so)
#   RAYCTL  the rayctl binary (default: rayctl on PATH)
# The cluster is the one rayctl finds (RAYD_ADDRESS, else this host's).
set -euo pipefail
lib=${1:?usage: demo.sh LIB [RAYCTL]}
rayctl=${2:-rayctl}
check() { # check WHAT GOT WANT
  if [[ "$2" != "$3" ]]; then
    echo "demo.sh: $1: got '$2', want '$3'" >&2
    exit 1
  fi
  echo "ok: $1 = $2"
}
suffix=$$
"$rayctl" actor create Counter '[40]' --lib "$lib" --name "counter-$suffix" >/dev/null
"$rayctl" actor create KvStore --lib "$lib" --name "kv-$suffix" >/dev/null
check "counter add 2" "$("$rayctl" actor call "counter-$suffix" add '[2]')" 42
check "kv put (new key)" "$("$rayctl" actor call "kv-$suffix" put '["lang", "C++"]')" true
check "kv get" "$("$rayctl" actor call "kv-$suffix" get '["lang"]')" '"C++"'
check "kv get (missing)" "$("$rayctl" actor call "kv-$suffix" get '["nope"]')" null
check "sum" "$("$rayctl" call sum '[[1, 2, 3, 4]]' --lib "$lib")" 10
# A pipeline: 1,000 calls on one connection, one JSON answer per line, in order.
last=$(for i in $(seq 1 1000); do
         echo "{\"actor\": \"counter-$suffix\", \"method\": \"add\", \"args\": [1]}"
       done | "$rayctl" actor call --stdin | tail -n 1)
check "1,000 piped adds" "$last" '{"result":1042}'
# A type error is a usage error (exit 2) that names the argument.
set +e
err=$("$rayctl" actor call "counter-$suffix" add '["two"]' 2>&1)
code=$?
set -e
check "type error exit code" "$code" 2
check "type error message" "$err" 'rayctl: argument 1: expected int64, got string "two"'
"$rayctl" actor kill "counter-$suffix" --no-restart >/dev/null
"$rayctl" actor kill "kv-$suffix" --no-restart >/dev/null
echo "scripting demo: all checks passed"
