//! Check definitions: the YAML model users write, loaded and validated once, up front.
//!
//! A typo in a check file is the check author's problem to fix, so every error names the file,
//! line and column and what was expected, and no expression is compiled lazily: a check that
//! loads can always be evaluated.

pub mod cel;
pub mod k8s_lib;
pub mod quantity;

use self::cel::Program;
use schemars::JsonSchema;
use serde::{Deserialize, Serialize};
use serde_saphyr::Spanned;
use std::fmt;
use std::path::{Path, PathBuf};

/// The built-in checks, compiled into the binary (see `build.rs`).
const BUILTIN: &[(&str, &str)] = include!(concat!(env!("OUT_DIR"), "/builtin_checks.rs"));

#[derive(
    Clone,
    Copy,
    Debug,
    Default,
    PartialEq,
    Eq,
    PartialOrd,
    Ord,
    Hash,
    Serialize,
    Deserialize,
    JsonSchema,
)]
#[serde(rename_all = "lowercase")]
pub enum Severity {
    Info,
    Low,
    Medium,
    #[default]
    High,
    Critical,
}

impl fmt::Display for Severity {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            Self::Info => "info",
            Self::Low => "low",
            Self::Medium => "medium",
            Self::High => "high",
            Self::Critical => "critical",
        })
    }
}

/// Where a check's facts come from.
#[derive(
    Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize, JsonSchema,
)]
#[serde(rename_all = "lowercase")]
pub enum Source {
    /// Kubernetes objects, from manifest files or the live cluster.
    Kubernetes,
    /// A request to the running MLSDM service.
    Http,
    /// A PromQL query over MLSDM's metrics.
    Metrics,
    /// Decided by a reviewer, who attests to it at sign-off.
    Manual,
}

impl fmt::Display for Source {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            Self::Kubernetes => "kubernetes",
            Self::Http => "http",
            Self::Metrics => "metrics",
            Self::Manual => "manual",
        })
    }
}

/// One check file, exactly as written. Fields are closed: an unknown key is an error.
#[derive(Debug, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
#[schemars(title = "mlsdm-audit check definition")]
pub struct CheckFile {
    /// Stable kebab-case id; must equal the file name without `.yaml`.
    pub id: String,
    /// One line saying what passing means.
    pub title: String,
    /// Where the check sits in the production checklist, `Part / Section / Sub-section`.
    pub section: String,
    /// The checklist lines this check covers, verbatim.
    #[serde(default)]
    pub checklist: Vec<String>,
    pub severity: Severity,
    pub source: Source,
    /// Which objects a `kubernetes` check applies to.
    #[serde(rename = "match", default)]
    pub match_: Option<MatchSpec>,
    /// CEL expression yielding a list; validations run once per element, bound to `item`.
    #[serde(default)]
    #[schemars(with = "Option<String>")]
    pub for_each: Option<Spanned<String>>,
    /// Conditions under which the check applies; when one is false the result is `skipped`
    /// with its reason (for checklist lines such as "if required").
    #[serde(default)]
    pub when: Vec<Condition>,
    /// CEL expressions that must all be true for the check to pass.
    #[serde(default)]
    pub validations: Vec<Validation>,
    /// The request an `http` check sends to the MLSDM service.
    #[serde(default)]
    pub request: Option<HttpRequest>,
    /// The PromQL query of a `metrics` check.
    #[serde(default)]
    #[schemars(with = "Option<String>")]
    pub query: Option<Spanned<String>>,
    /// How long a `metrics` condition must hold, e.g. `5m`.
    #[serde(default, rename = "for")]
    pub for_window: Option<String>,
    /// The optional or conditional checklist item this check covers: the check is `skipped`
    /// unless the team declares it (`requirements:` in .mlsdm-audit.yaml, or `--require`).
    #[serde(default)]
    pub requires: Option<crate::config::Requirement>,
    /// Where the evidence may live outside the cluster's objects (a central Alertmanager, Grafana,
    /// a vault) and which objects show it lives in the cluster: a failure is `no-data` saying so
    /// and how to attest it only when none of those objects is in the audited scope.
    #[serde(default)]
    pub external_evidence: Option<crate::config::ExternalEvidence>,
    /// What to change to make the check pass. Optional for a team's own checks (a three-line
    /// check is still a check); the built-in catalog's test requires it.
    #[serde(default)]
    pub remediation: String,
    /// Why it matters (optional, like `remediation`).
    #[serde(default)]
    pub doc: String,
}

#[derive(Debug, Deserialize, JsonSchema, Clone)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
pub struct MatchSpec {
    /// `Kind`, `version/Kind` (core group) or `group/version/Kind`; CRDs included.
    pub kinds: Vec<String>,
    /// Restrict to these namespaces (default: all audited namespaces).
    #[serde(default)]
    pub namespaces: Vec<String>,
}

