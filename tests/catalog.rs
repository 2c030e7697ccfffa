//! The catalog against its fixtures: every kubernetes check passes on the compliant release and
//! fails on its own defect; every seed checklist line is covered; generated docs are current.

mod support;

use mlsdm_audit::checks::{self, Check, Source};
use mlsdm_audit::engine;
use mlsdm_audit::report::{CheckResult, Status};
use mlsdm_audit::sources::{Facts, Object, manifests};
use std::collections::{BTreeMap, BTreeSet};
use std::path::{Path, PathBuf};

fn root() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
}

/// Later objects replace earlier ones with the same kind/namespace/name; the delete annotation removes.
fn overlay(layers: &[&Path]) -> Vec<Object> {
    let mut out: Vec<Object> = Vec::new();
    for layer in layers {
        let objects = manifests::load(&[layer.to_path_buf()]).unwrap_or_else(|e| panic!("{e}"));
        support::apply_layer(&mut out, objects);
    }
    out
}

fn evaluate(checks: &[Check], objects: Vec<Object>) -> Vec<CheckResult> {
    let mut facts = Facts::new(
        objects,
        BTreeSet::from([Source::Kubernetes]),
        None,
        "the fixtures",
    );
    // As `--expect-image ghcr.io/neuron7x/mlsdm-neuro-engine:1.2.0 --expect-version 1.2.0` set them.
    facts.params = serde_json::json!({"expectImage": "ghcr.io/neuron7x/mlsdm-neuro-engine:1.2.0", "expectVersion": "1.2.0", "live": false});
    engine::evaluate(checks, &facts)
}

/// `build.rs` gives each built-in check file as a constant tree, which the run reads instead of
/// parsing its YAML (issue 12, target 4). Every file must have it (a file without falls back to
/// its YAML, slowly), and it must read into the model the YAML reads into, every string, number
/// and expression position included.
#[test]
fn every_built_in_check_reads_from_its_tree_as_from_its_yaml() {
    for file in checks::builtin_files() {
        let name = file.name;
        let from_json = checks::builtin_model_from_tree(file)
            .unwrap_or_else(|| panic!("checks/{name}: build.rs gave no tree for it"))
            .unwrap_or_else(|e| panic!("checks/{name}: its tree does not read: {e}"));
        let from_yaml =
            checks::read_yaml(name, file.text).unwrap_or_else(|e| panic!("checks/{name}: {e:?}"));
        assert_eq!(
            format!("{from_json:#?}"),
            format!("{from_yaml:#?}"),
            "checks/{name}"
        );
    }
}

/// The built-in checks' expressions are compiled when first evaluated, not when they load
/// (src/checks/compile.rs, `parse_builtin`): this holds them to what a `--checks` file must pass
/// when it loads (every expression compiles, within the bounds, and names only what exists), and
/// to the same dependencies, so a built-in check that loads can be evaluated.
#[test]
fn every_built_in_check_compiles_as_a_checks_file_does() {
    let env = checks::cel::CelEnv::default();
    let loaded = checks::load(&[]).unwrap_or_else(|e| panic!("{e}"));
    assert_eq!(loaded.len(), checks::builtin_files().len());
    let ids = regex::Regex::new(r"\bid: \d+").unwrap();
    for checks::BuiltinFile { name, text, .. } in checks::builtin_files() {
        let mut eager = checks::parse_check(&format!("checks/{name}"), text, &env)
            .unwrap_or_else(|e| panic!("checks/{name}: {e:?}"));
        eager.builtin = true;
        let deferred = loaded
            .iter()
            .find(|c| c.id == eager.id)
            .unwrap_or_else(|| panic!("{} is not loaded", eager.id));
        assert_eq!(deferred.dependencies(), eager.dependencies(), "{name}");
        assert_eq!(deferred.origin, eager.origin);
        assert_eq!(deferred.sha256, eager.sha256);
        assert_eq!(format!("{deferred:?}"), format!("{eager:?}"), "{name}");
        // A built-in expression is parsed by cel's Pratt parser, a `--checks` file's by its
        // ANTLR parser: the same tree is the same program. Node ids only place a node in the
        // source for messages (cel's evaluation never reads them), and the two parsers number
        // a map literal's entries in a different order, so ids are left out.
        let tree = |e: &checks::Expr| {
            ids.replace_all(&format!("{:?}", e.program()), "id")
                .into_owned()
        };
        let (mine, theirs): (Vec<_>, Vec<_>) = (
            deferred.expressions().map(tree).collect(),
            eager.expressions().map(tree).collect(),
        );
        assert_eq!(mine.len(), theirs.len(), "{name}");
        let sources: Vec<_> = eager.expressions().map(|e| &e.source).collect();
        for ((d, e), source) in mine.iter().zip(&theirs).zip(sources) {
            assert!(
                d == e,
                "{name}: the Pratt parser's tree differs from the ANTLR parser's for `{source}`"
            );
        }
    }
}

