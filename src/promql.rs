//! A PromQL evaluator for the subset the metric checks use, over samples the tool scraped itself
//! from MLSDM's `/health/metrics`, for runs without a Prometheus server. Queries are parsed with
//! `promql-parser`; evaluation follows Prometheus' semantics (lookback, extrapolated `rate`,
//! `histogram_quantile` interpolation, label matching), so the same check gives the same answer
//! either way (a differential test holds us to it).
//!
//! Supported: selectors with label matchers, `rate`/`irate`/`increase`/`deriv` over ranges,
//! `sum`/`avg`/`min`/`max`/`count` with `by`/`without`, `histogram_quantile`, arithmetic and
//! comparison operators (with `bool`), numbers and parentheses. Syntax is checked when the checks
//! load; the subset only when a run will evaluate metrics without `--prometheus` (with
//! `--endpoint` or a cluster): such a run stops before sending anything (exit 2,
//! `reject_unsupported_queries` in src/plan.rs), with a pointer to `--prometheus`.
//!
//! One file (about 760 lines of code, then tests against values Prometheus computes): the
//! evaluator is one recursive `eval` whose arms (selectors, range functions, aggregation, binary
//! matching) share the store, the lookback and the label rules; split, each part would import
//! all of them back.

// Prometheus compares sample values exactly and casts timestamps; so does this port of it.
#![allow(
    clippy::float_cmp,
    clippy::cast_possible_truncation,
    clippy::cast_sign_loss,
    clippy::similar_names
)]

use promql_parser::label::MatchOp;
use promql_parser::parser::{
    self, AggregateExpr, BinaryExpr, Call, Expr, LabelModifier, MatrixSelector, VectorSelector,
};
use std::collections::{BTreeMap, BTreeSet};

pub type Labels = BTreeMap<String, String>;

/// How far from the scrape a sample's own timestamp may be (clocks differ).
const SAMPLE_TIME_SKEW_SECONDS: i64 = 60;

/// Prometheus' default lookback for instant selectors.
const LOOKBACK_SECONDS: f64 = 300.0;

/// One scraped series.
#[derive(Debug, Clone, PartialEq)]
pub struct Series {
    /// Includes `__name__`.
    pub labels: Labels,
    /// (time in seconds, value), ascending.
    pub samples: Vec<(f64, f64)>,
}

/// Everything scraped: series and the metric names the targets declared (with or without samples).
#[derive(Debug, Clone, Default)]
pub struct Store {
    pub series: Vec<Series>,
    pub declared: BTreeSet<String>,
    /// Labels -> position in `series`: adding a sample is a lookup, not a scan (a 44,000-series
    /// page was quadratic to ingest).
    index: std::collections::HashMap<Labels, usize>,
    /// Per instance, each scrape's time and the earliest `*_created` sample of its page: when
    /// the process that answered created its counters (see [`Store::mixed_processes`]).
    processes: BTreeMap<String, Vec<(f64, f64)>>,
    /// The instances that answered a page without any `*_created` sample: one process exports
    /// them on every page or on none.
    uncreated: BTreeSet<String>,
    /// Series names that only go up (a counter's, a histogram's or summary's `_count`,
    /// `_bucket`, `_sum`), from the pages' `# TYPE` lines: a gauge named `*_total` is no counter.
    monotonic: BTreeSet<String>,
    /// Per instance, when its last page was read: a counter series a later page of it brings
    /// counted from zero since then (see [`Store::add_scrape`]).
    last_scrape: std::collections::HashMap<String, f64>,
}

impl Store {
    /// Adds one scrape of Prometheus text exposition from `instance` at time `t`. A page with
    /// a line that is neither a sample, a comment nor blank is refused whole, as Prometheus
    /// fails such a scrape: prometheus-parse skips what it cannot read, so an HTML page (a
    /// login page, a proxy's error) answered with 200 read as a target with no series, and its
    /// checks as no-data instead of an error.
    pub fn add_scrape(&mut self, instance: &str, t: f64, text: &str) -> Result<(), String> {
        if let Some((n, line)) = text
            .lines()
            .enumerate()
            .find(|(_, line)| !is_exposition_line(line))
        {
            // A short line is shown whole and unescaped, so that the output pass still finds a
            // secret in it; a long one is not shown (cut or escaped, a secret was printed past
            // that pass: review finding). Control characters are not a terminal's to read.
            let line = line.trim();
            let length = line.chars().count();
            let shown = if length <= 60 {
                let plain: String = line
                    .chars()
                    .map(|c| if c.is_control() { '?' } else { c })
                    .collect();
                format!("`{plain}`")
            } else {
                format!("a line of {length} characters")
            };
            return Err(format!(
                "line {}: {shown} is not a sample, a comment or blank (as prometheus-parse reads them)",
                n + 1
            ));
        }
        let scrape = prometheus_parse::Scrape::parse(text.lines().map(|l| Ok(l.to_string())))
            .map_err(|e| e.to_string())?;
        // Every sample line must come out as a value: prometheus-parse drops, without a word, a
        // labelled line of a name typed summary without `quantile` or typed histogram without
        // `le` (a second `# TYPE` line mid-page makes a counter's 500 series one), and the rates
        // then read the rest as all there is.
        let lines = text
            .lines()
            .filter(|l| {
                matches!(
                    prometheus_parse::LineInfo::parse(l),
                    prometheus_parse::LineInfo::Sample { .. }
                )
            })
            .count();
        let values: usize = scrape
            .samples
            .iter()
            .map(|s| match &s.value {
                prometheus_parse::Value::Histogram(b) => b.len(),
                prometheus_parse::Value::Summary(q) => q.len(),
                _ => 1,
            })
            .sum();
        if values != lines {
            return Err(format!(
                "{} of the page's {lines} sample lines could not be read as the `# TYPE` lines before them say (a summary's sample without `quantile`, a histogram's without `le`, or a name typed twice): Prometheus reads them, so the page is refused rather than read without them",
                lines.saturating_sub(values)
            ));
        }
        // An empty page (a stub answering 200 with nothing) or one of comments only is no
        // exporter's: read as a target with no series, it let the other endpoints' data decide
        // for it.
        if scrape.samples.is_empty() {
            return Err("the page has no sample (it is empty, or comments only)".into());
        }
        for name in scrape.docs.keys() {
            self.declare(name);
        }
        // TYPE lines without HELP still declare a family.
        for line in text.lines() {
            if let Some(rest) = line.strip_prefix("# TYPE ")
                && let Some(name) = rest.split_whitespace().next()
            {
                self.declare(name);
                match rest.split_whitespace().nth(1) {
                    Some("counter") => {
                        self.monotonic.insert(name.to_string());
                        self.monotonic.insert(format!("{name}_total"));
                    }
                    Some("histogram" | "summary") => {
                        for suffix in ["_count", "_bucket"] {
                            self.monotonic.insert(format!("{name}{suffix}"));
                        }
                    }
                    _ => {}
                }
            }
        }
        // A counter or bucket that is not a number is no count: refused, as it was dropped
        // from a rate before (and `or vector(0)` then made a 50 % error rate 0). A counter by its
        // family's TYPE (OpenMetrics names the family without `_total`, and prometheus-parse
        // then types the sample otherwise) or by its name, whatever TYPE says of it (a review
        // found both dropped).
        let counted = |name: &str| self.counts(name);
        if let Some(s) = scrape.samples.iter().find(|s| match &s.value {
            prometheus_parse::Value::Counter(v) => !v.is_finite(),
            prometheus_parse::Value::Gauge(v) | prometheus_parse::Value::Untyped(v) => {
                !v.is_finite() && counted(&s.metric)
            }
            prometheus_parse::Value::Histogram(b) => b.iter().any(|b| !b.count.is_finite()),
            prometheus_parse::Value::Summary(_) => false,
        }) {
            return Err(format!(
                "the counter {} is not a number (NaN or an infinity)",
                s.metric
            ));
        }
        let created = scrape
            .samples
            .iter()
            .filter(|s| s.metric.ends_with("_created"))
            .filter_map(|s| match s.value {
                prometheus_parse::Value::Gauge(v)
                | prometheus_parse::Value::Untyped(v)
                | prometheus_parse::Value::Counter(v) => Some(v),
                _ => None,
            })
            .filter(|v| v.is_finite())
            .reduce(f64::min);
        if let Some(created) = created {
            self.processes
                .entry(instance.to_string())
                .or_default()
                .push((t, created));
        } else {
            self.uncreated.insert(instance.to_string());
        }
        // A sample with its own timestamp is as old as it says (Prometheus honours it): two
        // hours old, it is not now's, and a future one is no measurement. prometheus-parse
        // gives a sample without one the time of parsing.
        let now = chrono::Utc::now();
        if let Some(s) = scrape
            .samples
            .iter()
            .find(|s| (s.timestamp - now).num_seconds().abs() > SAMPLE_TIME_SKEW_SECONDS)
        {
            return Err(format!(
                "the sample {} is timestamped {}, not at the scrape: stale or from the future, so not read as now",
                s.metric,
                s.timestamp.to_rfc3339()
            ));
        }
        // A counter series that was not on this instance's previous page was zero then: client
        // libraries create a labelled series on its first increment (prometheus_client's
        // `labels(status="500").inc()`), so the 5xx series of a release that starts failing
        // appears mid-observation. Read from its first value only, its errors were no increase
        // at all, and `or vector(0)` made the error rate 0 (review 32b). A zero at the previous
        // page's time counts them; Prometheus cannot, as it does not know the series was absent.
        let previous = self.last_scrape.insert(instance.to_string(), t);
        let mut fresh: Vec<Labels> = Vec::new();
        for s in scrape.samples {
            // Names as the line check read them (trimmed): prometheus-parse keeps the blank
            // after a comma (`{a="1", status="500"}`), and `status=~"5.."` then matched none.
            let mut base: Labels = s
                .labels
                .iter()
                .map(|(k, v)| (k.trim().to_string(), v.clone()))
                .collect();
            base.insert("instance".into(), instance.into());
            base.insert("job".into(), "mlsdm-audit".into());
            match &s.value {
                prometheus_parse::Value::Counter(v)
                | prometheus_parse::Value::Gauge(v)
                | prometheus_parse::Value::Untyped(v) => {
                    let mut l = base.clone();
                    l.insert("__name__".into(), s.metric.clone());
                    if previous.is_some() && self.counts(&s.metric) && !self.index.contains_key(&l)
                    {
                        fresh.push(l.clone());
                    }
                    self.push(l, t, *v)?;
                }
                prometheus_parse::Value::Histogram(buckets) => {
                    for b in buckets {
                        let mut l = base.clone();
                        l.insert("__name__".into(), format!("{}_bucket", s.metric));
                        l.insert("le".into(), format_le(b.less_than));
                        if previous.is_some() && !self.index.contains_key(&l) {
                            fresh.push(l.clone());
                        }
                        self.push(l, t, b.count)?;
                    }
                }
                prometheus_parse::Value::Summary(qs) => {
                    for q in qs {
                        let mut l = base.clone();
                        l.insert("__name__".into(), s.metric.clone());
                        l.insert("quantile".into(), q.quantile.to_string());
                        self.push(l, t, q.count)?;
                    }
                }
            }
        }
        if let Some(before) = previous.filter(|&p| p < t) {
            for labels in fresh {
                if let Some(&i) = self.index.get(&labels) {
                    self.series[i].samples.insert(0, (before, 0.0));
                }
            }
        }
        Ok(())
    }

