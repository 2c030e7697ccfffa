//! The MLSDM stand-in against raw captures of the real service (fixtures/upstream-captures):
//! same status codes, content types, security headers and JSON keys, and only metric families
//! the real service exposes, with the same types.

use mlsdm_audit_testservers::mlsdm::{Config, start};
use serde_json::Value;
use std::collections::{BTreeMap, BTreeSet};
use std::fmt::Write as _;
use std::io::{Read, Write};

struct Capture {
    status: u16,
    headers: BTreeMap<String, String>,
    body: String,
}

/// Parses a raw HTTP response: status line, headers, body.
fn parse(text: &str) -> Capture {
    let text = text.replace("\r\n", "\n");
    let (head, body) = text.split_once("\n\n").unwrap_or((&text, ""));
    let mut lines = head.lines();
    let status = lines
        .next()
        .unwrap()
        .split_whitespace()
        .nth(1)
        .unwrap()
        .parse()
        .unwrap();
    let headers = lines
        .filter_map(|l| l.split_once(':'))
        .map(|(k, v)| (k.trim().to_ascii_lowercase(), v.trim().to_string()))
        .collect();
    Capture {
        status,
        headers,
        body: body.to_string(),
    }
}

fn capture(name: &str) -> Capture {
    parse(
        &std::fs::read_to_string(format!(
            "{}/fixtures/upstream-captures/{name}.http",
            env!("CARGO_MANIFEST_DIR")
        ))
        .unwrap(),
    )
}

/// A raw HTTP/1.0 request to the stand-in.
fn request(addr: &str, method: &str, path: &str, headers: &[(&str, &str)], body: &str) -> Capture {
    let mut s = std::net::TcpStream::connect(addr).unwrap();
    let mut req = format!(
        "{method} {path} HTTP/1.0\r\nHost: {addr}\r\nContent-Length: {}\r\n",
        body.len()
    );
    for (k, v) in headers {
        let _ = write!(req, "{k}: {v}\r\n");
    }
    req.push_str("\r\n");
    req.push_str(body);
    s.write_all(req.as_bytes()).unwrap();
    let mut out = String::new();
    s.read_to_string(&mut out).unwrap();
    parse(&out)
}

/// Keys of a JSON document, as paths (objects only; arrays by their first element).
fn key_paths(v: &Value, prefix: &str, out: &mut BTreeSet<String>) {
    match v {
        Value::Object(m) => {
            for (k, v) in m {
                let p = format!("{prefix}/{k}");
                out.insert(p.clone());
                key_paths(v, &p, out);
            }
        }
        Value::Array(a) => {
            if let Some(first) = a.first() {
                key_paths(first, &format!("{prefix}[]"), out);
            }
        }
        _ => {}
    }
}

fn families(text: &str) -> BTreeMap<String, String> {
    text.lines()
        .filter_map(|l| l.strip_prefix("# TYPE "))
        .filter_map(|r| r.split_once(' '))
        .map(|(n, t)| (n.to_string(), t.trim().to_string()))
        .collect()
}

/// (capture name, method, path, request headers, body)
type Case<'a> = (&'a str, &'a str, &'a str, &'a [(&'a str, &'a str)], &'a str);

