//! A rollback criterion's state folded from each run: its status, how long it has held, how
//! long it went undecided, its value now, and the rollback commands its results name.

use super::{Criterion, Plan};
use crate::checks::Source;
use crate::cli::CheckArgs;
use crate::report::{CheckResult, Report, SkipReason, Status};
use serde_json::Value;
use std::collections::BTreeMap;

/// After an evaluation whose evidence spans `from`..`to`: a decided criterion moves its
/// `decided_at`; an undecided one keeps the longest stretch since it was last decided. The
/// stretch ends where the next decided run's evidence begins: counted only to the end of the
/// last undecided run, a cluster that answered 500 for 9 s against a 4 s window was 3 s.
pub(super) fn track_undecided(c: &mut Criterion, from: f64, to: f64) {
    let undecided_now = matches!(c.status, Status::Error | Status::NoData);
    let gap = undecided_stretch(
        c.decided_at,
        from,
        to,
        undecided_now,
        c.undecided_open.is_some(),
    );
    let (status, why) = if undecided_now {
        (c.status, c.message.clone())
    } else {
        c.undecided_open.take().unwrap_or((c.status, String::new()))
    };
    if let Some(gap) = gap
        && c.undecided.as_ref().is_none_or(|(g, _, _)| gap > *g)
    {
        c.undecided = Some((gap, status, why.clone()));
    }
    if undecided_now {
        c.undecided_open = Some((status, why));
    } else {
        c.decided_at = to;
    }
}

