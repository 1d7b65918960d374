#!/bin/sh
# A job entrypoint: counts the words of every text under texts/ and prints
# the ten most frequent. Runs in the working_dir rayctl uploaded, on whichever
# node the job was placed; RAYD_* variables say where.
set -eu
echo "job ${RAYD_JOB_ID:-?} on node ${RAYD_NODE_ID:-?}, in $(pwd)"
echo "files: $(ls texts | wc -l), words: $(cat texts/* | wc -w)"
echo "most frequent words:"
cat texts/* | tr -cs 'A-Za-z' '\n' | tr 'A-Z' 'a-z' | grep -v '^$' \
  | sort | uniq -c | sort -rn | head -10
