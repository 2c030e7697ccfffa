//! Check definitions: the YAML model users write, loaded and validated once, up front.
//!
//! A typo in a check file is the check author's problem to fix, so every error names the file,
//! line and column and what was expected, and a `--checks` file's expressions are compiled when
//! it loads: a check that loads can always be evaluated. The built-in checks' expressions are
//! compiled when first evaluated (most of a small run's start-up was compiling a catalog most of
//! which that run never evaluates); a test compiles every one of them as a `--checks` file is
//! (`every_built_in_check_compiles_as_a_checks_file_does`), so they hold the same guarantee.

pub mod cel;
mod compile;
pub mod item;
pub mod k8s_lib;
mod load;
mod model;
pub mod requirements;
mod static_tree;

pub use compile::{builtin_model_from_tree, parse_check, read_yaml};
pub use load::{BuiltinFile, builtin_files, load, load_with, validate_paths};
pub use model::{
    CheckFile, Condition, HttpRequest, LoadSpec, Located, MatchSpec, RetrySpec, Validation,
    WhenEmpty,
};

use self::cel::Program;
pub use crate::diag::yaml_error_parts;
pub use crate::facts::Source;
pub use crate::k8s::KindMatcher;
use schemars::JsonSchema;
use serde::{Deserialize, Serialize};
use std::fmt;

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

/// A CEL expression with the place it was written, and its program.
pub struct Expr {
    pub source: String,
    /// Set at load for a `--checks` file; a built-in check's is compiled on first use.
    program: std::sync::OnceLock<Program>,
    pub line: u64,
}

impl Expr {
    /// An expression compiled at load.
    fn compiled(source: String, program: Program, line: u64) -> Self {
        Self {
            source,
            program: program.into(),
            line,
        }
    }

    /// A built-in check's expression, compiled when first needed.
    fn deferred(source: String, line: u64) -> Self {
        Self {
            source,
            program: std::sync::OnceLock::new(),
            line,
        }
    }

    /// What the expression reads (`Program::reads`): a built-in expression's from build.rs's
    /// table, without compiling it (a message is compiled only when a validation fails).
    pub fn reads(&self) -> Box<dyn Iterator<Item = &str> + '_> {
        if self.program.get().is_none()
            && let Some(reads) = cel::prebuilt_reads(&self.source)
        {
            return Box::new(reads.iter().copied());
        }
        Box::new(self.program().reads())
    }

    /// The compiled program. A built-in expression that does not compile is a defect of this
    /// build, which the catalog's tests rule out: it ends the run, never a result.
    pub fn program(&self) -> &Program {
        self.program.get_or_init(|| {
            cel::CelEnv::compile_builtin(&self.source).unwrap_or_else(|e| {
                panic!(
                    "a built-in check's expression does not compile ({e}): {}",
                    self.source
                )
            })
        })
    }
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

/// A loaded, validated check, ready for the engine: what every check has, and its probe (what
/// it reads, one variant per source, so a check carries no field of another source).
#[derive(Debug)]
pub struct Check {
    pub id: String,
    pub title: String,
    pub section: String,
    pub checklist: Vec<String>,
    pub severity: Severity,
    pub probe: Probe,
    /// Conditions under which the check applies (empty for manual checks).
    pub when: Vec<CompiledCondition>,
    /// What must hold for a pass (empty for manual checks).
    pub validations: Vec<CompiledValidation>,
    pub remediation: String,
    pub doc: String,
    /// Skipped unless this requirement is declared.
    pub requires: Option<requirements::Requirement>,
    /// Where the evidence may live instead of the cluster's objects (a failure is `no-data` when
    /// none of the objects that would hold it in the cluster is audited).
    pub external_evidence: Option<requirements::ExternalEvidence>,
    /// Where the definition came from (`checks/ID.yaml` for built-ins).
    pub origin: String,
    /// SHA-256 of the definition's bytes, recorded in reports so a signed report shows exactly
    /// what ran.
    pub sha256: String,
    /// A built-in check (embedded from `checks/`), or one loaded with `--checks`.
    pub builtin: bool,
}

/// What a check reads, by source. `Check::source` is derived from it.
#[derive(Debug)]
pub enum Probe {
    Kubernetes(KubernetesProbe),
    Http(HttpRequest),
    Metrics(MetricsProbe),
    /// Reviewers attest to it.
    Manual,
}

