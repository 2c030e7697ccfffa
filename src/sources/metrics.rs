//! Facts for `metrics` checks: samples scraped from each target's `/health/metrics` (once, or
//! repeatedly over `--observe`) and evaluated with the check's PromQL, or the answers of a
//! Prometheus server. The same bounds as the http source (timeouts, body cap).

// Epoch timestamps and windows are float arithmetic on small, positive numbers.
#![allow(
    clippy::cast_possible_truncation,
    clippy::cast_sign_loss,
    clippy::cast_precision_loss
)]

use super::http::{HttpOptions, ResponseFacts, Target, fetch, fetch_on, join};
use crate::checks::{HttpRequest, MetricsProbe, Window};
use crate::facts::service::MetricOutcome;
use crate::promql::{self, QueryValue, Store};
use std::collections::{BTreeMap, BTreeSet};
use std::fmt::Write as _;
use std::time::{Duration, Instant};

/// Largest metrics page or Prometheus answer: a page of a busy service (or a range query over a
/// window) is often several MB, which is data, not abuse.
pub(super) const METRICS_BODY_CAP: usize = 64 << 20;

/// Where MLSDM serves its Prometheus page (there is no `/metrics`).
pub(super) const METRICS_PATH: &str = "/health/metrics";

/// The targets scraped: each pod when the cluster gives them (through the API server), else the
/// --endpoint URLs. Both would count the pod behind an endpoint twice, and an endpoint in front
/// of several replicas (a Service, an ingress) answers from one pod at a time: a live audit
/// given --endpoint scraped it, found "more than one process" behind it, and every metrics
/// check of a multi-replica release was an error (review finding).
fn scraped(targets: &[Target]) -> impl Iterator<Item = &Target> {
    let pods = targets.iter().any(|t| t.is_proxy() && t.per_pod);
    targets.iter().filter(move |t| {
        if pods {
            t.is_proxy() && t.per_pod
        } else {
            !t.is_proxy()
        }
    })
}

/// Scrapes `/health/metrics` from every target (each pod, or each --endpoint), once or
/// repeatedly over `--observe`.
pub(super) async fn scrape(targets: &[Target], opts: &HttpOptions) -> Result<Store, String> {
    let metrics_req = HttpRequest::get(METRICS_PATH);
    let targets: Vec<Target> = scraped(targets).cloned().collect();
    if targets.is_empty() {
        return Err(
            "no pod of an MLSDM workload to scrape (give --endpoint or --prometheus)".into(),
        );
    }
    let mut store = Store::default();
    let start = Instant::now();
    let epoch = |i: Instant| {
        std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map_or(0.0, |d| d.as_secs_f64())
            - i.elapsed().as_secs_f64()
    };
    let interval = if opts.observe.is_zero() {
        Duration::ZERO
    } else {
        (opts.observe / 30).max(Duration::from_secs(1))
    };
    let bar = (opts.progress && !opts.observe.is_zero()).then(|| {
        let b = indicatif::ProgressBar::new(opts.observe.as_secs());
        b.set_style(
            indicatif::ProgressStyle::with_template("observing metrics {bar:30} {pos}/{len}s")
                .unwrap_or_else(|_| indicatif::ProgressStyle::default_bar()),
        );
        b
    });
    let mut errors = Vec::new();
    let mut ok = 0;
    let mut rounds = 0;
    loop {
        rounds += 1;
        let now = Instant::now();
        let mut tasks = tokio::task::JoinSet::new();
        for target in &targets {
            let (target, req) = (target.clone(), metrics_req.clone());
            tasks.spawn(async move {
                let res = fetch_on(&target, &req, None, METRICS_BODY_CAP).await;
                (target, res)
            });
        }
        let t = epoch(now);
        while let Some(joined) = tasks.join_next().await {
            // A scrape task that panicked is a target with no data this round: an error.
            let (target, res) = match joined {
                Ok(done) => done,
                Err(e) => {
                    errors.push(format!("a scrape did not complete: {e}"));
                    continue;
                }
            };
            match res {
                Ok(r) if r.status == 200 => {
                    match store.add_scrape(&target.instance(), t, &r.body) {
                        Ok(()) => ok += 1,
                        Err(e) => errors.push(format!(
                            "{}/health/metrics: not Prometheus text: {e}",
                            target.display
                        )),
                    }
                }
                Ok(r) => errors.push(format!(
                    "{}/health/metrics answered {}",
                    target.display, r.status
                )),
                Err(e) => errors.push(e),
            }
        }
        if let Some(b) = &bar {
            b.set_position(start.elapsed().as_secs().min(opts.observe.as_secs()));
        }
        // An observation is at least two rounds, however long one takes: a rate needs two
        // scrapes, and a page slow to serve or to read (megabytes of series) gave one, which
        // left every rate no-data and the run passing.
        if start.elapsed() + interval > opts.observe && (opts.observe.is_zero() || rounds >= 2) {
            break;
        }
        tokio::time::sleep(interval.saturating_sub(now.elapsed())).await;
    }
    if let Some(b) = bar {
        b.finish_and_clear();
    }
    // Every target must have answered every round: results computed from the targets that
    // answered would claim to cover the ones that did not (one pod down, one --endpoint refused).
    if ok == 0 || !errors.is_empty() {
        errors.sort();
        errors.dedup();
        return Err(errors.join("; "));
    }
    if let Some(why) = store.mixed_processes() {
        return Err(why);
    }
    Ok(store)
}

