//! The Kubernetes object model every layer shares, with no I/O and no knowledge of checks or
//! reports: objects and their references, label selectors, resource quantities, and what in an
//! object is a credential (summarised at ingestion, so later layers never see a secret value).

pub mod admission;
pub mod command_line;
pub mod ingress;
mod json;
mod kind;
pub mod kinds;
mod object;
pub mod quantity;
pub mod rbac;
pub mod refs;
pub mod secrets;
pub mod selector;

pub use json::At;
pub use kind::KindMatcher;
pub use object::{Location, Object, ObjectRef, WORKLOAD_KINDS, is_cluster_scoped};
