#!/usr/bin/env bash
# The whole test suite: installs what the tests need (when run as root on Debian), then runs
# `cargo test`. Every server a test talks to listens on 127.0.0.1 and is stopped when it ends.
set -euo pipefail
cd "$(dirname "$0")/.."

need_apt=()
command -v ssh-keygen >/dev/null || need_apt+=(openssh-client)
command -v chromium >/dev/null || need_apt+=(chromium)
command -v prometheus >/dev/null || need_apt+=(prometheus)
command -v curl >/dev/null || need_apt+=(curl)
command -v openssl >/dev/null || need_apt+=(openssl)
command -v jq >/dev/null || need_apt+=(jq)

# A Python with junitparser (the real JUnit parser the JUnit test reads our XML with),
# jsonschema (the SARIF test validates against the SARIF 2.1.0 schema) and PyYAML
# (scripts/gen-fixtures.py, whose output tests/catalog.rs checks is the committed one).
python=""
for p in python3 /usr/bin/python3; do
  if command -v "$p" >/dev/null && "$p" -c 'import junitparser, jsonschema, yaml' 2>/dev/null; then python="$p"; break; fi
done
if [ -z "$python" ]; then
  if command -v python3 >/dev/null && python3 -m pip --version >/dev/null 2>&1 \
     && python3 -m pip install -q junitparser jsonschema pyyaml 2>/dev/null \
     && python3 -c 'import junitparser, jsonschema, yaml' 2>/dev/null; then
    python=python3
  else
    need_apt+=(python3 python3-junitparser python3-jsonschema python3-yaml)
    python=/usr/bin/python3
  fi
fi

# The real-MLSDM test builds a venv when upstream's tarball is there (see below).
if [ -f ../shared/upstream/mlsdm-1.2.0-src.tar.gz ] && ! python3 -c 'import ensurepip' 2>/dev/null; then
  need_apt+=(python3-venv)
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

# Debian's kubectl (kubernetes-client), unpacked into a cache: some images ship another kubectl
# at /usr/bin/kubectl that the package would collide with.
cache=${MLSDM_AUDIT_CACHE:-/var/cache/mlsdm-audit}
export MLSDM_AUDIT_CACHE=$cache
kubectl_bin="$cache/kubernetes-client/usr/bin/kubectl"
if [ ! -x "$kubectl_bin" ]; then
  mkdir -p "$cache/deb"
  (cd "$cache/deb" && apt-get download -qq kubernetes-client 2>/dev/null) || { apt-get update -qq && (cd "$cache/deb" && apt-get download -qq kubernetes-client); }
  dpkg-deb -x "$cache"/deb/kubernetes-client_*.deb "$cache/kubernetes-client"
fi
export MLSDM_AUDIT_KUBECTL="$kubectl_bin"
export PATH="$(dirname "$kubectl_bin"):$PATH"

# Servers the tests use, all on 127.0.0.1, stopped by PID when this script exits:
# an MLSDM stand-in per mode, each scraped every second by a real Prometheus of its own (one per
# mode, because the checks' queries aggregate over everything a Prometheus holds).
work=$(mktemp -d)
pids=()
cleanup() {
  if [ -f "$work/kube/pids" ]; then while read -r pid; do pids+=("$pid"); done < "$work/kube/pids"; fi
  for pid in "${pids[@]}"; do kill "$pid" 2>/dev/null || true; done
  # Give each server a few seconds to stop, then make sure (some are not this shell's children).
  for _ in $(seq 1 20); do
    alive=0
    for pid in "${pids[@]}"; do kill -0 "$pid" 2>/dev/null && alive=1; done
    [ "$alive" = 0 ] && break
    sleep 0.5
  done
  for pid in "${pids[@]}"; do kill -9 "$pid" 2>/dev/null || true; done
  for pid in "${pids[@]}"; do wait "$pid" 2>/dev/null || true; done
  rm -rf "$work"
}
trap cleanup EXIT

wait_port() {
  local port=$1 tries=0
  until (exec 3<>"/dev/tcp/127.0.0.1/$port") 2>/dev/null; do
    tries=$((tries + 1))
    if [ "$tries" -gt 120 ]; then echo "scripts/test.sh: nothing listens on 127.0.0.1:$port" >&2; exit 1; fi
    sleep 0.5
  done
}

cargo build -q -p mlsdm-audit-testservers --bin mlsdm-test-server
cat > "$work/rules.yml" <<'RULES'
groups:
  - name: mlsdm-test
    rules:
      - alert: MLSDMHighErrorRate
        expr: (sum(rate(mlsdm_http_requests_total{status=~"5.."}[30s])) or vector(0)) / sum(rate(mlsdm_http_requests_total[30s])) > 0.10
        labels:
          severity: critical
RULES
promtool check rules "$work/rules.yml" >/dev/null
i=0
for mode in healthy errors slow empty-metrics leak busy-cpu; do
  sport=$((18081 + i)); pport=$((19091 + i)); i=$((i + 1))
  name=$(echo "$mode" | tr 'a-z-' 'A-Z_')
  target/debug/mlsdm-test-server "127.0.0.1:$sport" "$mode" >"$work/mlsdm-$mode.log" 2>&1 &
  pids+=($!)
  cat > "$work/prometheus-$mode.yml" <<CONFIG
