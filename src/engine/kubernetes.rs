//! Kubernetes checks: each object of the check's kinds, and each element of its `forEach`.
//!
//! A run evaluates them object by object ([`KubeChecks`]): every check that applies to an
//! object is evaluated while that object's cel values (and its `related`) exist, and they are
//! dropped a few objects later ([`ValScope`]). Check by check, every object's cel values had to
//! live for the whole evaluation, beside the JSON they were converted from (issue 12). The
//! straightforward reference path (`Facts::straightforward`) still goes check by check, with
//! values converted per binding ([`evaluate_kubernetes`]); tests/equivalence.rs holds the two
//! to the same report.

use super::{Shared, Verdict, conditions, result, result_of, run_validations, where_};
use crate::checks::item::CompiledItem;
use crate::checks::{Check, KubernetesProbe, Probe};
use crate::facts::values::json_to_cel;
use crate::facts::{Facts, ValScope};
use crate::k8s::Object;
use crate::report::{CheckResult, Item, Status};
use cel::Context;
use cel::common::value::{BuiltinRef, CowVal, Val};
use cel::context::VariableResolver;
use cel::objects::Value;
use std::collections::HashMap;
use std::ops::Range;

/// Objects evaluated within one [`ValScope`]: neighbours share their converted values, and no
/// more than this many objects' values (and their related objects') are alive per thread.
const SCOPE_OBJECTS: usize = 64;

/// In a live audit, a kind the check reads that could not be listed makes it unevaluable: the
/// error result, or `None`. Its dependencies are asked for only then (for a built-in check that
/// compiles them).
fn unreadable(check: &Shared<'_>, probe: &KubernetesProbe, facts: &Facts) -> Option<CheckResult> {
    if facts.kind_errors.is_empty() {
        return None;
    }
    let dependencies = check.dependencies().map_or(&[][..], |d| &d.depends_on);
    // A kind of another group than the one the audit reads it from is listed (or not) under
    // its qualified name (`sources::kube::gather`).
    let first = probe
        .kinds
        .iter()
        .map(|k| k.kind.as_str())
        .chain(dependencies.iter().map(String::as_str))
        .chain(
            probe
                .kinds
                .iter()
                .filter_map(crate::k8s::KindMatcher::qualified),
        )
        .find_map(|k| facts.kind_errors.get(k))?;
    Some(result(
        check,
        Status::Error,
        format!("cannot evaluate: {first}"),
        None,
        facts,
    ))
}

/// Whether the check applies to the object: one of its kinds, in one of its namespaces (any,
/// when it names none), in scope of `--selector`.
fn applies(probe: &KubernetesProbe, obj: &Object, facts: &Facts) -> bool {
    probe
        .kinds
        .iter()
        .any(|k| k.matches(&obj.api_version, &obj.kind))
        && (probe.namespaces.is_empty()
            || obj
                .namespace
                .as_ref()
                .is_some_and(|ns| probe.namespaces.contains(ns)))
        && facts.in_scope(obj)
}

/// One check over every object, with values converted per binding: the straightforward
/// reference the object-by-object evaluation is compared with (tests/equivalence.rs).
pub(super) fn evaluate_kubernetes(
    check: &Shared<'_>,
    probe: &KubernetesProbe,
    facts: &Facts,
    root: &Context<'static, 'static>,
    results: &mut Vec<CheckResult>,
) {
    if let Some(error) = unreadable(check, probe, facts) {
        results.push(error);
        return;
    }
    let mut matched = 0;
    for (i, obj) in facts.objects.iter().enumerate() {
        if !applies(probe, obj, facts) {
            continue;
        }
        matched += 1;
        let mut ctx = root.new_inner_scope();
        ctx.add_variable_from_value("object", facts.cel_object(i));
        ctx.add_variable_from_value("oldObject", Value::Null);
        ctx.add_variable_from_value("mlsdm", facts.cel_mlsdm(i));
        ctx.add_variable_from_value("params", json_to_cel(&facts.params));
        if check.dependencies().is_some_and(|d| d.uses_related) {
            ctx.add_variable_from_value("related", facts.cel_related(i));
        }
        let mut verdict = evaluate_object(check, probe, &ctx);
        verdict.message = facts.redact(std::mem::take(&mut verdict.message));
        results.push(result_of(check, verdict, Some(i), facts));
    }
    if matched == 0 {
        results.push(no_object(check, probe, facts));
    }
}