    /// Whether a series of this name only goes up: typed a counter (or a histogram's or
    /// summary's count) by the pages, or named as one whatever they type it.
    fn counts(&self, name: &str) -> bool {
        self.monotonic.contains(name)
            || ["_total", "_count", "_bucket"]
                .iter()
                .any(|suffix| name.ends_with(suffix))
    }

    /// Whether one instance's pages came from more than one process at a time: a load-balanced
    /// `--endpoint` (an Ingress, a Service) answers each scrape from whichever pod it picks, and
    /// rates over the mix read every switch as a counter reset (a pod's errors vanish into the
    /// others' traffic). The `*_created` time a page gives tells the processes apart: it changes
    /// when the process restarts, to a time after the last scrape; a time from before the last
    /// scrape, or one seen before, is another process answering. `Some(why)` then.
    pub fn mixed_processes(&self) -> Option<String> {
        // Clocks of the pod and of this machine may differ by this much.
        const SKEW: f64 = 60.0;
        for (instance, seen) in &self.processes {
            let mut before: Vec<f64> = Vec::new();
            for pair in seen.windows(2) {
                let ((t0, c0), (_, c1)) = (pair[0], pair[1]);
                before.push(c0);
                if c1 == c0 {
                    continue;
                }
                if before.contains(&c1) || c1 < t0 - SKEW {
                    return Some(format!(
                        "{instance} answered from more than one process (its counters' creation time went from {c0} to {c1} between scrapes, which is no restart): it is load-balanced, and rates over it would mix the pods' counters; scrape each pod (a live audit does, through the API server) or give --prometheus"
                    ));
                }
            }
        }
        // Pages with `*_created` samples and pages without: two processes (one exporter sets
        // PROMETHEUS_DISABLE_CREATED_SERIES, the other not), whatever the times say. Only the
        // pages that had them were compared, and pods taking turns passed a 50 % error rate
        // (review finding).
        if let Some(instance) = self.processes.keys().find(|i| self.uncreated.contains(*i)) {
            return Some(format!(
                "{instance} answered some pages with *_created samples and some without, which one process does not do: it is load-balanced, and rates over it would mix the pods' counters; scrape each pod (a live audit does, through the API server) or give --prometheus"
            ));
        }
        // Without `*_created` samples (prometheus_client's PROMETHEUS_DISABLE_CREATED_SERIES),
        // a restart and another pod answering look the same: a counter going down. Read as a
        // reset, pods taking turns passed a 50 % error rate; it is refused instead.
        for s in &self.series {
            let Some(instance) = s.labels.get("instance") else {
                continue;
            };
            let name = s.labels.get("__name__").map_or("", String::as_str);
            if !self.monotonic.contains(name) || self.processes.contains_key(instance) {
                continue;
            }
            if let Some(pair) = s.samples.windows(2).find(|p| p[1].1 < p[0].1) {
                return Some(format!(
                    "{instance}'s counter {name} went down between scrapes ({} to {}) and the page has no *_created sample to tell a restart from another pod answering: it may be load-balanced, and rates over it would mix the pods' counters; scrape each pod (a live audit does, through the API server) or give --prometheus",
                    pair[0].1, pair[1].1
                ));
            }
        }
        None
    }

    /// Whether `instance`'s pages carry `*_created` samples, which tell one process from
    /// several ([`Store::mixed_processes`]).
    pub fn tells_processes_apart(&self, instance: &str) -> bool {
        self.processes.contains_key(instance)
    }

    fn declare(&mut self, name: &str) {
        self.declared.insert(name.to_string());
        for suffix in ["_bucket", "_sum", "_count", "_created"] {
            self.declared.insert(format!("{name}{suffix}"));
        }
    }

    /// Adds a sample of the scrape at `t`; a second one of the same series in that scrape is
    /// refused, as Prometheus refuses the page ("duplicate sample for timestamp"): kept, it read
    /// as a counter reset and doubled the rate it was part of (a 50 % error rate passed).
    fn push(&mut self, labels: Labels, t: f64, v: f64) -> Result<(), String> {
        if let Some(&i) = self.index.get(&labels) {
            let series = &mut self.series[i];
            if series.samples.last().is_some_and(|&(last, _)| last == t) {
                let shown: Vec<String> = labels.iter().map(|(k, v)| format!("{k}={v:?}")).collect();
                return Err(format!(
                    "the page has the series {{{}}} twice",
                    shown.join(", ")
                ));
            }
            series.samples.push((t, v));
        } else {
            self.index.insert(labels.clone(), self.series.len());
            self.series.push(Series {
                labels,
                samples: vec![(t, v)],
            });
        }
        Ok(())
    }

    /// Times at which scrapes happened, ascending.
    pub fn times(&self) -> Vec<f64> {
        let mut t: Vec<f64> = self
            .series
            .iter()
            .flat_map(|s| s.samples.iter().map(|(t, _)| *t))
            .collect();
        t.sort_by(f64::total_cmp);
        t.dedup();
        t
    }
}

fn format_le(v: f64) -> String {
    if v.is_infinite() {
        "+Inf".into()
    } else {
        format!("{v:?}")
    }
}

/// The value of an expression at one instant.
#[derive(Debug, Clone, PartialEq)]
pub enum QueryValue {
    Scalar(f64),
    Vector(Vec<(Labels, f64)>),
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum EvalError {
    /// A metric the query selects is not exposed by any scraped target.
    Absent(String),
    Unsupported(String),
}

impl std::fmt::Display for EvalError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Self::Absent(name) => write!(
                f,
                "{name} is not exposed by the scraped endpoints (a series only a Prometheus server has? give --prometheus)"
            ),
            Self::Unsupported(what) => write!(
                f,
                "{what} is not supported without a Prometheus server (give --prometheus)"
            ),
        }
    }
}

/// Whether prometheus-parse reads a line of a text exposition page: blank, a comment (`# HELP`,
/// `# TYPE` or any other), or a sample whose value is a number (`NaN` and `+Inf` too). Its
/// parser skips any other line without a word, including some valid ones (a recording rule's
/// `name:with:colons`, `name{}`, a `}` inside a label value); refusing the page is what keeps a
/// skipped line from being a series that silently was not there.
fn is_exposition_line(line: &str) -> bool {
    use prometheus_parse::LineInfo;
    match LineInfo::parse(line) {
        LineInfo::Empty | LineInfo::Doc { .. } | LineInfo::Type { .. } => true,
        LineInfo::Ignored => line.trim_start().starts_with('#'),
        // As prometheus-parse reads the value (it skips the line when this fails), and labels
        // it reads as written: it splits them at every `,` and `=`, so a value holding either
        // (or an escape) lost pairs or came back cut short.
        // A timestamp is an integer of milliseconds: prometheus-parse reads another (OpenMetrics'
        // seconds, `1.0`, a word) as "now", and a 2-hour-old sample passed as fresh.
        LineInfo::Sample {
            value,
            labels,
            timestamp,
            ..
        } => {
            let value = value.to_ascii_lowercase();
            timestamp.is_none_or(|t| {
                t.parse::<i64>()
                    .is_ok_and(|ms| (0..=i64::MAX / 1_000_000).contains(&ms))
            }) && (value == "nan" || value.parse::<f64>().is_ok())
                && labels.is_none_or(|l| {
                    // A label named twice is refused (Prometheus fails the scrape; the last one
                    // won here, and a 500 series counted as a 200), and a bucket's `le` or a
                    // quantile that is not a number too (prometheus-parse dropped the bucket).
                    let mut names: Vec<&str> = Vec::new();
                    l.split(',').filter(|pair| !pair.is_empty()).all(|pair| {
                        pair.split_once('=').is_some_and(|(name, v)| {
                            let name = name.trim();
                            // A label name as Prometheus's text format writes one: a quoted
                            // name (`{"status"="500"}`) came out with its quotes.
                            let legal = name.bytes().enumerate().all(|(i, b)| {
                                b == b'_'
                                    || b.is_ascii_alphabetic()
                                    || (i > 0 && b.is_ascii_digit())
                            });
                            let fresh = legal && !names.contains(&name);
                            names.push(name);
                            let inner = v.get(1..v.len().saturating_sub(1)).unwrap_or_default();
                            fresh
                                && !name.is_empty()
                                && v.len() >= 2
                                && v.starts_with('"')
                                && v.ends_with('"')
                                && !inner.contains(['"', '=', '\\'])
                                && (!["le", "quantile"].contains(&name)
                                    || inner.to_ascii_lowercase().parse::<f64>().is_ok())
                        })
                    })
                })
        }
    }
}

/// Parses a query (syntax errors are check-file errors).
///
/// promql-parser panics on some inputs (a range like `[51111111111111111111]` overflows its
/// duration arithmetic; found by the `promql` fuzz target): a panic is a syntax error here, never
/// the end of the process.
///
/// A query longer than [`MAX_QUERY`], or whose tree nests deeper than [`MAX_DEPTH`], is refused
/// too: everything that reads a query (the subset check, the evaluator, `watch`'s lookback, the
/// tree's own drop) recurses once per level, and a `--checks` file's chain of 50,000 `up + up`
/// overflowed the main thread's stack and aborted the run (exit 134).
pub fn parse(query: &str) -> Result<Expr, String> {
    if query.len() > MAX_QUERY {
        return Err(format!(
            "the query is {} bytes long; the most is {MAX_QUERY} (split it into several checks, or a recording rule)",
            query.len()
        ));
    }
    // promql-parser's checks of a call recurse into its arguments: 3,000 nested `sum(`
    // overflowed a debug build's 2 MiB thread stack inside `parser::parse`. Its lexer takes a
    // backslash as an escape in every string, backtick ones too (Prometheus does not), and the
    // count must end each string where the parser does.
    if crate::nesting::deepest(query, b"\"'`", Some(b'#')) > MAX_DEPTH {
        return Err(format!(
            "the query nests brackets more than {MAX_DEPTH} levels deep; split it into several checks, or a recording rule"
        ));
    }
    // Integers past i64 (19 digits or more) are what overflow it; refuse them up front, since a
    // caught panic still prints on stderr (and aborts under the fuzzer).
    let mut run = 0;
    for c in query.chars() {
        run = if c.is_ascii_digit() { run + 1 } else { 0 };
        if run >= 19 {
            return Err(format!(
                "{query:?}: a number with 19 digits or more is out of range"
            ));
        }
    }
    if let Some(number) = huge_number(query) {
        return Err(format!(
            "{query:?}: the number {number} is out of range (at most 1e18)"
        ));
    }
    let parsed = std::panic::catch_unwind(|| parser::parse(query));
    let expr = parsed.unwrap_or_else(|_| Err(format!("cannot parse {query:?}: the PromQL parser failed on it (a duration or number out of range?)")))?;
    if deeper_than(&expr, MAX_DEPTH) {
        return Err(format!(
            "the query nests more than {MAX_DEPTH} levels deep (operators, functions and brackets each add one); split it into several checks, or a recording rule"
        ));
    }
    Ok(expr)
}

