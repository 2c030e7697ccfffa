//! Golden tests of the whole CLI: stdout, stderr and exit code, as a user sees them.

mod support;

use std::path::PathBuf;
use std::process::{Command, Output, Stdio};

fn root() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
}

/// The golden runs: a fixed clock, so reports and snapshots do not change with the day.
fn golden() -> support::Cmd {
    support::cmd().env("SOURCE_DATE_EPOCH", "1798761600")
}

fn run_with_stdin(args: &[&str], stdin: Option<&str>) -> Output {
    let cmd = golden().args(args);
    match stdin {
        Some(input) => cmd.stdin(input),
        None => cmd,
    }
    .run()
}

fn run(args: &[&str]) -> Output {
    run_with_stdin(args, None)
}

/// stdout, stderr and the exit code in one snapshot.
fn transcript(out: &Output) -> String {
    format!(
        "exit: {}\n--- stdout\n{}--- stderr\n{}",
        out.status.code().unwrap_or(-1),
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    )
}

/// Asserts the run exited `code` and said `needle` on stderr.
fn assert_exit_says(out: &Output, code: i32, needle: &str) {
    assert_eq!(out.status.code(), Some(code), "{}", transcript(out));
    assert!(
        String::from_utf8_lossy(&out.stderr).contains(needle),
        "{}",
        transcript(out)
    );
}

fn json(out: &Output) -> serde_json::Value {
    serde_json::from_slice(&out.stdout).unwrap_or_else(|e| panic!("{e}: {}", transcript(out)))
}

fn statuses(report: &serde_json::Value, id: &str) -> Vec<String> {
    report["results"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|r| r["id"] == id)
        .map(|r| r["status"].as_str().unwrap().to_string())
        .collect()
}

#[test]
fn help() {
    insta::assert_snapshot!(transcript(&run(&["--help"])));
    insta::assert_snapshot!(transcript(&run(&["check", "--help"])));
}

#[test]
fn check_compliant_table_passes() {
    let out = run(&["check", "--manifests", "fixtures/compliant"]);
    assert_eq!(out.status.code(), Some(0), "{}", transcript(&out));
    insta::assert_snapshot!(transcript(&out));
}

#[test]
fn check_defective_fails_with_exit_1() {
    let out = run(&[
        "check",
        "--manifests",
        "fixtures/defective",
        "--only",
        "mlsdm-config-valid,mlsdm-env-overrides-valid,api-key-from-secret,image-pinned,pdb-min-available,probe-liveness-path",
    ]);
    assert_eq!(out.status.code(), Some(1));
    insta::assert_snapshot!(transcript(&out));
}

#[test]
fn check_json_is_the_report_model() {
    let out = run(&[
        "check",
        "--manifests",
        "fixtures/defective",
        "--format",
        "json",
        "--only",
        "resources-memory-request-min,health-ready",
    ]);
    assert_eq!(out.status.code(), Some(1));
    // The catalog's digest changes with every check file: not part of the model's shape.
    let text = String::from_utf8_lossy(&out.stdout);
    let digest = json(&out)["target"]["catalog"]
        .as_str()
        .expect("the report names its catalog")
        .to_string();
    insta::assert_snapshot!(text.replace(&digest, "[catalog digest]"));
    let report = json(&out);
    for key in [
        "schemaVersion",
        "tool",
        "generatedAt",
        "target",
        "summary",
        "results",
    ] {
        assert!(report.get(key).is_some(), "missing {key}");
    }
    assert_eq!(report["generatedAt"], "2027-01-01T00:00:00Z");
}

#[test]
fn fail_on_sets_the_gate() {
    // image-digest-pinned is low severity: it fails, but only gates with --fail-on low.
    let args = [
        "check",
        "--manifests",
        "fixtures/compliant-modular",
        "--manifests",
        "tests/data/floating-tag.yaml",
        "--only",
        "image-digest-pinned",
    ];
    let out = run(&args);
    assert_eq!(out.status.code(), Some(0), "{}", transcript(&out));
    let mut low = args.to_vec();
    low.extend(["--fail-on", "low"]);
    assert_eq!(run(&low).status.code(), Some(1));
}

#[test]
fn stdin_manifests() {
    let text = std::fs::read_to_string(root().join("fixtures/defective/all.yaml")).unwrap();
    let out = run_with_stdin(
        &[
            "check",
            "--manifests",
            "-",
            "--format",
            "json",
            "--only",
            "image-pinned",
        ],
        Some(&text),
    );
    assert_eq!(out.status.code(), Some(1));
    let report = json(&out);
    assert_eq!(report["results"][0]["location"]["file"], "<stdin>");
    assert_eq!(statuses(&report, "image-pinned"), ["fail"]);
}

