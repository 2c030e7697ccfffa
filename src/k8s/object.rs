//! One Kubernetes object as every layer sees it, where it was read from, and how results name it.

use super::At as _;
use super::secrets::redact;
use serde::{Deserialize, Serialize};
use serde_json::{Value, json};
use std::fmt;

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

/// Whether objects of `kind` live outside namespaces (among the kinds this tool reads).
pub fn is_cluster_scoped(kind: &str) -> bool {
    CLUSTER_SCOPED.contains(&kind)
}

/// Where a manifest object was read from.
#[derive(
    Clone, Debug, PartialEq, Eq, Serialize, Deserialize, schemars::JsonSchema, PartialOrd, Ord,
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
        let namespace = if is_cluster_scoped(&kind) {
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
            .at("/spec/template/metadata/labels")
            .cloned()
            .unwrap_or_else(|| json!({}))
    }

    pub fn labels(&self) -> Value {
        self.json
            .at("/metadata/labels")
            .cloned()
            .unwrap_or_else(|| json!({}))
    }

    pub fn pod_spec(&self) -> Option<&Value> {
        self.json.at("/spec/template/spec")
    }

    /// `Kind/namespace/name`, the form waivers and messages use.
    pub fn reference(&self) -> String {
        match &self.namespace {
            Some(ns) => format!("{}/{}/{}", self.kind, ns, self.name),
            None => format!("{}/{}", self.kind, self.name),
        }
    }
}

#[derive(
    Clone, Debug, PartialEq, Eq, PartialOrd, Ord, Serialize, Deserialize, schemars::JsonSchema,
)]
pub struct ObjectRef {
    pub kind: String,
    pub namespace: Option<String>,
    pub name: String,
}

impl fmt::Display for ObjectRef {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match &self.namespace {
            Some(ns) => write!(f, "{}/{}/{}", self.kind, ns, self.name),
            None => write!(f, "{}/{}", self.kind, self.name),
        }
    }
}
