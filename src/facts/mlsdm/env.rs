//! A container's environment as MLSDM sees it (values from ConfigMaps resolved, Secret values
//! never read), and which ConfigMap key a mounted config path resolves to.

use super::super::{Facts, Object};
use crate::k8s::At as _;
use serde_json::{Map, Value, json};

/// The variables a container's environment gives MLSDM (envFrom first, then env, later entries
/// winning), each with its source; Secret values are never read. ConfigMap-sourced values are resolved when the ConfigMap is known. The second list
/// names the `envFrom` sources whose variables are unknown (the object is not among the audited
/// ones, or a Secret read metadata-only): any MLSDM_* or CONFIG_PATH may hide there. The third
/// names the variables an optional reference leaves unset (`optional_ref_unset`), which are not
/// in the first.
pub(super) fn environment(
    container: &Value,
    w: &Object,
    facts: &Facts,
) -> (Map<String, Value>, Vec<String>, Vec<String>) {
    let ns = w.namespace.as_deref();
    let mut env = Map::new();
    let mut unresolved = Vec::new();
    let mut unset = Vec::new();
    for from in container
        .get("envFrom")
        .and_then(Value::as_array)
        .into_iter()
        .flatten()
    {
        let optional = |r: &str| from.at(&format!("/{r}/optional")) == Some(&json!(true));
        if let Some(name) = from.at("/configMapRef/name").and_then(Value::as_str)
            && facts.find("ConfigMap", ns, name).is_none()
        {
            unresolved.push(format!(
                "envFrom ConfigMap {name}{} is not among the audited objects",
                if optional("configMapRef") {
                    " (optional)"
                } else {
                    ""
                }
            ));
        }
        if let Some(name) = from.at("/secretRef/name").and_then(Value::as_str) {
            match facts.find("Secret", ns, name) {
                None => unresolved.push(format!(
                    "envFrom Secret {name}{} is not among the audited objects",
                    if optional("secretRef") {
                        " (optional)"
                    } else {
                        ""
                    }
                )),
                Some(s)
                    if s.json
                        .get("data")
                        .and_then(Value::as_object)
                        .is_none_or(serde_json::Map::is_empty) =>
                {
                    unresolved.push(format!(
                        "envFrom Secret {name}: its keys are not known (read metadata-only, or empty)"
                    ));
                }
                Some(_) => {}
            }
        }
    }
    for from in container
        .get("envFrom")
        .and_then(Value::as_array)
        .into_iter()
        .flatten()
    {
        let prefix = from
            .get("prefix")
            .and_then(Value::as_str)
            .unwrap_or_default();
        if let Some(name) = from.at("/configMapRef/name").and_then(Value::as_str)
            && let Some(cm) = facts.find("ConfigMap", ns, name)
        {
            for (k, v) in cm
                .json
                .get("data")
                .and_then(Value::as_object)
                .into_iter()
                .flatten()
            {
                env.insert(
                    format!("{prefix}{k}"),
                    json!({"source": "configMapRef", "name": name, "key": k, "value": v}),
                );
            }
        }
        if let Some(name) = from.at("/secretRef/name").and_then(Value::as_str)
            && let Some(s) = facts.find("Secret", ns, name)
        {
            for k in s
                .json
                .get("data")
                .and_then(Value::as_object)
                .into_iter()
                .flat_map(|m| m.keys())
            {
                env.insert(
                    format!("{prefix}{k}"),
                    json!({"source": "secretRef", "name": name, "key": k}),
                );
            }
        }
    }
    for e in container
        .get("env")
        .and_then(Value::as_array)
        .into_iter()
        .flatten()
    {
        let Some(name) = e.get("name").and_then(Value::as_str) else {
            continue;
        };
        // `optional: true` on a missing object or key: Kubernetes starts the container without
        // the variable (a required one would keep it from starting). Judged as set, an
        // optional API_KEY from a Secret nobody created passed while authentication was off.
        let absent = match optional_ref(e, ns, facts) {
            Some(Optional::Unset(why)) => {
                unset.push(format!("{name}: {why}"));
                continue;
            }
            Some(Optional::Absent(why)) => Some(why),
            None => None,
        };
        let entry = if let Some(v) = e.get("value") {
            // The kubelet expands `$(NAME)` from the variables defined before this one:
            // `DISABLE_RATE_LIMIT=$(OFF)` with OFF=1 turns the limiter off. Judged as the
            // literal text, it passed. A reference to a value the audit cannot read (a
            // Secret's) leaves this one unreadable too.
            match v.as_str().map(|text| expand(text, &env)) {
                Some(Expanded::Known(text)) => json!({"source": "value", "value": text}),
                Some(Expanded::Unknown(from)) => json!({"source": "expansion", "references": from}),
                None => json!({"source": "value", "value": v}),
            }
        } else if let Some(r) = e.at("/valueFrom/secretKeyRef") {
            json!({"source": "secretKeyRef", "name": r.get("name"), "key": r.get("key")})
        } else if let Some(r) = e.at("/valueFrom/configMapKeyRef") {
            let cm_name = r.get("name").and_then(Value::as_str).unwrap_or_default();
            let key = r.get("key").and_then(Value::as_str).unwrap_or_default();
            let value = facts.find("ConfigMap", ns, cm_name).and_then(|cm| {
                cm.json.at(&format!(
                    "/data/{}",
                    key.replace('~', "~0").replace('/', "~1")
                ))
            });
            // No `value` when the audit cannot read it (the ConfigMap or key is not among the
            // audited objects): `has(value)` is how a check knows.
            match value {
                Some(v) => {
                    json!({"source": "configMapKeyRef", "name": cm_name, "key": key, "value": v})
                }
                None => json!({"source": "configMapKeyRef", "name": cm_name, "key": key}),
            }
        } else if e.at("/valueFrom/fieldRef").is_some() {
            json!({"source": "fieldRef"})
        } else if e.at("/valueFrom/resourceFieldRef").is_some() {
            json!({"source": "resourceFieldRef"})
        } else {
            json!({"source": "value", "value": ""})
        };
        let mut entry = entry;
        if let (Some(why), Some(fields)) = (absent, entry.as_object_mut()) {
            fields.insert("optional".into(), json!(true));
            fields.insert("absent".into(), json!(why));
        }
        env.insert(name.to_string(), entry);
    }
    // Ingestion masked credentials as the manifests write them. A value assembled by `$(NAME)`
    // expansion, or read from a ConfigMap under a credential's name (`envFrom` with `prefix:
    // API_` over a key `KEY`), is the same secret in a form no manifest holds: registered here,
    // before any result that carries it can be written.
    for (name, entry) in &env {
        if let Some(v) = entry.get("value").and_then(Value::as_str)
            && (crate::k8s::secrets::is_credential_key(name)
                || crate::k8s::secrets::looks_like_credential(v))
        {
            crate::redact::register(v);
        }
    }
    (env, unresolved, unset)
}

