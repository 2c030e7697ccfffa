//! kubectl (Debian's kubernetes-client) as an independent client of the test API server: if it
//! reads the same objects, the server speaks the real wire format.

use mlsdm_audit::sources::manifests;
use mlsdm_audit_testservers::kubeapi::{self, ApiConfig};
use serde_json::Value;
use std::collections::BTreeSet;
use std::process::Command;

fn kubectl() -> String {
    std::env::var("MLSDM_AUDIT_KUBECTL").unwrap_or_else(|_| "kubectl".into())
}

fn fixture_objects() -> Vec<Value> {
    let root = std::path::PathBuf::from(env!("CARGO_MANIFEST_DIR"));
    let mut out: Vec<Value> = Vec::new();
    for o in manifests::load(&[
        root.join("fixtures/compliant"),
        root.join("fixtures/live/healthy.yaml"),
    ])
    .unwrap()
    {
        out.retain(|x| {
            !(x["kind"] == o.kind.as_str()
                && x["metadata"]["name"] == o.name.as_str()
                && x["metadata"]["namespace"] == o.json["metadata"]["namespace"])
        });
        out.push(o.json);
    }
    out
}

struct Setup {
    server: kubeapi::ApiServer,
    kubeconfig: std::path::PathBuf,
    _rt: tokio::runtime::Runtime,
}

/// The kubeconfig (a test server's address and token) does not outlive the test.
impl Drop for Setup {
    fn drop(&mut self) {
        let _ = std::fs::remove_file(&self.kubeconfig);
    }
}

fn setup(config: ApiConfig) -> Setup {
    let rt = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .unwrap();
    let server = rt.block_on(kubeapi::start(config)).unwrap();
    let kubeconfig = std::env::temp_dir().join(format!(
        "mlsdm-audit-kubectl-{}-{}",
        std::process::id(),
        server.url.rsplit(':').next().unwrap()
    ));
    std::fs::write(
        &kubeconfig,
        server.kubeconfig(Some("reader-token"), "mlsdm-production"),
    )
    .unwrap();
    Setup {
        server,
        kubeconfig,
        _rt: rt,
    }
}

fn run(s: &Setup, args: &[&str]) -> String {
    let out = Command::new(kubectl())
        .arg("--kubeconfig")
        .arg(&s.kubeconfig)
        .args(args)
        .output()
        .expect("kubectl (Debian's kubernetes-client); scripts/test.sh provides it");
    assert!(
        out.status.success(),
        "kubectl {args:?}: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8_lossy(&out.stdout).into_owned()
}

const KINDS: &str =
    "deployments,pods,services,configmaps,horizontalpodautoscalers,poddisruptionbudgets";

fn names(list: &Value) -> BTreeSet<String> {
    list["items"]
        .as_array()
        .unwrap()
        .iter()
        .map(|o| {
            format!(
                "{}/{}/{}",
                o["kind"].as_str().unwrap(),
                o["metadata"]["namespace"].as_str().unwrap_or(""),
                o["metadata"]["name"].as_str().unwrap()
            )
        })
        .collect()
}

#[test]
fn kubectl_reads_the_same_objects() {
    let objects = fixture_objects();
    let s = setup(ApiConfig::new(objects.clone()));
    let wanted = [
        "Deployment",
        "Pod",
        "Service",
        "ConfigMap",
        "HorizontalPodAutoscaler",
        "PodDisruptionBudget",
    ];
    let expected: BTreeSet<String> = objects
        .iter()
        .filter(|o| wanted.contains(&o["kind"].as_str().unwrap()))
        .map(|o| {
            format!(
                "{}/{}/{}",
                o["kind"].as_str().unwrap(),
                o["metadata"]["namespace"].as_str().unwrap_or(""),
                o["metadata"]["name"].as_str().unwrap()
            )
        })
        .collect();
    let all: Value = serde_json::from_str(&run(&s, &["get", KINDS, "-A", "-o", "json"])).unwrap();
    assert_eq!(names(&all), expected);
    // One object a page: kubectl follows the continue tokens to the same set.
    let chunked: Value = serde_json::from_str(&run(
        &s,
        &["get", KINDS, "-A", "-o", "json", "--chunk-size=1"],
    ))
    .unwrap();
    assert_eq!(names(&chunked), expected);
    assert!(
        s.server.log().iter().any(|l| l.uri.contains("continue=")),
        "kubectl paged"
    );
    // A namespaced get of one object.
    let one: Value = serde_json::from_str(&run(
        &s,
        &[
            "get",
            "deployment",
            "mlsdm-api",
            "-n",
            "mlsdm-production",
            "-o",
            "json",
        ],
    ))
    .unwrap();
    assert_eq!(one["spec"]["replicas"], 3);
    // Raw discovery and api-resources.
    let apis: Value = serde_json::from_str(&run(&s, &["get", "--raw", "/apis"])).unwrap();
    assert_eq!(apis["kind"], "APIGroupList");
    let resources = run(&s, &["api-resources"]);
    for r in [
        "deployments",
        "horizontalpodautoscalers",
        "poddisruptionbudgets",
        "servicemonitors",
        "vulnerabilityreports",
    ] {
        assert!(
            resources.contains(r),
            "api-resources lacks {r}:\n{resources}"
        );
    }
    // Label selectors.
    let selected: Value = serde_json::from_str(&run(
        &s,
        &[
            "get",
            "pods",
            "-n",
            "mlsdm-production",
            "-l",
            "app=mlsdm-api",
            "-o",
            "json",
        ],
    ))
    .unwrap();
    assert_eq!(selected["items"].as_array().unwrap().len(), 3);
    let none: Value = serde_json::from_str(&run(
        &s,
        &[
            "get",
            "pods",
            "-n",
            "mlsdm-production",
            "-l",
            "app=neuro-engine",
            "-o",
            "json",
        ],
    ))
    .unwrap();
    assert!(none["items"].as_array().unwrap().is_empty());
    // kubectl too sends only GET.
    assert!(s.server.log().iter().all(|l| l.method == "GET"));
}

#[test]
fn kubectl_sees_the_errors_a_real_server_gives() {
    let mut config = ApiConfig::new(fixture_objects());
    config.tokens.insert(
        "restricted-token".into(),
        kubeapi::Role::Restricted(vec!["poddisruptionbudgets".into()]),
    );
    let s = setup(config);
    std::fs::write(
        &s.kubeconfig,
        s.server
            .kubeconfig(Some("restricted-token"), "mlsdm-production"),
    )
    .unwrap();
    let out = Command::new(kubectl())
        .arg("--kubeconfig")
        .arg(&s.kubeconfig)
        .args(["get", "poddisruptionbudgets"])
        .output()
        .unwrap();
    assert!(!out.status.success());
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(
        err.contains("forbidden") && err.contains("poddisruptionbudgets"),
        "{err}"
    );
    let out = Command::new(kubectl())
        .arg("--kubeconfig")
        .arg(&s.kubeconfig)
        .args(["get", "deployment", "nope"])
        .output()
        .unwrap();
    assert!(
        String::from_utf8_lossy(&out.stderr).contains("not found"),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
}
