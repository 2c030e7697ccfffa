#!/usr/bin/env bash
# The benchmark of issue 12, one table per target, each judged in this run on this machine:
#   1. manifests: a generated release of 1,000 files / 5,000 objects (Deployment, Service, HPA,
#      PDB, ConfigMap per app, every tenth app MLSDM-like), the whole built-in catalog against
#      checkov on the same directory (best of 3), with peak RSS;
#   2. growth: 1k, 5k, 10k, 25k and 50k objects, with the cost of each doubling;
#   3. live: `check -A` of ~12,000 objects on the test API server against
#      `kubectl get deployments,pods,services,configmaps,horizontalpodautoscalers,poddisruptionbudgets
#      -A -o json` from the same server, with the audit's request count;
#   4. start-up: `check` on one manifest file against a process that only starts and parses the
#      same file with the same YAML crate (testservers' yaml-parse), mean of many runs each.
# Times are wall seconds (user CPU beside them), memory is peak RSS from /usr/bin/time -v.
# Usage: scripts/bench.sh [--quick]
#   --quick: tiny sizes, the debug build the tests already made, no peer that needs installing
#            (checkov is skipped; kubectl only if it is already there): proves the bench runs.
set -euo pipefail
cd "$(dirname "$0")/.."
quick=false
[ "${1:-}" = "--quick" ] && quick=true
cache=${MLSDM_AUDIT_CACHE:-/var/cache/mlsdm-audit}
work=$(mktemp -d)
pid=""
cleanup() { [ -n "$pid" ] && kill "$pid" 2>/dev/null; rm -rf "$work"; }
trap cleanup EXIT

# GNU time (Debian's `time`) for peak RSS: a tool, not a peer, so --quick installs it too.
if [ ! -x /usr/bin/time ]; then
  apt-get install -y -qq time >/dev/null 2>&1 || { apt-get update -qq && apt-get install -y -qq time >/dev/null; }
fi

if $quick; then
  profile=debug
  cargo build -q --bin mlsdm-audit
  cargo build -q -p mlsdm-audit-testservers --bin gen-manifests --bin kube-test-apiserver --bin yaml-parse
  compare_objects=200
  sizes="100 200 400"
  live_namespaces=3
  runs=1
  growth_runs=1
else
  profile=release
  cargo build -q --release --bin mlsdm-audit
  cargo build -q --release -p mlsdm-audit-testservers --bin gen-manifests --bin kube-test-apiserver --bin yaml-parse
  compare_objects=5000
  sizes="1000 5000 10000 25000 50000"
  # 70 objects per namespace: 172 namespaces are 12,040 objects.
  live_namespaces=172
  runs=3
  # The growth table divides one size's time by the next's: the noise of both runs lands in the
  # ratio, and this machine's run-to-run spread at 25,000 objects (1.9-2.6 s, the same binary
  # within minutes) is larger than the margin target 2 judges. The best of five is the
  # estimate of what each size costs.
  growth_runs=5
fi
ours=target/$profile/mlsdm-audit
gen=target/$profile/gen-manifests

# measure RUNS CMD...: the best (shortest wall) of RUNS runs; sets wall, user and rss (MiB).
measure() {
  local n=$1 best="" i
  shift
  for i in $(seq 1 "$n"); do
    /usr/bin/time -v -o "$work/time" "$@" >"$work/out" 2>"$work/err" || true
    local w u m
    w=$(awk -F': ' '/Elapsed \(wall clock\)/ {n=split($2,p,":"); s=0; for(i=1;i<=n;i++) s=s*60+p[i]; printf "%.2f", s}' "$work/time")
    u=$(awk -F': ' '/User time/ {print $2}' "$work/time")
    m=$(awk -F': ' '/Maximum resident set size/ {printf "%.1f", $2/1024}' "$work/time")
    if [ -z "$best" ] || awk -v a="$w" -v b="$best" 'BEGIN {exit !(a < b)}'; then
      best=$w; wall=$w; user=$u; rss=$m
      cp "$work/out" "$work/best-out"
    fi
  done
}
verdict() { # CONDITION-AS-AWK-EXPRESSION
  if awk "BEGIN {exit !($1)}"; then echo "met"; else echo "NOT MET"; fi
}
row() { printf '%-58s %9s %9s %12s\n' "$@"; }