/// The longest query text. The built-in catalog's longest is 113 bytes; at this length a
/// rejected tree (a chain of `a+a+...`, 8,000 levels) is still dropped within a debug build's
/// 2 MiB thread stack (`hostile_queries_are_refused_not_a_crash`).
pub const MAX_QUERY: usize = 16 * 1024;

/// How deep a query's syntax tree may nest: each level is a frame of the evaluator and of every
/// walk over the tree. The built-in catalog nests at most 6 levels; CEL's bound is 40.
pub const MAX_DEPTH: usize = 64;

/// Whether `expr`'s tree is deeper than `max` levels, walked with a stack of its own: the tree
/// being measured may be the one that would overflow a recursive walk.
fn deeper_than(expr: &Expr, max: usize) -> bool {
    let mut pending = vec![(expr, 1usize)];
    while let Some((e, level)) = pending.pop() {
        if level > max {
            return true;
        }
        let next = level + 1;
        match e {
            Expr::NumberLiteral(_)
            | Expr::StringLiteral(_)
            | Expr::VectorSelector(_)
            | Expr::MatrixSelector(_)
            | Expr::Extension(_) => {}
            Expr::Paren(p) => pending.push((&p.expr, next)),
            Expr::Unary(u) => pending.push((&u.expr, next)),
            Expr::Subquery(sq) => pending.push((&sq.expr, next)),
            Expr::Aggregate(a) => {
                pending.push((&a.expr, next));
                pending.extend(a.param.iter().map(|p| (&**p, next)));
            }
            Expr::Binary(b) => pending.extend([(&*b.lhs, next), (&*b.rhs, next)]),
            Expr::Call(c) => pending.extend(c.args.args.iter().map(|a| (&**a, next))),
        }
    }
    false
}

/// A number outside quotes whose value is 1e18 or more, or not finite, written any way the
/// 19-digit rule of `parse` does not see (`1e888888888888`, `.5e30`): promql-parser panics on
/// such a duration (`Duration::from_secs_f64`; found by the `promql` fuzz target), and no check
/// needs one.
fn huge_number(query: &str) -> Option<&str> {
    let bytes = query.as_bytes();
    let mut quote: Option<u8> = None;
    let mut i = 0;
    while i < bytes.len() {
        let c = bytes[i];
        if let Some(q) = quote {
            if c == b'\\' {
                i += 2;
                continue;
            }
            if c == q {
                quote = None;
            }
            i += 1;
            continue;
        }
        if matches!(c, b'"' | b'\'' | b'`') {
            quote = Some(c);
            i += 1;
            continue;
        }
        let starts =
            c.is_ascii_digit() || (c == b'.' && bytes.get(i + 1).is_some_and(u8::is_ascii_digit));
        let in_name =
            i > 0 && (bytes[i - 1].is_ascii_alphanumeric() || matches!(bytes[i - 1], b'_' | b':'));
        if !starts || in_name {
            i += 1;
            continue;
        }
        let start = i;
        while i < bytes.len()
            && (bytes[i].is_ascii_alphanumeric()
                || bytes[i] == b'.'
                || (matches!(bytes[i], b'+' | b'-') && matches!(bytes[i - 1], b'e' | b'E')))
        {
            i += 1;
        }
        let token = &query[start..i];
        if token
            .parse::<f64>()
            .is_ok_and(|v| v.is_nan() || v.abs() >= 1e18)
        {
            return Some(token);
        }
    }
    None
}

/// A check's query: the text as written (sent to Prometheus, shown in reports and events) and
/// its syntax tree (evaluated here, inspected by `watch`), parsed once when a `--checks` file
/// loads, and for a built-in check when first needed (most runs read no metrics).
#[derive(Clone)]
pub struct Query {
    text: String,
    expr: std::sync::OnceLock<Expr>,
}

/// The text only: the tree is the text's, parsed or not yet.
impl std::fmt::Debug for Query {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Query")
            .field("text", &self.text)
            .finish_non_exhaustive()
    }
}

impl Query {
    /// Parses `text` ([`parse`]'s errors).
    pub fn parse(text: &str) -> Result<Self, String> {
        parse(text).map(|expr| Self {
            text: text.to_string(),
            expr: expr.into(),
        })
    }

    /// A built-in check's query, parsed when first needed. Only for text a test has parsed
    /// with [`Query::parse`] (`tests/catalog.rs` compiles every built-in check as a `--checks`
    /// file): one that does not parse is a defect of this build, which ends the run.
    pub fn deferred(text: &str) -> Self {
        Self {
            text: text.to_string(),
            expr: std::sync::OnceLock::new(),
        }
    }

    /// The query as the check file wrote it.
    pub fn text(&self) -> &str {
        &self.text
    }

    pub fn expr(&self) -> &Expr {
        self.expr.get_or_init(|| {
            parse(&self.text).unwrap_or_else(|e| {
                panic!(
                    "a built-in check's query does not parse ({e}): {}",
                    self.text
                )
            })
        })
    }
}

impl std::fmt::Display for Query {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.text)
    }
}

/// `--prometheus-selector`: label matchers added to every selector of every query sent to
/// Prometheus, as prom-label-proxy enforces a tenant's label. The built-in queries aggregate
/// over everything a Prometheus holds; one that scrapes staging and production would judge
/// production on both (its errors diluted by staging's traffic), so a run names its release's
/// series, e.g. `{namespace="mlsdm-production"}`.
#[derive(Debug, Clone, PartialEq)]
pub struct Scope {
    text: String,
    matchers: Vec<promql_parser::label::Matcher>,
}

impl Scope {
    /// Reads `{label="value", ...}`: label matchers only (any of `=`, `!=`, `=~`, `!~`), no
    /// metric name, no `or`, no modifier.
    pub fn parse(text: &str) -> Result<Self, String> {
        let refuse = |why: &str| {
            Err(format!(
                "{text:?}: {why} (give label matchers in braces, e.g. '{{namespace=\"mlsdm-production\"}}')"
            ))
        };
        let text = text.trim();
        if !text.starts_with('{') {
            return refuse(if text.contains('{') {
                "a scope names labels, not a metric"
            } else {
                "not a set of label matchers"
            });
        }
        // Read as a selector of some metric: on its own, `{namespace!="staging"}` is refused by
        // PromQL (it could match every series), though added to a query's selectors it is fine.
        let Ok(Expr::VectorSelector(mut vs)) = parse(&format!("scope{text}")) else {
            return refuse("not a set of label matchers");
        };
        if !vs.matchers.or_matchers.is_empty() || vs.offset.is_some() || vs.at.is_some() {
            return refuse("a scope is matchers joined by commas, with no `or`, offset or @");
        }
        vs.matchers
            .matchers
            .retain(|m| !(m.name == "__name__" && m.value == "scope"));
        if vs.matchers.matchers.iter().any(|m| m.name == "__name__") {
            return refuse("a scope names labels, not a metric");
        }
        if vs.matchers.matchers.is_empty() {
            return refuse("no label matcher");
        }
        Ok(Self {
            text: text.to_string(),
            matchers: vs.matchers.matchers,
        })
    }

    /// The scope as given.
    pub fn text(&self) -> &str {
        &self.text
    }

    /// `expr` with the scope's matchers added to each of its selectors (to each `or` group of
    /// one that has them), as PromQL text. The text is parsed back and must select through the
    /// scope everywhere: a query this cannot scope faithfully is an error, never sent unscoped.
    pub fn apply(&self, expr: &Expr) -> Result<String, String> {
        let mut scoped = expr.clone();
        scope_selectors(&mut scoped, &self.matchers);
        let text = scoped.to_string();
        let back =
            parse(&text).map_err(|e| format!("cannot scope the query by {}: {e}", self.text))?;
        let all_scoped = selectors(&back)
            .iter()
            .filter(|vs| !is_alerts(vs))
            .all(|vs| {
                let groups: Vec<&Vec<promql_parser::label::Matcher>> =
                    if vs.matchers.or_matchers.is_empty() {
                        vec![&vs.matchers.matchers]
                    } else {
                        vs.matchers.or_matchers.iter().collect()
                    };
                groups
                    .iter()
                    .all(|g| self.matchers.iter().all(|m| g.contains(m)))
            });
        if !all_scoped || lookback(&back) != lookback(expr) {
            return Err(format!(
                "cannot scope the query by {}: the scoped text {text:?} reads differently",
                self.text
            ));
        }
        Ok(text)
    }

    /// `text` scoped ([`Scope::apply`] of its parse).
    pub fn apply_text(&self, text: &str) -> Result<String, String> {
        self.apply(&parse(text)?)
    }
}

/// Whether a selector reads Prometheus' own alert series (`ALERTS`, `ALERTS_FOR_STATE`). They
/// carry the labels their rule gives them, which need not include the scope's (a rule summing
/// over namespaces drops `namespace`): scoped, a firing alert without the label would vanish and
/// no-alerts-firing pass. They are left unscoped: another release's alert fails the check, which
/// is the safe side.
fn is_alerts(vs: &VectorSelector) -> bool {
    let alerts = |n: &str| n == "ALERTS" || n == "ALERTS_FOR_STATE";
    vs.name.as_deref().is_some_and(alerts)
        || vs
            .matchers
            .matchers
            .iter()
            .any(|m| m.name == "__name__" && m.op == MatchOp::Equal && alerts(&m.value))
}

/// Adds `matchers` to every selector of `expr` (the walk of [`selectors`], mutable) but the
/// alerts' ([`is_alerts`]).
fn scope_selectors(expr: &mut Expr, matchers: &[promql_parser::label::Matcher]) {
    let add = |vs: &mut VectorSelector| {
        if is_alerts(vs) {
            return;
        }
        if vs.matchers.or_matchers.is_empty() {
            vs.matchers.matchers.extend(matchers.iter().cloned());
        } else {
            for g in &mut vs.matchers.or_matchers {
                g.extend(matchers.iter().cloned());
            }
        }
    };
    match expr {
        Expr::NumberLiteral(_) | Expr::StringLiteral(_) | Expr::Extension(_) => {}
        Expr::VectorSelector(vs) => add(vs),
        Expr::MatrixSelector(ms) => add(&mut ms.vs),
        Expr::Paren(p) => scope_selectors(&mut p.expr, matchers),
        Expr::Unary(u) => scope_selectors(&mut u.expr, matchers),
        Expr::Aggregate(a) => {
            if let Some(p) = &mut a.param {
                scope_selectors(p, matchers);
            }
            scope_selectors(&mut a.expr, matchers);
        }
        Expr::Binary(b) => {
            scope_selectors(&mut b.lhs, matchers);
            scope_selectors(&mut b.rhs, matchers);
        }
        Expr::Call(c) => c
            .args
            .args
            .iter_mut()
            .for_each(|a| scope_selectors(a, matchers)),
        Expr::Subquery(sq) => scope_selectors(&mut sq.expr, matchers),
    }
}