pub(super) fn window_of(
    for_window: Option<&Window>,
    opts: &HttpOptions,
) -> (Option<u64>, Option<u64>) {
    let asked = for_window.map(Window::secs);
    // --window shortens a check's `for` (smoke runs, a rollout younger than the window); a check
    // without one stays an instant query. It never lengthens it: a failure must last the whole
    // window to fail, so `--window 24h` over a `for: 5m` check passed a 5xx storm of two hours
    // on one healthy point (and, before the rollout, on the old version's samples).
    let window = asked.map(|a| opts.window.map_or(a, |w| w.as_secs().min(a)));
    (asked, window)
}

/// Evaluates a metrics check's query (parsed when the checks loaded) over scraped samples.
pub(super) fn evaluate_scraped(
    probe: &MetricsProbe,
    store: &Store,
    opts: &HttpOptions,
    targets: &[Target],
) -> MetricOutcome {
    let expr = probe.query.expr();
    let times = store.times();
    let Some(&end) = times.last() else {
        return MetricOutcome::NoData("nothing was scraped".into());
    };
    // A URL given with --endpoint may be a Service or an Ingress answering from pods in turn.
    // Without `*_created` samples nothing tells that from one process whose counters grew
    // (a switch to a pod whose counters are all higher reads as traffic), so a rate over its
    // pages decides nothing; pods scraped through the API server are one process each.
    if promql::reads_counter_growth(expr)
        && let Some(t) =
            scraped(targets).find(|t| !t.is_proxy() && !store.tells_processes_apart(&t.instance()))
    {
        return MetricOutcome::NoData(format!(
            "{}'s pages carry no *_created sample, so one process cannot be told from several answering in turn (a Service or an ingress): a rate over them may mix pods' counters; scrape each pod (a live audit does, through the API server) or give --prometheus",
            t.display
        ));
    }
    let (asked, window) = window_of(probe.window.as_ref(), opts);
    let at: Vec<f64> = match window {
        Some(w) => times
            .iter()
            .copied()
            .filter(|t| *t >= end - w as f64)
            .collect(),
        None => vec![end],
    };
    let mut points = Vec::new();
    for t in at {
        match promql::eval(expr, store, t) {
            Ok(v) => points.push((t, v)),
            Err(e @ promql::EvalError::Absent(_)) => return MetricOutcome::NoData(e.to_string()),
            Err(e) => return MetricOutcome::Error(e.to_string()),
        }
    }
    let covered = times.first().map_or(0.0, |first| end - first);
    // A 0 from `increase(errors[1h])` over 4 s of scrapes counts those 4 s, not the hour: it
    // passed "no errors in the last hour" on a counter already at 4,000.
    let lower_bound = promql::counted_range(expr)
        .filter(|range| covered < range.as_secs_f64() * 0.9)
        .map(|range| {
            format!(
                "the scrapes cover {covered:.0}s of the {} the query counts over: a count of those seconds says nothing of the rest; observe for that long (--observe) or ask a Prometheus (--prometheus)",
                humantime::format_duration(range)
            )
        });
    MetricOutcome::Points {
        points,
        asked,
        covered,
        window,
        lower_bound,
        only_failure: None,
        source: format!(
            "{} scrape(s) of {}",
            times.len(),
            scraped(targets)
                .map(|t| t.display.as_str())
                .collect::<Vec<_>>()
                .join(", ")
        ),
    }
}

/// The Prometheus HTTP API's answers the tool reads (`/api/v1/query`, `/api/v1/query_range`,
/// `/api/v1/rules`), typed: an answer that does not match this schema is an error, never an
/// empty result (a `"status":"success"` with no `result` would otherwise read as "no alert is
/// firing", one with no `groups` as "no rules").
mod prom_api {
    use super::ResponseFacts;
    use serde::Deserialize;

    #[derive(Deserialize)]
    #[serde(tag = "status", rename_all = "lowercase")]
    enum Answer<D> {
        Success {
            data: D,
            /// What Prometheus (or a Thanos or Mimir querier: a store that did not answer, a
            /// partial response) says is wrong with `data`. Prometheus 3's `infos` (a counter
            /// without `_total`) are not read: they qualify nothing.
            #[serde(default)]
            warnings: Vec<String>,
        },
        Error {
            #[serde(rename = "errorType", default)]
            error_type: String,
            #[serde(default)]
            error: String,
        },
    }

