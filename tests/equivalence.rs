//! The indexed evaluation (relations looked up by namespace, name and selector label, objects
//! converted once for cel and borrowed by every check) gives exactly the results of the
//! straightforward one (every relation found by scanning, every object visited by every check,
//! values bound by copy), compared as the whole JSON report: on every fixture and on a generated
//! release of a few hundred objects mixed with the fixtures (issue 12).

mod support;

use mlsdm_audit::checks::{self, Source};
use mlsdm_audit::engine;
use mlsdm_audit::report::{Report, Target};
use mlsdm_audit::sources::manifests::{Input, load_inputs};
use mlsdm_audit::sources::{Facts, Object, selector};
use std::collections::BTreeSet;
use std::path::PathBuf;

/// The objects of `inputs`, later layers replacing earlier ones and the fixtures' delete
/// annotation removing (as tests/catalog.rs overlays a defect on the compliant release).
fn overlay(inputs: &[Input]) -> Vec<Object> {
    let mut out: Vec<Object> = Vec::new();
    for input in inputs {
        let loaded = load_inputs(std::slice::from_ref(input)).expect("inputs load");
        support::apply_layer(&mut out, loaded.objects);
    }
    out
}

fn report(objects: Vec<Object>, straightforward: bool, workload_selector: Option<&str>) -> String {
    report_on(objects, straightforward, workload_selector, None)
}

/// `report`, evaluated on exactly `threads` threads when given (`Facts::threads`).
fn report_on(
    objects: Vec<Object>,
    straightforward: bool,
    workload_selector: Option<&str>,
    threads: Option<usize>,
) -> String {
    // Compiled once for the whole test binary (several hundred CEL programs).
    static CHECKS: std::sync::OnceLock<Vec<checks::Check>> = std::sync::OnceLock::new();
    let checks = CHECKS.get_or_init(|| checks::load(&[]).expect("built-in checks"));
    let mut facts = Facts::new(
        objects,
        BTreeSet::from([Source::Kubernetes]),
        workload_selector.map(|s| selector::parse(s).expect("selector")),
        "the audited manifests",
    );
    facts.straightforward = straightforward;
    facts.threads = threads;
    facts.params = serde_json::json!({"expectImage": "ghcr.io/neuron7x/mlsdm-neuro-engine:1.2.0", "expectVersion": "1.2.0", "live": false});
    let results = engine::evaluate(checks, &facts);
    let mut json = serde_json::to_value(Report::new(Target::default(), results)).expect("json");
    json.as_object_mut()
        .expect("a report is an object")
        .remove("generatedAt");
    serde_json::to_string_pretty(&json).expect("json")
}

fn assert_same(name: &str, inputs: &[Input], workload_selector: Option<&str>) {
    let objects = overlay(inputs);
    let indexed = report(objects.clone(), false, workload_selector);
    let straightforward = report(objects, true, workload_selector);
    if indexed != straightforward {
        let diff: Vec<(usize, &str, &str)> = indexed
            .lines()
            .zip(straightforward.lines())
            .enumerate()
            .filter(|(_, (a, b))| a != b)
            .map(|(i, (a, b))| (i + 1, a, b))
            .take(5)
            .collect();
        panic!(
            "{name}: the indexed report differs from the straightforward one (line, indexed, straightforward): {diff:#?}"
        );
    }
    assert!(
        indexed.contains("\"status\": \"fail\"") || indexed.contains("\"status\": \"pass\""),
        "{name}: nothing was evaluated"
    );
}

fn path(p: &str) -> Input {
    Input::Path(PathBuf::from(env!("CARGO_MANIFEST_DIR")).join(p))
}

#[test]
fn every_fixture_gives_the_same_report() {
    for set in [
        "fixtures/compliant",
        "fixtures/compliant-modular",
        "fixtures/defective",
        "fixtures/live",
        "fixtures/modular-kustomize",
        "tests/data/minimal-objects",
        "tests/data/namespaceless-base",
    ] {
        assert_same(set, &[path(set)], None);
    }
    // Each defect overlaid on the compliant live release, as tests/catalog.rs does.
    let defects = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("fixtures/defects");
    let mut files: Vec<String> = std::fs::read_dir(&defects)
        .expect("fixtures/defects")
        .map(|e| {
            format!(
                "fixtures/defects/{}",
                e.expect("entry").file_name().to_string_lossy()
            )
        })
        .collect();
    files.sort();
    assert!(files.len() > 10);
    for defect in &files {
        assert_same(
            defect,
            &[
                path("fixtures/compliant"),
                path("fixtures/live/healthy.yaml"),
                path(defect),
            ],
            None,
        );
    }
    // Every way a binding grants to a ServiceAccount, and some that do not.
    assert_same(
        "fixtures/compliant with RBAC grants",
        &[path("fixtures/compliant"), path("tests/data/rbac-grants")],
        None,
    );
    // Claims bound to hostPath and local PersistentVolumes (`related.hostPathClaims`), mounted
    // by a workload, a bare Pod and a CronJob.
    assert_same(
        "fixtures/compliant with host path claims",
        &[
            path("fixtures/compliant"),
            path("tests/data/host-path-claims"),
        ],
        None,
    );
    // Under --selector, workloads out of scope still relate to what selects them.
    assert_same(
        "fixtures/compliant with a selector",
        &[path("fixtures/compliant"), path("fixtures/live")],
        Some("app=mlsdm-api"),
    );
}

