#!/bin/bash
# (#!/bin/bash, not /usr/bin/env: env would exec bash a second time, and for
# that moment /proc/<pid>/cmdline no longer names the session dir, so the
# provider would briefly see the node as gone; a real rayd is exec'd once.)
# A stand-in for rayd, for the processes provider's unit tests: it waits,
# without child processes, until it is signalled. With --ignore-sigterm among
# its arguments it ignores SIGTERM, so only SIGKILL ends it. Once set up it
# records its arguments in args.txt of its working directory (the provider
# starts it in the node's session dir): a test that sees the file knows the
# trap is in place.
for a in "$@"; do
  [[ $a == --ignore-sigterm ]] && trap '' TERM
done
mkfifo wait.fifo && exec 3<>wait.fifo
printf '%s\n' "$@" >args.tmp && mv args.tmp args.txt
# read returns > 128 on its timeout; anything else but a line means the fifo
# is broken: stop rather than spin.
while :; do
  read -r -t 1 -u 3
  rc=$?
  ((rc == 0 || rc > 128)) || exit 1
done
