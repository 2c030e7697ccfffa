//! Facts from the running service: the responses `http` checks ask for; `gather` also runs the
//! metrics source (`metrics.rs`: samples of `/health/metrics`, or a Prometheus server's answers)
//! for `metrics` checks.
//!
//! Everything here is bounded: one timeout per request, a body cap, no redirect to another host,
//! active probes only with `--active` and within their own count and time limits, and every probe
//! runs concurrently, so a hanging endpoint costs one timeout, not one per check.
//!
//! One file: the client, the probes with their retries and bounds, the proxy and direct targets
//! and `gather` share one request model and one set of limits, read top to bottom as one
//! source; the metrics source and PromQL glue are already in metrics.rs.

// Latency percentiles and epoch timestamps are float arithmetic on small, positive numbers.
#![allow(
    clippy::cast_possible_truncation,
    clippy::cast_sign_loss,
    clippy::cast_precision_loss
)]

use super::metrics::{
    Guard, MetricQuery, evaluate_scraped, prometheus_alerting_rules, prometheus_down_targets,
    prometheus_query, rules_without_series, scrape,
};
use crate::checks::{Check, HttpRequest, MetricsProbe};
pub use crate::facts::service::{
    HttpOutcome, MetricOutcome, Probe, ProbeSkip, ProxyTarget, ResponseFacts, ServiceFacts,
};
use crate::k8s::At as _;
use crate::promql::Store;
use serde_json::{Value, json};
use std::collections::{BTreeMap, HashMap, HashSet};
use std::error::Error as _;
use std::sync::Arc;
use std::time::{Duration, Instant};

/// Largest response body read from a probe; MLSDM's own answers are a few KiB.
const BODY_CAP: usize = 1 << 20;

/// How to reach the service.
#[derive(Debug, Clone, Default)]
pub struct HttpOptions {
    pub endpoints: Vec<String>,
    pub prometheus: Option<String>,
    /// `--prometheus-selector`: added to every query sent to `prometheus`.
    pub prometheus_scope: Option<crate::promql::Scope>,
    pub timeout: Duration,
    pub ca_file: Option<std::path::PathBuf>,
    pub insecure: bool,
    /// MLSDM's API key, from `--api-key-env`; never printed.
    pub api_key: Option<String>,
    pub active: bool,
    /// `--observe`: scrape repeatedly for this long.
    pub observe: Duration,
    /// `--window`: shortens every metric check's longer `for` window to this.
    pub window: Option<Duration>,
    pub progress: bool,
    /// The workload an `--endpoint` serves, when the audit knows exactly one MLSDM workload.
    pub endpoint_workload: Option<usize>,
    /// The namespace of the MLSDM workloads the audit judges, when they share one: the
    /// namespace Prometheus's MLSDM series must come from.
    pub release_namespace: Option<String>,
}

impl ResponseFacts {
    /// Builds the facts from what came back; headers are lower-cased, JSON and Prometheus text parsed.
    fn from_parts(
        status: u16,
        headers: &reqwest::header::HeaderMap,
        body: &[u8],
        latency_ms: f64,
    ) -> Self {
        // A header sent more than once is its values joined with ", ", as HTTP combines them
        // (RFC 9110, 5.3): kept as the last one, `X-Content-Type-Options: sniff` then `nosniff`
        // passed, where a browser reads `sniff, nosniff` and gets no protection.
        let mut combined: BTreeMap<String, String> = BTreeMap::new();
        for (k, v) in headers {
            let v = String::from_utf8_lossy(v.as_bytes());
            combined
                .entry(k.as_str().to_ascii_lowercase())
                .and_modify(|all| {
                    all.push_str(", ");
                    all.push_str(&v);
                })
                .or_insert_with(|| v.into_owned());
        }
        let headers = combined;
        let body = String::from_utf8_lossy(body).into_owned();
        let json = serde_json::from_str(&body).unwrap_or(Value::Null);
        let is_text = headers
            .get("content-type")
            .is_some_and(|c| c.starts_with("text/plain"));
        let metrics = (is_text && status == 200)
            .then(|| metric_families(&body))
            .flatten();
        Self {
            status,
            headers,
            body,
            json,
            latency_ms,
            metrics,
        }
    }
}
fn install_crypto() {
    // reqwest is built without a default provider; ring is the one this tool ships.
    let _ = rustls::crypto::ring::default_provider().install_default();
}

