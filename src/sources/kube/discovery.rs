//! Which resource serves each kind: API discovery (GET /api, /apis and the group versions), the
//! built-in table's kinds at their candidate versions, and the kinds only custom checks name,
//! found as kubectl finds them.

use super::api::Api;
use super::error::{ClusterError, ClusterErrorKind};
use kube::discovery::{ApiCapabilities, ApiResource, Discovery};
use std::collections::{BTreeMap, BTreeSet};

/// What discovery could read: kube's map of the groups that answered, and the group versions
/// that did not.
pub(super) struct Served {
    pub discovery: Discovery,
    /// Group -> why its discovery failed ("metrics.k8s.io/v1beta1: 503 ..."). Legacy discovery
    /// asks each group version, and an aggregated API whose backend is down (a metrics-server
    /// that is not running, the commonest case) answers 503 there: kubectl warns and goes on
    /// ("couldn't get resource list for ..."). Failing the whole audit for it blocked every
    /// release on such a cluster; calling its kinds "not served" would turn their checks into
    /// no-data that was never asked. Kinds that might be served there are errors instead.
    pub unavailable: BTreeMap<String, String>,
}

/// Discovery, aggregated first; servers without it answer zero groups, so fall back to legacy.
pub(super) async fn discover(api: &Api) -> Result<Served, ClusterError> {
    let _running = crate::activity::start(format!("API discovery at {}", api.server));
    // kube's discovery does not go through our limiter; it is a handful of requests.
    let aggregated = Discovery::new(api.client.clone()).run_aggregated().await;
    match aggregated {
        Ok(d) if d.groups().count() > 0 => {
            // Freshness that cannot be read leaves every aggregated group in doubt: legacy
            // discovery asks each group version, and one whose backend is down fails there.
            return match stale_groups(api).await {
                Some(unavailable) => Ok(Served {
                    discovery: d,
                    unavailable,
                }),
                None => legacy_without_failing_groups(api).await,
            };
        }
        Ok(_) => {}
        Err(e) => {
            let err = api.fatal(&e);
            if whole_server(err.kind) {
                return Err(err);
            }
        }
    }
    match Discovery::new(api.client.clone()).run().await {
        Ok(d) => Ok(Served {
            discovery: d,
            unavailable: BTreeMap::new(),
        }),
        Err(e) => {
            let err = api.fatal(&e);
            if whole_server(err.kind) {
                return Err(err);
            }
            legacy_without_failing_groups(api).await
        }
    }
}

/// The groups aggregated discovery marks `Stale`: the kube-aggregator could not reach the
/// group's APIService (a metrics-server that is down) and lists the version with no resources,
/// or with what it last saw. kube's discovery drops the freshness, so a kind served there read
/// as "not served" and its checks became no-data the cluster never said. One more request (the
/// aggregated /apis again); the core group is served by the API server itself, never stale.
/// `None` when that answer cannot be read (a 429 or 5xx the first reading did not get): an
/// empty answer there had made every group fresh, and a Stale one's kinds "not served" (review
/// finding).
async fn stale_groups(api: &Api) -> Option<BTreeMap<String, String>> {
    let mut stale = BTreeMap::new();
    let list = api.client.list_api_groups_aggregated().await.ok()?;
    for group in list.items {
        let name = group.metadata.and_then(|m| m.name).unwrap_or_default();
        for version in &group.versions {
            if version.freshness.as_deref() == Some("Stale") {
                stale.entry(name.clone()).or_insert_with(|| {
                    format!(
                        "{name}/{}: aggregated discovery marks it Stale (its APIService's backend is not answering)",
                        version.version.as_deref().unwrap_or("?")
                    )
                });
            }
        }
    }
    Some(stale)
}

/// A failure that is the server's or the credentials', not one group's: the audit cannot go on.
fn whole_server(kind: ClusterErrorKind) -> bool {
    matches!(
        kind,
        ClusterErrorKind::Unauthorized | ClusterErrorKind::Tls | ClusterErrorKind::Connect
    )
}

/// Legacy discovery after one of its requests failed: asks each group version once to find the
/// ones that fail, then discovers the others. A failure of `/api`, `/apis` or the core group is
/// the whole audit's (kube's discovery errs on it again, and that error is returned).
async fn legacy_without_failing_groups(api: &Api) -> Result<Served, ClusterError> {
    let groups = api
        .client
        .list_api_groups()
        .await
        .map_err(|e| api.fatal(&e))?;
    let mut unavailable = BTreeMap::new();
    for group in groups.groups {
        for version in &group.versions {
            if let Err(e) = api
                .client
                .list_api_group_resources(&version.group_version)
                .await
            {
                let err = api.fatal(&e);
                if whole_server(err.kind) {
                    return Err(err);
                }
                unavailable
                    .entry(group.name.clone())
                    .or_insert_with(|| format!("{}: {err}", version.group_version));
            }
        }
    }
    let deny: Vec<&str> = unavailable.keys().map(String::as_str).collect();
    let discovery = Discovery::new(api.client.clone())
        .exclude(&deny)
        .run()
        .await
        .map_err(|e| api.fatal(&e))?;
    Ok(Served {
        discovery,
        unavailable,
    })
}

/// A kind of the built-in table: found, not served, or undecidable because discovery could not
/// read a group that may serve it.
pub(super) enum Resolved {
    Found(ApiResource, ApiCapabilities),
    NotServed,
    Unavailable(String),
}

