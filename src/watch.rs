//! `watch`: the checklist's "Rollback Criteria" evaluated every `--interval` over their windows,
//! and its "Post-Deployment Monitoring" section at checkpoints after the rollout.
//!
//! Every evaluation is an ordinary `check` run (`run_check`) restricted to the checks it needs,
//! so sources, redaction and the report format are the same as `check`'s. With `--prometheus` a
//! criterion's window is a range query ending now and starting at most at the rollout: the
//! verdict depends only on Prometheus and the rollout time, so a restarted watcher loses nothing.
//! Without Prometheus each evaluation scrapes the service for one interval, and a criterion's
//! time held is counted by this process: its window is only as long as it has watched.
//!
//! It never changes the cluster: on a rollback signal it prints `kubectl rollout undo` for the
//! pipeline to run.

use crate::UsageError;
use crate::checks::{self, Check, Source};
use crate::cli::CheckArgs;
pub use crate::cli::{EventFormat, WatchArgs};
use crate::promql::{self, Query};
use crate::report::{self, CheckResult, Report, Status};
use promql_parser::parser::Expr;
use serde_json::{Value, json};
use std::collections::BTreeMap;
use std::fmt::Write as _;
use std::path::PathBuf;
use std::time::Duration;

pub const ROLLBACK_SECTION: &str = "Rollback Criteria";
pub const POST_DEPLOYMENT_SECTION: &str = "Post-Deployment Monitoring";
/// The exit code of a rollback signal (documented in the CLI's EXIT_CODES).
pub const EXIT_ROLLBACK: u8 = 4;
/// Without Prometheus an evaluation scrapes for at least this long: a rate needs two scrapes.
const MIN_OBSERVE: Duration = Duration::from_secs(3);

fn now_epoch() -> f64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0.0, |d| d.as_secs_f64())
}

#[allow(clippy::cast_possible_truncation)] // a Unix time in seconds fits an i64
fn rfc3339(epoch: f64) -> String {
    chrono::DateTime::from_timestamp(epoch as i64, 0)
        .unwrap_or_default()
        .to_rfc3339_opts(chrono::SecondsFormat::Secs, true)
}

fn duration(flag: &str, value: &str) -> Result<u64, UsageError> {
    checks::parse_duration(value.trim()).ok_or_else(|| {
        UsageError::Invalid(format!(
            "{flag} {value:?}: expected a duration like 10s, 30m or 1h"
        ))
    })
}

/// The longest `--interval`, `--until` or checkpoint a watch accepts: a watch is a rollout gate
/// of hours or days, and beyond this a typo (or `u64::MAX`) would overflow the sleep.
const MAX_SCHEDULE: u64 = 30 * 24 * 3600;

/// A schedule duration, refused beyond `MAX_SCHEDULE` naming the flag.
fn schedule(flag: &str, value: &str) -> Result<u64, UsageError> {
    let secs = duration(flag, value)?;
    if secs > MAX_SCHEDULE {
        return Err(UsageError::Invalid(format!(
            "{flag} {value:?}: longer than a watch can run (at most 30d)"
        )));
    }
    Ok(secs)
}

/// A `--since` in the future is refused: the watch would idle until then, and every window
/// would be clamped to nothing, so no criterion could ever fire.
fn future_since(since: f64, now: f64) -> Result<f64, UsageError> {
    if since > now + 1.0 {
        return Err(UsageError::Invalid(format!(
            "--since {}: the rollout time is in the future (now is {})",
            rfc3339(since),
            rfc3339(now)
        )));
    }
    Ok(since)
}

/// Why a rollout time read from the cluster cannot be watched: it is so old the watch would end
/// at its first tick, deciding every checkpoint on one snapshot. Only `--since` (a deliberate
/// time) may start a watch after its own end.
fn stale_rollout(since: f64, source: &str, until: f64, start: f64) -> Option<String> {
    (until < start).then(|| {
        format!(
            "the rollout time {} ({source}) is older than the end of the watch ({}): nothing would be watched. \
             If that is this release's rollout, give --since explicitly; a deploy that made no new ReplicaSet, \
             or another MLSDM Deployment, reads as an old rollout",
            rfc3339(since),
            rfc3339(until)
        )
    })
}

