//! The `--selector` string form against a real kube-apiserver: for every selector below, the
//! objects the tool's parser and matcher select (src/sources/selector.rs) are the objects the
//! API server returns for `kubectl get -l SELECTOR`, and a selector the server refuses is refused.
//! The audit scopes itself with this parser (client side), so a selector read differently from
//! Kubernetes would audit other objects than the operator named.

use serde_json::{Value, json};
use std::collections::BTreeSet;
use std::fmt::Write as _;
use std::process::Command;

const NAMESPACE: &str = "selector-diff";

fn kubectl(args: &[&str], stdin: Option<&str>) -> std::process::Output {
    let dir = std::env::var("KUBE_TEST_REAL_DIR").expect(
        "KUBE_TEST_REAL_DIR is not set: run the suite with scripts/test.sh, which builds and starts a real kube-apiserver",
    );
    let kubectl = std::env::var("MLSDM_AUDIT_KUBECTL").unwrap_or_else(|_| "kubectl".into());
    let mut cmd = Command::new(kubectl);
    cmd.arg("--kubeconfig")
        .arg(format!("{dir}/kubeconfig-admin"))
        .args(args)
        .stdin(std::process::Stdio::piped())
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped());
    let mut child = cmd.spawn().unwrap();
    if let Some(input) = stdin {
        use std::io::Write as _;
        child
            .stdin
            .take()
            .unwrap()
            .write_all(input.as_bytes())
            .unwrap();
    }
    drop(child.stdin.take());
    child.wait_with_output().unwrap()
}

/// The labelled objects: ConfigMaps (no controller touches them on a server without one).
fn objects() -> Vec<(&'static str, Value)> {
    vec![
        (
            "api-prod",
            json!({"app": "mlsdm-api", "tier": "api", "env": "prod"}),
        ),
        (
            "web-dev-canary",
            json!({"app": "mlsdm-api", "tier": "web", "env": "dev", "canary": "true"}),
        ),
        ("engine", json!({"app": "neuro-engine"})),
        ("empty-app", json!({"app": "", "tier": "api"})),
        ("unlabelled", json!({})),
        (
            "prefixed",
            json!({"app": "mlsdm-api", "example.com/team": "ml", "tier": "batch"}),
        ),
    ]
}

/// Selectors as operators type them, valid and not (the server's parser decides which is which).
const SELECTORS: &[&str] = &[
    "app=mlsdm-api",
    "app==mlsdm-api",
    "app = mlsdm-api",
    "app!=mlsdm-api",
    "app",
    "!app",
    "!canary",
    "app,!canary",
    "tier in (api,web)",
    "tier in (api, web)",
    "tier notin (web)",
    "tier in (api),env notin (prod)",
    "app=",
    "app!=",
    "example.com/team=ml",
    "example.com/team",
    "app=mlsdm-api,tier in (api)",
    "app in ()",
    "app in (a b)",
    "app in api",
    "a b",
    "app=mlsdm api",
    "=x",
    "!",
    "!=x",
    "app=,",
    ",app",
    "x/y/z=1",
    "-app=1",
    "app=-x",
    "app=x-",
    "app=mlsdm-api,",
    "tier notin (api,web),app",
    "app=mlsdm-api tier=api",
    "APP=mlsdm-api",
    "app in (mlsdm-api),app in (neuro-engine)",
    "app=mlsdm-api,app=neuro-engine",
    "app in (mlsdm-api,)",
    "app notin ()",
    "",
    "   ",
    "app=mlsdm-api,,tier=api",
    "app in (mlsdm-api",
    "app in mlsdm-api)",
    "app==",
    "Example.com/team=ml",
    "example.com/=ml",
    "/app=x",
    "app=aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa",
    "aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa",
    "in=x",
    "app in (in)",
    "!app=x",
    "app!",
    "app,app=mlsdm-api,!canary",
    "tier in (api,web,batch),tier notin (web),app",
];

#[test]
fn selectors_select_what_the_api_server_selects() {
    let mut manifest = format!("apiVersion: v1\nkind: Namespace\nmetadata:\n  name: {NAMESPACE}\n");
    for (name, labels) in objects() {
        let _ = write!(
            manifest,
            "---\napiVersion: v1\nkind: ConfigMap\nmetadata:\n  name: {name}\n  namespace: {NAMESPACE}\n  labels: {labels}\n"
        );
    }
    let applied = kubectl(&["apply", "-f", "-"], Some(&manifest));
    assert!(
        applied.status.success(),
        "{}",
        String::from_utf8_lossy(&applied.stderr)
    );
    let mut differences = Vec::new();
    for &selector in SELECTORS {
        let server = kubectl(
            &[
                "get",
                "configmaps",
                "-n",
                NAMESPACE,
                "-l",
                selector,
                "-o",
                "jsonpath={.items[*].metadata.name}",
            ],
            None,
        );
        let server: Result<BTreeSet<String>, String> = if server.status.success() {
            Ok(String::from_utf8_lossy(&server.stdout)
                .split_whitespace()
                .filter(|n| *n != "kube-root-ca.crt")
                .map(String::from)
                .collect())
        } else {
            Err(String::from_utf8_lossy(&server.stderr).trim().to_string())
        };
        let ours: Result<BTreeSet<String>, String> =
            mlsdm_audit::sources::selector::parse(selector).and_then(|sel| {
                let mut chosen = BTreeSet::new();
                for (name, labels) in objects() {
                    if mlsdm_audit::sources::selector::matches(&sel, &labels)? {
                        chosen.insert(name.to_string());
                    }
                }
                Ok(chosen)
            });
        let agree = match (&server, &ours) {
            (Ok(a), Ok(b)) => a == b,
            (Err(_), Err(_)) => true,
            _ => false,
        };
        if !agree {
            differences.push(format!(
                "{selector:?}: server {server:?}, mlsdm-audit {ours:?}"
            ));
        }
    }
    assert!(
        differences.is_empty(),
        "selectors read differently from the API server:\n{}",
        differences.join("\n")
    );
}