/// Builds the HTTP client all probes share.
pub fn client(opts: &HttpOptions) -> Result<reqwest::Client, String> {
    install_crypto();
    let mut b = reqwest::Client::builder()
        .timeout(opts.timeout)
        .connect_timeout(opts.timeout)
        .user_agent(concat!("mlsdm-audit/", env!("CARGO_PKG_VERSION")))
        .redirect(reqwest::redirect::Policy::custom(|attempt| {
            // Same scheme too: an https endpoint sent to plain http (on the same port) was
            // followed, and its checks judged an answer that crossed the network in clear.
            let same_host = attempt.previous().first().is_some_and(|first| {
                first.scheme() == attempt.url().scheme()
                    && first.host_str() == attempt.url().host_str()
                    && first.port_or_known_default() == attempt.url().port_or_known_default()
            });
            if attempt.previous().len() > 5 || !same_host {
                attempt.stop()
            } else {
                attempt.follow()
            }
        }))
        .tls_danger_accept_invalid_certs(opts.insecure);
    if let Some(ca) = &opts.ca_file {
        let pem = std::fs::read(ca).map_err(|e| format!("--ca-file {}: {e}", ca.display()))?;
        let certs = reqwest::Certificate::from_pem_bundle(&pem)
            .map_err(|e| format!("--ca-file {}: not PEM certificates: {e}", ca.display()))?;
        if certs.is_empty() {
            return Err(format!("--ca-file {}: no certificate in it", ca.display()));
        }
        b = b.tls_certs_merge(certs);
    }
    b.build().map_err(|e| format!("cannot set up HTTP: {e}"))
}

pub(super) fn join(base: &str, path: &str) -> String {
    format!("{}{}", base.trim_end_matches('/'), path)
}

/// One line for a failed request: the endpoint and why, never a debug dump.
fn describe(url: &str, e: &reqwest::Error) -> String {
    let why = if e.is_timeout() {
        "timed out".to_string()
    } else if e.is_connect() {
        let mut source: Option<&dyn std::error::Error> = Some(e);
        let mut last = String::from("connection failed");
        while let Some(s) = source {
            last = s.to_string();
            source = s.source();
        }
        format!("cannot connect: {last}")
    } else if e.is_redirect() {
        "redirected to another host (not followed)".to_string()
    } else {
        let mut source: Option<&dyn std::error::Error> = e.source();
        let mut text = e.to_string();
        while let Some(s) = source {
            text = s.to_string();
            source = s.source();
        }
        text
    };
    format!("{url}: {why}")
}

/// Sends one request and reads at most `cap` bytes of the answer.
pub async fn fetch(
    client: &reqwest::Client,
    url: &str,
    req: &HttpRequest,
    api_key: Option<&str>,
    cap: usize,
) -> Result<ResponseFacts, String> {
    let method = reqwest::Method::from_bytes(req.method.as_bytes())
        .map_err(|_| format!("bad method {}", req.method))?;
    let mut rb = client.request(method, url);
    for (k, v) in &req.headers {
        rb = rb.header(k, v);
    }
    if req.authenticated
        && let Some(key) = api_key
    {
        rb = rb.bearer_auth(key);
    }
    if let Some(body) = &req.body {
        rb = rb.body(body.clone());
    }
    let started = Instant::now();
    let mut resp = rb.send().await.map_err(|e| describe(url, &e))?;
    let status = resp.status().as_u16();
    // A redirect still standing here was not followed (another host, or too many hops): it is
    // not the service's answer, and evaluating it would judge the redirect's headers instead.
    if resp.status().is_redirection() {
        let to = resp.headers().get(reqwest::header::LOCATION).map_or_else(
            || "nowhere".to_string(),
            |l| String::from_utf8_lossy(l.as_bytes()).into_owned(),
        );
        return Err(format!(
            "{url}: answered {status} redirecting to {to}, which is not followed (another host, or more than 5 hops); audit the final URL instead"
        ));
    }
    // A redirect followed for anything but a GET is no answer to it: a 302 to a login page
    // turns the POST into a GET of that page, and its 200 read as MLSDM accepting an
    // unauthenticated /generate (review 32g). MLSDM itself redirects nothing but a missing
    // trailing slash, which a GET of the check's path never meets.
    if reqwest::Url::parse(url).ok().as_ref() != Some(resp.url())
        && !matches!(req.method.as_str(), "GET" | "HEAD")
    {
        return Err(format!(
            "{url}: {} was answered through a redirect to {}, not by MLSDM: audit the final URL instead",
            req.method,
            resp.url()
        ));
    }
    let resp_headers = resp.headers().clone();
    let mut body = Vec::new();
    while let Some(chunk) = resp.chunk().await.map_err(|e| describe(url, &e))? {
        body.extend_from_slice(&chunk);
        if body.len() > cap {
            return Err(format!(
                "{url}: response body larger than {} KiB",
                cap / 1024
            ));
        }
    }
    let latency_ms = started.elapsed().as_secs_f64() * 1000.0;
    Ok(ResponseFacts::from_parts(
        status,
        &resp_headers,
        &body,
        latency_ms,
    ))
}