#[derive(Debug, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
pub struct Validation {
    /// A CEL expression that must evaluate to `true`.
    #[schemars(with = "String")]
    pub expression: Spanned<String>,
    /// Message when the expression is false.
    #[serde(default)]
    pub message: Option<String>,
    /// CEL expression building the message when the expression is false.
    #[serde(default)]
    #[schemars(with = "Option<String>")]
    pub message_expression: Option<Spanned<String>>,
}

#[derive(Debug, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
pub struct Condition {
    /// A CEL expression; when false the check is `skipped` for this object.
    #[schemars(with = "String")]
    pub expression: Spanned<String>,
    /// Why the check does not apply when the condition is false.
    pub reason: String,
}

#[derive(Debug, Deserialize, Serialize, JsonSchema, Clone)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
pub struct HttpRequest {
    pub path: String,
    #[serde(default = "default_method")]
    pub method: String,
    #[serde(default)]
    pub headers: std::collections::BTreeMap<String, String>,
    #[serde(default)]
    pub body: Option<String>,
    /// Send the API key from `--api-key-env` as a bearer token.
    #[serde(default)]
    pub authenticated: bool,
    /// Runs only with `--active`: the probe sends more than a handful of requests or does real work.
    #[serde(default)]
    pub active: bool,
    /// Send the request this many times in a burst; validations see `responses` (a list).
    #[serde(default)]
    pub repeat: Option<u32>,
    /// A bounded load probe; validations see `load` (`requests`, `rps`, `p50Ms`, `p95Ms`, `errors`).
    #[serde(default)]
    pub load: Option<LoadSpec>,
    /// Probe every pod (through the API server's pod proxy) instead of the Service.
    #[serde(default)]
    pub per_pod: bool,
    /// Send the request again while its answer says it was refused for a passing reason (such as
    /// MLSDM's adaptive moral filter); validations see the last answer as `response` and every
    /// attempt in `responses`.
    #[serde(default)]
    pub retry: Option<RetrySpec>,
}

#[derive(Debug, Deserialize, Serialize, JsonSchema, Clone)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
pub struct RetrySpec {
    /// Requests in all, the first included (2 to 5).
    pub attempts: u32,
    /// Send another attempt while the answer is a 200 whose JSON has every one of these values
    /// (JSON pointer, e.g. `/accepted`, to the value it must equal).
    pub while_json: std::collections::BTreeMap<String, serde_json::Value>,
    /// The body of the later attempts (default: the first attempt's).
    #[serde(default)]
    pub body: Option<String>,
}

#[derive(Debug, Deserialize, Serialize, JsonSchema, Clone)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
pub struct LoadSpec {
    /// Total requests to send (bounded by `maxSeconds`).
    pub requests: u32,
    /// Requests in flight at once.
    pub concurrency: u32,
    /// Hard stop for the probe.
    pub max_seconds: u32,
}

impl HttpRequest {
    /// A plain GET of `path`, for the requests the tool makes itself (scrapes, queries).
    pub fn get(path: &str) -> Self {
        Self {
            path: path.into(),
            method: default_method(),
            headers: std::collections::BTreeMap::new(),
            body: None,
            authenticated: false,
            active: false,
            repeat: None,
            load: None,
            per_pod: false,
            retry: None,
        }
    }
}

fn default_method() -> String {
    "GET".to_string()
}

/// A kind matcher parsed from `Kind`, `v1/Kind` or `group/version/Kind`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct KindMatcher {
    pub api_version: Option<String>,
    pub kind: String,
}

impl KindMatcher {
    fn parse(s: &str) -> Option<Self> {
        let parts: Vec<&str> = s.split('/').collect();
        let valid = |k: &str| !k.is_empty() && k.chars().all(|c| c.is_ascii_alphanumeric());
        match parts.as_slice() {
            [kind] if valid(kind) => Some(Self {
                api_version: None,
                kind: (*kind).to_string(),
            }),
            [version, kind] if valid(kind) && !version.is_empty() => Some(Self {
                api_version: Some((*version).to_string()),
                kind: (*kind).to_string(),
            }),
            [group, version, kind] if valid(kind) && !group.is_empty() && !version.is_empty() => {
                Some(Self {
                    api_version: Some(format!("{group}/{version}")),
                    kind: (*kind).to_string(),
                })
            }
            _ => None,
        }
    }

    pub fn matches(&self, api_version: &str, kind: &str) -> bool {
        self.kind == kind && self.api_version.as_deref().is_none_or(|v| v == api_version)
    }
}

/// A compiled CEL expression with the place it was written.
pub struct Expr {
    pub source: String,
    pub program: Program,
    pub line: u64,
}

impl fmt::Debug for Expr {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Expr")
            .field("source", &self.source)
            .field("line", &self.line)
            .finish_non_exhaustive()
    }
}

