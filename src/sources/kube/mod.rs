//! Facts from a live cluster, read through the Kubernetes API like kubectl does: kubeconfig or
//! in-cluster config from kube-rs, then discovery (aggregated, falling back to the legacy
//! endpoints), then one paged list per kind and namespace scope, all kinds at once, politely
//! rate-limited and retried. Only GET is ever sent.
//!
//! Errors are classified by type, not by text (src/sources/kube/error.rs): 401, a bad CA, a
//! refused connection or a timeout end the run with one line; 403 on a kind turns the checks that need
//! it into `error` with the RBAC rule that is missing; a kind the server does not serve (a CRD
//! that is not installed) is reported as such, never as a pass.
//!
//! What is kept of each listed object: every field the server sent, so a custom check
//! (`--checks`) can read any of them, with two exceptions. Secrets are listed metadata-only
//! (their values never reach the audit), and `metadata.managedFields` is skipped in every item
//! while its page is parsed (`page.rs`), never built: it is server-side apply's record of which
//! manager set which field, often half an object's size, and no built-in check, relation,
//! evidence or report field reads it. A custom check that reads it sees it absent in a live
//! audit (a manifest that carries it keeps it). Each page's items are moved out of the parsed
//! page, not copied, and the page's bytes are freed once parsed, so an object is held once while
//! the next page is fetched (docs/performance.md, "Live memory (fifth round)").
//!
//! The parts, in the order a run uses them: `connect.rs` (kubeconfig, with `exec.rs` for a
//! credential plugin and `deadline.rs` bounding each request), `api.rs` (the rate-limited,
//! retrying GET), `discovery.rs` (which resource serves each kind), `list.rs` (one kind, paged, each
//! page parsed by `page.rs`); `gather` here runs them over every kind the checks need.

use crate::k8s::At as _;
use crate::k8s::{Object, WORKLOAD_KINDS};
use serde_json::Value;
use std::collections::{BTreeMap, BTreeSet};
use std::time::Duration;

/// How to reach the cluster (kubectl's flags).
#[derive(Debug, Clone, Default)]
pub struct ClusterOptions {
    pub kubeconfig: Option<std::path::PathBuf>,
    pub context: Option<String>,
    pub namespace: Option<String>,
    pub all_namespaces: bool,
    pub qps: f64,
    pub burst: u32,
    pub timeout: Duration,
    pub progress: bool,
    /// The most pages one list may take (500 items each) before it is called incomplete.
    pub max_pages: u32,
}

/// The default bound on pages per list: 5 million objects of one kind, far beyond any namespace.
pub const DEFAULT_MAX_PAGES: u32 = 10_000;

mod api;
mod connect;
mod deadline;
mod discovery;
mod error;
mod exec;
mod list;
mod page;
pub use api::{Answer, Api};
pub(crate) use connect::kubeconfig_error;
pub use connect::{ConnectError, connect};
pub use deadline::DeadlineBody;
use discovery::{Named, Resolved, discover, resolve, resolve_named};
pub use error::{ClusterError, ClusterErrorKind};
use kube::discovery::{ApiCapabilities, ApiResource};

/// A kind to list: the resource that serves it and what the server allows on it.
type Listed = (ApiResource, ApiCapabilities);
use list::{ListError, list_all};

/// What listing the cluster produced.
#[derive(Debug, Default)]
pub struct ClusterFacts {
    pub objects: Vec<Object>,
    /// kind -> why it could not be read (403 with the RBAC hint, or a server error).
    pub kind_errors: BTreeMap<String, String>,
    /// Kinds the server does not serve (CRDs not installed).
    pub missing_kinds: BTreeSet<String>,
    pub server: String,
    pub namespace: Option<String>,
    pub context: Option<String>,
    pub requests: u64,
}

