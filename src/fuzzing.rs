//! Entry points for the fuzz targets in `fuzz/` and for `tests/fuzz_corpus.rs`, which replays
//! their corpus and every crash a fuzzer found: one function per parser of untrusted input. Each
//! must return on any bytes: no panic, no hang, bounded memory.
//!
//! They live in the library (not in `fuzz/`) so that the regression test runs exactly what the
//! fuzzers ran, without the nightly-only fuzzing toolchain.

use crate::checks::{self, cel::CelEnv};
use crate::k8s::quantity::Quantity;
use crate::promql::{self, Store};
use crate::report::{self, Format, Report};
use crate::signoff;
use crate::sources::manifests;

fn text(data: &[u8]) -> Option<&str> {
    std::str::from_utf8(data).ok()
}

/// A check definition file: YAML model, validation, CEL compilation.
pub fn check_file(data: &[u8]) {
    if let Some(t) = text(data) {
        let _ = checks::parse_check("fuzz.yaml", t, &CelEnv::default());
    }
}

/// A check file that loads, evaluated on a small release: the cost meter, Kubernetes' CEL
/// libraries and the engine on any expression a team could write.
pub fn check_eval(data: &[u8]) {
    const RELEASE: &str = "apiVersion: apps/v1\nkind: Deployment\nmetadata: {name: mlsdm, namespace: m, labels: {app: mlsdm}}\nspec:\n  replicas: 3\n  selector: {matchLabels: {app: mlsdm}}\n  template:\n    metadata: {labels: {app: mlsdm}}\n    spec:\n      containers:\n      - name: mlsdm\n        image: ghcr.io/neuron7x/mlsdm-neuro-engine:1.2.0\n        env: [{name: API_KEY, valueFrom: {secretKeyRef: {name: k, key: api-key}}}, {name: URL, value: 'https://h:8000/a/../b?q=1'}]\n        ports: [{containerPort: 8000}]\n---\napiVersion: v1\nkind: Service\nmetadata: {name: mlsdm, namespace: m}\nspec: {selector: {app: mlsdm}, clusterIP: 10.0.0.7, ports: [{port: 80, targetPort: 8000}]}\n";
    let Some(t) = text(data) else { return };
    let Ok(check) = checks::parse_check("fuzz.yaml", t, &CelEnv::default()) else {
        return;
    };
    if check.source() != checks::Source::Kubernetes {
        return;
    }
    let mut objects = Vec::new();
    if manifests::parse_text("release.yaml", RELEASE, &mut objects).is_err() {
        return;
    }
    let facts = crate::facts::Facts::new(
        objects,
        std::collections::BTreeSet::from([checks::Source::Kubernetes]),
        None,
        "fuzz",
    );
    let _ = crate::engine::evaluate(std::slice::from_ref(&check), &facts);
}

/// A manifest's YAML read by the fast path (`sources::manifest_yaml`) and by serde-saphyr, the
/// reference: wherever the fast path answers, the two give the same documents, and the fast path
/// never reads a text the reference refuses. A difference panics, which is the fuzzer's finding.
pub fn manifest_yaml(data: &[u8]) {
    let Some(t) = text(data) else { return };
    let budget = manifests::yaml_budget();
    let Some(ours) = crate::sources::manifest_yaml::documents(t, &budget) else {
        return;
    };
    // Null documents are skipped by the loader; the two may differ on whether they list them.
    let non_null = |docs: Vec<(u64, serde_json::Value)>| {
        docs.into_iter()
            .filter(|(_, v)| !v.is_null())
            .collect::<Vec<_>>()
    };
    match manifests::reference_documents(t) {
        Ok(theirs) => assert_eq!(non_null(ours), non_null(theirs), "on {t:?}"),
        Err(e) => panic!("the fast path read a text serde-saphyr refuses ({e}): {t:?}"),
    }
}

