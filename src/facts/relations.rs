//! The relations between objects (`related.*` in expressions): which Services, HPAs, PDBs,
//! Ingresses, monitors, ReplicaSets and Pods belong to a workload, looked up through the
//! indexes of `index.rs` so that each costs what it matches. `reference.rs` computes the same
//! by plain scans, and tests/equivalence.rs proves the two agree.
//!
//! One file: one `related_val` arm per relation, each beside the index lookup it uses; in one
//! place they can be read against `RELATIONS` (registry.rs) and against reference.rs arm by arm.

use super::Facts;
use super::index::{LabelIndex, Selecting, SelectorIndex, required_label};
use super::values::{SharedVal, json_to_val};
use crate::k8s::At as _;
use crate::k8s::refs::{
    MonitorNamespaces, any_pod_spec, api_group, claim_templates, claim_volumes,
    ingress_backend_facts, ingress_backends, monitor_namespaces, monitor_watches, node_path,
    pod_references, pull_secret_names, scale_target, service_account_name,
};
use crate::k8s::selector::Selection;
use crate::k8s::{Object, WORKLOAD_KINDS, rbac, selector};
use cel::common::value::Val;
use serde_json::{Value, json};
use std::collections::{BTreeSet, HashMap};

impl Facts {
    /// Every workload, in scope or not: a Service selecting a non-MLSDM workload still selects pods.
    pub(super) fn workloads(&self) -> impl Iterator<Item = &Object> {
        WORKLOAD_KINDS.iter().flat_map(|k| self.all_of(k))
    }

    /// The workloads of one namespace, in `workloads()` order.
    pub(super) fn workloads_in(&self, ns: Option<&str>) -> &[usize] {
        self.index
            .workloads_by_ns
            .get(&ns.map(str::to_string))
            .map_or(&[], Vec::as_slice)
    }

    /// Workloads of namespace `ns` whose pod labels `sel` may match (a superset, in no order):
    /// those carrying one label the selector requires, else every workload there.
    pub(super) fn workloads_selectable(&self, ns: Option<&str>, sel: &Value) -> Vec<usize> {
        match sel.as_object().and_then(required_label) {
            Some((k, v)) => self
                .lazy
                .workload_labels
                .get_or_init(|| {
                    LabelIndex::build(self.workloads().map(|w| {
                        (
                            w.slot,
                            w.namespace.clone(),
                            w.json.at("/spec/template/metadata/labels"),
                        )
                    }))
                })
                .get(ns, k, v)
                .to_vec(),
            None => self.workloads_in(ns).to_vec(),
        }
    }