    #[derive(Deserialize)]
    #[serde(tag = "resultType", content = "result", rename_all = "lowercase")]
    pub enum Data {
        Scalar(Sample),
        Vector(Vec<Instant>),
        Matrix(Vec<Range>),
    }

    /// `[ <unix time>, "<value>" ]`
    #[derive(Deserialize)]
    pub struct Sample(pub f64, String);

    impl Sample {
        pub fn value(&self) -> f64 {
            match self.1.as_str() {
                "NaN" => f64::NAN,
                "+Inf" => f64::INFINITY,
                "-Inf" => f64::NEG_INFINITY,
                s => s.parse().unwrap_or(f64::NAN),
            }
        }
    }

    #[derive(Deserialize)]
    pub struct Instant {
        pub metric: crate::promql::Labels,
        pub value: Sample,
    }

    #[derive(Deserialize)]
    pub struct Range {
        pub metric: crate::promql::Labels,
        pub values: Vec<Sample>,
    }

    /// `/api/v1/rules`' data: rule groups, each with its rules.
    #[derive(Deserialize)]
    pub struct Rules {
        pub groups: Vec<RuleGroup>,
    }

    #[derive(Deserialize)]
    pub struct RuleGroup {
        pub rules: Vec<Rule>,
    }

    #[derive(Deserialize)]
    pub struct Rule {
        #[serde(rename = "type")]
        pub kind: RuleKind,
        /// `ok`, `err` (its last evaluation failed) or `unknown` (not evaluated yet): only a
        /// rule that evaluates can fire.
        #[serde(default)]
        pub health: String,
        /// The rule's expression: one that reads only series Prometheus does not have fires
        /// nothing.
        #[serde(default)]
        pub query: String,
    }

    #[derive(Deserialize, PartialEq, Eq)]
    #[serde(rename_all = "lowercase")]
    pub enum RuleKind {
        Alerting,
        Recording,
    }

    /// The answer's data, or why it is not one.
    pub fn decode<D: serde::de::DeserializeOwned>(resp: &ResponseFacts) -> Result<D, String> {
        let content_type = resp.headers.get("content-type").map_or("", String::as_str);
        let answer: Answer<D> = serde_json::from_str(&resp.body).map_err(|e| {
            if resp.json.is_null() {
                format!(
                    "answered HTTP {} with {} that is not the Prometheus API's JSON (is the URL Prometheus' base URL?)",
                    resp.status,
                    if content_type.is_empty() { "a body" } else { content_type }
                )
            } else if !(200..300).contains(&resp.status) {
                format!(
                    "answered HTTP {}, not a Prometheus API answer (is the URL Prometheus' base URL?)",
                    resp.status
                )
            } else {
                format!("answered HTTP {} with JSON that does not match the Prometheus API: {e}", resp.status)
            }
        })?;
        // Before Prometheus 2.54, informational annotations (a counter not named `_total`,
        // buckets fixed for monotonicity) came in `warnings` too, marked "PromQL info:": they
        // qualify nothing, as `infos` do now.
        let warnings: Vec<String> = match &answer {
            Answer::Success { warnings, .. } => warnings
                .iter()
                .filter(|w| !w.starts_with("PromQL info:"))
                .cloned()
                .collect(),
            Answer::Error { .. } => Vec::new(),
        };
        match answer {
            // Prometheus answers success with 200 only: a success body under another status (a
            // proxy's error page wrapping a cached answer, a broken stand-in) is not an answer
            // (review finding: HTTP 500 with a success body passed every metrics check).
            Answer::Success { .. } if !(200..300).contains(&resp.status) => Err(format!(
                "answered HTTP {} with a success body: not a Prometheus API answer",
                resp.status
            )),
            Answer::Success { data, .. } if warnings.is_empty() => Ok(data),
            // A partial answer decides nothing: an alert query that missed the store holding
            // the firing alert answers "none firing".
            Answer::Success { .. } => Err(format!(
                "answered with warnings, so the result may be partial: {}",
                warnings.join("; ")
            )),
            Answer::Error { error_type, error } => Err(format!(
                "rejected the query (HTTP {}, {error_type}): {error}",
                resp.status
            )),
        }
    }
}

/// What a Prometheus query needs from a check (the check itself holds compiled programs).
#[derive(Debug, Clone)]
pub(super) struct MetricQuery {
    pub(super) id: String,
    pub(super) query: String,
    pub(super) window: Option<Window>,
}

/// How far from the time asked an answer's timestamps may be: Prometheus answers at exactly the
/// evaluation time it was given (printed to the millisecond).
const ANSWER_SKEW_SECONDS: f64 = 1.0;

