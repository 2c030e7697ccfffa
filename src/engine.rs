//! Evaluates checks against facts: pure, synchronous, no I/O. A failed check is data (a result),
//! and anything that could not be evaluated is `error`, `no-data` or `skipped`, never `pass`.
//!
//! One file (about 800 lines): the three evaluators (kubernetes per object and item, http,
//! metrics per point) end in the same few functions (`run_validations`, `result`, the redaction
//! of messages), and keeping them side by side keeps one rule for what a verdict may be; a split
//! by source (kubernetes / service) is the natural next step when a fourth source comes.

use crate::checks::cel::{CelEnv, display};
use crate::checks::item::CompiledItem;
use crate::checks::{self, Check, Expr, KubernetesProbe, MetricsProbe, Source, WhenEmpty};
use crate::facts::Facts;
use crate::facts::service::{HttpOutcome, MetricOutcome, Probe, ProbeSkip};
use crate::facts::values::json_to_cel;
use crate::promql::QueryValue;
use crate::report::{CheckResult, Item, SkipReason, Status, WindowInfo};
use cel::Context;
use cel::common::value::{CowVal, Val};
use cel::context::VariableResolver;
use cel::objects::Value;
use std::sync::Arc;

/// Evaluates every check; the order of the results is fixed later by the report. Checks are
/// spread over the machine's cores: the facts are shared read-only, each thread has its own CEL
/// context.
pub fn evaluate(checks: &[Check], facts: &Facts) -> Vec<CheckResult> {
    let threads = std::thread::available_parallelism()
        .map_or(1, std::num::NonZeroUsize::get)
        .clamp(1, 8);
    if threads == 1 || checks.len() < 2 {
        return evaluate_serial(&checks.iter().collect::<Vec<_>>(), facts);
    }
    // Round-robin, so that cheap (manual) and expensive (per-pod) checks spread evenly.
    std::thread::scope(|scope| {
        let handles: Vec<_> = (0..threads)
            .map(|t| {
                let part: Vec<&Check> = checks.iter().skip(t).step_by(threads).collect();
                scope.spawn(move || evaluate_serial(&part, facts))
            })
            .collect();
        let mut parts = handles
            .into_iter()
            .map(|h| h.join().unwrap_or_else(|e| std::panic::resume_unwind(e)));
        // Concatenated in thread order into the first part, grown once to the exact total: a
        // collect through flat_map would double a fresh vector while every part is alive.
        let mut results = parts.next().unwrap_or_default();
        let rest: Vec<Vec<CheckResult>> = parts.collect();
        results.reserve_exact(rest.iter().map(Vec::len).sum());
        for part in rest {
            results.extend(part);
        }
        results
    })
}

/// A check with the strings all its results share (one copy per check, not per result).
struct Shared<'c> {
    check: &'c Check,
    title: Arc<str>,
    section: Arc<str>,
    checklist: Arc<[String]>,
}

impl<'c> Shared<'c> {
    fn new(check: &'c Check) -> Self {
        Self {
            check,
            title: check.title.as_str().into(),
            section: check.section.as_str().into(),
            checklist: check.checklist.as_slice().into(),
        }
    }
}

impl std::ops::Deref for Shared<'_> {
    type Target = Check;
    fn deref(&self) -> &Check {
        self.check
    }
}

