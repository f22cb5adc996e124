#!/bin/bash
# A GlusterFS server for the compose `gluster` profile. It runs glusterd in
# the foreground (no systemd) and, on the node with GLUSTER_CREATE=true,
# probes the peers and creates and starts the volume once, idempotently.
#   GLUSTER_VOLUME=gv0  GLUSTER_PEERS="mesos-agent-2"  GLUSTER_REPLICA=2
set -euo pipefail

volume=${GLUSTER_VOLUME:-gv0}
me=$(hostname)
mkdir -p "/bricks/$volume"

glusterd --no-daemon --log-file=- &
glusterd_pid=$!
trap 'kill "$glusterd_pid" 2>/dev/null || true' TERM INT

until gluster pool list >/dev/null 2>&1; do sleep 1; done
echo "gluster: glusterd up on $me" >&2

if [ "${GLUSTER_CREATE:-false}" = true ] && ! gluster volume info "$volume" >/dev/null 2>&1; then
  bricks="$me:/bricks/$volume"
  for peer in ${GLUSTER_PEERS:-}; do
    until gluster --mode=script peer probe "$peer" >/dev/null 2>&1; do
      echo "gluster: waiting for peer $peer" >&2
      sleep 2
    done
    bricks="$bricks $peer:/bricks/$volume"
  done
  # Peers take a moment to reach "Peer in Cluster" after the probe.
  until [ "$(gluster pool list | grep -c Connected)" -gt "$(echo ${GLUSTER_PEERS:-} | wc -w)" ]; do sleep 1; done
  replica=()
  if [ "${GLUSTER_REPLICA:-1}" -gt 1 ]; then replica=(replica "$GLUSTER_REPLICA"); fi
  # `force`: the bricks live on the container's root file system.
  # shellcheck disable=SC2086
  gluster --mode=script volume create "$volume" "${replica[@]}" $bricks force
  gluster --mode=script volume start "$volume"
  echo "gluster: volume $volume started on $bricks" >&2
fi

wait "$glusterd_pid"
