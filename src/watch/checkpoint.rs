//! Checkpoints: the post-deployment section (and the rollback criteria) written as a report at
//! each `--checkpoints` time and at the end, not passed while a criterion is undecided.

use super::schedule::{now_epoch, rfc3339, since_rollout};
use super::{Criterion, POST_DEPLOYMENT_SECTION, ROLLBACK_SECTION, Watcher};
use crate::UsageError;
use crate::checks::Source;
use crate::promql::{self, Query};
use crate::report::{self, Report, Status};
use serde_json::{Value, json};
use std::collections::BTreeMap;

/// The rollout the cluster runs, against the one a watch follows.
pub(super) enum RolloutNow {
    /// The same (or not read from the cluster: `--since`).
    Same,
    /// Another: why.
    Changed(String),
    /// It could not be read (a 429 or 503 while the release is failing): why.
    Unconfirmed(String),
}

impl Watcher<'_> {
    /// A post-deployment check or rollback criterion that passed on samples from before the
    /// rollout has not been decided about this release: its query reads back further (its
    /// window plus its longest range selector, `deriv(x[30m])`) than the rollout is old, so the
    /// previous version's samples may have passed it. Such a pass becomes no-data saying so (a
    /// criterion's then ends the watch as undecided, exit 3); a failure stays a failure (it
    /// failed even diluted by the old samples). The criteria were left out, and a checkpoint
    /// 8 s after the rollout passed on them, exit 0 (review finding).
    pub(super) fn not_before_the_rollout(
        &self,
        report: &mut crate::report::Report,
        since_rollout: u64,
    ) {
        for r in report.results.iter_mut().filter(|r| {
            r.status == Status::Pass
                && r.source == Source::Metrics
                && (r.section.starts_with(POST_DEPLOYMENT_SECTION)
                    || &*r.section == ROLLBACK_SECTION)
        }) {
            let Some(query) = self.plan.queries.get(r.id.as_str()) else {
                continue;
            };
            let window = self
                .plan
                .windows
                .get(r.id.as_str())
                .map_or(0, |w| (*w).min(since_rollout));
            if let Some(reach) = reaches_before_rollout(query, window, since_rollout) {
                r.status = Status::NoData;
                r.message = format!(
                    "not decided yet: the query reads {reach}s back (its window and range), and the rollout was {since_rollout}s ago, so the previous version's samples could pass it"
                ).into();
            }
        }
        report.summary = crate::report::Summary::of(&report.results);
    }

    /// Why the release this watch follows is no longer the one the cluster runs, or cannot be
    /// confirmed to be: `kubectl rollout undo` (the previous ReplicaSet current again, under a
    /// new revision), another rollout, the Deployment created again. The checkpoint would judge
    /// another release's pods and write a report in this one's name; it had passed. `None` when
    /// the rollout is the one the watch started on, or was not read from the cluster (`--since`).
    pub(super) fn rollout_changed(&self) -> Option<String> {
        match self.rollout_now() {
            RolloutNow::Same => None,
            RolloutNow::Changed(why) | RolloutNow::Unconfirmed(why) => Some(why),
        }
    }

    /// The rollout the cluster runs now, against the one this watch follows.
    pub(super) fn rollout_now(&self) -> RolloutNow {
        let Some(followed) = self.plan.rollout.as_ref() else {
            return RolloutNow::Same;
        };
        let since = rfc3339(self.plan.since);
        let now = match super::rollout::rollout(&self.plan.base) {
            Ok(Some(now)) => now.identity,
            Ok(None) => {
                return RolloutNow::Changed(format!(
                    "the rollout this watch follows was at {since} ({}), and no MLSDM Deployment's rollout can be read now (deleted, renamed or no longer selected)",
                    self.plan.since_source
                ));
            }
            Err(e) => {
                return RolloutNow::Unconfirmed(format!(
                    "could not confirm the Deployment's rollout is still the one this watch follows: {}",
                    crate::redact::text(&e.to_string())
                ));
            }
        };
        let changed = |what: String| {
            RolloutNow::Changed(format!(
                "the rollout this watch follows (at {since}, {}) is no longer the Deployment's: {what} (rolled back, or rolled out again): watch the new rollout with a new watch",
                self.plan.since_source
            ))
        };
        if now.deployment != followed.deployment {
            return changed("the Deployment was deleted and created again".into());
        }
        if now.revision != followed.revision {
            return changed(format!(
                "its revision went from {} to {}",
                followed.revision.as_deref().unwrap_or("none"),
                now.revision.as_deref().unwrap_or("none")
            ));
        }
        match (&followed.replica_set, &now.replica_set) {
            (Ok(a), Ok(b)) if a == b => RolloutNow::Same,
            (Ok(_), Ok(_)) => changed("another ReplicaSet is current".into()),
            (_, Err(status)) => RolloutNow::Unconfirmed(format!(
                "could not confirm the Deployment's rollout is still the one this watch follows: listing its ReplicaSets answered {status}"
            )),
            // Not readable at the start, readable now: the revision and the Deployment held.
            (Err(_), Ok(_)) => RolloutNow::Same,
        }
    }

    /// Writes the report of the post-deployment section (and the rollback criteria) to `file`.
    /// `Ok(code)`: the report's exit code; `Err(3)`: a rollback criterion had no data or an
    /// error, so the checkpoint is not passed and the watch ends.
    pub(super) fn checkpoint(
        &mut self,
        label: &str,
        file: &str,
        criteria: &mut [Criterion],
    ) -> Result<Result<u8, u8>, UsageError> {
        if let Some(why) = self.rollout_changed() {
            self.emit(&json!({"event": "checkpoint", "name": label, "time": rfc3339(now_epoch()), "error": why, "exitCode": 3}));
            self.say(&format!("checkpoint {label}: not this release's: {why}"));
            return Ok(Err(3));
        }
        let path = self.plan.output_dir.join(file);
        // With Prometheus every windowed check looks back at most to the rollout, as the
        // criteria do: an earlier window would let the previous version's samples pass it.
        let since_rollout = since_rollout(now_epoch(), self.plan.since);
        let mut groups: BTreeMap<Option<u64>, Vec<String>> = BTreeMap::new();
        for id in &self.plan.post_ids {
            let key = if self.plan.prometheus {
                self.plan.windows.get(id).map(|w| (*w).min(since_rollout))
            } else {
                Some(0)
            };
            groups.entry(key).or_default().push(id.clone());
        }
        if groups.len() > 1
            && let Some(rest) = groups.remove(&None)
            && let Some(first) = groups.values_mut().next()
        {
            first.extend(rest);
        }
        let mut reports = Vec::new();
        for (window, ids) in groups {
            let args = self.args_for(ids, window);
            match crate::run_check(&args) {
                Ok(r) => {
                    let mut r = crate::redact::model(r);
                    // One window's group all no-data is not the checkpoint's verdict: the
                    // watch's own rule below decides (a rollback criterion no-data fails it).
                    r.notes
                        .retain(|n| n.kind != report::NoteKind::NothingDecided);
                    // A checkpoint runs the post-deployment checks only: a narrowed audit (the
                    // report records the others as left out, and `verify` asks for
                    // --allow-narrowed), said as what it is.
                    let total = r.checks.len() + r.target.left_out.len();
                    for n in &mut r.notes {
                        if n.kind == report::NoteKind::Subset {
                            n.message = format!(
                                "a watch checkpoint: the post-deployment and rollback checks (and, with a cluster, whether the rollout completed) only ({} of the {total} checks), not the release's whole audit",
                                r.checks.len()
                            );
                        }
                    }
                    reports.push(r);
                }
                Err(e) if e.exit_code() == 2 => return Err(e),
                Err(e) => {
                    let why = crate::redact::text(&e.to_string()).into_owned();
                    self.emit(&json!({"event": "checkpoint", "name": label, "time": rfc3339(now_epoch()), "error": why, "exitCode": 3}));
                    self.say(&format!(
                        "checkpoint {label}: could not be evaluated: {why}"
                    ));
                    return Ok(Err(3));
                }
            }
        }
        let Some(mut report) = merge(reports) else {
            return Ok(Err(3));
        };
        // As at every interval: a waiver never holds back a rollback criterion. Waived here, a
        // failing criterion read as no failure, and a watch whose checkpoints were its only
        // evaluation after the breach exited 0.
        report.results = report
            .results
            .into_iter()
            .map(|r| {
                if &*r.section == ROLLBACK_SECTION {
                    super::criteria::unwaive(r)
                } else {
                    r
                }
            })
            .collect();
        report.summary = report::Summary::of(&report.results);
        if self.plan.prometheus {
            self.not_before_the_rollout(&mut report, since_rollout);
        }
        let mut undecided = Vec::new();
        for r in report.results.iter().filter(|r| {
            &*r.section == ROLLBACK_SECTION && matches!(r.status, Status::NoData | Status::Error)
        }) {
            let series = self
                .plan
                .queries
                .get(r.id.as_str())
                .map(|q| promql::metric_names(q.expr()))
                .unwrap_or_default();
            undecided.push(json!({
                "check": r.id,
                "status": r.status,
                "message": &*r.message,
                "series": series,
            }));
        }
        // A criterion skipped on everything (its `when` held nowhere, a pod without container
        // statuses) decided nothing either: it was left out of the undecided ones, and the
        // checkpoint passed without it.
        let mut skipped: Vec<&str> = report
            .results
            .iter()
            .filter(|r| &*r.section == ROLLBACK_SECTION && super::criteria::skipped_undecided(r))
            .map(|r| r.id.as_str())
            .collect();
        skipped.sort_unstable();
        skipped.dedup();
        for id in skipped {
            let mut of_check = report.results.iter().filter(|r| r.id.as_str() == id);
            if !of_check.clone().all(super::criteria::skipped_undecided) {
                continue;
            }
            let first = of_check.next().map_or("", |r| &*r.message);
            undecided.push(json!({
                "check": id,
                "status": Status::NoData,
                "message": format!("skipped on everything it applies to, so nothing was decided: {first}"),
                "series": Vec::<String>::new(),
            }));
        }
        // A criterion undecided between checkpoints for longer than its window could have held
        // a rollback unseen: this checkpoint's passing snapshot does not make up for it.
        let interval = self.plan.interval.as_secs();
        for c in criteria.iter_mut() {
            let Some((gap, status, why)) = c.undecided.take() else {
                continue;
            };
            let limit = if c.window > 0 { c.window } else { interval };
            if gap <= limit as f64 || undecided.iter().any(|u| u["check"] == c.check.id.as_str()) {
                continue;
            }
            let series = self
                .plan
                .queries
                .get(&c.check.id)
                .map(|q| promql::metric_names(q.expr()))
                .unwrap_or_default();
            undecided.push(json!({
                "check": c.check.id,
                "status": status,
                "message": format!(
                    "undecided for {}s between checkpoints (longer than its {limit}s {}): {why}",
                    gap.round(),
                    if c.window > 0 { "window" } else { "interval" }
                ),
                "series": series,
            }));
        }
        // The watch's exit 3 is part of the report itself: `report checkpoint-1h.json` must not
        // render a PASS the watch did not give.
        if !undecided.is_empty() {
            let which: Vec<String> = undecided
                .iter()
                .map(|u| {
                    format!(
                        "rollback criterion {} is {}",
                        u["check"].as_str().unwrap_or_default(),
                        u["status"].as_str().unwrap_or_default()
                    )
                })
                .collect();
            report.notes.push(report::Note {
                kind: report::NoteKind::WatchUndecided,
                message: format!("checkpoint {label} not passed: {}", which.join(", ")),
            });
        }
        if !self.plan.unwatched.is_empty() {
            report.notes.push(report::Note {
                kind: report::NoteKind::NotWatched,
                message: not_watched(&self.plan.unwatched),
            });
        }
        write_report(&path, &report)?;
        if let Some(out) = &self.plan.base.output
            && file == "post-deployment.json"
        {
            write_report(out, &report)?;
        }
        let code = u8::try_from(report.exit_code()).unwrap_or(3);
        self.emit(&json!({
            "event": "checkpoint",
            "name": label,
            "time": rfc3339(now_epoch()),
            "report": path.display().to_string(),
            "summary": report.summary,
            "exitCode": code,
            "undecidedCriteria": undecided,
            "notWatched": self.plan.unwatched,
        }));
        if !self.plan.unwatched.is_empty() {
            self.say(&format!(
                "checkpoint {label}: {}",
                not_watched(&self.plan.unwatched)
            ));
        }
        let s = &report.summary;
        self.say(&format!(
            "checkpoint {label}: {} pass, {} fail, {} error, {} no-data; report {}",
            s.pass,
            s.fail,
            s.error,
            s.no_data,
            path.display()
        ));
        if undecided.is_empty() {
            return Ok(Ok(code));
        }
        for u in &undecided {
            let series: Vec<&str> = u["series"]
                .as_array()
                .map(|a| a.iter().filter_map(Value::as_str).collect())
                .unwrap_or_default();
            self.say(&format!(
                "checkpoint {label} not passed: rollback criterion {} is {}: {}; series that never came: {}",
                u["check"].as_str().unwrap_or_default(),
                u["status"].as_str().unwrap_or_default(),
                u["message"].as_str().unwrap_or_default(),
                if series.is_empty() { "(none named by its query)".to_string() } else { series.join(", ") }
            ));
        }
        self.emit(&json!({"event": "end", "time": rfc3339(now_epoch()), "exitCode": 3, "reason": "a rollback criterion could not be decided at a checkpoint"}));
        Ok(Err(3))
    }
}

