#!/usr/bin/env bash
# The main job: the word-count demo on the embedded local cluster.
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/setup.sh runtime
exec node dist/src/cli/main.js demo "$@"
