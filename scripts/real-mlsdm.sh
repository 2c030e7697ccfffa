#!/usr/bin/env bash
# Unpacks MLSDM's source tarball into DIR/mlsdm and installs it into DIR/venv (once; later runs
# reuse both), for tests/real_mlsdm.rs. Usage: scripts/real-mlsdm.sh TARBALL DIR
# The editable install is what runs: the plain install alone fails at start-up (PolicyDriftError,
# its policy files live outside the package). openai is upstream's optional LLM client, needed
# for the dead-backend scenario.
set -euo pipefail
src=$1
dir=$2
mkdir -p "$dir"
if [ ! -f "$dir/mlsdm/pyproject.toml" ]; then
  tar xzf "$src" -C "$dir"
fi
if [ ! -x "$dir/venv/bin/uvicorn" ]; then
  rm -rf "$dir/venv"
  python3 -m venv "$dir/venv"
  "$dir/venv/bin/pip" install -q "$dir/mlsdm"
  "$dir/venv/bin/pip" install -q --no-deps -e "$dir/mlsdm"
fi
if ! "$dir/venv/bin/python" -c 'import openai' 2>/dev/null; then
  "$dir/venv/bin/pip" install -q openai
fi