#[test]
fn the_stand_in_speaks_like_the_real_service() {
    let rt = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(1)
        .enable_all()
        .build()
        .unwrap();
    let server = rt
        .block_on(start("127.0.0.1:0", Config::healthy()))
        .unwrap();
    let addr = server.url.trim_start_matches("http://").to_string();
    let prompt = r#"{"prompt": "hi"}"#;
    let auth = format!("Bearer {}", Config::healthy().api_key.unwrap());
    let json_auth: &[(&str, &str)] = &[
        ("Content-Type", "application/json"),
        ("Authorization", auth.as_str()),
    ];
    let cases: [Case; 19] = [
        ("GET_health", "GET", "/health", &[], ""),
        ("GET_health_live", "GET", "/health/live", &[], ""),
        ("GET_health_liveness", "GET", "/health/liveness", &[], ""),
        ("GET_health_ready", "GET", "/health/ready", &[], ""),
        ("GET_health_readiness", "GET", "/health/readiness", &[], ""),
        ("GET_health_detailed", "GET", "/health/detailed", &[], ""),
        ("GET_status", "GET", "/status", &[], ""),
        ("GET_v1_status", "GET", "/v1/status", &[], ""),
        ("GET_metrics", "GET", "/metrics", &[], ""),
        ("GET_v1_state_noauth", "GET", "/v1/state/", &[], ""),
        (
            "POST_generate_noauth",
            "POST",
            "/generate",
            &[("Content-Type", "application/json")],
            prompt,
        ),
        (
            "POST_generate_badkey",
            "POST",
            "/generate",
            &[
                ("Content-Type", "application/json"),
                ("Authorization", "Bearer wrong-key"),
            ],
            prompt,
        ),
        (
            "POST_infer_noauth",
            "POST",
            "/infer",
            &[("Content-Type", "application/json")],
            prompt,
        ),
        ("GET_v1_state_auth", "GET", "/v1/state/", json_auth, ""),
        // The stand-in's moral filter is fixed (threshold 0.55) where upstream's adapts: a benign
        // moral_value gets the accepted answer, the default one the rejected answer.
        (
            "POST_generate_accepted",
            "POST",
            "/generate",
            json_auth,
            r#"{"prompt": "hi", "moral_value": 0.8}"#,
        ),
        (
            "POST_generate_rejected",
            "POST",
            "/generate",
            json_auth,
            prompt,
        ),
        (
            "POST_generate_invalid",
            "POST",
            "/generate",
            json_auth,
            r#"{"not_a_prompt": true}"#,
        ),
        (
            "POST_generate_invalid_noauth",
            "POST",
            "/generate",
            &[("Content-Type", "application/json")],
            r#"{"prompt": ""}"#,
        ),
        (
            "POST_infer_invalid",
            "POST",
            "/infer",
            &[("Content-Type", "application/json")],
            r#"{"prompt": ""}"#,
        ),
    ];
    let asleep = rt
        .block_on(start("127.0.0.1:0", Config::mode("asleep").unwrap()))
        .unwrap();
    let asleep_addr = asleep.url.trim_start_matches("http://").to_string();
    let asleep_case: Case = (
        "POST_generate_asleep",
        "POST",
        "/generate",
        json_auth,
        prompt,
    );
    for (name, method, path, headers, body) in cases.into_iter().chain([asleep_case]) {
        let real = capture(name);
        let at = if name == "POST_generate_asleep" {
            &asleep_addr
        } else {
            &addr
        };
        let ours = request(at, method, path, headers, body);
        assert_eq!(ours.status, real.status, "{name}: status");
        assert_eq!(
            ours.headers.get("content-type"),
            real.headers.get("content-type"),
            "{name}: content-type"
        );
        for h in [
            "x-content-type-options",
            "x-frame-options",
            "x-xss-protection",
            "content-security-policy",
        ] {
            assert_eq!(ours.headers.get(h), real.headers.get(h), "{name}: {h}");
        }
        assert!(
            ours.headers.contains_key("x-request-id")
                && ours.headers.contains_key("x-response-time"),
            "{name}"
        );
        let (Ok(real_json), Ok(our_json)) = (
            serde_json::from_str::<Value>(&real.body),
            serde_json::from_str::<Value>(&ours.body),
        ) else {
            panic!("{name}: a JSON body on both sides");
        };
        let (mut real_keys, mut our_keys) = (BTreeSet::new(), BTreeSet::new());
        key_paths(&real_json, "", &mut real_keys);
        key_paths(&our_json, "", &mut our_keys);
        // The stand-in trims some detail objects (statistics, timings); every key it has, the real service has.
        let extra: Vec<&String> = our_keys.difference(&real_keys).collect();
        assert!(
            extra.is_empty(),
            "{name}: keys the real service does not have: {extra:?}"
        );
        let top = |keys: &BTreeSet<String>| {
            keys.iter()
                .filter(|k| k.matches('/').count() == 1)
                .cloned()
                .collect::<BTreeSet<_>>()
        };
        // The stand-in's /infer answer trims its metadata objects; every other answer has
        // exactly the real service's top-level keys.
        if name != "POST_infer_noauth" {
            assert_eq!(top(&our_keys), top(&real_keys), "{name}: top-level keys");
        }
        // What the auditor reads of a generation answer is the same.
        for field in ["/accepted", "/phase", "/safety_flags/rejected_at"] {
            if name.starts_with("POST_generate_") && real.status == 200 {
                assert_eq!(
                    our_json.pointer(field),
                    real_json.pointer(field),
                    "{name}: {field}"
                );
            }
        }
    }
    // Metrics: a subset of the real families, with the same types, including every family a check reads.
    let real_page = capture("GET_health_metrics").body;
    let real = families(&real_page);
    let ours = request(&addr, "GET", "/health/metrics", &[], "");
    // Both pages are read whole: a line prometheus-parse would skip or cut fails the scrape
    // (`Store::add_scrape`), so the real service's page must have none.
    for (page, who) in [
        (&real_page, "the real service's"),
        (&ours.body, "the stand-in's"),
    ] {
        let mut store = mlsdm_audit::promql::Store::default();
        if let Err(e) = store.add_scrape("a:8000", 0.0, page) {
            panic!("{who} metrics page does not read: {e}");
        }
    }
    assert_eq!(
        ours.headers.get("content-type").map(String::as_str),
        Some("text/plain; charset=utf-8")
    );
    let ours = families(&ours.body);
    for (name, kind) in &ours {
        assert_eq!(
            real.get(name),
            Some(kind),
            "{name} is not a {kind} family of the real service"
        );
    }
    for needed in [
        "mlsdm_http_requests_total",
        "mlsdm_http_request_latency_seconds",
        "mlsdm_errors_total",
    ] {
        assert!(
            ours.contains_key(needed) && real.contains_key(needed),
            "{needed}"
        );
    }
}

