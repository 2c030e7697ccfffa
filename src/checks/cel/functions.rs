//! The host functions: Kubernetes' quantity library, `selectorMatches`, the credential
//! heuristics, a bounded `matches`, and the conversions between CEL values and JSON.

use super::cost::charging;
use super::rewrite::{CHARGE_ITER, CHARGE_RESULT, HOST_FUNCTIONS};
use crate::k8s::quantity::Quantity;
use cel::common::types::{CelBool, CelString};
use cel::common::value::{CowVal, Val};
use cel::extractors::This;
use cel::objects::{Key, Value};
use cel::{Context, ExecutionError, FunctionContext};
use std::sync::Arc;

/// The names of [`HOST_FUNCTIONS`].
pub fn host_function_names() -> impl Iterator<Item = &'static str> {
    HOST_FUNCTIONS.iter().map(|(name, _)| *name)
}

/// The most memory one `matches` pattern may compile to (and its lazy DFA may use): a pattern
/// like `(a|b){20000}X` is refused instead of costing seconds on every object.
pub const REGEX_SIZE_LIMIT: usize = 1 << 20;

/// `matches` as cel defines it (RE2 syntax, unanchored), with the compiled size bounded and
/// compiled patterns cached: checks call it with the same few patterns on every object.
pub(super) fn matches(
    ftx: &FunctionContext,
    This(this): This<Arc<String>>,
    pattern: Arc<String>,
) -> Result<bool, ExecutionError> {
    bounded_regex(&pattern)
        .map(|re| re.is_match(&this))
        .map_err(|e| ftx.error(e))
}

/// A check's regular expression, compiled within [`REGEX_SIZE_LIMIT`] and cached: checks use
/// the same few patterns on every object (`matches`, `find`, `findAll`).
pub fn bounded_regex(pattern: &str) -> Result<regex::Regex, String> {
    use std::collections::HashMap;
    use std::sync::Mutex;
    type Compiled = Result<regex::Regex, String>;
    static CACHE: Mutex<Option<HashMap<String, Compiled>>> = Mutex::new(None);
    let mut cache = CACHE
        .lock()
        .unwrap_or_else(std::sync::PoisonError::into_inner);
    let cache = cache.get_or_insert_with(HashMap::new);
    if cache.len() > 1024 {
        cache.clear();
    }
    cache
        .entry(pattern.to_string())
        .or_insert_with(|| {
            regex::RegexBuilder::new(pattern)
                .size_limit(REGEX_SIZE_LIMIT)
                .dfa_size_limit(REGEX_SIZE_LIMIT)
                .build()
                .map_err(|e| match e {
                    regex::Error::CompiledTooBig(_) => format!(
                        "the regular expression is too large: it compiles to more than {} KiB (the limit for a check's pattern)",
                        REGEX_SIZE_LIMIT / 1024
                    ),
                    other => format!("not a valid regular expression: {other}"),
                })
        })
        .clone()
}

