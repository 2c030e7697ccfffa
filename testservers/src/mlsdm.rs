//! An MLSDM stand-in that speaks MLSDM 1.2.0's wire format (paths, JSON bodies, status codes,
//! headers, metric families), with modes for the failures the auditor must catch: not ready,
//! missing security headers, errors, high latency, metrics declared but never fed (what the real
//! service does), a hanging server, auth on or off, and its token-bucket rate limiter.
//!
//! Its counters grow with real requests and with synthetic traffic it books every 100 ms, so
//! windowed rates over several scrapes are real rates.

use axum::Router;
use axum::body::Bytes;
use axum::extract::{Request, State};
use axum::http::{HeaderMap, HeaderValue, Method, StatusCode};
use axum::response::{IntoResponse, Response};
use serde_json::{Value, json};
use std::collections::BTreeMap;
use std::fmt::Write as _;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

/// How the stand-in behaves.
#[derive(Debug, Clone)]
#[allow(clippy::struct_excessive_bools)] // independent switches, one per failure mode
pub struct Config {
    pub ready: bool,
    pub security_headers: bool,
    /// Share of synthetic requests answered 500.
    pub error_ratio: f64,
    /// Latency of most synthetic requests; one in twenty takes this long, one 1.5x.
    pub p95_seconds: f64,
    /// false: like upstream, labelled request metrics are declared but never get samples.
    pub feed_metrics: bool,
    /// Accept connections, never answer.
    pub hang: bool,
    pub api_key: Option<String>,
    /// (requests, window seconds); None disables the limiter.
    pub rate_limit: Option<(u32, u32)>,
    /// Synthetic requests booked per second.
    pub traffic_rps: f64,
    /// Resident memory /status reports.
    pub memory_mb: f64,
    pub dimension: u32,
    /// The container's CPU use (percent of one core) its cAdvisor series show.
    pub cpu_percent: f64,
    pub echo_request_id: bool,
    /// Serve the legacy /health/liveness and /health/readiness aliases.
    pub legacy_paths: bool,
    /// /health/live answers 200 (false: 500).
    pub alive: bool,
    pub metrics_served: bool,
    pub docs_served: bool,
    /// /status answers 200 (false: 500).
    pub status_ok: bool,
    /// A malformed body gets a 500 instead of 422.
    pub crash_on_bad_input: bool,
    /// A valid /generate gets a 500.
    pub generate_fails: bool,
    /// Unlike upstream 1.2.0, /infer requires the API key too.
    pub infer_requires_auth: bool,
    /// A gateway in front (an ingress's basic auth) refuses every request without an
    /// Authorization header with its own 401, an HTML page and a `WWW-Authenticate` challenge,
    /// before MLSDM sees it.
    pub gateway_auth: bool,
    /// Added to every /health answer.
    pub health_delay: Duration,
    /// Serve a cAdvisor-style /metrics/cadvisor whose working set grows (a leak) or stays flat.
    pub memory_leak: bool,
    /// The LLM backend /status reports.
    pub backend: &'static str,
    /// What a valid /generate or /infer does.
    pub engine: Engine,
    /// A release that goes bad: after this long the synthetic traffic takes the jump's error
    /// share and latency (the watch's rollback criteria must catch it).
    pub jump: Option<Jump>,
    /// GET paths answered 200 with this JSON instead of MLSDM's own: the odd shapes a proxy, a
    /// mock or another version may send (an empty readiness list, a null version).
    pub answers: Vec<(&'static str, Value)>,
}

/// The error share and P95 the synthetic traffic takes `after` the stand-in started.
#[derive(Debug, Clone, Copy)]
pub struct Jump {
    pub after: Duration,
    pub error_ratio: f64,
    pub p95_seconds: f64,
}

/// How the stand-in's engine answers a valid generation request. Like MLSDM 1.2.0, every one of
/// them answers 200; only `accepted` and `response` tell whether anything was generated.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Engine {
    /// Generates, unless the moral filter turns the request away: a request whose `moral_value`
    /// (default 0.5) is below the filter's threshold (0.55 here; upstream's adapts around it) is
    /// answered accepted: false in the wake phase.
    Working,
    /// The sleep phase MLSDM 1.2.0 never leaves after 8 accepted generations: nothing is generated.
    Asleep,
    /// The LLM backend fails (a dead `openai` backend): nothing is generated, in the wake phase.
    BackendDead,
    /// The eighth accepted generation of an MLSDM 1.2.0 process: generated, and answered from
    /// the sleep phase the engine enters with it (and never leaves).
    FallsAsleep,
}