/// An env value after the kubelet's `$(NAME)` expansion.
#[derive(Debug, PartialEq)]
enum Expanded {
    Known(String),
    /// It references this variable, whose value the audit cannot read.
    Unknown(String),
}

/// Expands `$(NAME)` in `text` as the kubelet does (k8s.io/kubernetes's
/// third_party/forked/golang/expansion): a variable defined before it gives its value, an
/// undefined one stays as written, `$$` is one `$`, and any other `$` is itself.
fn expand(text: &str, defined: &Map<String, Value>) -> Expanded {
    let mut out = String::with_capacity(text.len());
    let mut rest = text;
    while let Some(at) = rest.find('$') {
        out.push_str(&rest[..at]);
        let after = &rest[at + 1..];
        if let Some(r) = after.strip_prefix('$') {
            out.push('$');
            rest = r;
        } else if let Some(r) = after.strip_prefix('(')
            && let Some(end) = r.find(')')
        {
            let name = &r[..end];
            match defined.get(name) {
                None => {
                    out.push_str("$(");
                    out.push_str(name);
                    out.push(')');
                }
                Some(entry) => match entry.get("value") {
                    Some(Value::String(v)) => out.push_str(v),
                    Some(Value::Number(n)) => out.push_str(&n.to_string()),
                    Some(Value::Bool(b)) => out.push_str(if *b { "true" } else { "false" }),
                    _ => return Expanded::Unknown(name.to_string()),
                },
            }
            rest = &r[end + 1..];
        } else {
            out.push('$');
            rest = after;
        }
    }
    out.push_str(rest);
    Expanded::Known(out)
}

