//! The facts a run evaluates against, and the relations between them. No I/O: `sources` fills
//! the store, the engine reads it.
//!
//! Derived facts that CEL alone cannot compute well (which objects relate to a workload, MLSDM's
//! effective configuration, what a Secret holds without revealing it) are computed here, once per
//! object and only when a check asks for them, then handed to expressions as plain values.

mod index;
pub mod mlsdm;
mod reference;
pub mod registry;
mod relations;
mod scans;
pub mod service;
mod source;
pub mod values;

pub use source::Source;

use crate::k8s::At as _;
use crate::k8s::{Location, Object, ObjectRef, selector};
use cel::common::value::Val;
use cel::objects::Value as CelValue;
use serde_json::{Value, json};
use std::collections::{BTreeMap, BTreeSet, HashMap};
use std::sync::{Arc, OnceLock};
use values::{SharedVal, json_to_cel};

/// Everything the engine evaluates against: the objects plus which sources this run has.
pub struct Facts {
    pub objects: Vec<Object>,
    pub sources: BTreeSet<Source>,
    /// `--selector`: which workloads count as MLSDM (default: all).
    pub workload_selector: Option<Value>,
    /// What the audit looked at, for messages ("in the audited manifests").
    pub origin: String,
    /// Responses and metric samples from the running service.
    pub service: service::ServiceFacts,
    pub endpoints: Vec<String>,
    pub prometheus: Option<String>,
    /// The objects are a live cluster's (every listed kind complete), not manifests: an object
    /// missing from them does not exist.
    pub live: bool,
    /// Live mode: kinds that could not be listed (403 or server error), with why.
    pub kind_errors: BTreeMap<String, String>,
    /// Live mode: kinds the cluster does not serve (CRDs not installed).
    pub missing_kinds: BTreeSet<String>,
    /// `params` in expressions: `expectImage`, `expectVersion`, and `live` (the objects come
    /// from the cluster, not from manifests: a check cannot tell by `object.status`, which a
    /// `kubectl get -o yaml` export carries too).
    pub params: Value,
    /// Evaluate with the straightforward relation scans of `reference.rs` and visit every
    /// object for every check, as before the indexes: the reference the tests compare the
    /// indexed path with. Never set by a normal run.
    pub straightforward: bool,
    /// Evaluate on exactly this many threads instead of as many as the machine's cores and the
    /// objects call for (`engine::evaluate_parts`): tests hold the results equal across thread
    /// counts this machine would never choose. Never set by a normal run.
    pub threads: Option<usize>,
    /// Relations are looked up, not scanned.
    index: index::Index,
    lazy: index::Lazy,
    cel_objects: Vec<OnceLock<CelValue>>,
    related: Vec<OnceLock<CelValue>>,
    mlsdm: Vec<OnceLock<CelValue>>,
    /// Each workload's `mlsdm` in the form cel 0.15 evaluates (`Box<dyn Val>`), converted once
    /// (binding a `Value` to a context converts, deep-copies, it on every binding). Small: a
    /// handle on one of `mlsdm_vals`. The objects' own converted values are not kept here but
    /// by the evaluation, a few objects at a time ([`ValScope`]).
    mlsdm_val_cache: Vec<OnceLock<Box<dyn Val>>>,
    /// How results name each object and where it was read, one copy per object shared by its
    /// results (about 13 per object), not one per result.
    result_refs: Vec<(Arc<ObjectRef>, Option<Arc<Location>>)>,
    /// MLSDM config texts (mounted ConfigMaps, the image's default), each read once.
    config_texts: mlsdm::ReadTexts,
    /// `shared_mlsdm`: converted configurations by their JSON text.
    mlsdm_vals: std::sync::Mutex<std::collections::HashMap<String, SharedVal>>,
    /// Under `--selector`: the workloads it chooses, found once (`in_scope` of a Pod asks).
    chosen_workloads: OnceLock<HashMap<Option<String>, Vec<usize>>>,
}

