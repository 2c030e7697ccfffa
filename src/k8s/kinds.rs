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