/// The objects a kubernetes check runs on, and how.
#[derive(Debug)]
pub struct KubernetesProbe {
    pub kinds: Vec<KindMatcher>,
    pub namespaces: Vec<String>,
    pub for_each: Option<Expr>,
    /// What the elements of `for_each` are, and their names.
    pub item: Option<item::CompiledItem>,
    /// What the expressions read: see [`Check::dependencies`].
    dependencies: std::sync::OnceLock<Dependencies>,
}

/// What a kubernetes check's expressions read besides its objects, from their syntax trees.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Dependencies {
    /// Whether any expression reads `related`, so the facts layer computes it only when needed.
    pub uses_related: bool,
    /// Kinds besides `kinds` the expressions read (through `related` or `mlsdm`): if the
    /// cluster would not list one of them, the check cannot be evaluated.
    pub depends_on: Vec<String>,
}

impl Dependencies {
    /// What `expressions` read (the programs' syntax trees, not a search of their text).
    fn of<'e>(expressions: impl Iterator<Item = &'e Expr>) -> Self {
        let reads: std::collections::BTreeSet<&str> = expressions.flat_map(Expr::reads).collect();
        // Whether the expressions read `root.field` (`related.services`, also when `related` is
        // used whole), or, without a field, any field of `root` (`mlsdm.`). No string is built:
        // this runs for every check a run evaluates.
        let reads_field = |root: &str, field: Option<&str>| {
            reads.contains(root)
                || reads.iter().any(|r| {
                    r.strip_prefix(root)
                        .and_then(|rest| rest.strip_prefix('.'))
                        .is_some_and(|rest| field.is_none_or(|f| rest == f))
                })
        };
        let mut depends_on: Vec<String> = Vec::new();
        for (root, field, kinds) in dependencies() {
            if reads_field(root, field) {
                for k in kinds {
                    if !depends_on.iter().any(|d| d == k) {
                        depends_on.push((*k).to_string());
                    }
                }
            }
        }
        Self {
            uses_related: reads_field("related", None),
            depends_on,
        }
    }
}

/// A metrics check's query, parsed at load, and how long its condition must hold.
#[derive(Debug)]
pub struct MetricsProbe {
    pub query: crate::promql::Query,
    pub window: Option<Window>,
    /// Whether a query that returns no series is no-data (the default) or decided by the
    /// validations.
    pub when_empty: model::WhenEmpty,
}

/// The series Prometheus writes only by evaluating alerting rules: with no rule loaded they are
/// empty whatever the service does, so no answer read from them is evidence.
const ALERT_SERIES: [&str; 2] = ["ALERTS", "ALERTS_FOR_STATE"];

impl MetricsProbe {
    /// Whether the query's answer is evidence only when Prometheus has alerting rules: it
    /// selects `ALERTS` or `ALERTS_FOR_STATE` (by name, or a `__name__` matcher they satisfy).
    /// Read from the query rather than declared, so a team's own check on `ALERTS` cannot forget
    /// it and pass on a Prometheus that could never fire an alert.
    pub fn needs_alerting_rules(&self) -> bool {
        ALERT_SERIES
            .iter()
            .any(|name| crate::promql::selects_metric(self.query.expr(), name))
    }
}

/// A `for:` window: as written (reports show it) and in whole seconds, a fraction rounded up
/// (`1.5s` asks the condition to hold for 2 s: longer, never shorter, than written).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Window {
    pub text: String,
    pub duration: std::time::Duration,
}

impl Window {
    pub fn secs(&self) -> u64 {
        self.duration.as_secs()
    }
}

impl Check {
    pub fn source(&self) -> Source {
        match self.probe {
            Probe::Kubernetes(_) => Source::Kubernetes,
            Probe::Http(_) => Source::Http,
            Probe::Metrics(_) => Source::Metrics,
            Probe::Manual => Source::Manual,
        }
    }

    pub fn kubernetes(&self) -> Option<&KubernetesProbe> {
        match &self.probe {
            Probe::Kubernetes(k) => Some(k),
            _ => None,
        }
    }

    pub fn request(&self) -> Option<&HttpRequest> {
        match &self.probe {
            Probe::Http(r) => Some(r),
            _ => None,
        }
    }

    pub fn metrics(&self) -> Option<&MetricsProbe> {
        match &self.probe {
            Probe::Metrics(m) => Some(m),
            _ => None,
        }
    }

