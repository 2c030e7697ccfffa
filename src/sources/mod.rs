//! Everything that gathers facts for the checks, and the facts themselves.
//!
//! Derived facts that CEL alone cannot compute well (which objects relate to a workload, MLSDM's
//! effective configuration, what a Secret holds without revealing it) are computed here, once per
//! object and only when a check asks for them, then handed to expressions as plain values.

pub mod attestations;
pub mod http;
mod index;
pub mod kube;
pub mod manifests;
pub mod mlsdm;
mod reference;
pub mod render;
pub mod selector;

use crate::checks::Source;
use crate::checks::cel::{SharedVal, json_to_cel, json_to_val};
use cel::common::value::Val;
use cel::objects::Value as CelValue;
use index::{LabelIndex, Selecting, SelectorIndex, required_label};
use serde::Serialize;
use serde_json::{Map, Value, json};
use std::collections::HashMap;
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
#[derive(
    Clone,
    Debug,
    PartialEq,
    Eq,
    Serialize,
    serde::Deserialize,
    schemars::JsonSchema,
    PartialOrd,
    Ord,
)]
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
    /// Evaluate with the straightforward relation scans of `reference.rs` and visit every
    /// object for every check, as before the indexes: the reference the tests compare the
    /// indexed path with. Never set by a normal run.
    pub straightforward: bool,
    /// Relations are looked up, not scanned.
    index: index::Index,
    lazy: index::Lazy,
    cel_objects: Vec<OnceLock<CelValue>>,
    related: Vec<OnceLock<CelValue>>,
    mlsdm: Vec<OnceLock<CelValue>>,
    /// The same values in the form cel 0.15 evaluates (`Box<dyn Val>`), converted once per
    /// object: binding a `Value` to a context converts (deep-copies) it on every binding.
    vals: Vec<ObjectValCache>,
}

#[derive(Default)]
struct ObjectValCache {
    object: OnceLock<SharedVal>,
    mlsdm: OnceLock<Box<dyn Val>>,
    related: OnceLock<Box<dyn Val>>,
}

impl Facts {
    pub fn new(
        objects: Vec<Object>,
        sources: BTreeSet<Source>,
        workload_selector: Option<Value>,
        origin: &str,
    ) -> Self {
        let mut objects = objects;
        for (slot, o) in objects.iter_mut().enumerate() {
            o.slot = slot;
        }
        let index = index::Index::build(&objects);
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
            straightforward: false,
            index,
            lazy: index::Lazy::new(n),
            vals: (0..n).map(|_| ObjectValCache::default()).collect(),
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
                    .is_some_and(|cs| cs.iter().any(mlsdm::runs_mlsdm))
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

    /// `related` as the straightforward path builds it (by scanning, as a copied `Value`).
    pub fn cel_related(&self, i: usize) -> CelValue {
        self.related[i]
            .get_or_init(|| self.naive_related_cel(i))
            .clone()
    }

    /// Object `i` as cel evaluates it, converted once and shared.
    pub fn object_val(&self, i: usize) -> &SharedVal {
        self.vals[i]
            .object
            .get_or_init(|| SharedVal::from_json(&self.objects[i].json))
    }

    /// `object`, `mlsdm` and `related` of object `i` as cel evaluates them, converted once.
    pub fn vals(&self, i: usize) -> ObjectVals<'_> {
        let cache = &self.vals[i];
        ObjectVals {
            object: self.object_val(i).0.as_ref(),
            mlsdm: cache
                .mlsdm
                .get_or_init(|| to_val(self.cel_mlsdm(i)))
                .as_ref(),
            related: &cache.related,
            facts: self,
            slot: i,
        }
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
        self.slots_in(ns, kind)
            .iter()
            .map(|&slot| &self.objects[slot])
    }

    fn slots_in(&self, ns: Option<&str>, kind: &str) -> &[usize] {
        self.index
            .by_kind_ns
            .get(&(kind.to_string(), ns.map(str::to_string)))
            .map_or(&[], Vec::as_slice)
    }