impl Config {
    /// A healthy service: ready, headers on, fed metrics, 0 % errors, P95 25 ms, auth on.
    pub fn healthy() -> Self {
        Self {
            ready: true,
            security_headers: true,
            error_ratio: 0.0,
            p95_seconds: 0.02,
            feed_metrics: true,
            hang: false,
            api_key: Some("test-api-key-0123456789abcdef".into()),
            rate_limit: Some((5, 1)),
            traffic_rps: 20.0,
            memory_mb: 310.5,
            dimension: 384,
            cpu_percent: 12.5,
            echo_request_id: true,
            legacy_paths: true,
            alive: true,
            metrics_served: true,
            docs_served: true,
            status_ok: true,
            crash_on_bad_input: false,
            generate_fails: false,
            infer_requires_auth: false,
            gateway_auth: false,
            health_delay: Duration::ZERO,
            memory_leak: false,
            backend: "local_stub",
            engine: Engine::Working,
            jump: None,
            answers: Vec::new(),
        }
    }

    /// A named mode: healthy, or one failure: not-ready, no-headers, errors, slow, empty-metrics,
    /// hanging, open, dead, no-legacy-paths, no-request-id, dimension-512, no-rate-limit,
    /// status-broken, generate-fails, crashes-on-bad-input, no-docs, no-metrics, big-memory,
    /// busy-cpu, infer-auth, gateway-auth, slow-health, leak (memory grows), backend-openai, asleep, falls-asleep,
    /// backend-dead, error-jump (50 % errors after 10 s), latency-jump (P95 800 ms after 10 s).
    pub fn mode(name: &str) -> Option<Self> {
        let mut c = Self::healthy();
        match name {
            "healthy" => {}
            "not-ready" => c.ready = false,
            "no-headers" => c.security_headers = false,
            "errors" => c.error_ratio = 0.15,
            "slow" => c.p95_seconds = 0.8,
            "empty-metrics" => c.feed_metrics = false,
            "hanging" => c.hang = true,
            "open" => c.api_key = None,
            "dead" => c.alive = false,
            "no-legacy-paths" => c.legacy_paths = false,
            "no-request-id" => c.echo_request_id = false,
            "dimension-512" => c.dimension = 512,
            "no-rate-limit" => c.rate_limit = None,
            "status-broken" => c.status_ok = false,
            "generate-fails" => c.generate_fails = true,
            "crashes-on-bad-input" => c.crash_on_bad_input = true,
            "no-docs" => c.docs_served = false,
            "no-metrics" => c.metrics_served = false,
            "big-memory" => c.memory_mb = 1800.0,
            "busy-cpu" => c.cpu_percent = 95.0,
            "infer-auth" => c.infer_requires_auth = true,
            // MLSDM without its key behind an ingress that asks for basic auth.
            "gateway-auth" => {
                c.api_key = None;
                c.gateway_auth = true;
            }
            "slow-health" => c.health_delay = Duration::from_millis(150),
            "leak" => c.memory_leak = true,
            "error-jump" => {
                c.jump = Some(Jump {
                    after: Duration::from_secs(10),
                    error_ratio: 0.5,
                    p95_seconds: c.p95_seconds,
                });
            }
            "latency-jump" => {
                c.jump = Some(Jump {
                    after: Duration::from_secs(10),
                    error_ratio: c.error_ratio,
                    p95_seconds: 0.8,
                });
            }
            "backend-openai" => c.backend = "openai",
            "asleep" => c.engine = Engine::Asleep,
            "falls-asleep" => c.engine = Engine::FallsAsleep,
            "backend-dead" => {
                c.backend = "openai";
                c.engine = Engine::BackendDead;
            }
            _ => return None,
        }
        Some(c)
    }
}

const BUCKETS: &[f64] = &[
    0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0,
];

#[derive(Default)]
struct Metrics {
    /// (method, endpoint, status) -> count
    requests: BTreeMap<(String, String, String), f64>,
    /// endpoint -> (bucket counts, count, sum)
    latency: BTreeMap<String, (Vec<f64>, f64, f64)>,
    errors: BTreeMap<String, f64>,
    rate_limit_hits: f64,
    auth_failures: f64,
    booked: u64,
}

impl Metrics {
    fn observe(&mut self, method: &str, endpoint: &str, status: u16, seconds: f64) {
        *self
            .requests
            .entry((method.into(), endpoint.into(), status.to_string()))
            .or_default() += 1.0;
        let h = self
            .latency
            .entry(endpoint.into())
            .or_insert_with(|| (vec![0.0; BUCKETS.len()], 0.0, 0.0));
        for (i, b) in BUCKETS.iter().enumerate() {
            if seconds <= *b {
                h.0[i] += 1.0;
            }
        }
        h.1 += 1.0;
        h.2 += seconds;
        if status >= 500 {
            *self.errors.entry("internal_error".into()).or_default() += 1.0;
        }
    }
}

struct Bucket {
    tokens: f64,
    last: Instant,
}

