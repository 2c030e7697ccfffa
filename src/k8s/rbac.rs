//! What a ServiceAccount is granted, read from RoleBindings and ClusterRoleBindings as the API
//! server's RBAC authorizer reads them (`appliesToUser` in kubernetes'
//! pkg/registry/rbac/validation/rule.go): a `ServiceAccount` subject names the account (its
//! namespace defaults to the binding's own, and a ClusterRoleBinding's subject without one
//! grants nothing); a `User` subject names it as `system:serviceaccount:NS:NAME`; a `Group`
//! subject grants to every account of `system:serviceaccounts`, `system:serviceaccounts:NS` or
//! `system:authenticated`. A binding in another namespace still grants the account rights
//! there, so every binding counts, not only those of the workload's namespace.

use super::Object;
use serde_json::{Value, json};

const USER_PREFIX: &str = "system:serviceaccount:";
pub const GROUP_ALL: &str = "system:serviceaccounts";
const GROUP_NS_PREFIX: &str = "system:serviceaccounts:";
pub const GROUP_AUTHENTICATED: &str = "system:authenticated";

/// The kinds a grant is read from.
pub const BINDING_KINDS: &[&str] = &["RoleBinding", "ClusterRoleBinding"];

/// The names a subject of a binding may carry for it to grant to ServiceAccount `name` of
/// namespace `ns` (`None`: a manifest without a namespace, which may be applied anywhere):
/// what an index of subjects is looked up by before [`grants_to`] decides.
pub fn subject_names(ns: Option<&str>, name: &str) -> Vec<String> {
    let mut names = vec![
        name.to_string(),
        GROUP_ALL.to_string(),
        GROUP_AUTHENTICATED.to_string(),
    ];
    if let Some(ns) = ns {
        names.push(format!("{GROUP_NS_PREFIX}{ns}"));
    }
    names
}

/// The name a subject is indexed by: a ServiceAccount's name (also for a `User` subject that
/// names one), a group's name; `None` for a subject that can never be a ServiceAccount.
pub fn subject_index_name(subject: &Value) -> Option<&str> {
    let name = subject.get("name").and_then(Value::as_str)?;
    match subject.get("kind").and_then(Value::as_str)? {
        "ServiceAccount" | "Group" => Some(name),
        "User" => name
            .strip_prefix(USER_PREFIX)?
            .rsplit_once(':')
            .map(|(_, n)| n),
        _ => None,
    }
}

/// The subjects of a binding (empty when it has none).
pub fn subjects(binding: &Object) -> &[Value] {
    binding
        .json
        .get("subjects")
        .and_then(Value::as_array)
        .map_or(&[], Vec::as_slice)
}

/// How `binding` grants to ServiceAccount `name` of namespace `ns`: the first subject that names
/// it (`"ServiceAccount"`, `"User"`, or `"Group <name>"`), or `None`.
pub fn grants_to(binding: &Object, ns: Option<&str>, name: &str) -> Option<String> {
    let ns_matches = |subject_ns: Option<&str>| ns.is_none() || subject_ns == ns;
    subjects(binding).iter().find_map(|s| {
        let subject_name = s.get("name").and_then(Value::as_str)?;
        match s.get("kind").and_then(Value::as_str)? {
            "ServiceAccount" => {
                let own = s
                    .get("namespace")
                    .and_then(Value::as_str)
                    .filter(|n| !n.is_empty());
                // The authorizer falls back to the binding's namespace; a ClusterRoleBinding has
                // none, and such a subject grants nothing.
                let effective = own.or(binding.namespace.as_deref());
                let grants = subject_name == name
                    && (effective.is_some() || binding.kind == "RoleBinding")
                    && ns_matches(effective);
                grants.then(|| "ServiceAccount".to_string())
            }
            "User" => {
                let (sa_ns, sa) = subject_name.strip_prefix(USER_PREFIX)?.rsplit_once(':')?;
                (sa == name && ns_matches(Some(sa_ns))).then(|| "User".to_string())
            }
            "Group" => {
                let grants = subject_name == GROUP_ALL
                    || subject_name == GROUP_AUTHENTICATED
                    || subject_name
                        .strip_prefix(GROUP_NS_PREFIX)
                        .is_some_and(|g| ns_matches(Some(g)));
                grants.then(|| format!("Group {subject_name}"))
            }
            _ => None,
        }
    })
}