/// The first candidate group/version that serves `kind`. A candidate whose group discovery could
/// not read ends the search: a later candidate would be an older version read in its place, and
/// no candidate at all is not "not served".
pub(super) fn resolve(s: &Served, kind: &str, candidates: &[(&str, &str)]) -> Resolved {
    for (group, version) in candidates {
        if let Some(why) = s.unavailable.get(*group) {
            return Resolved::Unavailable(unavailable_message(kind, why));
        }
        if let Some(g) = s.discovery.get(group)
            && let Some((r, caps)) = g
                .versioned_resources(version)
                .into_iter()
                .find(|(r, _)| r.kind == kind)
        {
            return Resolved::Found(r, caps);
        }
    }
    // Served at a version the table does not name (a CRD that moved on): its objects are
    // there, unread, which is not "not served" (review finding).
    for (group, _) in candidates {
        if let Some(g) = s.discovery.get(group)
            && let Some(version) = g
                .versions()
                .find(|v| g.versioned_resources(v).iter().any(|(r, _)| r.kind == kind))
        {
            return Resolved::Unavailable(format!(
                "kind {kind} is served at {group}/{version}, a version the audit does not read (it reads {}): not evaluated",
                candidates
                    .iter()
                    .map(|(g, v)| format!("{g}/{v}"))
                    .collect::<Vec<_>>()
                    .join(", ")
            ));
        }
    }
    Resolved::NotServed
}

fn unavailable_message(kind: &str, why: &str) -> String {
    format!(
        "API discovery could not read {why}; kind {kind} may be served there: not evaluated (kubectl api-resources shows the same failure; an aggregated API whose backend is down answers 503, or is marked Stale)"
    )
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
pub(super) fn resolve_named(s: &Served, kind: &str, versions: &BTreeSet<&str>) -> Named {
    match choose(kind, versions, serving(&s.discovery, kind)) {
        // Where discovery failed for a group, the kind may be served there: kubectl's "not found"
        // under partial discovery is the same guess, which an audit does not make.
        Named::NotServed if !s.unavailable.is_empty() => Named::Unreadable(unavailable_message(
            kind,
            &s.unavailable
                .values()
                .map(String::as_str)
                .collect::<Vec<_>>()
                .join("; "),
        )),
        named => named,
    }
}

/// The choice `resolve_named` makes among what serves `kind` (in `serving`'s order).
fn choose(
    kind: &str,
    versions: &BTreeSet<&str>,
    served: Vec<(ApiResource, ApiCapabilities)>,
) -> Named {
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

#[cfg(test)]
mod tests {
    use super::{Named, choose};
    use kube::discovery::{ApiCapabilities, ApiResource, Scope};
    use std::collections::BTreeSet;

    fn served(group: &str, version: &str, verbs: &[&str]) -> (ApiResource, ApiCapabilities) {
        let api_version = if group.is_empty() {
            version.to_string()
        } else {
            format!("{group}/{version}")
        };
        (
            ApiResource {
                group: group.into(),
                version: version.into(),
                api_version,
                kind: "Widget".into(),
                plural: "widgets".into(),
            },
            ApiCapabilities {
                scope: Scope::Namespaced,
                subresources: Vec::new(),
                operations: verbs.iter().map(ToString::to_string).collect(),
            },
        )
    }

    fn found(n: &Named) -> Option<&str> {
        match n {
            Named::Found(r, _) => Some(r.api_version.as_str()),
            _ => None,
        }
    }

    fn why(n: &Named) -> &str {
        match n {
            Named::Unreadable(why) => why,
            _ => "",
        }
    }

    #[test]
    fn a_kind_only_custom_checks_name_is_chosen_as_kubectl_would() {
        let list = &["get", "list"];
        let none = BTreeSet::new();
        // One group serving Widget at two versions, v1 preferred.
        let two_versions = || {
            vec![
                served("a.example", "v1", list),
                served("a.example", "v1beta1", list),
            ]
        };
        // No version named: the first (preferred) version of the one group serving it.
        assert_eq!(
            found(&choose("Widget", &none, two_versions())),
            Some("a.example/v1")
        );
        // The version a check names, even when it is not the preferred one.
        let named = BTreeSet::from(["a.example/v1beta1"]);
        assert_eq!(
            found(&choose("Widget", &named, two_versions())),
            Some("a.example/v1beta1")
        );
        // Named but served only elsewhere: an error saying where it is served.
        let n = choose("Widget", &named, vec![served("a.example", "v1", list)]);
        assert!(
            why(&n).contains(
                "no resource of kind Widget in a.example/v1beta1 (it serves Widget in a.example/v1)"
            ),
            "{}",
            why(&n)
        );
        // Served nowhere: not served (no-data saying so), whatever the version named.
        assert!(matches!(choose("Widget", &none, vec![]), Named::NotServed));
        assert!(matches!(choose("Widget", &named, vec![]), Named::NotServed));
        // Two groups and no version: ambiguous, unless the core group is one of them.
        let two = vec![
            served("a.example", "v1", list),
            served("b.example", "v1", list),
        ];
        assert!(why(&choose("Widget", &none, two)).contains("several API groups"));
        let with_core = vec![served("", "v1", list), served("b.example", "v1", list)];
        assert_eq!(found(&choose("Widget", &none, with_core)), Some("v1"));
        // Checks naming two versions: an error, not a guess.
        let both = BTreeSet::from(["a.example/v1", "a.example/v1beta1"]);
        let n = choose("Widget", &both, vec![served("a.example", "v1", list)]);
        assert!(
            why(&n).contains("at a.example/v1 and a.example/v1beta1"),
            "{}",
            why(&n)
        );
        // Served without `list`: nothing can be read, said as such.
        let n = choose("Widget", &none, vec![served("a.example", "v1", &["get"])]);
        assert!(
            why(&n).contains("does not allow listing widgets"),
            "{}",
            why(&n)
        );
    }
}