echo "machine: $(nproc) cores, $(awk -F': ' '/model name/ {print $2; exit}' /proc/cpuinfo), $(awk '/MemTotal/ {printf "%.1f GiB", $2/1048576}' /proc/meminfo); load average $(cut -d' ' -f1-3 /proc/loadavg)"
echo "build: $profile; $($ours --version)"
if $quick; then
  echo "QUICK RUN: tiny sizes and a debug build; it proves the bench runs, its verdicts judge nothing"
fi
echo

# 1. Manifests against checkov.
files=$("$gen" "$work/release" "$compare_objects")
echo "== 1. manifests: $files files, $compare_objects objects, whole catalog (best of $runs) =="
row "" "wall s" "user s" "peak RSS MiB"
measure "$runs" "$ours" check --manifests "$work/release" --format json --no-annotation-waivers
results=$(python3 -c "import json,sys; print(len(json.load(open(sys.argv[1]))['results']))" "$work/best-out" 2>/dev/null || echo "?")
our_wall=$wall our_rss=$rss
row "mlsdm-audit check --format json ($results results)" "$wall" "$user" "$rss"
checkov=$cache/checkov-venv/bin/checkov
if ! $quick && [ ! -x "$checkov" ]; then
  # checkov from the Python package registry, in a venv of its own under the cache.
  (python3 -m venv "$cache/checkov-venv" && "$cache/checkov-venv/bin/pip" install -q checkov) >"$work/pip.log" 2>&1 || true
fi
if $quick; then
  echo "checkov: skipped (--quick)"
elif [ -x "$checkov" ]; then
  measure "$runs" "$checkov" -d "$work/release" --framework kubernetes --quiet --compact -o json
  row "checkov $("$checkov" --version 2>/dev/null) -d --framework kubernetes -o json" "$wall" "$user" "$rss"
  ratio=$(awk -v a="$wall" -v b="$our_wall" 'BEGIN {printf "%.1f", a / b}')
  echo "checkov / mlsdm-audit wall: ${ratio}x (target >= 50x: $(verdict "$ratio >= 50"))"
else
  echo "checkov: could not be installed, not compared ($(tail -1 "$work/pip.log" 2>/dev/null))"
fi
echo "mlsdm-audit peak RSS: $our_rss MiB (target < 100 MiB: $(verdict "$our_rss < 100"))"
echo

# 2. Growth.
echo "== 2. growth: best of $growth_runs per size =="
printf '%9s %7s %9s %9s %12s %16s %16s\n' objects files "wall s" "user s" "RSS MiB" "time/doubling" "RSS/doubling"
prev_n="" worst_t=0 worst_m=0 last_rss=0
for n in $sizes; do
  rm -rf "$work/growth"
  f=$("$gen" "$work/growth" "$n")
  measure "$growth_runs" "$ours" check --manifests "$work/growth" --format json --no-annotation-waivers
  if [ -n "$prev_n" ]; then
    # Cost per doubling: (t2/t1)^(1 / log2(n2/n1)), comparable across uneven steps.
    td=$(awk -v a="$prev_w" -v b="$wall" -v n1="$prev_n" -v n2="$n" 'BEGIN {printf "%.2f", exp(log(b/a) * log(2) / log(n2/n1))}')
    md=$(awk -v a="$prev_m" -v b="$rss" -v n1="$prev_n" -v n2="$n" 'BEGIN {printf "%.2f", exp(log(b/a) * log(2) / log(n2/n1))}')
    worst_t=$(awk -v a="$worst_t" -v b="$td" 'BEGIN {print (b > a) ? b : a}')
    worst_m=$(awk -v a="$worst_m" -v b="$md" 'BEGIN {print (b > a) ? b : a}')
  else
    td="-" md="-"
  fi
  printf '%9s %7s %9s %9s %12s %15sx %15sx\n' "$n" "$f" "$wall" "$user" "$rss" "$td" "$md"
  prev_n=$n prev_w=$wall prev_m=$rss last_rss=$rss