fn base_layers() -> Vec<PathBuf> {
    vec![
        root().join("fixtures/compliant"),
        root().join("fixtures/live/healthy.yaml"),
    ]
}

#[test]
fn every_kubernetes_check_passes_on_the_compliant_live_release() {
    let checks = checks::load(&[]).unwrap();
    let layers = base_layers();
    let refs: Vec<&Path> = layers.iter().map(PathBuf::as_path).collect();
    let results = evaluate(&checks, overlay(&refs));
    let mut bad = Vec::new();
    for c in checks.iter().filter(|c| c.source() == Source::Kubernetes) {
        let mine: Vec<&CheckResult> = results.iter().filter(|r| r.id == c.id).collect();
        if !mine.iter().any(|r| r.status == Status::Pass)
            || mine
                .iter()
                .any(|r| matches!(r.status, Status::Fail | Status::Error | Status::NoData))
        {
            bad.push(format!(
                "{}: {:?}",
                c.id,
                mine.iter()
                    .map(|r| (r.status, r.message.clone()))
                    .collect::<Vec<_>>()
            ));
        }
    }
    assert!(
        bad.is_empty(),
        "checks not passing on the compliant release:\n{}",
        bad.join("\n")
    );
}

#[test]
fn every_kubernetes_check_fails_on_its_defect() {
    let checks = checks::load(&[]).unwrap();
    let base = base_layers();
    let mut missing = Vec::new();
    let mut not_failing = Vec::new();
    for c in checks.iter().filter(|c| c.source() == Source::Kubernetes) {
        let defect = root().join(format!("fixtures/defects/{}.yaml", c.id));
        if !defect.exists() {
            missing.push(c.id.clone());
            continue;
        }
        let layers = [base[0].as_path(), base[1].as_path(), defect.as_path()];
        let results = evaluate(&checks, overlay(&layers));
        // A per-item check's failure names its failing items as data (what waivers match on).
        if !results.iter().any(|r| {
            r.id == c.id
                && r.status == Status::Fail
                && (c.kubernetes().is_none_or(|k| k.item.is_none()) || !r.items.is_empty())
        }) {
            not_failing.push(format!(
                "{}: {:?}",
                c.id,
                results
                    .iter()
                    .filter(|r| r.id == c.id)
                    .map(|r| (r.status, r.message.clone()))
                    .collect::<Vec<_>>()
            ));
        }
    }
    assert!(
        missing.is_empty(),
        "kubernetes checks without a defect fixture: {missing:?}"
    );
    assert!(
        not_failing.is_empty(),
        "defects that do not fail their check:\n{}",
        not_failing.join("\n")
    );
}

/// Issue 11: a built-in per-element check says what its elements are (`item:`), so its failures
/// name their containers or keys as data instead of only in the message.
#[test]
fn every_built_in_for_each_check_declares_its_item() {
    let undeclared: Vec<String> = checks::load(&[])
        .unwrap()
        .into_iter()
        .filter(|c| {
            c.kubernetes()
                .is_some_and(|k| k.for_each.is_some() && k.item.is_none())
        })
        .map(|c| c.id)
        .collect();
    assert!(
        undeclared.is_empty(),
        "forEach without item: {undeclared:?}"
    );
}

