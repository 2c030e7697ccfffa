//! The auditor against the real MLSDM 1.2.0 (upstream's source, run with uvicorn on 127.0.0.1):
//! for each scenario a fresh service process, one audit, and the exact status of every http and
//! metrics check. It runs when `MLSDM_AUDIT_REAL_MLSDM` names the unpacked source tree and
//! `MLSDM_AUDIT_REAL_MLSDM_VENV` its venv (scripts/test.sh prepares both when upstream's tarball
//! is beside the repository); otherwise each test says it is skipped and returns.
//!
//! Nothing here asserts a latency. Readiness is MLSDM's view of the node (503 at 98 % node CPU),
//! so on a busy machine the two readiness checks may fail, and only for that reason.

mod support;

use serde_json::{Value, json};
use std::collections::BTreeMap;
use std::io::{Read, Write};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Output, Stdio};
use std::time::{Duration, Instant};

const KEY: &str = "real-mlsdm-test-key-0123456789abcdef";

/// One scenario at a time: each runs a Python service, and readiness follows the node's CPU.
static SERIAL: std::sync::Mutex<()> = std::sync::Mutex::new(());

fn serial() -> std::sync::MutexGuard<'static, ()> {
    SERIAL
        .lock()
        .unwrap_or_else(std::sync::PoisonError::into_inner)
}

/// The source tree and venv, or None (after saying so) when the test is not set up.
fn setup() -> Option<(PathBuf, PathBuf)> {
    let (Ok(src), Ok(venv)) = (
        std::env::var("MLSDM_AUDIT_REAL_MLSDM"),
        std::env::var("MLSDM_AUDIT_REAL_MLSDM_VENV"),
    ) else {
        // Straight to stderr, past the test harness' capture, so the skip is seen.
        let _ = writeln!(
            std::io::stderr(),
            "skipped: MLSDM_AUDIT_REAL_MLSDM not set (with MLSDM_AUDIT_REAL_MLSDM_VENV: scripts/test.sh sets both when ../shared/upstream/mlsdm-1.2.0-src.tar.gz exists)"
        );
        return None;
    };
    let (src, venv) = (PathBuf::from(src), PathBuf::from(venv));
    assert!(
        src.join("config/production.yaml").is_file(),
        "MLSDM_AUDIT_REAL_MLSDM={} is not an unpacked MLSDM source tree",
        src.display()
    );
    assert!(
        venv.join("bin/uvicorn").is_file(),
        "MLSDM_AUDIT_REAL_MLSDM_VENV={} has no bin/uvicorn",
        venv.display()
    );
    Some((src, venv))
}

fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port()
}

/// A running MLSDM process, killed (SIGKILL: it ignores SIGTERM) when dropped.
struct Real {
    child: Child,
    url: String,
    log: PathBuf,
}

impl Drop for Real {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
        let _ = std::fs::remove_file(&self.log);
    }
}

