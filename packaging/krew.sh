#!/usr/bin/env bash
# The krew release archive and its manifest: packs BINARY (default target/release/mlsdm-audit)
# and LICENSE into OUT/mlsdm-audit-vVERSION-linux-amd64.tar.gz (the name the manifest's uri
# ends with) and writes OUT/mlsdm-audit.yaml, packaging/krew/mlsdm-audit.yaml with the archive's
# sha256. Prints the archive's path, then the manifest's.
# Usage: packaging/krew.sh [BINARY] [OUT]
set -euo pipefail
cd "$(dirname "$0")/.."
bin=${1:-target/release/mlsdm-audit}
out=${2:-target/krew}
version=$(sed -n 's/^version = "\(.*\)"/\1/p' Cargo.toml | head -1)
[ -x "$bin" ] || { echo "packaging/krew.sh: $bin is not an executable (cargo build --release first)" >&2; exit 2; }
mkdir -p "$out"
stage=$(mktemp -d)
trap 'rm -rf "$stage"' EXIT
cp "$bin" "$stage/mlsdm-audit"
cp LICENSE "$stage/LICENSE"
archive="$out/mlsdm-audit-v$version-linux-amd64.tar.gz"
# Reproducible: fixed order, owner and time, so the sha256 depends on the content only.
tar --sort=name --owner=0 --group=0 --numeric-owner --mtime=@0 -C "$stage" -cf - mlsdm-audit LICENSE \
  | gzip -n > "$archive"
sum=$(sha256sum "$archive" | cut -d' ' -f1)
sed -e "s/sha256: \"0\{64\}\"/sha256: \"$sum\"/" packaging/krew/mlsdm-audit.yaml > "$out/mlsdm-audit.yaml"
grep -q "sha256: \"$sum\"" "$out/mlsdm-audit.yaml" || { echo "packaging/krew.sh: the manifest has no sha256 placeholder to fill" >&2; exit 1; }
echo "$archive"
echo "$out/mlsdm-audit.yaml"