#[test]
fn both_upstream_naming_families_pass() {
    let checks = checks::load(&[]).unwrap();
    let objects = overlay(&[&root().join("fixtures/compliant-modular")]);
    let mut results = evaluate(&checks, objects.clone());
    // As an audit does: a failure whose evidence may live outside the cluster's objects (no
    // VulnerabilityReport here) is no-data when the audit holds none of them.
    mlsdm_audit::config::external_evidence(results.iter_mut(), &checks, &objects);
    let failed: Vec<String> = results
        .iter()
        .filter(|r| matches!(r.status, Status::Fail | Status::Error))
        .map(|r| format!("{} {}", r.id, r.message))
        .collect();
    assert!(failed.is_empty(), "{failed:#?}");
    assert!(results.iter().any(|r| r.id == "probe-liveness-path"
        && r.status == Status::Pass
        && r.object.as_ref().is_some_and(|o| o.name == "neuro-engine")));
}

#[test]
fn the_defective_example_fails_the_upstream_mistakes() {
    let checks = checks::load(&[]).unwrap();
    let results = evaluate(&checks, overlay(&[&root().join("fixtures/defective")]));
    for id in [
        "mlsdm-config-valid",
        "mlsdm-env-overrides-valid",
        "api-key-from-secret",
        "image-pinned",
        "pdb-min-available",
        "network-policy-allows-api",
        "service-selects-workload",
        "hpa-target-exists",
        "network-policy-selects-pods",
        "service-monitor-selects-service",
        "ingress-backend-exists",
    ] {
        assert!(
            results
                .iter()
                .any(|r| r.id == id && r.status == Status::Fail),
            "{id} should fail on fixtures/defective"
        );
    }
}

/// The leaf checkbox lines of the seed checklist, from the one parser of it (`seed::items`).
fn seed_leaves() -> Vec<String> {
    mlsdm_audit::seed::lines()
        .into_iter()
        .map(|l| l.text)
        .collect()
}

#[test]
fn every_seed_line_is_covered_and_most_are_automated() {
    let checks = checks::load(&[]).unwrap();
    let leaves: BTreeSet<String> = seed_leaves().into_iter().collect();
    assert_eq!(leaves.len(), 179, "the seed has 179 distinct leaf lines");
    let mut covered = BTreeSet::new();
    let mut automated = BTreeSet::new();
    for c in &checks {
        for line in &c.checklist {
            assert!(
                leaves.contains(line),
                "{} names {line:?}, which is not a seed line",
                c.id
            );
            covered.insert(line.clone());
            if c.source() != Source::Manual {
                automated.insert(line.clone());
            }
        }
    }
    let uncovered: Vec<&String> = leaves.difference(&covered).collect();
    assert!(
        uncovered.is_empty(),
        "seed lines no check covers: {uncovered:#?}"
    );
    assert!(
        automated.len() * 2 > leaves.len(),
        "only {} of {} lines automated",
        automated.len(),
        leaves.len()
    );
}

#[test]
fn every_check_has_rationale_and_remediation() {
    let checks = checks::load(&[]).unwrap();
    let mut sections: BTreeMap<&str, usize> = BTreeMap::new();
    for c in &checks {
        assert!(c.doc.trim().len() > 20, "{} has no real doc", c.id);
        assert!(!c.remediation.trim().is_empty(), "{}", c.id);
        *sections
            .entry(c.section.split(" / ").next().unwrap())
            .or_default() += 1;
    }
    assert!(sections.len() >= 6, "{sections:?}");
}

#[test]
fn every_check_sits_in_a_seed_section() {
    let sections = mlsdm_audit::seed::sections();
    for c in checks::load(&[]).unwrap() {
        assert!(
            sections.contains(&c.section),
            "{}: section {:?} is not a section of the seed checklist",
            c.id,
            c.section
        );
    }
}

