#!/usr/bin/env bash
# Configures and builds rayd into ./build (Release, -j2 by default; override with JOBS=N).
set -euo pipefail
cd "$(dirname "$0")/.."
cmake -S . -B build -DCMAKE_BUILD_TYPE="${BUILD_TYPE:-RelWithDebInfo}" >/dev/null
cmake --build build -j "${JOBS:-2}"
