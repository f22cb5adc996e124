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
"$cc" -O2 -Wall -Wextra -Werror -o "$out.tmp" "$src"
mv "$out.tmp" "$out"
echo "build-native: built $out" >&2