fn evaluate_serial(checks: &[&Check], facts: &Facts) -> Vec<CheckResult> {
    let env = CelEnv::default();
    let root = env.root_context();
    let mut results = Vec::new();
    for &check in checks {
        let check = &Shared::new(check);
        let source = check.source();
        match &check.probe {
            checks::Probe::Manual => results.push(result(
                check,
                Status::Manual,
                "awaiting reviewer attestation".into(),
                None,
                facts,
            )),
            checks::Probe::Http(_) | checks::Probe::Metrics(_)
                if !facts.sources.contains(&source) =>
            {
                let why = if source == Source::Http {
                    "not evaluated: no running service in this run (give --endpoint)"
                } else {
                    "not evaluated: no metrics source in this run (give --prometheus or --endpoint)"
                };
                let skip = SkipReason::NoSource { source };
                results.push(result_of(check, Verdict::skipped(skip, why), None, facts));
            }
            checks::Probe::Http(_) => evaluate_http(check, facts, &root, &mut results),
            checks::Probe::Metrics(m) => evaluate_metrics(check, m, facts, &root, &mut results),
            checks::Probe::Kubernetes(_) if !facts.sources.contains(&Source::Kubernetes) => {
                let skip = SkipReason::NoSource {
                    source: Source::Kubernetes,
                };
                let why = "not evaluated: no Kubernetes objects in this run (give --manifests)";
                results.push(result_of(check, Verdict::skipped(skip, why), None, facts));
            }
            checks::Probe::Kubernetes(k) => {
                evaluate_kubernetes(check, k, facts, &root, &mut results);
            }
        }
    }
    // Up to half the capacity is slack from doubling; the report keeps these for the whole run.
    results.shrink_to_fit();
    results
}

fn evaluate_kubernetes(
    check: &Shared<'_>,
    probe: &KubernetesProbe,
    facts: &Facts,
    root: &Context<'static, 'static>,
    results: &mut Vec<CheckResult>,
) {
    // In a live audit, a kind the check reads that could not be listed makes it unevaluable.
    let unreadable: Vec<&String> = probe
        .kinds
        .iter()
        .map(|k| &k.kind)
        .chain(probe.depends_on.iter())
        .filter_map(|k| facts.kind_errors.get(k))
        .collect();
    if let Some(first) = unreadable.first() {
        results.push(result(
            check,
            Status::Error,
            format!("cannot evaluate: {first}"),
            None,
            facts,
        ));
        return;
    }
    let mut matched = 0;
    // Only the objects of the check's kinds (the straightforward path visits every object).
    let slots: Vec<usize> = if facts.straightforward {
        (0..facts.objects.len()).collect()
    } else {
        facts.slots_of_kinds(&probe.kinds)
    };
    let params: Box<dyn Val> = json_to_cel(&facts.params)
        .try_into()
        .expect("a value built from JSON converts to a cel Val");
    let null: Box<dyn Val> = Value::Null.try_into().expect("null converts to a cel Val");
    for i in slots {
        let obj = &facts.objects[i];
        let kind_ok = probe
            .kinds
            .iter()
            .any(|k| k.matches(&obj.api_version, &obj.kind));
        let ns_ok = probe.namespaces.is_empty()
            || obj
                .namespace
                .as_ref()
                .is_some_and(|ns| probe.namespaces.contains(ns));
        if !kind_ok || !ns_ok || !facts.in_scope(obj) {
            continue;
        }
        matched += 1;
        let verdict = if facts.straightforward {
            let mut ctx = root.new_inner_scope();
            ctx.add_variable_from_value("object", facts.cel_object(i));
            ctx.add_variable_from_value("oldObject", Value::Null);
            ctx.add_variable_from_value("mlsdm", facts.cel_mlsdm(i));
            ctx.add_variable_from_value("params", json_to_cel(&facts.params));
            if probe.uses_related {
                ctx.add_variable_from_value("related", facts.cel_related(i));
            }
            evaluate_object(check, probe, &ctx)
        } else {
            // The object's values are converted once per run and borrowed by every check.
            let cached = facts.vals(i);
            let variables = Vars {
                object: cached.object,
                old_object: null.as_ref(),
                mlsdm: cached.mlsdm,
                params: params.as_ref(),
                related: probe.uses_related.then(|| cached.related()),
            };
            let mut ctx = root.new_inner_scope();
            ctx.set_variable_resolver(&variables);
            evaluate_object(check, probe, &ctx)
        };
        let verdict = Verdict {
            message: facts.redact(&verdict.message),
            ..verdict
        };
        results.push(result_of(check, verdict, Some(i), facts));
    }
    if matched == 0 {
        let kinds: Vec<&str> = probe.kinds.iter().map(|k| k.kind.as_str()).collect();
        let missing: Vec<&str> = kinds
            .iter()
            .copied()
            .filter(|k| facts.missing_kinds.contains(*k))
            .collect();
        if !missing.is_empty() && missing.len() == kinds.len() {
            results.push(result(
                check,
                Status::NoData,
                format!(
                    "{} is not served by the cluster (no API group serves it: a CRD that is not installed, or a kind this Kubernetes version does not have)",
                    missing.join(" / ")
                ),
                None,
                facts,
            ));
            return;
        }
        // A kind named at a version the audit does not hold it at: the objects are there, so
        // "no X object" would be false, and nothing was decided about them.
        let elsewhere: Vec<String> = probe
            .kinds
            .iter()
            .filter_map(|k| {
                let wanted = k.api_version.as_deref()?;
                let held: std::collections::BTreeSet<&str> = facts
                    .objects
                    .iter()
                    .filter(|o| o.kind == k.kind && o.api_version != wanted)
                    .map(|o| o.api_version.as_str())
                    .collect();
                (!held.is_empty()).then(|| {
                    let held: Vec<&str> = held.into_iter().collect();
                    format!(
                        "{} objects at {}, none at the {wanted} this check names",
                        k.kind,
                        held.join(", ")
                    )
                })
            })
            .collect();
        if !elsewhere.is_empty() {
            results.push(result(
                check,
                Status::Error,
                format!(
                    "{} holds {}: name the kind without a version, or at the version held",
                    facts.origin,
                    elsewhere.join("; ")
                ),
                None,
                facts,
            ));
            return;
        }
        results.push(result(
            check,
            Status::NoData,
            format!("no {} object in {}", kinds.join(" or "), facts.origin),
            None,
            facts,
        ));
    }
}

