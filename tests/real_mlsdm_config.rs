//! `mlsdm-config-valid` and `mlsdm-env-overrides-valid` against the real MLSDM 1.2.0's start-up:
//! for every config file / `MLSDM_*` combination in the catalog's fixtures (compliant,
//! compliant-modular, defective, each defect over the compliant release) and hand-written cases at
//! each bound of MLSDM's config rules, the audit's verdict (from the CLI) and whether the real
//! service comes up (GET /health answers 200) or exits must agree: fail <=> it refuses to start.
//!
//! Runs when `MLSDM_AUDIT_REAL_MLSDM` names the unpacked source tree and
//! `MLSDM_AUDIT_REAL_MLSDM_VENV` its venv (as tests/real_mlsdm.rs); otherwise it says it is
//! skipped and returns. At most three services run at once; each is SIGKILLed (it ignores SIGTERM).

mod support;

use mlsdm_audit::checks::Source;
use mlsdm_audit::sources::{Facts, Object, manifests, mlsdm};
use serde_json::Value;
use std::collections::{BTreeMap, BTreeSet};
use std::fmt::Write as _;
use std::io::{Read, Write};
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::sync::Mutex;
use std::time::{Duration, Instant};

const PARALLEL: usize = 3;

fn root() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
}

fn setup() -> Option<(PathBuf, PathBuf)> {
    let (Ok(src), Ok(venv)) = (
        std::env::var("MLSDM_AUDIT_REAL_MLSDM"),
        std::env::var("MLSDM_AUDIT_REAL_MLSDM_VENV"),
    ) else {
        let _ = writeln!(
            std::io::stderr(),
            "skipped: MLSDM_AUDIT_REAL_MLSDM not set (with MLSDM_AUDIT_REAL_MLSDM_VENV: scripts/test.sh sets both when ../shared/upstream/mlsdm-1.2.0-src.tar.gz exists)"
        );
        return None;
    };
    let (src, venv) = (PathBuf::from(src), PathBuf::from(venv));
    assert!(
        venv.join("bin/uvicorn").is_file(),
        "{} has no bin/uvicorn",
        venv.display()
    );
    Some((src, venv))
}

/// Later objects replace earlier ones with the same kind/namespace/name (as tests/catalog.rs).
fn overlay(layers: &[PathBuf]) -> Vec<Object> {
    let mut out: Vec<Object> = Vec::new();
    for layer in layers {
        let objects =
            manifests::load(std::slice::from_ref(layer)).unwrap_or_else(|e| panic!("{e}"));
        support::apply_layer(&mut out, objects);
    }
    out
}

/// What the service is started with: the config file's name and text, and the MLSDM_* variables.
#[derive(Clone, PartialEq, Eq, PartialOrd, Ord)]
struct Startup {
    file_name: String,
    text: String,
    env: Vec<(String, String)>,
}

struct Case {
    name: String,
    objects: Vec<Object>,
    workload: (String, Option<String>, String),
    startup: Startup,
}

/// One case per MLSDM workload that mounts its config from a ConfigMap.
fn cases_of(name: &str, objects: Vec<Object>) -> Vec<Case> {
    let facts = Facts::new(
        objects.clone(),
        BTreeSet::from([Source::Kubernetes]),
        None,
        name,
    );
    let mut out = Vec::new();
    for w in facts.mlsdm_workloads() {
        let eff = mlsdm::effective(w, &facts);
        let Some(cm) = eff["configSource"]["configMap"].as_str() else {
            continue; // CONFIG_PATH unset or not on a ConfigMap: nothing to start the service with
        };
        let k = eff["configSource"]["key"].as_str().unwrap();
        let Some(text) = facts
            .find("ConfigMap", w.namespace.as_deref(), cm)
            .and_then(|c| c.json["data"][k].as_str())
        else {
            continue;
        };
        let env = eff["env"]
            .as_object()
            .unwrap()
            .iter()
            .filter(|(n, _)| n.starts_with("MLSDM_"))
            .map(|(n, e)| {
                (
                    n.clone(),
                    e["value"]
                        .as_str()
                        .expect("a literal MLSDM_* value")
                        .to_string(),
                )
            })
            .collect();
        let path = eff["configPath"].as_str().unwrap();
        out.push(Case {
            name: name.to_string(),
            objects: objects.clone(),
            workload: support::key(w),
            startup: Startup {
                file_name: path.rsplit('/').next().unwrap().to_string(),
                text: text.to_string(),
                env,
            },
        });
    }
    out
}