/// An Argo Rollout with `workloadRef` runs the pod template of the Deployment it names (Argo
/// reads it from there; the Rollout has none of its own): the template, and the selector when
/// the Rollout gives none, are copied in, so that every check reads the pods the Rollout runs.
/// Read without them, every check of the Rollout was an error ("no such key: template") and
/// api-key-configured failed it. A reference to a Deployment the input does not hold is left
/// as it is: the checks' errors say the template is not there. A referenced Deployment scaled
/// to zero (Argo's `scaleDown`, as its docs recommend) runs no pod: it is the Rollout's
/// template, audited as the Rollout, and is not judged as a workload of its own (it failed
/// replicas-min-3 and hpa-targets-workload, so such a release could never pass).
fn resolve_workload_refs(objects: &mut Vec<Object>) {
    use crate::k8s::At as _;
    let mut copies = Vec::new();
    for (i, o) in objects.iter().enumerate() {
        if o.kind != "Rollout" || o.json.at("/spec/template").is_some() {
            continue;
        }
        let Some(r) = o.json.at("/spec/workloadRef") else {
            continue;
        };
        if r.get("kind").and_then(Value::as_str) != Some("Deployment") {
            continue;
        }
        let Some(name) = r.get("name").and_then(Value::as_str) else {
            continue;
        };
        if let Some((j, d)) = objects
            .iter()
            .enumerate()
            .find(|(_, d)| d.kind == "Deployment" && d.namespace == o.namespace && d.name == name)
        {
            let scaled_to_zero = d.json.at("/spec/replicas").and_then(Value::as_i64) == Some(0);
            copies.push((
                i,
                d.json.at("/spec/template").cloned(),
                d.json.at("/spec/selector").cloned(),
                scaled_to_zero.then_some(j),
                // The template's secrets go with it: masked wherever the Rollout is printed.
                d.sensitive.clone(),
            ));
        }
    }
    let mut templates_only = Vec::new();
    for (i, template, selector, deployment, sensitive) in copies {
        templates_only.extend(deployment);
        objects[i].sensitive.extend(sensitive);
        if let Some(spec) = objects[i]
            .json
            .get_mut("spec")
            .and_then(Value::as_object_mut)
        {
            if let Some(t) = template {
                spec.insert("template".into(), t);
            }
            if let Some(sel) = selector {
                spec.entry("selector").or_insert(sel);
            }
        }
    }
    templates_only.sort_unstable();
    templates_only.dedup();
    for j in templates_only.into_iter().rev() {
        objects.remove(j);
    }
}