struct Inner {
    config: Config,
    metrics: Mutex<Metrics>,
    bucket: Mutex<Bucket>,
    started: Instant,
    /// When this process's counters were created (seconds since the epoch): what the real
    /// service's `*_created` samples say, and what tells one process's page from another's.
    created: f64,
    request_ids: Mutex<u64>,
    seen: Mutex<Vec<(String, String, String)>>,
    /// Valid generation requests that reached the engine (past auth, validation and limiter).
    generations: std::sync::atomic::AtomicU64,
}

/// A running stand-in.
pub struct Server {
    pub url: String,
    inner: Arc<Inner>,
    tasks: Vec<tokio::task::JoinHandle<()>>,
}

impl Drop for Server {
    fn drop(&mut self) {
        for t in &self.tasks {
            t.abort();
        }
    }
}

impl Server {
    /// Every request received: (method, path and query, User-Agent).
    pub fn seen(&self) -> Vec<(String, String, String)> {
        self.inner
            .seen
            .lock()
            .map(|s| s.clone())
            .unwrap_or_default()
    }

    /// Generation requests that reached the engine: what a passive audit must never cause.
    pub fn generations(&self) -> u64 {
        self.inner
            .generations
            .load(std::sync::atomic::Ordering::SeqCst)
    }

    /// Requests the server has booked, real and synthetic (for tests).
    pub fn booked(&self) -> u64 {
        self.inner.metrics.lock().map_or(0, |m| m.booked)
    }
}

fn now() -> f64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0.0, |d| d.as_secs_f64())
}

/// Starts the stand-in on `addr` (e.g. 127.0.0.1:0) in the current tokio runtime.
pub async fn start(addr: &str, config: Config) -> std::io::Result<Server> {
    start_with(addr, config, None).await
}

/// Starts the stand-in serving HTTPS with `pki`'s leaf certificate.
pub async fn start_tls(
    addr: &str,
    config: Config,
    pki: &crate::tls::Pki,
) -> std::io::Result<Server> {
    start_with(addr, config, Some(pki)).await
}

async fn start_with(
    addr: &str,
    config: Config,
    pki: Option<&crate::tls::Pki>,
) -> std::io::Result<Server> {
    let listener = tokio::net::TcpListener::bind(addr).await?;
    let scheme = if pki.is_some() { "https" } else { "http" };
    let url = format!("{scheme}://{}", listener.local_addr()?);
    let inner = Arc::new(Inner {
        bucket: Mutex::new(Bucket {
            tokens: config.rate_limit.map_or(0.0, |(n, _)| f64::from(n)),
            last: Instant::now(),
        }),
        config,
        metrics: Mutex::new(Metrics::default()),
        started: Instant::now(),
        created: SystemTime::now()
            .duration_since(UNIX_EPOCH)
            .map_or(0.0, |d| d.as_secs_f64()),
        request_ids: Mutex::new(0),
        seen: Mutex::new(Vec::new()),
        generations: std::sync::atomic::AtomicU64::new(0),
    });
    let app = Router::new().fallback(handle).with_state(inner.clone());
    let mut tasks = vec![tokio::spawn(book_traffic(inner.clone()))];
    tasks.push(match pki {
        Some(p) => crate::tls::serve(listener, app, p),
        None => tokio::spawn(async move {
            let _ = axum::serve(listener, app).await;
        }),
    });
    Ok(Server { url, inner, tasks })
}

/// Books synthetic traffic every 100 ms: the error share and latency profile of the mode.
async fn book_traffic(inner: Arc<Inner>) {
    let c = &inner.config;
    let mut owed = 0.0;
    let mut interval = tokio::time::interval(Duration::from_millis(100));
    loop {
        interval.tick().await;
        owed += c.traffic_rps / 10.0;
        let (error_ratio, p95_seconds) = match c.jump {
            Some(j) if inner.started.elapsed() >= j.after => (j.error_ratio, j.p95_seconds),
            _ => (c.error_ratio, c.p95_seconds),
        };
        let Ok(mut m) = inner.metrics.lock() else {
            return;
        };
        while owed >= 1.0 {
            owed -= 1.0;
            let i = m.booked % 20;
            m.booked += 1;
            if !c.feed_metrics {
                continue;
            }
            let status = if (i as f64) < error_ratio * 20.0 - 1e-9 {
                500
            } else {
                200
            };
            // 18 fast, one at the P95 target, one above it.
            let seconds = match i {
                0 => p95_seconds * 1.5,
                1 => p95_seconds,
                _ => p95_seconds * 0.3,
            };
            m.observe("POST", "/generate", status, seconds);
        }
    }
}

fn error_body(status: StatusCode, body: Value) -> Response {
    (
        status,
        [("content-type", "application/json")],
        body.to_string(),
    )
        .into_response()
}

fn json_ok(body: Value) -> Response {
    error_body(StatusCode::OK, body)
}

fn authorized(inner: &Inner, headers: &HeaderMap) -> bool {
    match &inner.config.api_key {
        None => true,
        Some(key) => {
            headers.get("authorization").and_then(|v| v.to_str().ok())
                == Some(&format!("Bearer {key}"))
        }
    }
}