/// `--since`: an RFC 3339 time, or a duration before now.
fn parse_since(value: &str, now: f64) -> Result<f64, UsageError> {
    if let Ok(t) = chrono::DateTime::parse_from_rfc3339(value) {
        return Ok(t.timestamp() as f64);
    }
    checks::parse_duration(value)
        .map(|d| now - d as f64)
        .ok_or_else(|| {
            UsageError::Invalid(format!(
                "--since {value:?}: expected an RFC 3339 time (2026-11-29T05:00:00Z) or a duration ago (15m)"
            ))
        })
}

/// One rollback criterion's state between evaluations.
struct Criterion {
    check: Check,
    /// Seconds the condition must hold (`for`, or `--window`); 0: at once.
    window: u64,
    /// Without Prometheus: since when (epoch) every evaluation failed.
    failing_since: Option<f64>,
    status: Status,
    held: f64,
    message: String,
    results: Vec<CheckResult>,
    /// With Prometheus: the query's value now (an instant query), for the status line.
    value: Option<f64>,
    /// When an evaluation last decided this criterion (pass or fail); the start of the watch
    /// before the first.
    decided_at: f64,
    /// The longest time since the last checkpoint this criterion went undecided (error or
    /// no-data), its status then and why: a rollback could have held unseen that long.
    undecided: Option<(f64, Status, String)>,
}

impl Criterion {
    fn threshold(&self) -> String {
        self.check
            .validations
            .iter()
            .map(|v| v.expression.source.clone())
            .collect::<Vec<_>>()
            .join(" && ")
    }
}

/// Everything fixed at the start of the watch.
#[allow(clippy::struct_excessive_bools)] // independent facts about the sources and the output
struct Plan {
    base: CheckArgs,
    interval: Duration,
    checkpoints: Vec<(String, u64)>,
    since: f64,
    since_source: String,
    until: f64,
    /// The rollout time read from the cluster is so old the watch would end at once: why.
    stale: Option<String>,
    /// Rollback criteria not watched at all (Kubernetes ones without a cluster): said at every
    /// checkpoint, since a checkpoint passes without them.
    unwatched: Vec<String>,
    prometheus: bool,
    cluster: bool,
    observe: Duration,
    post_ids: Vec<String>,
    /// check id -> the window a metrics check with a `for` is evaluated over (after --window).
    windows: BTreeMap<String, u64>,
    /// check id -> its PromQL (parsed at load), to name the series that never came and to see
    /// how far back it reads.
    queries: BTreeMap<String, Query>,
    output_dir: PathBuf,
    jsonl: bool,
    /// stdout is a terminal: the status block is redrawn in place.
    redraw: bool,
}

/// What the binary prints with: every line passes its redaction layer.
pub type Printer<'a> = &'a mut dyn FnMut(&str);

