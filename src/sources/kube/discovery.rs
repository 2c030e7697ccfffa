//! Which resource serves each kind: API discovery (GET /api, /apis and the group versions), the
//! built-in table's kinds at their candidate versions, and the kinds only custom checks name,
//! found as kubectl finds them.

use super::api::Api;
use super::error::{ClusterError, ClusterErrorKind};
use kube::discovery::{ApiCapabilities, ApiResource, Discovery};
use std::collections::BTreeSet;

/// Discovery, aggregated first; servers without it answer zero groups, so fall back to legacy.
pub(super) async fn discover(api: &Api) -> Result<Discovery, ClusterError> {
    let _running = crate::activity::start(format!("API discovery at {}", api.server));
    // kube's discovery does not go through our limiter; it is a handful of requests.
    let classify = |e: kube::Error| api.fatal(&e);
    let aggregated = Discovery::new(api.client.clone()).run_aggregated().await;
    match aggregated {
        Ok(d) if d.groups().count() > 0 => Ok(d),
        Ok(_) => Discovery::new(api.client.clone())
            .run()
            .await
            .map_err(classify),
        Err(e) => {
            let err = classify(e);
            if matches!(
                err.kind,
                ClusterErrorKind::Unauthorized | ClusterErrorKind::Tls | ClusterErrorKind::Connect
            ) {
                return Err(err);
            }
            Discovery::new(api.client.clone())
                .run()
                .await
                .map_err(classify)
        }
    }
}

/// A kind found in discovery, or None when the server does not serve it.
pub(super) type Resolved = Option<(ApiResource, ApiCapabilities)>;

pub(super) fn resolve(
    d: &Discovery,
    kind: &str,
    candidates: &[(&str, &str)],
) -> Option<(ApiResource, ApiCapabilities)> {
    for (group, version) in candidates {
        if let Some(g) = d.get(group)
            && let Some(found) = g
                .versioned_resources(version)
                .into_iter()
                .find(|(r, _)| r.kind == kind)
        {
            return Some(found);
        }
    }
    None
}

/// How a kind that only custom checks name was found in discovery.
pub(super) enum Named {
    Found(ApiResource, ApiCapabilities),
    /// No group serves the kind at any version (a CRD not installed, or a misspelt kind).
    NotServed,
    /// It cannot be read as the checks name it: why, for their `error`.
    Unreadable(String),
}

/// Every group/version that serves `kind`, group by group (the core group first; discovery's
/// map has no order), each group's preferred version first, then its others most stable first.
pub(super) fn serving(d: &Discovery, kind: &str) -> Vec<(ApiResource, ApiCapabilities)> {
    let mut groups: Vec<_> = d.groups().collect();
    groups.sort_by_key(|g| g.name());
    let mut found = Vec::new();
    for g in groups {
        let preferred = g.preferred_version_or_latest();
        let versions = std::iter::once(preferred).chain(g.versions().filter(|v| *v != preferred));
        for version in versions {
            found.extend(
                g.versioned_resources(version)
                    .into_iter()
                    .filter(|(r, _)| r.kind == kind),
            );
        }
    }
    found
}

/// Finds a kind that only custom checks name, as kubectl resolves `kubectl get KIND`: at the one
/// version the checks name, else in the core group or the one group that serves it, at that
/// group's preferred version (else its most stable one). Before, only each group's preferred
/// version was searched, so a CronJob served in batch/v1beta1 (Kubernetes 1.20, where batch
/// prefers v1) was called "not served" and its checks no-data, though the cluster was never asked.
pub(super) fn resolve_named(d: &Discovery, kind: &str, versions: &BTreeSet<&str>) -> Named {
    let served = serving(d, kind);
    let listable = |(r, caps): (ApiResource, ApiCapabilities)| {
        if caps.supports_operation(kube::discovery::verbs::LIST) {
            Named::Found(r, caps)
        } else {
            Named::Unreadable(format!(
                "the server does not allow listing {} ({}): no object of kind {kind} can be read",
                r.plural, r.api_version
            ))
        }
    };
    let where_served = || {
        served
            .iter()
            .map(|(r, _)| r.api_version.as_str())
            .collect::<Vec<_>>()
            .join(", ")
    };
    match versions.iter().collect::<Vec<_>>().as_slice() {
        [] if served.is_empty() => Named::NotServed,
        [] => {
            let groups: BTreeSet<&str> = served.iter().map(|(r, _)| r.group.as_str()).collect();
            if groups.len() > 1 && !groups.contains("") {
                return Named::Unreadable(format!(
                    "the server serves kind {kind} in several API groups ({}): name one in match.kinds as group/version/{kind}",
                    where_served()
                ));
            }
            // The core group first (as kubectl's `Event` is core's), else the one group's best.
            served
                .iter()
                .find(|(r, _)| r.group.is_empty())
                .or_else(|| served.first())
                .cloned()
                .map_or(Named::NotServed, listable)
        }
        [version] => match served.iter().find(|(r, _)| r.api_version == **version) {
            Some(found) => listable(found.clone()),
            None if served.is_empty() => Named::NotServed,
            None => Named::Unreadable(format!(
                "the server has no resource of kind {kind} in {version} (it serves {kind} in {})",
                where_served()
            )),
        },
        several => Named::Unreadable(format!(
            "checks match kind {kind} at {}; a live audit lists a kind at one version: name the same one (or none) in every check's match.kinds",
            several
                .iter()
                .map(|v| **v)
                .collect::<Vec<_>>()
                .join(" and ")
        )),
    }
}
