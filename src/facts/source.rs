//! Which kind of evidence a check reads, and which kinds a run has.

use schemars::JsonSchema;
use serde::{Deserialize, Serialize};
use std::fmt;

/// Where a check's facts come from.
#[derive(
    Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize, JsonSchema,
)]
#[serde(rename_all = "lowercase")]
pub enum Source {
    /// Kubernetes objects, from manifest files or the live cluster.
    Kubernetes,
    /// A request to the running MLSDM service.
    Http,
    /// A PromQL query over MLSDM's metrics.
    Metrics,
    /// Decided by a reviewer, who attests to it at sign-off.
    Manual,
}

impl fmt::Display for Source {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            Self::Kubernetes => "kubernetes",
            Self::Http => "http",
            Self::Metrics => "metrics",
            Self::Manual => "manual",
        })
    }
}
