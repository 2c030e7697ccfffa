//! Python's and pydantic's value grammar (`int()`, `float()`, lax coercion, MLSDM's
//! `_parse_env_value`), and `validate_config`, which runs the rule table over a merged config.

use super::rules::{
    CROSS_RULES, DEFAULT_DIMENSION, DEFAULT_ONTOLOGY_DIMENSION, FIELD_RULES, Kind, show,
};
use serde_json::{Value, json};

/// Python's `int()` / `float()` literal grammar, enough for what pydantic and
/// `_parse_env_value` accept: surrounding whitespace, a sign, `_` between digits.
pub(super) fn python_digits(s: &str) -> Option<String> {
    let b = s.as_bytes();
    let mut out = String::with_capacity(s.len());
    for (i, &c) in b.iter().enumerate() {
        if c == b'_' {
            let ok =
                i > 0 && b[i - 1].is_ascii_digit() && b.get(i + 1).is_some_and(u8::is_ascii_digit);
            if !ok {
                return None;
            }
        } else {
            out.push(c as char);
        }
    }
    Some(out)
}

pub(super) fn python_int(s: &str) -> Option<i64> {
    let t = python_digits(s.trim())?;
    let digits = t.strip_prefix(['+', '-']).unwrap_or(&t);
    if digits.is_empty() || !digits.bytes().all(|c| c.is_ascii_digit()) {
        return None;
    }
    t.parse::<i64>().ok()
}

pub(super) fn python_float(s: &str) -> Option<f64> {
    let t = python_digits(s.trim())?;
    let body = t
        .strip_prefix(['+', '-'])
        .unwrap_or(&t)
        .to_ascii_lowercase();
    let word = matches!(body.as_str(), "inf" | "infinity" | "nan");
    let numeric = !body.is_empty()
        && body
            .bytes()
            .all(|c| c.is_ascii_digit() || matches!(c, b'.' | b'e' | b'+' | b'-'))
        && body.bytes().any(|c| c.is_ascii_digit());
    if !(word || numeric) {
        return None;
    }
    t.parse::<f64>().ok()
}

/// `ConfigLoader._parse_env_value` (config_loader.py:404-422): bool words first (so `1` and `0`
/// are booleans), then `int()`, then `float()`, else the string.
pub(super) fn parse_env_value(s: &str) -> Value {
    let lower = s.to_lowercase();
    if ["true", "1", "yes", "on"].contains(&lower.as_str()) {
        return Value::Bool(true);
    }
    if ["false", "0", "no", "off"].contains(&lower.as_str()) {
        return Value::Bool(false);
    }
    if let Some(i) = python_int(s) {
        return json!(i);
    }
    if let Some(f) = python_float(s) {
        // JSON has no inf/nan: keep those as the string pydantic will parse the same way.
        return serde_json::Number::from_f64(f)
            .map_or_else(|| Value::String(s.to_string()), Value::Number);
    }
    Value::String(s.to_string())
}

/// pydantic's lax `int`: ints, integral floats, bools, and numeric strings ("12", " 1_000 ", "1.0").
#[allow(clippy::cast_possible_truncation)] // integral and below 2^53, checked first
pub(super) fn as_int(v: &Value) -> Option<i64> {
    match v {
        Value::Bool(b) => Some(i64::from(*b)),
        Value::Number(n) => n.as_i64().or_else(|| {
            n.as_f64()
                .filter(|f| f.is_finite() && f.fract() == 0.0 && f.abs() < 9.0e15)
                .map(|f| f as i64)
        }),
        Value::String(s) => python_int(s).or_else(|| {
            let t = s.trim();
            let (int, frac) = t.split_once('.')?;
            (!frac.is_empty() && frac.bytes().all(|c| c == b'0')).then_some(())?;
            python_int(int)
        }),
        _ => None,
    }
}

/// pydantic's lax `float`: numbers, bools, numeric strings (including "inf" and "nan").
pub(super) fn as_float(v: &Value) -> Option<f64> {
    match v {
        Value::Bool(b) => Some(f64::from(u8::from(*b))),
        Value::Number(n) => n.as_f64(),
        Value::String(s) => python_float(s),
        _ => None,
    }
}

/// pydantic's lax `bool`: bools, 0/1, and the words it knows.
pub(super) fn as_bool(v: &Value) -> Option<bool> {
    match v {
        Value::Bool(b) => Some(*b),
        Value::Number(n) => match n.as_f64() {
            Some(0.0) => Some(false),
            Some(1.0) => Some(true),
            _ => None,
        },
        Value::String(s) => match s.to_lowercase().as_str() {
            "0" | "off" | "f" | "false" | "n" | "no" => Some(false),
            "1" | "on" | "t" | "true" | "y" | "yes" => Some(true),
            _ => None,
        },
        _ => None,
    }
}

pub(super) fn lookup<'a>(config: &'a Value, path: &str) -> Option<&'a Value> {
    path.split('.')
        .try_fold(config, |node, part| node.as_object()?.get(part))
}