/// Every vector selector of a query (those inside range selectors too), in the order written.
fn selectors(expr: &Expr) -> Vec<&VectorSelector> {
    fn walk<'a>(expr: &'a Expr, out: &mut Vec<&'a VectorSelector>) {
        match expr {
            Expr::NumberLiteral(_) | Expr::StringLiteral(_) | Expr::Extension(_) => {}
            Expr::VectorSelector(vs) => out.push(vs),
            Expr::MatrixSelector(ms) => out.push(&ms.vs),
            Expr::Paren(p) => walk(&p.expr, out),
            Expr::Unary(u) => walk(&u.expr, out),
            Expr::Aggregate(a) => {
                if let Some(p) = &a.param {
                    walk(p, out);
                }
                walk(&a.expr, out);
            }
            Expr::Binary(b) => {
                walk(&b.lhs, out);
                walk(&b.rhs, out);
            }
            Expr::Call(c) => c.args.args.iter().for_each(|a| walk(a, out)),
            Expr::Subquery(sq) => walk(&sq.expr, out),
        }
    }
    let mut out = Vec::new();
    walk(expr, &mut out);
    out
}

/// The metric names a query selects, in the order written and each once, to say which series
/// never came. A selector without a literal name (`{__name__=~"x.*"}`) names nothing.
pub fn metric_names(expr: &Expr) -> Vec<String> {
    let mut out: Vec<String> = Vec::new();
    for vs in selectors(expr) {
        let literal = vs.name.clone().or_else(|| {
            vs.matchers
                .matchers
                .iter()
                .find(|m| m.name == "__name__" && m.op == MatchOp::Equal)
                .map(|m| m.value.clone())
        });
        if let Some(n) = literal
            && !out.contains(&n)
        {
            out.push(n);
        }
    }
    out
}

/// Whether some selector of the query picks the metric `name` by its name: `name{..}`, or
/// `{__name__="name"}` / `{__name__=~"re"}` matchers that `name` satisfies. A selector with no
/// name constraint at all (`{job="x"}`) does not count: it is not about that metric.
pub fn selects_metric(expr: &Expr, name: &str) -> bool {
    let by_name = |ms: &[promql_parser::label::Matcher]| {
        let names: Vec<_> = ms.iter().filter(|m| m.name == "__name__").collect();
        !names.is_empty() && names.iter().all(|m| m.is_match(name))
    };
    selectors(expr).into_iter().any(|vs| match &vs.name {
        Some(n) => n == name,
        None => {
            by_name(&vs.matchers.matchers) || vs.matchers.or_matchers.iter().any(|g| by_name(g))
        }
    })
}

/// How far back before its evaluation time a query reads samples: its longest range selector
/// (`rate(x[5m])`: 300 s), a subquery's range plus what its inner query reads, plus offsets.
/// `watch` uses it so that a verdict is never made of the previous version's samples.
pub fn lookback(expr: &Expr) -> std::time::Duration {
    use std::time::Duration;
    let offset = |o: &Option<parser::Offset>| match o {
        Some(parser::Offset::Pos(d)) => *d,
        _ => Duration::ZERO,
    };
    match expr {
        Expr::NumberLiteral(_) | Expr::StringLiteral(_) | Expr::Extension(_) => Duration::ZERO,
        Expr::Paren(p) => lookback(&p.expr),
        Expr::Unary(u) => lookback(&u.expr),
        Expr::VectorSelector(vs) => offset(&vs.offset),
        Expr::MatrixSelector(ms) => ms.range + offset(&ms.vs.offset),
        Expr::Aggregate(a) => lookback(&a.expr),
        Expr::Binary(b) => lookback(&b.lhs).max(lookback(&b.rhs)),
        Expr::Call(c) => c
            .args
            .args
            .iter()
            .map(|a| lookback(a))
            .max()
            .unwrap_or(Duration::ZERO),
        Expr::Subquery(sq) => sq.range + offset(&sq.offset) + lookback(&sq.expr),
    }
}

/// The longest range a query counts over (`increase(x[1h])`: one hour), if it counts: its value
/// over samples that span less is a count of that span only, a lower bound of the query's own.
/// (`rate` and `deriv` are per second: a shorter span estimates them, it does not undercount.)
pub fn counted_range(expr: &Expr) -> Option<std::time::Duration> {
    match expr {
        Expr::Paren(p) => counted_range(&p.expr),
        Expr::Unary(u) => counted_range(&u.expr),
        Expr::Aggregate(a) => counted_range(&a.expr),
        Expr::Binary(b) => counted_range(&b.lhs).max(counted_range(&b.rhs)),
        Expr::Call(c) if c.func.name == "increase" => Some(lookback(expr)),
        Expr::Call(c) => c.args.args.iter().filter_map(|a| counted_range(a)).max(),
        Expr::Subquery(sq) => counted_range(&sq.expr),
        _ => None,
    }
}

/// Whether a query reads how counters grew (`rate`, `irate`, `increase`): over pages of more
/// than one process, such a value mixes their counters.
pub fn reads_counter_growth(expr: &Expr) -> bool {
    match expr {
        Expr::Paren(p) => reads_counter_growth(&p.expr),
        Expr::Unary(u) => reads_counter_growth(&u.expr),
        Expr::Aggregate(a) => reads_counter_growth(&a.expr),
        Expr::Binary(b) => reads_counter_growth(&b.lhs) || reads_counter_growth(&b.rhs),
        Expr::Call(c) => {
            ["rate", "irate", "increase", "resets"].contains(&c.func.name)
                || c.args.args.iter().any(|a| reads_counter_growth(a))
        }
        Expr::Subquery(sq) => reads_counter_growth(&sq.expr),
        _ => false,
    }
}

/// Checks a parsed query stays within the subset this evaluator implements.
pub fn check_supported(expr: &Expr) -> Result<(), EvalError> {
    let unsupported = |what: String| Err(EvalError::Unsupported(what));
    match expr {
        Expr::NumberLiteral(_) => Ok(()),
        Expr::Paren(p) => check_supported(&p.expr),
        Expr::Unary(u) => check_supported(&u.expr),
        Expr::VectorSelector(vs) => check_selector(vs),
        Expr::MatrixSelector(ms) => check_selector(&ms.vs),
        Expr::Aggregate(a) => {
            let op = a.op.to_string();
            let op = op.as_str();
            if !["sum", "avg", "min", "max", "count"].contains(&op) {
                return unsupported(format!("the aggregation {op}"));
            }
            check_supported(&a.expr)
        }
        Expr::Binary(b) => {
            let op = b.op.to_string();
            let op = op.as_str();
            if !["+", "-", "*", "/", "==", "!=", "<", "<=", ">", ">=", "or"].contains(&op) {
                return unsupported(format!("the operator {op}"));
            }
            if op != "or"
                && b.modifier
                    .as_ref()
                    .is_some_and(|m| !matches!(m.card, parser::VectorMatchCardinality::OneToOne))
            {
                return unsupported("group_left/group_right".into());
            }
            check_supported(&b.lhs)?;
            check_supported(&b.rhs)
        }
        Expr::Call(c) => {
            if ![
                "rate",
                "irate",
                "increase",
                "deriv",
                "histogram_quantile",
                "vector",
            ]
            .contains(&c.func.name)
            {
                return unsupported(format!("the function {}()", c.func.name));
            }
            c.args.args.iter().try_for_each(|a| check_supported(a))
        }
        Expr::Subquery(_) => unsupported("subqueries".into()),
        Expr::StringLiteral(_) => unsupported("string literals".into()),
        Expr::Extension(_) => unsupported("extensions".into()),
    }
}

fn check_selector(vs: &VectorSelector) -> Result<(), EvalError> {
    if vs.offset.is_some() || vs.at.is_some() {
        return Err(EvalError::Unsupported("offset and @ modifiers".into()));
    }
    if !vs.matchers.or_matchers.is_empty() {
        return Err(EvalError::Unsupported("`or` label matchers".into()));
    }
    Ok(())
}

fn selects(vs: &VectorSelector, labels: &Labels) -> bool {
    if let Some(name) = &vs.name
        && labels.get("__name__") != Some(name)
    {
        return false;
    }
    vs.matchers.matchers.iter().all(|m| {
        let value = labels.get(&m.name).map_or("", String::as_str);
        match &m.op {
            MatchOp::Equal | MatchOp::NotEqual | MatchOp::Re(_) | MatchOp::NotRe(_) => {
                m.is_match(value)
            }
        }
    })
}

fn selector_name(vs: &VectorSelector) -> String {
    vs.name.clone().unwrap_or_else(|| {
        vs.matchers
            .matchers
            .iter()
            .find(|m| m.name == "__name__")
            .map_or_else(|| vs.to_string(), |m| m.value.clone())
    })
}

fn ensure_declared(vs: &VectorSelector, store: &Store) -> Result<(), EvalError> {
    let name = selector_name(vs);
    let declared =
        store.declared.contains(&name) || store.series.iter().any(|s| selects(vs, &s.labels));
    // A regex on __name__ cannot be checked for absence; treat it as present.
    let by_regex = vs.name.is_none()
        && vs
            .matchers
            .matchers
            .iter()
            .any(|m| m.name == "__name__" && matches!(m.op, MatchOp::Re(_)));
    if declared || by_regex {
        Ok(())
    } else {
        Err(EvalError::Absent(name))
    }
}

/// Evaluates `expr` at time `t` (seconds).
pub fn eval(expr: &Expr, store: &Store, t: f64) -> Result<QueryValue, EvalError> {
    check_supported(expr)?;
    eval_inner(expr, store, t)
}

fn eval_inner(expr: &Expr, store: &Store, t: f64) -> Result<QueryValue, EvalError> {
    match expr {
        Expr::NumberLiteral(n) => Ok(QueryValue::Scalar(n.val)),
        Expr::Paren(p) => eval_inner(&p.expr, store, t),
        Expr::Unary(u) => Ok(match eval_inner(&u.expr, store, t)? {
            QueryValue::Scalar(v) => QueryValue::Scalar(-v),
            QueryValue::Vector(v) => {
                QueryValue::Vector(v.into_iter().map(|(l, x)| (drop_name(l), -x)).collect())
            }
        }),
        Expr::VectorSelector(vs) => {
            ensure_declared(vs, store)?;
            let out = store
                .series
                .iter()
                .filter(|s| selects(vs, &s.labels))
                .filter_map(|s| {
                    s.samples
                        .iter()
                        .rev()
                        .find(|(ts, _)| *ts <= t && *ts > t - LOOKBACK_SECONDS)
                        .map(|(_, v)| (s.labels.clone(), *v))
                })
                .collect();
            Ok(QueryValue::Vector(out))
        }
        Expr::MatrixSelector(_) => Err(EvalError::Unsupported(
            "a range vector outside rate()/irate()/increase()/deriv()".into(),
        )),
        Expr::Aggregate(a) => aggregate(a, store, t),
        Expr::Binary(b) => binary(b, store, t),
        Expr::Call(c) => call(c, store, t),
        Expr::Subquery(_) | Expr::StringLiteral(_) | Expr::Extension(_) => {
            Err(EvalError::Unsupported(expr.to_string()))
        }
    }
}

fn drop_name(mut l: Labels) -> Labels {
    l.remove("__name__");
    l
}

/// Each selected series' labels with its samples inside a range.
type RangeSamples<'a> = Vec<(&'a Labels, Vec<(f64, f64)>)>;