/// The ranges of objects [`KubeChecks::shares`] cuts per evaluation thread: enough that the
/// threads finish together (a thread that is done takes the next range), few enough that the
/// objects converted again at a range's start (a workload's related objects) cost nothing
/// measurable.
const RANGES_PER_THREAD: usize = 8;

/// Below this many objects a thread, the threads share the checks rather than the objects
/// ([`KubeChecks::shares`]).
const FEW_OBJECTS: usize = 16;

/// One thread's part of the Kubernetes evaluation: a range of the evaluation order, and which
/// checks (`(part, parts)`: those whose index is `part` modulo `parts`), or all of them.
pub(super) struct Share {
    range: Range<usize>,
    checks: Option<(usize, usize)>,
}

/// The Kubernetes checks of a run, evaluated object by object.
pub(super) struct KubeChecks<'s, 'c> {
    checks: Vec<(&'s Shared<'c>, &'c KubernetesProbe)>,
    /// For each kind, the indexes in `checks` of those that name it, in check order.
    by_kind: HashMap<&'c str, Vec<usize>>,
    /// For each kind, the `related` fields its checks read (`None`: `related` read whole).
    related_reads: HashMap<&'c str, Option<std::collections::HashSet<&'c str>>>,
    /// The indexes in `checks` of those that name a kind the run holds objects of: the ones
    /// whose expressions will be compiled.
    used: Vec<usize>,
    /// The objects' indexes in the order they are evaluated: by namespace and name (then input
    /// order). An app's Deployment, Service, HPA and PDB mostly share a name, so a workload's
    /// `related` objects fall in its [`ValScope`] and are converted once, not once more for it;
    /// in input order (kinds apart in a cluster's lists) they were a tenth of a 5,000-object
    /// audit. The report's order does not depend on it: results are sorted by check and object,
    /// and objects that sort the same (kind, namespace, name) keep their input order here.
    order: Vec<usize>,
}

impl<'s, 'c> KubeChecks<'s, 'c> {
    /// The run's Kubernetes checks; a check that cannot be evaluated (an unreadable kind) gets
    /// its error result here, in `results`, and is not evaluated per object.
    pub(super) fn new(
        checks: &'s [Shared<'c>],
        facts: &Facts,
        results: &mut Vec<CheckResult>,
    ) -> Self {
        let mut order: Vec<usize> = (0..facts.objects.len()).collect();
        order.sort_by_key(|&i| {
            let o = &facts.objects[i];
            (o.namespace.as_deref(), o.name.as_str(), i)
        });
        let mut kube = Self {
            checks: Vec::new(),
            by_kind: HashMap::new(),
            related_reads: HashMap::new(),
            used: Vec::new(),
            order,
        };
        let held: std::collections::HashSet<&str> =
            facts.objects.iter().map(|o| o.kind.as_str()).collect();
        for check in checks {
            let Probe::Kubernetes(probe) = &check.check.probe else {
                continue;
            };
            if let Some(error) = unreadable(check, probe, facts) {
                results.push(error);
                continue;
            }
            let index = kube.checks.len();
            kube.checks.push((check, probe));
            // An object of a well-known kind from another group is held under `Kind.group`.
            let mut kinds: Vec<&str> = probe
                .kinds
                .iter()
                .map(|k| k.kind.as_str())
                .chain(
                    probe
                        .kinds
                        .iter()
                        .filter_map(crate::k8s::KindMatcher::qualified),
                )
                .collect();
            kinds.sort_unstable();
            kinds.dedup();
            if kinds.iter().any(|k| held.contains(k)) {
                kube.used.push(index);
            }
            for kind in kinds {
                kube.by_kind.entry(kind).or_default().push(index);
            }
        }
        for (&kind, candidates) in &kube.by_kind {
            let mut fields = Some(std::collections::HashSet::new());
            let reads = candidates
                .iter()
                .flat_map(|&c| kube.checks[c].0.check.expressions())
                .flat_map(|e| e.reads());
            for read in reads {
                match (read.strip_prefix("related"), &mut fields) {
                    (Some(""), _) => fields = None,
                    (Some(rest), Some(fields)) => {
                        if let Some(field) = rest.strip_prefix('.') {
                            fields.insert(field);
                        }
                    }
                    _ => {}
                }
            }
            kube.related_reads.insert(kind, fields);
        }
        kube
    }

