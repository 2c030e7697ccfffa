//! A container's environment as MLSDM sees it (values from ConfigMaps resolved, Secret values
//! never read), and which ConfigMap key a mounted config path resolves to.

use super::super::{Facts, Object};
use crate::k8s::At as _;
use serde_json::{Map, Value, json};

/// included; ConfigMap-sourced values are resolved when the ConfigMap is known. The second list
/// names the `envFrom` sources whose variables are unknown (the object is not among the audited
/// ones, or a Secret read metadata-only): any MLSDM_* or CONFIG_PATH may hide there.
pub(super) fn environment(
    container: &Value,
    w: &Object,
    facts: &Facts,
) -> (Map<String, Value>, Vec<String>) {
    let ns = w.namespace.as_deref();
    let mut env = Map::new();
    let mut unresolved = Vec::new();
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
        let entry = if let Some(v) = e.get("value") {
            json!({"source": "value", "value": v})
        } else if let Some(r) = e.at("/valueFrom/secretKeyRef") {
            json!({"source": "secretKeyRef", "name": r.get("name"), "key": r.get("key")})
        } else if let Some(r) = e.at("/valueFrom/configMapKeyRef") {
            let cm_name = r.get("name").and_then(Value::as_str).unwrap_or_default();
            let key = r.get("key").and_then(Value::as_str).unwrap_or_default();
            let value = facts
                .find("ConfigMap", ns, cm_name)
                .and_then(|cm| {
                    cm.json.at(&format!(
                        "/data/{}",
                        key.replace('~', "~0").replace('/', "~1")
                    ))
                })
                .cloned()
                .unwrap_or(Value::Null);
            json!({"source": "configMapKeyRef", "name": cm_name, "key": key, "value": value})
        } else if e.at("/valueFrom/fieldRef").is_some() {
            json!({"source": "fieldRef"})
        } else if e.at("/valueFrom/resourceFieldRef").is_some() {
            json!({"source": "resourceFieldRef"})
        } else {
            json!({"source": "value", "value": ""})
        };
        env.insert(name.to_string(), entry);
    }
    (env, unresolved)
}

/// Finds the ConfigMap key that a mounted path resolves to.
pub(super) fn mounted_config(
    container: &Value,
    spec: &Value,
    path: &str,
) -> Option<(String, String)> {
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
        let vol = spec
            .get("volumes")
            .and_then(Value::as_array)?
            .iter()
            .find(|v| v.get("name").and_then(Value::as_str) == Some(vol_name))?;
        let cm = vol.get("configMap")?;
        let cm_name = cm.get("name").and_then(Value::as_str)?.to_string();
        // `items` maps keys to paths inside the volume.
        let key = cm
            .get("items")
            .and_then(Value::as_array)
            .and_then(|items| {
                items
                    .iter()
                    .find(|i| i.get("path").and_then(Value::as_str) == Some(rel.as_str()))
            })
            .and_then(|i| i.get("key").and_then(Value::as_str))
            .map_or(rel, str::to_string);
        return Some((cm_name, key));
    }
    None
}
