#!/usr/bin/env bash
# The test command: installs what is missing, builds, runs every test (unit + integration).
set -euo pipefail
cd "$(dirname "$0")/.."
scripts/deps.sh
scripts/build.sh
cd build
ctest --output-on-failure --timeout 300 -j "${TEST_JOBS:-2}"