/// One entry of `related.serviceAccountGrants`: the binding, the subject that grants to the
/// account, the role it refers to, and that role's object when the audit holds it (a built-in
/// ClusterRole such as `cluster-admin` is in no manifest: `role` is null, `roleRef` still names it).
pub fn grant_value(
    binding: &Object,
    via: &str,
    role: Option<&Object>,
    cluster_roles: &[&Object],
) -> Value {
    let role_ref = binding.json.get("roleRef");
    let text = |k: &str| role_ref.and_then(|r| r.get(k)).and_then(Value::as_str);
    let rules = effective_rules(text("kind"), text("name"), role, cluster_roles);
    json!({
        "binding": {
            "kind": binding.kind,
            "namespace": binding.namespace,
            "name": binding.name,
        },
        "subject": via,
        "direct": !via.starts_with("Group"),
        "roleRef": {"kind": text("kind"), "name": text("name")},
        "role": role.map(|r| r.json.clone()),
        "rules": rules,
    })
}

/// What a role grants: its own rules, and, for an aggregated ClusterRole, the rules of every
/// ClusterRole of the audit its `aggregationRule.clusterRoleSelectors` select, as the
/// clusterrole-aggregation controller fills them in. The built-in `view`, `edit` and `admin`
/// (in no manifest) aggregate the ClusterRoles labelled
/// `rbac.authorization.k8s.io/aggregate-to-<name>: "true"`. Read from `rules` alone, a binding
/// to `view` with a ClusterRole labelled to aggregate into it that reads Secrets passed.
fn effective_rules(
    ref_kind: Option<&str>,
    ref_name: Option<&str>,
    role: Option<&Object>,
    cluster_roles: &[&Object],
) -> Vec<Value> {
    let rules_of = |o: &Object| -> Vec<Value> {
        o.json
            .get("rules")
            .and_then(Value::as_array)
            .cloned()
            .unwrap_or_default()
    };
    let mut rules = role.map(rules_of).unwrap_or_default();
    let selectors: Vec<Value> = match (role, ref_kind, ref_name) {
        (Some(r), _, _) => r
            .json
            .pointer("/aggregationRule/clusterRoleSelectors")
            .and_then(Value::as_array)
            .cloned()
            .unwrap_or_default(),
        (None, Some("ClusterRole"), Some(name @ ("view" | "edit" | "admin"))) => {
            vec![
                json!({"matchLabels": {format!("rbac.authorization.k8s.io/aggregate-to-{name}"): "true"}}),
            ]
        }
        _ => Vec::new(),
    };
    // A null selector in the list selects nothing (an empty one everything, as Kubernetes).
    let selectors: Vec<&Value> = selectors.iter().filter(|s| s.is_object()).collect();
    if selectors.is_empty() {
        return rules;
    }
    for cr in cluster_roles {
        if role.is_some_and(|r| r.slot == cr.slot) {
            continue;
        }
        let labels = cr.labels();
        if selectors
            .iter()
            .any(|s| crate::k8s::selector::matches(s, &labels).unwrap_or(false))
        {
            rules.extend(rules_of(cr));
        }
    }
    rules
}