fn take_token(inner: &Inner) -> bool {
    let Some((n, window)) = inner.config.rate_limit else {
        return true;
    };
    let Ok(mut b) = inner.bucket.lock() else {
        return true;
    };
    let rate = f64::from(n) / f64::from(window);
    let elapsed = b.last.elapsed().as_secs_f64();
    b.tokens = (b.tokens + elapsed * rate).min(f64::from(n));
    b.last = Instant::now();
    if b.tokens >= 1.0 {
        b.tokens -= 1.0;
        true
    } else {
        false
    }
}

/// MLSDM's 429: `/generate` and `/infer` send their own error object, `/v1|v2/state/` and
/// `/v1|v2/process_event/` FastAPI's `{"detail": ...}`.
fn rate_limited(inner: &Inner, generation: bool) -> Response {
    let (n, window) = inner.config.rate_limit.unwrap_or((5, 1));
    let message = if window <= 1 {
        format!("Rate limit exceeded. Maximum {n} requests per second.")
    } else {
        format!("Rate limit exceeded. Maximum {n} requests per {window} seconds.")
    };
    let body = if generation {
        json!({"error": {"error_type": "rate_limit_exceeded", "message": message, "details": null}})
    } else {
        json!({"detail": message})
    };
    error_body(StatusCode::TOO_MANY_REQUESTS, body)
}

fn unauthorized() -> Response {
    error_body(
        StatusCode::UNAUTHORIZED,
        json!({"detail": "Invalid authentication"}),
    )
}

fn strip_version(path: &str) -> &str {
    path.strip_prefix("/v1")
        .or_else(|| path.strip_prefix("/v2"))
        .filter(|p| p.starts_with('/'))
        .unwrap_or(path)
}

#[allow(clippy::result_large_err)] // the error is the response to send
fn request_of(body: &Bytes) -> Result<(String, f64), Response> {
    let v: Value = serde_json::from_slice(body).map_err(|_| {
        error_body(
            StatusCode::UNPROCESSABLE_ENTITY,
            json!({"detail": [{"type": "json_invalid", "loc": ["body", 0], "msg": "JSON decode error", "input": {}}]}),
        )
    })?;
    let moral_value = match v.get("moral_value") {
        None | Some(Value::Null) => 0.5,
        Some(m) => match m.as_f64() {
            Some(x) if (0.0..=1.0).contains(&x) => x,
            _ => {
                return Err(error_body(
                    StatusCode::UNPROCESSABLE_ENTITY,
                    json!({"detail": [{"type": "less_than_equal", "loc": ["body", "moral_value"], "msg": "Input should be less than or equal to 1", "input": m}]}),
                ));
            }
        },
    };
    match v.get("prompt").and_then(Value::as_str) {
        Some(p) if !p.is_empty() => Ok((p.to_string(), moral_value)),
        Some(p) => Err(error_body(
            StatusCode::UNPROCESSABLE_ENTITY,
            json!({"detail": [{"type": "string_too_short", "loc": ["body", "prompt"], "msg": "String should have at least 1 character", "input": p, "ctx": {"min_length": 1}}]}),
        )),
        None => Err(error_body(
            StatusCode::UNPROCESSABLE_ENTITY,
            json!({"detail": [{"type": "missing", "loc": ["body", "prompt"], "msg": "Field required", "input": v}]}),
        )),
    }
}

fn ready_body(ready: bool) -> Value {
    let mut components = serde_json::Map::new();
    for (name, details) in [
        ("cognitive_controller", "not_configured"),
        ("memory_bounds", "not_configured"),
        ("moral_filter", "threshold=0.50"),
        ("aphasia", "not_configured_or_ok"),
        ("memory_manager", "initialized"),
        ("system_memory", "usage: 41.0%"),
        ("system_cpu", "usage: 12.5% (cached)"),
    ] {
        let healthy = ready || name != "moral_filter";
        components.insert(name.into(), json!({"healthy": healthy, "details": if healthy { details } else { "filter unavailable" }}));
    }
    let checks = json!({"cognitive_controller": true, "memory_bounds": true, "moral_filter": ready, "aphasia": true,
        "memory_manager": true, "memory_available": true, "cpu_available": true});
    json!({
        "ready": ready,
        "status": if ready { "ready" } else { "not_ready" },
        "timestamp": now(),
        "components": components,
        "details": if ready { Value::Null } else { json!({"reason": "component failure", "unhealthy_components": ["moral_filter"]}) },
        "checks": checks,
    })
}