pub(super) async fn prometheus_query(
    client: &reqwest::Client,
    base: &str,
    check: &MetricQuery,
    opts: &HttpOptions,
) -> MetricOutcome {
    // The one place a query leaves for Prometheus: `--prometheus-selector` scopes them all,
    // the checks' and the guards' alike.
    let scoped;
    let query = match &opts.prometheus_scope {
        None => &check.query,
        Some(scope) => match scope.apply_text(&check.query) {
            Ok(text) => {
                scoped = text;
                &scoped
            }
            Err(e) => return MetricOutcome::Error(format!("--prometheus-selector: {e}")),
        },
    };
    let now = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0.0, |d| d.as_secs_f64());
    let (asked, window) = window_of(check.window.as_ref(), opts);
    let (path, params) = match window {
        Some(w) => {
            let step = (w as f64 / 60.0).max(1.0);
            (
                "/api/v1/query_range",
                vec![
                    ("query", query.clone()),
                    ("start", format!("{:.3}", now - w as f64)),
                    ("end", format!("{now:.3}")),
                    ("step", format!("{step}")),
                ],
            )
        }
        None => (
            "/api/v1/query",
            vec![("query", query.clone()), ("time", format!("{now:.3}"))],
        ),
    };
    let mut url = match reqwest::Url::parse(&join(base, path)) {
        Ok(u) => u,
        Err(e) => return MetricOutcome::Error(format!("--prometheus {base}: {e}")),
    };
    url.query_pairs_mut()
        .extend_pairs(params.iter().map(|(k, v)| (*k, v.as_str())));
    let req = HttpRequest::get("");
    let resp = match fetch(client, url.as_str(), &req, None, METRICS_BODY_CAP).await {
        Ok(r) => r,
        Err(e) => return MetricOutcome::Error(format!("Prometheus {e}")),
    };
    let data = match prom_api::decode::<prom_api::Data>(&resp) {
        Ok(d) => d,
        Err(why) => return MetricOutcome::Error(format!("Prometheus at {base}: {why}")),
    };
    // The answer must be to the question asked: an instant query's vector or scalar at the time
    // asked, a range query's matrix within its range. A matrix answering an instant query (an
    // hour-old good point next to the bad current one) passed on its best point, and a vector
    // stamped hours before the time asked (a caching proxy) passed as now.
    let asked_at = |t: f64| (t - now).abs() <= ANSWER_SKEW_SECONDS;
    // And of the query's type: a scalar answering `ALERTS{...}` (which can only be a vector)
    // read as "no series", and no alert firing passed (review finding).
    let scalar_query = promql::parse(query)
        .ok()
        .map(|e| e.value_type() == promql_parser::parser::value::ValueType::Scalar);
    let answered_scalar = matches!(data, prom_api::Data::Scalar(_));
    if scalar_query.is_some_and(|scalar| scalar != answered_scalar)
        && !matches!(data, prom_api::Data::Matrix(_))
    {
        return MetricOutcome::Error(format!(
            "Prometheus at {base} answered a {} query with a {}",
            if answered_scalar { "vector" } else { "scalar" },
            if answered_scalar { "scalar" } else { "vector" }
        ));
    }
    let mut points: Vec<(f64, QueryValue)> = Vec::new();
    match (window, data) {
        (None, prom_api::Data::Scalar(s)) if asked_at(s.0) => {
            points.push((s.0, QueryValue::Scalar(s.value())));
        }
        (None, prom_api::Data::Vector(samples)) if samples.iter().all(|s| asked_at(s.value.0)) => {
            let v = samples
                .into_iter()
                .map(|s| (s.metric, s.value.value()))
                .collect();
            points.push((now, QueryValue::Vector(v)));
        }
        (None, prom_api::Data::Scalar(_) | prom_api::Data::Vector(_)) => {
            return MetricOutcome::Error(format!(
                "Prometheus at {base} answered the query for time {now:.3} with samples of another time (a cached or stale answer)"
            ));
        }
        (Some(_), prom_api::Data::Scalar(_) | prom_api::Data::Vector(_)) => {
            return MetricOutcome::Error(format!(
                "Prometheus at {base} answered a range query (query_range) with an instant result, not a matrix"
            ));
        }
        (None, prom_api::Data::Matrix(_)) => {
            return MetricOutcome::Error(format!(
                "Prometheus at {base} answered an instant query with a matrix, not a vector or scalar"
            ));
        }
        (Some(w), prom_api::Data::Matrix(series)) => {
            // A query frontend (Thanos, Cortex) aligns the range to its step: the first point
            // may be up to a step before the start asked.
            let step = (w as f64 / 60.0).max(1.0);
            let start = now - w as f64 - step - ANSWER_SKEW_SECONDS;
            let end = now + ANSWER_SKEW_SECONDS;
            if let Some(t) = series
                .iter()
                .flat_map(|s| s.values.iter().map(|p| p.0))
                .find(|t| !(start..=end).contains(t))
            {
                return MetricOutcome::Error(format!(
                    "Prometheus at {base} answered the range query with a point at {t:.3}, outside the range asked ({:.3} to {now:.3})",
                    now - w as f64
                ));
            }
            let mut by_time: BTreeMap<i64, Vec<(promql::Labels, f64)>> = BTreeMap::new();
            for s in series {
                for pair in s.values {
                    by_time
                        .entry((pair.0 * 1000.0) as i64)
                        .or_default()
                        .push((s.metric.clone(), pair.value()));
                }
            }
            points = by_time
                .into_iter()
                .map(|(t, v)| (t as f64 / 1000.0, QueryValue::Vector(v)))
                .collect();
            if points.is_empty() {
                return MetricOutcome::NoData(format!(
                    "Prometheus at {base} has no samples for the query in the last {}s",
                    window.unwrap_or(0)
                ));
            }
        }
    }
    let covered = points.first().map_or(0.0, |(t, _)| now - t);
    MetricOutcome::Points {
        points,
        asked,
        covered,
        window,
        source: format!("Prometheus at {base}"),
        // Prometheus holds the whole range the query counts over (its retention, not this run).
        lower_bound: None,
        only_failure: None,
    }
}

