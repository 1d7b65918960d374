#!/usr/bin/env bash
# Installs the Debian packages rayd needs, only if some are missing (idempotent).
# Why each one is here: docs/dependencies.md.
set -euo pipefail

packages=(
  build-essential cmake pkg-config
  libcaf-dev capnproto libcapnp-dev librocksdb-dev
  libboost-test-dev libcli11-dev
  nlohmann-json3-dev libspdlog-dev libfmt-dev
  libarchive-dev libssl-dev libmsgpack-cxx-dev
  libyaml-cpp-dev
  iproute2 procps
  jq util-linux
  openssl
)

missing=()
for p in "${packages[@]}"; do
  if ! dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed"; then
    missing+=("$p")
  fi
done

if [ ${#missing[@]} -eq 0 ]; then
  echo "deps: all ${#packages[@]} packages present"
  exit 0
fi

echo "deps: installing ${missing[*]}"
sudo_cmd=()
[ "$(id -u)" -eq 0 ] || sudo_cmd=(sudo)
"${sudo_cmd[@]}" apt-get update
DEBIAN_FRONTEND=noninteractive "${sudo_cmd[@]}" apt-get install -y --no-install-recommends "${missing[@]}"