/// Runs the watch; returns the exit code (0, 1, 3 or 4).
pub fn run(args: &WatchArgs, print: Printer<'_>, terminal: bool) -> Result<u8, UsageError> {
    let c = &args.check;
    if !c.manifests.is_empty() || !c.kustomize.is_empty() || c.helm_chart.is_some() {
        return Err(UsageError::Invalid(
            "watch observes a running release: give a cluster, --endpoint or --prometheus, not manifests".into(),
        ));
    }
    let cluster = !c.no_cluster;
    let interval = Duration::from_secs(schedule("--interval", &args.interval)?.max(1));
    let mut checkpoints = Vec::new();
    for cp in &args.checkpoints {
        checkpoints.push((cp.trim().to_string(), schedule("--checkpoints", cp)?));
    }
    checkpoints.sort_by_key(|(_, s)| *s);
    let window_override = c
        .window
        .as_deref()
        .map(|w| duration("--window", w))
        .transpose()?;
    let observe = match &c.observe {
        Some(o) => Duration::from_secs(duration("--observe", o)?),
        None => interval,
    }
    .max(MIN_OBSERVE);
    let all = checks::load_with(&c.checks, c.override_builtin)?;
    for id in c.only.iter().chain(&c.skip) {
        if !all.iter().any(|k| &k.id == id) {
            return Err(UsageError::Invalid(format!(
                "unknown check id {id:?} (see `mlsdm-audit list-checks`)"
            )));
        }
    }
    let selected =
        |k: &Check| (c.only.is_empty() || c.only.contains(&k.id)) && !c.skip.contains(&k.id);
    let post_ids: Vec<String> = all
        .iter()
        .filter(|k| {
            (k.section.starts_with(POST_DEPLOYMENT_SECTION) || k.section == ROLLBACK_SECTION)
                && selected(k)
        })
        .map(|k| k.id.clone())
        .collect();
    let queries: BTreeMap<String, Query> = all
        .iter()
        .filter_map(|k| k.metrics().map(|m| (k.id.clone(), m.query.clone())))
        .collect();
    let windows: BTreeMap<String, u64> = all
        .iter()
        .filter_map(|k| {
            let asked = k.metrics()?.window.as_ref()?.secs();
            Some((k.id.clone(), window_override.unwrap_or(asked)))
        })
        .collect();
    let unwatched: Vec<String> = if cluster {
        Vec::new()
    } else {
        all.iter()
            .filter(|k| {
                k.section == ROLLBACK_SECTION && selected(k) && k.source() == Source::Kubernetes
            })
            .map(|k| k.id.clone())
            .collect()
    };
    let mut criteria: Vec<Criterion> = all
        .into_iter()
        .filter(|k| k.section == ROLLBACK_SECTION && selected(k))
        // A reviewer decides the manual ones ("data corruption detected"); the checkpoint
        // reports carry them for attestation.
        .filter(|k| k.source() != Source::Manual)
        // Without a cluster the Kubernetes criteria cannot be evaluated: said once, below.
        .filter(|k| cluster || k.source() != Source::Kubernetes)
        .map(|k| Criterion {
            window: window_override
                .or_else(|| k.metrics()?.window.as_ref().map(checks::Window::secs))
                .unwrap_or(0),
            check: k,
            failing_since: None,
            status: Status::NoData,
            held: 0.0,
            message: "not evaluated yet".into(),
            results: Vec::new(),
            value: None,
            decided_at: 0.0,
            undecided: None,
        })
        .collect();
    if criteria.is_empty() {
        return Err(UsageError::Invalid(format!(
            "no check of the {ROLLBACK_SECTION:?} section is selected (and evaluable from these sources): nothing to watch"
        )));
    }
    let start = now_epoch();
    for c in &mut criteria {
        c.decided_at = start;
    }
    let jsonl = match args.events {
        Some(EventFormat::Jsonl) => true,
        Some(EventFormat::Status) => false,
        None => !terminal,
    };
    let (since, since_source) = match &args.since {
        Some(s) => (
            future_since(parse_since(s, start)?, start)?,
            "--since".to_string(),
        ),
        None if cluster => rollout_time(c)?.unwrap_or((
            start,
            "the start of the watch (no MLSDM Deployment's rollout time could be read)".into(),
        )),
        None => (
            start,
            "the start of the watch (no cluster to read the rollout time from)".into(),
        ),
    };
    let until = match &args.until {
        Some(u) => since + schedule("--until", u)? as f64,
        None => since + checkpoints.last().map_or(0, |(_, s)| *s) as f64,
    };
    // A watch that ends before a criterion's window can be covered could never signal that
    // rollback: it would end in exit 1 or 3 where the release deserved exit 4.
    if let Some(longest) = criteria.iter().max_by_key(|c| c.window)
        && until - since < longest.window as f64
    {
        return Err(UsageError::Invalid(format!(
            "--until: the watch ends {}s after the rollout, before {}'s {}s window is covered: it could never signal that rollback (make --until or the last checkpoint at least {}s)",
            (until - since).max(0.0).round(),
            longest.check.id,
            longest.window,
            longest.window
        )));
    }
    let stale = if args.since.is_some() {
        None
    } else {
        stale_rollout(since, &since_source, until, start)
    };
    std::fs::create_dir_all(&args.output_dir).map_err(|e| {
        UsageError::Invalid(format!("--output-dir {}: {e}", args.output_dir.display()))
    })?;
    let plan = Plan {
        base: c.clone(),
        interval,
        checkpoints,
        since,
        since_source,
        until,
        stale,
        unwatched,
        prometheus: c.prometheus.is_some(),
        cluster,
        observe,
        post_ids,
        windows,
        queries,
        output_dir: args.output_dir.clone(),
        jsonl,
        redraw: terminal && std::env::var_os("NO_COLOR").is_none(),
    };
    let mut w = Watcher {
        plan,
        print,
        drawn: 0,
    };
    w.watch(&mut criteria)
}

