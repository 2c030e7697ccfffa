//! Kubernetes label selectors: `LabelSelector` objects (as in PDBs, NetworkPolicies, Deployments)
//! and the string form users type (`-l app=mlsdm-api,tier in (api)`), with the API server's
//! matching rules.
//!
//! Kept here rather than taken from kube's `Selector`: kube's converts a typed `LabelSelector`
//! and matches a label map, but it has no parser for the string form, and the objects audited
//! here are untyped JSON (manifests that may not deserialize into k8s-openapi's types, where a
//! malformed selector must become a result naming it, not a failed decode of the whole object).
//! The rules follow apimachinery's `labels.Parse` and `LabelSelectorAsSelector`;
//! tests/selectors.rs holds the string form to a real kube-apiserver's answers.

use serde_json::{Map, Value, json};

/// Whether `selector` (a LabelSelector, or a plain label map as in a Service) matches `labels`.
/// An empty selector matches everything. A selector the API server refuses
/// ([`label_selector_problem`], [`label_map_problem`]) is an error, not a match either way: the
/// object holding it is never admitted, and an `In` without values had matched nothing and an
/// `Exists` with values had matched as if they were not there.
pub fn matches(selector: &Value, labels: &Value) -> Result<bool, String> {
    let empty = Map::new();
    let labels = labels.as_object().unwrap_or(&empty);
    let Some(sel) = selector.as_object() else {
        return if selector.is_null() {
            Ok(true)
        } else {
            Err("a selector must be a map".into())
        };
    };
    let is_label_selector = sel.contains_key("matchLabels") || sel.contains_key("matchExpressions");
    let problem = if is_label_selector {
        label_selector_problem(selector)
    } else {
        label_map_problem(selector)
    };
    if let Some(problem) = problem {
        return Err(problem);
    }
    let match_labels = if is_label_selector {
        sel.get("matchLabels").and_then(Value::as_object)
    } else {
        Some(sel)
    };
    if let Some(ml) = match_labels {
        for (k, v) in ml {
            if labels.get(k) != Some(v) {
                return Ok(false);
            }
        }
    }
    // Null is no requirement (a nil list once decoded); anything else not a list was refused
    // above.
    if let Some(exprs) = sel
        .get("matchExpressions")
        .filter(|_| is_label_selector)
        .and_then(Value::as_array)
    {
        for e in exprs {
            let key = e
                .get("key")
                .and_then(Value::as_str)
                .ok_or("matchExpressions entry without key")?;
            let op = e
                .get("operator")
                .and_then(Value::as_str)
                .ok_or("matchExpressions entry without operator")?;
            let values: Vec<&str> = e
                .get("values")
                .and_then(Value::as_array)
                .map(|a| a.iter().filter_map(Value::as_str).collect())
                .unwrap_or_default();
            let actual = labels.get(key).and_then(Value::as_str);
            let ok = match op {
                "In" => actual.is_some_and(|a| values.contains(&a)),
                "NotIn" => actual.is_none_or(|a| !values.contains(&a)),
                "Exists" => actual.is_some(),
                "DoesNotExist" => actual.is_none(),
                other => return Err(format!("unknown selector operator {other:?}")),
            };
            if !ok {
                return Ok(false);
            }
        }
    }
    Ok(true)
}

/// What the API server refuses in a `LabelSelector` (apimachinery's `ValidateLabelSelector`,
/// with the strict field validation `kubectl apply` asks for by default): `None` when it would
/// admit it. Null is admitted (an absent pointer).
pub fn label_selector_problem(sel: &Value) -> Option<String> {
    let map = match sel {
        Value::Null => return None,
        Value::Object(m) => m,
        _ => return Some("a label selector must be a map".into()),
    };
    if let Some(unknown) = map
        .keys()
        .find(|k| !matches!(k.as_str(), "matchLabels" | "matchExpressions"))
    {
        return Some(format!(
            "unknown field {unknown:?} in a label selector (only matchLabels and matchExpressions; labels go under matchLabels)"
        ));
    }
    if let Some(problem) = map.get("matchLabels").and_then(label_map_problem) {
        return Some(format!("matchLabels: {problem}"));
    }
    let exprs = match map.get("matchExpressions") {
        None | Some(Value::Null) => return None,
        Some(Value::Array(a)) => a,
        Some(_) => return Some("matchExpressions must be a list".into()),
    };
    exprs
        .iter()
        .enumerate()
        .find_map(|(i, e)| requirement_problem(e).map(|p| format!("matchExpressions[{i}]: {p}")))
}

