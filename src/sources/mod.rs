//! Everything that gathers facts for the checks, and the facts themselves.
//!
//! Derived facts that CEL alone cannot compute well (which objects relate to a workload, MLSDM's
//! effective configuration, what a Secret holds without revealing it) are computed here, once per
//! object and only when a check asks for them, then handed to expressions as plain values.

pub mod attestations;
pub mod http;
pub mod kube;
pub mod manifests;
pub mod mlsdm;
pub mod render;
pub mod selector;

use crate::checks::Source;
use crate::checks::cel::json_to_cel;
use cel::objects::Value as CelValue;
use serde::Serialize;
use serde_json::{Map, Value, json};
use std::collections::{BTreeMap, BTreeSet};
use std::sync::OnceLock;

/// Kinds that run MLSDM pods (Argo Rollouts' `Rollout` counts as a Deployment-like workload).
pub const WORKLOAD_KINDS: &[&str] = &["Deployment", "StatefulSet", "DaemonSet", "Rollout"];

const CLUSTER_SCOPED: &[&str] = &[
    "Namespace",
    "ClusterRole",
    "ClusterRoleBinding",
    "CustomResourceDefinition",
    "PersistentVolume",
    "StorageClass",
    "Node",
    "PriorityClass",
    "IngressClass",
    "ValidatingWebhookConfiguration",
    "MutatingWebhookConfiguration",
];

/// Where a manifest object was read from.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, serde::Deserialize, PartialOrd, Ord)]
pub struct Location {
    pub file: String,
    pub line: u64,
}

/// One Kubernetes object. Secret values are replaced by summaries before anything can see them.
#[derive(Clone, Debug)]
pub struct Object {
    pub api_version: String,
    pub kind: String,
    pub namespace: Option<String>,
    pub name: String,
    pub json: Value,
    pub location: Option<Location>,
    /// Secret values and credential-looking literals found in this object, for redaction.
    pub sensitive: Vec<String>,
    /// Position in `Facts::objects`, set when the facts are built.
    pub slot: usize,
}

impl Object {
    pub fn new(
        api_version: String,
        kind: String,
        namespace: Option<String>,
        name: String,
        json: Value,
        location: Option<Location>,
    ) -> Self {
        let namespace = if CLUSTER_SCOPED.contains(&kind.as_str()) {
            None
        } else {
            namespace
        };
        let mut obj = Self {
            api_version,
            kind,
            namespace,
            name,
            json,
            location,
            sensitive: Vec::new(),
            slot: 0,
        };
        obj.sensitive = redact(&mut obj);
        obj
    }

    pub fn is_workload(&self) -> bool {
        WORKLOAD_KINDS.contains(&self.kind.as_str())
    }

    /// Labels of the pods this workload creates.
    pub fn pod_labels(&self) -> Value {
        self.json
            .pointer("/spec/template/metadata/labels")
            .cloned()
            .unwrap_or_else(|| json!({}))
    }

    pub fn labels(&self) -> Value {
        self.json
            .pointer("/metadata/labels")
            .cloned()
            .unwrap_or_else(|| json!({}))
    }

    pub fn pod_spec(&self) -> Option<&Value> {
        self.json.pointer("/spec/template/spec")
    }

