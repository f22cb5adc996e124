#!/usr/bin/env bash
# The whole suite: set-up, build, dependency lint, type check, then vitest.
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/setup.sh test
echo "== lint (dependency rules, cycles)" >&2
node scripts/lint-deps.mjs
echo "== typecheck (src, test, bench)" >&2
npx tsc --noEmit -p .
echo "== vitest" >&2
exec npx vitest run "$@"