fn exposition(inner: &Inner) -> String {
    let m = inner.metrics.lock().map(|m| {
        (
            m.requests.clone(),
            m.latency.clone(),
            m.errors.clone(),
            m.rate_limit_hits,
            m.auth_failures,
        )
    });
    let (requests, latency, errors, rl_hits, auth_failures) = m.unwrap_or_default();
    let mut s = String::new();
    let fed = inner.config.feed_metrics;
    let _ = writeln!(
        s,
        "# HELP mlsdm_http_requests_total Total HTTP requests\n# TYPE mlsdm_http_requests_total counter"
    );
    if fed {
        for ((method, endpoint, status), v) in &requests {
            let _ = writeln!(
                s,
                "mlsdm_http_requests_total{{endpoint=\"{endpoint}\",method=\"{method}\",status=\"{status}\"}} {v:.1}"
            );
        }
    }
    let _ = writeln!(
        s,
        "# HELP mlsdm_http_request_latency_seconds HTTP request latency in seconds\n# TYPE mlsdm_http_request_latency_seconds histogram"
    );
    if fed {
        for (endpoint, (counts, count, sum)) in &latency {
            for (b, c) in BUCKETS.iter().zip(counts) {
                let _ = writeln!(
                    s,
                    "mlsdm_http_request_latency_seconds_bucket{{endpoint=\"{endpoint}\",le=\"{b:?}\"}} {c:.1}"
                );
            }
            let _ = writeln!(
                s,
                "mlsdm_http_request_latency_seconds_bucket{{endpoint=\"{endpoint}\",le=\"+Inf\"}} {count:.1}"
            );
            let _ = writeln!(
                s,
                "mlsdm_http_request_latency_seconds_count{{endpoint=\"{endpoint}\"}} {count:.1}"
            );
            let _ = writeln!(
                s,
                "mlsdm_http_request_latency_seconds_sum{{endpoint=\"{endpoint}\"}} {sum}"
            );
        }
    }
    let _ = writeln!(
        s,
        "# HELP mlsdm_requests_total Total requests by endpoint and status\n# TYPE mlsdm_requests_total counter"
    );
    let _ = writeln!(
        s,
        "# HELP mlsdm_errors_total Total errors by type\n# TYPE mlsdm_errors_total counter"
    );
    if fed {
        for (t, v) in &errors {
            let _ = writeln!(s, "mlsdm_errors_total{{error_type=\"{t}\"}} {v:.1}");
        }
    }
    let _ = writeln!(
        s,
        "# HELP mlsdm_processing_latency_milliseconds Event processing latency in milliseconds\n# TYPE mlsdm_processing_latency_milliseconds histogram"
    );
    for b in [
        1.0, 5.0, 10.0, 25.0, 50.0, 100.0, 250.0, 500.0, 1000.0, 2500.0, 5000.0,
    ] {
        let _ = writeln!(
            s,
            "mlsdm_processing_latency_milliseconds_bucket{{le=\"{b:?}\"}} 0.0"
        );
    }
    let _ = writeln!(
        s,
        "mlsdm_processing_latency_milliseconds_bucket{{le=\"+Inf\"}} 0.0\nmlsdm_processing_latency_milliseconds_count 0.0\nmlsdm_processing_latency_milliseconds_sum 0.0"
    );
    // As the real service's prometheus_client writes a counter: the total, then its creation
    // time as a gauge family of its own.
    let _ = writeln!(
        s,
        "# HELP mlsdm_events_processed_total Total number of events processed by the system\n# TYPE mlsdm_events_processed_total counter\nmlsdm_events_processed_total 0.0\n# HELP mlsdm_events_processed_created Total number of events processed by the system\n# TYPE mlsdm_events_processed_created gauge\nmlsdm_events_processed_created {}",
        inner.created
    );
    let _ = writeln!(
        s,
        "# HELP mlsdm_memory_usage_bytes Memory usage in bytes\n# TYPE mlsdm_memory_usage_bytes gauge\nmlsdm_memory_usage_bytes 0.0"
    );
    let _ = writeln!(
        s,
        "# HELP mlsdm_emergency_shutdown_active Whether emergency shutdown is active\n# TYPE mlsdm_emergency_shutdown_active gauge\nmlsdm_emergency_shutdown_active 0.0"
    );
    let _ = writeln!(
        s,
        "# HELP mlsdm_bulkhead_queue_depth Requests waiting in the bulkhead\n# TYPE mlsdm_bulkhead_queue_depth gauge\nmlsdm_bulkhead_queue_depth 0.0"
    );
    let _ = writeln!(
        s,
        "# HELP mlsdm_rate_limit_hits_total Requests refused by the rate limiter\n# TYPE mlsdm_rate_limit_hits_total counter\nmlsdm_rate_limit_hits_total {rl_hits:.1}"
    );
    let _ = writeln!(
        s,
        "# HELP mlsdm_auth_failures_total Authentication failures\n# TYPE mlsdm_auth_failures_total counter"
    );
    if auth_failures > 0.0 {
        let _ = writeln!(
            s,
            "mlsdm_auth_failures_total{{method=\"bearer\"}} {auth_failures:.1}"
        );
    }
    let _ = writeln!(
        s,
        "# HELP mlsdm_moral_threshold Current moral threshold\n# TYPE mlsdm_moral_threshold gauge\nmlsdm_moral_threshold 0.5"
    );
    s
}

