#!/usr/bin/env bash
# Installs what is missing, builds, and runs every test (ctest labels unit,
# cli, slow, mpi, tsan, browser). Extra arguments go to ctest, e.g. -L unit.
set -euo pipefail
here=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
"$here/scripts/setup.sh"
"$here/scripts/build.sh"
cd "${PACKTRAIN_BUILD_DIR:-$here/build}"
ctest --output-on-failure -j 2 "$@"
