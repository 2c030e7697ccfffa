#!/usr/bin/env bash
# The container image's whole root file system, assembled in DEST (the Dockerfile's build stage
# runs this; scripts/install-test.sh runs it too and then runs the binary inside DEST with chroot,
# as 65532:65532, on a read-only bind mount, which is how the image runs):
#   DEST/usr/local/bin/mlsdm-audit          the binary
#   the shared libraries `ldd` names         (at their own paths, the loader included)
#   DEST/etc/ssl/certs/ca-certificates.crt  the CA store rustls reads for --endpoint/--prometheus
#   DEST/etc/passwd, DEST/etc/group          entries for UID/GID 65532 (nonroot)
# Nothing else: no shell, no package manager, no writable path the image needs.
# Usage: packaging/rootfs.sh BINARY DEST
set -euo pipefail
bin=${1:?usage: packaging/rootfs.sh BINARY DEST}
dest=${2:?usage: packaging/rootfs.sh BINARY DEST}
[ -x "$bin" ] || { echo "packaging/rootfs.sh: $bin is not an executable" >&2; exit 2; }
certs=/etc/ssl/certs/ca-certificates.crt
[ -s "$certs" ] || { echo "packaging/rootfs.sh: no CA certificates at $certs (install ca-certificates)" >&2; exit 2; }
mkdir -p "$dest/usr/local/bin" "$dest/etc/ssl/certs"
cp "$bin" "$dest/usr/local/bin/mlsdm-audit"
# Every absolute path ldd prints: the libraries and the dynamic loader, symlinks resolved.
libs=$(ldd "$bin" | grep -o '/[^ ]*' || true)
[ -n "$libs" ] || echo "packaging/rootfs.sh: ldd names no shared library (a static binary)" >&2
for lib in $libs; do
  cp --parents -L "$lib" "$dest/"
done
cp "$certs" "$dest/etc/ssl/certs/"
echo 'nonroot:x:65532:65532:nonroot:/nonexistent:/sbin/nologin' > "$dest/etc/passwd"
echo 'nonroot:x:65532:' > "$dest/etc/group"
