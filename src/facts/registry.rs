//! Every `related.*` value a check can read: which objects carry it, the kinds it is computed
//! from, and what it holds. This table is where a relation is declared; what depends on the list
//! is derived from it or held to it by a test:
//! - a check's `depends_on` (src/checks/compile.rs): a live audit that could not list one of the
//!   kinds a check reads makes that check `error`, never a pass on a missing list;
//! - tests/registry.rs: the relations `Facts` computes are exactly these, for the objects named
//!   here; every kind they read is listed by a live audit (`k8s::KINDS`) and granted in
//!   deploy/rbac.yaml; docs/writing-checks.md names every relation;
//! - `related_val` (relations.rs) and the straightforward reference (reference.rs) compute them.
//!
//! Adding a relation: a row here, its computation in both, and tests/equivalence.rs proves the
//! two agree.

/// Which objects carry a relation in their `related` map.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Holder {
    /// Deployments, StatefulSets, DaemonSets and Rollouts (`k8s::WORKLOAD_KINDS`).
    Workload,
    /// Every other object (Services, PDBs, HPAs, policies, monitors, Ingresses...).
    Other,
}

/// One `related.NAME` value.
#[derive(Debug, Clone, Copy)]
pub struct Relation {
    pub name: &'static str,
    pub holder: Holder,
    /// The kinds it is computed from.
    pub reads: &'static [&'static str],
    pub doc: &'static str,
}

const WORKLOADS: &[&str] = crate::k8s::WORKLOAD_KINDS;

/// `workloads` of an Ingress or a ServiceMonitor are found through the Services they route to or
/// select: a live audit that cannot list Services cannot say an Ingress routes to no MLSDM
/// workload (it said so, and the Ingress checks skipped it instead of being errors).
const WORKLOADS_THROUGH_SERVICES: &[&str] = &[
    "Deployment",
    "StatefulSet",
    "DaemonSet",
    "Rollout",
    "Service",
];

/// `hostPathClaims`: a pod's claims and the PersistentVolumes they bind to.
const CLAIMS_AND_VOLUMES: &[&str] = &["PersistentVolumeClaim", "PersistentVolume"];

/// What `hostPathClaims` holds, on a workload and on a Pod, Job, CronJob or ReplicaSet.
const HOST_PATH_CLAIMS: &str = "the pod spec's persistentVolumeClaim volumes whose claim binds, among the audited objects, to a PersistentVolume of a node's path (`hostPath` or `local`), as {volume, claim, persistentVolume, type, path}: the PersistentVolume the claim's volumeName names, else those whose claimRef names the claim; a claim or volume not audited gives nothing. A StatefulSet's volumeClaimTemplates count too: template `data` of set `web` is the claims `data-web-<n>` (audited, or named by a claimRef), and the template's own volumeName";

/// `sharedPdbs`: a budget's other workloads are found among every workload of its namespace.
const PDBS_AND_WORKLOADS: &[&str] = &[
    "PodDisruptionBudget",
    "Deployment",
    "StatefulSet",
    "DaemonSet",
    "Rollout",
];

const fn rel(
    name: &'static str,
    holder: Holder,
    reads: &'static [&'static str],
    doc: &'static str,
) -> Relation {
    Relation {
        name,
        holder,
        reads,
        doc,
    }
}

use Holder::{Other, Workload};