impl Real {
    /// Starts MLSDM with the production config, the local_stub backend unless `env` says
    /// otherwise, `API_KEY` when given (an empty value in `env` unsets a variable), and nothing else from this process' environment (every
    /// `MLSDM_*` variable would be merged into its config and crash it).
    fn start(src: &Path, venv: &Path, api_key: Option<&str>, env: &[(&str, &str)]) -> Self {
        let port = free_port();
        let log = std::env::temp_dir().join(format!(
            "mlsdm-audit-real-{}-{port}.log",
            std::process::id()
        ));
        let out = std::fs::File::create(&log).unwrap();
        let mut cmd = Command::new(venv.join("bin/uvicorn"));
        cmd.args([
            "mlsdm.api.app:app",
            "--host",
            "127.0.0.1",
            "--port",
            &port.to_string(),
        ])
        .current_dir(src)
        .env_clear()
        .env("PATH", std::env::var("PATH").unwrap_or_default())
        .env("HOME", std::env::temp_dir())
        .env("CONFIG_PATH", "config/production.yaml")
        .env("LLM_BACKEND", "local_stub")
        .envs(env.iter().copied().filter(|(_, v)| !v.is_empty()))
        .stdin(Stdio::null())
        .stdout(out.try_clone().unwrap())
        .stderr(out);
        if let Some(k) = api_key {
            cmd.env("API_KEY", k);
        }
        // An empty value unsets the variable (CONFIG_PATH: the image's default config).
        for (k, _) in env.iter().filter(|(_, v)| v.is_empty()) {
            cmd.env_remove(k);
        }
        let child = cmd.spawn().unwrap();
        let mut real = Self {
            child,
            url: format!("http://127.0.0.1:{port}"),
            log,
        };
        // Generous: imports and start-up take seconds, more on a loaded machine.
        let deadline = Instant::now() + Duration::from_mins(3);
        loop {
            if let Some(status) = real.child.try_wait().unwrap() {
                panic!(
                    "MLSDM exited at start-up ({status}):\n{}",
                    std::fs::read_to_string(&real.log).unwrap_or_default()
                );
            }
            if matches!(real.request("GET", "/health", None, ""), Some((200, _))) {
                return real;
            }
            assert!(
                Instant::now() < deadline,
                "MLSDM did not answer /health within 180 s:\n{}",
                std::fs::read_to_string(&real.log).unwrap_or_default()
            );
            std::thread::sleep(Duration::from_millis(500));
        }
    }

    /// One HTTP/1.0 request over a socket (not the auditor's client): status and JSON body.
    fn request(
        &self,
        method: &str,
        path: &str,
        key: Option<&str>,
        body: &str,
    ) -> Option<(u16, Value)> {
        let host = self.url.trim_start_matches("http://");
        let mut s = std::net::TcpStream::connect(host).ok()?;
        s.set_read_timeout(Some(Duration::from_mins(1))).ok()?;
        let auth = key.map_or(String::new(), |k| format!("Authorization: Bearer {k}\r\n"));
        write!(
            s,
            "{method} {path} HTTP/1.0\r\nHost: {host}\r\nContent-Type: application/json\r\n{auth}Content-Length: {}\r\n\r\n{body}",
            body.len()
        )
        .ok()?;
        let mut out = String::new();
        s.read_to_string(&mut out).ok()?;
        let status = out.split_whitespace().nth(1)?.parse().ok()?;
        let body = out.split_once("\r\n\r\n").map_or("", |(_, b)| b);
        Some((status, serde_json::from_str(body).unwrap_or(Value::Null)))
    }

    /// POST /generate with the key: the JSON answer (after a 429, waits and asks again).
    fn generate(&self, body: &Value) -> Value {
        for _ in 0..20 {
            match self.request("POST", "/generate", Some(KEY), &body.to_string()) {
                Some((200, v)) => return v,
                Some((429, _)) => std::thread::sleep(Duration::from_millis(500)),
                other => panic!("POST /generate answered {other:?}"),
            }
        }
        panic!("POST /generate stayed rate limited");
    }
}

/// Runs `mlsdm-audit check` on the service: the JSON report's statuses and messages by check id.
fn audit(url: &str, key: Option<&str>, active: bool) -> BTreeMap<String, (String, String)> {
    // Generous: a dead LLM backend's client retries with back-off before it gives up.
    audit_with_timeout(url, key, active, "90s")
}

fn audit_with_timeout(
    url: &str,
    key: Option<&str>,
    active: bool,
    http_timeout: &str,
) -> BTreeMap<String, (String, String)> {
    let mut args = vec![
        "check",
        "--no-cluster",
        "--endpoint",
        url,
        "--format",
        "json",
        "--http-timeout",
        http_timeout,
    ];
    if key.is_some() {
        args.extend(["--api-key-env", "MLSDM_AUDIT_REAL_KEY"]);
    }
    if active {
        args.push("--active");
    }
    let out: Output = support::cmd()
        .args(&args)
        .env("MLSDM_AUDIT_REAL_KEY", key.unwrap_or_default())
        .run();
    let r: Value = serde_json::from_slice(&out.stdout)
        .unwrap_or_else(|e| panic!("{e}: {}", String::from_utf8_lossy(&out.stderr)));
    r["results"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|x| x["source"] == "http" || x["source"] == "metrics")
        .map(|x| {
            (
                x["id"].as_str().unwrap().to_string(),
                (
                    x["status"].as_str().unwrap().to_string(),
                    x["message"].as_str().unwrap().to_string(),
                ),
            )
        })
        .collect()
}

