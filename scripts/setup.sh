#!/usr/bin/env bash
# Installs what Locus and its test suite need on a fresh Debian machine:
# the npm packages (npm ci) and, when missing, the Debian packages.
# Usage: scripts/setup.sh [runtime|test]   (default: test)
set -euo pipefail
cd "$(dirname "$0")/.."
mode="${1:-test}"

say() { echo "setup: $*" >&2; }

need=()
command -v redis-server >/dev/null 2>&1 || need+=(redis-server)
# bubblewrap gives containers their namespaces and mounts; without it Locus
# falls back to plain processes (and says so), so the demo still runs.
command -v bwrap >/dev/null 2>&1 || need+=(bubblewrap)
# A C compiler builds locus-spawn, the native container launcher (scripts/build-native.sh).
command -v cc >/dev/null 2>&1 || need+=(gcc libc6-dev)
if [ "$mode" = test ]; then
  [ -f /usr/share/java/zookeeper.jar ] || need+=(zookeeper)
  command -v ceph-osd >/dev/null 2>&1 || need+=(ceph ceph-mon ceph-osd ceph-mgr ceph-mds ceph-fuse)
  command -v glusterd >/dev/null 2>&1 || need+=(glusterfs-server glusterfs-client)
  command -v getfattr >/dev/null 2>&1 || need+=(attr)
  command -v docker-compose >/dev/null 2>&1 || need+=(docker-compose)
  # The genuine Mesos 1.12 binaries the conformance suite runs (LOCUS_MESOS_HOME, else the shared
  # testbed beside the checkout) link Debian's libraries; the suite unpacks the binaries itself.
  mesos_home=${LOCUS_MESOS_HOME:-../shared/testbeds/mesos}
  if [ -f "$mesos_home/runtime-packages.txt" ]; then
    for p in $(cat "$mesos_home/runtime-packages.txt"); do
      dpkg -s "$p" >/dev/null 2>&1 || need+=("$p")
    done
  fi
  command -v unzip >/dev/null 2>&1 || need+=(unzip)
  # The dashboard's browser test drives Debian's Chromium (playwright-core downloads no browser here).
  [ -x /usr/bin/chromium ] || need+=(chromium)
fi

if [ ${#need[@]} -gt 0 ]; then
  if [ "$(id -u)" != 0 ]; then
    say "missing Debian packages: ${need[*]}; run as root or: sudo apt-get install -y ${need[*]}"
    exit 1
  fi
  say "installing Debian packages: ${need[*]}"
  export DEBIAN_FRONTEND=noninteractive
  apt-get update -qq
  # policy-rc.d keeps package scripts from starting system services (a
  # system redis on 6379, ceph daemons): the suite starts its own on free ports.
  had_policy=0; [ -e /usr/sbin/policy-rc.d ] && had_policy=1
  [ $had_policy = 1 ] || printf '#!/bin/sh\nexit 101\n' > /usr/sbin/policy-rc.d && chmod +x /usr/sbin/policy-rc.d
  apt-get install -y -qq --no-install-recommends "${need[@]}" >/dev/null
  [ $had_policy = 1 ] || rm -f /usr/sbin/policy-rc.d
fi

if [ ! -d node_modules ] || [ package-lock.json -nt node_modules/.package-lock.json ]; then
  say "installing npm packages (npm ci)"
  npm ci --no-audit --no-fund --loglevel=error
fi

if [ ! -f dist/src/cli/main.js ] || [ -n "$(find src bench -newer dist/.build-stamp -name '*.ts' 2>/dev/null | head -1)" ] || [ ! -f dist/.build-stamp ]; then
  say "building"
  npx tsc -p tsconfig.build.json
  node scripts/bundle-executor.mjs
  touch dist/.build-stamp
fi
# The native container launcher (rebuilt when its source changed; skipped, with a line, without cc).
bash scripts/build-native.sh
