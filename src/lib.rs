//! mlsdm-audit: a deployment-readiness auditor for MLSDM on Kubernetes.
//!
//! Data flows one way: check definitions and facts go into the engine, results come out into a
//! report, and the report is rendered. Only `sources` does I/O. `plan` resolves `check`'s
//! arguments once (`Plan::from_args`) and runs the stages over the plan (`audit`).

pub mod activity;
pub mod checks;
pub mod cli;
pub mod config;
pub mod diag;
pub mod docs;
pub mod engine;
pub mod facts;
pub mod fleet;
pub mod fuzzing;
pub mod input;
pub mod k8s;
pub mod nesting;
pub mod parallel;
pub mod plan;
pub mod promql;
pub mod redact;
pub mod report;
pub mod review;
pub mod seed;
pub mod signoff;
pub mod sources;
pub mod testchecks;
pub mod watch;

// `waivers` was a top-level module before `review` gathered the review stage.
pub use review::waivers;

// watch resolves the HTTP and cluster flags of its own evaluations as `check` does.
pub use plan::{Plan, UsageError, audit, read_report, select_checks, total_timeout};
pub(crate) use plan::{cluster_options, http_options};

/// Runs `check`: resolves the arguments into a plan, then audits it.
pub fn run_check(args: &cli::CheckArgs) -> Result<report::Report, UsageError> {
    let plan = Plan::from_args(args)?;
    let report = audit(&plan);
    // Freeing the plan (the catalog's compiled programs: a twentieth of a one-file audit) is
    // work nothing waits for, as freeing the facts is (`plan::audit`); a process that ends first
    // skips it. A default thread's stack frees any tree a check file may hold: CEL trees nest
    // at most 40 levels and PromQL trees 64 (`promql::MAX_DEPTH`).
    let _ = std::thread::Builder::new().spawn(move || drop(plan));
    report
}

/// [`run_check`] for a process that ends once the report is out (`check`'s one audit): the plan
/// is not freed at all, its memory going back with the process's. Freeing it took a thread of
/// its own and a core's share of a one-file audit, beside the report being rendered. Never for
/// a run that is repeated (watch, a fleet's clusters, tests): each would keep its catalog.
pub fn run_check_once(args: &cli::CheckArgs) -> Result<report::Report, UsageError> {
    let plan = Plan::from_args(args)?;
    let report = audit(&plan);
    std::mem::forget(plan);
    report
}