#[derive(Debug)]
pub struct CompiledValidation {
    pub expression: Expr,
    pub message: Option<String>,
    pub message_expression: Option<Expr>,
}

#[derive(Debug)]
pub struct CompiledCondition {
    pub expression: Expr,
    pub reason: String,
}

/// A loaded, validated check, ready for the engine.
#[derive(Debug)]
pub struct Check {
    pub id: String,
    pub title: String,
    pub section: String,
    pub checklist: Vec<String>,
    pub severity: Severity,
    pub source: Source,
    pub kinds: Vec<KindMatcher>,
    pub namespaces: Vec<String>,
    pub for_each: Option<Expr>,
    pub when: Vec<CompiledCondition>,
    pub validations: Vec<CompiledValidation>,
    pub request: Option<HttpRequest>,
    pub query: Option<String>,
    pub for_window: Option<String>,
    pub remediation: String,
    pub doc: String,
    /// Skipped unless this requirement is declared.
    pub requires: Option<crate::config::Requirement>,
    /// Where the evidence may live instead of the cluster's objects (a failure is `no-data` when
    /// none of the objects that would hold it in the cluster is audited).
    pub external_evidence: Option<crate::config::ExternalEvidence>,
    /// Where the definition came from (`checks/ID.yaml` for built-ins).
    pub origin: String,
    /// SHA-256 of the definition's bytes, recorded in reports so a signed report shows exactly
    /// what ran.
    pub sha256: String,
    /// A built-in check (embedded from `checks/`), or one loaded with `--checks`.
    pub builtin: bool,
    /// Whether any expression reads `related`, so the facts layer computes it only when needed.
    pub uses_related: bool,
    /// Kinds besides `match.kinds` the expressions read (through `related` or `mlsdm`): if the
    /// cluster would not list one of them, the check cannot be evaluated.
    pub depends_on: Vec<String>,
}

/// Which kinds each `related` field and the `mlsdm` variable are computed from.
const DEPENDENCIES: &[(&str, &[&str])] = &[
    ("related.services", &["Service"]),
    ("related.pdbs", &["PodDisruptionBudget"]),
    ("related.hpas", &["HorizontalPodAutoscaler"]),
    ("related.networkPolicies", &["NetworkPolicy"]),
    ("related.namespaceNetworkPolicies", &["NetworkPolicy"]),
    ("related.ingresses", &["Ingress", "Service"]),
    ("related.serviceMonitors", &["ServiceMonitor", "Service"]),
    ("related.podMonitors", &["PodMonitor"]),
    ("related.prometheusRules", &["PrometheusRule"]),
    ("related.resourceQuotas", &["ResourceQuota"]),
    ("related.limitRanges", &["LimitRange"]),
    ("related.configMaps", &["ConfigMap"]),
    ("related.secrets", &["Secret"]),
    ("related.missingReferences", &["ConfigMap", "Secret"]),
    ("related.missingImagePullSecrets", &["Secret"]),
    ("related.namespace", &["Namespace"]),
    ("related.serviceAccount", &["ServiceAccount"]),
    ("related.roleBindings", &["RoleBinding"]),
    (
        "related.externalSecrets",
        &["ExternalSecret", "SealedSecret"],
    ),
    ("related.alertmanagerConfigs", &["AlertmanagerConfig"]),
    ("related.dashboards", &["ConfigMap", "GrafanaDashboard"]),
    ("related.replicaSets", &["ReplicaSet"]),
    ("related.pods", &["Pod"]),
    ("related.monitoredServices", &["Service"]),
    ("related.ingressBackends", &["Service"]),
    (
        "related.workloads",
        &["Deployment", "StatefulSet", "DaemonSet", "Rollout"],
    ),
    ("mlsdm.", &["ConfigMap", "Secret"]),
];

/// A problem in a check file, pointing at its place.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CheckError {
    pub file: String,
    pub line: u64,
    pub column: u64,
    pub message: String,
}

impl fmt::Display for CheckError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "{}:{}:{}: {}",
            self.file, self.line, self.column, self.message
        )
    }
}

/// Every problem found while loading a set of check files (all reported, not only the first).
#[derive(Debug, thiserror::Error)]
pub struct CheckErrors(pub Vec<CheckError>);

impl fmt::Display for CheckErrors {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        for (i, e) in self.0.iter().enumerate() {
            if i > 0 {
                writeln!(f)?;
            }
            write!(f, "{e}")?;
        }
        Ok(())
    }
}

/// The message of a serde-saphyr error without its location prefix and source snippet.
fn yaml_message(e: &serde_saphyr::Error) -> String {
    let text = e.to_string();
    let first = text.lines().next().unwrap_or_default();
    let first = first.strip_prefix("error: ").unwrap_or(first);
    if first.starts_with("line ")
        && let Some((_, rest)) = first.split_once(": ")
    {
        return rest.to_string();
    }
    first.to_string()
}

