//! MLSDM's effective configuration for a workload, computed the way the service computes it at
//! startup: the YAML file at `CONFIG_PATH` (from the ConfigMap the pod mounts there), with every
//! `MLSDM_*` environment variable merged in (`MLSDM_A__B=v` sets `a.b`). MLSDM rejects unknown
//! top-level keys and crashes, so the unknown keys are computed here for the checks.

use super::{Facts, Object};
use serde_json::{Map, Value, json};

/// Top-level keys MLSDM 1.2.0's strict config validation accepts.
pub const ALLOWED_TOP_LEVEL_KEYS: &[&str] = &[
    "aphasia",
    "api",
    "cognitive_controller",
    "cognitive_rhythm",
    "dimension",
    "drift_logging",
    "moral_filter",
    "multi_level_memory",
    "neuro_hybrid",
    "neurolang",
    "ontology_matcher",
    "pelm",
    "strict_mode",
    "synergy_experience",
];

const DEFAULT_CONFIG_PATH: &str = "config/default_config.yaml";

/// Picks the MLSDM container: the one that sets MLSDM's own variables, else one whose image
/// names MLSDM, else the first.
pub fn mlsdm_container(spec: &Value) -> Option<&Value> {
    let containers = spec.get("containers")?.as_array()?;
    let sets_mlsdm_env = |c: &&Value| {
        c.get("env").and_then(Value::as_array).is_some_and(|env| {
            env.iter().any(|e| {
                e.get("name").and_then(Value::as_str).is_some_and(|n| {
                    ["CONFIG_PATH", "LLM_BACKEND", "API_KEY"].contains(&n)
                        || n.starts_with("MLSDM_")
                })
            })
        })
    };
    let image_names_mlsdm = |c: &&Value| {
        c.get("image")
            .and_then(Value::as_str)
            .is_some_and(|i| i.contains("mlsdm") || i.contains("neuro-engine"))
    };
    containers
        .iter()
        .find(sets_mlsdm_env)
        .or_else(|| containers.iter().find(image_names_mlsdm))
        .or_else(|| containers.first())
}

/// The container's environment: name -> {source, value?, name?, key?}. Secret values are never
/// included; ConfigMap-sourced values are resolved when the ConfigMap is known.
fn environment(container: &Value, w: &Object, facts: &Facts) -> Map<String, Value> {
    let ns = w.namespace.as_deref();
    let mut env = Map::new();
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
        if let Some(name) = from.pointer("/configMapRef/name").and_then(Value::as_str)
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
        if let Some(name) = from.pointer("/secretRef/name").and_then(Value::as_str)
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
        } else if let Some(r) = e.pointer("/valueFrom/secretKeyRef") {
            json!({"source": "secretKeyRef", "name": r.get("name"), "key": r.get("key")})
        } else if let Some(r) = e.pointer("/valueFrom/configMapKeyRef") {
            let cm_name = r.get("name").and_then(Value::as_str).unwrap_or_default();
            let key = r.get("key").and_then(Value::as_str).unwrap_or_default();
            let value = facts
                .find("ConfigMap", ns, cm_name)
                .and_then(|cm| {
                    cm.json.pointer(&format!(
                        "/data/{}",
                        key.replace('~', "~0").replace('/', "~1")
                    ))
                })
                .cloned()
                .unwrap_or(Value::Null);
            json!({"source": "configMapKeyRef", "name": cm_name, "key": key, "value": value})
        } else if e.pointer("/valueFrom/fieldRef").is_some() {
            json!({"source": "fieldRef"})
        } else if e.pointer("/valueFrom/resourceFieldRef").is_some() {
            json!({"source": "resourceFieldRef"})
        } else {
            json!({"source": "value", "value": ""})
        };
        env.insert(name.to_string(), entry);
    }
    env
}

