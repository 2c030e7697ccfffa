//! Evaluates checks against facts: pure, synchronous, no I/O. A failed check is data (a result),
//! and anything that could not be evaluated is `error`, `no-data` or `skipped`, never `pass`.

use crate::checks::cel::{CelEnv, display};
use crate::checks::{Check, Expr, Source};
use crate::report::{CheckResult, ObjectRef, Status};
use crate::sources::Facts;
use cel::Context;
use cel::objects::Value;

/// Evaluates every check; the order of the results is fixed later by the report.
pub fn evaluate(checks: &[Check], facts: &Facts) -> Vec<CheckResult> {
    let env = CelEnv::default();
    let root = env.root_context();
    let mut results = Vec::new();
    for check in checks {
        match check.source {
            Source::Manual => results.push(result(
                check,
                Status::Manual,
                "awaiting reviewer attestation".into(),
                None,
                facts,
            )),
            Source::Http | Source::Metrics if !facts.sources.contains(&check.source) => {
                let why = if check.source == Source::Http {
                    "not evaluated: no running service in this run (give --endpoint)"
                } else {
                    "not evaluated: no metrics source in this run (give --prometheus or --endpoint)"
                };
                results.push(result(check, Status::Skipped, why.into(), None, facts));
            }
            Source::Http | Source::Metrics => {
                results.push(result(
                    check,
                    Status::Error,
                    format!("{} checks are not supported by this build", check.source),
                    None,
                    facts,
                ));
            }
            Source::Kubernetes => evaluate_kubernetes(check, facts, &root, &mut results),
        }
    }
    results
}

fn evaluate_kubernetes(
    check: &Check,
    facts: &Facts,
    root: &Context<'static, 'static>,
    results: &mut Vec<CheckResult>,
) {
    let mut matched = 0;
    for (i, obj) in facts.objects.iter().enumerate() {
        let kind_ok = check
            .kinds
            .iter()
            .any(|k| k.matches(&obj.api_version, &obj.kind));
        let ns_ok = check.namespaces.is_empty()
            || obj
                .namespace
                .as_ref()
                .is_some_and(|ns| check.namespaces.contains(ns));
        if !kind_ok || !ns_ok || !facts.in_scope(obj) {
            continue;
        }
        matched += 1;
        let mut ctx = root.new_inner_scope();
        ctx.add_variable_from_value("object", facts.cel_object(i));
        ctx.add_variable_from_value("oldObject", Value::Null);
        ctx.add_variable_from_value("mlsdm", facts.cel_mlsdm(i));
        if check.uses_related {
            ctx.add_variable_from_value("related", facts.cel_related(i));
        }
        let (status, message) = evaluate_object(check, &ctx);
        results.push(result(
            check,
            status,
            facts.redact(&message),
            Some(i),
            facts,
        ));
    }
    if matched == 0 {
        let kinds: Vec<&str> = check.kinds.iter().map(|k| k.kind.as_str()).collect();
        results.push(result(
            check,
            Status::NoData,
            format!("no {} object in {}", kinds.join(" or "), facts.origin),
            None,
            facts,
        ));
    }
}

fn where_(check: &Check, e: &Expr) -> String {
    format!("{}:{}", check.origin, e.line)
}

fn evaluate_object(check: &Check, ctx: &Context) -> (Status, String) {
    for cond in &check.when {
        match cond.expression.program.execute(ctx) {
            Ok(Value::Bool(true)) => {}
            Ok(Value::Bool(false)) => {
                return (Status::Skipped, format!("not applicable: {}", cond.reason));
            }
            Ok(other) => {
                return (
                    Status::Error,
                    format!(
                        "{}: when must be a bool, got {}",
                        where_(check, &cond.expression),
                        other.type_of()
                    ),
                );
            }
            Err(e) => {
                return (
                    Status::Error,
                    format!("{}: {e}", where_(check, &cond.expression)),
                );
            }
        }
    }
    let Some(for_each) = &check.for_each else {
        return run_validations(check, ctx);
    };
    let items = match for_each.program.execute(ctx) {
        Ok(Value::List(items)) => items,
        Ok(Value::Null) => return (Status::NoData, "nothing to check: forEach is null".into()),
        Ok(other) => {
            return (
                Status::Error,
                format!(
                    "{}: forEach must yield a list, got {}",
                    where_(check, for_each),
                    other.type_of()
                ),
            );
        }
        Err(e) => return (Status::Error, format!("{}: {e}", where_(check, for_each))),
    };
    if items.is_empty() {
        return (
            Status::NoData,
            format!("nothing to check: {} is empty", for_each.source),
        );
    }
    let mut failures = Vec::new();
    let mut errors = Vec::new();
    for item in items.iter() {
        let mut inner = ctx.new_inner_scope();
        inner.add_variable_from_value("item", item.clone());
        match run_validations(check, &inner) {
            (Status::Fail, m) => failures.push(m),
            (Status::Error, m) => errors.push(m),
            _ => {}
        }
    }
    if !errors.is_empty() {
        (Status::Error, errors.join("; "))
    } else if !failures.is_empty() {
        (Status::Fail, failures.join("; "))
    } else {
        (Status::Pass, check.title.clone())
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

fn result(
    check: &Check,
    status: Status,
    message: String,
    object: Option<usize>,
    facts: &Facts,
) -> CheckResult {
    let obj = object.map(|i| &facts.objects[i]);
    CheckResult {
        id: check.id.clone(),
        title: check.title.clone(),
        section: check.section.clone(),
        severity: check.severity,
        source: check.source,
        status,
        message,
        object: obj.map(|o| ObjectRef {
            kind: o.kind.clone(),
            namespace: o.namespace.clone(),
            name: o.name.clone(),
        }),
        location: obj.and_then(|o| o.location.clone()),
        checklist: check.checklist.clone(),
        outcome: None,
        waiver: None,
        attestation: None,
        change: None,
    }
}
