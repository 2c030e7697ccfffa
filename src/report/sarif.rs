//! `--format sarif`: SARIF 2.1.0 for code-scanning UIs. Rules are the checks; results are the
//! failures and errors, with file and line for manifest findings; waived results carry an
//! external suppression with the waiver's reason.

use super::{Report, Status};
use serde_sarif::sarif::{
    ArtifactLocation, Invocation, Location, LogicalLocation, Message, MultiformatMessageString,
    Notification, PhysicalLocation, PropertyBag, Region, ReportingDescriptor,
    Result as SarifResult, ResultLevel, Run, Sarif, Suppression, Tool, ToolComponent,
};
use std::collections::BTreeMap;

/// What a path segment keeps in a SARIF `uri`: RFC 3986's unreserved characters, the
/// sub-delimiters and `@` (`:` is encoded: in a relative reference's first segment it would
/// read as a scheme).
const URI_SEGMENT: &percent_encoding::AsciiSet = &percent_encoding::NON_ALPHANUMERIC
    .remove(b'-')
    .remove(b'.')
    .remove(b'_')
    .remove(b'~')
    .remove(b'!')
    .remove(b'$')
    .remove(b'&')
    .remove(b'\'')
    .remove(b'(')
    .remove(b')')
    .remove(b'*')
    .remove(b'+')
    .remove(b',')
    .remove(b';')
    .remove(b'=')
    .remove(b'@');

fn level(severity: crate::checks::Severity) -> ResultLevel {
    use crate::checks::Severity;
    match severity {
        Severity::Critical | Severity::High => ResultLevel::Error,
        Severity::Medium => ResultLevel::Warning,
        Severity::Low | Severity::Info => ResultLevel::Note,
    }
}