/// What a check must give.
#[derive(Clone, Copy, Debug)]
enum Expect {
    /// This status, with a message containing this text.
    Is(&'static str, &'static str),
    /// Readiness, MLSDM's view of the node: pass, or fail with a 503 (node CPU or memory).
    NodeReadiness,
    /// A throughput measurement of this machine (the load probe): pass or fail, decided.
    Measured,
}
use Expect::{Is, Measured, NodeReadiness};

/// Every http and metrics check on a healthy, passive audit with the right key.
fn baseline() -> BTreeMap<&'static str, Expect> {
    let active = "active probe";
    let no_samples = "the query returned no samples";
    BTreeMap::from([
        ("health-live", Is("pass", "")),
        ("health-liveness-legacy", Is("pass", "")),
        ("health-ready", NodeReadiness),
        ("health-readiness-legacy", NodeReadiness),
        ("security-headers", Is("pass", "")),
        ("request-id-echoed", Is("pass", "")),
        ("status-ok", Is("pass", "")),
        ("status-dimension", Is("pass", "")),
        ("status-rate-limit", Is("pass", "")),
        // No workload declares a backend in a --no-cluster run.
        (
            "status-backend-matches",
            Is("skipped", "no workload declaring LLM_BACKEND"),
        ),
        ("memory-within-bounds", Is("pass", "")),
        ("api-docs-published", Is("pass", "")),
        ("metrics-endpoint", Is("pass", "")),
        ("auth-required-generate", Is("pass", "")),
        // Upstream's /infer has no authentication: a real finding, found without generating.
        (
            "auth-required-infer",
            Is(
                "fail",
                "unauthenticated POST /infer was not refused: it answered 422",
            ),
        ),
        ("api-error-handling", Is("pass", "")),
        ("api-end-to-end", Is("skipped", active)),
        ("rate-limit-enforced", Is("skipped", active)),
        ("load-probe", Is("skipped", active)),
        // Declared, never fed: no rate or latency can be computed, so never a pass.
        (
            "metrics-being-collected",
            Is("fail", "mlsdm_http_requests_total has no samples"),
        ),
        ("error-rate-below-1pct", Is("no-data", no_samples)),
        ("rollback-error-rate", Is("no-data", no_samples)),
        ("no-unexpected-errors", Is("no-data", no_samples)),
        ("p95-latency-below-100ms", Is("no-data", no_samples)),
        ("rollback-p95-latency", Is("no-data", no_samples)),
        // Series only a Prometheus server (cAdvisor, ALERTS) has.
        ("no-alerts-firing", Is("no-data", "ALERTS is not exposed")),
        (
            "memory-stable",
            Is(
                "no-data",
                "container_memory_working_set_bytes is not exposed",
            ),
        ),
        (
            "cpu-usage-normal",
            Is(
                "no-data",
                "container_cpu_usage_seconds_total is not exposed",
            ),
        ),
    ])
}

