#!/usr/bin/env bash
# Loads the healthy fixture release into the real kube-apiserver started by
# scripts/kube-apiserver.sh (Kubernetes 1.20: autoscaling/v2beta2, policy/v1beta1, no controllers):
# kubectl applies the fixtures (the server validates them), pods are created, and the status a
# controller and kubelet would write is patched onto /status; then RBAC for the audit users.
set -euo pipefail
dir=$1
cd "$(dirname "$0")/.."
k() { kubectl --kubeconfig "$dir/kubeconfig-admin" "$@"; }
api=$(grep -m1 'server:' "$dir/kubeconfig-admin" | awk '{print $2}')
patch_status() { # path json
  curl -sS --fail --cacert "$dir/ca.crt" -H "Authorization: Bearer admin-token" -X PATCH \
    -H 'Content-Type: application/merge-patch+json' --data "$2" "$api$1" >/dev/null
}
to_120() { sed -e 's#apiVersion: autoscaling/v2$#apiVersion: autoscaling/v2beta2#' -e 's#apiVersion: policy/v1$#apiVersion: policy/v1beta1#'; }

k apply -f fixtures/real-apiserver/crds.yaml >/dev/null
k wait --for condition=established --timeout=60s crd --all >/dev/null
mkdir -p "$dir/fixtures"
for f in fixtures/compliant/*.yaml fixtures/live/healthy.yaml; do to_120 < "$f" | sed -e "/^  uid: /d" -e "/^  generation: /d" > "$dir/fixtures/$(basename "$f")"; done
k apply -f "$dir/fixtures/00-namespace.yaml" >/dev/null
for f in "$dir"/fixtures/[1-9]*.yaml; do k apply -f "$f" >/dev/null; done
# The live fixture: the pods a ReplicaSet controller would create, the VulnerabilityReport
# trivy-operator would write, and (ignored by apply) the status controllers would set.
k apply -f "$dir/fixtures/healthy.yaml" >/dev/null
gen=$(k -n mlsdm-production get deployment mlsdm-api -o jsonpath='{.metadata.generation}')
patch_status /apis/apps/v1/namespaces/mlsdm-production/deployments/mlsdm-api/status \
  "{\"status\":{\"observedGeneration\":$gen,\"replicas\":3,\"updatedReplicas\":3,\"readyReplicas\":3,\"availableReplicas\":3,\"conditions\":[{\"type\":\"Available\",\"status\":\"True\",\"reason\":\"MinimumReplicasAvailable\"},{\"type\":\"Progressing\",\"status\":\"True\",\"reason\":\"NewReplicaSetAvailable\"}]}}"

# No podIP: with no kubelet nothing listens, and the pod proxy must not dial out of loopback.
for pod in mlsdm-api-6b8f9d7c5-7d9c4 mlsdm-api-6b8f9d7c5-k2m8x mlsdm-api-6b8f9d7c5-p5q1z; do
  patch_status "/api/v1/namespaces/mlsdm-production/pods/$pod/status" \
    "{\"status\":{\"phase\":\"Running\",\"conditions\":[{\"type\":\"Ready\",\"status\":\"True\"}],\"containerStatuses\":[{\"name\":\"mlsdm-api\",\"ready\":true,\"started\":true,\"restartCount\":0,\"image\":\"ghcr.io/neuron7x/mlsdm-neuro-engine:1.2.0\",\"imageID\":\"\",\"state\":{\"running\":{\"startedAt\":\"2026-11-20T09:12:44Z\"}},\"lastState\":{}}]}}"

done
patch_status /apis/autoscaling/v2beta2/namespaces/mlsdm-production/horizontalpodautoscalers/mlsdm-api-hpa/status \
  '{"status":{"currentReplicas":3,"desiredReplicas":3,"conditions":[{"type":"AbleToScale","status":"True","reason":"ReadyForNewScale","lastTransitionTime":"2026-11-20T09:00:00Z"},{"type":"ScalingActive","status":"True","reason":"ValidMetricFound","lastTransitionTime":"2026-11-20T09:00:00Z"}]}}'
patch_status /apis/policy/v1beta1/namespaces/mlsdm-production/poddisruptionbudgets/mlsdm-api-pdb/status \
  '{"status":{"observedGeneration":1,"currentHealthy":3,"desiredHealthy":2,"disruptionsAllowed":1,"expectedPods":3}}'

# The audit's ClusterRole from deploy/rbac.yaml, bound to the "auditor" token user; the
# "restricted" user gets the same role without PodDisruptionBudgets, Jobs and CronJobs.
k apply -f deploy/rbac.yaml >/dev/null
k create clusterrolebinding mlsdm-audit-auditor --clusterrole=mlsdm-audit-reader --user=auditor >/dev/null
k get clusterrole mlsdm-audit-reader -o json | python3 -c '
import json, sys
role = json.load(sys.stdin)
role["metadata"] = {"name": "mlsdm-audit-restricted"}
role["rules"] = [r for r in role["rules"] if r.get("apiGroups") not in (["policy"], ["batch"])]
print(json.dumps(role))' | k apply -f - >/dev/null
k create clusterrolebinding mlsdm-audit-restricted --clusterrole=mlsdm-audit-restricted --user=restricted >/dev/null

# A degraded copy of the release in namespace mlsdm-degraded: 2 of 3 replicas available, one pod
# OOM-killed twice, one restarting.
mkdir -p "$dir/degraded"
for f in "$dir"/fixtures/*.yaml; do
  sed -e 's/namespace: mlsdm-production/namespace: mlsdm-degraded/' "$f" > "$dir/degraded/$(basename "$f")"
done
k create namespace mlsdm-degraded >/dev/null
for f in "$dir"/degraded/00-namespace.yaml "$dir"/degraded/[1-9]*.yaml "$dir"/degraded/healthy.yaml; do k apply -f "$f" >/dev/null; done
gen=$(k -n mlsdm-degraded get deployment mlsdm-api -o jsonpath='{.metadata.generation}')
patch_status /apis/apps/v1/namespaces/mlsdm-degraded/deployments/mlsdm-api/status \
  "{\"status\":{\"observedGeneration\":$gen,\"replicas\":3,\"updatedReplicas\":3,\"readyReplicas\":2,\"availableReplicas\":2,\"unavailableReplicas\":1}}"
status_for() { # restarts, lastState json
  echo "{\"status\":{\"phase\":\"Running\",\"containerStatuses\":[{\"name\":\"mlsdm-api\",\"ready\":true,\"started\":true,\"restartCount\":$1,\"image\":\"ghcr.io/neuron7x/mlsdm-neuro-engine:1.2.0\",\"imageID\":\"\",\"state\":{\"running\":{\"startedAt\":\"2026-11-20T09:12:44Z\"}},\"lastState\":$2}]}}"
}
patch_status /api/v1/namespaces/mlsdm-degraded/pods/mlsdm-api-6b8f9d7c5-7d9c4/status \
  "$(status_for 2 '{"terminated":{"exitCode":137,"reason":"OOMKilled","startedAt":"2026-11-20T09:00:00Z","finishedAt":"2026-11-20T09:10:00Z"}}')"
patch_status /api/v1/namespaces/mlsdm-degraded/pods/mlsdm-api-6b8f9d7c5-k2m8x/status \
  "$(status_for 3 '{"terminated":{"exitCode":1,"reason":"Error","startedAt":"2026-11-20T09:00:00Z","finishedAt":"2026-11-20T09:10:00Z"}}')"
patch_status /api/v1/namespaces/mlsdm-degraded/pods/mlsdm-api-6b8f9d7c5-p5q1z/status "$(status_for 0 '{}')"

# An aggregated API whose backend is not running, as on a cluster whose metrics-server is down:
# this 1.20 server (legacy discovery only) lists the group and answers 503 for its discovery.
# kubectl warns and goes on; every audit of this server must too (tests/real_apiserver.rs).
k apply -f - >/dev/null <<'APISERVICE'
apiVersion: apiregistration.k8s.io/v1
kind: APIService
metadata: {name: v1beta1.metrics.k8s.io}
spec:
  group: metrics.k8s.io
  version: v1beta1
  service: {name: metrics-server, namespace: kube-system}
  insecureSkipTLSVerify: true
  groupPriorityMinimum: 100
  versionPriority: 100
APISERVICE
