#!/usr/bin/env bash
# Builds dist/native/locus-spawn, the native container launcher
# (src/executor/isolation/native/locus-spawn.c), when a C compiler is there.
# Without one Locus still runs: containers start with bubblewrap and setpriv,
# about three times the CPU per container (bench/results/short-*.md).
set -euo pipefail
cd "$(dirname "$0")/.."
src=src/executor/isolation/native/locus-spawn.c
out=dist/native/locus-spawn
[ "$(uname -s)" = Linux ] || exit 0
cc=${CC:-$(command -v cc || command -v gcc || true)}
if [ -z "$cc" ]; then
  echo "build-native: no C compiler (install gcc); containers will start with bubblewrap instead of locus-spawn" >&2
  exit 0
fi
if [ -x "$out" ] && [ "$out" -nt "$src" ]; then exit 0; fi
mkdir -p "$(dirname "$out")"
# Warnings are shown, not fatal: another compiler version must not stop the set-up. A build that
# fails leaves Locus on the bwrap path, says so here, and `locus doctor` says it again.
if "$cc" -O2 -Wall -Wextra -o "$out.tmp" "$src"; then
  mv "$out.tmp" "$out"
  echo "build-native: built $out" >&2
else
  rm -f "$out.tmp"
  echo "build-native: could not build $out (see the compiler's messages above); containers will start with bubblewrap instead" >&2
fi
