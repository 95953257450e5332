#!/usr/bin/env bash
# Lays out the files the container image adds to the binary, from this
# machine only (no base image can be pulled): the CA certificates (for the
# ACME CA and Redis over TLS), a passwd/group naming the non-root user, and
# the data directory owned by it.
# Usage: scripts/image-rootfs.sh DIR
set -euo pipefail
dir=${1:?usage: scripts/image-rootfs.sh DIR}
ca=/etc/ssl/certs/ca-certificates.crt
if [ ! -s "$ca" ]; then
  echo "scripts/image-rootfs.sh: $ca missing; install Debian's ca-certificates" >&2
  exit 1
fi
rm -rf "$dir"
mkdir -p "$dir/etc/ssl/certs" "$dir/data" "$dir/tmp"
cp "$ca" "$dir/etc/ssl/certs/ca-certificates.crt"
# 65532 is the "nonroot" user of distroless images, which operators know.
printf 'root:x:0:0:root:/root:/sbin/nologin\nstranger:x:65532:65532:stranger:/data:/sbin/nologin\n' > "$dir/etc/passwd"
printf 'root:x:0:\nstranger:x:65532:\n' > "$dir/etc/group"
chmod 1777 "$dir/tmp"