/// The Role or ClusterRole a binding refers to: (kind, namespace to look in, name). A
/// RoleBinding's Role is in the binding's namespace; a ClusterRole has none.
pub fn role_ref(binding: &Object) -> Option<(&str, Option<&str>, &str)> {
    let r = binding.json.get("roleRef")?;
    let kind = r.get("kind").and_then(Value::as_str)?;
    let name = r.get("name").and_then(Value::as_str)?;
    match kind {
        "ClusterRole" => Some((kind, None, name)),
        "Role" => Some((kind, binding.namespace.as_deref(), name)),
        _ => None,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn binding(kind: &str, ns: Option<&str>, subjects: Value) -> Object {
        let v = json!({
            "apiVersion": "rbac.authorization.k8s.io/v1",
            "kind": kind,
            "metadata": {"name": "b", "namespace": ns},
            "subjects": subjects,
            "roleRef": {"apiGroup": "rbac.authorization.k8s.io", "kind": "ClusterRole", "name": "edit"},
        });
        Object::new(
            "rbac.authorization.k8s.io/v1".into(),
            kind.into(),
            ns.map(str::to_string),
            "b".into(),
            v,
            None,
        )
    }

    #[test]
    fn subjects_grant_as_the_authorizer_reads_them() {
        let sa = |ns: Option<&str>| json!([{"kind": "ServiceAccount", "name": "mlsdm", "namespace": ns}]);
        // A RoleBinding's subject without a namespace is the binding's namespace.
        let b = binding(
            "RoleBinding",
            Some("prod"),
            json!([{"kind": "ServiceAccount", "name": "mlsdm"}]),
        );
        assert_eq!(
            grants_to(&b, Some("prod"), "mlsdm").as_deref(),
            Some("ServiceAccount")
        );
        assert_eq!(grants_to(&b, Some("dev"), "mlsdm"), None);
        // A binding in another namespace grants the account rights there.
        let b = binding("RoleBinding", Some("kube-system"), sa(Some("prod")));
        assert!(grants_to(&b, Some("prod"), "mlsdm").is_some());
        // A ClusterRoleBinding's subject needs its namespace.
        let b = binding(
            "ClusterRoleBinding",
            None,
            json!([{"kind": "ServiceAccount", "name": "mlsdm"}]),
        );
        assert_eq!(grants_to(&b, Some("prod"), "mlsdm"), None);
        let b = binding("ClusterRoleBinding", None, sa(Some("prod")));
        assert!(grants_to(&b, Some("prod"), "mlsdm").is_some());
        assert_eq!(grants_to(&b, Some("prod"), "other"), None);
        let user = json!([{"kind": "User", "name": "system:serviceaccount:prod:mlsdm"}]);
        let b = binding("ClusterRoleBinding", None, user);
        assert_eq!(
            grants_to(&b, Some("prod"), "mlsdm").as_deref(),
            Some("User")
        );
        assert_eq!(grants_to(&b, Some("dev"), "mlsdm"), None);
        for group in [
            "system:serviceaccounts",
            "system:serviceaccounts:prod",
            "system:authenticated",
        ] {
            let b = binding(
                "ClusterRoleBinding",
                None,
                json!([{"kind": "Group", "name": group}]),
            );
            assert_eq!(
                grants_to(&b, Some("prod"), "mlsdm"),
                Some(format!("Group {group}")),
                "{group}"
            );
        }
        let b = binding(
            "ClusterRoleBinding",
            None,
            json!([{"kind": "Group", "name": "system:serviceaccounts:dev"}]),
        );
        assert_eq!(grants_to(&b, Some("prod"), "mlsdm"), None);
        // Every subject name that can grant is one the index is looked up by.
        for s in [
            json!({"kind": "ServiceAccount", "name": "mlsdm"}),
            json!({"kind": "User", "name": "system:serviceaccount:prod:mlsdm"}),
            json!({"kind": "Group", "name": "system:serviceaccounts:prod"}),
        ] {
            let key = subject_index_name(&s).unwrap().to_string();
            assert!(subject_names(Some("prod"), "mlsdm").contains(&key), "{s}");
        }
    }
}
