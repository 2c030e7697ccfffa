//! MLSDM's effective configuration for a workload, computed the way the service computes it at
//! startup: the YAML file at `CONFIG_PATH` (from the ConfigMap the pod mounts there), with every
//! `MLSDM_*` environment variable merged in (`MLSDM_A__B=v` sets `a.b`). MLSDM rejects unknown
//! top-level keys and crashes, so the unknown keys are computed here for the checks.
//!
//! The parts: detection and `effective` here; `env.rs` (a container's environment, the mounted
//! config), `yaml.rs` (the config text as PyYAML reads it), `rules.rs` (MLSDM 1.2.0's value
//! rules, one table), `validate.rs` (running the table; Python's number grammar).

mod env;
mod rules;
mod serve;
#[cfg(test)]
mod tests;
mod validate;
// `is_node` is shared with the manifests' kubectl reading (`sources::kubectl_yaml`).
pub(crate) mod yaml;

use env::{environment, mounted_config};
use rules::{DEFAULT_DIMENSION, show};
pub use validate::validate_config;
use validate::{as_int, lookup, parse_env_value};
use yaml::DEFAULT_CONFIG_TEXT;
pub use yaml::ReadTexts;

use super::{Facts, Object};
use crate::k8s::At as _;
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

/// Whether a container sets MLSDM's own variables (`MLSDM_*`, `CONFIG_PATH`, `LLM_BACKEND`,
/// `API_KEY`; not this tool's `MLSDM_AUDIT_*`).
pub fn sets_mlsdm_env(c: &Value) -> bool {
    c.get("env").and_then(Value::as_array).is_some_and(|env| {
        env.iter().any(|e| {
            e.get("name").and_then(Value::as_str).is_some_and(|n| {
                ["CONFIG_PATH", "LLM_BACKEND", "API_KEY"].contains(&n)
                    || (n.starts_with("MLSDM_") && !n.starts_with("MLSDM_AUDIT_"))
            })
        })
    })
}

/// Whether a container's image is MLSDM's: its repository's last name (no registry, tag or
/// digest) names `mlsdm` or `neuro-engine`, and is not this tool's own `mlsdm-audit` (the
/// in-cluster CronJob's pod is not an MLSDM workload).
pub fn image_names_mlsdm(c: &Value) -> bool {
    c.get("image").and_then(Value::as_str).is_some_and(|image| {
        let without_digest = image.split('@').next().unwrap_or(image);
        let name = without_digest.rsplit('/').next().unwrap_or(without_digest);
        let repo = name.split(':').next().unwrap_or(name);
        repo != "mlsdm-audit" && (repo.contains("mlsdm") || repo.contains("neuro-engine"))
    })
}

/// Whether a container runs MLSDM: one place for the workload detection and the container
/// choice below.
pub fn runs_mlsdm(c: &Value) -> bool {
    sets_mlsdm_env(c) || image_names_mlsdm(c)
}

/// Whether a container is MLSDM itself, on the stronger signs only: its image, or a variable
/// only MLSDM reads. `API_KEY` alone is a client's too (a Helm test Pod curling the Service with
/// the key was taken for MLSDM; review finding).
pub fn is_mlsdm_itself(c: &Value) -> bool {
    sets_mlsdm_only_env(c) || image_names_mlsdm(c)
}

/// Whether a container sets a variable only MLSDM reads (`MLSDM_*`, `CONFIG_PATH`,
/// `LLM_BACKEND`): a stronger sign than `API_KEY`, which an auth proxy beside it may carry too.
fn sets_mlsdm_only_env(c: &Value) -> bool {
    c.get("env").and_then(Value::as_array).is_some_and(|env| {
        env.iter().any(|e| {
            e.get("name").and_then(Value::as_str).is_some_and(|n| {
                ["CONFIG_PATH", "LLM_BACKEND"].contains(&n)
                    || (n.starts_with("MLSDM_") && !n.starts_with("MLSDM_AUDIT_"))
            })
        })
    })
}

