#!/usr/bin/env bash
# The whole test suite: installs what the tests need (when run as root on Debian), then runs
# `cargo test`. Every server a test talks to listens on 127.0.0.1 and is stopped when it ends.
set -euo pipefail
cd "$(dirname "$0")/.."

need_apt=()
command -v ssh-keygen >/dev/null || need_apt+=(openssh-client)
command -v chromium >/dev/null || need_apt+=(chromium)

# A Python with junitparser, the real JUnit parser the JUnit test reads our XML with.
python=""
for p in python3 /usr/bin/python3; do
  if command -v "$p" >/dev/null && "$p" -c 'import junitparser' 2>/dev/null; then python="$p"; break; fi
done
if [ -z "$python" ]; then
  if command -v python3 >/dev/null && python3 -m pip --version >/dev/null 2>&1 \
     && python3 -m pip install -q junitparser 2>/dev/null && python3 -c 'import junitparser' 2>/dev/null; then
    python=python3
  else
    need_apt+=(python3 python3-junitparser)
    python=/usr/bin/python3
  fi
fi

if [ ${#need_apt[@]} -gt 0 ]; then
  if [ "$(id -u)" = 0 ] && command -v apt-get >/dev/null; then
    apt-get update -qq
    DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends "${need_apt[@]}" >/dev/null
  else
    echo "scripts/test.sh: missing ${need_apt[*]}; install them (Debian: apt-get install ${need_apt[*]})" >&2
    exit 2
  fi
fi
export MLSDM_AUDIT_PYTHON="$python"

cargo test "$@"
