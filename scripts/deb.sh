#!/usr/bin/env bash
# Builds the Debian package with cargo-deb: the binary, `kubectl mlsdm-audit` (a kubectl plugin
# name for it), the man page and bash/zsh/fish completions, which the binary itself generates.
# Usage: scripts/deb.sh [release|dev]   (dev reuses the test build; CI installs that one)
# Prints the path of the .deb.
set -euo pipefail
cd "$(dirname "$0")/.."
profile=${1:-release}
case "$profile" in
  release) dir=release ;;
  dev) dir=debug ;;
  *) echo "scripts/deb.sh: profile is release or dev, not $profile" >&2; exit 2 ;;
esac
cargo build -q --locked --profile "$profile" --bin mlsdm-audit
bin="target/$dir/mlsdm-audit"
mkdir -p target/assets target/deb
"$bin" man | gzip -9n > target/assets/mlsdm-audit.1.gz
"$bin" completions bash > target/assets/mlsdm-audit.bash
"$bin" completions zsh > target/assets/_mlsdm-audit
"$bin" completions fish > target/assets/mlsdm-audit.fish
if ! command -v cargo-deb >/dev/null; then
  cargo install -q --locked cargo-deb >&2
fi
cargo deb --no-build --profile "$profile" --output target/deb/ -q