    /// Services whose selector picks this workload's pods (computed once per workload).
    pub(super) fn services_for<'a>(&'a self, w: &Object) -> Vec<&'a Object> {
        self.lazy.services_of[w.slot]
            .get_or_init(|| {
                let labels = w.pod_labels();
                self.selecting(Selecting::Service)
                    .candidates(w.namespace.as_deref(), &labels)
                    .into_iter()
                    .filter(|&s| {
                        routing_selector(&self.objects[s])
                            .is_some_and(|sel| selector::matches(sel, &labels).unwrap_or(false))
                    })
                    .collect()
            })
            .iter()
            .map(|&s| &self.objects[s])
            .collect()
    }

    pub(super) fn selecting(&self, which: Selecting) -> &SelectorIndex {
        let (cell, kind, pointer) = match which {
            Selecting::Service => (&self.lazy.services, "Service", "/spec/selector"),
            Selecting::Pdb => (&self.lazy.pdbs, "PodDisruptionBudget", "/spec/selector"),
            Selecting::NetworkPolicy => (
                &self.lazy.network_policies,
                "NetworkPolicy",
                "/spec/podSelector",
            ),
        };
        cell.get_or_init(|| {
            SelectorIndex::build(self.all_of(kind).map(|o| {
                (
                    o.slot,
                    o.namespace.clone(),
                    selector::selection(o, o.json.at(pointer)),
                )
            }))
        })
    }

    pub(super) fn selected_by<'a>(
        &'a self,
        w: &Object,
        kind: &str,
        pointer: &str,
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
            .filter(|o| match selector::selection(o, o.json.at(pointer)) {
                Selection::Matching(sel) => selector::matches(sel, &labels).unwrap_or(false),
                Selection::Everything => true,
                Selection::Nothing => false,
            })
            .collect()
    }

    pub(super) fn hpas_for<'a>(&'a self, w: &Object) -> Vec<&'a Object> {
        let targets = self.lazy.hpa_targets.get_or_init(|| {
            let mut m: HashMap<super::index::ScaleTargetKey, Vec<usize>> = HashMap::new();
            // An HPA the API server refuses is never created: it scales nothing, and its
            // minReplicas must not stand for the workload's (hpa-target-exists says why).
            for h in self.all_of("HorizontalPodAutoscaler") {
                if crate::k8s::admission::hpa_problem(&h.json).is_some() {
                    continue;
                }
                if let Some((group, kind, name)) = scale_target(&h.json) {
                    m.entry((
                        h.namespace.clone(),
                        group.to_string(),
                        kind.to_string(),
                        name.to_string(),
                    ))
                    .or_default()
                    .push(h.slot);
                }
            }
            m
        });
        targets
            .get(&(
                w.namespace.clone(),
                api_group(&w.api_version).to_string(),
                w.kind.clone(),
                w.name.clone(),
            ))
            .into_iter()
            .flatten()
            .map(|&s| &self.objects[s])
            .collect()
    }

    pub(super) fn ingresses_for<'a>(
        &'a self,
        ns: Option<&str>,
        services: &[&Object],
    ) -> Vec<&'a Object> {
        if services.is_empty() {
            return Vec::new();
        }
        // The Ingresses by the Services they route to, read once: scanned and parsed per
        // workload, a namespace of many workloads and Ingresses cost their product, twice (the
        // reverse relation asks it per Ingress of each workload; issue 12).
        let index = self.lazy.ingresses_by_backend.get_or_init(|| {
            let mut m: HashMap<(Option<String>, String), Vec<usize>> = HashMap::new();
            for i in self.all_of("Ingress") {
                let mut names = ingress_backends(&i.json);
                names.sort_unstable();
                names.dedup();
                for name in names {
                    m.entry((i.namespace.clone(), name))
                        .or_default()
                        .push(i.slot);
                }
            }
            m
        });
        // In input order, each once, as the scan of the namespace's Ingresses gave them.
        let slots: BTreeSet<usize> = services
            .iter()
            .flat_map(|s| {
                index
                    .get(&(ns.map(str::to_string), s.name.clone()))
                    .into_iter()
                    .flatten()
                    .copied()
            })
            .collect();
        slots.into_iter().map(|s| &self.objects[s]).collect()
    }

    /// ServiceMonitors (any namespace they may watch from) selecting one of these Services.
    pub(super) fn monitors_for<'a>(
        &'a self,
        kind: &str,
        ns: Option<&str>,
        labels_list: &[Value],
    ) -> Vec<&'a Object> {
        self.all_of(kind)
            .filter(|m| monitor_selects(m, ns, labels_list))
            .collect()
    }

    /// ConfigMaps labelled as Grafana dashboards and GrafanaDashboards: the same list for every
    /// workload, built once.
    pub(super) fn dashboards(&self) -> SharedVal {
        self.lazy
            .dashboards
            .get_or_init(|| {
                let list: Box<dyn Val> = Box::new(cel::common::types::CelList::from(
                    self.all_of("ConfigMap")
                        .filter(|o| {
                            o.json
                                .at("/metadata/labels")
                                .and_then(|l| l.get("grafana_dashboard"))
                                .is_some()
                        })
                        .chain(self.all_of("GrafanaDashboard"))
                        .map(|o| Box::new(SharedVal::from_json(&o.json)) as Box<dyn Val>)
                        .collect::<Vec<_>>(),
                ));
                SharedVal(std::sync::Arc::from(list))
            })
            .clone()
    }

    /// Every object of `kinds` in namespace `ns`, as one shared cel list. It is the same for
    /// every workload of the namespace, so it is converted once per run and kept: converted
    /// per `ValScope` instead, a namespace of thousands of workloads and RoleBindings would
    /// convert every RoleBinding once per 64 workloads.
    pub(super) fn namespace_list(
        &self,
        ns: Option<&str>,
        kinds: &'static [&'static str],
    ) -> SharedVal {
        let key = (kinds, ns.map(str::to_string));
        let lists = || {
            self.lazy
                .namespace_lists
                .lock()
                .unwrap_or_else(std::sync::PoisonError::into_inner)
        };
        if let Some(list) = lists().get(&key) {
            return list.clone();
        }
        // Converted outside the lock: another thread converting the same list meanwhile only
        // repeats the work.
        let list: Box<dyn Val> = Box::new(cel::common::types::CelList::from(
            kinds
                .iter()
                .flat_map(|k| self.same_ns(ns, k))
                .map(|o| Box::new(SharedVal::from_json(&o.json)) as Box<dyn Val>)
                .collect::<Vec<_>>(),
        ));
        let list = SharedVal(std::sync::Arc::from(list));
        lists().entry(key).or_insert(list).clone()
    }

    /// `serviceAccountGrants`: the bindings that grant to the workload's ServiceAccount, found
    /// through an index of the bindings' subject names (a workload costs the bindings that
    /// name it or its groups, not every binding of the cluster).
    pub(super) fn service_account_grants(&self, w: &Object) -> Value {
        let index = self.lazy.rbac_subjects.get_or_init(|| {
            let mut m: HashMap<String, Vec<usize>> = HashMap::new();
            for b in rbac::BINDING_KINDS.iter().flat_map(|k| self.all_of(k)) {
                for s in rbac::subjects(b) {
                    if let Some(n) = rbac::subject_index_name(s) {
                        m.entry(n.to_string()).or_default().push(b.slot);
                    }
                }
            }
            m
        });
        let ns = w.namespace.as_deref();
        let name = service_account_name(w.pod_spec());
        let mut slots: Vec<usize> = match ns {
            Some(_) => rbac::subject_names(ns, name)
                .iter()
                .filter_map(|k| index.get(k))
                .flatten()
                .copied()
                .collect(),
            // A workload without a namespace may be applied in any: a group of any
            // namespace's accounts may grant to it.
            None => index
                .iter()
                .filter(|(k, _)| {
                    *k == name || k.starts_with(rbac::GROUP_ALL) || *k == rbac::GROUP_AUTHENTICATED
                })
                .flat_map(|(_, v)| v)
                .copied()
                .collect(),
        };
        slots.sort_unstable();
        slots.dedup();
        let cluster_roles: Vec<&Object> = self.all_of("ClusterRole").collect();
        super::grants_value(
            slots.iter().map(|&s| &self.objects[s]),
            w,
            |k, ns, n| self.find(k, ns, n),
            &cluster_roles,
        )
    }

    /// ReplicaSets of the workload's namespace that name it as an owner.
    pub(super) fn replica_sets_of<'a>(&'a self, obj: &Object) -> Vec<&'a Object> {
        let owners = self.lazy.rs_owners.get_or_init(|| {
            let mut m: HashMap<(Option<String>, String, String), Vec<usize>> = HashMap::new();
            for r in self.all_of("ReplicaSet") {
                let mut keys: Vec<(Option<String>, String, String)> = r
                    .json
                    .at("/metadata/ownerReferences")
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
    pub(super) fn pods_of<'a>(&'a self, obj: &Object) -> Vec<&'a Object> {
        let ns = obj.namespace.as_deref();
        let sel = obj.json.at("/spec/selector").unwrap_or(&Value::Null);
        if sel.is_null() {
            return Vec::new();
        }
        let candidates: Vec<usize> = match sel.as_object().and_then(required_label) {
            Some((k, v)) => self
                .lazy
                .pod_labels
                .get_or_init(|| {
                    LabelIndex::build(
                        self.all_of("Pod")
                            .map(|p| (p.slot, p.namespace.clone(), p.json.at("/metadata/labels"))),
                    )
                })
                .get(ns, k, v)
                .to_vec(),
            None => self.slots_in(ns, "Pod").to_vec(),
        };
        candidates
            .into_iter()
            .map(|s| &self.objects[s])
            .filter(|p| {
                selector::matches(sel, p.json.at("/metadata/labels").unwrap_or(&Value::Null))
                    .unwrap_or(false)
            })
            .collect()
    }

    /// The workloads a non-workload object may apply to (a superset, in `workloads()` order):
    /// found through the objects of its kind, namespace and name, which is what the relation's
    /// predicate compares.
    pub(super) fn workload_candidates(&self, obj: &Object) -> Vec<&Object> {
        let ns = obj.namespace.as_deref();
        let same = |kind: &str| self.named(kind, ns, &obj.name).to_vec();
        // The workloads a Service (by slot) selects, as `services_for` decides.
        let selected_by_service = |s: usize| -> Vec<usize> {
            routing_selector(&self.objects[s])
                .map_or_else(Vec::new, |sel| self.workloads_selectable(ns, sel))
        };
        let mut slots: Vec<usize> = match obj.kind.as_str() {
            "Service" => same("Service")
                .into_iter()
                .flat_map(selected_by_service)
                .collect(),
            "PodDisruptionBudget" | "NetworkPolicy" => {
                let pointer = if obj.kind == "NetworkPolicy" {
                    "/spec/podSelector"
                } else {
                    "/spec/selector"
                };
                same(&obj.kind)
                    .into_iter()
                    .flat_map(|p| {
                        let o = &self.objects[p];
                        match selector::selection(o, o.json.at(pointer)) {
                            Selection::Matching(sel) => self.workloads_selectable(ns, sel),
                            Selection::Everything => self.workloads_in(ns).to_vec(),
                            Selection::Nothing => Vec::new(),
                        }
                    })
                    .collect()
            }
            "HorizontalPodAutoscaler" => same("HorizontalPodAutoscaler")
                .into_iter()
                .flat_map(|h| match scale_target(&self.objects[h].json) {
                    Some((group, kind, name)) => self
                        .named(kind, ns, name)
                        .iter()
                        .copied()
                        .filter(|&w| api_group(&self.objects[w].api_version) == group)
                        .collect(),
                    None => Vec::new(),
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
                    match monitor_namespaces(m) {
                        MonitorNamespaces::Any => out.extend(self.index.workload_pos.keys()),
                        MonitorNamespaces::Own => {
                            out.extend(self.workloads_in(m.namespace.as_deref()));
                        }
                        MonitorNamespaces::Named(names) => {
                            for n in names {
                                out.extend(self.workloads_in(Some(n)));
                            }
                        }
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
    pub(super) fn watches_audited(&self, m: &Object) -> bool {
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
        match monitor_namespaces(m) {
            MonitorNamespaces::Any => !namespaces.is_empty() || *namespaceless,
            MonitorNamespaces::Own => present(m.namespace.as_deref()),
            MonitorNamespaces::Named(names) => names.into_iter().any(|n| present(Some(n))),
        }
    }

    /// ConfigMaps and Secrets a pod spec references, found or missing.
    pub(super) fn references<'a>(
        &'a self,
        w: &Object,
    ) -> (Vec<&'a Object>, Vec<&'a Object>, Vec<Value>) {
        let ns = w.namespace.as_deref();
        let mut cms = Vec::new();
        let mut secrets = Vec::new();
        let mut missing = Vec::new();
        for r in pod_references(w.pod_spec().unwrap_or(&Value::Null)) {
            let found = self.find(&r.kind, ns, &r.name);
            if let Some(o) = found {
                for key in r.keys.iter().filter(|k| lacks_key(o, k)) {
                    missing.push(json!({"kind": r.kind, "name": r.name, "via": r.via, "optional": r.optional, "key": key}));
                }
            }
            match found {
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

    /// The budgets of `pdbs` (those selecting `w`'s pods) that also select another workload's
    /// pods, with those workloads: the eviction API counts them all against `minAvailable`, so a
    /// budget shared by a stable and a canary Deployment lets every pod of one be evicted.
    fn shared_pdbs(&self, w: &Object, pdbs: &[&Object]) -> Value {
        Value::Array(
            pdbs.iter()
                .filter_map(|p| {
                    shared_budget(w, p, self.workload_candidates(p), |o| {
                        self.selected_by(o, "PodDisruptionBudget", "/spec/selector")
                            .iter()
                            .any(|q| q.slot == p.slot)
                    })
                })
                .collect(),
        )
    }

    /// The VulnerabilityReports of `w`'s namespace that scanned what its container `name` runs
    /// (`image`), through an index by namespace and image name.
    fn image_scans(&self, w: &Object, name: &str, image: &str) -> Vec<&Object> {
        let image = super::scans::parse_image(image);
        self.lazy
            .image_scans
            .get_or_init(|| {
                let mut m: HashMap<(Option<String>, String), Vec<usize>> = HashMap::new();
                for r in self.all_of("VulnerabilityReport") {
                    if let Some(scanned) = super::scans::scanned_image(r) {
                        m.entry((r.namespace.clone(), scanned.name))
                            .or_default()
                            .push(r.slot);
                    }
                }
                m
            })
            .get(&(w.namespace.clone(), image.name.clone()))
            .into_iter()
            .flatten()
            .map(|&s| &self.objects[s])
            .filter(|r| super::scans::scans(r, name, &image))
            .collect()
    }

    /// `hostPathClaims`: the claims are found by namespace and name, the PersistentVolumes by
    /// name or through an index of the claims their `claimRef` names.
    fn host_path_claims(&self, obj: &Object) -> Value {
        let ns = obj.namespace.as_deref();
        let refs = self.lazy.pv_claim_refs.get_or_init(|| {
            let mut m: HashMap<(Option<String>, String), Vec<usize>> = HashMap::new();
            for pv in self.all_of("PersistentVolume") {
                let r = pv.json.at("/spec/claimRef");
                if let Some(name) = r.and_then(|r| r.get("name")).and_then(Value::as_str) {
                    let claim_ns = r
                        .and_then(|r| r.get("namespace"))
                        .and_then(Value::as_str)
                        .map(str::to_string);
                    m.entry((claim_ns, name.to_string()))
                        .or_default()
                        .push(pv.slot);
                }
            }
            m
        });
        let set_claims = || {
            self.lazy.set_claims.get_or_init(|| {
                let claims = self
                    .all_of("PersistentVolumeClaim")
                    .map(|c| (c.namespace.clone(), c.name.as_str()));
                let pre_bound = refs.keys().map(|(ns, name)| (ns.clone(), name.as_str()));
                let mut m: HashMap<(Option<String>, String), Vec<String>> = HashMap::new();
                for (claim_ns, claim) in claims.chain(pre_bound) {
                    if let Some(base) = crate::k8s::refs::set_claim_base(claim) {
                        let names = m.entry((claim_ns, base.to_string())).or_default();
                        if !names.iter().any(|n| n == claim) {
                            names.push(claim.to_string());
                        }
                    }
                }
                m
            })
        };
        host_path_claims(
            obj,
            |claim| self.find("PersistentVolumeClaim", ns, claim),
            |name| self.find("PersistentVolume", None, name),
            |claim| {
                refs.get(&(ns.map(str::to_string), claim.to_string()))
                    .into_iter()
                    .flatten()
                    .map(|&s| &self.objects[s])
                    .collect()
            },
            |base| {
                set_claims()
                    .get(&(ns.map(str::to_string), base.to_string()))
                    .cloned()
                    .unwrap_or_default()
            },
        )
    }

    /// `related` for an object, built from the scope's CEL values of the objects (shared, not
    /// copied).
    ///
    /// `wants` says which fields the checks evaluated on the object read: a field none reads
    /// may be left out, so that an expensive relation costs only the objects whose checks read
    /// it (`workloadsInNamespace`, read by one NetworkPolicy check, listed every workload of a
    /// namespace for each of its Pods and Services; issue 12).
    pub fn related_val(
        &self,
        i: usize,
        scope: &super::ValScope,
        wants: &dyn Fn(&str) -> bool,
    ) -> Box<dyn Val> {
        use cel::common::types::{CelBool, CelList, CelMap, CelMapKey, CelNull};
        let obj = &self.objects[i];
        let list = |v: Vec<&Object>| -> Box<dyn Val> {
            Box::new(CelList::from(
                v.into_iter()
                    .map(|o| Box::new(scope.object(self, o.slot)) as Box<dyn Val>)
                    .collect::<Vec<_>>(),
            ))
        };
        let one = |o: Option<&Object>| -> Box<dyn Val> {
            o.map_or_else(
                || Box::new(CelNull) as Box<dyn Val>,
                |o| Box::new(scope.object(self, o.slot)),
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
            let service_account =
                self.find("ServiceAccount", ns, service_account_name(obj.pod_spec()));
            let pull_missing: Vec<&str> =
                pull_secret_names(obj.pod_spec(), service_account.map(|sa| &sa.json))
                    .into_iter()
                    .filter(|name| self.find("Secret", ns, name).is_none())
                    .collect();
            let pdbs = self.selected_by(obj, "PodDisruptionBudget", "/spec/selector");
            let shared_pdbs = self.shared_pdbs(obj, &pdbs);
            map(vec![
                ("services", list(services.clone())),
                ("pdbs", list(pdbs)),
                ("sharedPdbs", json_val(shared_pdbs)),
                ("hpas", list(self.hpas_for(obj))),
                (
                    "networkPolicies",
                    list(self.selected_by(obj, "NetworkPolicy", "/spec/podSelector")),
                ),
                (
                    "namespaceNetworkPolicies",
                    Box::new(self.namespace_list(ns, &["NetworkPolicy"])),
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
                    Box::new(self.namespace_list(ns, &["PrometheusRule"])),
                ),
                (
                    "resourceQuotas",
                    Box::new(self.namespace_list(ns, &["ResourceQuota"])),
                ),
                (
                    "limitRanges",
                    Box::new(self.namespace_list(ns, &["LimitRange"])),
                ),
                ("configMaps", list(cms)),
                ("secrets", list(secrets)),
                ("missingReferences", json_val(json!(missing))),
                ("missingImagePullSecrets", json_val(json!(pull_missing))),
                (
                    "namespace",
                    one(ns.and_then(|n| self.find("Namespace", None, n))),
                ),
                ("serviceAccount", one(service_account)),
                (
                    "roleBindings",
                    Box::new(self.namespace_list(ns, &["RoleBinding"])),
                ),
                (
                    "serviceAccountGrants",
                    json_val(self.service_account_grants(obj)),
                ),
                (
                    "externalSecrets",
                    Box::new(self.namespace_list(ns, &["ExternalSecret", "SealedSecret"])),
                ),
                (
                    "alertmanagerConfigs",
                    Box::new(self.namespace_list(ns, &["AlertmanagerConfig"])),
                ),
                ("dashboards", Box::new(self.dashboards())),
                ("replicaSets", list(self.replica_sets_of(obj))),
                ("pods", list(self.pods_of(obj))),
                ("imageScans", {
                    let scans: Vec<(&str, Box<dyn Val>)> = super::scans::containers(obj.pod_spec())
                        .into_iter()
                        .map(|(name, image)| (name, list(self.image_scans(obj, name, image))))
                        .collect();
                    map(scans)
                }),
                ("hostPathClaims", json_val(self.host_path_claims(obj))),
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
                        .selected_by(w, "PodDisruptionBudget", "/spec/selector")
                        .iter()
                        .any(|p| p.name == obj.name),
                    "NetworkPolicy" => self
                        .selected_by(w, "NetworkPolicy", "/spec/podSelector")
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
                    // Whether `monitors_for(w)` holds this monitor, asked of the monitors of its
                    // kind, namespace and name only: asked of every monitor of the cluster, for
                    // each workload a monitor may watch, it was monitors x workloads x monitors
                    // (issue 12, from the review for superlinear loops).
                    "ServiceMonitor" => {
                        let labels: Vec<Value> =
                            self.services_for(w).iter().map(|s| s.labels()).collect();
                        self.named("ServiceMonitor", ns, &obj.name)
                            .iter()
                            .any(|&m| {
                                monitor_selects(&self.objects[m], w.namespace.as_deref(), &labels)
                            })
                    }
                    "PodMonitor" => {
                        let labels = [w.pod_labels()];
                        self.named("PodMonitor", ns, &obj.name).iter().any(|&m| {
                            monitor_selects(&self.objects[m], w.namespace.as_deref(), &labels)
                        })
                    }
                    "ConfigMap" | "Secret" => pod_references(w.pod_spec().unwrap_or(&Value::Null))
                        .iter()
                        .any(|r| r.kind == obj.kind && r.name == obj.name),
                    _ => false,
                })
                .collect();
            let backends: Vec<Value> = if obj.kind == "Ingress" {
                ingress_backend_facts(&obj.json, |b| self.find("Service", ns, b))
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
                                    obj.json.at("/spec/selector").unwrap_or(&Value::Null),
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
            let mut entries = vec![
                ("workloads", list(workloads)),
                ("monitoredServices", list(monitored)),
                (
                    "watchesAuditedNamespace",
                    Box::new(CelBool::from(watches_audited)) as Box<dyn Val>,
                ),
                ("ingressBackends", json_val(Value::Array(backends))),
                ("hostPathClaims", json_val(self.host_path_claims(obj))),
            ];
            // Every workload of the namespace, for every Pod, Service... of it: the square of
            // a namespace's size when each object's checks did not read it.
            if wants("workloadsInNamespace") {
                entries.push((
                    "workloadsInNamespace",
                    list(
                        self.workloads_in(ns)
                            .iter()
                            .map(|&s| &self.objects[s])
                            .collect(),
                    ),
                ));
            }
            map(entries)
        }
    }
}

/// The selector by which a Service routes to pods: a non-empty one, of a Service that is not an
/// ExternalName (the EndpointSlice controller gives those no endpoints, and DNS answers their
/// name with a CNAME: traffic and scrapes never reach the pods a selector left on one names,
/// which passed service-selects-workload and the checks through it).
fn routing_selector(service: &Object) -> Option<&Value> {
    if service.json.at("/spec/type").and_then(Value::as_str) == Some("ExternalName") {
        return None;
    }
    service
        .json
        .at("/spec/selector")
        .filter(|sel| sel.as_object().is_some_and(|m| !m.is_empty()))
}

/// Whether a ConfigMap or Secret that exists lacks `key`: not in its `data` or `binaryData`
/// (a Secret's `data` or `stringData`). A Secret read from the cluster comes without its data
/// (listed metadata-only; the redaction gives every Secret an empty `data`): a Secret with no
/// key at all says nothing of its keys, and none is said to be missing.
pub(super) fn lacks_key(o: &Object, key: &str) -> bool {
    let fields: &[&str] = if o.kind == "Secret" {
        &["data", "stringData"]
    } else {
        &["data", "binaryData"]
    };
    let maps: Vec<&serde_json::Map<String, Value>> = fields
        .iter()
        .filter_map(|f| o.json.get(*f).and_then(Value::as_object))
        .collect();
    if o.kind == "Secret" && maps.iter().all(|m| m.is_empty()) {
        return false;
    }
    !maps.iter().any(|m| m.contains_key(key))
}

/// Whether a workload runs pods a PodDisruptionBudget counts: one scaled to zero (the idle
/// colour of a blue/green pair, Flagger's primary after promotion) runs none (`sharedPdbs`).
pub(super) fn runs_pods(w: &Object) -> bool {
    w.json.at("/spec/replicas").and_then(Value::as_u64) != Some(0)
}

/// Budget `p`'s entry of `related.sharedPdbs` for workload `w`: the other running workloads of
/// its namespace among `candidates` that it selects (`selects`), sorted, or `None` when it
/// selects only `w`'s pods. The indexed and the straightforward computations differ only in
/// how they find the candidates and what a budget selects.
pub(super) fn shared_budget<'a>(
    w: &Object,
    p: &Object,
    candidates: impl IntoIterator<Item = &'a Object>,
    selects: impl Fn(&Object) -> bool,
) -> Option<Value> {
    let mut others: Vec<String> = candidates
        .into_iter()
        .filter(|o| o.slot != w.slot && o.namespace == p.namespace && runs_pods(o))
        .filter(|o| selects(o))
        .map(Object::reference)
        .collect();
    others.sort();
    others.dedup();
    (!others.is_empty()).then(|| json!({"pdb": p.name, "workloads": others}))
}

/// `related.hostPathClaims` of `obj` (review finding: a hostPath PersistentVolume mounted through
/// a claim passed security-host-isolation and pods-outside-workloads-hardened, which read only
/// the pod spec's own `hostPath` volumes, and Pod Security admits claim volumes whatever they
/// bind to). For each `persistentVolumeClaim` volume of its pod spec, the PersistentVolumes the
/// claim binds to: the one its `spec.volumeName` names when the claim is audited and names one,
/// else those whose `spec.claimRef` names the claim (pre-bound to it); of those, the ones that
/// mount a node's path (`hostPath`, or `local`: a node's directory or disk, which the audit cannot
/// tell from `/`), as `{volume, claim, persistentVolume, type, path}`. A claim or volume the
/// input does not hold gives nothing: what it binds to cannot be known here. `claim_of(name)`
/// finds the claim of `obj`'s namespace, `pv_named` a PersistentVolume by name, `pvs_claiming`
/// those whose claimRef names the claim, `set_claims(base)` the names of the claims of `obj`'s
/// namespace named `<base>-<ordinal>` (audited claims and those claimRefs name): the indexed
/// and straightforward computations differ only in how they find them.
///
/// A StatefulSet's pods also mount the claims of its `volumeClaimTemplates`, which its pod
/// spec does not list (review finding, left open since the hostPath relation landed: a
/// StatefulSet on hostPath or `local` volumes, as local-path provisioners make them, passed):
/// template `data` of set `web` is claim `data-web-<n>` for each pod, bound as any claim is,
/// or to the template's own `spec.volumeName`. The claims are found by name, whatever the
/// set's replicas: a claim of another ordinal is mounted when the set scales to it.
pub(super) fn host_path_claims<'a>(
    obj: &Object,
    claim_of: impl Fn(&str) -> Option<&'a Object>,
    pv_named: impl Fn(&str) -> Option<&'a Object>,
    pvs_claiming: impl Fn(&str) -> Vec<&'a Object>,
    set_claims: impl Fn(&str) -> Vec<String>,
) -> Value {
    let mut out = Vec::new();
    // The PersistentVolumes one claim binds to: the one its `spec.volumeName` names when the
    // input holds the claim and it names one, else those pre-bound to it by their claimRef.
    let bound = |claim: &str| -> Vec<&'a Object> {
        let volume_name = claim_of(claim)
            .and_then(|c| c.json.at("/spec/volumeName"))
            .and_then(Value::as_str)
            .filter(|n| !n.is_empty());
        match volume_name {
            Some(name) => pv_named(name).into_iter().collect(),
            None => pvs_claiming(claim),
        }
    };
    let mut push = |volume: &str, claim: &str, pv: &Object| {
        if let Some((kind, path)) = node_path(pv) {
            out.push(json!({
                "volume": volume,
                "claim": claim,
                "persistentVolume": pv.name,
                "type": kind,
                "path": path,
            }));
        }
    };
    for (volume, claim) in any_pod_spec(obj).map(claim_volumes).unwrap_or_default() {
        for pv in bound(claim) {
            push(volume, claim, pv);
        }
    }
    for (template, template_volume) in claim_templates(obj) {
        let base = format!("{template}-{}", obj.name);
        let mut claims = set_claims(&base);
        claims.sort_by(|a, b| {
            let ordinal = crate::k8s::refs::set_claim_ordinal;
            (ordinal(a), a).cmp(&(ordinal(b), b))
        });
        // Each PersistentVolume once a template: with a `volumeName` every pod's claim asks
        // for the same one.
        let mut seen: Vec<&str> = Vec::new();
        let via_template = template_volume.and_then(&pv_named);
        // Named after the set's first pod (`spec.ordinals.start`, 0 by default).
        let start = obj
            .json
            .at("/spec/ordinals/start")
            .and_then(Value::as_u64)
            .unwrap_or(0);
        let first_claim = format!("{base}-{start}");
        for (claim, pv) in claims
            .iter()
            .flat_map(|c| bound(c).into_iter().map(move |pv| (c.as_str(), pv)))
            .chain(via_template.map(|pv| (first_claim.as_str(), pv)))
        {
            if !seen.contains(&pv.name.as_str()) {
                seen.push(&pv.name);
                push(template, claim, pv);
            }
        }
    }
    Value::Array(out)
}

/// Whether monitor `m` (a ServiceMonitor or PodMonitor) watches namespace `ns` and its
/// selector matches one of `labels_list`: `Facts::monitors_for`'s test of one monitor.
fn monitor_selects(m: &Object, ns: Option<&str>, labels_list: &[Value]) -> bool {
    let sel = m.json.at("/spec/selector").unwrap_or(&Value::Null);
    monitor_watches(m, ns)
        && labels_list
            .iter()
            .any(|l| selector::matches(sel, l).unwrap_or(false))
}