global:
  scrape_interval: 1s
  evaluation_interval: 1s
rule_files: ["$work/rules.yml"]
scrape_configs:
  - job_name: mlsdm
    metrics_path: /health/metrics
    static_configs:
      - targets: ["127.0.0.1:$sport"]
  # What the kubelet's cAdvisor would give Prometheus for the MLSDM container.
  - job_name: cadvisor
    metrics_path: /metrics/cadvisor
    static_configs:
      - targets: ["127.0.0.1:$sport"]
CONFIG
  prometheus --config.file="$work/prometheus-$mode.yml" --storage.tsdb.path="$work/data-$mode" \
    --web.listen-address="127.0.0.1:$pport" --log.level=warn >"$work/prometheus-$mode.log" 2>&1 &
  pids+=($!)
  export "MLSDM_AUDIT_TEST_MLSDM_$name=http://127.0.0.1:$sport"
  export "MLSDM_AUDIT_TEST_PROMETHEUS_$name=http://127.0.0.1:$pport"
  wait_port "$sport"
  wait_port "$pport"
done

# serve_prometheus NAME PORT: a Prometheus on 127.0.0.1:PORT configured by
# $work/prometheus-NAME.yml, stopped with the others, its URL exported as
# MLSDM_AUDIT_TEST_PROMETHEUS_<NAME> (upper case, - as _).
serve_prometheus() {
  local name=$1 port=$2 var
  prometheus --config.file="$work/prometheus-$name.yml" --storage.tsdb.path="$work/data-$name" \
    --web.listen-address="127.0.0.1:$port" --log.level=warn >"$work/prometheus-$name.log" 2>&1 &
  pids+=($!)
  var=MLSDM_AUDIT_TEST_PROMETHEUS_$(echo "$name" | tr 'a-z-' 'A-Z_')
  export "$var=http://127.0.0.1:$port"
  wait_port "$port"
}

# One more Prometheus scraping the healthy stand-in, with no rule files: it has no alerting rule,
# so ALERTS is empty whatever the service does (tests/prometheus.rs).
grep -v '^rule_files:' "$work/prometheus-healthy.yml" > "$work/prometheus-no-rules.yml"
serve_prometheus no-rules 19097

# One more scraping two releases at once, as a shared Prometheus does: the healthy stand-in as
# namespace mlsdm-production and the erroring one as mlsdm-staging (tests/prometheus.rs: the
# checks refuse to add them together, and --prometheus-selector picks one).
cat > "$work/prometheus-mixed.yml" <<CONFIG
global:
  scrape_interval: 1s
scrape_configs:
  - job_name: mlsdm
    metrics_path: /health/metrics
    static_configs:
      - targets: ["${MLSDM_AUDIT_TEST_MLSDM_HEALTHY#http://}"]
        labels: {namespace: mlsdm-production}
      - targets: ["${MLSDM_AUDIT_TEST_MLSDM_ERRORS#http://}"]
        labels: {namespace: mlsdm-staging}
CONFIG
serve_prometheus mixed 19098

# One more scraping the erroring stand-in and a target that is down (a closed port in the same
# job), as Prometheus sees a release with one crash-looping pod (tests/prometheus.rs: what the
# targets that answer show failing is a failure; nothing they show is a pass).
cat > "$work/prometheus-one-down.yml" <<CONFIG
global:
  scrape_interval: 1s
scrape_configs:
  - job_name: mlsdm
    metrics_path: /health/metrics
    static_configs:
      - targets: ["${MLSDM_AUDIT_TEST_MLSDM_ERRORS#http://}", "127.0.0.1:1"]
CONFIG
serve_prometheus one-down 19099

# A real kube-apiserver (Debian's Kubernetes 1.20, built once into the cache) with etcd, loaded
# with the healthy fixture release.
bash scripts/kube-apiserver.sh build
bash scripts/kube-apiserver.sh start "$work/kube"
bash scripts/real-cluster-setup.sh "$work/kube"
export KUBE_TEST_REAL_DIR="$work/kube"

# The real MLSDM service (upstream's source at the version the captures are from) for
# tests/real_mlsdm.rs, unpacked into the cache with a venv of its own. CI has the tarball beside
# the repository; a user's clone does not, and that test then says it is skipped.
real_src=../shared/upstream/mlsdm-1.2.0-src.tar.gz
if [ -f "$real_src" ]; then
  bash scripts/real-mlsdm.sh "$real_src" "$cache/real-mlsdm"
  export MLSDM_AUDIT_REAL_MLSDM="$cache/real-mlsdm/mlsdm"
  export MLSDM_AUDIT_REAL_MLSDM_VENV="$cache/real-mlsdm/venv"
else
  echo "scripts/test.sh: $real_src not found: the real-MLSDM test (tests/real_mlsdm.rs) will be skipped"
fi

cargo test "$@"