pub(super) fn not_watched(ids: &[String]) -> String {
    format!(
        "rollback criteria not watched (no cluster), so this checkpoint passes without them: {}",
        ids.join(", ")
    )
}

pub(super) fn sanitize(label: &str) -> String {
    label
        .chars()
        .map(|c| if c.is_ascii_alphanumeric() { c } else { '-' })
        .collect()
}

/// One report of several runs (one per window) of the same evaluation.
pub(super) fn merge(reports: Vec<Report>) -> Option<Report> {
    let mut all = reports.into_iter();
    let first = all.next()?;
    let mut results = first.results;
    let mut origins = first.checks;
    for r in all {
        results.extend(r.results);
        origins.extend(r.checks);
    }
    let mut merged = Report::new(first.target, results);
    merged.checks = origins;
    merged.notes = first.notes;
    Some(merged)
}

pub(super) fn write_report(path: &std::path::Path, report: &Report) -> Result<(), UsageError> {
    let text = report::render(report, report::Format::Json, false);
    std::fs::write(path, crate::redact::text(&text).as_bytes())
        .map_err(|e| UsageError::Invalid(format!("cannot write {}: {e}", path.display())))
}

/// How far back `query` over `window` seconds reads, when that is before the rollout
/// (`since_rollout` seconds ago); `None` when every sample it reads is this release's.
pub(super) fn reaches_before_rollout(
    query: &Query,
    window: u64,
    since_rollout: u64,
) -> Option<u64> {
    let lookback = promql::lookback(query.expr()).as_secs();
    let reach = window + lookback;
    (reach > since_rollout).then_some(reach)
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Review finding F2: a checkpoint's pass was made of the previous version's samples when
    /// the query's range reached before the rollout (memory-stable's deriv over 30 minutes at
    /// a 15-minute checkpoint).
    #[test]
    fn a_query_reaching_before_the_rollout_decides_nothing_yet() {
        let reach = |query: &str, window, since| {
            let q = Query::parse(query).unwrap();
            reaches_before_rollout(&q, window, since)
        };
        let memory = "max(deriv(container_memory_working_set_bytes{container=~\"mlsdm-api|neuro-engine\"}[30m]))";
        assert_eq!(reach(memory, 0, 15 * 60), Some(1800));
        assert_eq!(reach(memory, 0, 3600), None);
        let errors = "sum(rate(mlsdm_http_requests_total{status=~\"5..\"}[5m])) / sum(rate(mlsdm_http_requests_total[5m]))";
        assert_eq!(reach(errors, 300, 480), Some(600));
        assert_eq!(reach(errors, 300, 3600), None);
        assert_eq!(reach("up", 0, 1), None);
    }

    /// The series named come from the parsed query: a bare selector (`up`) is one, a function
    /// (`vector(0)`) and a label value are not.
    #[test]
    fn names_the_series_a_query_selects() {
        let names = |q: &str| promql::metric_names(Query::parse(q).unwrap().expr());
        assert_eq!(
            names(
                r#"(sum(rate(mlsdm_http_requests_total{status=~"5.."}[5m])) or vector(0)) / sum(rate(mlsdm_http_requests_total[5m]))"#
            ),
            vec!["mlsdm_http_requests_total"]
        );
        assert_eq!(
            names(
                "histogram_quantile(0.95, sum by (le) (rate(mlsdm_http_request_latency_seconds_bucket[5m])))"
            ),
            vec!["mlsdm_http_request_latency_seconds_bucket"]
        );
        assert_eq!(
            names(r#"up{job="x"} + on() count({__name__="a_b", le="y"})"#),
            vec!["up", "a_b"]
        );
    }
}