/// Checks one present value against its kind: `Err(why)` when pydantic or MLSDM refuses it.
/// For numbers, `Ok(Some(x))` hands the coerced value to the cross-field rules.
pub(super) fn check_field(kind: Kind, v: &Value) -> Result<Option<f64>, String> {
    match kind {
        Kind::Section => v
            .is_object()
            .then_some(None)
            .ok_or_else(|| "must be a mapping".into()),
        Kind::Int(min, max) => {
            let i = as_int(v).ok_or("must be an integer")?;
            if i < min || i > max {
                return Err(format!("must be in {min}..{max}"));
            }
            Ok(Some(i as f64))
        }
        Kind::Float(min, exclusive, max) => {
            let x = as_float(v).ok_or("must be a number")?;
            let low_ok = if exclusive { x > min } else { x >= min };
            let high_ok = max.is_none_or(|m| x <= m);
            if !(low_ok && high_ok) {
                let low = if exclusive {
                    format!("> {min}")
                } else {
                    format!(">= {min}")
                };
                let range = max.map_or(low.clone(), |m| format!("{low} and <= {m}"));
                return Err(format!("must be {range}"));
            }
            Ok(Some(x))
        }
        Kind::Bool => as_bool(v)
            .map(|_| None)
            .ok_or_else(|| "must be a boolean".into()),
        Kind::Enum(allowed, lowercase, nullable) => match v {
            Value::Null if nullable => Ok(None),
            Value::String(s) => {
                let s = if lowercase {
                    s.to_lowercase()
                } else {
                    s.clone()
                };
                if allowed.contains(&s.as_str()) {
                    Ok(None)
                } else {
                    Err(format!("must be one of {}", allowed.join(", ")))
                }
            }
            _ => Err(format!("must be one of {}", allowed.join(", "))),
        },
        Kind::OptStr => match v {
            Value::Null | Value::String(_) => Ok(None),
            _ => Err("must be a string".into()),
        },
        Kind::OptStrList => match v {
            Value::Null => Ok(None),
            Value::Array(items) if items.iter().all(Value::is_string) => {
                Ok(Some(items.len() as f64))
            }
            _ => Err("must be a list of strings".into()),
        },
        Kind::BoolMap => match v {
            Value::Object(m) if m.values().all(|b| as_bool(b).is_some()) => Ok(None),
            _ => Err("must be a mapping of names to booleans".into()),
        },
        Kind::Vectors => {
            let rows = v.as_array().ok_or("must be a list of lists of numbers")?;
            let mut lens = Vec::new();
            for row in rows {
                let row = row.as_array().ok_or("must be a list of lists of numbers")?;
                if !row.iter().all(|x| as_float(x).is_some()) {
                    return Err("must be a list of lists of numbers".into());
                }
                lens.push(row.len());
            }
            if lens.is_empty() {
                return Err("cannot be empty".into());
            }
            if lens.iter().any(|l| *l != lens[0]) {
                return Err("all vectors must have the same length".into());
            }
            Ok(Some(lens[0] as f64))
        }
    }
}

/// Every rule the merged config breaks, as "field = value: rule (upstream source)". Empty when
/// MLSDM 1.2.0 starts with it. Unknown top-level keys are left to their own validation.
// The numbers cast back are a dimension and a vector length, integers checked by their rules.
#[allow(clippy::cast_possible_truncation, clippy::cast_sign_loss)]
pub fn validate_config(config: &Value) -> Vec<String> {
    let mut broken = Vec::new();
    let mut values: std::collections::HashMap<&str, f64> = std::collections::HashMap::new();
    let mut failed: Vec<&str> = Vec::new();
    for &(path, kind, upstream) in FIELD_RULES {
        let Some(v) = lookup(config, path) else {
            continue; // absent (or under a section that is not a mapping: reported there)
        };
        match check_field(kind, v) {
            Ok(Some(x)) => {
                values.insert(path, x);
            }
            Ok(None) => {}
            Err(why) => {
                broken.push(format!("{path} = {}: {why} ({upstream})", show(v)));
                failed.push(path);
            }
        }
    }
    for &(fields, upstream, rule) in CROSS_RULES {
        if fields.iter().any(|(f, _)| failed.contains(f)) {
            continue;
        }
        let args: Vec<f64> = fields
            .iter()
            .map(|(f, default)| values.get(f).copied().unwrap_or(*default))
            .collect();
        if let Some(why) = rule(&args) {
            broken.push(format!("{why} ({upstream})"));
        }
    }
    let vectors = "ontology_matcher.ontology_vectors";
    let labels = "ontology_matcher.ontology_labels";
    if !failed.contains(&vectors) && !failed.contains(&labels) {
        let n_vectors = lookup(config, vectors)
            .and_then(Value::as_array)
            .map_or(2, Vec::len);
        if let Some(n_labels) = lookup(config, labels)
            .and_then(Value::as_array)
            .map(Vec::len)
            && n_labels != n_vectors
        {
            broken.push(format!(
                "the number of ontology_labels ({n_labels}) must match the number of ontology_vectors ({n_vectors}) (config_schema.py:147-159)"
            ));
        }
    }
    if broken.is_empty() {
        let dim = values
            .get("dimension")
            .map_or(DEFAULT_DIMENSION, |d| *d as i64);
        let vec_dim = values
            .get(vectors)
            .map_or(DEFAULT_ONTOLOGY_DIMENSION, |d| *d as usize);
        if i64::try_from(vec_dim).ok() != Some(dim) {
            let whose = if values.contains_key(vectors) {
                ""
            } else {
                " (the default ontology)"
            };
            broken.push(format!(
                "ontology vector dimension ({vec_dim}){whose} must match dimension ({dim}) (config_schema.py:501-517)"
            ));
        }
    }
    broken
}