/// Family name -> {type, samples} from Prometheus text, or None if it is not that format.
fn metric_families(text: &str) -> Option<Value> {
    let mut store = Store::default();
    store.add_scrape("probe", 0.0, text).ok()?;
    if store.declared.is_empty() {
        return None;
    }
    // Series per metric name, counted once: per family lookups keep this linear in the page.
    let mut per_name: HashMap<&str, usize> = HashMap::new();
    for s in &store.series {
        if let Some(n) = s.labels.get("__name__") {
            *per_name.entry(n.as_str()).or_default() += 1;
        }
    }
    let mut families = serde_json::Map::new();
    for line in text.lines() {
        if let Some(rest) = line.strip_prefix("# TYPE ") {
            let mut parts = rest.split_whitespace();
            if let (Some(name), Some(kind)) = (parts.next(), parts.next()) {
                let base = name.strip_suffix("_total").unwrap_or(name);
                let count = |n: &str| per_name.get(n).copied().unwrap_or(0);
                let samples = if kind == "histogram" {
                    // A histogram's series are its _bucket, _sum and _count (and _created).
                    count(name)
                        + ["_bucket", "_sum", "_count", "_created"]
                            .iter()
                            .map(|suffix| count(&format!("{base}{suffix}")))
                            .sum::<usize>()
                } else {
                    count(name)
                };
                let entry = json!({"type": kind, "samples": samples});
                families.insert(name.to_string(), entry.clone());
                // Counters are also known by their name without _total, as in the exposition's HELP.
                if name != base {
                    families.entry(base.to_string()).or_insert(entry);
                }
            }
        }
    }
    Some(Value::Object(families))
}

/// The nearest-rank percentile of every latency the load probe measured. Kept here rather than
/// taken from `hdrhistogram`: the probe is bounded (at most 100,000 requests, so at most 800 KB
/// of samples), and an exact rank over all of them is what the check's threshold compares,
/// where a histogram would round each latency to its bucket.
fn percentile(sorted: &[f64], p: f64) -> f64 {
    if sorted.is_empty() {
        return f64::NAN;
    }
    let rank = (p * sorted.len() as f64).ceil().max(1.0) as usize;
    sorted[rank.min(sorted.len()) - 1]
}

async fn load_probe(
    client: reqwest::Client,
    url: String,
    req: HttpRequest,
    api_key: Option<String>,
) -> HttpOutcome {
    let Some(spec) = req.load.clone() else {
        return HttpOutcome::Error("no load spec".into());
    };
    let deadline = Instant::now() + Duration::from_secs(u64::from(spec.max_seconds));
    let remaining = Arc::new(std::sync::atomic::AtomicU32::new(spec.requests));
    let started = Instant::now();
    let mut tasks = tokio::task::JoinSet::new();
    for _ in 0..spec.concurrency.max(1) {
        let (client, url, req, key, remaining) = (
            client.clone(),
            url.clone(),
            req.clone(),
            api_key.clone(),
            remaining.clone(),
        );
        tasks.spawn(async move {
            let mut lat = Vec::new();
            let mut errors = 0u32;
            let mut unauthorized = 0u32;
            let mut not_found = 0u32;
            // Requests that got no answer at all, and the first reason.
            let mut unreached = (0u32, None::<String>);
            while Instant::now() < deadline
                && remaining
                    .fetch_update(
                        std::sync::atomic::Ordering::SeqCst,
                        std::sync::atomic::Ordering::SeqCst,
                        |n| n.checked_sub(1),
                    )
                    .is_ok()
            {
                match fetch(&client, &url, &req, key.as_deref(), BODY_CAP).await {
                    Ok(r) if (200..300).contains(&r.status) => lat.push(r.latency_ms),
                    Ok(r) if r.status == 401 => {
                        unauthorized += 1;
                        errors += 1;
                    }
                    Ok(r) => {
                        not_found += u32::from(matches!(r.status, 404 | 405));
                        errors += 1;
                    }
                    Err(e) => {
                        unreached.0 += 1;
                        unreached.1.get_or_insert(e);
                        errors += 1;
                    }
                }
            }
            (lat, errors, unauthorized, not_found, unreached)
        });
    }
    let mut latencies = Vec::new();
    let mut errors = 0;
    let mut unauthorized = 0;
    let mut not_found = 0;
    let mut unreached = 0;
    let mut unreached_why = None;
    // A worker that did not finish is an error of the probe: stopping at the first failed join
    // (as `while let Some(Ok(..))` did) measured the other workers' share only, and a p95 of
    // part of the run could pass.
    while let Some(joined) = tasks.join_next().await {
        match joined {
            Ok((lat, e, u, n, (x, why))) => {
                latencies.extend(lat);
                errors += e;
                unauthorized += u;
                not_found += n;
                unreached += x;
                unreached_why = unreached_why.or(why);
            }
            Err(e) => return HttpOutcome::Error(format!("a load-probe worker failed: {e}")),
        }
    }
    let elapsed = started.elapsed().as_secs_f64();
    latencies.sort_by(f64::total_cmp);
    let done = u32::try_from(latencies.len()).unwrap_or(u32::MAX) + errors;
    // Not one request reached the service: there is no load behaviour to judge, only an
    // endpoint that could not be reached (counted as failed requests, it was "5000 of 5000
    // requests failed under load", a verdict on a service nobody measured).
    if done > 0 && unreached == done {
        return HttpOutcome::Error(format!(
            "none of the {done} load requests reached the service: {}",
            unreached_why.unwrap_or_default()
        ));
    }
    HttpOutcome::Load(json!({
        "requests": done,
        "errors": errors,
        "unauthorized": unauthorized,
        "notFound": not_found,
        "seconds": elapsed,
        "rps": f64::from(done) / elapsed.max(1e-9),
        "p50Ms": percentile(&latencies, 0.50),
        "p95Ms": percentile(&latencies, 0.95),
        "stoppedByTime": done < spec.requests,
    }))
}