fn range_samples<'a>(
    ms: &MatrixSelector,
    store: &'a Store,
    t: f64,
) -> Result<RangeSamples<'a>, EvalError> {
    ensure_declared(&ms.vs, store)?;
    let range = ms.range.as_secs_f64();
    Ok(store
        .series
        .iter()
        .filter(|s| selects(&ms.vs, &s.labels))
        .map(|s| {
            (
                &s.labels,
                s.samples
                    .iter()
                    .copied()
                    .filter(|(ts, _)| *ts <= t && *ts > t - range)
                    .collect::<Vec<_>>(),
            )
        })
        .collect())
}

/// Prometheus' `extrapolatedRate` (promql/functions.go), for counters.
fn extrapolated(
    samples: &[(f64, f64)],
    range_start: f64,
    range_end: f64,
    is_rate: bool,
) -> Option<f64> {
    // A counter that is not a number (+Inf) gives no rate: Prometheus' arithmetic made the
    // ratio over it 0, and an error rate of 50 % passed.
    if samples.len() < 2 || samples.iter().any(|(_, v)| !v.is_finite()) {
        return None;
    }
    let (first_t, first_v) = samples[0];
    let (last_t, last_v) = samples[samples.len() - 1];
    let mut result = last_v - first_v;
    let mut prev = first_v;
    for &(_, v) in &samples[1..] {
        if v < prev {
            result += prev;
        }
        prev = v;
    }
    let sampled = last_t - first_t;
    let avg_between = sampled / (samples.len() - 1) as f64;
    let mut to_start = first_t - range_start;
    let to_end = range_end - last_t;
    if result > 0.0 && first_v >= 0.0 {
        let to_zero = sampled * (first_v / result);
        if to_zero < to_start {
            to_start = to_zero;
        }
    }
    let threshold = avg_between * 1.1;
    let mut interval = sampled;
    interval += if to_start < threshold {
        to_start
    } else {
        avg_between / 2.0
    };
    interval += if to_end < threshold {
        to_end
    } else {
        avg_between / 2.0
    };
    result *= interval / sampled;
    if is_rate {
        result /= range_end - range_start;
    }
    Some(result)
}

/// Prometheus' `instantRate` for `irate`: the per-second increase between the last two samples
/// (a lower last value is a counter reset, so the increase is the last value).
fn instant_rate(samples: &[(f64, f64)]) -> Option<f64> {
    let [.., (prev_t, prev_v), (last_t, last_v)] = samples else {
        return None;
    };
    let increase = if last_v < prev_v {
        *last_v
    } else {
        last_v - prev_v
    };
    let seconds = last_t - prev_t;
    (seconds > 0.0).then(|| increase / seconds)
}

/// Least-squares slope per second, as Prometheus' `deriv`.
fn slope(samples: &[(f64, f64)]) -> Option<f64> {
    if samples.len() < 2 {
        return None;
    }
    let n = samples.len() as f64;
    let t0 = samples[0].0;
    let (mut sx, mut sy, mut sxy, mut sxx) = (0.0, 0.0, 0.0, 0.0);
    for &(t, v) in samples {
        let x = t - t0;
        sx += x;
        sy += v;
        sxy += x * v;
        sxx += x * x;
    }
    let denom = n * sxx - sx * sx;
    (denom != 0.0).then(|| (n * sxy - sx * sy) / denom)
}

fn call(c: &Call, store: &Store, t: f64) -> Result<QueryValue, EvalError> {
    match c.func.name {
        "rate" | "irate" | "increase" | "deriv" => {
            let Expr::MatrixSelector(ms) = c.args.args[0].as_ref() else {
                return Err(EvalError::Unsupported(format!(
                    "{}() of something other than a range selector",
                    c.func.name
                )));
            };
            let range = ms.range.as_secs_f64();
            let out = range_samples(ms, store, t)?
                .into_iter()
                .filter_map(|(labels, samples)| {
                    let v = match c.func.name {
                        "deriv" => slope(&samples),
                        "irate" => instant_rate(&samples),
                        name => extrapolated(&samples, t - range, t, name == "rate"),
                    }?;
                    Some((drop_name(labels.clone()), v))
                })
                .collect();
            Ok(QueryValue::Vector(out))
        }
        "vector" => match eval_inner(&c.args.args[0], store, t)? {
            QueryValue::Scalar(v) => Ok(QueryValue::Vector(vec![(Labels::new(), v)])),
            QueryValue::Vector(_) => Err(EvalError::Unsupported("vector() of a vector".into())),
        },
        "histogram_quantile" => {
            let QueryValue::Scalar(phi) = eval_inner(&c.args.args[0], store, t)? else {
                return Err(EvalError::Unsupported("a non-scalar quantile".into()));
            };
            let QueryValue::Vector(v) = eval_inner(&c.args.args[1], store, t)? else {
                return Err(EvalError::Unsupported(
                    "histogram_quantile over a scalar".into(),
                ));
            };
            let mut groups: BTreeMap<Labels, Vec<(f64, f64)>> = BTreeMap::new();
            for (labels, value) in v {
                let Some(le) = labels.get("le").and_then(|s| parse_le(s)) else {
                    continue;
                };
                let mut key = drop_name(labels);
                key.remove("le");
                groups.entry(key).or_default().push((le, value));
            }
            Ok(QueryValue::Vector(
                groups
                    .into_iter()
                    .map(|(l, b)| (l, bucket_quantile(phi, b)))
                    .collect(),
            ))
        }
        other => Err(EvalError::Unsupported(format!("the function {other}()"))),
    }
}

fn parse_le(s: &str) -> Option<f64> {
    match s {
        "+Inf" | "Inf" | "+inf" | "inf" => Some(f64::INFINITY),
        s => s.parse().ok(),
    }
}

/// Prometheus' `bucketQuantile` (promql/quantile.go).
fn bucket_quantile(phi: f64, mut buckets: Vec<(f64, f64)>) -> f64 {
    if phi.is_nan() {
        return f64::NAN;
    }
    if phi < 0.0 {
        return f64::NEG_INFINITY;
    }
    if phi > 1.0 {
        return f64::INFINITY;
    }
    buckets.sort_by(|a, b| a.0.total_cmp(&b.0));
    if buckets.last().is_none_or(|b| !b.0.is_infinite()) || buckets.len() < 2 {
        return f64::NAN;
    }
    // Coalesce equal bounds and force monotonic counts, as Prometheus does.
    buckets.dedup_by(|b, a| {
        if a.0 == b.0 {
            a.1 += b.1;
            true
        } else {
            false
        }
    });
    // One bucket left (`le="+Inf"` written twice): nothing to interpolate between.
    if buckets.len() < 2 {
        return f64::NAN;
    }
    let mut max = f64::NEG_INFINITY;
    for b in &mut buckets {
        if b.1 < max {
            b.1 = max;
        } else {
            max = b.1;
        }
    }
    let observations = buckets[buckets.len() - 1].1;
    if observations == 0.0 {
        return f64::NAN;
    }
    let mut rank = phi * observations;
    let idx = buckets
        .iter()
        .position(|b| b.1 >= rank)
        .unwrap_or(buckets.len() - 1);
    // Prometheus answers the second-highest bound when the quantile lies in the +Inf bucket:
    // a lower bound, which an auditor must not compare as the value (every request taking 2 s
    // in a histogram whose finite buckets end at 50 ms passed a 100 ms P95). +Inf says "above
    // every bound": it fails every latency limit, as the true value does.
    if idx == buckets.len() - 1 {
        return f64::INFINITY;
    }
    if idx == 0 && buckets[0].0 <= 0.0 {
        return buckets[0].0;
    }
    let (mut start, end, mut count) = (0.0, buckets[idx].0, buckets[idx].1);
    if idx > 0 {
        start = buckets[idx - 1].0;
        count -= buckets[idx - 1].1;
        rank -= buckets[idx - 1].1;
    }
    start + (end - start) * (rank / count)
}

fn grouping(labels: &Labels, modifier: Option<&LabelModifier>) -> Labels {
    match modifier {
        None => Labels::new(),
        Some(LabelModifier::Include(keep)) => labels
            .iter()
            .filter(|(k, _)| keep.labels.contains(k))
            .map(|(k, v)| (k.clone(), v.clone()))
            .collect(),
        Some(LabelModifier::Exclude(drop)) => labels
            .iter()
            .filter(|(k, _)| !drop.labels.contains(k) && k.as_str() != "__name__")
            .map(|(k, v)| (k.clone(), v.clone()))
            .collect(),
    }
}

fn aggregate(a: &AggregateExpr, store: &Store, t: f64) -> Result<QueryValue, EvalError> {
    let QueryValue::Vector(v) = eval_inner(&a.expr, store, t)? else {
        return Err(EvalError::Unsupported("aggregating a scalar".into()));
    };
    let op = a.op.to_string();
    let op = op.as_str();
    let mut groups: BTreeMap<Labels, Vec<f64>> = BTreeMap::new();
    for (labels, value) in v {
        groups
            .entry(grouping(&labels, a.modifier.as_ref()))
            .or_default()
            .push(value);
    }
    let out = groups
        .into_iter()
        .map(|(l, vals)| {
            let r = match op {
                "sum" => vals.iter().sum(),
                "avg" => vals.iter().sum::<f64>() / vals.len() as f64,
                // As Prometheus: a NaN gives way to any number, and only NaNs give NaN (folded
                // from an infinity, all NaNs gave -Inf to `max`, which `max(x) < 0.8` passed).
                "min" => vals.iter().copied().reduce(f64::min).unwrap_or(f64::NAN),
                "max" => vals.iter().copied().reduce(f64::max).unwrap_or(f64::NAN),
                _ => vals.len() as f64,
            };
            (l, r)
        })
        .collect();
    Ok(QueryValue::Vector(out))
}

fn apply(op: &str, a: f64, b: f64) -> (f64, bool) {
    match op {
        "+" => (a + b, true),
        "-" => (a - b, true),
        "*" => (a * b, true),
        "/" => (a / b, true),
        "==" => (a, a == b),
        "!=" => (a, a != b),
        "<" => (a, a < b),
        "<=" => (a, a <= b),
        ">" => (a, a > b),
        _ => (a, a >= b),
    }
}

fn is_comparison(op: &str) -> bool {
    ["==", "!=", "<", "<=", ">", ">="].contains(&op)
}