pub(super) fn register(ctx: &mut Context<'static, 'static>) {
    // Registration only fails on a duplicate name, which is a programming error caught by tests.
    const MSG: &str = "CEL function registered twice";
    ctx.add_function("quantity", quantity).expect(MSG);
    ctx.add_function("isQuantity", is_quantity).expect(MSG);
    ctx.add_function("compareTo", compare_to).expect(MSG);
    ctx.add_function("isGreaterThan", is_greater_than)
        .expect(MSG);
    ctx.add_function("isLessThan", is_less_than).expect(MSG);
    ctx.add_function("asInteger", as_integer).expect(MSG);
    ctx.add_function("isInteger", is_integer).expect(MSG);
    ctx.add_function("asApproximateFloat", as_approximate_float)
        .expect(MSG);
    ctx.add_function("sign", sign).expect(MSG);
    ctx.add_function("add", add_quantity).expect(MSG);
    ctx.add_function("sub", sub_quantity).expect(MSG);
    ctx.add_function("selectorMatches", selector_matches)
        .expect(MSG);
    // What the API server refuses in a LabelSelector, or in a map of labels used as one (a
    // Service's selector): '' when it would admit it.
    ctx.add_function(
        "labelSelectorProblem",
        on_json(|sel| text(crate::k8s::selector::label_selector_problem(sel).unwrap_or_default())),
    )
    .expect(MSG);
    ctx.add_function(
        "labelsProblem",
        on_json(|labels| text(crate::k8s::selector::label_map_problem(labels).unwrap_or_default())),
    )
    .expect(MSG);
    // What the API server refuses in an HPA, or in a pod spec ('' when it admits it): see
    // `k8s::admission`.
    ctx.add_function(
        "hpaProblem",
        on_json(|hpa| text(crate::k8s::admission::hpa_problem(hpa).unwrap_or_default())),
    )
    .expect(MSG);
    ctx.add_function(
        "podSpecProblem",
        on_json(|spec| text(crate::k8s::admission::pod_spec_problem(spec).unwrap_or_default())),
    )
    .expect(MSG);
    // Which controller an Ingress's class names ('nginx', 'traefik', 'gce'; '' for none or one
    // not known), and the class itself ('' for none): an annotation counts only on an Ingress
    // its controller serves (see `k8s::ingress`).
    ctx.add_function(
        "ingressController",
        on_json(|ingress| {
            text(
                crate::k8s::ingress::controller(ingress)
                    .map_or("", crate::k8s::ingress::Controller::as_str)
                    .to_string(),
            )
        }),
    )
    .expect(MSG);
    ctx.add_function(
        "ingressClass",
        on_json(|ingress| {
            text(
                crate::k8s::ingress::class(ingress)
                    .unwrap_or_default()
                    .to_string(),
            )
        }),
    )
    .expect(MSG);
    // Whether a LabelSelector asks nothing (null, `{}`, `{matchLabels: {}}`, ...).
    ctx.add_function(
        "isEmptySelector",
        on_json(|sel| CelBool::from(crate::k8s::selector::is_empty(sel))),
    )
    .expect(MSG);
    // Whether a NetworkPolicy peer's namespaceSelector or podSelector selects every namespace or
    // pod as far as the audit can know: only negative requirements (review finding: `NotIn`,
    // `DoesNotExist` passed as an allow-list). See `k8s::selector::selects_every`.
    ctx.add_function(
        "selectsEveryNamespace",
        on_json(|sel| CelBool::from(crate::k8s::selector::selects_every(sel, true))),
    )
    .expect(MSG);
    ctx.add_function(
        "selectsEveryPod",
        on_json(|sel| CelBool::from(crate::k8s::selector::selects_every(sel, false))),
    )
    .expect(MSG);
    ctx.add_function("shannonEntropy", |s: Arc<String>| {
        crate::k8s::secrets::entropy(&s)
    })
    .expect(MSG);
    // Whether a container is MLSDM itself (its image, or a variable only MLSDM reads): for
    // pods outside the workloads, where a client passing API_KEY is not MLSDM.
    ctx.add_function(
        "runsMlsdm",
        on_json(|c| CelBool::from(crate::facts::mlsdm::is_mlsdm_itself(c))),
    )
    .expect(MSG);
    ctx.add_function("isCredentialName", |s: Arc<String>| {
        crate::k8s::secrets::names_a_credential(&s)
    })
    .expect(MSG);
    ctx.add_function("looksLikeCredential", |s: Arc<String>| {
        crate::k8s::secrets::looks_like_credential(&s)
    })
    .expect(MSG);
    // A container's `command` + `args` (a list of strings): whether they pass a credential.
    ctx.add_function("commandLineHasCredential", |words: Arc<Vec<Value>>| {
        !crate::k8s::command_line::credentials(&strings(&words)).is_empty()
    })
    .expect(MSG);
    // A NetworkPolicy peer list's ipBlock CIDRs: whether together they are every IPv4 or every
    // IPv6 address (0.0.0.0/1 and 128.0.0.0/1 are 0.0.0.0/0 in two halves). Lists of lists are
    // read flat: rules and policies add up, so a check gathers every rule's CIDRs in one call.
    ctx.add_function("cidrsCoverEveryAddress", |cidrs: Arc<Vec<Value>>| {
        // Three levels are policies, rules and peers; deeper is not a list of CIDRs.
        fn flat<'a>(list: &'a [Value], depth: u8, out: &mut Vec<&'a str>) {
            for v in list {
                match v {
                    Value::String(s) => out.push(s.as_str()),
                    Value::List(l) if depth < 4 => flat(l, depth + 1, out),
                    _ => {}
                }
            }
        }
        let mut all = Vec::new();
        flat(&cidrs, 0, &mut all);
        cover_every_address(&all)
    })
    .expect(MSG);
    // A ConfigMap's binaryData as the text the pod reads ('' when it is not base64 of UTF-8).
    ctx.add_function("base64Text", |s: Arc<String>| {
        crate::k8s::secrets::decode_base64_text(&s).unwrap_or_default()
    })
    .expect(MSG);
    ctx.add_function("matches", matches).expect(MSG);
    ctx.add_function("undecided", undecided).expect(MSG);
    {
        use super::super::k8s_lib as k;
        ctx.add_function("isSorted", k::is_sorted).expect(MSG);
        ctx.add_function("sum", k::sum).expect(MSG);
        ctx.add_function("find", k::find).expect(MSG);
        ctx.add_function("findAll", k::find_all).expect(MSG);
        ctx.add_function("url", k::url).expect(MSG);
        ctx.add_function("isURL", k::is_url).expect(MSG);
        ctx.add_function("getScheme", k::get_scheme).expect(MSG);
        ctx.add_function("getHost", k::get_host).expect(MSG);
        ctx.add_function("getHostname", k::get_hostname).expect(MSG);
        ctx.add_function("getPort", k::get_port).expect(MSG);
        ctx.add_function("getEscapedPath", k::get_escaped_path)
            .expect(MSG);
        ctx.add_function("getQuery", k::get_query).expect(MSG);
        ctx.add_function("ip", k::ip).expect(MSG);
        ctx.add_function("isIP", k::is_ip).expect(MSG);
        ctx.add_function("family", k::family).expect(MSG);
        ctx.add_function("isUnspecified", k::is_unspecified)
            .expect(MSG);
        ctx.add_function("isLoopback", k::is_loopback).expect(MSG);
        ctx.add_function("isLinkLocalMulticast", k::is_link_local_multicast)
            .expect(MSG);
        ctx.add_function("isLinkLocalUnicast", k::is_link_local_unicast)
            .expect(MSG);
        ctx.add_function("isGlobalUnicast", k::is_global_unicast)
            .expect(MSG);
        ctx.add_function("cidr", k::cidr).expect(MSG);
        ctx.add_function("isCIDR", k::is_cidr).expect(MSG);
        ctx.add_function("containsIP", k::contains_ip).expect(MSG);
        ctx.add_function("containsCIDR", k::contains_cidr)
            .expect(MSG);
        ctx.add_function("masked", k::masked).expect(MSG);
        ctx.add_function("prefixLength", k::prefix_length)
            .expect(MSG);
    }
    // The cost meter (see `Program`): a comprehension pays per element, a call per byte built.
    ctx.add_function(CHARGE_ITER, charging(0)).expect(MSG);
    ctx.add_function(CHARGE_RESULT, charging(1)).expect(MSG);
}

