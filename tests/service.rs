//! http and metrics checks against the MLSDM stand-in over real sockets: each failure mode fails
//! the checks it should, empty metrics are no-data (never pass), and a hanging service costs one
//! timeout, not one per check.

mod support;

use mlsdm_audit_testservers::mlsdm::{Config, Server, start};
use std::process::Output;
use std::time::{Duration, Instant};

struct Running {
    server: Server,
    _rt: tokio::runtime::Runtime,
}

/// The tests here measure latency and throughput (the load probe, P95 checks): one at a time, so
/// they do not compete with each other for the machine's cores.
static SERIAL: std::sync::Mutex<()> = std::sync::Mutex::new(());

fn serial() -> std::sync::MutexGuard<'static, ()> {
    SERIAL
        .lock()
        .unwrap_or_else(std::sync::PoisonError::into_inner)
}

fn serve(config: Config) -> Running {
    let rt = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .unwrap();
    let server = rt.block_on(start("127.0.0.1:0", config)).unwrap();
    Running { server, _rt: rt }
}

const KEY: &str = "test-api-key-0123456789abcdef";

/// Runs the CLI; these tests audit only the service, never a cluster.
fn audit(args: &[&str]) -> Output {
    audit_env(args, &[])
}

/// Runs the CLI with more environment variables.
fn audit_env(args: &[&str], env: &[(&str, &str)]) -> Output {
    let mut args = args.to_vec();
    if args.first() == Some(&"check") {
        args.insert(1, "--no-cluster");
    }
    support::cmd()
        .args(&args)
        .env("MLSDM_TEST_KEY", KEY)
        .envs(env.iter().copied())
        .run()
}

fn report(out: &Output) -> serde_json::Value {
    serde_json::from_slice(&out.stdout)
        .unwrap_or_else(|e| panic!("{e}: {}", String::from_utf8_lossy(&out.stderr)))
}

fn status(r: &serde_json::Value, id: &str) -> (String, String) {
    let x = r["results"]
        .as_array()
        .unwrap()
        .iter()
        .find(|x| x["id"] == id)
        .unwrap_or_else(|| panic!("no result for {id}"));
    (
        x["status"].as_str().unwrap().to_string(),
        x["message"].as_str().unwrap().to_string(),
    )
}

fn run(url: &str, extra: &[&str]) -> serde_json::Value {
    let mut args = vec![
        "check",
        "--endpoint",
        url,
        "--api-key-env",
        "MLSDM_TEST_KEY",
        "--format",
        "json",
        "--observe",
        "3s",
        "--window",
        "2s",
    ];
    args.extend_from_slice(extra);
    report(&audit(&args))
}

#[test]
fn healthy_service_passes() {
    let _serial = serial();
    let s = serve(Config::healthy());
    let r = run(&s.server.url, &["--active"]);
    for id in [
        "health-live",
        "health-liveness-legacy",
        "health-ready",
        "health-readiness-legacy",
        "security-headers",
        "request-id-echoed",
        "status-dimension",
        "status-rate-limit",
        "status-ok",
        "auth-required-generate",
        "api-end-to-end",
        "api-error-handling",
        "api-docs-published",
        "metrics-endpoint",
        "memory-within-bounds",
        "rate-limit-enforced",
        "metrics-being-collected",
        "error-rate-below-1pct",
        "p95-latency-below-100ms",
        "rollback-error-rate",
        "rollback-p95-latency",
    ] {
        assert_eq!(status(&r, id).0, "pass", "{id}: {}", status(&r, id).1);
    }
    // Upstream's /infer takes unauthenticated requests: a real finding.
    assert_eq!(status(&r, "auth-required-infer").0, "fail");
    // Series only a Prometheus server has are no-data, never pass.
    assert_eq!(status(&r, "no-alerts-firing").0, "no-data");
    assert_eq!(status(&r, "memory-stable").0, "no-data");
    assert_eq!(status(&r, "cpu-usage-normal").0, "no-data");
    assert_eq!(r["target"]["active"], true);
    // Review finding: per-pod checks sent to one URL speak for the pod that answered, and the
    // report says so (a Service there answers from one pod of several).
    let sampled = r["notes"]
        .as_array()
        .unwrap()
        .iter()
        .find(|n| n["kind"] == "one-pod-sampled")
        .unwrap_or_else(|| panic!("no one-pod-sampled note: {}", r["notes"]));
    let message = sampled["message"].as_str().unwrap();
    assert!(
        message.contains("health-ready") && message.contains(&s.server.url),
        "{message}"
    );
    let window = r["results"]
        .as_array()
        .unwrap()
        .iter()
        .find(|x| x["id"] == "rollback-error-rate")
        .unwrap()["window"]
        .clone();
    assert_eq!(
        window["asked"], "5m",
        "the report records the window the check asked for"
    );
    assert!(window["evaluatedSeconds"].as_f64().unwrap() <= 3.5);
}

#[test]
fn failure_modes_fail_the_right_checks() {
    let _serial = serial();
    let cases: [(&str, &[&str]); 5] = [
        ("not-ready", &["health-ready", "health-readiness-legacy"]),
        ("no-headers", &["security-headers"]),
        (
            "errors",
            &[
                "error-rate-below-1pct",
                "rollback-error-rate",
                "no-unexpected-errors",
            ],
        ),
        ("slow", &["p95-latency-below-100ms", "rollback-p95-latency"]),
        ("open", &["auth-required-generate"]),
    ];
    for (mode, failing) in cases {
        let s = serve(Config::mode(mode).unwrap());
        let r = run(&s.server.url, &[]);
        for id in failing {
            assert_eq!(
                status(&r, id).0,
                "fail",
                "{mode}: {id} should fail: {}",
                status(&r, id).1
            );
        }
        let fails: Vec<String> = r["results"]
            .as_array()
            .unwrap()
            .iter()
            .filter(|x| x["status"] == "fail")
            .map(|x| x["id"].as_str().unwrap().to_string())
            .collect();
        for id in &fails {
            assert!(
                failing.contains(&id.as_str()) || id == "auth-required-infer",
                "{mode}: unexpected failure {id}"
            );
        }
        if mode == "not-ready" {
            assert!(
                status(&r, "health-ready")
                    .1
                    .contains("unhealthy moral_filter"),
                "names the unhealthy component"
            );
        }
        if mode == "errors" {
            // 15 % of requests fail; over a 2 s window rate() extrapolation moves it a little.
            let msg = status(&r, "error-rate-below-1pct").1;
            let pct: f64 = msg
                .trim_start_matches("error rate is ")
                .trim_end_matches(" %")
                .parse()
                .unwrap_or_else(|_| panic!("{msg}"));
            assert!((10.0..30.0).contains(&pct), "{msg}");
        }
    }
}

#[test]
fn empty_metrics_are_no_data_never_pass() {
    let _serial = serial();
    let s = serve(Config::mode("empty-metrics").unwrap());
    let r = run(&s.server.url, &[]);
    let (st, msg) = status(&r, "metrics-being-collected");
    assert_eq!(st, "fail");
    assert!(
        msg.contains("mlsdm_http_requests_total has no samples"),
        "{msg}"
    );
    for id in [
        "error-rate-below-1pct",
        "p95-latency-below-100ms",
        "rollback-error-rate",
        "rollback-p95-latency",
    ] {
        assert_eq!(status(&r, id).0, "no-data", "{id}: {}", status(&r, id).1);
    }
}

/// `check --endpoint URL --format json --only ONLY`, with `extra` arguments.
fn endpoint_json(url: &str, only: &str, extra: &[&str]) -> Output {
    let mut args = vec![
        "check",
        "--endpoint",
        url,
        "--format",
        "json",
        "--only",
        only,
    ];
    args.extend(extra);
    audit(&args)
}

#[test]
fn one_scrape_gives_no_rate() {
    let _serial = serial();
    let s = serve(Config::mode("errors").unwrap());
    let r = report(&endpoint_json(
        &s.server.url,
        "rollback-error-rate,error-rate-below-1pct",
        &[],
    ));
    assert_eq!(status(&r, "rollback-error-rate").0, "no-data");
    assert_eq!(status(&r, "error-rate-below-1pct").0, "no-data");
}

