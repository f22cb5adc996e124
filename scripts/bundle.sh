#!/usr/bin/env bash
# Build the executor bundle for `--executor-uri`: one tarball the Mesos fetcher
# downloads and unpacks into each executor's sandbox. It holds the built code,
# the production npm packages and this machine's Node binary, under `locus/`,
# so the default `--executor-command ./locus/bin/locus executor` runs it.
# Usage: scripts/bundle.sh [OUT]   (default dist-bundle/locus-<version>-linux-<arch>.tgz)
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/setup.sh runtime
version=$(node -p "require('./package.json').version")
arch=$(node -p "process.arch")
out=${1:-dist-bundle/locus-${version}-linux-${arch}.tgz}
stage=$(mktemp -d)
trap 'rm -rf "$stage"' EXIT
mkdir -p "$stage/locus/bin" "$stage/locus/scripts"
cp -r dist package.json package-lock.json proto "$stage/locus/"
rm -f "$stage/locus/dist/.build-stamp"
cp -r scripts/npm "$stage/locus/scripts/"
cp -r node_modules "$stage/locus/"
# Development packages (TypeScript, vitest, ...) are not needed on agents; pruning is offline.
(cd "$stage/locus" && npm prune --omit=dev --offline --no-audit --no-fund --loglevel=error >/dev/null)
cp "$(command -v node)" "$stage/locus/bin/node"
cat > "$stage/locus/bin/locus" <<'SH'
#!/bin/sh
# The locus command from an unpacked bundle: its own Node, its own code. An executor starts from
# dist/executor.mjs, its code and packages in one file with its code cache (src/cli/executor-main.ts): about a third
# of the start-up time of loading them file by file.
here=$(cd "$(dirname "$0")/.." && pwd)
if [ "${1:-}" = executor ] && [ -f "$here/dist/executor.mjs" ]; then
  exec "$here/bin/node" "$here/dist/executor.mjs" "$@"
fi
exec "$here/bin/node" "$here/dist/src/cli/main.js" "$@"
SH
chmod 755 "$stage/locus/bin/locus"
mkdir -p "$(dirname "$out")"
tar -czf "$out.tmp" -C "$stage" locus
mv "$out.tmp" "$out"
echo "$out ($(du -h "$out" | cut -f1)): use it with --executor-uri file://$(realpath "$out") (or an http(s) URL the agents can reach)" >&2
echo "$out"