/// Prometheus' alerting rules (`GET /api/v1/rules?type=alert`): how many, and how many of them
/// do not evaluate (`health` `err`: the last evaluation failed; `unknown`: not evaluated yet).
/// With none that evaluates, `ALERTS` is empty whatever the service does.
pub(super) struct AlertingRules {
    pub count: usize,
    pub not_evaluating: usize,
    /// The alerting rules' expressions.
    pub queries: Vec<String>,
}

/// [`AlertingRules`] of the Prometheus at `base`. An answer that cannot be read is an error.
pub(super) async fn prometheus_alerting_rules(
    client: &reqwest::Client,
    base: &str,
) -> Result<AlertingRules, String> {
    let mut url = reqwest::Url::parse(&join(base, "/api/v1/rules"))
        .map_err(|e| format!("--prometheus {base}: {e}"))?;
    url.query_pairs_mut().append_pair("type", "alert");
    let req = HttpRequest::get("");
    let resp = fetch(client, url.as_str(), &req, None, METRICS_BODY_CAP)
        .await
        .map_err(|e| format!("Prometheus {e}"))?;
    let rules = prom_api::decode::<prom_api::Rules>(&resp)
        .map_err(|why| format!("Prometheus at {base}: {why}"))?;
    // Counted by kind as well: a server that ignores `type` lists recording rules too.
    let alerting: Vec<&prom_api::Rule> = rules
        .groups
        .iter()
        .flat_map(|g| &g.rules)
        .filter(|r| r.kind == prom_api::RuleKind::Alerting)
        .collect();
    Ok(AlertingRules {
        count: alerting.len(),
        // A server that does not say (no `health`) is taken at its word that rules evaluate.
        not_evaluating: alerting
            .iter()
            .filter(|r| !r.health.is_empty() && r.health != "ok")
            .count(),
        queries: alerting.iter().map(|r| r.query.clone()).collect(),
    })
}

/// Why none of `rules` could fire now, if so: each reads only series of which Prometheus has no
/// sample (within the release `--prometheus-selector` scopes). MLSDM 1.2.0's own alerting rules
/// read request and error counters it declares and never feeds: they evaluate (health `ok`),
/// `ALERTS` stays empty whatever the service does, and no-alerts-firing passed on that (review
/// finding). A rule that cannot be read here, reads no named series (`vector(1)`), or asks for
/// a series' absence (`absent(...)`, which fires on exactly that) could fire: `None`.
pub(super) async fn rules_without_series(
    client: &reqwest::Client,
    base: &str,
    rules: &AlertingRules,
    opts: &HttpOptions,
) -> Result<Option<String>, String> {
    let mut per_rule: Vec<Vec<String>> = Vec::new();
    for q in &rules.queries {
        if q.contains("absent") {
            return Ok(None);
        }
        let Ok(parsed) = promql::Query::parse(q) else {
            return Ok(None);
        };
        let names = promql::metric_names(parsed.expr());
        if names.is_empty() {
            return Ok(None);
        }
        per_rule.push(names);
    }
    let mut all: Vec<&str> = per_rule.iter().flatten().map(String::as_str).collect();
    all.sort_unstable();
    all.dedup();
    if all.is_empty() {
        return Ok(None);
    }
    // Metric names hold no regular expression's special characters (`[a-zA-Z_:][a-zA-Z0-9_:]*`).
    let q = MetricQuery {
        id: "alerting-rules-series".into(),
        query: format!("count by (__name__) ({{__name__=~\"{}\"}})", all.join("|")),
        window: None,
    };
    let present: std::collections::BTreeSet<String> =
        match prometheus_query(client, base, &q, opts).await {
            MetricOutcome::Points { points, .. } => points
                .iter()
                .flat_map(|(_, v)| match v {
                    QueryValue::Vector(items) => items
                        .iter()
                        .filter_map(|(labels, _)| labels.get("__name__").cloned())
                        .collect(),
                    QueryValue::Scalar(_) => Vec::new(),
                })
                .collect(),
            MetricOutcome::NoData(_) => std::collections::BTreeSet::new(),
            MetricOutcome::Error(e) => return Err(e),
        };
    if per_rule
        .iter()
        .any(|names| names.iter().any(|n| present.contains(n)))
    {
        return Ok(None);
    }
    Ok(Some(format!(
        "Prometheus' {} alerting rule(s) read only series it has no sample of ({}): none of them could fire, so none firing is no evidence (MLSDM 1.2.0 declares its request and error counters without feeding them)",
        rules.queries.len(),
        all.join(", ")
    )))
}

