//! `-o codeclimate`: GitLab's Code Quality report (the CodeClimate issue format GitLab reads
//! from `artifacts:reports:codequality`), so a merge request shows each failure on its line.
//! No crate writes this format; it is five fields of JSON, built with serde_json.

use super::{Report, Status};
use crate::checks::Severity;
use serde_json::json;

/// GitLab's severities: info, minor, major, critical, blocker.
fn severity(s: Severity) -> &'static str {
    match s {
        Severity::Info => "info",
        Severity::Low => "minor",
        Severity::Medium => "major",
        Severity::High => "critical",
        Severity::Critical => "blocker",
    }
}

pub fn render(report: &Report) -> String {
    let mut seen: std::collections::HashMap<String, usize> = std::collections::HashMap::new();
    let issues: Vec<serde_json::Value> = report
        .results
        .iter()
        // An error is an open question at the check's severity, like a failure; a waived
        // result is accepted and GitLab has no way to show a suppression.
        .filter(|r| matches!(r.status, Status::Fail | Status::Error))
        .map(|r| {
            // A finding about a live object or a service points at the check's definition,
            // as in SARIF: GitLab drops an issue without a path.
            let (path, line) = match &r.location {
                Some(l) => (l.file.clone(), l.line),
                None => (
                    report
                        .checks
                        .iter()
                        .find(|c| c.id == r.id)
                        .map_or_else(|| format!("checks/{}.yaml", r.id), |c| c.path.clone()),
                    1,
                ),
            };
            // The object, else the endpoint the result is about (two endpoints' findings of one
            // check were one issue, with one fingerprint).
            let object = r
                .object
                .as_ref()
                .map(ToString::to_string)
                .or_else(|| r.endpoint.clone())
                .unwrap_or_default();
            // Stable across runs (no message: it may carry measured values), distinct per
            // check and object, so GitLab can say which findings are new in a merge request.
            // The n-th finding of one check on one object (one per container) stays distinct.
            // A fleet's cluster joins the key only there, so single-cluster fingerprints stay.
            let key = match &r.cluster {
                Some(c) => format!("{}\0{object}\0{path}\0{c}", r.id),
                None => format!("{}\0{object}\0{path}", r.id),
            };
            let n = seen.entry(key.clone()).or_default();
            *n += 1;
            let fingerprint = crate::checks::sha256_hex(format!("{key}\0{n}").as_bytes());
            let status = if r.status == Status::Error {
                " (could not be decided)"
            } else {
                ""
            };
            json!({
                "type": "issue",
                "check_name": r.id,
                "description": match &r.endpoint {
                    Some(e) => format!("{}{}{status} ({e}): {}", super::fleet::prefix(r), r.title, r.message),
                    None => format!("{}{}{status}: {}", super::fleet::prefix(r), r.title, r.message),
                },
                "categories": ["Security"],
                "severity": severity(r.severity),
                "fingerprint": fingerprint,
                "location": {"path": path, "lines": {"begin": line.max(1)}},
            })
        })
        .collect();
    // A run whose gate is an error whatever its results (it decided nothing, a kustomization's
    // edits were not rendered, a watch could not decide) printed `[]`, which GitLab shows as no
    // issue at all (review finding): one blocker issue says the gate did not pass, and why, as
    // JUnit's gate case and SARIF's invocation do.
    let mut issues = issues;
    if let Some(note) = report.undecided() {
        let key = format!("mlsdm-audit-gate\0{}", note.message);
        issues.insert(
            0,
            json!({
                "type": "issue",
                "check_name": "mlsdm-audit-gate",
                "description": format!("The audit's gate did not pass: {}", note.message),
                "categories": ["Security"],
                "severity": "blocker",
                "fingerprint": crate::checks::sha256_hex(key.as_bytes()),
                "location": {"path": report.target.manifests.first().map_or(".", String::as_str), "lines": {"begin": 1}},
            }),
        );
    }
    let mut out = serde_json::to_string_pretty(&issues).unwrap_or_else(|_| "[]".to_string());
    out.push('\n');
    out
}
