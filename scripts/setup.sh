#!/usr/bin/env bash
# Installs everything Tandem needs to build and test, from Debian 12 packages. Idempotent:
# packages already present are not reinstalled, and apt-get runs only when something is missing.
# The CUDA toolkit is optional and not installed here: /usr/local/cuda is used when present.
set -euo pipefail

packages=(
  build-essential clang libomp-dev cmake ninja-build ccache git pkg-config
  libsimgrid-dev libeigen3-dev libyaml-cpp-dev libspdlog-dev libsqlite3-dev
  libgtest-dev libgmock-dev libbenchmark-dev nlohmann-json3-dev libcli11-dev
  qt6-base-dev qt6-charts-dev qt6-svg-dev libgl-dev xvfb xauth
  libopenmpi-dev openmpi-bin
)

missing=()
for package in "${packages[@]}"; do
  if ! dpkg-query -W -f='${Status}' "$package" 2>/dev/null | grep -q "install ok installed"; then
    missing+=("$package")
  fi
done

if [ ${#missing[@]} -eq 0 ]; then
  echo "setup: all ${#packages[@]} packages are installed"
  exit 0
fi

sudo=""
if [ "$(id -u)" -ne 0 ]; then
  sudo="sudo"
fi
echo "setup: installing ${missing[*]}"
export DEBIAN_FRONTEND=noninteractive
$sudo apt-get update -q
$sudo apt-get install -y -q --no-install-recommends "${missing[@]}"
echo "setup: done"