fn base() -> Vec<PathBuf> {
    vec![
        root().join("fixtures/compliant"),
        root().join("fixtures/live/healthy.yaml"),
    ]
}

/// The compliant release with the config text and/or extra MLSDM_* variables replaced.
fn edge(name: &str, text: Option<&str>, env: &[(&str, &str)]) -> Vec<Case> {
    let mut objects = overlay(&base());
    if let Some(t) = text {
        let cm = objects
            .iter_mut()
            .find(|o| o.kind == "ConfigMap" && o.name == "mlsdm-config")
            .unwrap();
        cm.json["data"]["config.yaml"] = Value::String(t.to_string());
    }
    let d = objects
        .iter_mut()
        .find(|o| o.kind == "Deployment" && o.name == "mlsdm-api")
        .unwrap();
    let list = d.json["spec"]["template"]["spec"]["containers"][0]["env"]
        .as_array_mut()
        .unwrap();
    for (n, v) in env {
        list.push(serde_json::json!({"name": n, "value": v}));
    }
    cases_of(&format!("edge: {name}"), objects)
}

fn vectors(dim: usize) -> String {
    let row = |i: usize| {
        let v: Vec<&str> = (0..dim).map(|j| if j == i { "1" } else { "0" }).collect();
        format!("[{}]", v.join(", "))
    };
    format!(
        "ontology_matcher:\n  ontology_vectors:\n    - {}\n    - {}\n",
        row(0),
        row(1)
    )
}