    /// Compiles share `part` of `parts` of the used checks' expressions (a built-in check's
    /// are compiled when first needed): spread over the threads before they evaluate, instead
    /// of by whichever thread meets the check first (one thread, when the objects that use
    /// most checks sit in one range: a single Deployment compiled the whole catalog serially).
    /// Shared by checks ([`KubeChecks::shares`]), each thread compiles its own as it meets them.
    pub(super) fn compile(&self, shares: &[Share], part: usize, parts: usize) {
        if shares.iter().any(|s| s.checks.is_some()) {
            return;
        }
        for &c in self.used.iter().skip(part).step_by(parts) {
            self.checks[c].0.compile_evaluated();
        }
    }

    /// How the evaluation is shared among `threads` threads: by contiguous ranges of objects,
    /// [`RANGES_PER_THREAD`] a thread for the threads to take in turn (a workload's related
    /// objects are converted once per range, so there are no more ranges than one per
    /// [`SCOPE_OBJECTS`] objects; [`cut`] sizes them by work, not by count), or, for a run of few objects, every object on every thread and the checks dealt
    /// among them. By ranges, one Deployment (a one-file audit) was all one thread's: its sixty
    /// checks, evaluated serially, while the other thread had nothing. Either way each check's
    /// results come out in object order.
    pub(super) fn shares(&self, facts: &Facts, threads: usize) -> Vec<Share> {
        if self.order.len() < FEW_OBJECTS * threads {
            let parts = threads;
            (0..parts)
                .map(|part| Share {
                    range: 0..self.order.len(),
                    checks: Some((part, parts)),
                })
                .collect()
        } else {
            let ranges = (threads * RANGES_PER_THREAD)
                .min(self.order.len() / SCOPE_OBJECTS)
                .max(threads);
            self.ranges(facts, ranges)
                .into_iter()
                .map(|range| Share {
                    range,
                    checks: None,
                })
                .collect()
        }
    }

    /// The evaluation order (`order`) cut into `parts` contiguous ranges of about equal work
    /// (the number of checks that name each object's kind): the results come out in the same
    /// order when the parts are joined in order, whatever the number of threads.
    pub(super) fn ranges(&self, facts: &Facts, parts: usize) -> Vec<Range<usize>> {
        let weights: Vec<usize> = self
            .order
            .iter()
            .map(|&i| {
                1 + self
                    .by_kind
                    .get(facts.objects[i].kind.as_str())
                    .map_or(0, Vec::len)
            })
            .collect();
        cut(&weights, parts)
    }