/// Turns a YAML error into (line, column, message).
pub fn yaml_error_parts(e: &serde_saphyr::Error) -> (u64, u64, String) {
    let (line, column) = e
        .location()
        .map_or((1, 1), |l| (l.line().max(1), l.column().max(1)));
    (line, column, yaml_message(e))
}

/// Where, in the check file, line `line` and column `column` (1-based, characters) of the
/// expression in scalar `s` are. The scalar's own position when the expression's text cannot be
/// found verbatim (a folded or escaped scalar).
fn locate(text: &str, s: &Spanned<String>, line: usize, column: usize) -> (u64, u64) {
    let fallback = (s.referenced.line(), s.referenced.column());
    let file_lines: Vec<&str> = text.lines().collect();
    let mut at = usize::try_from(s.referenced.line().saturating_sub(1)).unwrap_or(0);
    let mut found = None;
    for wanted in s.value.lines().take(line) {
        let Some((i, col)) = file_lines
            .iter()
            .enumerate()
            .skip(at)
            .take(200)
            .find_map(|(i, l)| l.find(wanted).map(|b| (i, l[..b].chars().count())))
        else {
            return fallback;
        };
        found = Some((i, col));
        at = i + 1;
    }
    found.map_or(fallback, |(i, col)| (i as u64 + 1, (col + column) as u64))
}

