#!/usr/bin/env bash
# Benchmark: a full `mlsdm-audit check -A` of ~14,000 objects on the test API server, against
# kubectl fetching the same kinds from the same server. Prints wall time and peak RSS for each.
# Usage: scripts/bench.sh [NAMESPACES]   (70 objects per namespace; default 200)
set -euo pipefail
cd "$(dirname "$0")/.."
ns_count=${1:-200}
work=$(mktemp -d)
pid=""
cleanup() { [ -n "$pid" ] && kill "$pid" 2>/dev/null; rm -rf "$work"; }
trap cleanup EXIT
cargo build -q --release --bin mlsdm-audit
cargo build -q --release -p mlsdm-audit-testservers --bin kube-test-apiserver
python3 - "$ns_count" > "$work/objects.json" <<'PY'
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
target/release/kube-test-apiserver "$work/objects.json" "$work/kubeconfig" > "$work/url" &
pid=$!
for _ in $(seq 1 100); do [ -s "$work/url" ] && break; sleep 0.1; done
kubectl_bin=${MLSDM_AUDIT_KUBECTL:-kubectl}
measure() { # label, command...
  local label=$1; shift
  /usr/bin/time -f "%e %M" -o "$work/time" "$@" > "$work/out" 2>"$work/err" || true
  # time(1) writes "Command exited with non-zero status N" first when the command fails.
  read -r secs kb < <(tail -1 "$work/time")
  printf '%-48s %7.2f s   %7.1f MiB peak RSS\n' "$label" "$secs" "$(echo "$kb / 1024" | bc -l)"
}
echo "objects served: $objects (test API server, HTTPS, paged at 500)"
measure "kubectl get deploy,pods,svc,cm,hpa,pdb -A -o json" "$kubectl_bin" --kubeconfig "$work/kubeconfig" get deployments,pods,services,configmaps,horizontalpodautoscalers,poddisruptionbudgets -A -o json
measure "mlsdm-audit check -A --only replicas-min-3" target/release/mlsdm-audit check --kubeconfig "$work/kubeconfig" -A --format json --only replicas-min-3
measure "mlsdm-audit check -A (all checks, json)" target/release/mlsdm-audit check --kubeconfig "$work/kubeconfig" -A --format json --no-annotation-waivers
requests=$(python3 -c "import json,sys; print(json.load(open(sys.argv[1]))['target']['cluster']['requests'])" "$work/out" 2>/dev/null || echo "?")
results=$(python3 -c "import json,sys; print(len(json.load(open(sys.argv[1]))['results']))" "$work/out" 2>/dev/null || echo "?")
echo "mlsdm-audit: $requests list requests, $results results"
