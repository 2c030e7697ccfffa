//! Why a result is what it is, as data: the reason a result is `skipped` and the items (the
//! containers of a pod template, the keys of a ConfigMap) a per-item check found failing. The
//! message says the same for people; the checklist and waivers decide on these.

use crate::checks::Source;
use crate::checks::item::ItemKind;
use crate::checks::requirements::Requirement;
use schemars::JsonSchema;
use serde::{Deserialize, Serialize};

/// Why a check was not evaluated here. Only [`SkipReason::not_applicable`] reasons close a
/// checklist line; every other skip leaves it open (the evidence was not gathered).
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(tag = "kind", rename_all = "kebab-case")]
pub enum SkipReason {
    /// A `when` condition of the check did not hold for this object or response.
    NotApplicable,
    /// An optional checklist item whose requirement the team has not declared.
    Optional { requirement: Requirement },
    /// The run had no source of the check's kind (no objects, no service, no metrics).
    NoSource { source: Source },
    /// An active probe (it sends more than a handful of requests): runs only with `--active`.
    NeedsActive,
    /// A probe the API server's proxy cannot carry (not a GET, authenticated, a burst or load):
    /// runs only against an `--endpoint` URL.
    NeedsEndpoint,
    /// An authenticated probe with no API key given (`--api-key-env`).
    NeedsApiKey,
}

impl SkipReason {
    /// The checklist item does not apply to this deployment (as opposed to: it was not checked).
    pub fn not_applicable(&self) -> bool {
        matches!(self, Self::NotApplicable | Self::Optional { .. })
    }
}
/// One element a `forEach` check iterated, named by the check's `item:` declaration.
#[derive(Clone, Debug, PartialEq, Eq, PartialOrd, Ord, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct Item {
    pub kind: ItemKind,
    pub name: String,
    /// The validations this element failed, by position (1-based): a baseline compares
    /// (element, validation) pairs, so a container failing a validation that only another one
    /// failed before is new.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub failed_validations: Vec<u16>,
}