/// Parses and validates one check file. `origin` names it in errors.
pub fn parse_check(origin: &str, text: &str, env: &cel::CelEnv) -> Result<Check, Vec<CheckError>> {
    let err = |line: u64, column: u64, message: String| CheckError {
        file: origin.to_string(),
        line,
        column,
        message,
    };
    let file: CheckFile = serde_saphyr::from_str(text).map_err(|e| {
        let (line, column, message) = yaml_error_parts(&e);
        vec![err(line, column, message)]
    })?;
    let mut errors = Vec::new();
    let line_of = |key: &str| -> u64 {
        text.lines()
            .position(|l| l.starts_with(&format!("{key}:")))
            .map_or(1, |i| i as u64 + 1)
    };

    if !is_kebab(&file.id) {
        errors.push(err(
            line_of("id"),
            5,
            format!(
                "id {:?} must be kebab-case ([a-z0-9] words joined by '-')",
                file.id
            ),
        ));
    }
    let stem = Path::new(origin)
        .file_stem()
        .and_then(|s| s.to_str())
        .unwrap_or_default();
    if stem != file.id && origin != "<stdin>" {
        errors.push(err(
            line_of("id"),
            5,
            format!("id {:?} must equal the file name ({stem}.yaml)", file.id),
        ));
    }
    for (field, value) in [("title", &file.title), ("section", &file.section)] {
        if value.trim().is_empty() {
            errors.push(err(line_of(field), 1, format!("{field} must not be empty")));
        }
    }

    let base: &[&str] = match file.source {
        Source::Kubernetes => &["object", "oldObject", "related", "mlsdm", "params"],
        Source::Http => &["response", "responses", "load", "mlsdm"],
        Source::Metrics => &["value", "series"],
        Source::Manual => &[],
    };
    let with_item: Vec<&str> = base.iter().copied().chain(["item"]).collect();
    let mut compile = |s: &Spanned<String>, what: &str, vars: &[&str]| -> Option<Expr> {
        match env.compile(&s.value) {
            Ok(program) => {
                let unresolved = env.unresolved(&s.value, vars);
                for u in &unresolved {
                    let (line, column) = locate(text, s, u.line, u.column);
                    errors.push(err(line, column, format!("{what}: {}", u.message)));
                }
                unresolved.is_empty().then(|| Expr {
                    source: s.value.clone(),
                    program,
                    line: s.referenced.line(),
                })
            }
            Err(e) => {
                // Where the parser says, in the file; else where the expression starts.
                let (line, column) = e.position.map_or_else(
                    || (s.referenced.line(), s.referenced.column()),
                    |(line, column)| locate(text, s, line, column),
                );
                errors.push(err(
                    line,
                    column,
                    format!("invalid CEL in {what}: {}", e.message),
                ));
                None
            }
        }
    };

    let for_each = file
        .for_each
        .as_ref()
        .and_then(|s| compile(s, "forEach", base));
    // `item` is bound only while a forEach runs the validations.
    let in_validations: &[&str] = if file.for_each.is_some() {
        &with_item
    } else {
        base
    };
    let when: Vec<CompiledCondition> = file
        .when
        .iter()
        .filter_map(|c| {
            compile(&c.expression, "when.expression", base).map(|expression| CompiledCondition {
                expression,
                reason: c.reason.clone(),
            })
        })
        .collect();
    let mut validations = Vec::new();
    for v in &file.validations {
        let expression = compile(&v.expression, "validations.expression", in_validations);
        let message_expression = v
            .message_expression
            .as_ref()
            .and_then(|m| compile(m, "validations.messageExpression", in_validations));
        if let Some(expression) = expression {
            validations.push(CompiledValidation {
                expression,
                message: v.message.clone(),
                message_expression,
            });
        }
    }

    let mut kinds = Vec::new();
    let mut namespaces = Vec::new();
    if let Some(m) = &file.match_ {
        for k in &m.kinds {
            match KindMatcher::parse(k) {
                Some(km) => kinds.push(km),
                None => errors.push(err(
                    line_of("match"),
                    1,
                    format!("match.kinds: {k:?} is not Kind, version/Kind or group/version/Kind"),
                )),
            }
        }
        namespaces.clone_from(&m.namespaces);
    }

    let src_line = line_of("source");
    match file.source {
        Source::Kubernetes => {
            if kinds.is_empty() {
                errors.push(err(
                    src_line,
                    1,
                    "a kubernetes check needs match.kinds".into(),
                ));
            }
            if file.validations.is_empty() {
                errors.push(err(
                    src_line,
                    1,
                    "a kubernetes check needs at least one validation".into(),
                ));
            }
        }
        Source::Http => {
            match &file.request {
                None => errors.push(err(src_line, 1, "an http check needs a request".into())),
                Some(r) => {
                    let heavy = r.repeat.is_some_and(|n| n > 5) || r.load.is_some();
                    if heavy && !r.active {
                        errors.push(err(line_of("request"), 1, "a request that repeats more than 5 times or carries a load must set active: true".into()));
                    }
                    if !["GET", "POST", "HEAD"].contains(&r.method.as_str()) {
                        errors.push(err(
                            line_of("request"),
                            1,
                            format!(
                                "method {:?}: http checks send GET, HEAD or POST only",
                                r.method
                            ),
                        ));
                    }
                    if let Some(retry) = &r.retry {
                        if !(2..=5).contains(&retry.attempts) {
                            errors.push(err(
                                line_of("request"),
                                1,
                                format!(
                                    "request.retry.attempts is {}: give 2 to 5 requests in all",
                                    retry.attempts
                                ),
                            ));
                        }
                        if r.repeat.is_some() || r.load.is_some() {
                            errors.push(err(
                                line_of("request"),
                                1,
                                "request.retry does not go with repeat or load".into(),
                            ));
                        }
                        if retry.while_json.is_empty()
                            || retry.while_json.keys().any(|k| !k.starts_with('/'))
                        {
                            errors.push(err(
                                line_of("request"),
                                1,
                                "request.retry.whileJson needs JSON pointers (starting with /) and the values that call for another attempt".into(),
                            ));
                        }
                    }
                    if !r.path.starts_with('/') {
                        errors.push(err(
                            line_of("request"),
                            1,
                            format!("request.path {:?} must start with /", r.path),
                        ));
                    }
                }
            }
            if file.validations.is_empty() {
                errors.push(err(
                    src_line,
                    1,
                    "an http check needs at least one validation".into(),
                ));
            }
        }
        Source::Metrics => {
            match &file.query {
                None => errors.push(err(src_line, 1, "a metrics check needs a query".into())),
                Some(q) => {
                    if let Err(e) = crate::promql::parse(&q.value) {
                        errors.push(err(
                            q.referenced.line(),
                            q.referenced.column(),
                            format!("invalid PromQL: {}", e.lines().next().unwrap_or_default()),
                        ));
                    }
                }
            }
            if file.validations.is_empty() {
                errors.push(err(
                    src_line,
                    1,
                    "a metrics check needs at least one validation".into(),
                ));
            }
        }
        Source::Manual => {
            if !file.validations.is_empty() || file.match_.is_some() || file.for_each.is_some() {
                errors.push(err(
                    src_line,
                    1,
                    "a manual check has no match, forEach or validations: reviewers attest to it"
                        .into(),
                ));
            }
            if file.checklist.is_empty() {
                errors.push(err(
                    src_line,
                    1,
                    "a manual check must name the checklist lines it covers".into(),
                ));
            }
        }
    }
    if file
        .for_window
        .as_deref()
        .is_some_and(|w| parse_duration(w).is_none())
    {
        errors.push(err(
            line_of("for"),
            6,
            format!(
                "for: {:?} is not a duration like 30s, 1.5s, 5m or 1h30m",
                file.for_window.clone().unwrap_or_default()
            ),
        ));
    }
    if file
        .external_evidence
        .as_ref()
        .is_some_and(|e| e.in_cluster.is_empty() || e.elsewhere.trim().is_empty())
    {
        // Without inCluster every failure would become no-data, even with the object in the
        // cluster and wrong.
        errors.push(err(
            line_of("externalEvidence"),
            1,
            "externalEvidence needs elsewhere and at least one inCluster object (kind, optionally label or annotation)".into(),
        ));
    }
    if !errors.is_empty() {
        return Err(errors);
    }

    // What the expressions read, from their syntax trees (not a search of their text).
    let reads: std::collections::BTreeSet<&str> = for_each
        .iter()
        .chain(when.iter().map(|c| &c.expression))
        .chain(
            validations
                .iter()
                .flat_map(|v| std::iter::once(&v.expression).chain(v.message_expression.as_ref())),
        )
        .flat_map(|e| e.program.reads().iter().map(String::as_str))
        .collect();
    let reads_field = |field: &str| {
        // `related.services`, or `related` used whole; `mlsdm.` stands for any field of `mlsdm`.
        let (root, rest) = field.split_once('.').unwrap_or((field, ""));
        reads.contains(root)
            || reads.contains(field)
            || (rest.is_empty() && reads.iter().any(|r| r.starts_with(&format!("{root}."))))
    };
    let uses_related = reads_field("related.");
    let mut depends_on: Vec<String> = Vec::new();
    for (field, kinds) in DEPENDENCIES {
        if reads_field(field) {
            for k in *kinds {
                if !depends_on.iter().any(|d| d == k) {
                    depends_on.push((*k).to_string());
                }
            }
        }
    }

    Ok(Check {
        id: file.id,
        title: file.title,
        section: file.section,
        checklist: file.checklist,
        severity: file.severity,
        source: file.source,
        kinds,
        namespaces,
        for_each,
        when,
        validations,
        request: file.request,
        query: file.query.map(|q| q.value),
        for_window: file.for_window,
        remediation: file.remediation,
        doc: file.doc,
        requires: file.requires,
        external_evidence: file.external_evidence,
        origin: origin.to_string(),
        sha256: sha256_hex(text.as_bytes()),
        builtin: false,
        uses_related,
        depends_on,
    })
}