#[test]
fn output_file() {
    let dir = std::env::temp_dir().join(format!("mlsdm-audit-out-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let file = dir.join("report.json");
    let out = run(&[
        "check",
        "--manifests",
        "fixtures/compliant",
        "--format",
        "json",
        "--output-file",
        file.to_str().unwrap(),
    ]);
    assert_eq!(out.status.code(), Some(0));
    assert!(out.stdout.is_empty());
    let report: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(&file).unwrap()).unwrap();
    assert!(report["summary"]["pass"].as_u64().unwrap() > 50);
    std::fs::remove_dir_all(dir).unwrap();
}

/// A report that could not be written (a full disk) was not delivered: exit 2, whatever the
/// verdict, never the 0 of a compliant run (it was 0 while the JSON, SARIF or JUnit file a CI
/// job reads stayed empty). A closed pipe stays the reader's choice: the verdict's code.
#[test]
fn a_report_stdout_cannot_take_is_exit_2() {
    let Ok(full) = std::fs::OpenOptions::new().write(true).open("/dev/full") else {
        // Straight to stderr, past the test harness' capture, so the skip is seen.
        let _ = std::io::Write::write_all(
            &mut std::io::stderr(),
            b"skipped: no /dev/full on this system\n",
        );
        return;
    };
    for format in ["json", "sarif", "junit", "table"] {
        let out = golden()
            .args(["check", "-f", "fixtures/compliant", "-o", format])
            .stdout_to(full.try_clone().unwrap())
            .run();
        assert_exit_says(&out, 2, "cannot write to standard output");
    }
    let out = golden()
        .arg("list-checks")
        .stdout_to(full.try_clone().unwrap())
        .run();
    assert_exit_says(&out, 2, "cannot write to standard output");
    // A failing gate keeps its code (watch's 4 is what a pipeline rolls back on).
    let out = golden()
        .args(["check", "-f", "fixtures/defective"])
        .stdout_to(full.try_clone().unwrap())
        .run();
    assert_exit_says(&out, 1, "cannot write to standard output");
}

/// The compliant fixture audited with one check of tests/data/checks-runtime-error, as JSON.
fn run_broken_check(id: &str) -> Output {
    run(&[
        "check",
        "--manifests",
        "fixtures/compliant",
        "--checks",
        "tests/data/checks-runtime-error",
        "--only",
        id,
        "--format",
        "json",
    ])
}

#[test]
fn evaluation_error_is_exit_3_never_pass() {
    let out = run_broken_check("replicas-field-typo");
    assert_eq!(out.status.code(), Some(3), "{}", transcript(&out));
    let report = json(&out);
    assert_eq!(statuses(&report, "replicas-field-typo"), ["error"]);
    assert!(
        report["results"][0]["message"]
            .as_str()
            .unwrap()
            .contains("tests/data/checks-runtime-error/replicas-field-typo.yaml:9")
    );
}

/// A failure whose messageExpression cannot be evaluated showed the check's title ("Every MLSDM
/// Deployment runs thirty replicas") as its message: a pass's words on a failure.
#[test]
fn a_failure_whose_message_breaks_never_reads_as_its_title() {
    let out = run_broken_check("message-expression-typo");
    assert_eq!(out.status.code(), Some(1), "{}", transcript(&out));
    let report = json(&out);
    let message = report["results"][0]["message"].as_str().unwrap();
    assert_eq!(report["results"][0]["status"], "fail");
    assert!(
        message.starts_with("failed: object.spec.replicas >= 30 (messageExpression failed at")
            && !message.contains("thirty"),
        "{message}"
    );
}

#[test]
fn extra_checks_directory_adds_checks() {
    let out = run(&[
        "check",
        "--manifests",
        "fixtures/compliant",
        "--checks",
        "tests/data/checks-runtime-error",
        "--only",
        "memory-request-min-1gi",
    ]);
    assert_eq!(out.status.code(), Some(1));
    assert!(String::from_utf8_lossy(&out.stdout).contains("memory-request-min-1gi"));
    // Review finding: a checks directory that gives no check (empty, or its files one folder
    // down) loaded nothing, and the gate passed without the team's checks.
    let dir = temp_dir("no-checks-here");
    std::fs::create_dir_all(dir.join("conventions")).unwrap();
    std::fs::copy(
        "tests/data/checks-runtime-error/memory-request-min-1gi.yaml",
        dir.join("conventions/memory-request-min-1gi.yaml"),
    )
    .unwrap();
    let out = run(&[
        "check",
        "--manifests",
        "fixtures/compliant",
        "--checks",
        dir.to_str().unwrap(),
    ]);
    assert_exit_says(&out, 2, "no check file (*.yaml, *.yml) in this directory");
    let _ = std::fs::remove_dir_all(&dir);
}

#[test]
fn errors_point_at_the_problem() {
    insta::assert_snapshot!(
        "typo_in_check_file",
        transcript(&run(&[
            "check",
            "--manifests",
            "fixtures/compliant",
            "--checks",
            "tests/data/checks-typo"
        ]))
    );
    insta::assert_snapshot!(
        "bad_cel",
        transcript(&run(&["validate-checks", "tests/data/checks-bad-cel"]))
    );
    insta::assert_snapshot!(
        "bad_manifest",
        transcript(&run(&[
            "check",
            "--manifests",
            "tests/data/bad-manifest.yaml"
        ]))
    );
    insta::assert_snapshot!(
        "missing_manifest",
        transcript(&run(&["check", "--manifests", "no/such/dir"]))
    );
    insta::assert_snapshot!(
        "unknown_only_id",
        transcript(&run(&[
            "check",
            "--manifests",
            "fixtures/compliant",
            "--only",
            "no-such-check"
        ]))
    );
    insta::assert_snapshot!(
        "bad_flag",
        transcript(&run(&[
            "check",
            "--manifests",
            "fixtures/compliant",
            "--fail-on",
            "urgent"
        ]))
    );
    insta::assert_snapshot!(
        "bad_selector",
        transcript(&run(&[
            "check",
            "--manifests",
            "fixtures/compliant",
            "--selector",
            "app in mlsdm"
        ]))
    );
}

#[test]
fn validate_checks() {
    let ok = run(&["validate-checks", "checks"]);
    assert_eq!(ok.status.code(), Some(0), "{}", transcript(&ok));
    assert!(String::from_utf8_lossy(&ok.stdout).ends_with("check file(s) valid\n"));
    let typo = run(&[
        "validate-checks",
        "tests/data/checks-typo/memory-floor.yaml",
    ]);
    assert_eq!(typo.status.code(), Some(2));
    insta::assert_snapshot!(transcript(&typo));
}

#[test]
fn list_checks_and_explain() {
    let out = run(&["list-checks", "--format", "json"]);
    assert_eq!(out.status.code(), Some(0));
    let list = json(&out);
    let list = list.as_array().unwrap();
    assert!(list.len() > 150);
    let entry = list
        .iter()
        .find(|c| c["id"] == "resources-memory-request-min")
        .unwrap();
    insta::assert_json_snapshot!(entry);
    let tracing = list
        .iter()
        .find(|c| c["id"] == "tracing-configured")
        .unwrap();
    assert_eq!(tracing["requires"], "tracing");
    let routing = list
        .iter()
        .find(|c| c["id"] == "alert-routing-configured")
        .unwrap();
    assert!(
        routing["externalEvidence"]["elsewhere"]
            .as_str()
            .is_some_and(|e| e.contains("central Alertmanager"))
    );
    assert_eq!(
        routing["externalEvidence"]["inCluster"][0]["kind"],
        "AlertmanagerConfig"
    );
    let explained = run(&["explain", "tracing-configured"]);
    assert!(
        String::from_utf8_lossy(&explained.stdout).contains(
            "optional: runs only when `tracing` is declared (requirements in .mlsdm-audit.yaml, or --require tracing)"
        ),
        "{}",
        transcript(&explained)
    );
    insta::assert_snapshot!(transcript(&run(&[
        "explain",
        "resources-memory-request-min"
    ])));
    let unknown = run(&["explain", "no-such-check"]);
    assert_eq!(unknown.status.code(), Some(2));
    // A misspelt id, or a word of one, gets the close ids (explain, --only and --skip alike).
    for (args, want) in [
        (
            &["explain", "rollbak-p95-latency"][..],
            "did you mean rollback-p95-latency?",
        ),
        (
            &["explain", "p95"][..],
            "did you mean p95-latency-below-100ms, rollback-p95-latency?",
        ),
        (
            &["check", "-f", "fixtures/compliant", "--skip", "image-pined"][..],
            "did you mean image-pinned?",
        ),
    ] {
        let out = run(args);
        assert_eq!(out.status.code(), Some(2), "{}", transcript(&out));
        assert!(
            String::from_utf8_lossy(&out.stderr).contains(want),
            "{}",
            transcript(&out)
        );
    }
    // The logic a check runs is shown, not only its prose.
    let metrics =
        String::from_utf8_lossy(&run(&["explain", "rollback-p95-latency"]).stdout).into_owned();
    assert!(
        metrics.contains("query:     histogram_quantile(0.95"),
        "{metrics}"
    );
    assert!(metrics.contains("passes when: value <= 0.5"), "{metrics}");
}

#[test]
fn selector_limits_the_workloads() {
    let out = run(&[
        "check",
        "--manifests",
        "fixtures/compliant",
        "--selector",
        "app=neuro-engine",
        "--only",
        "replicas-min-3",
        "--format",
        "json",
    ]);
    // No workload matches: nothing was audited, which is not a pass (nothing_audited_is_not_a_pass).
    assert_eq!(out.status.code(), Some(3), "{}", transcript(&out));
    let out = run(&[
        "check",
        "--manifests",
        "fixtures/compliant",
        "-l",
        "app=mlsdm-api",
        "--only",
        "replicas-min-3",
        "--format",
        "json",
    ]);
    assert_eq!(statuses(&json(&out), "replicas-min-3"), ["pass"]);
    // A selector the API server would refuse is bad input (exit 2), not a scope that matches
    // nothing: before, `app=mlsdm api` was read as the value "mlsdm api" and exited 3.
    let out = run(&["check", "-f", "fixtures/compliant", "-l", "app=mlsdm api"]);
    assert_eq!(out.status.code(), Some(2), "{}", transcript(&out));
    assert!(
        String::from_utf8_lossy(&out.stderr)
            .contains("--selector: in selector \"app=mlsdm api\": found 'api'"),
        "{}",
        transcript(&out)
    );
}

#[test]
fn secret_values_never_reach_any_output() {
    // The defective set has a literal API key; the compliant set a real-looking Secret.
    for set in [
        "fixtures/defective",
        "fixtures/compliant",
        "fixtures/defects/configmap-no-credentials.yaml",
    ] {
        for format in ["table", "json"] {
            let out = run(&["check", "--manifests", set, "--format", format]);
            let text = transcript(&out);
            for secret in [
                "sk-fixture-literal-key-0123456789abcdef",
                "kY7qZ9mRtN2xWpL4vB8cH1dF6gJ3sY0eQ5uA7iO2nX",
                "a1k3cVo5bVJ0TjJ4",
                "sk-proj-Fixture0123456789abcdefXYZ",
            ] {
                assert!(!text.contains(secret), "{set} {format} leaks a secret");
            }
        }
    }
}

/// Review finding: credentials in a `--prometheus` or `--endpoint` URL were masked only in the
/// url crate's re-encoded form, while the URL is printed as typed (a password with `=` or `@`
/// leaked in every format); a token as the user name or in the query was not masked at all; a
/// URL the parser refused was echoed whole in the error.
#[test]
fn credentials_in_a_url_never_reach_any_output() {
    let cases = [
        ("https://audit:Zm9vYmFy-pw==@127.0.0.1:9", "Zm9vYmFy-pw=="),
        ("https://admin:p@ss-w0rd@127.0.0.1:9", "p@ss-w0rd"),
        ("https://admin:p%40ss-w1rd@127.0.0.1:9", "p@ss-w1rd"),
        ("https://tok3n-as-user-123@127.0.0.1:9", "tok3n-as-user-123"),
        (
            "https://127.0.0.1:9/?format=x&access_token=qv-s3cret-77",
            "qv-s3cret-77",
        ),
        ("https://admin:s3cr3t-port@127.0.0.1:99999", "s3cr3t-port"),
        ("https://admin:Zx9/kQ+w-slash@127.0.0.1:9", "Zx9/kQ+w-slash"),
        ("https://admin:123/x-digits@127.0.0.1:9", "123/x-digits"),
        ("admin:s3cr3t-noscheme@127.0.0.1:9090", "s3cr3t-noscheme"),
        // A raw `#` or `?` in the password: the parser reads a fragment or a query there, and
        // the URL, refused, was echoed whole.
        ("https://mlsdm:Pr0m#Pass2024@127.0.0.1:9", "Pr0m#Pass2024"),
        ("https://ops:Mlsdm?2024x@127.0.0.1:9", "Mlsdm?2024x"),
    ];
    for (url, secret) in cases {
        for flag in ["--prometheus", "--endpoint"] {
            for format in ["table", "json", "markdown", "junit", "sarif", "html"] {
                let out = run(&[
                    "check",
                    "--manifests",
                    "fixtures/compliant",
                    flag,
                    url,
                    "--only",
                    "no-alerts-firing,health-live",
                    "--timeout",
                    "20s",
                    "--format",
                    format,
                    "-v",
                ]);
                let text = transcript(&out);
                let encoded = secret.replace('@', "%40").replace('=', "%3D");
                assert!(
                    !text.contains(secret) && !text.contains(&encoded),
                    "{flag} {url} {format} leaks {secret}:\n{text}"
                );
            }
        }
    }
}

/// Review finding: `--api-key-env "$MLSDM_API_KEY"` (the key where its variable's name belongs)
/// echoed the key in the error, which CI logs keep.
#[test]
fn a_key_given_for_its_variable_name_is_not_echoed() {
    let with_key_env = |var: &str| {
        run(&[
            "check",
            "--manifests",
            "fixtures/compliant",
            "--endpoint",
            "http://127.0.0.1:9",
            "--api-key-env",
            var,
        ])
    };
    for key in [
        "sk-proj-Ab12Cd34Ef56Gh78Ij90Kl12",
        // `openssl rand -hex 32`, lower and upper case (review 28c).
        "ae6cce48d11e7504e1385501b3bebbe2a1dbc228156b453fe42ab721d50e46a9",
        "AE6CCE48D11E7504E1385501B3BEBBE2A1DBC228156B453FE42AB721D50E46A9",
        // A base32 secret (review 28d).
        "JBSWY3DPEHPK3PXPJBSW",
    ] {
        let out = with_key_env(key);
        let text = transcript(&out);
        assert_eq!(out.status.code(), Some(2), "{text}");
        assert!(!text.contains(&key[8..20]), "{text}");
    }
    let out = with_key_env("sk-proj-Ab12Cd34Ef56Gh78Ij90Kl12");
    let text = transcript(&out);
    assert!(
        text.contains("not an environment variable's name"),
        "{text}"
    );
    // A variable's name is still named, in either case.
    assert_exit_says(
        &with_key_env("mlsdm_audit_test_unset_key"),
        2,
        "--api-key-env mlsdm_audit_test_unset_key: that environment variable is not set",
    );
    assert_exit_says(
        &with_key_env("MLSDM_AUDIT_TEST_UNSET_KEY"),
        2,
        "--api-key-env MLSDM_AUDIT_TEST_UNSET_KEY: that environment variable is not set",
    );
}

#[test]
fn schema_is_current() {
    let out = run(&["schema"]);
    let committed = std::fs::read_to_string(root().join("schema/check.schema.json")).unwrap();
    assert_eq!(
        String::from_utf8_lossy(&out.stdout),
        committed,
        "schema/check.schema.json is stale: run `mlsdm-audit schema > schema/check.schema.json`"
    );
}

#[test]
fn docs_are_current() {
    let out = run(&["list-checks", "--format", "markdown"]);
    let committed = std::fs::read_to_string(root().join("docs/checks.md")).unwrap();
    assert_eq!(
        String::from_utf8_lossy(&out.stdout),
        committed,
        "docs/checks.md is stale: run `mlsdm-audit list-checks --format markdown > docs/checks.md`"
    );
}

#[test]
fn promql_syntax_errors_point_at_the_query() {
    let out = run(&["validate-checks", "tests/data/checks-bad-promql"]);
    assert_eq!(out.status.code(), Some(2));
    assert_eq!(
        String::from_utf8_lossy(&out.stderr),
        "error: tests/data/checks-bad-promql/bad-query.yaml:6:8: invalid PromQL: unclosed left parenthesis\n"
    );
}

/// A `--checks` file's query of 50,000 `up + up` aborted `check` with a stack overflow (exit 134)
/// when the run walked its tree: a query too deep or too long is a check-file error (exit 2)
/// naming the file, before anything is sent.
#[test]
fn a_query_too_deep_is_a_check_file_error_not_a_crash() {
    let dir = temp_dir("deep-query");
    let check = |query: &str| {
        format!(
            "id: deep-query\ntitle: t\nsection: s\nseverity: low\nsource: metrics\nquery: '{query}'\nvalidations:\n  - expression: value == 1.0\nremediation: r\ndoc: d\n"
        )
    };
    let file = dir.join("deep-query.yaml");
    for (query, says) in [
        (
            vec!["up"; 3000].join(" + "),
            "the query nests more than 64 levels deep",
        ),
        (
            format!("{}up{}", "sum(".repeat(100), ")".repeat(100)),
            "the query nests brackets more than 64 levels deep",
        ),
        (
            format!("up{}", " ".repeat(20_000)),
            "the query is 20002 bytes long; the most is 16384",
        ),
    ] {
        std::fs::write(&file, check(&query)).unwrap();
        let out = run(&[
            "check",
            "--no-cluster",
            "--endpoint",
            "http://127.0.0.1:9",
            "--checks",
            dir.to_str().unwrap(),
        ]);
        assert_eq!(out.status.code(), Some(2), "{}", transcript(&out));
        let stderr = String::from_utf8_lossy(&out.stderr);
        assert!(
            stderr.starts_with(&format!("error: {}:", file.display())) && stderr.contains(says),
            "{stderr}"
        );
    }
}

/// An Ingress in the `v1beta1` shape (`serviceName`, `spec.backend`), which the kinds table
/// matches, routed to nothing: the Ingress checks skipped it ("routes to no MLSDM workload"), and
/// one without TLS passed the release.
#[test]
fn a_v1beta1_ingress_is_read_as_routing_to_its_services() {
    let dir = temp_dir("v1beta1-ingress");
    for entry in std::fs::read_dir(root().join("fixtures/compliant")).unwrap() {
        let path = entry.unwrap().path();
        let text = std::fs::read_to_string(&path).unwrap();
        let kept: Vec<&str> = text
            .split("\n---\n")
            .filter(|doc| !doc.contains("\nkind: Ingress\n"))
            .collect();
        std::fs::write(dir.join(path.file_name().unwrap()), kept.join("\n---\n")).unwrap();
    }
    for (file, backend) in [
        (
            "90-ingress-rule.yaml",
            "  rules:\n    - host: mlsdm.example.com\n      http:\n        paths:\n          - path: /\n            backend:\n              serviceName: mlsdm-api\n              servicePort: 80\n",
        ),
        (
            "90-ingress-default.yaml",
            "  backend:\n    serviceName: mlsdm-api\n    servicePort: http\n",
        ),
    ] {
        let ingress = format!(
            "apiVersion: networking.k8s.io/v1beta1\nkind: Ingress\nmetadata:\n  name: mlsdm-api\n  namespace: mlsdm-production\nspec:\n{backend}"
        );
        std::fs::write(dir.join(file), ingress).unwrap();
        let out = run(&[
            "check",
            "--manifests",
            dir.to_str().unwrap(),
            "--only",
            "ingress-tls,ingress-backend-exists",
            "--format",
            "json",
        ]);
        let report = json(&out);
        // The Ingress fails; the ClusterIP Service behind it is judged by ingress-tls too
        // (skipped: it is not exposed outside the cluster).
        assert_eq!(
            statuses(&report, "ingress-tls"),
            ["fail", "skipped"],
            "{file}"
        );
        assert_eq!(
            statuses(&report, "ingress-backend-exists"),
            ["pass"],
            "{file}"
        );
        assert_eq!(out.status.code(), Some(1), "{file}");
        std::fs::remove_file(dir.join(file)).unwrap();
    }
}

/// A workload whose pod spec names no pull secret pulls with its ServiceAccount's (the admission
/// controller copies them into its pods): a missing one fails the release as a pod spec's does.
/// Read from the pod spec alone, it passed.
#[test]
fn a_service_accounts_missing_pull_secret_fails() {
    let dir = temp_dir("sa-pull-secret");
    let secret_doc =
        |doc: &str| doc.contains("kind: Secret\n") && doc.contains("name: registry-credentials\n");
    for missing in [false, true] {
        for entry in std::fs::read_dir(root().join("fixtures/compliant")).unwrap() {
            let path = entry.unwrap().path();
            let text = std::fs::read_to_string(&path)
                .unwrap()
                .replace("      imagePullSecrets:\n        - name: registry-credentials\n", "")
                .replace(
                    "  name: mlsdm-api\n  namespace: mlsdm-production\nautomountServiceAccountToken: false\n",
                    "  name: mlsdm-api\n  namespace: mlsdm-production\nautomountServiceAccountToken: false\nimagePullSecrets:\n  - name: registry-credentials\n",
                );
            let kept: Vec<&str> = text
                .split("\n---\n")
                .filter(|doc| !(missing && secret_doc(doc)))
                .collect();
            std::fs::write(dir.join(path.file_name().unwrap()), kept.join("\n---\n")).unwrap();
        }
        let out = run(&[
            "check",
            "--manifests",
            dir.to_str().unwrap(),
            "--only",
            "image-pull-secrets-resolvable",
            "--format",
            "json",
        ]);
        let report = json(&out);
        let want = if missing { "fail" } else { "pass" };
        assert_eq!(
            statuses(&report, "image-pull-secrets-resolvable"),
            [want],
            "{}",
            transcript(&out)
        );
    }
}

/// Regression (issue 10.1): an empty input, closed stdin or a selector that matches nothing was
/// exit 0 with "0 fail, 71 no-data". Nothing audited is exit 3, one line, unless --allow-empty.
#[test]
fn nothing_audited_is_not_a_pass() {
    let empty = std::env::temp_dir().join(format!("mlsdm-audit-empty-{}.yaml", std::process::id()));
    std::fs::write(&empty, "").unwrap();
    let empty = empty.to_str().unwrap().to_string();
    let only_config =
        "apiVersion: v1\nkind: ConfigMap\nmetadata: {name: x, namespace: y}\ndata: {a: b}\n";
    let cases: [(&[&str], Option<&str>, &str); 5] = [
        (&["check", "-f", &empty], None, "no Kubernetes object"),
        (&["check", "-f", "-"], Some(""), "no Kubernetes object"),
        (&["check", "-f", "-"], None, "no Kubernetes object"),
        (
            &["check", "-f", "-"],
            Some(only_config),
            "no MLSDM workload",
        ),
        (
            &["check", "-f", "fixtures/compliant", "-l", "app=nothing"],
            None,
            "no MLSDM workload matching --selector \"app=nothing\"",
        ),
    ];
    for (args, stdin, needle) in cases {
        let out = run_with_stdin(args, stdin);
        assert_eq!(out.status.code(), Some(3), "{args:?}: {}", transcript(&out));
        let err = String::from_utf8_lossy(&out.stderr);
        assert!(err.starts_with("error: nothing audited: "), "{err}");
        assert!(err.contains(needle), "{args:?}: {err}");
        assert_eq!(err.lines().count(), 1, "{err}");
        assert!(out.stdout.is_empty(), "no report for an empty run");
        let mut allowed = args.to_vec();
        allowed.push("--allow-empty");
        let out = run_with_stdin(&allowed, stdin);
        assert_eq!(
            out.status.code(),
            Some(0),
            "{allowed:?}: {}",
            transcript(&out)
        );
    }
    std::fs::remove_file(&empty).unwrap();
    // Every source present, but none of the selected checks could be evaluated from them (only
    // service checks in a manifests run; a service-only run with no service): nothing decided.
    for args in [
        &[
            "check",
            "-f",
            "fixtures/compliant",
            "--only",
            "health-ready",
        ][..],
        &["check", "--no-cluster"][..],
    ] {
        let out = run(args);
        assert_eq!(out.status.code(), Some(3), "{args:?}: {}", transcript(&out));
        assert!(
            String::from_utf8_lossy(&out.stderr)
                .contains("could be evaluated from the sources of this run"),
            "{}",
            transcript(&out)
        );
    }
}

/// Regression (issue 10.7): a --checks file silently replaced the built-in check of the same id,
/// and the report recorded neither. A clash is exit 2; --override-builtin replaces it and the
/// report names the file and its SHA-256.
#[test]
fn a_checks_file_never_silently_replaces_a_builtin() {
    let out = run(&[
        "check",
        "-f",
        "fixtures/compliant",
        "--checks",
        "tests/data/checks-override",
    ]);
    assert_eq!(out.status.code(), Some(2), "{}", transcript(&out));
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(
        err.contains("tests/data/checks-override/replicas-min-3.yaml:1:1: check id \"replicas-min-3\" is already defined by checks/replicas-min-3.yaml")
            && err.contains("--override-builtin"),
        "{err}"
    );
    for cmd in [&["list-checks"][..], &["explain", "replicas-min-3"][..]] {
        let mut args = cmd.to_vec();
        args.extend(["--checks", "tests/data/checks-override"]);
        assert_eq!(run(&args).status.code(), Some(2), "{args:?}");
    }

    let out = run(&[
        "check",
        "-f",
        "fixtures/compliant",
        "--checks",
        "tests/data/checks-override",
        "--override-builtin",
        "--only",
        "replicas-min-3,image-pinned",
        "--format",
        "json",
    ]);
    assert_eq!(out.status.code(), Some(0), "{}", transcript(&out));
    let report = json(&out);
    let text =
        std::fs::read(root().join("tests/data/checks-override/replicas-min-3.yaml")).unwrap();
    let origins = report["checks"].as_array().unwrap();
    let find = |id: &str| origins.iter().find(|c| c["id"] == id).unwrap().clone();
    let replaced = find("replicas-min-3");
    assert_eq!(replaced["kind"], "file");
    assert_eq!(
        replaced["path"],
        "tests/data/checks-override/replicas-min-3.yaml"
    );
    assert_eq!(replaced["sha256"], sha256_hex(&text));
    let builtin = find("image-pinned");
    assert_eq!(builtin["kind"], "built-in");
    assert_eq!(builtin["path"], "checks/image-pinned.yaml");
    assert_eq!(
        builtin["sha256"],
        sha256_hex(&std::fs::read(root().join("checks/image-pinned.yaml")).unwrap())
    );
    assert_eq!(origins.len(), 2, "only the checks that ran");
}

/// Review C4: an override may not make a mandatory built-in check optional: `requires:` on an
/// override of a built-in check that has none is exit 2 naming the file and line.
#[test]
fn an_override_never_makes_a_builtin_optional() {
    let dir = temp_dir("override-requires");
    let text = std::fs::read_to_string(root().join("checks/replicas-min-3.yaml")).unwrap();
    let text = text.replacen(
        "source: kubernetes\n",
        "source: kubernetes\nrequires: tracing\n",
        1,
    );
    let line = text.lines().position(|l| l == "requires: tracing").unwrap() + 1;
    let file = dir.join("replicas-min-3.yaml");
    std::fs::write(&file, &text).unwrap();
    let out = run(&[
        "check",
        "-f",
        "fixtures/compliant",
        "--checks",
        dir.to_str().unwrap(),
        "--override-builtin",
    ]);
    assert_eq!(out.status.code(), Some(2), "{}", transcript(&out));
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(
        err.contains(&format!(
            "{}:{line}:1: requires: on an override of the built-in check \"replicas-min-3\"",
            file.display()
        )),
        "{err}"
    );
    // An override of a check that is optional already may keep its requirement.
    let text = std::fs::read_to_string(root().join("checks/tracing-configured.yaml")).unwrap();
    std::fs::remove_file(&file).unwrap();
    std::fs::write(dir.join("tracing-configured.yaml"), text).unwrap();
    let out = run(&[
        "check",
        "-f",
        "fixtures/compliant",
        "--checks",
        dir.to_str().unwrap(),
        "--override-builtin",
        "--only",
        "tracing-configured,image-pinned",
    ]);
    assert_eq!(out.status.code(), Some(0), "{}", transcript(&out));
    let _ = std::fs::remove_dir_all(&dir);
}

fn sha256_hex(bytes: &[u8]) -> String {
    let out = Command::new("sha256sum")
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .spawn()
        .and_then(|mut c| {
            use std::io::Write;
            c.stdin.take().unwrap().write_all(bytes)?;
            c.wait_with_output()
        })
        .unwrap();
    String::from_utf8_lossy(&out.stdout)
        .split_whitespace()
        .next()
        .unwrap()
        .to_string()
}

/// Regression (issue 10.13): reads had no cap (endless stdin, a symlink to /dev/zero), and a FIFO
/// named *.yaml in a directory blocked forever. Each is exit 2 naming the input and the cap.
#[test]
fn inputs_are_bounded() {
    let dir = std::env::temp_dir().join(format!("mlsdm-audit-caps-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let zero = dir.join("zero.yaml");
    let _ = std::fs::remove_file(&zero);
    std::os::unix::fs::symlink("/dev/zero", &zero).unwrap();
    let out = run(&[
        "check",
        "-f",
        zero.to_str().unwrap(),
        "--max-input-size",
        "4Mi",
    ]);
    assert_exit_says(
        &out,
        2,
        "zero.yaml: larger than the 4 MiB input cap (--max-input-size raises it)",
    );
    std::fs::remove_file(&zero).unwrap();

    let fifo_dir = dir.join("tree");
    std::fs::create_dir_all(&fifo_dir).unwrap();
    let fifo = fifo_dir.join("blocks.yaml");
    let _ = std::fs::remove_file(&fifo);
    assert!(
        Command::new("mkfifo")
            .arg(&fifo)
            .status()
            .unwrap()
            .success()
    );
    let out = run(&["check", "-f", fifo_dir.to_str().unwrap()]);
    assert_exit_says(&out, 2, "blocks.yaml: not a regular file");

    // Review finding: a `._` file past the cap was taken for a macOS resource fork (not text)
    // and skipped with a note, where kubectl applies it: it is refused as too large.
    let forked = dir.join("forked");
    std::fs::create_dir_all(&forked).unwrap();
    std::fs::write(forked.join("._deploy.yaml"), "# padding\n".repeat(200_000)).unwrap();
    let out = run(&[
        "check",
        "-f",
        forked.to_str().unwrap(),
        "--max-input-size",
        "1Mi",
    ]);
    assert_exit_says(&out, 2, "._deploy.yaml: larger than the 1 MiB input cap");

    let big = "# padding\n".repeat(200_000);
    let out = run_with_stdin(&["check", "-f", "-", "--max-input-size", "1Mi"], Some(&big));
    assert_eq!(out.status.code(), Some(2), "{}", transcript(&out));
    assert!(
        String::from_utf8_lossy(&out.stderr).contains("<stdin>: larger than the 1 MiB input cap")
    );
    std::fs::remove_dir_all(&dir).unwrap();
}

/// Regression (issue 10.18): valid YAML with more than 1,024 documents was refused ("budget
/// breached"), and so were large `kind: List` dumps.
#[test]
fn large_valid_inputs_are_accepted() {
    let deployment = std::fs::read_to_string(root().join("fixtures/compliant/20-deployment.yaml"))
        .unwrap_or_default();
    let mut docs: Vec<String> = (0..1_500)
        .map(|i| format!("apiVersion: v1\nkind: ConfigMap\nmetadata:\n  name: c{i}\n  namespace: x\ndata:\n  k: v\n"))
        .collect();
    if !deployment.is_empty() {
        docs.push(deployment);
    }
    let out = run_with_stdin(
        &[
            "check",
            "-f",
            "-",
            "--only",
            "replicas-min-3",
            "--allow-empty",
            "--format",
            "json",
        ],
        Some(&docs.join("---\n")),
    );
    assert!(
        matches!(out.status.code(), Some(0 | 1)),
        "{}",
        transcript(&out)
    );

    let mut items = String::new();
    for i in 0..20_000 {
        use std::fmt::Write as _;
        let _ = write!(
            items,
            "- apiVersion: v1\n  kind: ConfigMap\n  metadata: {{name: c{i}, namespace: x}}\n  data: {{k: v}}\n"
        );
    }
    let out = run_with_stdin(
        &[
            "check",
            "-f",
            "-",
            "--only",
            "replicas-min-3",
            "--allow-empty",
            "--format",
            "json",
        ],
        Some(&format!("apiVersion: v1\nkind: List\nitems:\n{items}")),
    );
    assert_eq!(out.status.code(), Some(0), "{}", transcript(&out));
}

/// Runs the binary with extra environment (PATH for the renderers).
fn run_env(args: &[&str], env: &[(&str, &std::ffi::OsStr)]) -> Output {
    golden().args(args).envs(env.iter().copied()).run()
}

/// The dangling references of the modular tree (upstream's `mlsdm-api` selectors next to
/// `neuro-engine` pods), as check id -> object name.
const TREE_DANGLING: &[(&str, &str)] = &[
    ("pdb-selects-workload", "neuro-engine-pdb"),
    ("network-policy-selects-pods", "neuro-engine-allow"),
    ("service-monitor-selects-service", "neuro-engine"),
    ("ingress-backend-exists", "neuro-engine"),
    ("network-policy-allows-api", "neuro-engine"),
];

fn status_of(report: &serde_json::Value, id: &str, name: &str) -> String {
    report["results"]
        .as_array()
        .unwrap()
        .iter()
        .find(|r| r["id"] == id && r["object"]["name"] == name)
        .map_or_else(
            || format!("no result of {id} on {name}"),
            |r| r["status"].as_str().unwrap().to_string(),
        )
}

#[test]
fn a_directory_walk_skips_what_is_not_kubernetes_with_a_note() {
    let out = run(&[
        "check",
        "--manifests",
        "fixtures/modular-kustomize",
        "--manifests",
        "tests/data/non-kubernetes",
        "--format",
        "json",
    ]);
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(1), "{}", transcript(&out));
    assert_eq!(
        stderr,
        "note: skipped fixtures/modular-kustomize/kustomization.yaml: a kustomization, not a Kubernetes object (audit what it renders with --kustomize fixtures/modular-kustomize)\n\
         note: skipped tests/data/non-kubernetes/chart: a Helm chart, not Kubernetes objects (audit what it renders with --helm-chart tests/data/non-kubernetes/chart)\n\
         note: skipped tests/data/non-kubernetes/ci.yaml: not a Kubernetes object, no apiVersion and kind (if it is kustomize or Helm input, audit what it renders with --kustomize DIR or --helm-chart DIR)\n\
         note: skipped tests/data/non-kubernetes/templates/helm-template.yaml: a template ({{ }}), not YAML until rendered (audit what its chart renders with --helm-chart DIR)\n\
         note: nothing audited from tests/data/non-kubernetes: no Kubernetes object in it, while the other inputs gave some; the release was audited without it (--allow-empty accepts it)\n"
    );
    let report = json(&out);
    assert_eq!(report["notes"].as_array().unwrap().len(), 5);
    assert_eq!(report["notes"][0]["kind"], "skipped-file");
    // Outside a `templates/` folder a file with `{{` that is not YAML stays an error: a typo in
    // a PrometheusRule (`{{ $labels.instance }}`) must not drop its objects.
    let dir = std::env::temp_dir().join(format!("mlsdm-audit-tpl-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    std::fs::write(
        dir.join("rules.yaml"),
        "apiVersion: monitoring.coreos.com/v1\nkind: PrometheusRule\nmetadata:\n  name: r\nspec:\n  groups: [{name: g, rules: [{alert: A, expr: up == 0, annotations: {summary: \"{{ $labels.instance }}\"}}]\n",
    )
    .unwrap();
    let out = run(&["check", "-f", dir.to_str().unwrap()]);
    assert_exit_says(&out, 2, "rules.yaml:");
    std::fs::remove_dir_all(&dir).unwrap();
    let results = report["results"].as_array().unwrap();
    assert!(
        !results
            .iter()
            .any(|r| r["object"]["kind"] == "Kustomization"),
        "a Kustomization was audited"
    );
    for (id, name) in TREE_DANGLING {
        assert_eq!(status_of(&report, id, name), "fail", "{id} on {name}");
    }
    // What the tree gets right still passes: the Deployment, its Service and HPA.
    for (id, name) in [
        ("service-selects-workload", "neuro-engine"),
        ("hpa-target-exists", "neuro-engine-hpa"),
        ("probe-liveness-path", "neuro-engine"),
    ] {
        assert_eq!(status_of(&report, id, name), "pass", "{id} on {name}");
    }
}

#[test]
fn a_named_file_or_stdin_that_is_not_kubernetes_stays_an_error() {
    let out = run(&[
        "check",
        "--manifests",
        "fixtures/modular-kustomize/kustomization.yaml",
    ]);
    assert_eq!(out.status.code(), Some(2), "{}", transcript(&out));
    assert_eq!(
        String::from_utf8_lossy(&out.stderr),
        "error: fixtures/modular-kustomize/kustomization.yaml:4:1: a kustomization (kustomize.config.k8s.io), not a Kubernetes object: render it with --kustomize DIR\n"
    );
    let out = run(&[
        "check",
        "--manifests",
        "tests/data/non-kubernetes/templates/helm-template.yaml",
    ]);
    assert_eq!(out.status.code(), Some(2), "{}", transcript(&out));
    assert!(
        String::from_utf8_lossy(&out.stderr).starts_with(
            "error: tests/data/non-kubernetes/templates/helm-template.yaml:5:10: invalid YAML"
        ),
        "{}",
        transcript(&out)
    );
    let out = run_with_stdin(&["check", "--manifests", "-"], Some("stages: [lint]\n"));
    assert_eq!(out.status.code(), Some(2), "{}", transcript(&out));
    assert_eq!(
        String::from_utf8_lossy(&out.stderr),
        "error: <stdin>:1:1: not a Kubernetes object: apiVersion and kind are required\n"
    );
    // A directory of nothing but non-Kubernetes files audits nothing: exit 3, saying why.
    let out = run(&["check", "--manifests", "tests/data/non-kubernetes"]);
    assert_eq!(out.status.code(), Some(3), "{}", transcript(&out));
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(
        stderr.contains("error: nothing audited: no Kubernetes object in the audited manifests; skipped tests/data/non-kubernetes/chart: a Helm chart"),
        "{stderr}"
    );
}

#[test]
fn a_later_definition_replaces_an_earlier_one_and_the_report_says_so() {
    let args = [
        "check",
        "--manifests",
        "fixtures/compliant",
        "--manifests",
        "tests/data/broken-config-later.yaml",
        "--only",
        "mlsdm-config-valid",
    ];
    let out = run(&args);
    assert_eq!(out.status.code(), Some(1), "{}", transcript(&out));
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(
        stdout.contains("FAIL") && stdout.contains("tests/data/broken-config-later.yaml:3"),
        "{stdout}"
    );
    assert!(
        stdout.contains("Notes\n- ConfigMap/mlsdm-production/mlsdm-config is defined twice: tests/data/broken-config-later.yaml:3 replaces fixtures/compliant/10-config.yaml:1 (the last definition wins, as with kubectl apply)\n"),
        "{stdout}"
    );
    // Replacements are in the report, and on stderr where a CI log shows them.
    assert_eq!(
        String::from_utf8_lossy(&out.stderr),
        "note: ConfigMap/mlsdm-production/mlsdm-config is defined twice: tests/data/broken-config-later.yaml:3 replaces fixtures/compliant/10-config.yaml:1 (the last definition wins, as with kubectl apply)\nnote: a subset audit: --only/--skip ran 1 of the 188 checks (mlsdm-config-valid); the checklist lines only the others cover were not audited\n"
    );
    let mut json_args = args.to_vec();
    json_args.extend(["--format", "json"]);
    let report = json(&run(&json_args));
    assert_eq!(report["notes"][0]["kind"], "replaced");
    for (format, heading) in [
        (
            "markdown",
            "## Notes on the input\n\n- ConfigMap/mlsdm-production/mlsdm-config is defined twice",
        ),
        (
            "html",
            "<h2>Notes on the input</h2>\n<ul class=\"notes\">\n<li>ConfigMap/mlsdm-production/mlsdm-config is defined twice",
        ),
    ] {
        let mut a = args.to_vec();
        a.extend(["--format", format]);
        let out = run(&a);
        assert!(
            String::from_utf8_lossy(&out.stdout).contains(heading),
            "{format}: {}",
            transcript(&out)
        );
    }
    // The other order: the compliant ConfigMap is the last one and passes.
    let out = run(&[
        "check",
        "--manifests",
        "tests/data/broken-config-later.yaml",
        "--manifests",
        "fixtures/compliant",
        "--only",
        "mlsdm-config-valid",
    ]);
    assert_eq!(out.status.code(), Some(0), "{}", transcript(&out));
}

/// The directory holding a kubectl with `kubectl kustomize`: MLSDM_AUDIT_KUBECTL's (what
/// scripts/test.sh installs), else one on PATH.
fn kubectl_dir() -> Option<PathBuf> {
    let from_env = std::env::var_os("MLSDM_AUDIT_KUBECTL").map(PathBuf::from);
    let found = from_env.filter(|p| p.is_file()).or_else(|| {
        std::env::split_paths(&std::env::var_os("PATH")?)
            .map(|d| d.join("kubectl"))
            .find(|p| p.is_file())
    })?;
    let ok = Command::new(&found)
        .args(["kustomize", "--help"])
        .output()
        .is_ok_and(|o| o.status.success());
    ok.then(|| found.parent().unwrap().to_path_buf())
}

/// A PATH holding only `dir` (plus a kubectl when asked), so the tool finds exactly that.
fn path_with(dir: &std::path::Path, kubectl: bool) -> std::ffi::OsString {
    let mut dirs = vec![dir.to_path_buf()];
    if kubectl && let Some(k) = kubectl_dir() {
        dirs.push(k);
    }
    std::env::join_paths(dirs).unwrap()
}

fn temp_dir(name: &str) -> PathBuf {
    let d = std::env::temp_dir().join(format!("mlsdm-audit-cli-{}-{name}", std::process::id()));
    let _ = std::fs::remove_dir_all(&d);
    std::fs::create_dir_all(&d).unwrap();
    d
}

#[test]
fn kustomize_renders_the_tree_like_the_directory_walk_reads_it() {
    let Some(_) = kubectl_dir() else {
        // Straight to stderr, past the test harness' capture, so the skip is seen.
        let _ = std::io::Write::write_all(
            &mut std::io::stderr(),
            b"skipped: no kubectl with `kubectl kustomize` (scripts/test.sh installs Debian's)\n",
        );
        return;
    };
    let empty = temp_dir("kustomize-path");
    let path = path_with(&empty, true);
    let out = run_env(
        &[
            "check",
            "--kustomize",
            "fixtures/modular-kustomize",
            "--format",
            "json",
        ],
        &[("PATH", &path)],
    );
    assert_eq!(out.status.code(), Some(1), "{}", transcript(&out));
    assert_eq!(String::from_utf8_lossy(&out.stderr), "");
    let rendered = json(&out);
    assert_eq!(
        rendered["target"]["manifests"],
        serde_json::json!(["kustomize:fixtures/modular-kustomize"])
    );
    for (id, name) in TREE_DANGLING {
        assert_eq!(status_of(&rendered, id, name), "fail", "{id} on {name}");
    }
    let r = rendered["results"]
        .as_array()
        .unwrap()
        .iter()
        .find(|r| r["id"] == "pdb-selects-workload")
        .unwrap();
    assert_eq!(
        r["location"]["file"],
        "kustomize:fixtures/modular-kustomize"
    );
    assert!(r["location"]["line"].as_u64().unwrap() > 1, "{r}");
    // The same verdicts, object by object, as reading the files.
    let walked = json(&run(&[
        "check",
        "--manifests",
        "fixtures/modular-kustomize",
        "--format",
        "json",
    ]));
    let verdicts = |report: &serde_json::Value| -> Vec<String> {
        let mut v: Vec<String> = report["results"]
            .as_array()
            .unwrap()
            .iter()
            .map(|r| format!("{} {} {}", r["id"], r["object"], r["status"]))
            .collect();
        v.sort();
        v
    };
    assert_eq!(verdicts(&rendered), verdicts(&walked));
    // A directory kustomize cannot build: exit 2 with the tool's own words.
    let out = run_env(
        &["check", "--kustomize", "tests/data/non-kubernetes"],
        &[("PATH", &path)],
    );
    assert_eq!(out.status.code(), Some(2), "{}", transcript(&out));
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(
        stderr.starts_with("error: --kustomize tests/data/non-kubernetes: ")
            && stderr.contains("kustomize tests/data/non-kubernetes failed (exit status: 1):\n")
            && stderr.contains("kustomization"),
        "{stderr}"
    );
    let _ = std::fs::remove_dir_all(&empty);
}

#[test]
fn a_missing_renderer_is_named() {
    let empty = temp_dir("no-tools");
    let path = path_with(&empty, false);
    let out = run_env(
        &[
            "check",
            "--helm-chart",
            "tests/data/non-kubernetes/chart",
            "--helm-values",
            "tests/data/non-kubernetes/chart/values.yaml",
        ],
        &[("PATH", &path)],
    );
    assert_eq!(out.status.code(), Some(2), "{}", transcript(&out));
    assert_eq!(
        String::from_utf8_lossy(&out.stderr),
        "error: --helm-chart tests/data/non-kubernetes/chart: helm is not installed (not found on PATH); install it, or run `helm template` yourself and pass the output with --manifests\n"
    );
    let out = run_env(
        &["check", "--kustomize", "fixtures/modular-kustomize"],
        &[("PATH", &path)],
    );
    assert_eq!(out.status.code(), Some(2), "{}", transcript(&out));
    assert_eq!(
        String::from_utf8_lossy(&out.stderr),
        "error: --kustomize fixtures/modular-kustomize: neither kustomize nor kubectl is installed (not found on PATH); install one, or render it yourself and pass the output with --manifests\n"
    );
    let _ = std::fs::remove_dir_all(&empty);
}

/// A renderer that hangs is stopped at --render-timeout; one that never stops writing is stopped
/// at the input cap; `helm template` gets the chart and each values file.
#[cfg(unix)]
#[test]
fn renderers_are_bounded() {
    use std::os::unix::fs::PermissionsExt;
    let dir = temp_dir("fake-tools");
    let tool = |name: &str, script: &str| {
        let p = dir.join(name);
        std::fs::write(&p, format!("#!/bin/sh\nPATH=/usr/bin:/bin\n{script}\n")).unwrap();
        std::fs::set_permissions(&p, std::fs::Permissions::from_mode(0o755)).unwrap();
    };
    let path = path_with(&dir, false);
    tool("kustomize", "exec sleep 30");
    let started = std::time::Instant::now();
    let out = run_env(
        &[
            "check",
            "--kustomize",
            "fixtures/modular-kustomize",
            "--render-timeout",
            "1s",
        ],
        &[("PATH", &path)],
    );
    assert_eq!(out.status.code(), Some(2), "{}", transcript(&out));
    assert!(started.elapsed() < std::time::Duration::from_secs(20));
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(
        stderr.contains("kustomize build fixtures/modular-kustomize did not finish within 1s (--render-timeout raises it)"),
        "{stderr}"
    );
    tool("kustomize", "exec yes 'a: b'");
    let out = run_env(
        &[
            "check",
            "--kustomize",
            "fixtures/modular-kustomize",
            "--max-input-size",
            "1Mi",
        ],
        &[("PATH", &path)],
    );
    assert_eq!(out.status.code(), Some(2), "{}", transcript(&out));
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(
        stderr.contains("is larger than the 1 MiB input cap"),
        "{stderr}"
    );
    // helm gets `template CHART -f VALUES...`; its output is read like any manifest.
    tool(
        "helm",
        "echo \"# $*\"; cat fixtures/compliant-modular/all.yaml",
    );
    let out = run_env(
        &[
            "check",
            "--helm-chart",
            "tests/data/non-kubernetes/chart",
            "--helm-values",
            "tests/data/non-kubernetes/chart/values.yaml",
            "--only",
            "probe-liveness-path",
            "--format",
            "json",
        ],
        &[("PATH", &path)],
    );
    assert_eq!(out.status.code(), Some(0), "{}", transcript(&out));
    let report = json(&out);
    assert_eq!(
        report["results"][0]["location"]["file"],
        "helm:tests/data/non-kubernetes/chart"
    );
    // A failing helm shows its stderr.
    tool(
        "helm",
        "echo 'Error: values.yaml: bad indentation' >&2; exit 1",
    );
    let out = run_env(
        &["check", "--helm-chart", "tests/data/non-kubernetes/chart"],
        &[("PATH", &path)],
    );
    assert_eq!(out.status.code(), Some(2), "{}", transcript(&out));
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(
        stderr.ends_with("template tests/data/non-kubernetes/chart failed (exit status: 1):\nError: values.yaml: bad indentation\n"),
        "{stderr}"
    );
    let _ = std::fs::remove_dir_all(&dir);
}

/// A directory holding a kustomization that patches its files, walked with `-f`, was audited as
/// the files are written: a patch setting `replicas: 1` and `:latest` left the base passing. The
/// gate is an error (exit 3) unless something failed; `--kustomize DIR` audits the render.
#[test]
fn a_walked_kustomization_that_patches_its_files_is_not_a_pass() {
    let dir = compliant_copy("walked-kustomization", &[]);
    // The directory with `file` holding `kustomization`, walked with `-f`.
    let walked = |file: &str, kustomization: &str| {
        std::fs::write(dir.join(file), kustomization).unwrap();
        let out = run(&["check", "--no-config", "-f", dir.to_str().unwrap()]);
        std::fs::remove_file(dir.join(file)).unwrap();
        out
    };
    let out = walked(
        "kustomization.yaml",
        "apiVersion: kustomize.config.k8s.io/v1beta1\nkind: Kustomization\nresources: [00-namespace.yaml, 10-config.yaml, 20-deployment.yaml, 30-service.yaml, 40-network.yaml, 50-monitoring.yaml, 60-smoke-test.yaml]\nimages:\n  - name: ghcr.io/neuron7x/mlsdm-neuro-engine\n    newTag: latest\n",
    );
    assert_eq!(out.status.code(), Some(3), "{}", transcript(&out));
    assert!(
        transcript(&out)
            .contains("changes what it lists (images): the files were audited as written"),
        "{}",
        transcript(&out)
    );
    // kustomize also reads a file named `Kustomization`, which the walk does not collect.
    let out = walked(
        "Kustomization",
        "apiVersion: kustomize.config.k8s.io/v1beta1\nkind: Kustomization\nresources: [20-deployment.yaml]\nreplicas:\n  - name: mlsdm-api\n    count: 1\n",
    );
    assert_eq!(out.status.code(), Some(3), "{}", transcript(&out));
    // Listing only (and setting the namespace the files have) changes nothing: a pass.
    let out = walked(
        "kustomization.yaml",
        "apiVersion: kustomize.config.k8s.io/v1beta1\nkind: Kustomization\nnamespace: mlsdm-production\nresources: [00-namespace.yaml, 10-config.yaml, 20-deployment.yaml, 30-service.yaml, 40-network.yaml, 50-monitoring.yaml, 60-smoke-test.yaml]\n",
    );
    assert_eq!(out.status.code(), Some(0), "{}", transcript(&out));
    // Another namespace is set on every object it lists, over the files' own: walked, the set
    // passed namespace-defined while the cluster gets it in `default`.
    let out = walked(
        "kustomization.yaml",
        "apiVersion: kustomize.config.k8s.io/v1beta1\nkind: Kustomization\nnamespace: default\nresources: [00-namespace.yaml, 10-config.yaml, 20-deployment.yaml, 30-service.yaml, 40-network.yaml, 50-monitoring.yaml, 60-smoke-test.yaml]\n",
    );
    assert_eq!(out.status.code(), Some(3), "{}", transcript(&out));
    assert!(
        transcript(&out).contains("sets namespace default on what it lists, over ")
            && transcript(&out).contains("20-deployment.yaml (mlsdm-production)"),
        "{}",
        transcript(&out)
    );
    // A base outside the walked directory (and a remote one) is deployed and was not read: a
    // defective ../base beside a compliant overlay passed.
    let out = walked(
        "kustomization.yaml",
        "apiVersion: kustomize.config.k8s.io/v1beta1\nkind: Kustomization\nresources: [00-namespace.yaml, 10-config.yaml, 20-deployment.yaml, 30-service.yaml, 40-network.yaml, 50-monitoring.yaml, 60-smoke-test.yaml, ../base, https://github.com/example/deploy//base?ref=main]\n",
    );
    assert_eq!(out.status.code(), Some(3), "{}", transcript(&out));
    assert!(
        transcript(&out).contains(
            "lists ../base, https://github.com/example/deploy//base?ref=main outside what the walk read"
        ),
        "{}",
        transcript(&out)
    );
    // `bases:`, kustomize's deprecated name for directories it deploys, is read too (review
    // finding: a base listed there passed unnoticed).
    let out = walked(
        "kustomization.yaml",
        "apiVersion: kustomize.config.k8s.io/v1beta1\nkind: Kustomization\nbases: [../base]\nresources: [00-namespace.yaml, 10-config.yaml, 20-deployment.yaml, 30-service.yaml, 40-network.yaml, 50-monitoring.yaml, 60-smoke-test.yaml]\n",
    );
    assert_eq!(out.status.code(), Some(3), "{}", transcript(&out));
    assert!(
        transcript(&out).contains("lists ../base outside what the walk read"),
        "{}",
        transcript(&out)
    );
    // A file the kustomization does not list is not deployed: its NetworkPolicies passed the
    // network checks for a release that would not have them.
    let out = walked(
        "kustomization.yaml",
        "apiVersion: kustomize.config.k8s.io/v1beta1\nkind: Kustomization\nresources: [00-namespace.yaml, 10-config.yaml, 20-deployment.yaml, 30-service.yaml, 50-monitoring.yaml, 60-smoke-test.yaml]\n",
    );
    assert_eq!(out.status.code(), Some(3), "{}", transcript(&out));
    assert!(
        transcript(&out).contains("40-network.yaml in its resources"),
        "{}",
        transcript(&out)
    );
}

/// A kustomize overlay's patch files look like objects but are fragments: read as objects they
/// would replace the base's whole Deployment. The walk skips the patches its kustomization names.
#[test]
fn a_directory_walk_skips_kustomize_patches() {
    let out = run(&[
        "check",
        "--manifests",
        "fixtures/modular-kustomize",
        "--manifests",
        "tests/data/kustomize-overlay",
        "--format",
        "json",
    ]);
    assert_eq!(out.status.code(), Some(1), "{}", transcript(&out));
    let report = json(&out);
    let notes: Vec<&str> = report["notes"]
        .as_array()
        .unwrap()
        .iter()
        .map(|n| n["message"].as_str().unwrap())
        .collect();
    assert!(
        notes.contains(&"skipped tests/data/kustomize-overlay/prod/replicas.yaml: a patch tests/data/kustomize-overlay/prod/kustomization.yaml applies, not a whole object (audit what it renders with --kustomize tests/data/kustomize-overlay/prod)"),
        "{notes:#?}"
    );
    // The overlay changes what it lists: walked, it is not what the cluster gets.
    assert!(
        notes.contains(&"tests/data/kustomize-overlay/prod/kustomization.yaml changes what it lists (patches, patchesStrategicMerge): the files were audited as written, not as kustomize renders them for the cluster; audit with --kustomize tests/data/kustomize-overlay/prod"),
        "{notes:#?}"
    );
    // The overlay directory gave no object: the release was audited without it.
    assert!(
        notes
            .iter()
            .any(|n| n.starts_with("nothing audited from tests/data/kustomize-overlay:")),
        "{notes:#?}"
    );
    assert_eq!(notes.len(), 6, "{notes:#?}");
    assert!(!notes.iter().any(|n| n.contains("defined twice")));
    // The base Deployment is audited whole.
    assert_eq!(
        status_of(&report, "probe-liveness-path", "neuro-engine"),
        "pass"
    );
}

/// Regression (issue 13): `-o json` silently wrote a table into a file named `json`. `-o` is the
/// output format, as in kubectl; `--output-file` takes the format from its extension and refuses
/// an extension that names another format.
#[test]
fn dash_o_is_the_output_format_as_in_kubectl() {
    let out = run(&["check", "-f", "fixtures/compliant", "-o", "json"]);
    assert_eq!(out.status.code(), Some(0), "{}", transcript(&out));
    assert!(json(&out)["summary"]["pass"].as_u64().unwrap() > 50);
    assert!(!root().join("json").exists(), "no file named json");

    let dir = std::env::temp_dir().join(format!("mlsdm-audit-o-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    for (name, starts) in [
        ("r.json", "{"),
        ("r.html", "<!DOCTYPE html>"),
        ("r.sarif", "{"),
        ("r.xml", "<?xml"),
        ("r.md", "<!--"),
    ] {
        let file = dir.join(name);
        let out = run(&[
            "check",
            "-f",
            "fixtures/compliant",
            "--output-file",
            file.to_str().unwrap(),
        ]);
        assert_eq!(out.status.code(), Some(0), "{name}: {}", transcript(&out));
        let text = std::fs::read_to_string(&file).unwrap();
        assert!(
            text.starts_with(starts),
            "{name}: {}",
            &text[..text.len().min(80)]
        );
    }
    let file = dir.join("report.json");
    let out = run(&[
        "check",
        "-f",
        "fixtures/compliant",
        "-o",
        "table",
        "--output-file",
        file.to_str().unwrap(),
    ]);
    assert_exit_says(&out, 2, "-o table conflicts with --output-file");
    assert!(!file.exists());
    std::fs::remove_dir_all(&dir).unwrap();
}

#[test]
fn undeclared_variables_and_functions_are_rejected_when_checks_load() {
    let out = run(&["validate-checks", "tests/data/checks-unresolved"]);
    assert_eq!(out.status.code(), Some(2), "{}", transcript(&out));
    insta::assert_snapshot!(transcript(&out));
    let err = String::from_utf8_lossy(&out.stderr);
    for (at, what) in [
        (
            "variable-typo.yaml:9:17:",
            "unknown variable `objct` (did you mean `object`?); available: object, oldObject, related, mlsdm, params",
        ),
        (
            "item-without-foreach.yaml:11:9:",
            "unknown variable `item`; available: object, oldObject, related, mlsdm, params\n",
        ),
        (
            "function-typo.yaml:10:17:",
            "unknown function `sizee` (did you mean `size`?)",
        ),
        (
            "function-typo.yaml:10:52:",
            "unknown function `startWith` (did you mean `startsWith`?)",
        ),
        (
            "function-typo.yaml:12:28:",
            "unknown function `exist` (did you mean `exists`?)",
        ),
        (
            "function-typo.yaml:13:57:",
            "messageExpression: unknown variable `c`; available: object, oldObject, related, mlsdm, params, item",
        ),
        (
            "http-wrong-source.yaml:9:43:",
            "unknown variable `object`; available: response, responses, load, mlsdm",
        ),
        (
            "metrics-typo.yaml:8:17:",
            "unknown variable `vale` (did you mean `value`?); available: value, series",
        ),
    ] {
        assert!(
            err.contains(&format!("tests/data/checks-unresolved/{at} ")) && err.contains(what),
            "{at} {what}: {err}"
        );
    }
    // Comprehension variables, `item` under forEach, namespaced and Kubernetes functions resolve:
    // nothing else in those files is reported.
    assert_eq!(err.lines().count(), 8, "{err}");
    // The same checks never reach an evaluation.
    let out = run(&[
        "check",
        "--manifests",
        "fixtures/compliant",
        "--checks",
        "tests/data/checks-unresolved",
    ]);
    assert_eq!(out.status.code(), Some(2), "{}", transcript(&out));
    assert!(out.stdout.is_empty());
}

#[test]
fn a_regex_too_large_to_compile_cheaply_is_an_error_for_the_object() {
    let started = std::time::Instant::now();
    let out = run(&[
        "check",
        "--manifests",
        "fixtures/compliant",
        "--checks",
        "tests/data/checks-regex-cost",
        "--only",
        "name-pattern-too-large",
        "--format",
        "json",
    ]);
    assert_eq!(out.status.code(), Some(3), "{}", transcript(&out));
    let report = json(&out);
    let results: Vec<&serde_json::Value> = report["results"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|r| r["id"] == "name-pattern-too-large")
        .collect();
    assert!(!results.is_empty());
    for r in results {
        assert_eq!(r["status"], "error", "{r}");
        assert!(r["message"].as_str().unwrap().contains("too large"), "{r}");
    }
    // Generous: seconds per object before the limit; milliseconds now.
    assert!(started.elapsed() < std::time::Duration::from_secs(30));
}

#[test]
fn the_total_timeout_bounds_a_stdin_that_never_ends() {
    let run = support::cmd()
        // 10 s, not less: on a loaded 2-core machine the debug build's loading of the catalog
        // alone took over 2 s, and the timeout then fired before stdin was read at all.
        .args(["check", "--manifests", "-", "--timeout", "10s"])
        // stdin stays open: the writer never finishes.
        .stdin_open()
        .deadline(std::time::Duration::from_mins(2))
        .run();
    let (status, out, err) = (
        run.status,
        String::from_utf8_lossy(&run.stdout),
        String::from_utf8_lossy(&run.stderr),
    );
    assert_eq!(status.code(), Some(3), "{err}");
    assert!(out.is_empty(), "no report: {out}");
    assert_eq!(err.lines().count(), 1, "{err}");
    assert!(
        err.starts_with("error: the audit did not finish within --timeout 10s")
            && err.contains("still running: reading the manifests"),
        "{err}"
    );
}

/// Review finding: an `envFrom` whose variables are unknown (a Secret read metadata-only, or an
/// object not in the input) was read as adding nothing, so MLSDM_* set there could never fail.
#[test]
fn an_unresolved_env_from_is_undecided_never_a_pass() {
    let out = run(&[
        "check",
        "-f",
        "tests/data/envfrom-unresolved",
        "--only",
        "mlsdm-config-valid,mlsdm-env-overrides-valid",
        "--format",
        "json",
    ]);
    let report = json(&out);
    assert_eq!(statuses(&report, "mlsdm-env-overrides-valid"), ["error"]);
    assert_ne!(statuses(&report, "mlsdm-config-valid"), ["pass"]);
    let msg = report["results"]
        .as_array()
        .unwrap()
        .iter()
        .find(|r| r["id"] == "mlsdm-env-overrides-valid")
        .unwrap()["message"]
        .as_str()
        .unwrap()
        .to_string();
    assert!(
        msg.contains("envFrom Secret mlsdm-extra-env is not among the audited objects"),
        "{msg}"
    );
}

/// Review finding: a switch whose value the audit cannot read (from a Secret by valueFrom, or
/// possibly from an envFrom source it cannot see) passed: DISABLE_RATE_LIMIT, OTEL_SDK_DISABLED,
/// LLM_BACKEND, and later RATE_LIMIT_REQUESTS/RATE_LIMIT_WINDOW (judged valid unread) and
/// OTEL_TRACES_SAMPLER (judged not a ratio sampler unread). Undecided is an error with the
/// reason; a value it can read decides.
#[test]
fn a_switch_the_audit_cannot_read_is_undecided_not_a_pass() {
    let dir = temp_dir("env-switch");
    let file = dir.join("deployment.yaml");
    let unresolved =
        std::fs::read_to_string(root().join("tests/data/envfrom-unresolved/deployment.yaml"))
            .unwrap();
    let base = unresolved.replace(
        "        envFrom:\n        - secretRef: {name: mlsdm-extra-env}\n",
        "",
    );
    assert!(!base.contains("envFrom"), "the fixture changed: {base}");
    let with_env = |entries: &[&str]| {
        let lines: Vec<String> = entries.iter().map(|e| format!("        - {e}\n")).collect();
        base.replace(
            "        env:\n",
            &format!("        env:\n{}", lines.concat()),
        )
    };
    let secret =
        |name: &str| format!("{{name: {name}, valueFrom: {{secretKeyRef: {{name: s, key: k}}}}}}");
    let otel = "{name: OTEL_EXPORTER_TYPE, value: otlp}";
    let unread = ", whose value the audit cannot read";
    let cases = [
        ("rate-limit-configured", unresolved.clone(), "error", "envFrom Secret mlsdm-extra-env is not among the audited objects, which may set DISABLE_RATE_LIMIT".to_string()),
        ("rate-limit-configured", with_env(&[&secret("DISABLE_RATE_LIMIT")]), "error", format!("DISABLE_RATE_LIMIT comes from secretKeyRef{unread}")),
        ("rate-limit-configured", with_env(&["{name: DISABLE_RATE_LIMIT, value: \"true\"}"]), "fail", "DISABLE_RATE_LIMIT turns MLSDM's rate limiter off".to_string()),
        ("rate-limit-configured", with_env(&["{name: DISABLE_RATE_LIMIT, value: \"0\"}"]), "pass", String::new()),
        ("rate-limit-configured", base.clone(), "pass", String::new()),
        ("tracing-configured", unresolved.replace("        env:\n", &format!("        env:\n        - {otel}\n")), "error", "which may set MLSDM_OTEL_ENABLED (it takes precedence) or OTEL_SDK_DISABLED".to_string()),
        ("tracing-configured", with_env(&[otel, &secret("OTEL_SDK_DISABLED")]), "error", format!("OTEL_SDK_DISABLED comes from secretKeyRef{unread}")),
        ("tracing-configured", with_env(&[otel, "{name: OTEL_SDK_DISABLED, value: \"true\"}"]), "fail", "OTEL_SDK_DISABLED=true".to_string()),
        ("tracing-configured", with_env(&[otel]), "pass", String::new()),
        ("llm-backend-set", base.replace("{name: LLM_BACKEND, value: local_stub}", &secret("LLM_BACKEND")), "error", format!("LLM_BACKEND comes from secretKeyRef{unread}")),
        ("llm-backend-set", base.replace("value: local_stub", "value: gpt"), "fail", "LLM_BACKEND is gpt".to_string()),
        ("llm-backend-set", base.clone(), "pass", String::new()),
        ("rate-limit-configured", with_env(&[&secret("RATE_LIMIT_REQUESTS")]), "error", format!("RATE_LIMIT_REQUESTS comes from secretKeyRef{unread}")),
        ("rate-limit-configured", with_env(&["{name: RATE_LIMIT_REQUESTS, value: \"0\"}"]), "fail", "must be positive integers".to_string()),
        ("rate-limit-configured", with_env(&["{name: RATE_LIMIT_WINDOW, value: \"2\"}"]), "pass", String::new()),
        ("tracing-sampling-configured", with_env(&[otel, &secret("OTEL_TRACES_SAMPLER")]), "error", format!("OTEL_TRACES_SAMPLER comes from secretKeyRef{unread}")),
        ("tracing-sampling-configured", with_env(&[otel, &secret("OTEL_TRACES_SAMPLER"), "{name: OTEL_TRACES_SAMPLER_ARG, value: \"0.1\"}"]), "pass", String::new()),
        ("tracing-sampling-configured", with_env(&[otel, "{name: OTEL_TRACES_SAMPLER, value: parentbased_traceidratio}"]), "fail", "needs OTEL_TRACES_SAMPLER_ARG".to_string()),
        ("tracing-sampling-configured", with_env(&[otel, "{name: OTEL_TRACES_SAMPLER, value: always_on}"]), "pass", String::new()),
    ];
    for (id, manifest, want, says) in cases {
        std::fs::write(&file, &manifest).unwrap();
        let out = run(&[
            "check",
            "-f",
            file.to_str().unwrap(),
            "--only",
            id,
            "--require",
            "tracing",
            "--format",
            "json",
        ]);
        let report = json(&out);
        let result = report["results"]
            .as_array()
            .unwrap()
            .iter()
            .find(|r| r["id"] == id)
            .unwrap()
            .clone();
        assert_eq!(result["status"], want, "{id}: {manifest}\n{result}");
        assert!(
            result["message"].as_str().unwrap().contains(&says),
            "{id}: {result}"
        );
    }
}

/// Review findings: a PDB's `minAvailable` as a percentage was not judged (`"100%"` passed
/// pdb-allows-rollout), and a config without `dimension` skipped the memory-fit rule of
/// mlsdm-config-capacity although MLSDM then runs with 384.
#[test]
fn percentages_and_default_dimensions_are_judged() {
    let dir = temp_dir("percent-dimension");
    let pdb = "pdb-allows-rollout";
    let capacity = "mlsdm-config-capacity";
    // (replace, with, and replace, with, check, status)
    let cases = [
        (
            "  minAvailable: 2\n",
            "  minAvailable: \"100%\"\n",
            "",
            "",
            pdb,
            "fail",
        ),
        (
            "  minAvailable: 2\n",
            "  minAvailable: \"67%\"\n",
            "",
            "",
            pdb,
            "fail",
        ),
        (
            "  minAvailable: 2\n",
            "  minAvailable: \"50%\"\n",
            "",
            "",
            pdb,
            "pass",
        ),
        // Under its HPA (minReplicas 3) without spec.replicas: 50 % of 3 leaves one to evict.
        (
            "  minAvailable: 2\n",
            "  minAvailable: \"50%\"\n",
            "  replicas: 3\n",
            "",
            pdb,
            "pass",
        ),
        ("    dimension: 384\n", "", "", "", capacity, "pass"),
        // 1,000,000 vectors of 384 float32 are 1.5 GB, against a 2Gi limit.
        (
            "    dimension: 384\n",
            "",
            "      capacity: 20000\n",
            "      capacity: 1000000\n",
            capacity,
            "fail",
        ),
    ];
    for (from, to, from2, to2, id, want) in cases {
        for entry in std::fs::read_dir(root().join("fixtures/compliant")).unwrap() {
            let path = entry.unwrap().path();
            let mut text = std::fs::read_to_string(&path).unwrap().replace(from, to);
            if !from2.is_empty() {
                text = text.replace(from2, to2);
            }
            std::fs::write(dir.join(path.file_name().unwrap()), text).unwrap();
        }
        let out = run(&[
            "check",
            "--manifests",
            dir.to_str().unwrap(),
            "--only",
            id,
            "--format",
            "json",
        ]);
        assert_eq!(
            statuses(&json(&out), id),
            [want],
            "{to:?}: {}",
            transcript(&out)
        );
    }
}

/// Review finding: in a namespace-less tree (a kustomize base) a ServiceMonitor was never
/// evaluated ("none of the namespaces it watches is audited"), so a dangling selector passed by.
#[test]
fn a_service_monitor_in_a_namespaceless_base_is_evaluated() {
    let out = run(&[
        "check",
        "-f",
        "tests/data/namespaceless-base",
        "--only",
        "service-monitor-selects-service",
        "--format",
        "json",
    ]);
    assert_eq!(
        statuses(&json(&out), "service-monitor-selects-service"),
        ["fail"],
        "{}",
        transcript(&out)
    );
}

/// Issue 13: the terminal view's switches. `--quiet` prints nothing (the exit code says it),
/// `--show` with another format than the table is refused, `--color always` colours even into a
/// pipe and over NO_COLOR, `-v`/`-vv` add detail on stderr only, and the default view names each
/// failure's fix.
#[test]
fn terminal_view_switches() {
    let defective = [
        "check",
        "--manifests",
        "fixtures/defective",
        "--only",
        "image-pinned,pdb-min-available",
    ];
    let with = |extra: &[&str]| {
        let mut a = defective.to_vec();
        a.extend(extra);
        run(&a)
    };
    let quiet = with(&["--quiet"]);
    assert_eq!(quiet.status.code(), Some(1), "{}", transcript(&quiet));
    assert!(
        quiet.stdout.is_empty() && quiet.stderr.is_empty(),
        "{}",
        transcript(&quiet)
    );

    let default = with(&[]);
    let stdout = String::from_utf8_lossy(&default.stdout);
    assert!(stdout.starts_with("0 pass, 2 fail"), "{stdout}");
    assert!(
        stdout.contains("verdict: FAIL: 2 failure(s) at or above high"),
        "{stdout}"
    );
    assert!(
        stdout.contains("fix: Add a PodDisruptionBudget"),
        "{stdout}"
    );
    assert!(
        !stdout.contains("\u{1b}["),
        "NO_COLOR and a pipe: no colour"
    );

    let coloured = with(&["--color", "always"]);
    assert!(String::from_utf8_lossy(&coloured.stdout).contains("\u{1b}["));
    let never = with(&["--color", "never", "--show", "all"]);
    assert!(!String::from_utf8_lossy(&never.stdout).contains("\u{1b}["));

    let refused = with(&["-o", "json", "--show", "all"]);
    assert_eq!(refused.status.code(), Some(2), "{}", transcript(&refused));
    assert_eq!(
        String::from_utf8_lossy(&refused.stderr),
        "error: --show applies to -o table only, not -o json\n"
    );
    let conflicting = with(&["--quiet", "-v"]);
    assert_eq!(conflicting.status.code(), Some(2));

    let verbose = with(&["-vv", "-o", "json"]);
    assert_eq!(verbose.status.code(), Some(1));
    let report = json(&verbose);
    assert_eq!(report["summary"]["fail"], 2, "stdout is the report alone");
    let stderr = String::from_utf8_lossy(&verbose.stderr);
    assert!(
        stderr.contains("audited manifests: fixtures/defective")
            && stderr.contains("2 check(s) ran (2 built-in, 0 from files)")
            && stderr.contains("fail high image-pinned Deployment/mlsdm-production/neuro-engine"),
        "{stderr}"
    );
}

fn run_in(dir: &std::path::Path, args: &[&str]) -> Output {
    golden().current_dir(dir).args(args).run()
}

fn result<'a>(report: &'a serde_json::Value, id: &str) -> &'a serde_json::Value {
    report["results"]
        .as_array()
        .unwrap()
        .iter()
        .find(|r| r["id"] == id)
        .unwrap_or_else(|| panic!("no result for {id}"))
}

/// Issue 13: the compliant example passes clean at `--fail-on info` without any config, its
/// optional items are skipped saying how to turn them on, and evidence that may live outside the
/// cluster is no-data saying how to attest it, never fail.
#[test]
fn optional_items_are_skipped_and_outside_evidence_is_no_data() {
    let out = run(&[
        "check",
        "--manifests",
        "fixtures/compliant",
        "--fail-on",
        "info",
    ]);
    assert_eq!(out.status.code(), Some(0), "{}", transcript(&out));
    let out = run(&[
        "check",
        "--manifests",
        "fixtures/compliant",
        "--fail-on",
        "info",
        "-o",
        "json",
    ]);
    assert_eq!(out.status.code(), Some(0), "{}", transcript(&out));
    let report = json(&out);
    assert_eq!(report["summary"]["fail"], 0);
    // Issue 11: every skip says why as data, and only skips carry a reason.
    let mut kinds = std::collections::BTreeSet::new();
    for r in report["results"].as_array().unwrap() {
        if r["status"] == "skipped" {
            kinds.insert(r["skipReason"]["kind"].as_str().unwrap().to_string());
        } else {
            assert!(r.get("skipReason").is_none(), "{r}");
        }
    }
    assert_eq!(
        kinds,
        ["no-source", "not-applicable", "optional"]
            .map(String::from)
            .into(),
        "{report}"
    );
    for (id, requirement) in [
        ("tracing-configured", "tracing"),
        ("tracing-endpoint-configured", "tracing"),
        ("tracing-sampling-configured", "tracing"),
        ("manual-trace-storage-configured", "tracing"),
        ("ingress-ip-allowlist", "ip-allowlist"),
        ("manual-penetration-testing-performed", "penetration-test"),
        ("manual-multi-region-setup", "multi-region"),
        ("manual-gdpr-compliance-reviewed", "gdpr"),
    ] {
        let r = result(&report, id);
        assert_eq!(r["status"], "skipped", "{id}: {r}");
        assert_eq!(
            r["skipReason"],
            serde_json::json!({"kind": "optional", "requirement": requirement}),
            "{id}"
        );
        assert_eq!(
            r["message"],
            format!(
                "optional: declare it in .mlsdm-audit.yaml to check it (requirements: [{requirement}], or --require {requirement})"
            ),
            "{id}"
        );
    }
    // A run of nothing but undeclared optional checks decided nothing: exit 3, saying why.
    let out = run(&[
        "check",
        "--manifests",
        "fixtures/compliant",
        "--only",
        "tracing-configured",
    ]);
    assert_eq!(out.status.code(), Some(3), "{}", transcript(&out));
    assert_eq!(
        String::from_utf8_lossy(&out.stderr),
        "error: nothing audited: every selected check is optional and its requirement is not declared (tracing-configured); declare it in .mlsdm-audit.yaml's requirements or with --require\n"
    );
    // The filled-in checklist shows an undeclared optional line as n/a, never ticked.
    let out = run(&[
        "check",
        "--manifests",
        "fixtures/compliant",
        "-o",
        "markdown",
    ]);
    let md = String::from_utf8_lossy(&out.stdout);
    assert!(
        md.contains("  - [ ] IP whitelisting configured (if required) — *n/a:* ingress-ip-allowlist skipped: optional: declare it in .mlsdm-audit.yaml to check it"),
        "{md}"
    );
    // Declared on the command line, they are evaluated (and pass on the compliant example).
    let out = run(&[
        "check",
        "--manifests",
        "fixtures/compliant",
        "--require",
        "tracing,ip-allowlist",
        "--fail-on",
        "info",
        "-o",
        "json",
    ]);
    assert_eq!(out.status.code(), Some(0), "{}", transcript(&out));
    let report = json(&out);
    for id in [
        "tracing-configured",
        "tracing-sampling-configured",
        "ingress-ip-allowlist",
    ] {
        assert_eq!(result(&report, id)["status"], "pass", "{id}");
    }
    assert_eq!(
        result(&report, "manual-trace-storage-configured")["status"],
        "manual"
    );

    // No dashboard in the cluster: no-data saying where else it may be and how to attest it.
    let args = [
        "check",
        "--manifests",
        "fixtures/compliant",
        "--manifests",
        "fixtures/defects/grafana-dashboard-present.yaml",
        "--only",
        "grafana-dashboard-present",
        "--fail-on",
        "info",
        "-o",
        "json",
    ];
    let out = run(&args);
    // Nothing else selected: the run decided nothing, and says so (exit 3, not a pass).
    assert_eq!(out.status.code(), Some(3), "{}", transcript(&out));
    let notes = json(&out)["notes"].clone();
    assert!(
        notes
            .as_array()
            .unwrap()
            .iter()
            .any(|n| n["kind"] == "nothing-decided"
                && n["message"].as_str().unwrap().starts_with(
                    "nothing decided at or above info: every evaluated check there is no-data: grafana-dashboard-present ("
                )),
        "{notes}"
    );
    let r = json(&out)["results"][0].clone();
    assert_eq!(r["status"], "no-data", "{r}");
    let message = r["message"].as_str().unwrap();
    assert!(
        message.starts_with("no ConfigMap labelled grafana_dashboard")
            && message.contains("dashboards may be kept in Grafana itself")
            && message.contains("attest it (--attestations, check: grafana-dashboard-present"),
        "{message}"
    );
    // A reviewer's attestation turns it into a pass naming who and what.
    let dir = temp_dir("attest-outside");
    let file = dir.join("attestations.yaml");
    std::fs::write(
        &file,
        "- check: grafana-dashboard-present\n  by: sre@example.com\n  date: 2026-11-01\n  evidence: https://grafana.example.com/d/mlsdm\n",
    )
    .unwrap();
    let mut attested = args.to_vec();
    attested.extend(["--attestations", file.to_str().unwrap()]);
    let out = run(&attested);
    assert_eq!(out.status.code(), Some(0), "{}", transcript(&out));
    let r = json(&out)["results"][0].clone();
    assert_eq!(r["status"], "pass", "{r}");
    assert_eq!(r["attestation"]["by"], "sre@example.com");
    // A check the audit decides from the cluster is still not attestable.
    std::fs::write(
        &file,
        "- check: image-pinned\n  by: a\n  date: 2026-11-01\n  evidence: b\n",
    )
    .unwrap();
    let out = run(&attested);
    assert_eq!(out.status.code(), Some(2), "{}", transcript(&out));
    let _ = std::fs::remove_dir_all(&dir);
}

/// Review C3: evidence the cluster holds and that is wrong is a failure, never no-data: an
/// AlertmanagerConfig that routes only to e-mail, a Secret whose rotation schedule is not a
/// period. Only when none of the objects that would carry the evidence is audited is a failure
/// no-data (that case is in optional_items_are_skipped_and_outside_evidence_is_no_data).
#[test]
fn external_evidence_in_the_cluster_and_wrong_is_a_failure() {
    let dir = temp_dir("external-evidence-wrong");
    let overlay = dir.join("wrong.yaml");
    std::fs::write(
        &overlay,
        "apiVersion: monitoring.coreos.com/v1alpha1\nkind: AlertmanagerConfig\nmetadata:\n  name: mlsdm-routing\n  namespace: mlsdm-production\nspec:\n  route:\n    receiver: mail\n  receivers:\n    - name: mail\n      emailConfigs:\n        - to: team@example.com\n---\napiVersion: v1\nkind: Secret\nmetadata:\n  name: mlsdm-secrets\n  namespace: mlsdm-production\n  annotations:\n    mlsdm-audit.io/rotation-schedule: someday\ntype: Opaque\ndata:\n  api-key: a1k3cVo5bVJ0TjJ4V3BMNHZCOGNIMWRGNmdKM3NZMGVRNXVBN2lPMm5Y\n",
    )
    .unwrap();
    let out = run(&[
        "check",
        "--manifests",
        "fixtures/compliant",
        "--manifests",
        overlay.to_str().unwrap(),
        "--only",
        "alert-routing-configured,secret-rotation-schedule",
        "--fail-on",
        "low",
        "-o",
        "json",
    ]);
    assert_eq!(out.status.code(), Some(1), "{}", transcript(&out));
    let report = json(&out);
    let routing = result(&report, "alert-routing-configured");
    assert_eq!(routing["status"], "fail", "{routing}");
    assert!(
        routing["message"]
            .as_str()
            .unwrap()
            .contains("AlertmanagerConfig mlsdm-production/mlsdm-routing is audited"),
        "{routing}"
    );
    let rotation = result(&report, "secret-rotation-schedule");
    assert_eq!(rotation["status"], "fail", "{rotation}");
    assert!(
        rotation["message"]
            .as_str()
            .unwrap()
            .contains("is not a period like 90d"),
        "{rotation}"
    );
    let _ = std::fs::remove_dir_all(&dir);
}

/// Issue 13: `.mlsdm-audit.yaml` is found upward from the working directory (not above the
/// repository's top), gives defaults the command line overrides, declares requirements, and is
/// closed: an unknown field is exit 2 with file:line:column.
#[test]
fn team_config_file() {
    let dir = temp_dir("team-config");
    std::fs::create_dir_all(dir.join(".git")).unwrap();
    let sub = dir.join("deploy/k8s");
    std::fs::create_dir_all(&sub).unwrap();
    let compliant = root().join("fixtures/compliant");
    let compliant = compliant.to_str().unwrap();
    std::fs::write(
        dir.join(".mlsdm-audit.yaml"),
        "# the team's defaults\nfailOn: low\nrequirements:\n  - tracing\n",
    )
    .unwrap();
    // Found from a subdirectory: tracing is evaluated, the gate is at low.
    let out = run_in(&sub, &["check", "-f", compliant, "-o", "json"]);
    assert_eq!(out.status.code(), Some(0), "{}", transcript(&out));
    let report = json(&out);
    assert_eq!(report["target"]["failOn"], "low");
    assert_eq!(result(&report, "tracing-configured")["status"], "pass");
    assert_eq!(result(&report, "ingress-ip-allowlist")["status"], "skipped");
    // The command line wins; --no-config ignores the file.
    let out = run_in(
        &sub,
        &[
            "check",
            "-f",
            compliant,
            "-o",
            "json",
            "--fail-on",
            "critical",
        ],
    );
    assert_eq!(json(&out)["target"]["failOn"], "critical");
    let out = run_in(
        &sub,
        &["check", "-f", compliant, "-o", "json", "--no-config"],
    );
    let report = json(&out);
    assert_eq!(report["target"]["failOn"], "high");
    assert_eq!(result(&report, "tracing-configured")["status"], "skipped");
    // -v names the file it used.
    let out = run_in(&sub, &["check", "-f", compliant, "-v"]);
    assert!(
        String::from_utf8_lossy(&out.stderr).contains(&format!(
            "config: {}",
            dir.join(".mlsdm-audit.yaml").display()
        )),
        "{}",
        transcript(&out)
    );
    // Closed fields and requirement names, with their place.
    std::fs::write(
        dir.join(".mlsdm-audit.yaml"),
        "failOn: low\nrequirements:\n  - tracing\n  - tracng\n",
    )
    .unwrap();
    let out = run_in(&sub, &["check", "-f", compliant]);
    assert_eq!(out.status.code(), Some(2), "{}", transcript(&out));
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(
        stderr.contains(".mlsdm-audit.yaml:4:") && stderr.contains("tracng"),
        "{stderr}"
    );
    std::fs::write(
        dir.join(".mlsdm-audit.yaml"),
        "namespace: a\nfail-on: low\n",
    )
    .unwrap();
    let out = run_in(&sub, &["check", "-f", compliant]);
    assert_eq!(out.status.code(), Some(2));
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(
        stderr.contains(".mlsdm-audit.yaml:2:1: unknown field `fail-on`"),
        "{stderr}"
    );
    // --config names another file, relative paths in it are relative to it.
    let team = dir.join("team.yaml");
    std::fs::write(&team, "attestations: missing.yaml\n").unwrap();
    let out = run_in(
        &sub,
        &["check", "-f", compliant, "--config", team.to_str().unwrap()],
    );
    assert_eq!(out.status.code(), Some(2));
    assert!(
        String::from_utf8_lossy(&out.stderr)
            .contains(&dir.join("missing.yaml").display().to_string()),
        "{}",
        transcript(&out)
    );
    let _ = std::fs::remove_dir_all(&dir);
}

/// Review C1: without a repository the search reads only the working directory's file (a file
/// planted above, e.g. in /tmp, never applies); a file group or others may write is refused
/// (exit 2, saying why); the file that applied is named on stderr unless --quiet.
#[test]
fn config_search_stays_home_and_trusts_only_your_files() {
    use std::os::unix::fs::PermissionsExt as _;
    let dir = temp_dir("config-trust");
    let sub = dir.join("x");
    std::fs::create_dir_all(&sub).unwrap();
    let compliant = root().join("fixtures/compliant");
    let compliant = compliant.to_str().unwrap();
    let planted = dir.join(".mlsdm-audit.yaml");
    std::fs::write(
        &planted,
        "failOn: critical
",
    )
    .unwrap();
    // No .git anywhere above: the file one level up is not read.
    let out = run_in(&sub, &["check", "-f", compliant, "-o", "json"]);
    assert_eq!(out.status.code(), Some(0), "{}", transcript(&out));
    assert_eq!(json(&out)["target"]["failOn"], "high");
    assert!(!String::from_utf8_lossy(&out.stderr).contains("config:"));
    // In the working directory itself it applies, and says so without -v; --quiet silences it.
    let out = run_in(&dir, &["check", "-f", compliant, "-o", "json"]);
    assert_eq!(json(&out)["target"]["failOn"], "critical");
    assert_eq!(
        String::from_utf8_lossy(&out.stderr),
        format!("config: {}\n", planted.display())
    );
    let out = run_in(&dir, &["check", "-f", compliant, "-o", "json", "--quiet"]);
    assert!(out.stderr.is_empty(), "{}", transcript(&out));
    // Writable by group or others: refused, found or named.
    std::fs::set_permissions(&planted, std::fs::Permissions::from_mode(0o666)).unwrap();
    for extra in [None, Some(planted.to_str().unwrap())] {
        let mut args = vec!["check", "-f", compliant];
        if let Some(p) = extra {
            args.extend(["--config", p]);
        }
        let out = run_in(&dir, &args);
        assert_eq!(out.status.code(), Some(2), "{}", transcript(&out));
        let stderr = String::from_utf8_lossy(&out.stderr);
        assert!(
            stderr.contains("refusing the config file: group or others may write it (mode 666)"),
            "{stderr}"
        );
    }
    let _ = std::fs::remove_dir_all(&dir);
}

#[test]
fn config_schema_is_current() {
    let out = run(&["schema", "config"]);
    let committed = std::fs::read_to_string(root().join("schema/config.schema.json")).unwrap();
    assert_eq!(
        String::from_utf8_lossy(&out.stdout),
        committed,
        "schema/config.schema.json is stale: run `mlsdm-audit schema config > schema/config.schema.json`"
    );
    assert!(committed.contains("\"ip-allowlist\"") && committed.contains("\"failOn\""));
}

/// Issue 11: the JSON report's field names are a contract; its schema is generated from the
/// model (`mlsdm-audit schema report`) and kept current.
#[test]
fn report_schema_is_current() {
    let out = run(&["schema", "report"]);
    let committed = std::fs::read_to_string(root().join("schema/report.schema.json")).unwrap();
    assert_eq!(
        String::from_utf8_lossy(&out.stdout),
        committed,
        "schema/report.schema.json is stale: run `mlsdm-audit schema report > schema/report.schema.json`"
    );
}

/// The JSON reports the tool writes validate against schema/report.schema.json, with Python's
/// jsonschema as the independent validator (as the SARIF test does): the compliant example, the
/// defective one with waivers (waived and expired), and per-container failures (`items`). A
/// report with a status the model does not have must not validate: the schema is not vacuous.
#[test]
fn json_reports_validate_against_the_report_schema() {
    let dir = temp_dir("report-schema");
    let runs: [&[&str]; 3] = [
        &["check", "--manifests", "fixtures/compliant", "-o", "json"],
        &[
            "check",
            "--manifests",
            "fixtures/defective",
            "--waivers",
            "tests/data/waivers/valid.yaml",
            "-o",
            "json",
        ],
        &[
            "check",
            "--manifests",
            "tests/data/waivers/containers/deployment.yaml",
            "--checks",
            "tests/data/waivers/containers/checks",
            "--waivers",
            "tests/data/waivers/containers/waivers.yaml",
            "-o",
            "json",
        ],
    ];
    let mut files = Vec::new();
    for (i, args) in runs.iter().enumerate() {
        let out = run(args);
        let report = json(&out);
        assert!(!report["results"].as_array().unwrap().is_empty());
        let file = dir.join(format!("report-{i}.json"));
        std::fs::write(&file, &out.stdout).unwrap();
        files.push(file.to_str().unwrap().to_string());
    }
    let script = r"
import json, sys
from jsonschema import Draft202012Validator
schema = json.load(open(sys.argv[1]))
Draft202012Validator.check_schema(schema)
validator = Draft202012Validator(schema)
bad = 0
for path in sys.argv[2:]:
    report = json.load(open(path))
    for e in validator.iter_errors(report):
        bad += 1
        print(path, '/'.join(map(str, e.absolute_path)), e.message[:300])
# A status the model does not have, and a skip reason of an unknown kind, are rejected.
report = json.load(open(sys.argv[2]))
report['results'][0]['status'] = 'passed'
if validator.is_valid(report):
    print('a report with status passed validates'); bad += 1
report = json.load(open(sys.argv[2]))
report['results'][0]['skipReason'] = {'kind': 'because'}
if validator.is_valid(report):
    print('a report with an unknown skip reason validates'); bad += 1
sys.exit(1 if bad else 0)
";
    let python = std::env::var("MLSDM_AUDIT_PYTHON").unwrap_or_else(|_| "python3".into());
    let schema = root().join("schema/report.schema.json");
    let out = Command::new(python)
        .args(["-c", script, schema.to_str().unwrap()])
        .args(&files)
        .output()
        .expect("python3 with jsonschema is needed; scripts/test.sh installs it");
    let _ = std::fs::remove_dir_all(&dir);
    assert!(
        out.status.success(),
        "a report does not validate:\n{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
}

/// The config's Prometheus and endpoints are the deployed release's: a manifest run ignores them
/// (it would otherwise probe them, and pass checks with another release's evidence).
#[test]
fn config_endpoints_do_not_reach_manifest_runs() {
    let dir = temp_dir("config-endpoints");
    std::fs::create_dir_all(dir.join(".git")).unwrap();
    // Port 9 (discard) on 127.0.0.1: a probe there would be an error, not silence.
    std::fs::write(
        dir.join(".mlsdm-audit.yaml"),
        "prometheus: http://127.0.0.1:9\nendpoints: [http://127.0.0.1:9]\n",
    )
    .unwrap();
    let compliant = root().join("fixtures/compliant");
    let out = run_in(
        &dir,
        &["check", "-f", compliant.to_str().unwrap(), "-o", "json"],
    );
    assert_eq!(out.status.code(), Some(0), "{}", transcript(&out));
    let report = json(&out);
    assert!(
        report["target"].get("prometheus").is_none(),
        "{}",
        report["target"]
    );
    assert!(
        report["target"].get("endpoints").is_none(),
        "{}",
        report["target"]
    );
    let _ = std::fs::remove_dir_all(&dir);
}

/// Review C2: the config's Prometheus and endpoints name one deployment: with either on the
/// command line, neither comes from the file (staging's endpoint is never judged on production's
/// Prometheus, nor the reverse); with neither, both do.
#[test]
fn config_prometheus_and_endpoints_are_one_group() {
    let dir = temp_dir("config-group");
    std::fs::create_dir_all(dir.join(".git")).unwrap();
    // Port 9 (discard) on 127.0.0.1: probes fail fast; only the target is asserted.
    std::fs::write(
        dir.join(".mlsdm-audit.yaml"),
        "prometheus: http://127.0.0.1:9/prod\nendpoints: [http://127.0.0.1:9/prod]\n",
    )
    .unwrap();
    let target = |extra: &[&str], only: &str| {
        let mut args = vec![
            "check",
            "--no-cluster",
            "--only",
            only,
            "--http-timeout",
            "2s",
            "-o",
            "json",
        ];
        args.extend(extra);
        let out = run_in(&dir, &args);
        assert!(!out.stdout.is_empty(), "{}", transcript(&out));
        json(&out)["target"].clone()
    };
    let t = target(&["--endpoint", "http://127.0.0.1:9/staging"], "health-live");
    assert_eq!(t["endpoints"][0], "http://127.0.0.1:9/staging", "{t}");
    assert!(t.get("prometheus").is_none(), "{t}");
    let t = target(
        &["--prometheus", "http://127.0.0.1:9/staging"],
        "error-rate-below-1pct",
    );
    assert_eq!(t["prometheus"], "http://127.0.0.1:9/staging", "{t}");
    assert!(t.get("endpoints").is_none(), "{t}");
    let t = target(&[], "health-live");
    assert_eq!(t["prometheus"], "http://127.0.0.1:9/prod", "{t}");
    assert_eq!(t["endpoints"][0], "http://127.0.0.1:9/prod", "{t}");
    let _ = std::fs::remove_dir_all(&dir);
}

/// Review R1: with --fail-on-new, failures at or above the gate that the baseline already had are
/// said as such, never as "below" the gate (which reads as low severity).
#[test]
fn fail_on_new_verdict_counts_baseline_failures_apart() {
    let dir = temp_dir("verdict-baseline");
    let base = dir.join("base.json");
    let out = run(&[
        "check",
        "--manifests",
        "fixtures/defective",
        "-o",
        "json",
        "--output-file",
        base.to_str().unwrap(),
    ]);
    assert_eq!(out.status.code(), Some(1), "{}", transcript(&out));
    let report: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(&base).unwrap()).unwrap();
    let fails: Vec<&serde_json::Value> = report["results"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|r| r["status"] == "fail")
        .collect();
    let rank = |s: &serde_json::Value| {
        ["info", "low", "medium", "high", "critical"]
            .iter()
            .position(|x| s == x)
            .unwrap()
    };
    let above = fails.iter().filter(|r| rank(&r["severity"]) >= 3).count();
    let below = fails.len() - above;
    assert!(above > 0 && below > 0, "{above} {below}");
    let out = run(&[
        "check",
        "--manifests",
        "fixtures/defective",
        "--baseline",
        base.to_str().unwrap(),
        "--fail-on-new",
    ]);
    assert_eq!(out.status.code(), Some(0), "{}", transcript(&out));
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(
        stdout.contains(&format!(
            "PASS: nothing failed at or above high (new against the baseline) ({above} failure(s) in the baseline, {below} failure(s) below)"
        )),
        "{stdout}"
    );
    let _ = std::fs::remove_dir_all(&dir);
}

/// Review finding: `-o json --output-file` streamed the report into the file in place, where
/// every other format writes beside it and renames: a write that failed midway (a full disk,
/// here a file-size limit) left half a report where the last complete one was.
#[test]
fn a_json_report_that_cannot_be_written_whole_leaves_the_last_one() {
    let dir = temp_dir("json-whole");
    let file = dir.join("report.json");
    std::fs::write(&file, "{\"old\": \"complete previous report\"}").unwrap();
    // 64 blocks of 512 bytes: the defective release's report is larger. SIGXFSZ is ignored,
    // so the write fails with EFBIG instead of killing the process.
    let out = std::process::Command::new("sh")
        .arg("-c")
        .arg(format!(
            "trap '' XFSZ; ulimit -f 64; exec '{}' check --manifests fixtures/defective -o json --output-file '{}'",
            env!("CARGO_BIN_EXE_mlsdm-audit"),
            file.display()
        ))
        .current_dir(env!("CARGO_MANIFEST_DIR"))
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(2), "{}", transcript(&out));
    assert!(
        String::from_utf8_lossy(&out.stderr).contains("cannot write"),
        "{}",
        transcript(&out)
    );
    assert_eq!(
        std::fs::read_to_string(&file).unwrap(),
        "{\"old\": \"complete previous report\"}"
    );
    let left: Vec<_> = std::fs::read_dir(&dir).unwrap().collect();
    assert_eq!(
        left.len(),
        1,
        "the file written beside it is removed: {left:?}"
    );
    let _ = std::fs::remove_dir_all(&dir);
}

/// Review finding: a plain value kubectl reads otherwise (YAML 1.1) is refused before any Secret
/// is read, and the refusal quoted it: a Secret's `api-key: 0X5EC4E7C0DE` (a hex number to
/// kubectl) was printed in full, and as its number. The line is said, not the value.
#[test]
fn a_value_kubectl_reads_otherwise_is_refused_without_printing_it() {
    let dir = temp_dir("yaml11-secret");
    let file = dir.join("secret.yaml");
    // An anchor keeps the file off the fast path, as any manifest with one is.
    std::fs::write(
        &file,
        "apiVersion: v1\nkind: Secret\nmetadata:\n  name: s\n  labels: &l {app: mlsdm}\nstringData:\n  api-key: 0X5EC4E7C0DE\n",
    )
    .unwrap();
    for format in ["table", "json"] {
        let out = run(&["check", "--manifests", file.to_str().unwrap(), "-o", format]);
        assert_eq!(out.status.code(), Some(2), "{}", transcript(&out));
        let all = transcript(&out);
        assert!(all.contains("to kubectl (YAML 1.1)"), "{all}");
        assert!(
            !all.contains("5EC4E7C0DE") && !all.contains("407030448350"),
            "{all}"
        );
    }
    let _ = std::fs::remove_dir_all(&dir);
}

/// Review finding: validations are matched with the baseline by number, and a team that edited
/// its check (validation 1 became another rule) had a brand-new failure read as known debt:
/// `--fail-on-new` exited 0. A check whose definition is not the baseline's fails anew, with a
/// note; a baseline other users may write is refused as a waivers file is.
#[test]
fn a_redefined_check_or_a_writable_baseline_gates_anew() {
    use std::os::unix::fs::PermissionsExt as _;
    let dir = temp_dir("redefined-check");
    let check = |name: &str, first: &str, second: &str| {
        let d = dir.join(name);
        std::fs::create_dir_all(&d).unwrap();
        std::fs::write(
            d.join("team-guard.yaml"),
            format!(
                "id: team-guard\ntitle: Team guard\nsection: Pre-Deployment / Configuration / Team conventions\nseverity: high\nsource: kubernetes\nmatch:\n  kinds: [Deployment]\nvalidations:\n  - expression: {first}\n    message: first rule\n  - expression: {second}\n    message: second rule\nremediation: Follow the rules.\n"
            ),
        )
        .unwrap();
        d
    };
    let (v1, v2) = (
        check("v1", "object.spec.replicas < 0", "true"),
        check("v2", "object.spec.replicas >= 500", "true"),
    );
    let base = dir.join("base.json");
    let out = run(&[
        "check",
        "--manifests",
        "fixtures/compliant",
        "--checks",
        v1.to_str().unwrap(),
        "--only",
        "team-guard",
        "-o",
        "json",
        "--output-file",
        base.to_str().unwrap(),
    ]);
    assert_eq!(out.status.code(), Some(1), "{}", transcript(&out));
    let gate = |checks: &std::path::Path| {
        run(&[
            "check",
            "--manifests",
            "fixtures/compliant",
            "--checks",
            checks.to_str().unwrap(),
            "--only",
            "team-guard",
            "--baseline",
            base.to_str().unwrap(),
            "--fail-on-new",
            "-o",
            "json",
        ])
    };
    // The same definition: the failure is the baseline's.
    let same = gate(&v1);
    assert_eq!(same.status.code(), Some(0), "{}", transcript(&same));
    let edited = gate(&v2);
    assert_eq!(edited.status.code(), Some(1), "{}", transcript(&edited));
    let report = json(&edited);
    assert_eq!(report["results"][0]["change"], "new", "{report}");
    assert!(
        report["notes"]
            .as_array()
            .unwrap()
            .iter()
            .any(|n| n["message"]
                .as_str()
                .unwrap()
                .contains("other definitions of team-guard: their failures are new here")),
        "{report}"
    );
    std::fs::set_permissions(&base, std::fs::Permissions::from_mode(0o666)).unwrap();
    let writable = gate(&v1);
    assert_eq!(writable.status.code(), Some(2), "{}", transcript(&writable));
    assert!(
        String::from_utf8_lossy(&writable.stderr)
            .contains("refusing the baseline report: group or others may write it"),
        "{}",
        transcript(&writable)
    );
    let _ = std::fs::remove_dir_all(&dir);
}

/// Review finding: a check stopped at its first failing validation, so a container made
/// privileged, where the baseline had it only allowed to escalate, failed with the same message
/// and was read as known debt (`--fail-on-new` exited 0). Every failing validation is counted
/// and said, and a failure on a validation the baseline did not fail is new.
#[test]
fn a_second_defect_of_a_failing_check_is_new_against_the_baseline() {
    let dir = temp_dir("second-defect");
    let write = |name: &str, privileged: bool| {
        let d = dir.join(name);
        std::fs::create_dir_all(&d).unwrap();
        for entry in std::fs::read_dir(root().join("fixtures/compliant")).unwrap() {
            let path = entry.unwrap().path();
            let mut text = std::fs::read_to_string(&path).unwrap();
            if path.ends_with("20-deployment.yaml") {
                text = text.replace(
                    "allowPrivilegeEscalation: false",
                    "allowPrivilegeEscalation: true",
                );
                if privileged {
                    text = text.replace("privileged: false", "privileged: true");
                }
            }
            std::fs::write(d.join(path.file_name().unwrap()), text).unwrap();
        }
        d
    };
    let (before, after) = (write("before", false), write("after", true));
    let base = dir.join("base.json");
    let out = run(&[
        "check",
        "--manifests",
        before.to_str().unwrap(),
        "-o",
        "json",
        "--output-file",
        base.to_str().unwrap(),
    ]);
    assert_eq!(out.status.code(), Some(1), "{}", transcript(&out));
    let out = run(&[
        "check",
        "--manifests",
        after.to_str().unwrap(),
        "--baseline",
        base.to_str().unwrap(),
        "--fail-on-new",
        "-o",
        "json",
    ]);
    assert_eq!(out.status.code(), Some(1), "{}", transcript(&out));
    let report = json(&out);
    let result = report["results"]
        .as_array()
        .unwrap()
        .iter()
        .find(|r| r["id"] == "security-context-hardened" && r["status"] == "fail")
        .expect("security-context-hardened fails");
    let message = result["message"].as_str().unwrap();
    assert!(
        message.contains("allows privilege escalation")
            && message.contains("(and validation 2 of this check fails too)"),
        "{message}"
    );
    assert_eq!(result["failedValidations"], serde_json::json!([1, 2]));
    assert_eq!(result["change"], "new", "{result}");
    let _ = std::fs::remove_dir_all(&dir);
}

/// Review finding: with --fail-on-new the baseline narrowed errors too, so a check that errored
/// (here a --checks expression reading a field that is not there; a forbidden list does the
/// same) exited 0, and one that failed in the baseline and errors now read "fixed". Errors
/// always gate, and fixed is a pass.
#[test]
fn fail_on_new_never_narrows_errors() {
    let dir = temp_dir("fail-on-new-errors");
    let base = dir.join("base.json");
    let checks = dir.join("checks");
    std::fs::create_dir_all(&checks).unwrap();
    let check = std::fs::read_to_string("tests/data/checks-runtime-error/replicas-field-typo.yaml")
        .unwrap();
    // In the baseline the check fails (replicas below 30); now it reads a field that is not there.
    std::fs::write(
        checks.join("replicas-field-typo.yaml"),
        check.replace("object.spec.replicaz >= 3", "object.spec.replicas >= 30"),
    )
    .unwrap();
    let args = |extra: &[&str]| {
        let mut a = vec![
            "check",
            "--manifests",
            "fixtures/compliant",
            "--checks",
            checks.to_str().unwrap(),
            "--only",
            "replicas-field-typo,replicas-min-3",
            "-o",
            "json",
        ];
        a.extend_from_slice(extra);
        run(&a)
    };
    let out = args(&["--output-file", base.to_str().unwrap()]);
    assert_eq!(out.status.code(), Some(1), "{}", transcript(&out));
    std::fs::write(checks.join("replicas-field-typo.yaml"), &check).unwrap();
    let out = args(&["--baseline", base.to_str().unwrap(), "--fail-on-new"]);
    assert_eq!(out.status.code(), Some(3), "{}", transcript(&out));
    let report = json(&out);
    let result = report["results"]
        .as_array()
        .unwrap()
        .iter()
        .find(|r| r["id"] == "replicas-field-typo")
        .unwrap();
    assert_eq!(result["status"], "error");
    assert_eq!(result["change"], "unchanged", "{result}");
    let _ = std::fs::remove_dir_all(&dir);
}

/// Issue 13: durations are humantime's (`500ms`, `1.5s`, `1h 30m`) in every flag and check file;
/// a bare number, an unknown unit or a zero timeout is refused (exit 2) naming the flag.
#[test]
fn durations_accept_fractions_and_milliseconds() {
    let base = [
        "check",
        "--manifests",
        "fixtures/compliant",
        "--only",
        "image-pinned",
    ];
    for extra in [
        ["--timeout", "1.5m"],
        ["--render-timeout", "500ms"],
        ["--http-timeout", "1.5s"],
        ["--request-timeout", "2s 500ms"],
    ] {
        let mut a = base.to_vec();
        a.extend(extra);
        let out = run(&a);
        assert_eq!(
            out.status.code(),
            Some(0),
            "{extra:?}: {}",
            transcript(&out)
        );
    }
    for (flag, value, says) in [
        (
            "--http-timeout",
            "5",
            "expected a duration like 500ms, 1.5s, 2m or 1h30m",
        ),
        ("--timeout", "5 parsecs", "expected a duration like"),
        ("--http-timeout", "0ms", "must be longer than zero"),
    ] {
        let mut a = base.to_vec();
        a.extend([flag, value]);
        let out = run(&a);
        assert_eq!(out.status.code(), Some(2), "{flag} {value}");
        let stderr = String::from_utf8_lossy(&out.stderr);
        assert!(
            stderr.starts_with(&format!("error: {flag} {value:?}: {says}")),
            "{stderr}"
        );
    }
    // A check file's `for:` takes the same syntax.
    let dir = temp_dir("durations");
    let check = "id: fractional-window\ntitle: t\nsection: s\nseverity: low\nsource: metrics\nquery: up\nfor: 1.5m\nvalidations:\n  - expression: value == 1.0\nremediation: r\ndoc: d\n";
    std::fs::write(dir.join("fractional-window.yaml"), check).unwrap();
    let out = run(&["validate-checks", dir.to_str().unwrap()]);
    assert_eq!(out.status.code(), Some(0), "{}", transcript(&out));
    std::fs::write(
        dir.join("fractional-window.yaml"),
        check.replace("1.5m", "90"),
    )
    .unwrap();
    let out = run(&["validate-checks", dir.to_str().unwrap()]);
    assert_eq!(out.status.code(), Some(2), "{}", transcript(&out));
    assert!(
        String::from_utf8_lossy(&out.stderr)
            .contains("for: \"90\" is not a duration like 30s, 1.5s, 5m or 1h30m"),
        "{}",
        transcript(&out)
    );
    let _ = std::fs::remove_dir_all(&dir);
}

/// Regression (issue 10.15): a check's cost had no bound (a nested comprehension over a list of
/// 400 took 26 s per object), and CEL absorbs errors in `||`. Past the budget the result is
/// `error` for that object, whatever the rest of the expression says; exit 3.
#[test]
fn a_check_over_its_cost_budget_is_an_error_never_a_pass() {
    let dir = std::env::temp_dir().join(format!("mlsdm-audit-costly-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let env: Vec<String> = (0..400)
        .map(|i| format!("        - {{name: VAR_{i}, value: \"{i}\"}}"))
        .collect();
    let manifest = format!(
        "apiVersion: apps/v1\nkind: Deployment\nmetadata: {{name: wide, namespace: mlsdm}}\nspec:\n  replicas: 1\n  selector: {{matchLabels: {{app: wide}}}}\n  template:\n    metadata: {{labels: {{app: wide}}}}\n    spec:\n      containers:\n      - name: main\n        image: example/wide:1.0.0\n        env:\n{}\n",
        env.join("\n")
    );
    let file = dir.join("wide.yaml");
    std::fs::write(&file, manifest).unwrap();
    let out = run(&[
        "check",
        "--manifests",
        file.to_str().unwrap(),
        "--checks",
        "tests/data/checks-costly",
        "--only",
        "env-names-cubed,env-names-absorbed,foreach-multiplied",
        // Not an MLSDM workload: the run is about the checks' cost.
        "--allow-empty",
        "-o",
        "json",
    ]);
    std::fs::remove_dir_all(&dir).ok();
    assert_eq!(out.status.code(), Some(3), "{}", transcript(&out));
    let report = json(&out);
    for id in [
        "env-names-cubed",
        "env-names-absorbed",
        "foreach-multiplied",
    ] {
        assert_eq!(statuses(&report, id), ["error"], "{id}");
    }
    for r in report["results"].as_array().unwrap() {
        let message = r["message"].as_str().unwrap();
        assert!(message.contains("cost budget"), "{message}");
    }
}

/// `test-checks`: a team's check against its own fixtures, through the same pipeline as `check`.
#[test]
fn test_checks_runs_a_teams_fixtures() {
    let out = run(&["test-checks", "examples/team-checks"]);
    assert_eq!(out.status.code(), Some(0), "{}", transcript(&out));
    let text = String::from_utf8_lossy(&out.stdout);
    assert!(
        text.contains("3 fixture(s): 3 ok, 0 failed; 0 check(s) untested"),
        "{text}"
    );
    // A fixture the check does not treat as its directory says is a failed test, named.
    let dir = std::env::temp_dir().join(format!("mlsdm-audit-test-checks-{}", std::process::id()));
    let wrong = dir.join("tests/team-owner-label/fail");
    std::fs::create_dir_all(&wrong).unwrap();
    std::fs::copy(
        root().join("examples/team-checks/team-owner-label.yaml"),
        dir.join("team-owner-label.yaml"),
    )
    .unwrap();
    std::fs::copy(
        root().join("examples/team-checks/tests/team-owner-label/pass/labelled.yaml"),
        wrong.join("labelled.yaml"),
    )
    .unwrap();
    // And a check with no fixtures is reported untested.
    std::fs::write(
        dir.join("no-fixtures.yaml"),
        std::fs::read_to_string(root().join("examples/team-checks/team-owner-label.yaml"))
            .unwrap()
            .replace("id: team-owner-label", "id: no-fixtures"),
    )
    .unwrap();
    let out = run(&["test-checks", dir.to_str().unwrap()]);
    std::fs::remove_dir_all(&dir).ok();
    assert_eq!(out.status.code(), Some(1), "{}", transcript(&out));
    let text = String::from_utf8_lossy(&out.stdout);
    assert!(
        text.contains("FAIL team-owner-label") && text.contains("expected fail, got pass"),
        "{text}"
    );
    assert!(text.contains("untested no-fixtures"), "{text}");
    // A directory with no fixtures at all is a usage error, not a green run.
    let out = run(&["test-checks", "tests/data/checks-costly"]);
    assert_eq!(out.status.code(), Some(2), "{}", transcript(&out));
}

/// Regression: the Markdown and HTML checklists were laid out from the seed's lines only, so a
/// check the seed does not list (a team's own section, or a built-in with no checklist line,
/// such as `service-selects-workload`) vanished from the documents reviewers sign, failures
/// included. Every failed or errored check appears in both, and so do those beyond the seed.
#[test]
fn every_check_appears_in_the_checklist_documents() {
    let args = [
        "check",
        "-f",
        "fixtures/compliant",
        "-f",
        "examples/team-checks/tests/team-owner-label/fail/unlabelled.yaml",
        "--checks",
        "examples/team-checks",
    ];
    let report = json(&run(&[&args[..], &["-o", "json"]].concat()));
    let mut ids: std::collections::BTreeSet<&str> = report["results"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|r| r["status"] == "fail" || r["status"] == "error")
        .map(|r| r["id"].as_str().unwrap())
        .collect();
    assert!(ids.contains("team-owner-label"), "{ids:?}");
    ids.insert("service-selects-workload");
    for format in ["markdown", "html"] {
        let out = run(&[&args[..], &["-o", format]].concat());
        let text = String::from_utf8_lossy(&out.stdout);
        let missing: Vec<&&str> = ids.iter().filter(|id| !text.contains(**id)).collect();
        assert!(missing.is_empty(), "{format} leaves out {missing:?}");
    }
    let markdown = String::from_utf8_lossy(&run(&[&args[..], &["-o", "markdown"]].concat()).stdout)
        .into_owned();
    assert!(
        markdown.contains("### Pre-Deployment / Configuration / Team conventions\n\n- [ ] Workloads name their owning team — **open:** team-owner-label fail"),
        "{markdown}"
    );
}

/// A team's three-line check is a check: `remediation` and `doc` are optional outside the
/// built-in catalog (whose own test still requires them).
#[test]
fn a_minimal_team_check_loads_and_runs() {
    let out = run(&["validate-checks", "tests/data/checks-minimal"]);
    assert_eq!(out.status.code(), Some(0), "{}", transcript(&out));
    let out = run(&[
        "check",
        "-f",
        "fixtures/compliant",
        "--checks",
        "tests/data/checks-minimal",
        "--only",
        "three-replicas",
        "-o",
        "json",
    ]);
    assert_eq!(out.status.code(), Some(0), "{}", transcript(&out));
    assert_eq!(statuses(&json(&out), "three-replicas"), ["pass"]);
}

/// `check -o json` prints input errors as JSON diagnostics on stderr (file, line, column, code,
/// message), so a CI tool can annotate the line; the exit code is still 2 and no report is
/// printed. Without `-o json` the same error is the one `file:line:column: message` line.
#[test]
fn input_errors_are_json_diagnostics_with_output_json() {
    let bad = std::env::temp_dir().join(format!("mlsdm-audit-diag-{}.yaml", std::process::id()));
    std::fs::write(
        &bad,
        "apiVersion: v1\nkind: ConfigMap\nmetadata: [unclosed\n",
    )
    .unwrap();
    let path = bad.to_str().unwrap();
    let out = run(&["check", "--no-config", "-f", path, "-o", "json"]);
    assert_eq!(out.status.code(), Some(2), "{}", transcript(&out));
    assert!(out.stdout.is_empty(), "{}", transcript(&out));
    let err: serde_json::Value = serde_json::from_slice(&out.stderr)
        .unwrap_or_else(|e| panic!("stderr is not JSON ({e}): {}", transcript(&out)));
    let d = &err["diagnostics"][0];
    assert_eq!(d["file"], path, "{err}");
    assert_eq!(d["code"], "yaml", "{err}");
    assert!(d["line"].as_u64().is_some_and(|l| l >= 3), "{err}");
    assert!(d["column"].as_u64().is_some_and(|c| c >= 1), "{err}");
    assert!(
        d["message"]
            .as_str()
            .is_some_and(|m| m.starts_with("invalid YAML")),
        "{err}"
    );
    let text = run(&["check", "--no-config", "-f", path]);
    assert_eq!(text.status.code(), Some(2));
    let line = String::from_utf8_lossy(&text.stderr);
    let want = format!("error: {path}:{}:{}: ", d["line"], d["column"]);
    assert!(line.starts_with(&want), "{line} (want {want})");
    let _ = std::fs::remove_file(&bad);
}

/// First rule: a check naming a kind at a version the input does not hold it at said no-data
/// "no HorizontalPodAutoscaler object" although the release has one (at autoscaling/v2). The
/// objects are there and nothing was decided about them: an error naming both versions.
#[test]
fn a_kind_named_at_a_version_not_held_is_an_error_not_no_such_object() {
    let out = run(&[
        "check",
        "--manifests",
        "fixtures/compliant",
        "--checks",
        "tests/data/checks-kind-version",
        "--only",
        "hpa-v1-min-replicas",
        "-o",
        "json",
    ]);
    let report = json(&out);
    let r = &report["results"][0];
    assert_eq!(r["status"], "error", "{r}");
    let message = r["message"].as_str().unwrap();
    assert!(
        message.contains("HorizontalPodAutoscaler objects at autoscaling/v2, none at the autoscaling/v1 this check names"),
        "{message}"
    );
    assert_eq!(out.status.code(), Some(3));
}

/// Review finding: any GrafanaDashboard passed grafana-dashboard-present (node-exporter's beside
/// MLSDM). Its inline JSON is read as a labelled ConfigMap's data is; one whose JSON lives
/// elsewhere (a URL) cannot be read and still counts.
#[test]
fn a_grafana_dashboard_of_other_metrics_is_not_mlsdm_s() {
    let dir = temp_dir("grafana-dashboard");
    let deployment = dir.join("deployment.yaml");
    std::fs::copy(
        root().join("fixtures/compliant/20-deployment.yaml"),
        &deployment,
    )
    .unwrap();
    let dashboard = dir.join("dashboard.yaml");
    for (spec, want) in [
        (
            r#"{json: '{"panels": [{"targets": [{"expr": "node_load1"}]}]}'}"#,
            "fail",
        ),
        (
            r#"{json: '{"panels": [{"targets": [{"expr": "rate(mlsdm_http_requests_total[5m])"}]}]}'}"#,
            "pass",
        ),
        (
            "{url: 'https://grafana.example/dashboards/mlsdm.json'}",
            "pass",
        ),
    ] {
        std::fs::write(
            &dashboard,
            format!("apiVersion: grafana.integreatly.org/v1beta1\nkind: GrafanaDashboard\nmetadata: {{name: d, namespace: monitoring}}\nspec: {spec}\n"),
        )
        .unwrap();
        let out = run(&[
            "check",
            "-f",
            deployment.to_str().unwrap(),
            "-f",
            dashboard.to_str().unwrap(),
            "--only",
            "grafana-dashboard-present",
            "--format",
            "json",
        ]);
        let r = json(&out);
        assert_eq!(
            result(&r, "grafana-dashboard-present")["status"],
            want,
            "{spec}: {r}"
        );
    }
}

/// Review finding: one PodDisruptionBudget selecting the pods of a stable and a canary
/// Deployment (3 replicas each, minAvailable 2) passed pdb-min-available on both, while the
/// eviction API counts the six pods together and may evict every pod of either.
#[test]
fn a_budget_shared_by_two_workloads_protects_neither() {
    let dir = temp_dir("shared-pdb");
    let canary = std::fs::read_to_string(root().join("fixtures/compliant/20-deployment.yaml"))
        .unwrap()
        .replacen("name: mlsdm-api", "name: mlsdm-api-canary", 1);
    let file = dir.join("canary.yaml");
    std::fs::write(&file, canary).unwrap();
    let out = run(&[
        "check",
        "-f",
        "fixtures/compliant",
        "-f",
        file.to_str().unwrap(),
        "--only",
        "pdb-min-available",
        "--format",
        "json",
    ]);
    assert_eq!(
        out.status.code(),
        Some(1),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let r = json(&out);
    let results: Vec<&serde_json::Value> = r["results"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|r| r["id"] == "pdb-min-available")
        .collect();
    assert_eq!(results.len(), 2, "{results:#?}");
    for (result, other) in results.iter().zip(["mlsdm-api-canary", "mlsdm-api"]) {
        assert_eq!(result["status"], "fail", "{result}");
        assert!(
            result["message"].as_str().unwrap().contains(&format!(
                "also selects the pods of Deployment/mlsdm-production/{other}"
            )),
            "{result}"
        );
    }
}

/// A team check of Calico's NetworkPolicy (`crd.projectcalico.org/v1/NetworkPolicy`, a kind
/// the built-in table reads from networking.k8s.io): the manifests hold Calico's objects under
/// `NetworkPolicy.crd.projectcalico.org`, which the check never matched, and it said "no
/// NetworkPolicy object" (no-data) with a Calico policy in the input (review finding).
#[test]
fn a_team_check_of_a_well_known_kind_from_another_group_finds_its_objects() {
    let dir = temp_dir("calico");
    let checks = dir.join("checks");
    std::fs::create_dir_all(&checks).unwrap();
    std::fs::write(
        checks.join("team-calico-default-deny.yaml"),
        "id: team-calico-default-deny\ntitle: A Calico policy denies by default\nsection: Pre-Deployment / Infrastructure / Networking\nseverity: critical\nsource: kubernetes\nmatch:\n  kinds: [crd.projectcalico.org/v1/NetworkPolicy]\nvalidations:\n  - expression: has(object.spec.selector) && object.spec.selector == 'all()'\n    message: not a default deny\n",
    )
    .unwrap();
    let policy = dir.join("calico.yaml");
    let write_policy = |selector: &str| {
        std::fs::write(
            &policy,
            format!("apiVersion: crd.projectcalico.org/v1\nkind: NetworkPolicy\nmetadata: {{name: default-deny, namespace: mlsdm-production}}\nspec:\n  selector: {selector}\n  types: [Ingress]\n"),
        )
        .unwrap();
    };
    for (selector, want) in [("\"app == 'x'\"", "fail"), ("\"all()\"", "pass")] {
        write_policy(selector);
        let out = run(&[
            "check",
            "-f",
            "fixtures/compliant",
            "-f",
            policy.to_str().unwrap(),
            "--checks",
            checks.to_str().unwrap(),
            "--only",
            "team-calico-default-deny",
            "--format",
            "json",
        ]);
        let r = json(&out);
        let result = result(&r, "team-calico-default-deny");
        assert_eq!(result["status"], want, "{selector}: {result}");
        assert_eq!(result["object"]["name"], "default-deny", "{result}");
    }
}

/// Review findings: a VulnerabilityReport whose summary has no `criticalCount` passed
/// vulnerability-scan-clean (a critical check) on a scan it could not read; and the check judged
/// whichever reports the namespace held, not those of the images that run.
#[test]
fn the_running_images_are_judged_by_their_own_vulnerability_reports() {
    let dir = temp_dir("vuln-count");
    let workload =
        std::fs::read_to_string(root().join("tests/data/envfrom-unresolved/deployment.yaml"))
            .unwrap()
            .replace(
                "        envFrom:\n        - secretRef: {name: mlsdm-extra-env}\n",
                "",
            );
    // A report as trivy-operator writes it: the image in its parts, the container as a label.
    let report = |container: &str, image: &str, summary: &str| {
        let (repository, tag) = image.split_once(':').unwrap();
        format!(
            "apiVersion: aquasecurity.github.io/v1alpha1\nkind: VulnerabilityReport\nmetadata:\n  name: r-{container}-{tag}\n  namespace: mlsdm-production\n  labels: {{trivy-operator.container.name: {container}}}\nreport:\n  registry: {{server: ghcr.io}}\n  artifact: {{repository: {repository}, tag: '{tag}'}}\n  summary: {summary}\n"
        )
    };
    let running = "neuron7x/mlsdm-neuro-engine:1.0.0";
    let clean = "{criticalCount: 0, highCount: 3}";
    for (reports, want, says) in [
        (
            vec![("mlsdm-api", running, "{highCount: 3}")],
            "error",
            "has no criticalCount",
        ),
        (vec![("mlsdm-api", running, clean)], "pass", ""),
        (
            vec![("mlsdm-api", running, "{criticalCount: 2}")],
            "fail",
            "2 critical vulnerabilities",
        ),
        // Review finding: the check ran on whichever reports the namespace held, and a clean
        // report of another image, or of the image the release replaces, passed it.
        (
            vec![("redis", "bitnami/redis:7.2", clean)],
            "fail",
            "no VulnerabilityReport scanned ghcr.io/neuron7x/mlsdm-neuro-engine:1.0.0",
        ),
        (
            vec![("mlsdm-api", "neuron7x/mlsdm-neuro-engine:0.9.0", clean)],
            "fail",
            "no VulnerabilityReport scanned",
        ),
        // The same image scanned for another container is that container's report.
        (
            vec![("sidecar", running, clean)],
            "fail",
            "no VulnerabilityReport scanned",
        ),
        // Every report of the image counts: one clean and one not is not clean.
        (
            vec![
                ("mlsdm-api", running, clean),
                ("mlsdm-api", running, "{criticalCount: 1}"),
            ],
            "fail",
            "1 critical vulnerabilities",
        ),
    ] {
        let file = dir.join("all.yaml");
        let reports: Vec<String> = reports
            .iter()
            .enumerate()
            .map(|(i, (c, image, summary))| {
                report(c, image, summary).replace("name: r-", &format!("name: r{i}-"))
            })
            .collect();
        let summary = format!("{reports:?}");
        std::fs::write(&file, format!("{workload}\n---\n{}", reports.join("---\n"))).unwrap();
        let out = run(&[
            "check",
            "-f",
            file.to_str().unwrap(),
            "--only",
            "vulnerability-scan-clean",
            "--format",
            "json",
        ]);
        let r = json(&out);
        let result = result(&r, "vulnerability-scan-clean");
        assert_eq!(result["status"], want, "{summary}: {result}");
        assert!(
            result["message"].as_str().unwrap().contains(says),
            "{summary}: {result}"
        );
    }
}

/// `--prometheus-selector` is label matchers for --prometheus: without it, or not matchers, the
/// run does not start (exit 2), before any query is sent.
#[test]
fn a_prometheus_selector_is_checked_before_the_run() {
    for (args, says) in [
        (
            vec!["--prometheus-selector", r#"{namespace="x"}"#],
            "--prometheus-selector scopes the queries sent to --prometheus: give --prometheus too",
        ),
        (
            vec![
                "--prometheus",
                "http://127.0.0.1:9",
                "--prometheus-selector",
                "namespace=x",
            ],
            "--prometheus-selector \"namespace=x\": not a set of label matchers",
        ),
        (
            vec![
                "--prometheus",
                "http://127.0.0.1:9",
                "--prometheus-selector",
                r#"up{namespace="x"}"#,
            ],
            "a scope names labels, not a metric",
        ),
    ] {
        let mut all = vec!["check", "--no-cluster", "--endpoint", "http://127.0.0.1:9"];
        all.extend(args);
        let out = run(&all);
        assert_eq!(out.status.code(), Some(2), "{}", transcript(&out));
        assert!(
            String::from_utf8_lossy(&out.stderr).contains(says),
            "{}",
            transcript(&out)
        );
    }
}

/// Review finding: API_KEY from a Secret reference marked `optional: true` passed
/// api-key-configured (critical) when the Secret, or its key, does not exist: Kubernetes then
/// starts MLSDM without API_KEY, and authentication is off. A Secret the manifests do not hold
/// may be created elsewhere (that is what `optional` is for): undecided; a key the Secret does
/// not have is unset, a failure.
#[test]
fn an_optional_api_key_reference_to_nothing_leaves_it_unset() {
    let dir = temp_dir("optional-api-key");
    let original =
        std::fs::read_to_string(root().join("fixtures/compliant/20-deployment.yaml")).unwrap();
    let reference = "                  name: mlsdm-secrets\n                  key: api-key\n";
    assert!(original.contains(reference), "the fixture changed");
    for (name, key, want, says) in [
        (
            "mlsdm-api-key",
            "api-key",
            "error",
            "API_KEY comes from optional Secret mlsdm-api-key, which is not among the audited objects: where it does not exist, Kubernetes leaves API_KEY unset",
        ),
        (
            "mlsdm-secrets",
            "no-such-key",
            "fail",
            "(optional Secret mlsdm-secrets has no key no-such-key, so Kubernetes leaves it unset)",
        ),
        ("mlsdm-secrets", "api-key", "pass", ""),
    ] {
        let release = dir.join(name).join(key);
        std::fs::create_dir_all(&release).unwrap();
        for f in std::fs::read_dir(root().join("fixtures/compliant")).unwrap() {
            let f = f.unwrap().path();
            std::fs::copy(&f, release.join(f.file_name().unwrap())).unwrap();
        }
        std::fs::write(
            release.join("20-deployment.yaml"),
            original.replace(
                reference,
                &format!(
                    "                  name: {name}\n                  key: {key}\n                  optional: true\n"
                ),
            ),
        )
        .unwrap();
        let out = run(&[
            "check",
            "-f",
            release.to_str().unwrap(),
            "--only",
            "api-key-configured",
            "--format",
            "json",
        ]);
        let r = json(&out)["results"][0].clone();
        assert_eq!(r["status"], want, "{name}/{key}: {r}");
        assert!(r["message"].as_str().unwrap().contains(says), "{r}");
    }
}

/// The compliant example with `edits` (file, text, replacement) applied, audited for `id`:
/// (status, message) of its first result.
fn compliant_with(name: &str, edits: &[(&str, &str, &str)], id: &str) -> (String, String) {
    compliant_with_args(name, edits, id, &[])
}

/// A copy of fixtures/compliant in a temporary directory, with each `(file, from, to)` edit made
/// once.
fn compliant_copy(name: &str, edits: &[(&str, &str, &str)]) -> PathBuf {
    let dir = temp_dir(name);
    for f in std::fs::read_dir(root().join("fixtures/compliant")).unwrap() {
        let f = f.unwrap().path();
        std::fs::copy(&f, dir.join(f.file_name().unwrap())).unwrap();
    }
    for (file, from, to) in edits {
        let path = dir.join(file);
        let text = std::fs::read_to_string(&path).unwrap();
        assert!(text.contains(from), "{file} no longer holds {from:?}");
        std::fs::write(&path, text.replacen(from, to, 1)).unwrap();
    }
    dir
}

/// [`compliant_with`], with `extra` arguments to `check`.
fn compliant_with_args(
    name: &str,
    edits: &[(&str, &str, &str)],
    id: &str,
    extra: &[&str],
) -> (String, String) {
    let dir = compliant_copy(name, edits);
    let mut args = vec![
        "check",
        "-f",
        dir.to_str().unwrap(),
        "--only",
        id,
        "--format",
        "json",
    ];
    args.extend(extra);
    let out = run(&args);
    let r = json(&out)["results"][0].clone();
    (
        r["status"].as_str().unwrap().to_string(),
        r["message"].as_str().unwrap().to_string(),
    )
}

/// An Argo Rollout with `workloadRef` runs its Deployment's pod template: the checks read that
/// template (every check of the Rollout was an error, and api-key-configured failed it).
#[test]
fn a_rollout_with_a_workload_ref_is_judged_on_the_deployments_template() {
    let dir = compliant_copy("workload-ref", &[]);
    std::fs::write(
        dir.join("25-rollout.yaml"),
        "apiVersion: argoproj.io/v1alpha1\nkind: Rollout\nmetadata:\n  name: mlsdm-api-rollout\n  namespace: mlsdm-production\nspec:\n  replicas: 3\n  workloadRef:\n    apiVersion: apps/v1\n    kind: Deployment\n    name: mlsdm-api\n  strategy:\n    canary:\n      maxSurge: 1\n      maxUnavailable: 0\n",
    )
    .unwrap();
    let report = json(&run(&[
        "check",
        "--no-config",
        "-f",
        dir.to_str().unwrap(),
        "--format",
        "json",
    ]));
    let of_rollout: Vec<(String, String)> = report["results"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|r| r["object"]["name"] == "mlsdm-api-rollout")
        .map(|r| {
            (
                r["id"].as_str().unwrap().to_string(),
                r["status"].as_str().unwrap().to_string(),
            )
        })
        .collect();
    assert!(
        of_rollout
            .iter()
            .any(|(id, st)| id == "probe-liveness-path" && st == "pass"),
        "{of_rollout:?}"
    );
    assert!(
        !of_rollout.iter().any(|(_, st)| st == "error"),
        "{of_rollout:?}"
    );
    assert!(
        of_rollout
            .iter()
            .any(|(id, st)| id == "api-key-configured" && st == "pass"),
        "{of_rollout:?}"
    );
    // The Deployment scaled to zero, as Argo's docs recommend, is the Rollout's template and
    // no workload of its own (it failed replicas-min-3, so such a release could never pass).
    let text = std::fs::read_to_string(dir.join("20-deployment.yaml")).unwrap();
    std::fs::write(
        dir.join("20-deployment.yaml"),
        text.replacen("  replicas: 3\n", "  replicas: 0\n", 1),
    )
    .unwrap();
    let report = json(&run(&[
        "check",
        "--no-config",
        "-f",
        dir.to_str().unwrap(),
        "--only",
        "replicas-min-3",
        "--format",
        "json",
    ]));
    let judged: Vec<&str> = report["results"]
        .as_array()
        .unwrap()
        .iter()
        .map(|r| r["object"]["name"].as_str().unwrap_or_default())
        .collect();
    assert_eq!(judged, ["mlsdm-api-rollout"], "{report}");
}

/// CONFIG_PATH on a projected volume (a ConfigMap source beside others) is the ConfigMap's file:
/// read only as a plain `configMap` volume, it was "not on a ConfigMap volume mount", a critical
/// false failure.
#[test]
fn a_config_file_on_a_projected_volume_is_read() {
    let (status, msg) = compliant_with(
        "projected-config",
        &[(
            "20-deployment.yaml",
            "          configMap:\n            name: mlsdm-config\n",
            "          projected:\n            sources:\n              - secret:\n                  name: mlsdm-secrets\n                  optional: true\n              - configMap:\n                  name: mlsdm-dashboard\n              - configMap:\n                  name: mlsdm-config\n",
        )],
        "mlsdm-config-valid",
    );
    assert_eq!(status, "pass", "{msg}");
}

/// The kubelet gives every pod a variable per Service of its namespace (`enableServiceLinks`,
/// on by default): a Service named `mlsdm-api` gives `MLSDM_API_SERVICE_HOST`, which MLSDM merges
/// into its config and refuses to start on. The compliant example passed and crash-looped.
#[test]
fn service_links_that_mlsdm_merges_fail() {
    let links = "      enableServiceLinks: false\n";
    let (status, msg) = compliant_with(
        "service-links",
        &[("20-deployment.yaml", links, "")],
        "mlsdm-env-overrides-valid",
    );
    assert_eq!(status, "fail", "{msg}");
    assert!(
        msg.starts_with("Service mlsdm-api gives the pods MLSDM_API_SERVICE_HOST and 7 more service-link variables, which MLSDM merges"),
        "{msg}"
    );
    // A headless Service gives no links; a Service of another name gives none MLSDM reads.
    for (from, to) in [
        (
            "  name: mlsdm-api\n  namespace: mlsdm-production\n",
            "  name: api\n  namespace: mlsdm-production\n",
        ),
        ("\nspec:\n", "\nspec:\n  clusterIP: None\n"),
    ] {
        let (status, msg) = compliant_with(
            "service-links-other",
            &[
                ("20-deployment.yaml", links, ""),
                ("30-service.yaml", from, to),
            ],
            "mlsdm-env-overrides-valid",
        );
        assert_eq!(status, "pass", "{msg}");
    }
}

/// A credential in a probe's path, an annotation or a command line is masked in every output
/// (the probe checks print the path), and a query string does not make the probe path wrong
/// (the kubelet's request is served by the same route).
#[test]
fn credentials_in_probe_paths_and_one_line_json_are_judged_and_masked() {
    let key = "Zq8kP2vLx9mW4rT7yU3iO5pA";
    let dir = compliant_copy(
        "probe-path-key",
        &[
            (
                "20-deployment.yaml",
                "path: /health/liveness\n",
                &format!("path: /health/liveness?api_key={key}\n"),
            ),
            (
                "10-config.yaml",
                "\ndata:\n",
                "\ndata:\n  settings.json: '{\"openai\":{\"api_key\":\"Nq7Lp2Xk9Wm4Rt8Z\"}}'\n",
            ),
        ],
    );
    let out = run(&[
        "check",
        "--no-config",
        "-f",
        dir.to_str().unwrap(),
        "--show",
        "all",
    ]);
    let all = transcript(&out);
    assert!(!all.contains(key), "{all}");
    let report = json(&run(&[
        "check",
        "--no-config",
        "-f",
        dir.to_str().unwrap(),
        "--format",
        "json",
    ]));
    let status = |id: &str| -> String {
        report["results"]
            .as_array()
            .unwrap()
            .iter()
            .filter(|r| r["id"] == id)
            .map(|r| r["status"].as_str().unwrap().to_string())
            .collect::<Vec<_>>()
            .join(",")
    };
    assert!(
        status("probe-liveness-path").starts_with("pass"),
        "{report}"
    );
    assert!(
        status("configmap-no-credentials").contains("fail"),
        "{report}"
    );
    assert!(!report.to_string().contains("Nq7Lp2Xk9Wm4Rt8Z"));
}

/// An alert on a series MLSDM 1.2.0 declares but never feeds can never fire: upstream's own
/// error-rate and latency alerts read only such series, and prometheus-rules-present passed them.
/// One live series in the expression (the emergency gauge) is an alert that can fire.
#[test]
fn alerts_on_series_mlsdm_never_feeds_fail() {
    let error_rate = r#"sum(rate(nginx_ingress_controller_requests{ingress="mlsdm-api",status=~"5.."}[5m])) / sum(rate(nginx_ingress_controller_requests{ingress="mlsdm-api"}[5m]))"#;
    let dead = r#"sum(rate(mlsdm_http_requests_total{status=~"5.."}[5m])) / sum(rate(mlsdm_http_requests_total[5m]))"#;
    let (status, msg) = compliant_with(
        "dead-alert",
        &[("50-monitoring.yaml", error_rate, dead)],
        "prometheus-rules-present",
    );
    assert_eq!(status, "fail", "{msg}");
    assert!(msg.ends_with("can never fire: MLSDMHighErrorRate"), "{msg}");
    let (status, msg) = compliant_with(
        "live-alert",
        &[(
            "50-monitoring.yaml",
            error_rate,
            "rate(mlsdm_errors_total[5m]) > 0 or mlsdm_emergency_shutdown_active > 0",
        )],
        "prometheus-rules-present",
    );
    assert_eq!(status, "pass", "{msg}");
}

/// Credentials in the forms a manifest can hide them in are judged and never printed, even by a
/// check written to print every value: a value assembled by `$(VAR)` expansion, one an `envFrom`
/// prefix turns into API_KEY from a ConfigMap (api-key-from-secret passed), Secret data and
/// binaryData wrapped as `base64` writes them (read as no credential and not masked), a
/// password percent-encoded in a URL, and passwords in a URL, a config file or a connection
/// string (ADO.NET, JDBC properties) a ConfigMap holds (configmap-no-credentials passed). Each was printed in every format before.
#[test]
fn credentials_in_every_form_are_judged_and_masked() {
    let secrets = [
        "Qm7Xv2Lp9Rt4Zs8W",
        "Kx8pQ-hunter2",
        "Wr4ppedDbPassw0rd",
        "Sup3r%40Secret",
        "Pg5ecretPw77",
        "Pg5ecretIniPw88",
        "AdoN3tPw99",
        "JdbcPw1077",
        "ghp_Zx9Q",
        "Z2hwX1p4",
    ];
    let audit = |extra: &[&str]| {
        let mut args = vec![
            "check",
            "--no-config",
            "-f",
            "fixtures/compliant",
            "-f",
            "tests/data/credential-forms",
        ];
        args.extend_from_slice(extra);
        run(&args)
    };
    for format in ["json", "table", "markdown", "sarif"] {
        let out = audit(&[
            "--checks",
            "tests/data/checks-dump-values",
            "--format",
            format,
        ]);
        let all = format!(
            "{}{}",
            String::from_utf8_lossy(&out.stdout),
            String::from_utf8_lossy(&out.stderr)
        );
        for s in secrets {
            assert!(!all.contains(s), "{format} prints {s}: {all}");
        }
        // The checklist (markdown) names items, not messages.
        assert!(
            format == "markdown" || all.contains("<redacted>"),
            "{format}: {all}"
        );
    }
    let out = audit(&[
        "--only",
        "api-key-from-secret,configmap-no-credentials",
        "--format",
        "json",
    ]);
    let report = json(&out);
    let message = |id: &str, name: &str| -> (String, String) {
        let r = report["results"]
            .as_array()
            .unwrap()
            .iter()
            .find(|r| r["id"] == id && r["object"]["name"] == name)
            .unwrap_or_else(|| panic!("{id} {name}"));
        (
            r["status"].as_str().unwrap().to_string(),
            r["message"].as_str().unwrap().to_string(),
        )
    };
    let (status, msg) = message("api-key-from-secret", "creds");
    assert_eq!(status, "fail", "{msg}");
    assert!(
        msg.contains("env API_KEY comes from ConfigMap api-env through envFrom"),
        "{msg}"
    );
    let (status, msg) = message("configmap-no-credentials", "app-settings");
    assert_eq!(status, "fail", "{msg}");
    for key in [
        "DATABASE_URL",
        "settings.ini",
        "token.txt",
        "SQL_CONNECTION",
        "JDBC_URL",
    ] {
        assert!(msg.contains(&format!("key {key} ")), "{key}: {msg}");
    }
    assert!(!msg.contains("key note "), "{msg}");
}

/// A release being torn down (a namespace terminating, a PDB with a deletionTimestamp) is read
/// back whole until its finalizers finish: every check passed it.
#[test]
fn a_release_being_deleted_fails() {
    let dir = temp_dir("being-deleted");
    let at = "  deletionTimestamp: \"2026-11-30T10:00:00Z\"\n";
    for (name, doc, says) in [
        (
            "namespace",
            format!(
                "apiVersion: v1\nkind: Namespace\nmetadata:\n  name: mlsdm-production\n{at}status: {{phase: Terminating}}\n"
            ),
            "namespace mlsdm-production is terminating",
        ),
        (
            "pdb",
            format!(
                "apiVersion: policy/v1\nkind: PodDisruptionBudget\nmetadata:\n  name: mlsdm-api-pdb\n  namespace: mlsdm-production\n{at}spec:\n  minAvailable: 2\n  selector: {{matchLabels: {{app: mlsdm-api}}}}\n"
            ),
            "being deleted: PodDisruptionBudget mlsdm-api-pdb",
        ),
    ] {
        let file = dir.join(format!("{name}.yaml"));
        std::fs::write(&file, doc).unwrap();
        let out = run(&[
            "check",
            "--no-config",
            "-f",
            "fixtures/compliant",
            "-f",
            "fixtures/live/healthy.yaml",
            "-f",
            file.to_str().unwrap(),
            "--only",
            "release-not-being-deleted",
            "--format",
            "json",
        ]);
        assert_eq!(out.status.code(), Some(1), "{name}: {}", transcript(&out));
        let r = &json(&out)["results"][0];
        assert_eq!(r["status"], "fail", "{name}: {r}");
        assert!(r["message"].as_str().unwrap().contains(says), "{name}: {r}");
    }
}

/// Every input named is part of the release: one that gives no object next to one that gives
/// the release (a directory of other YAML, an overlay that renders nothing) was audited as if
/// the release were the others alone, and passed.
#[test]
fn an_input_that_gives_nothing_is_not_audited_silently() {
    let dir = temp_dir("empty-input");
    std::fs::write(dir.join("values.yaml"), "replicas: 3\n").unwrap();
    let audit = |extra: &[&str]| {
        let mut args = vec!["check", "--no-config", "-f", "fixtures/compliant", "-f"];
        args.extend_from_slice(&[dir.to_str().unwrap(), "--format", "json"]);
        args.extend_from_slice(extra);
        run(&args)
    };
    let out = audit(&[]);
    assert_eq!(out.status.code(), Some(3), "{}", transcript(&out));
    let report = json(&out);
    assert!(
        report["notes"]
            .as_array()
            .unwrap()
            .iter()
            .any(|n| n["kind"] == "empty-input"
                && n["message"]
                    .as_str()
                    .unwrap()
                    .contains(&format!("nothing audited from {}", dir.display()))),
        "{report}"
    );
    let out = audit(&["--allow-empty"]);
    assert_eq!(out.status.code(), Some(0), "{}", transcript(&out));
}

/// Text from the manifests reaches terminals, logs, Markdown viewers and XML parsers inert:
/// an escape sequence in a container name cleared the screen over the failure table and drew a
/// PASS; `\\<img>` in Markdown became an escaped backslash before a live tag; U+FFFF made the
/// JUnit file unreadable to strict parsers; a newline in a file name started a line of its own
/// on stderr (a CI workflow command such as `::add-mask::`).
#[test]
fn input_text_is_inert_in_every_output() {
    let name = "mlsdm-api\\e[2J\\e[H\\\\<img src=x>\\uFFFF\\u202E";
    let dir = compliant_copy(
        "inert",
        &[
            (
                "20-deployment.yaml",
                "        - name: mlsdm-api\n",
                &format!("        - name: \"{name}\"\n"),
            ),
            (
                "20-deployment.yaml",
                "readOnlyRootFilesystem: true",
                "readOnlyRootFilesystem: false",
            ),
        ],
    );
    std::fs::write(dir.join("x\n::add-mask::FAIL\n.yaml"), "replicas: 3\n").unwrap();
    // An input that gives nothing: its name is in the verdict line (ERROR: nothing audited from).
    let empty = temp_dir("inert-empty").join("zz\u{1b}[2J\u{1b}[HPASS.yaml");
    std::fs::write(&empty, "# nothing\n").unwrap();
    let audit = |format: &str| {
        run(&[
            "check",
            "--no-config",
            "-f",
            empty.to_str().unwrap(),
            "-f",
            dir.to_str().unwrap(),
            "--only",
            "security-read-only-root-fs,security-run-as-non-root,probe-liveness-path",
            "--format",
            format,
        ])
    };
    for format in ["table", "markdown", "junit", "html", "sarif", "json"] {
        let out = audit(format);
        let stdout = String::from_utf8_lossy(&out.stdout);
        let stderr = String::from_utf8_lossy(&out.stderr);
        for (what, text) in [("stdout", &stdout), ("stderr", &stderr)] {
            assert!(!text.contains('\u{1b}'), "{format} {what}: {text}");
            // JSON and SARIF carry them as data, where they are valid and move no cursor.
            let data = ["json", "sarif"].contains(&format) && what == "stdout";
            assert!(
                data || !text.contains(['\u{FFFF}', '\u{202E}']),
                "{format} {what}: {text}"
            );
            assert!(
                !text.lines().any(|l| l.starts_with("::")),
                "{format} {what}: {text}"
            );
        }
        // The failure names the container, inert.
        if format == "markdown" {
            assert!(stdout.contains("H\\\\\\<img src=x\\>"), "{stdout}");
        }
        if format == "table" {
            assert!(stdout.contains("mlsdm-api\\u{1b}[2J"), "{stdout}");
        }
    }
}

/// A saved report is rendered from its results, or refused: an edited `summary` said "0 fail"
/// above the failures (now a report that does not hold together, refused as `verify` refuses
/// it), and an edited `generatedAt` wrote a PASS line and ticked boxes into the Markdown.
#[test]
fn a_saved_report_is_rendered_from_its_results() {
    let out = run(&["check", "-f", "fixtures/defective", "--format", "json"]);
    assert_eq!(out.status.code(), Some(1));
    let mut report = json(&out);
    let fails = report["summary"]["fail"].as_u64().unwrap();
    let passes = report["summary"]["pass"].as_u64().unwrap();
    assert!(fails > 0);
    let dir = temp_dir("tampered");
    let file = dir.join("report.json");
    report["generatedAt"] = "now\n\n**verdict: PASS**\n- [x] Everything <!--".into();
    std::fs::write(&file, report.to_string()).unwrap();
    // Rendering is not the gate (`check` and `verify` are): a pipeline renders a failed audit.
    let out = run(&["report", file.to_str().unwrap(), "-o", "table"]);
    assert_eq!(out.status.code(), Some(0), "{}", transcript(&out));
    assert!(
        String::from_utf8_lossy(&out.stdout).starts_with(&format!("{passes} pass, {fails} fail")),
        "{}",
        transcript(&out)
    );
    let out = run(&["report", file.to_str().unwrap(), "-o", "markdown"]);
    let md = String::from_utf8_lossy(&out.stdout);
    assert!(!md.contains("\n- [x] Everything"), "{md}");
    assert!(md.contains("Everything \\<!--"), "{md}");
    report["summary"]["fail"] = 0.into();
    std::fs::write(&file, report.to_string()).unwrap();
    let out = run(&["report", file.to_str().unwrap(), "-o", "table"]);
    assert_exit_says(&out, 2, "the report does not hold together");
}

/// A PodDisruptionBudget's empty selector selects every pod of its namespace in policy/v1 and
/// none in policy/v1beta1: read as none in both, a v1 PDB with `selector: {}` failed.
#[test]
fn an_empty_pdb_selector_follows_its_api_version() {
    let pdb = "  minAvailable: 2\n  selector:\n    matchLabels:\n      app: mlsdm-api\n";
    let empty = "  minAvailable: 2\n  selector: {}\n";
    let (status, msg) = compliant_with(
        "pdb-empty-v1",
        &[("30-service.yaml", pdb, empty)],
        "pdb-min-available",
    );
    assert_eq!(status, "pass", "{msg}");
    let (status, msg) = compliant_with(
        "pdb-empty-v1beta1",
        &[
            ("30-service.yaml", pdb, empty),
            (
                "30-service.yaml",
                "apiVersion: policy/v1\n",
                "apiVersion: policy/v1beta1\n",
            ),
        ],
        "pdb-min-available",
    );
    assert_eq!(status, "fail", "{msg}");
    // A null selector (`selector:` with no value) selects nothing in either version.
    let (status, msg) = compliant_with(
        "pdb-null",
        &[("30-service.yaml", pdb, "  minAvailable: 2\n  selector:\n")],
        "pdb-min-available",
    );
    assert_eq!(status, "fail", "{msg}");
}

/// Configuration that names credentials without holding one passes: Secret names, paths, code
/// that reads the environment, URLs whose `@` is not user info, `max_tokens`, and variables
/// an envFrom prefix names `TOKENIZER_*`. Each was a critical false alarm in review.
#[test]
fn ordinary_configuration_is_not_a_credential() {
    let out = run(&[
        "check",
        "--no-config",
        "-f",
        "fixtures/compliant",
        "-f",
        "tests/data/ordinary-config",
        "--only",
        "configmap-no-credentials,api-key-from-secret",
        "--format",
        "json",
    ]);
    let report = json(&out);
    let failing: Vec<&serde_json::Value> = report["results"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|r| r["status"] == "fail" || r["status"] == "error")
        .collect();
    assert!(failing.is_empty(), "{failing:#?}");
    assert_eq!(out.status.code(), Some(0), "{}", transcript(&out));
}

/// A team's check that expects a 404 (a route that must stay off) could never pass without
/// `mayBeAbsent`, and said nothing of why: it is refused when loaded, naming the field. A
/// kubeconfig whose user is the removed gcp auth-provider is refused as kubectl refuses it
/// (kube-rs ran its cmd-path without a bound).
#[test]
fn checks_and_kubeconfigs_that_cannot_work_are_refused_up_front() {
    let dir = temp_dir("expects-404");
    let check = "id: docs-off\ntitle: Docs are off\nsection: Pre-Deployment / Security / API Security\nseverity: high\nsource: http\nrequest:\n  path: /docs\nvalidations:\n  - expression: response.status == 404\n";
    std::fs::write(dir.join("docs-off.yaml"), check).unwrap();
    let out = run(&["validate-checks", dir.to_str().unwrap()]);
    assert_exit_says(&out, 2, "unless request.mayBeAbsent is true");
    std::fs::write(
        dir.join("docs-off.yaml"),
        check.replace("  path: /docs\n", "  path: /docs\n  mayBeAbsent: true\n"),
    )
    .unwrap();
    let out = run(&["validate-checks", dir.to_str().unwrap()]);
    assert_eq!(out.status.code(), Some(0), "{}", transcript(&out));

    let kc = dir.join("kubeconfig");
    std::fs::write(&kc, "apiVersion: v1\nkind: Config\nclusters:\n- name: c\n  cluster: {server: 'https://127.0.0.1:9'}\ncontexts:\n- name: c\n  context: {cluster: c, user: u}\ncurrent-context: c\nusers:\n- name: u\n  user:\n    auth-provider:\n      name: gcp\n      config: {cmd-path: /bin/sleep, cmd-args: '600'}\n").unwrap();
    let out = run(&["check", "--kubeconfig", kc.to_str().unwrap()]);
    assert_exit_says(
        &out,
        2,
        "the gcp auth-provider was removed from Kubernetes clients in 1.26",
    );
}

/// Review finding: the walk's reading of kustomizations let through what kustomize deploys
/// differently: keys in another case (kustomize matches them as Go's JSON decoding does),
/// fields it did not list (`imageTags`, `helmChartInflationGenerator`), an unlisted file in a
/// subfolder without a kustomization of its own, and a kustomization beside files given one by
/// one. Each is an unrendered note (exit 3), never a pass of the files as written.
#[test]
fn every_way_a_kustomization_changes_the_release_is_said() {
    let dir = temp_dir("kustomizations");
    let files: Vec<String> = std::fs::read_dir(root().join("fixtures/compliant"))
        .unwrap()
        .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
        .collect();
    let release = |name: &str, kustomization: &str, move_to_extra: Option<&str>| {
        let d = dir.join(name);
        std::fs::create_dir_all(d.join("extra")).unwrap();
        for f in &files {
            let to = if Some(f.as_str()) == move_to_extra {
                d.join("extra").join(f)
            } else {
                d.join(f)
            };
            std::fs::copy(root().join("fixtures/compliant").join(f), to).unwrap();
        }
        let listed: Vec<&String> = files
            .iter()
            .filter(|f| Some(f.as_str()) != move_to_extra)
            .collect();
        let resources: String = listed.iter().map(|f| ["  - ", f, "\n"].concat()).collect();
        std::fs::write(
            d.join("kustomization.yaml"),
            format!("resources:\n{resources}{kustomization}"),
        )
        .unwrap();
        d
    };
    let cases = [
        (
            release(
                "case",
                "Images:\n  - name: ghcr.io/neuron7x/mlsdm-neuro-engine\n    newTag: latest\n",
                None,
            ),
            "changes what it lists (images)",
        ),
        (
            release(
                "tags",
                "imageTags:\n  - name: ghcr.io/neuron7x/mlsdm-neuro-engine\n    newTag: latest\n",
                None,
            ),
            "changes what it lists (imageTags)",
        ),
        (
            release("extra", "", Some("40-network.yaml")),
            "does not list",
        ),
    ];
    for (d, says) in &cases {
        let out = run(&["check", "--no-config", "-f", d.to_str().unwrap()]);
        assert_exit_says(&out, 3, says);
    }
    // The same kustomization beside files given one by one.
    let d = &cases[0].0;
    let mut args = vec!["check".to_string(), "--no-config".to_string()];
    for f in &files {
        args.push("-f".into());
        args.push(d.join(f).display().to_string());
    }
    let args: Vec<&str> = args.iter().map(String::as_str).collect();
    assert_exit_says(&run(&args), 3, "changes what it lists (images)");
    // Second review: the exact key is the one kustomize reads (`resources:` leaving a file out
    // beside `Resources:` listing it); a file in a subfolder that gives no object (a dashboard's
    // JSON) is no object audited outside the release; and a kustomization that only lists,
    // beside a few of its files given one by one, says nothing of the files not given.
    let both = release("both", "", None);
    let text = std::fs::read_to_string(both.join("kustomization.yaml")).unwrap();
    let without_network = text.replace("  - 40-network.yaml\n", "");
    std::fs::write(
        both.join("kustomization.yaml"),
        format!("{without_network}Resources:\n  - 40-network.yaml\n"),
    )
    .unwrap();
    let out = run(&["check", "--no-config", "-f", both.to_str().unwrap()]);
    assert_exit_says(&out, 3, "does not list");
    let plain = release("plain", "", None);
    std::fs::create_dir_all(plain.join("dashboards")).unwrap();
    std::fs::write(
        plain.join("dashboards/mlsdm.json"),
        "{\"title\": \"MLSDM\"}\n",
    )
    .unwrap();
    let out = run(&["check", "--no-config", "-f", plain.to_str().unwrap()]);
    assert_eq!(out.status.code(), Some(0), "{}", transcript(&out));
    let out = run(&[
        "check",
        "--no-config",
        "-f",
        plain.join("20-deployment.yaml").to_str().unwrap(),
        "-f",
        plain.join("10-config.yaml").to_str().unwrap(),
    ]);
    assert!(
        !String::from_utf8_lossy(&out.stderr).contains("outside what the walk read"),
        "{}",
        transcript(&out)
    );
    let _ = std::fs::remove_dir_all(&dir);
}

/// Review finding: a password in the kubeconfig's `server:` URL (sent as basic auth, as
/// kubectl sends it) was printed whole in every cluster error and in the report's target.
#[test]
fn a_password_in_the_kubeconfig_server_url_is_never_printed() {
    let dir = temp_dir("server-userinfo");
    let kc = dir.join("kubeconfig");
    std::fs::write(&kc, "apiVersion: v1\nkind: Config\nclusters:\n- name: c\n  cluster: {server: 'http://admin:UserinfoPass-9876@127.0.0.1:9'}\ncontexts:\n- name: c\n  context: {cluster: c, user: u}\ncurrent-context: c\nusers:\n- name: u\n  user: {token: a-token-value-1234567}\n").unwrap();
    let out = run(&[
        "check",
        "--kubeconfig",
        kc.to_str().unwrap(),
        "--request-timeout",
        "2s",
        "-o",
        "json",
    ]);
    let all = transcript(&out);
    assert_ne!(out.status.code(), Some(0), "{all}");
    assert!(
        all.contains("127.0.0.1:9"),
        "the server is still named: {all}"
    );
    for secret in ["UserinfoPass-9876", "a-token-value-1234567"] {
        assert!(!all.contains(secret), "{secret} leaked: {all}");
    }
    let _ = std::fs::remove_dir_all(&dir);
}

/// What leaves a failure out of the gate is said: MLSDM workloads a selector leaves out are
/// named in a note (they were passed over in silence), a baseline of another audit is said,
/// and a failure on an element the baseline did not fail on (a new container) is new, not the
/// baseline's known debt. An attestation dated in the future is refused.
#[test]
fn what_leaves_a_failure_out_of_the_gate_is_said() {
    let selected = |format: &str| {
        run(&[
            "check",
            "--no-config",
            "-f",
            "fixtures/compliant",
            "-f",
            "fixtures/defective",
            "--selector",
            "app=mlsdm-api",
            "--format",
            format,
        ])
    };
    let out = selected("json");
    let report = json(&out);
    assert!(
        report["notes"]
            .as_array()
            .unwrap()
            .iter()
            .any(|n| n["kind"] == "out-of-scope"
                && n["message"]
                    .as_str()
                    .unwrap()
                    .contains("Deployment/mlsdm-production/neuro-engine")),
        "{report}"
    );
    // Every format says it, JUnit and SARIF included.
    for format in ["junit", "sarif"] {
        let out = selected(format);
        assert!(
            String::from_utf8_lossy(&out.stdout).contains("leaves it out"),
            "{format}: {}",
            transcript(&out)
        );
    }

    // One container without a memory request in the baseline (nor a limit, which the pods
    // would request); a second one now.
    let request = "            requests:\n              memory: 512Mi\n";
    let limit = "            limits:\n              memory: 2Gi\n";
    let one = compliant_copy(
        "baseline-one",
        &[
            ("20-deployment.yaml", request, "            requests:\n"),
            ("20-deployment.yaml", limit, "            limits:\n"),
        ],
    );
    let sidecar = "        - name: sidecar\n          image: registry.example.org/sidecar:1.0.0@sha256:0123456789abcdef0123456789abcdef0123456789abcdef0123456789abcdef\n          resources: {limits: {memory: 64Mi, cpu: 100m}}\n";
    let two = compliant_copy(
        "baseline-two",
        &[
            ("20-deployment.yaml", request, "            requests:\n"),
            ("20-deployment.yaml", limit, "            limits:\n"),
            (
                "20-deployment.yaml",
                "      volumes:\n",
                &format!("{sidecar}      volumes:\n"),
            ),
        ],
    );
    let id = "resources-memory-request-min";
    let out = run(&[
        "check",
        "--no-config",
        "-f",
        one.to_str().unwrap(),
        "--only",
        id,
        "--format",
        "json",
    ]);
    let baseline = one.join("baseline.json");
    std::fs::write(&baseline, &out.stdout).unwrap();
    let audit = |dir: &std::path::Path| {
        json(&run(&[
            "check",
            "--no-config",
            "-f",
            dir.to_str().unwrap(),
            "--only",
            id,
            "--baseline",
            baseline.to_str().unwrap(),
            "--fail-on-new",
            "--format",
            "json",
        ]))
    };
    assert_eq!(audit(&one)["results"][0]["change"], "unchanged");
    let now = audit(&two);
    assert_eq!(now["results"][0]["change"], "new", "{now}");

    // A baseline written before results named their elements covers the whole object.
    let mut old: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    for r in old["results"].as_array_mut().unwrap() {
        r.as_object_mut().unwrap().remove("items");
    }
    std::fs::write(&baseline, old.to_string()).unwrap();
    assert_eq!(audit(&two)["results"][0]["change"], "unchanged");
    // A baseline of a live audit, for a manifests run.
    let mut other: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    other["target"]["mode"] = "cluster".into();
    std::fs::write(&baseline, other.to_string()).unwrap();
    let now = audit(&one);
    assert!(
        now["notes"]
            .as_array()
            .unwrap()
            .iter()
            .any(|n| n["kind"] == "baseline-mismatch"),
        "{now}"
    );

    let file = one.join("attestations.yaml");
    std::fs::write(
        &file,
        "- check: manual-dr-plan-documented\n  by: sre@example.com\n  date: 2999-01-01\n  evidence: https://wiki.example.com/dr\n",
    )
    .unwrap();
    let out = run(&[
        "check",
        "--no-config",
        "-f",
        "fixtures/compliant",
        "--attestations",
        file.to_str().unwrap(),
    ]);
    assert_eq!(out.status.code(), Some(2), "{}", transcript(&out));
    assert!(String::from_utf8_lossy(&out.stderr).contains("date 2999-01-01 is in the future"));
}

/// What the pods' ServiceAccount may do is read from every binding that grants to it, as the
/// RBAC authorizer reads subjects: before, only the RoleBindings of the workload's namespace were
/// read, so a ClusterRoleBinding of the group every ServiceAccount is in to cluster-admin, or a
/// RoleBinding in kube-system letting the account read Secrets there, passed.
#[test]
fn rbac_reads_every_binding_that_grants_to_the_service_account() {
    let tail = "    name: mlsdm-api\n    namespace: mlsdm-production\n";
    let crb = |subject: &str, role: &str| {
        format!(
            "{tail}---\napiVersion: rbac.authorization.k8s.io/v1\nkind: ClusterRoleBinding\nmetadata:\n  name: extra\nroleRef: {{apiGroup: rbac.authorization.k8s.io, kind: ClusterRole, name: {role}}}\nsubjects:\n- {subject}\n"
        )
    };
    let reader = format!(
        "{tail}---\napiVersion: rbac.authorization.k8s.io/v1\nkind: Role\nmetadata: {{name: reader, namespace: kube-system}}\nrules:\n- apiGroups: ['']\n  resources: [secrets]\n  verbs: [list]\n---\napiVersion: rbac.authorization.k8s.io/v1\nkind: RoleBinding\nmetadata: {{name: reader, namespace: kube-system}}\nroleRef: {{apiGroup: rbac.authorization.k8s.io, kind: Role, name: reader}}\nsubjects:\n- {{kind: User, name: 'system:serviceaccount:mlsdm-production:mlsdm-api'}}\n"
    );
    for (name, extra, expected, says) in [
        (
            "crb-group",
            crb(
                "{kind: Group, name: 'system:serviceaccounts'}",
                "cluster-admin",
            ),
            "fail",
            "ClusterRole cluster-admin by ClusterRoleBinding extra (Group system:serviceaccounts)",
        ),
        (
            "crb-sa",
            crb(
                "{kind: ServiceAccount, name: mlsdm-api, namespace: mlsdm-production}",
                "edit",
            ),
            "fail",
            "ClusterRole edit by ClusterRoleBinding extra (ServiceAccount)",
        ),
        (
            "secrets-elsewhere",
            reader,
            "fail",
            "Role reader by RoleBinding kube-system/reader (User)",
        ),
        // A ClusterRoleBinding's ServiceAccount subject without a namespace grants nothing, and
        // another namespace's group is not this account's.
        (
            "crb-no-namespace",
            crb("{kind: ServiceAccount, name: mlsdm-api}", "cluster-admin"),
            "pass",
            "",
        ),
        (
            "crb-other-group",
            crb(
                "{kind: Group, name: 'system:serviceaccounts:staging'}",
                "cluster-admin",
            ),
            "pass",
            "",
        ),
    ] {
        let (status, msg) = compliant_with(
            name,
            &[("00-namespace.yaml", tail, &extra)],
            "rbac-service-account",
        );
        assert_eq!(status, expected, "{name}: {msg}");
        assert!(msg.contains(says), "{name}: {msg}");
    }
}

/// Review findings, each a relation or fact that Kubernetes decides otherwise than the audit
/// did, and each a pass it had not earned:
/// - an HPA whose scaleTargetRef has apiVersion `v1` or none scales nothing (the controller looks
///   the kind up in that API group: FailedGetScale), yet it counted as the workload's HPA;
/// - a ConfigMap volume with `items` projects only the paths it lists: the config file MLSDM
///   reads was judged from the key of the same name, which is not there;
/// - a Service port without targetPort targets the same number on the pods, and passed;
/// - a ServiceMonitor's `matchNames: []` watches its own namespace, and was skipped as watching
///   none;
/// - a sidecar listed first that sets API_KEY was judged as the MLSDM container.
#[test]
fn relations_follow_what_kubernetes_does() {
    let hpa_ref = "    apiVersion: apps/v1\n    kind: Deployment\n    name: mlsdm-api\n";
    for (name, replacement) in [
        (
            "hpa-core",
            "    apiVersion: v1\n    kind: Deployment\n    name: mlsdm-api\n",
        ),
        ("hpa-none", "    kind: Deployment\n    name: mlsdm-api\n"),
    ] {
        let (status, msg) = compliant_with(
            name,
            &[("30-service.yaml", hpa_ref, replacement)],
            "hpa-target-exists",
        );
        assert_eq!(status, "fail", "{name}: {msg}");
    }
    assert_eq!(
        compliant_with("hpa-apps", &[], "hpa-target-exists").0,
        "pass"
    );

    let volume = "          configMap:\n            name: mlsdm-config\n";
    let (status, msg) = compliant_with(
        "config-items",
        &[(
            "20-deployment.yaml",
            volume,
            "          configMap:\n            name: mlsdm-config\n            items: [{key: config.yaml, path: mlsdm.yaml}]\n",
        )],
        "mlsdm-config-valid",
    );
    assert_eq!(status, "fail", "{msg}");
    let (status, msg) = compliant_with(
        "config-items-listed",
        &[(
            "20-deployment.yaml",
            volume,
            "          configMap:\n            name: mlsdm-config\n            items: [{key: config.yaml, path: config.yaml}]\n",
        )],
        "mlsdm-config-valid",
    );
    assert_eq!(status, "pass", "{msg}");

    let (status, msg) = compliant_with(
        "no-target-port",
        &[("30-service.yaml", "      targetPort: http\n", "")],
        "service-selects-workload",
    );
    assert_eq!(status, "fail", "{msg}");
    assert!(msg.contains("where none is given, the port"), "{msg}");
    let (status, msg) = compliant_with(
        "port-is-target",
        &[(
            "30-service.yaml",
            "      port: 80\n      targetPort: http\n",
            "      port: 8000\n",
        )],
        "service-selects-workload",
    );
    assert_eq!(status, "pass", "{msg}");

    let (status, msg) = compliant_with(
        "monitor-own-namespace",
        &[(
            "50-monitoring.yaml",
            "spec:\n  selector:\n    matchLabels:\n      app: mlsdm-api\n",
            "spec:\n  namespaceSelector: {matchNames: []}\n  selector:\n    matchLabels:\n      app: nothing\n",
        )],
        "service-monitor-selects-service",
    );
    assert_eq!(status, "fail", "{msg}");

    let (status, msg) = compliant_with(
        "auth-sidecar-first",
        &[(
            "20-deployment.yaml",
            "      containers:\n",
            "      containers:\n        - name: auth-proxy\n          image: ghcr.io/example/auth-proxy:1.0.0\n          env:\n            - {name: API_KEY, valueFrom: {secretKeyRef: {name: mlsdm-secrets, key: api-key}}}\n",
        )],
        "llm-backend-set",
    );
    assert_eq!(
        status, "pass",
        "the MLSDM container (LLM_BACKEND local_stub) was not the one judged: {msg}"
    );

    // A sidecar whose image names MLSDM (an exporter) is not MLSDM when the real container,
    // with a renamed image, sets MLSDM's own variables.
    let (status, msg) = compliant_with(
        "exporter-first",
        &[
            (
                "20-deployment.yaml",
                "          image: ghcr.io/neuron7x/mlsdm-neuro-engine:1.2.0@",
                "          image: registry.example.com/ml/inference-api:1.2.0@",
            ),
            (
                "20-deployment.yaml",
                "      containers:\n",
                "      containers:\n        - name: exporter\n          image: ghcr.io/acme/mlsdm-exporter:1.0.0\n",
            ),
        ],
        "llm-backend-set",
    );
    assert_eq!(status, "pass", "the exporter was judged as MLSDM: {msg}");

    // network-policy-allows-api reads the rules as Kubernetes does.
    let allow = "  policyTypes: [Ingress, Egress]\n  ingress:\n";
    let port = "        - port: 8000\n          protocol: TCP\n";
    for (name, from, to, want) in [
        (
            "np-egress-only",
            allow,
            "  policyTypes: [Egress]\n  ingress:\n",
            "fail",
        ),
        (
            "np-udp",
            port,
            "        - port: 8000\n          protocol: UDP\n",
            "fail",
        ),
        (
            "np-named-elsewhere",
            port,
            "        - port: metrics\n",
            "fail",
        ),
        ("np-named", port, "        - port: http\n", "pass"),
        (
            "np-range",
            port,
            "        - port: 7000\n          endPort: 9000\n",
            "pass",
        ),
        ("np-any-port", port, "        - protocol: TCP\n", "pass"),
    ] {
        let (status, msg) = compliant_with(
            name,
            &[("40-network.yaml", from, to)],
            "network-policy-allows-api",
        );
        assert_eq!(status, want, "{name}: {msg}");
    }

    // Two PDBs over the same pods: the eviction API refuses to evict them at all.
    let (status, msg) = compliant_with(
        "pdb-two",
        &[(
            "30-service.yaml",
            "apiVersion: policy/v1\nkind: PodDisruptionBudget\n",
            "apiVersion: policy/v1\nkind: PodDisruptionBudget\nmetadata: {name: second, namespace: mlsdm-production}\nspec:\n  maxUnavailable: 1\n  selector: {matchLabels: {app: mlsdm-api}}\n---\napiVersion: policy/v1\nkind: PodDisruptionBudget\n",
        )],
        "pdb-allows-rollout",
    );
    assert_eq!(status, "fail", "{msg}");
    assert!(
        msg.contains("2 PodDisruptionBudgets select these pods (mlsdm-api-pdb, second)")
            || msg.contains("2 PodDisruptionBudgets select these pods (second, mlsdm-api-pdb)"),
        "{msg}"
    );
}

/// Review findings on the catalog (each passed before, and fails now):
/// - init containers (a native sidecar runs for the pod's whole life) were never checked: a
///   privileged root sidecar with a literal key passed every security check (as in the Pod
///   Security Standards' restricted profile; memory limits stay the app containers', as
///   Polaris has them);
/// - a container's seccompProfile overrides the pod's, but the two were ORed;
/// - `$(VAR)` in an env value is expanded by the kubelet (`DISABLE_RATE_LIMIT=$(OFF)`);
/// - the deepest mount holds the config file (a subPath file over the ConfigMap directory);
/// - API_KEY empty in a Secret, from envFrom, or through an optional reference the manifests
///   do not hold;
/// - a credential-named binaryData key in a ConfigMap.
#[test]
fn the_catalog_reads_pods_as_the_kubelet_does() {
    let containers = "      containers:\n";
    let sidecar = "      initContainers:\n        - name: proxy\n          image: nginx:latest\n          restartPolicy: Always\n          securityContext: {runAsUser: 0, privileged: true, allowPrivilegeEscalation: true}\n          env:\n            - {name: OPENAI_API_KEY, value: sk-proj-abcdefghijklmnopqrstuvwxyz0123456789}\n      containers:\n";
    for id in [
        "security-run-as-non-root",
        "security-context-hardened",
        "security-read-only-root-fs",
        "security-capabilities-drop-all",
        "image-pinned",
        "image-digest-pinned",
        "api-key-from-secret",
    ] {
        let (status, msg) = compliant_with(
            &format!("init-{id}"),
            &[("20-deployment.yaml", containers, sidecar)],
            id,
        );
        assert_eq!(status, "fail", "{id}: {msg}");
        assert!(msg.contains("proxy"), "{id}: {msg}");
    }

    let (status, msg) = compliant_with(
        "seccomp-override",
        &[(
            "20-deployment.yaml",
            "            readOnlyRootFilesystem: true\n",
            "            readOnlyRootFilesystem: true\n            seccompProfile: {type: Unconfined}\n",
        )],
        "security-context-hardened",
    );
    assert_eq!(status, "fail", "{msg}");

    let rate = "            - name: RATE_LIMIT_REQUESTS\n";
    let (status, msg) = compliant_with(
        "env-expansion",
        &[(
            "20-deployment.yaml",
            rate,
            "            - {name: \"OFF\", value: \"1\"}\n            - {name: DISABLE_RATE_LIMIT, value: $(OFF)}\n            - name: RATE_LIMIT_REQUESTS\n",
        )],
        "rate-limit-configured",
    );
    assert_eq!(status, "fail", "{msg}");
    let (status, msg) = compliant_with(
        "env-expansion-escaped",
        &[(
            "20-deployment.yaml",
            rate,
            "            - {name: \"OFF\", value: \"1\"}\n            - {name: DISABLE_RATE_LIMIT, value: $$(OFF)}\n            - name: RATE_LIMIT_REQUESTS\n",
        )],
        "rate-limit-configured",
    );
    assert_eq!(status, "pass", "$$( is a literal $(: {msg}");
    let (status, msg) = compliant_with(
        "env-expansion-secret",
        &[(
            "20-deployment.yaml",
            rate,
            "            - {name: \"OFF\", valueFrom: {secretKeyRef: {name: mlsdm-secrets, key: api-key}}}\n            - {name: DISABLE_RATE_LIMIT, value: $(OFF)}\n            - name: RATE_LIMIT_REQUESTS\n",
        )],
        "rate-limit-configured",
    );
    assert_eq!(status, "error", "{msg}");

    let (status, msg) = compliant_with(
        "config-shadowed",
        &[
            (
                "20-deployment.yaml",
                "            - name: tmp\n              mountPath: /tmp\n",
                "            - name: tmp\n              mountPath: /tmp\n            - {name: override, mountPath: /etc/mlsdm/config.yaml, subPath: config.yaml}\n",
            ),
            (
                "20-deployment.yaml",
                "      volumes:\n",
                "      volumes:\n        - {name: override, configMap: {name: mlsdm-override}}\n",
            ),
            (
                "10-config.yaml",
                "kind: ConfigMap\n",
                "kind: ConfigMap\nmetadata: {name: mlsdm-override, namespace: mlsdm-production}\ndata:\n  config.yaml: |\n    capacity: 10\n---\napiVersion: v1\nkind: ConfigMap\n",
            ),
        ],
        "mlsdm-config-valid",
    );
    assert_eq!(status, "fail", "{msg}");
    assert!(msg.contains("capacity"), "{msg}");

    let key_ref = "                  name: mlsdm-secrets\n                  key: api-key\n";
    let (status, msg) = compliant_with(
        "api-key-empty",
        &[(
            "10-config.yaml",
            "  api-key: a1k3cVo5bVJ0TjJ4V3BMNHZCOGNIMWRGNmdKM3NZMGVRNXVBN2lPMm5Y\n",
            "  api-key: \"\"\n",
        )],
        "api-key-configured",
    );
    assert_eq!(status, "fail", "{msg}");
    assert!(msg.contains("empty string"), "{msg}");
    let (status, msg) = compliant_with(
        "api-key-absent",
        &[(
            "20-deployment.yaml",
            key_ref,
            "                  name: elsewhere\n                  key: api-key\n                  optional: true\n",
        )],
        "api-key-configured",
    );
    assert_eq!(status, "error", "{msg}");
    assert!(
        msg.contains("optional Secret elsewhere, which is not among the audited objects"),
        "{msg}"
    );

    let (status, msg) = compliant_with(
        "configmap-binary",
        &[(
            "10-config.yaml",
            "data:\n  config.yaml: |\n",
            "binaryData:\n  API_KEY: c2stcHJvai1hYmNkZWZnaGlqa2xtbm9w\ndata:\n  config.yaml: |\n",
        )],
        "configmap-no-credentials",
    );
    assert_eq!(status, "fail", "{msg}");
}

/// Review findings on the catalog, second part (each passed before):
/// - probes on a port the container does not declare, or over HTTPS (MLSDM serves plain HTTP);
/// - MLSDM_OTEL_ENABLED, which takes precedence over OTEL_SDK_DISABLED, and MLSDM's truthy
///   spellings (`1`, `yes`, `on`);
/// - an HPA without minReplicas (1) under a workload of 3 replicas;
/// - a NetworkPolicy allowing all ingress next to the default deny (policies add up);
/// - a ServiceMonitor endpoint naming a port no Service of the pods has;
/// - a Service port of another protocol than the container port its targetPort names;
/// - a pod's automountServiceAccountToken over its ServiceAccount's, and a binding to
///   cluster-admin;
/// - preStop sleeps written as `sh -c "sleep N"`, `/bin/sleep N` or the native `sleep` action;
/// - an Ingress backend port the Service does not have (a number is the Service's port, not
///   the container's).
#[test]
fn the_catalog_reads_the_rest_as_kubernetes_and_mlsdm_do() {
    for (name, edits, id, want) in [
        (
            "probe-port",
            vec![(
                "20-deployment.yaml",
                "              path: /health/liveness\n              port: http\n            periodSeconds: 20\n",
                "              path: /health/liveness\n              port: 9000\n            periodSeconds: 20\n",
            )],
            "probe-liveness-path",
            "fail",
        ),
        (
            "probe-https",
            vec![(
                "20-deployment.yaml",
                "              path: /health/readiness\n              port: http\n",
                "              path: /health/readiness\n              port: http\n              scheme: HTTPS\n",
            )],
            "probe-readiness-path",
            "fail",
        ),
        (
            "probe-port-number",
            vec![(
                "20-deployment.yaml",
                "              path: /health/liveness\n              port: http\n            periodSeconds: 20\n",
                "              path: /health/liveness\n              port: 8000\n            periodSeconds: 20\n",
            )],
            "probe-liveness-path",
            "pass",
        ),
        (
            "otel-mlsdm-off",
            vec![(
                "20-deployment.yaml",
                "            - name: OTEL_EXPORTER_TYPE\n",
                "            - {name: MLSDM_OTEL_ENABLED, value: \"false\"}\n            - name: OTEL_EXPORTER_TYPE\n",
            )],
            "tracing-configured",
            "fail",
        ),
        (
            "otel-disabled-1",
            vec![(
                "20-deployment.yaml",
                "            - name: OTEL_EXPORTER_TYPE\n",
                "            - {name: OTEL_SDK_DISABLED, value: \" 1\"}\n            - name: OTEL_EXPORTER_TYPE\n",
            )],
            "tracing-configured",
            "fail",
        ),
        (
            "otel-enabled-wins",
            vec![(
                "20-deployment.yaml",
                "            - name: OTEL_EXPORTER_TYPE\n",
                "            - {name: OTEL_SDK_DISABLED, value: \"true\"}\n            - {name: MLSDM_OTEL_ENABLED, value: \"yes\"}\n            - name: OTEL_EXPORTER_TYPE\n",
            )],
            "tracing-configured",
            "pass",
        ),
        (
            "llm-backend-case",
            vec![(
                "20-deployment.yaml",
                "value: local_stub",
                "value: Local_Stub",
            )],
            "llm-backend-set",
            "pass",
        ),
        (
            "hpa-default-min",
            vec![("30-service.yaml", "  minReplicas: 3\n", "")],
            "replicas-min-3",
            "fail",
        ),
        (
            "np-allow-all",
            vec![(
                "40-network.yaml",
                "---\napiVersion: networking.k8s.io/v1\nkind: Ingress\n",
                "---\napiVersion: networking.k8s.io/v1\nkind: NetworkPolicy\nmetadata: {name: open, namespace: mlsdm-production}\nspec:\n  podSelector: {}\n  policyTypes: [Ingress]\n  ingress: [{}]\n---\napiVersion: networking.k8s.io/v1\nkind: Ingress\n",
            )],
            "network-policy-default-deny",
            "fail",
        ),
        // Without policyTypes a policy with no egress rules is Ingress only (Kubernetes sets
        // Egress only when egress rules exist): ingress stays denied, egress is open.
        (
            "np-deny-default-types",
            vec![(
                "40-network.yaml",
                "  podSelector: {}\n  policyTypes: [Ingress, Egress]\n",
                "  podSelector: {}\n",
            )],
            "network-policy-default-deny",
            "fail",
        ),
        (
            "sm-port",
            vec![(
                "50-monitoring.yaml",
                "    - port: http\n",
                "    - port: metrics\n",
            )],
            "prometheus-scrape-configured",
            "fail",
        ),
        (
            "svc-udp",
            vec![(
                "30-service.yaml",
                "      targetPort: http\n      protocol: TCP\n",
                "      targetPort: http\n      protocol: UDP\n",
            )],
            "service-selects-workload",
            "fail",
        ),
        (
            "rbac-pod-automount",
            vec![
                (
                    "20-deployment.yaml",
                    "      automountServiceAccountToken: false\n",
                    "      automountServiceAccountToken: true\n",
                ),
                (
                    "00-namespace.yaml",
                    "subjects:\n  - kind: ServiceAccount\n    name: mlsdm-api\n",
                    "subjects:\n  - kind: ServiceAccount\n    name: someone-else\n",
                ),
            ],
            "rbac-service-account",
            "fail",
        ),
        (
            "rbac-cluster-admin",
            vec![(
                "00-namespace.yaml",
                "  kind: Role\n  name: mlsdm-api\n",
                "  kind: ClusterRole\n  name: cluster-admin\n",
            )],
            "rbac-service-account",
            "fail",
        ),
        (
            "grace-sh-sleep",
            vec![(
                "20-deployment.yaml",
                "                command: [\"sleep\", \"15\"]\n",
                "                command: [\"/bin/sh\", \"-c\", \"sleep 45\"]\n",
            )],
            "termination-grace-period",
            "fail",
        ),
        (
            "grace-native-sleep",
            vec![(
                "20-deployment.yaml",
                "              exec:\n                command: [\"sleep\", \"15\"]\n",
                "              sleep: {seconds: 45}\n",
            )],
            "termination-grace-period",
            "fail",
        ),
        (
            "grace-sleep-seconds-suffix",
            vec![(
                "20-deployment.yaml",
                "                command: [\"sleep\", \"15\"]\n",
                "                command: [\"sleep\", \"45s\"]\n",
            )],
            "termination-grace-period",
            "fail",
        ),
        (
            "svc-headless-no-ports",
            vec![(
                "30-service.yaml",
                "  ports:\n    - name: http\n      port: 80\n      targetPort: http\n      protocol: TCP\n",
                "  clusterIP: None\n",
            )],
            "service-selects-workload",
            "pass",
        ),
        (
            "grace-bin-sleep-ok",
            vec![(
                "20-deployment.yaml",
                "                command: [\"sleep\", \"15\"]\n",
                "                command: [\"/bin/sleep\", \"15\"]\n",
            )],
            "termination-grace-period",
            "pass",
        ),
        (
            "ingress-port-name",
            vec![(
                "40-network.yaml",
                "                port:\n                  name: http\n",
                "                port:\n                  name: grpc\n",
            )],
            "ingress-backend-exists",
            "fail",
        ),
        (
            "ingress-port-number",
            vec![(
                "40-network.yaml",
                "                port:\n                  name: http\n",
                "                port:\n                  number: 80\n",
            )],
            "ingress-backend-exists",
            "pass",
        ),
        (
            "ingress-port-target",
            vec![(
                "40-network.yaml",
                "                port:\n                  name: http\n",
                "                port:\n                  number: 8000\n",
            )],
            "ingress-backend-exists",
            "fail",
        ),
        (
            "svc-no-container-ports",
            vec![
                (
                    "20-deployment.yaml",
                    "          ports:\n            - name: http\n              containerPort: 8000\n              protocol: TCP\n",
                    "",
                ),
                (
                    "30-service.yaml",
                    "      targetPort: http\n",
                    "      targetPort: 8000\n",
                ),
            ],
            "service-selects-workload",
            "pass",
        ),
        (
            "grace-sh-and",
            vec![(
                "20-deployment.yaml",
                "                command: [\"sleep\", \"15\"]\n",
                "                command: [\"/bin/sh\", \"-c\", \"sleep 45 && nginx -s quit\"]\n",
            )],
            "termination-grace-period",
            "fail",
        ),
        (
            "api-key-empty-secret",
            vec![
                (
                    "20-deployment.yaml",
                    "                  name: mlsdm-secrets\n                  key: api-key\n",
                    "                  name: mlsdm-secrets\n                  key: api-key\n                  optional: true\n",
                ),
                (
                    "10-config.yaml",
                    "data:\n  # A fixture key, not a real one: 42 random characters.\n  api-key: a1k3cVo5bVJ0TjJ4V3BMNHZCOGNIMWRGNmdKM3NZMGVRNXVBN2lPMm5Y\n",
                    "data: {}\n",
                ),
            ],
            "api-key-configured",
            "fail",
        ),
        (
            "otel-envfrom-unread",
            vec![(
                "20-deployment.yaml",
                "          env:\n            - name: CONFIG_PATH\n",
                "          envFrom:\n            - configMapRef: {name: elsewhere}\n          env:\n            - {name: OTEL_SDK_DISABLED, value: \"false\"}\n            - name: CONFIG_PATH\n",
            )],
            "tracing-configured",
            "error",
        ),
        (
            "configmap-binary-value",
            vec![(
                "10-config.yaml",
                "data:\n  config.yaml: |\n",
                "binaryData:\n  app.conf: c2stcHJvai1hYmNkZWZnaGlqa2xtbm9wcXJzdHV2d3h5ejAxMjM0NTY3ODk=\ndata:\n  config.yaml: |\n",
            )],
            "configmap-no-credentials",
            "fail",
        ),
    ] {
        let with_tracing = id.starts_with("tracing");
        let (status, msg) = if with_tracing {
            compliant_with_args(name, &edits, id, &["--require", "tracing"])
        } else {
            compliant_with(name, &edits, id)
        };
        assert_eq!(status, want, "{name}: {msg}");
    }
}

/// Review finding: a run-once init container retried before it completed (waiting for a
/// dependency) failed pod-no-restarts once init containers were read; a native sidecar's
/// restart still does, as does any init container in CrashLoopBackOff.
#[test]
fn a_retried_init_container_is_not_a_restart_but_a_sidecars_is() {
    for (policy, state, want) in [
        ("", "{terminated: {reason: Completed, exitCode: 0}}", "pass"),
        ("\n      restartPolicy: Always", "{running: {}}", "fail"),
        ("", "{waiting: {reason: CrashLoopBackOff}}", "fail"),
    ] {
        let pod = format!(
            "apiVersion: v1\nkind: Pod\nmetadata: {{name: mlsdm-api-1, namespace: mlsdm-production, labels: {{app: mlsdm-api}}}}\nspec:\n  initContainers:\n    - name: wait\n      image: busybox:1.36{policy}\n  containers:\n    - name: mlsdm-api\n      image: ghcr.io/neuron7x/mlsdm-neuro-engine:1.2.0\nstatus:\n  containerStatuses:\n    - {{name: mlsdm-api, restartCount: 0, state: {{running: {{}}}}}}\n  initContainerStatuses:\n    - {{name: wait, restartCount: 2, state: {state}}}\n---\napiVersion: apps/v1\nkind: Deployment\n"
        );
        let (status, msg) = compliant_with(
            "init-restarts",
            &[(
                "20-deployment.yaml",
                "apiVersion: apps/v1\nkind: Deployment\n",
                &pod,
            )],
            "pod-no-restarts",
        );
        assert_eq!(status, want, "{policy} {state}: {msg}");
    }
}

/// Review finding: `report` rendered a report whose failures had been taken out (its list of
/// checks and its counts still gave them) as a PASS, a green JUnit file and an empty SARIF one,
/// with a warning on stderr only; `verify` and `report --merge` refuse such a file, so does it.
#[test]
fn report_refuses_a_report_that_does_not_hold_together() {
    let dir = temp_dir("report-cut");
    let out = run(&[
        "check",
        "--no-config",
        "-f",
        root().join("fixtures/defective").to_str().unwrap(),
        "--format",
        "json",
    ]);
    let mut full = json(&out);
    let path = dir.join("full.json");
    std::fs::write(&path, &out.stdout).unwrap();
    assert_eq!(
        run(&["report", path.to_str().unwrap(), "--format", "junit"])
            .status
            .code(),
        Some(0)
    );
    full["results"]
        .as_array_mut()
        .unwrap()
        .retain(|r| r["status"] != "fail");
    let cut = dir.join("cut.json");
    std::fs::write(&cut, serde_json::to_vec(&full).unwrap()).unwrap();
    for format in ["table", "junit", "sarif"] {
        let out = run(&["report", cut.to_str().unwrap(), "--format", format]);
        assert_exit_says(&out, 2, "the report does not hold together");
        assert!(out.stdout.is_empty(), "{format}: {}", transcript(&out));
    }
    // Review 32c: the failing results taken out with their checks' entries (or the whole list),
    // the summary recounted, rendered and merged as a pass.
    let failing: Vec<String> = full_failing_ids(&json(&out));
    let mut trimmed = json(&out);
    trimmed["results"]
        .as_array_mut()
        .unwrap()
        .retain(|r| !failing.contains(&r["id"].as_str().unwrap().to_string()));
    trimmed["checks"]
        .as_array_mut()
        .unwrap()
        .retain(|c| !failing.contains(&c["id"].as_str().unwrap().to_string()));
    let recounted = run_report_summary(&trimmed);
    trimmed["summary"] = recounted;
    let cut = dir.join("trimmed.json");
    std::fs::write(&cut, serde_json::to_vec(&trimmed).unwrap()).unwrap();
    let out2 = run(&["report", cut.to_str().unwrap()]);
    assert_exit_says(&out2, 2, "neither in its list of checks nor left out");
    trimmed.as_object_mut().unwrap().remove("checks");
    std::fs::write(&cut, serde_json::to_vec(&trimmed).unwrap()).unwrap();
    let out2 = run(&["report", "--merge", cut.to_str().unwrap()]);
    assert_eq!(out2.status.code(), Some(2), "{}", transcript(&out2));
    // A report of another catalog (an older binary's, without a check added since) reads as it
    // lists its checks (review 32e: every archived report was refused).
    let mut older = json(&out);
    let added = "pods-outside-workloads-hardened";
    older["results"]
        .as_array_mut()
        .unwrap()
        .retain(|r| r["id"] != added);
    older["checks"]
        .as_array_mut()
        .unwrap()
        .retain(|c| c["id"] != added);
    older["summary"] = run_report_summary(&older);
    older["target"].as_object_mut().unwrap().remove("catalog");
    std::fs::write(&cut, serde_json::to_vec(&older).unwrap()).unwrap();
    let out2 = run(&["report", cut.to_str().unwrap(), "--format", "junit"]);
    assert_eq!(out2.status.code(), Some(0), "{}", transcript(&out2));
    let _ = std::fs::remove_dir_all(&dir);
}

/// The ids of the checks with a failing result in a JSON report.
fn full_failing_ids(report: &serde_json::Value) -> Vec<String> {
    report["results"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|r| r["status"] == "fail")
        .map(|r| r["id"].as_str().unwrap().to_string())
        .collect()
}

/// A report's summary recounted from its results, as an editor would.
fn run_report_summary(report: &serde_json::Value) -> serde_json::Value {
    let mut summary = report["summary"].clone();
    for (_, v) in summary.as_object_mut().unwrap() {
        *v = 0.into();
    }
    for r in report["results"].as_array().unwrap() {
        let key = match r["status"].as_str().unwrap() {
            "no-data" => "noData",
            other => other,
        };
        if let Some(n) = summary.get_mut(key) {
            *n = (n.as_u64().unwrap() + 1).into();
        }
    }
    summary
}

/// A team's check left out by `--only` keeps the checklist lines it covers open, also when the
/// report is re-rendered without the team's files (before, "Namespace created" was ticked by
/// namespace-defined, which ran, while the team's check covering it, left out, fails on this
/// release).
#[test]
fn a_line_a_left_out_team_check_covers_is_not_ticked() {
    let dir = temp_dir("left-out-team-check");
    let team = dir.join("checks");
    std::fs::create_dir_all(&team).unwrap();
    let check =
        std::fs::read_to_string("tests/data/checks-runtime-error/memory-request-min-1gi.yaml")
            .unwrap()
            .replace(
                "remediation:",
                "checklist: [\"Namespace created\"]\nremediation:",
            );
    std::fs::write(team.join("memory-request-min-1gi.yaml"), check).unwrap();
    let report = dir.join("report.json");
    let out = run(&[
        "check",
        "-f",
        "fixtures/compliant",
        "--checks",
        team.to_str().unwrap(),
        "--only",
        "namespace-defined",
        "-o",
        "json",
        "--output-file",
        report.to_str().unwrap(),
    ]);
    assert_eq!(out.status.code(), Some(0), "{}", transcript(&out));
    // The whole team check fails on this release: the line must not read as done.
    let whole = run(&[
        "check",
        "-f",
        "fixtures/compliant",
        "--checks",
        team.to_str().unwrap(),
        "--only",
        "memory-request-min-1gi",
    ]);
    assert_eq!(whole.status.code(), Some(1), "{}", transcript(&whole));
    let md = run(&["report", report.to_str().unwrap(), "-o", "markdown"]);
    let md = String::from_utf8_lossy(&md.stdout);
    let line = md
        .lines()
        .find(|l| l.contains("Namespace created"))
        .unwrap_or_else(|| panic!("{md}"));
    assert!(
        line.contains("[ ]")
            && line.contains("not all of its checks ran: memory-request-min-1gi left out"),
        "{line}"
    );
    let _ = std::fs::remove_dir_all(&dir);
}