/// The MLSDM targets that are up (the `up` series of the guard's query) belong to more than
/// one (cluster, namespace, job): the checks' queries aggregate over everything they select, so staging's
/// healthy traffic would dilute production's errors into a pass. `Some(why)` then, naming them
/// and the flag that picks one.
fn more_than_one_release(
    base: &str,
    points: &[(f64, QueryValue)],
    opts: &HttpOptions,
) -> Option<String> {
    let releases: BTreeSet<String> = points
        .iter()
        .flat_map(|(_, v)| match v {
            QueryValue::Vector(items) => items.as_slice(),
            QueryValue::Scalar(_) => &[],
        })
        .map(|(labels, _)| {
            // What tells deployments apart: the cluster (an external label a Thanos or a
            // federating Prometheus adds), the namespace and the scrape job; the pods of one
            // deployment differ only in instance and pod. The namespace is `namespace` under
            // the Prometheus Operator and `kubernetes_namespace` under the annotation-based
            // `kubernetes-pods` job of Prometheus's own example configuration (the down-target
            // guard below reads both; this one had read only the first, and production's 5xx
            // were averaged with staging's traffic in one such job).
            let job = labels.get("job").map_or("?", String::as_str);
            let mut id = String::new();
            if let Some(c) = labels.get("cluster") {
                let _ = write!(id, "cluster {c} ");
            }
            if let Some(ns) = labels.get("namespace") {
                let _ = write!(id, "namespace {ns} ");
            }
            if let Some(ns) = labels.get("kubernetes_namespace") {
                let _ = write!(id, "kubernetes_namespace {ns} ");
            }
            let _ = write!(id, "job {job}");
            id
        })
        .collect();
    if releases.len() < 2 {
        return None;
    }
    let listed: Vec<&str> = releases.iter().map(String::as_str).collect();
    Some(match &opts.prometheus_scope {
        None => format!(
            "Prometheus at {base} scrapes {} MLSDM deployments ({}): the checks' queries add them together, so one release's failures could pass on another's traffic; pick this release's series with --prometheus-selector (e.g. '{{namespace=\"...\"}}')",
            releases.len(),
            listed.join("; ")
        ),
        Some(scope) => format!(
            "Prometheus at {base} still scrapes {} MLSDM deployments under --prometheus-selector {} ({}): the checks' queries would add them together; narrow the selector to one release",
            releases.len(),
            scope.text(),
            listed.join("; ")
        ),
    })
}

/// The one MLSDM deployment Prometheus scrapes is in another namespace than the release the
/// audit judges (`-n production` while Prometheus scrapes only staging): its answers are
/// another release's, and had passed this one's checks (review finding). `None` when the
/// series name no namespace (a static scrape configuration) or the audit knows none.
fn another_namespace(
    base: &str,
    points: &[(f64, QueryValue)],
    opts: &HttpOptions,
) -> Option<String> {
    let wanted = opts.release_namespace.as_deref()?;
    let seen: BTreeSet<&str> = points
        .iter()
        .flat_map(|(_, v)| match v {
            QueryValue::Vector(items) => items.as_slice(),
            QueryValue::Scalar(_) => &[],
        })
        .flat_map(|(labels, _)| {
            ["namespace", "kubernetes_namespace"]
                .into_iter()
                .filter_map(|k| labels.get(k).map(String::as_str))
        })
        .collect();
    (!seen.is_empty() && !seen.contains(wanted)).then(|| {
        format!(
            "Prometheus at {base} scrapes MLSDM in namespace {}, not in {wanted}, where the audited release runs: its answers are another release's (check this release's ServiceMonitor or scrape config, or point --prometheus at the Prometheus that scrapes it)",
            seen.into_iter().collect::<Vec<_>>().join(", ")
        )
    })
}

/// Why Prometheus's answers cannot simply be taken as this release's.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(super) enum Guard {
    /// A target of MLSDM's is down: what the others show failing is a failure, nothing they
    /// show is a pass (`MetricOutcome::Points::only_failure`).
    Down(String),
    /// The answers say nothing of this release: every metrics check is an error.
    Unusable(String),
}