/// One `matchExpressions` entry: its key, an operator of the four, and values as the operator
/// asks (`In` and `NotIn` at least one, `Exists` and `DoesNotExist` none), each a label value.
fn requirement_problem(e: &Value) -> Option<String> {
    let Some(e) = e.as_object() else {
        return Some("an entry must be a map".into());
    };
    if let Some(unknown) = e
        .keys()
        .find(|k| !matches!(k.as_str(), "key" | "operator" | "values"))
    {
        return Some(format!("unknown field {unknown:?}"));
    }
    let Some(key) = e.get("key").and_then(Value::as_str) else {
        return Some("no key".into());
    };
    if let Err(problem) = check_key(key) {
        return Some(problem);
    }
    let values: Vec<&str> = match e.get("values") {
        None | Some(Value::Null) => Vec::new(),
        Some(Value::Array(a)) => match a.iter().map(Value::as_str).collect::<Option<Vec<_>>>() {
            Some(v) => v,
            None => return Some(format!("values of {key:?} must be strings")),
        },
        Some(_) => return Some(format!("values of {key:?} must be a list")),
    };
    match e.get("operator").and_then(Value::as_str) {
        Some("In" | "NotIn") if values.is_empty() => Some(format!(
            "operator In or NotIn on {key:?} needs at least one value"
        )),
        Some("Exists" | "DoesNotExist") if !values.is_empty() => Some(format!(
            "operator Exists or DoesNotExist on {key:?} takes no values"
        )),
        Some("In" | "NotIn" | "Exists" | "DoesNotExist") => {
            values.iter().find_map(|v| check_value(key, v).err())
        }
        Some(other) => Some(format!(
            "{other:?} is not a selector operator (In, NotIn, Exists, DoesNotExist)"
        )),
        None => Some(format!("no operator for {key:?}")),
    }
}

/// What the API server refuses in a map of labels used as a selector (a Service's
/// `spec.selector`, a LabelSelector's `matchLabels`): keys and values that are not labels'.
pub fn label_map_problem(labels: &Value) -> Option<String> {
    let map = match labels {
        Value::Null => return None,
        Value::Object(m) => m,
        _ => return Some("labels must be a map of strings".into()),
    };
    map.iter().find_map(|(k, v)| match v.as_str() {
        None => Some(format!(
            "the value of {k:?} must be a string (quote it: {v})"
        )),
        Some(v) => check_key(k).and_then(|()| check_value(k, v)).err(),
    })
}

/// Whether a LabelSelector asks nothing: null, `{}`, or empty (or null) `matchLabels` and
/// `matchExpressions`. What that selects depends on the kind ([`empty_selects_all`]).
pub fn is_empty(sel: &Value) -> bool {
    let vacant = |v: Option<&Value>| match v {
        None | Some(Value::Null) => true,
        Some(Value::Object(m)) => m.is_empty(),
        Some(Value::Array(a)) => a.is_empty(),
        Some(_) => false,
    };
    match sel {
        Value::Null => true,
        Value::Object(m) => {
            m.keys()
                .all(|k| matches!(k.as_str(), "matchLabels" | "matchExpressions"))
                && vacant(m.get("matchLabels"))
                && vacant(m.get("matchExpressions"))
        }
        _ => false,
    }
}

/// The label the API server sets on every namespace (Kubernetes 1.21+): its name.
pub const NAMESPACE_NAME_LABEL: &str = "kubernetes.io/metadata.name";

