//! Evaluates checks against facts: pure, synchronous, no I/O. A failed check is data (a result),
//! and anything that could not be evaluated is `error`, `no-data` or `skipped`, never `pass`.
//!
//! Parts: this file (the entry point, spreading checks and objects over the cores, and what
//! every evaluator ends in: `run_validations`, `result`, the verdict), `kubernetes` (object by
//! object, every check on each, and per item)
//! and `service` (http responses, metrics points). A new source is a new part whose evaluator
//! ends in the same functions, so one rule decides what a verdict may be.

mod kubernetes;
mod service;

use kubernetes::{KubeChecks, evaluate_kubernetes};
use service::{evaluate_http, evaluate_metrics};

use crate::checks::cel::{CelEnv, display};
use crate::checks::{self, Check, Expr, Source};
use crate::facts::Facts;
use crate::report::{CheckId, CheckResult, Item, SkipReason, Status};
use cel::Context;
use cel::objects::Value;
use std::sync::Arc;

/// The objects an evaluation thread needs to be worth starting ([`crate::parallel::threads_for`]).
/// Measured with farm-bench (release build, two cores, `--format json`, paired runs, one thread
/// against two, medians): one Deployment, cpu 0.86x and wall 0.99x; 10 generated objects, cpu
/// 0.89x and wall 1.05x; 50 objects, cpu 0.94x and wall 1.21x. A second thread pays for itself
/// in wall time somewhere between; below, it only costs CPU (a stack, a malloc arena, page
/// faults contending for the address space's lock).
pub const OBJECTS_PER_THREAD: usize = 8;

/// Evaluates every check; the order of the results is fixed later by the report. Checks are
/// spread over the machine's cores: the facts are shared read-only, each thread has its own CEL
/// context.
pub fn evaluate(checks: &[Check], facts: &Facts) -> Vec<CheckResult> {
    concat(evaluate_parts(checks, facts))
}

/// The results of the evaluation in parts: each thread's share of the checks evaluated once,
/// in thread order, then each part of the Kubernetes evaluation in its order, then the
/// Kubernetes checks' own results. The audit frees the facts before it joins them with
/// [`concat`], so that the joined vector is not added to the facts at the run's peak.
///
/// Each thread takes a share of the checks that are evaluated once (manual, http, metrics,
/// skipped), round-robin, and then parts of the Kubernetes evaluation ([`KubeChecks::shares`])
/// one after the other, the next part not yet taken, until none is left: a contiguous range of
/// the objects in evaluation order (namespace and name), on which it evaluates every Kubernetes
/// check, or, for a run of few objects, every object and a share of the checks. Parts are
/// several per thread so that a thread that finishes early takes more: one fixed range per
/// thread left one thread working alone for up to a fifth of the evaluation when its objects
/// cost more than their count said, or its core was slower. A Kubernetes check's own result (it
/// applied to no object, or a kind it reads could not be listed) is the last part.
pub fn evaluate_parts(checks: &[Check], facts: &Facts) -> Vec<Vec<CheckResult>> {
    let threads = match facts.threads {
        Some(n) => n.max(1),
        None if checks.len() < 2 => 1,
        None => crate::parallel::threads_for(facts.objects.len(), OBJECTS_PER_THREAD),
    };
    let shared: Vec<Shared> = checks.iter().map(Shared::new).collect();
    let mut own = Vec::new();
    let kube = (!facts.straightforward && facts.sources.contains(&Source::Kubernetes))
        .then(|| KubeChecks::new(&shared, facts, &mut own));
    let kube_parts = kube
        .as_ref()
        .map_or_else(Vec::new, |k| k.shares(facts, threads));
    let next_part = std::sync::atomic::AtomicUsize::new(0);
    let run = |t: usize| {
        // The straightforward path evaluates with cel alone: tests/equivalence.rs holds the
        // fast path's answers (`checks::cel::FastPath`) to cel's on the same objects.
        let _fast = crate::checks::cel::FastPath::set(!facts.straightforward);
        let root = CelEnv::shared().root_context();
        let mut results = Vec::new();
        // Round-robin, so that cheap (manual) and expensive (metrics) checks spread evenly.
        for check in shared.iter().skip(t).step_by(threads) {
            evaluate_check(check, facts, &root, &mut results);
        }
        // Up to half the capacity is slack from doubling; the report keeps these for the run.
        results.shrink_to_fit();
        let mut done: Vec<(usize, Vec<CheckResult>)> = Vec::new();
        let mut matched: Vec<usize> = Vec::new();
        if let Some(k) = kube.as_ref() {
            k.compile(&kube_parts, t, threads);
            loop {
                let p = next_part.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
                let Some(part) = kube_parts.get(p) else {
                    break;
                };
                let mut part_results = Vec::new();
                let counts = k.evaluate_share(facts, part, &root, &mut part_results);
                part_results.shrink_to_fit();
                done.push((p, part_results));
                matched.resize(counts.len().max(matched.len()), 0);
                for (total, n) in matched.iter_mut().zip(counts) {
                    *total += n;
                }
            }
        }
        ThreadOutcome {
            once: results,
            kube: done,
            matched,
        }
    };
    let outcomes: Vec<ThreadOutcome> = if threads == 1 {
        vec![run(0)]
    } else {
        std::thread::scope(|scope| {
            // With a parse-sized stack: the catalog's expressions compile on these threads.
            let handles: Vec<_> = (0..threads)
                .map(|t| crate::checks::cel::spawn_scoped(scope, "evaluate", move || run(t)))
                .collect();
            handles
                .into_iter()
                .map(|h| h.join().unwrap_or_else(|e| std::panic::resume_unwind(e)))
                .collect()
        })
    };
    let mut parts = Vec::with_capacity(threads + kube_parts.len() + 1);
    let mut kube_done: Vec<(usize, Vec<CheckResult>)> = Vec::with_capacity(kube_parts.len());
    let mut matched: Vec<usize> = Vec::new();
    for ThreadOutcome {
        once,
        kube: done,
        matched: counts,
    } in outcomes
    {
        parts.push(once);
        kube_done.extend(done);
        matched.resize(counts.len().max(matched.len()), 0);
        for (total, n) in matched.iter_mut().zip(counts) {
            *total += n;
        }
    }
    // In the parts' order, whichever thread took them: the same results in the same order for
    // any number of threads and any timing.
    kube_done.sort_unstable_by_key(|(p, _)| *p);
    parts.extend(kube_done.into_iter().map(|(_, results)| results));
    if let Some(kube) = &kube {
        kube.finish(facts, &matched, &mut own);
    }
    parts.push(own);
    parts
}