#[test]
fn a_generated_release_mixed_with_the_fixtures_gives_the_same_report() {
    // 300 objects over 3 namespaces, plus every kind the fixtures bring (NetworkPolicies,
    // monitors, Ingresses, Pods, ReplicaSets) in namespaces of their own.
    let inputs = generated_with(
        300,
        &[
            "fixtures/compliant",
            "fixtures/live",
            "fixtures/modular-kustomize",
        ],
    );
    assert_same("generated release", &inputs, None);
}

/// A generated release of about `objects` objects (rendered texts), then the fixture sets.
fn generated_with(objects: usize, fixtures: &[&str]) -> Vec<Input> {
    mlsdm_audit_testservers::synthetic::manifest_files(objects)
        .into_iter()
        .map(|(name, text)| Input::Rendered { name, text })
        .chain(fixtures.iter().map(|f| path(f)))
        .collect()
}

#[test]
fn the_report_does_not_depend_on_the_number_of_threads() {
    // Enough objects that the evaluation order is cut into more ranges as threads are added
    // (8 a thread, at most one per 64 objects: 8 ranges on one thread, 16 on two, 24 on three,
    // 40 on five), so range boundaries fall between different objects each time; the fixtures'
    // kinds mixed in. This machine's core count picks one of these; the others are forced.
    let inputs = generated_with(900, &["fixtures/compliant", "fixtures/live"]);
    // Pairs of Ingresses that sort the same (one namespace and name, two API groups: see the
    // next test), side by side in the evaluation order, each followed by one that does not:
    // range boundaries then fall between the two of some pairs (checked when this test was
    // written, by printing the cuts: for every thread count below), and their results must
    // still come out in input order. Joining the ranges in any other order fails here.
    let ties: String = (0..600)
        .map(|i| {
            let ingress = |api: &str, name: &str, host: &str| {
                format!(
                    "apiVersion: {api}\nkind: Ingress\nmetadata: {{name: {name}, namespace: tie}}\nspec: {{rules: [{{host: {host}.example}}]}}\n---\n"
                )
            };
            let name = format!("pair-{i:03}");
            [
                ingress("networking.k8s.io/v1", &name, &format!("a{i}")),
                ingress("extensions/v1beta1", &name, &format!("b{i}")),
                ingress("networking.k8s.io/v1", &format!("{name}-x"), &format!("c{i}")),
            ]
            .concat()
        })
        .collect();
    let mut objects = overlay(&inputs);
    // Added as loaded: an overlay layer keeps one object per kind, namespace and name.
    let ties = Input::Rendered {
        name: "ties.yaml".into(),
        text: ties,
    };
    objects.extend(load_inputs(&[ties]).expect("loads").objects);
    assert!(
        objects.len() >= 64 * 8 * 5,
        "{} objects: too few to cut into more ranges on more threads",
        objects.len()
    );
    let one = report_on(objects.clone(), false, None, Some(1));
    assert!(
        one.contains("\"status\": \"fail\""),
        "nothing was evaluated"
    );
    for threads in [2, 3, 5, 8] {
        let many = report_on(objects.clone(), false, None, Some(threads));
        assert!(
            many == one,
            "on {threads} threads the report differs from the one on one thread"
        );
    }
    // A few objects: every object on every thread, the checks dealt among the threads.
    let few = overlay(&[path("fixtures/compliant")]);
    let one = report_on(few.clone(), false, None, Some(1));
    for threads in [2, 3, 8] {
        assert!(
            report_on(few.clone(), false, None, Some(threads)) == one,
            "fixtures/compliant: on {threads} threads the report differs from the one on one thread"
        );
    }
}

#[test]
fn objects_that_sort_the_same_keep_their_input_order() {
    // Two Ingresses of one namespace and name from two API groups that serve the kind (the
    // loader keeps both: their identity includes the group), with objects between and around
    // them in input order. The indexed path evaluates in namespace and name order; their results
    // must still come out in the order the straightforward path, which goes in input order,
    // gives them.
    let text = "\
apiVersion: networking.k8s.io/v1
kind: Ingress
metadata: {name: same, namespace: tie}
spec: {rules: [{host: a.example}]}
---
apiVersion: networking.k8s.io/v1
kind: Ingress
metadata: {name: between, namespace: tie}
spec: {rules: [{host: b.example}]}
---
apiVersion: extensions/v1beta1
kind: Ingress
metadata: {name: same, namespace: tie}
spec: {rules: [{host: c.example}]}
---
apiVersion: networking.k8s.io/v1
kind: Ingress
metadata: {name: aaa, namespace: tie}
spec: {rules: [{host: d.example}]}
";
    let mut objects = overlay(&[path("fixtures/compliant")]);
    let rendered = Input::Rendered {
        name: "tie.yaml".into(),
        text: text.into(),
    };
    objects.extend(load_inputs(&[rendered]).expect("loads").objects);
    let same = objects
        .iter()
        .filter(|o| o.kind == "Ingress" && o.name == "same")
        .count();
    assert_eq!(same, 2, "the loader keeps both");
    let indexed = report(objects.clone(), false, None);
    let straightforward = report(objects, true, None);
    assert!(
        indexed == straightforward,
        "the indexed report orders the two Ingresses' results differently from the straightforward one"
    );
    let results: serde_json::Value = serde_json::from_str(&indexed).expect("json");
    let lines: Vec<u64> = results["results"]
        .as_array()
        .expect("results")
        .iter()
        .filter(|r| r["id"] == "ingress-backend-exists" && r["object"]["name"] == "same")
        .filter_map(|r| r["location"]["line"].as_u64())
        .collect();
    assert!(
        lines.first() == Some(&1) && lines.last() == Some(&11) && lines.is_sorted(),
        "both Ingresses have results, the first in the input first: {lines:?}"
    );
}