fn request_key(r: &HttpRequest) -> String {
    format!(
        "{} {} {:?} {:?} {} {:?}",
        r.method,
        r.path,
        r.headers,
        r.body,
        r.authenticated,
        r.retry
            .as_ref()
            .map(|x| (x.attempts, &x.while_json, &x.body))
    )
}

/// What an authenticated probe that was answered 401 means: the audit's key is wrong, so
/// nothing behind authentication was tested.
const RATE_LIMITED: &str = "the service's rate limiter answered 429 (Too Many Requests), so the probe decides nothing: another client (or an earlier audit) is spending this client's allowance; run the audit again";

const KEY_REFUSED: &str = "the API key was refused (401): check --api-key-env names MLSDM's current key; nothing behind authentication was tested";

/// Whether an answer asks for another attempt under `retry`.
fn wants_retry(r: &ResponseFacts, retry: &crate::checks::RetrySpec) -> bool {
    r.status == 200
        && retry
            .while_json
            .iter()
            .all(|(pointer, want)| r.json.at(pointer) == Some(want))
}

/// Sends `n` copies of a request all at once: sent one after another, each would wait for the
/// previous answer, and a slow service refills a token bucket between them.
async fn burst(target: &Target, req: &HttpRequest, n: u32, api_key: Option<String>) -> HttpOutcome {
    let mut tasks = tokio::task::JoinSet::new();
    for i in 0..n {
        let (target, req, key) = (target.clone(), req.clone(), api_key.clone());
        tasks.spawn(async move { (i, fetch_on(&target, &req, key.as_deref(), BODY_CAP).await) });
    }
    let mut answers = Vec::new();
    while let Some(Ok(answer)) = tasks.join_next().await {
        answers.push(answer);
    }
    if answers.len() < n as usize {
        return HttpOutcome::Error(format!("{}: the burst did not finish", target.display));
    }
    answers.sort_by_key(|(i, _)| *i);
    let mut all = Vec::new();
    for (_, answer) in answers {
        match answer {
            Ok(r) => all.push(r),
            Err(e) => return HttpOutcome::Error(e),
        }
    }
    HttpOutcome::Burst(all)
}