    /// `Kind/namespace/name`, the form waivers and messages use.
    pub fn reference(&self) -> String {
        match &self.namespace {
            Some(ns) => format!("{}/{}/{}", self.kind, ns, self.name),
            None => format!("{}/{}", self.kind, self.name),
        }
    }
}

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
fn redact(obj: &mut Object) -> Vec<String> {
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
    } else if obj.kind == "ConfigMap"
        && let Some(data) = obj.json.get("data").and_then(Value::as_object)
    {
        for (k, v) in data {
            if let Some(s) = v.as_str()
                && ((is_credential_key(k) && s.len() >= 4) || looks_like_credential(s))
            {
                sensitive.push(s.to_string());
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

/// Everything the engine evaluates against: the objects plus which sources this run has.
pub struct Facts {
    pub objects: Vec<Object>,
    pub sources: BTreeSet<Source>,
    /// `--selector`: which workloads count as MLSDM (default: all).
    pub workload_selector: Option<Value>,
    /// What the audit looked at, for messages ("in the audited manifests").
    pub origin: String,
    /// Responses and metric samples from the running service.
    pub service: http::ServiceFacts,
    pub endpoints: Vec<String>,
    pub prometheus: Option<String>,
    /// Live mode: kinds that could not be listed (403 or server error), with why.
    pub kind_errors: BTreeMap<String, String>,
    /// Live mode: kinds the cluster does not serve (CRDs not installed).
    pub missing_kinds: BTreeSet<String>,
    /// `params` in expressions: `expectImage`, `expectVersion`.
    pub params: Value,
    /// (kind, namespace) -> slots, and kind -> slots: relations are looked up, not scanned.
    by_kind_ns: std::collections::HashMap<(String, Option<String>), Vec<usize>>,
    by_kind: std::collections::HashMap<String, Vec<usize>>,
    cel_objects: Vec<OnceLock<CelValue>>,
    related: Vec<OnceLock<CelValue>>,
    mlsdm: Vec<OnceLock<CelValue>>,
}

impl Facts {
    pub fn new(
        objects: Vec<Object>,
        sources: BTreeSet<Source>,
        workload_selector: Option<Value>,
        origin: &str,
    ) -> Self {
        let mut objects = objects;
        let mut by_kind_ns: std::collections::HashMap<(String, Option<String>), Vec<usize>> =
            std::collections::HashMap::new();
        let mut by_kind: std::collections::HashMap<String, Vec<usize>> =
            std::collections::HashMap::new();
        for (slot, o) in objects.iter_mut().enumerate() {
            o.slot = slot;
            by_kind_ns
                .entry((o.kind.clone(), o.namespace.clone()))
                .or_default()
                .push(slot);
            by_kind.entry(o.kind.clone()).or_default().push(slot);
        }
        let n = objects.len();
        let mut redactions: Vec<&str> = objects
            .iter()
            .flat_map(|o| o.sensitive.iter().map(String::as_str))
            .collect();
        redactions.sort_unstable();
        redactions.dedup();
        for r in redactions {
            crate::redact::register(r);
        }
        Self {
            objects,
            sources,
            workload_selector,
            origin: origin.to_string(),
            service: http::ServiceFacts::default(),
            endpoints: Vec::new(),
            prometheus: None,
            kind_errors: BTreeMap::new(),
            missing_kinds: BTreeSet::new(),
            params: json!({"expectImage": null, "expectVersion": null}),
            by_kind_ns,
            by_kind,
            cel_objects: (0..n).map(|_| OnceLock::new()).collect(),
            related: (0..n).map(|_| OnceLock::new()).collect(),
            mlsdm: (0..n).map(|_| OnceLock::new()).collect(),
        }
    }

    /// In-scope workloads that run MLSDM (a container with MLSDM's variables or image).
    pub fn mlsdm_workloads(&self) -> impl Iterator<Item = &Object> {
        self.objects
            .iter()
            .filter(|o| o.is_workload() && self.in_scope(o))
            .filter(|o| {
                o.pod_spec()
                    .and_then(|s| s.get("containers"))
                    .and_then(Value::as_array)
                    .is_some_and(|cs| {
                        cs.iter().any(|c| {
                            c.get("image")
                                .and_then(Value::as_str)
                                .is_some_and(|i| i.contains("mlsdm") || i.contains("neuro-engine"))
                                || c.get("env").and_then(Value::as_array).is_some_and(|env| {
                                    env.iter().any(|e| {
                                        e.get("name").and_then(Value::as_str).is_some_and(|n| {
                                            ["CONFIG_PATH", "LLM_BACKEND", "API_KEY"].contains(&n)
                                                || n.starts_with("MLSDM_")
                                        })
                                    })
                                })
                        })
                    })
            })
    }

    /// The Services and running Pods of the MLSDM workloads, to probe through the API server.
    pub fn proxy_targets(&self) -> Vec<http::ProxyTarget> {
        let mut out = Vec::new();
        for w in self.mlsdm_workloads() {
            let ns = w.namespace.clone().unwrap_or_else(|| "default".into());
            for svc in self.services_for(w) {
                let ports = svc
                    .json
                    .pointer("/spec/ports")
                    .and_then(Value::as_array)
                    .cloned()
                    .unwrap_or_default();
                let port = ports
                    .iter()
                    .find(|p| {
                        p.get("name").and_then(Value::as_str) == Some("http")
                            || p.get("targetPort") == Some(&json!(8000))
                    })
                    .or_else(|| ports.first())
                    .and_then(|p| {
                        p.get("name")
                            .and_then(Value::as_str)
                            .map(str::to_string)
                            .or_else(|| p.get("port").map(ToString::to_string))
                    });
                if let Some(port) = port {
                    out.push(http::ProxyTarget {
                        workload: w.slot,
                        kind: "Service".into(),
                        namespace: ns.clone(),
                        name: svc.name.clone(),
                        port,
                    });
                }
            }
            let selector = w
                .json
                .pointer("/spec/selector")
                .cloned()
                .unwrap_or(Value::Null);
            let container_port = w
                .pod_spec()
                .and_then(|s| s.get("containers"))
                .and_then(Value::as_array)
                .and_then(|cs| {
                    cs.iter()
                        .flat_map(|c| {
                            c.get("ports")
                                .and_then(Value::as_array)
                                .cloned()
                                .unwrap_or_default()
                        })
                        .find(|p| {
                            p.get("name").and_then(Value::as_str) == Some("http")
                                || p.get("containerPort") == Some(&json!(8000))
                        })
                })
                .and_then(|p| p.get("containerPort").map(ToString::to_string))
                .unwrap_or_else(|| "8000".into());
            for pod in self.same_ns(w.namespace.as_deref(), "Pod") {
                let running =
                    pod.json.pointer("/status/phase").and_then(Value::as_str) == Some("Running");
                if running
                    && !selector.is_null()
                    && selector::matches(&selector, &pod.labels()).unwrap_or(false)
                {
                    out.push(http::ProxyTarget {
                        workload: w.slot,
                        kind: "Pod".into(),
                        namespace: ns.clone(),
                        name: pod.name.clone(),
                        port: container_port.clone(),
                    });
                }
            }
        }
        out
    }

    /// Where metrics came from, for results: the Prometheus server or the scraped endpoints.
    pub fn service_origin(&self) -> Option<String> {
        self.prometheus
            .clone()
            .or_else(|| (!self.endpoints.is_empty()).then(|| self.endpoints.join(", ")))
    }

    /// Removes every known secret value from a message (the process-wide layer in `redact`,
    /// which also sits in front of every output).
    pub fn redact(&self, text: &str) -> String {
        crate::redact::text(text).into_owned()
    }

    /// Whether a workload is in scope under `--selector`; other kinds always are.
    pub fn in_scope(&self, obj: &Object) -> bool {
        if !obj.is_workload() && obj.kind != "Pod" {
            return true;
        }
        self.workload_selector.as_ref().is_none_or(|sel| {
            selector::matches(sel, &obj.labels()).unwrap_or(false)
                || selector::matches(sel, &obj.pod_labels()).unwrap_or(false)
        })
    }

    pub fn cel_object(&self, i: usize) -> CelValue {
        self.cel_objects[i]
            .get_or_init(|| json_to_cel(&self.objects[i].json))
            .clone()
    }

    pub fn cel_related(&self, i: usize) -> CelValue {
        self.related[i].get_or_init(|| self.related_cel(i)).clone()
    }

    pub fn cel_mlsdm(&self, i: usize) -> CelValue {
        self.mlsdm[i]
            .get_or_init(|| {
                let obj = &self.objects[i];
                if obj.is_workload() {
                    json_to_cel(&mlsdm::effective(obj, self))
                } else {
                    CelValue::Null
                }
            })
            .clone()
    }

    fn same_ns(&self, ns: Option<&str>, kind: &str) -> impl Iterator<Item = &Object> + use<'_> {
        self.by_kind_ns
            .get(&(kind.to_string(), ns.map(str::to_string)))
            .into_iter()
            .flatten()
            .map(|&slot| &self.objects[slot])
    }

    fn all_of(&self, kind: &str) -> impl Iterator<Item = &Object> + use<'_> {
        self.by_kind
            .get(kind)
            .into_iter()
            .flatten()
            .map(|&slot| &self.objects[slot])
    }

    pub fn find<'a>(&'a self, kind: &str, ns: Option<&str>, name: &str) -> Option<&'a Object> {
        self.same_ns(ns, kind).find(|o| o.name == name)
    }

    /// Every workload, in scope or not: a Service selecting a non-MLSDM workload still selects pods.
    fn workloads(&self) -> impl Iterator<Item = &Object> {
        WORKLOAD_KINDS.iter().flat_map(|k| self.all_of(k))
    }

    /// Services whose selector picks this workload's pods.
    fn services_for<'a>(&'a self, w: &Object) -> Vec<&'a Object> {
        let labels = w.pod_labels();
        self.same_ns(w.namespace.as_deref(), "Service")
            .filter(|s| {
                s.json
                    .pointer("/spec/selector")
                    .and_then(Value::as_object)
                    .is_some_and(|sel| {
                        !sel.is_empty()
                            && selector::matches(&Value::Object(sel.clone()), &labels)
                                .unwrap_or(false)
                    })
            })
            .collect()
    }

    fn selected_by<'a>(
        &'a self,
        w: &Object,
        kind: &str,
        pointer: &str,
        empty_matches_all: bool,
    ) -> Vec<&'a Object> {
        let labels = w.pod_labels();
        self.same_ns(w.namespace.as_deref(), kind)
            .filter(|o| match o.json.pointer(pointer) {
                Some(sel) if sel.as_object().is_some_and(|m| !m.is_empty()) => {
                    selector::matches(sel, &labels).unwrap_or(false)
                }
                Some(_) => empty_matches_all,
                None => false,
            })
            .collect()
    }

    fn hpas_for<'a>(&'a self, w: &Object) -> Vec<&'a Object> {
        self.same_ns(w.namespace.as_deref(), "HorizontalPodAutoscaler")
            .filter(|h| {
                h.json
                    .pointer("/spec/scaleTargetRef/kind")
                    .and_then(Value::as_str)
                    == Some(w.kind.as_str())
                    && h.json
                        .pointer("/spec/scaleTargetRef/name")
                        .and_then(Value::as_str)
                        == Some(w.name.as_str())
            })
            .collect()
    }

    fn ingresses_for<'a>(&'a self, ns: Option<&str>, services: &[&Object]) -> Vec<&'a Object> {
        let names: BTreeSet<&str> = services.iter().map(|s| s.name.as_str()).collect();
        self.same_ns(ns, "Ingress")
            .filter(|i| {
                ingress_backends(&i.json)
                    .iter()
                    .any(|b| names.contains(b.as_str()))
            })
            .collect()
    }

    /// ServiceMonitors (any namespace they may watch from) selecting one of these Services.
    fn monitors_for<'a>(
        &'a self,
        kind: &str,
        ns: Option<&str>,
        labels_list: &[Value],
    ) -> Vec<&'a Object> {
        self.objects
            .iter()
            .filter(|m| m.kind == kind)
            .filter(|m| {
                let ns_ok = monitor_watches(m, ns);
                let sel = m
                    .json
                    .pointer("/spec/selector")
                    .cloned()
                    .unwrap_or(Value::Null);
                ns_ok
                    && labels_list
                        .iter()
                        .any(|l| selector::matches(&sel, l).unwrap_or(false))
            })
            .collect()
    }

    /// ConfigMaps and Secrets a pod spec references, found or missing.
    fn references<'a>(&'a self, w: &Object) -> (Vec<&'a Object>, Vec<&'a Object>, Vec<Value>) {
        let ns = w.namespace.as_deref();
        let mut cms = Vec::new();
        let mut secrets = Vec::new();
        let mut missing = Vec::new();
        for r in pod_references(w.pod_spec().unwrap_or(&Value::Null)) {
            match self.find(&r.kind, ns, &r.name) {
                Some(o) if r.kind == "ConfigMap" => {
                    if !cms.iter().any(|c: &&Object| c.name == o.name) {
                        cms.push(o);
                    }
                }
                Some(o) => {
                    if !secrets.iter().any(|c: &&Object| c.name == o.name) {
                        secrets.push(o);
                    }
                }
                None => missing.push(
                    json!({"kind": r.kind, "name": r.name, "via": r.via, "optional": r.optional}),
                ),
            }
        }
        (cms, secrets, missing)
    }

    /// `related` for an object, built from the objects' cached CEL values (shared, not copied).
    fn related_cel(&self, i: usize) -> CelValue {
        let obj = &self.objects[i];
        let list = |v: Vec<&Object>| {
            CelValue::List(std::sync::Arc::new(
                v.into_iter().map(|o| self.cel_object(o.slot)).collect(),
            ))
        };
        let one = |o: Option<&Object>| o.map_or(CelValue::Null, |o| self.cel_object(o.slot));
        let map = |entries: Vec<(&str, CelValue)>| {
            let m: std::collections::HashMap<cel::objects::Key, CelValue> = entries
                .into_iter()
                .map(|(k, v)| {
                    (
                        cel::objects::Key::String(std::sync::Arc::new(k.to_string())),
                        v,
                    )
                })
                .collect();
            CelValue::Map(cel::objects::Map {
                map: std::sync::Arc::new(m),
            })
        };
        let ns = obj.namespace.as_deref();
        if obj.is_workload() {
            let services = self.services_for(obj);
            let service_labels: Vec<Value> = services.iter().map(|s| s.labels()).collect();
            let (cms, secrets, missing) = self.references(obj);
            let mut pull_missing = Vec::new();
            for s in obj
                .pod_spec()
                .and_then(|p| p.get("imagePullSecrets"))
                .and_then(Value::as_array)
                .into_iter()
                .flatten()
            {
                if let Some(name) = s.get("name").and_then(Value::as_str)
                    && self.find("Secret", ns, name).is_none()
                {
                    pull_missing.push(json!(name));
                }
            }
            map(vec![
                ("services", list(services.clone())),
                (
                    "pdbs",
                    list(self.selected_by(obj, "PodDisruptionBudget", "/spec/selector", false)),
                ),
                ("hpas", list(self.hpas_for(obj))),
                (
                    "networkPolicies",
                    list(self.selected_by(obj, "NetworkPolicy", "/spec/podSelector", true)),
                ),
                (
                    "namespaceNetworkPolicies",
                    list(self.same_ns(ns, "NetworkPolicy").collect()),
                ),
                ("ingresses", list(self.ingresses_for(ns, &services))),
                (
                    "serviceMonitors",
                    list(self.monitors_for("ServiceMonitor", ns, &service_labels)),
                ),
                (
                    "podMonitors",
                    list(self.monitors_for("PodMonitor", ns, &[obj.pod_labels()])),
                ),
                (
                    "prometheusRules",
                    list(self.same_ns(ns, "PrometheusRule").collect()),
                ),
                (
                    "resourceQuotas",
                    list(self.same_ns(ns, "ResourceQuota").collect()),
                ),
                (
                    "limitRanges",
                    list(self.same_ns(ns, "LimitRange").collect()),
                ),
                ("configMaps", list(cms)),
                ("secrets", list(secrets)),
                ("missingReferences", json_to_cel(&json!(missing))),
                ("missingImagePullSecrets", json_to_cel(&json!(pull_missing))),
                (
                    "namespace",
                    one(ns.and_then(|n| self.find("Namespace", None, n))),
                ),
                (
                    "serviceAccount",
                    one(self.find(
                        "ServiceAccount",
                        ns,
                        obj.pod_spec()
                            .and_then(|p| p.get("serviceAccountName"))
                            .and_then(Value::as_str)
                            .unwrap_or("default"),
                    )),
                ),
                (
                    "roleBindings",
                    list(self.same_ns(ns, "RoleBinding").collect()),
                ),
                (
                    "externalSecrets",
                    list(
                        self.same_ns(ns, "ExternalSecret")
                            .chain(self.same_ns(ns, "SealedSecret"))
                            .collect(),
                    ),
                ),
                (
                    "alertmanagerConfigs",
                    list(self.same_ns(ns, "AlertmanagerConfig").collect()),
                ),
                (
                    "dashboards",
                    list(
                        self.all_of("ConfigMap")
                            .filter(|o| o.labels().get("grafana_dashboard").is_some())
                            .chain(self.all_of("GrafanaDashboard"))
                            .collect(),
                    ),
                ),
                (
                    "replicaSets",
                    list(
                        self.same_ns(ns, "ReplicaSet")
                            .filter(|r| {
                                r.json
                                    .pointer("/metadata/ownerReferences")
                                    .and_then(Value::as_array)
                                    .is_some_and(|o| {
                                        o.iter().any(|o| {
                                            o.get("kind").and_then(Value::as_str)
                                                == Some(obj.kind.as_str())
                                                && o.get("name").and_then(Value::as_str)
                                                    == Some(obj.name.as_str())
                                        })
                                    })
                            })
                            .collect(),
                    ),
                ),
                (
                    "pods",
                    list(
                        self.same_ns(ns, "Pod")
                            .filter(|p| {
                                let sel = obj
                                    .json
                                    .pointer("/spec/selector")
                                    .cloned()
                                    .unwrap_or(Value::Null);
                                !sel.is_null()
                                    && selector::matches(&sel, &p.labels()).unwrap_or(false)
                            })
                            .collect(),
                    ),
                ),
                (
                    "canaries",
                    list(
                        self.workloads()
                            .filter(|o| o.name != obj.name && o.name.contains("canary"))
                            .collect(),
                    ),
                ),
            ])
        } else {
            // The reverse direction: which in-scope workloads this object applies to.
            let workloads: Vec<&Object> = self
                .workloads()
                .filter(|w| {
                    w.namespace.as_deref() == ns
                        || obj.kind == "ServiceMonitor"
                        || obj.kind == "PodMonitor"
                })
                .filter(|w| match obj.kind.as_str() {
                    "Service" => self.services_for(w).iter().any(|s| s.name == obj.name),
                    "PodDisruptionBudget" => self
                        .selected_by(w, "PodDisruptionBudget", "/spec/selector", false)
                        .iter()
                        .any(|p| p.name == obj.name),
                    "NetworkPolicy" => self
                        .selected_by(w, "NetworkPolicy", "/spec/podSelector", true)
                        .iter()
                        .any(|p| p.name == obj.name),
                    "HorizontalPodAutoscaler" => {
                        self.hpas_for(w).iter().any(|h| h.name == obj.name)
                    }
                    "Ingress" => {
                        let services = self.services_for(w);
                        self.ingresses_for(ns, &services)
                            .iter()
                            .any(|x| x.name == obj.name)
                    }
                    "ServiceMonitor" => {
                        let labels: Vec<Value> =
                            self.services_for(w).iter().map(|s| s.labels()).collect();
                        self.monitors_for("ServiceMonitor", w.namespace.as_deref(), &labels)
                            .iter()
                            .any(|m| m.name == obj.name && m.namespace == obj.namespace)
                    }
                    "PodMonitor" => self
                        .monitors_for("PodMonitor", w.namespace.as_deref(), &[w.pod_labels()])
                        .iter()
                        .any(|m| m.name == obj.name && m.namespace == obj.namespace),
                    "ConfigMap" | "Secret" => pod_references(w.pod_spec().unwrap_or(&Value::Null))
                        .iter()
                        .any(|r| r.kind == obj.kind && r.name == obj.name),
                    _ => false,
                })
                .collect();
            let backends: Vec<Value> = if obj.kind == "Ingress" {
                ingress_backends(&obj.json)
                    .into_iter()
                    .map(|b| json!({"name": b, "exists": self.find("Service", ns, &b).is_some()}))
                    .collect()
            } else {
                Vec::new()
            };
            // A ServiceMonitor: the Services it selects, and whether any namespace it watches is
            // in the input at all (if none is, what it selects cannot be told).
            let (monitored, watches_audited) = if obj.kind == "ServiceMonitor" {
                let watched = |n: Option<&str>| monitor_watches(obj, n);
                (
                    self.all_of("Service")
                        .filter(|s| {
                            watched(s.namespace.as_deref())
                                && selector::matches(
                                    obj.json.pointer("/spec/selector").unwrap_or(&Value::Null),
                                    &s.labels(),
                                )
                                .unwrap_or(false)
                        })
                        .collect(),
                    self.objects
                        .iter()
                        // Workloads and Services without a namespace (a kustomize base) are in
                        // the one they will be applied to, which `watched` reads as the monitor's.
                        .any(|o| {
                            (o.namespace.is_some() || o.is_workload() || o.kind == "Service")
                                && watched(o.namespace.as_deref())
                        }),
                )
            } else {
                (Vec::new(), false)
            };
            map(vec![
                ("workloads", list(workloads)),
                ("monitoredServices", list(monitored)),
                ("watchesAuditedNamespace", CelValue::Bool(watches_audited)),
                ("ingressBackends", json_to_cel(&Value::Array(backends))),
                (
                    "workloadsInNamespace",
                    list(
                        self.workloads()
                            .filter(|w| w.namespace.as_deref() == ns)
                            .collect(),
                    ),
                ),
            ])
        }
    }
}