    /// Every check of `share` on every object of its range of the evaluation order; returns how
    /// many objects each check applied to.
    pub(super) fn evaluate_share(
        &self,
        facts: &Facts,
        share: &Share,
        root: &Context<'static, 'static>,
        results: &mut Vec<CheckResult>,
    ) -> Vec<usize> {
        let range = share.range.clone();
        let mut matched = vec![0; self.checks.len()];
        let params: Box<dyn Val> = json_to_cel(&facts.params)
            .try_into()
            .expect("a value built from JSON converts to a cel Val");
        let null: Box<dyn Val> = Value::Null.try_into().expect("null converts to a cel Val");
        let mut scope = ValScope::default();
        for (n, &i) in self.order[range].iter().enumerate() {
            if n.is_multiple_of(SCOPE_OBJECTS) {
                scope = ValScope::default();
            }
            let obj = &facts.objects[i];
            let Some(candidates) = self.by_kind.get(obj.kind.as_str()) else {
                continue;
            };
            let mut object = None;
            let related = std::cell::OnceCell::new();
            for &c in candidates {
                if share.checks.is_some_and(|(part, parts)| c % parts != part) {
                    continue;
                }
                let (check, probe) = self.checks[c];
                if !applies(probe, obj, facts) {
                    continue;
                }
                matched[c] += 1;
                let object: &crate::facts::values::SharedVal =
                    object.get_or_insert_with(|| scope.object(facts, i));
                // Compiles a built-in check's expressions when its first object is met.
                let uses_related = check.dependencies().is_some_and(|d| d.uses_related);
                let variables = Vars {
                    object: object.0.as_ref(),
                    old_object: null.as_ref(),
                    mlsdm: facts.mlsdm_val(i),
                    params: params.as_ref(),
                    related: uses_related.then(|| {
                        related
                            .get_or_init(|| {
                                // Only what the kind's checks read is computed (see
                                // `Facts::related_val`).
                                let reads = self.related_reads.get(obj.kind.as_str());
                                let wants = |field: &str| {
                                    reads.is_none_or(|r| {
                                        r.as_ref().is_none_or(|f| f.contains(field))
                                    })
                                };
                                facts.related_val(i, &scope, &wants)
                            })
                            .as_ref()
                    }),
                };
                let mut ctx = root.new_inner_scope();
                ctx.set_variable_resolver(&variables);
                let mut verdict = evaluate_object(check, probe, &ctx);
                verdict.message = facts.redact(std::mem::take(&mut verdict.message));
                results.push(result_of(check, verdict, Some(i), facts));
            }
        }
        matched
    }

    /// The result of each check that applied to no object (`matched`: the sum over the ranges).
    pub(super) fn finish(&self, facts: &Facts, matched: &[usize], results: &mut Vec<CheckResult>) {
        for (&(check, probe), &n) in self.checks.iter().zip(matched) {
            if n == 0 {
                results.push(no_object(check, probe, facts));
            }
        }
    }
}

/// `weights.len()` items cut into `parts` contiguous ranges of about equal total weight, in
/// order, covering every item exactly once (trailing ranges may be empty).
fn cut(weights: &[usize], parts: usize) -> Vec<Range<usize>> {
    let parts = parts.max(1);
    let total: usize = weights.iter().sum();
    let mut ranges = Vec::with_capacity(parts);
    let (mut start, mut done) = (0, 0);
    for (i, w) in weights.iter().enumerate() {
        done += w;
        if ranges.len() + 1 < parts && done * parts >= total * (ranges.len() + 1) {
            ranges.push(start..i + 1);
            start = i + 1;
        }
    }
    ranges.push(start..weights.len());
    ranges.resize(parts, weights.len()..weights.len());
    ranges
}

/// Why a check that applied to no object decided nothing: its kinds are not served, held at
/// another version, or absent.
fn no_object(check: &Shared<'_>, probe: &KubernetesProbe, facts: &Facts) -> CheckResult {
    let kinds: Vec<&str> = probe.kinds.iter().map(|k| k.kind.as_str()).collect();
    let missing: Vec<&str> = kinds
        .iter()
        .copied()
        .filter(|k| facts.missing_kinds.contains(*k))
        .collect();
    if !missing.is_empty() && missing.len() == kinds.len() {
        return result(
            check,
            Status::NoData,
            format!(
                "{} is not served by the cluster (no API group serves it: a CRD that is not installed, or a kind this Kubernetes version does not have)",
                missing.join(" / ")
            ),
            None,
            facts,
        );
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
        return result(
            check,
            Status::Error,
            format!(
                "{} holds {}: name the kind without a version, or at the version held",
                facts.origin,
                elsewhere.join("; ")
            ),
            None,
            facts,
        );
    }
    // A check of Deployments on a release that runs MLSDM as a StatefulSet or an Argo Rollout:
    // "no Deployment object" read as if there were nothing to judge. Said as what it is.
    let unjudged: Vec<String> = if kinds.iter().any(|k| crate::k8s::WORKLOAD_KINDS.contains(k)) {
        facts
            .mlsdm_workloads()
            .filter(|w| !kinds.contains(&w.kind.as_str()))
            .map(|w| format!("{} {}", w.kind, w.name))
            .collect()
    } else {
        Vec::new()
    };
    let also = if unjudged.is_empty() {
        String::new()
    } else {
        format!(
            "; MLSDM runs as {}, a kind this check does not judge: nothing was decided about it",
            unjudged.join(", ")
        )
    };
    result(
        check,
        Status::NoData,
        format!("no {} object in {}{also}", kinds.join(" or "), facts.origin),
        None,
        facts,
    )
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
        let by_name = |name: &str| -> Option<Option<&'b dyn Val>> {
            Some(match name {
                "object" => Some(self.object),
                "oldObject" => Some(self.old_object),
                "mlsdm" => Some(self.mlsdm),
                "params" => Some(self.params),
                "related" => self.related,
                _ => return None,
            })
        };
        // A name alone is most lookups (the fast path asks for each variable it reads).
        if let Some(v) = by_name(variable) {
            return v.map(CowVal::Borrowed);
        }
        let (name, fields) = variable.split_once('.')?;
        select_path(by_name(name)??, fields)
    }
}

