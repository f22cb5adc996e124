#!/bin/sh
# Entry point of the compose `locus` service: mounts the FUSE file systems the
# storage backends read locations through (GlusterFS pathinfo, CephFS layouts)
# when asked to, then runs `locus` with the service's command.
#   GLUSTER_MOUNTS="mesos-agent-1:/gv0=/mnt/glusterfs/gv0 ..."   (needs privileged)
#   CEPHFS_MOUNT=/mnt/cephfs                                     (needs privileged)
set -eu

say() { echo "locus: compose: $*" >&2; }

# Retry a mount for up to a minute: the storage service may still be starting.
retry_mount() {
  tries=0
  until "$@"; do
    tries=$((tries + 1))
    if [ "$tries" -ge 30 ]; then
      say "giving up: $*"
      return 1
    fi
    sleep 2
  done
}

for spec in ${GLUSTER_MOUNTS:-}; do
  source_part=${spec%%=*}
  target=${spec#*=}
  mkdir -p "$target"
  if ! mountpoint -q "$target"; then
    say "mounting glusterfs $source_part at $target"
    retry_mount mount -t glusterfs "$source_part" "$target"
  fi
done

if [ -n "${CEPHFS_MOUNT:-}" ]; then
  mkdir -p "$CEPHFS_MOUNT"
  if ! mountpoint -q "$CEPHFS_MOUNT"; then
    say "mounting cephfs at $CEPHFS_MOUNT"
    retry_mount ceph-fuse "$CEPHFS_MOUNT"
  fi
fi

exec locus "$@"
