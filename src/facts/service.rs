//! What the running service answered, as data: filled by `sources::http` (probes) and
//! `sources::metrics` (scrapes, Prometheus), read by the engine. No I/O here.

use crate::k8s::ObjectRef;
use crate::promql::QueryValue;
use serde_json::{Value, json};
use std::collections::BTreeMap;

/// What a request returned, as expressions see it (`response`).
#[derive(Debug, Clone, PartialEq)]
pub struct ResponseFacts {
    pub status: u16,
    /// Lower-cased header names.
    pub headers: BTreeMap<String, String>,
    pub body: String,
    pub json: Value,
    pub latency_ms: f64,
    /// For Prometheus text: family name -> {type, samples}.
    pub metrics: Option<Value>,
}

impl ResponseFacts {
    pub fn to_json(&self) -> Value {
        json!({
            "status": self.status,
            "headers": self.headers,
            "body": self.body,
            "json": self.json,
            "latencyMs": self.latency_ms,
            "metrics": self.metrics,
        })
    }
}

/// The outcome of one http check against one endpoint.
#[derive(Debug, Clone)]
pub enum HttpOutcome {
    Response(ResponseFacts),
    Burst(Vec<ResponseFacts>),
    Load(Value),
    /// Not sent: why, as data and for people.
    Skipped(ProbeSkip, String),
    Error(String),
}

/// Why a probe was not sent (the engine reports it as the result's `skipReason`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ProbeSkip {
    /// An active probe without `--active`.
    NeedsActive,
    /// Not a GET, authenticated, a burst or load: only to `--endpoint` URLs.
    NeedsEndpoint,
    /// Authenticated, with no API key given.
    NeedsApiKey,
}

/// One http check's outcome at one target.
#[derive(Debug, Clone)]
pub struct Probe {
    pub target: String,
    pub object: Option<ObjectRef>,
    pub workload: Option<usize>,
    pub outcome: HttpOutcome,
}

/// One metrics check's evaluation points: (time, value) pairs over the window.
#[derive(Debug, Clone)]
pub enum MetricOutcome {
    Points {
        points: Vec<(f64, QueryValue)>,
        /// Seconds the check asked for (its `for`), if any.
        asked: Option<u64>,
        /// Seconds actually covered by data.
        covered: f64,
        /// Seconds the evaluation was meant to cover (after `--window`).
        window: Option<u64>,
        source: String,
        /// Why the values are only a lower bound: the query counts over a range (`increase(x[1h])`)
        /// longer than the scraped samples span. A failure on a lower bound is earned for a check
        /// that fails on large counts (every built-in one: a counter only grows); a pass is not,
        /// and becomes no-data with this reason. (A team's check that passes on large counts,
        /// `> 0`, is then no-data where it would pass: undecided, never a pass unearned.)
        lower_bound: Option<String>,
        /// Why only a failure can be earned from these points: Prometheus scrapes some of the
        /// MLSDM targets and not others (one pod down). What the targets that answer show failing
        /// is a failure (a crash-looping new pod is when a rollback is due); a pass, or nothing
        /// decided, is an error with this reason.
        only_failure: Option<String>,
    },
    Error(String),
    NoData(String),
}

/// Facts gathered from the service.
#[derive(Debug, Clone, Default)]
pub struct ServiceFacts {
    /// check id -> what each target answered
    pub http: BTreeMap<String, Vec<Probe>>,
    pub metrics: BTreeMap<String, MetricOutcome>,
}

/// A service or pod reached through the API server's proxy (live audits without --endpoint).
#[derive(Clone, Debug)]
pub struct ProxyTarget {
    pub kind: String,
    pub namespace: String,
    pub name: String,
    pub port: String,
    /// The workload's slot in the facts.
    pub workload: usize,
}
