//! The relation registry (`facts::registry`) and the listed kinds (`k8s::kinds::LISTED`) against
//! everything that must agree with them: the relations `Facts` computes, the kinds the built-in
//! checks match, the RBAC rules of deploy/rbac.yaml and the documentation of `related`.

mod support;

use mlsdm_audit::checks;
use mlsdm_audit::facts::registry::{MLSDM_READS, RELATIONS, relations_of};
use mlsdm_audit::k8s::kinds::LISTED;
use mlsdm_audit::sources::{Facts, Object, manifests};
use std::collections::BTreeSet;
use std::path::PathBuf;

fn root() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
}

fn listed() -> BTreeSet<&'static str> {
    LISTED.iter().map(|l| l.kind).collect()
}

/// Every object kind of the fixtures carries exactly the relations the registry gives its kind:
/// a relation computed but not declared (the unused `canaries` was one) or declared but not
/// computed fails here.
#[test]
fn facts_compute_exactly_the_registered_relations() {
    let mut objects: Vec<Object> = Vec::new();
    for layer in ["fixtures/compliant", "fixtures/live/healthy.yaml"] {
        let loaded = manifests::load(&[root().join(layer)]).unwrap_or_else(|e| panic!("{e}"));
        support::apply_layer(&mut objects, loaded);
    }
    let kinds: Vec<String> = objects.iter().map(|o| o.kind.clone()).collect();
    let facts = Facts::new(
        objects,
        BTreeSet::from([mlsdm_audit::checks::Source::Kubernetes]),
        None,
        "the fixtures",
    );
    let mut seen = BTreeSet::new();
    for (i, kind) in kinds.iter().enumerate() {
        let cel::Value::Map(map) = facts.cel_related(i) else {
            panic!("related of a {kind} is not a map");
        };
        let computed: BTreeSet<String> = map
            .map
            .keys()
            .map(|k| match k {
                cel::objects::Key::String(s) => s.to_string(),
                other => panic!("related key {other:?}"),
            })
            .collect();
        let declared: BTreeSet<String> = relations_of(kind).map(|r| r.name.to_string()).collect();
        assert_eq!(computed, declared, "related of a {kind}");
        seen.extend(computed);
    }
    let all: BTreeSet<String> = RELATIONS.iter().map(|r| r.name.to_string()).collect();
    assert_eq!(
        seen, all,
        "every relation is computed for some fixture object"
    );
}

/// A live audit lists every kind a relation is computed from and every kind a built-in check
/// matches: a kind missing from the list would leave its relations empty (a pass on nothing).
#[test]
fn every_kind_read_is_listed() {
    let listed = listed();
    for r in RELATIONS {
        for k in r.reads {
            assert!(
                listed.contains(k),
                "related.{} reads {k}, which is not listed",
                r.name
            );
        }
    }
    for k in MLSDM_READS {
        assert!(listed.contains(k), "mlsdm reads {k}, which is not listed");
    }
    for check in checks::load(&[]).unwrap() {
        for m in check.kinds() {
            assert!(
                listed.contains(m.kind.as_str()),
                "{} matches {}, which is not listed",
                check.id,
                m.kind
            );
        }
        for k in check.dependencies().map_or(&[][..], |d| &d.depends_on) {
            assert!(listed.contains(k.as_str()), "{} depends on {k}", check.id);
        }
    }
}

/// The plural resource name RBAC uses for a kind (the API's own rule for these kinds).
fn resource(kind: &str) -> String {
    let lower = kind.to_ascii_lowercase();
    if let Some(stem) = lower.strip_suffix('y') {
        format!("{stem}ies")
    } else if lower.ends_with('s') {
        format!("{lower}es")
    } else {
        format!("{lower}s")
    }
}

/// deploy/rbac.yaml grants get, list and watch on every listed kind in every group it is looked
/// for in, so the documented least-privilege role can run the whole catalog.
#[test]
fn rbac_grants_every_listed_kind() {
    let text = std::fs::read_to_string(root().join("deploy/rbac.yaml")).unwrap();
    let docs: Vec<serde_json::Value> = serde_saphyr::from_multiple(&text).unwrap();
    let role = docs
        .iter()
        .find(|d| d["kind"] == "ClusterRole")
        .expect("deploy/rbac.yaml has the ClusterRole");
    let granted = |group: &str, res: &str| {
        role["rules"].as_array().unwrap().iter().any(|rule| {
            let has = |field: &str, want: &str| {
                rule[field]
                    .as_array()
                    .is_some_and(|v| v.iter().any(|x| x.as_str() == Some(want)))
            };
            has("apiGroups", group)
                && has("resources", res)
                && ["get", "list", "watch"].iter().all(|v| has("verbs", v))
        })
    };
    for l in LISTED {
        let groups: BTreeSet<&str> = l.candidates.iter().map(|(g, _)| *g).collect();
        for g in groups {
            assert!(
                granted(g, &resource(l.kind)),
                "deploy/rbac.yaml does not grant get/list/watch on {} in group {g:?}",
                resource(l.kind)
            );
        }
    }
}

/// docs/writing-checks.md, where check authors look up `related`, names every relation.
#[test]
fn every_relation_is_documented() {
    let doc = std::fs::read_to_string(root().join("docs/writing-checks.md")).unwrap();
    for r in RELATIONS {
        assert!(
            doc.contains(&format!("`related.{}`", r.name)),
            "docs/writing-checks.md does not name related.{}",
            r.name
        );
    }
}
