//! Shared test helpers.
#![allow(dead_code)]

mod binary;
// Each test binary uses the part it needs.
#[allow(unused_imports)]
pub use binary::{BIN, Cmd, DEADLINE, bin_dir, cmd, run};

use mlsdm_audit::checks::{self, Severity, Source};
use mlsdm_audit::report::{Report, Target};
use mlsdm_audit::sources::{Facts, Object, manifests};
use mlsdm_audit::{engine, waivers};
use std::collections::BTreeSet;
use std::path::PathBuf;

/// The defective example with a waiver applied: every status but manual/error appears.
pub fn shared_report() -> Report {
    let checks = checks::load(&[]).unwrap();
    let only = [
        "image-pinned",
        "topology-spread-zones",
        "mlsdm-config-valid",
        "probe-liveness-path",
        "health-ready",
        "vulnerability-scan-clean",
        "ingress-tls",
        "signoff-security-team",
    ];
    let checks: Vec<_> = checks
        .into_iter()
        .filter(|c| only.contains(&c.id.as_str()))
        .collect();
    let objects = manifests::load(&[PathBuf::from("fixtures/defective/all.yaml")]).unwrap();
    let facts = Facts::new(
        objects,
        BTreeSet::from([Source::Kubernetes]),
        None,
        "the audited manifests",
    );
    let mut results = engine::evaluate(&checks, &facts);
    // As a run does: a failure whose evidence may live outside the cluster's objects is no-data
    // when the audit holds none of them (no VulnerabilityReport here).
    mlsdm_audit::config::external_evidence(results.iter_mut(), &checks, &facts.objects);
    let w = waivers::load_file(
        std::path::Path::new("tests/data/waivers/valid.yaml"),
        &["topology-spread-zones", "image-pinned"],
    )
    .unwrap();
    waivers::apply(
        &mut results,
        &w,
        chrono::NaiveDate::from_ymd_opt(2026, 11, 26).unwrap(),
    );
    let mut report = Report::new(
        Target {
            mode: mlsdm_audit::report::Mode::Manifests,
            manifests: vec!["fixtures/defective/all.yaml".into()],
            selector: None,
            fail_on: Severity::High,
            ..Target::default()
        },
        results,
    );
    // As every real run records them: which checks ran, where from, and their fix hints.
    report.checks = checks
        .iter()
        .map(mlsdm_audit::report::CheckOrigin::of)
        .collect();
    report.generated_at = "2026-11-26T12:00:00Z".into();
    report.tool.version = "0.0.0-test".into();
    report
}

/// (id, object name, status) of a JSON report's results from one source, sorted.
pub fn statuses_by_source(r: &serde_json::Value, source: &str) -> Vec<(String, String, String)> {
    let mut v: Vec<(String, String, String)> = r["results"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|x| x["source"] == source)
        .map(|x| {
            (
                x["id"].as_str().unwrap().to_string(),
                x["object"]["name"].as_str().unwrap_or("-").to_string(),
                x["status"].as_str().unwrap().to_string(),
            )
        })
        .collect();
    v.sort();
    v
}

/// The fixtures' annotation that removes an object when a defect layer is applied.
pub const DELETE: &str = "fixtures.mlsdm-audit.io/delete";

/// An object's identity when layers are applied: kind, namespace, name.
pub fn key(o: &Object) -> (String, Option<String>, String) {
    (o.kind.clone(), o.namespace.clone(), o.name.clone())
}

/// Applies one layer of objects over `out`, as a defect overlays the compliant release
/// (fixtures/defects/): an object replaces the one with its key, and one carrying the DELETE
/// annotation removes it. One rule for every test that overlays fixtures.
pub fn apply_layer(out: &mut Vec<Object>, layer: Vec<Object>) {
    for o in layer {
        let delete = o
            .json
            .pointer(&format!(
                "/metadata/annotations/{}",
                DELETE.replace('/', "~1")
            ))
            .is_some();
        out.retain(|x| key(x) != key(&o));
        if !delete {
            out.push(o);
        }
    }
}

/// The fenced blocks of `lang` in a Markdown file, in order (the docs' and README's commands).
pub fn markdown_blocks(markdown: &str, lang: &str) -> Vec<String> {
    let mut out = Vec::new();
    let mut current: Option<String> = None;
    for line in markdown.lines() {
        match (&mut current, line.trim_start().strip_prefix("```")) {
            (None, Some(tag)) if tag.trim() == lang => current = Some(String::new()),
            (Some(block), Some("")) => {
                out.push(std::mem::take(block));
                current = None;
            }
            (Some(block), _) => {
                block.push_str(line);
                block.push('\n');
            }
            (None, _) => {}
        }
    }
    out
}
