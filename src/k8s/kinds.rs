//! The kinds a live audit lists: one table, which src/sources/kube/ reads to plan its lists and
//! tests/registry.rs holds the relations (`facts::registry`), the built-in checks' kinds,
//! deploy/rbac.yaml and the README to.

/// A kind the audit reads: its name, and the groups/versions to try in order of preference.
pub struct Listed {
    pub kind: &'static str,
    /// (group, version) pairs, preferred first; "" is the core group.
    pub candidates: &'static [(&'static str, &'static str)],
    /// Listed as metadata only (Secrets: the values never leave the API server).
    pub metadata_only: bool,
}

/// Kinds listed in every namespace even when the audit is namespaced (`-n`): a RoleBinding in
/// any namespace grants the pods' ServiceAccount rights there (`related.serviceAccountGrants`),
/// through a Role of that namespace, and one the audit did not list cannot be judged. Without `list` on them cluster-wide, the
/// checks that read them are errors.
pub const EVERY_NAMESPACE: &[&str] = &["RoleBinding", "Role"];

/// Every kind the built-in checks and the `related` facts read. Newer versions first: the fallback
/// reaches servers that only serve the older ones (autoscaling/v2beta2, policy/v1beta1).
pub const LISTED: &[Listed] = &[
    Listed {
        kind: "Deployment",
        candidates: &[("apps", "v1")],
        metadata_only: false,
    },
    Listed {
        kind: "StatefulSet",
        candidates: &[("apps", "v1")],
        metadata_only: false,
    },
    Listed {
        kind: "DaemonSet",
        candidates: &[("apps", "v1")],
        metadata_only: false,
    },
    Listed {
        kind: "ReplicaSet",
        candidates: &[("apps", "v1")],
        metadata_only: false,
    },
    Listed {
        kind: "Pod",
        candidates: &[("", "v1")],
        metadata_only: false,
    },
    // The release's other pods (pods-outside-workloads-hardened): a Job's and a CronJob's
    // templates (batch/v1beta1 before Kubernetes 1.21).
    Listed {
        kind: "Job",
        candidates: &[("batch", "v1")],
        metadata_only: false,
    },
    Listed {
        kind: "CronJob",
        candidates: &[("batch", "v1"), ("batch", "v1beta1")],
        metadata_only: false,
    },
    // What a pod's claims bind to (`related.hostPathClaims`): a hostPath or local
    // PersistentVolume mounts the node through a claim Pod Security admits.
    Listed {
        kind: "PersistentVolumeClaim",
        candidates: &[("", "v1")],
        metadata_only: false,
    },
    Listed {
        kind: "PersistentVolume",
        candidates: &[("", "v1")],
        metadata_only: false,
    },
    Listed {
        kind: "Service",
        candidates: &[("", "v1")],
        metadata_only: false,
    },
    Listed {
        kind: "ConfigMap",
        candidates: &[("", "v1")],
        metadata_only: false,
    },
    // Secret values never leave the API server: metadata only.
    Listed {
        kind: "Secret",
        candidates: &[("", "v1")],
        metadata_only: true,
    },
    Listed {
        kind: "ServiceAccount",
        candidates: &[("", "v1")],
        metadata_only: false,
    },
    Listed {
        kind: "ResourceQuota",
        candidates: &[("", "v1")],
        metadata_only: false,
    },
    Listed {
        kind: "LimitRange",
        candidates: &[("", "v1")],
        metadata_only: false,
    },
    Listed {
        kind: "Namespace",
        candidates: &[("", "v1")],
        metadata_only: false,
    },
    Listed {
        kind: "HorizontalPodAutoscaler",
        candidates: &[
            ("autoscaling", "v2"),
            ("autoscaling", "v2beta2"),
            ("autoscaling", "v2beta1"),
            ("autoscaling", "v1"),
        ],
        metadata_only: false,
    },
    Listed {
        kind: "PodDisruptionBudget",
        candidates: &[("policy", "v1"), ("policy", "v1beta1")],
        metadata_only: false,
    },
    Listed {
        kind: "NetworkPolicy",
        candidates: &[("networking.k8s.io", "v1")],
        metadata_only: false,
    },
    Listed {
        kind: "Ingress",
        candidates: &[
            ("networking.k8s.io", "v1"),
            ("networking.k8s.io", "v1beta1"),
            ("extensions", "v1beta1"),
        ],
        metadata_only: false,
    },
    Listed {
        kind: "RoleBinding",
        candidates: &[("rbac.authorization.k8s.io", "v1")],
        metadata_only: false,
    },
    Listed {
        kind: "ClusterRoleBinding",
        candidates: &[("rbac.authorization.k8s.io", "v1")],
        metadata_only: false,
    },
    Listed {
        kind: "Role",
        candidates: &[("rbac.authorization.k8s.io", "v1")],
        metadata_only: false,
    },
    Listed {
        kind: "ClusterRole",
        candidates: &[("rbac.authorization.k8s.io", "v1")],
        metadata_only: false,
    },
    Listed {
        kind: "ServiceMonitor",
        candidates: &[("monitoring.coreos.com", "v1")],
        metadata_only: false,
    },
    Listed {
        kind: "PodMonitor",
        candidates: &[("monitoring.coreos.com", "v1")],
        metadata_only: false,
    },
    Listed {
        kind: "PrometheusRule",
        candidates: &[("monitoring.coreos.com", "v1")],
        metadata_only: false,
    },
    Listed {
        kind: "AlertmanagerConfig",
        candidates: &[
            ("monitoring.coreos.com", "v1alpha1"),
            ("monitoring.coreos.com", "v1beta1"),
        ],
        metadata_only: false,
    },
    Listed {
        kind: "Rollout",
        candidates: &[("argoproj.io", "v1alpha1")],
        metadata_only: false,
    },
    Listed {
        kind: "ExternalSecret",
        candidates: &[
            ("external-secrets.io", "v1"),
            ("external-secrets.io", "v1beta1"),
        ],
        metadata_only: false,
    },
    Listed {
        kind: "SealedSecret",
        candidates: &[("bitnami.com", "v1alpha1")],
        metadata_only: false,
    },
    Listed {
        kind: "GrafanaDashboard",
        candidates: &[("grafana.integreatly.org", "v1beta1")],
        metadata_only: false,
    },
    Listed {
        kind: "VulnerabilityReport",
        candidates: &[("aquasecurity.github.io", "v1alpha1")],
        metadata_only: false,
    },
];