    fn all_of(&self, kind: &str) -> impl Iterator<Item = &Object> + use<'_> {
        self.index
            .by_kind
            .get(kind)
            .into_iter()
            .flatten()
            .map(|&slot| &self.objects[slot])
    }

    /// Every object of that kind, namespace and name (several only when API groups differ), in
    /// input order.
    fn named(&self, kind: &str, ns: Option<&str>, name: &str) -> &[usize] {
        self.index
            .by_name
            .get(&(kind.to_string(), ns.map(str::to_string), name.to_string()))
            .map_or(&[], Vec::as_slice)
    }

    pub fn find<'a>(&'a self, kind: &str, ns: Option<&str>, name: &str) -> Option<&'a Object> {
        self.named(kind, ns, name)
            .first()
            .map(|&slot| &self.objects[slot])
    }

    /// The slots of the objects a check with these kind matchers applies to, in input order.
    pub fn slots_of_kinds(&self, kinds: &[crate::checks::KindMatcher]) -> Vec<usize> {
        let mut names: Vec<&str> = kinds.iter().map(|k| k.kind.as_str()).collect();
        names.sort_unstable();
        names.dedup();
        let mut slots: Vec<usize> = names
            .into_iter()
            .filter_map(|k| self.index.by_kind.get(k))
            .flatten()
            .copied()
            .filter(|&s| {
                let o = &self.objects[s];
                kinds.iter().any(|k| k.matches(&o.api_version, &o.kind))
            })
            .collect();
        slots.sort_unstable();
        slots
    }

    /// Every workload, in scope or not: a Service selecting a non-MLSDM workload still selects pods.
    fn workloads(&self) -> impl Iterator<Item = &Object> {
        WORKLOAD_KINDS.iter().flat_map(|k| self.all_of(k))
    }

    /// The workloads of one namespace, in `workloads()` order.
    fn workloads_in(&self, ns: Option<&str>) -> &[usize] {
        self.index
            .workloads_by_ns
            .get(&ns.map(str::to_string))
            .map_or(&[], Vec::as_slice)
    }

    /// Workloads of namespace `ns` whose pod labels `sel` may match (a superset, in no order):
    /// those carrying one label the selector requires, else every workload there.
    fn workloads_selectable(&self, ns: Option<&str>, sel: &Value) -> Vec<usize> {
        match sel.as_object().and_then(required_label) {
            Some((k, v)) => self
                .lazy
                .workload_labels
                .get_or_init(|| {
                    LabelIndex::build(self.workloads().map(|w| {
                        (
                            w.slot,
                            w.namespace.clone(),
                            w.json.pointer("/spec/template/metadata/labels"),
                        )
                    }))
                })
                .get(ns, k, v)
                .to_vec(),
            None => self.workloads_in(ns).to_vec(),
        }
    }

    /// Services whose selector picks this workload's pods (computed once per workload).
    fn services_for<'a>(&'a self, w: &Object) -> Vec<&'a Object> {
        self.lazy.services_of[w.slot]
            .get_or_init(|| {
                let labels = w.pod_labels();
                self.selecting(Selecting::Service)
                    .candidates(w.namespace.as_deref(), &labels)
                    .into_iter()
                    .filter(|&s| {
                        self.objects[s]
                            .json
                            .pointer("/spec/selector")
                            .filter(|sel| sel.as_object().is_some_and(|m| !m.is_empty()))
                            .is_some_and(|sel| selector::matches(sel, &labels).unwrap_or(false))
                    })
                    .collect()
            })
            .iter()
            .map(|&s| &self.objects[s])
            .collect()
    }

    fn selecting(&self, which: Selecting) -> &SelectorIndex {
        let (cell, kind, pointer, empty_matches_all) = match which {
            Selecting::Service => (&self.lazy.services, "Service", "/spec/selector", false),
            Selecting::Pdb => (
                &self.lazy.pdbs,
                "PodDisruptionBudget",
                "/spec/selector",
                false,
            ),
            Selecting::NetworkPolicy => (
                &self.lazy.network_policies,
                "NetworkPolicy",
                "/spec/podSelector",
                true,
            ),
        };
        cell.get_or_init(|| {
            SelectorIndex::build(
                self.all_of(kind)
                    .map(|o| (o.slot, o.namespace.clone(), o.json.pointer(pointer))),
                empty_matches_all,
            )
        })
    }

    fn selected_by<'a>(
        &'a self,
        w: &Object,
        kind: &str,
        pointer: &str,
        empty_matches_all: bool,
    ) -> Vec<&'a Object> {
        let which = match kind {
            "PodDisruptionBudget" => Selecting::Pdb,
            _ => Selecting::NetworkPolicy,
        };
        let labels = w.pod_labels();
        self.selecting(which)
            .candidates(w.namespace.as_deref(), &labels)
            .into_iter()
            .map(|s| &self.objects[s])
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
        let targets = self.lazy.hpa_targets.get_or_init(|| {
            let mut m: HashMap<(Option<String>, String, String), Vec<usize>> = HashMap::new();
            for h in self.all_of("HorizontalPodAutoscaler") {
                if let (Some(kind), Some(name)) = (
                    h.json
                        .pointer("/spec/scaleTargetRef/kind")
                        .and_then(Value::as_str),
                    h.json
                        .pointer("/spec/scaleTargetRef/name")
                        .and_then(Value::as_str),
                ) {
                    m.entry((h.namespace.clone(), kind.to_string(), name.to_string()))
                        .or_default()
                        .push(h.slot);
                }
            }
            m
        });
        targets
            .get(&(w.namespace.clone(), w.kind.clone(), w.name.clone()))
            .into_iter()
            .flatten()
            .map(|&s| &self.objects[s])
            .collect()
    }

    fn ingresses_for<'a>(&'a self, ns: Option<&str>, services: &[&Object]) -> Vec<&'a Object> {
        if services.is_empty() {
            return Vec::new();
        }
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
        self.all_of(kind)
            .filter(|m| {
                let sel = m.json.pointer("/spec/selector").unwrap_or(&Value::Null);
                monitor_watches(m, ns)
                    && labels_list
                        .iter()
                        .any(|l| selector::matches(sel, l).unwrap_or(false))
            })
            .collect()
    }

    /// ConfigMaps labelled as Grafana dashboards and GrafanaDashboards: the same list for every
    /// workload, built once.
    fn dashboards(&self) -> SharedVal {
        self.lazy
            .dashboards
            .get_or_init(|| {
                let list: Box<dyn Val> = Box::new(cel::common::types::CelList::from(
                    self.all_of("ConfigMap")
                        .filter(|o| {
                            o.json
                                .pointer("/metadata/labels")
                                .and_then(|l| l.get("grafana_dashboard"))
                                .is_some()
                        })
                        .chain(self.all_of("GrafanaDashboard"))
                        .map(|o| Box::new(self.object_val(o.slot).clone()) as Box<dyn Val>)
                        .collect::<Vec<_>>(),
                ));
                SharedVal(std::sync::Arc::from(list))
            })
            .clone()
    }

    /// Workloads named like a canary, in `workloads()` order (built once).
    fn canaries(&self) -> impl Iterator<Item = &Object> {
        self.lazy
            .canaries
            .get_or_init(|| {
                self.workloads()
                    .filter(|o| o.name.contains("canary"))
                    .map(|o| o.slot)
                    .collect()
            })
            .iter()
            .map(|&s| &self.objects[s])
    }

    /// ReplicaSets of the workload's namespace that name it as an owner.
    fn replica_sets_of<'a>(&'a self, obj: &Object) -> Vec<&'a Object> {
        let owners = self.lazy.rs_owners.get_or_init(|| {
            let mut m: HashMap<(Option<String>, String, String), Vec<usize>> = HashMap::new();
            for r in self.all_of("ReplicaSet") {
                let mut keys: Vec<(Option<String>, String, String)> = r
                    .json
                    .pointer("/metadata/ownerReferences")
                    .and_then(Value::as_array)
                    .into_iter()
                    .flatten()
                    .filter_map(|o| {
                        Some((
                            r.namespace.clone(),
                            o.get("kind")?.as_str()?.to_string(),
                            o.get("name")?.as_str()?.to_string(),
                        ))
                    })
                    .collect();
                keys.sort_unstable();
                keys.dedup();
                for k in keys {
                    m.entry(k).or_default().push(r.slot);
                }
            }
            m
        });
        owners
            .get(&(obj.namespace.clone(), obj.kind.clone(), obj.name.clone()))
            .into_iter()
            .flatten()
            .map(|&s| &self.objects[s])
            .collect()
    }

    /// Pods of the workload's namespace its selector matches.
    fn pods_of<'a>(&'a self, obj: &Object) -> Vec<&'a Object> {
        let ns = obj.namespace.as_deref();
        let sel = obj.json.pointer("/spec/selector").unwrap_or(&Value::Null);
        if sel.is_null() {
            return Vec::new();
        }
        let candidates: Vec<usize> = match sel.as_object().and_then(required_label) {
            Some((k, v)) => self
                .lazy
                .pod_labels
                .get_or_init(|| {
                    LabelIndex::build(self.all_of("Pod").map(|p| {
                        (
                            p.slot,
                            p.namespace.clone(),
                            p.json.pointer("/metadata/labels"),
                        )
                    }))
                })
                .get(ns, k, v)
                .to_vec(),
            None => self.slots_in(ns, "Pod").to_vec(),
        };
        candidates
            .into_iter()
            .map(|s| &self.objects[s])
            .filter(|p| {
                selector::matches(
                    sel,
                    p.json.pointer("/metadata/labels").unwrap_or(&Value::Null),
                )
                .unwrap_or(false)
            })
            .collect()
    }

    /// The workloads a non-workload object may apply to (a superset, in `workloads()` order):
    /// found through the objects of its kind, namespace and name, which is what the relation's
    /// predicate compares.
    fn workload_candidates(&self, obj: &Object) -> Vec<&Object> {
        let ns = obj.namespace.as_deref();
        let same = |kind: &str| self.named(kind, ns, &obj.name).to_vec();
        // The workloads a Service (by slot) selects, as `services_for` decides.
        let selected_by_service = |s: usize| -> Vec<usize> {
            match self.objects[s].json.pointer("/spec/selector") {
                Some(sel) if sel.as_object().is_some_and(|m| !m.is_empty()) => {
                    self.workloads_selectable(ns, sel)
                }
                _ => Vec::new(),
            }
        };
        let mut slots: Vec<usize> = match obj.kind.as_str() {
            "Service" => same("Service")
                .into_iter()
                .flat_map(selected_by_service)
                .collect(),
            "PodDisruptionBudget" | "NetworkPolicy" => {
                let (pointer, empty_matches_all) = if obj.kind == "NetworkPolicy" {
                    ("/spec/podSelector", true)
                } else {
                    ("/spec/selector", false)
                };
                same(&obj.kind)
                    .into_iter()
                    .flat_map(|p| match self.objects[p].json.pointer(pointer) {
                        Some(sel) if sel.as_object().is_some_and(|m| !m.is_empty()) => {
                            self.workloads_selectable(ns, sel)
                        }
                        Some(_) if empty_matches_all => self.workloads_in(ns).to_vec(),
                        _ => Vec::new(),
                    })
                    .collect()
            }
            "HorizontalPodAutoscaler" => same("HorizontalPodAutoscaler")
                .into_iter()
                .flat_map(|h| {
                    let json = &self.objects[h].json;
                    match (
                        json.pointer("/spec/scaleTargetRef/kind")
                            .and_then(Value::as_str),
                        json.pointer("/spec/scaleTargetRef/name")
                            .and_then(Value::as_str),
                    ) {
                        (Some(kind), Some(name)) => self.named(kind, ns, name).to_vec(),
                        _ => Vec::new(),
                    }
                })
                .collect(),
            "Ingress" => same("Ingress")
                .into_iter()
                .flat_map(|i| ingress_backends(&self.objects[i].json))
                .flat_map(|b| self.named("Service", ns, &b).to_vec())
                .flat_map(selected_by_service)
                .collect(),
            "ServiceMonitor" | "PodMonitor" => {
                let mut out = Vec::new();
                for m in same(&obj.kind) {
                    let m = &self.objects[m];
                    let ns_sel = m.json.pointer("/spec/namespaceSelector");
                    if ns_sel.and_then(|s| s.get("any")).and_then(Value::as_bool) == Some(true) {
                        out.extend(self.index.workload_pos.keys());
                    } else if let Some(names) = ns_sel
                        .and_then(|s| s.get("matchNames"))
                        .and_then(Value::as_array)
                    {
                        for n in names {
                            out.extend(self.workloads_in(n.as_str()));
                        }
                    } else {
                        out.extend(self.workloads_in(m.namespace.as_deref()));
                    }
                }
                out
            }
            "ConfigMap" | "Secret" => self
                .lazy
                .pod_refs
                .get_or_init(|| {
                    let mut m: HashMap<(Option<String>, String, String), Vec<usize>> =
                        HashMap::new();
                    for w in self.workloads() {
                        let mut keys: Vec<(Option<String>, String, String)> =
                            pod_references(w.pod_spec().unwrap_or(&Value::Null))
                                .into_iter()
                                .map(|r| (w.namespace.clone(), r.kind, r.name))
                                .collect();
                        keys.sort_unstable();
                        keys.dedup();
                        for k in keys {
                            m.entry(k).or_default().push(w.slot);
                        }
                    }
                    m
                })
                .get(&(ns.map(str::to_string), obj.kind.clone(), obj.name.clone()))
                .cloned()
                .unwrap_or_default(),
            _ => Vec::new(),
        };
        slots.retain(|s| self.objects[*s].is_workload());
        slots.sort_unstable_by_key(|s| self.index.workload_pos.get(s).copied());
        slots.dedup();
        slots.into_iter().map(|s| &self.objects[s]).collect()
    }

    /// Whether a ServiceMonitor watches any namespace the input has an object in (namespace-less
    /// workloads and Services, a kustomize base, count as in the monitor's own).
    fn watches_audited(&self, m: &Object) -> bool {
        let (namespaces, namespaceless) = self.lazy.present.get_or_init(|| {
            let namespaces = self
                .objects
                .iter()
                .filter_map(|o| o.namespace.clone())
                .collect();
            let namespaceless = self
                .objects
                .iter()
                .any(|o| o.namespace.is_none() && (o.is_workload() || o.kind == "Service"));
            (namespaces, namespaceless)
        });
        let present = |n: Option<&str>| n.map_or(*namespaceless, |n| namespaces.contains(n));
        let ns_sel = m.json.pointer("/spec/namespaceSelector");
        if ns_sel.and_then(|s| s.get("any")).and_then(Value::as_bool) == Some(true) {
            !namespaces.is_empty() || *namespaceless
        } else if let Some(names) = ns_sel
            .and_then(|s| s.get("matchNames"))
            .and_then(Value::as_array)
        {
            names.iter().any(|n| present(n.as_str()))
        } else {
            present(m.namespace.as_deref())
        }
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
    fn related_val(&self, i: usize) -> Box<dyn Val> {
        use cel::common::types::{CelBool, CelList, CelMap, CelMapKey, CelNull};
        let obj = &self.objects[i];
        let list = |v: Vec<&Object>| -> Box<dyn Val> {
            Box::new(CelList::from(
                v.into_iter()
                    .map(|o| Box::new(self.object_val(o.slot).clone()) as Box<dyn Val>)
                    .collect::<Vec<_>>(),
            ))
        };
        let one = |o: Option<&Object>| -> Box<dyn Val> {
            o.map_or_else(
                || Box::new(CelNull) as Box<dyn Val>,
                |o| Box::new(self.object_val(o.slot).clone()),
            )
        };
        let map = |entries: Vec<(&str, Box<dyn Val>)>| -> Box<dyn Val> {
            let m: HashMap<CelMapKey, Box<dyn Val>> = entries
                .into_iter()
                .map(|(k, v)| (CelMapKey::from(k.to_string()), v))
                .collect();
            Box::new(CelMap::from(m))
        };
        let json_val = |v: Value| json_to_val(&v);
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
                ("missingReferences", json_val(json!(missing))),
                ("missingImagePullSecrets", json_val(json!(pull_missing))),
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
                ("dashboards", Box::new(self.dashboards())),
                ("replicaSets", list(self.replica_sets_of(obj))),
                ("pods", list(self.pods_of(obj))),
                (
                    "canaries",
                    list(self.canaries().filter(|o| o.name != obj.name).collect()),
                ),
            ])
        } else {
            // The reverse direction: which in-scope workloads this object applies to.
            let workloads: Vec<&Object> = self
                .workload_candidates(obj)
                .into_iter()
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
                    self.watches_audited(obj),
                )
            } else {
                (Vec::new(), false)
            };
            map(vec![
                ("workloads", list(workloads)),
                ("monitoredServices", list(monitored)),
                (
                    "watchesAuditedNamespace",
                    Box::new(CelBool::from(watches_audited)),
                ),
                ("ingressBackends", json_val(Value::Array(backends))),
                (
                    "workloadsInNamespace",
                    list(
                        self.workloads_in(ns)
                            .iter()
                            .map(|&s| &self.objects[s])
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

/// The per-object variables of an evaluation, borrowed from the facts' caches.
pub struct ObjectVals<'f> {
    pub object: &'f dyn Val,
    pub mlsdm: &'f dyn Val,
    related: &'f OnceLock<Box<dyn Val>>,
    facts: &'f Facts,
    slot: usize,
}

impl<'f> ObjectVals<'f> {
    /// `related`, computed the first time a check asks for it.
    pub fn related(&self) -> &'f dyn Val {
        self.related
            .get_or_init(|| self.facts.related_val(self.slot))
            .as_ref()
    }
}

fn to_val(v: CelValue) -> Box<dyn Val> {
    v.try_into()
        .expect("a value built from JSON converts to a cel Val")
}
