//! MLSDM detection and config validation tests.

use super::validate::{as_float, parse_env_value, validate_config};
use super::yaml::{parse_config_text, yaml11_divergences};
use super::*;

/// This tool's own image and variables are not MLSDM's (an audit of a namespace that runs
/// the in-cluster CronJob as a Deployment probed the auditor as the service).
#[test]
fn the_auditor_is_not_mlsdm() {
    for (container, want) in [
        (
            json!({"image": "ghcr.io/neuron7x/mlsdm-neuro-engine:1.2.0"}),
            true,
        ),
        (
            json!({"image": "registry.example:5000/team/mlsdm@sha256:abc"}),
            true,
        ),
        (
            json!({"image": "ghcr.io/neuron7x/mlsdm-audit:0.1.0"}),
            false,
        ),
        (json!({"image": "mlsdm-audit"}), false),
        (json!({"image": "ghcr.io/mlsdm-team/redis:7"}), false),
        (
            json!({"image": "x", "env": [{"name": "MLSDM_AUDIT_KEY_PASSPHRASE"}]}),
            false,
        ),
        (
            json!({"image": "x", "env": [{"name": "MLSDM_ENV", "value": "prod"}]}),
            true,
        ),
        (
            json!({"image": "x", "env": [{"name": "LLM_BACKEND", "value": "local"}]}),
            true,
        ),
    ] {
        assert_eq!(super::runs_mlsdm(&container), want, "{container}");
    }
}

/// Review findings, both ways: an auth proxy listed first carrying API_KEY, an exporter or
/// log shipper whose image says "mlsdm", and MLSDM's own image renamed. The container with the
/// most signs of MLSDM is judged, the first on a tie.
#[test]
fn the_mlsdm_container_is_the_one_with_the_most_signs() {
    let probes = json!({"httpGet": {"path": "/health/ready", "port": 8000}});
    for (containers, want) in [
        // An auth proxy with API_KEY before MLSDM's image.
        (
            json!([
                {"name": "proxy", "image": "oauth2-proxy", "env": [{"name": "API_KEY", "value": "x"}]},
                {"name": "api", "image": "ghcr.io/neuron7x/mlsdm-neuro-engine:1.2.0"}
            ]),
            "api",
        ),
        // An exporter whose image says mlsdm before MLSDM renamed, setting MLSDM's variables.
        (
            json!([
                {"name": "exporter", "image": "ghcr.io/acme/mlsdm-exporter:1"},
                {"name": "api", "image": "registry.acme/ml/inference", "env": [{"name": "MLSDM_ENV", "value": "p"}]}
            ]),
            "api",
        ),
        // A log shipper whose image says mlsdm before MLSDM renamed, with only API_KEY and its
        // health probes.
        (
            json!([
                {"name": "shipper", "image": "registry.acme/mlsdm-log-shipper:1"},
                {"name": "api", "image": "registry.acme/platform/api", "readinessProbe": probes,
                 "ports": [{"containerPort": 8000}], "env": [{"name": "API_KEY", "value": "x"}]}
            ]),
            "api",
        ),
        // Nothing to tell them apart: the first.
        (
            json!([{"name": "a", "image": "x"}, {"name": "b", "image": "y"}]),
            "a",
        ),
    ] {
        let spec = json!({"containers": containers});
        assert_eq!(
            mlsdm_container(&spec).unwrap()["name"],
            want,
            "{containers}"
        );
    }
}

fn broken(yaml: &str) -> Vec<String> {
    validate_config(&parse_config_text(yaml).unwrap())
}

#[test]
fn accepted_configs_break_no_rule() {
    for ok in [
        "",
        "dimension: 384\nstrict_mode: true\npelm:\n  capacity: 20000\nmoral_filter:\n  threshold: 0.5\n  adapt_rate: 0.05\n  min_threshold: 0.3\n  max_threshold: 0.9\ncognitive_rhythm:\n  wake_duration: 8\n  sleep_duration: 3\n",
        DEFAULT_CONFIG_TEXT,
        "moral_filter:\n  threshold: 0.9\n",
        "moral_filter:\n  threshold: '0.1'\n  min_threshold: 0.1\n",
        "pelm:\n  capacity: 100\n",
        "pelm:\n  capacity: 99\npelm:\n  capacity: 100\n",
        "pelm:\n  capacity: 1000000\n  unknown_sub_key: 1\n",
        "dimension: 2\nontology_matcher:\n  ontology_vectors: [[1, 0], [0, 1]]\n",
        "dimension: 384.0\n",
        "multi_level_memory:\n  lambda_l1: 1\n  lambda_l2: 1\n  lambda_l3: 1\n",
        "api:\n  priority:\n    default_priority: HIGH\n",
        "drift_logging: null\nneurolang:\n  mode: disabled\n  checkpoint_path: null\n",
    ] {
        assert_eq!(broken(ok), Vec::<String>::new(), "{ok}");
    }
}