fn corpus() -> Vec<Case> {
    let mut cases = Vec::new();
    cases.extend(cases_of("fixtures/compliant", overlay(&base())));
    for set in ["compliant-modular", "defective"] {
        cases.extend(cases_of(
            &format!("fixtures/{set}"),
            overlay(&[root().join("fixtures").join(set)]),
        ));
    }
    let mut defects: Vec<PathBuf> = std::fs::read_dir(root().join("fixtures/defects"))
        .unwrap()
        .map(|e| e.unwrap().path())
        .collect();
    defects.sort();
    for d in defects {
        let mut layers = base();
        layers.push(d.clone());
        cases.extend(cases_of(
            &format!(
                "fixtures/defects/{}",
                d.file_name().unwrap().to_string_lossy()
            ),
            overlay(&layers),
        ));
    }
    let prod = "dimension: 384\nstrict_mode: true\npelm:\n  capacity: 20000\n";
    let with = |extra: &str| format!("{prod}{extra}");
    let texts: Vec<(&str, String)> = vec![
        (
            "dimension 768, built-in 384 ontology",
            "dimension: 768\n".into(),
        ),
        (
            "dimension 768 with 768-long ontology",
            format!("dimension: 768\n{}", vectors(768)),
        ),
        ("dimension 2 (min)", format!("dimension: 2\n{}", vectors(2))),
        (
            "dimension 4096 (max)",
            format!("dimension: 4096\n{}", vectors(4096)),
        ),
        (
            "dimension 4097",
            format!("dimension: 4097\n{}", vectors(4097)),
        ),
        (
            "threshold 0.9 (max)",
            with("moral_filter:\n  threshold: 0.9\n"),
        ),
        ("threshold 0.91", with("moral_filter:\n  threshold: 0.91\n")),
        (
            "threshold 0.1 = min_threshold 0.1",
            with("moral_filter:\n  threshold: 0.1\n  min_threshold: 0.1\n"),
        ),
        (
            "threshold below min_threshold",
            with("moral_filter:\n  threshold: 0.25\n"),
        ),
        (
            "min_threshold = max_threshold",
            with("moral_filter:\n  min_threshold: 0.5\n  max_threshold: 0.5\n"),
        ),
        (
            "adapt_rate 0.5 (max)",
            with("moral_filter:\n  adapt_rate: 0.5\n"),
        ),
        (
            "adapt_rate 0.51",
            with("moral_filter:\n  adapt_rate: 0.51\n"),
        ),
        ("capacity 100 (min)", "pelm:\n  capacity: 100\n".into()),
        ("capacity 99", "pelm:\n  capacity: 99\n".into()),
        (
            "capacity 1000000 (max)",
            "pelm:\n  capacity: 1000000\n".into(),
        ),
        ("capacity 1000001", "pelm:\n  capacity: 1000001\n".into()),
        ("pelm section null", "pelm:\n".into()),
        (
            "lambda_l3 0 (schema allows, start-up refuses)",
            with("multi_level_memory:\n  lambda_l3: 0\n"),
        ),
        (
            "lambdas all 1",
            with("multi_level_memory:\n  lambda_l1: 1\n  lambda_l2: 1\n  lambda_l3: 1\n"),
        ),
        (
            "lambda_l2 above lambda_l1",
            with("multi_level_memory:\n  lambda_l2: 0.6\n"),
        ),
        (
            "theta_l2 = theta_l1",
            with("multi_level_memory:\n  theta_l1: 2.0\n"),
        ),
        (
            "wake_duration 100 (max)",
            with("cognitive_rhythm:\n  wake_duration: 100\n"),
        ),
        (
            "wake_duration 101",
            with("cognitive_rhythm:\n  wake_duration: 101\n"),
        ),
        (
            "sleep_duration 0",
            with("cognitive_rhythm:\n  sleep_duration: 0\n"),
        ),
        (
            "neurolang lazy_train",
            with("neurolang:\n  mode: lazy_train\n"),
        ),
        ("neurolang lazy", with("neurolang:\n  mode: lazy\n")),
        ("drift_logging verbose", with("drift_logging: verbose\n")),
        ("drift_logging quiet", with("drift_logging: quiet\n")),
        (
            "default_priority HIGH",
            with("api:\n  priority:\n    default_priority: HIGH\n"),
        ),
        (
            "request_timeout 0.05",
            with("api:\n  request_timeout_seconds: 0.05\n"),
        ),
        (
            "labels fewer than vectors",
            with("ontology_matcher:\n  ontology_labels: [a]\n"),
        ),
        (
            "unknown sub-key ignored",
            "pelm:\n  capacity: 20000\n  shards: 4\n".into(),
        ),
        (
            "duplicate key: the last wins",
            "pelm:\n  capacity: 5\npelm:\n  capacity: 20000\n".into(),
        ),
        (
            "duplicate key: the last (bad) wins",
            "pelm:\n  capacity: 20000\npelm:\n  capacity: 5\n".into(),
        ),
        (
            "quoted numbers",
            "dimension: '384'\npelm:\n  capacity: \"20000\"\n".into(),
        ),
        (
            "strict_mode 'yes' quoted",
            with("aphasia:\n  detect_enabled: 'yes'\n"),
        ),
        ("empty file", String::new()),
        (
            "module_overrides key 1 (an int to PyYAML)",
            with("neuro_hybrid:\n  module_overrides:\n    1: true\n"),
        ),
        (
            "module_overrides key '1' (quoted)",
            with("neuro_hybrid:\n  module_overrides:\n    '1': true\n"),
        ),
        // YAML 1.1 (PyYAML) and 1.2 read these differently: the audit says it cannot decide.
        (
            "undecidable: wake_duration y (a string to PyYAML)",
            with("cognitive_rhythm:\n  wake_duration: y\n"),
        ),
        (
            "undecidable: theta_l2 .inf",
            with("multi_level_memory:\n  theta_l2: .inf\n"),
        ),
    ];
    for (name, text) in &texts {
        cases.extend(edge(name, Some(text), &[]));
    }
    let envs: Vec<(&str, Vec<(&str, &str)>)> = vec![
        (
            "MLSDM_MORAL_FILTER__THRESHOLD=0.95",
            vec![("MLSDM_MORAL_FILTER__THRESHOLD", "0.95")],
        ),
        (
            "MLSDM_MORAL_FILTER__THRESHOLD=0.9",
            vec![("MLSDM_MORAL_FILTER__THRESHOLD", "0.9")],
        ),
        ("MLSDM_DIMENSION=768", vec![("MLSDM_DIMENSION", "768")]),
        (
            "MLSDM_PELM__CAPACITY=1 (a boolean: 1)",
            vec![("MLSDM_PELM__CAPACITY", "1")],
        ),
        (
            "MLSDM_PELM__CAPACITY=1_000",
            vec![("MLSDM_PELM__CAPACITY", "1_000")],
        ),
        (
            "MLSDM_COGNITIVE_RHYTHM__SLEEP_DURATION=1 (true: 1)",
            vec![("MLSDM_COGNITIVE_RHYTHM__SLEEP_DURATION", "1")],
        ),
        (
            "MLSDM_MORAL_FILTER__ADAPT_RATE=0 (false: 0.0)",
            vec![("MLSDM_MORAL_FILTER__ADAPT_RATE", "0")],
        ),
        (
            "MLSDM_DIMENSION__X=5 (under a scalar)",
            vec![("MLSDM_DIMENSION__X", "5")],
        ),
        ("MLSDM_STRICT_MODE=yes", vec![("MLSDM_STRICT_MODE", "yes")]),
        (
            "MLSDM_DRIFT_LOGGING=silent",
            vec![("MLSDM_DRIFT_LOGGING", "silent")],
        ),
        ("MLSDM_DRIFT_LOGGING=1", vec![("MLSDM_DRIFT_LOGGING", "1")]),
        (
            "MLSDM_API__PRIORITY__HIGH_WEIGHT=10",
            vec![("MLSDM_API__PRIORITY__HIGH_WEIGHT", "10")],
        ),
        (
            "MLSDM_API__PRIORITY__HIGH_WEIGHT=11",
            vec![("MLSDM_API__PRIORITY__HIGH_WEIGHT", "11")],
        ),
        (
            "MLSDM_NEUROLANG__MODE=disabled",
            vec![("MLSDM_NEUROLANG__MODE", "disabled")],
        ),
        (
            "MLSDM_PELM__PHASE_TOLERANCE=inf",
            vec![("MLSDM_PELM__PHASE_TOLERANCE", "inf")],
        ),
    ];
    for (name, env) in &envs {
        cases.extend(edge(name, None, env));
    }
    cases
}