/// `undecided(why)`: the check cannot be decided; the result is `error` with `why`.
#[allow(clippy::needless_pass_by_value)]
pub(super) fn undecided(ftx: &FunctionContext, why: Arc<String>) -> Result<Value, ExecutionError> {
    Err(ftx.error(why.to_string()))
}

pub(super) fn quantity(ftx: &FunctionContext, s: Arc<String>) -> Result<Value, ExecutionError> {
    Quantity::parse(&s)
        .map(|q| Value::Opaque(Arc::new(q)))
        .map_err(|e| ftx.error(e))
}

#[allow(clippy::needless_pass_by_value)]
pub(super) fn is_quantity(s: Arc<String>) -> bool {
    Quantity::parse(&s).is_ok()
}

pub(super) fn as_quantity(ftx: &FunctionContext, v: &Value) -> Result<Quantity, ExecutionError> {
    match v {
        Value::Opaque(o) => o
            .downcast_ref::<Quantity>()
            .cloned()
            .ok_or_else(|| ftx.error("expected a quantity")),
        Value::Int(i) => Ok(Quantity::from_integer(*i)),
        other => Err(ftx.error(format!("expected a quantity, got {}", other.type_of()))),
    }
}

pub(super) fn this_quantity(
    ftx: &FunctionContext,
    this: &Value,
) -> Result<Quantity, ExecutionError> {
    as_quantity(ftx, this)
}

pub(super) fn compare_to(
    ftx: &FunctionContext,
    This(this): This<Value>,
    other: Value,
) -> Result<i64, ExecutionError> {
    let a = this_quantity(ftx, &this)?;
    let b = as_quantity(ftx, &other)?;
    Ok(a.cmp(&b) as i64)
}

pub(super) fn is_greater_than(
    ftx: &FunctionContext,
    This(this): This<Value>,
    other: Value,
) -> Result<bool, ExecutionError> {
    Ok(this_quantity(ftx, &this)? > as_quantity(ftx, &other)?)
}

pub(super) fn is_less_than(
    ftx: &FunctionContext,
    This(this): This<Value>,
    other: Value,
) -> Result<bool, ExecutionError> {
    Ok(this_quantity(ftx, &this)? < as_quantity(ftx, &other)?)
}