/// The variables of a kubernetes check, borrowed (cel's `add_variable_from_value` would copy
/// the whole object, and `related` with every related object, for each check).
struct Vars<'a> {
    object: &'a dyn Val,
    old_object: &'a dyn Val,
    mlsdm: &'a dyn Val,
    params: &'a dyn Val,
    /// Bound only for checks that read it, as before.
    related: Option<&'a dyn Val>,
}

impl VariableResolver for Vars<'_> {
    fn resolve<'b>(&'b self, variable: &str) -> Option<CowVal<'b, 'b>> {
        let v = match variable {
            "object" => self.object,
            "oldObject" => self.old_object,
            "mlsdm" => self.mlsdm,
            "params" => self.params,
            "related" => self.related?,
            _ => return None,
        };
        Some(CowVal::Borrowed(v))
    }
}

fn where_(check: &Check, e: &Expr) -> String {
    format!("{}:{}", check.origin, e.line)
}

/// What evaluating a check on one object (or one response) gave.
struct Verdict {
    status: Status,
    message: String,
    /// Set exactly when `status` is `Skipped`.
    skip: Option<SkipReason>,
    /// The failing elements of a `forEach` check that declares `item:`.
    items: Vec<Item>,
}

impl Verdict {
    fn skipped(reason: SkipReason, message: impl Into<String>) -> Self {
        Self {
            status: Status::Skipped,
            message: message.into(),
            skip: Some(reason),
            items: Vec::new(),
        }
    }
}

impl From<(Status, String)> for Verdict {
    fn from((status, message): (Status, String)) -> Self {
        debug_assert_ne!(status, Status::Skipped, "a skip carries its reason");
        Self {
            status,
            message,
            skip: None,
            items: Vec::new(),
        }
    }
}