done
rm -rf "$work/growth"
echo "worst doubling: time ${worst_t}x, memory ${worst_m}x (target <= 2.2x: $(verdict "$worst_t <= 2.2 && $worst_m <= 2.2")); largest size: $last_rss MiB (target < 1024 MiB at 50k: $(verdict "$last_rss < 1024"))"
# The same release in one namespace: the set above spreads 25 apps a namespace, where a
# relation that lists a namespace's objects per object is invisible. Both runs of one size
# cost the same when relations cost what they match (target 2's "index relations by
# namespace"); 5,000 objects in one namespace took 8.68 s against the spread set's 0.5 s
# before the relations it caught were fixed (docs/performance.md, twenty-second round).
measure "$runs" "$ours" check --manifests "$work/release" --format json --no-annotation-waivers
spread_w=$wall
rm -rf "$work/crowded"
cp -r "$work/release" "$work/crowded"
find "$work/crowded" -name '*.yaml' -exec sed -i -E 's/^(  +)namespace: team-[0-9]+$/\1namespace: crowded/' {} +
measure "$runs" "$ours" check --manifests "$work/crowded" --format json --no-annotation-waivers
crowd=$(awk -v a="$wall" -v b="$spread_w" 'BEGIN {printf "%.2f", a / b}')
echo "one namespace: $compare_objects objects in one namespace $wall s wall, $user s user, $rss MiB; ${crowd}x the spread set's $spread_w s (target <= 2.2x: $(verdict "$crowd <= 2.2"))"
rm -rf "$work/crowded"
echo

# 3. Live, against kubectl on the test API server.
kubectl_bin=${MLSDM_AUDIT_KUBECTL:-$cache/kubernetes-client/usr/bin/kubectl}
[ -x "$kubectl_bin" ] || kubectl_bin=$(command -v kubectl || true)
if [ -z "$kubectl_bin" ]; then
  echo "== 3. live: skipped, no kubectl (scripts/test.sh installs Debian's kubernetes-client into $cache) =="
else
python3 - "$live_namespaces" > "$work/objects.json" <<'PY'
import json, sys
n = int(sys.argv[1])
items = []
for i in range(n):
    ns = f"team-{i:04d}"
    items.append({"apiVersion": "v1", "kind": "Namespace", "metadata": {"name": ns}})
    for d in range(10):
        app = f"app-{d}"
        labels = {"app": app}
        tmpl = {"metadata": {"labels": labels}, "spec": {"containers": [{"name": "main", "image": f"registry.example/{app}:1.{d}.0",
                "resources": {"requests": {"cpu": "100m", "memory": "128Mi"}, "limits": {"cpu": "500m", "memory": "256Mi"}},
                "env": [{"name": "LOG_LEVEL", "value": "INFO"}], "ports": [{"containerPort": 8080, "name": "http"}]}]}}
        items.append({"apiVersion": "apps/v1", "kind": "Deployment", "metadata": {"name": app, "namespace": ns, "labels": labels, "generation": 1},
                      "spec": {"replicas": 3, "selector": {"matchLabels": labels}, "template": tmpl},
                      "status": {"observedGeneration": 1, "replicas": 3, "updatedReplicas": 3, "readyReplicas": 3, "availableReplicas": 3}})
        for p in range(3):
            items.append({"apiVersion": "v1", "kind": "Pod", "metadata": {"name": f"{app}-abc{p}", "namespace": ns, "labels": labels},
                          "spec": tmpl["spec"], "status": {"phase": "Running", "containerStatuses": [{"name": "main", "ready": True, "restartCount": 0, "image": tmpl["spec"]["containers"][0]["image"], "state": {"running": {}}, "lastState": {}}]}})
        items.append({"apiVersion": "v1", "kind": "Service", "metadata": {"name": app, "namespace": ns}, "spec": {"selector": labels, "ports": [{"name": "http", "port": 80, "targetPort": "http"}]}})
        items.append({"apiVersion": "v1", "kind": "ConfigMap", "metadata": {"name": f"{app}-config", "namespace": ns}, "data": {"config.yaml": "level: info\n" * 20}})
        if d < 5:
            items.append({"apiVersion": "autoscaling/v2", "kind": "HorizontalPodAutoscaler", "metadata": {"name": app, "namespace": ns},
                          "spec": {"scaleTargetRef": {"apiVersion": "apps/v1", "kind": "Deployment", "name": app}, "minReplicas": 3, "maxReplicas": 10}})
            items.append({"apiVersion": "policy/v1", "kind": "PodDisruptionBudget", "metadata": {"name": app, "namespace": ns}, "spec": {"minAvailable": 2, "selector": {"matchLabels": labels}}})