/// Runs one probe: a single request, a burst, a retried request or a load probe.
async fn run_probe(target: &Target, req: &HttpRequest, api_key: Option<String>) -> HttpOutcome {
    let outcome =
        if let (Some(_), Transport::Direct { client, base }) = (&req.load, &target.transport) {
            load_probe(
                client.clone(),
                join(base, &req.path),
                req.clone(),
                api_key.clone(),
            )
            .await
        } else if let Some(n) = req.repeat {
            burst(target, req, n, api_key.clone()).await
        } else if let Some(retry) = &req.retry {
            let mut all: Vec<ResponseFacts> = Vec::new();
            let mut failure = None;
            let mut attempt = req.clone();
            for i in 0..retry.attempts {
                if i > 0
                    && let Some(body) = &retry.body
                {
                    attempt.body = Some(body.clone());
                }
                match fetch_on(target, &attempt, api_key.as_deref(), BODY_CAP).await {
                    Ok(r) => {
                        let again = wants_retry(&r, retry);
                        all.push(r);
                        if !again {
                            break;
                        }
                    }
                    Err(e) => {
                        failure = Some(e);
                        break;
                    }
                }
            }
            failure.map_or(HttpOutcome::Burst(all), HttpOutcome::Error)
        } else {
            // A check probing the metrics page reads it whole, as the scrape does: a busy
            // service's page is several MB (the 1 MiB cap made metrics-endpoint an error).
            let cap = if req.path.split('?').next() == Some(super::metrics::METRICS_PATH) {
                super::metrics::METRICS_BODY_CAP
            } else {
                BODY_CAP
            };
            match fetch_on(target, req, api_key.as_deref(), cap).await {
                Ok(r) => HttpOutcome::Response(r),
                Err(e) => HttpOutcome::Error(e),
            }
        };
    // A 429 to a probe that is not a burst is the rate limiter turning the audit away: the
    // answer says nothing of the route (an end-to-end request, a refused malformed body, a
    // missing key all read as failures of the service). A burst expects it, and a load probe
    // counts it.
    let limited = req.repeat.is_none()
        && match &outcome {
            HttpOutcome::Response(r) => r.status == 429,
            HttpOutcome::Burst(all) => all.iter().any(|r| r.status == 429),
            HttpOutcome::Load(_) | HttpOutcome::Skipped(..) | HttpOutcome::Error(_) => false,
        };
    if limited {
        return HttpOutcome::Error(format!("{}: {RATE_LIMITED}", target.display));
    }
    if !req.authenticated || api_key.is_none() {
        return outcome;
    }
    // A refused key makes every authenticated probe undecidable, never a pass or a fail.
    let refused = match &outcome {
        HttpOutcome::Response(r) => r.status == 401,
        HttpOutcome::Burst(all) => all.iter().any(|r| r.status == 401),
        HttpOutcome::Load(l) => l.get("unauthorized").and_then(Value::as_u64).unwrap_or(0) > 0,
        HttpOutcome::Skipped(..) | HttpOutcome::Error(_) => false,
    };
    if refused {
        HttpOutcome::Error(format!("{}: {KEY_REFUSED}", target.display))
    } else {
        outcome
    }
}

/// Probes every endpoint for every http check, concurrently, deduplicating identical requests.
/// Where a probe goes: straight to an `--endpoint`, or through the API server's proxy.
#[derive(Clone)]
pub enum Transport {
    Direct {
        client: reqwest::Client,
        base: String,
    },
    Proxy {
        api: super::kube::Api,
        base_path: String,
        /// --http-timeout: the whole probe, retries included.
        timeout: Duration,
    },
}

/// One place probes go, with how results name it.
#[derive(Clone)]
pub struct Target {
    /// Shown in results: the URL, or `service ns/name:port via API server`.
    pub display: String,
    /// The Pod (or Service) a result is about, for per-pod results.
    pub object: Option<crate::k8s::ObjectRef>,
    pub per_pod: bool,
    pub transport: Transport,
    /// The workload (facts slot) behind this target, whose `mlsdm` facts http checks may compare with.
    pub workload: Option<usize>,
}

impl Target {
    pub(super) fn is_proxy(&self) -> bool {
        matches!(self.transport, Transport::Proxy { .. })
    }

    pub(super) fn instance(&self) -> String {
        match &self.transport {
            Transport::Direct { base, .. } => base
                .split("://")
                .nth(1)
                .unwrap_or(base)
                .trim_end_matches('/')
                .to_string(),
            Transport::Proxy { .. } => self.object.as_ref().map_or_else(
                || self.display.clone(),
                |o| format!("{}/{}", o.namespace.clone().unwrap_or_default(), o.name),
            ),
        }
    }
}

