//! Checks on the running service: http responses and metrics points.

use super::{Shared, Verdict, conditions, result, result_of, run_validations};
use crate::checks::{Check, MetricsProbe, WhenEmpty};
use crate::facts::Facts;
use crate::facts::service::{HttpOutcome, MetricOutcome, Probe, ProbeSkip};
use crate::facts::values::json_to_cel;
use crate::promql::QueryValue;
use crate::report::{CheckResult, SkipReason, Status, WindowInfo};
use cel::Context;
use cel::objects::Value;
use std::sync::Arc;

pub(super) fn evaluate_http(
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
            outcome if route_missing(check, outcome).is_some() => (
                Status::Error,
                route_missing(check, outcome).unwrap_or_default(),
            )
                .into(),
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
                    conditions(check, &ctx).unwrap_or_else(|| run_validations(check, &ctx));
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
        let mut verdict = verdict;
        verdict.message = facts.redact(std::mem::take(&mut verdict.message));
        let mut r = result_of(check, verdict, None, facts);
        r.endpoint = Some(target.clone());
        r.object = object.clone().map(Arc::new);
        results.push(r);
    }
}

/// Why an answer says the endpoint does not serve the check's route, if it does: every answer
/// a 404 (Not Found) or a 405 (Method Not Allowed). Judged by the validations, a 404 passed
/// "a malformed request gets a 4xx" and failed "rate limiting" and "authentication" with claims
/// about a service that was never reached; a check whose route may be turned off says so
/// (`request.mayBeAbsent`).
fn route_missing(check: &Shared<'_>, outcome: &HttpOutcome) -> Option<String> {
    let request = check.request()?;
    if request.may_be_absent {
        return None;
    }
    let absent = |status: u16| matches!(status, 404 | 405);
    let status = match outcome {
        HttpOutcome::Response(r) => Some(r.status).filter(|&s| absent(s)),
        HttpOutcome::Burst(all) => all
            .first()
            .map(|r| r.status)
            .filter(|&s| absent(s) && all.iter().all(|r| r.status == s)),
        HttpOutcome::Load(l) => {
            let requests = l.get("requests").and_then(serde_json::Value::as_u64);
            let not_found = l.get("notFound").and_then(serde_json::Value::as_u64);
            (requests.is_some_and(|n| n > 0) && requests == not_found).then_some(404)
        }
        _ => None,
    }?;
    Some(format!(
        "{} {} answered {status} ({}): the endpoint does not serve MLSDM's {}, so nothing was measured (is the endpoint the service's root URL, without a path prefix?)",
        request.method,
        request.path,
        if status == 404 {
            "Not Found"
        } else {
            "Method Not Allowed"
        },
        request.path
    ))
}

/// A value that decides nothing: NaN, or -Inf.
fn undecidable(x: f64) -> bool {
    x.is_nan() || x == f64::NEG_INFINITY
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
        // Not a number decides nothing: NaN (no traffic), and -Inf (an error rate of -Inf passed
        // `<= 0.10`). +Inf is a value: "above every bound" (a quantile in the +Inf bucket), which
        // fails every upper limit, as it must (a P95 of 10 s and more is no pass and no
        // no-data).
        QueryValue::Scalar(x) => (
            Value::Float(*x),
            Value::List(Vec::new().into()),
            undecidable(*x),
        ),
        QueryValue::Vector(items) if items.len() == 1 => (
            Value::Float(items[0].1),
            series_of(items),
            undecidable(items[0].1),
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
    let (value, series, not_a_number) = query_vars(v);
    if not_a_number {
        return Ok(Point::NoData(
            "the query returned NaN or -Inf (no traffic in the window, or a counter that is not a number?)".into(),
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
    let verdict = run_validations(check, &ctx);
    match verdict.status {
        Status::Pass => Ok(Point::Pass),
        Status::Fail => Ok(Point::Fail(verdict.message)),
        _ => Err(verdict.message),
    }
}

pub(super) fn evaluate_metrics(
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
            .any(|e| e.reads().any(|r| r == "value" || r.starts_with("value.")))
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
            lower_bound,
            only_failure: _,
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
                match lower_bound {
                    Some(why) => (Status::NoData, why.clone(), Some(info)),
                    None => (Status::Pass, format!("{}{note}", check.title), Some(info)),
                }
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
    // Only a failure is earned where a target is down: anything else is that error.
    let (status, message) = match facts.service.metrics.get(&check.id) {
        Some(MetricOutcome::Points {
            only_failure: Some(why),
            ..
        }) => match status {
            Status::Fail => (
                status,
                format!("{message} (on the targets Prometheus scrapes; {why})"),
            ),
            Status::Error => (status, message),
            _ => (Status::Error, format!("{why} ({message})")),
        },
        _ => (status, message),
    };
    let mut r = result(check, status, facts.redact(message), None, facts);
    r.window = window.map(Box::new);
    r.endpoint = facts.service_origin();
    results.push(r);
}
