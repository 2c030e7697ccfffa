//! The API client every request goes through: client-go's rate limiter, one GET with bounded,
//! Retry-After-honouring retries, and the classification of what failed.

use super::connect::auth_in_chain;
use super::deadline::TimedOut;
use super::error::{self, ClusterError, ClusterErrorKind};
use http::{Request, StatusCode, header};
use kube::Client;
use serde_json::Value;
use std::sync::Arc;
use std::time::{Duration, Instant};
use tokio::sync::Mutex;

/// client-go-style token bucket: `burst` requests at once, then `qps` per second (client-go's
/// `flowcontrol.NewTokenBucketRateLimiter`, whose defaults `--qps`/`--burst` follow).
///
/// Kept here rather than taken from `governor`: that crate (std only, no quanta) adds seven
/// crates and waits on futures-timer's own timer thread, for what these lines do on tokio's
/// clock; the semantics (float qps, whole-token burst) are client-go's, which operators know.
pub(super) struct RateLimiter {
    qps: f64,
    burst: f64,
    state: Mutex<(f64, Instant)>,
}

impl RateLimiter {
    pub(super) fn new(qps: f64, burst: u32) -> Self {
        Self {
            qps: qps.max(0.1),
            burst: f64::from(burst.max(1)),
            state: Mutex::new((f64::from(burst.max(1)), Instant::now())),
        }
    }

    async fn acquire(&self) {
        loop {
            let wait = {
                let mut s = self.state.lock().await;
                let elapsed = s.1.elapsed().as_secs_f64();
                s.0 = (s.0 + elapsed * self.qps).min(self.burst);
                s.1 = Instant::now();
                if s.0 >= 1.0 {
                    s.0 -= 1.0;
                    return;
                }
                (1.0 - s.0) / self.qps
            };
            tokio::time::sleep(Duration::from_secs_f64(wait)).await;
        }
    }
}

/// The API client with its limiter, retries and the server name for messages.
#[derive(Clone)]
pub struct Api {
    pub(super) client: Client,
    pub(super) limiter: Arc<RateLimiter>,
    pub(super) server: String,
    pub(super) timeout: Duration,
    pub(super) counter: Arc<std::sync::atomic::AtomicU64>,
}

/// An HTTP answer from the API server.
pub struct Answer {
    pub status: StatusCode,
    pub headers: http::HeaderMap,
    pub body: Vec<u8>,
}

pub(super) fn status_message(body: &[u8]) -> String {
    serde_json::from_slice::<Value>(body)
        .ok()
        .and_then(|v| v.get("message").and_then(Value::as_str).map(str::to_string))
        .unwrap_or_else(|| {
            String::from_utf8_lossy(body)
                .trim()
                .chars()
                .take(200)
                .collect()
        })
}

impl Api {
    /// One GET with retries on 429 and 5xx (honouring Retry-After) and on dropped connections.
    pub async fn get(&self, path_and_query: &str, accept: &str) -> Result<Answer, ClusterError> {
        let cap = usize::try_from(crate::input::cap()).unwrap_or(usize::MAX);
        self.get_with(path_and_query, accept, &[], cap).await
    }

    /// A GET with extra request headers (the service proxy passes them on to the pod).
    pub async fn get_with(
        &self,
        path_and_query: &str,
        accept: &str,
        extra: &[(String, String)],
        cap: usize,
    ) -> Result<Answer, ClusterError> {
        self.get_bounded(path_and_query, accept, extra, self.timeout, None, cap)
            .await
    }

    /// A probe through the API server's proxy: the whole of it, retries included, bounded by
    /// `timeout` (--http-timeout), like a probe sent straight to an --endpoint.
    pub async fn probe(
        &self,
        path_and_query: &str,
        extra: &[(String, String)],
        timeout: Duration,
        cap: usize,
    ) -> Result<Answer, ClusterError> {
        self.get_bounded(path_and_query, "*/*", extra, timeout, Some(timeout), cap)
            .await
    }