/// A kubelet cAdvisor-style exposition for the MLSDM container: its working set stays flat, or
/// grows by 1 MiB a second in the leak mode; its CPU counter grows by `cpu_percent` of a core a
/// second.
fn cadvisor(inner: &Inner) -> String {
    let base = 350.0 * 1024.0 * 1024.0;
    let elapsed = inner.started.elapsed().as_secs_f64();
    let growth = if inner.config.memory_leak {
        elapsed * 1024.0 * 1024.0
    } else {
        0.0
    };
    let labels = "container=\"mlsdm-api\",namespace=\"mlsdm-production\",pod=\"mlsdm-api-0\"";
    format!(
        "# HELP container_cpu_usage_seconds_total Cumulative cpu time consumed in seconds.\n# TYPE container_cpu_usage_seconds_total counter\ncontainer_cpu_usage_seconds_total{{cpu=\"total\",{labels}}} {}\n\
         # HELP container_memory_working_set_bytes Current working set of the container in bytes\n# TYPE container_memory_working_set_bytes gauge\ncontainer_memory_working_set_bytes{{{labels}}} {}\n",
        100.0 + elapsed * inner.config.cpu_percent / 100.0,
        base + growth
    )
}

async fn handle(State(inner): State<Arc<Inner>>, req: Request) -> Response {
    if inner.config.hang {
        tokio::time::sleep(Duration::from_hours(1)).await;
    }
    if req.uri().path() == "/health" && !inner.config.health_delay.is_zero() {
        tokio::time::sleep(inner.config.health_delay).await;
    }
    let started = Instant::now();
    let method = req.method().clone();
    let path = req.uri().path().to_string();
    let headers = req.headers().clone();
    if let Ok(mut seen) = inner.seen.lock() {
        let ua = headers
            .get("user-agent")
            .and_then(|v| v.to_str().ok())
            .unwrap_or_default()
            .to_string();
        seen.push((method.to_string(), req.uri().to_string(), ua));
    }
    // Test hooks: a redirect to wherever ?to= says, and a body larger than any client should read.
    if path == "/__test/redirect" {
        let to = req
            .uri()
            .query()
            .and_then(|q| q.strip_prefix("to="))
            .unwrap_or("/")
            .to_string();
        return (StatusCode::FOUND, [("location", to)]).into_response();
    }
    if path == "/__test/huge" {
        return (
            StatusCode::OK,
            [("content-type", "application/json")],
            "x".repeat(3 << 20),
        )
            .into_response();
    }
    if inner.config.gateway_auth && !headers.contains_key("authorization") {
        return (
            StatusCode::UNAUTHORIZED,
            [
                ("content-type", "text/html"),
                (
                    "www-authenticate",
                    "Basic realm=\"Authentication Required\"",
                ),
            ],
            "<html><head><title>401 Authorization Required</title></head></html>",
        )
            .into_response();
    }
    let body = axum::body::to_bytes(req.into_body(), 1 << 20)
        .await
        .unwrap_or_default();
    let mut response = route(&inner, &method, &path, &headers, &body);
    let status = response.status().as_u16();
    if ["/generate", "/infer", "/state/"]
        .iter()
        .any(|p| strip_version(&path) == *p)
        && let Ok(mut m) = inner.metrics.lock()
    {
        m.booked += 1;
        if inner.config.feed_metrics {
            m.observe(
                method.as_str(),
                strip_version(&path),
                status,
                started.elapsed().as_secs_f64(),
            );
        }
        if status == 429 {
            m.rate_limit_hits += 1.0;
        }
        if status == 401 {
            m.auth_failures += 1.0;
        }
    }
    let h = response.headers_mut();
    if inner.config.security_headers {
        h.insert(
            "x-content-type-options",
            HeaderValue::from_static("nosniff"),
        );
        h.insert("x-frame-options", HeaderValue::from_static("DENY"));
        h.insert(
            "x-xss-protection",
            HeaderValue::from_static("1; mode=block"),
        );
        h.insert(
            "content-security-policy",
            HeaderValue::from_static("default-src 'self'"),
        );
    }
    let echoed = headers
        .get("x-request-id")
        .cloned()
        .filter(|_| inner.config.echo_request_id);
    let id = echoed.unwrap_or_else(|| {
        let mut n = inner.request_ids.lock().map_or(0, |g| *g);
        n += 1;
        if let Ok(mut g) = inner.request_ids.lock() {
            *g = n;
        }
        HeaderValue::from_str(&format!("00000000-0000-4000-8000-{n:012x}"))
            .unwrap_or(HeaderValue::from_static("0"))
    });
    h.insert("x-request-id", id);
    if let Ok(v) = HeaderValue::from_str(&format!(
        "{:.2}ms",
        started.elapsed().as_secs_f64() * 1000.0
    )) {
        h.insert("x-response-time", v);
    }
    response
}