/// `variable.a.b` as cel resolves it: cel asks a scope's resolver for a qualified name whole
/// (`object.spec.replicas`), then for each shorter prefix (`object.spec`, `object`), joining
/// and looking each up, and selects what is left field by field; a tenth of a manifest audit's
/// evaluation went to those attempts (issue 12). None of our variables has a dot in its name,
/// so the whole name always resolves to the variable with its fields selected in turn: answered
/// here in one step. Only a walk through maps that finds every field answers; anything else (a
/// missing field, a list or a string on the way) answers `None`, and cel resolves the name as
/// before, with its own value or error. A field name never holds a dot (the parsers refuse
/// cel's backtick-quoted fields, see `checks::cel`'s tests), so the split is cel's own.
fn select_path<'b>(root: &'b dyn Val, fields: &str) -> Option<CowVal<'b, 'b>> {
    let mut v = root;
    for field in fields.split('.') {
        let BuiltinRef::Map(map) = v.as_builtin() else {
            return None;
        };
        let key = cel::common::types::CelString::from(field);
        match cel::common::traits::Indexer::get(map, &key).ok()? {
            CowVal::Borrowed(inner) => v = inner,
            CowVal::Owned(_) => return None,
        }
    }
    Some(CowVal::Borrowed(v))
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
        return run_validations(check, ctx);
    };
    // The list is borrowed from the object where it can be (`object.spec...containers`), and
    // each element is bound to `item` by reference: converting it to a `Value` and back into
    // each `item` copied every element twice, for every check with a `forEach`.
    if let Some(items) = for_each.program().execute_items(ctx) {
        let items: Vec<&dyn Val> = items.iter().map(AsRef::as_ref).collect();
        return evaluate_each(check, probe, for_each, ctx, budget, &items);
    }
    let evaluated = match for_each.program().execute_val(ctx) {
        Ok(v) => v,
        Err(e) => return (Status::Error, format!("{}: {e}", where_(check, for_each))).into(),
    };
    let owned;
    let items: Vec<&dyn Val> = if let BuiltinRef::List(list) = evaluated.as_builtin() {
        list.inner().iter().map(AsRef::as_ref).collect()
    } else {
        let converted: Result<Value, _> = evaluated.as_ref().try_into();
        match converted {
            Ok(Value::Null) => {
                return (Status::NoData, "nothing to check: forEach is null".into()).into();
            }
            Ok(Value::List(list)) => {
                owned = list
                    .iter()
                    .map(|item| {
                        Box::<dyn Val>::try_from(item.clone())
                            .expect("a list element converts back to a cel Val")
                    })
                    .collect::<Vec<_>>();
                owned.iter().map(AsRef::as_ref).collect()
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
            Err(e) => {
                return (Status::Error, format!("{}: {e}", where_(check, for_each))).into();
            }
        }
    };
    evaluate_each(check, probe, for_each, ctx, budget, &items)
}