/// How long nothing was known, seen from a run whose evidence spans `from`..`to`: an undecided
/// run, from the last decided run's end to its own end; the first decided run after undecided
/// ones, from that end to where its own evidence begins; otherwise nothing.
fn undecided_stretch(
    decided_at: f64,
    from: f64,
    to: f64,
    undecided_now: bool,
    was_undecided: bool,
) -> Option<f64> {
    if undecided_now {
        Some(to - decided_at)
    } else if was_undecided {
        Some(from - decided_at)
    } else {
        None
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
            // One value, shown on the status line: an answer past 1 MiB is not one, and is
            // not read on (a Prometheus or proxy streaming without end grew the process).
            const CAP: usize = 1 << 20;
            let mut resp = client.get(url).timeout(opts.timeout).send().await.ok()?;
            let mut body = Vec::new();
            while let Some(chunk) = resp.chunk().await.ok()? {
                body.extend_from_slice(&chunk);
                if body.len() > CAP {
                    return None;
                }
            }
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

/// One run's status for a criterion and the message that says it: its worst result (a
/// failure, an error, no data, a pass). Skipped on every object (its `when` held nowhere) is
/// nothing decided: counted as decided, it moved the criterion's decided time on and the
/// checkpoint passed without it.
fn folded(results: &[CheckResult]) -> (Status, String) {
    let status = [Status::Fail, Status::Error, Status::NoData, Status::Pass]
        .into_iter()
        .find(|s| results.iter().any(|r| r.status == *s))
        .unwrap_or_else(|| results.first().map_or(Status::NoData, |r| r.status));
    let pick = results.iter().find(|r| r.status == status).map_or_else(
        || "no result (the check did not run)".into(),
        |r| r.message.to_string(),
    );
    if status == Status::Skipped && results.iter().all(skipped_undecided) {
        (
            Status::NoData,
            format!("skipped on everything it applies to, so nothing was decided: {pick}"),
        )
    } else {
        (status, pick)
    }
}

/// A skipped result that leaves its criterion undecided: a `when` that held nowhere, a probe
/// that could not be sent. Not an optional criterion the team has not declared, nor one whose
/// source the watch does not have (both said apart: they are not watched).
pub(super) fn skipped_undecided(r: &CheckResult) -> bool {
    r.status == Status::Skipped
        && !matches!(
            r.skip_reason,
            Some(SkipReason::Optional { .. } | SkipReason::NoSource { .. })
        )
}

/// Folds one run's results for a criterion into its state.
pub(super) fn update(
    c: &mut Criterion,
    results: Vec<CheckResult>,
    window: Option<u64>,
    plan: &Plan,
    observed_to: f64,
) {
    let (status, pick) = folded(&results);
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
    // The workloads the failing results name; when none does (a metrics criterion, a pod's
    // OOM kill), every MLSDM workload the results name. Undoing a healthy Deployment beside
    // the failing canary was a second rollback nobody asked for.
    let named = |failing_only: bool| {
        let mut out: Vec<(String, String, String)> = Vec::new();
        let all = criteria
            .iter()
            .flat_map(|c| c.results.iter())
            .chain(report.into_iter().flat_map(|r| r.results.iter()));
        for r in all.filter(|r| !failing_only || r.status == Status::Fail) {
            if let Some(o) = &r.object
                && crate::k8s::WORKLOAD_KINDS.contains(&o.kind.as_str())
            {
                let key = (
                    o.kind.clone(),
                    o.namespace.clone().unwrap_or_else(|| "default".into()),
                    o.name.clone(),
                );
                if !out.contains(&key) {
                    out.push(key);
                }
            }
        }
        out
    };
    let mut workloads = named(true);
    if workloads.is_empty() {
        workloads = named(false);
    }
    if workloads.is_empty() {
        return vec!["kubectl rollout undo deployment/<MLSDM deployment> -n <namespace> (no cluster was read to name it)".into()];
    }
    workloads
        .into_iter()
        .map(|(kind, ns, name)| match kind.as_str() {
            "Rollout" => format!("kubectl argo rollouts undo {name} -n {ns}"),
            _ => format!(
                "kubectl rollout undo {}/{name} -n {ns}",
                kind.to_lowercase()
            ),
        })
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

    /// Review 29: with two MLSDM Deployments the undo commands named the healthy one too, and a
    /// StatefulSet got the placeholder for a Deployment. They name the failing workloads, each
    /// with its own command.
    #[test]
    fn the_undo_commands_name_the_failing_workloads() {
        let at = |kind: &str, name: &str, status| CheckResult {
            object: Some(std::sync::Arc::new(crate::k8s::ObjectRef {
                kind: kind.into(),
                namespace: Some("prod".into()),
                name: name.into(),
            })),
            ..CheckResult::new(
                "rollback-pods-failing-health",
                Source::Kubernetes,
                status,
                "",
            )
        };
        let report = Report::new(
            crate::report::Target::default(),
            vec![
                at("Deployment", "mlsdm-api", Status::Pass),
                at("Deployment", "mlsdm-canary", Status::Fail),
            ],
        );
        assert_eq!(
            undo_commands(&[], Some(&report)),
            ["kubectl rollout undo deployment/mlsdm-canary -n prod"]
        );
        let report = Report::new(
            crate::report::Target::default(),
            vec![
                at("StatefulSet", "mlsdm-state", Status::Fail),
                at("Rollout", "mlsdm-ro", Status::Fail),
            ],
        );
        let mut commands = undo_commands(&[], Some(&report));
        commands.sort();
        assert_eq!(
            commands,
            [
                "kubectl argo rollouts undo mlsdm-ro -n prod",
                "kubectl rollout undo statefulset/mlsdm-state -n prod"
            ]
        );
        // No failing result names a workload (a metrics criterion): every workload named.
        let report = Report::new(
            crate::report::Target::default(),
            vec![at("Deployment", "mlsdm-api", Status::Pass)],
        );
        assert_eq!(
            undo_commands(&[], Some(&report)),
            ["kubectl rollout undo deployment/mlsdm-api -n prod"]
        );
    }

    /// Review 29: a cluster that answered 500 for 9 s against a 4 s window was counted as
    /// undecided for 3 s (to the end of the last undecided run): the stretch runs until the next
    /// decided run's evidence begins.
    #[test]
    fn an_undecided_stretch_lasts_until_evidence_comes_again() {
        // Decided until 100; undecided runs end at 103 and 106; the next decided run looks
        // from 107 to 110.
        assert_eq!(
            undecided_stretch(100.0, 101.0, 103.0, true, false),
            Some(3.0)
        );
        assert_eq!(
            undecided_stretch(100.0, 104.0, 106.0, true, true),
            Some(6.0)
        );
        assert_eq!(
            undecided_stretch(100.0, 107.0, 110.0, false, true),
            Some(7.0)
        );
        // Decided after decided: no stretch.
        assert_eq!(undecided_stretch(110.0, 111.0, 113.0, false, false), None);
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

    /// Review finding: a rollback criterion skipped on every object counted as decided, and a
    /// checkpoint passed without it. It is no data, saying why; a pass beside skips decides.
    #[test]
    fn a_criterion_skipped_everywhere_decided_nothing() {
        let at = |status| CheckResult {
            skip_reason: (status == Status::Skipped).then_some(SkipReason::NotApplicable),
            ..CheckResult::new(
                "pod-no-oom-kills",
                Source::Kubernetes,
                status,
                "not applicable: no container statuses",
            )
        };
        let (status, why) = folded(&[at(Status::Skipped), at(Status::Skipped)]);
        assert_eq!(status, Status::NoData);
        assert!(why.contains("skipped on everything"), "{why}");
        assert_eq!(
            folded(&[at(Status::Skipped), at(Status::Pass)]).0,
            Status::Pass
        );
        assert_eq!(folded(&[]).0, Status::NoData);
    }
}