    /// Every expression of the check, in the order they are written.
    pub fn expressions(&self) -> impl Iterator<Item = &Expr> {
        let probe = self.kubernetes();
        probe
            .and_then(|k| k.for_each.as_ref())
            .into_iter()
            .chain(probe.and_then(|k| k.item.as_ref()).map(|i| &i.name))
            .chain(self.when.iter().map(|c| &c.expression))
            .chain(
                self.validations.iter().flat_map(|v| {
                    std::iter::once(&v.expression).chain(v.message_expression.as_ref())
                }),
            )
    }

    /// Compiles the expressions every evaluation of the check runs (its messages wait for a
    /// failure): the engine spreads this over its threads before they evaluate.
    pub fn compile_evaluated(&self) {
        let probe = self.kubernetes();
        for e in probe
            .and_then(|k| k.for_each.as_ref())
            .into_iter()
            .chain(probe.and_then(|k| k.item.as_ref()).map(|i| &i.name))
            .chain(self.when.iter().map(|c| &c.expression))
            .chain(self.validations.iter().map(|v| &v.expression))
        {
            let _ = e.program();
        }
    }

    /// What a kubernetes check's expressions read (none for other sources), from build.rs's
    /// table for a built-in check: nothing is compiled.
    pub fn dependencies(&self) -> Option<&Dependencies> {
        let probe = self.kubernetes()?;
        Some(
            probe
                .dependencies
                .get_or_init(|| Dependencies::of(self.expressions())),
        )
    }

    /// The kinds a kubernetes check matches; none for other sources.
    pub fn kinds(&self) -> &[KindMatcher] {
        self.kubernetes().map_or(&[], |k| &k.kinds)
    }
}

/// Which kinds each `related` field and the `mlsdm` variable are computed from: the relation
/// registry (`facts::registry`), as (variable, field, kinds), with no field for `mlsdm` (any of
/// its fields).
fn dependencies()
-> impl Iterator<Item = (&'static str, Option<&'static str>, &'static [&'static str])> {
    crate::facts::registry::RELATIONS
        .iter()
        .map(|r| ("related", Some(r.name), r.reads))
        .chain(std::iter::once((
            "mlsdm",
            None,
            crate::facts::registry::MLSDM_READS,
        )))
}

/// A problem in a check file, pointing at its place.
pub type CheckError = crate::diag::Diagnostic;