/// MLSDM 1.2.0 merges every MLSDM_* variable into its config, those its bulkhead middleware reads
/// too: each of these crashes start-up with "unknown top-level keys" (measured).
#[test]
fn bulkhead_variables_crash_startup_like_every_mlsdm_variable() {
    let checks: Vec<Check> = checks::load(&[])
        .unwrap()
        .into_iter()
        .filter(|c| c.id == "mlsdm-env-overrides-valid")
        .collect();
    for var in [
        "MLSDM_MAX_CONCURRENT",
        "MLSDM_QUEUE_TIMEOUT",
        "MLSDM_REQUEST_TIMEOUT",
    ] {
        let layers = base_layers();
        let refs: Vec<&Path> = layers.iter().map(PathBuf::as_path).collect();
        let mut objects = overlay(&refs);
        let deployment = objects
            .iter_mut()
            .find(|o| o.kind == "Deployment" && o.name == "mlsdm-api")
            .unwrap();
        deployment.json["spec"]["template"]["spec"]["containers"][0]["env"]
            .as_array_mut()
            .unwrap()
            .push(serde_json::json!({"name": var, "value": "10"}));
        let results = evaluate(&checks, objects);
        let r = results
            .iter()
            .find(|r| r.object.as_ref().is_some_and(|o| o.name == "mlsdm-api"))
            .unwrap();
        assert_eq!(r.status, Status::Fail, "{var}: {}", r.message);
        assert!(r.message.starts_with(var), "{var}: {}", r.message);
    }
}

/// Objects with only the fields the API server requires (optional fields and status blocks
/// left out, as a cluster may return them): every kubernetes check decides or says why not,
/// none errors on a missing key.
#[test]
fn minimal_objects_give_no_evaluation_errors() {
    let checks = checks::load(&[]).unwrap();
    let objects = manifests::load(&[root().join("tests/data/minimal-objects")]).unwrap();
    let results = evaluate(&checks, objects);
    let errors: Vec<String> = results
        .iter()
        .filter(|r| r.source == Source::Kubernetes && r.status == Status::Error)
        .map(|r| {
            format!(
                "{} on {}: {}",
                r.id,
                r.object.as_ref().map_or("-", |o| o.name.as_str()),
                r.message
            )
        })
        .collect();
    assert!(errors.is_empty(), "{errors:#?}");
    // A Deployment without progressDeadlineSeconds has apps/v1's default of 600.
    let rollback = results
        .iter()
        .find(|r| r.id == "rollout-rollback-possible")
        .unwrap();
    assert_eq!(rollback.status, Status::Pass, "{}", rollback.message);
}

/// A `forEach` that yields no element decided nothing: no-data, never a pass (the borrowed
/// evaluation of `forEach` lists once dropped this and passed every workload without a
/// credential variable).
#[test]
fn a_for_each_that_yields_no_element_is_no_data_not_a_pass() {
    let checks: Vec<Check> = checks::load(&[])
        .unwrap()
        .into_iter()
        .filter(|c| c.id == "api-key-from-secret")
        .collect();
    let mut objects = with_config(None, &[]);
    let deployment = objects
        .iter_mut()
        .find(|o| o.kind == "Deployment" && o.name == "mlsdm-api")
        .unwrap();
    deployment.json["spec"]["template"]["spec"]["containers"][0]["env"] =
        serde_json::json!([{"name": "LOG_LEVEL", "value": "INFO"}]);
    let results = evaluate(&checks, objects);
    let r = results
        .iter()
        .find(|r| r.object.as_ref().is_some_and(|o| o.name == "mlsdm-api"))
        .unwrap();
    assert_eq!(r.status, Status::NoData, "{}", r.message);
    assert!(r.message.starts_with("nothing to check: "), "{}", r.message);
}

/// The compliant release with the MLSDM Deployment's config file text and extra env replaced.
fn with_config(config: Option<&str>, env: &[(&str, &str)]) -> Vec<Object> {
    let layers = base_layers();
    let refs: Vec<&Path> = layers.iter().map(PathBuf::as_path).collect();
    let mut objects = overlay(&refs);
    if let Some(text) = config {
        let cm = objects
            .iter_mut()
            .find(|o| o.kind == "ConfigMap" && o.name == "mlsdm-config")
            .unwrap();
        cm.json["data"]["config.yaml"] = serde_json::json!(text);
    }
    let deployment = objects
        .iter_mut()
        .find(|o| o.kind == "Deployment" && o.name == "mlsdm-api")
        .unwrap();
    let list = deployment.json["spec"]["template"]["spec"]["containers"][0]["env"]
        .as_array_mut()
        .unwrap();
    for (name, value) in env {
        list.push(serde_json::json!({"name": name, "value": value}));
    }
    objects
}

