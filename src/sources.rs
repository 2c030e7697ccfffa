//! Everything that does I/O to gather facts: manifest files, kustomize/helm rendering, the live
//! cluster, the running service and its metrics. What they gather is data in `crate::facts`.

pub mod http;
pub mod kube;
mod kubectl_yaml;
pub(crate) mod manifest_yaml;
pub mod manifests;
pub mod metrics;
pub mod render;
pub(crate) mod yaml_plain;

// The paths these items had before `k8s` and `facts` were split out of this module, kept so
// that code written against them still compiles; new code names the lower layer.
pub use crate::facts::{Facts, mlsdm};
pub use crate::k8s::{Location, Object, selector};