#[test]
fn refused_configs_name_the_field_and_the_rule() {
    for (bad, want) in [
        (
            "dimension: 768\n",
            "ontology vector dimension (384) (the default ontology) must match dimension (768)",
        ),
        (
            "moral_filter:\n  threshold: 0.95\n",
            "moral_filter.threshold = 0.95: must be >= 0.1 and <= 0.9",
        ),
        (
            "moral_filter:\n  threshold: 0.2\n",
            "moral_filter.threshold (0.2) must be >= min_threshold (0.3)",
        ),
        (
            "moral_filter:\n  min_threshold: 0.9\n",
            "moral_filter.min_threshold (0.9) must be < max_threshold (0.9)",
        ),
        ("dimension: 1\n", "dimension = 1: must be in 2..4096"),
        ("dimension: 4097\n", "dimension = 4097: must be in 2..4096"),
        (
            "dimension: 384.5\n",
            "dimension = 384.5: must be an integer",
        ),
        ("dimension:\n", "dimension = null: must be an integer"),
        (
            "pelm:\n  capacity: 99\n",
            "pelm.capacity = 99: must be in 100..1000000",
        ),
        ("pelm:\n", "pelm = null: must be a mapping"),
        (
            "multi_level_memory:\n  lambda_l3: 0\n",
            "multi_level_memory.lambda_l3 = 0: must be > 0 and <= 1",
        ),
        (
            "multi_level_memory:\n  lambda_l2: 0.6\n",
            "decay rates must follow",
        ),
        (
            "multi_level_memory:\n  theta_l1: 2.0\n",
            "theta_l2 (2) must be > theta_l1 (2)",
        ),
        (
            "cognitive_rhythm:\n  wake_duration: 0\n",
            "cognitive_rhythm.wake_duration = 0: must be in 1..100",
        ),
        (
            "neurolang:\n  mode: lazy\n",
            "neurolang.mode = \"lazy\": must be one of",
        ),
        (
            "drift_logging: quiet\n",
            "drift_logging = \"quiet\": must be one of silent, verbose",
        ),
        (
            "strict_mode: maybe\n",
            "strict_mode = \"maybe\": must be a boolean",
        ),
        (
            "ontology_matcher:\n  ontology_vectors: []\n",
            "cannot be empty",
        ),
        (
            "ontology_matcher:\n  ontology_vectors: [[1, 0], [1]]\n",
            "same length",
        ),
        (
            "dimension: 2\nontology_matcher:\n  ontology_vectors: [[1, 0]]\n  ontology_labels: [a, b]\n",
            "number of ontology_labels (2)",
        ),
        (
            "ontology_matcher:\n  ontology_labels: [1, 2]\n",
            "must be a list of strings",
        ),
        (
            "api:\n  max_concurrent_requests: 0\n",
            "api.max_concurrent_requests = 0: must be in 1..10000",
        ),
    ] {
        let got = broken(bad);
        assert!(
            got.iter().any(|m| m.contains(want)),
            "{bad:?}: want {want:?}, got {got:?}"
        );
        assert!(
            got.iter().all(|m| m.contains(".py:")),
            "{got:?} cites upstream lines"
        );
    }
}