/// The audit's verdict for the case's workload: "fail" when either check fails, "pass" when
/// both pass, else the statuses.
fn audit(case: &Case, dir: &Path) -> String {
    // One JSON document per file: the manifest loader reads a file that opens with `{` as JSON.
    let file = dir.join("manifests");
    let _ = std::fs::remove_dir_all(&file);
    std::fs::create_dir_all(&file).unwrap();
    for (i, o) in case.objects.iter().enumerate() {
        std::fs::write(
            file.join(format!("{i:03}.yaml")),
            serde_json::to_string(&o.json).unwrap(),
        )
        .unwrap();
    }
    let out = support::cmd()
        .args(["check", "--manifests"])
        .arg(&file)
        .args([
            "--only",
            "mlsdm-config-valid,mlsdm-env-overrides-valid",
            "--format",
            "json",
        ])
        .run();
    let report: Value = serde_json::from_slice(&out.stdout).unwrap_or_else(|e| {
        panic!(
            "{}: {e}: {}",
            case.name,
            String::from_utf8_lossy(&out.stderr)
        )
    });
    let (kind, ns, name) = &case.workload;
    let statuses: Vec<String> = report["results"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|r| {
            r["object"]["kind"] == kind.as_str()
                && r["object"]["name"] == name.as_str()
                && r["object"]["namespace"].as_str() == ns.as_deref()
        })
        .map(|r| {
            format!(
                "{}={}: {}",
                r["id"].as_str().unwrap(),
                r["status"].as_str().unwrap(),
                r["message"].as_str().unwrap()
            )
        })
        .collect();
    assert_eq!(statuses.len(), 2, "{}: {statuses:?}", case.name);
    if statuses.iter().any(|s| s.contains("=fail:")) {
        format!(
            "fail ({})",
            statuses
                .iter()
                .filter(|s| s.contains("=fail:"))
                .cloned()
                .collect::<Vec<_>>()
                .join("; ")
        )
    } else if statuses.iter().all(|s| s.contains("=pass:")) {
        "pass".into()
    } else {
        format!("undecided ({})", statuses.join("; "))
    }
}

fn health(port: u16) -> bool {
    let Ok(mut s) = std::net::TcpStream::connect_timeout(
        &([127, 0, 0, 1], port).into(),
        Duration::from_secs(1),
    ) else {
        return false;
    };
    let _ = s.set_read_timeout(Some(Duration::from_secs(3)));
    if s.write_all(b"GET /health HTTP/1.1\r\nHost: 127.0.0.1\r\nConnection: close\r\n\r\n")
        .is_err()
    {
        return false;
    }
    let mut buf = Vec::new();
    let _ = s.read_to_end(&mut buf);
    buf.starts_with(b"HTTP/1.1 200")
}