/// The check's `when` conditions: `Some` (skipped, or error) when one does not hold.
fn conditions(check: &Check, ctx: &Context) -> Option<Verdict> {
    for cond in &check.when {
        match cond.expression.program.execute(ctx) {
            Ok(Value::Bool(true)) => {}
            Ok(Value::Bool(false)) => {
                return Some(Verdict::skipped(
                    SkipReason::NotApplicable,
                    format!("not applicable: {}", cond.reason),
                ));
            }
            Ok(other) => {
                return Some(Verdict::from((
                    Status::Error,
                    format!(
                        "{}: when must be a bool, got {}",
                        where_(check, &cond.expression),
                        other.type_of()
                    ),
                )));
            }
            Err(e) => {
                return Some(Verdict::from((
                    Status::Error,
                    format!("{}: {e}", where_(check, &cond.expression)),
                )));
            }
        }
    }
    None
}

fn evaluate_object(check: &Check, probe: &KubernetesProbe, ctx: &Context) -> Verdict {
    // One cost budget for everything this check evaluates on this object.
    let budget = crate::checks::cel::Budget::start();
    if let Some(skip) = conditions(check, ctx) {
        return skip;
    }
    evaluate_items(check, probe, ctx, &budget)
}

fn evaluate_items(
    check: &Check,
    probe: &KubernetesProbe,
    ctx: &Context,
    budget: &crate::checks::cel::Budget,
) -> Verdict {
    let Some(for_each) = &probe.for_each else {
        return run_validations(check, ctx).into();
    };
    let items = match for_each.program.execute(ctx) {
        Ok(Value::List(items)) => items,
        Ok(Value::Null) => {
            return (Status::NoData, "nothing to check: forEach is null".into()).into();
        }
        Ok(other) => {
            return (
                Status::Error,
                format!(
                    "{}: forEach must yield a list, got {}",
                    where_(check, for_each),
                    other.type_of()
                ),
            )
                .into();
        }
        Err(e) => return (Status::Error, format!("{}: {e}", where_(check, for_each))).into(),
    };
    if items.is_empty() {
        return (
            Status::NoData,
            format!("nothing to check: {} is empty", for_each.source),
        )
            .into();
    }
    let mut failures = Vec::new();
    let mut failing = Vec::new();
    let mut errors = Vec::new();
    for item in items.iter() {
        if budget.exhausted() {
            // The rest would only fail at once: one error says it, not one per item.
            errors.push(format!(
                "{}: {}",
                where_(check, for_each),
                crate::checks::cel::budget_message()
            ));
            break;
        }
        let mut inner = ctx.new_inner_scope();
        inner.add_variable_from_value("item", item.clone());
        match run_validations(check, &inner) {
            (Status::Fail, m) => {
                failures.push(m);
                // A failing element that cannot be named makes the result an error: a waiver
                // for one container must never cover an element nobody can tell apart.
                if let Some(spec) = &probe.item {
                    match item_name(check, spec, &inner) {
                        Ok(name) => failing.push(Item {
                            kind: spec.kind,
                            name,
                        }),
                        Err(e) => errors.push(e),
                    }
                }
            }
            (Status::Error, m) => errors.push(m),
            _ => {}
        }
    }
    if !errors.is_empty() {
        (Status::Error, errors.join("; ")).into()
    } else if !failures.is_empty() {
        Verdict {
            items: failing,
            ..(Status::Fail, failures.join("; ")).into()
        }
    } else {
        (Status::Pass, check.title.clone()).into()
    }
}

/// The name of the element bound to `item`, by the check's `item.name` expression.
fn item_name(check: &Check, spec: &CompiledItem, ctx: &Context) -> Result<String, String> {
    match spec.name.program.execute(ctx) {
        Ok(Value::String(s)) => Ok(s.to_string()),
        Ok(other) => Err(format!(
            "{}: item.name must be a string, got {}",
            where_(check, &spec.name),
            other.type_of()
        )),
        Err(e) => Err(format!("{}: item.name: {e}", where_(check, &spec.name))),
    }
}

