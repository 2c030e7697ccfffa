//! What people decided about results after the engine ran: waivers (accepted failures),
//! attestations (manual items a reviewer vouched for) and the baseline (which failures are new).
//! Reads the report model and review files; never the cluster.

pub mod attestations;
pub mod baseline;
pub mod waivers;
