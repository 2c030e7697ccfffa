//! What looks like a credential, and the summaries that replace Secret values at ingestion, so
//! that nothing after `Object::new` can see a secret value.

use super::Object;
use serde_json::{Map, Value, json};

/// Key names that hold credentials.
pub fn is_credential_key(key: &str) -> bool {
    let k = key.to_ascii_lowercase().replace(['-', '.'], "_");
    [
        "api_key",
        "apikey",
        "token",
        "password",
        "passwd",
        "secret",
        "credential",
        "private_key",
        "access_key",
    ]
    .iter()
    .any(|w| k.contains(w))
}

/// Values that look like a credential: well-known key prefixes, private keys, or a long
/// high-entropy token with no spaces.
pub fn looks_like_credential(value: &str) -> bool {
    const PREFIXES: &[&str] = &[
        "sk-",
        "sk_live_",
        "rk_live_",
        "ghp_",
        "gho_",
        "ghs_",
        "github_pat_",
        "glpat-",
        "xoxb-",
        "xoxp-",
        "AKIA",
        "ASIA",
        "AIza",
        "hf_",
    ];
    let v = value.trim();
    if v.contains("PRIVATE KEY-----") {
        return true;
    }
    if PREFIXES.iter().any(|p| v.starts_with(p))
        && v.len() >= 16
        && !v.contains(char::is_whitespace)
    {
        return true;
    }
    v.len() >= 32 && !v.contains(char::is_whitespace) && !v.contains('/') && entropy(v) >= 4.0
}

/// Values that are obviously placeholders rather than real keys.
pub fn is_placeholder(value: &str) -> bool {
    let v = value.trim().to_ascii_lowercase();
    v.len() < 16
        || [
            "change-me",
            "changeme",
            "change_me",
            "example",
            "placeholder",
            "replace",
            "your-",
            "your_",
            "xxxx",
            "todo",
            "dummy",
            "<",
            "${",
        ]
        .iter()
        .any(|p| v.contains(p))
}

/// Shannon entropy in bits per character.
pub fn entropy(s: &str) -> f64 {
    let mut counts = std::collections::HashMap::new();
    for c in s.chars() {
        *counts.entry(c).or_insert(0usize) += 1;
    }
    #[allow(clippy::cast_precision_loss)]
    let n = s.chars().count() as f64;
    counts
        .values()
        .map(|&c| {
            #[allow(clippy::cast_precision_loss)]
            let p = c as f64 / n;
            -p * p.log2()
        })
        .sum()
}

/// Replaces Secret data with summaries and returns every value that must never be printed.
pub(super) fn redact(obj: &mut Object) -> Vec<String> {
    use base64::Engine as _;
    let mut sensitive = Vec::new();
    // `kubectl apply` copies the whole object, Secret data included, into this annotation.
    if let Some(ann) = obj
        .json
        .pointer_mut("/metadata/annotations")
        .and_then(Value::as_object_mut)
        && let Some(v) = ann.get_mut("kubectl.kubernetes.io/last-applied-configuration")
        && obj.kind == "Secret"
    {
        if let Some(s) = v.as_str() {
            sensitive.push(s.to_string());
        }
        *v = Value::String("<redacted>".into());
    }
    if obj.kind == "Secret" {
        let mut summaries = Map::new();
        let root = obj.json.as_object_mut();
        if let Some(root) = root {
            for (field, encoded) in [("data", true), ("stringData", false)] {
                if let Some(Value::Object(data)) = root.remove(field) {
                    for (k, v) in data {
                        let raw = v.as_str().unwrap_or_default().to_string();
                        let decoded = if encoded {
                            base64::engine::general_purpose::STANDARD
                                .decode(raw.trim())
                                .ok()
                                .and_then(|b| String::from_utf8(b).ok())
                        } else {
                            Some(raw.clone())
                        };
                        let plain = decoded.clone().unwrap_or_default();
                        if raw.len() >= 4 {
                            sensitive.push(raw.clone());
                        }
                        if plain.len() >= 4 {
                            sensitive.push(plain.clone());
                        }
                        summaries.insert(
                            k,
                            json!({
                                "length": plain.chars().count(),
                                "decodable": decoded.is_some(),
                                "placeholder": is_placeholder(&plain),
                                "entropy": entropy(&plain),
                                "empty": plain.trim().is_empty(),
                            }),
                        );
                    }
                }
            }
            root.insert("data".into(), Value::Object(summaries));
        }
    } else if obj.kind == "ConfigMap" {
        for (k, v) in obj
            .json
            .get("data")
            .and_then(Value::as_object)
            .into_iter()
            .flatten()
        {
            if let Some(s) = v.as_str()
                && ((is_credential_key(k) && s.len() >= 4) || looks_like_credential(s))
            {
                sensitive.push(s.to_string());
            }
        }
        // binaryData holds base64: a credential there is masked as written and decoded.
        for (k, v) in obj
            .json
            .get("binaryData")
            .and_then(Value::as_object)
            .into_iter()
            .flatten()
        {
            let Some(raw) = v.as_str() else { continue };
            let decoded = base64::engine::general_purpose::STANDARD
                .decode(raw.trim())
                .ok()
                .and_then(|b| String::from_utf8(b).ok())
                .unwrap_or_default();
            if (is_credential_key(k) && decoded.len() >= 4) || looks_like_credential(&decoded) {
                sensitive.push(raw.to_string());
                sensitive.push(decoded);
            }
        }
    }
    // Literal env values under credential names (API_KEY: "...") are secrets too.
    let mut stack = vec![&obj.json];
    while let Some(v) = stack.pop() {
        match v {
            Value::Object(m) => {
                if let (Some(Value::String(name)), Some(Value::String(value))) =
                    (m.get("name"), m.get("value"))
                    && ((is_credential_key(name) && value.len() >= 4)
                        || looks_like_credential(value))
                {
                    sensitive.push(value.clone());
                }
                stack.extend(m.values());
            }
            Value::Array(a) => stack.extend(a.iter()),
            _ => {}
        }
    }
    sensitive
}
