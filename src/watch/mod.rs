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
//!
//! Here: the plan fixed at the start (`run`) and the state it keeps. `schedule` (flags, times,
//! `--since`), `rollout` (the rollout time from the cluster), `evaluate` (the loop, one
//! evaluation of the criteria, the rollback signal), `criteria` (a criterion's state folded from
//! each run), `checkpoint` (the post-deployment reports), `render` (events and the status block).

mod checkpoint;
mod criteria;
mod evaluate;
mod render;
mod rollout;
mod schedule;

use crate::UsageError;
use crate::checks::{self, Check, Source};
use crate::cli::CheckArgs;
pub use crate::cli::{EventFormat, WatchArgs};
use crate::promql::Query;
use crate::report::{CheckResult, Status};
use schedule::{duration, future_since, now_epoch, parse_since, schedule, stale_rollout};
use std::collections::BTreeMap;
use std::path::PathBuf;
use std::time::Duration;

pub const ROLLBACK_SECTION: &str = "Rollback Criteria";
pub const POST_DEPLOYMENT_SECTION: &str = "Post-Deployment Monitoring";
/// The exit code of a rollback signal (documented in the CLI's EXIT_CODES).
pub const EXIT_ROLLBACK: u8 = 4;
/// Without Prometheus an evaluation scrapes for at least this long: a rate needs two scrapes.
const MIN_OBSERVE: Duration = Duration::from_secs(3);
/// The check a checkpoint adds to its sections when it reads a cluster: a rollout that stalled
/// (new pods Pending, ProgressDeadlineExceeded) or was paused keeps the old pods ready and their
/// metrics healthy, and its checkpoints had passed though the release never served.
const ROLLOUT_COMPLETE: &str = "rollout-complete";
/// `--checkpoints` when none is given: the seed's post-deployment hours.
const DEFAULT_CHECKPOINTS: &[&str] = &["1h", "4h", "24h"];

/// One rollback criterion's state between evaluations.
struct Criterion {
    check: Check,
    /// Seconds the condition must hold (`for`, or `--window`); 0: at once.
    window: u64,
    /// Without Prometheus: since when (epoch) the criterion has failed, with no passing
    /// evaluation since (undecided ones neither stop nor restart the count).
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
    /// The last evaluation left it undecided (its status and why): the stretch goes on until
    /// a decided one.
    undecided_open: Option<(Status, String)>,
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
    /// The Deployment's rollout `since` was read from: each checkpoint reads it again, and
    /// another one (rolled back, rolled out again) ends the watch undecided.
    rollout: Option<rollout::Identity>,
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
    // The default schedule, unless one is given; the default's checkpoints after --until are
    // dropped below, a given one after it is refused.
    let defaulted = args.checkpoints.is_empty();
    let asked: Vec<&str> = if defaulted {
        DEFAULT_CHECKPOINTS.to_vec()
    } else {
        args.checkpoints.iter().map(String::as_str).collect()
    };
    for cp in asked {
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
            (k.section.starts_with(POST_DEPLOYMENT_SECTION)
                || k.section == ROLLBACK_SECTION
                || (cluster && k.id == ROLLOUT_COMPLETE))
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
            // --window shortens a window, never lengthens it (as `check` reads it:
            // sources/metrics.rs `window_of`).
            Some((
                k.id.clone(),
                window_override.map_or(asked, |w| w.min(asked)),
            ))
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
            // A metrics criterion's window is its `for`, shortened by --window (never
            // lengthened: `check` evaluates at most the `for`, and a longer window here counted
            // a five-minute burst as an hour held). A Kubernetes criterion has none: --window
            // asks it to last that long.
            window: match k.metrics().and_then(|m| m.window.as_ref()) {
                Some(asked) => window_override.map_or(asked.secs(), |w| w.min(asked.secs())),
                None => window_override.unwrap_or(0),
            },
            check: k,
            failing_since: None,
            status: Status::NoData,
            held: 0.0,
            message: "not evaluated yet".into(),
            results: Vec::new(),
            value: None,
            decided_at: 0.0,
            undecided: None,
            undecided_open: None,
        })
        .collect();
    if criteria.is_empty() {
        return Err(UsageError::Invalid(format!(
            "no check of the {ROLLBACK_SECTION:?} section is selected (and evaluable from these sources): nothing to watch"
        )));
    }
    // Without Prometheus nothing is scraped between one run's observation and the next: a gap
    // as long as a criterion's window lets a failure hold that whole window unseen (an 83 %
    // error rate for 26 s of every 40 s passed every run of `--interval 40s --observe 3s`).
    if c.prometheus.is_none()
        && let Some(shortest) = criteria
            .iter()
            .filter(|k| k.window > 0 && k.check.source() == Source::Metrics)
            .min_by_key(|k| k.window)
    {
        let gap = interval.saturating_sub(observe).as_secs();
        if gap >= shortest.window {
            return Err(UsageError::Invalid(format!(
                "--observe {}s leaves {gap}s of every --interval {}s unscraped, as long as the window of {} ({}s): a failure could hold its whole window unseen; give --observe of at least {}s, leave it out (it defaults to --interval), or watch through --prometheus",
                observe.as_secs(),
                interval.as_secs(),
                shortest.check.id,
                shortest.window,
                interval.as_secs() - shortest.window + 1
            )));
        }
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
    let mut followed = None;
    let (since, since_source) = match &args.since {
        Some(s) => (
            future_since(parse_since(s, start)?, start)?,
            "--since".to_string(),
        ),
        None if cluster => match rollout::rollout(c)? {
            Some(read) => {
                followed = Some(read.identity);
                (read.time, read.source)
            }
            None => (
                start,
                "the start of the watch (no MLSDM Deployment's rollout time could be read)".into(),
            ),
        },
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
    // rollback: it would end in exit 1 or 3 where the release deserved exit 4. Prometheus
    // covers the window from the rollout; without it, the time a criterion held is counted by
    // this watch from its own start, so a watch started late (or restarted) covers less.
    let covered_from = if c.prometheus.is_some() {
        since
    } else {
        since.max(start)
    };
    if let Some(longest) = criteria.iter().max_by_key(|c| c.window)
        && until - covered_from < longest.window as f64
    {
        let (from, how) = if covered_from > since {
            (
                "it starts",
                "without --prometheus this watch counts a criterion's window from its own start",
            )
        } else {
            ("the rollout", "the watch cannot count past its end")
        };
        return Err(UsageError::Invalid(format!(
            "--until: the watch ends {}s after {from}, before {}'s {}s window is covered ({how}): it could never signal that rollback (make --until or the last checkpoint at least {}s after that)",
            (until - covered_from).max(0.0).round(),
            longest.check.id,
            longest.window,
            longest.window
        )));
    }
    // A checkpoint after the end is never written: a given one is refused (the watch had ended
    // in exit 0 without a word about it), the default's are left out (the start event lists
    // the schedule).
    let late: Vec<&str> = checkpoints
        .iter()
        .filter(|(_, at)| since + *at as f64 > until + 1.0)
        .map(|(label, _)| label.as_str())
        .collect();
    if !late.is_empty() && !defaulted {
        return Err(UsageError::Invalid(format!(
            "--checkpoints {}: after --until, so never written (make --until at least the last checkpoint, or leave those out)",
            late.join(",")
        )));
    }
    let checkpoints: Vec<(String, u64)> = checkpoints
        .into_iter()
        .filter(|(_, at)| since + *at as f64 <= until + 1.0)
        .collect();
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
        rollout: followed,
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