    /// One GET, each attempt bounded by `per_attempt` (headers and body) and all of them by
    /// `total`. A timed-out attempt is not retried: the run must not wait five times as long.
    async fn get_bounded(
        &self,
        path_and_query: &str,
        accept: &str,
        extra: &[(String, String)],
        per_attempt: Duration,
        total: Option<Duration>,
        cap: usize,
    ) -> Result<Answer, ClusterError> {
        let started = Instant::now();
        let flag = if total.is_some() {
            "--http-timeout"
        } else {
            "--request-timeout"
        };
        let timed_out = |limit: Duration| {
            ClusterError::new(
                ClusterErrorKind::Timeout,
                &self.server,
                &format!("no complete answer within {limit:?} ({flag}) ({path_and_query})"),
            )
        };
        let mut attempt = 0u32;
        loop {
            let remaining = total.map_or(per_attempt, |t| t.saturating_sub(started.elapsed()));
            if remaining.is_zero() {
                return Err(timed_out(total.unwrap_or(per_attempt)));
            }
            let limit = per_attempt.min(remaining);
            self.limiter.acquire().await;
            self.counter
                .fetch_add(1, std::sync::atomic::Ordering::Relaxed);
            let mut builder = Request::get(path_and_query);
            for (k, v) in extra {
                builder = builder.header(k.as_str(), v.as_str());
            }
            let req = builder
                .header(header::ACCEPT, accept)
                .header(
                    header::USER_AGENT,
                    concat!("mlsdm-audit/", env!("CARGO_PKG_VERSION")),
                )
                .body(kube::client::Body::empty())
                .map_err(|e| {
                    ClusterError::new(
                        ClusterErrorKind::Other,
                        &self.server,
                        &format!("bad request path {path_and_query}: {e}"),
                    )
                })?;
            let sent = tokio::time::timeout(limit, async {
                let resp = self.client.send(req).await?;
                let (parts, body) = resp.into_parts();
                // Read at most `cap` bytes: a 3 GiB answer (a list, or a pod's reply through the
                // proxy) is an error naming the cap, not the end of the process.
                let body = match http_body_util::BodyExt::collect(http_body_util::Limited::new(body, cap)).await {
                    Ok(b) => b.to_bytes(),
                    Err(e) if e.is::<http_body_util::LengthLimitError>() => {
                        return Ok(Err(format!(
                            "GET {path_and_query}: the answer is larger than {} (--max-input-size raises it)",
                            crate::input::human(cap as u64)
                        )));
                    }
                    Err(e) => {
                        return Err(e
                            .downcast::<kube::Error>()
                            .map_or_else(kube::Error::Service, |k| *k));
                    }
                };
                Ok::<_, kube::Error>(Ok(Answer {
                    status: parts.status,
                    headers: parts.headers,
                    // The collected bytes become the Vec without a copy when they are one chunk.
                    body: Vec::from(body),
                }))
            })
            .await;
            let sent = match sent {
                Ok(Ok(Err(too_big))) => {
                    return Err(ClusterError::new(
                        ClusterErrorKind::Other,
                        &self.server,
                        &too_big,
                    ));
                }
                Ok(Ok(Ok(a))) => Ok(Ok(a)),
                Ok(Err(e)) => Ok(Err(e)),
                Err(elapsed) => Err(elapsed),
            };
            let retry_after = match &sent {
                // A probe through the proxy takes the service's answer as it is: retrying a 503
                // until it says 200 would turn a flapping /health into a pass.
                Ok(Ok(_)) if total.is_some() => {
                    return sent
                        .unwrap_or_else(|_| unreachable!())
                        .map_err(|e| self.fatal(&e));
                }
                Ok(Ok(a))
                    if a.status == StatusCode::TOO_MANY_REQUESTS || a.status.is_server_error() =>
                {
                    a.headers
                        .get(header::RETRY_AFTER)
                        .and_then(|v| v.to_str().ok())
                        .and_then(|s| s.parse::<u64>().ok())
                        .map(|s| Duration::from_secs(s.min(10)))
                }
                Ok(Ok(_)) => {
                    return sent
                        .unwrap_or_else(|_| unreachable!())
                        .map_err(|e| self.fatal(&e));
                }
                // The client's own read timeout is --request-timeout too: on a loaded machine it
                // fired before ours and the run said only "timed out", not which request and
                // which flag (a CI run's a_hanging_list_is_bounded_by_the_request_timeout_...).
                Ok(Err(e))
                    if timed_out_in_chain(e)
                        || ClusterErrorKind::of(e) == ClusterErrorKind::Timeout =>
                {
                    return Err(timed_out(total.unwrap_or(per_attempt)));
                }
                Ok(Err(e)) if !retryable(e) => return Err(self.fatal(e)),
                Ok(Err(_)) => None,
                Err(_) => return Err(timed_out(total.unwrap_or(per_attempt))),
            };
            attempt += 1;
            if attempt >= 5 {
                return match sent {
                    Ok(Ok(a)) => Ok(a),
                    Ok(Err(e)) => Err(self.fatal(&e)),
                    Err(_) => Err(timed_out(limit)),
                };
            }
            let backoff =
                Duration::from_millis(200 * 2u64.pow(attempt - 1)).min(Duration::from_secs(5));
            let wait = retry_after.unwrap_or(backoff);
            if let Some(t) = total
                && started.elapsed() + wait >= t
            {
                // No time left for another attempt: the answer so far is the answer.
                return match sent {
                    Ok(Ok(a)) => Ok(a),
                    Ok(Err(e)) => Err(self.fatal(&e)),
                    Err(_) => Err(timed_out(t)),
                };
            }
            tokio::time::sleep(wait).await;
        }
    }

    pub(super) fn fatal(&self, e: &kube::Error) -> ClusterError {
        let kind = ClusterErrorKind::of(e);
        if kind == ClusterErrorKind::Other
            && let Some(why) = auth_in_chain(e)
        {
            return ClusterError::new(kind, &self.server, &why);
        }
        ClusterError::new(kind, &self.server, &error::root_cause(e))
    }
}

/// Whether the deadline layer ended this request.
pub(super) fn timed_out_in_chain(e: &(dyn std::error::Error + 'static)) -> bool {
    let mut cur = Some(e);
    while let Some(err) = cur {
        if err.is::<TimedOut>() {
            return true;
        }
        cur = err.source();
    }
    false
}

pub(super) fn retryable(e: &kube::Error) -> bool {
    error::retryable(e)
}