/// SHA-256 in lowercase hex (check definitions, report fingerprints).
pub fn sha256_hex(bytes: &[u8]) -> String {
    use sha2::Digest as _;
    use std::fmt::Write as _;
    sha2::Sha256::digest(bytes)
        .iter()
        .fold(String::with_capacity(64), |mut s, b| {
            let _ = write!(s, "{b:02x}");
            s
        })
}

/// Parses a duration with humantime: `500ms`, `1.5s`, `30s`, `5m`, `1h30m`, `2h 15m`. A unit is
/// required (a bare `5` is refused: seconds or minutes?).
pub fn parse_duration_exact(s: &str) -> Option<std::time::Duration> {
    let s = s.trim();
    // humantime reads a bare number as an error already; an empty string too.
    humantime::parse_duration(s).ok()
}

/// [`parse_duration_exact`] in whole seconds, a fraction rounded up (a `for` window of `1.5s`
/// asks the condition to hold for 2 s: longer, never shorter, than written).
pub fn parse_duration(s: &str) -> Option<u64> {
    parse_duration_exact(s).map(|d| d.as_secs() + u64::from(d.subsec_nanos() > 0))
}

fn is_kebab(id: &str) -> bool {
    !id.is_empty()
        && id.split('-').all(|w| {
            !w.is_empty()
                && w.chars()
                    .all(|c| c.is_ascii_lowercase() || c.is_ascii_digit())
        })
}

/// Loads the built-in checks, then each `--checks` directory. An id that is already loaded is an
/// error: a team's file silently replacing a built-in check would change what the gate means.
pub fn load(dirs: &[PathBuf]) -> Result<Vec<Check>, CheckErrors> {
    load_with(dirs, false)
}

