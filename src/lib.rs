//! mlsdm-audit: a deployment-readiness auditor for MLSDM on Kubernetes.
//!
//! Data flows one way: check definitions and facts go into the engine, results come out into a
//! report, and the report is rendered. Only `sources` does I/O.

pub mod checks;
pub mod cli;
pub mod docs;
pub mod engine;
pub mod report;
pub mod seed;
pub mod signoff;
pub mod sources;
pub mod waivers;

use anyhow::Result;
use checks::{Check, Source};
use cli::CheckArgs;
use report::{Report, Target};
use std::collections::BTreeSet;

/// Why the audit could not start (exit code 2).
#[derive(Debug, thiserror::Error)]
pub enum UsageError {
    #[error("{0}")]
    Checks(#[from] checks::CheckErrors),
    #[error("{0}")]
    Manifest(#[from] sources::manifests::ManifestError),
    #[error("{0}")]
    Waivers(#[from] waivers::WaiverErrors),
    #[error("{0}")]
    Invalid(String),
    #[error("{0}")]
    Signoff(#[from] signoff::SignoffError),
}

/// Loads checks and applies `--only`/`--skip`, rejecting ids that do not exist.
pub fn select_checks(
    all: Vec<Check>,
    only: &[String],
    skip: &[String],
) -> Result<Vec<Check>, UsageError> {
    for id in only.iter().chain(skip) {
        if !all.iter().any(|c| &c.id == id) {
            return Err(UsageError::Invalid(format!(
                "unknown check id {id:?} (see `mlsdm-audit list-checks`)"
            )));
        }
    }
    Ok(all
        .into_iter()
        .filter(|c| only.is_empty() || only.contains(&c.id))
        .filter(|c| !skip.contains(&c.id))
        .collect())
}

/// Runs `check` on manifests and returns the report.
pub fn run_check(args: &CheckArgs) -> Result<Report, UsageError> {
    let all = checks::load(&args.checks)?;
    // Waivers are validated against every known check, not only those --only selects.
    let known: Vec<String> = all.iter().map(|c| c.id.clone()).collect();
    let checks = select_checks(all, &args.only, &args.skip)?;
    let selector = args
        .selector
        .as_deref()
        .map(sources::selector::parse)
        .transpose()
        .map_err(|e| UsageError::Invalid(format!("--selector: {e}")))?;
    let objects = sources::manifests::load(&args.manifests)?;
    let waiver_file = args
        .waivers
        .clone()
        .or_else(|| Some(std::path::PathBuf::from(waivers::DEFAULT_FILE)).filter(|p| p.exists()));
    let ids: Vec<&str> = known.iter().map(String::as_str).collect();
    let mut waiver_set = match &waiver_file {
        Some(path) => waivers::load_file(path, &ids)?,
        None => Vec::new(),
    };
    let sources = BTreeSet::from([Source::Kubernetes]);
    let facts = sources::Facts::new(objects, sources, selector, "the audited manifests");
    if !args.no_annotation_waivers {
        waiver_set.extend(waivers::from_annotations(&facts.objects, &ids)?);
    }
    let attestations = args
        .attestations
        .as_deref()
        .map(|p| sources::attestations::load(p, &checks))
        .transpose()?;
    let baseline = args.baseline.as_deref().map(read_report).transpose()?;
    let mut results = engine::evaluate(&checks, &facts);
    waivers::apply(&mut results, &waiver_set, &report::now_rfc3339()[..10]);
    if let Some(a) = &attestations {
        sources::attestations::apply(&mut results, a);
    }
    if let Some(b) = &baseline {
        report::baseline::mark(&mut results, b);
    }
    let target = Target {
        mode: "manifests".into(),
        manifests: args
            .manifests
            .iter()
            .map(|p| p.display().to_string())
            .collect(),
        selector: args.selector.clone(),
        fail_on: args.fail_on.into(),
        attestations: args.attestations.as_ref().map(|p| p.display().to_string()),
        baseline: args.baseline.as_ref().map(|p| p.display().to_string()),
        fail_on_new: args.fail_on_new,
    };
    Ok(Report::new(target, results))
}

/// Reads a saved JSON report (signed or not).
pub fn read_report(path: &std::path::Path) -> Result<Report, UsageError> {
    let text = std::fs::read_to_string(path)
        .map_err(|e| UsageError::Invalid(format!("{}: cannot read: {e}", path.display())))?;
    serde_json::from_str(&text).map_err(|e| {
        UsageError::Invalid(format!(
            "{}:{}:{}: not an mlsdm-audit JSON report: {e}",
            path.display(),
            e.line(),
            e.column()
        ))
    })
}
