//! A rollback criterion's state folded from each run: its status, how long it has held, how
//! long it went undecided, its value now, and the rollback commands its results name.

use super::{Criterion, Plan};
use crate::checks::Source;
use crate::cli::CheckArgs;
use crate::report::{CheckResult, Report, Status};
use serde_json::Value;
use std::collections::BTreeMap;

/// After an evaluation ending at `at`: a decided criterion moves its `decided_at`; an undecided
/// one keeps the longest stretch since it was last decided.
pub(super) fn track_undecided(c: &mut Criterion, at: f64) {
    if matches!(c.status, Status::Error | Status::NoData) {
        let gap = at - c.decided_at;
        if c.undecided.as_ref().is_none_or(|(g, _, _)| gap > *g) {
            c.undecided = Some((gap, c.status, c.message.clone()));
        }
    } else {
        c.decided_at = at;
    }
}

/// 1 (a failure) outranks 3 (an error), which outranks 0, as in `check`'s exit code.
pub(super) fn combine(a: u8, b: u8) -> u8 {
    if a == 1 || b == 1 { 1 } else { a.max(b) }
}

/// Each metrics criterion's value now, by an instant query to --prometheus (with `check`'s
/// TLS options). Only for display: a query that fails leaves the value out, never decides.
pub(super) fn current_values(args: &CheckArgs, criteria: &[Criterion]) -> BTreeMap<String, f64> {
    let mut out = BTreeMap::new();
    let Ok(opts) = crate::http_options(args) else {
        return out;
    };
    let (Some(base), Ok(client)) = (opts.prometheus.clone(), crate::sources::http::client(&opts))
    else {
        return out;
    };
    let Ok(rt) = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
    else {
        return out;
    };
    for c in criteria {
        let Some(query) = c.check.metrics().map(|m| match &opts.prometheus_scope {
            None => Ok(m.query.text().to_string()),
            Some(scope) => scope.apply(m.query.expr()),
        }) else {
            continue;
        };
        let Ok(query) = query else { continue };
        let Ok(mut url) = reqwest::Url::parse(&format!("{base}/api/v1/query")) else {
            continue;
        };
        url.query_pairs_mut().append_pair("query", &query);
        let answer = rt.block_on(async {
            let resp = client.get(url).timeout(opts.timeout).send().await.ok()?;
            let body = resp.bytes().await.ok()?;
            serde_json::from_slice::<Value>(&body).ok()
        });
        let Some(answer) = answer else { continue };
        let data = &answer["data"];
        let sample = match data["resultType"].as_str() {
            Some("scalar") => Some(&data["result"]),
            Some("vector") => data["result"]
                .as_array()
                .filter(|r| r.len() == 1)
                .map(|r| &r[0]["value"]),
            _ => None,
        };
        if let Some(v) = sample
            .and_then(|s| s[1].as_str())
            .and_then(|s| s.parse::<f64>().ok())
            .filter(|v| v.is_finite())
        {
            out.insert(c.check.id.clone(), v);
        }
    }
    out
}

/// Folds one run's results for a criterion into its state.
pub(super) fn update(
    c: &mut Criterion,
    results: Vec<CheckResult>,
    window: Option<u64>,
    plan: &Plan,
    observed_to: f64,
) {
    let status = [Status::Fail, Status::Error, Status::NoData, Status::Pass]
        .into_iter()
        .find(|s| results.iter().any(|r| r.status == *s))
        .unwrap_or_else(|| results.first().map_or(Status::NoData, |r| r.status));
    let pick = results.iter().find(|r| r.status == status).map_or_else(
        || "no result (the check did not run)".into(),
        |r| r.message.to_string(),
    );
    // Without Prometheus each run is evaluated at its last scrape (`--window 0s`): the engine's
    // note about that window would misstate the window this watch counts.
    c.message = match pick.find(" (evaluated over 0s instead of") {
        Some(at) if !plan.prometheus => pick[..at].to_string(),
        _ => pick,
    };
    c.status = if results.is_empty() {
        Status::Error
    } else {
        status
    };
    c.held = held_after(
        c.status,
        c.check.source(),
        plan.prometheus,
        window,
        &mut c.failing_since,
        observed_to,
    );
    c.results = results;
}

/// A waiver (file or annotation) accepts a known gap in a static audit; it never silences a
/// rollback criterion, which is about this release misbehaving now. The result keeps its
/// outcome and says the waiver was not applied.
pub(super) fn unwaive(mut r: CheckResult) -> CheckResult {
    if r.status == Status::Waived
        && let Some(outcome) = r.outcome.take()
    {
        r.status = outcome;
        if let Some(w) = r.waiver.take() {
            r.message = format!(
                "{} (waived by {}, but a waiver does not hold back a rollback signal)",
                r.message, w.origin
            )
            .into();
        }
    }
    r
}