/// Whether a ServiceMonitor or PodMonitor watches namespace `ns` (its namespaceSelector, else
/// its own namespace).
fn monitor_watches(m: &Object, ns: Option<&str>) -> bool {
    let ns_sel = m.json.pointer("/spec/namespaceSelector");
    if ns_sel.and_then(|s| s.get("any")).and_then(Value::as_bool) == Some(true) {
        true
    } else if let Some(names) = ns_sel
        .and_then(|s| s.get("matchNames"))
        .and_then(Value::as_array)
    {
        names.iter().any(|n| n.as_str() == ns)
    } else {
        m.namespace.as_deref() == ns
    }
}

/// Backend service names of an Ingress (default backend and every rule path).
fn ingress_backends(ing: &Value) -> Vec<String> {
    let mut out = Vec::new();
    if let Some(n) = ing
        .pointer("/spec/defaultBackend/service/name")
        .and_then(Value::as_str)
    {
        out.push(n.to_string());
    }
    for rule in ing
        .pointer("/spec/rules")
        .and_then(Value::as_array)
        .into_iter()
        .flatten()
    {
        for path in rule
            .pointer("/http/paths")
            .and_then(Value::as_array)
            .into_iter()
            .flatten()
        {
            if let Some(n) = path
                .pointer("/backend/service/name")
                .and_then(Value::as_str)
            {
                out.push(n.to_string());
            }
        }
    }
    out
}

