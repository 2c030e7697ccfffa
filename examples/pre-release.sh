#!/usr/bin/env bash
# The release gate after `kubectl apply`: wait for the rollout, audit the live release and its
# metrics, keep the report, render the checklist for reviewers and say how to sign it.
# Read-only: it never changes the cluster. Exit code: the audit's (0 pass, 1 fail, 3 undecided).
#
#   NAMESPACE=mlsdm-production DEPLOYMENT=mlsdm-api PROMETHEUS_URL=http://prometheus:9090 \
#     examples/pre-release.sh
# tests/examples.rs runs it against a real kube-apiserver and a real Prometheus.
set -euo pipefail
namespace=${NAMESPACE:?set NAMESPACE to the namespace of the release}
deployment=${DEPLOYMENT:?set DEPLOYMENT to the MLSDM Deployment}
prometheus=${PROMETHEUS_URL:?set PROMETHEUS_URL to the Prometheus that scrapes MLSDM}
out=${OUTPUT_DIR:-.}

kubectl rollout status "deployment/$deployment" -n "$namespace" --timeout="${ROLLOUT_TIMEOUT:-10m}"

status=0
mlsdm-audit check -n "$namespace" --prometheus "$prometheus" --fail-on high \
  -o json --output-file "$out/release-report.json" || status=$?
mlsdm-audit report "$out/release-report.json" -o markdown --output-file "$out/release-checklist.md"
mlsdm-audit report "$out/release-report.json" -o table

cat <<NEXT

Report: $out/release-report.json (checklist: $out/release-checklist.md)
Each reviewer signs it with their SSH key, for example:
  mlsdm-audit signoff $out/release-report.json --role "DevOps/SRE Lead" --name "Your Name" --key ~/.ssh/id_ed25519
and the release manager verifies every role:
  mlsdm-audit verify $out/release-report.json --allowed-signers allowed_signers \\
    --fail-on-unsigned "Development Team Lead,DevOps/SRE Lead,Security Team,Product Owner"
NEXT
exit "$status"
