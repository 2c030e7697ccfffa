#!/usr/bin/env bash
# A real kube-apiserver for the live-cluster tests, built from Debian's own source package with
# Debian packages only, and cached outside the clone (about 3 minutes on 2 cores, once).
#
#   scripts/kube-apiserver.sh build          build (or reuse) $CACHE/kube-apiserver
#   scripts/kube-apiserver.sh start DIR      start etcd + kube-apiserver on 127.0.0.1, state in DIR;
#                                            writes DIR/env (KUBE_TEST_* variables) and DIR/pids
#
# Debian 12 packages Kubernetes 1.20 (1.20.5+really1.20.2): it serves autoscaling/v2beta2 and
# policy/v1beta1 (no autoscaling/v2, no policy/v1) and has no controllers, so status is set with
# `kubectl patch --subresource=status` and pods are created by the tests.
set -euo pipefail
CACHE=${MLSDM_AUDIT_CACHE:-/var/cache/mlsdm-audit}
BIN=$CACHE/kube-apiserver
export DEBIAN_FRONTEND=noninteractive

build() {
  if [ -x "$BIN" ] && "$BIN" --version >/dev/null 2>&1; then return 0; fi
  rm -rf "$CACHE/src" "$CACHE/go"  # a half-finished earlier build
  mkdir -p "$CACHE/apt-src" "$CACHE/src"
  apt-get update -qq
  apt-get install -y -qq --no-install-recommends golang-go rsync etcd-server golang-github-modern-go-reflect2-dev dpkg-dev make >/dev/null
  # A private source list with deb-src added to the machine's own Debian entries; /etc/apt stays untouched.
  sed -e 's/^Types: deb$/Types: deb deb-src/' /etc/apt/sources.list.d/debian.sources > "$CACHE/apt-src/debian.sources"
  local apt_opts=(-o "Dir::Etc::SourceList=/dev/null" -o "Dir::Etc::SourceParts=$CACHE/apt-src" -o "Dir::State::Lists=$CACHE/apt-lists")
  mkdir -p "$CACHE/apt-lists/partial"
  apt-get "${apt_opts[@]}" update -qq
  (cd "$CACHE/src" && apt-get "${apt_opts[@]}" source -qq --download-only kubernetes >/dev/null && dpkg-source -x --no-check ./kubernetes_*.dsc tree >/dev/null)
  local tree="$CACHE/src/tree"
  # The vendored reflect2 1.0.1 crashes under Go 1.19; Debian's 1.0.2 does not.
  rm -rf "$tree/vendor/github.com/modern-go/reflect2"
  cp -r /usr/share/gocode/src/github.com/modern-go/reflect2 "$tree/vendor/github.com/modern-go/reflect2"
  mkdir -p "$CACHE/go/src/k8s.io"
  ln -sfn "$tree" "$CACHE/go/src/k8s.io/kubernetes"
  (cd "$CACHE/go/src/k8s.io/kubernetes" && GOPATH="$CACHE/go" GO111MODULE=off CGO_ENABLED=0 GOFLAGS=-mod=vendor \
    make WHAT=cmd/kube-apiserver >"$CACHE/build.log" 2>&1) || { tail -30 "$CACHE/build.log" >&2; exit 1; }
  cp "$tree/_output/local/bin/linux/amd64/kube-apiserver" "$BIN" 2>/dev/null || cp "$(find "$tree/_output" -name kube-apiserver -type f | head -1)" "$BIN"
}

start() {
  local dir=$1
  mkdir -p "$dir/etcd"
  local etcd_port=${KUBE_TEST_ETCD_PORT:-23790} api_port=${KUBE_TEST_API_PORT:-16443}
  # PKI: a CA, a serving certificate with SAN IP 127.0.0.1, and the service-account key pair.
  openssl req -x509 -newkey rsa:2048 -nodes -days 2 -subj "/CN=mlsdm-audit-test-ca" -keyout "$dir/ca.key" -out "$dir/ca.crt" 2>/dev/null
  openssl req -newkey rsa:2048 -nodes -subj "/CN=kube-apiserver" -keyout "$dir/server.key" -out "$dir/server.csr" 2>/dev/null
  printf 'subjectAltName=IP:127.0.0.1,DNS:localhost\n' > "$dir/san.ext"
  openssl x509 -req -in "$dir/server.csr" -CA "$dir/ca.crt" -CAkey "$dir/ca.key" -CAcreateserial -days 2 -extfile "$dir/san.ext" -out "$dir/server.crt" 2>/dev/null
  openssl genrsa -out "$dir/sa.key" 2048 2>/dev/null
  openssl rsa -in "$dir/sa.key" -pubout -out "$dir/sa.pub" 2>/dev/null
  # Tokens: an admin for the fixtures, a read-only auditor, and one without PDB access.
  cat > "$dir/tokens.csv" <<TOKENS
admin-token,admin,1,"system:masters"
auditor-token,auditor,2
restricted-token,restricted,3
TOKENS
  # Every request, with its user and verb, for the test that proves the audit only reads.
  printf 'apiVersion: audit.k8s.io/v1\nkind: Policy\nrules:\n  - level: Metadata\n' > "$dir/audit-policy.yaml"
  etcd --data-dir "$dir/etcd" --listen-client-urls "http://127.0.0.1:$etcd_port" --advertise-client-urls "http://127.0.0.1:$etcd_port" \
    --listen-peer-urls "http://127.0.0.1:$((etcd_port + 1))" >"$dir/etcd.log" 2>&1 &
  echo $! >> "$dir/pids"
  "$BIN" --etcd-servers "http://127.0.0.1:$etcd_port" --bind-address 127.0.0.1 --secure-port "$api_port" \
    --tls-cert-file "$dir/server.crt" --tls-private-key-file "$dir/server.key" --client-ca-file "$dir/ca.crt" \
    --token-auth-file "$dir/tokens.csv" --authorization-mode RBAC --service-cluster-ip-range 10.0.0.0/24 \
    --service-account-issuer https://kubernetes.default.svc --service-account-key-file "$dir/sa.pub" \
    --service-account-signing-key-file "$dir/sa.key" --advertise-address 127.0.0.1 --allow-privileged=false \
    --enable-priority-and-fairness=false --audit-policy-file "$dir/audit-policy.yaml" --audit-log-path "$dir/audit.log" \
    >"$dir/apiserver.log" 2>&1 &
  echo $! >> "$dir/pids"
  local ca; ca=$(base64 -w0 "$dir/ca.crt")
  for user in admin auditor restricted; do
    cat > "$dir/kubeconfig-$user" <<KC
apiVersion: v1
kind: Config
clusters:
- name: real
  cluster:
    server: https://127.0.0.1:$api_port
    certificate-authority-data: $ca
contexts:
- name: real
  context:
    cluster: real
    user: $user
    namespace: mlsdm-production
current-context: real
users:
- name: $user
  user:
    token: $user-token
KC
  done
  for _ in $(seq 1 120); do
    if kubectl --kubeconfig "$dir/kubeconfig-admin" get --raw /readyz >/dev/null 2>&1; then break; fi
    sleep 0.5
  done
  kubectl --kubeconfig "$dir/kubeconfig-admin" get --raw /readyz >/dev/null
  echo "KUBE_TEST_REAL_DIR=$dir" > "$dir/env"
}

case "${1:-}" in
  build) build ;;
  start) start "$2" ;;
  *) echo "usage: $0 build | start DIR" >&2; exit 2 ;;
esac