/// Whether a LabelSelector, as far as an audit of objects can know, selects every namespace
/// (`namespace`) or every pod: whether it matches a new one that carries no label but those every
/// one has (a namespace only its `kubernetes.io/metadata.name`, under a name no selector lists; a
/// pod none). Review finding: a NetworkPolicy peer `namespaceSelector: {matchExpressions: [{key:
/// kubernetes.io/metadata.name, operator: NotIn, values: [none]}]}` admitted every pod of every
/// namespace and network-policy-default-deny passed, since only `{}` (and `Exists` on the name
/// label) counted as every namespace. The audit does not know which labels the cluster's
/// namespaces and pods carry, and anyone who can create one makes it without them: a selector
/// of only `NotIn` and `DoesNotExist` requirements matches that one and every other lacking
/// the labels or values it names, so it restricts nothing the audit can rely on. One positive
/// requirement (`matchLabels`, `In`, `Exists` on a label not every one has) makes it an
/// allow-list: no union of those reaches a bare namespace or pod, so this is also what peers
/// add up to. `DoesNotExist` on the name label matches no namespace. A selector the API server
/// refuses selects nothing (its policy is never admitted; network-policy-selects-pods says so).
pub fn selects_every(sel: &Value, namespace: bool) -> bool {
    if label_selector_problem(sel).is_some() {
        return false;
    }
    // Null is an absent selector, which asks nothing.
    let Some(m) = sel.as_object() else {
        return true;
    };
    if m.get("matchLabels")
        .and_then(Value::as_object)
        .is_some_and(|l| !l.is_empty())
    {
        return false;
    }
    m.get("matchExpressions")
        .and_then(Value::as_array)
        .is_none_or(|exprs| {
            exprs.iter().all(|e| {
                let on_name =
                    namespace && e.get("key").and_then(Value::as_str) == Some(NAMESPACE_NAME_LABEL);
                match e.get("operator").and_then(Value::as_str) {
                    // A new namespace's name is in no list; a bare pod has no label to be in one.
                    Some("NotIn") => true,
                    Some("DoesNotExist") => !on_name,
                    Some("Exists") => on_name,
                    _ => false,
                }
            })
        })
}

/// A token of the string form, as apimachinery's `labels.Parse` lexes it: identifiers run until
/// whitespace or one of `!=(),<>`.
#[derive(Debug, Clone, PartialEq, Eq)]
enum Token<'a> {
    Ident(&'a str),
    Not,
    Eq,
    DoubleEq,
    NotEq,
    Open,
    Close,
    Comma,
    Compare(char),
}

fn describe(t: Option<&Token<'_>>) -> String {
    match t {
        None => "end of string".into(),
        Some(Token::Ident(s)) => format!("'{s}'"),
        Some(Token::Not) => "'!'".into(),
        Some(Token::Eq) => "'='".into(),
        Some(Token::DoubleEq) => "'=='".into(),
        Some(Token::NotEq) => "'!='".into(),
        Some(Token::Open) => "'('".into(),
        Some(Token::Close) => "')'".into(),
        Some(Token::Comma) => "','".into(),
        Some(Token::Compare(c)) => format!("'{c}'"),
    }
}

fn lex(input: &str) -> Vec<Token<'_>> {
    let mut out = Vec::new();
    let mut rest = input;
    while let Some(c) = rest.chars().next() {
        if c.is_whitespace() {
            rest = &rest[c.len_utf8()..];
            continue;
        }
        let (token, len) = match c {
            '!' if rest.starts_with("!=") => (Token::NotEq, 2),
            '!' => (Token::Not, 1),
            '=' if rest.starts_with("==") => (Token::DoubleEq, 2),
            '=' => (Token::Eq, 1),
            '(' => (Token::Open, 1),
            ')' => (Token::Close, 1),
            ',' => (Token::Comma, 1),
            '<' | '>' => (Token::Compare(c), 1),
            _ => {
                let end = rest
                    .find(|c: char| c.is_whitespace() || "!=(),<>".contains(c))
                    .unwrap_or(rest.len());
                (Token::Ident(&rest[..end]), end)
            }
        };
        out.push(token);
        rest = &rest[len..];
    }
    out
}

