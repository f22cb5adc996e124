#!/usr/bin/env bash
# Builds Locus's native helpers into dist/native/ when a C compiler is there:
# - locus-spawn (src/executor/isolation/native/locus-spawn.c), the container launcher. Without it
#   containers start with bubblewrap and setpriv, about three times the CPU per container
#   (bench/results/short-*.md).
# - locus-syncfs (src/executor/native/locus-syncfs.c), the group commit's filesystem flush.
#   Without it every output commit flushes its own files (fs-flush.ts).
# Locus runs without either, only more slowly.
set -euo pipefail
cd "$(dirname "$0")/.."
[ "$(uname -s)" = Linux ] || exit 0
cc=${CC:-$(command -v cc || command -v gcc || true)}
if [ -z "$cc" ]; then
  echo "build-native: no C compiler (install gcc); containers will start with bubblewrap instead of locus-spawn, and output commits flush file by file" >&2
  exit 0
fi
build() {
  local src=$1 out=$2 without=$3
  if [ -x "$out" ] && [ "$out" -nt "$src" ]; then return 0; fi
  mkdir -p "$(dirname "$out")"
  # Warnings are shown, not fatal: another compiler version must not stop the set-up. A build that
  # fails leaves Locus on its slower way, says so here, and `locus doctor` says it again.
  if "$cc" -O2 -Wall -Wextra -o "$out.tmp" "$src"; then
    mv "$out.tmp" "$out"
    echo "build-native: built $out" >&2
  else
    rm -f "$out.tmp"
    echo "build-native: could not build $out (see the compiler's messages above); $without" >&2
  fi
}
build src/executor/isolation/native/locus-spawn.c dist/native/locus-spawn "containers will start with bubblewrap instead"
build src/executor/native/locus-syncfs.c dist/native/locus-syncfs "output commits will flush file by file"