impl Facts {
    pub fn new(
        objects: Vec<Object>,
        sources: BTreeSet<Source>,
        workload_selector: Option<Value>,
        origin: &str,
    ) -> Self {
        let mut objects = objects;
        resolve_workload_refs(&mut objects);
        for (slot, o) in objects.iter_mut().enumerate() {
            o.slot = slot;
        }
        let index = index::Index::build(&objects);
        let result_refs = objects
            .iter()
            .map(|o| {
                let object = ObjectRef {
                    kind: o.kind.clone(),
                    namespace: o.namespace.clone(),
                    name: o.name.clone(),
                };
                (Arc::new(object), o.location.clone().map(Arc::new))
            })
            .collect();
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
            service: service::ServiceFacts::default(),
            endpoints: Vec::new(),
            prometheus: None,
            live: false,
            kind_errors: BTreeMap::new(),
            missing_kinds: BTreeSet::new(),
            params: json!({"expectImage": null, "expectVersion": null, "live": false}),
            straightforward: false,
            threads: None,
            index,
            lazy: index::Lazy::new(n),
            mlsdm_val_cache: (0..n).map(|_| OnceLock::new()).collect(),
            cel_objects: (0..n).map(|_| OnceLock::new()).collect(),
            related: (0..n).map(|_| OnceLock::new()).collect(),
            mlsdm: (0..n).map(|_| OnceLock::new()).collect(),
            result_refs,
            config_texts: mlsdm::ReadTexts::default(),
            mlsdm_vals: std::sync::Mutex::default(),
            chosen_workloads: OnceLock::new(),
        }
    }

    /// In-scope workloads that run MLSDM (a container with MLSDM's variables or image).
    pub fn mlsdm_workloads(&self) -> impl Iterator<Item = &Object> {
        self.objects
            .iter()
            .filter(|o| o.is_workload() && self.in_scope(o) && runs_mlsdm(o))
    }

    /// Workloads that run MLSDM but the workload selector leaves out: not audited, and said so.
    pub fn mlsdm_workloads_out_of_scope(&self) -> impl Iterator<Item = &Object> {
        self.objects
            .iter()
            .filter(|o| o.is_workload() && !self.in_scope(o) && runs_mlsdm(o))
    }

    /// The Services and running Pods of the MLSDM workloads, to probe through the API server.
    pub fn proxy_targets(&self) -> Vec<service::ProxyTarget> {
        let mut out = Vec::new();
        for w in self.mlsdm_workloads() {
            let ns = w.namespace.clone().unwrap_or_else(|| "default".into());
            for svc in self.services_for(w) {
                let ports = svc
                    .json
                    .at("/spec/ports")
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
                    out.push(service::ProxyTarget {
                        workload: w.slot,
                        kind: "Service".into(),
                        namespace: ns.clone(),
                        name: svc.name.clone(),
                        port,
                    });
                }
            }
            let selector = w.json.at("/spec/selector").cloned().unwrap_or(Value::Null);
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
                    pod.json.at("/status/phase").and_then(Value::as_str) == Some("Running");
                if running
                    && !selector.is_null()
                    && selector::matches(&selector, &pod.labels()).unwrap_or(false)
                {
                    out.push(service::ProxyTarget {
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
    pub fn redact(&self, text: String) -> String {
        // Most messages hold no secret: kept as they are, not copied.
        let masked = match crate::redact::text(&text) {
            std::borrow::Cow::Owned(masked) => Some(masked),
            std::borrow::Cow::Borrowed(_) => None,
        };
        masked.unwrap_or(text)
    }

    /// Whether a workload or pod is in scope under `--selector`; other kinds always are. A pod is
    /// when the selector chooses it, or a chosen workload of its namespace runs it (its
    /// `spec.selector` matches the pod): with `-l app.kubernetes.io/version=1.2.0` on the
    /// Deployment only (a chart's labels, not its template's), its OOM-killed pods were out of
    /// scope and pod-no-oom-kills said "no Pod object".
    pub fn in_scope(&self, obj: &Object) -> bool {
        if !obj.is_workload() && obj.kind != "Pod" {
            return true;
        }
        let Some(sel) = self.workload_selector.as_ref() else {
            return true;
        };
        let chosen = |o: &Object| {
            selector::matches(sel, &o.labels()).unwrap_or(false)
                || selector::matches(sel, &o.pod_labels()).unwrap_or(false)
        };
        if chosen(obj) {
            return true;
        }
        if obj.kind != "Pod" {
            return false;
        }
        // The chosen workloads by namespace: a Pod is held to those of its own, not to every
        // chosen workload of the cluster (Pods x chosen workloads, per Pod check; issue 12).
        let by_namespace = self.chosen_workloads.get_or_init(|| {
            let mut m: HashMap<Option<String>, Vec<usize>> = HashMap::new();
            for (i, o) in self.objects.iter().enumerate() {
                if o.is_workload() && chosen(o) {
                    m.entry(o.namespace.clone()).or_default().push(i);
                }
            }
            m
        });
        let Some(workloads) = by_namespace.get(&obj.namespace) else {
            return false;
        };
        let labels = obj.labels();
        workloads.iter().map(|&i| &self.objects[i]).any(|w| {
            w.json
                .pointer("/spec/selector")
                .is_some_and(|s| selector::matches(s, &labels).unwrap_or(false))
        })
    }

    /// How a result names object `i`, and where it was read (shared by its results).
    pub fn result_ref(&self, i: usize) -> (Arc<ObjectRef>, Option<Arc<Location>>) {
        self.result_refs[i].clone()
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

    /// `mlsdm` of object `i` as cel evaluates it, converted once per distinct configuration.
    pub fn mlsdm_val(&self, i: usize) -> &dyn Val {
        // Converted straight from JSON: the `CelValue` of `cel_mlsdm` is the straightforward
        // path's, and caching it here too would hold every effective config twice.
        self.mlsdm_val_cache[i]
            .get_or_init(|| {
                self.mlsdm_json(i).map_or_else(
                    || to_val(CelValue::Null),
                    |v| Box::new(self.shared_mlsdm(&v)),
                )
            })
            .as_ref()
    }

    pub fn cel_mlsdm(&self, i: usize) -> CelValue {
        self.mlsdm[i]
            .get_or_init(|| {
                self.mlsdm_json(i)
                    .map_or(CelValue::Null, |v| json_to_cel(&v))
            })
            .clone()
    }

    /// One converted value per distinct effective configuration. Every workload has one (its
    /// first container's, when none runs MLSDM), and workloads that do not set MLSDM's
    /// variables share the image's defaults: converted once, not once per workload.
    fn shared_mlsdm(&self, config: &Value) -> SharedVal {
        let mut seen = self
            .mlsdm_vals
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner);
        seen.entry(config.to_string())
            .or_insert_with(|| SharedVal::from_json(config))
            .clone()
    }

    /// MLSDM's effective configuration in workload `i`; `None` for other kinds.
    fn mlsdm_json(&self, i: usize) -> Option<Value> {
        let obj = &self.objects[i];
        obj.is_workload().then(|| mlsdm::effective(obj, self))
    }

    /// The objects of `kind` in namespace `ns`, in input order.
    pub fn same_kind_in(&self, kind: &str, ns: Option<&str>) -> impl Iterator<Item = &Object> {
        self.same_ns(ns, kind)
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
    pub fn slots_of_kinds(&self, kinds: &[crate::k8s::KindMatcher]) -> Vec<usize> {
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
}

/// The objects' values as cel evaluates them, converted from JSON once while a few objects
/// are evaluated, and dropped with the scope. The engine evaluates object by object and opens
/// one scope per run of neighbouring objects in its evaluation order (namespace, then name): an
/// object and the objects related to it (mostly its neighbours in that order, as an app's
/// objects share a name) are converted once per scope, and a run never holds
/// every object twice, as JSON and as cel values (at 5,000 objects the cel copies were about
/// 20 MB of a 98 MB heap, issue 12). An object met again in a later scope is converted again.
#[derive(Default)]
pub struct ValScope {
    vals: std::cell::RefCell<std::collections::HashMap<usize, SharedVal>>,
}

impl ValScope {
    /// Object `slot` of `facts` as cel evaluates it, shared within this scope.
    pub fn object(&self, facts: &Facts, slot: usize) -> SharedVal {
        self.vals
            .borrow_mut()
            .entry(slot)
            .or_insert_with(|| SharedVal::from_json(&facts.objects[slot].json))
            .clone()
    }
}

fn to_val(v: CelValue) -> Box<dyn Val> {
    v.try_into()
        .expect("a value built from JSON converts to a cel Val")
}

/// `related.serviceAccountGrants` from the bindings that may grant to the workload's
/// ServiceAccount (in input order), each with the role it refers to when the audit holds it;
/// both relation builders call it, so they differ only in how they find the candidates.
fn grants_value<'a>(
    bindings: impl Iterator<Item = &'a Object>,
    w: &Object,
    find: impl Fn(&str, Option<&str>, &str) -> Option<&'a Object>,
    cluster_roles: &[&Object],
) -> Value {
    use crate::k8s::rbac;
    let ns = w.namespace.as_deref();
    let name = crate::k8s::refs::service_account_name(w.pod_spec());
    Value::Array(
        bindings
            .filter_map(|b| {
                let via = rbac::grants_to(b, ns, name)?;
                let role = rbac::role_ref(b).and_then(|(k, rns, n)| find(k, rns, n));
                Some(rbac::grant_value(b, &via, role, cluster_roles))
            })
            .collect(),
    )
}

/// Whether a workload's pods run MLSDM (a container with MLSDM's variables or image).
fn runs_mlsdm(o: &Object) -> bool {
    o.pod_spec()
        .and_then(|s| s.get("containers"))
        .and_then(Value::as_array)
        .is_some_and(|cs| cs.iter().any(mlsdm::runs_mlsdm))
}