print(json.dumps({"items": items}))
PY
  objects=$(python3 -c "import json,sys; print(len(json.load(open(sys.argv[1]))['items']))" "$work/objects.json")
  target/$profile/kube-test-apiserver "$work/objects.json" "$work/kubeconfig" > "$work/url" &
  pid=$!
  for _ in $(seq 1 100); do [ -s "$work/url" ] && break; sleep 0.1; done
  echo "== 3. live: $objects objects on the test API server (HTTPS, pages of 500; best of $runs) =="
  row "" "wall s" "user s" "peak RSS MiB"
  measure "$runs" "$kubectl_bin" --kubeconfig "$work/kubeconfig" get deployments,pods,services,configmaps,horizontalpodautoscalers,poddisruptionbudgets -A -o json
  k_wall=$wall k_rss=$rss
  row "kubectl get deploy,pods,svc,cm,hpa,pdb -A -o json" "$wall" "$user" "$rss"
  measure "$runs" "$ours" check --kubeconfig "$work/kubeconfig" -A --format json --no-annotation-waivers --allow-empty
  grep -v "^note:" "$work/err" | head -3 >&2 || true
  requests=$(python3 -c "import json,sys; print(json.load(open(sys.argv[1]))['target']['cluster']['requests'])" "$work/best-out" 2>/dev/null || echo "?")
  results=$(python3 -c "import json,sys; print(len(json.load(open(sys.argv[1]))['results']))" "$work/best-out" 2>/dev/null || echo "?")
  row "mlsdm-audit check -A --format json ($results results)" "$wall" "$user" "$rss"
  echo "requests of the audit: $requests (lists and pages, no per-object GET)"
  echo "mlsdm-audit / kubectl: wall $(awk -v a="$wall" -v b="$k_wall" 'BEGIN {printf "%.2f", a / b}')x, memory $(awk -v a="$rss" -v b="$k_rss" 'BEGIN {printf "%.2f", a / b}')x (target <= 1 for both: $(verdict "$wall <= $k_wall && $rss <= $k_rss"))"
  kill "$pid" 2>/dev/null || true
  pid=""
fi
echo

# 4. Start-up: one file. A single run is a few milliseconds, below /usr/bin/time's 10 ms
# resolution: each command runs many times in a loop and the mean is printed, for `true` (the
# cost of starting a process from this loop), the baseline the target names (start a process and
# parse the same file with the same YAML crate into the same value type) and ours.
startup_file=fixtures/compliant/20-deployment.yaml
if $quick; then startup_runs=5; else startup_runs=50; fi
# mean_ms RUNS CMD...: mean wall milliseconds of RUNS runs of CMD (stdout and stderr discarded).
mean_ms() {
  local n=$1 i t0 t1
  shift
  t0=$(date +%s%N)
  for i in $(seq 1 "$n"); do "$@" >/dev/null 2>&1 || true; done
  t1=$(date +%s%N)
  awk -v a="$t0" -v b="$t1" -v n="$n" 'BEGIN {printf "%.2f", (b - a) / n / 1e6}'
}
echo "== 4. start-up: check on one manifest file, $startup_file (mean of $startup_runs runs each) =="
# Each command must do its work once before it is timed: a baseline or a run that fails at once
# would be timed as fast.
target/$profile/yaml-parse "$startup_file" >"$work/out"
"$ours" check --manifests "$startup_file" --format json --allow-empty >"$work/out" 2>"$work/err" || true
python3 -c "import json,sys; r=json.load(open(sys.argv[1]))['results']; assert r, 'no results'" "$work/out" ||
  { echo "bench: the start-up run wrote no report" >&2; cat "$work/err" >&2; exit 1; }
printf '%-58s %9s\n' "" "wall ms"
# The program, not bash's builtin: the point is what starting a process costs.
true_ms=$(mean_ms "$startup_runs" "$(type -P true)")
printf '%-58s %9s\n' "true" "$true_ms"
base_ms=$(mean_ms "$startup_runs" "target/$profile/yaml-parse" "$startup_file")
printf '%-58s %9s\n' "yaml-parse (process start + YAML parse, the baseline)" "$base_ms"
ours_ms=$(mean_ms "$startup_runs" "$ours" check --manifests "$startup_file" --format json --allow-empty)
printf '%-58s %9s\n' "mlsdm-audit check --manifests (that file) --format json" "$ours_ms"
echo "mlsdm-audit / baseline: $(awk -v a="$ours_ms" -v b="$base_ms" 'BEGIN {printf "%.1f", a / b}')x (target <= 2: $(verdict "$ours_ms <= 2 * $base_ms"))"