struct Watcher<'a> {
    plan: Plan,
    print: Printer<'a>,
    /// Status lines drawn last time (redrawn in place on a terminal).
    drawn: usize,
}

impl Watcher<'_> {
    fn emit(&mut self, event: &Value) {
        if self.plan.jsonl {
            (self.print)(&format!("{event}\n"));
        }
    }

    fn say(&mut self, line: &str) {
        if !self.plan.jsonl {
            self.drawn = 0;
            (self.print)(&format!("{line}\n"));
        }
    }

    fn watch(&mut self, criteria: &mut [Criterion]) -> Result<u8, UsageError> {
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
            // The last tick evaluates the criteria first: the windows are covered only now, and a
            // rollback signal must win over the final checkpoint.
            if last && let Some(code) = self.evaluate(criteria, tick)? {
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
            if let Some(code) = self.evaluate(criteria, tick)? {
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
    fn args_for(&self, ids: Vec<String>, window: Option<u64>) -> CheckArgs {
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
    fn evaluate(
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
                (c.window > 0).then(|| c.window.min(since_rollout(tick, p.since)))
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
                        c.failing_since = None;
                        c.held = 0.0;
                        c.results.clear();
                        track_undecided(c, observed_to);
                    }
                }
                Ok(report) => {
                    let mut report = crate::redact::model(report);
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
                        track_undecided(c, observed_to);
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
        let report = merge(reports);
        let path = self.plan.output_dir.join("rollback.json");
        if let Some(rep) = &report {
            write_report(&path, rep)?;
        }
        let commands = undo_commands(criteria, report.as_ref());
        for &i in &fired {
            let c = &criteria[i];
            let evidence: Vec<Value> = c
                .results
                .iter()
                .filter(|r| r.status == Status::Fail)
                .map(|r| {
                    json!({
                        "message": r.message,
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
                "report": path.display().to_string(),
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
        for cmd in &commands {
            self.say(&format!("run: {cmd}"));
        }
        self.say(&format!(
            "the watch does not run it (read-only); report: {}",
            path.display()
        ));
        Ok(Some(EXIT_ROLLBACK))
    }

    fn next_checkpoint(&self, now: f64) -> Option<(String, f64)> {
        self.plan
            .checkpoints
            .iter()
            .map(|(l, s)| (l.clone(), self.plan.since + *s as f64 - now))
            .find(|(_, left)| *left > 0.0)
    }

    fn show(&mut self, criteria: &[Criterion], next: Option<(String, f64)>) {
        let time = rfc3339(now_epoch());
        if self.plan.jsonl {
            for c in criteria {
                let event = json!({
                    "event": "evaluation",
                    "time": time,
                    "check": c.check.id,
                    "status": c.status,
                    "message": c.message,
                    "threshold": c.threshold(),
                    "heldSeconds": c.held.round(),
                    "undecidedSeconds": c.undecided.as_ref().map_or(0.0, |(g, _, _)| g.round()),
                    "windowSeconds": c.window,
                    "value": c.value,
                    "objects": c.results.iter().filter_map(|r| r.object.as_ref().map(ToString::to_string)).collect::<Vec<_>>(),
                    "nextCheckpoint": next.as_ref().map(|(l, _)| l),
                    "nextCheckpointInSeconds": next.as_ref().map(|(_, s)| s.round()),
                });
                (self.print)(&format!("{event}\n"));
            }
            return;
        }
        let mut lines: Vec<String> = criteria
            .iter()
            .map(|c| {
                format!(
                    "{:<8} {:<30} {}held {:>5.0}s/{}s  threshold {}  {}",
                    c.status.to_string(),
                    c.check.id,
                    c.value
                        .map_or_else(String::new, |v| format!("value {v:.4}  ")),
                    c.held,
                    c.window,
                    c.threshold(),
                    first_line(&c.message)
                )
            })
            .collect();
        lines.push(match next {
            Some((l, s)) => format!("{time}  next checkpoint {l} in {s:.0}s"),
            None => format!("{time}  no checkpoint left"),
        });
        // On a terminal the block is redrawn in place: one live line per criterion.
        let mut text = String::new();
        if self.drawn > 0 && self.plan.redraw {
            let _ = write!(text, "\x1b[{}F\x1b[J", self.drawn);
        }
        for l in &lines {
            text.push_str(l);
            text.push('\n');
        }
        (self.print)(&text);
        self.drawn = lines.len();
    }

    /// Writes the report of the post-deployment section (and the rollback criteria) to `file`.
    /// `Ok(code)`: the report's exit code; `Err(3)`: a rollback criterion had no data or an
    /// error, so the checkpoint is not passed and the watch ends.
    /// A post-deployment check that passed on samples from before the rollout has not been
    /// decided about this release: its query reads back further (its window plus its longest
    /// range selector, `deriv(x[30m])`) than the rollout is old, so the previous version's samples
    /// may have passed it. Such a pass becomes no-data saying so; a failure stays a failure (it
    /// failed even diluted by the old samples).
    fn not_before_the_rollout(&self, report: &mut crate::report::Report, since_rollout: u64) {
        for r in report.results.iter_mut().filter(|r| {
            r.status == Status::Pass
                && r.source == Source::Metrics
                && r.section.starts_with(POST_DEPLOYMENT_SECTION)
        }) {
            let Some(query) = self.plan.queries.get(&r.id) else {
                continue;
            };
            let window = self
                .plan
                .windows
                .get(&r.id)
                .map_or(0, |w| (*w).min(since_rollout));
            if let Some(reach) = reaches_before_rollout(query.expr(), window, since_rollout) {
                r.status = Status::NoData;
                r.message = format!(
                    "not decided yet: the query reads {reach}s back (its window and range), and the rollout was {since_rollout}s ago, so the previous version's samples could pass it"
                );
            }
        }
        report.summary = crate::report::Summary::of(&report.results);
    }

    fn checkpoint(
        &mut self,
        label: &str,
        file: &str,
        criteria: &mut [Criterion],
    ) -> Result<Result<u8, u8>, UsageError> {
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
                Ok(r) => reports.push(crate::redact::model(r)),
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
                .get(&r.id)
                .map(|q| promql::metric_names(q.expr()))
                .unwrap_or_default();
            undecided.push(json!({
                "check": r.id,
                "status": r.status,
                "message": r.message,
                "series": series,
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

fn not_watched(ids: &[String]) -> String {
    format!(
        "rollback criteria not watched (no cluster), so this checkpoint passes without them: {}",
        ids.join(", ")
    )
}

/// After an evaluation ending at `at`: a decided criterion moves its `decided_at`; an undecided
/// one keeps the longest stretch since it was last decided.
fn track_undecided(c: &mut Criterion, at: f64) {
    if matches!(c.status, Status::Error | Status::NoData) {
        let gap = at - c.decided_at;
        if c.undecided.as_ref().is_none_or(|(g, _, _)| gap > *g) {
            c.undecided = Some((gap, c.status, c.message.clone()));
        }
    } else {
        c.decided_at = at;
    }
}

/// Whole seconds from the rollout to `now`, at least 1.
#[allow(clippy::cast_possible_truncation, clippy::cast_sign_loss)] // max(1.0): positive
fn since_rollout(now: f64, since: f64) -> u64 {
    (now - since).max(1.0) as u64
}

fn first_line(s: &str) -> &str {
    s.lines().next().unwrap_or_default()
}

fn sanitize(label: &str) -> String {
    label
        .chars()
        .map(|c| if c.is_ascii_alphanumeric() { c } else { '-' })
        .collect()
}

/// 1 (a failure) outranks 3 (an error), which outranks 0, as in `check`'s exit code.
fn combine(a: u8, b: u8) -> u8 {
    if a == 1 || b == 1 { 1 } else { a.max(b) }
}

/// Each metrics criterion's value now, by an instant query to --prometheus (with `check`'s
/// TLS options). Only for display: a query that fails leaves the value out, never decides.
fn current_values(args: &CheckArgs, criteria: &[Criterion]) -> BTreeMap<String, f64> {
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
        let Some(query) = c.check.metrics().map(|m| m.query.text()) else {
            continue;
        };
        let Ok(mut url) = reqwest::Url::parse(&format!("{base}/api/v1/query")) else {
            continue;
        };
        url.query_pairs_mut().append_pair("query", query);
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

/// One report of several runs (one per window) of the same evaluation.
fn merge(reports: Vec<Report>) -> Option<Report> {
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

/// Folds one run's results for a criterion into its state.
fn update(
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
        |r| r.message.clone(),
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
    c.held = match (c.status, c.check.source()) {
        (Status::Fail, Source::Metrics) if plan.prometheus => {
            // The range query covered min(window, time since the rollout): a fail there held that
            // long, and counts as a rollback only when that is the whole window.
            window.unwrap_or(0) as f64
        }
        // Scrapes without Prometheus, and the cluster's state (readiness, OOM kills): this
        // watch counts how long it has seen the criterion fail. A criterion with no window (no
        // `for`, no --window) signals at once; with --window a not-ready majority must last
        // that long (a rollout still starting pods is not a rollback).
        (Status::Fail, _) => scrape_held(&mut c.failing_since, observed_to),
        _ => {
            c.failing_since = None;
            0.0
        }
    };
    if c.status != Status::Fail {
        c.failing_since = None;
    }
    c.results = results;
}

/// A waiver (file or annotation) accepts a known gap in a static audit; it never silences a
/// rollback criterion, which is about this release misbehaving now. The result keeps its
/// outcome and says the waiver was not applied.
fn unwaive(mut r: CheckResult) -> CheckResult {
    if r.status == Status::Waived
        && let Some(outcome) = r.outcome.take()
    {
        r.status = outcome;
        if let Some(w) = r.waiver.take() {
            let _ = write!(
                r.message,
                " (waived by {}, but a waiver does not hold back a rollback signal)",
                w.origin
            );
        }
    }
    r
}

/// How long a condition counted by this watch has held. A run sees it at its end (`observed_to`),
/// so it has held since the end of the first failing run, not its start: counting from the
/// start overstated it by one observe period and could roll back early.
fn scrape_held(failing_since: &mut Option<f64>, observed_to: f64) -> f64 {
    observed_to - *failing_since.get_or_insert(observed_to)
}

/// `kubectl rollout undo` for each MLSDM Deployment the criteria's results name, or the
/// placeholder form when the watch has no cluster to name it from.
fn undo_commands(criteria: &[Criterion], report: Option<&Report>) -> Vec<String> {
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

fn write_report(path: &std::path::Path, report: &Report) -> Result<(), UsageError> {
    let text = report::render(report, report::Format::Json, false);
    std::fs::write(path, crate::redact::text(&text).as_bytes())
        .map_err(|e| UsageError::Invalid(format!("cannot write {}: {e}", path.display())))
}

/// The MLSDM Deployment's rollout time: its current ReplicaSet's creation, else the time its
/// Progressing condition last changed, else its creation.
fn rollout_time(args: &CheckArgs) -> Result<Option<(f64, String)>, UsageError> {
    let mut a = args.clone();
    a.only = vec!["rollback-pods-failing-health".into()];
    a.skip = Vec::new();
    a.endpoints = Vec::new();
    a.prometheus = None;
    a.format = None;
    a.output = None;
    let report = match crate::run_check(&a) {
        Ok(r) => r,
        Err(e) if e.exit_code() == 2 => return Err(e),
        Err(e) => return Err(e),
    };
    let mut deployments: Vec<(String, String)> = report
        .results
        .iter()
        .filter_map(|r| {
            r.object
                .as_ref()
                .filter(|o| o.kind == "Deployment")
                .map(|o| {
                    (
                        o.namespace.clone().unwrap_or_else(|| "default".into()),
                        o.name.clone(),
                    )
                })
        })
        .collect();
    deployments.sort();
    deployments.dedup();
    // Whose rollout is "the" rollout is not decidable among several: the first one's could be
    // days old and end the watch at once.
    if deployments.len() > 1 {
        return Err(UsageError::Invalid(format!(
            "{} MLSDM Deployments match ({}): narrow to one with --selector or --namespace, or give --since",
            deployments.len(),
            deployments
                .iter()
                .map(|(ns, n)| format!("{ns}/{n}"))
                .collect::<Vec<_>>()
                .join(", ")
        )));
    }
    let Some((ns, name)) = deployments.into_iter().next() else {
        return Ok(None);
    };
    let opts = crate::cluster_options(args)?;
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .map_err(|e| UsageError::Invalid(format!("cannot start the async runtime: {e}")))?;
    rt.block_on(async {
        let (api, _, _) = crate::sources::kube::connect(&opts).await.map_err(|e| match e {
            crate::sources::kube::ConnectError::Config(m) => UsageError::Invalid(m),
            crate::sources::kube::ConnectError::Cluster(c) => UsageError::Unreachable(c),
        })?;
        let get = |path: String| {
            let api = api.clone();
            async move {
                let answer = api
                    .get(&path, "application/json")
                    .await
                    .map_err(UsageError::Unreachable)?;
                if !answer.status.is_success() {
                    return Ok(Value::Null);
                }
                Ok::<Value, UsageError>(serde_json::from_slice(&answer.body).unwrap_or(Value::Null))
            }
        };
        let d = get(format!("/apis/apps/v1/namespaces/{ns}/deployments/{name}")).await?;
        let ts = |v: &Value| {
            v.as_str()
                .and_then(|s| chrono::DateTime::parse_from_rfc3339(s).ok())
                .map(|t| t.timestamp() as f64)
        };
        let uid = d["metadata"]["uid"].as_str().unwrap_or_default().to_string();
        let revision = d["metadata"]["annotations"]["deployment.kubernetes.io/revision"].clone();
        let rs = get(format!("/apis/apps/v1/namespaces/{ns}/replicasets")).await?;
        let newest = rs["items"]
            .as_array()
            .into_iter()
            .flatten()
            .filter(|r| {
                r["metadata"]["ownerReferences"]
                    .as_array()
                    .is_some_and(|o| o.iter().any(|o| o["uid"].as_str() == Some(uid.as_str())))
                    && (revision.is_null()
                        || r["metadata"]["annotations"]["deployment.kubernetes.io/revision"]
                            == revision)
            })
            .filter_map(|r| ts(&r["metadata"]["creationTimestamp"]))
            .fold(None, |m: Option<f64>, t| Some(m.map_or(t, |m| m.max(t))));
        if let Some(t) = newest {
            return Ok(Some((t, format!("the creation of Deployment {ns}/{name}'s current ReplicaSet"))));
        }
        let progressing = d["status"]["conditions"]
            .as_array()
            .into_iter()
            .flatten()
            .find(|c| c["type"] == "Progressing")
            .and_then(|c| ts(&c["lastUpdateTime"]));
        if let Some(t) = progressing {
            return Ok(Some((t, format!("Deployment {ns}/{name}'s Progressing condition"))));
        }
        Ok(ts(&d["metadata"]["creationTimestamp"])
            .map(|t| (t, format!("the creation of Deployment {ns}/{name} (no ReplicaSet or Progressing condition)"))))
    })
}

/// How far back `query` over `window` seconds reads, when that is before the rollout
/// (`since_rollout` seconds ago); `None` when every sample it reads is this release's.
fn reaches_before_rollout(query: &Expr, window: u64, since_rollout: u64) -> Option<u64> {
    let lookback = promql::lookback(query).as_secs();
    let reach = window + lookback;
    (reach > since_rollout).then_some(reach)
}

#[cfg(test)]
mod tests {
    /// Review finding F2: a checkpoint's pass was made of the previous version's samples when
    /// the query's range reached before the rollout (memory-stable's deriv over 30 minutes at
    /// a 15-minute checkpoint).
    #[test]
    fn a_query_reaching_before_the_rollout_decides_nothing_yet() {
        let reach = |query: &str, window, since| {
            let q = super::Query::parse(query).unwrap();
            super::reaches_before_rollout(q.expr(), window, since)
        };
        let memory = "max(deriv(container_memory_working_set_bytes{container=~\"mlsdm-api|neuro-engine\"}[30m]))";
        assert_eq!(reach(memory, 0, 15 * 60), Some(1800));
        assert_eq!(reach(memory, 0, 3600), None);
        let errors = "sum(rate(mlsdm_http_requests_total{status=~\"5..\"}[5m])) / sum(rate(mlsdm_http_requests_total[5m]))";
        assert_eq!(reach(errors, 300, 480), Some(600));
        assert_eq!(reach(errors, 300, 3600), None);
        assert_eq!(reach("up", 0, 1), None);
    }

    use super::*;

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

    #[test]
    fn a_condition_holds_from_the_end_of_its_first_failing_run() {
        let mut since = None;
        // First failing run observed 100..103: seen at 103, held 0 s so far.
        assert!(scrape_held(&mut since, 103.0).abs() < 1e-9);
        // Next failing run ends at 106: held 3 s, not 6.
        assert!((scrape_held(&mut since, 106.0) - 3.0).abs() < 1e-9);
    }

    #[test]
    fn a_future_since_is_refused() {
        assert!(future_since(2000.0, 1000.0).is_err());
        assert!(future_since(900.0, 1000.0).is_ok());
    }

    #[test]
    fn a_rollout_older_than_the_watch_is_stale() {
        // Rolled out a day ago, last checkpoint 1h: the watch would end at its first tick.
        let why = stale_rollout(
            0.0,
            "the creation of Deployment a/b's current ReplicaSet",
            3600.0,
            86_400.0,
        )
        .expect("stale");
        assert!(why.contains("--since"), "{why}");
        assert!(stale_rollout(86_000.0, "x", 86_000.0 + 3600.0, 86_400.0).is_none());
    }

    #[test]
    fn schedule_durations_beyond_30_days_are_refused_naming_the_flag() {
        let e = schedule("--interval", "18446744073709551615s").unwrap_err();
        assert!(e.to_string().contains("--interval"), "{e}");
        assert!(schedule("--until", "30d").is_ok());
        assert!(schedule("--until", "31d").is_err());
    }

    #[test]
    fn since_takes_a_time_or_a_duration_ago() {
        assert!((parse_since("2026-11-29T05:00:00Z", 0.0).unwrap() - 1_795_928_400.0).abs() < 1e-9);
        assert!((parse_since("10m", 1000.0).unwrap() - 400.0).abs() < 1e-9);
        assert!(parse_since("yesterday", 0.0).is_err());
    }
}