/// `[A-Za-z0-9]([-A-Za-z0-9_.]*[A-Za-z0-9])?`, at most 63 characters: a label value (when not
/// empty) and the name part of a key.
fn is_label_name(s: &str) -> bool {
    let b = s.as_bytes();
    !b.is_empty()
        && b.len() <= 63
        && b[0].is_ascii_alphanumeric()
        && b[b.len() - 1].is_ascii_alphanumeric()
        && b.iter()
            .all(|c| c.is_ascii_alphanumeric() || matches!(c, b'-' | b'_' | b'.'))
}

/// A DNS-1123 subdomain: the optional prefix of a key (`example.com/`).
fn is_dns_subdomain(s: &str) -> bool {
    s.len() <= 253
        && s.split('.').all(|part| {
            let b = part.as_bytes();
            !b.is_empty()
                && b[0].is_ascii_alphanumeric()
                && b[b.len() - 1].is_ascii_alphanumeric()
                && b.iter()
                    .all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || *c == b'-')
        })
}

fn check_key(key: &str) -> Result<(), String> {
    let ok = match key.split_once('/') {
        Some((prefix, name)) => is_dns_subdomain(prefix) && is_label_name(name),
        None => is_label_name(key),
    };
    if ok {
        Ok(())
    } else {
        Err(format!(
            "invalid label key {key:?}: a name of at most 63 alphanumeric characters, '-', '_' or '.', starting and ending with an alphanumeric one, with an optional DNS subdomain prefix and '/' (example.com/name)"
        ))
    }
}

fn check_value(key: &str, value: &str) -> Result<(), String> {
    if value.is_empty() || is_label_name(value) {
        Ok(())
    } else {
        Err(format!(
            "invalid label value {value:?} for key {key:?}: empty, or at most 63 alphanumeric characters, '-', '_' or '.', starting and ending with an alphanumeric one"
        ))
    }
}

/// Parses the string form users type (`app=mlsdm-api,tier in (api, web),!canary`) into a
/// LabelSelector, with the grammar and validation of apimachinery's `labels.Parse` (which the
/// API server applies to `?labelSelector=`): a selector the server would refuse is refused here,
/// and tests/selectors.rs holds both to the same answers. The numeric `<`/`>` requirements have
/// no LabelSelector form and are refused.
pub fn parse(input: &str) -> Result<Value, String> {
    let tokens = lex(input);
    let mut match_labels = Map::new();
    let mut exprs = Vec::new();
    let mut pos = 0;
    let fail = |what: &str, found: Option<&Token<'_>>| {
        Err(format!(
            "in selector {input:?}: found {}, expected {what}",
            describe(found)
        ))
    };
    while pos < tokens.len() {
        let negated = tokens[pos] == Token::Not;
        if negated {
            pos += 1;
        }
        let Some(Token::Ident(key)) = tokens.get(pos) else {
            return fail("a label key", tokens.get(pos));
        };
        check_key(key)?;
        pos += 1;
        let end_of_requirement = |t: Option<&Token<'_>>| t.is_none() || t == Some(&Token::Comma);
        if negated || end_of_requirement(tokens.get(pos)) {
            if !end_of_requirement(tokens.get(pos)) {
                return fail("',' or end of string", tokens.get(pos));
            }
            let operator = if negated { "DoesNotExist" } else { "Exists" };
            exprs.push(json!({"key": key, "operator": operator}));
        } else {
            let op = tokens[pos].clone();
            pos += 1;
            match op {
                Token::Eq | Token::DoubleEq | Token::NotEq => {
                    // An empty value is a value: `app=` selects `app: ""`.
                    let value = match tokens.get(pos) {
                        Some(Token::Ident(v)) => {
                            pos += 1;
                            *v
                        }
                        t if end_of_requirement(t) => "",
                        t => return fail("a label value", t),
                    };
                    check_value(key, value)?;
                    if op == Token::NotEq {
                        exprs.push(json!({"key": key, "operator": "NotIn", "values": [value]}));
                    } else if match_labels
                        .get(*key)
                        .is_some_and(|v| v.as_str() != Some(value))
                    {
                        // Two equalities on one key select nothing, as the server's AND does.
                        exprs.push(json!({"key": key, "operator": "In", "values": [value]}));
                    } else {
                        match_labels.insert((*key).to_string(), Value::String(value.to_string()));
                    }
                }
                Token::Ident(word @ ("in" | "notin")) => {
                    if tokens.get(pos) != Some(&Token::Open) {
                        return fail("'('", tokens.get(pos));
                    }
                    pos += 1;
                    let mut values = Vec::new();
                    // `()` is the set holding the empty value, as in apimachinery.
                    loop {
                        let value = match tokens.get(pos) {
                            Some(Token::Ident(v)) => {
                                pos += 1;
                                *v
                            }
                            Some(Token::Comma | Token::Close) => "",
                            t => return fail("a label value", t),
                        };
                        check_value(key, value)?;
                        values.push(Value::String(value.to_string()));
                        match tokens.get(pos) {
                            Some(Token::Comma) => pos += 1,
                            Some(Token::Close) => {
                                pos += 1;
                                break;
                            }
                            t => return fail("',' or ')'", t),
                        }
                    }
                    let operator = if word == "in" { "In" } else { "NotIn" };
                    exprs.push(json!({"key": key, "operator": operator, "values": values}));
                }
                Token::Compare(c) => {
                    return Err(format!(
                        "in selector {input:?}: the numeric '{c}' requirement has no LabelSelector form and is not supported"
                    ));
                }
                other => return fail("'=', '==', '!=', 'in' or 'notin'", Some(&other)),
            }
        }
        match tokens.get(pos) {
            None => {}
            Some(Token::Comma) => {
                pos += 1;
                if pos == tokens.len() {
                    return fail("a requirement after ','", None);
                }
            }
            t => return fail("',' or end of string", t),
        }
    }
    Ok(json!({"matchLabels": match_labels, "matchExpressions": exprs}))
}

