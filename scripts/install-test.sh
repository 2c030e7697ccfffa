#!/usr/bin/env bash
# Every install path, taken as a user takes it (CI runs this as root after the tests):
#   1. `cargo install --path .` (into a scratch root; --debug reuses the test build's artifacts);
#   2. the .deb from `cargo deb` (scripts/deb.sh), installed with `dpkg -i`: the binary, the man
#      page, bash/zsh/fish completions where those shells look, and `kubectl mlsdm-audit` through
#      kubectl's own plugin lookup; then removed with `dpkg -r`, leaving nothing behind;
#   3. the container image, built from the Dockerfile by buildah (scripts/image.sh), run with
#      buildah run, and its root file system entered with chroot as 65532:65532 on a read-only
#      bind mount.
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

# The container image, built from the Dockerfile with buildah (scripts/image.sh: no Docker engine
# runs here), checked as it is configured (USER 65532:65532, the binary as ENTRYPOINT), run as a
# container (buildah run), and its root file system, with the compliant example copied in,
# bind-mounted read-only in a private mount namespace and entered with chroot as 65532:65532:
# the audit passes, cannot write its root, and there is no shell.
if [ "$(id -u)" = 0 ] && command -v unshare >/dev/null && command -v chroot >/dev/null; then
  echo "install-test: the container image (Dockerfile built by buildah; run as 65532, read-only root)"
  storage=$(bash scripts/image.sh "$work/storage" "localhost/mlsdm-audit:$version" | tail -1)
  b() { buildah --root "$storage/root" --runroot "$storage/run" --storage-driver vfs "$@"; }
  image="localhost/mlsdm-audit:$version"
  [ "$(b inspect --format '{{.OCIv1.Config.User}}' "$image")" = "65532:65532" ] || fail "the image does not run as 65532:65532"
  [ "$(b inspect --format '{{index .OCIv1.Config.Entrypoint 0}}' "$image")" = /usr/local/bin/mlsdm-audit ] \
    || fail "the image's entrypoint is not /usr/local/bin/mlsdm-audit"
  ctr=$(b from --quiet --pull=false "$image")
  b run --isolation chroot "$ctr" -- /usr/local/bin/mlsdm-audit --version | grep -q "^mlsdm-audit $version (commit " \
    || fail "buildah run of the image: --version"
  b run --isolation chroot -v "$PWD/fixtures/compliant:/audit:ro" "$ctr" -- /usr/local/bin/mlsdm-audit check --manifests /audit -q \
    || fail "buildah run of the image: the compliant example does not pass"
  rootfs=$(b mount "$ctr")
  mkdir -p "$rootfs/audit" "$work/ro"
  cp -r fixtures/compliant "$rootfs/audit/compliant"
  REPORT_VERSION=$version unshare -m sh -eu -c '
    rootfs=$1; ro=$2
    mount --bind "$rootfs" "$ro"
    mount -o remount,bind,ro "$ro"
    run() { chroot --userspec=65532:65532 "$ro" "$@"; }
    run /usr/local/bin/mlsdm-audit --version | grep -q "^mlsdm-audit $REPORT_VERSION (commit "       || { echo "image: --version" >&2; exit 1; }
    run /usr/local/bin/mlsdm-audit check --manifests /audit/compliant -q       || { echo "image: the compliant example does not pass as 65532 on a read-only root" >&2; exit 1; }
    # Read-only for real: the audit cannot write into its root, and says so (exit 2).
    code=0; run /usr/local/bin/mlsdm-audit check --manifests /audit/compliant -q --output-file /report.json 2>/dev/null || code=$?
    [ "$code" = 2 ] || { echo "image: writing into the read-only root gave exit $code, not 2" >&2; exit 1; }
    # No shell in the image.
    code=0; run /bin/sh -c true 2>/dev/null || code=$?
    [ "$code" = 127 ] || { echo "image: /bin/sh ran (exit $code)" >&2; exit 1; }
  ' sh "$rootfs" "$work/ro" || fail "the image's root file system does not run the audit as 65532 on a read-only root"
  [ -z "$(find "$rootfs" -name sh -o -name bash -o -name busybox)" ] || fail "the image's root file system has a shell"
  b umount "$ctr" >/dev/null
  b rm "$ctr" >/dev/null
else
  echo "install-test: the container image needs root, unshare and chroot: skipped"
fi

[ "$(id -u)" = 0 ] && command -v dpkg >/dev/null || { echo "install-test: the .deb needs root and dpkg: skipped"; exit 0; }
echo "install-test: the .deb"
deb=$(bash scripts/deb.sh dev | tail -1)
[ -f "$deb" ] || fail "scripts/deb.sh printed no package ($deb)"
# Not `| grep -q`: grep would exit at the first match and, under pipefail, the writer's SIGPIPE
# would fail the check.
[ "$(dpkg-deb --field "$deb" Package)" = mlsdm-audit ] || fail "$deb is not the mlsdm-audit package"
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
zcat /usr/share/man/man1/mlsdm-audit.1.gz | grep '^\.SH NAME' >/dev/null || fail "the man page has no NAME section"
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
echo "install-test: cargo install, the container image (built from the Dockerfile; buildah run, chroot as 65532, read-only) and the .deb (dpkg -i, man page, completions, kubectl plugin, dpkg -r) work"