/// What an optional reference (`optional: true` on a secretKeyRef or configMapKeyRef) gives.
enum Optional {
    /// Kubernetes leaves the variable unset, for this reason: the object or key is known to be
    /// absent (from a live cluster whose kind was listed, or an object the audit holds).
    Unset(String),
    /// The object is not among the audited manifests: it may be created elsewhere (that is what
    /// `optional` is for), or not at all, and the variable set or not.
    Absent(String),
}

/// What the env entry `e` gives when it is an optional reference whose object or key is
/// missing (`Optional`); `None` when it is not optional, or the audit cannot tell (the kind
/// could not be listed; a Secret read metadata-only, whose keys are unknown).
fn optional_ref(e: &Value, ns: Option<&str>, facts: &Facts) -> Option<Optional> {
    let (kind, r) = [("Secret", "secretKeyRef"), ("ConfigMap", "configMapKeyRef")]
        .into_iter()
        .find_map(|(kind, field)| e.at(&format!("/valueFrom/{field}")).map(|r| (kind, r)))?;
    if r.get("optional") != Some(&json!(true)) || facts.kind_errors.contains_key(kind) {
        return None;
    }
    let name = r.get("name").and_then(Value::as_str).unwrap_or_default();
    let key = r.get("key").and_then(Value::as_str).unwrap_or_default();
    let Some(object) = facts.find(kind, ns, name) else {
        return Some(if facts.live {
            Optional::Unset(format!(
                "optional {kind} {name} does not exist, so Kubernetes leaves it unset"
            ))
        } else {
            Optional::Absent(format!(
                "optional {kind} {name}, which is not among the audited objects"
            ))
        });
    };
    // A Secret's data is summarized at ingestion (stringData folded in); metadata-only or
    // empty, its keys are unknown. The kubelet reads a configMapKeyRef from `data` only.
    let keys: Vec<&String> = object
        .json
        .get("data")
        .and_then(Value::as_object)
        .into_iter()
        .flat_map(Map::keys)
        .collect();
    // Live, a Secret is read metadata-only: its keys are unknown. In manifests, an empty
    // Secret is what gets applied, and holds no key.
    if keys.is_empty() && kind == "Secret" && facts.live {
        return None;
    }
    (!keys.iter().any(|k| *k == key)).then(|| {
        Optional::Unset(format!(
            "optional {kind} {name} has no key {key}, so Kubernetes leaves it unset"
        ))
    })
}

