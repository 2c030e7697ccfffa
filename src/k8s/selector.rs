//! Kubernetes label selectors: `LabelSelector` objects (as in PDBs, NetworkPolicies, Deployments)
//! and the string form users type (`-l app=mlsdm-api,tier in (api)`), with the API server's
//! matching rules.

use serde_json::{Map, Value, json};

/// Whether `selector` (a LabelSelector, or a plain label map as in a Service) matches `labels`.
/// An empty selector matches everything.
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
    if let Some(exprs) = sel.get("matchExpressions").filter(|_| is_label_selector) {
        for e in exprs.as_array().ok_or("matchExpressions must be a list")? {
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

/// Parses the string form (`a=b,c!=d,e in (f,g),h notin (i),j,!k`) into a LabelSelector.
pub fn parse(input: &str) -> Result<Value, String> {
    let mut match_labels = Map::new();
    let mut exprs = Vec::new();
    for term in split_terms(input) {
        let term = term.trim();
        if term.is_empty() {
            return Err(format!("empty term in selector {input:?}"));
        }
        let valid_key = |k: &str| {
            !k.is_empty()
                && k.chars()
                    .all(|c| c.is_ascii_alphanumeric() || "-_./".contains(c))
        };
        if let Some(key) = term.strip_prefix('!') {
            if !valid_key(key.trim()) {
                return Err(format!("invalid key in {term:?}"));
            }
            exprs.push(json!({"key": key.trim(), "operator": "DoesNotExist"}));
        } else if let Some((k, v)) = term.split_once("!=") {
            exprs.push(json!({"key": k.trim(), "operator": "NotIn", "values": [v.trim()]}));
        } else if let Some((k, v)) = term.split_once("==").or_else(|| term.split_once('=')) {
            if !valid_key(k.trim()) {
                return Err(format!("invalid key in {term:?}"));
            }
            match_labels.insert(k.trim().to_string(), Value::String(v.trim().to_string()));
        } else if let Some((k, rest)) = split_set_op(term) {
            let (op, list) = rest;
            let list = list.trim();
            let inner = list
                .strip_prefix('(')
                .and_then(|l| l.strip_suffix(')'))
                .ok_or_else(|| format!("expected (values) in {term:?}"))?;
            let values: Vec<Value> = inner
                .split(',')
                .map(|v| Value::String(v.trim().to_string()))
                .collect();
            exprs.push(json!({"key": k, "operator": op, "values": values}));
        } else if valid_key(term) {
            exprs.push(json!({"key": term, "operator": "Exists"}));
        } else {
            return Err(format!("cannot parse selector term {term:?}"));
        }
    }
    Ok(json!({"matchLabels": match_labels, "matchExpressions": exprs}))
}

fn split_set_op(term: &str) -> Option<(String, (&'static str, &str))> {
    for (word, op) in [(" notin ", "NotIn"), (" in ", "In")] {
        if let Some(i) = term.find(word) {
            return Some((term[..i].trim().to_string(), (op, &term[i + word.len()..])));
        }
    }
    None
}

fn split_terms(input: &str) -> Vec<&str> {
    let mut out = Vec::new();
    let mut depth = 0;
    let mut start = 0;
    for (i, c) in input.char_indices() {
        match c {
            '(' => depth += 1,
            ')' => depth -= 1,
            ',' if depth == 0 => {
                out.push(&input[start..i]);
                start = i + 1;
            }
            _ => {}
        }
    }
    out.push(&input[start..]);
    out
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