/// A run whose checks at or above the gate are all no-data decided nothing the gate asks: it
/// exits 3 with a note saying so, even when a check below the gate was decided (review
/// finding: a medium check decided below the gate let two high no-data results exit 0). `--allow-empty`
/// accepts it.
#[test]
fn nothing_decided_at_the_gate_is_not_a_pass() {
    let _serial = serial();
    let s = serve(Config::healthy());
    let run = |extra: &[&str]| {
        let mut args = vec![
            "check",
            "--endpoint",
            &s.server.url,
            "--format",
            "json",
            "--only",
            "rollback-error-rate,error-rate-below-1pct,request-id-echoed",
        ];
        args.extend(extra);
        audit(&args)
    };
    let out = run(&[]);
    let r = report(&out);
    assert_eq!(status(&r, "error-rate-below-1pct").0, "no-data");
    assert_eq!(status(&r, "request-id-echoed").0, "pass", "{r}");
    assert_eq!(out.status.code(), Some(3), "{r}");
    let note = r["notes"]
        .as_array()
        .unwrap()
        .iter()
        .find(|n| n["kind"] == "nothing-decided")
        .unwrap_or_else(|| panic!("no note: {r}"))
        .clone();
    assert!(
        note["message"]
            .as_str()
            .unwrap()
            .starts_with("nothing decided at or above high: every evaluated check there is no-data: error-rate-below-1pct, rollback-error-rate ("),
        "{note}"
    );
    assert_eq!(run(&["--allow-empty"]).status.code(), Some(0));
    // Review 32c: a reviewer's attestation of a manual line decides that line, not the
    // measurements: it had made this run a pass (exit 0).
    let dir = std::env::temp_dir().join(format!("mlsdm-audit-attested-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let attestations = dir.join("attestations.yaml");
    std::fs::write(
        &attestations,
        "- check: manual-data-corruption-detected\n  by: Alice Example <alice@example.com>\n  date: 2026-11-20\n  evidence: https://wiki.example.com/x\n",
    )
    .unwrap();
    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt;
        std::fs::set_permissions(&attestations, std::fs::Permissions::from_mode(0o600)).unwrap();
    }
    let out = endpoint_json(
        &s.server.url,
        "rollback-error-rate,error-rate-below-1pct,manual-data-corruption-detected",
        &["--attestations", attestations.to_str().unwrap()],
    );
    let r = report(&out);
    assert_eq!(
        status(&r, "manual-data-corruption-detected").0,
        "pass",
        "{r}"
    );
    assert_eq!(out.status.code(), Some(3), "{r}");
    let _ = std::fs::remove_dir_all(&dir);
    // The formats a CI shows read as not passed too: JUnit has an error case, SARIF an
    // unsuccessful invocation (their results alone are all skipped, or none).
    let rerun = |format: &str| {
        let out = audit(&[
            "check",
            "--endpoint",
            &s.server.url,
            "--only",
            "rollback-error-rate,error-rate-below-1pct",
            "--format",
            format,
        ]);
        assert_eq!(out.status.code(), Some(3));
        String::from_utf8_lossy(&out.stdout).into_owned()
    };
    let junit = rerun("junit");
    assert!(
        junit.contains("mlsdm-audit gate") && junit.contains("nothing decided at or above high"),
        "{junit}"
    );
    let sarif: serde_json::Value = serde_json::from_str(&rerun("sarif")).unwrap();
    let invocation = &sarif["runs"][0]["invocations"][0];
    assert_eq!(invocation["executionSuccessful"], false, "{sarif}");
    assert!(
        invocation["toolExecutionNotifications"][0]["message"]["text"]
            .as_str()
            .unwrap()
            .starts_with("nothing decided"),
        "{sarif}"
    );
}

#[test]
fn a_hanging_service_costs_one_timeout() {
    let _serial = serial();
    let s = serve(Config::mode("hanging").unwrap());
    let started = Instant::now();
    let out = audit(&[
        "check",
        "--endpoint",
        &s.server.url,
        "--http-timeout",
        "2s",
        "--format",
        "json",
        "--api-key-env",
        "MLSDM_TEST_KEY",
    ]);
    let elapsed = started.elapsed();
    // Generous bound: every probe runs at once, so the run takes about one timeout, not ~25.
    assert!(elapsed < Duration::from_secs(20), "took {elapsed:?}");
    assert_eq!(
        out.status.code(),
        Some(3),
        "errors at or above fail-on, no failure: exit 3"
    );
    let r = report(&out);
    let (st, msg) = status(&r, "health-ready");
    assert_eq!(st, "error");
    assert!(
        msg.contains(&s.server.url) && msg.contains("timed out"),
        "{msg}"
    );
    assert_eq!(status(&r, "metrics-being-collected").0, "error");
    assert!(
        !r["results"]
            .as_array()
            .unwrap()
            .iter()
            .any(|x| x["source"] != "manual" && x["status"] == "pass")
    );
}

#[test]
fn unreachable_endpoint_is_an_error_naming_it() {
    let _serial = serial();
    let out = audit(&[
        "check",
        "--endpoint",
        "http://127.0.0.1:9",
        "--format",
        "json",
        "--only",
        "health-ready",
    ]);
    assert_eq!(out.status.code(), Some(3));
    let (st, msg) = status(&report(&out), "health-ready");
    assert_eq!(st, "error");
    assert!(
        msg.starts_with("http://127.0.0.1:9/health/ready: cannot connect"),
        "{msg}"
    );
}

/// An endpoint that does not serve MLSDM's routes (a wrong path prefix) answers 404 to every
/// probe: nothing was measured. A malformed request's 404 passed "a malformed request gets a
/// 4xx", and the rate-limit and authentication checks made claims about a service nobody
/// reached. A load probe that reached nothing was "5000 of 5000 requests failed".
#[test]
fn a_route_the_endpoint_does_not_serve_is_an_error() {
    let _serial = serial();
    let s = serve(Config::healthy());
    let url = format!("{}/wrongprefix", s.server.url);
    let out = audit(&[
        "check",
        "--endpoint",
        &url,
        "--api-key-env",
        "MLSDM_TEST_KEY",
        "--only",
        "api-error-handling,status-rate-limit,auth-required-generate,health-live",
        "--format",
        "json",
    ]);
    assert_eq!(out.status.code(), Some(3));
    let r = report(&out);
    for id in [
        "api-error-handling",
        "status-rate-limit",
        "auth-required-generate",
        "health-live",
    ] {
        let (st, msg) = status(&r, id);
        assert_eq!(st, "error", "{id}: {msg}");
        assert!(
            msg.contains("answered 404 (Not Found): the endpoint does not serve MLSDM's"),
            "{id}: {msg}"
        );
    }
    // Nothing listening: the load probe reached nothing, and says so.
    let out = audit(&[
        "check",
        "--endpoint",
        &format!("http://127.0.0.1:{}", closed_port()),
        "--active",
        "--only",
        "load-probe",
        "--format",
        "json",
    ]);
    let (st, msg) = status(&report(&out), "load-probe");
    assert_eq!(st, "error", "{msg}");
    assert!(msg.contains("load requests reached the service"), "{msg}");
}

#[test]
fn bad_flags_are_usage_errors() {
    let _serial = serial();
    for (args, needle) in [
        (
            vec!["check", "--endpoint", "ftp://x"],
            "--endpoint \"ftp://x\": expected an http:// or https:// URL",
        ),
        // Stop 33: each check's path is appended to the URL as typed; after a query or a fragment
        // it asked the base URL's page for every check.
        (
            vec!["check", "--endpoint", "http://127.0.0.1:9/?x=1"],
            "expected a base URL without a query",
        ),
        (
            vec!["check", "--endpoint", "http://127.0.0.1:9/#top"],
            "expected a base URL without a query",
        ),
        (
            vec!["check", "--prometheus", "http://127.0.0.1:9/?"],
            "expected a base URL without a query",
        ),
        (
            vec![
                "check",
                "--endpoint",
                "http://127.0.0.1:9",
                "--api-key-env",
                "NO_SUCH_VARIABLE_HERE",
            ],
            "NO_SUCH_VARIABLE_HERE: that environment variable is not set",
        ),
        (
            vec![
                "check",
                "--endpoint",
                "http://127.0.0.1:9",
                "--observe",
                "soon",
            ],
            "--observe \"soon\": expected a duration",
        ),
        (
            vec![
                "check",
                "--endpoint",
                "http://127.0.0.1:9",
                "--checks",
                "tests/data/checks-unsupported-promql",
            ],
            "predict_linear() is not supported without a Prometheus server (give --prometheus)",
        ),
    ] {
        let out = audit(&args);
        assert_eq!(out.status.code(), Some(2), "{args:?}");
        assert!(
            String::from_utf8_lossy(&out.stderr).contains(needle),
            "{args:?}: {}",
            String::from_utf8_lossy(&out.stderr)
        );
    }
}

#[test]
fn the_api_key_is_never_printed() {
    let _serial = serial();
    let s = serve(Config::healthy());
    for format in mlsdm_audit::report::Format::names() {
        let out = audit(&[
            "check",
            "--endpoint",
            &s.server.url,
            "--api-key-env",
            "MLSDM_TEST_KEY",
            "--active",
            "--format",
            format,
        ]);
        let text = format!(
            "{}{}",
            String::from_utf8_lossy(&out.stdout),
            String::from_utf8_lossy(&out.stderr)
        );
        assert!(!text.contains(KEY), "{format} leaks the API key");
    }
    assert!(s.server.booked() > 0);
}

fn edge(url: &str, extra: &[&str]) -> serde_json::Value {
    let mut args = vec![
        "check",
        "--endpoint",
        url,
        "--checks",
        "tests/data/checks-http-edge",
        "--only",
        "redirect-same-host,redirect-other-host,huge-body,health-live",
        "--format",
        "json",
    ];
    args.extend_from_slice(extra);
    report(&audit(&args))
}

#[test]
fn redirects_body_cap_and_user_agent() {
    let _serial = serial();
    let s = serve(Config::healthy());
    let r = edge(&s.server.url, &[]);
    assert_eq!(status(&r, "redirect-same-host").0, "pass");
    // Regression (issue 10.6): the 302 itself was evaluated as the service's answer.
    let (st, msg) = status(&r, "redirect-other-host");
    assert_eq!(st, "error", "{msg}");
    assert!(
        msg.ends_with("answered 302 redirecting to http://localhost:9/health, which is not followed (another host, or more than 5 hops); audit the final URL instead"),
        "not followed to another host, and not judged: {msg}"
    );
    let (st, msg) = status(&r, "huge-body");
    assert_eq!(st, "error");
    assert!(msg.ends_with("response body larger than 1024 KiB"), "{msg}");
    let seen = s.server.seen();
    assert!(
        seen.iter().all(|(_, _, ua)| ua.starts_with("mlsdm-audit/")),
        "{seen:?}"
    );
}

#[test]
fn tls_is_verified_unless_told_otherwise() {
    let _serial = serial();
    let pki = mlsdm_audit_testservers::tls::pki("mlsdm", &["127.0.0.1", "localhost"]);
    let rt = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .unwrap();
    let server = rt
        .block_on(mlsdm_audit_testservers::mlsdm::start_tls(
            "127.0.0.1:0",
            Config::healthy(),
            &pki,
        ))
        .unwrap();
    assert!(server.url.starts_with("https://"));
    let dir = std::env::temp_dir().join(format!("mlsdm-audit-tls-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let ca = dir.join("ca.pem");
    std::fs::write(&ca, &pki.ca_pem).unwrap();
    // Unknown CA: an error naming the endpoint and the certificate problem.
    let r = report(&audit(&[
        "check",
        "--endpoint",
        &server.url,
        "--only",
        "health-live",
        "--format",
        "json",
    ]));
    let (st, msg) = status(&r, "health-live");
    assert_eq!(st, "error");
    assert!(
        msg.contains(&server.url) && msg.to_lowercase().contains("certificate"),
        "{msg}"
    );
    // With the CA: verified and passing.
    let r = report(&audit(&[
        "check",
        "--endpoint",
        &server.url,
        "--ca-file",
        ca.to_str().unwrap(),
        "--only",
        "health-live",
        "--format",
        "json",
    ]));
    assert_eq!(status(&r, "health-live").0, "pass");
    assert!(r["target"].get("insecureSkipTlsVerify").is_none());
    // Explicitly insecure: passes, and the report says verification was off.
    let r = report(&audit(&[
        "check",
        "--endpoint",
        &server.url,
        "--insecure-skip-tls-verify",
        "--only",
        "health-live",
        "--format",
        "json",
    ]));
    assert_eq!(status(&r, "health-live").0, "pass");
    assert_eq!(r["target"]["insecureSkipTlsVerify"], true);
    // A CA file that is not PEM is a usage error.
    let out = audit(&["check", "--endpoint", &server.url, "--ca-file", "README.md"]);
    assert_eq!(out.status.code(), Some(2));
    std::fs::remove_dir_all(dir).unwrap();
}

/// A 401 from a gateway in front of MLSDM (an ingress's basic auth: an HTML page and a
/// `WWW-Authenticate` challenge) says nothing of whether MLSDM enforces its key: here MLSDM has
/// none. The two critical auth checks passed on any 401; they are an error naming the gateway's
/// challenge, and the run does not pass.
#[test]
fn a_gateways_401_is_not_mlsdms_authentication() {
    let _serial = serial();
    let s = serve(Config::mode("gateway-auth").unwrap());
    let out = audit(&[
        "check",
        "--endpoint",
        &s.server.url,
        "--api-key-env",
        "MLSDM_TEST_KEY",
        "--only",
        "auth-required-generate,auth-required-infer",
        "--format",
        "json",
    ]);
    let r = report(&out);
    for id in ["auth-required-generate", "auth-required-infer"] {
        let (st, msg) = status(&r, id);
        assert_eq!(st, "error", "{id}: {msg}");
        assert!(
            msg.contains("something other than MLSDM") && msg.contains("Basic realm"),
            "{id}: {msg}"
        );
    }
    assert_ne!(out.status.code(), Some(0));
}

/// Every http and metrics check: the mode of the stand-in it passes on, and one it fails on.
/// (no-alerts-firing, memory-stable and cpu-usage-normal need a Prometheus server: tests/prometheus.rs.)
const CHECK_MODES: &[(&str, &str, &str)] = &[
    ("health-live", "healthy", "dead"),
    ("health-liveness-legacy", "healthy", "no-legacy-paths"),
    ("health-ready", "healthy", "not-ready"),
    ("health-readiness-legacy", "healthy", "not-ready"),
    ("security-headers", "healthy", "no-headers"),
    ("request-id-echoed", "healthy", "no-request-id"),
    ("status-dimension", "healthy", "dimension-512"),
    ("status-rate-limit", "healthy", "no-rate-limit"),
    ("status-ok", "healthy", "status-broken"),
    ("auth-required-generate", "healthy", "open"),
    ("auth-required-infer", "infer-auth", "healthy"),
    ("api-end-to-end", "healthy", "generate-fails"),
    ("api-error-handling", "healthy", "crashes-on-bad-input"),
    ("api-docs-published", "healthy", "no-docs"),
    ("metrics-endpoint", "healthy", "no-metrics"),
    ("memory-within-bounds", "healthy", "big-memory"),
    ("rate-limit-enforced", "healthy", "no-rate-limit"),
    ("load-probe", "healthy", "slow-health"),
    ("metrics-being-collected", "healthy", "empty-metrics"),
    ("error-rate-below-1pct", "healthy", "errors"),
    ("rollback-error-rate", "healthy", "errors"),
    ("no-unexpected-errors", "errors", "errors"),
    ("p95-latency-below-100ms", "healthy", "slow"),
    ("rollback-p95-latency", "healthy", "slow"),
];

/// Answers MLSDM 1.2.0 never sends but a proxy, a mock or another version may: each passed a
/// check it could not earn (an empty readiness list is "every check true", `null != ''`, a
/// negative memory is within the bound). Each must fail or be an error, never pass.
#[test]
fn odd_answers_never_pass() {
    let _serial = serial();
    let ready = |body: serde_json::Value| ("/health/ready", body);
    let cases: Vec<(&str, (&'static str, serde_json::Value), &str)> = vec![
        (
            "health-ready",
            ready(serde_json::json!({"ready": true, "status": "ready", "checks": []})),
            "fail",
        ),
        (
            "health-ready",
            ready(serde_json::json!({"ready": true, "status": "ready", "checks": {}})),
            "fail",
        ),
        (
            "health-ready",
            ready(
                serde_json::json!({"ready": true, "status": "not_ready", "checks": {"memory_manager": true}}),
            ),
            "fail",
        ),
        (
            "health-ready",
            ready(serde_json::json!({"ready": true})),
            "fail",
        ),
        (
            "health-readiness-legacy",
            (
                "/health/readiness",
                serde_json::json!({"ready": true, "status": "not_ready"}),
            ),
            "fail",
        ),
        (
            "status-ok",
            (
                "/status",
                serde_json::json!({"status": "ok", "version": null}),
            ),
            "fail",
        ),
        (
            "memory-within-bounds",
            (
                "/status",
                serde_json::json!({"status": "ok", "version": "1.2.0", "system": {"memory_mb": -5}}),
            ),
            "error",
        ),
        (
            "memory-within-bounds",
            (
                "/status",
                serde_json::json!({"status": "ok", "version": "1.2.0", "system": {"memory_mb": 0}}),
            ),
            "error",
        ),
    ];
    let mut problems = Vec::new();
    for (id, answer, want) in cases {
        let shown = format!("{} {}", answer.0, answer.1);
        let mut config = Config::healthy();
        config.answers = vec![answer];
        let s = serve(config);
        let (st, msg) = status(&run(&s.server.url, &["--only", id]), id);
        if st != want {
            problems.push(format!("{id} on {shown}: {st} {msg} (want {want})"));
        }
        // The message is a failure's, never the title's claim.
        if msg.contains("answers 200 with every readiness check true") {
            problems.push(format!(
                "{id} on {shown}: a failure said as the title: {msg}"
            ));
        }
    }
    assert!(problems.is_empty(), "{problems:#?}");
}

#[test]
fn every_http_and_metrics_check_passes_and_fails_on_its_fixture() {
    let _serial = serial();
    let catalog = mlsdm_audit::checks::load(&[]).unwrap();
    for c in catalog.iter().filter(|c| {
        matches!(
            c.source(),
            mlsdm_audit::checks::Source::Http | mlsdm_audit::checks::Source::Metrics
        )
    }) {
        let covered = CHECK_MODES.iter().any(|(id, _, _)| *id == c.id)
            // Prometheus-only checks are in tests/prometheus.rs; status-backend-matches needs a
            // workload to compare with and has its own test below.
            || ["no-alerts-firing", "memory-stable", "cpu-usage-normal", "status-backend-matches"].contains(&c.id.as_str());
        assert!(covered, "{} has no passing and failing stand-in mode", c.id);
    }
    let mut modes: Vec<&str> = CHECK_MODES.iter().flat_map(|(_, p, f)| [*p, *f]).collect();
    modes.sort_unstable();
    modes.dedup();
    let mut reports = std::collections::BTreeMap::new();
    for mode in modes {
        let s = serve(Config::mode(mode).unwrap());
        reports.insert(mode, run(&s.server.url, &["--active"]));
    }
    let mut problems = Vec::new();
    for (id, pass_mode, fail_mode) in CHECK_MODES {
        // no-unexpected-errors has nothing to decide when there were no errors: it passes nowhere
        // on the stand-in, since every error the stand-in counts is unexpected.
        if *id != "no-unexpected-errors" {
            let (st, msg) = status(&reports[pass_mode], id);
            if st != "pass" {
                problems.push(format!("{id} on {pass_mode}: {st} {msg}"));
            }
        }
        let (st, msg) = status(&reports[fail_mode], id);
        if st != "fail" {
            problems.push(format!("{id} on {fail_mode}: {st} {msg}"));
        }
    }
    assert!(problems.is_empty(), "{problems:#?}");
}

#[test]
fn the_running_backend_is_compared_with_the_declared_one() {
    let _serial = serial();
    for (mode, want) in [("healthy", "pass"), ("backend-openai", "fail")] {
        let s = serve(Config::mode(mode).unwrap());
        // With the manifests of exactly one MLSDM workload, the endpoint is that workload's service.
        let r = report(&audit_with_cluster_objects(&[
            "check",
            "--manifests",
            "fixtures/compliant",
            "--endpoint",
            &s.server.url,
            "--only",
            "status-backend-matches",
            "--format",
            "json",
        ]));
        let (st, msg) = status(&r, "status-backend-matches");
        assert_eq!(st, want, "{mode}: {msg}");
        if want == "fail" {
            assert_eq!(
                msg,
                "the service runs backend openai but the workload sets LLM_BACKEND=local_stub"
            );
        }
    }
    // Without a workload to compare with, the check does not apply; it never passes.
    let s = serve(Config::healthy());
    // (Alone, a skipped check decides nothing: --allow-empty to see it; exit 3 without.)
    let r = run(
        &s.server.url,
        &["--only", "status-backend-matches", "--allow-empty"],
    );
    assert_eq!(status(&r, "status-backend-matches").0, "skipped");
}

/// Runs the CLI as given (these runs read manifests, so no --no-cluster).
fn audit_with_cluster_objects(args: &[&str]) -> Output {
    support::run(args)
}

/// Audits the healthy stand-in with the test checks in `dir`, only those in `only`.
fn audit_healthy_with_checks(dir: &str, only: &str) -> Output {
    let s = serve(Config::healthy());
    audit(&[
        "check",
        "--endpoint",
        &s.server.url,
        "--checks",
        dir,
        "--only",
        only,
        "--format",
        "json",
    ])
}

/// Regression (issue 10.5): a metrics validation that fails at run time was no-data; it is
/// error, as in kubernetes checks.
#[test]
fn a_metrics_check_that_cannot_be_evaluated_is_an_error() {
    let _serial = serial();
    let out = audit_healthy_with_checks(
        "tests/data/checks-metrics-runtime-error",
        "metrics-value-typo",
    );
    let (st, msg) = status(&report(&out), "metrics-value-typo");
    assert_eq!(st, "error", "{msg}");
    assert!(
        msg.contains("tests/data/checks-metrics-runtime-error/metrics-value-typo.yaml:8"),
        "{msg}"
    );
    assert_eq!(out.status.code(), Some(3));
}

/// First rule: a metrics query that returns no series measured nothing. A check on `series`
/// that did not mention `value` was evaluated on the empty list, and `series.all(..)` of no
/// series passed. An absence counts as evidence only where the check declares it
/// (`whenEmpty: evaluate`).
#[test]
fn an_empty_query_result_is_no_data_unless_the_check_declares_it() {
    let _serial = serial();
    let out = audit_healthy_with_checks(
        "tests/data/checks-metrics-empty",
        "series-all-on-nothing,absence-is-the-evidence",
    );
    let r = report(&out);
    let (st, msg) = status(&r, "series-all-on-nothing");
    assert_eq!(st, "no-data", "{msg}");
    assert!(msg.contains("no samples"), "{msg}");
    let (st, msg) = status(&r, "absence-is-the-evidence");
    assert_eq!(st, "pass", "{msg}");
}

/// Check `id` alone on `url`, observed for `observe`: the run, the result's status and message.
fn observed(url: &str, id: &str, observe: &str) -> (Output, String, String) {
    let out = audit(&[
        "check",
        "--endpoint",
        url,
        "--only",
        id,
        "--observe",
        observe,
        "--format",
        "json",
    ]);
    let (st, msg) = status(&report(&out), id);
    (out, st, msg)
}

/// A loopback port nothing listens on.
fn closed_port() -> u16 {
    let l = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    l.local_addr().unwrap().port()
}

/// Regression (issue 10.4): with two --endpoints, one refusing connections, the metrics checks
/// passed on the other's data alone while claiming both were scraped.
#[test]
fn a_metrics_source_that_failed_makes_its_results_errors() {
    let _serial = serial();
    let s = serve(Config::healthy());
    let dead = format!("http://127.0.0.1:{}", closed_port());
    let out = audit(&[
        "check",
        "--endpoint",
        &s.server.url,
        "--endpoint",
        &dead,
        "--only",
        "metrics-being-collected,memory-within-bounds",
        "--format",
        "json",
    ]);
    let r = report(&out);
    let (st, msg) = status(&r, "metrics-being-collected");
    assert_eq!(st, "error", "{msg}");
    assert!(
        msg.contains(&format!("{dead}/health/metrics: cannot connect")),
        "{msg}"
    );
    // The http checks report per endpoint: the live one passes, the dead one is an error.
    let per_endpoint: Vec<(String, String)> = r["results"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|x| x["id"] == "memory-within-bounds")
        .map(|x| {
            (
                x["endpoint"].as_str().unwrap().to_string(),
                x["status"].as_str().unwrap().to_string(),
            )
        })
        .collect();
    assert!(
        per_endpoint.contains(&(s.server.url.clone(), "pass".into())),
        "{per_endpoint:?}"
    );
    assert!(
        per_endpoint.contains(&(dead.clone(), "error".into())),
        "{per_endpoint:?}"
    );
    assert_eq!(out.status.code(), Some(3));
}

/// A stand-in Prometheus that answers every request with one fixed HTTP response: the faults
/// here (a success without a result, HTML) are what a real Prometheus cannot be made to send.
fn fixed_http_server(content_type: &'static str, body: &'static str) -> String {
    use std::io::{Read, Write};
    let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let url = format!("http://{}", listener.local_addr().unwrap());
    std::thread::spawn(move || {
        // Bounded: the audits below send a few dozen queries at most.
        for stream in listener.incoming().take(500) {
            let Ok(mut stream) = stream else { continue };
            let mut buf = [0u8; 8192];
            let _ = stream.read(&mut buf);
            let _ = write!(
                stream,
                "HTTP/1.1 200 OK\r\ncontent-type: {content_type}\r\ncontent-length: {}\r\nconnection: close\r\n\r\n{body}",
                body.len()
            );
        }
    });
    url
}

/// Review finding: a metrics page that took longer to answer than `--observe` was scraped once, so
/// every rate was no-data and a service failing a third of its requests exited 0. An
/// observation is at least two scrapes. The server below answers each scrape after 2 s, with 100
/// more requests of which 50 are 500s: once, no rate; twice, a 50 % error rate. (The delay only
/// makes one scrape outlast `--observe 1s`: the outcome does not depend on the machine's speed.)
#[test]
fn an_observation_is_at_least_two_scrapes() {
    use std::io::{Read, Write};
    let _serial = serial();
    let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let url = format!("http://{}", listener.local_addr().unwrap());
    std::thread::spawn(move || {
        // Bounded: the audit below scrapes a few times.
        for (n, stream) in listener.incoming().take(20).enumerate() {
            let Ok(mut stream) = stream else { continue };
            let mut buf = [0u8; 8192];
            let _ = stream.read(&mut buf);
            std::thread::sleep(std::time::Duration::from_secs(2));
            let n = n as u64 + 1;
            let body = format!(
                "# TYPE mlsdm_http_requests_total counter\nmlsdm_http_requests_total{{method=\"POST\",endpoint=\"/generate\",status=\"200\"}} {}\nmlsdm_http_requests_total{{method=\"POST\",endpoint=\"/generate\",status=\"500\"}} {}\n# TYPE mlsdm_http_requests_created gauge\nmlsdm_http_requests_created{{method=\"POST\",endpoint=\"/generate\",status=\"200\"}} 1.7e9\n",
                50 * n,
                50 * n
            );
            let _ = write!(
                stream,
                "HTTP/1.1 200 OK\r\ncontent-type: text/plain; version=0.0.4\r\ncontent-length: {}\r\nconnection: close\r\n\r\n{body}",
                body.len()
            );
        }
    });
    let (out, st, msg) = observed(&url, "error-rate-below-1pct", "1s");
    assert_eq!(st, "fail", "{msg}");
    assert_eq!(out.status.code(), Some(1), "{msg}");
}

/// Review finding: `no-unexpected-errors` (`sum(increase(mlsdm_errors_total[1h])) == 0`) passed
/// "MLSDM recorded no errors in the last hour" on 3 s of scrapes of a counter already at 4,000:
/// a count over 3 s says nothing of the hour. It is no-data, and says why; errors that grow
/// while observed still fail (a count over part of the range is a lower bound).
#[test]
fn a_count_over_less_than_its_range_never_passes() {
    let _serial = serial();
    let page = "# TYPE mlsdm_errors_total counter\nmlsdm_errors_total{error_type=\"internal_error\"} 4000\n# TYPE mlsdm_http_requests_total counter\nmlsdm_http_requests_total{method=\"GET\",endpoint=\"/health\",status=\"200\"} 100\n# TYPE mlsdm_errors_created gauge\nmlsdm_errors_created{error_type=\"internal_error\"} 1.7e9\n";
    let url = fixed_http_server("text/plain; version=0.0.4", page);
    let (out, st, msg) = observed(&url, "no-unexpected-errors", "3s");
    assert_eq!(st, "no-data", "{msg}");
    assert!(
        msg.contains("the scrapes cover") && msg.contains("1h"),
        "{msg}"
    );
    assert_eq!(out.status.code(), Some(3), "{msg}");
}

/// Review finding: a second `--endpoint` answering `/health/metrics` with 200 and an HTML page (a
/// login page, a proxy's error) counted as scraped, with no series: the metrics checks passed on
/// the first endpoint's data while the report said both were scraped. A page that is not
/// exposition text is a failed scrape, named by its line.
#[test]
fn a_metrics_page_that_is_not_exposition_text_is_a_failed_scrape() {
    let _serial = serial();
    let s = serve(Config::healthy());
    let html = fixed_http_server("text/html", "<html><body>Sign in</body></html>");
    let out = audit(&[
        "check",
        "--endpoint",
        &s.server.url,
        "--endpoint",
        &html,
        "--only",
        "metrics-being-collected",
        "--format",
        "json",
    ]);
    let (st, msg) = status(&report(&out), "metrics-being-collected");
    assert_eq!(st, "error", "{msg}");
    assert!(
        msg.contains(&format!(
            "{html}/health/metrics: not Prometheus text: line 1: `<html><body>Sign in</body></html>` is not a sample"
        )),
        "{msg}"
    );
    assert_eq!(out.status.code(), Some(3));
}

/// Regression (issue 10.3): a Prometheus answering `"status":"success"` with no or a malformed
/// `result` made no-alerts-firing pass. An answer that does not match the API's schema is error,
/// as is one with `warnings` (a querier's partial answer: "none firing" from the stores that
/// answered).
#[test]
fn a_prometheus_answer_outside_the_api_schema_is_an_error() {
    let _serial = serial();
    let cases: [(&str, &str, &str); 7] = [
        (
            "application/json",
            r#"{"status":"success","warnings":["PromQL info: metric might not be a counter, name does not end in _total/_sum/_count/_bucket: \"up\"","store 10.0.0.7:10901 unavailable"],"data":{"resultType":"vector","result":[]}}"#,
            "answered with warnings, so the result may be partial: store 10.0.0.7:10901 unavailable",
        ),
        (
            "application/json",
            r#"{"status":"success","warnings":["store 10.0.0.7:10901 unavailable"],"data":{"resultType":"vector","result":[]}}"#,
            "answered with warnings, so the result may be partial: store 10.0.0.7:10901 unavailable",
        ),
        (
            "application/json",
            r#"{"status":"success","data":{"resultType":"vector"}}"#,
            "does not match the Prometheus API",
        ),
        (
            "application/json",
            r#"{"status":"success","data":{"resultType":"vector","result":null}}"#,
            "does not match the Prometheus API",
        ),
        (
            "application/json",
            r#"{"status":"success","data":{"resultType":"vector","result":[{"metric":{}}]}}"#,
            "does not match the Prometheus API",
        ),
        (
            "application/json",
            r#"{"status":"success"}"#,
            "does not match the Prometheus API",
        ),
        (
            "text/html",
            "<html><body>Grafana</body></html>",
            "with text/html that is not the Prometheus API's JSON",
        ),
    ];
    for (content_type, body, needle) in cases {
        let url = fixed_http_server(content_type, body);
        let out = audit(&[
            "check",
            "--prometheus",
            &url,
            "--only",
            "no-alerts-firing",
            "--format",
            "json",
        ]);
        let (st, msg) = status(&report(&out), "no-alerts-firing");
        assert_eq!(st, "error", "{body}: {msg}");
        assert!(msg.contains(needle), "{body}: {msg}");
        assert_eq!(out.status.code(), Some(3), "{body}");
    }
    // Well-formed answers, all empty: no alert is firing, but no MLSDM target is scraped either.
    // That is a Prometheus that does not watch the service, not a healthy service.
    let url = fixed_http_server(
        "application/json",
        r#"{"status":"success","data":{"resultType":"vector","result":[]}}"#,
    );
    let (st, msg) = no_alerts_firing_against(&url);
    assert_eq!(st, "error", "{msg}");
    assert!(
        msg.contains("scrapes no MLSDM target that is up now"),
        "{msg}"
    );
}

/// A stand-in Prometheus whose query API says it scrapes an MLSDM target that is up (what the
/// tool asks before any check), and whose `/api/v1/rules` answers `rules` (status, content
/// type, body): a real Prometheus cannot be made to fail that endpoint alone.
fn prometheus_with_rules_answer(rules: (u16, &'static str, &'static str)) -> String {
    use std::io::{Read, Write};
    let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let url = format!("http://{}", listener.local_addr().unwrap());
    std::thread::spawn(move || {
        // Bounded: an audit of one check sends a handful of requests.
        for stream in listener.incoming().take(100) {
            let Ok(mut stream) = stream else { continue };
            let mut buf = [0u8; 8192];
            let n = stream.read(&mut buf).unwrap_or(0);
            let head = String::from_utf8_lossy(&buf[..n]).into_owned();
            let line = head.lines().next().unwrap_or_default().to_string();
            // Answered at the time asked, as Prometheus does (an answer of another time is
            // refused as stale).
            let time = line
                .split(['?', '&', ' '])
                .find_map(|p| p.strip_prefix("time="))
                .unwrap_or("0")
                .to_string();
            let up = format!(
                r#"{{"status":"success","data":{{"resultType":"vector","result":[{{"metric":{{"job":"mlsdm","instance":"x:8000"}},"value":[{time},"1"]}}]}}}}"#
            );
            let none = r#"{"status":"success","data":{"resultType":"vector","result":[]}}"#;
            let (code, content_type, body) = if line.contains("/api/v1/rules") {
                (rules.0, rules.1, rules.2.to_string())
            } else if line.contains("up+%3D%3D+0") || line.contains("ALERTS") {
                // No target down, no alert firing.
                (200, "application/json", none.to_string())
            } else {
                (200, "application/json", up)
            };
            let _ = write!(
                stream,
                "HTTP/1.1 {code} X\r\ncontent-type: {content_type}\r\ncontent-length: {}\r\nconnection: close\r\n\r\n{body}",
                body.len()
            );
        }
    });
    url
}

/// First rule: no alert firing is evidence only from a Prometheus that has alerting rules. When
/// `/api/v1/rules` cannot say how many it has, the check is an error, never a pass.
#[test]
fn no_alerts_firing_is_an_error_when_the_rules_cannot_be_read() {
    let _serial = serial();
    let cases: [((u16, &str, &str), &str); 3] = [
        ((500, "text/plain", "internal error"), "answered HTTP 500"),
        (
            (200, "application/json", r#"{"status":"success","data":{}}"#),
            "does not match the Prometheus API",
        ),
        (
            (
                200,
                "application/json",
                r#"{"status":"success","data":{"groups":[{"rules":[{"type":"paging"}]}]}}"#,
            ),
            "does not match the Prometheus API",
        ),
    ];
    for (rules, needle) in cases {
        let url = prometheus_with_rules_answer(rules);
        let out = audit(&[
            "check",
            "--prometheus",
            &url,
            "--only",
            "no-alerts-firing",
            "--format",
            "json",
        ]);
        let (st, msg) = status(&report(&out), "no-alerts-firing");
        assert_eq!(st, "error", "{}: {msg}", rules.2);
        assert!(
            msg.contains("cannot tell whether Prometheus has alerting rules"),
            "{msg}"
        );
        assert!(msg.contains(needle), "{}: {msg}", rules.2);
        assert_eq!(out.status.code(), Some(3), "{}", rules.2);
    }
    // The same stand-in with one alerting rule and no ALERTS series: the absence is evidence.
    let url = prometheus_with_rules_answer((
        200,
        "application/json",
        r#"{"status":"success","data":{"groups":[{"name":"g","rules":[{"type":"alerting","name":"A"},{"type":"recording","name":"r"}]}]}}"#,
    ));
    let (st, msg) = no_alerts_firing_against(&url);
    assert_eq!(st, "pass", "{msg}");
    // Recording rules alone fire nothing.
    let url = prometheus_with_rules_answer((
        200,
        "application/json",
        r#"{"status":"success","data":{"groups":[{"name":"g","rules":[{"type":"recording","name":"r"}]}]}}"#,
    ));
    let (st, msg) = no_alerts_firing_against(&url);
    assert_eq!(st, "no-data", "{msg}");
    assert!(
        msg.contains("Prometheus has no alerting rules: no alert could fire"),
        "{msg}"
    );
}

/// A service that answers 500 with the request it received as its body, headers included.
fn reflecting_server() -> String {
    use std::io::{Read, Write};
    let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let url = format!("http://{}", listener.local_addr().unwrap());
    std::thread::spawn(move || {
        for stream in listener.incoming().take(100) {
            let Ok(mut stream) = stream else { continue };
            let mut buf = [0u8; 8192];
            let n = stream.read(&mut buf).unwrap_or(0);
            let body = String::from_utf8_lossy(&buf[..n]).into_owned();
            let _ = write!(
                stream,
                "HTTP/1.1 500 Internal Server Error\r\ncontent-type: text/plain\r\ncontent-length: {}\r\nconnection: close\r\n\r\n{body}",
                body.len()
            );
        }
    });
    url
}

/// Regression (issue 10.11): the --api-key-env key was not in the redaction set, so a service
/// that reflects the Authorization header printed `Bearer <key>` in every format.
#[test]
fn a_reflected_api_key_is_redacted_in_every_format() {
    let _serial = serial();
    let url = reflecting_server();
    for format in mlsdm_audit::report::Format::names() {
        let out = audit(&[
            "check",
            "--endpoint",
            &url,
            "--api-key-env",
            "MLSDM_TEST_KEY",
            "--checks",
            "tests/data/checks-echo",
            "--only",
            "echo-authorization",
            "--format",
            format,
        ]);
        let text = format!(
            "{}{}",
            String::from_utf8_lossy(&out.stdout),
            String::from_utf8_lossy(&out.stderr)
        );
        assert!(!text.contains(KEY), "{format} leaks the reflected API key");
        // The Markdown checklist has lines only for the seed's sections, not for this test check.
        assert!(
            format == "markdown" || text.contains("redacted"),
            "{format}: the reflected header is shown, masked: {text}"
        );
    }
}

#[test]
fn end_to_end_passes_only_when_something_is_generated() {
    let _serial = serial();
    // (mode, status, message part, POST /generate requests sent)
    let cases = [
        // The stand-in's moral filter turns the first request away; the benign retry generates.
        ("healthy", "pass", "", 2),
        (
            "asleep",
            "fail",
            "POST /generate answered 200 but generated nothing (accepted: false, rejected_at: generation, phase: sleep) in 1 attempt(s)",
            1,
        ),
        // Generated, by the answer that puts the engine to sleep for good: it passed.
        (
            "falls-asleep",
            "fail",
            "POST /generate was accepted, but MLSDM answered from its sleep phase",
            2,
        ),
        (
            "backend-dead",
            "fail",
            "POST /generate answered 200 but generated nothing (accepted: false, rejected_at: generation, phase: wake) in 3 attempt(s)",
            3,
        ),
        (
            "generate-fails",
            "fail",
            "authenticated POST /generate answered 500",
            1,
        ),
    ];
    for (mode, want, needle, sent) in cases {
        let s = serve(Config::mode(mode).unwrap());
        let r = report(&audit(&[
            "check",
            "--endpoint",
            &s.server.url,
            "--api-key-env",
            "MLSDM_TEST_KEY",
            "--active",
            "--only",
            "api-end-to-end",
            "--format",
            "json",
        ]));
        let (st, msg) = status(&r, "api-end-to-end");
        assert_eq!(st, want, "{mode}: {msg}");
        assert!(msg.contains(needle), "{mode}: {msg}");
        let generates = s
            .server
            .seen()
            .iter()
            .filter(|(m, p, _)| m == "POST" && p == "/generate")
            .count();
        assert_eq!(generates, sent, "{mode}: requests sent");
    }
}

#[test]
fn a_refused_key_makes_every_authenticated_probe_an_error() {
    let _serial = serial();
    let s = serve(Config::healthy());
    let out = audit_env(
        &[
            "check",
            "--endpoint",
            &s.server.url,
            "--api-key-env",
            "MLSDM_WRONG_KEY",
            "--active",
            "--format",
            "json",
        ],
        &[("MLSDM_WRONG_KEY", "not-the-key-0123456789abcdef")],
    );
    let r = report(&out);
    let catalog = mlsdm_audit::checks::load(&[]).unwrap();
    let mut authenticated = 0;
    for c in &catalog {
        let Some(req) = c.request() else { continue };
        let (st, msg) = status(&r, &c.id);
        if req.authenticated {
            authenticated += 1;
            assert_eq!(st, "error", "{}: {msg}", c.id);
            assert!(
                msg.contains("the API key was refused (401)"),
                "{}: {msg}",
                c.id
            );
        } else {
            assert_ne!(st, "error", "{}: {msg}", c.id);
        }
    }
    assert!(
        authenticated >= 3,
        "api-end-to-end, api-error-handling, rate-limit-enforced"
    );
    // The unauthenticated probes still say what they saw.
    assert_eq!(status(&r, "health-live").0, "pass");
    assert_eq!(status(&r, "auth-required-generate").0, "pass");
}

#[test]
fn a_passive_audit_never_generates() {
    let _serial = serial();
    for mode in ["healthy", "open"] {
        let s = serve(Config::mode(mode).unwrap());
        let r = report(&audit(&[
            "check",
            "--endpoint",
            &s.server.url,
            "--api-key-env",
            "MLSDM_TEST_KEY",
            "--format",
            "json",
        ]));
        assert_eq!(
            s.server.generations(),
            0,
            "{mode}: a passive audit ran a generation"
        );
        // Upstream's /infer takes unauthenticated requests: the invalid body's 422 says so.
        let (st, msg) = status(&r, "auth-required-infer");
        assert_eq!(st, "fail", "{mode}: {msg}");
        assert!(
            msg.starts_with("unauthenticated POST /infer was not refused: it answered 422"),
            "{msg}"
        );
        let want = if mode == "open" { "fail" } else { "pass" };
        assert_eq!(status(&r, "auth-required-generate").0, want, "{mode}");
    }
    // The active end-to-end probe is what generates.
    let s = serve(Config::healthy());
    report(&audit(&[
        "check",
        "--endpoint",
        &s.server.url,
        "--api-key-env",
        "MLSDM_TEST_KEY",
        "--active",
        "--only",
        "api-end-to-end,auth-required-infer,auth-required-generate",
        "--format",
        "json",
    ]));
    assert_eq!(
        s.server.generations(),
        2,
        "the end-to-end probe and its retry"
    );
}

#[test]
fn a_busy_node_never_fails_a_pod() {
    let _serial = serial();
    // /status system.cpu_percent is the node's CPU (95 % here); only the container's own
    // cAdvisor series, through Prometheus, decide cpu-usage-normal.
    let s = serve(Config::mode("busy-cpu").unwrap());
    let r = run(&s.server.url, &["--only", "cpu-usage-normal"]);
    let (st, msg) = status(&r, "cpu-usage-normal");
    assert_eq!(st, "no-data", "{msg}");
    assert!(msg.contains("container_cpu_usage_seconds_total"), "{msg}");
}

#[test]
fn the_burst_and_the_load_probe_run_alone_after_the_other_probes() {
    let _serial = serial();
    let s = serve(Config::healthy());
    report(&audit(&[
        "check",
        "--endpoint",
        &s.server.url,
        "--api-key-env",
        "MLSDM_TEST_KEY",
        "--active",
        "--format",
        "json",
    ]));
    // The metrics scrape runs beside the probes; leave it out.
    let seen: Vec<(String, String)> = s
        .server
        .seen()
        .into_iter()
        .filter(|(_, p, _)| p != "/health/metrics")
        .map(|(m, p, _)| (m, p))
        .collect();
    let state: Vec<usize> = (0..seen.len())
        .filter(|i| seen[*i].1 == "/v1/state/")
        .collect();
    assert_eq!(state.len(), 12, "{seen:?}");
    // The burst is alone: nothing in between, and no generation after it has drained the
    // client's rate-limit tokens (one bucket for every limited route).
    assert_eq!(state[11] - state[0], 11, "{seen:?}");
    assert!(
        seen[state[0]..]
            .iter()
            .all(|(m, p)| p == "/v1/state/" || (m == "GET" && p == "/health")),
        "{seen:?}"
    );
    // The load probe comes last.
    assert!(
        seen.len() - state[11] > 100,
        "the load probe's requests follow the burst"
    );
}

/// Regression (issue 10.22): a body that is not JSON gave CEL's internal error ("No such key");
/// the message says what the service answered.
#[test]
fn a_body_that_is_not_json_is_named_as_such() {
    let _serial = serial();
    let url = fixed_http_server("text/html", "<html><body>login</body></html>");
    let out = audit(&[
        "check",
        "--endpoint",
        &url,
        "--only",
        "status-dimension",
        "--format",
        "json",
    ]);
    let (st, msg) = status(&report(&out), "status-dimension");
    assert_eq!(st, "error", "{msg}");
    assert!(
        msg.starts_with("the service answered 200 with a body that is not JSON (text/html"),
        "{msg}"
    );
}

/// `no-alerts-firing`'s status and message, audited against the Prometheus at `url` alone.
fn no_alerts_firing_against(url: &str) -> (String, String) {
    let out = audit(&[
        "check",
        "--prometheus",
        url,
        "--only",
        "no-alerts-firing",
        "--format",
        "json",
    ]);
    status(&report(&out), "no-alerts-firing")
}

/// A stand-in for a load balancer in front of two pods (an Ingress controller balances each
/// request): every connection carries one request, sent to the next backend in turn with
/// `Connection: close`, so the client opens a new connection for the next request. Bounded: it
/// serves at most 200 connections.
fn round_robin(backends: [String; 2]) -> String {
    use std::io::{BufRead, BufReader, Read, Write};
    let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let url = format!("http://{}", listener.local_addr().unwrap());
    std::thread::spawn(move || {
        for (i, client) in listener.incoming().take(200).enumerate() {
            let Ok(client) = client else { continue };
            let backend = backends[i % 2].trim_start_matches("http://").to_string();
            std::thread::spawn(move || {
                let mut reader = BufReader::new(client.try_clone().unwrap());
                let mut head = String::new();
                loop {
                    let mut line = String::new();
                    if reader.read_line(&mut line).unwrap_or(0) == 0 || line == "\r\n" {
                        break;
                    }
                    if !line.to_ascii_lowercase().starts_with("connection:") {
                        head.push_str(&line);
                    }
                }
                head.push_str("Connection: close\r\n\r\n");
                let Ok(mut upstream) = std::net::TcpStream::connect(&backend) else {
                    return;
                };
                let _ = upstream.write_all(head.as_bytes());
                let mut answer = Vec::new();
                let _ = upstream.read_to_end(&mut answer);
                let mut client = client;
                let _ = client.write_all(&answer);
            });
        }
    });
    url
}

/// An `--endpoint` that is a load balancer over two pods answered each scrape from either one:
/// the rates read every switch as a counter reset, and an erroring pod's errors were averaged
/// with the healthy one's (or vanished). The pages' `*_created` times tell the processes apart:
/// the metrics checks are errors saying so.
#[test]
fn a_load_balanced_endpoint_is_refused_for_rates() {
    let _serial = serial();
    let a = serve(Config::healthy());
    let b = serve(Config::mode("errors").unwrap());
    let lb = round_robin([a.server.url.clone(), b.server.url.clone()]);
    let out = audit(&[
        "check",
        "--endpoint",
        &lb,
        "--observe",
        "4s",
        "--window",
        "3s",
        "--only",
        "error-rate-below-1pct,metrics-being-collected",
        "--format",
        "json",
    ]);
    let r = report(&out);
    for id in ["error-rate-below-1pct", "metrics-being-collected"] {
        let (st, msg) = status(&r, id);
        assert_eq!(st, "error", "{id}: {msg}");
        assert!(
            msg.contains(&format!(
                "{} answered from more than one process",
                lb.trim_start_matches("http://")
            )),
            "{id}: {msg}"
        );
    }
    assert_eq!(out.status.code(), Some(3));
    // Each pod on its own is scraped as before.
    let out = audit(&[
        "check",
        "--endpoint",
        &a.server.url,
        "--observe",
        "4s",
        "--window",
        "3s",
        "--only",
        "metrics-being-collected",
        "--format",
        "json",
    ]);
    assert_eq!(status(&report(&out), "metrics-being-collected").0, "pass");
}

/// A Prometheus HTTP API on 127.0.0.1 that answers the audit's guards as a healthy Prometheus
/// with one MLSDM target does, `/api/v1/rules` with `rules`, and every check's instant query with
/// `answer(now)`: (HTTP status, body); `prometheus_with_rules_answer`, whose query answers are
/// fixed, with the answer to the checks' queries chosen. Each connection is answered once and
/// closed.
fn prometheus_stub(rules: &'static str, answer: fn(f64) -> (u16, String)) -> String {
    use std::io::{BufRead, Write};
    let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let url = format!("http://{}", listener.local_addr().unwrap());
    std::thread::spawn(move || {
        // Bounded: an audit of one check sends a handful of requests.
        for stream in listener.incoming().take(100).flatten() {
            let mut reader = std::io::BufReader::new(&stream);
            let mut line = String::new();
            if reader.read_line(&mut line).is_err() {
                continue;
            }
            while reader.read_line(&mut String::new()).is_ok_and(|n| n > 2) {}
            let target = line
                .split_whitespace()
                .nth(1)
                .unwrap_or_default()
                .to_string();
            let query = target
                .split_once("query=")
                .map(|(_, q)| q.split('&').next().unwrap_or_default().replace('+', " "))
                .map(|q| {
                    // Enough of percent-decoding for the guards' texts.
                    q.replace("%3D", "=").replace("%20", " ")
                })
                .unwrap_or_default();
            let now = std::time::SystemTime::now()
                .duration_since(std::time::UNIX_EPOCH)
                .unwrap()
                .as_secs_f64();
            let vector = |result: &str| {
                format!(
                    r#"{{"status":"success","data":{{"resultType":"vector","result":[{result}]}}}}"#
                )
            };
            let (status, body) = if target.starts_with("/api/v1/rules") {
                (200, rules.to_string())
            } else if query.starts_with("up == 0") {
                (200, vector(""))
            } else if query.starts_with("up == 1") {
                (
                    200,
                    vector(&format!(
                        r#"{{"metric":{{"job":"mlsdm","instance":"10.0.0.1:8000","namespace":"mlsdm-production"}},"value":[{now},"1"]}}"#
                    )),
                )
            } else {
                answer(now)
            };
            let mut stream = &stream;
            let _ = write!(
                stream,
                "HTTP/1.1 {status} X\r\nContent-Type: application/json\r\nContent-Length: {}\r\nConnection: close\r\n\r\n{body}",
                body.len()
            );
        }
    });
    url
}

/// Review findings against a Prometheus that answers wrongly: a success body under HTTP 500,
/// a scalar for `ALERTS{...}` (a vector query), and alerting rules that do not evaluate each
/// passed the metrics checks. Against the same stub answering well, they pass: the stub is
/// what a healthy Prometheus says.
#[test]
fn wrong_prometheus_answers_decide_nothing() {
    const OK_RULES: &str =
        r#"{"status":"success","data":{"groups":[{"rules":[{"type":"alerting","health":"ok"}]}]}}"#;
    const BROKEN_RULES: &str = r#"{"status":"success","data":{"groups":[{"rules":[{"type":"alerting","health":"err"},{"type":"alerting","health":"unknown"}]}]}}"#;
    let verdict = |url: &str| no_alerts_firing_against(url);
    let healthy = prometheus_stub(OK_RULES, |_| {
        (
            200,
            r#"{"status":"success","data":{"resultType":"vector","result":[]}}"#.into(),
        )
    });
    assert_eq!(verdict(&healthy).0, "pass", "{:?}", verdict(&healthy));
    let server_error = prometheus_stub(OK_RULES, |_| {
        (
            500,
            r#"{"status":"success","data":{"resultType":"vector","result":[]}}"#.into(),
        )
    });
    let (s, why) = verdict(&server_error);
    assert_eq!(s, "error", "{why}");
    assert!(why.contains("HTTP 500 with a success body"), "{why}");
    let scalar = prometheus_stub(OK_RULES, |now| {
        (
            200,
            format!(
                r#"{{"status":"success","data":{{"resultType":"scalar","result":[{now},"0"]}}}}"#
            ),
        )
    });
    let (s, why) = verdict(&scalar);
    assert_eq!(s, "error", "{why}");
    assert!(
        why.contains("answered a vector query with a scalar"),
        "{why}"
    );
    let broken = prometheus_stub(BROKEN_RULES, |_| {
        (
            200,
            r#"{"status":"success","data":{"resultType":"vector","result":[]}}"#.into(),
        )
    });
    let (s, why) = verdict(&broken);
    assert_eq!(s, "no-data", "{why}");
    assert!(
        why.contains("2 of Prometheus' 2 alerting rule(s) do not evaluate"),
        "{why}"
    );
}

/// Serves `/health/metrics` from `pages`, the i-th scrape the i-th page (the last one after
/// that), anything else 404; one request per connection. Bounded: at most 100 connections.
fn metrics_pages(pages: Vec<String>) -> String {
    use std::io::{BufRead, BufReader, Write};
    let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let url = format!("http://{}", listener.local_addr().unwrap());
    std::thread::spawn(move || {
        let mut served = 0;
        for client in listener.incoming().take(100) {
            let Ok(mut client) = client else { continue };
            let mut reader = BufReader::new(client.try_clone().unwrap());
            let mut request = String::new();
            let _ = reader.read_line(&mut request);
            loop {
                let mut line = String::new();
                if reader.read_line(&mut line).unwrap_or(0) == 0 || line == "\r\n" {
                    break;
                }
            }
            let answer = if request.starts_with("GET /health/metrics ") {
                let page = &pages[served.min(pages.len() - 1)];
                served += 1;
                format!(
                    "HTTP/1.1 200 OK\r\nContent-Type: text/plain; version=0.0.4\r\nContent-Length: {}\r\nConnection: close\r\n\r\n{page}",
                    page.len()
                )
            } else {
                "HTTP/1.1 404 Not Found\r\nContent-Length: 0\r\nConnection: close\r\n\r\n"
                    .to_string()
            };
            let _ = client.write_all(answer.as_bytes());
        }
    });
    url
}

/// Review 32b: without `*_created` samples, pods taking turns behind a URL whose counters only
/// go up read as one process's traffic (a 50 % error rate passed); and a 5xx series that first
/// appears mid-observation (a labelled counter is created on its first increment) counted none
/// of its errors.
#[test]
fn rates_over_pages_that_cannot_be_trusted_decide_nothing_or_count_from_zero() {
    let page = |ok: u64, errors: Option<u64>, created: bool| {
        let errors = errors.map_or_else(String::new, |e| {
            format!(
                "mlsdm_http_requests_total{{method=\"POST\",endpoint=\"/generate\",status=\"500\"}} {e}\n"
            )
        });
        let created = if created {
            "# TYPE mlsdm_http_requests_created gauge\nmlsdm_http_requests_created{method=\"POST\",endpoint=\"/generate\",status=\"200\"} 1.7e9\n"
        } else {
            ""
        };
        format!(
            "# TYPE mlsdm_http_requests_total counter\nmlsdm_http_requests_total{{method=\"POST\",endpoint=\"/generate\",status=\"200\"}} {ok}\n{errors}{created}"
        )
    };
    let run = |url: &str| {
        let out = audit(&[
            "check",
            "--endpoint",
            url,
            "--observe",
            "3s",
            "--only",
            "error-rate-below-1pct",
            "--format",
            "json",
        ]);
        status(&report(&out), "error-rate-below-1pct")
    };
    let uncreated = metrics_pages(
        (0..20)
            .map(|i| page(1000 + 10 * i, Some(1000 + 10 * i), false))
            .collect(),
    );
    let (st, msg) = run(&uncreated);
    assert_eq!(st, "no-data", "{msg}");
    assert!(msg.contains("no *_created sample"), "{msg}");
    let appearing = metrics_pages(
        (0..20)
            .map(|i| page(1000 + 10 * i, (i > 0).then_some(900), true))
            .collect(),
    );
    let (st, msg) = run(&appearing);
    assert_eq!(st, "fail", "{msg}");
}

/// Answers each request with `answer(request line)`, a whole raw HTTP response; one request per
/// connection. Bounded: at most 100 connections.
fn raw_http_server(answer: fn(&str) -> String) -> String {
    use std::io::{BufRead, BufReader, Read, Write};
    let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let url = format!("http://{}", listener.local_addr().unwrap());
    std::thread::spawn(move || {
        for client in listener.incoming().take(100) {
            let Ok(mut client) = client else { continue };
            let mut reader = BufReader::new(client.try_clone().unwrap());
            let mut request = String::new();
            let _ = reader.read_line(&mut request);
            let mut length = 0usize;
            loop {
                let mut line = String::new();
                if reader.read_line(&mut line).unwrap_or(0) == 0 || line == "\r\n" {
                    break;
                }
                if let Some(v) = line.to_ascii_lowercase().strip_prefix("content-length:") {
                    length = v.trim().parse().unwrap_or(0);
                }
            }
            let mut body = vec![0u8; length.min(1 << 20)];
            let _ = reader.read_exact(&mut body);
            let _ = client.write_all(answer(&request).as_bytes());
        }
    });
    url
}

/// `/health` with X-Content-Type-Options sent twice (review 32g).
fn answer_headers(_: &str) -> String {
    let body = "{\"status\":\"healthy\"}";
    format!(
        "HTTP/1.1 200 OK\r\ncontent-type: application/json\r\ncontent-length: {}\r\nx-content-type-options: sniff\r\nx-content-type-options: nosniff\r\nx-frame-options: DENY\r\nx-xss-protection: 1; mode=block\r\ncontent-security-policy: default-src 'self'\r\nconnection: close\r\n\r\n{body}",
        body.len()
    )
}

/// `/health` with a Content-Security-Policy widened beyond 'self' (review 32g).
fn answer_widened(_: &str) -> String {
    let body = "{\"status\":\"healthy\"}";
    format!(
        "HTTP/1.1 200 OK\r\ncontent-type: application/json\r\ncontent-length: {}\r\nx-content-type-options: nosniff\r\nx-frame-options: DENY\r\nx-xss-protection: 1; mode=block\r\ncontent-security-policy: default-src 'self' *\r\nconnection: close\r\n\r\n{body}",
        body.len()
    )
}

/// An ingress's own 502 page with every header MLSDM sets (ingress-nginx `add-headers` puts
/// them on every response), and the request ID echoed: MLSDM did not answer.
fn answer_proxy_error(_: &str) -> String {
    let body = "<html><body>502 Bad Gateway</body></html>";
    format!(
        "HTTP/1.1 502 Bad Gateway\r\ncontent-type: text/html\r\ncontent-length: {}\r\nx-content-type-options: nosniff\r\nx-frame-options: DENY\r\nx-xss-protection: 1; mode=block\r\ncontent-security-policy: default-src 'self'\r\nx-request-id: mlsdm-audit-request-id-probe\r\nconnection: close\r\n\r\n{body}",
        body.len()
    )
}

/// A POST redirected to a login page, which answers 200 (review 32g).
fn answer_login(request: &str) -> String {
    if request.starts_with("POST ") {
        "HTTP/1.1 302 Found\r\nlocation: /login\r\ncontent-length: 0\r\nconnection: close\r\n\r\n"
            .to_string()
    } else {
        let body = "<html><body>Sign in</body></html>";
        format!(
            "HTTP/1.1 200 OK\r\ncontent-type: text/html\r\ncontent-length: {}\r\nconnection: close\r\n\r\n{body}",
            body.len()
        )
    }
}

/// Review 32g: a header sent twice kept its last value (`X-Content-Type-Options: sniff` then
/// `nosniff` passed, where a browser reads `sniff, nosniff`); a widened CSP passed on the words
/// `default-src 'self'`; and a POST redirected to a login page was judged on the login page's
/// 200 ("API_KEY is not enforced") instead of being undecided.
#[test]
fn duplicated_headers_widened_policies_and_redirected_posts_are_not_mlsdms_answers() {
    let _serial = serial();
    let judged = |answer: fn(&str) -> String, id: &str| {
        let url = raw_http_server(answer);
        let out = audit(&[
            "check",
            "--endpoint",
            &url,
            "--only",
            id,
            "--format",
            "json",
        ]);
        status(&report(&out), id)
    };
    let (st, msg) = judged(answer_headers, "security-headers");
    assert_eq!(st, "fail", "{msg}");
    assert!(msg.contains("X-Content-Type-Options"), "{msg}");
    let (st, msg) = judged(answer_widened, "security-headers");
    assert_eq!(st, "fail", "{msg}");
    assert!(msg.contains("widened"), "{msg}");
    let (st, msg) = judged(answer_login, "auth-required-generate");
    assert_eq!(st, "error", "{msg}");
    assert!(msg.contains("through a redirect"), "{msg}");
    // Review finding: a proxy's error page with the headers passed both checks while MLSDM
    // did not answer.
    for id in ["security-headers", "request-id-echoed"] {
        let (st, msg) = judged(answer_proxy_error, id);
        assert_eq!(st, "fail", "{id}: {msg}");
        assert!(msg.contains("GET /health answered 502"), "{id}: {msg}");
    }
}

/// Known debt, fixed at stop 33: a 429 to the end-to-end request (another client, or an earlier
/// audit, spending this client's allowance) failed api-end-to-end as if generation were broken.
/// It decides nothing: error, naming the limiter. The burst that expects 429s still reads them.
#[test]
fn a_rate_limited_probe_is_an_error_not_a_failure() {
    let _serial = serial();
    let s = serve(Config {
        // No token ever: every valid generation is turned away (auth and validation come first).
        rate_limit: Some((0, 600)),
        ..Config::healthy()
    });
    let out = endpoint_json(
        &s.server.url,
        "api-end-to-end,rate-limit-enforced",
        &["--api-key-env", "MLSDM_TEST_KEY", "--active"],
    );
    let r = report(&out);
    let (st, msg) = status(&r, "api-end-to-end");
    assert_eq!(st, "error", "{msg}");
    assert!(msg.contains("rate limiter answered 429"), "{msg}");
    let (st, msg) = status(&r, "rate-limit-enforced");
    assert_eq!(st, "pass", "{msg}");
}