fn run_validations(check: &Check, ctx: &Context) -> (Status, String) {
    for v in &check.validations {
        match v.expression.program.execute(ctx) {
            Ok(Value::Bool(true)) => {}
            Ok(Value::Bool(false)) => {
                let message = match &v.message_expression {
                    Some(m) => match m.program.execute(ctx) {
                        Ok(value) => display(&value),
                        Err(e) => format!(
                            "{} (messageExpression failed at {}: {e})",
                            v.message.clone().unwrap_or_else(|| check.title.clone()),
                            where_(check, m)
                        ),
                    },
                    None => v
                        .message
                        .clone()
                        .unwrap_or_else(|| format!("failed: {}", v.expression.source)),
                };
                return (Status::Fail, message);
            }
            Ok(other) => {
                return (
                    Status::Error,
                    format!(
                        "{}: validation must be a bool, got {}",
                        where_(check, &v.expression),
                        other.type_of()
                    ),
                );
            }
            Err(e) => {
                return (
                    Status::Error,
                    format!("{}: cannot evaluate: {e}", where_(check, &v.expression)),
                );
            }
        }
    }
    (Status::Pass, check.title.clone())
}

fn result_of(
    check: &Shared<'_>,
    verdict: Verdict,
    object: Option<usize>,
    facts: &Facts,
) -> CheckResult {
    let mut r = result(check, verdict.status, verdict.message, object, facts);
    r.skip_reason = verdict.skip;
    r.items = verdict.items;
    r
}

fn result(
    check: &Shared<'_>,
    status: Status,
    message: String,
    object: Option<usize>,
    facts: &Facts,
) -> CheckResult {
    let (object, location) = object.map_or((None, None), |i| {
        let (object, location) = facts.result_ref(i);
        (Some(object), location)
    });
    CheckResult {
        title: check.title.clone(),
        section: check.section.clone(),
        severity: check.severity,
        object,
        location,
        checklist: check.checklist.clone(),
        ..CheckResult::new(check.id.clone(), check.source(), status, message)
    }
}

fn evaluate_http(
    check: &Shared<'_>,
    facts: &Facts,
    root: &Context<'static, 'static>,
    results: &mut Vec<CheckResult>,
) {
    let outcomes = facts
        .service
        .http
        .get(&check.id)
        .map(Vec::as_slice)
        .unwrap_or_default();
    if outcomes.is_empty() {
        results.push(result(
            check,
            Status::Error,
            "no response was gathered for this check".into(),
            None,
            facts,
        ));
    }
    for Probe {
        target,
        object,
        workload,
        outcome,
    } in outcomes
    {
        let verdict = match outcome {
            HttpOutcome::Skipped(reason, why) => {
                let reason = match reason {
                    ProbeSkip::NeedsActive => SkipReason::NeedsActive,
                    ProbeSkip::NeedsEndpoint => SkipReason::NeedsEndpoint,
                    ProbeSkip::NeedsApiKey => SkipReason::NeedsApiKey,
                };
                Verdict::skipped(reason, format!("not evaluated: {why}"))
            }
            HttpOutcome::Error(e) => (Status::Error, e.clone()).into(),
            HttpOutcome::Response(_) | HttpOutcome::Burst(_) | HttpOutcome::Load(_) => {
                let mut ctx = root.new_inner_scope();
                let (response, responses, load) = match outcome {
                    HttpOutcome::Response(r) => (
                        json_to_cel(&r.to_json()),
                        Value::List(vec![json_to_cel(&r.to_json())].into()),
                        Value::Null,
                    ),
                    HttpOutcome::Burst(all) => (
                        all.last()
                            .map_or(Value::Null, |r| json_to_cel(&r.to_json())),
                        Value::List(
                            all.iter()
                                .map(|r| json_to_cel(&r.to_json()))
                                .collect::<Vec<_>>()
                                .into(),
                        ),
                        Value::Null,
                    ),
                    HttpOutcome::Load(l) => {
                        (Value::Null, Value::List(Vec::new().into()), json_to_cel(l))
                    }
                    _ => unreachable!("handled above"),
                };
                ctx.add_variable_from_value("response", response);
                ctx.add_variable_from_value("responses", responses);
                ctx.add_variable_from_value("load", load);
                // The MLSDM workload behind the target, to compare what runs with what was declared.
                ctx.add_variable_from_value(
                    "mlsdm",
                    workload.map_or(Value::Null, |w| facts.cel_mlsdm(w)),
                );
                let verdict =
                    conditions(check, &ctx).unwrap_or_else(|| run_validations(check, &ctx).into());
                // An expression that reads `response.json` of a body that is not JSON fails
                // with CEL's own words ("No such key"); say what the service answered instead.
                match outcome {
                    HttpOutcome::Response(r)
                        if verdict.status == Status::Error && r.json.is_null() =>
                    {
                        let kind = r
                            .headers
                            .get("content-type")
                            .map_or("no content type", String::as_str);
                        Verdict {
                            message: format!(
                                "the service answered {} with a body that is not JSON ({kind}, {} bytes): {}",
                                r.status,
                                r.body.len(),
                                verdict.message
                            ),
                            ..verdict
                        }
                    }
                    _ => verdict,
                }
            }
        };
        let verdict = Verdict {
            message: facts.redact(&verdict.message),
            ..verdict
        };
        let mut r = result_of(check, verdict, None, facts);
        r.endpoint = Some(target.clone());
        r.object = object.clone().map(Arc::new);
        results.push(r);
    }
}

