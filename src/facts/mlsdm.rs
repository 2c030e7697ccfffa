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

/// Picks the MLSDM container: the one that sets MLSDM's own variables, else one whose image
/// names MLSDM, else the first.
pub fn mlsdm_container(spec: &Value) -> Option<&Value> {
    let containers = spec.get("containers")?.as_array()?;
    containers
        .iter()
        .find(|c| sets_mlsdm_env(c))
        .or_else(|| containers.iter().find(|c| image_names_mlsdm(c)))
        .or_else(|| containers.first())
}

/// The container's environment: name -> {source, value?, name?, key?}. Secret values are never
/// included; ConfigMap-sourced values are resolved when the ConfigMap is known. The second list
/// names the `envFrom` sources whose variables are unknown (the object is not among the audited
/// ones, or a Secret read metadata-only): any MLSDM_* or CONFIG_PATH may hide there.
fn environment(container: &Value, w: &Object, facts: &Facts) -> (Map<String, Value>, Vec<String>) {
    let ns = w.namespace.as_deref();
    let mut env = Map::new();
    let mut unresolved = Vec::new();
    for from in container
        .get("envFrom")
        .and_then(Value::as_array)
        .into_iter()
        .flatten()
    {
        let optional = |r: &str| from.pointer(&format!("/{r}/optional")) == Some(&json!(true));
        if let Some(name) = from.pointer("/configMapRef/name").and_then(Value::as_str)
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
        if let Some(name) = from.pointer("/secretRef/name").and_then(Value::as_str) {
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
    (env, unresolved)
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
    let (env, env_from_unresolved) = environment(container, w, facts);
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
        Some(Some("value" | "configMapKeyRef"))
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
                Some(text) => {
                    let (divergent, bad_keys) = yaml11_divergences(text);
                    let divergent: Vec<String> = divergent
                        .into_iter()
                        .map(|d| format!("{cm_name}/{key} {d}"))
                        .collect();
                    violations.extend(bad_keys);
                    match parse_config_text(text) {
                        Ok(v) => file_config = v,
                        // `.inf` is refused here but a float to PyYAML: undecided, below.
                        Err(_) if !divergent.is_empty() => {}
                        Err(mut e) => {
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
        file_config = parse_config_text(DEFAULT_CONFIG_TEXT).unwrap_or_default();
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
    // dropped), typed by `_parse_env_value`. No exception: MLSDM_MAX_CONCURRENT,
    // MLSDM_QUEUE_TIMEOUT and MLSDM_REQUEST_TIMEOUT, read by the bulkhead middleware, are merged
    // too and crash start-up (measured on 1.2.0).
    for (name, e) in &env {
        let Some(rest) = name.strip_prefix("MLSDM_") else {
            continue;
        };
        let path: Vec<String> = rest
            .to_lowercase()
            .split("__")
            .filter(|p| !p.is_empty())
            .map(str::to_string)
            .collect();
        if path.is_empty() {
            continue;
        }
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
        "configViolations": violations,
        "configUndecided": undecided,
        "envFromUnresolved": env_from_unresolved,
        "runningDimension": running_dimension,
    })
}

/// The image's `config/default_config.yaml` (MLSDM 1.2.0), loaded when `CONFIG_PATH` is unset.
const DEFAULT_CONFIG_TEXT: &str = include_str!("mlsdm_default_config.yaml");

/// `yaml.safe_load(f) or {}` (config_loader.py:318-325): an empty or falsy document is `{}`; any
/// other non-mapping makes `SystemConfig(**config)` fail.
/// What PyYAML's `SafeLoader` (YAML 1.1 resolvers, `yaml/resolver.py`) makes of a plain scalar;
/// `None` for what JSON cannot hold (timestamps, infinities, NaN).
fn pyyaml_plain(s: &str) -> Option<Value> {
    let digits =
        |t: &str, ok: fn(u8) -> bool| !t.is_empty() && t.bytes().all(|c| c == b'_' || ok(c));
    match s {
        "" | "~" | "null" | "Null" | "NULL" => return Some(Value::Null),
        "yes" | "Yes" | "YES" | "true" | "True" | "TRUE" | "on" | "On" | "ON" => {
            return Some(Value::Bool(true));
        }
        "no" | "No" | "NO" | "false" | "False" | "FALSE" | "off" | "Off" | "OFF" => {
            return Some(Value::Bool(false));
        }
        _ => {}
    }
    let (neg, body) = match s.as_bytes().first() {
        Some(b'-') => (true, &s[1..]),
        Some(b'+') => (false, &s[1..]),
        _ => (false, s),
    };
    let plain: String = body.chars().filter(|c| *c != '_').collect();
    let int = |v: Option<i64>| v.map(|v| json!(if neg { -v } else { v }));
    if let Some(b) = body.strip_prefix("0b") {
        return if digits(b, |c| matches!(c, b'0' | b'1')) {
            int(i64::from_str_radix(&plain[2..], 2).ok())
        } else {
            Some(json!(s))
        };
    }
    if let Some(h) = body.strip_prefix("0x") {
        return if digits(h, |c| c.is_ascii_hexdigit()) {
            int(i64::from_str_radix(&plain[2..], 16).ok())
        } else {
            Some(json!(s))
        };
    }
    if body.len() > 1 && body.starts_with('0') && digits(&body[1..], |c| (b'0'..=b'7').contains(&c))
    {
        return int(i64::from_str_radix(&plain[1..], 8).ok());
    }
    if body == "0"
        || (body.starts_with(|c: char| c.is_ascii_digit() && c != '0')
            && digits(body, |c| c.is_ascii_digit()))
    {
        return int(plain.parse().ok());
    }
    // Sexagesimal (`1:30`), timestamps, `.inf` and `.nan`: not modelled.
    if body.contains(':') && body.starts_with(|c: char| c.is_ascii_digit()) {
        return None;
    }
    if s.len() >= 8 && s.as_bytes()[4] == b'-' && s[..4].bytes().all(|c| c.is_ascii_digit()) {
        return None;
    }
    if matches!(body, ".inf" | ".Inf" | ".INF") || matches!(s, ".nan" | ".NaN" | ".NAN") {
        return None;
    }
    // `[0-9][0-9_]*\.[0-9_]*([eE][-+][0-9]+)?` or `\.[0-9][0-9_]*([eE][-+][0-9]+)?`
    let (mantissa, exponent) = match body.find(['e', 'E']) {
        Some(i) => (&body[..i], Some(&body[i + 1..])),
        None => (body, None),
    };
    let float = mantissa.split_once('.').is_some_and(|(a, b)| {
        let a_ok = if a.is_empty() {
            b.starts_with(|c: char| c.is_ascii_digit())
        } else {
            a.starts_with(|c: char| c.is_ascii_digit()) && digits(a, |c| c.is_ascii_digit())
        };
        a_ok && (b.is_empty() || digits(b, |c| c.is_ascii_digit()))
    }) && exponent.is_none_or(|e| {
        e.starts_with(['-', '+']) && e.len() > 1 && e[1..].bytes().all(|c| c.is_ascii_digit())
    });
    if float {
        let v: f64 = plain.parse().ok()?;
        return serde_json::Number::from_f64(if neg { -v } else { v }).map(Value::Number);
    }
    Some(json!(s))
}

/// Plain scalars that PyYAML (YAML 1.1, what MLSDM loads its config with) and this crate's
/// YAML 1.2 parser read as different values (`y`, `1e3`, `012`, `1:30`, a date...): the config
/// MLSDM validates is then not the one audited, so these make the result undecided (first list).
/// The second list: keys of `neuro_hybrid.module_overrides` that PyYAML reads as something other
/// than a string, which its `dict[str, bool]` refuses (config_schema.py:177-180); the JSON model
/// here turns every key into a string, so they are found on the text.
fn yaml11_divergences(text: &str) -> (Vec<String>, Vec<String>) {
    use granit_parser::Event;
    // (is a mapping, the next node is a key, the current key)
    let mut stack: Vec<(bool, bool, Option<String>)> = Vec::new();
    let (mut divergent, mut bad_keys) = (Vec::new(), Vec::new());
    for event in granit_parser::Parser::new_from_str(text) {
        let Ok((event, span)) = event else { break };
        let node = matches!(
            event,
            Event::Scalar(..)
                | Event::Alias(_)
                | Event::MappingStart(..)
                | Event::SequenceStart(..)
        );
        let mut is_key = false;
        if node && let Some((true, key_next, key)) = stack.last_mut() {
            is_key = *key_next;
            *key_next = !*key_next;
            if is_key {
                *key = None;
            }
        }
        match event {
            Event::MappingStart(..) => stack.push((true, true, None)),
            Event::SequenceStart(..) => stack.push((false, false, None)),
            Event::MappingEnd | Event::SequenceEnd => {
                stack.pop();
            }
            Event::Scalar(v, style, _, tag) => {
                let plain = style == granit_parser::ScalarStyle::Plain && tag.is_none();
                let theirs = if plain {
                    pyyaml_plain(&v)
                } else {
                    Some(json!(v.as_ref()))
                };
                if plain {
                    let ours =
                        serde_saphyr::from_str::<Value>(&v).unwrap_or_else(|_| json!(v.as_ref()));
                    let same = match (&theirs, &ours) {
                        (Some(Value::Number(a)), Value::Number(b)) => a.as_f64() == b.as_f64(),
                        (Some(theirs), ours) => theirs == ours,
                        (None, _) => false,
                    };
                    if !same {
                        divergent.push(format!(
                            "line {}: the plain value `{v}` reads differently in YAML 1.1 (PyYAML, which MLSDM uses) and YAML 1.2; quote it or write it unambiguously",
                            span.start.line()
                        ));
                    }
                }
                if is_key {
                    let path: Vec<&str> = stack[..stack.len() - 1]
                        .iter()
                        .filter_map(|(_, _, k)| k.as_deref())
                        .collect();
                    if path == ["neuro_hybrid", "module_overrides"]
                        && !theirs.as_ref().is_some_and(Value::is_string)
                    {
                        bad_keys.push(format!(
                            "neuro_hybrid.module_overrides key `{v}` (line {}) is not a string to PyYAML: must be a mapping of names to booleans (config_schema.py:177-180)",
                            span.start.line()
                        ));
                    }
                    if let Some((_, _, key)) = stack.last_mut() {
                        *key = Some(v.to_string());
                    }
                }
            }
            _ => {}
        }
    }
    (divergent, bad_keys)
}

/// PyYAML keeps the last of duplicate keys, so the later value is the one MLSDM validates.
/// An error has the place in the text and no file: the caller names the ConfigMap key.
fn parse_config_text(text: &str) -> Result<Value, crate::diag::Diagnostic> {
    let mut options = serde_saphyr::Options::default();
    options.duplicate_keys = serde_saphyr::DuplicateKeyPolicy::LastWins;
    match serde_saphyr::from_str_with_options::<Value>(text, options) {
        Ok(v @ Value::Object(_)) => Ok(v),
        Ok(Value::Null | Value::Bool(false)) => Ok(json!({})),
        Ok(Value::String(s)) if s.is_empty() => Ok(json!({})),
        Ok(Value::Array(a)) if a.is_empty() => Ok(json!({})),
        Ok(Value::Number(n)) if n.as_f64() == Some(0.0) => Ok(json!({})),
        Ok(_) => Err(crate::diag::Diagnostic::file("", "not a YAML mapping")),
        Err(e) => Err(crate::diag::Diagnostic::yaml("", &e)),
    }
}

// ---------------------------------------------------------------------------------------------
// MLSDM 1.2.0's value rules, in one table.
//
// Upstream: `src/mlsdm/utils/config_schema.py` (pydantic v2 `SystemConfig`, lax mode: numeric
// strings and bools coerce to numbers, `extra="forbid"` on the top level only, sub-sections
// ignore unknown keys), `src/mlsdm/utils/config_loader.py` (`load_config`: YAML `or {}`, the
// `MLSDM_*` merge and `_parse_env_value`), and the constructors `api/app.py:121-130` runs on the
// validated dump: `core/memory_manager.py:128-160` -> `memory/multi_level_memory.py:281-296`
// (decay rates must be > 0, which the schema's `ge=0` lets through), `cognition/moral_filter.py`,
// `rhythm/cognitive_rhythm.py` (both implied by the schema's bounds).
// Any rule broken here makes uvicorn exit with "Application startup failed".
// ---------------------------------------------------------------------------------------------

/// The type and bounds of one field, as pydantic coerces and checks it.
#[derive(Clone, Copy)]
enum Kind {
    /// A nested model: must be a mapping (a YAML `section:` with nothing under it is null: refused).
    Section,
    /// `int` with `ge`/`le`.
    Int(i64, i64),
    /// `float` with `ge` (or `gt` when the bool is true) and an optional `le`.
    Float(f64, bool, Option<f64>),
    Bool,
    /// `str`, one of the values (`lowercase`: compared lowercased), optionally `| None`.
    Enum(&'static [&'static str], bool, bool),
    /// `str | None`.
    OptStr,
    /// `list[list[float]]`, non-empty, all rows the same length.
    Vectors,
    /// `list[str] | None`.
    OptStrList,
    /// `dict[str, bool]`.
    BoolMap,
}

/// (field path, kind, upstream source lines).
const FIELD_RULES: &[(&str, Kind, &str)] = &[
    ("dimension", Kind::Int(2, 4096), "config_schema.py:426-431"),
    ("strict_mode", Kind::Bool, "config_schema.py:466-469"),
    (
        "drift_logging",
        Kind::Enum(&["silent", "verbose"], false, true),
        "config_schema.py:478-499",
    ),
    (
        "multi_level_memory",
        Kind::Section,
        "config_schema.py:432-435",
    ),
    (
        "multi_level_memory.lambda_l1",
        Kind::Float(0.0, true, Some(1.0)),
        "config_schema.py:24-29, multi_level_memory.py:283",
    ),
    (
        "multi_level_memory.lambda_l2",
        Kind::Float(0.0, true, Some(1.0)),
        "config_schema.py:30-35, multi_level_memory.py:285",
    ),
    (
        "multi_level_memory.lambda_l3",
        Kind::Float(0.0, true, Some(1.0)),
        "config_schema.py:36-41, multi_level_memory.py:287",
    ),
    (
        "multi_level_memory.theta_l1",
        Kind::Float(0.0, false, None),
        "config_schema.py:42-44",
    ),
    (
        "multi_level_memory.theta_l2",
        Kind::Float(0.0, false, None),
        "config_schema.py:45-47",
    ),
    (
        "multi_level_memory.gating12",
        Kind::Float(0.0, false, Some(1.0)),
        "config_schema.py:48-50",
    ),
    (
        "multi_level_memory.gating23",
        Kind::Float(0.0, false, Some(1.0)),
        "config_schema.py:51-53",
    ),
    ("moral_filter", Kind::Section, "config_schema.py:436-439"),
    (
        "moral_filter.threshold",
        Kind::Float(0.1, false, Some(0.9)),
        "config_schema.py:85-90",
    ),
    (
        "moral_filter.adapt_rate",
        Kind::Float(0.0, false, Some(0.5)),
        "config_schema.py:91-96",
    ),
    (
        "moral_filter.min_threshold",
        Kind::Float(0.1, false, Some(0.9)),
        "config_schema.py:97-99",
    ),
    (
        "moral_filter.max_threshold",
        Kind::Float(0.1, false, Some(0.99)),
        "config_schema.py:100-102",
    ),
    (
        "ontology_matcher",
        Kind::Section,
        "config_schema.py:440-442",
    ),
    (
        "ontology_matcher.ontology_vectors",
        Kind::Vectors,
        "config_schema.py:126-145",
    ),
    (
        "ontology_matcher.ontology_labels",
        Kind::OptStrList,
        "config_schema.py:130-132",
    ),
    (
        "cognitive_rhythm",
        Kind::Section,
        "config_schema.py:443-446",
    ),
    (
        "cognitive_rhythm.wake_duration",
        Kind::Int(1, 100),
        "config_schema.py:189-191",
    ),
    (
        "cognitive_rhythm.sleep_duration",
        Kind::Int(1, 100),
        "config_schema.py:192-194",
    ),
    ("aphasia", Kind::Section, "config_schema.py:447-450"),
    ("aphasia.detect_enabled", Kind::Bool, "config_schema.py:224"),
    (
        "aphasia.repair_enabled",
        Kind::Bool,
        "config_schema.py:225-227",
    ),
    (
        "aphasia.severity_threshold",
        Kind::Float(0.0, false, Some(1.0)),
        "config_schema.py:228-238",
    ),
    ("neurolang", Kind::Section, "config_schema.py:451-453"),
    (
        "neurolang.mode",
        Kind::Enum(&["disabled", "eager_train", "lazy_train"], false, false),
        "config_schema.py:248-266",
    ),
    (
        "neurolang.checkpoint_path",
        Kind::OptStr,
        "config_schema.py:252-254",
    ),
    ("neuro_hybrid", Kind::Section, "config_schema.py:454-457"),
    (
        "neuro_hybrid.enable_hybrid",
        Kind::Bool,
        "config_schema.py:165-168",
    ),
    (
        "neuro_hybrid.enable_learning",
        Kind::Bool,
        "config_schema.py:169-172",
    ),
    (
        "neuro_hybrid.enable_regime",
        Kind::Bool,
        "config_schema.py:173-176",
    ),
    (
        "neuro_hybrid.module_overrides",
        Kind::BoolMap,
        "config_schema.py:177-180",
    ),
    ("pelm", Kind::Section, "config_schema.py:458-461"),
    (
        "pelm.capacity",
        Kind::Int(100, 1_000_000),
        "config_schema.py:276-281",
    ),
    (
        "pelm.phase_tolerance",
        Kind::Float(0.0, false, Some(1.0)),
        "config_schema.py:282-287",
    ),
    (
        "synergy_experience",
        Kind::Section,
        "config_schema.py:462-465",
    ),
    (
        "synergy_experience.epsilon",
        Kind::Float(0.0, false, Some(1.0)),
        "config_schema.py:309-314",
    ),
    (
        "synergy_experience.neutral_tolerance",
        Kind::Float(0.0, false, Some(0.5)),
        "config_schema.py:315-320",
    ),
    (
        "synergy_experience.min_trials_for_confidence",
        Kind::Int(1, 100),
        "config_schema.py:321-323",
    ),
    (
        "synergy_experience.ema_alpha",
        Kind::Float(0.0, false, Some(1.0)),
        "config_schema.py:324-329",
    ),
    (
        "cognitive_controller",
        Kind::Section,
        "config_schema.py:470-473",
    ),
    (
        "cognitive_controller.auto_recovery_enabled",
        Kind::Bool,
        "config_schema.py:356-358",
    ),
    (
        "cognitive_controller.auto_recovery_cooldown_seconds",
        Kind::Float(0.0, false, Some(3600.0)),
        "config_schema.py:359-364",
    ),
    ("api", Kind::Section, "config_schema.py:474-477"),
    (
        "api.request_timeout_seconds",
        Kind::Float(0.1, false, Some(600.0)),
        "config_schema.py:403-408",
    ),
    (
        "api.max_concurrent_requests",
        Kind::Int(1, 10000),
        "config_schema.py:409-411",
    ),
    (
        "api.queue_timeout_seconds",
        Kind::Float(0.0, false, Some(60.0)),
        "config_schema.py:412-414",
    ),
    ("api.priority", Kind::Section, "config_schema.py:415-417"),
    ("api.priority.enabled", Kind::Bool, "config_schema.py:373"),
    (
        "api.priority.default_priority",
        Kind::Enum(&["high", "low", "normal"], true, false),
        "config_schema.py:374-394",
    ),
    (
        "api.priority.high_weight",
        Kind::Int(1, 10),
        "config_schema.py:377-379",
    ),
    (
        "api.priority.normal_weight",
        Kind::Int(1, 10),
        "config_schema.py:380-382",
    ),
    (
        "api.priority.low_weight",
        Kind::Int(1, 10),
        "config_schema.py:383",
    ),
];

/// Cross-field rules: (fields, with their defaults when absent; upstream lines; the rule, given
/// the fields' values in order: `Some(why)` when broken). Each runs only when its fields passed
/// their own rules, as pydantic's `mode="after"` validators do.
type CrossRule = (
    &'static [(&'static str, f64)],
    &'static str,
    fn(&[f64]) -> Option<String>,
);
const CROSS_RULES: &[CrossRule] = &[
    (
        &[
            ("multi_level_memory.lambda_l1", 0.5),
            ("multi_level_memory.lambda_l2", 0.1),
            ("multi_level_memory.lambda_l3", 0.01),
        ],
        "config_schema.py:55-64",
        |v| {
            (!(v[2] <= v[1] && v[1] <= v[0])).then(|| {
                format!(
                    "decay rates must follow lambda_l3 ({}) <= lambda_l2 ({}) <= lambda_l1 ({})",
                    v[2], v[1], v[0]
                )
            })
        },
    ),
    (
        &[
            ("multi_level_memory.theta_l1", 1.0),
            ("multi_level_memory.theta_l2", 2.0),
        ],
        "config_schema.py:66-75",
        |v| (v[1] <= v[0]).then(|| format!("theta_l2 ({}) must be > theta_l1 ({})", v[1], v[0])),
    ),
    (
        &[
            ("moral_filter.min_threshold", 0.3),
            ("moral_filter.max_threshold", 0.9),
        ],
        "config_schema.py:111-112",
        |v| {
            (v[0] >= v[1]).then(|| {
                format!(
                    "moral_filter.min_threshold ({}) must be < max_threshold ({})",
                    v[0], v[1]
                )
            })
        },
    ),
    (
        &[
            ("moral_filter.min_threshold", 0.3),
            ("moral_filter.max_threshold", 0.9),
            ("moral_filter.threshold", 0.5),
        ],
        "config_schema.py:114-118",
        |v| {
            if v[0] >= v[1] {
                None // reported by the rule above, which pydantic raises first
            } else if v[2] < v[0] {
                Some(format!(
                    "moral_filter.threshold ({}) must be >= min_threshold ({})",
                    v[2], v[0]
                ))
            } else if v[2] > v[1] {
                Some(format!(
                    "moral_filter.threshold ({}) must be <= max_threshold ({})",
                    v[2], v[1]
                ))
            } else {
                None
            }
        },
    ),
];
// Two more cross-field rules need lists, so they are in `validate_config`: the number of
// `ontology_labels` must equal the number of `ontology_vectors` (config_schema.py:147-159), and
// the ontology vectors' length must equal `dimension` (config_schema.py:501-517): the default
// ontology is two 384-long vectors (config_schema.py:126-129), so any other dimension needs its
// own `ontology_matcher.ontology_vectors`.
const DEFAULT_DIMENSION: i64 = 384;
const DEFAULT_ONTOLOGY_DIMENSION: usize = 384;

fn show(v: &Value) -> String {
    match v {
        Value::String(s) => format!("{s:?}"),
        other => other.to_string(),
    }
}

/// Python's `int()` / `float()` literal grammar, enough for what pydantic and
/// `_parse_env_value` accept: surrounding whitespace, a sign, `_` between digits.
fn python_digits(s: &str) -> Option<String> {
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

fn python_int(s: &str) -> Option<i64> {
    let t = python_digits(s.trim())?;
    let digits = t.strip_prefix(['+', '-']).unwrap_or(&t);
    if digits.is_empty() || !digits.bytes().all(|c| c.is_ascii_digit()) {
        return None;
    }
    t.parse::<i64>().ok()
}

fn python_float(s: &str) -> Option<f64> {
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
fn parse_env_value(s: &str) -> Value {
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
fn as_int(v: &Value) -> Option<i64> {
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
fn as_float(v: &Value) -> Option<f64> {
    match v {
        Value::Bool(b) => Some(f64::from(u8::from(*b))),
        Value::Number(n) => n.as_f64(),
        Value::String(s) => python_float(s),
        _ => None,
    }
}

/// pydantic's lax `bool`: bools, 0/1, and the words it knows.
fn as_bool(v: &Value) -> Option<bool> {
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

fn lookup<'a>(config: &'a Value, path: &str) -> Option<&'a Value> {
    path.split('.')
        .try_fold(config, |node, part| node.as_object()?.get(part))
}

/// Checks one present value against its kind: `Err(why)` when pydantic or MLSDM refuses it.
/// For numbers, `Ok(Some(x))` hands the coerced value to the cross-field rules.
fn check_field(kind: Kind, v: &Value) -> Result<Option<f64>, String> {
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

#[cfg(test)]
mod detection {
    use serde_json::json;

    /// This tool's own image and variables are not MLSDM's (an audit of a namespace that runs
    /// the in-cluster CronJob as a Deployment probed the auditor as the service).
    #[test]
    fn the_auditor_is_not_mlsdm() {
        for (container, want) in [
            (
                json!({"image": "ghcr.io/neuron7x/mlsdm-neuro-engine:1.2.0"}),
                true,
            ),
            (
                json!({"image": "registry.example:5000/team/mlsdm@sha256:abc"}),
                true,
            ),
            (
                json!({"image": "ghcr.io/neuron7x/mlsdm-audit:0.1.0"}),
                false,
            ),
            (json!({"image": "mlsdm-audit"}), false),
            (json!({"image": "ghcr.io/mlsdm-team/redis:7"}), false),
            (
                json!({"image": "x", "env": [{"name": "MLSDM_AUDIT_KEY_PASSPHRASE"}]}),
                false,
            ),
            (
                json!({"image": "x", "env": [{"name": "MLSDM_ENV", "value": "prod"}]}),
                true,
            ),
            (
                json!({"image": "x", "env": [{"name": "LLM_BACKEND", "value": "local"}]}),
                true,
            ),
        ] {
            assert_eq!(super::runs_mlsdm(&container), want, "{container}");
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn broken(yaml: &str) -> Vec<String> {
        validate_config(&parse_config_text(yaml).unwrap())
    }

    #[test]
    fn accepted_configs_break_no_rule() {
        for ok in [
            "",
            "dimension: 384\nstrict_mode: true\npelm:\n  capacity: 20000\nmoral_filter:\n  threshold: 0.5\n  adapt_rate: 0.05\n  min_threshold: 0.3\n  max_threshold: 0.9\ncognitive_rhythm:\n  wake_duration: 8\n  sleep_duration: 3\n",
            DEFAULT_CONFIG_TEXT,
            "moral_filter:\n  threshold: 0.9\n",
            "moral_filter:\n  threshold: '0.1'\n  min_threshold: 0.1\n",
            "pelm:\n  capacity: 100\n",
            "pelm:\n  capacity: 99\npelm:\n  capacity: 100\n",
            "pelm:\n  capacity: 1000000\n  unknown_sub_key: 1\n",
            "dimension: 2\nontology_matcher:\n  ontology_vectors: [[1, 0], [0, 1]]\n",
            "dimension: 384.0\n",
            "multi_level_memory:\n  lambda_l1: 1\n  lambda_l2: 1\n  lambda_l3: 1\n",
            "api:\n  priority:\n    default_priority: HIGH\n",
            "drift_logging: null\nneurolang:\n  mode: disabled\n  checkpoint_path: null\n",
        ] {
            assert_eq!(broken(ok), Vec::<String>::new(), "{ok}");
        }
    }

    #[test]
    fn refused_configs_name_the_field_and_the_rule() {
        for (bad, want) in [
            (
                "dimension: 768\n",
                "ontology vector dimension (384) (the default ontology) must match dimension (768)",
            ),
            (
                "moral_filter:\n  threshold: 0.95\n",
                "moral_filter.threshold = 0.95: must be >= 0.1 and <= 0.9",
            ),
            (
                "moral_filter:\n  threshold: 0.2\n",
                "moral_filter.threshold (0.2) must be >= min_threshold (0.3)",
            ),
            (
                "moral_filter:\n  min_threshold: 0.9\n",
                "moral_filter.min_threshold (0.9) must be < max_threshold (0.9)",
            ),
            ("dimension: 1\n", "dimension = 1: must be in 2..4096"),
            ("dimension: 4097\n", "dimension = 4097: must be in 2..4096"),
            (
                "dimension: 384.5\n",
                "dimension = 384.5: must be an integer",
            ),
            ("dimension:\n", "dimension = null: must be an integer"),
            (
                "pelm:\n  capacity: 99\n",
                "pelm.capacity = 99: must be in 100..1000000",
            ),
            ("pelm:\n", "pelm = null: must be a mapping"),
            (
                "multi_level_memory:\n  lambda_l3: 0\n",
                "multi_level_memory.lambda_l3 = 0: must be > 0 and <= 1",
            ),
            (
                "multi_level_memory:\n  lambda_l2: 0.6\n",
                "decay rates must follow",
            ),
            (
                "multi_level_memory:\n  theta_l1: 2.0\n",
                "theta_l2 (2) must be > theta_l1 (2)",
            ),
            (
                "cognitive_rhythm:\n  wake_duration: 0\n",
                "cognitive_rhythm.wake_duration = 0: must be in 1..100",
            ),
            (
                "neurolang:\n  mode: lazy\n",
                "neurolang.mode = \"lazy\": must be one of",
            ),
            (
                "drift_logging: quiet\n",
                "drift_logging = \"quiet\": must be one of silent, verbose",
            ),
            (
                "strict_mode: maybe\n",
                "strict_mode = \"maybe\": must be a boolean",
            ),
            (
                "ontology_matcher:\n  ontology_vectors: []\n",
                "cannot be empty",
            ),
            (
                "ontology_matcher:\n  ontology_vectors: [[1, 0], [1]]\n",
                "same length",
            ),
            (
                "dimension: 2\nontology_matcher:\n  ontology_vectors: [[1, 0]]\n  ontology_labels: [a, b]\n",
                "number of ontology_labels (2)",
            ),
            (
                "ontology_matcher:\n  ontology_labels: [1, 2]\n",
                "must be a list of strings",
            ),
            (
                "api:\n  max_concurrent_requests: 0\n",
                "api.max_concurrent_requests = 0: must be in 1..10000",
            ),
        ] {
            let got = broken(bad);
            assert!(
                got.iter().any(|m| m.contains(want)),
                "{bad:?}: want {want:?}, got {got:?}"
            );
            assert!(
                got.iter().all(|m| m.contains(".py:")),
                "{got:?} cites upstream lines"
            );
        }
    }

    #[test]
    fn plain_scalars_read_differently_by_yaml_1_1_are_found() {
        let text = "a: y\nb: 1e3\nc: 012\nd: 1:30\ne: 2024-01-01\nf: .inf\ng: 0o7\nh: 1.0e+3\n\
                    i: 'y'\nj: yes\nk: 1_000\nl: 0.5\nm: 384\nkey: -0.25\no: ~\np: 0x1F\nq: text\nN: 1\n";
        let found = yaml11_divergences(text).0;
        let lines: Vec<&str> = found.iter().map(|d| d.split(':').next().unwrap()).collect();
        // `N` as a key is a boolean to YAML 1.2's parser here, a string to PyYAML.
        assert_eq!(
            lines,
            [
                "line 1", "line 2", "line 3", "line 4", "line 5", "line 6", "line 7", "line 18"
            ],
            "{found:?}"
        );
        assert_eq!(yaml11_divergences(DEFAULT_CONFIG_TEXT), (vec![], vec![]));
        let (_, keys) = yaml11_divergences(
            "neuro_hybrid:
  module_overrides:
    1: true
    'two': true
    three: true
pelm:
  1: 2
",
        );
        assert_eq!(keys.len(), 1, "{keys:?}");
        assert!(keys[0].contains("key `1` (line 3)"), "{keys:?}");
    }

    #[test]
    fn env_values_are_typed_as_mlsdm_types_them() {
        assert_eq!(parse_env_value("1"), json!(true));
        assert_eq!(parse_env_value("0"), json!(false));
        assert_eq!(parse_env_value("Yes"), json!(true));
        assert_eq!(parse_env_value("768"), json!(768));
        assert_eq!(parse_env_value(" 1_000 "), json!(1000));
        assert_eq!(parse_env_value("0.95"), json!(0.95));
        assert_eq!(parse_env_value("1e3"), json!(1000.0));
        assert_eq!(parse_env_value("nan"), json!("nan"));
        assert_eq!(parse_env_value("verbose"), json!("verbose"));
        assert_eq!(as_float(&json!("nan")).map(f64::is_nan), Some(true));
        let nan = validate_config(&json!({"moral_filter": {"threshold": "nan"}}));
        assert!(nan[0].starts_with("moral_filter.threshold"), "{nan:?}");
    }
}
