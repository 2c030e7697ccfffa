#!/usr/bin/env bash
# Builds the container image from the repository's Dockerfile with buildah, as root, into a
# scratch container storage, and prints the storage's directory (its last line of output).
# scripts/install-test.sh (CI) runs this and then runs the image.
#
# Why buildah and a locally assembled build stage: no Docker engine runs on the CI machines and
# no container registry is reachable, only the package registries. buildah builds a Dockerfile
# without a daemon (vfs storage, chroot isolation), and the Dockerfile's build stage takes its
# base from BUILDER_IMAGE: here an image of what rust:*-slim-bookworm holds, assembled from Debian
# bookworm (debootstrap, from the machine's Debian mirror) and this machine's Rust toolchain.
# The final stage is the Dockerfile's own, FROM scratch, unchanged.
#
# PROFILE=dev (the default here) builds with the test build's artifacts: the repository's
# target/, cargo's registry and the toolchain are mounted into the build stage at the paths they
# have here, so only the crate itself is compiled. PROFILE=release builds what a published image holds.
#
# Usage: scripts/image.sh STORAGE_DIR [TAG]
set -euo pipefail
cd "$(dirname "$0")/.."
storage=${1:?usage: scripts/image.sh STORAGE_DIR [TAG]}
version=$(sed -n 's/^version = "\(.*\)"/\1/p' Cargo.toml | head -1)
tag=${2:-localhost/mlsdm-audit:$version}
profile=${PROFILE:-dev}
cache=${MLSDM_AUDIT_CACHE:-/var/cache/mlsdm-audit}
fail() { echo "scripts/image.sh: $*" >&2; exit 1; }
[ "$(id -u)" = 0 ] || fail "needs root (buildah with vfs storage and chroot isolation)"

need=()
command -v buildah >/dev/null || need+=(buildah)
command -v debootstrap >/dev/null || need+=(debootstrap)
if [ ${#need[@]} -gt 0 ]; then
  apt-get update -qq
  DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends "${need[@]}" >/dev/null
fi
b() { buildah --root "$storage/root" --runroot "$storage/run" --storage-driver vfs "$@"; }

# The build stage's base: Debian bookworm with a C compiler (ring builds C) and CA certificates,
# debootstrapped once into the cache. The toolchain that built the tests is bind-mounted
# read-only at its own path, not copied: with vfs storage every layer is a full copy of the
# root file system, and a copied toolchain (1.4 GB) made the build need about 10 GB of scratch
# space, which a CI machine did not have (buildah commit died with "read/write on closed pipe").
base="$cache/image-builder-bookworm"
if [ ! -f "$base/.complete" ]; then
  rm -rf "$base"
  debootstrap --variant=minbase --include=gcc,libc6-dev,ca-certificates bookworm "$base" >/dev/null \
    || fail "debootstrap of Debian bookworm into $base failed"
  # What a build never reads (the downloaded packages, package lists the Dockerfile fetches again,
  # translations, manuals): 200 of its 467 MB, and vfs copies the base whole at every layer.
  rm -rf "$base"/var/cache/apt/archives/*.deb "$base"/var/lib/apt/lists/* \
    "$base"/usr/share/locale "$base"/usr/share/doc "$base"/usr/share/man "$base"/usr/share/info
  touch "$base/.complete"
fi

# buildah writes each layer it commits to a file under TMPDIR (/var/tmp by default, a small
# tmpfs on some machines) before storing it: keep that beside the storage. A machine short of
# disk is named here, not by buildah's "io: read/write on closed pipe" (CI failed on it twice).
mkdir -p "$storage/tmp"
export TMPDIR="$storage/tmp"
# The need, a little under the measured peak (1,483 MB with a 270 MB base, the crate's build
# into target/ included), so that only a build that cannot fit is refused.
need_mb=$(( $(du -sm "$base" | cut -f1) * 4 + 256 ))
free_mb=$(df -Pm "$storage" | awk 'NR == 2 { print $4 }')
echo "image.sh: $free_mb MB free in $storage's file system; the build needs about $need_mb MB" >&2
[ "$free_mb" -ge "$need_mb" ] \
  || fail "only $free_mb MB free in $storage's file system, the image build needs about $need_mb MB (vfs storage copies the $(du -sh "$base" | cut -f1) build base whole per layer)"
sysroot=$(rustc --print sysroot)
cargo_home=${CARGO_HOME:-$HOME/.cargo}
builder=$(b from --quiet scratch)
b copy --quiet "$builder" "$base" / >/dev/null
mnt=$(b mount "$builder")
mkdir -p "$mnt$sysroot" "$mnt$cargo_home/registry" "$cargo_home/registry"
b umount "$builder" >/dev/null
b config --env "PATH=$sysroot/bin:/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin" \
  --env "CARGO_HOME=$cargo_home" "$builder"
b commit --quiet "$builder" localhost/mlsdm-audit-builder >/dev/null
b rm "$builder" >/dev/null

mkdir -p target
b bud --quiet --isolation chroot --pull=false \
  --build-arg BUILDER_IMAGE=localhost/mlsdm-audit-builder \
  --build-arg PROFILE="$profile" \
  --build-arg GIT_COMMIT="$(git rev-parse --short=12 HEAD 2>/dev/null || echo unknown)" \
  -v "$sysroot:$sysroot:ro" -v "$cargo_home/registry:$cargo_home/registry" -v "$PWD/target:/src/target" \
  -t "$tag" . >&2 || fail "buildah bud of the Dockerfile failed"
echo "$storage"