pub fn render(report: &Report) -> String {
    let mut rule_ids: Vec<&str> = Vec::new();
    let mut rules = Vec::new();
    for r in &report.results {
        if !rule_ids.contains(&r.id.as_str()) {
            rule_ids.push(&r.id);
            let mut props = BTreeMap::new();
            props.insert("severity".to_string(), serde_json::json!(r.severity));
            props.insert("section".to_string(), serde_json::json!(&*r.section));
            props.insert("checklist".to_string(), serde_json::json!(&*r.checklist));
            rules.push(
                ReportingDescriptor::builder()
                    .id(r.id.clone())
                    .short_description(
                        MultiformatMessageString::builder()
                            .text(r.title.to_string())
                            .build(),
                    )
                    .properties(PropertyBag::builder().additional_properties(props).build())
                    .build(),
            );
        }
    }
    let mut results = Vec::new();
    for r in report
        .results
        .iter()
        .filter(|r| matches!(r.status, Status::Fail | Status::Error | Status::Waived))
    {
        // Code-scanning UIs (GitHub's) reject a result without a physical location: a finding
        // about a live object or a service points at the definition of the check that made it.
        let (uri, line) = match &r.location {
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
        // SARIF's `uri` is a URI reference: a path with a space, `#`, `?` or `%` is percent-
        // encoded (each segment; `/` stays), or code scanning reads another file or none.
        let uri = uri
            .split('/')
            .map(|seg| percent_encoding::utf8_percent_encode(seg, URI_SEGMENT).to_string())
            .collect::<Vec<_>>()
            .join("/");
        let mut location = Location::builder().build();
        location.physical_location = Some(
            PhysicalLocation::builder()
                .artifact_location(ArtifactLocation::builder().uri(uri).build())
                .region(
                    Region::builder()
                        .start_line(i64::try_from(line).unwrap_or(1).max(1))
                        .build(),
                )
                .build(),
        );
        // In a fleet report the cluster leads the name: the same object is in every cluster.
        let cluster = r
            .cluster
            .as_ref()
            .map(|c| format!("{c}/"))
            .unwrap_or_default();
        let logical = match (&r.object, &r.endpoint) {
            (Some(o), _) => Some(
                LogicalLocation::builder()
                    .fully_qualified_name(format!("{cluster}{o}"))
                    .kind(o.kind.clone())
                    .build(),
            ),
            (None, Some(e)) => Some(
                LogicalLocation::builder()
                    .fully_qualified_name(format!("{cluster}{e}"))
                    .kind("endpoint")
                    .build(),
            ),
            (None, None) => r.cluster.as_ref().map(|c| {
                LogicalLocation::builder()
                    .fully_qualified_name(c.clone())
                    .kind("cluster")
                    .build()
            }),
        };
        location.logical_locations = logical.map(|l| vec![l]);
        // A result that sets the exit code is an error whatever its severity: code scanning
        // blocks a merge on `error` only, and a medium failure under `--fail-on medium` showed
        // as a warning while the run exited 1 (review finding).
        let level = if r.status == Status::Error || (r.status == Status::Fail && report.gates(r)) {
            ResultLevel::Error
        } else {
            level(r.severity)
        };
        let mut result = SarifResult::builder()
            .rule_id(r.id.clone())
            .rule_index(
                i64::try_from(rule_ids.iter().position(|id| *id == r.id).unwrap_or(0)).unwrap_or(0),
            )
            .level(level)
            .message(
                Message::builder()
                    .text(format!(
                        "{}{}{}",
                        super::fleet::prefix(r),
                        if r.status == Status::Error {
                            "could not evaluate: "
                        } else {
                            ""
                        },
                        r.message
                    ))
                    .build(),
            )
            .locations(vec![location])
            .build();
        // SARIF's own baseline comparison: code-scanning UIs show which findings are new.
        result.baseline_state = match r.change {
            Some(super::Change::New) => Some(serde_json::json!("new")),
            Some(super::Change::Unchanged | super::Change::Fixed) => {
                Some(serde_json::json!("unchanged"))
            }
            None => None,
        };
        if let Some(w) = r.waiver.as_ref().filter(|_| r.status == Status::Waived) {
            result.suppressions = Some(vec![
                Suppression::builder()
                    .kind(serde_json::json!("external"))
                    .justification(format!(
                        "{} (owner {}, expires {})",
                        w.reason, w.owner, w.expires
                    ))
                    .build(),
            ]);
        }
        results.push(result);
    }
    let driver = ToolComponent::builder()
        .name(report.tool.name.clone())
        .version(report.tool.version.clone())
        .information_uri("https://github.com/neuron7x/mlsdm-governed-cognitive-memory")
        .rules(rules)
        .build();
    let mut run = Run::builder()
        .tool(Tool::builder().driver(driver).build())
        .results(results)
        .build();
    // A run that decided nothing (or a watch that could not decide) has no failing result, and
    // a code-scanning UI would show it clean: the invocation says it did not succeed, and why.
    // Every other note (a workload a selector left out, a baseline of another audit, a file
    // skipped) is a notification too: each says something the results alone do not.
    if !report.notes.is_empty() {
        let undecided = report.undecided();
        let notifications = report
            .notes
            .iter()
            .map(|n| {
                let gate = undecided.is_some_and(|u| std::ptr::eq(u, n));
                Notification::builder()
                    .message(Message::builder().text(n.message.clone()).build())
                    .level(serde_json::json!(if gate { "error" } else { "note" }))
                    .build()
            })
            .collect::<Vec<_>>();
        run.invocations = Some(vec![
            Invocation::builder()
                .execution_successful(undecided.is_none())
                .tool_execution_notifications(notifications)
                .build(),
        ]);
    }
    let sarif = Sarif::builder()
        .version(serde_json::json!("2.1.0"))
        .schema("https://json.schemastore.org/sarif-2.1.0.json")
        .runs(vec![run])
        .build();
    serde_json::to_string_pretty(&sarif).unwrap_or_default() + "\n"
}
