#!/usr/bin/env bash
# The GPU machine's check (/work/shared/GPU.md): unpacks the Debian packages
# that scripts/fetch-debs.sh downloaded into a prefix under /tmp, builds
# packtrain there against the machine's PyTorch (its CUDA LibTorch), MPI
# off, runs the gpu and unit tests and the 16-core CPU benches, and writes
# every figure into OUT. Run from anywhere; it works in the repository root.
#
# Usage: scripts/device-check.sh OUT [DEBDIR]     (DEBDIR default: .deb)
#
# Within PACKTRAIN_CHECK_SECONDS (default 470: the 8-minute window less a
# margin) in all: each step runs under `timeout`, limited to its own cap and
# to what is left of the budget (the build leaves enough for the tests and
# benches), and a step that fails or times out is recorded and the next one
# runs. OUT gets, rewritten after every step so that an interrupted run
# still leaves what it measured:
#   summary.txt   environment, each step's exit status and seconds, the figures
#   benches.txt   the benches' whole output
#   tests.txt     ctest's output (gpu, then unit)
#   build.txt     configure's output and the end of the build's
#   logs.tar.gz   every step's log, ctest's LastTest.log, the benches' run folders' results
# (five files: the device tool returns at most eight.)
#
# Not into /: the packages go to /tmp/packtrain-check/prefix. One exception,
# where it is missing and can be made: the link
# /usr/share/datasets/fashion-mnist -> the prefix's copy, since the benches
# and tests read Fashion-MNIST from that path (PACKTRAIN_NO_DATASET_LINK=1: no
# link). The build is build-gpu/ in the repository (ignored by git), reused
# by a later run on the same machine.
#
# The step bodies run through `timeout bash -c NAME` (exported functions), and
# single-quoted commands expand in that child shell:
# shellcheck disable=SC2317,SC2016
set -u