/// What MLSDM_FACTS.md measured on the real service and no capture shows: auth before body
/// validation before the rate limiter (a 401 or a 422 uses no token), and a 429 worded by route.
#[test]
fn the_stand_in_orders_auth_validation_and_limiter_like_the_real_service() {
    let rt = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(1)
        .enable_all()
        .build()
        .unwrap();
    let server = rt
        .block_on(start("127.0.0.1:0", Config::healthy()))
        .unwrap();
    let addr = server.url.trim_start_matches("http://").to_string();
    let auth = format!("Bearer {}", Config::healthy().api_key.unwrap());
    let json = ("Content-Type", "application/json");
    let good = [json, ("Authorization", auth.as_str())];
    // Twenty refused or invalid requests in a row use no token: none of them is a 429.
    for _ in 0..10 {
        let r = request(&addr, "POST", "/generate", &[json], r#"{"prompt": "x"}"#);
        assert_eq!(r.status, 401);
        let r = request(&addr, "POST", "/infer", &[json], r#"{"prompt": ""}"#);
        assert_eq!(
            r.status, 422,
            "an invalid body on /infer: 422 before the limiter"
        );
    }
    // A wrong key is refused before an invalid body is looked at.
    let r = request(&addr, "POST", "/generate", &[json], "{}");
    assert_eq!(r.status, 401);
    // The state route's 429 is FastAPI's {"detail": ...}; /generate's is MLSDM's error object.
    let statuses: Vec<Capture> = (0..12)
        .map(|_| request(&addr, "GET", "/v1/state/", &good, ""))
        .collect();
    assert!(statuses[..5].iter().all(|r| r.status == 200));
    let limited = statuses.iter().find(|r| r.status == 429).expect("a 429");
    let real_body = |name: &str| serde_json::from_str::<Value>(&capture(name).body).unwrap();
    assert_eq!(
        serde_json::from_str::<Value>(&limited.body).unwrap(),
        real_body("GET_v1_state_429")
    );
    let limited = (0..12)
        .map(|_| request(&addr, "POST", "/generate", &good, r#"{"prompt": "x"}"#))
        .find(|r| r.status == 429)
        .expect("a 429");
    assert_eq!(
        serde_json::from_str::<Value>(&limited.body).unwrap(),
        real_body("POST_generate_429")
    );
}