/// What one evaluation thread of [`evaluate_parts`] gives back.
struct ThreadOutcome {
    /// Its share of the checks evaluated once.
    once: Vec<CheckResult>,
    /// The parts of the Kubernetes evaluation it took, by their place in the parts' order.
    kube: Vec<(usize, Vec<CheckResult>)>,
    /// How many objects each Kubernetes check applied to, in those parts.
    matched: Vec<usize>,
}

/// The parts of [`evaluate_parts`] as one vector, in thread order: the first part grown once
/// to the exact total and the others moved into it. (One part per check, moved into a fresh
/// vector and freed one by one, was measured: glibc kept the freed parts, and the peak grew.)
pub fn concat(parts: Vec<Vec<CheckResult>>) -> Vec<CheckResult> {
    let mut parts = parts.into_iter();
    let mut results = parts.next().unwrap_or_default();
    let rest: Vec<Vec<CheckResult>> = parts.collect();
    results.reserve_exact(rest.iter().map(Vec::len).sum());
    for part in rest {
        results.extend(part);
    }
    results
}

/// A check with the strings all its results share (one copy per check, not per result).
struct Shared<'c> {
    check: &'c Check,
    /// The check's id as results carry it (`check.id` is the definition's `String`).
    result_id: CheckId,
    title: Arc<str>,
    section: Arc<str>,
    checklist: Arc<[String]>,
}

impl<'c> Shared<'c> {
    fn new(check: &'c Check) -> Self {
        Self {
            check,
            result_id: check.id.as_str().into(),
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

/// A check evaluated once, not per object: manual, http, metrics, a skip for want of a source,
/// and on the straightforward path a Kubernetes check over every object. On the normal path a
/// Kubernetes check is evaluated per object ([`KubeChecks`]), not here.
fn evaluate_check(
    check: &Shared<'_>,
    facts: &Facts,
    root: &Context<'static, 'static>,
    results: &mut Vec<CheckResult>,
) {
    let source = check.source();
    match &check.probe {
        checks::Probe::Manual => results.push(result(
            check,
            Status::Manual,
            "awaiting reviewer attestation".into(),
            None,
            facts,
        )),
        checks::Probe::Http(_) | checks::Probe::Metrics(_) if !facts.sources.contains(&source) => {
            let why = if source == Source::Http {
                "not evaluated: no running service in this run (give --endpoint)"
            } else {
                "not evaluated: no metrics source in this run (give --prometheus or --endpoint)"
            };
            let skip = SkipReason::NoSource { source };
            results.push(result_of(check, Verdict::skipped(skip, why), None, facts));
        }
        checks::Probe::Http(_) => evaluate_http(check, facts, root, results),
        checks::Probe::Metrics(m) => evaluate_metrics(check, m, facts, root, results),
        checks::Probe::Kubernetes(_) if !facts.sources.contains(&Source::Kubernetes) => {
            let skip = SkipReason::NoSource {
                source: Source::Kubernetes,
            };
            let why = "not evaluated: no Kubernetes objects in this run (give --manifests)";
            results.push(result_of(check, Verdict::skipped(skip, why), None, facts));
        }
        checks::Probe::Kubernetes(k) if facts.straightforward => {
            evaluate_kubernetes(check, k, facts, root, results);
        }
        checks::Probe::Kubernetes(_) => {}
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
    /// The positions (1-based) of the validations that failed, on any element.
    failed: Vec<u16>,
}

impl Verdict {
    fn skipped(reason: SkipReason, message: impl Into<String>) -> Self {
        Self {
            status: Status::Skipped,
            message: message.into(),
            skip: Some(reason),
            items: Vec::new(),
            failed: Vec::new(),
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
            failed: Vec::new(),
        }
    }
}

/// The check's `when` conditions: `Some` (skipped, or error) when one does not hold.
fn conditions(check: &Check, ctx: &Context) -> Option<Verdict> {
    for cond in &check.when {
        match cond.expression.program().execute(ctx) {
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
                    format!(
                        "{}: {}",
                        where_(check, &cond.expression),
                        not_evaluated(&e, "")
                    ),
                )));
            }
        }
    }
    None
}

