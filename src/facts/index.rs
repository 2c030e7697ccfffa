//! The lookups relations are answered from (issue 12): objects by kind, namespace and name, and
//! label selectors by one label they require, so that a relation costs what it matches rather
//! than what the input holds. Every index yields a superset of the answer; the relation's own
//! predicate (unchanged from the straightforward scan in `reference.rs`) still decides, and the
//! order is the input order the scan had.

use crate::k8s::selector::Selection;
use crate::k8s::{Object, WORKLOAD_KINDS};
use serde_json::{Map, Value};
use std::collections::HashMap;
use std::sync::OnceLock;

type Ns = Option<String>;
/// (namespace, API group, kind, name): what an HPA's scaleTargetRef names.
pub type ScaleTargetKey = (Ns, String, String, String);

/// Built with the facts: cheap, one pass over the objects.
#[derive(Default)]
pub(super) struct Index {
    /// (kind, namespace) -> slots, in input order.
    pub by_kind_ns: HashMap<(String, Ns), Vec<usize>>,
    /// kind -> slots, in input order.
    pub by_kind: HashMap<String, Vec<usize>>,
    /// (kind, namespace, name) -> slots (several only when API groups differ), in input order.
    pub by_name: HashMap<(String, Ns, String), Vec<usize>>,
    /// namespace -> workloads, in `Facts::workloads` order (kind order, then input order).
    pub workloads_by_ns: HashMap<Ns, Vec<usize>>,
    /// slot -> position in `Facts::workloads` order (workloads only).
    pub workload_pos: HashMap<usize, usize>,
}

impl Index {
    pub fn build(objects: &[Object]) -> Self {
        let mut index = Self::default();
        for (slot, o) in objects.iter().enumerate() {
            index
                .by_kind_ns
                .entry((o.kind.clone(), o.namespace.clone()))
                .or_default()
                .push(slot);
            index.by_kind.entry(o.kind.clone()).or_default().push(slot);
            index
                .by_name
                .entry((o.kind.clone(), o.namespace.clone(), o.name.clone()))
                .or_default()
                .push(slot);
        }
        let mut pos = 0;
        for kind in WORKLOAD_KINDS {
            for &slot in index.by_kind.get(*kind).into_iter().flatten() {
                index
                    .workloads_by_ns
                    .entry(objects[slot].namespace.clone())
                    .or_default()
                    .push(slot);
                index.workload_pos.insert(slot, pos);
                pos += 1;
            }
        }
        index
    }
}

/// Built the first time a relation needs it (a run whose checks never ask pays nothing).
#[derive(Default)]
pub(super) struct Lazy {
    pub services: OnceLock<SelectorIndex>,
    pub pdbs: OnceLock<SelectorIndex>,
    pub network_policies: OnceLock<SelectorIndex>,
    /// Pod-template labels of the workloads.
    pub workload_labels: OnceLock<LabelIndex>,
    /// Labels of the Pods.
    pub pod_labels: OnceLock<LabelIndex>,
    /// (namespace, API group, kind, name) of each HPA's scaleTargetRef -> the HPAs.
    pub hpa_targets: OnceLock<HashMap<ScaleTargetKey, Vec<usize>>>,
    /// (namespace, owner kind, owner name) -> ReplicaSets.
    pub rs_owners: OnceLock<HashMap<(Ns, String, String), Vec<usize>>>,
    /// (namespace, ConfigMap or Secret, name) -> workloads whose pod spec references it.
    pub pod_refs: OnceLock<HashMap<(Ns, String, String), Vec<usize>>>,
    /// Subject name of each RoleBinding and ClusterRoleBinding (`k8s::rbac::subject_index_name`)
    /// -> the bindings.
    pub rbac_subjects: OnceLock<HashMap<String, Vec<usize>>>,
    /// (namespace, image name as `scans::ImageRef::name`) -> the VulnerabilityReports of it.
    pub image_scans: OnceLock<HashMap<(Ns, String), Vec<usize>>>,
    /// (namespace, name) a PersistentVolume's `spec.claimRef` names -> the PersistentVolumes.
    pub pv_claim_refs: OnceLock<HashMap<(Ns, String), Vec<usize>>>,
    /// (namespace, claim name without its `-<ordinal>`) of each claim named like a
    /// StatefulSet's (a PersistentVolumeClaim, or one a PersistentVolume's `claimRef` names) ->
    /// those claims' names (`k8s::refs::set_claim_base`).
    pub set_claims: OnceLock<HashMap<(Ns, String), Vec<String>>>,
    /// The same for every workload: computed once, shared.
    pub dashboards: OnceLock<super::values::SharedVal>,
    /// Every object of some kinds in a namespace, as one cel list: the same for every workload
    /// of the namespace, converted once per run (`Facts::namespace_list`).
    pub namespace_lists:
        std::sync::Mutex<HashMap<(&'static [&'static str], Ns), super::values::SharedVal>>,
    /// Namespaces that hold an object a monitor's watch counts, and whether a namespace-less
    /// workload or Service exists (see `watchesAuditedNamespace`).
    pub present: OnceLock<(std::collections::HashSet<String>, bool)>,
    /// Per slot: the Services selecting that workload's pods.
    pub services_of: Vec<OnceLock<Vec<usize>>>,
    /// (namespace, Service name) -> the Ingresses routing to that Service, in input order.
    pub ingresses_by_backend: OnceLock<HashMap<(Ns, String), Vec<usize>>>,
}

