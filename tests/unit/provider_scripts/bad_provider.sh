#!/usr/bin/env bash
# A `command` node provider that misbehaves on purpose, for
# tests/unit/node_provider_test.cpp. MODE picks how:
#   fail     complains on stderr and exits 3
#   garbage  exits 0 but prints text that is not JSON
#   hang     never answers (exec, so the pid the provider kills is the sleeper)
#   error    answers {"error": "..."} (a provider-reported failure)
#   shape    answers JSON of the wrong shape for every op
mode=${1:?usage: bad_provider.sh MODE}
case "$mode" in
  fail)
    cat >/dev/null
    echo "line one of the complaint" >&2
    echo "quota exceeded in zone a" >&2
    exit 3 ;;
  garbage)
    echo "hello, this is not JSON" ;;
  hang)
    exec sleep 600 ;;
  error)
    cat >/dev/null
    echo '{"error": "the cloud said no"}' ;;
  shape)
    cat >/dev/null
    echo '{"instance_ids": "i-1", "instances": [{"instance_id": "i-1", "status": "sleeping"}]}' ;;
esac