/// Sends one request to a target.
pub(super) async fn fetch_on(
    target: &Target,
    req: &HttpRequest,
    api_key: Option<&str>,
    cap: usize,
) -> Result<ResponseFacts, String> {
    let _running = crate::activity::start(format!("probing {} {}", target.display, req.path));
    match &target.transport {
        Transport::Direct { client, base } => {
            fetch(client, &join(base, &req.path), req, api_key, cap).await
        }
        Transport::Proxy {
            api,
            base_path,
            timeout,
        } => {
            let headers: Vec<(String, String)> = req
                .headers
                .iter()
                .map(|(k, v)| (k.clone(), v.clone()))
                .collect();
            let started = Instant::now();
            let answer = api
                .probe(
                    &format!("{base_path}{}", req.path),
                    &headers,
                    *timeout,
                    cap + 1,
                )
                .await
                .map_err(|e| format!("{} via the API server: {e}", target.display))?;
            let latency_ms = started.elapsed().as_secs_f64() * 1000.0;
            // A Kubernetes Status is the API server's own refusal (no endpoints, RBAC, address not
            // allowed), not the service's answer: the probe could not be made.
            if !answer.status.is_success()
                && let Ok(status) = serde_json::from_slice::<Value>(&answer.body)
                && status.get("kind").and_then(Value::as_str) == Some("Status")
                && status.get("apiVersion").and_then(Value::as_str) == Some("v1")
            {
                let message = status
                    .get("message")
                    .and_then(Value::as_str)
                    .unwrap_or_default();
                return Err(format!(
                    "{}: the API server could not proxy the request ({}): {message}",
                    target.display,
                    answer.status.as_u16()
                ));
            }
            if answer.body.len() > cap {
                return Err(format!(
                    "{}: response body larger than {} KiB",
                    target.display,
                    cap / 1024
                ));
            }
            Ok(ResponseFacts::from_parts(
                answer.status.as_u16(),
                &answer.headers,
                &answer.body,
                latency_ms,
            ))
        }
    }
}

/// Why a check is not sent to a target, if it is not.
/// Whether the API server's proxy carries `req` ([`skip_reason`] sends it there only then).
fn proxy_carries(req: &HttpRequest) -> bool {
    req.method == "GET" && !req.authenticated && req.load.is_none() && req.repeat.is_none()
}

fn skip_reason(
    req: &HttpRequest,
    target: &Target,
    opts: &HttpOptions,
) -> Option<(ProbeSkip, String)> {
    if req.active && !opts.active {
        return Some((ProbeSkip::NeedsActive, "active probe: sends more than a handful of requests or does real work; run with --active".into()));
    }
    if target.is_proxy() {
        if req.method != "GET" {
            return Some((
                ProbeSkip::NeedsEndpoint,
                format!(
                    "{} probes go only to --endpoint URLs: through the API server the audit sends nothing but GET",
                    req.method
                ),
            ));
        }
        if req.authenticated {
            return Some((ProbeSkip::NeedsEndpoint, "authenticated probes need --endpoint: the API server's proxy does not pass a bearer key on".into()));
        }
        if req.load.is_some() || req.repeat.is_some() {
            return Some((
                ProbeSkip::NeedsEndpoint,
                "bursts and load probes go only to --endpoint URLs, never through the API server"
                    .into(),
            ));
        }
    }
    if req.authenticated && opts.api_key.is_none() {
        return Some((
            ProbeSkip::NeedsApiKey,
            "needs MLSDM's API key: give --api-key-env VAR".into(),
        ));
    }
    None
}

/// Probes every target for every http check, concurrently, deduplicating identical requests.
async fn probe_all(
    checks: &[&Check],
    targets: &[Target],
    opts: &HttpOptions,
) -> BTreeMap<String, Vec<Probe>> {
    let mut out: BTreeMap<String, Vec<Probe>> = BTreeMap::new();
    let mut tasks = tokio::task::JoinSet::new();
    let mut plans: Vec<(String, usize, String)> = Vec::new(); // (check id, target index, request key)
    let mut started: HashSet<(usize, String)> = HashSet::new();
    let mut later = Vec::new();
    for check in checks {
        let Some(req) = check.request() else { continue };
        // Per-pod checks go to every pod; the others to the Service (or the --endpoint). With
        // both pods and an --endpoint (a live audit given the service's URL), a per-pod check
        // the API server's proxy can carry goes to the pods only: a Service or an ingress
        // answers from one pod of several, and that one answer passed "each pod is ready".
        let to_pods =
            req.per_pod && proxy_carries(req) && targets.iter().any(|t| t.is_proxy() && t.per_pod);
        let chosen: Vec<usize> = (0..targets.len())
            .filter(|&i| {
                let t = &targets[i];
                if t.is_proxy() {
                    t.per_pod == req.per_pod
                } else {
                    !to_pods
                }
            })
            .collect();
        if chosen.is_empty() {
            out.entry(check.id.clone()).or_default().push(Probe {
                target: "-".into(),
                object: None,
                workload: None,
                outcome: HttpOutcome::Error("no Service or Pod of an MLSDM workload to probe through the API server (give --endpoint)".into()),
            });
            continue;
        }
        for ti in chosen {
            let target = &targets[ti];
            if let Some(why) = skip_reason(req, target, opts) {
                out.entry(check.id.clone()).or_default().push(Probe {
                    target: target.display.clone(),
                    object: target.object.clone(),
                    workload: target.workload,
                    outcome: HttpOutcome::Skipped(why.0, why.1),
                });
                continue;
            }
            // Bursts and load probes are never shared: each one is its own experiment.
            let key = if req.repeat.is_some() || req.load.is_some() {
                format!("{} {}", check.id, request_key(req))
            } else {
                request_key(req)
            };
            plans.push((check.id.clone(), ti, key.clone()));
            if !started.insert((ti, key.clone())) {
                continue;
            }
            let (target, req, api_key) = (target.clone(), req.clone(), opts.api_key.clone());
            if req.load.is_some() || req.repeat.is_some() {
                later.push((ti, key, target, req, api_key));
                continue;
            }
            tasks.spawn(async move {
                let outcome = run_probe(&target, &req, api_key).await;
                (ti, key, outcome)
            });
        }
    }
    let mut done: HashMap<(usize, String), HttpOutcome> = HashMap::new();
    while let Some(res) = tasks.join_next().await {
        if let Ok((ti, key, outcome)) = res {
            done.insert((ti, key), outcome);
        }
    }
    // Bursts, then load probes, run after the other probes and one at a time: a burst drains
    // the client's rate-limit tokens (MLSDM keeps one bucket per client for every limited
    // route, so the end-to-end request would get a 429), and a service saturated by a load
    // probe slows down everything else (a burst spread out by the load is no burst).
    later.sort_by_key(|(_, _, _, req, _)| req.load.is_some());
    for (ti, key, target, req, api_key) in later {
        let outcome = run_probe(&target, &req, api_key).await;
        done.insert((ti, key), outcome);
    }
    for (id, ti, key) in plans {
        let t = &targets[ti];
        let outcome = done
            .get(&(ti, key))
            .cloned()
            .unwrap_or_else(|| HttpOutcome::Error(format!("{}: probe did not finish", t.display)));
        out.entry(id).or_default().push(Probe {
            target: t.display.clone(),
            object: t.object.clone(),
            workload: t.workload,
            outcome,
        });
    }
    out
}

