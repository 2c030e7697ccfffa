#!/usr/bin/env bash
# Runs every fuzz target in fuzz/ for SECONDS each (default 10: the quick pass CI makes; give 600
# for a real session). New corpus entries go to a scratch folder, not into fuzz/corpus; a crash
# stops the script and is left in fuzz/artifacts/TARGET/ (copy it to fuzz/regressions/TARGET/
# once fixed, so tests/fuzz_corpus.rs keeps it fixed).
#
# cargo-fuzz needs nightly compiler features; RUSTC_BOOTSTRAP=1 enables them on the stable
# toolchain, and `-s none` needs no sanitizer runtime.
set -euo pipefail
cd "$(dirname "$0")/../fuzz"
seconds=${1:-10}
command -v cargo-fuzz >/dev/null || cargo install --locked cargo-fuzz
export RUSTC_BOOTSTRAP=1
cargo fuzz build -s none -O
scratch=$(mktemp -d)
trap 'rm -rf "$scratch"' EXIT
for target in $(cargo fuzz list); do
  mkdir -p "$scratch/$target"
  echo "fuzz: $target for ${seconds}s"
  cargo fuzz run -s none -O "$target" "$scratch/$target" "corpus/$target" -- \
    -max_total_time="$seconds" -timeout=10 -rss_limit_mb=2048 -print_final_stats=1 2>&1 \
    | grep -E '^(stat::number_of_executed_units|==[0-9]+== ERROR|SUMMARY|Done )' || true
  # cargo fuzz exits non-zero on a crash; the pipe above hides it, so look for its artifact.
  if compgen -G "artifacts/$target/*" >/dev/null; then
    echo "fuzz: $target crashed; inputs in fuzz/artifacts/$target/" >&2
    exit 1
  fi
done