pub(super) fn as_integer(
    ftx: &FunctionContext,
    This(this): This<Value>,
) -> Result<i64, ExecutionError> {
    let q = this_quantity(ftx, &this)?;
    q.as_integer()
        .ok_or_else(|| ftx.error(format!("cannot convert value {q} to integer")))
}

pub(super) fn is_integer(
    ftx: &FunctionContext,
    This(this): This<Value>,
) -> Result<bool, ExecutionError> {
    Ok(this_quantity(ftx, &this)?.is_integer())
}

pub(super) fn as_approximate_float(
    ftx: &FunctionContext,
    This(this): This<Value>,
) -> Result<f64, ExecutionError> {
    Ok(this_quantity(ftx, &this)?.as_approximate_float())
}

pub(super) fn sign(ftx: &FunctionContext, This(this): This<Value>) -> Result<i64, ExecutionError> {
    Ok(this_quantity(ftx, &this)?.sign())
}

pub(super) fn add_quantity(
    ftx: &FunctionContext,
    This(this): This<Value>,
    other: Value,
) -> Result<Value, ExecutionError> {
    let sum = this_quantity(ftx, &this)?.add(&as_quantity(ftx, &other)?);
    Ok(Value::Opaque(Arc::new(sum)))
}

pub(super) fn sub_quantity(
    ftx: &FunctionContext,
    This(this): This<Value>,
    other: Value,
) -> Result<Value, ExecutionError> {
    let diff = this_quantity(ftx, &this)?.sub(&as_quantity(ftx, &other)?);
    Ok(Value::Opaque(Arc::new(diff)))
}

/// `selectorMatches(selector, labels)`: Kubernetes label-selector semantics. `selector` is a
/// `LabelSelector` (`matchLabels` and `matchExpressions`) or a plain map (a Service selector).
/// An empty selector matches everything, as for NetworkPolicy `podSelector: {}`; a null one
/// matches nothing, as `LabelSelectorAsSelector(nil)` (an anti-affinity term with
/// `labelSelector: null` keeps no pod away, and passed as if it selected them all).
pub(super) fn selector_matches(
    ftx: &FunctionContext,
    selector: Value,
    labels: Value,
) -> Result<bool, ExecutionError> {
    if matches!(selector, Value::Null) {
        return Ok(false);
    }
    let sel = cel_to_json(&selector);
    let labels = cel_to_json(&labels);
    crate::k8s::selector::matches(&sel, &labels).map_err(|e| ftx.error(e))
}

/// A host function as cel calls it (cel's own `Function`, which it does not export).
type HostFunction = Box<
    dyn for<'c, 'a> Fn(&mut FunctionContext<'c, 'a>) -> Result<CowVal<'c, 'a>, ExecutionError>
        + Send
        + Sync,
>;

/// A host function of one argument, read as JSON (see [`json_arg`]).
fn on_json<R: Val + 'static>(f: fn(&serde_json::Value) -> R) -> HostFunction {
    Box::new(move |ftx| json_arg(ftx).map(|json| CowVal::owned(f(&json))))
}

/// A string a host function returns.
fn text(s: String) -> CelString<'static> {
    CelString::from(s)
}

/// A host function's one argument as JSON, for the functions whose Rust code reads JSON (the
/// selector, admission, ingress and MLSDM helpers the facts layer shares). It is what taking
/// the argument as a cel `Value` and [`cel_to_json`] gave, converted in one pass: the `Value`
/// between them was a deep copy of each pod spec or object passed, a twentieth of a manifest
/// audit's evaluation (issue 12). Missing, it is the error cel gives a `Value` parameter.
fn json_arg(ftx: &FunctionContext) -> Result<serde_json::Value, ExecutionError> {
    let arg = ftx
        .args
        .get(ftx.arg_idx)
        .ok_or_else(|| ExecutionError::invalid_argument_count(ftx.arg_idx + 1, ftx.args.len()))?;
    val_to_json(arg.as_ref())
}