#[test]
fn config_values_mlsdm_refuses_fail_and_values_it_accepts_pass() {
    let checks: Vec<Check> = checks::load(&[])
        .unwrap()
        .into_iter()
        .filter(|c| c.id == "mlsdm-config-valid")
        .collect();
    let verdict = |config: Option<&str>, env: &[(&str, &str)]| {
        let results = evaluate(&checks, with_config(config, env));
        let r = results
            .iter()
            .find(|r| r.id == "mlsdm-config-valid")
            .unwrap();
        (r.status, r.message.clone())
    };
    // Measured on MLSDM 1.2.0: both refuse to start.
    let (s, m) = verdict(Some("dimension: 768\n"), &[]);
    assert_eq!(s, Status::Fail, "{m}");
    assert!(
        m.contains("ontology vector dimension (384)") && m.contains("dimension (768)"),
        "{m}"
    );
    let (s, m) = verdict(None, &[("MLSDM_MORAL_FILTER__THRESHOLD", "0.95")]);
    assert_eq!(s, Status::Fail, "{m}");
    assert!(
        m.contains("moral_filter.threshold = 0.95: must be >= 0.1 and <= 0.9"),
        "{m}"
    );
    // `1` is a boolean to MLSDM's env parser: dimension 1.
    let (s, m) = verdict(None, &[("MLSDM_PELM__CAPACITY", "0")]);
    assert_eq!(s, Status::Fail, "{m}");
    // A nested override under a scalar is refused.
    let (s, m) = verdict(None, &[("MLSDM_DIMENSION__X", "5")]);
    assert_eq!(s, Status::Fail, "{m}");
    assert!(m.contains("not a mapping"), "{m}");
    // Accepted at the bounds.
    for env in [
        [("MLSDM_MORAL_FILTER__THRESHOLD", "0.9")],
        [("MLSDM_PELM__CAPACITY", "1000000")],
    ] {
        let (s, m) = verdict(None, &env);
        assert_eq!(s, Status::Pass, "{env:?}: {m}");
    }
    // Kubernetes expands $(VAR) in env values: not modelled, so an error.
    let (s, m) = verdict(None, &[("MLSDM_PELM__CAPACITY", "$(CAPACITY)")]);
    assert_eq!(s, Status::Error, "{m}");
    assert!(m.contains("$(VAR)"), "{m}");
    // A value the audit cannot see is an error, never a pass.
    let mut objects = with_config(None, &[]);
    let deployment = objects
        .iter_mut()
        .find(|o| o.kind == "Deployment" && o.name == "mlsdm-api")
        .unwrap();
    deployment.json["spec"]["template"]["spec"]["containers"][0]["env"]
        .as_array_mut()
        .unwrap()
        .push(serde_json::json!({"name": "MLSDM_DIMENSION", "valueFrom": {"secretKeyRef": {"name": "mlsdm-secrets", "key": "dim"}}}));
    let results = evaluate(&checks, objects);
    let r = results
        .iter()
        .find(|r| r.id == "mlsdm-config-valid")
        .unwrap();
    assert_eq!(r.status, Status::Error, "{}", r.message);
    assert!(r.message.contains("MLSDM_DIMENSION"), "{}", r.message);
}