/// Named groups of kinds a check's `match.kinds` may give instead of repeating them (as
/// kube-linter's `DeploymentLike`). Lower case, so no group can be taken for a kind (kinds are
/// UpperCamelCase).
pub const GROUPS: &[(&str, &[&str])] = &[
    // Every kind that runs a pod template (`k8s::WORKLOAD_KINDS`).
    ("workloads", crate::k8s::WORKLOAD_KINDS),
    // The workloads with spec.replicas (a DaemonSet runs one pod per node instead).
    (
        "replicated-workloads",
        &["Deployment", "StatefulSet", "Rollout"],
    ),
];

/// The kinds a group name stands for.
pub fn group(name: &str) -> Option<&'static [&'static str]> {
    GROUPS
        .iter()
        .find(|(g, _)| *g == name)
        .map(|(_, kinds)| *kinds)
}

/// Kubernetes' own API groups ("" is the core group): their versions are fixed by Kubernetes
/// releases, so a version [`LISTED`] does not give is one no API server serves.
const KUBERNETES_GROUPS: &[&str] = &[
    "",
    "apps",
    "policy",
    "networking.k8s.io",
    "autoscaling",
    "rbac.authorization.k8s.io",
    "extensions",
];

/// What an API server makes of an object of a kind [`LISTED`] knows, sent as `api_version`.
#[derive(Debug, PartialEq, Eq)]
pub enum Serving {
    /// A version the table gives for the kind (an extension's kind: any version of its group,
    /// since a newer one may be served); also any kind the table does not know.
    Served,
    /// A group that is Kubernetes' own or the kind's, in a version that does not serve it
    /// (`apps/v9`, a NetworkPolicy as `v1`, a Rollout as `apps/v1`): the API server answers
    /// "no matches for kind" and the object is never deployed. Why, in words.
    Refused(String),
    /// Another API's kind of the same name (Calico's `crd.projectcalico.org` NetworkPolicy): a
    /// different object, which the checks and relations of the listed kind must not judge.
    Foreign,
}

