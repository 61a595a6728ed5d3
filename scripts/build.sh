#!/usr/bin/env bash
# Configures and builds packtrain in build/ (Release, Ninja, -j2 by default).
# Extra arguments go to the configure step, e.g. -DPACKTRAIN_WITH_MPI=OFF.
set -euo pipefail
here=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
build=${PACKTRAIN_BUILD_DIR:-$here/build}
jobs=${PACKTRAIN_JOBS:-2}
cmake -S "$here" -B "$build" -G Ninja -DCMAKE_BUILD_TYPE=Release "$@" >/dev/null
cmake --build "$build" -j "$jobs"