/// Checks a report against the baseline with `changes`, and that the table names every http
/// and metrics check in the catalog.
fn assert_table(
    scenario: &str,
    got: &BTreeMap<String, (String, String)>,
    changes: &[(&'static str, Expect)],
) {
    let mut want = baseline();
    for (id, e) in changes {
        assert!(
            want.contains_key(id),
            "{scenario}: {id} is not in the table"
        );
        want.insert(id, *e);
    }
    let catalog: Vec<String> = mlsdm_audit::checks::load(&[])
        .unwrap()
        .into_iter()
        .filter(|c| {
            matches!(
                c.source(),
                mlsdm_audit::checks::Source::Http | mlsdm_audit::checks::Source::Metrics
            )
        })
        .map(|c| c.id)
        .collect();
    let table: Vec<String> = want.keys().map(|k| (*k).to_string()).collect();
    let mut sorted = catalog.clone();
    sorted.sort();
    assert_eq!(
        table, sorted,
        "the table must list every http and metrics check"
    );
    let mut problems = Vec::new();
    for (id, expect) in &want {
        let Some((st, msg)) = got.get(*id) else {
            problems.push(format!("{id}: no result"));
            continue;
        };
        let ok = match expect {
            Is(status, needle) => st == status && msg.contains(needle),
            NodeReadiness => {
                st == "pass"
                    || (st == "fail"
                        && (msg.contains("503")
                            && (msg.contains("system_cpu")
                                || msg.contains("system_memory")
                                || *id == "health-readiness-legacy")))
            }
            Measured => st == "pass" || st == "fail",
        };
        if !ok {
            problems.push(format!("{id}: want {expect:?}, got {st}: {msg}"));
        }
    }
    assert!(problems.is_empty(), "{scenario}: {problems:#?}");
}

#[test]
fn healthy_with_a_key() {
    let _s = serial();
    let Some((src, venv)) = setup() else { return };
    let real = Real::start(&src, &venv, Some(KEY), &[]);
    let passive = audit(&real.url, Some(KEY), false);
    assert_table("healthy, passive", &passive, &[]);
    let active = audit(&real.url, Some(KEY), true);
    assert_table(
        "healthy, active",
        &active,
        &[
            ("api-end-to-end", Is("pass", "")),
            ("rate-limit-enforced", Is("pass", "")),
            ("load-probe", Measured),
        ],
    );
}

#[test]
fn api_key_unset() {
    let _s = serial();
    let Some((src, venv)) = setup() else { return };
    let real = Real::start(&src, &venv, None, &[]);
    let needs_key = "needs MLSDM's API key";
    let r = audit(&real.url, None, false);
    assert_table(
        "API_KEY unset, no key given",
        &r,
        &[
            // The invalid body's 422 shows the open door; nothing was generated.
            (
                "auth-required-generate",
                Is("fail", "unauthenticated POST /generate answered 422"),
            ),
            ("api-error-handling", Is("skipped", needs_key)),
        ],
    );
}

#[test]
fn rate_limit_disabled() {
    let _s = serial();
    let Some((src, venv)) = setup() else { return };
    let real = Real::start(&src, &venv, Some(KEY), &[("DISABLE_RATE_LIMIT", "1")]);
    let r = audit(&real.url, Some(KEY), true);
    assert_table(
        "DISABLE_RATE_LIMIT=1, active",
        &r,
        &[
            ("status-rate-limit", Is("fail", "")),
            (
                "rate-limit-enforced",
                Is(
                    "fail",
                    "12 requests in a burst got 200 200 200 200 200 200 200 200 200 200 200 200: none was rate limited",
                ),
            ),
            ("api-end-to-end", Is("pass", "")),
            ("load-probe", Measured),
        ],
    );
}

#[test]
fn dead_llm_backend() {
    let _s = serial();
    let Some((src, venv)) = setup() else { return };
    let has_openai = Command::new(venv.join("bin/python"))
        .args(["-c", "import openai"])
        .status()
        .is_ok_and(|s| s.success());
    assert!(
        has_openai,
        "the venv lacks upstream's optional openai client: pip install openai (scripts/real-mlsdm.sh does)"
    );
    // The openai client reads OPENAI_BASE_URL: a loopback port nothing listens on.
    let base = format!("http://127.0.0.1:{}/v1", free_port());
    let real = Real::start(
        &src,
        &venv,
        Some(KEY),
        &[
            ("LLM_BACKEND", "openai"),
            ("OPENAI_API_KEY", "sk-mlsdm-audit-test-not-a-key"),
            ("OPENAI_BASE_URL", &base),
        ],
    );
    let r = audit(&real.url, Some(KEY), true);
    assert_table(
        "LLM_BACKEND=openai, unreachable",
        &r,
        &[
            // 200 every time, nothing generated: the retries do not help a dead backend.
            (
                "api-end-to-end",
                Is(
                    "fail",
                    "POST /generate answered 200 but generated nothing (accepted: false, rejected_at: generation, phase: wake) in 3 attempt(s)",
                ),
            ),
            ("rate-limit-enforced", Is("pass", "")),
            ("load-probe", Measured),
        ],
    );
}

#[test]
fn engine_asleep_after_eight_accepted_generations() {
    let _s = serial();
    let Some((src, venv)) = setup() else { return };
    let real = Real::start(&src, &venv, Some(KEY), &[]);
    let benign = json!({"prompt": "mlsdm-audit test: please help with kind support and care", "max_tokens": 8, "moral_value": 0.9});
    let mut accepted = 0;
    let mut sent = 0;
    while accepted < 8 {
        sent += 1;
        assert!(
            sent <= 40,
            "only {accepted} accepted generations in 40 requests"
        );
        let v = real.generate(&benign);
        if v["accepted"] == true {
            accepted += 1;
        }
        std::thread::sleep(Duration::from_millis(250));
    }
    // From now on nothing is generated, whatever is asked.
    let v = real.generate(&benign);
    assert_eq!(
        (&v["accepted"], &v["phase"]),
        (&json!(false), &json!("sleep")),
        "{v}"
    );
    std::thread::sleep(Duration::from_secs(1));
    let r = audit(&real.url, Some(KEY), true);
    assert_table(
        "asleep, active",
        &r,
        &[
            (
                "api-end-to-end",
                Is(
                    "fail",
                    "POST /generate answered 200 but generated nothing (accepted: false, rejected_at: generation, phase: sleep) in 1 attempt(s)",
                ),
            ),
            ("rate-limit-enforced", Is("pass", "")),
            ("load-probe", Measured),
        ],
    );
}

#[test]
fn a_wrong_key_is_an_error_not_a_verdict() {
    let _s = serial();
    let Some((src, venv)) = setup() else { return };
    let real = Real::start(&src, &venv, Some(KEY), &[]);
    let refused = "the API key was refused (401)";
    let r = audit(&real.url, Some("not-the-key-0123456789abcdef"), true);
    assert_table(
        "wrong key, active",
        &r,
        &[
            ("api-error-handling", Is("error", refused)),
            ("api-end-to-end", Is("error", refused)),
            ("rate-limit-enforced", Is("error", refused)),
            ("load-probe", Measured),
        ],
    );
}

#[test]
fn twenty_passive_audits_leave_the_engine_untouched() {
    let _s = serial();
    let Some((src, venv)) = setup() else { return };
    let real = Real::start(&src, &venv, Some(KEY), &[]);
    for i in 0..20 {
        let r = audit(&real.url, Some(KEY), false);
        assert_table(&format!("passive audit {}", i + 1), &r, &[]);
    }
    let (status, state) = real.request("GET", "/v1/state/", Some(KEY), "").unwrap();
    assert_eq!(status, 200, "{state}");
    assert_eq!(state["current_phase"], "wake", "{state}");
    // The engine's step counter counts every request that reached it, accepted or not: the
    // first generation after twenty audits is its first step, and it generates.
    let v = real.generate(
        &json!({"prompt": "mlsdm-audit test: please help with kind support and care", "max_tokens": 8, "moral_value": 0.9}),
    );
    assert_eq!(v["memory_stats"]["step"], 1, "{v}");
    assert_eq!(v["accepted"], true, "{v}");
    assert_eq!(v["phase"], "wake", "{v}");
    assert!(v["response"].as_str().is_some_and(|s| !s.is_empty()), "{v}");
}

#[test]
fn embedding_dim_does_not_set_the_running_dimension() {
    let _s = serial();
    let Some((src, venv)) = setup() else { return };
    // Upstream's modular manifests set EMBEDDING_DIM; the API server never reads it.
    let real = Real::start(&src, &venv, Some(KEY), &[("EMBEDDING_DIM", "768")]);
    let (status, body) = real.request("GET", "/status", None, "").unwrap();
    assert_eq!(
        (status, &body["config"]["dimension"]),
        (200, &json!(384)),
        "{body}"
    );
    let r = audit(&real.url, Some(KEY), false);
    assert_table("EMBEDDING_DIM=768, passive", &r, &[]);
}

#[test]
fn default_config() {
    let _s = serial();
    let Some((src, venv)) = setup() else { return };
    // CONFIG_PATH unset and CONFIG_PATH=config/default_config.yaml: the same file, dimension 10.
    for config in ["", "config/default_config.yaml"] {
        let real = Real::start(&src, &venv, Some(KEY), &[("CONFIG_PATH", config)]);
        let (_, body) = real.request("GET", "/status", None, "").unwrap();
        assert_eq!(body["config"]["dimension"], json!(10), "{body}");
        let r = audit(&real.url, Some(KEY), false);
        assert_table(
            &format!("CONFIG_PATH={config:?}, passive"),
            &r,
            &[("status-dimension", Is("fail", "running dimension is 10"))],
        );
    }
}

/// Every http and metrics check of a passive audit as `status` with `needle`; the active probes
/// stay skipped.
fn all_probes(status: &'static str, needle: &'static str) -> Vec<(&'static str, Expect)> {
    baseline()
        .into_iter()
        .filter(|(_, e)| !matches!(e, Is("skipped", "active probe")))
        .map(|(id, _)| (id, Is(status, needle)))
        .collect()
}

#[test]
fn stopped_then_killed() {
    let _s = serial();
    let Some((src, venv)) = setup() else { return };
    let mut real = Real::start(&src, &venv, Some(KEY), &[]);
    let pid = real.child.id().to_string();
    // SIGSTOP: the socket still accepts (the kernel's backlog), nothing answers.
    assert!(
        Command::new("kill")
            .args(["-STOP", &pid])
            .status()
            .unwrap()
            .success()
    );
    let started = Instant::now();
    let r = audit_with_timeout(&real.url, Some(KEY), false, "2s");
    let took = started.elapsed();
    // Every probe is an error (a time-out), and the audit is bounded by --http-timeout: the
    // probes do not wait one after the other.
    assert_table("SIGSTOPped", &r, &all_probes("error", "timed out"));
    assert!(
        took < Duration::from_secs(30),
        "a stopped service held the audit {took:?}"
    );
    // SIGKILL (works on a stopped process): connection refused.
    let _ = real.child.kill();
    let _ = real.child.wait();
    let started = Instant::now();
    let r = audit_with_timeout(&real.url, Some(KEY), false, "2s");
    let took_dead = started.elapsed();
    assert_table("killed", &r, &all_probes("error", "cannot connect"));
    assert!(took_dead < Duration::from_secs(30), "{took_dead:?}");
}

/// A Prometheus (Debian's package) on a free loopback port scraping `target` every second, with
/// its own TSDB directory; SIGKILLed and its directory removed when dropped.
struct Prometheus {
    child: Child,
    url: String,
    dir: PathBuf,
}

impl Drop for Prometheus {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
        let _ = std::fs::remove_dir_all(&self.dir);
    }
}

impl Prometheus {
    fn start(target: &str) -> Option<Self> {
        if Command::new("prometheus")
            .arg("--version")
            .output()
            .is_err()
        {
            let _ = writeln!(
                std::io::stderr(),
                "skipped: no prometheus binary (Debian's prometheus package)"
            );
            return None;
        }
        let port = free_port();
        let dir = std::env::temp_dir().join(format!(
            "mlsdm-audit-real-prom-{}-{port}",
            std::process::id()
        ));
        std::fs::create_dir_all(dir.join("data")).unwrap();
        std::fs::write(
            dir.join("prometheus.yml"),
            format!(
                "global:\n  scrape_interval: 1s\n  evaluation_interval: 1s\nscrape_configs:\n  - job_name: mlsdm\n    metrics_path: /health/metrics\n    static_configs:\n      - targets: [\"{target}\"]\n"
            ),
        )
        .unwrap();
        let child = Command::new("prometheus")
            .arg(format!(
                "--config.file={}",
                dir.join("prometheus.yml").display()
            ))
            .arg(format!(
                "--storage.tsdb.path={}",
                dir.join("data").display()
            ))
            .arg(format!("--web.listen-address=127.0.0.1:{port}"))
            .arg("--log.level=warn")
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(std::fs::File::create(dir.join("log")).unwrap())
            .spawn()
            .unwrap();
        Some(Self {
            child,
            url: format!("http://127.0.0.1:{port}"),
            dir,
        })
    }

    /// The value of `up` for the MLSDM target, once Prometheus has scraped it.
    fn up(&self) -> Option<String> {
        let host = self.url.trim_start_matches("http://");
        let mut s = std::net::TcpStream::connect(host).ok()?;
        s.set_read_timeout(Some(Duration::from_secs(5))).ok()?;
        write!(
            s,
            "GET /api/v1/query?query=up HTTP/1.0\r\nHost: {host}\r\n\r\n"
        )
        .ok()?;
        let mut out = String::new();
        s.read_to_string(&mut out).ok()?;
        let body: Value = serde_json::from_str(out.split_once("\r\n\r\n")?.1).ok()?;
        body["data"]["result"][0]["value"][1]
            .as_str()
            .map(str::to_string)
    }

    fn wait_up(&self, want: &str) {
        let deadline = Instant::now() + Duration::from_mins(1);
        while self.up().as_deref() != Some(want) {
            assert!(
                Instant::now() < deadline,
                "Prometheus' up never became {want}: {:?}",
                self.up()
            );
            std::thread::sleep(Duration::from_millis(500));
        }
    }
}

/// The metrics checks' statuses and messages, from Prometheus.
fn audit_prometheus(prometheus: &str) -> BTreeMap<String, (String, String)> {
    let out = support::run([
        "check",
        "--no-cluster",
        "--prometheus",
        prometheus,
        "--format",
        "json",
    ]);
    let r: Value = serde_json::from_slice(&out.stdout)
        .unwrap_or_else(|e| panic!("{e}: {}", String::from_utf8_lossy(&out.stderr)));
    r["results"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|x| x["source"] == "metrics")
        .map(|x| {
            (
                x["id"].as_str().unwrap().to_string(),
                (
                    x["status"].as_str().unwrap().to_string(),
                    x["message"].as_str().unwrap().to_string(),
                ),
            )
        })
        .collect()
}

#[test]
fn prometheus_scraping_a_service_that_went_down() {
    let _s = serial();
    let Some((src, venv)) = setup() else { return };
    let mut real = Real::start(&src, &venv, Some(KEY), &[]);
    let Some(prom) = Prometheus::start(real.url.trim_start_matches("http://")) else {
        return;
    };
    prom.wait_up("1");
    let metric_ids: Vec<String> = mlsdm_audit::checks::load(&[])
        .unwrap()
        .into_iter()
        .filter(|c| c.source() == mlsdm_audit::checks::Source::Metrics)
        .map(|c| c.id)
        .collect();
    // Up: what the real service's metrics give through Prometheus (no request samples, no
    // cAdvisor, no alert rules).
    let r = audit_prometheus(&prom.url);
    let no_data = |id: &str| r[id].0 == "no-data";
    assert_eq!(r["metrics-being-collected"].0, "fail", "{r:#?}");
    for id in [
        "error-rate-below-1pct",
        "rollback-error-rate",
        "no-unexpected-errors",
        "p95-latency-below-100ms",
        "rollback-p95-latency",
        "memory-stable",
        "cpu-usage-normal",
    ] {
        assert!(no_data(id), "{id}: {:?}", r[id]);
    }
    // This Prometheus has no alerting rule, so no alert could fire: no evidence either way.
    assert_eq!(r["no-alerts-firing"].0, "no-data", "{r:#?}");
    assert!(
        r["no-alerts-firing"]
            .1
            .contains("Prometheus has no alerting rules: no alert could fire"),
        "{r:#?}"
    );
    // Down for over a minute: no metrics check may pass on what Prometheus kept from before.
    let _ = real.child.kill();
    let _ = real.child.wait();
    prom.wait_up("0");
    std::thread::sleep(Duration::from_secs(62));
    let r = audit_prometheus(&prom.url);
    assert_eq!(r.len(), metric_ids.len(), "{r:#?}");
    for id in &metric_ids {
        let (status, message) = &r[id];
        assert!(
            status == "error" && message.contains("up == 0"),
            "{id} with the target down: {status}: {message}"
        );
    }
}