fn query_vars(v: &QueryValue) -> (Value, Value, bool) {
    let series_of = |items: &[(crate::promql::Labels, f64)]| {
        Value::List(
            items
                .iter()
                .map(|(l, x)| json_to_cel(&serde_json::json!({"labels": l, "value": if x.is_finite() { serde_json::json!(x) } else { serde_json::Value::Null }})))
                .collect::<Vec<_>>()
                .into(),
        )
    };
    match v {
        QueryValue::Scalar(x) => (Value::Float(*x), Value::List(Vec::new().into()), x.is_nan()),
        QueryValue::Vector(items) if items.len() == 1 => (
            Value::Float(items[0].1),
            series_of(items),
            items[0].1.is_nan(),
        ),
        QueryValue::Vector(items) => (Value::Null, series_of(items), false),
    }
}

/// How one evaluation point of a metrics check came out.
enum Point {
    Pass,
    Fail(String),
    NoData(String),
}

fn evaluate_point(
    check: &Check,
    root: &Context<'static, 'static>,
    v: &QueryValue,
    when_empty: WhenEmpty,
    reads_value: bool,
) -> Result<Point, String> {
    let (value, series, nan) = query_vars(v);
    if nan {
        return Ok(Point::NoData(
            "the query returned NaN (no traffic in the window?)".into(),
        ));
    }
    if let QueryValue::Vector(items) = v {
        // Nothing measured decides nothing, unless the check declares that an absence is its
        // evidence (`whenEmpty: evaluate`): `series.all(..)` is true of no series.
        if items.is_empty() && when_empty == WhenEmpty::NoData {
            return Ok(Point::NoData("the query returned no samples".into()));
        }
        if items.len() > 1 && reads_value {
            return Err(format!(
                "the query returned {} series; a check on `value` needs one (aggregate it, or validate `series`)",
                items.len()
            ));
        }
    }
    let mut ctx = root.new_inner_scope();
    ctx.add_variable_from_value("value", value);
    ctx.add_variable_from_value("series", series);
    // A validation that cannot be evaluated is an error, as in kubernetes checks: never no-data.
    match run_validations(check, &ctx) {
        (Status::Pass, _) => Ok(Point::Pass),
        (Status::Fail, m) => Ok(Point::Fail(m)),
        (_, m) => Err(m),
    }
}