/// [`cel_to_json`] of the `Value` cel converts `v` to, without building that `Value`: null,
/// booleans, numbers, strings, lists and maps with string keys directly, anything else (and a
/// map with another key type) through the `Value`, so every value reads as it did.
pub fn val_to_json(v: &dyn cel::common::value::Val) -> Result<serde_json::Value, ExecutionError> {
    use cel::common::types::{CelBool, CelDouble, CelInt, CelMapKey, CelNull, CelUInt};
    use cel::common::value::BuiltinRef;
    match v.as_builtin() {
        BuiltinRef::String(s) => return Ok(s.inner().into()),
        BuiltinRef::List(l) => {
            return l.inner().iter().map(|e| val_to_json(e.as_ref())).collect();
        }
        BuiltinRef::Map(m) if m.inner().keys().all(|k| matches!(k, CelMapKey::String(_))) => {
            return m
                .inner()
                .iter()
                .map(|(k, v)| {
                    let CelMapKey::String(k) = k else {
                        unreachable!("every key was found to be a string")
                    };
                    Ok((k.inner().to_string(), val_to_json(v.as_ref())?))
                })
                .collect::<Result<serde_json::Map<_, _>, _>>()
                .map(serde_json::Value::Object);
        }
        _ => {}
    }
    if v.downcast_ref::<CelNull>().is_some() {
        Ok(serde_json::Value::Null)
    } else if let Some(b) = v.downcast_ref::<CelBool>() {
        Ok((*b.inner()).into())
    } else if let Some(i) = v.downcast_ref::<CelInt>() {
        Ok((*i.inner()).into())
    } else if let Some(u) = v.downcast_ref::<CelUInt>() {
        Ok((*u.inner()).into())
    } else if let Some(f) = v.downcast_ref::<CelDouble>() {
        Ok(serde_json::Number::from_f64(*f.inner()).map_or(serde_json::Value::Null, Into::into))
    } else {
        Value::try_from(v).map(|v| cel_to_json(&v))
    }
}

/// Converts a CEL value back to JSON (for helpers that share Rust code with the facts layer).
pub fn cel_to_json(v: &Value) -> serde_json::Value {
    match v {
        Value::Null => serde_json::Value::Null,
        Value::Bool(b) => (*b).into(),
        Value::Int(i) => (*i).into(),
        Value::UInt(u) => (*u).into(),
        Value::Float(f) => {
            serde_json::Number::from_f64(*f).map_or(serde_json::Value::Null, Into::into)
        }
        Value::String(s) => s.as_str().into(),
        Value::List(l) => l.iter().map(cel_to_json).collect(),
        Value::Map(m) => m
            .map
            .iter()
            .map(|(k, v)| {
                let key = match k {
                    Key::String(s) => s.to_string(),
                    other => other.to_string(),
                };
                (key, cel_to_json(v))
            })
            .collect::<serde_json::Map<_, _>>()
            .into(),
        Value::Opaque(o) => o.downcast_ref::<Quantity>().map_or_else(
            || {
                super::super::k8s_lib::display(o.as_ref())
                    .map_or(serde_json::Value::Null, Into::into)
            },
            |q| q.to_string().into(),
        ),
        other => format!("{other:?}").into(),
    }
}

/// Renders a CEL value for a message: strings bare, everything else as JSON.
pub fn display(v: &Value) -> String {
    match v {
        Value::String(s) => s.to_string(),
        other => cel_to_json(other).to_string(),
    }
}

/// Whether `cidrs` together cover every IPv4 address or every IPv6 address: the ranges of each
/// family, sorted and merged, span the whole space. A CIDR that does not parse covers nothing.
pub(super) fn cover_every_address(cidrs: &[&str]) -> bool {
    let mut v4: Vec<(u128, u128)> = Vec::new();
    let mut v6: Vec<(u128, u128)> = Vec::new();
    for c in cidrs {
        match c.parse::<ipnet::IpNet>() {
            Ok(ipnet::IpNet::V4(n)) => v4.push((
                u128::from(u32::from(n.network())),
                u128::from(u32::from(n.broadcast())),
            )),
            Ok(ipnet::IpNet::V6(n)) => {
                v6.push((u128::from(n.network()), u128::from(n.broadcast())));
            }
            Err(_) => {}
        }
    }
    let spans = |mut ranges: Vec<(u128, u128)>, last: u128| {
        ranges.sort_unstable();
        let mut next = 0u128;
        for (start, end) in ranges {
            if start > next {
                return false;
            }
            if end >= last {
                return true;
            }
            next = next.max(end + 1);
        }
        false
    };
    spans(v4, u128::from(u32::MAX)) || spans(v6, u128::MAX)
}

/// The strings of a CEL list (what else it holds is not a word or a CIDR: left out).
fn strings(list: &[Value]) -> Vec<&str> {
    list.iter()
        .filter_map(|v| match v {
            Value::String(s) => Some(s.as_str()),
            _ => None,
        })
        .collect()
}
