#!/usr/bin/env bash
# Every install path, taken as a user takes it (CI runs this as root after the tests):
#   1. `cargo install --path .` (into a scratch root; --debug reuses the test build's artifacts);
#   2. the .deb from `cargo deb` (scripts/deb.sh), installed with `dpkg -i`: the binary, the man
#      page, bash/zsh/fish completions where those shells look, and `kubectl mlsdm-audit` through
#      kubectl's own plugin lookup; then removed with `dpkg -r`, leaving nothing behind.
set -euo pipefail
cd "$(dirname "$0")/.."
work=$(mktemp -d)
installed=""
cleanup() {
  [ -n "$installed" ] && dpkg -r mlsdm-audit >/dev/null 2>&1 || true
  rm -rf "$work"
}
trap cleanup EXIT
fail() { echo "scripts/install-test.sh: $*" >&2; exit 1; }
version=$(sed -n 's/^version = "\(.*\)"/\1/p' Cargo.toml | head -1)

echo "install-test: cargo install --path ."
cargo install -q --locked --debug --path . --root "$work/cargo" --bin mlsdm-audit
"$work/cargo/bin/mlsdm-audit" --version | grep -q "^mlsdm-audit $version (commit " \
  || fail "cargo install: --version does not say $version and its commit"
"$work/cargo/bin/mlsdm-audit" check -f fixtures/compliant -q || fail "cargo install: the compliant example does not pass"

[ "$(id -u)" = 0 ] && command -v dpkg >/dev/null || { echo "install-test: the .deb needs root and dpkg: skipped"; exit 0; }
echo "install-test: the .deb"
deb=$(bash scripts/deb.sh dev | tail -1)
[ -f "$deb" ] || fail "scripts/deb.sh printed no package ($deb)"
dpkg-deb --info "$deb" | grep -q "Package: mlsdm-audit" || fail "$deb is not the mlsdm-audit package"
dpkg -i "$deb" >/dev/null
installed=yes
[ "$(command -v mlsdm-audit)" = /usr/bin/mlsdm-audit ] || fail "mlsdm-audit is not /usr/bin/mlsdm-audit"
mlsdm-audit --version | grep -q "^mlsdm-audit $version" || fail "--version after dpkg -i"
for f in /usr/share/man/man1/mlsdm-audit.1.gz \
         /usr/share/bash-completion/completions/mlsdm-audit \
         /usr/share/zsh/vendor-completions/_mlsdm-audit \
         /usr/share/fish/vendor_completions.d/mlsdm-audit.fish \
         /usr/share/doc/mlsdm-audit/README.md; do
  [ -s "$f" ] || fail "$f is missing or empty"
done
zcat /usr/share/man/man1/mlsdm-audit.1.gz | grep -q '^\.SH NAME' || fail "the man page has no NAME section"
bash -n /usr/share/bash-completion/completions/mlsdm-audit || fail "the bash completion does not parse"
kubectl=${MLSDM_AUDIT_KUBECTL:-${MLSDM_AUDIT_CACHE:-/var/cache/mlsdm-audit}/kubernetes-client/usr/bin/kubectl}
if [ -x "$kubectl" ]; then
  "$kubectl" mlsdm-audit --version | grep -q "^mlsdm-audit $version" || fail "kubectl mlsdm-audit --version"
  "$kubectl" mlsdm-audit check -f fixtures/compliant -q || fail "kubectl mlsdm-audit check on the compliant example"
else
  echo "install-test: no kubectl at $kubectl: the kubectl plugin is not tried"
fi
dpkg -r mlsdm-audit >/dev/null
installed=""
[ ! -e /usr/bin/mlsdm-audit ] && [ ! -e /usr/bin/kubectl-mlsdm_audit ] || fail "dpkg -r left the binaries"
echo "install-test: cargo install and the .deb (dpkg -i, man page, completions, kubectl plugin, dpkg -r) work"
