//! The straightforward relation builder: every relation found by scanning the objects, exactly
//! as before the indexes of issue 12. Kept as the reference the indexed path is tested against
//! (tests/equivalence.rs compares whole reports), not used by a normal run.

use super::Facts;
use super::values::json_to_cel;
use crate::k8s::At as _;
use crate::k8s::refs::{
    api_group, claim_ref_names, ingress_backend_facts, ingress_backends, monitor_watches,
    pod_references, pull_secret_names, scale_target, service_account_name,
};
use crate::k8s::selector::Selection;
use crate::k8s::{Object, WORKLOAD_KINDS, selector};
use cel::objects::Value as CelValue;
use serde_json::{Value, json};
use std::collections::BTreeSet;

impl Facts {
    fn naive_find<'a>(&'a self, kind: &str, ns: Option<&str>, name: &str) -> Option<&'a Object> {
        self.same_ns(ns, kind).find(|o| o.name == name)
    }

    /// Every workload, in scope or not: a Service selecting a non-MLSDM workload still selects pods.
    fn naive_workloads(&self) -> impl Iterator<Item = &Object> {
        WORKLOAD_KINDS.iter().flat_map(|k| self.all_of(k))
    }

    /// Services whose selector picks this workload's pods.
    fn naive_services_for<'a>(&'a self, w: &Object) -> Vec<&'a Object> {
        let labels = w.pod_labels();
        self.same_ns(w.namespace.as_deref(), "Service")
            .filter(|s| s.json.at("/spec/type").and_then(Value::as_str) != Some("ExternalName"))
            .filter(|s| {
                s.json
                    .at("/spec/selector")
                    .and_then(Value::as_object)
                    .is_some_and(|sel| {
                        !sel.is_empty()
                            && selector::matches(&Value::Object(sel.clone()), &labels)
                                .unwrap_or(false)
                    })
            })
            .collect()
    }

    fn naive_selected_by<'a>(&'a self, w: &Object, kind: &str, pointer: &str) -> Vec<&'a Object> {
        let labels = w.pod_labels();
        self.same_ns(w.namespace.as_deref(), kind)
            .filter(|o| match selector::selection(o, o.json.at(pointer)) {
                Selection::Matching(sel) => selector::matches(sel, &labels).unwrap_or(false),
                Selection::Everything => true,
                Selection::Nothing => false,
            })
            .collect()
    }

    fn naive_hpas_for<'a>(&'a self, w: &Object) -> Vec<&'a Object> {
        self.same_ns(w.namespace.as_deref(), "HorizontalPodAutoscaler")
            .filter(|h| {
                crate::k8s::admission::hpa_problem(&h.json).is_none()
                    && scale_target(&h.json) == Some((api_group(&w.api_version), &w.kind, &w.name))
            })
            .collect()
    }

    fn naive_ingresses_for<'a>(
        &'a self,
        ns: Option<&str>,
        services: &[&Object],
    ) -> Vec<&'a Object> {
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
    fn naive_monitors_for<'a>(
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
                let sel = m.json.at("/spec/selector").cloned().unwrap_or(Value::Null);
                ns_ok
                    && labels_list
                        .iter()
                        .any(|l| selector::matches(&sel, l).unwrap_or(false))
            })
            .collect()
    }

    /// ConfigMaps and Secrets a pod spec references, found or missing.
    fn naive_references<'a>(
        &'a self,
        w: &Object,
    ) -> (Vec<&'a Object>, Vec<&'a Object>, Vec<Value>) {
        let ns = w.namespace.as_deref();
        let mut cms = Vec::new();
        let mut secrets = Vec::new();
        let mut missing = Vec::new();
        for r in pod_references(w.pod_spec().unwrap_or(&Value::Null)) {
            let found = self.naive_find(&r.kind, ns, &r.name);
            if let Some(o) = found {
                for key in r.keys.iter().filter(|k| super::relations::lacks_key(o, k)) {
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

    /// `hostPathClaims`, every PersistentVolume scanned.
    fn naive_host_path_claims(&self, obj: &Object) -> Value {
        let ns = obj.namespace.as_deref();
        super::relations::host_path_claims(
            obj,
            |claim| self.naive_find("PersistentVolumeClaim", ns, claim),
            |name| self.naive_find("PersistentVolume", None, name),
            |claim| {
                self.all_of("PersistentVolume")
                    .filter(|pv| claim_ref_names(pv, ns, claim))
                    .collect()
            },
            |base| {
                let claims = self
                    .all_of("PersistentVolumeClaim")
                    .filter(|c| c.namespace.as_deref() == ns)
                    .map(|c| c.name.as_str());
                let pre_bound = self.all_of("PersistentVolume").filter_map(|pv| {
                    let r = pv.json.at("/spec/claimRef")?;
                    (r.get("namespace").and_then(Value::as_str) == ns)
                        .then(|| r.get("name").and_then(Value::as_str))
                        .flatten()
                });
                let mut names: Vec<String> = Vec::new();
                for claim in claims.chain(pre_bound) {
                    if crate::k8s::refs::set_claim_base(claim) == Some(base)
                        && !names.iter().any(|n| n == claim)
                    {
                        names.push(claim.to_string());
                    }
                }
                names
            },
        )
    }

    /// `related` for an object, built from the objects' cached CEL values (shared, not copied).
    pub(super) fn naive_related_cel(&self, i: usize) -> CelValue {
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
            let services = self.naive_services_for(obj);
            let service_labels: Vec<Value> = services.iter().map(|s| s.labels()).collect();
            let (cms, secrets, missing) = self.naive_references(obj);
            let service_account =
                self.naive_find("ServiceAccount", ns, service_account_name(obj.pod_spec()));
            let pull_missing: Vec<&str> =
                pull_secret_names(obj.pod_spec(), service_account.map(|sa| &sa.json))
                    .into_iter()
                    .filter(|name| self.naive_find("Secret", ns, name).is_none())
                    .collect();
            map(vec![
                ("services", list(services.clone())),
                (
                    "pdbs",
                    list(self.naive_selected_by(obj, "PodDisruptionBudget", "/spec/selector")),
                ),
                ("sharedPdbs", {
                    let shared: Vec<Value> = self
                        .naive_selected_by(obj, "PodDisruptionBudget", "/spec/selector")
                        .into_iter()
                        .filter_map(|p| {
                            super::relations::shared_budget(obj, p, self.naive_workloads(), |o| {
                                self.naive_selected_by(o, "PodDisruptionBudget", "/spec/selector")
                                    .iter()
                                    .any(|q| q.slot == p.slot)
                            })
                        })
                        .collect();
                    json_to_cel(&Value::Array(shared))
                }),
                ("hpas", list(self.naive_hpas_for(obj))),
                (
                    "networkPolicies",
                    list(self.naive_selected_by(obj, "NetworkPolicy", "/spec/podSelector")),
                ),
                (
                    "namespaceNetworkPolicies",
                    list(self.same_ns(ns, "NetworkPolicy").collect()),
                ),
                ("ingresses", list(self.naive_ingresses_for(ns, &services))),
                (
                    "serviceMonitors",
                    list(self.naive_monitors_for("ServiceMonitor", ns, &service_labels)),
                ),
                (
                    "podMonitors",
                    list(self.naive_monitors_for("PodMonitor", ns, &[obj.pod_labels()])),
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
                    one(ns.and_then(|n| self.naive_find("Namespace", None, n))),
                ),
                ("serviceAccount", one(service_account)),
                (
                    "roleBindings",
                    list(self.same_ns(ns, "RoleBinding").collect()),
                ),
                ("serviceAccountGrants", {
                    let mut bindings: Vec<&Object> = crate::k8s::rbac::BINDING_KINDS
                        .iter()
                        .flat_map(|k| self.all_of(k))
                        .collect();
                    bindings.sort_by_key(|b| b.slot);
                    let cluster_roles: Vec<&Object> = self.all_of("ClusterRole").collect();
                    json_to_cel(&super::grants_value(
                        bindings.into_iter(),
                        obj,
                        |k, ns, n| self.naive_find(k, ns, n),
                        &cluster_roles,
                    ))
                }),
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
                                    .at("/metadata/ownerReferences")
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
                    "imageScans",
                    map(super::scans::containers(obj.pod_spec())
                        .into_iter()
                        .map(|(name, image)| {
                            let image = super::scans::parse_image(image);
                            (
                                name,
                                list(
                                    self.same_ns(ns, "VulnerabilityReport")
                                        .filter(|r| super::scans::scans(r, name, &image))
                                        .collect(),
                                ),
                            )
                        })
                        .collect()),
                ),
                (
                    "hostPathClaims",
                    json_to_cel(&self.naive_host_path_claims(obj)),
                ),
                (
                    "pods",
                    list(
                        self.same_ns(ns, "Pod")
                            .filter(|p| {
                                let sel = obj
                                    .json
                                    .at("/spec/selector")
                                    .cloned()
                                    .unwrap_or(Value::Null);
                                !sel.is_null()
                                    && selector::matches(&sel, &p.labels()).unwrap_or(false)
                            })
                            .collect(),
                    ),
                ),
            ])
        } else {
            // The reverse direction: which in-scope workloads this object applies to.
            let workloads: Vec<&Object> = self
                .naive_workloads()
                .filter(|w| {
                    w.namespace.as_deref() == ns
                        || obj.kind == "ServiceMonitor"
                        || obj.kind == "PodMonitor"
                })
                .filter(|w| match obj.kind.as_str() {
                    "Service" => self
                        .naive_services_for(w)
                        .iter()
                        .any(|s| s.name == obj.name),
                    "PodDisruptionBudget" => self
                        .naive_selected_by(w, "PodDisruptionBudget", "/spec/selector")
                        .iter()
                        .any(|p| p.name == obj.name),
                    "NetworkPolicy" => self
                        .naive_selected_by(w, "NetworkPolicy", "/spec/podSelector")
                        .iter()
                        .any(|p| p.name == obj.name),
                    "HorizontalPodAutoscaler" => {
                        self.naive_hpas_for(w).iter().any(|h| h.name == obj.name)
                    }
                    "Ingress" => {
                        let services = self.naive_services_for(w);
                        self.naive_ingresses_for(ns, &services)
                            .iter()
                            .any(|x| x.name == obj.name)
                    }
                    "ServiceMonitor" => {
                        let labels: Vec<Value> = self
                            .naive_services_for(w)
                            .iter()
                            .map(|s| s.labels())
                            .collect();
                        self.naive_monitors_for("ServiceMonitor", w.namespace.as_deref(), &labels)
                            .iter()
                            .any(|m| m.name == obj.name && m.namespace == obj.namespace)
                    }
                    "PodMonitor" => self
                        .naive_monitors_for("PodMonitor", w.namespace.as_deref(), &[w.pod_labels()])
                        .iter()
                        .any(|m| m.name == obj.name && m.namespace == obj.namespace),
                    "ConfigMap" | "Secret" => pod_references(w.pod_spec().unwrap_or(&Value::Null))
                        .iter()
                        .any(|r| r.kind == obj.kind && r.name == obj.name),
                    _ => false,
                })
                .collect();
            let backends: Vec<Value> = if obj.kind == "Ingress" {
                ingress_backend_facts(&obj.json, |b| self.naive_find("Service", ns, b))
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
                    "hostPathClaims",
                    json_to_cel(&self.naive_host_path_claims(obj)),
                ),
                (
                    "workloadsInNamespace",
                    list(
                        self.naive_workloads()
                            .filter(|w| w.namespace.as_deref() == ns)
                            .collect(),
                    ),
                ),
            ])
        }
    }
}
