#!/usr/bin/env bash
# Installs what is missing, builds, and runs the main job: a K-fold sweep on
# Fashion-MNIST packed onto every core (about 3-4 minutes on 2 cores).
# Extra arguments go to `packtrain kfold`, e.g. --folds 3 or --cores 1.
set -euo pipefail
here=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
"$here/scripts/setup.sh"
"$here/scripts/build.sh"
exec "${PACKTRAIN_BUILD_DIR:-$here/build}/cli/packtrain" kfold --out "${PACKTRAIN_OUT:-$here/runs/kfold-$(date +%Y%m%d-%H%M%S)}" "$@"