#[test]
fn plain_scalars_read_differently_by_yaml_1_1_are_found() {
    let text = "a: y\nb: 1e3\nc: 012\nd: 1:30\ne: 2024-01-01\nf: .inf\ng: 0o7\nh: 1.0e+3\n\
                i: 'y'\nj: yes\nk: 1_000\nl: 0.5\nm: 384\nkey: -0.25\no: ~\np: 0x1F\nq: text\nN: 1\n";
    let found = yaml11_divergences(text).0;
    let lines: Vec<&str> = found.iter().map(|d| d.split(':').next().unwrap()).collect();
    // `N` as a key is a boolean to YAML 1.2's parser here, a string to PyYAML.
    assert_eq!(
        lines,
        [
            "line 1", "line 2", "line 3", "line 4", "line 5", "line 6", "line 7", "line 18"
        ],
        "{found:?}"
    );
    assert_eq!(yaml11_divergences(DEFAULT_CONFIG_TEXT), (vec![], vec![]));
    let (_, keys) = yaml11_divergences(
        "neuro_hybrid:
  module_overrides:
    1: true
    'two': true
    three: true
pelm:
  1: 2
",
    );
    assert_eq!(keys.len(), 1, "{keys:?}");
    assert!(keys[0].contains("key `1` (line 3)"), "{keys:?}");
    // Tags: PyYAML's safe_load has no constructor for a custom or Python one (MLSDM does not
    // start), builds its own value for a core one (undecided here), and reads `!` (the
    // non-specific tag) and `!!str` as the node untagged.
    for (text, undecided, refused) in [
        ("dimension: ! 384\n", 0, 0),
        ("a: !!str x\nb: !!map {c: 1}\n", 0, 0),
        ("a: !!int 0600\n", 1, 0),
        ("a: {note: !foo bar}\n", 0, 1),
        ("a: !!python/int 1\n", 0, 1),
        ("%TAG !e! tag:example.com,2000:\n---\na: !e!x 1\n", 0, 1),
    ] {
        let (divergent, bad) = yaml11_divergences(text);
        assert_eq!(
            (divergent.len(), bad.len()),
            (undecided, refused),
            "{text}: {divergent:?} {bad:?}"
        );
    }
    // Merge keys and aliases PyYAML reads in a way not modelled here: mappings merged from a
    // sequence that share a key (first or last wins, by PyYAML version), and
    // neuro_hybrid.module_overrides given through an alias or a merge key.
    for (text, says) in [
        (
            "a: &a {t: 1}\nb: &b {t: 2}\nmoral_filter: {<<: [*a, *b]}\n",
            Some("share t"),
        ),
        (
            "a: &a {t: 1}\nb: &b {u: 2}\nmoral_filter: {<<: [*a, *b]}\n",
            None,
        ),
        (
            "x: &m {'alpha': true}\nneuro_hybrid: {module_overrides: *m}\n",
            Some("through an alias"),
        ),
        (
            "x: &m {'alpha': true}\nneuro_hybrid:\n  module_overrides:\n    <<: *m\n",
            Some("through a merge key"),
        ),
        // Review findings: PyYAML breaks the line at U+2028 (a key hidden in a comment), and
        // lets a second merge key win over the first.
        (
            "strict_mode: true # strict\u{2028}capacity: 100000\n",
            Some("U+2028"),
        ),
        (
            "model:\n  <<: {dimension: 384}\n  <<: {dimension: 100}\n",
            Some("a second merge key"),
        ),
    ] {
        let (divergent, _) = yaml11_divergences(text);
        match says {
            Some(needle) => assert!(
                divergent.iter().any(|d| d.contains(needle)),
                "{text}: {divergent:?}"
            ),
            None => assert!(divergent.is_empty(), "{text}: {divergent:?}"),
        }
    }
}

#[test]
fn env_values_are_typed_as_mlsdm_types_them() {
    assert_eq!(parse_env_value("1"), json!(true));
    assert_eq!(parse_env_value("0"), json!(false));
    assert_eq!(parse_env_value("Yes"), json!(true));
    assert_eq!(parse_env_value("768"), json!(768));
    assert_eq!(parse_env_value(" 1_000 "), json!(1000));
    assert_eq!(parse_env_value("0.95"), json!(0.95));
    assert_eq!(parse_env_value("1e3"), json!(1000.0));
    assert_eq!(parse_env_value("nan"), json!("nan"));
    assert_eq!(parse_env_value("verbose"), json!("verbose"));
    assert_eq!(as_float(&json!("nan")).map(f64::is_nan), Some(true));
    let nan = validate_config(&json!({"moral_filter": {"threshold": "nan"}}));
    assert!(nan[0].starts_with("moral_filter.threshold"), "{nan:?}");
}