fn evaluate_metrics(
    check: &Shared<'_>,
    probe: &MetricsProbe,
    facts: &Facts,
    root: &Context<'static, 'static>,
    results: &mut Vec<CheckResult>,
) {
    // Whether the validations read the variable `value` (from their syntax trees; `s.value`
    // inside `series.all(s, ..)` is a field of a series, not the variable).
    let reads_value = check.validations.iter().any(|v| {
        std::iter::once(&v.expression)
            .chain(v.message_expression.as_ref())
            .any(|e| {
                e.program
                    .reads()
                    .iter()
                    .any(|r| r == "value" || r.starts_with("value."))
            })
    });
    let (status, message, window) = match facts.service.metrics.get(&check.id) {
        None => (
            Status::Error,
            "no metrics were gathered for this check".into(),
            None,
        ),
        Some(MetricOutcome::Error(e)) => (Status::Error, e.clone(), None),
        Some(MetricOutcome::NoData(why)) => (Status::NoData, why.clone(), None),
        Some(MetricOutcome::Points {
            points,
            asked,
            covered,
            window,
            source,
        }) => {
            let mut info = WindowInfo {
                asked: probe.window.as_ref().map(|w| w.text.clone()),
                evaluated_seconds: *covered,
                source: source.clone(),
            };
            let mut evaluated: Vec<(f64, Point)> = Vec::new();
            let mut error = None;
            for (t, v) in points {
                match evaluate_point(check, root, v, probe.when_empty, reads_value) {
                    Ok(p) => evaluated.push((*t, p)),
                    Err(e) => {
                        error = Some(e);
                        break;
                    }
                }
            }
            let decided: Vec<&(f64, Point)> = evaluated
                .iter()
                .filter(|(_, p)| !matches!(p, Point::NoData(_)))
                .collect();
            // The span the decided points cover, counting one step for the last point.
            let step = if points.len() > 1 {
                (points[points.len() - 1].0 - points[0].0) / (points.len() - 1) as f64
            } else {
                0.0
            };
            let span = match (decided.first(), decided.last()) {
                (Some(a), Some(b)) => b.0 - a.0 + step,
                _ => 0.0,
            };
            info.evaluated_seconds = span;
            let note = match (asked, window) {
                (Some(a), Some(w)) if a != w => {
                    format!(" (evaluated over {w}s instead of the {a}s the check asks for)")
                }
                _ => String::new(),
            };
            let last_fail = decided.iter().rev().find_map(|(_, p)| {
                if let Point::Fail(m) = p {
                    Some(m.clone())
                } else {
                    None
                }
            });
            if let Some(e) = error {
                (Status::Error, e, Some(info))
            } else if decided.is_empty() {
                let why = evaluated.iter().find_map(|(_, p)| {
                    if let Point::NoData(m) = p {
                        Some(m.clone())
                    } else {
                        None
                    }
                });
                (
                    Status::NoData,
                    why.unwrap_or_else(|| "no samples".into()),
                    Some(info),
                )
            } else if decided.iter().any(|(_, p)| matches!(p, Point::Pass)) {
                (Status::Pass, format!("{}{note}", check.title), Some(info))
            } else if window.is_none_or(|w| span + 1e-6 >= w as f64 * 0.9) {
                (
                    Status::Fail,
                    format!("{}{note}", last_fail.unwrap_or_default()),
                    Some(info),
                )
            } else {
                let w = window.unwrap_or(0);
                (
                    Status::NoData,
                    format!(
                        "{} for the {span:.0}s with data, less than the {w}s the condition must hold",
                        last_fail.unwrap_or_default()
                    ),
                    Some(info),
                )
            }
        }
    };
    let mut r = result(check, status, facts.redact(&message), None, facts);
    r.window = window.map(Box::new);
    r.endpoint = facts.service_origin();
    results.push(r);
}