/// Whether Prometheus watches MLSDM now: [`Guard::Down`] when a target of a job and namespace
/// that exposed `mlsdm_*` series within the last hour is down (`up == 0`); [`Guard::Unusable`]
/// when no target that is up exposes them, when those that do are more than one deployment or
/// another namespace's, or when the question cannot be asked; `None` when it has current data
/// from one live MLSDM deployment.
pub(super) async fn prometheus_down_targets(
    client: &reqwest::Client,
    base: &str,
    opts: &HttpOptions,
) -> Option<Guard> {
    let q = MetricQuery {
        id: "up".into(),
        // Any target of a job and namespace that exposed MLSDM's series within the hour: a new
        // pod that crash-loops before its first scrape never exposed any, and the checks were
        // judged on the old pod beside it (review finding). The namespace (as a ServiceMonitor
        // or the annotation-based scrape config labels it) keeps another team's down pod in a
        // shared job (`kubernetes-pods`) out of it (a second review's finding).
        query: r#"up == 0 and on (job, namespace, kubernetes_namespace) group by (job, namespace, kubernetes_namespace) (last_over_time({__name__=~"mlsdm_.+"}[1h]))"#
                .into(),
        window: None,
    };
    let points = match prometheus_query(client, base, &q, opts).await {
        MetricOutcome::Points { points, .. } => points,
        MetricOutcome::NoData(_) => Vec::new(),
        MetricOutcome::Error(e) => {
            return Some(Guard::Unusable(format!(
                "cannot tell whether Prometheus scrapes MLSDM: {e}"
            )));
        }
    };
    let mut down: Vec<String> = points
        .iter()
        .flat_map(|(_, v)| match v {
            QueryValue::Vector(items) => items.clone(),
            QueryValue::Scalar(_) => Vec::new(),
        })
        .map(|(labels, _)| {
            format!(
                "{} (job {})",
                labels.get("instance").map_or("?", String::as_str),
                labels.get("job").map_or("?", String::as_str)
            )
        })
        .collect();
    down.sort();
    down.dedup();
    let down = (!down.is_empty()).then(|| {
        format!(
            "Prometheus at {base} cannot scrape MLSDM: up == 0 for {}; what it kept from before says nothing about the service now",
            down.join(", ")
        )
    });
    // Positive evidence: some target that is up now exposes MLSDM's series. Without it the
    // checks would judge an empty Prometheus (no ALERTS, no errors) as a healthy service: a
    // release whose pods never came up, a ServiceMonitor that selects nothing.
    let q = MetricQuery {
        id: "up".into(),
        query:
            r#"up == 1 and on (job, instance) group by (job, instance) ({__name__=~"mlsdm_.+"})"#
                .into(),
        window: None,
    };
    match prometheus_query(client, base, &q, opts).await {
        MetricOutcome::Points { points, .. }
            if points.iter().any(|(_, v)| match v {
                QueryValue::Vector(items) => !items.is_empty(),
                QueryValue::Scalar(_) => false,
            }) =>
        {
            // Some targets up and one down: what the up ones show failing is a failure.
            more_than_one_release(base, &points, opts)
                .or_else(|| another_namespace(base, &points, opts))
                .map(Guard::Unusable)
                .or(down.map(Guard::Down))
        }
        MetricOutcome::Error(e) => Some(Guard::Unusable(format!(
            "cannot tell whether Prometheus scrapes MLSDM: {e}"
        ))),
        // Every target down: only what Prometheus kept from before.
        _ if down.is_some() => down.map(Guard::Unusable),
        _ => Some(Guard::Unusable(format!(
            "Prometheus at {base} scrapes no MLSDM target that is up now (no current mlsdm_* series): it does not watch this service, so its answers say nothing about it (check the ServiceMonitor or scrape config)"
        ))),
    }
}

#[cfg(test)]
mod release_tests {
    use super::{HttpOptions, QueryValue, another_namespace, more_than_one_release};

    fn up(labels: &[(&str, &str)]) -> (crate::promql::Labels, f64) {
        (
            labels
                .iter()
                .map(|(k, v)| ((*k).to_string(), (*v).to_string()))
                .collect(),
            1.0,
        )
    }