/// Whether a container's probes ask MLSDM's health paths, or it declares MLSDM's port 8000.
fn serves_like_mlsdm(c: &Value) -> (bool, bool) {
    let health = ["livenessProbe", "readinessProbe", "startupProbe"]
        .iter()
        .any(|p| {
            c.get(*p)
                .and_then(|probe| probe.at("/httpGet/path"))
                .and_then(Value::as_str)
                .is_some_and(|path| {
                    [
                        "/health",
                        "/health/live",
                        "/health/liveness",
                        "/health/ready",
                        "/health/readiness",
                    ]
                    .contains(&path)
                })
        });
    let port = c
        .get("ports")
        .and_then(Value::as_array)
        .is_some_and(|ports| {
            ports
                .iter()
                .any(|p| p.get("containerPort").and_then(Value::as_i64) == Some(8000))
        });
    (health, port)
}

/// Picks the MLSDM container: the one with the most signs of it, the first on a tie. Each sign
/// alone misleads: a sidecar listed first may carry API_KEY (an auth proxy) or have "mlsdm" in
/// its image (an exporter, a log shipper), and MLSDM's own image may be renamed. Weights, so
/// that the stronger sign wins: variables only MLSDM reads (`MLSDM_*`, `CONFIG_PATH`,
/// `LLM_BACKEND`) 8, an image naming MLSDM 4, probes on MLSDM's health paths 3, API_KEY 1,
/// port 8000 1.
pub fn mlsdm_container(spec: &Value) -> Option<&Value> {
    let containers = spec.get("containers")?.as_array()?;
    let score = |c: &Value| {
        let (health, port) = serves_like_mlsdm(c);
        8 * u32::from(sets_mlsdm_only_env(c))
            + 4 * u32::from(image_names_mlsdm(c))
            + 3 * u32::from(health)
            + u32::from(sets_mlsdm_env(c))
            + u32::from(port)
    };
    // `max_by_key` keeps the last of equals: the first wins a tie when scanning reversed.
    containers.iter().rev().max_by_key(|c| score(c))
}

/// The service-link variables the kubelet gives the pod that start with `MLSDM_`, each with the
/// Service it comes from. Unless the pod sets `enableServiceLinks: false`, every Service of its
/// namespace with a cluster IP gives `{NAME}_SERVICE_HOST`, `{NAME}_SERVICE_PORT`,
/// `{NAME}_SERVICE_PORT_{PORT_NAME}`, `{NAME}_PORT` and `{NAME}_PORT_{PORT}_{PROTO}[_PROTO|_PORT|_ADDR]`
/// (NAME: the Service's name, upper-cased, `-` as `_`; kubelet's envvars.FromServices). A
/// Service named `mlsdm-api` gives `MLSDM_API_SERVICE_HOST`, which MLSDM merges into its config
/// as the unknown key `api_service_host` and refuses to start on (measured on 1.2.0: the
/// upstream all-in-one manifests' own Service does it). In manifests a Service has no cluster
/// IP yet: one is assigned unless it is headless (`None`) or an ExternalName.
fn service_links(spec: &Value, w: &Object, facts: &Facts) -> Vec<(String, String)> {
    if spec.get("enableServiceLinks") == Some(&Value::Bool(false)) {
        return Vec::new();
    }
    let mut links = Vec::new();
    for svc in facts.same_kind_in("Service", w.namespace.as_deref()) {
        // The variables' prefix (`{NAME}_`) read a character at a time, without allocating:
        // this runs for every Service of the namespace for every workload (issue 12).
        let mlsdm_prefixed = svc
            .name
            .chars()
            .flat_map(char::to_uppercase)
            .map(|c| if c == '-' { '_' } else { c })
            .chain(std::iter::once('_'))
            .take("MLSDM_".len())
            .eq("MLSDM_".chars());
        if !mlsdm_prefixed {
            continue;
        }
        let prefix = svc.name.to_uppercase().replace('-', "_");
        let cluster_ip = svc.json.at("/spec/clusterIP").and_then(Value::as_str);
        let external = svc.json.at("/spec/type").and_then(Value::as_str) == Some("ExternalName");
        // Live, a Service without a cluster IP has none; in manifests one is assigned.
        let no_ip = match cluster_ip {
            Some("None") => true,
            Some("") | None => facts.live,
            Some(_) => false,
        };
        if external || no_ip {
            continue;
        }
        let mut names = vec![format!("{prefix}_SERVICE_HOST")];
        let ports = svc
            .json
            .at("/spec/ports")
            .and_then(Value::as_array)
            .cloned()
            .unwrap_or_default();
        for (i, p) in ports.iter().enumerate() {
            let number = p.get("port").map(ToString::to_string).unwrap_or_default();
            let proto = p
                .get("protocol")
                .and_then(Value::as_str)
                .unwrap_or("TCP")
                .to_uppercase();
            if i == 0 {
                names.push(format!("{prefix}_SERVICE_PORT"));
                names.push(format!("{prefix}_PORT"));
            }
            if let Some(port_name) = p.get("name").and_then(Value::as_str) {
                names.push(format!(
                    "{prefix}_SERVICE_PORT_{}",
                    port_name.to_uppercase().replace('-', "_")
                ));
            }
            let link = format!("{prefix}_PORT_{number}_{proto}");
            for suffix in ["", "_PROTO", "_PORT", "_ADDR"] {
                names.push(format!("{link}{suffix}"));
            }
        }
        links.extend(names.into_iter().map(|n| (n, svc.name.clone())));
    }
    links
}

