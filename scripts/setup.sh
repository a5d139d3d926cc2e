#!/usr/bin/env bash
# Prepare a Debian 12 host (as root) to build and run nexcage: system packages, Bun from the npm registry,
# the cgroup fix libcrun needs on hybrid hosts, then build dist/nexcage. Idempotent.
set -euo pipefail
cd "$(dirname "$0")/.."

if [ "$(id -u)" != 0 ]; then echo "setup.sh: run as root" >&2; exit 1; fi

export DEBIAN_FRONTEND=noninteractive
pkgs=(crun runc busybox-static gcc libc6-dev binutils libyajl-dev libseccomp-dev libcap-dev libsystemd-dev
      python3 ca-certificates podman containerd iproute2 procps
      lxc lxc-dev qemu-system-x86 zstd criu btrfs-progs libssl-dev
      # microvm: Debian's cloud kernel booted by QEMU, qcow2 overlays, ext4 images built without mounting,
      # initramfs archives; gvisor: runsc
      linux-image-cloud-amd64 qemu-utils e2fsprogs cpio runsc
      # networking: the standard CNI plugins and nftables; images: umoci and skopeo
      containernetworking-plugins nftables umoci skopeo)
# npm only when there is none (a nodesource nodejs already ships it; Debian's npm would conflict)
command -v npm >/dev/null || pkgs+=(nodejs npm)
# ZFS: zfs-fuse (main) gives a real userspace pool for the zfs CLI path; libzfs_core and its headers come
# from Debian's contrib component (the FFI binding is built and loaded against them)
pkgs+=(zfs-fuse libzfs4linux libzfslinux-dev)
# (added to the existing Debian entries, so they keep their own signing options)
if ! grep -rqsE "^(Components:.*|deb .*)contrib" /etc/apt/sources.list /etc/apt/sources.list.d/; then
  for f in /etc/apt/sources.list.d/*.sources; do
    [ -f "$f" ] && grep -q "deb.debian.org/debian$" "$f" && sed -i -E 's/^(Components:.*\bmain\b.*)$/\1 contrib/' "$f"
  done
  [ -f /etc/apt/sources.list ] && sed -i -E 's#^(deb .*deb\.debian\.org/debian .*\bmain\b.*)$#\1 contrib#' /etc/apt/sources.list
fi
missing=()
for p in "${pkgs[@]}"; do dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "ok installed" || missing+=("$p"); done
if [ "${#missing[@]}" -gt 0 ]; then
  apt-get update -qq
  # with recommends: podman wants its usual companions (slirp4netns, catatonit, uidmap ...)
  apt-get install -y -qq "${missing[@]}" >/dev/null
fi

# Bun comes from the npm registry as a devDependency (npm ci installs the platform binary package);
# installed again whenever package-lock.json changed since the last install
lock_sum=$(sha256sum package-lock.json | cut -d' ' -f1)
if [ ! -x node_modules/.bin/bun ] || [ "$(cat node_modules/.nexcage-lock-sum 2>/dev/null)" != "$lock_sum" ]; then
  npm ci --no-audit --no-fund --loglevel=error
  echo "$lock_sum" > node_modules/.nexcage-lock-sum
fi

# Hybrid cgroup hosts: libcrun refuses while controllers are enabled on the cgroup2 hierarchy.
# Move each one to its own v1 hierarchy (only possible while no cgroup2 child uses it).
v2=/sys/fs/cgroup/unified
if [ -f "$v2/cgroup.controllers" ]; then
  for c in $(cat "$v2/cgroup.controllers"); do
    mkdir -p "/sys/fs/cgroup/$c"
    mountpoint -q "/sys/fs/cgroup/$c" || mount -t cgroup -o "$c" cgroup "/sys/fs/cgroup/$c" \
      || echo "setup.sh: could not move cgroup controller $c to v1; the crun backend will refuse this host" >&2
  done
fi

node_modules/.bin/bun build.ts
