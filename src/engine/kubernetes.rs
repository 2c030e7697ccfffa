//! Kubernetes checks: each object of the check's kinds, and each element of its `forEach`.

use super::{Shared, Verdict, conditions, result, result_of, run_validations, where_};
use crate::checks::item::CompiledItem;
use crate::checks::{Check, KubernetesProbe};
use crate::facts::Facts;
use crate::facts::values::json_to_cel;
use crate::report::{CheckResult, Item, Status};
use cel::Context;
use cel::common::value::{BuiltinRef, CowVal, Val};
use cel::context::VariableResolver;
use cel::objects::Value;

pub(super) fn evaluate_kubernetes(
    check: &Shared<'_>,
    probe: &KubernetesProbe,
    facts: &Facts,
    root: &Context<'static, 'static>,
    results: &mut Vec<CheckResult>,
) {
    // In a live audit, a kind the check reads that could not be listed makes it unevaluable.
    // Its dependencies are asked for only then: for a built-in check that compiles them.
    let dependencies = || check.dependencies().map_or(&[][..], |d| &d.depends_on);
    let unreadable: Vec<&String> = if facts.kind_errors.is_empty() {
        Vec::new()
    } else {
        probe
            .kinds
            .iter()
            .map(|k| &k.kind)
            .chain(dependencies().iter())
            .filter_map(|k| facts.kind_errors.get(k))
            .collect()
    };
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
        // Compiles a built-in check's expressions when its first object is met.
        let uses_related = check.dependencies().is_some_and(|d| d.uses_related);
        let verdict = if facts.straightforward {
            let mut ctx = root.new_inner_scope();
            ctx.add_variable_from_value("object", facts.cel_object(i));
            ctx.add_variable_from_value("oldObject", Value::Null);
            ctx.add_variable_from_value("mlsdm", facts.cel_mlsdm(i));
            ctx.add_variable_from_value("params", json_to_cel(&facts.params));
            if uses_related {
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
                related: uses_related.then(|| cached.related()),
            };
            let mut ctx = root.new_inner_scope();
            ctx.set_variable_resolver(&variables);
            evaluate_object(check, probe, &ctx)
        };
        let mut verdict = verdict;
        verdict.message = facts.redact(std::mem::take(&mut verdict.message));
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
    // The list is borrowed from the object where it can be (`object.spec...containers`), and
    // each element is bound to `item` by reference: converting it to a `Value` and back into
    // each `item` copied every element twice, for every check with a `forEach`.
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
    for item in &items {
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
        (variable == "item").then_some(CowVal::Borrowed(self.0))
    }
}