/// Finds the ConfigMap key that a mounted path resolves to.
fn mounted_config(container: &Value, spec: &Value, path: &str) -> Option<(String, String)> {
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

/// Parses an env value the way a YAML scalar reads (`384` is an int, `true` a bool).
fn scalar(s: &str) -> Value {
    serde_saphyr::from_str::<Value>(s)
        .ok()
        .filter(|v| !v.is_object() && !v.is_array() && !v.is_null())
        .unwrap_or_else(|| Value::String(s.to_string()))
}

/// The `mlsdm` variable for a workload.
pub fn effective(w: &Object, facts: &Facts) -> Value {
    let Some(spec) = w.pod_spec() else {
        return Value::Null;
    };
    let Some(container) = mlsdm_container(spec) else {
        return Value::Null;
    };
    let env = environment(container, w, facts);
    let config_path_entry = env.get("CONFIG_PATH");
    let config_path = config_path_entry
        .and_then(|e| e.get("value"))
        .and_then(Value::as_str)
        .unwrap_or(DEFAULT_CONFIG_PATH)
        .to_string();

    let mut config_error = Value::Null;
    let mut config_source = Value::Null;
    let mut file_config = Value::Null;
    let mounted = if config_path.starts_with('/') {
        mounted_config(container, spec, &config_path)
    } else {
        None
    };
    if let Some((cm_name, key)) = &mounted {
        config_source = json!({"configMap": cm_name, "key": key});
        match facts.find("ConfigMap", w.namespace.as_deref(), cm_name) {
            None => {
                config_error = json!(format!(
                    "ConfigMap {cm_name} mounted at {config_path} is not among the audited objects"
                ));
            }
            Some(cm) => match cm
                .json
                .get("data")
                .and_then(|d| d.get(key))
                .and_then(Value::as_str)
            {
                None => {
                    config_error = json!(format!(
                        "ConfigMap {cm_name} has no key {key} for {config_path}"
                    ));
                }
                Some(text) => match serde_saphyr::from_str::<Value>(text) {
                    Ok(v @ Value::Object(_)) => file_config = v,
                    Ok(_) => config_error = json!(format!("{cm_name}/{key} is not a YAML mapping")),
                    Err(e) => {
                        let (line, col, msg) = crate::checks::yaml_error_parts(&e);
                        config_error = json!(format!("{cm_name}/{key}:{line}:{col}: {msg}"));
                    }
                },
            },
        }
    } else if config_path.starts_with('/') {
        config_error = json!(format!(
            "CONFIG_PATH {config_path} is not on a ConfigMap volume mount"
        ));
    }

    let mut merged = if file_config.is_object() {
        file_config.clone()
    } else {
        json!({})
    };
    let mut overrides = Map::new();
    for (name, e) in &env {
        let Some(rest) = name.strip_prefix("MLSDM_") else {
            continue;
        };
        // No exception: MLSDM_MAX_CONCURRENT, MLSDM_QUEUE_TIMEOUT and MLSDM_REQUEST_TIMEOUT, read
        // by the bulkhead middleware, are merged too and crash start-up (measured on 1.2.0).
        if rest.is_empty() {
            continue;
        }
        let path: Vec<String> = rest.split("__").map(str::to_ascii_lowercase).collect();
        let value = e
            .get("value")
            .and_then(Value::as_str)
            .map_or(Value::Null, scalar);
        overrides.insert(path.join("."), json!(name));
        let mut node = &mut merged;
        for (i, part) in path.iter().enumerate() {
            let Value::Object(map) = node else { break };
            if i + 1 == path.len() {
                map.insert(part.clone(), value.clone());
                break;
            }
            node = map.entry(part.clone()).or_insert_with(|| json!({}));
            if !node.is_object() {
                *node = json!({});
            }
        }
    }
    let unknown: Vec<Value> = merged
        .as_object()
        .into_iter()
        .flat_map(|m| m.keys())
        .filter(|k| !ALLOWED_TOP_LEVEL_KEYS.contains(&k.as_str()))
        .map(|k| json!(k))
        .collect();
    let configured = file_config.is_object() || !overrides.is_empty();
    json!({
        "container": container.get("name"),
        "env": env,
        "configPath": config_path,
        "configMounted": mounted.is_some(),
        "configSource": config_source,
        "configError": config_error,
        "fileConfig": file_config,
        "config": if configured { merged } else { Value::Null },
        "envOverrides": overrides,
        "unknownTopLevelKeys": unknown,
        "allowedTopLevelKeys": ALLOWED_TOP_LEVEL_KEYS,
    })
}