/// As [`load`]; with `override_builtin` (`--override-builtin`), a `--checks` file may replace a
/// built-in check of the same id (the report records the file and its SHA-256).
pub fn load_with(dirs: &[PathBuf], override_builtin: bool) -> Result<Vec<Check>, CheckErrors> {
    let env = cel::CelEnv::default();
    let mut errors = Vec::new();
    let mut checks: Vec<Check> = Vec::new();
    // The catalog's CEL is compiled on every core (most of a small run's start-up); results
    // are taken in catalog order, so errors and checks come out as from a serial loop.
    let builtin = crate::parallel::map_in_order(BUILTIN, |(name, text)| {
        parse_check(&format!("checks/{name}"), text, &env)
    });
    for parsed in builtin {
        match parsed {
            Ok(mut c) => {
                c.builtin = true;
                checks.push(c);
            }
            Err(e) => errors.extend(e),
        }
    }
    let mut replaced = std::collections::HashSet::new();
    for dir in dirs {
        for (origin, text) in read_check_files(dir, &mut errors) {
            match parse_check(&origin, &text, &env) {
                Ok(c) => match checks.iter_mut().find(|e| e.id == c.id) {
                    // An override may tighten a built-in check, never make a mandatory one
                    // optional: `requires:` would skip it unless a team declares the requirement.
                    Some(existing)
                        if existing.builtin
                            && override_builtin
                            && existing.requires.is_none()
                            && c.requires.is_some() =>
                    {
                        let line = text
                            .lines()
                            .position(|l| l.starts_with("requires:"))
                            .map_or(1, |i| i as u64 + 1);
                        errors.push(CheckError {
                            file: origin,
                            line,
                            column: 1,
                            message: format!(
                                "requires: on an override of the built-in check {:?}, which is mandatory: it would be skipped unless the requirement is declared (remove requires:, or give the check another id)",
                                c.id
                            ),
                        });
                    }
                    Some(existing)
                        if existing.builtin
                            && override_builtin
                            && replaced.insert(c.id.clone()) =>
                    {
                        *existing = c;
                    }
                    Some(existing) => {
                        let hint = if existing.builtin {
                            "give it another id, or pass --override-builtin to replace the built-in check"
                        } else {
                            "each id may be defined once"
                        };
                        errors.push(CheckError {
                            file: origin,
                            line: 1,
                            column: 1,
                            message: format!(
                                "check id {:?} is already defined by {} ({hint})",
                                c.id, existing.origin
                            ),
                        });
                    }
                    None => checks.push(c),
                },
                Err(e) => errors.extend(e),
            }
        }
    }
    if errors.is_empty() {
        checks.sort_by(|a, b| a.id.cmp(&b.id));
        Ok(checks)
    } else {
        Err(CheckErrors(errors))
    }
}

/// Validates check files for `validate-checks`; returns how many loaded.
pub fn validate_paths(paths: &[PathBuf]) -> Result<usize, CheckErrors> {
    let env = cel::CelEnv::default();
    let mut errors = Vec::new();
    let mut count = 0;
    let mut seen: std::collections::HashMap<String, String> = std::collections::HashMap::new();
    for path in paths {
        for (origin, text) in read_check_files(path, &mut errors) {
            match parse_check(&origin, &text, &env) {
                Ok(c) => {
                    if let Some(first) = seen.insert(c.id.clone(), origin.clone()) {
                        errors.push(CheckError {
                            file: origin,
                            line: 1,
                            column: 1,
                            message: format!("duplicate check id {:?} (also in {first})", c.id),
                        });
                    }
                    count += 1;
                }
                Err(e) => errors.extend(e),
            }
        }
    }
    if errors.is_empty() {
        Ok(count)
    } else {
        Err(CheckErrors(errors))
    }
}

fn read_check_files(path: &Path, errors: &mut Vec<CheckError>) -> Vec<(String, String)> {
    let io_err = |p: &Path, e: &String| CheckError {
        file: p.display().to_string(),
        line: 0,
        column: 0,
        message: e.clone(),
    };
    let mut out = Vec::new();
    if path.is_dir() {
        let mut entries: Vec<PathBuf> = match std::fs::read_dir(path) {
            Ok(rd) => rd.filter_map(Result::ok).map(|e| e.path()).collect(),
            Err(e) => {
                errors.push(io_err(path, &format!("cannot read directory: {e}")));
                return out;
            }
        };
        entries.sort();
        for p in entries {
            if p.extension().is_some_and(|e| e == "yaml" || e == "yml") {
                match crate::input::read_file(&p) {
                    Ok(t) => out.push((p.display().to_string(), t)),
                    Err(e) => errors.push(io_err(&p, &e)),
                }
            }
        }
    } else {
        match crate::input::read_file(path) {
            Ok(t) => out.push((path.display().to_string(), t)),
            Err(e) => errors.push(io_err(path, &e)),
        }
    }
    out
}