pub const RELATIONS: &[Relation] = &[
    rel(
        "services",
        Workload,
        &["Service"],
        "Services selecting the pods",
    ),
    rel(
        "pdbs",
        Workload,
        &["PodDisruptionBudget"],
        "PodDisruptionBudgets selecting the pods",
    ),
    rel(
        "hpas",
        Workload,
        &["HorizontalPodAutoscaler"],
        "HPAs whose scaleTargetRef names the workload",
    ),
    rel(
        "networkPolicies",
        Workload,
        &["NetworkPolicy"],
        "NetworkPolicies selecting the pods",
    ),
    rel(
        "namespaceNetworkPolicies",
        Workload,
        &["NetworkPolicy"],
        "every NetworkPolicy of the namespace",
    ),
    rel(
        "ingresses",
        Workload,
        &["Ingress", "Service"],
        "Ingresses routing to one of the workload's Services",
    ),
    rel(
        "serviceMonitors",
        Workload,
        &["ServiceMonitor", "Service"],
        "ServiceMonitors selecting one of its Services",
    ),
    rel(
        "podMonitors",
        Workload,
        &["PodMonitor"],
        "PodMonitors selecting the pods",
    ),
    rel(
        "prometheusRules",
        Workload,
        &["PrometheusRule"],
        "PrometheusRules of the namespace",
    ),
    rel(
        "resourceQuotas",
        Workload,
        &["ResourceQuota"],
        "ResourceQuotas of the namespace",
    ),
    rel(
        "limitRanges",
        Workload,
        &["LimitRange"],
        "LimitRanges of the namespace",
    ),
    rel(
        "configMaps",
        Workload,
        &["ConfigMap"],
        "ConfigMaps the pod spec references",
    ),
    rel(
        "secrets",
        Workload,
        &["Secret"],
        "Secrets the pod spec references",
    ),
    rel(
        "missingReferences",
        Workload,
        &["ConfigMap", "Secret"],
        "references to ConfigMaps and Secrets that do not exist, or to a key one does not hold (with `key`)",
    ),
    rel(
        "missingImagePullSecrets",
        Workload,
        &["Secret", "ServiceAccount"],
        "imagePullSecrets that do not exist: the pod spec's, or when it names none its ServiceAccount's",
    ),
    rel(
        "namespace",
        Workload,
        &["Namespace"],
        "the workload's Namespace object, or null",
    ),
    rel(
        "serviceAccount",
        Workload,
        &["ServiceAccount"],
        "the pods' ServiceAccount, or null",
    ),
    rel(
        "roleBindings",
        Workload,
        &["RoleBinding"],
        "RoleBindings of the namespace",
    ),
    rel(
        "serviceAccountGrants",
        Workload,
        &["RoleBinding", "ClusterRoleBinding", "Role", "ClusterRole"],
        "what every RoleBinding and ClusterRoleBinding grants the pods' ServiceAccount, as the RBAC authorizer reads subjects (`{binding: {kind, namespace, name}, subject, direct, roleRef: {kind, name}, role, rules}`; `subject` is `ServiceAccount`, `User` or `Group NAME`, `direct` false for a group, `role` the Role or ClusterRole object when audited, else null, `rules` what the role grants, an aggregated ClusterRole's (the built-in view, edit and admin included) with the rules of the audited ClusterRoles it aggregates)",
    ),
    rel(
        "externalSecrets",
        Workload,
        &["ExternalSecret", "SealedSecret"],
        "ExternalSecrets and SealedSecrets of the namespace",
    ),
    rel(
        "alertmanagerConfigs",
        Workload,
        &["AlertmanagerConfig"],
        "AlertmanagerConfigs of the namespace",
    ),
    rel(
        "dashboards",
        Workload,
        &["ConfigMap", "GrafanaDashboard"],
        "Grafana dashboards (labelled ConfigMaps, GrafanaDashboards)",
    ),
    rel(
        "replicaSets",
        Workload,
        &["ReplicaSet"],
        "ReplicaSets the workload owns",
    ),
    rel("pods", Workload, &["Pod"], "the workload's Pods"),
    rel(
        "sharedPdbs",
        Workload,
        PDBS_AND_WORKLOADS,
        "the PodDisruptionBudgets selecting the pods that also select another workload's pods, as {pdb, workloads} (the other workloads as Kind/namespace/name, sorted): the eviction API counts every pod a budget selects",
    ),
    rel(
        "imageScans",
        Workload,
        &["VulnerabilityReport"],
        "by container name (init containers included), the VulnerabilityReports of the namespace that scanned the image the container runs (same digest, else same tag; the container's, when the report names one)",
    ),
    // Review finding: a hostPath PersistentVolume mounted through a claim passed
    // security-host-isolation and pods-outside-workloads-hardened. Carried by the workloads and
    // by every other object (the Pods, Jobs, CronJobs and ReplicaSets the latter reads; empty
    // for kinds without a pod spec).
    rel(
        "hostPathClaims",
        Workload,
        CLAIMS_AND_VOLUMES,
        HOST_PATH_CLAIMS,
    ),
    rel(
        "workloads",
        Other,
        WORKLOADS_THROUGH_SERVICES,
        "the in-scope workloads this object applies to (an Ingress's and a ServiceMonitor's through their Services)",
    ),
    rel(
        "monitoredServices",
        Other,
        &["Service"],
        "a ServiceMonitor's selected Services",
    ),
    rel(
        "watchesAuditedNamespace",
        Other,
        &[],
        "whether a ServiceMonitor watches a namespace the input holds objects of",
    ),
    rel(
        "ingressBackends",
        Other,
        &["Service"],
        "an Ingress's backend Services and whether each exists",
    ),
    rel(
        "workloadsInNamespace",
        Other,
        WORKLOADS,
        "every workload of the object's namespace",
    ),
    rel(
        "hostPathClaims",
        Other,
        CLAIMS_AND_VOLUMES,
        HOST_PATH_CLAIMS,
    ),
];

/// The kinds the `mlsdm` variable (a workload's effective MLSDM configuration) is resolved from.
pub const MLSDM_READS: &[&str] = &["ConfigMap", "Secret"];

/// The relations objects of this kind carry.
pub fn relations_of(kind: &str) -> impl Iterator<Item = &'static Relation> {
    let holder = if WORKLOADS.contains(&kind) {
        Workload
    } else {
        Other
    };
    RELATIONS.iter().filter(move |r| r.holder == holder)
}

#[cfg(test)]
mod tests {
    /// The list spelled out for `workloads` stays the workload kinds plus Service.
    #[test]
    fn workloads_through_services_are_the_workload_kinds_and_service() {
        let (service, kinds) = super::WORKLOADS_THROUGH_SERVICES.split_last().unwrap();
        assert_eq!(kinds, super::WORKLOADS);
        assert_eq!(*service, "Service");
    }
}