/// Whether a selector that is not a non-empty map (`{}`, null, or something else) selects every
/// pod of its namespace. A NetworkPolicy's `podSelector` is a struct: `{}` and null both decode
/// to the empty selector, which selects all. A PodDisruptionBudget's `selector` is a pointer:
/// `{}` selects all in policy/v1 and nothing in policy/v1beta1 (the meaning changed with v1),
/// and null selects nothing in both. A Service's selects nothing (no endpoints are managed).
///
/// Empty means [`is_empty`]: `{matchLabels: {}}` is the same empty selector as `{}` once decoded.
pub fn empty_selects_all(o: &super::Object, sel: &serde_json::Value) -> bool {
    match o.kind.as_str() {
        "NetworkPolicy" => is_empty(sel),
        "PodDisruptionBudget" => !sel.is_null() && is_empty(sel) && o.api_version == "policy/v1",
        _ => false,
    }
}

/// What a selecting object's selector picks: the one reading every relation shares.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Selection<'a> {
    /// No selector, an empty one of a kind where that means none, or one the API server refuses
    /// (the object is never admitted: a check on it says so, `*-selects-workload`).
    Nothing,
    /// An empty selector of a kind where that means every pod of the namespace.
    Everything,
    /// The pods this selector matches ([`matches`]).
    Matching(&'a Value),
}