/// Gathers every fact the http and metrics checks need.
/// Gathers every fact the http and metrics checks need. `proxied` are the Services and Pods of
/// the MLSDM workloads, reached through the API server when there is no `--endpoint`.
pub async fn gather(
    checks: &[Check],
    opts: &HttpOptions,
    proxied: Option<(&super::kube::Api, &[ProxyTarget])>,
) -> Result<ServiceFacts, String> {
    let client = client(opts)?;
    let mut targets: Vec<Target> = opts
        .endpoints
        .iter()
        .map(|e| Target {
            display: e.clone(),
            object: None,
            per_pod: false,
            transport: Transport::Direct {
                client: client.clone(),
                base: e.clone(),
            },
            workload: opts.endpoint_workload,
        })
        .collect();
    // With --endpoint, `proxied` holds only the pods (for per-pod checks: see `probe_all`).
    if let Some((api, list)) = proxied {
        for p in list {
            let plural = if p.kind == "Pod" { "pods" } else { "services" };
            targets.push(Target {
                display: format!(
                    "{} {}/{}:{} via the API server",
                    p.kind.to_lowercase(),
                    p.namespace,
                    p.name,
                    p.port
                ),
                object: Some(crate::k8s::ObjectRef {
                    kind: p.kind.clone(),
                    namespace: Some(p.namespace.clone()),
                    name: p.name.clone(),
                }),
                per_pod: p.kind == "Pod",
                workload: Some(p.workload),
                transport: Transport::Proxy {
                    api: api.clone(),
                    base_path: format!(
                        "/api/v1/namespaces/{}/{plural}/{}:{}/proxy",
                        p.namespace, p.name, p.port
                    ),
                    timeout: opts.timeout,
                },
            });
        }
    }
    let http_checks: Vec<&Check> = checks.iter().filter(|c| c.request().is_some()).collect();
    let metric_checks: Vec<(&Check, &MetricsProbe)> = checks
        .iter()
        .filter_map(|c| c.metrics().map(|m| (c, m)))
        .collect();
    let mut facts = ServiceFacts::default();
    let probes = probe_all(&http_checks, &targets, opts);
    let metrics = async {
        let mut out = BTreeMap::new();
        if metric_checks.is_empty() {
            return out;
        }
        let guard = match &opts.prometheus {
            Some(base) => prometheus_down_targets(&client, base, opts).await,
            None => None,
        };
        if let Some(Guard::Unusable(why)) = &guard {
            // Answers about another release, or about none: no metrics check is decided on them.
            for (c, _) in &metric_checks {
                out.insert(c.id.clone(), MetricOutcome::Error(why.clone()));
            }
        } else if let Some(base) = &opts.prometheus {
            // Asked once, and only when a check reads ALERTS: an absence of alerts is evidence
            // only from a Prometheus that has alerting rules to fire.
            let rules = if metric_checks.iter().any(|(_, m)| m.needs_alerting_rules()) {
                Some(prometheus_alerting_rules(&client, base).await)
            } else {
                None
            };
            // Rules that evaluate, but on series that never come, fire nothing either.
            let unfed = match &rules {
                Some(Ok(r)) if r.count > 0 && r.not_evaluating == 0 => {
                    Some(rules_without_series(&client, base, r, opts).await)
                }
                _ => None,
            };
            let mut tasks = tokio::task::JoinSet::new();
            for (c, m) in &metric_checks {
                if m.needs_alerting_rules() {
                    match &rules {
                        Some(Ok(r)) if r.count == 0 => {
                            out.insert(
                                c.id.clone(),
                                MetricOutcome::NoData(
                                    "Prometheus has no alerting rules: no alert could fire, so none firing is no evidence (/api/v1/rules?type=alert lists none)".into(),
                                ),
                            );
                            continue;
                        }
                        // A rule whose evaluation fails (or that has not run yet) fires nothing:
                        // it may be the one that would (review finding: two rules in error, and
                        // no-alerts-firing passed).
                        Some(Ok(r)) if r.not_evaluating > 0 => {
                            out.insert(
                                c.id.clone(),
                                MetricOutcome::NoData(format!(
                                    "{} of Prometheus' {} alerting rule(s) do not evaluate (health err or unknown in /api/v1/rules): an alert they would fire cannot fire, so none firing is no evidence",
                                    r.not_evaluating, r.count
                                )),
                            );
                            continue;
                        }
                        Some(Err(e)) => {
                            out.insert(
                                c.id.clone(),
                                MetricOutcome::Error(format!(
                                    "cannot tell whether Prometheus has alerting rules, without which no alert could fire: {e}"
                                )),
                            );
                            continue;
                        }
                        _ => {}
                    }
                    match &unfed {
                        Some(Ok(Some(why))) => {
                            out.insert(c.id.clone(), MetricOutcome::NoData(why.clone()));
                            continue;
                        }
                        Some(Err(e)) => {
                            out.insert(
                                c.id.clone(),
                                MetricOutcome::Error(format!(
                                    "cannot tell whether Prometheus' alerting rules read series it has, without which none could fire: {e}"
                                )),
                            );
                            continue;
                        }
                        _ => {}
                    }
                }
                let q = MetricQuery {
                    id: c.id.clone(),
                    query: m.query.text().to_string(),
                    window: m.window.clone(),
                };
                let (client, base, opts) = (client.clone(), base.clone(), opts.clone());
                tasks.spawn(async move {
                    (
                        q.id.clone(),
                        prometheus_query(&client, &base, &q, &opts).await,
                    )
                });
            }
            while let Some(joined) = tasks.join_next().await {
                if let Ok((id, outcome)) = joined {
                    out.insert(id, outcome);
                }
            }
            // A query task that did not finish leaves its check an error, never without an
            // outcome (and a join failure no longer drops the queries after it).
            for (c, _) in &metric_checks {
                out.entry(c.id.clone()).or_insert_with(|| {
                    MetricOutcome::Error("the Prometheus query did not finish".into())
                });
            }
            // A target down: samples Prometheus kept from before it went down, and the other
            // targets', do not show the service healthy; what they show failing is a failure
            // (one crash-looping new pod had made every rollback criterion an error, and the
            // watch never signalled: review finding).
            if let Some(Guard::Down(why)) = &guard {
                for outcome in out.values_mut() {
                    match outcome {
                        MetricOutcome::Points { only_failure, .. } => {
                            *only_failure = Some(why.clone());
                        }
                        MetricOutcome::NoData(nothing) => {
                            let message = format!("{why} ({nothing})");
                            *outcome = MetricOutcome::Error(message);
                        }
                        MetricOutcome::Error(_) => {}
                    }
                }
            }
        } else if !targets.is_empty() {
            match scrape(&targets, opts).await {
                Ok(store) => {
                    for (c, m) in &metric_checks {
                        out.insert(c.id.clone(), evaluate_scraped(m, &store, opts, &targets));
                    }
                }
                Err(e) => {
                    for (c, _) in &metric_checks {
                        out.insert(
                            c.id.clone(),
                            MetricOutcome::Error(format!("cannot scrape metrics: {e}")),
                        );
                    }
                }
            }
        }
        out
    };
    let (http, metrics) = tokio::join!(probes, metrics);
    facts.http = http;
    facts.metrics = metrics;
    Ok(facts)
}