/// Starts the real service with the case's config file and MLSDM_* variables: `Ok(())` when
/// /health answers 200, `Err(last log lines)` when it exits first. Panics past the deadline.
fn start(src: &Path, venv: &Path, s: &Startup, dir: &Path) -> Result<(), String> {
    let config = dir.join(&s.file_name);
    std::fs::write(&config, &s.text).unwrap();
    let port = std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port();
    let log = dir.join("service.log");
    let out = std::fs::File::create(&log).unwrap();
    let mut child = Command::new(venv.join("bin/uvicorn"))
        .args([
            "mlsdm.api.app:app",
            "--host",
            "127.0.0.1",
            "--port",
            &port.to_string(),
        ])
        .current_dir(src)
        .env_clear()
        .env("PATH", std::env::var("PATH").unwrap_or_default())
        .env("HOME", dir)
        .env("CONFIG_PATH", &config)
        .env("LLM_BACKEND", "local_stub")
        .env("API_KEY", "real-mlsdm-config-test-key-0123456789")
        .envs(s.env.iter().map(|(k, v)| (k.as_str(), v.as_str())))
        .stdin(Stdio::null())
        .stdout(out.try_clone().unwrap())
        .stderr(out)
        .spawn()
        .unwrap();
    let deadline = Instant::now() + Duration::from_mins(2);
    let outcome = loop {
        if child.try_wait().unwrap().is_some() {
            let text = std::fs::read_to_string(&log).unwrap_or_default();
            let tail: Vec<&str> = text
                .lines()
                .filter(|l| l.contains("Error") || l.contains("error"))
                .collect();
            break Err(tail
                .iter()
                .rev()
                .take(2)
                .rev()
                .copied()
                .collect::<Vec<_>>()
                .join(" | "));
        }
        if health(port) {
            break Ok(());
        }
        if Instant::now() > deadline {
            let _ = child.kill();
            let _ = child.wait();
            panic!("neither up nor exited after 120 s: {}", config.display());
        }
        std::thread::sleep(Duration::from_millis(200));
    };
    let _ = child.kill(); // SIGKILL
    let _ = child.wait();
    outcome
}

#[test]
fn audit_verdicts_agree_with_the_real_service_start_up() {
    let Some((src, venv)) = setup() else { return };
    let cases = corpus();
    // One run per distinct start-up (most defects leave the config alone).
    let mut unique: BTreeMap<Startup, Vec<usize>> = BTreeMap::new();
    for (i, c) in cases.iter().enumerate() {
        unique.entry(c.startup.clone()).or_default().push(i);
    }
    let work: Mutex<Vec<(Startup, Vec<usize>)>> = Mutex::new(unique.into_iter().collect());
    let rows: Mutex<Vec<(String, String, String, bool)>> = Mutex::new(Vec::new());
    let tmp = std::env::temp_dir().join(format!("mlsdm-audit-real-config-{}", std::process::id()));
    std::thread::scope(|scope| {
        for worker in 0..PARALLEL {
            let (work, rows, cases, src, venv, tmp) = (&work, &rows, &cases, &src, &venv, &tmp);
            scope.spawn(move || {
                let dir = tmp.join(worker.to_string());
                std::fs::create_dir_all(&dir).unwrap();
                loop {
                    let Some((startup, idx)) = work.lock().unwrap().pop() else {
                        break;
                    };
                    let service = start(src, venv, &startup, &dir);
                    let refused = service.is_err();
                    for i in idx {
                        let verdict = audit(&cases[i], &dir);
                        let agree = if cases[i].name.contains("undecidable") {
                            verdict.starts_with("undecided") && verdict.contains("error")
                        } else if refused {
                            verdict.starts_with("fail")
                        } else {
                            verdict == "pass"
                        };
                        let svc = match &service {
                            Ok(()) => "up".to_string(),
                            Err(e) => format!("refused: {e}"),
                        };
                        rows.lock()
                            .unwrap()
                            .push((cases[i].name.clone(), verdict, svc, agree));
                    }
                }
            });
        }
    });
    let _ = std::fs::remove_dir_all(&tmp);
    let mut rows = rows.into_inner().unwrap();
    rows.sort();
    let mut table = String::new();
    for (name, verdict, svc, agree) in &rows {
        let _ = writeln!(
            table,
            "{} {name}\n    audit: {verdict}\n    service: {svc}",
            if *agree { "ok  " } else { "DIFF" }
        );
    }
    let _ = writeln!(std::io::stderr(), "{table}");
    let up = rows.iter().filter(|r| r.2 == "up").count();
    assert!(
        up > 10 && rows.len() - up > 10,
        "the corpus has both outcomes: {up} up of {}",
        rows.len()
    );
    assert!(
        rows.iter().all(|r| r.3),
        "audit and service disagree:\n{table}"
    );
}