fn route(
    inner: &Inner,
    method: &Method,
    path: &str,
    headers: &HeaderMap,
    body: &Bytes,
) -> Response {
    let c = &inner.config;
    let not_found = || error_body(StatusCode::NOT_FOUND, json!({"detail": "Not Found"}));
    let get = method == Method::GET;
    if let Some((_, answer)) = c.answers.iter().find(|(p, _)| get && *p == path) {
        return json_ok(answer.clone());
    }
    match (get, path) {
        (true, "/health") => json_ok(json!({"status": "healthy"})),
        (true, "/health/liveness" | "/health/readiness") if !c.legacy_paths => not_found(),
        (true, "/health/live" | "/health/liveness") if !c.alive => error_body(
            StatusCode::INTERNAL_SERVER_ERROR,
            json!({"detail": "Internal Server Error"}),
        ),
        (true, "/health/metrics") if !c.metrics_served => not_found(),
        (true, "/openapi.json") if !c.docs_served => not_found(),
        (true, "/metrics/cadvisor") => (
            StatusCode::OK,
            [("content-type", "text/plain; charset=utf-8")],
            cadvisor(inner),
        )
            .into_response(),
        (true, p) if !c.status_ok && ["/status", "/v1/status", "/v2/status"].contains(&p) => {
            error_body(
                StatusCode::INTERNAL_SERVER_ERROR,
                json!({"error": {"error_code": "E500", "message": "status unavailable"}}),
            )
        }
        (true, "/health/live" | "/health/liveness") => {
            json_ok(json!({"status": "alive", "timestamp": now()}))
        }
        (true, "/health/ready" | "/health/readiness") => {
            let code = if c.ready {
                StatusCode::OK
            } else {
                StatusCode::SERVICE_UNAVAILABLE
            };
            error_body(code, ready_body(c.ready))
        }
        (true, "/health/detailed") => error_body(
            if c.ready {
                StatusCode::OK
            } else {
                StatusCode::SERVICE_UNAVAILABLE
            },
            json!({"status": if c.ready { "healthy" } else { "unhealthy" }, "timestamp": now(), "uptime_seconds": inner.started.elapsed().as_secs_f64(),
                "system": {"memory_percent": 41.0, "memory_available_mb": 14000.0, "memory_total_mb": 24105.5, "cpu_percent": 12.5, "cpu_count": 2, "disk_percent": 14.6},
                "memory_state": {"L1_norm": 0.0, "L2_norm": 0.0, "L3_norm": 0.0}, "phase": "wake",
                "statistics": {"total_events_processed": 0, "accepted_events_count": 0, "latent_events_count": 0, "moral_filter_threshold": 0.5}}),
        ),
        (true, "/health/metrics") => (
            StatusCode::OK,
            [("content-type", "text/plain; charset=utf-8")],
            exposition(inner),
        )
            .into_response(),
        (true, "/openapi.json") => json_ok(
            json!({"openapi": "3.1.0", "info": {"title": "MLSDM", "version": "1.2.0"},
            "paths": {"/generate": {"post": {}}, "/infer": {"post": {}}, "/status": {"get": {}}, "/health": {"get": {}}}}),
        ),
        (true, p) if ["/status", "/v1/status", "/v2/status"].contains(&p) => json_ok(json!({
            "status": "ok", "version": "1.2.0", "backend": c.backend,
            "system": {"memory_mb": c.memory_mb, "cpu_percent": c.cpu_percent},
            "config": {"dimension": c.dimension, "rate_limiting_enabled": c.rate_limit.is_some(),
                "rate_limit_requests": c.rate_limit.map_or(5, |r| r.0), "rate_limit_window": c.rate_limit.map_or(1, |r| r.1), "secure_mode": false},
        })),
        (true, p) if strip_version(p) == "/state/" && p != "/state/" => {
            if !authorized(inner, headers) {
                return unauthorized();
            }
            if !take_token(inner) {
                return rate_limited(inner, false);
            }
            // The memory manager's state: upstream reports its phase, not the engine's.
            json_ok(
                json!({"L1_norm": 0.0, "L2_norm": 0.0, "L3_norm": 0.0, "current_phase": "wake",
                "latent_events_count": 0, "accepted_events_count": 0, "total_events_processed": 0, "moral_filter_threshold": 0.5}),
            )
        }
        (false, p)
            if method == Method::POST && ["/generate", "/infer"].contains(&strip_version(p)) =>
        {
            let is_generate = strip_version(p) == "/generate";
            // Upstream's order: auth (a dependency), then body validation (422), then the rate
            // limiter inside the handler; a 401 or a 422 uses no token.
            if (is_generate || c.infer_requires_auth) && !authorized(inner, headers) {
                return unauthorized();
            }
            let (prompt, moral_value) = match request_of(body) {
                Ok(p) => p,
                Err(_) if c.crash_on_bad_input => {
                    return error_body(
                        StatusCode::INTERNAL_SERVER_ERROR,
                        json!({"detail": "Internal Server Error"}),
                    );
                }
                Err(r) => return r,
            };
            if !take_token(inner) {
                return rate_limited(inner, true);
            }
            if is_generate && c.generate_fails {
                return error_body(
                    StatusCode::INTERNAL_SERVER_ERROR,
                    json!({"error": {"error_type": "internal_error", "message": "An internal error occurred. Please try again later.", "details": null}}),
                );
            }
            inner
                .generations
                .fetch_add(1, std::sync::atomic::Ordering::SeqCst);
            generation(c.engine, is_generate, &prompt, moral_value)
        }
        _ => not_found(),
    }
}