/// A reference from a pod spec to a ConfigMap or Secret.
#[derive(Debug, Clone)]
pub struct PodRef {
    pub kind: String,
    pub name: String,
    pub via: String,
    pub optional: bool,
}

/// Every ConfigMap and Secret a pod spec uses: volumes, projected sources, env, envFrom and
/// image pull secrets.
pub fn pod_references(spec: &Value) -> Vec<PodRef> {
    let mut out = Vec::new();
    let mut push = |kind: &str, v: Option<&Value>, via: String| {
        if let Some(v) = v {
            let name = v
                .get("name")
                .or_else(|| v.get("secretName"))
                .and_then(Value::as_str);
            if let Some(name) = name {
                out.push(PodRef {
                    kind: kind.into(),
                    name: name.into(),
                    via,
                    optional: v.get("optional").and_then(Value::as_bool).unwrap_or(false),
                });
            }
        }
    };
    for vol in spec
        .get("volumes")
        .and_then(Value::as_array)
        .into_iter()
        .flatten()
    {
        let vname = vol.get("name").and_then(Value::as_str).unwrap_or("?");
        push("ConfigMap", vol.get("configMap"), format!("volume {vname}"));
        push("Secret", vol.get("secret"), format!("volume {vname}"));
        for src in vol
            .pointer("/projected/sources")
            .and_then(Value::as_array)
            .into_iter()
            .flatten()
        {
            push("ConfigMap", src.get("configMap"), format!("volume {vname}"));
            push("Secret", src.get("secret"), format!("volume {vname}"));
        }
    }
    for list in ["initContainers", "containers"] {
        for c in spec
            .get(list)
            .and_then(Value::as_array)
            .into_iter()
            .flatten()
        {
            let cname = c.get("name").and_then(Value::as_str).unwrap_or("?");
            for e in c.get("env").and_then(Value::as_array).into_iter().flatten() {
                let ename = e.get("name").and_then(Value::as_str).unwrap_or("?");
                push(
                    "ConfigMap",
                    e.pointer("/valueFrom/configMapKeyRef"),
                    format!("container {cname} env {ename}"),
                );
                push(
                    "Secret",
                    e.pointer("/valueFrom/secretKeyRef"),
                    format!("container {cname} env {ename}"),
                );
            }
            for e in c
                .get("envFrom")
                .and_then(Value::as_array)
                .into_iter()
                .flatten()
            {
                push(
                    "ConfigMap",
                    e.get("configMapRef"),
                    format!("container {cname} envFrom"),
                );
                push(
                    "Secret",
                    e.get("secretRef"),
                    format!("container {cname} envFrom"),
                );
            }
        }
    }
    for s in spec
        .get("imagePullSecrets")
        .and_then(Value::as_array)
        .into_iter()
        .flatten()
    {
        push("Secret", Some(s), "imagePullSecrets".into());
    }
    out
}
