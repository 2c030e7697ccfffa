//! The watch loop and one evaluation of the rollback criteria: which `run_check` evaluates
//! which criterion over which window, and the rollback signal when one held for its window.

use super::checkpoint::RolloutNow;
use super::checkpoint::{merge, sanitize, write_report};
use super::criteria::{combine, current_values, track_undecided, undo_commands, unwaive, update};
use super::schedule::{MAX_SCHEDULE, now_epoch, rfc3339, since_rollout};
use super::{Criterion, EXIT_ROLLBACK, Watcher};
use crate::UsageError;
use crate::checks::Source;
use crate::cli::CheckArgs;
use crate::report::{self, CheckResult, Status};
use serde_json::{Value, json};
use std::collections::BTreeMap;
use std::fmt::Write as _;
use std::time::Duration;

impl Watcher<'_> {
    pub(super) fn watch(&mut self, criteria: &mut [Criterion]) -> Result<u8, UsageError> {
        let p = &self.plan;
        let window_kind = if p.prometheus {
            "range queries to Prometheus over each window since the rollout (a restarted watch resumes)"
        } else {
            "scrapes of the service by this watch: a window is only as long as it has watched"
        };
        let start_event = json!({
            "event": "start",
            "time": rfc3339(now_epoch()),
            "since": rfc3339(p.since),
            "sinceSource": p.since_source,
            "until": rfc3339(p.until),
            "intervalSeconds": p.interval.as_secs(),
            "checkpoints": p.checkpoints.iter().map(|(l, s)| json!({"name": l, "at": rfc3339(p.since + *s as f64)})).collect::<Vec<_>>(),
            "criteria": criteria.iter().map(|c| json!({"check": c.check.id, "windowSeconds": c.window})).collect::<Vec<_>>(),
            "windows": window_kind,
        });
        let line = format!(
            "watching since {} ({}) until {}; rollback criteria every {}s; windows from {window_kind}",
            rfc3339(p.since),
            p.since_source,
            rfc3339(p.until),
            p.interval.as_secs()
        );
        let skipped_kube = !p.cluster;
        self.emit(&start_event);
        self.say(&line);
        if let Some(why) = self.plan.stale.clone() {
            self.emit(&json!({"event": "end", "time": rfc3339(now_epoch()), "exitCode": 3, "reason": why}));
            self.say(&format!("watch ended: exit 3: {why}"));
            return Ok(3);
        }
        if skipped_kube {
            self.say("no cluster: the Kubernetes rollback criteria (pods failing health checks, OOM kills) are not watched");
        }
        let mut done = vec![false; self.plan.checkpoints.len()];
        let mut worst = 0u8;
        loop {
            let tick = now_epoch();
            let last = tick >= self.plan.until;
            // Every tick evaluates the criteria before its checkpoints: a rollback signal wins
            // over a checkpoint (on the last tick the windows are covered only now). After them,
            // a rollback a checkpoint's own report showed ended the watch in 3 when another
            // criterion was undecided, and a pipeline rolls back on 4 only.
            if let Some(code) = self.evaluate(criteria, tick)? {
                return Ok(code);
            }
            // Checkpoints that are due (a restarted watch writes the ones it missed now).
            let schedule = self.plan.checkpoints.clone();
            for ((label, at), done) in schedule.into_iter().zip(done.iter_mut()) {
                if *done
                    || self.plan.since + at as f64 > tick
                    || self.plan.since + at as f64 > self.plan.until + 1.0
                {
                    continue;
                }
                *done = true;
                let file = format!("checkpoint-{}.json", sanitize(&label));
                match self.checkpoint(&label, &file, criteria)? {
                    Ok(code) => worst = combine(worst, code),
                    Err(code) => return Ok(code),
                }
            }
            if last {
                let code = match self.checkpoint("final", "post-deployment.json", criteria)? {
                    Ok(code) => combine(worst, code),
                    Err(code) => return Ok(code),
                };
                self.emit(&json!({"event": "end", "time": rfc3339(now_epoch()), "exitCode": code}));
                self.say(&format!("watch ended: exit {code}"));
                return Ok(code);
            }
            let next_cp = self
                .plan
                .checkpoints
                .iter()
                .zip(&done)
                .filter(|(_, d)| !**d)
                .map(|((_, s), _)| self.plan.since + *s as f64)
                .fold(self.plan.until, f64::min);
            let wake = (tick + self.plan.interval.as_secs_f64()).min(next_cp);
            let wait = wake - now_epoch();
            // The schedule is capped, so the wait fits a Duration; never panic if it did not.
            if wait > 0.0 {
                std::thread::sleep(
                    Duration::try_from_secs_f64(wait).unwrap_or(Duration::from_secs(MAX_SCHEDULE)),
                );
            }
        }
    }

    /// The args of one `run_check` over `ids`.
    pub(super) fn args_for(&self, ids: Vec<String>, window: Option<u64>) -> CheckArgs {
        let mut a = self.plan.base.clone();
        a.only = ids;
        a.skip = Vec::new();
        a.format = None;
        a.output = None;
        a.window = window.map(|w| format!("{w}s"));
        a.observe = (!self.plan.prometheus).then(|| format!("{}s", self.plan.observe.as_secs()));
        a
    }

    /// One evaluation of the rollback criteria; `Some(4)` when one holds for its window.
    pub(super) fn evaluate(
        &mut self,
        criteria: &mut [Criterion],
        tick: f64,
    ) -> Result<Option<u8>, UsageError> {
        let p = &self.plan;
        // Which run evaluates which criterion, and over which window.
        let mut groups: BTreeMap<Option<u64>, Vec<usize>> = BTreeMap::new();
        for (i, c) in criteria.iter().enumerate() {
            let key = if c.check.source() != Source::Metrics {
                None
            } else if p.prometheus {
                // Never before the rollout: the old version's samples are not this release's.
                Some(c.window.min(since_rollout(tick, p.since)))
            } else {
                // Each scrape run is one observation; this watch counts the time held.
                Some(0)
            };
            groups.entry(key).or_default().push(i);
        }
        // Kubernetes criteria ride with the first metrics run when there is one.
        if groups.len() > 1
            && let Some(kube) = groups.remove(&None)
            && let Some(first) = groups.values_mut().next()
        {
            first.extend(kube);
        }
        let mut reports = Vec::new();
        for (window, members) in &groups {
            let ids: Vec<String> = members
                .iter()
                .map(|&i| criteria[i].check.id.clone())
                .collect();
            let args = self.args_for(ids, *window);
            let observed_from = now_epoch();
            let outcome = crate::run_check(&args);
            let observed_to = now_epoch();
            match outcome {
                Err(e) if e.exit_code() == 2 => return Err(e),
                Err(e) => {
                    let why = crate::redact::text(&e.to_string()).into_owned();
                    for &i in members {
                        let c = &mut criteria[i];
                        c.status = Status::Error;
                        c.message.clone_from(&why);
                        // No evidence the failure ended: `failing_since` stays (criteria.rs).
                        c.held = 0.0;
                        c.results.clear();
                        track_undecided(c, observed_from, observed_to);
                    }
                }
                Ok(report) => {
                    let mut report = crate::redact::model(report);
                    // A run of criteria that are all no-data is `check`'s "nothing decided";
                    // the watch decides what no-data means itself (held, undecided, or a
                    // checkpoint not passed), so that note is not its verdict.
                    report
                        .notes
                        .retain(|n| n.kind != report::NoteKind::NothingDecided);
                    // Every result of this run is a rollback criterion's.
                    report.results = report.results.into_iter().map(unwaive).collect();
                    report.summary = report::Summary::of(&report.results);
                    for &i in members {
                        let c = &mut criteria[i];
                        let mine: Vec<CheckResult> = report
                            .results
                            .iter()
                            .filter(|r| r.id == c.check.id)
                            .cloned()
                            .collect();
                        update(c, mine, *window, p, observed_to);
                        track_undecided(c, observed_from, observed_to);
                    }
                    reports.push(report);
                }
            }
        }
        if self.plan.prometheus {
            let values = current_values(&self.plan.base, criteria);
            for c in criteria.iter_mut() {
                c.value = values.get(&c.check.id).copied();
            }
        }
        let next = self.next_checkpoint(now_epoch());
        self.show(criteria, next);
        let fired: Vec<usize> = (0..criteria.len())
            .filter(|&i| {
                criteria[i].status == Status::Fail
                    && criteria[i].held + 1e-6 >= criteria[i].window as f64
            })
            .collect();
        if fired.is_empty() {
            return Ok(None);
        }
        // Held on this watch's release? After a `kubectl rollout undo` the release that runs is
        // another, and the command below would restore the one this watch follows (review
        // finding).
        // A rollout that cannot be read now (an API server answering 429 while the release
        // fails) is no reason to withhold the signal: it stands, with the doubt said.
        let doubt = match self.rollout_now() {
            RolloutNow::Changed(why) => {
                self.emit(&json!({"event": "end", "time": rfc3339(now_epoch()), "exitCode": 3, "reason": why}));
                self.say(&format!(
                    "watch ended: exit 3: a rollback criterion held, on a release this watch does not follow: {why}"
                ));
                return Ok(Some(3));
            }
            RolloutNow::Unconfirmed(why) => Some(why),
            RolloutNow::Same => None,
        };
        let report = merge(reports);
        let path = self.plan.output_dir.join("rollback.json");
        // A report that cannot be written (a full disk, a read-only directory) is said; the
        // signal stands: losing exit 4 to it kept a failing release running (review finding).
        let written = report
            .as_ref()
            .map_or(Ok(()), |rep| write_report(&path, rep))
            .map_err(|e| crate::redact::text(&e.to_string()).into_owned());
        let commands = undo_commands(criteria, report.as_ref());
        for &i in &fired {
            let c = &criteria[i];
            let evidence: Vec<Value> = c
                .results
                .iter()
                .filter(|r| r.status == Status::Fail)
                .map(|r| {
                    json!({
                        "message": &*r.message,
                        "object": r.object.as_ref().map(ToString::to_string),
                        "query": c.check.metrics().map(|m| m.query.text()),
                        "source": r.window.as_ref().map(|w| w.source.clone()).or_else(|| r.endpoint.clone()),
                        "evaluatedSeconds": r.window.as_ref().map(|w| w.evaluated_seconds),
                    })
                })
                .collect();
            self.emit(&json!({
                "event": "rollback",
                "time": rfc3339(now_epoch()),
                "check": c.check.id,
                "title": c.check.title,
                "heldSeconds": c.held.round(),
                "windowSeconds": c.window,
                "threshold": c.threshold(),
                "evidence": evidence,
                "commands": commands,
                "report": written.is_ok().then(|| path.display().to_string()),
                "reportError": written.as_ref().err(),
                "rolloutUnconfirmed": doubt,
            }));
            let mut lines = vec![format!(
                "ROLLBACK: {} ({}) held for {:.0}s of its {}s window",
                c.check.id, c.check.title, c.held, c.window
            )];
            for r in c.results.iter().filter(|r| r.status == Status::Fail) {
                let mut line = format!("  evidence: {}", r.message);
                if let Some(o) = &r.object {
                    let _ = write!(line, " [{o}]");
                }
                if let Some(q) = c.check.metrics().map(|m| &m.query) {
                    let _ = write!(line, " (query: {q})");
                }
                if let Some(w) = &r.window {
                    let _ = write!(line, " from {}", w.source);
                }
                lines.push(line);
            }
            for l in lines {
                self.say(&l);
            }
        }
        if let Some(why) = &doubt {
            self.say(&format!("  note: {why}; the signal stands"));
        }
        for cmd in &commands {
            self.say(&format!("run: {cmd}"));
        }
        match &written {
            Ok(()) => self.say(&format!(
                "the watch does not run it (read-only); report: {}",
                path.display()
            )),
            Err(e) => self.say(&format!(
                "the watch does not run it (read-only); the report could not be written: {e}"
            )),
        }
        Ok(Some(EXIT_ROLLBACK))
    }
}