/// A manifest file, as YAML and as JSON.
pub fn manifest(data: &[u8]) {
    if let Some(t) = text(data) {
        let mut out = Vec::new();
        let _ = manifests::parse_text("fuzz.yaml", t, &mut out);
        let _ = manifests::parse_text("fuzz.json", t, &mut out);
        // Objects that loaded go through the facts layer (secret summaries, relations).
        let facts = crate::facts::Facts::new(
            out,
            std::collections::BTreeSet::from([checks::Source::Kubernetes]),
            None,
            "fuzz",
        );
        for i in 0..facts.objects.len() {
            let _ = facts.cel_related(i);
            let _ = facts.cel_mlsdm(i);
        }
    }
}

/// A Prometheus text exposition page.
pub fn metrics_text(data: &[u8]) {
    if let Some(t) = text(data) {
        let mut store = Store::default();
        let _ = store.add_scrape("fuzz", 0.0, t);
        let _ = store.add_scrape("fuzz", 15.0, t);
    }
}

const PAGE: &str = "# TYPE mlsdm_http_requests_total counter
mlsdm_http_requests_total{method=\"GET\",endpoint=\"/health\",status=\"200\"} 10
mlsdm_http_requests_total{method=\"POST\",endpoint=\"/generate\",status=\"500\"} 1
# TYPE mlsdm_http_request_latency_seconds histogram
mlsdm_http_request_latency_seconds_bucket{endpoint=\"/generate\",le=\"0.1\"} 3
mlsdm_http_request_latency_seconds_bucket{endpoint=\"/generate\",le=\"+Inf\"} 4
mlsdm_http_request_latency_seconds_sum{endpoint=\"/generate\"} 0.5
mlsdm_http_request_latency_seconds_count{endpoint=\"/generate\"} 4
# TYPE mlsdm_memory_usage_bytes gauge
mlsdm_memory_usage_bytes 1.5e8
";

/// A PromQL query, parsed and evaluated by the built-in evaluator over a small store.
pub fn promql(data: &[u8]) {
    let Some(q) = text(data) else { return };
    let Ok(expr) = promql::parse(q) else { return };
    if promql::check_supported(&expr).is_err() {
        return;
    }
    let mut store = Store::default();
    for t in [0.0, 15.0, 30.0] {
        let _ = store.add_scrape("fuzz", t, PAGE);
    }
    let _ = promql::eval(&expr, &store, 30.0);
}

/// A Kubernetes quantity, parsed and combined.
pub fn quantity(data: &[u8]) {
    let Some(t) = text(data) else { return };
    let Ok(q) = Quantity::parse(t) else { return };
    let one = Quantity::from_integer(1);
    let _ = q.add(&one).sub(&q);
    let _ = (q.as_integer(), q.as_approximate_float(), q.sign());
}

/// An allowed-signers file.
pub fn allowed_signers(data: &[u8]) {
    if let Some(t) = text(data) {
        let _ = signoff::parse_allowed_signers_text("fuzz", t);
    }
}

/// A signed report: signature verification over arbitrary JSON, and the report model rendered
/// in every format.
pub fn signed_report(data: &[u8]) {
    let Ok(value) = serde_json::from_slice::<serde_json::Value>(data) else {
        return;
    };
    let _ = signoff::verify(&value, None, None);
    let _ = signoff::verify(&value, Some(&[]), Some("fuzz"));
    if let Ok(r) = serde_json::from_value::<Report>(value) {
        // Every format, a new one included.
        for f in <Format as clap::ValueEnum>::value_variants() {
            let _ = report::render(&r, *f, false);
        }
    }
}

/// One fuzz entry point: any bytes in, nothing out.
pub type Target = fn(&[u8]);

/// Every target, by the name of its folder under `fuzz/corpus/`.
pub const TARGETS: &[(&str, Target)] = &[
    ("check_file", check_file),
    ("check_eval", check_eval),
    ("manifest", manifest),
    ("manifest_yaml", manifest_yaml),
    ("metrics_text", metrics_text),
    ("promql", promql),
    ("quantity", quantity),
    ("allowed_signers", allowed_signers),
    ("signed_report", signed_report),
];