/// Finds the ConfigMap key that a mounted path resolves to.
pub(super) fn mounted_config(
    container: &Value,
    spec: &Value,
    path: &str,
    has_key: impl Fn(&str, &str) -> bool,
) -> Option<(String, String)> {
    // The mount that holds `path` is the deepest one whose mount path contains it: the runtime
    // mounts deeper paths over shallower ones (a subPath file at /etc/mlsdm/config.yaml hides
    // the ConfigMap directory at /etc/mlsdm), whatever order the spec lists them in. Taking the
    // first in list order, a shadowed ConfigMap's config was judged instead of the file MLSDM
    // loads.
    let mut holding: Option<(&str, &str, String)> = None;
    for m in container
        .get("volumeMounts")
        .and_then(Value::as_array)
        .into_iter()
        .flatten()
    {
        let mount_path = m
            .get("mountPath")
            .and_then(Value::as_str)?
            .trim_end_matches('/');
        let vol_name = m.get("name").and_then(Value::as_str)?;
        let sub_path = m.get("subPath").and_then(Value::as_str);
        let rel = match sub_path {
            Some(sp) if path == mount_path => sp.to_string(),
            Some(_) => continue,
            None => match path
                .strip_prefix(mount_path)
                .and_then(|r| r.strip_prefix('/'))
            {
                Some(r) => r.to_string(),
                None => continue,
            },
        };
        if holding
            .as_ref()
            .is_none_or(|(deepest, _, _)| mount_path.len() >= deepest.len())
        {
            holding = Some((mount_path, vol_name, rel));
        }
    }
    if let Some((_, vol_name, rel)) = holding {
        let vol = spec
            .get("volumes")
            .and_then(Value::as_array)?
            .iter()
            .find(|v| v.get("name").and_then(Value::as_str) == Some(vol_name))?;
        if let Some(cm) = vol.get("configMap") {
            return configmap_file(cm, &rel);
        }
        // A projected volume joins several sources in one directory: the file is the ConfigMap
        // source's that projects it (its `items` path, or a key of that name when it lists
        // none; a source without the key projects no such file), else the first candidate's
        // (whose missing key is then the finding). Read only as a plain `configMap` volume,
        // CONFIG_PATH on one was "not on a ConfigMap volume mount", a critical false failure.
        let candidates: Vec<(String, String)> = vol
            .get("projected")?
            .get("sources")?
            .as_array()?
            .iter()
            .filter_map(|src| src.get("configMap"))
            .filter_map(|cm| configmap_file(cm, &rel))
            .collect();
        return candidates
            .iter()
            .find(|(cm, key)| has_key(cm, key))
            .or(candidates.first())
            .cloned();
    }
    None
}

/// The ConfigMap and key a `configMap` volume (or projected source) puts at `rel` inside it.
fn configmap_file(cm: &Value, rel: &str) -> Option<(String, String)> {
    let cm_name = cm.get("name").and_then(Value::as_str)?.to_string();
    // `items` maps keys to paths inside the volume, and only the keys it lists are there: a
    // path it does not name is no file (the key of the same name is not projected).
    let key = match cm
        .get("items")
        .and_then(Value::as_array)
        .filter(|items| !items.is_empty())
    {
        None => rel.to_string(),
        Some(items) => items
            .iter()
            .find(|i| i.get("path").and_then(Value::as_str) == Some(rel))
            .and_then(|i| i.get("key").and_then(Value::as_str))?
            .to_string(),
    };
    Some((cm_name, key))
}

#[cfg(test)]
mod expansion_tests {
    use super::{Expanded, expand};
    use serde_json::{Map, json};

    /// The kubelet's `$(NAME)` expansion: defined variables give their value, undefined ones
    /// stay as written, `$$` escapes, and a reference to an unreadable value is unknown.
    #[test]
    fn env_values_expand_as_the_kubelet_expands_them() {
        let mut env = Map::new();
        env.insert("OFF".into(), json!({"source": "value", "value": "1"}));
        env.insert(
            "KEY".into(),
            json!({"source": "secretKeyRef", "name": "s", "key": "k"}),
        );
        let known = |t: &str| Expanded::Known(t.to_string());
        assert_eq!(expand("$(OFF)", &env), known("1"));
        assert_eq!(expand("a$(OFF)b$(OFF)", &env), known("a1b1"));
        assert_eq!(expand("$$(OFF)", &env), known("$(OFF)"));
        assert_eq!(expand("$(NOPE)", &env), known("$(NOPE)"));
        assert_eq!(expand("$(OFF", &env), known("$(OFF"));
        assert_eq!(expand("cost $5", &env), known("cost $5"));
        assert_eq!(expand("$", &env), known("$"));
        assert_eq!(expand("x$(KEY)", &env), Expanded::Unknown("KEY".into()));
    }
}