fn binary(b: &BinaryExpr, store: &Store, t: f64) -> Result<QueryValue, EvalError> {
    let op = b.op.to_string();
    let op = op.as_str();
    let return_bool = b.modifier.as_ref().is_some_and(|m| m.return_bool);
    let cmp = is_comparison(op);
    let result = |a: f64, x: f64, keep_lhs: bool| -> Option<f64> {
        let (v, ok) = apply(op, a, x);
        if cmp {
            if return_bool {
                Some(if ok { 1.0 } else { 0.0 })
            } else if ok {
                Some(if keep_lhs { a } else { x })
            } else {
                None
            }
        } else {
            Some(v)
        }
    };
    let lhs = eval_inner(&b.lhs, store, t)?;
    let rhs = eval_inner(&b.rhs, store, t)?;
    if op == "or" {
        // Union: every left series, plus right series whose labels no left series has.
        let (QueryValue::Vector(left), QueryValue::Vector(right)) = (lhs, rhs) else {
            return Err(EvalError::Unsupported("`or` between scalars".into()));
        };
        let seen: BTreeSet<Labels> = left.iter().map(|(l, _)| drop_name(l.clone())).collect();
        let mut out = left;
        out.extend(
            right
                .into_iter()
                .filter(|(l, _)| !seen.contains(&drop_name(l.clone()))),
        );
        return Ok(QueryValue::Vector(out));
    }
    Ok(match (lhs, rhs) {
        (QueryValue::Scalar(a), QueryValue::Scalar(x)) => {
            QueryValue::Scalar(result(a, x, true).unwrap_or(f64::NAN))
        }
        (QueryValue::Vector(v), QueryValue::Scalar(x)) => QueryValue::Vector(
            v.into_iter()
                .filter_map(|(l, a)| {
                    result(a, x, true)
                        .map(|r| (if cmp && !return_bool { l } else { drop_name(l) }, r))
                })
                .collect(),
        ),
        (QueryValue::Scalar(a), QueryValue::Vector(v)) => QueryValue::Vector(
            v.into_iter()
                .filter_map(|(l, x)| {
                    result(a, x, false)
                        .map(|r| (if cmp && !return_bool { l } else { drop_name(l) }, r))
                })
                .collect(),
        ),
        (QueryValue::Vector(left), QueryValue::Vector(right)) => {
            let matching = b.modifier.as_ref().and_then(|m| m.matching.as_ref());
            let key = |l: &Labels| -> Labels {
                match matching {
                    Some(LabelModifier::Include(on)) => l
                        .iter()
                        .filter(|(k, _)| on.labels.contains(k))
                        .map(|(k, v)| (k.clone(), v.clone()))
                        .collect(),
                    Some(LabelModifier::Exclude(ign)) => l
                        .iter()
                        .filter(|(k, _)| !ign.labels.contains(k) && k.as_str() != "__name__")
                        .map(|(k, v)| (k.clone(), v.clone()))
                        .collect(),
                    None => drop_name(l.clone()),
                }
            };
            let right: BTreeMap<Labels, f64> =
                right.into_iter().map(|(l, v)| (key(&l), v)).collect();
            QueryValue::Vector(
                left.into_iter()
                    .filter_map(|(l, a)| {
                        let x = right.get(&key(&l))?;
                        let labels = if cmp && !return_bool { l } else { key(&l) };
                        result(a, *x, true).map(|r| (labels, r))
                    })
                    .collect(),
            )
        }
    })
}

#[cfg(test)]
mod tests {