/// The JSON Schema of a check file, for editors.
pub fn schema_json() -> String {
    let schema = schemars::schema_for!(CheckFile);
    serde_json::to_string_pretty(&schema).unwrap_or_default() + "\n"
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn builtin_checks_load_and_ids_are_unique() {
        let checks = load(&[]).unwrap_or_else(|e| panic!("{e}"));
        let mut ids: Vec<&str> = checks.iter().map(|c| c.id.as_str()).collect();
        let n = ids.len();
        ids.dedup();
        assert_eq!(n, ids.len());
        assert!(n > 10);
    }

    #[test]
    fn kind_matchers() {
        assert!(
            KindMatcher::parse("Deployment")
                .unwrap()
                .matches("apps/v1", "Deployment")
        );
        assert!(
            KindMatcher::parse("apps/v1/Deployment")
                .unwrap()
                .matches("apps/v1", "Deployment")
        );
        assert!(
            !KindMatcher::parse("apps/v1beta1/Deployment")
                .unwrap()
                .matches("apps/v1", "Deployment")
        );
        assert!(
            KindMatcher::parse("v1/Service")
                .unwrap()
                .matches("v1", "Service")
        );
        assert!(KindMatcher::parse("").is_none());
        assert!(KindMatcher::parse("a/b/c/D").is_none());
    }

    #[test]
    fn unknown_field_points_at_its_line() {
        let text = "id: x\ntitle: t\nsection: s\nseverity: high\nsource: manual\nchecklist: [a]\nremediation: r\ndoc: d\nsevrity: low\n";
        let errs = parse_check("x.yaml", text, &cel::CelEnv::default()).unwrap_err();
        assert_eq!((errs[0].line, errs[0].column), (9, 1));
        assert!(
            errs[0].message.contains("unknown field `sevrity`"),
            "{}",
            errs[0].message
        );
    }

    #[test]
    fn bad_cel_points_at_the_expression() {
        let text = "id: x\ntitle: t\nsection: s\nseverity: high\nsource: kubernetes\nmatch:\n  kinds: [Deployment]\nvalidations:\n  - expression: \"object.spec.replicas >=\"\nremediation: r\ndoc: d\n";
        let errs = parse_check("x.yaml", text, &cel::CelEnv::default()).unwrap_err();
        assert_eq!(errs[0].line, 9);
        assert!(
            errs[0]
                .message
                .starts_with("invalid CEL in validations.expression"),
            "{}",
            errs[0].message
        );
    }

    #[test]
    fn retry_is_bounded_and_alone() {
        let check = |request: &str| {
            let text = format!(
                "id: x\ntitle: t\nsection: s\nseverity: high\nsource: http\nrequest:\n{request}validations:\n  - expression: response.status == 200\nremediation: r\ndoc: d\n"
            );
            parse_check("x.yaml", &text, &cel::CelEnv::default())
                .err()
                .map(|e| e[0].message.clone())
        };
        let retry = |attempts: u32, extra: &str| {
            format!(
                "  path: /generate\n  active: true\n{extra}  retry:\n    attempts: {attempts}\n    whileJson:\n      /accepted: false\n"
            )
        };
        assert_eq!(check(&retry(3, "")), None);
        assert!(
            check(&retry(9, "")).is_some_and(|m| m.contains("give 2 to 5 requests in all")),
            "{:?}",
            check(&retry(9, ""))
        );
        assert!(
            check(&retry(3, "  repeat: 3\n"))
                .is_some_and(|m| m.contains("does not go with repeat or load"))
        );
        let no_pointer =
            "  path: /generate\n  retry:\n    attempts: 2\n    whileJson:\n      accepted: false\n";
        assert!(check(no_pointer).is_some_and(|m| m.contains("JSON pointers")));
    }

    #[test]
    fn durations() {
        assert_eq!(parse_duration("5m"), Some(300));
        assert_eq!(parse_duration("1h30m"), Some(5400));
        assert_eq!(parse_duration("5"), None);
        assert_eq!(parse_duration("5x"), None);
        assert_eq!(parse_duration(""), None);
        assert_eq!(
            parse_duration_exact("500ms"),
            Some(std::time::Duration::from_millis(500))
        );
        assert_eq!(
            parse_duration_exact("1.5s"),
            Some(std::time::Duration::from_millis(1500))
        );
        assert_eq!(
            parse_duration_exact("2h 15m"),
            Some(std::time::Duration::from_mins(135))
        );
        assert_eq!(parse_duration("1.5s"), Some(2), "rounded up, never shorter");
        assert_eq!(parse_duration("500ms"), Some(1));
    }
}
#[cfg(test)]
mod reads {
    /// What a check reads comes from its syntax tree: `related.namespaceNetworkPolicies` is not
    /// `related.namespace` (a text search made that check depend on Namespaces, so a forbidden
    /// Namespace list would have turned it into an error).
    #[test]
    fn dependencies_come_from_the_syntax_tree() {
        let checks = super::load(&[]).unwrap();
        let deny = checks
            .iter()
            .find(|c| c.id == "network-policy-default-deny")
            .unwrap();
        assert_eq!(deny.depends_on, ["NetworkPolicy"]);
        assert!(deny.uses_related);
        let env = super::cel::CelEnv::default();
        let reads = |src: &str| {
            env.compile(src)
                .unwrap()
                .reads()
                .iter()
                .cloned()
                .collect::<Vec<_>>()
        };
        assert_eq!(
            reads("related['pdbs'].size() > 0 && object.spec.replicas > 1"),
            ["object.spec", "related.pdbs"]
        );
        assert_eq!(reads("size(related) > 0"), ["related"]);
        assert_eq!(
            reads("related.pods.all(p, p.status.phase == 'Running')"),
            ["related.pods"]
        );
        assert_eq!(reads("'related.secrets' != ''"), Vec::<String>::new());
    }
}