/// How long a criterion's failure has held after a run that ended at `observed_to` with
/// `status`; `failing_since` carries the count from run to run.
fn held_after(
    status: Status,
    source: Source,
    prometheus: bool,
    window: Option<u64>,
    failing_since: &mut Option<f64>,
    observed_to: f64,
) -> f64 {
    match (status, source) {
        (Status::Fail, Source::Metrics) if prometheus => {
            // The range query covered min(window, time since the rollout): a fail there held that
            // long, and counts as a rollback only when that is the whole window.
            window.unwrap_or(0) as f64
        }
        // Scrapes without Prometheus, and the cluster's state (readiness, OOM kills): this
        // watch counts how long it has seen the criterion fail. A criterion with no window (no
        // `for`, no --window) signals at once; with --window a not-ready majority must last
        // that long (a rollout still starting pods is not a rollback).
        (Status::Fail, _) => scrape_held(failing_since, observed_to),
        // A run with nothing to decide on (no traffic, a failed scrape) is no evidence the
        // failure ended: it keeps the count going, and only a run that passes stops it. A canary
        // failing every request whenever it had traffic, with quiet runs between, never held
        // a window and never rolled back. (Undecided runs longer than a window make the watch
        // an error on their own: `track_undecided`.)
        (Status::NoData | Status::Error, _) => 0.0,
        _ => {
            *failing_since = None;
            0.0
        }
    }
}

/// How long a condition counted by this watch has held. A run sees it at its end (`observed_to`),
/// so it has held since the end of the first failing run, not its start: counting from the
/// start overstated it by one observe period and could roll back early.
pub(super) fn scrape_held(failing_since: &mut Option<f64>, observed_to: f64) -> f64 {
    observed_to - *failing_since.get_or_insert(observed_to)
}

/// `kubectl rollout undo` for each MLSDM Deployment the criteria's results name, or the
/// placeholder form when the watch has no cluster to name it from.
pub(super) fn undo_commands(criteria: &[Criterion], report: Option<&Report>) -> Vec<String> {
    let mut deployments: Vec<(String, String)> = Vec::new();
    let all = criteria
        .iter()
        .flat_map(|c| c.results.iter())
        .chain(report.into_iter().flat_map(|r| r.results.iter()));
    for r in all {
        if let Some(o) = &r.object
            && o.kind == "Deployment"
        {
            let key = (
                o.namespace.clone().unwrap_or_else(|| "default".into()),
                o.name.clone(),
            );
            if !deployments.contains(&key) {
                deployments.push(key);
            }
        }
    }
    if deployments.is_empty() {
        return vec!["kubectl rollout undo deployment/<MLSDM deployment> -n <namespace> (no cluster was read to name it)".into()];
    }
    deployments
        .into_iter()
        .map(|(ns, name)| format!("kubectl rollout undo deployment/{name} -n {ns}"))
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_condition_holds_from_the_end_of_its_first_failing_run() {
        let mut since = None;
        // First failing run observed 100..103: seen at 103, held 0 s so far.
        assert!(scrape_held(&mut since, 103.0).abs() < 1e-9);
        // Next failing run ends at 106: held 3 s, not 6.
        assert!((scrape_held(&mut since, 106.0) - 3.0).abs() < 1e-9);
    }

    /// Review finding: runs with no traffic between failing ones restarted the count, so a
    /// canary that failed every request whenever it had any never held its window and never
    /// rolled back. Only a pass stops the count.
    #[test]
    fn undecided_runs_neither_stop_nor_restart_a_failure() {
        let mut since = None;
        let mut run =
            |status, at| held_after(status, Source::Metrics, false, Some(30), &mut since, at);
        assert!(run(Status::Fail, 100.0).abs() < 1e-9);
        assert!(run(Status::NoData, 110.0).abs() < 1e-9);
        assert!(run(Status::Error, 115.0).abs() < 1e-9);
        assert!((run(Status::Fail, 130.0) - 30.0).abs() < 1e-9);
        // A pass ends it: the next failure counts from itself.
        assert!(run(Status::Pass, 140.0).abs() < 1e-9);
        assert!(run(Status::Fail, 150.0).abs() < 1e-9);
        assert!((run(Status::Fail, 160.0) - 10.0).abs() < 1e-9);
    }
}