/// The `mlsdm` variable for a workload.
// Python's `str.endswith` is case-sensitive: `config.YAML` is refused by MLSDM too.
#[allow(clippy::case_sensitive_file_extension_comparisons)]
pub fn effective(w: &Object, facts: &Facts) -> Value {
    let Some(spec) = w.pod_spec() else {
        return Value::Null;
    };
    let Some(container) = mlsdm_container(spec) else {
        return Value::Null;
    };
    let (mut env, env_from_unresolved, env_unset) = environment(container, w, facts);
    let serving = serve::serving(container, &env, env_from_unresolved.is_empty());
    // `mlsdm serve --config F --backend B` sets CONFIG_PATH and LLM_BACKEND before the app
    // reads them, over the container's env: a config file the pod does not mount passed
    // mlsdm-config-valid, read from the env entry alone.
    if let Some(settings) = serving.get("settings").and_then(Value::as_object) {
        for (variable, value) in settings {
            env.insert(
                variable.clone(),
                json!({"source": "commandLine", "value": value}),
            );
        }
    }
    let config_path_entry = env.get("CONFIG_PATH");
    let config_path = config_path_entry
        .and_then(|e| e.get("value"))
        .and_then(Value::as_str)
        .unwrap_or(DEFAULT_CONFIG_PATH)
        .to_string();

    let mut config_error = Value::Null;
    let mut config_source = Value::Null;
    let mut file_config = Value::Null;
    let mut violations: Vec<String> = Vec::new();
    // MLSDM_* or CONFIG_PATH may come from an envFrom source whose variables are unknown.
    let mut undecided: Vec<String> = env_from_unresolved
        .iter()
        .map(|why| format!("{why}, so the MLSDM_* and CONFIG_PATH it may set cannot be checked"))
        .collect();
    match config_path_entry.map(|e| e.get("source").and_then(Value::as_str)) {
        Some(Some("value" | "configMapKeyRef" | "commandLine"))
            if config_path_entry
                .and_then(|e| e.get("value"))
                .and_then(Value::as_str)
                .is_some_and(|v| !v.contains("$(")) => {}
        Some(_) => undecided.push(
            "the value of CONFIG_PATH is not in the audited objects, so the config file MLSDM loads is unknown".into(),
        ),
        None => {}
    }
    let mounted = if config_path.starts_with('/') {
        mounted_config(container, spec, &config_path, |cm, key| {
            facts
                .find("ConfigMap", w.namespace.as_deref(), cm)
                .is_some_and(|o| o.json.get("data").and_then(|d| d.get(key)).is_some())
        })
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
                Some(text) => {
                    let read = facts.config_texts.read(text);
                    let divergent: Vec<String> = read
                        .divergent
                        .iter()
                        .map(|d| format!("{cm_name}/{key} {d}"))
                        .collect();
                    violations.extend(read.bad_keys.iter().cloned());
                    match &read.parsed {
                        Ok(v) => file_config = v.clone(),
                        // `.inf` is refused here but a float to PyYAML: undecided, below.
                        Err(_) if !divergent.is_empty() => {}
                        Err(e) => {
                            let mut e = e.clone();
                            e.file = format!("{cm_name}/{key}");
                            config_error = json!(e.to_string());
                        }
                    }
                    undecided.extend(divergent);
                }
            },
        }
    } else if config_path.starts_with('/') {
        config_error = json!(format!(
            "CONFIG_PATH {config_path} is not on a ConfigMap volume mount"
        ));
    } else if config_path == DEFAULT_CONFIG_PATH {
        // The image's own file (packaged as mlsdm/config/default_config.yaml too).
        file_config = match &facts.config_texts.read(DEFAULT_CONFIG_TEXT).parsed {
            Ok(v) => v.clone(),
            Err(_) => Value::Null,
        };
    } else {
        undecided.push(format!(
            "CONFIG_PATH {config_path} is relative to the image's working directory, whose files are not audited"
        ));
    }
    // config_loader.py:249-253: only these extensions load; INI files are flattened
    // (config_loader.py:329-353), which is not modelled here.
    if config_path.ends_with(".ini") {
        undecided.push(format!(
            "CONFIG_PATH {config_path} is an INI file, whose flattening is not modelled"
        ));
    } else if !config_path.ends_with(".yaml") && !config_path.ends_with(".yml") {
        violations.push(format!(
            "CONFIG_PATH {config_path} does not end in .yaml, .yml or .ini: MLSDM refuses the file (config_loader.py:249-253)"
        ));
    }

    let mut merged = if file_config.is_object() {
        file_config.clone()
    } else {
        json!({})
    };
    let mut overrides = Map::new();
    // config_loader.py:355-402: every MLSDM_* variable, lowercased, split on `__` (empty parts
    // dropped). Variables whose names land on the same key, or one on a key inside another's
    // (`MLSDM_DIMENSION` and `MLSDM_dimension`, `MLSDM_X` and `MLSDM_X__Y`): MLSDM applies them
    // in the order of its environment, which the kubelet builds from a Go map (random), so
    // which one wins differs from one start to the next. The audit took the last in name
    // order, and a pod that crashed on the other passed.
    let paths: Vec<(&String, Vec<String>)> = env
        .keys()
        .filter_map(|name| {
            let rest = name.strip_prefix("MLSDM_")?;
            let path: Vec<String> = rest
                .to_lowercase()
                .split("__")
                .filter(|p| !p.is_empty())
                .map(str::to_string)
                .collect();
            (!path.is_empty()).then_some((name, path))
        })
        .collect();
    for (i, (a, pa)) in paths.iter().enumerate() {
        for (b, pb) in &paths[i + 1..] {
            let (short, long) = if pa.len() <= pb.len() {
                (pa, pb)
            } else {
                (pb, pa)
            };
            if long.starts_with(short) && env.get(*a) != env.get(*b) {
                undecided.push(format!(
                    "{a} and {b} both set {}: MLSDM applies them in the order of its environment, which Kubernetes does not fix, so which one wins is not known",
                    short.join(".")
                ));
            }
        }
    }
    // Each typed by `_parse_env_value`. No exception: MLSDM_MAX_CONCURRENT,
    // MLSDM_QUEUE_TIMEOUT and MLSDM_REQUEST_TIMEOUT, read by the bulkhead middleware, are merged
    // too and crash start-up (measured on 1.2.0).
    for (name, path) in &paths {
        let Some(e) = env.get(*name) else { continue };
        overrides.insert(path.join("."), json!(name));
        let value = if let Some(v) = e.get("value").and_then(Value::as_str) {
            if v.contains("$(") {
                undecided.push(format!(
                    "{name}={v}: Kubernetes expands $(VAR) references in env values, which is not modelled"
                ));
            }
            parse_env_value(v)
        } else {
            undecided.push(format!(
                "the value of {name} is not in the audited objects, so the {} it sets cannot be checked",
                path.join(".")
            ));
            Value::Null
        };
        let mut node = &mut merged;
        for (i, part) in path.iter().enumerate() {
            let Value::Object(map) = node else { break };
            if i + 1 == path.len() {
                map.insert(part.clone(), value.clone());
                break;
            }
            let next = map.entry(part.clone()).or_insert(Value::Null);
            if next.is_null() {
                *next = json!({});
            } else if !next.is_object() {
                violations.push(format!(
                    "{name} sets {} under {}, which is {}, not a mapping: MLSDM refuses to overwrite it (config_loader.py:384-398)",
                    path.join("."),
                    path[..=i].join("."),
                    show(next)
                ));
                break;
            }
            node = next;
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
    // Per Service, the MLSDM_* service links the container does not set itself (its own
    // variable replaces the kubelet's), in the kubelet's order: a list, so that the message
    // naming them reads the same every run.
    let mut links: Vec<(String, Vec<String>)> = Vec::new();
    for (name, service) in service_links(spec, w, facts) {
        if env.contains_key(&name) {
            continue;
        }
        match links.last_mut() {
            Some((s, vars)) if *s == service => vars.push(name),
            _ => links.push((service, vec![name])),
        }
    }
    let service_links: Vec<Value> = links
        .into_iter()
        .map(|(service, variables)| json!({"service": service, "variables": variables}))
        .collect();
    if config_error.is_null() {
        violations.extend(validate_config(&merged));
    }
    // The dimension the process runs with (/status config.dimension): the validated config's,
    // whose default is 384 (config_schema.py:426); `EMBEDDING_DIM` is not read on this path
    // (api/app.py:121-130 builds the engine with the config's dimension).
    let running_dimension = if config_error.is_null()
        && undecided.is_empty()
        && violations.is_empty()
        && unknown.is_empty()
    {
        lookup(&merged, "dimension")
            .and_then(as_int)
            .map_or(json!(DEFAULT_DIMENSION), |d| json!(d))
    } else {
        Value::Null
    };
    // Built by moving each part in: `json!` serializes every value it is given into a new one,
    // and the configurations (the file's and the merged one) are the larger part of this
    // value, made for every workload (issue 12: a sixth of `effective`'s instructions).
    let strings = |v: Vec<String>| Value::Array(v.into_iter().map(Value::String).collect());
    let fields: [(&str, Value); 18] = [
        (
            "container",
            container.get("name").cloned().unwrap_or(Value::Null),
        ),
        ("env", Value::Object(env)),
        ("configPath", Value::String(config_path)),
        ("configMounted", Value::Bool(mounted.is_some())),
        ("configSource", config_source),
        ("configError", config_error),
        ("fileConfig", file_config),
        ("config", if configured { merged } else { Value::Null }),
        ("envOverrides", Value::Object(overrides)),
        ("serviceLinks", Value::Array(service_links)),
        ("serving", serving),
        ("unknownTopLevelKeys", Value::Array(unknown)),
        ("allowedTopLevelKeys", json!(ALLOWED_TOP_LEVEL_KEYS)),
        ("configViolations", strings(violations)),
        ("configUndecided", strings(undecided)),
        ("envFromUnresolved", strings(env_from_unresolved)),
        ("envUnset", strings(env_unset)),
        ("runningDimension", running_dimension),
    ];
    Value::Object(
        fields
            .into_iter()
            .map(|(k, v)| (k.to_string(), v))
            .collect(),
    )
}
