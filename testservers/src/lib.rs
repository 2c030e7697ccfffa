//! Test servers for mlsdm-audit: real sockets, the real wire formats.

pub mod kubeapi;
pub mod mlsdm;
pub mod synthetic;
pub mod tls;
