#!/usr/bin/env bash
# The whole suite on a loaded machine: `stress-ng --cpu N` (default: one worker per core) keeps
# every core busy while scripts/test.sh runs. No test may depend on timing a busy core breaks.
# Usage: scripts/test-under-load.sh [cargo test args...]
set -euo pipefail
cd "$(dirname "$0")/.."
if ! command -v stress-ng >/dev/null; then
  if [ "$(id -u)" = 0 ] && command -v apt-get >/dev/null; then
    apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends stress-ng >/dev/null
  else
    echo "scripts/test-under-load.sh: stress-ng is missing (Debian: apt-get install stress-ng)" >&2
    exit 2
  fi
fi
workers=${STRESS_CPU:-$(nproc)}
stress-ng --cpu "$workers" --timeout 3h --quiet &
stress=$!
trap 'kill "$stress" 2>/dev/null || true; wait "$stress" 2>/dev/null || true' EXIT
echo "scripts/test-under-load.sh: stress-ng --cpu $workers (pid $stress) while the suite runs"
bash scripts/test.sh "$@"