/// Each element of a `forEach` list bound to `item`, its validations run.
fn evaluate_each(
    check: &Check,
    probe: &KubernetesProbe,
    for_each: &crate::checks::Expr,
    ctx: &Context,
    budget: &crate::checks::cel::Budget,
    items: &[&dyn Val],
) -> Verdict {
    if items.is_empty() {
        return (
            Status::NoData,
            format!("nothing to check: {} is empty", for_each.source),
        )
            .into();
    }
    let mut failures = Vec::new();
    let mut failing = Vec::new();
    let mut failed: Vec<u16> = Vec::new();
    let mut errors = Vec::new();
    for item in items {
        if budget.exhausted() {
            // The rest would only fail at once: one error says it, not one per item.
            errors.push(format!(
                "{}: {}",
                where_(check, for_each),
                crate::checks::cel::budget_message()
            ));
            break;
        }
        let bound = ItemVar(*item);
        let mut inner = ctx.new_inner_scope();
        inner.set_variable_resolver(&bound);
        let verdict = run_validations(check, &inner);
        match verdict.status {
            Status::Fail => {
                failures.push(verdict.message);
                failed.extend(verdict.failed.iter().copied());
                // A failing element that cannot be named makes the result an error: a waiver
                // for one container must never cover an element nobody can tell apart.
                if let Some(spec) = &probe.item {
                    match item_name(check, spec, &inner) {
                        Ok(name) => failing.push(Item {
                            kind: spec.kind,
                            name,
                            failed_validations: verdict.failed.clone(),
                        }),
                        Err(e) => errors.push(e),
                    }
                }
            }
            Status::Error => errors.push(verdict.message),
            _ => {}
        }
    }
    failed.sort_unstable();
    failed.dedup();
    if !errors.is_empty() {
        (Status::Error, errors.join("; ")).into()
    } else if !failures.is_empty() {
        Verdict {
            items: failing,
            failed,
            ..(Status::Fail, failures.join("; ")).into()
        }
    } else {
        (Status::Pass, check.title.clone()).into()
    }
}

/// The name of the element bound to `item`, by the check's `item.name` expression.
fn item_name(check: &Check, spec: &CompiledItem, ctx: &Context) -> Result<String, String> {
    match spec.name.program().execute(ctx) {
        Ok(Value::String(s)) => Ok(s.to_string()),
        Ok(other) => Err(format!(
            "{}: item.name must be a string, got {}",
            where_(check, &spec.name),
            other.type_of()
        )),
        Err(e) => Err(format!("{}: item.name: {e}", where_(check, &spec.name))),
    }
}

/// `item` of a `forEach`, borrowed from the evaluated list.
struct ItemVar<'a>(&'a dyn Val);

impl VariableResolver for ItemVar<'_> {
    fn resolve<'b>(&'b self, variable: &str) -> Option<CowVal<'b, 'b>> {
        match variable.strip_prefix("item") {
            Some("") => Some(CowVal::Borrowed(self.0)),
            // `item.name`: one step, as for `Vars`.
            Some(rest) => select_path(self.0, rest.strip_prefix('.')?),
            None => None,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::cut;

    /// An object left out of every range would never be evaluated: its checks would pass by
    /// saying nothing. Every cut covers every item once, in order, in `parts` ranges.
    #[test]
    fn ranges_cover_every_object_once_in_order() {
        let weights_sets: Vec<Vec<usize>> = vec![
            vec![],
            vec![5],
            vec![1, 1, 1, 1, 1],
            vec![100, 1, 1, 1],
            vec![1, 1, 1, 100],
            vec![0, 0, 7, 0, 3, 0],
            (0..1000).map(|i| 1 + (i * 7919) % 13).collect(),
        ];
        for weights in &weights_sets {
            for parts in 1..=9 {
                let ranges = cut(weights, parts);
                assert_eq!(ranges.len(), parts, "{weights:?} in {parts}");
                let covered: Vec<usize> = ranges.iter().flat_map(Clone::clone).collect();
                assert_eq!(
                    covered,
                    (0..weights.len()).collect::<Vec<_>>(),
                    "{weights:?} in {parts}: {ranges:?}"
                );
            }
        }
        // About equal work: no range of the uniform set holds more than its share plus one.
        let uniform = vec![3; 1000];
        for parts in 1..=8 {
            for r in cut(&uniform, parts) {
                assert!(r.len() <= 1000 / parts + 1, "{parts}: {r:?}");
            }
        }
    }
}