if [ $# -lt 1 ] || [ $# -gt 2 ]; then
  echo "usage: scripts/device-check.sh OUT [DEBDIR]" >&2
  exit 2
fi
start_time=$SECONDS
budget=${PACKTRAIN_CHECK_SECONDS:-470}
here=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
mkdir -p "$1" || exit 2
out=$(cd "$1" && pwd)
cd "$here" || exit 2
debs=${2:-.deb}
debs=$(cd "$debs" 2>/dev/null && pwd) || debs=""

export work=/tmp/packtrain-check
export prefix=$work/prefix
export logs=$work/logs
export build=$here/build-gpu
export here
jobs=$(nproc)
export jobs
rm -rf "$logs" "$work/runs"
mkdir -p "$logs" "$work/runs"
head_file=$work/head.txt steps_file=$work/steps.txt results_file=$work/results.txt
: >"$head_file"
: >"$steps_file"
: >"$results_file"

# --- recording ------------------------------------------------------------------
note() { printf '%s\n' "$*" >>"$head_file"; }
result() { printf '%s\n' "$*" >>"$results_file"; }
left() { echo $((budget - (SECONDS - start_time))); }
# short() SECONDS: a limit for a quick command outside the steps, within the budget.
short() { local l=$(($(left) - 5)); echo $((l < $1 ? (l > 1 ? l : 1) : $1)); }

# Rewrites OUT's files from what is there so far (temporary names, then mv).
# gather NAME BYTES FILE...: the logs that exist, one after another, into
# $out/NAME (each cut to its last BYTES bytes; 0: whole).
gather() {
  local name=$1 bytes=$2 f
  shift 2
  {
    for f in "$@"; do
      [ -f "$f" ] || continue
      if [ "$bytes" -gt 0 ]; then
        echo "===== $(basename "$f" .txt) (its last $((bytes / 1000000)) MB)"
        tail -c "$bytes" "$f"
      else
        echo "===== $(basename "$f" .txt)"
        cat "$f"
      fi
      echo
    done
  } >"$out/$name.tmp" && mv -f "$out/$name.tmp" "$out/$name"
}

publish() {
  {
    echo "packtrain device check, $(date -u '+%Y-%m-%d %H:%M:%S UTC'), $((SECONDS - start_time)) s of the $budget s budget so far"
    echo
    cat "$head_file"
    echo
    echo "== steps (exit status 124: stopped by its time limit; 125: skipped)"
    cat "$steps_file"
    echo
    echo "== results"
    cat "$results_file"
  } >"$out/summary.txt.tmp" && mv -f "$out/summary.txt.tmp" "$out/summary.txt"
  gather benches.txt 0 "$logs"/bench_*.txt "$logs"/replicas.txt "$logs"/gpu_kfold.txt
  gather tests.txt 0 "$logs"/ctest_gpu.txt "$logs"/ctest_unit.txt
  gather build.txt 2000000 "$logs"/configure.txt "$logs"/build_benches.txt "$logs"/build_all.txt
  tar -C "$work" -czf "$out/logs.tar.gz.tmp" logs 2>/dev/null && mv -f "$out/logs.tar.gz.tmp" "$out/logs.tar.gz"
}

reserve=5  # seconds kept for the last publish
# run_step NAME CAP COMMAND...: COMMAND under `timeout`, for at most CAP
# seconds and what is left of the budget; its output in $logs/NAME.txt.
# Records the exit status and the seconds; returns the exit status.
run_step() {
  local name=$1 cap=$2
  shift 2
  local avail limit
  avail=$(($(left) - reserve))
  limit=$((cap < avail ? cap : avail))
  if [ "$limit" -lt 5 ]; then
    echo "skipped: its limit would be ${limit}s (cap ${cap}s, ${avail}s of the budget left)" >"$logs/$name.txt"
    printf '%-16s rc=125  skipped: its limit would be %ss (cap %ss, %ss of the budget left)\n' "$name" "$limit" "$cap" \
      "$avail" >>"$steps_file"
    publish
    return 125
  fi
  local t0=$EPOCHREALTIME rc
  timeout -k 5 "$limit" "$@" >"$logs/$name.txt" 2>&1 </dev/null
  rc=$?
  local secs
  secs=$(awk -v a="$t0" -v b="$EPOCHREALTIME" 'BEGIN { printf "%.1f", b - a }')
  local how=ok
  if [ "$rc" -eq 124 ] || [ "$rc" -eq 137 ]; then how="TIMED OUT (limit ${limit}s)"
  elif [ "$rc" -ne 0 ]; then how=FAILED
  fi
  printf '%-16s rc=%-3s %6ss  limit %3ss  %s\n' "$name" "$rc" "$secs" "$limit" "$how" >>"$steps_file"
  publish
  return "$rc"
}

# --- the steps' bodies (exported: `timeout` runs them in a new bash) -------------

environment() {
  set -x
  date -u; uname -a; cat /etc/os-release; nproc; lscpu; free -g; df -h /tmp "$here"
  nvidia-smi
  command -v nvcc && nvcc --version
  command -v c++ g++ gcc cmake ninja pkg-config dpkg python3
  c++ --version; cmake --version; ninja --version; python3 --version
  ldd --version | head -1
  strings "$(c++ -print-file-name=libstdc++.so.6)" 2>/dev/null | grep -o '^GLIBCXX_[0-9.]*' | sort -uV | tail -1
  python3 -m pip list 2>/dev/null | grep -i -E '^(torch|nvidia-|cmake|ninja)' || true
}

torch_info() {
  python3 -c '
import torch
print("torch_version=" + torch.__version__)
print("torch_cuda_build=" + str(torch.version.cuda))
print("torch_cmake_prefix_path=" + torch.utils.cmake_prefix_path)
print("torch_cxx11_abi=" + str(int(torch._C._GLIBCXX_USE_CXX11_ABI)))
print("cuda_available=" + str(torch.cuda.is_available()))
print("cuda_devices=" + str(torch.cuda.device_count()))
try:
    print("nccl=" + ".".join(map(str, torch.cuda.nccl.version())))
except Exception as e:
    print("nccl=unknown (%s)" % e)
' || return 1
  # As GPU.md asks it:
  python3 -c 'import torch;print(torch.cuda.is_available(), torch.cuda.get_device_name(0))'
}

# Extracts .deb files without dpkg: each is an ar archive whose data.tar.*
# holds the files. deb_extract DEST DEB...
deb_extract() {
  python3 - "$@" <<'EOF'
import io, sys, tarfile
dest = sys.argv[1]
for deb in sys.argv[2:]:
    with open(deb, "rb") as f:
        if f.read(8) != b"!<arch>\n":
            sys.exit(deb + ": not an ar archive")
        while True:
            header = f.read(60)
            if len(header) < 60:
                break
            name = header[:16].decode().strip().rstrip("/")
            size = int(header[48:58].decode().strip())
            data = f.read(size)
            if size % 2:
                f.read(1)
            if name.startswith("data.tar"):
                with tarfile.open(fileobj=io.BytesIO(data), mode="r:*") as t:
                    if hasattr(tarfile, "fully_trusted_filter"):
                        t.extractall(dest, filter="fully_trusted")
                    else:
                        t.extractall(dest)
EOF
}

unpack() {
  local rc=0 f n=0
  rm -rf "$prefix"
  mkdir -p "$prefix"
  if [ -z "$debs" ] || ! compgen -G "$debs/*.deb" >/dev/null; then
    echo "no .deb files in '${debs:-the DEBDIR given}'"
    return 1
  fi
  for f in "$debs"/*.deb; do
    if command -v dpkg >/dev/null; then
      dpkg -x "$f" "$prefix" || { echo "FAILED: dpkg -x $f"; rc=1; }
    else
      deb_extract "$prefix" "$f" || { echo "FAILED: extracting $f"; rc=1; }
    fi
    n=$((n + 1))
  done
  echo "unpacked $n packages into $prefix ($(command -v dpkg >/dev/null && echo dpkg -x || echo 'python, no dpkg here'))"
  # Links to absolute paths (zlib1g-dev's libz.so -> /lib/...) point into the prefix.
  local link target
  while IFS= read -r link; do
    target=$(readlink "$link")
    case $target in
      /*) if [ -e "$prefix$target" ]; then ln -sfn "$prefix$target" "$link"; echo "relinked $link -> $prefix$target"
          else echo "left: $link -> $target (not in the prefix)"; fi ;;
    esac
  done < <(find "$prefix" -type l)
  # pkg-config files name /usr: they name the prefix instead.
  find "$prefix" -name '*.pc' -type f -exec sed -i -e "s#^\([A-Za-z_][A-Za-z0-9_]*\)=/usr#\1=$prefix/usr#" \
    -e "s#-I/usr/#-I$prefix/usr/#g" -e "s#-L/usr/#-L$prefix/usr/#g" {} +
  echo "rewrote $(find "$prefix" -name '*.pc' -type f | wc -l) .pc files to $prefix/usr"
  # The prefix's pkgconf, for a machine without pkg-config: it needs the
  # prefix's libpkgconf, and CMake runs it without LD_LIBRARY_PATH.
  mkdir -p "$work/bin"
  printf '#!/bin/sh\nLD_LIBRARY_PATH=%s/usr/lib/x86_64-linux-gnu exec %s/usr/bin/pkgconf "$@"\n' "$prefix" "$prefix" \
    >"$work/bin/pkg-config"
  chmod +x "$work/bin/pkg-config"
  # The MNIST digits (fetch-debs.sh packs them when they fit).
  rm -rf "$work/digits"
  if [ -f "$debs/mnist-digits.tar.xz" ]; then
    mkdir -p "$work/digits"
    python3 -c 'import sys, tarfile; tarfile.open(sys.argv[1]).extractall(sys.argv[2])' \
      "$debs/mnist-digits.tar.xz" "$work/digits" && echo "MNIST digits in $work/digits"
  else
    echo "no mnist-digits.tar.xz in $debs: tests that read the MNIST digits will fail"
  fi
  # Fashion-MNIST where the code reads it.
  local data=/usr/share/datasets/fashion-mnist
  if [ -e "$data/train-images-idx3-ubyte.gz" ]; then
    echo "$data: present on this machine"
  elif [ "${PACKTRAIN_NO_DATASET_LINK:-0}" = 1 ]; then
    echo "$data: missing, and PACKTRAIN_NO_DATASET_LINK=1: the benches and tests that read it will fail"
  elif [ -d "$prefix$data" ] && mkdir -p "$(dirname "$data")" && ln -sfn "$prefix$data" "$data"; then
    echo "$data: linked to $prefix$data"
  else
    echo "$data: missing and could not be linked: the benches and tests that read it will fail"
    rc=1
  fi
  du -sh "$prefix"
  return "$rc"
}

# The benches' sizes: what fits in about a minute each on 16 cores.
kfold_bench() {
  "$build/bench/kfold/bench_kfold" --rounds 1 -- \
    --models mlp,lenet5 --schedules cosine,warm --folds 4 --epochs 1 --limit 30000
}

hogwild_bench() {
  "$build/bench/hogwild/bench_hogwild" --rounds 3 --trace "$work/runs/hogwild-trace"
}

# Data-parallel replicas, 1..16 cores: one lenet5 job through `packtrain
# train` (bench_dataparallel measures 1 and 2 replicas only). Batch 512 in
# micro-batches of 32: 16 micro-batches a step, one for each of 16 replicas.
replicas_bench() {
  local n rc=0
  for n in 1 2 4 8 16; do
    [ "$n" -le "$jobs" ] || continue
    rm -rf "$work/runs/train-$n"
    echo "+ packtrain train --model lenet5 --epochs 1 --limit 60000 --batch-size 512 --micro-batch 32 --parallelism replicas --cores $n"
    "$build/cli/packtrain" train --model lenet5 --epochs 1 --limit 60000 --batch-size 512 --micro-batch 32 \
      --parallelism replicas --cores "$n" --quiet --out "$work/runs/train-$n" || rc=1
  done
  python3 - "$work/runs" <<'EOF' || rc=1
import json, os, sys
runs = sys.argv[1]
base = None
print("%-6s %12s %10s %10s %10s %8s" % ("cores", "samples/s", "vs 1", "job s", "sync", "replicas"))
for n in (1, 2, 4, 8, 16):
    path = os.path.join(runs, "train-%d" % n, "results.json")
    if not os.path.exists(path):
        continue
    job = json.load(open(path))["jobs"][0]
    m = job.get("metrics", {})
    sps = m.get("samples_per_s")
    if n == 1:
        base = sps
    ratio = "%.2fx" % (sps / base) if sps and base else "-"
    share = m.get("sync_share")
    print("%-6d %12.0f %10s %10.2f %9.1f%% %8s" % (n, sps or 0, ratio, job.get("seconds", 0),
          100 * share if isinstance(share, (int, float)) else float("nan"), m.get("peak_replicas", "-")))
EOF
  return "$rc"
}

dataparallel_bench() {
  "$build/bench/dataparallel/bench_dataparallel" --models mlp,lenet5 --batches 256 --rounds 1 --seconds 0.5
}

# Exploratory: GPU jobs packed several to a GPU against one at a time, where
# the build's packtrain trains on GPUs (--version: CUDA yes; docs/gpu.md) and CUDA is usable.
gpu_kfold() {
  local slots rc=0
  for slots in 1 4; do
    rm -rf "$work/runs/gpu-kfold-$slots"
    echo "+ packtrain kfold --models lenet5 --schedules cosine,warm --folds 4 --epochs 1 --limit 30000 --cores 1 --gpus 1 --gpu-slots $slots"
    "$build/cli/packtrain" kfold --models lenet5 --schedules cosine,warm --folds 4 --epochs 1 --limit 30000 \
      --cores 1 --gpus 1 --gpu-slots "$slots" --quiet --out "$work/runs/gpu-kfold-$slots" || rc=1
    python3 -c 'import json, sys; s = json.load(open(sys.argv[1]))["summary"]; print("gpu slots %s: makespan %.1f s, jobs %.1f s, done %s" % (sys.argv[2], s["makespan_s"], s["job_seconds"], s["done"]))' \
      "$work/runs/gpu-kfold-$slots/results.json" "$slots" || rc=1
  done
  return "$rc"
}

export debs
export -f environment torch_info deb_extract unpack kfold_bench hogwild_bench replicas_bench dataparallel_bench gpu_kfold

# --- the steps -----------------------------------------------------------------------

if ! command -v nvcc >/dev/null && [ -x /usr/local/cuda/bin/nvcc ]; then export PATH="$PATH:/usr/local/cuda/bin"; fi

note "repository: $here ($(git -C "$here" rev-parse --short HEAD 2>/dev/null || echo 'no git'))"
note "nproc: $jobs"
note "debs: ${debs:-missing} ($(compgen -G "${debs:-/nonexistent}/*.deb" | wc -l) .deb files)"
{
  echo "nvidia-smi:"
  timeout 20 nvidia-smi 2>&1 | head -40 | sed 's/^/  /'
} >>"$head_file"
publish

run_step environment 40 bash -c environment
# shellcheck source=/dev/null
note "os: $(. /etc/os-release 2>/dev/null && echo "$PRETTY_NAME")  glibc: $(ldd --version 2>/dev/null | head -1 | awk '{print $NF}')"
note "c++: $(c++ --version 2>/dev/null | head -1)  cmake: $(cmake --version 2>/dev/null | head -1 | awk '{print $3}')  ninja: $(ninja --version 2>/dev/null)"
note "nvcc: $(command -v nvcc >/dev/null && nvcc --version | grep -i release || echo none)"

run_step torch 90 bash -c torch_info
torch_value() { grep "^$1=" "$logs/torch.txt" 2>/dev/null | head -1 | cut -d= -f2-; }
torch_cmake=$(torch_value torch_cmake_prefix_path)
abi=$(torch_value torch_cxx11_abi)
note "torch: $(torch_value torch_version) (CUDA build $(torch_value torch_cuda_build), NCCL $(torch_value nccl)), CXX11 ABI ${abi:-unknown}"
note "CUDA available: $(torch_value cuda_available), devices: $(torch_value cuda_devices); as asked: $(tail -1 "$logs/torch.txt" 2>/dev/null)"
note "torch.utils.cmake_prefix_path: ${torch_cmake:-unknown}"
publish

run_step unpack 60 bash -c unpack
grep -E 'unpacked|fashion-mnist|digits|FAILED|left:' "$logs/unpack.txt" | sed 's/^/unpack: /' >>"$results_file"
[ ! -d "$work/digits" ] || export PACKTRAIN_MNIST_DIGITS_DIR=$work/digits

# Configure and build without the prefix in LD_LIBRARY_PATH (CMake, the
# compiler and nvcc run on the machine's own libraries); the linker finds
# the prefix's libraries' own dependencies through -rpath-link.
libdirs="$prefix/usr/lib/x86_64-linux-gnu:$prefix/lib/x86_64-linux-gnu"
export CMAKE_PREFIX_PATH="$prefix/usr${torch_cmake:+:$torch_cmake}"
export PKG_CONFIG_PATH="$prefix/usr/lib/x86_64-linux-gnu/pkgconfig:$prefix/usr/share/pkgconfig${PKG_CONFIG_PATH:+:$PKG_CONFIG_PATH}"
export TORCH_CUDA_ARCH_LIST=${TORCH_CUDA_ARCH_LIST:-9.0}  # no detection run at configure
# pkg-config named explicitly: else CMake would take the prefix's own
# usr/bin/pkg-config (CMAKE_PREFIX_PATH/bin), which cannot load its library.
pkg_config=$(command -v pkg-config || echo "$work/bin/pkg-config")
note "pkg-config: $pkg_config"
configure_args=(
  -S "$here" -B "$build" -G Ninja
  -DCMAKE_BUILD_TYPE=Release
  -DPACKTRAIN_WITH_MPI=OFF          # no Open MPI on that machine
  -DPACKTRAIN_BUILD_EXAMPLES=OFF    # not needed by the unit tests or the benches
  "-DCMAKE_PREFIX_PATH=${CMAKE_PREFIX_PATH//:/;}"
  "-DCMAKE_LIBRARY_PATH=${libdirs//:/;}"
  "-DPKG_CONFIG_EXECUTABLE=$pkg_config"
  "-DCMAKE_EXE_LINKER_FLAGS=-Wl,-rpath-link,$libdirs"
  "-DCMAKE_SHARED_LINKER_FLAGS=-Wl,-rpath-link,$libdirs"
)
# LibTorch's ABI: only an old (pre-C++11 ABI) build needs the flag on every target.
if [ "$abi" = 0 ]; then
  configure_args+=("-DCMAKE_CXX_FLAGS=-D_GLIBCXX_USE_CXX11_ABI=0")
  note "LibTorch uses the pre-C++11 ABI: -D_GLIBCXX_USE_CXX11_ABI=0 on every target (the Debian libraries will not link)"
fi
note "configure: cmake ${configure_args[*]}"
run_step configure 150 cmake "${configure_args[@]}"
grep -E '^-- packtrain:|CUDA' "$logs/configure.txt" | head -5 | sed 's/^/configure: /' >>"$results_file"

# The build leaves this much of the budget for the tests and benches.
after_build=200
build_cap() { local b=$(($(left) - after_build)); echo $((b > 0 ? b : 0)); }
run_step build_benches "$(build_cap)" cmake --build "$build" -j "$jobs" \
  --target packtrain bench_kfold bench_hogwild bench_dataparallel
run_step build_all "$(build_cap)" cmake --build "$build" -j "$jobs" -- -k 0
failed_targets=$(grep -c '^FAILED: ' "$logs/build_all.txt" 2>/dev/null)
result "build_all: ${failed_targets:-0} failed build edges$([ "${failed_targets:-0}" -eq 0 ] ||
  echo ": $(grep '^FAILED: ' "$logs/build_all.txt" | head -5 | cut -c9-90 | tr '\n' ' ')")"

# Tests and benches run on the prefix's libraries.
export LD_LIBRARY_PATH="$libdirs${LD_LIBRARY_PATH:+:$LD_LIBRARY_PATH}"

gpu_tests=$(cd "$build" 2>/dev/null && timeout "$(short 20)" ctest -N -L gpu 2>/dev/null | awk '/Total Tests:/{print $3}')
gpu_tests=${gpu_tests:-0}
if [ "$gpu_tests" -gt 0 ]; then
  run_step ctest_gpu 60 bash -c 'cd "$build" && ctest -L gpu --output-on-failure -j 4'
  result "ctest -L gpu: $gpu_tests tests registered; $(grep -E 'tests passed' "$logs/ctest_gpu.txt" | tail -1)"
else
  echo "no tests registered with label gpu" >"$logs/ctest_gpu.txt"
  result "ctest -L gpu: no tests registered with label gpu"
fi

run_step ctest_unit 90 bash -c 'cd "$build" && ctest -L unit --output-on-failure -j $((jobs / 2))'
result "ctest -L unit: $(grep -E 'tests passed' "$logs/ctest_unit.txt" | tail -1)"
sed -n '/The following tests FAILED/,$p' "$logs/ctest_unit.txt" | head -30 >>"$results_file"
cp "$build/Testing/Temporary/LastTest.log" "$logs/ctest_LastTest.log" 2>/dev/null

# A bench step, where its binary was built: NAME BINARY CAP PATTERN FUNCTION; the
# lines of its log that match PATTERN go into the summary.
bench_step() {
  if [ -x "$2" ]; then
    run_step "$1" "$3" bash -c "$5"
    grep -E "$4" "$logs/$1.txt" | sed "s/^/$1: /" >>"$results_file"
  else
    result "$1: not built"
  fi
}
bench_step bench_kfold "$build/bench/kfold/bench_kfold" 75 'speedup|memory' kfold_bench
bench_step bench_hogwild "$build/bench/hogwild/bench_hogwild" 75 'single-thread|Hogwild, |independent|target' hogwild_bench
if [ -x "$build/cli/packtrain" ]; then
  run_step replicas 75 bash -c replicas_bench
  sed -n '/^cores/,$p' "$logs/replicas.txt" | sed 's/^/replicas (packtrain train, lenet5): /' >>"$results_file"
else
  result "replicas: packtrain not built"
fi
bench_step bench_dataparallel "$build/bench/dataparallel/bench_dataparallel" 45 '^(model|mlp|lenet5) ' dataparallel_bench
if [ -x "$build/bench/gpu/bench_gpu" ]; then
  run_step bench_gpu 90 "$build/bench/gpu/bench_gpu"
  tail -15 "$logs/bench_gpu.txt" | sed 's/^/bench_gpu: /' >>"$results_file"
else
  echo "bench/gpu (bench_gpu) is absent from this build" >"$logs/bench_gpu.txt"
  result "bench_gpu: absent (no bench/gpu in this build)"
fi
if [ -x "$build/cli/packtrain" ] && [ "$(torch_value cuda_available)" = True ] &&
  timeout "$(short 10)" "$build/cli/packtrain" --version 2>/dev/null | grep -q -- 'CUDA     yes'; then
  run_step gpu_kfold 60 bash -c gpu_kfold
  grep -E '^gpu slots' "$logs/gpu_kfold.txt" | sed 's/^/gpu kfold: /' >>"$results_file"
else
  result "gpu kfold: not run (needs a packtrain whose --version says 'CUDA     yes', and CUDA available)"
fi

# The benches' run folders' results travel in logs.tar.gz.
for d in "$work"/runs/*/; do
  [ -f "$d/results.json" ] || continue
  mkdir -p "$logs/runs/$(basename "$d")"
  cp "$d"/results.json "$d"/results.csv "$logs/runs/$(basename "$d")/" 2>/dev/null
done
note "total: $((SECONDS - start_time)) s"
publish
# Exit status: 0 when every step passed, else 1.
if grep -q -v 'rc=0 ' "$steps_file"; then exit 1; fi
exit 0