    /// How far back a query reads: what `watch` compares with the rollout's age.
    #[test]
    fn lookback_is_the_longest_range_read() {
        let secs = |q: &str| lookback(&parse(q).unwrap()).as_secs();
        assert_eq!(secs("up"), 0);
        assert_eq!(
            secs("max(deriv(container_memory_working_set_bytes[30m]))"),
            1800
        );
        assert_eq!(
            secs("(sum(rate(a{s=~\"5..\"}[5m])) or vector(0)) / sum(rate(a[5m]))"),
            300
        );
        assert_eq!(secs("rate(a[1m] offset 10m)"), 660);
        assert_eq!(secs("max_over_time(rate(a[2m])[1h:1m])"), 3720);
        assert_eq!(
            secs("histogram_quantile(0.95, sum by (le) (rate(b[5m]))) > bool 2"),
            300
        );
    }
    /// Which queries read a metric by name, whichever way the name is written: what decides
    /// that a check on `ALERTS` needs a Prometheus with alerting rules.
    #[test]
    fn a_metric_is_selected_by_name_literal_or_matcher() {
        let reads = |q: &str| selects_metric(&parse(q).unwrap(), "ALERTS");
        assert!(reads(r#"ALERTS{alertstate="firing"}"#));
        assert!(reads(r#"count(ALERTS{alertstate="firing"}) or vector(0)"#));
        assert!(reads(r#"{__name__="ALERTS", alertstate="firing"}"#));
        assert!(reads(r#"{__name__=~"ALERTS|up"}"#));
        assert!(reads("max_over_time(ALERTS[5m])"));
        assert!(!reads("ALERTS_FOR_STATE"));
        assert!(!reads(r#"{__name__=~"mlsdm_.+"}"#));
        assert!(!reads(r#"{alertstate="firing"}"#));
        assert!(!reads("vector(0)"));
    }

    #[test]
    fn out_of_range_durations_are_errors_not_panics() {
        // Found by the promql fuzz target: promql-parser's duration arithmetic overflowed.
        let q = "((mls) or vector(0)) / sum(rate(mlsdsdm_httts_total[51111111111111111111]))";
        assert!(super::parse(q).unwrap_err().contains("out of range"));
        assert!(super::parse("up[5m]").is_ok());
    }

    use super::*;

    const EXPOSITION_T0: &str = "# HELP req_total Requests\n# TYPE req_total counter\nreq_total{status=\"200\"} 100\nreq_total{status=\"500\"} 10\n\
# HELP lat_seconds Latency\n# TYPE lat_seconds histogram\nlat_seconds_bucket{le=\"0.1\"} 50\nlat_seconds_bucket{le=\"0.5\"} 90\nlat_seconds_bucket{le=\"+Inf\"} 100\nlat_seconds_count 100\nlat_seconds_sum 12\n\
# HELP empty_total Declared, never fed\n# TYPE empty_total counter\n";
    const EXPOSITION_T1: &str = "# HELP req_total Requests\n# TYPE req_total counter\nreq_total{status=\"200\"} 190\nreq_total{status=\"500\"} 20\n\
# HELP lat_seconds Latency\n# TYPE lat_seconds histogram\nlat_seconds_bucket{le=\"0.1\"} 100\nlat_seconds_bucket{le=\"0.5\"} 180\nlat_seconds_bucket{le=\"+Inf\"} 200\nlat_seconds_count 200\nlat_seconds_sum 24\n\
# HELP empty_total Declared, never fed\n# TYPE empty_total counter\n";

    fn store() -> Store {
        let mut s = Store::default();
        s.add_scrape("a:8000", 1000.0, EXPOSITION_T0).unwrap();
        s.add_scrape("a:8000", 1010.0, EXPOSITION_T1).unwrap();
        s
    }

    fn scalar_of(q: &str, s: &Store, t: f64) -> Option<f64> {
        match eval(&parse(q).unwrap(), s, t).unwrap() {
            QueryValue::Scalar(v) => Some(v),
            QueryValue::Vector(v) if v.len() == 1 => Some(v[0].1),
            QueryValue::Vector(_) => None,
        }
    }

    #[test]
    fn error_ratio_and_rates() {
        let s = store();
        let ratio = scalar_of(
            "sum(rate(req_total{status=~\"5..\"}[5m])) / sum(rate(req_total[5m]))",
            &s,
            1010.0,
        )
        .unwrap();
        // Prometheus extrapolates each series on its own: the 5xx counter (10 -> 20) extrapolates to
        // zero 10 s before its first sample, the 200 counter (100 -> 190) by half an interval.
        assert!((ratio - 20.0 / 155.0).abs() < 1e-9, "{ratio}");
        let inc = scalar_of("sum(increase(req_total[5m]))", &s, 1010.0).unwrap();
        assert!(
            inc > 100.0,
            "increase extrapolates to the window start: {inc}"
        );
        assert!(
            scalar_of("sum(rate(req_total[5m]))", &s, 1000.0).is_none(),
            "one sample: no rate"
        );
    }

    #[test]
    fn irate_is_the_last_two_samples_whatever_the_range() {
        let mut s = store();
        // 100 -> 190 over 10 s: 9/s, where rate() over a 5m range holding 10 s of data divides
        // its increase by the whole range and reports far less.
        let irate = scalar_of("sum(irate(req_total{status=\"200\"}[5m]))", &s, 1010.0).unwrap();
        assert!((irate - 9.0).abs() < 1e-9, "{irate}");
        let rate = scalar_of("sum(rate(req_total{status=\"200\"}[5m]))", &s, 1010.0).unwrap();
        assert!(rate < 1.0, "{rate}");
        // A counter reset: the increase is the new value.
        s.add_scrape(
            "a:8000",
            1020.0,
            "# TYPE req_total counter\nreq_total{status=\"200\"} 30\n",
        )
        .unwrap();
        let irate = scalar_of("sum(irate(req_total{status=\"200\"}[5m]))", &s, 1020.0).unwrap();
        assert!((irate - 3.0).abs() < 1e-9, "{irate}");
        assert!(
            scalar_of("sum(irate(req_total{status=\"200\"}[5m]))", &s, 1000.0).is_none(),
            "one sample: no irate"
        );
    }

    #[test]
    fn histogram_quantile_interpolates_like_prometheus() {
        let s = store();
        // Increase in the window: 50 under 0.1, 90 under 0.5, 100 total. P95 lies in the +Inf
        // bucket: Prometheus answers the previous bound (0.5), a lower bound that passed a
        // latency limit above it; here it is +Inf ("above every bound"), which fails any limit.
        let p95 = scalar_of(
            "histogram_quantile(0.95, sum by (le) (rate(lat_seconds_bucket[5m])))",
            &s,
            1010.0,
        )
        .unwrap();
        assert!(p95.is_infinite() && p95 > 0.0, "{p95}");
        let p50 = scalar_of(
            "histogram_quantile(0.5, sum by (le) (rate(lat_seconds_bucket[5m])))",
            &s,
            1010.0,
        )
        .unwrap();
        assert!((p50 - 0.1).abs() < 1e-9, "{p50}");
        let p70 = scalar_of(
            "histogram_quantile(0.7, sum by (le) (rate(lat_seconds_bucket[5m])))",
            &s,
            1010.0,
        )
        .unwrap();
        assert!((p70 - (0.1 + 0.4 * (20.0 / 40.0))).abs() < 1e-9, "{p70}");
    }

    #[test]
    fn declared_but_empty_differs_from_absent() {
        let s = store();
        assert_eq!(
            eval(&parse("empty_total").unwrap(), &s, 1010.0).unwrap(),
            QueryValue::Vector(vec![])
        );
        assert_eq!(
            eval(&parse("ALERTS{alertstate=\"firing\"}").unwrap(), &s, 1010.0),
            Err(EvalError::Absent("ALERTS".into()))
        );
    }

    #[test]
    fn comparisons_filter_or_return_bool() {
        let s = store();
        let QueryValue::Vector(v) = eval(&parse("req_total > 50").unwrap(), &s, 1010.0).unwrap()
        else {
            panic!()
        };
        assert_eq!(v.len(), 1);
        let QueryValue::Vector(v) =
            eval(&parse("req_total > bool 50").unwrap(), &s, 1010.0).unwrap()
        else {
            panic!()
        };
        assert_eq!(v.iter().map(|x| x.1).sum::<f64>(), 1.0);
        assert_eq!(
            scalar_of("sum by (job) (req_total) * 2", &s, 1010.0),
            Some(420.0)
        );
    }

    #[test]
    fn unsupported_queries_are_named() {
        for q in [
            "predict_linear(req_total[5m], 60)",
            "req_total offset 5m",
            "topk(3, req_total)",
            "rate(req_total[5m:1m])",
            "a and b",
        ] {
            let e = check_supported(&parse(q).unwrap()).unwrap_err();
            assert!(matches!(e, EvalError::Unsupported(_)), "{q}: {e}");
        }
        for q in [
            "(sum(rate(mlsdm_http_requests_total{status=~\"5..\"}[5m])) or vector(0)) / sum(rate(mlsdm_http_requests_total[5m]))",
            "max(deriv(x[30m]))",
            "ALERTS{alertstate=\"firing\"}",
        ] {
            check_supported(&parse(q).unwrap()).unwrap();
        }
    }

    #[test]
    fn or_vector_zero_makes_no_errors_a_zero_rate() {
        let s = store();
        let q =
            "(sum(rate(req_total{status=\"404\"}[5m])) or vector(0)) / sum(rate(req_total[5m]))";
        assert_eq!(scalar_of(q, &s, 1010.0), Some(0.0));
        // Nothing fed at all: the denominator is empty, and so is the ratio (no data, never 0).
        let q = "(sum(rate(empty_total{status=~\"5..\"}[5m])) or vector(0)) / sum(rate(empty_total[5m]))";
        assert_eq!(
            eval(&parse(q).unwrap(), &s, 1010.0).unwrap(),
            QueryValue::Vector(vec![])
        );
    }

    /// A page with a line that is not exposition text is refused, naming the line; every shape
    /// a page of real exporters uses is read.
    #[test]
    fn a_page_that_is_not_exposition_text_is_refused() {
        let mut s = Store::default();
        for (page, line) in [
            ("<html><body>Sign in</body></html>\n", 1),
            ("# TYPE up gauge\nup 1\nup{a=\"b\"}\n", 3),
            ("up one\n", 1),
            ("{a=\"b\"} 1\n", 1),
        ] {
            let e = s.add_scrape("a", 0.0, page).unwrap_err();
            assert!(e.starts_with(&format!("line {line}: ")), "{page:?}: {e}");
        }
        // Shown whole or not at all: a cut secret no longer matches itself in the output pass.
        let long = format!("token=sk-{}\n", "x".repeat(80));
        let e = s.add_scrape("a", 0.0, &long).unwrap_err();
        assert!(
            !e.contains("sk-") && e.contains("a line of 89 characters"),
            "{e}"
        );
        let e = s.add_scrape("a", 0.0, "a \"quoted\" secret\n").unwrap_err();
        assert!(e.contains("`a \"quoted\" secret`"), "{e}");
        for page in ["", "\n\n", "# HELP up Whether up.\n# TYPE up gauge\n"] {
            let e = s.add_scrape("a", 0.0, page).unwrap_err();
            assert!(e.contains("has no sample"), "{page:?}: {e}");
        }
        // A sample's own timestamp (now's: an old one is refused as stale).
        let now_ms = chrono::Utc::now().timestamp_millis();
        let good = format!(
            "# HELP up Whether up.\n# TYPE up gauge\nup 1\n\nup{{a=\"b\",le=\"+Inf\"}} NaN {now_ms}\n  up{{c=\"d\"}} -Inf\nup_total 2.5e-3\n# EOF\n"
        );
        s.add_scrape("a", 0.0, &good).unwrap();
        assert_eq!(s.series.len(), 4);
        // Valid exposition prometheus-parse does not read, or reads wrong, is refused, not
        // dropped or cut.
        for page in [
            "up:rate_5m 1\n",
            "up{} 1\n",
            "up{a=\"x}y\"} 1\n",
            "up{path=\"/a,b\"} 1\n",
            "up{q=\"x=1\"} 1\n",
            "up{q=\"say \\\"hi\\\"\"} 1\n",
            // Review findings: a label named twice (the last won: a 500 counted as a 200), and a
            // bucket bound that is no number (prometheus-parse dropped the bucket).
            "up{status=\"500\",status=\"200\"} 1\n",
            "# TYPE d histogram\nd_bucket{le=\"0.1s\"} 1\n",
        ] {
            assert!(
                s.add_scrape("a", 0.0, page)
                    .unwrap_err()
                    .starts_with("line "),
                "{page:?}"
            );
        }
        // Review finding: a counter that is not a number, typed by its OpenMetrics family (no
        // `_total` in the TYPE line) or named as one whatever its TYPE, was dropped from the
        // rate, and the error rate read 0.
        for page in [
            "# TYPE r counter\nr_total{s=\"500\"} NaN\n",
            "# TYPE r_total gauge\nr_total{s=\"500\"} +Inf\n",
            "r_count NaN\n",
        ] {
            let e = s.add_scrape("a", 0.0, page).unwrap_err();
            assert!(e.contains("is not a number"), "{page:?}: {e}");
        }
        // Review 32b: a second TYPE line made prometheus-parse drop the 500 series, and a
        // quoted label name kept its quotes: both read as a page without errors.
        let e = s
            .add_scrape(
                "a",
                0.0,
                "# TYPE r_total counter\nr_total{s=\"200\"} 1\n# TYPE r_total summary\nr_total{s=\"500\"} 1\n",
            )
            .unwrap_err();
        assert!(e.contains("1 of the page's 2 sample lines"), "{e}");
        let e = s
            .add_scrape("a", 0.0, "r_total{\"s\"=\"500\"} 1\n")
            .unwrap_err();
        assert!(e.starts_with("line 1"), "{e}");
        // A blank after the comma is Prometheus's own spacing: the name is read without it.
        let mut spaced = Store::default();
        spaced
            .add_scrape("a", 0.0, "r_total{m=\"POST\", status=\"500\"} 7\n")
            .unwrap();
        assert_eq!(
            scalar_of("sum(r_total{status=~\"5..\"})", &spaced, 0.0),
            Some(7.0)
        );
    }

    /// Prometheus' `max` and `min` of NaNs are NaN (which a check reads as no value), and a NaN
    /// beside a number gives way to it.
    #[test]
    fn max_and_min_of_nans_are_nan_as_in_prometheus() {
        let mut s = Store::default();
        s.add_scrape(
            "a",
            0.0,
            "g{a=\"1\"} NaN\ng{a=\"2\"} NaN\nh{a=\"1\"} NaN\nh{a=\"2\"} 3\n",
        )
        .unwrap();
        for q in ["max(g)", "min(g)"] {
            assert!(scalar_of(q, &s, 10.0).unwrap().is_nan(), "{q}");
        }
        assert_eq!(scalar_of("max(h)", &s, 10.0), Some(3.0));
        assert_eq!(scalar_of("min(h)", &s, 10.0), Some(3.0));
    }

    /// Review 32b: a labelled counter appears on its first increment; the 5xx series of a
    /// release that starts failing between two scrapes counted no error (it had one sample).
    #[test]
    fn a_counter_series_that_appears_counts_from_zero() {
        let mut s = Store::default();
        s.add_scrape(
            "a",
            0.0,
            "# TYPE r_total counter\nr_total{status=\"200\"} 1000\n",
        )
        .unwrap();
        s.add_scrape(
            "a",
            10.0,
            "# TYPE r_total counter\nr_total{status=\"200\"} 1010\nr_total{status=\"500\"} 90\n",
        )
        .unwrap();
        let errors = scalar_of("sum(increase(r_total{status=\"500\"}[1m]))", &s, 10.0).unwrap();
        assert!(errors > 80.0, "{errors}");
        // A series on the first page has no zero before it (nothing says it was ever zero).
        let ok = s
            .series
            .iter()
            .find(|x| x.labels.get("status").map(String::as_str) == Some("200"))
            .unwrap();
        assert_eq!(ok.samples.first(), Some(&(0.0, 1000.0)));
    }

    #[test]
    fn counter_resets_are_handled() {
        let mut s = Store::default();
        s.add_scrape("a", 0.0, "# TYPE c_total counter\nc_total 50\n")
            .unwrap();
        s.add_scrape("a", 10.0, "# TYPE c_total counter\nc_total 60\n")
            .unwrap();
        s.add_scrape("a", 20.0, "# TYPE c_total counter\nc_total 5\n")
            .unwrap();
        let inc = scalar_of("increase(c_total[30s])", &s, 20.0).unwrap();
        // 10 before the reset and 5 after: 15 over 20 s, extrapolated to the 30 s window.
        assert!((inc - 22.5).abs() < 1e-9, "{inc}");
    }

    /// What a page must not pass as: the same series twice (Prometheus refuses the scrape; kept,
    /// the second read as a reset and a 50 % error rate passed), samples timestamped far from
    /// the scrape (stale, or from the future), a counter at +Inf (its ratio was 0), a histogram
    /// of one `+Inf` bucket written twice (a crash).
    #[test]
    fn pages_that_cannot_be_read_as_now_are_refused_or_decide_nothing() {
        let mut s = Store::default();
        let why = s
            .add_scrape(
                "a",
                1.0,
                "# TYPE r_total counter\nr_total{status=\"200\"} 5\nr_total{status=\"200\"} 0\n",
            )
            .unwrap_err();
        assert!(why.contains("twice"), "{why}");
        let old = chrono::Utc::now().timestamp_millis() - 2 * 3600 * 1000;
        let why = s
            .add_scrape("a", 1.0, &format!("r_total 5 {old}\n"))
            .unwrap_err();
        assert!(why.contains("stale or from the future"), "{why}");
        let mut s = Store::default();
        s.add_scrape("a", 0.0, "# TYPE r_total counter\nr_total 5\n")
            .unwrap();
        let why = s
            .add_scrape("a", 10.0, "# TYPE r_total counter\nr_total +Inf\n")
            .unwrap_err();
        assert!(why.contains("not a number"), "{why}");
        // Untyped, its name says it counts: refused too (read, it gave no rate, and a query's
        // `or vector(0)` made that 0).
        s.add_scrape("a", 20.0, "u_total 5\n").unwrap();
        let why = s.add_scrape("a", 30.0, "u_total +Inf\n").unwrap_err();
        assert!(why.contains("not a number"), "{why}");
        // A timestamp that is not integer milliseconds is refused, not read as now.
        for ts in ["1700000000.25", "1.0", "abc"] {
            let why = Store::default()
                .add_scrape("a", 0.0, &format!("r_total 5 {ts}\n"))
                .unwrap_err();
            assert!(why.starts_with("line 1: "), "{ts}: {why}");
        }
        // A gauge named *_total going down is no counter reset.
        let mut g = Store::default();
        for (t, v) in [(1.0, "1000"), (2.0, "990")] {
            g.add_scrape(
                "http://x",
                t,
                &format!("# TYPE items_total gauge\nitems_total {v}\n"),
            )
            .unwrap();
        }
        assert!(g.mixed_processes().is_none());
        let mut s = Store::default();
        s.add_scrape(
            "a",
            0.0,
            "h_bucket{le=\"+Inf\"} 1\nh_bucket{le=\"Inf\"} 1\nh_count 1\nh_sum 1\n",
        )
        .unwrap();
        s.add_scrape(
            "a",
            10.0,
            "h_bucket{le=\"+Inf\"} 3\nh_bucket{le=\"Inf\"} 3\nh_count 3\nh_sum 3\n",
        )
        .unwrap();
        let q = scalar_of(
            "histogram_quantile(0.95, sum by (le) (rate(h_bucket[1m])))",
            &s,
            10.0,
        );
        assert!(q.is_none_or(f64::is_nan), "{q:?}");
    }
}

#[cfg(test)]
mod huge_number_tests {
    use super::{huge_number, parse};

    /// The `promql` fuzz target's crash: a duration in exponent form past what promql-parser's
    /// duration conversion takes (it panics, and aborts under the fuzzer).
    #[test]
    fn a_huge_number_in_exponent_form_is_a_syntax_error_not_a_panic() {
        let crash = std::fs::read("fuzz/regressions/promql/exponent-duration-overflow").unwrap();
        let query = String::from_utf8_lossy(&crash);
        assert!(parse(&query).unwrap_err().contains("out of range"));
        assert_eq!(
            huge_number("rate(x[1e888888888888])"),
            Some("1e888888888888")
        );
        assert_eq!(huge_number("x > .5e30"), Some(".5e30"));
        // Names, label values and ordinary numbers are left to the parser.
        for ok in [
            "rate(http2e99_total[5m]) > 1e3",
            "x{job=\"1e99\"} > 0.5",
            "histogram_quantile(0.99, rate(x_bucket[1h])) > 1e17",
        ] {
            assert_eq!(huge_number(ok), None, "{ok}");
            assert!(parse(ok).is_ok(), "{ok}");
        }
    }
}

#[cfg(test)]
mod bound_tests {
    use super::{
        MAX_DEPTH, MAX_QUERY, QueryValue, Store, check_supported, eval, lookback, parse, selectors,
    };

    /// A query padded with `unit` to `MAX_QUERY` bytes between `head` and `tail`.
    fn longest(head: &str, unit: &str, middle: &str, close: &str) -> String {
        let n = (MAX_QUERY - head.len() - middle.len()) / (unit.len() + close.len());
        format!("{head}{}{middle}{}", unit.repeat(n), close.repeat(n))
    }

    /// A `--checks` file's chain of 50,000 `up + up` overflowed the main thread's stack when the
    /// run walked its tree (exit 134). The worst trees that fit in `MAX_QUERY` (each a deep
    /// chain, call or bracket nesting) are refused with a message, and their trees dropped, on a
    /// test thread's stack in a debug build.
    #[test]
    fn hostile_queries_are_refused_not_a_crash() {
        let chain = format!("a{}", "+a".repeat((MAX_QUERY - 1) / 2));
        let right =
            format!("{}a", "a+(".repeat((MAX_QUERY - 1) / 4)) + &")".repeat((MAX_QUERY - 1) / 4);
        for query in [
            chain,
            right,
            longest("", "sum(", "up", ")"),
            longest("", "(", "up", ")"),
            longest("", "-", "up", ""),
            longest("", "max_over_time((", "up", ")[5m:1m])"),
        ] {
            assert!(query.len() <= MAX_QUERY, "{}", query.len());
            let error = parse(&query).expect_err("a hostile query parsed");
            assert!(error.contains("levels deep"), "{error}");
        }
        let long = format!("up{}", " ".repeat(MAX_QUERY - 1));
        assert!(parse(&long).unwrap_err().contains("bytes long"));
    }

    /// The deepest query accepted is evaluated, checked and walked on a test thread's stack in a
    /// debug build; one level more is refused.
    #[test]
    fn the_deepest_query_accepted_evaluates() {
        // `sum(` adds a level per call; the selector is the last.
        let deepest = format!(
            "{}up{}",
            "sum(".repeat(MAX_DEPTH - 1),
            ")".repeat(MAX_DEPTH - 1)
        );
        let expr = parse(&deepest).unwrap();
        let mut store = Store::default();
        store.add_scrape("a", 0.0, "up 1\n").unwrap();
        check_supported(&expr).unwrap();
        assert_eq!(selectors(&expr).len(), 1);
        assert_eq!(lookback(&expr).as_secs(), 0);
        let QueryValue::Vector(v) = eval(&expr, &store, 10.0).unwrap() else {
            panic!("not a vector")
        };
        assert_eq!(v.len(), 1);
        let deeper = format!("sum({deepest})");
        assert!(parse(&deeper).unwrap_err().contains("levels deep"));
    }

    /// Brackets in strings (escaped quotes in them too) and comments are text, not nesting.
    #[test]
    fn brackets_in_strings_and_comments_do_not_nest() {
        let many = "(".repeat(100);
        for query in [
            format!("up{{job=\"{many}\"}}"),
            format!("up{{job='\\'{many}'}}"),
            format!("up{{job=~`a`}} # {many}\n+ up"),
            format!("label_replace(up, \"a\", `{many}`, \"b\", \"c\")"),
        ] {
            parse(&query).unwrap_or_else(|e| panic!("{query}: {e}"));
        }
    }
}

#[cfg(test)]
mod scope_tests {
    use super::{Scope, parse, selectors};

    /// Every selector of a scoped query carries the scope, `or` groups each, and the text sent
    /// parses back (the catalog's queries are in tests/prometheus.rs, against a real server).
    #[test]
    fn a_scope_reaches_every_selector() {
        let alerts = Scope::parse(r#"{namespace="prod"}"#)
            .unwrap()
            .apply_text(r#"ALERTS{alertstate="firing"}"#)
            .unwrap();
        assert_eq!(alerts, r#"ALERTS{alertstate="firing"}"#);
        let scope = Scope::parse(r#"{namespace="prod", job=~"mlsdm|api"}"#).unwrap();
        for (query, want) in [
            (
                r#"sum(rate(mlsdm_http_requests_total{status=~"5.."}[5m])) / sum(rate(mlsdm_http_requests_total[5m]))"#,
                2,
            ),
            (
                r#"up == 1 and on (job, instance) group by (job, instance) ({__name__=~"mlsdm_.+"})"#,
                2,
            ),
            (
                "histogram_quantile(0.95, sum by (le) (rate(x_bucket[5m] offset 1m)))",
                1,
            ),
            ("max_over_time(rate(x[1m])[10m:1m])", 1),
            (r#"x{a="1" or b="2"}"#, 1),
            ("vector(1) + 2", 0),
            // The alerts' series are left unscoped (is_alerts): the last selector only.
            (r#"count(ALERTS{alertstate="firing"}) + count(up)"#, 1),
        ] {
            let scoped = scope.apply_text(query).unwrap();
            let back = parse(&scoped).unwrap();
            let found: Vec<_> = selectors(&back)
                .into_iter()
                .filter(|vs| !super::is_alerts(vs))
                .collect();
            assert_eq!(found.len(), want, "{query} -> {scoped}");
            for vs in found {
                let groups = if vs.matchers.or_matchers.is_empty() {
                    vec![vs.matchers.matchers.clone()]
                } else {
                    vs.matchers.or_matchers.clone()
                };
                for g in groups {
                    assert!(
                        g.iter().any(|m| m.name == "namespace" && m.value == "prod")
                            && g.iter().any(|m| m.name == "job"),
                        "{query} -> {scoped}"
                    );
                }
            }
        }
        assert!(
            scope
                .apply_text("rate(x[5m] offset 1m)")
                .unwrap()
                .contains("offset 1m")
        );
    }

    #[test]
    fn a_scope_is_label_matchers_only() {
        for bad in [
            "namespace=prod",
            "up",
            r#"up{namespace="x"}"#,
            r#"{__name__="up"}"#,
            r#"{a="1" or b="2"}"#,
            r#"{a="1"} offset 5m"#,
            "",
            "{}",
        ] {
            assert!(Scope::parse(bad).is_err(), "{bad:?}");
        }
        // A negative matcher alone would match every series, which PromQL refuses for a
        // selector on its own; as a scope it is added to named selectors, and is fine.
        let not_staging = Scope::parse(r#"{namespace!="staging"}"#).unwrap();
        assert_eq!(
            not_staging.apply_text("sum(rate(x[5m]))").unwrap(),
            r#"sum(rate(x{namespace!="staging"}[5m]))"#
        );
        assert_eq!(
            Scope::parse(r#" {namespace="mlsdm-production"} "#)
                .unwrap()
                .text(),
            r#"{namespace="mlsdm-production"}"#
        );
    }
}

#[cfg(test)]
mod process_tests {
    use super::Store;

    fn page(created: f64) -> String {
        format!(
            "# TYPE mlsdm_events_processed_total counter\nmlsdm_events_processed_total 0.0\n# TYPE mlsdm_events_processed_created gauge\nmlsdm_events_processed_created {created}\n"
        )
    }

    fn store(scrapes: &[(f64, f64)]) -> Store {
        let mut s = Store::default();
        for (t, created) in scrapes {
            s.add_scrape("http://lb", *t, &page(*created)).unwrap();
        }
        s
    }

    /// A load-balanced endpoint answers from several processes: one creation time seen again
    /// after another, or one from before the previous scrape, is not a restart.
    #[test]
    fn pages_from_more_than_one_process_are_told_apart() {
        let start = 1_800_000_000.0;
        assert!(
            store(&[(start + 100.0, start), (start + 110.0, start)])
                .mixed_processes()
                .is_none()
        );
        // A restart: the new process created its counters after the last scrape.
        assert!(
            store(&[
                (start + 100.0, start),
                (start + 110.0, start + 105.0),
                (start + 120.0, start + 105.0)
            ])
            .mixed_processes()
            .is_none()
        );
        // Back and forth between two pods.
        let why = store(&[
            (start + 100.0, start),
            (start + 110.0, start + 90.0),
            (start + 120.0, start),
        ])
        .mixed_processes()
        .unwrap();
        assert!(
            why.starts_with("http://lb answered from more than one process"),
            "{why}"
        );
        // Another pod, older than the previous scrape: not a restart even seen once.
        assert!(
            store(&[(start + 1000.0, start + 500.0), (start + 1010.0, start)])
                .mixed_processes()
                .is_some()
        );
        // Pages without creation times (another exporter) say nothing either way.
        let mut s = Store::default();
        s.add_scrape("http://x", 1.0, "up 1\n").unwrap();
        s.add_scrape("http://x", 2.0, "up 1\n").unwrap();
        assert!(s.mixed_processes().is_none());
        // Without them, a counter going down may be another pod answering: refused, where two
        // pods taking turns (one at 50 % errors) read as resets and passed.
        for (t, v) in [(1.0, "100"), (2.0, "40"), (3.0, "110")] {
            s.add_scrape(
                "http://x",
                t,
                &format!("# TYPE req_total counter\nreq_total{{status=\"500\"}} {v}\n"),
            )
            .unwrap();
        }
        let why = s.mixed_processes().unwrap();
        assert!(why.contains("req_total went down between scrapes"), "{why}");
        // Review finding: pods taking turns, only one of which exports creation times, passed
        // (only the pages that had them were compared).
        let mut s = store(&[(start + 100.0, start), (start + 120.0, start)]);
        s.add_scrape("http://lb", start + 110.0, "up 1\n").unwrap();
        let why = s.mixed_processes().unwrap();
        assert!(
            why.contains("some pages with *_created samples and some without"),
            "{why}"
        );
    }
}