#[test]
fn the_dimension_check_judges_the_dimension_the_service_runs_with() {
    let checks: Vec<Check> = checks::load(&[])
        .unwrap()
        .into_iter()
        .filter(|c| c.id == "mlsdm-config-dimension")
        .collect();
    let verdict = |objects: Vec<Object>| {
        let results = evaluate(&checks, objects);
        let r = results
            .iter()
            .find(|r| r.id == "mlsdm-config-dimension")
            .unwrap();
        (r.status, r.message.clone())
    };
    assert_eq!(verdict(with_config(None, &[])).0, Status::Pass);
    // The API server never reads EMBEDDING_DIM: it runs with the config's 384.
    let (s, m) = verdict(with_config(None, &[("EMBEDDING_DIM", "768")]));
    assert_eq!(s, Status::Fail, "{m}");
    assert!(
        m.contains("EMBEDDING_DIM=768 is not read") && m.contains("dimension 384"),
        "{m}"
    );
    assert_eq!(
        verdict(with_config(None, &[("EMBEDDING_DIM", "384")])).0,
        Status::Pass
    );
    // dimension 768 without 768-long ontology vectors: the service does not start at all.
    let (s, m) = verdict(with_config(Some("dimension: 768\n"), &[]));
    assert_eq!(s, Status::Fail, "{m}");
    assert!(
        m.contains("refuses to start") && m.contains("ontology vector dimension (384)"),
        "{m}"
    );
    // Unset: the service runs with 384, and the checklist wants it set.
    let (s, m) = verdict(with_config(Some("pelm:\n  capacity: 20000\n"), &[]));
    assert_eq!(s, Status::Fail, "{m}");
    assert!(m.contains("runs with 384"), "{m}");
    // CONFIG_PATH unset: the image's default config, dimension 10.
    let mut objects = with_config(None, &[]);
    let d = objects
        .iter_mut()
        .find(|o| o.kind == "Deployment" && o.name == "mlsdm-api")
        .unwrap();
    d.json["spec"]["template"]["spec"]["containers"][0]["env"]
        .as_array_mut()
        .unwrap()
        .retain(|e| e["name"] != "CONFIG_PATH");
    let (s, m) = verdict(objects);
    assert_eq!(s, Status::Fail, "{m}");
    assert_eq!(&*m, "dimension is 10, not 384, 768 or 1024");
}

/// The derived fixtures are what `scripts/gen-fixtures.py` makes of `fixtures/compliant` and
/// `fixtures/live` today: a hand edit of a generated file, or a change to the sources without
/// regenerating, would test something other than what the README says.
#[test]
fn generated_fixtures_are_fresh() {
    let python = std::env::var("MLSDM_AUDIT_PYTHON").unwrap_or_else(|_| "python3".into());
    let work = std::env::temp_dir().join(format!("mlsdm-audit-genfx-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&work);
    for dir in ["fixtures/compliant", "fixtures/live"] {
        let to = work.join(dir);
        std::fs::create_dir_all(&to).unwrap();
        for entry in std::fs::read_dir(root().join(dir)).unwrap() {
            let path = entry.unwrap().path();
            std::fs::copy(&path, to.join(path.file_name().unwrap())).unwrap();
        }
    }
    let out = std::process::Command::new(&python)
        .arg(root().join("scripts/gen-fixtures.py"))
        .current_dir(&work)
        .output()
        .expect("python3 with PyYAML runs scripts/gen-fixtures.py (scripts/test.sh installs it)");
    assert!(
        out.status.success(),
        "gen-fixtures.py failed: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    let files = |base: &Path, dir: &str| -> BTreeMap<String, String> {
        std::fs::read_dir(base.join(dir))
            .unwrap()
            .map(|e| {
                let p = e.unwrap().path();
                (
                    p.file_name().unwrap().to_string_lossy().into_owned(),
                    std::fs::read_to_string(&p).unwrap(),
                )
            })
            .collect()
    };
    for dir in [
        "fixtures/defects",
        "fixtures/compliant-modular",
        "fixtures/defective",
    ] {
        let (made, committed) = (files(&work, dir), files(&root(), dir));
        let made_names: Vec<&String> = made.keys().collect();
        let committed_names: Vec<&String> = committed.keys().collect();
        assert_eq!(made_names, committed_names, "{dir}: files differ");
        for (name, text) in &made {
            assert!(
                committed[name] == *text,
                "{dir}/{name} is not what scripts/gen-fixtures.py makes: run `python3 scripts/gen-fixtures.py`"
            );
        }
    }
    let _ = std::fs::remove_dir_all(&work);
}