/// Every problem found while loading a set of check files (all reported, not only the first).
pub type CheckErrors = crate::diag::Diagnostics;

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

    /// `match.kinds` takes a named group (expanded to its kinds, in order) and refuses a
    /// lower-case name that is no group: `deployment` matched nothing and the check said no-data
    /// on every release.
    #[test]
    fn kind_groups_expand_and_lowercase_kinds_are_refused() {
        let check = |kinds: &str| {
            let text = format!(
                "id: x\ntitle: t\nsection: s\nseverity: high\nsource: kubernetes\nmatch:\n  kinds: [{kinds}]\nvalidations:\n  - expression: 'true'\n"
            );
            parse_check("x.yaml", &text, &cel::CelEnv::default())
        };
        let names = |kinds: &str| -> Vec<String> {
            check(kinds)
                .unwrap()
                .kinds()
                .iter()
                .map(|k| k.kind.clone())
                .collect()
        };
        assert_eq!(
            names("workloads"),
            ["Deployment", "StatefulSet", "DaemonSet", "Rollout"]
        );
        assert_eq!(
            names("replicated-workloads, Job"),
            ["Deployment", "StatefulSet", "Rollout", "Job"]
        );
        let errors = check("deployment").err().unwrap();
        assert_eq!(errors.len(), 1, "{errors:?}");
        assert!(errors[0].message.contains("neither a kind"), "{errors:?}");
    }

    /// A burst or a load probe is bounded at load time: before, `concurrency: 4000000000` was
    /// accepted and the probe spawned tasks until memory ran out.
    #[test]
    fn bursts_and_loads_are_bounded() {
        let check = |request: &str| {
            let text = format!(
                "id: x\ntitle: t\nsection: s\nseverity: high\nsource: http\nrequest:\n  path: /generate\n  active: true\n{request}validations:\n  - expression: response.status == 200\nremediation: r\ndoc: d\n"
            );
            parse_check("x.yaml", &text, &cel::CelEnv::default())
                .err()
                .map(|e| e[0].message.clone())
        };
        let load = |r: u32, c: u32, s: u32| {
            format!("  load:\n    requests: {r}\n    concurrency: {c}\n    maxSeconds: {s}\n")
        };
        assert_eq!(check(&load(200, 10, 30)), None);
        assert_eq!(check("  repeat: 20\n"), None);
        for (request, field) in [
            (
                load(200, 4_000_000_000, 30),
                "request.load.concurrency is 4000000000",
            ),
            (load(0, 10, 30), "request.load.requests is 0"),
            (load(200_000, 10, 30), "request.load.requests is 200000"),
            (load(200, 10, 86_400), "request.load.maxSeconds is 86400"),
            (
                "  repeat: 4000000000\n".to_string(),
                "request.repeat is 4000000000",
            ),
            ("  repeat: 0\n".to_string(), "request.repeat is 0"),
        ] {
            let got = check(&request);
            assert!(
                got.as_deref().is_some_and(|m| m.starts_with(field)),
                "{request}: {got:?}"
            );
        }
    }

    /// A field of another source is refused: before, a `forEach` on an http check or a `for` on
    /// a kubernetes check loaded and was ignored, so the check ran other than its file said.
    #[test]
    fn a_field_of_another_source_is_refused() {
        let env = cel::CelEnv::default();
        let http = "id: x\ntitle: t\nsection: s\nseverity: high\nsource: http\nrequest:\n  path: /health\nforEach: response.json.items\nvalidations:\n  - expression: response.status == 200\n";
        let errs = parse_check("x.yaml", http, &env).unwrap_err();
        assert_eq!(errs.len(), 1, "{errs:?}");
        assert_eq!(errs[0].line, 8);
        assert!(
            errs[0]
                .message
                .starts_with("forEach is for kubernetes checks; this is a http check"),
            "{errs:?}"
        );
        let kube = "id: x\ntitle: t\nsection: s\nseverity: high\nsource: kubernetes\nmatch:\n  kinds: [Deployment]\nfor: 5m\nquery: up\nwhenEmpty: evaluate\nvalidations:\n  - expression: 'true'\n";
        let errs = parse_check("x.yaml", kube, &env).unwrap_err();
        let messages: Vec<&str> = errs.iter().map(|e| e.message.as_str()).collect();
        assert_eq!(
            messages,
            [
                "query is for metrics checks; this is a kubernetes check, which would ignore it",
                "for is for metrics checks; this is a kubernetes check, which would ignore it",
                "whenEmpty is for metrics checks; this is a kubernetes check, which would ignore it",
            ]
        );
        // The parsed query and window are what the check holds.
        let metrics = "id: x\ntitle: t\nsection: s\nseverity: high\nsource: metrics\nquery: rate(up[5m])\nfor: 1.5s\nvalidations:\n  - expression: value == 1.0\n";
        let check = parse_check("x.yaml", metrics, &env).unwrap();
        let m = check.metrics().unwrap();
        assert_eq!(m.query.text(), "rate(up[5m])");
        assert_eq!(
            crate::promql::lookback(m.query.expr()),
            std::time::Duration::from_mins(5)
        );
        let w = m.window.as_ref().unwrap();
        assert_eq!((w.text.as_str(), w.secs()), ("1.5s", 2));
        assert_eq!(check.source(), Source::Metrics);
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
    /// A built-in check's reads come from build.rs's table: finding what every check depends on
    /// compiles none of their expressions (it compiled them all, messages included, a tenth of
    /// a one-file audit).
    #[test]
    fn finding_dependencies_compiles_nothing() {
        let checks = super::load(&[]).unwrap();
        let mut expressions = 0;
        for check in &checks {
            let _ = check.dependencies();
            for e in check.expressions() {
                assert!(e.program.get().is_none(), "{}: {}", check.id, e.source);
                assert!(e.reads().count() > 0 || !e.source.contains("object"));
                expressions += 1;
            }
        }
        assert!(expressions > 300, "{expressions}");
    }

    #[test]
    fn dependencies_come_from_the_syntax_tree() {
        let checks = super::load(&[]).unwrap();
        let deny = checks
            .iter()
            .find(|c| c.id == "network-policy-default-deny")
            .unwrap();
        let deny = deny.dependencies().unwrap();
        assert_eq!(deny.depends_on, ["NetworkPolicy"]);
        assert!(deny.uses_related);
        let env = super::cel::CelEnv::default();
        let reads = |src: &str| {
            env.compile(src)
                .unwrap()
                .reads()
                .map(str::to_owned)
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