/// How `api_version` serves `kind` (see [`Serving`]). The checks match kinds by name: before
/// this, a default-deny NetworkPolicy the API server refused (sent as `v1`) passed the policy
/// checks.
pub fn serving(kind: &str, api_version: &str) -> Serving {
    let Some(listed) = LISTED.iter().find(|l| l.kind == kind) else {
        return Serving::Served;
    };
    let (group, version) = api_version.rsplit_once('/').unwrap_or(("", api_version));
    let own = listed
        .candidates
        .iter()
        .all(|(g, _)| KUBERNETES_GROUPS.contains(g));
    if listed
        .candidates
        .iter()
        .any(|(g, v)| *g == group && (!own || *v == version))
    {
        return Serving::Served;
    }
    if !KUBERNETES_GROUPS.contains(&group) && !listed.candidates.iter().any(|(g, _)| *g == group) {
        return Serving::Foreign;
    }
    let versions: Vec<String> = listed
        .candidates
        .iter()
        .map(|(g, v)| {
            if g.is_empty() {
                (*v).to_string()
            } else {
                format!("{g}/{v}")
            }
        })
        .collect();
    Serving::Refused(format!(
        "apiVersion {api_version} does not serve {kind}: the API server refuses the object (\"no matches for kind\"), so it would not be deployed; {kind} is {}{}",
        versions.join(", "),
        if own {
            ""
        } else {
            " (any version of its group)"
        }
    ))
}

#[cfg(test)]
mod tests {
    /// Review finding: a NetworkPolicy sent as `v1` or a Deployment as `apps/v9` passed the
    /// checks of their kind, though the API server refuses them; another API's kind of the same
    /// name (Calico's NetworkPolicy) is not refused, but is not the listed kind either.
    #[test]
    fn versions_no_api_server_serves_are_refused() {
        use super::{Serving, serving};
        for (kind, version) in [
            ("NetworkPolicy", "v1"),
            ("Deployment", "apps/v9"),
            ("Deployment", "apps/v1beta2"),
            ("Deployment", "v1"),
            ("Service", "apps/v1"),
            ("Rollout", "apps/v1"),
        ] {
            let Serving::Refused(why) = serving(kind, version) else {
                panic!("{kind} {version}");
            };
            assert!(why.contains(version) && why.contains(kind), "{why}");
        }
        for (kind, version) in [
            ("NetworkPolicy", "crd.projectcalico.org/v1"),
            ("PodDisruptionBudget", "example.com/v1"),
            ("Rollout", "example.com/v1"),
        ] {
            assert_eq!(serving(kind, version), Serving::Foreign, "{kind} {version}");
        }
        for (kind, version) in [
            ("NetworkPolicy", "networking.k8s.io/v1"),
            ("Deployment", "apps/v1"),
            ("Service", "v1"),
            ("PodDisruptionBudget", "policy/v1beta1"),
            ("HorizontalPodAutoscaler", "autoscaling/v2"),
            // An extension's newer version is not refused.
            ("Rollout", "argoproj.io/v1beta1"),
            // A kind the table does not know is not judged.
            ("CronJob", "batch/v9"),
        ] {
            assert_eq!(serving(kind, version), Serving::Served, "{kind} {version}");
        }
    }
}