/// Why an expression gave no value: for `undecided(why)`, the check's own reason (the
/// runtime's "Error executing function 'undecided'" wording around it said nothing); for any
/// other error, `prefix` and the runtime's message.
fn not_evaluated(e: &cel::ExecutionError, prefix: &str) -> String {
    match e {
        cel::ExecutionError::FunctionError { function, message } if function == "undecided" => {
            format!("undecided: {message}")
        }
        other => format!("{prefix}{other}"),
    }
}

/// Every validation of `check` in `ctx`. All are evaluated, not only up to the first that
/// fails: a second defect of the same object (a container made privileged where it was only
/// allowed to escalate) gave the same result with the same message, so a baseline took it for
/// the known first one. The result is `fail` with the first failing validation's message and
/// the positions of all that fail ([`Verdict::failed`]), the others said by position: a later
/// validation is often written for when the earlier ones hold (a PodDisruptionBudget's
/// `minAvailable` after "a PodDisruptionBudget selects the pods"), and its message would say
/// nonsense where they do not. A validation that cannot be evaluated before any has failed
/// makes the result an error, as before (an error is never waived); after a failure it is most
/// often such a dependent one, and is left out (the result already fails).
fn run_validations(check: &Check, ctx: &Context) -> Verdict {
    let mut message = String::new();
    let mut failed: Vec<u16> = Vec::new();
    for (position, v) in (1u16..).zip(&check.validations) {
        match v.expression.program().execute(ctx) {
            Ok(Value::Bool(true)) => {}
            Ok(Value::Bool(false)) => {
                // Never the check's title: it says what passing looks like, and a failure
                // shown with it read as a pass in every format that shows only the message.
                let plain = || {
                    v.message
                        .clone()
                        .unwrap_or_else(|| format!("failed: {}", v.expression.source))
                };
                if failed.is_empty() {
                    message = match &v.message_expression {
                        Some(m) => match m.program().execute(ctx) {
                            Ok(value) => display(&value),
                            Err(e) => format!(
                                "{} (messageExpression failed at {}: {e})",
                                plain(),
                                where_(check, m)
                            ),
                        },
                        None => plain(),
                    };
                }
                failed.push(position);
            }
            _ if !failed.is_empty() => {}
            Ok(other) => {
                return Verdict::from((
                    Status::Error,
                    format!(
                        "{}: validation must be a bool, got {}",
                        where_(check, &v.expression),
                        other.type_of()
                    ),
                ));
            }
            Err(e) => {
                return Verdict::from((
                    Status::Error,
                    format!(
                        "{}: {}",
                        where_(check, &v.expression),
                        not_evaluated(&e, "cannot evaluate: ")
                    ),
                ));
            }
        }
    }
    if failed.is_empty() {
        Verdict::from((Status::Pass, check.title.clone()))
    } else {
        if let [_, more @ ..] = failed.as_slice()
            && !more.is_empty()
        {
            let more: Vec<String> = more.iter().map(ToString::to_string).collect();
            message = format!(
                "{message} (and validation{} {} of this check fail{} too)",
                if more.len() == 1 { "" } else { "s" },
                more.join(", "),
                if more.len() == 1 { "s" } else { "" }
            );
        }
        Verdict {
            failed,
            ..Verdict::from((Status::Fail, message))
        }
    }
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
    r.failed_validations = verdict.failed;
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
        ..CheckResult::new(
            check.result_id.clone(),
            check.source(),
            status,
            shared(check, message),
        )
    }
}

/// A message that is the check's title (what a pass says) shares the title's one copy: at
/// 5,000 objects, 50,000 passes held their own copy of it (issue 12).
fn shared(check: &Shared<'_>, message: String) -> Arc<str> {
    if *message == *check.title {
        check.title.clone()
    } else {
        message.into()
    }
}