/// How `o` (a Service, PodDisruptionBudget or NetworkPolicy) selects with `sel`, its selector.
pub fn selection<'a>(o: &super::Object, sel: Option<&'a Value>) -> Selection<'a> {
    let Some(sel) = sel else {
        // A NetworkPolicy's podSelector is a struct: left out, it is the empty selector.
        return if o.kind == "NetworkPolicy" {
            Selection::Everything
        } else {
            Selection::Nothing
        };
    };
    if o.kind != "Service" && is_empty(sel) {
        return if empty_selects_all(o, sel) {
            Selection::Everything
        } else {
            Selection::Nothing
        };
    }
    let problem = if o.kind == "Service" {
        label_map_problem(sel)
    } else {
        label_selector_problem(sel)
    };
    match (sel, problem) {
        (Value::Object(m), None) if !m.is_empty() => Selection::Matching(sel),
        _ => Selection::Nothing,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn label_selector_semantics() {
        let labels = json!({"app": "mlsdm-api", "tier": "api"});
        assert!(matches(&json!({"matchLabels": {"app": "mlsdm-api"}}), &labels).unwrap());
        assert!(!matches(&json!({"matchLabels": {"app": "neuro-engine"}}), &labels).unwrap());
        assert!(matches(&json!({}), &labels).unwrap());
        assert!(matches(&json!({"app": "mlsdm-api"}), &labels).unwrap());
        assert!(matches(&json!({"matchExpressions": [{"key": "tier", "operator": "In", "values": ["api", "web"]}]}), &labels).unwrap());
        assert!(
            !matches(
                &json!({"matchExpressions": [{"key": "x", "operator": "Exists"}]}),
                &labels
            )
            .unwrap()
        );
        assert!(
            matches(
                &json!({"matchExpressions": [{"key": "x", "operator": "DoesNotExist"}]}),
                &labels
            )
            .unwrap()
        );
        assert!(
            matches(
                &json!({"matchExpressions": [{"key": "tier", "operator": "Bogus"}]}),
                &labels
            )
            .is_err()
        );
    }

    /// Review finding: selectors of only negative requirements select every namespace or pod
    /// the audit can know of; one positive requirement makes an allow-list.
    #[test]
    fn a_selector_of_only_negative_requirements_selects_every_namespace_or_pod() {
        let expr = |key: &str, op: &str, values: &[&str]| {
            if values.is_empty() {
                json!({"matchExpressions": [{"key": key, "operator": op}]})
            } else {
                json!({"matchExpressions": [{"key": key, "operator": op, "values": values}]})
            }
        };
        let name = NAMESPACE_NAME_LABEL;
        for (sel, namespaces, pods) in [
            (json!(null), true, true),
            (json!({}), true, true),
            (
                json!({"matchLabels": {}, "matchExpressions": []}),
                true,
                true,
            ),
            (expr(name, "NotIn", &["none"]), true, true),
            (expr(name, "NotIn", &["kube-system", "default"]), true, true),
            (
                expr("no-namespace-has-this", "DoesNotExist", &[]),
                true,
                true,
            ),
            (expr("app", "NotIn", &["nothing"]), true, true),
            (expr(name, "Exists", &[]), true, false),
            (expr(name, "DoesNotExist", &[]), false, true),
            (expr(name, "In", &["monitoring"]), false, false),
            (expr("team", "Exists", &[]), false, false),
            (
                json!({"matchLabels": {"kubernetes.io/metadata.name": "monitoring"}}),
                false,
                false,
            ),
            (
                json!({"matchExpressions": [
                    {"key": "app", "operator": "NotIn", "values": ["x"]},
                    {"key": "app", "operator": "In", "values": ["prometheus"]}
                ]}),
                false,
                false,
            ),
            // Refused by the API server (NotIn without values): never admitted, selects nothing.
            (
                json!({"matchExpressions": [{"key": "app", "operator": "NotIn"}]}),
                false,
                false,
            ),
            (json!("everything"), false, false),
        ] {
            assert_eq!(selects_every(&sel, true), namespaces, "namespaces: {sel}");
            assert_eq!(selects_every(&sel, false), pods, "pods: {sel}");
        }
    }

    #[test]
    fn parses_the_string_form() {
        let s = parse("app=mlsdm-api,tier in (api, web),!canary,env!=dev").unwrap();
        let labels = json!({"app": "mlsdm-api", "tier": "web", "env": "prod"});
        assert!(matches(&s, &labels).unwrap());
        assert!(
            !matches(
                &s,
                &json!({"app": "mlsdm-api", "tier": "web", "canary": "1"})
            )
            .unwrap()
        );
        assert!(parse("app=,").is_err());
        assert!(parse("a b").is_err());
    }
}
