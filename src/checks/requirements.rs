//! When a check applies: the optional checklist items a team declares (`requires:`), and where
//! else a check's evidence may live (`externalEvidence:`). Part of the check model; the team
//! config declares requirements and the review stage applies external evidence.

use crate::k8s::At as _;
use crate::k8s::Object;
use schemars::JsonSchema;
use serde::{Deserialize, Serialize};
use std::fmt;

/// An optional or conditional checklist item a team declares applies to its deployment. Checks
/// that cover such an item say so (`requires:` in the check file) and are `skipped` unless the
/// requirement is declared (`requirements:` here, or `--require`).
#[derive(
    Clone,
    Copy,
    Debug,
    PartialEq,
    Eq,
    PartialOrd,
    Ord,
    Hash,
    Serialize,
    Deserialize,
    JsonSchema,
    clap::ValueEnum,
)]
#[serde(rename_all = "kebab-case")]
pub enum Requirement {
    /// "Tracing (Optional)": distributed tracing, its endpoint, sampling and storage.
    Tracing,
    /// "IP whitelisting configured (if required)": Ingresses restrict source IP ranges.
    IpAllowlist,
    /// "Penetration testing performed (if required)".
    PenetrationTest,
    /// "Multi-region setup (if required)".
    MultiRegion,
    /// "GDPR compliance reviewed (if applicable)".
    Gdpr,
    /// "Legal review completed (if required)".
    LegalReview,
    /// "Maintenance window announced (if required)".
    MaintenanceWindow,
}

impl Requirement {
    pub fn name(self) -> &'static str {
        match self {
            Self::Tracing => "tracing",
            Self::IpAllowlist => "ip-allowlist",
            Self::PenetrationTest => "penetration-test",
            Self::MultiRegion => "multi-region",
            Self::Gdpr => "gdpr",
            Self::LegalReview => "legal-review",
            Self::MaintenanceWindow => "maintenance-window",
        }
    }
}

impl fmt::Display for Requirement {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.name())
    }
}

/// `externalEvidence` in a check file: the evidence may live outside the cluster's objects, but
/// only when the cluster does not hold the objects that would carry it.
#[derive(Clone, Debug, Deserialize, Serialize, JsonSchema)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
pub struct ExternalEvidence {
    /// Where else the evidence may live (a central Alertmanager, Grafana, a vault).
    pub elsewhere: String,
    /// The objects that carry the evidence when it lives in the cluster. When any of them is in
    /// the audited scope the evidence is not elsewhere: a failure stays `fail`. Only when none
    /// is does a failure become `no-data` (attestable).
    pub in_cluster: Vec<EvidenceObject>,
}

/// An object kind that carries the evidence, optionally only with a label or annotation key.
#[derive(Clone, Debug, Deserialize, Serialize, JsonSchema)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
pub struct EvidenceObject {
    /// The object's kind, e.g. `AlertmanagerConfig`.
    pub kind: String,
    /// Only objects carrying this label key.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub label: Option<String>,
    /// Only objects carrying this annotation key.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub annotation: Option<String>,
}

impl EvidenceObject {
    pub fn matches(&self, o: &Object) -> bool {
        let has = |field: &str, key: &Option<String>| {
            key.as_ref().is_none_or(|k| {
                o.json
                    .at(&format!("/metadata/{field}"))
                    .and_then(|m| m.as_object())
                    .is_some_and(|m| m.contains_key(k))
            })
        };
        // The kind first: it rules out nearly every object without a lookup.
        o.kind == self.kind && has("labels", &self.label) && has("annotations", &self.annotation)
    }
}

impl fmt::Display for EvidenceObject {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.kind)?;
        if let Some(l) = &self.label {
            write!(f, " labelled {l}")?;
        }
        if let Some(a) = &self.annotation {
            write!(f, " annotated {a}")?;
        }
        Ok(())
    }
}

impl ExternalEvidence {
    /// The in-cluster objects, for messages: "an AlertmanagerConfig or a Secret annotated x".
    pub fn objects(&self) -> String {
        let names: Vec<String> = self.in_cluster.iter().map(|o| format!("a {o}")).collect();
        names.join(" or ")
    }
}