    /// The pods of one deployment differ in instance and pod only; a second namespace, job or
    /// cluster (a Thanos over two clusters) is a second release, and the checks would add them.
    #[test]
    fn targets_of_more_than_one_release_are_told_apart() {
        let opts = HttpOptions::default();
        let pods = vec![(
            0.0,
            QueryValue::Vector(vec![
                up(&[
                    ("job", "mlsdm"),
                    ("namespace", "prod"),
                    ("instance", "a"),
                    ("pod", "a"),
                ]),
                up(&[
                    ("job", "mlsdm"),
                    ("namespace", "prod"),
                    ("instance", "b"),
                    ("pod", "b"),
                ]),
            ]),
        )];
        assert_eq!(more_than_one_release("p", &pods, &opts), None);
        let clusters = vec![(
            0.0,
            QueryValue::Vector(vec![
                up(&[("cluster", "eu"), ("job", "mlsdm"), ("namespace", "prod")]),
                up(&[("cluster", "us"), ("job", "mlsdm"), ("namespace", "prod")]),
            ]),
        )];
        // The annotation-based job of Prometheus's example configuration names the namespace
        // `kubernetes_namespace` (review finding: production's and staging's pods read as one).
        let annotated = vec![(
            0.0,
            QueryValue::Vector(vec![
                up(&[("job", "kubernetes-pods"), ("kubernetes_namespace", "prod")]),
                up(&[
                    ("job", "kubernetes-pods"),
                    ("kubernetes_namespace", "staging"),
                ]),
            ]),
        )];
        assert!(more_than_one_release("p", &annotated, &opts).is_some());
        let why = more_than_one_release("p", &clusters, &opts).unwrap();
        assert!(
            why.contains("scrapes 2 MLSDM deployments (cluster eu namespace prod job mlsdm; cluster us namespace prod job mlsdm)"),
            "{why}"
        );
    }

    /// The one deployment Prometheus scrapes must be the audited release's: staging's series
    /// had passed production's checks (review finding).
    #[test]
    fn a_release_in_another_namespace_is_not_this_one() {
        let at = |labels: &[(&str, &str)]| vec![(0.0, QueryValue::Vector(vec![up(labels)]))];
        let opts = HttpOptions {
            release_namespace: Some("prod".into()),
            ..HttpOptions::default()
        };
        let staging = at(&[("job", "mlsdm"), ("namespace", "staging")]);
        let why = another_namespace("p", &staging, &opts).unwrap();
        assert!(why.contains("in namespace staging, not in prod"), "{why}");
        let annotated = at(&[("job", "pods"), ("kubernetes_namespace", "staging")]);
        assert!(another_namespace("p", &annotated, &opts).is_some());
        for fine in [
            at(&[("job", "mlsdm"), ("namespace", "prod")]),
            at(&[("job", "pods"), ("kubernetes_namespace", "prod")]),
            // A static scrape configuration names no namespace: nothing to compare.
            at(&[("job", "mlsdm"), ("instance", "10.0.0.1:8000")]),
        ] {
            assert_eq!(another_namespace("p", &fine, &opts), None);
        }
        // An audit that knows no one namespace (several, or none) does not compare.
        assert_eq!(
            another_namespace("p", &staging, &HttpOptions::default()),
            None
        );
    }
}

#[cfg(test)]
mod window_tests {
    use super::{HttpOptions, Window, window_of};
    use std::time::Duration;

    /// Review finding: `--window 24h` replaced a `for: 5m`, and a check fails only when its
    /// condition holds over the whole window, so one healthy point in a day passed a two-hour
    /// 5xx storm. `--window` shortens a window, never lengthens it.
    #[test]
    fn window_shortens_a_checks_for_and_never_lengthens_it() {
        let five = Window {
            text: "5m".into(),
            duration: Duration::from_mins(5),
        };
        let with = |w: Option<u64>| HttpOptions {
            window: w.map(Duration::from_secs),
            ..HttpOptions::default()
        };
        assert_eq!(window_of(Some(&five), &with(None)), (Some(300), Some(300)));
        assert_eq!(
            window_of(Some(&five), &with(Some(20))),
            (Some(300), Some(20))
        );
        assert_eq!(
            window_of(Some(&five), &with(Some(86_400))),
            (Some(300), Some(300))
        );
        assert_eq!(window_of(None, &with(Some(20))), (None, None));
    }
}

#[cfg(test)]
mod api_tests {
    use super::ResponseFacts;
    use super::prom_api::{Data, Rules, decode};

    fn answer(status: u16, body: &str) -> ResponseFacts {
        ResponseFacts {
            status,
            body: body.to_string(),
            json: serde_json::from_str(body).unwrap_or_default(),
            headers: std::collections::BTreeMap::new(),
            latency_ms: 0.0,
            metrics: None,
        }
    }

    /// Review findings: a success body under HTTP 500 was read as an answer (every metrics
    /// check passed on it), and rules that do not evaluate counted as alerting rules.
    #[test]
    fn only_prometheus_answers_are_read() {
        let body = r#"{"status":"success","data":{"resultType":"vector","result":[]}}"#;
        assert!(decode::<Data>(&answer(200, body)).is_ok());
        let e = decode::<Data>(&answer(500, body)).err().unwrap();
        assert!(e.contains("HTTP 500 with a success body"), "{e}");
        let rules = r#"{"status":"success","data":{"groups":[{"rules":[{"type":"alerting","health":"err"},{"type":"alerting","health":"ok"},{"type":"recording"}]}]}}"#;
        let read: Rules = decode(&answer(200, rules)).unwrap();
        let health: Vec<&str> = read.groups[0]
            .rules
            .iter()
            .map(|r| r.health.as_str())
            .collect();
        assert_eq!(health, ["err", "ok", ""]);
    }
}