impl Lazy {
    pub fn new(n: usize) -> Self {
        Self {
            services_of: (0..n).map(|_| OnceLock::new()).collect(),
            ..Self::default()
        }
    }
}

/// The kinds whose label selectors pick workloads' pods.
#[derive(Clone, Copy)]
pub(super) enum Selecting {
    Service,
    Pdb,
    NetworkPolicy,
}

/// One label `sel` requires (a string value under `matchLabels`, or in a plain map such as a
/// Service selector): no labels without it can match. None when it requires no such label.
pub(super) fn required_label(sel: &Map<String, Value>) -> Option<(&str, &str)> {
    let label_selector = sel.contains_key("matchLabels") || sel.contains_key("matchExpressions");
    let labels = if label_selector {
        sel.get("matchLabels").and_then(Value::as_object)?
    } else {
        sel
    };
    labels
        .iter()
        .find_map(|(k, v)| v.as_str().map(|v| (k.as_str(), v)))
}

/// Objects by (namespace, label key, label value), for finding what a selector may match.
#[derive(Default)]
pub(super) struct LabelIndex(HashMap<(Ns, String, String), Vec<usize>>);

impl LabelIndex {
    pub fn build<'a>(items: impl Iterator<Item = (usize, Ns, Option<&'a Value>)>) -> Self {
        let mut map: HashMap<(Ns, String, String), Vec<usize>> = HashMap::new();
        for (slot, ns, labels) in items {
            for (k, v) in labels.and_then(Value::as_object).into_iter().flatten() {
                if let Some(v) = v.as_str() {
                    map.entry((ns.clone(), k.clone(), v.to_string()))
                        .or_default()
                        .push(slot);
                }
            }
        }
        Self(map)
    }

    pub fn get(&self, ns: Option<&str>, k: &str, v: &str) -> &[usize] {
        self.0
            .get(&(ns.map(str::to_string), k.to_string(), v.to_string()))
            .map_or(&[], Vec::as_slice)
    }
}

/// Selecting objects (Services, PDBs, NetworkPolicies) by one label their selector requires;
/// those that require none (empty, or expressions only) are candidates for every workload of
/// their namespace.
#[derive(Default)]
pub(super) struct SelectorIndex {
    by_label: HashMap<(Ns, String, String), Vec<usize>>,
    rest: HashMap<Ns, Vec<usize>>,
}

impl SelectorIndex {
    /// `items`: (slot, namespace, what its selector picks: `selector::selection`).
    pub fn build<'a>(items: impl Iterator<Item = (usize, Ns, Selection<'a>)>) -> Self {
        let mut index = Self::default();
        for (slot, ns, selection) in items {
            match selection {
                Selection::Matching(Value::Object(m)) => match required_label(m) {
                    Some((k, v)) => index
                        .by_label
                        .entry((ns, k.to_string(), v.to_string()))
                        .or_default()
                        .push(slot),
                    None => index.rest.entry(ns).or_default().push(slot),
                },
                Selection::Matching(_) | Selection::Everything => {
                    index.rest.entry(ns).or_default().push(slot);
                }
                Selection::Nothing => {}
            }
        }
        index
    }

    /// Every selecting object of namespace `ns` that may match `labels`, in input order.
    pub fn candidates(&self, ns: Option<&str>, labels: &Value) -> Vec<usize> {
        let ns_key = ns.map(str::to_string);
        let mut out: Vec<usize> = self.rest.get(&ns_key).cloned().unwrap_or_default();
        for (k, v) in labels.as_object().into_iter().flatten() {
            if let Some(v) = v.as_str()
                && let Some(slots) = self
                    .by_label
                    .get(&(ns_key.clone(), k.clone(), v.to_string()))
            {
                out.extend(slots);
            }
        }
        out.sort_unstable();
        out.dedup();
        out
    }
}