/// A 200 answer to a valid /generate or /infer, generated or not, shaped like upstream's.
fn generation(engine: Engine, is_generate: bool, prompt: &str, moral_value: f64) -> Response {
    const THRESHOLD: f64 = 0.55;
    // The pre-flight check holds the prompt's moral score (upstream's heuristic: 0.8, plus 0.05
    // per positive word) to the request's moral_value: a stricter request is turned away first.
    let positive = prompt
        .split(|c: char| !c.is_ascii_alphanumeric())
        .filter(|w| {
            [
                "help",
                "support",
                "care",
                "love",
                "kind",
                "respect",
                "ethical",
                "fair",
                "honest",
                "trust",
                "safe",
                "protect",
                "collaborate",
                "peace",
                "understanding",
            ]
            .contains(&w.to_ascii_lowercase().as_str())
        })
        .count();
    let score = (0.8 + 0.05 * positive as f64).min(1.0);
    if moral_value > score + 1e-9 {
        let steps = json!([{"step": "risk_assessment", "passed": true, "score": 0.0, "reason": null, "mode": "normal"},
            {"step": "moral_precheck", "passed": false, "score": score, "threshold": moral_value}]);
        return if is_generate {
            json_ok(json!({
                "response": "", "accepted": false, "phase": "unknown", "moral_score": moral_value,
                "aphasia_flags": null, "emergency_shutdown": false,
                "cognitive_state": {"phase": "unknown", "stateless_mode": false, "emergency_shutdown": false, "memory_used_mb": null, "moral_threshold": null},
                "metrics": {"timing": {"total": 1.0}},
                "safety_flags": {"validation_steps": steps, "rejected_at": "pre_flight"},
                "memory_stats": null,
            }))
        } else {
            json_ok(json!({
                "response": "", "accepted": false, "phase": "unknown", "moral_metadata": {"threshold": moral_value},
                "aphasia_metadata": null, "rag_metadata": {"enabled": true}, "timing": {"total": 1.0}, "governance": null,
            }))
        };
    }
    let morally_accepted = moral_value >= THRESHOLD;
    let accepted = morally_accepted && matches!(engine, Engine::Working | Engine::FallsAsleep);
    let phase = if engine == Engine::Asleep || (engine == Engine::FallsAsleep && accepted) {
        "sleep"
    } else {
        "wake"
    };
    let text = if accepted {
        format!("NEURO-RESPONSE: {prompt} [stub]")
    } else {
        String::new()
    };
    let mut steps = vec![
        json!({"step": "risk_assessment", "passed": true, "score": 0.0, "reason": null, "mode": "normal"}),
        json!({"step": "moral_precheck", "passed": true, "score": score, "threshold": moral_value}),
    ];
    if accepted {
        steps.push(
            json!({"step": "post_moral_check", "passed": true, "score": 0.8, "threshold": 0.5}),
        );
    }
    let rejected_at = if accepted {
        Value::Null
    } else {
        json!("generation")
    };
    if is_generate {
        json_ok(json!({
            "response": text, "accepted": accepted, "phase": phase, "moral_score": THRESHOLD,
            "aphasia_flags": null, "emergency_shutdown": false,
            "cognitive_state": {"phase": phase, "stateless_mode": false, "emergency_shutdown": false, "memory_used_mb": null, "moral_threshold": THRESHOLD},
            "metrics": {"timing": {"total": 1.0}},
            "safety_flags": {"validation_steps": steps, "rejected_at": rejected_at},
            "memory_stats": {"step": 1, "moral_threshold": THRESHOLD, "context_items": 0},
        }))
    } else {
        json_ok(json!({
            "response": text, "accepted": accepted, "phase": phase, "moral_metadata": {"threshold": THRESHOLD},
            "aphasia_metadata": null, "rag_metadata": {"enabled": true}, "timing": {"total": 1.0}, "governance": null,
        }))
    }
}