/// Lists what the checks need, every kind concurrently.
pub async fn gather(
    api: &Api,
    opts: &ClusterOptions,
    default_ns: &str,
    extra_kinds: &[(String, Option<String>)],
) -> Result<ClusterFacts, ClusterError> {
    let discovery = discover(api).await?;
    let namespace = if opts.all_namespaces {
        None
    } else {
        Some(
            opts.namespace
                .clone()
                .unwrap_or_else(|| default_ns.to_string()),
        )
    };
    let mut unreadable = BTreeMap::new();
    let mut plan: Vec<(String, Option<Listed>, bool)> = Vec::new();
    for w in crate::k8s::kinds::LISTED {
        let found = match resolve(&discovery, w.kind, w.candidates) {
            Resolved::Found(r, caps) => Some((r, caps)),
            Resolved::NotServed => None,
            Resolved::Unavailable(why) => {
                unreadable.insert(w.kind.to_string(), why);
                continue;
            }
        };
        plan.push((w.kind.to_string(), found, w.metadata_only));
    }
    // Kinds only custom checks name, found through discovery as kubectl finds them (a kind the
    // built-in table lists is read at the version the table resolved).
    let mut named: BTreeMap<&str, BTreeSet<&str>> = BTreeMap::new();
    for (kind, api_version) in extra_kinds {
        // A custom check naming a kind the table reads from another group (Calico's
        // `crd.projectcalico.org/v1/NetworkPolicy`): that group's objects are not listed, and
        // "no object" would be false. Undecided, under the qualified name the check reads
        // (review finding: it said no-data, and the gate passed).
        let group = api_version
            .as_deref()
            .and_then(|v| v.split_once('/'))
            .map(|(g, _)| g);
        if let Some(group) = group
            && let Some((_, resolved, _)) = plan.iter().find(|(k, _, _)| k == kind)
            && resolved.as_ref().is_none_or(|(r, _)| r.group != group)
        {
            unreadable.insert(
                format!("{kind}.{group}"),
                format!(
                    "kind {kind} is read from {}, and {group}'s {kind} is not listed by a live audit: not evaluated (audit such objects from their manifests)",
                    resolved.as_ref().map_or_else(
                        || "its built-in group".to_string(),
                        |(r, _)| if r.group.is_empty() { "the core group".to_string() } else { r.group.clone() }
                    )
                ),
            );
            continue;
        }
        if plan.iter().any(|(k, _, _)| k == kind) || unreadable.contains_key(kind) {
            continue;
        }
        let versions = named.entry(kind.as_str()).or_default();
        versions.extend(api_version.as_deref());
    }
    for (kind, versions) in named {
        match resolve_named(&discovery, kind, &versions) {
            Named::Found(r, caps) => plan.push((kind.to_string(), Some((r, caps)), false)),
            Named::NotServed => plan.push((kind.to_string(), None, false)),
            Named::Unreadable(why) => {
                unreadable.insert(kind.to_string(), why);
            }
        }
    }
    let bar = opts.progress.then(|| {
        let b = indicatif::ProgressBar::new(plan.len() as u64);
        b.set_style(
            indicatif::ProgressStyle::with_template("listing {pos}/{len} kinds {msg}")
                .unwrap_or_else(|_| indicatif::ProgressStyle::default_bar()),
        );
        b
    });
    let mut facts = ClusterFacts {
        server: api.server.clone(),
        namespace: namespace.clone(),
        context: opts.context.clone(),
        kind_errors: unreadable,
        ..Default::default()
    };
    let mut tasks = tokio::task::JoinSet::new();
    for (kind, resolved, metadata_only) in plan {
        let Some((r, caps)) = resolved else {
            facts.missing_kinds.insert(kind);
            continue;
        };
        let ns = if crate::k8s::kinds::EVERY_NAMESPACE.contains(&kind.as_str()) {
            None
        } else {
            namespace.clone()
        };
        let api = api.clone();
        let max_pages = opts.max_pages.max(1);
        tasks.spawn(async move {
            let res = list_all(&api, &r, &caps, ns.as_deref(), metadata_only, max_pages).await;
            (kind, r, res)
        });
    }
    let mut fatal = None;
    while let Some(joined) = tasks.join_next().await {
        // A list task that panicked leaves a kind unread: the audit cannot go on as if it were
        // empty.
        let (kind, r, res) = match joined {
            Ok(done) => done,
            Err(e) => {
                fatal = Some(ClusterError::other(format!("a list did not complete: {e}")));
                continue;
            }
        };
        if let Some(b) = &bar {
            b.inc(1);
            b.set_message(kind.clone());
        }
        match res {
            Ok(items) => {
                for item in items {
                    let name = item
                        .at("/metadata/name")
                        .and_then(Value::as_str)
                        .unwrap_or_default()
                        .to_string();
                    let ns = item
                        .at("/metadata/namespace")
                        .and_then(Value::as_str)
                        .map(str::to_string);
                    facts.objects.push(Object::new(
                        r.api_version.clone(),
                        kind.clone(),
                        ns,
                        name,
                        item,
                        None,
                    ));
                }
            }
            Err(ListError::Forbidden(m) | ListError::Other(m)) => {
                facts.kind_errors.insert(kind, m);
            }
            Err(ListError::Fatal(e)) => fatal = Some(e),
        }
    }
    if let Some(b) = bar {
        b.finish_and_clear();
    }
    if let Some(e) = fatal {
        return Err(e);
    }
    // A stable order, so two reports of the same cluster diff cleanly.
    facts
        .objects
        .sort_by(|a, b| (&a.kind, &a.namespace, &a.name).cmp(&(&b.kind, &b.namespace, &b.name)));
    facts.requests = api.counter.load(std::sync::atomic::Ordering::Relaxed);
    Ok(facts)
}

/// Kinds the workload checks treat as workloads, re-exported for the CLI's help.
pub fn workload_kinds() -> &'static [&'static str] {
    WORKLOAD_KINDS
}
