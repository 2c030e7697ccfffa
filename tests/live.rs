//! The live-cluster audit against the test API server (HTTPS, bearer tokens, discovery, paging,
//! faults), and the manifest audit of the same objects for comparison.

mod support;
use support::statuses_by_source;

use mlsdm_audit::sources::manifests;
use mlsdm_audit_testservers::kubeapi::{self, ApiConfig, Fault, FaultKind, Role};
use serde_json::Value;
use std::path::{Path, PathBuf};
use std::process::Output;

struct Cluster {
    server: kubeapi::ApiServer,
    /// The MLSDM stand-in behind the API server's service and pod proxy.
    mlsdm: mlsdm_audit_testservers::mlsdm::Server,
    dir: PathBuf,
    _rt: tokio::runtime::Runtime,
}

impl Drop for Cluster {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.dir);
    }
}

impl Cluster {
    fn kubeconfig(&self, token: Option<&str>) -> String {
        let path = self
            .dir
            .join(format!("kubeconfig-{}", token.unwrap_or("anonymous")));
        std::fs::write(&path, self.server.kubeconfig(token, "mlsdm-production")).unwrap();
        path.to_str().unwrap().to_string()
    }

    fn audit(&self, token: Option<&str>, extra: &[&str]) -> Output {
        let kc = self.kubeconfig(token);
        let mut args = vec!["check", "--kubeconfig", kc.as_str(), "--format", "json"];
        args.extend_from_slice(extra);
        audit(&args)
    }
}

fn audit(args: &[&str]) -> Output {
    support::run(args)
}

fn root() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
}

/// Objects from manifest layers, later ones replacing earlier ones with the same kind/ns/name.
pub fn objects(layers: &[&str]) -> Vec<Value> {
    let mut out: Vec<Value> = Vec::new();
    for layer in layers {
        for o in manifests::load(&[root().join(layer)]).unwrap() {
            let key = |v: &Value| {
                (
                    v["kind"].clone(),
                    v["metadata"]["namespace"].clone(),
                    v["metadata"]["name"].clone(),
                )
            };
            out.retain(|x| key(x) != key(&o.json));
            if o.json
                .pointer("/metadata/annotations/fixtures.mlsdm-audit.io~1delete")
                .is_none()
            {
                out.push(raw(&o));
            }
        }
    }
    out
}

/// The object as written in the manifest (before the audit's Secret redaction).
fn raw(o: &mlsdm_audit::sources::Object) -> Value {
    if o.kind != "Secret" {
        return o.json.clone();
    }
    // Re-read Secrets from their file: the loaded object already has its values summarised.
    let loc = o.location.as_ref().unwrap();
    let text = std::fs::read_to_string(&loc.file).unwrap();
    let docs: Vec<Value> = serde_saphyr::from_multiple(&text).unwrap();
    docs.into_iter()
        .find(|d| d["kind"] == "Secret" && d["metadata"]["name"] == o.name.as_str())
        .unwrap()
}

fn cluster(config: ApiConfig) -> Cluster {
    cluster_with(config, mlsdm_audit_testservers::mlsdm::Config::healthy())
}

/// The API server proxies every Service and Pod to one MLSDM stand-in configured by `mlsdm`.
fn cluster_with(mut config: ApiConfig, mlsdm: mlsdm_audit_testservers::mlsdm::Config) -> Cluster {
    let rt = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .unwrap();
    let mlsdm = rt
        .block_on(mlsdm_audit_testservers::mlsdm::start("127.0.0.1:0", mlsdm))
        .unwrap();
    for o in &config.objects {
        let (ns, name) = (
            o["metadata"]["namespace"].as_str().unwrap_or("default"),
            o["metadata"]["name"].as_str().unwrap_or(""),
        );
        match o["kind"].as_str() {
            Some("Service") => {
                for port in o["spec"]["ports"].as_array().into_iter().flatten() {
                    for p in [
                        port["name"].as_str().map(str::to_string),
                        port["port"].as_u64().map(|p| p.to_string()),
                    ]
                    .into_iter()
                    .flatten()
                    {
                        config
                            .proxies
                            .insert(format!("{ns}/services/{name}:{p}"), mlsdm.url.clone());
                    }
                }
            }
            Some("Pod") => {
                config
                    .proxies
                    .insert(format!("{ns}/pods/{name}:8000"), mlsdm.url.clone());
            }
            _ => {}
        }
    }
    let server = rt.block_on(kubeapi::start(config)).unwrap();
    let dir = std::env::temp_dir().join(format!(
        "mlsdm-audit-live-{}-{}",
        std::process::id(),
        rand_suffix()
    ));
    std::fs::create_dir_all(&dir).unwrap();
    Cluster {
        server,
        mlsdm,
        dir,
        _rt: rt,
    }
}

fn rand_suffix() -> u64 {
    use std::sync::atomic::{AtomicU64, Ordering};
    static N: AtomicU64 = AtomicU64::new(0);
    N.fetch_add(1, Ordering::Relaxed)
}

/// Audits `config`'s cluster with the reader's token, holds the exit code to `code` (showing
/// stderr when it differs), and returns the cluster (its request log) and the JSON report.
fn audited(config: ApiConfig, code: i32) -> (Cluster, Value) {
    let c = cluster(config);
    let out = c.audit(Some("reader-token"), &[]);
    assert_eq!(
        out.status.code(),
        Some(code),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let r = report(&out);
    (c, r)
}

fn healthy() -> Vec<Value> {
    objects(&["fixtures/compliant", "fixtures/live/healthy.yaml"])
}

fn report(out: &Output) -> Value {
    serde_json::from_slice(&out.stdout).unwrap_or_else(|e| {
        panic!(
            "{e}\nstdout: {}\nstderr: {}",
            String::from_utf8_lossy(&out.stdout),
            String::from_utf8_lossy(&out.stderr)
        )
    })
}

fn results(r: &Value, id: &str) -> Vec<(String, String, String)> {
    r["results"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|x| x["id"] == id)
        .map(|x| {
            (
                x["status"].as_str().unwrap().to_string(),
                x["object"]["name"].as_str().unwrap_or("").to_string(),
                x["message"].as_str().unwrap().to_string(),
            )
        })
        .collect()
}

#[test]
fn healthy_cluster_passes_like_the_manifest_audit_of_the_same_objects() {
    let objs = healthy();
    let c = cluster(ApiConfig::new(objs.clone()));
    let out = c.audit(Some("reader-token"), &[]);
    assert_eq!(
        out.status.code(),
        Some(0),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let live = report(&out);
    assert_eq!(live["target"]["mode"], "cluster");
    assert_eq!(live["target"]["cluster"]["namespace"], "mlsdm-production");
    // The same objects as manifests, with Secrets as the live audit sees them (metadata only).
    let as_listed: Vec<Value> = objs
        .into_iter()
        .map(|mut o| {
            if o["kind"] == "Secret" {
                o.as_object_mut().unwrap().remove("data");
            }
            o
        })
        .collect();
    let file = c.dir.join("same-objects.json");
    std::fs::write(
        &file,
        serde_json::to_string(
            &serde_json::json!({"apiVersion": "v1", "kind": "List", "items": as_listed}),
        )
        .unwrap(),
    )
    .unwrap();
    let manifest = report(&audit(&[
        "check",
        "--manifests",
        file.to_str().unwrap(),
        "--format",
        "json",
    ]));
    assert_eq!(
        statuses_by_source(&live, "kubernetes"),
        statuses_by_source(&manifest, "kubernetes")
    );
    // Live state was really evaluated, not skipped.
    for id in [
        "rollout-complete",
        "pods-ready",
        "rollback-pods-failing-health",
        "hpa-conditions-healthy",
        "pdb-disruptions-allowed",
        "pod-no-restarts",
        "pod-no-oom-kills",
        "vulnerability-scan-clean",
    ] {
        let r = results(&live, id);
        assert!(
            !r.is_empty() && r.iter().all(|x| x.0 == "pass"),
            "{id}: {r:?}"
        );
    }
    // Only GET, ever.
    let log = c.server.log();
    assert!(!log.is_empty());
    assert!(
        log.iter().all(|l| l.method == "GET"),
        "{:?}",
        log.iter().filter(|l| l.method != "GET").collect::<Vec<_>>()
    );
    // Secrets were listed metadata-only.
    assert!(log.iter().any(|l| l.uri.contains("/secrets")));
    // The service was probed through the API server's proxy, with GET only.
    assert!(
        log.iter().any(|l| l.uri.starts_with(
            "/api/v1/namespaces/mlsdm-production/services/mlsdm-api:http/proxy/status"
        ))
    );
    assert!(log.iter().any(|l| l.uri.starts_with("/api/v1/namespaces/mlsdm-production/pods/mlsdm-api-6b8f9d7c5-7d9c4:8000/proxy/health/metrics")));
    assert!(
        c.mlsdm.seen().iter().all(|(m, _, _)| m == "GET"),
        "nothing but GET reached the service through the proxy"
    );
    let ready = results(&live, "health-ready");
    assert!(ready.iter().all(|x| x.0 == "pass"), "{ready:?}");
    // Per-pod checks name the pod.
    let live_checks = results(&live, "health-live");
    assert_eq!(live_checks.len(), 3);
    assert!(
        live_checks
            .iter()
            .any(|x| x.1 == "mlsdm-api-6b8f9d7c5-k2m8x" && x.0 == "pass")
    );
    // POST probes are never sent through the API server.
    let generate = results(&live, "auth-required-generate");
    assert!(
        generate
            .iter()
            .all(|x| x.0 == "skipped" && x.2.contains("POST probes go only to --endpoint")),
        "{generate:?}"
    );
    // Issue 11: and say so as data.
    for r in live["results"].as_array().unwrap() {
        if r["id"] == "auth-required-generate" {
            assert_eq!(
                r["skipReason"],
                serde_json::json!({"kind": "needs-endpoint"}),
                "{r}"
            );
        }
    }
}

#[test]
fn degraded_release_fails_naming_pod_and_container() {
    let mut objs = healthy();
    for defect in [
        "fixtures/defects/pod-no-oom-kills.yaml",
        "fixtures/defects/pods-ready.yaml",
    ] {
        for o in objects(&[defect]) {
            objs.retain(|x| {
                !(x["kind"] == o["kind"] && x["metadata"]["name"] == o["metadata"]["name"])
            });
            objs.push(o);
        }
    }
    // A second pod that restarts without being OOM-killed.
    let mut restarting = objs
        .iter()
        .find(|o| o["metadata"]["name"] == "mlsdm-api-6b8f9d7c5-k2m8x")
        .unwrap()
        .clone();
    restarting["status"]["containerStatuses"][0]["restartCount"] = 3.into();
    objs.retain(|o| o["metadata"]["name"] != "mlsdm-api-6b8f9d7c5-k2m8x");
    objs.push(restarting);
    let c = cluster(ApiConfig::new(objs));
    let out = c.audit(Some("reader-token"), &[]);
    assert_eq!(out.status.code(), Some(1));
    let r = report(&out);
    let oom = results(&r, "pod-no-oom-kills");
    assert!(
        oom.iter().any(|x| x.0 == "fail"
            && x.1 == "mlsdm-api-6b8f9d7c5-7d9c4"
            && x.2.contains("container mlsdm-api was OOMKilled")),
        "{oom:?}"
    );
    let restarts = results(&r, "pod-no-restarts");
    assert!(
        restarts.iter().any(|x| x.0 == "fail"
            && x.1 == "mlsdm-api-6b8f9d7c5-k2m8x"
            && x.2.contains("container mlsdm-api restarted 3 times")),
        "{restarts:?}"
    );
    let ready = results(&r, "pods-ready");
    assert_eq!(ready[0].0, "fail");
    assert_eq!(ready[0].2, "2/3 replicas ready");
}

#[test]
fn forbidden_kind_is_an_error_with_the_rbac_hint() {
    let mut config = ApiConfig::new(healthy());
    config.tokens.insert(
        "restricted-token".into(),
        Role::Restricted(vec!["poddisruptionbudgets".into()]),
    );
    let c = cluster(config);
    let out = c.audit(Some("restricted-token"), &[]);
    let fails: Vec<String> = report(&out)["results"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|x| x["status"] == "fail")
        .map(|x| format!("{} {}", x["id"], x["message"]))
        .collect();
    assert_eq!(
        out.status.code(),
        Some(3),
        "{}{fails:?}",
        String::from_utf8_lossy(&out.stderr)
    );
    let r = report(&out);
    for id in [
        "pdb-min-available",
        "pdb-allows-rollout",
        "pdb-selects-workload",
        "pdb-disruptions-allowed",
    ] {
        let res = results(&r, id);
        assert_eq!(res.len(), 1, "{id}");
        assert_eq!(res[0].0, "error", "{id}: {:?}", res[0]);
        assert!(
            res[0]
                .2
                .contains("forbidden (403) listing poddisruptionbudgets")
                && res[0]
                    .2
                    .contains("`list` on `poddisruptionbudgets` in API group \"policy\""),
            "{}",
            res[0].2
        );
    }
    // Checks that do not need PDBs still pass.
    assert_eq!(results(&r, "replicas-min-3")[0].0, "pass");
}

/// Review finding: an Ingress's workloads are found through its Services; with Services
/// forbidden, the Ingress checks said it "routes to no MLSDM workload" and skipped it instead of
/// being errors, since the relation declared it read workloads only.
#[test]
fn a_relation_through_a_forbidden_kind_is_an_error_not_a_skip() {
    let mut config = ApiConfig::new(healthy());
    config.tokens.insert(
        "restricted-token".into(),
        Role::Restricted(vec!["services".into()]),
    );
    let c = cluster(config);
    let out = c.audit(Some("restricted-token"), &[]);
    assert_eq!(out.status.code(), Some(3));
    let r = report(&out);
    for id in ["ingress-tls", "ingress-https-redirect"] {
        let res = results(&r, id);
        assert_eq!(res.len(), 1, "{id}");
        assert_eq!(res[0].0, "error", "{id}: {:?}", res[0]);
        assert!(
            res[0].2.contains("forbidden (403) listing services"),
            "{}",
            res[0].2
        );
    }
}

#[test]
fn older_servers_are_served_through_version_fallback_and_legacy_discovery() {
    let mut objs = healthy();
    for o in &mut objs {
        if o["kind"] == "HorizontalPodAutoscaler" {
            o["apiVersion"] = "autoscaling/v2beta2".into();
        }
        if o["kind"] == "PodDisruptionBudget" {
            o["apiVersion"] = "policy/v1beta1".into();
        }
    }
    let mut config = ApiConfig::new(objs);
    let mut resources = kubeapi::CORE.to_vec();
    resources.extend_from_slice(kubeapi::LEGACY);
    resources.extend_from_slice(kubeapi::CRDS);
    config.resources = resources;
    config.aggregated_discovery = false;
    let (c, r) = audited(config, 0);
    for id in [
        "hpa-targets-workload",
        "hpa-metrics-cpu-memory",
        "pdb-min-available",
        "hpa-conditions-healthy",
    ] {
        assert!(
            results(&r, id).iter().all(|x| x.0 == "pass"),
            "{id}: {:?}",
            results(&r, id)
        );
    }
    let log = c.server.log();
    assert!(log.iter().any(|l| l.uri.starts_with(
        "/apis/autoscaling/v2beta2/namespaces/mlsdm-production/horizontalpodautoscalers"
    )));
    assert!(
        log.iter()
            .any(|l| l.uri.starts_with("/apis/policy/v1beta1/"))
    );
    assert!(
        log.iter().any(|l| l.uri == "/apis/apps/v1"),
        "legacy discovery walked the group versions"
    );
}

/// Audits a server on which discovery could not read the trivy-operator's group: its check is an
/// error whose message has every one of `why`, and what the other groups serve is judged.
fn audit_with_an_unreadable_group(config: ApiConfig, why: &[&str]) -> Cluster {
    let (c, r) = audited(config, 3);
    let v = results(&r, "vulnerability-scan-clean");
    assert_eq!(v.len(), 1, "{v:?}");
    assert_eq!(v[0].0, "error", "{v:?}");
    for w in why {
        assert!(v[0].2.contains(w), "{w}: {}", v[0].2);
    }
    for id in [
        "pdb-min-available",
        "hpa-targets-workload",
        "prometheus-scrape-configured",
    ] {
        let got = results(&r, id);
        assert!(
            !got.is_empty() && got.iter().all(|x| x.0 == "pass"),
            "{id}: {got:?}"
        );
    }
    c
}

/// A legacy server (no aggregated discovery) whose aggregated API is down answers 503 for that
/// group version's discovery, as a cluster with a stopped metrics-server does. kubectl warns and
/// goes on; the audit had ended with exit 3 and no result. Now only the kinds that group may serve
/// are undecided (error, naming the group), never "not served" (no-data), and the rest is judged.
#[test]
fn a_group_whose_discovery_fails_leaves_only_its_kinds_undecided() {
    let mut config = ApiConfig::new(healthy());
    config.aggregated_discovery = false;
    config.faults = vec![Fault {
        path_contains: "/apis/aquasecurity.github.io/v1alpha1".into(),
        kind: FaultKind::StatusMessage(
            503,
            "the server is currently unable to handle the request".into(),
        ),
        times: 1000,
    }];
    let c = audit_with_an_unreadable_group(
        config,
        &[
            "API discovery could not read aquasecurity.github.io/v1alpha1",
            "503",
        ],
    );
    // Nothing of the failing group was listed.
    assert!(
        !c.server
            .log()
            .iter()
            .any(|l| l.uri.contains("vulnerabilityreports")),
        "no list of a kind discovery could not read"
    );
}

/// The same on a server with aggregated discovery (Kubernetes 1.27 and later): the aggregator
/// lists a group whose backend is down with no resources and `freshness: Stale`. kube's
/// discovery drops the freshness, and the kind read as "not served": its check no-data, a
/// failure the cluster never showed gone from the gate (review finding).
#[test]
fn a_group_aggregated_discovery_marks_stale_leaves_its_kinds_undecided() {
    let mut config = ApiConfig::new(healthy());
    config.stale_groups = vec!["aquasecurity.github.io".into()];
    audit_with_an_unreadable_group(config, &["aquasecurity.github.io/v1alpha1", "Stale"]);
}

/// The freshness is read by asking for the aggregated /apis a second time. When that answer
/// fails (a 429 or a 503 the first reading did not get), nothing says which groups are Stale:
/// every group had read as fresh, and a Stale group's kinds as "not served" (no-data). Legacy
/// discovery then asks each group version, and the one whose backend is down fails there.
#[test]
fn freshness_that_cannot_be_read_leaves_no_group_taken_for_fresh() {
    let mut config = ApiConfig::new(healthy());
    config.stale_groups = vec!["aquasecurity.github.io".into()];
    config.faults = vec![Fault {
        path_contains: "/apis".into(),
        kind: FaultKind::AfterFirst(Box::new(FaultKind::Status(503))),
        times: 1,
    }];
    let c = audit_with_an_unreadable_group(
        config,
        &[
            "API discovery could not read aquasecurity.github.io/v1alpha1",
            "503",
        ],
    );
    let apis = c.server.log().iter().filter(|l| l.uri == "/apis").count();
    assert!(apis >= 3, "aggregated twice, then legacy: {apis}");
}

/// A group that serves the kind at a version the built-in table does not name (the CRD moved
/// on): its objects are there and unread, which is not "not served" (no-data, which does not
/// gate) but undecided (review finding).
#[test]
fn a_kind_served_at_a_version_the_audit_does_not_read_is_undecided() {
    let mut config = ApiConfig::new(healthy());
    for r in &mut config.resources {
        if r.group == "aquasecurity.github.io" {
            r.version = "v1beta9";
        }
    }
    audit_with_an_unreadable_group(
        config,
        &["kind VulnerabilityReport is served at aquasecurity.github.io/v1beta9"],
    );
}

/// Review finding: a watch whose read of the Deployment failed at its start (a 503 from the API
/// server) followed no rollout at all, and every checkpoint judged whatever ran, a rollback
/// included. A rollout that cannot be read is an error at the start: exit 3.
#[test]
fn a_watch_that_cannot_read_the_rollout_it_follows_ends_at_once() {
    let mut config = ApiConfig::new(healthy());
    config.faults = vec![Fault {
        path_contains: "/deployments/mlsdm-api".into(),
        kind: FaultKind::Status(503),
        times: 1000,
    }];
    let c = cluster(config);
    let kc = c.kubeconfig(Some("reader-token"));
    let out_dir = c.dir.join("watch-reports");
    let out = audit(&[
        "watch",
        "--kubeconfig",
        &kc,
        "--skip",
        "rollback-error-rate,rollback-p95-latency",
        "--interval",
        "1s",
        "--until",
        "4s",
        "--checkpoints",
        "4s",
        "--output-dir",
        out_dir.to_str().unwrap(),
    ]);
    let err = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(3), "{err}");
    assert!(
        err.contains("could not read the rollout the watch follows")
            && err.contains("Deployment mlsdm-production/mlsdm-api")
            && err.contains("503"),
        "{err}"
    );
}

/// A team check naming a kind the audit reads from another group (Calico's NetworkPolicy, where
/// the built-in table reads networking.k8s.io's): a live audit does not list that group's
/// objects, and "no object" would be false. Undecided (review finding: no-data, exit 0).
#[test]
fn a_team_check_of_a_kind_read_from_another_group_is_undecided_live() {
    let c = cluster(ApiConfig::new(healthy()));
    let checks = c.dir.join("calico-checks");
    std::fs::create_dir_all(&checks).unwrap();
    std::fs::write(
        checks.join("team-calico-default-deny.yaml"),
        "id: team-calico-default-deny\ntitle: A Calico policy denies by default\nsection: Pre-Deployment / Infrastructure / Networking\nseverity: critical\nsource: kubernetes\nmatch:\n  kinds: [crd.projectcalico.org/v1/NetworkPolicy]\nvalidations:\n  - expression: object.spec.selector == 'all()'\n    message: not a default deny\n",
    )
    .unwrap();
    let out = c.audit(
        Some("reader-token"),
        &[
            "--checks",
            checks.to_str().unwrap(),
            "--only",
            "team-calico-default-deny",
        ],
    );
    assert_eq!(
        out.status.code(),
        Some(3),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let v = results(&report(&out), "team-calico-default-deny");
    assert_eq!(v.len(), 1, "{v:?}");
    assert_eq!(v[0].0, "error", "{v:?}");
    assert!(
        v[0].2
            .contains("crd.projectcalico.org's NetworkPolicy is not listed"),
        "{v:?}"
    );
}

#[test]
fn missing_crds_are_reported_not_passed() {
    let mut config = ApiConfig::new(healthy());
    config
        .resources
        .retain(|r| r.group != "aquasecurity.github.io" && r.group != "monitoring.coreos.com");
    let c = cluster(config);
    let r = report(&c.audit(Some("reader-token"), &[]));
    let v = results(&r, "vulnerability-scan-clean");
    // The workload's image is not shown scanned, and the cluster holds no report at all: the
    // scan may live elsewhere (attestable), never a pass.
    assert_eq!(v[0].0, "no-data", "{v:?}");
    assert!(
        v[0].2.contains("no VulnerabilityReport scanned")
            && v[0].2.contains("the audit holds no VulnerabilityReport"),
        "{}",
        v[0].2
    );
    // Prometheus scraping still passes through the pod annotations.
    assert_eq!(results(&r, "prometheus-scrape-configured")[0].0, "pass");
}

#[test]
fn paging_retries_and_faults() {
    let mut config = ApiConfig::new(healthy());
    config.page_cap = Some(2);
    config.faults = vec![
        Fault {
            path_contains: "/pods".into(),
            kind: FaultKind::TooManyRequests { retry_after: 1 },
            times: 1,
        },
        Fault {
            path_contains: "/configmaps".into(),
            kind: FaultKind::Status(500),
            times: 2,
        },
        Fault {
            path_contains: "/services".into(),
            kind: FaultKind::DropMidList,
            times: 1,
        },
    ];
    let (c, r) = audited(config, 0);
    assert_eq!(
        results(&r, "pod-no-restarts").len(),
        3,
        "all three pods, across pages"
    );
    let log = c.server.log();
    assert!(
        log.iter().any(|l| l.uri.contains("continue=")),
        "paged with continue tokens"
    );
    assert!(
        log.iter().filter(|l| l.uri.contains("/configmaps")).count() >= 3,
        "retried after 500s"
    );
    assert!(log.iter().all(|l| l.method == "GET"));

    // A kind that keeps failing becomes an error, not a pass.
    let mut config = ApiConfig::new(healthy());
    config.faults = vec![Fault {
        path_contains: "/horizontalpodautoscalers".into(),
        kind: FaultKind::Status(503),
        times: 100,
    }];
    let c = cluster(config);
    let out = c.audit(Some("reader-token"), &[]);
    assert_eq!(out.status.code(), Some(3));
    assert_eq!(results(&report(&out), "hpa-targets-workload")[0].0, "error");
}

/// Audits a cluster whose pod list is broken by `fault` (pods span two pages), and checks that
/// every check needing pods is an error naming the cause, never a pass or no-data.
fn pod_list_incomplete(fault: FaultKind, extra: &[&str], cause: &str) -> Vec<kubeapi::Logged> {
    let mut config = ApiConfig::new(healthy());
    config.page_cap = Some(2);
    config.faults = vec![Fault {
        path_contains: "/pods".into(),
        kind: fault.clone(),
        times: 10_000,
    }];
    let c = cluster(config);
    let out = c.audit(Some("reader-token"), extra);
    let r = report(&out);
    assert_eq!(
        out.status.code(),
        Some(3),
        "{fault:?}: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    for id in ["pod-no-restarts", "pod-no-oom-kills"] {
        let res = results(&r, id);
        assert!(!res.is_empty(), "{fault:?} {id}");
        for (status, _, message) in &res {
            assert_eq!(status, "error", "{fault:?} {id}: {message}");
            assert!(
                message.contains("listing pods did not complete") && message.contains(cause),
                "{fault:?} {id}: {message}"
            );
        }
    }
    // Kinds that listed fine are still evaluated.
    assert_eq!(results(&r, "replicas-min-3")[0].0, "pass", "{fault:?}");
    c.server.log()
}

#[test]
fn an_error_on_a_later_page_is_an_error_not_a_missing_kind() {
    for code in [404, 410] {
        let log = pod_list_incomplete(
            FaultKind::OnContinue(Box::new(FaultKind::Status(code))),
            &[],
            &format!("the continue page answered {code}: injected fault (page 2)"),
        );
        assert!(
            log.iter().any(|l| l.uri.contains("/pods?")
                && l.uri.contains("continue=")
                && l.status == code)
        );
    }
}

/// A continue token that expired (410 Gone: etcd compacted past it while the client paged) is
/// not the end of the list: it is asked again whole, once, as client-go's pager does. A second
/// 410 stays an error (above).
#[test]
fn an_expired_continue_token_lists_the_kind_again_whole() {
    let mut config = ApiConfig::new(healthy());
    config.page_cap = Some(2);
    config.faults = vec![Fault {
        path_contains: "/pods".into(),
        kind: FaultKind::OnContinue(Box::new(FaultKind::StatusMessage(
            410,
            "The provided continue parameter is too old to display a consistent list result."
                .into(),
        ))),
        times: 1,
    }];
    let (c, r) = audited(config, 0);
    let pods = results(&r, "pod-no-restarts");
    assert_eq!(pods.len(), 3, "every pod, once: {pods:?}");
    assert!(pods.iter().all(|x| x.0 == "pass"), "{pods:?}");
    let log = c.server.log();
    let expired = log
        .iter()
        .position(|l| l.uri.contains("/pods?") && l.status == 410)
        .expect("the expired token was sent");
    assert!(
        log[expired..]
            .iter()
            .any(|l| l.uri.contains("/pods") && !l.uri.contains("limit=")),
        "the kind listed again whole: {log:?}"
    );
}

/// Discovery serves the kind, its list answers 404: an error for every check of the kind. It was
/// read as "not served" (no-data), and a failure of a critical check vanished from the gate.
#[test]
fn a_404_on_a_kind_discovery_serves_is_an_error() {
    let mut config = ApiConfig::new(healthy());
    config.faults = vec![Fault {
        path_contains: "/pods".into(),
        kind: FaultKind::Status(404),
        times: 10_000,
    }];
    let c = cluster(config);
    let out = c.audit(Some("reader-token"), &[]);
    assert_eq!(out.status.code(), Some(3));
    let r = report(&out);
    for id in ["pod-no-restarts", "pod-no-oom-kills"] {
        for (status, _, message) in results(&r, id) {
            assert_eq!(status, "error", "{id}: {message}");
            assert!(
                message.contains("answered 404 listing pods, which its discovery serves"),
                "{id}: {message}"
            );
        }
    }
}

/// `HTTPS_PROXY` reaches the API server unless `NO_PROXY` names it, as with kubectl. Any proxy
/// variable used to fail every audit (kube's proxy support was off), and kube holds `NO_PROXY`
/// to the proxy's own address.
#[test]
fn https_proxy_is_used_unless_no_proxy_names_the_server() {
    let c = cluster(ApiConfig::new(healthy()));
    let kc = c.kubeconfig(Some("reader-token"));
    // A proxy that refuses every connection: reaching the server through it fails.
    let proxy = {
        let l = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        format!("http://127.0.0.1:{}", l.local_addr().unwrap().port())
    };
    let run = |env: &[(&str, &str)]| {
        support::cmd()
            .args([
                "check",
                "--kubeconfig",
                kc.as_str(),
                "--only",
                "replicas-min-3",
                "--format",
                "json",
            ])
            .envs(env.iter().copied())
            .run()
    };
    let out = run(&[("HTTPS_PROXY", &proxy), ("NO_PROXY", "localhost,127.0.0.1")]);
    assert_eq!(
        out.status.code(),
        Some(0),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let out = run(&[("HTTPS_PROXY", &proxy)]);
    assert_eq!(
        out.status.code(),
        Some(3),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    // `ALL_PROXY` is not kubectl's: the server is reached directly.
    let out = run(&[("ALL_PROXY", &proxy)]);
    assert_eq!(
        out.status.code(),
        Some(0),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    // A kubeconfig's proxy-url is used whatever NO_PROXY says (kube-rs dropped it when NO_PROXY
    // named the proxy's own address, and went direct).
    let text = std::fs::read_to_string(&kc).unwrap();
    let with_proxy = text.replacen(
        "    certificate-authority-data:",
        &format!("    proxy-url: {proxy}\n    certificate-authority-data:"),
        1,
    );
    assert_ne!(text, with_proxy);
    std::fs::write(&kc, with_proxy).unwrap();
    let out = run(&[("NO_PROXY", "localhost,127.0.0.1")]);
    assert_eq!(
        out.status.code(),
        Some(3),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
}

/// Under `-n`, a RoleBinding and the Role it grants in another namespace are still read: the
/// pods' ServiceAccount may read kube-system's Secrets. Listed in the audited namespace only,
/// the binding was never seen (and then its Role), and rbac-service-account passed.
#[test]
fn grants_in_another_namespace_are_read_under_a_namespace() {
    let mut objects = healthy();
    objects.push(serde_json::json!({
        "apiVersion": "rbac.authorization.k8s.io/v1", "kind": "Role",
        "metadata": {"name": "secret-reader", "namespace": "kube-system"},
        "rules": [{"apiGroups": [""], "resources": ["secrets"], "verbs": ["get", "list"]}],
    }));
    objects.push(serde_json::json!({
        "apiVersion": "rbac.authorization.k8s.io/v1", "kind": "RoleBinding",
        "metadata": {"name": "mlsdm-reads-secrets", "namespace": "kube-system"},
        "roleRef": {"apiGroup": "rbac.authorization.k8s.io", "kind": "Role", "name": "secret-reader"},
        "subjects": [{"kind": "ServiceAccount", "name": "mlsdm-api", "namespace": "mlsdm-production"}],
    }));
    let c = cluster(ApiConfig::new(objects));
    // The kubeconfig's namespace is mlsdm-production: a namespaced audit.
    let out = c.audit(Some("reader-token"), &["--only", "rbac-service-account"]);
    let r = report(&out);
    let res = results(&r, "rbac-service-account");
    assert_eq!(res.len(), 1, "{r}");
    let (status, _, message) = &res[0];
    assert_eq!(status, "fail", "{message}");
    assert!(
        message.contains("Role secret-reader by RoleBinding kube-system/mlsdm-reads-secrets"),
        "{message}"
    );
}

#[test]
fn a_list_without_an_items_array_is_an_error_not_empty() {
    for (fault, cause) in [
        (FaultKind::ItemsMissing, "a page has no `items` (page 1)"),
        (FaultKind::ItemsNull, "a page has `items: null` (page 1)"),
        (
            FaultKind::ItemsNotList,
            "a page's `items` is an object, not a list",
        ),
    ] {
        pod_list_incomplete(fault, &[], cause);
    }
    // On a later page too.
    pod_list_incomplete(
        FaultKind::OnContinue(Box::new(FaultKind::ItemsNull)),
        &[],
        "a page has `items: null` (page 2)",
    );
}

#[test]
fn continue_tokens_that_repeat_or_never_end_are_bounded() {
    let log = pod_list_incomplete(
        FaultKind::RepeatContinue,
        &[],
        "the server sent a continue token it had already sent; the list would never end (page 2)",
    );
    let pod_lists = |log: &[kubeapi::Logged]| {
        log.iter()
            .filter(|l| {
                l.uri
                    .starts_with("/api/v1/namespaces/mlsdm-production/pods?")
            })
            .count()
    };
    assert_eq!(pod_lists(&log), 2, "stopped at the first repeated token");
    let log = pod_list_incomplete(
        FaultKind::EndlessContinue,
        &["--max-list-pages", "25", "--qps", "1000", "--burst", "1000"],
        "more than 25 pages of 500 items, the cap (--max-list-pages 25); the server may be sending endless continue tokens (page 25)",
    );
    assert_eq!(pod_lists(&log), 25, "stopped at the cap");
    // A list of exactly the cap's pages completes.
    let mut config = ApiConfig::new(healthy());
    config.page_cap = Some(2);
    let c = cluster(config);
    let out = c.audit(Some("reader-token"), &["--max-list-pages", "2"]);
    assert_eq!(
        out.status.code(),
        Some(0),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert_eq!(results(&report(&out), "pod-no-restarts").len(), 3);
}

#[test]
fn connection_problems_fail_fast_with_one_line() {
    let c = cluster(ApiConfig::new(healthy()));
    // A rejected token.
    let out = c.audit(Some("wrong-token"), &[]);
    assert_eq!(out.status.code(), Some(3));
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(
        err.starts_with("error: ") && err.contains("401") && err.lines().count() == 1,
        "{err}"
    );
    // An unknown CA.
    let other = mlsdm_audit_testservers::tls::pki("other", &["127.0.0.1"]);
    let other = kubeapi::kubeconfig(
        &c.server.url,
        &other.ca_pem,
        Some("reader-token"),
        "mlsdm-production",
    );
    let kc = c.dir.join("bad-ca");
    std::fs::write(&kc, other).unwrap();
    let out = audit(&["check", "--kubeconfig", kc.to_str().unwrap()]);
    assert_eq!(out.status.code(), Some(3));
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(err.contains("TLS") && err.lines().count() == 1, "{err}");
    // Nothing listening.
    let closed = c
        .server
        .kubeconfig(Some("reader-token"), "x")
        .replace(&c.server.url, "https://127.0.0.1:9");
    std::fs::write(&kc, closed).unwrap();
    let out = audit(&[
        "check",
        "--kubeconfig",
        kc.to_str().unwrap(),
        "--request-timeout",
        "5s",
    ]);
    assert_eq!(out.status.code(), Some(3));
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(
        err.contains("127.0.0.1:9") && err.lines().count() == 1,
        "{err}"
    );
    // A kubeconfig that is not one: the user's input, exit 2.
    let out = audit(&["check", "--kubeconfig", "README.md"]);
    assert_eq!(out.status.code(), Some(2));
    assert_eq!(String::from_utf8_lossy(&out.stderr).lines().count(), 1);
}

const CANARY: &str = "CANARY-7f3a9c1e-bearer-token";

/// stdout and stderr of a run, with the canary checked absent.
fn without_canary(what: &str, out: &Output) -> String {
    let text = format!(
        "{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(
        !text.contains(CANARY),
        "{what}: the credential leaked: {text}"
    );
    assert!(
        !text.contains("CANARY"),
        "{what}: file content was quoted: {text}"
    );
    text
}

#[test]
fn kubeconfig_problems_are_input_errors_that_never_quote_the_file() {
    let c = cluster(ApiConfig::new(healthy()));
    let good = c.server.kubeconfig(Some(CANARY), "mlsdm-production");
    let write = |name: &str, text: &str| {
        let path = c.dir.join(name);
        std::fs::write(&path, text).unwrap();
        path.to_str().unwrap().to_string()
    };
    let broken: Vec<(&str, String, &str)> = vec![
        (
            "missing",
            c.dir
                .join("no-such-kubeconfig")
                .to_str()
                .unwrap()
                .to_string(),
            "cannot read",
        ),
        ("empty", write("empty", ""), "the file is empty"),
        // A syntax error on the line after the token.
        (
            "syntax error",
            write(
                "syntax",
                &good.replace(
                    &format!("    token: {CANARY}\n"),
                    &format!("    token: {CANARY}\n   bad: [unclosed\n"),
                ),
            ),
            "YAML syntax or structure error at line",
        ),
        // A type error whose value is the token.
        (
            "type error",
            write(
                "type",
                &good.replace(
                    &format!("  user:\n    token: {CANARY}\n"),
                    &format!("  user: \"{CANARY}\"\n"),
                ),
            ),
            "YAML syntax or structure error at line",
        ),
        (
            "token as a list",
            write(
                "list",
                &good.replace(&format!("token: {CANARY}"), &format!("token: [{CANARY}]")),
            ),
            "YAML syntax or structure error at line",
        ),
        // Review 32c: a server without scheme panicked inside kube-client (exit 3).
        (
            "server without scheme",
            write("schemeless", &good.replace(&c.server.url, "example.com")),
            "is not an http(s) URL with a host",
        ),
    ];
    for (what, path, cause) in &broken {
        assert_ne!(
            std::fs::read_to_string(path).ok().as_deref(),
            Some(good.as_str()),
            "{what}: the fixture is broken"
        );
        let out = audit(&["check", "--kubeconfig", path]);
        let text = without_canary(what, &out);
        assert_eq!(out.status.code(), Some(2), "{what}: {text}");
        assert!(
            text.contains(path.as_str()) && text.contains(cause),
            "{what}: names the file and the cause: {text}"
        );
    }
    // The same through $KUBECONFIG.
    let out = support::cmd()
        .arg("check")
        .env("KUBECONFIG", &broken[2].1)
        .run();
    let text = without_canary("$KUBECONFIG", &out);
    assert_eq!(out.status.code(), Some(2), "{text}");
    assert!(text.contains(&broken[2].1), "{text}");

    // Exec credential plugins: malformed or failing output, and `env:`, are never quoted.
    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt;
        let plugins = [
            (
                "truncated output",
                format!(
                    "echo '{{\"apiVersion\":\"client.authentication.k8s.io/v1\",\"kind\":\"ExecCredential\",\"status\":{{\"token\":\"{CANARY}\"'"
                ),
                "not a valid ExecCredential",
            ),
            (
                "status is a string",
                format!(
                    "echo '{{\"apiVersion\":\"client.authentication.k8s.io/v1\",\"kind\":\"ExecCredential\",\"status\":\"{CANARY}\"}}'"
                ),
                "not a valid ExecCredential",
            ),
            (
                "failing plugin",
                format!("echo {CANARY}; echo {CANARY} >&2; exit 1"),
                "the exec credential plugin failed",
            ),
        ];
        for (i, (what, script, cause)) in plugins.iter().enumerate() {
            let plugin = write(&format!("plugin-{i}.sh"), &format!("#!/bin/sh\n{script}\n"));
            std::fs::set_permissions(&plugin, std::fs::Permissions::from_mode(0o755)).unwrap();
            let kc = write(
                &format!("exec-{i}"),
                &good.replace(
                    &format!("    token: {CANARY}\n"),
                    &format!("    exec:\n      apiVersion: client.authentication.k8s.io/v1\n      command: {plugin}\n      interactiveMode: Never\n      env:\n      - name: PLUGIN_SECRET\n        value: {CANARY}\n"),
                ),
            );
            let out = audit(&["check", "--kubeconfig", &kc]);
            let text = without_canary(what, &out);
            assert_ne!(out.status.code(), Some(0), "{what}: {text}");
            assert!(text.contains(cause), "{what}: {text}");
        }
    }
}

#[test]
fn secret_values_never_leave_the_cluster_or_reach_output() {
    let mut objs = healthy();
    // kubectl apply leaves the whole Secret, data included, in this annotation.
    let secret = objs
        .iter_mut()
        .find(|o| o["kind"] == "Secret" && o["metadata"]["name"] == "mlsdm-secrets")
        .unwrap();
    let applied = serde_json::to_string(&secret.clone()).unwrap();
    secret["metadata"]["annotations"]["kubectl.kubernetes.io/last-applied-configuration"] =
        applied.into();
    let c = cluster(ApiConfig::new(objs));
    for format in mlsdm_audit::report::Format::names() {
        let kc = c.kubeconfig(Some("reader-token"));
        let out = audit(&["check", "--kubeconfig", &kc, "--format", format]);
        let text = format!(
            "{}{}",
            String::from_utf8_lossy(&out.stdout),
            String::from_utf8_lossy(&out.stderr)
        );
        assert!(
            !text.contains("a1k3cVo5bVJ0TjJ4V3BMNHZCOGNIMWRGNmdKM3NZMGVRNXVBN2lPMm5Y"),
            "{format}: base64 value leaked"
        );
        assert!(
            !text.contains("kY7qZ9mRtN2xWpL4vB8cH1dF6gJ3sY0eQ5uA7iO2nX"),
            "{format}: value leaked"
        );
    }
}

#[test]
fn selector_and_namespace_flags() {
    let c = cluster(ApiConfig::new(healthy()));
    // Nothing in another namespace: nothing audited is exit 3, one line (issue 10.1).
    let out = c.audit(Some("reader-token"), &["-n", "other-namespace"]);
    assert_eq!(out.status.code(), Some(3));
    assert!(
        String::from_utf8_lossy(&out.stderr).starts_with(
            "error: nothing audited: no MLSDM workload (a Deployment, StatefulSet or DaemonSet running MLSDM) in namespace other-namespace of "
        ),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let r = report(&c.audit(
        Some("reader-token"),
        &["-n", "other-namespace", "--allow-empty"],
    ));
    assert_eq!(
        results(&r, "replicas-min-3")[0].0,
        "no-data",
        "--allow-empty: every check is no-data"
    );
    // An empty metadata-only list (Secrets) comes back `items: null`, as from kube-apiserver:
    // that is an empty list, not an incomplete one.
    assert!(
        c.server.log().iter().any(|l| l
            .uri
            .starts_with("/api/v1/namespaces/other-namespace/secrets?")),
        "Secrets were listed"
    );
    let incomplete: Vec<_> = r["results"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|x| x["message"].as_str().unwrap().contains("did not complete"))
        .collect();
    assert!(incomplete.is_empty(), "{incomplete:?}");
    let r = report(&c.audit(Some("reader-token"), &["-A", "-l", "app=mlsdm-api"]));
    assert_eq!(results(&r, "replicas-min-3")[0].0, "pass");
    assert!(r["target"]["cluster"]["namespace"].is_null());
    assert!(
        c.server
            .log()
            .iter()
            .any(|l| l.uri.starts_with("/apis/apps/v1/deployments?")),
        "an all-namespaces list"
    );
}

#[allow(dead_code)]
fn unused(_: &Path) {}

/// Regression (issue 10.10): "cannot evaluate" messages built from an API server's error body
/// skipped redaction, so a secret value it quoted was printed (plain and base64). One redaction
/// layer sits in front of every output: every format, stdout, stderr.
#[test]
fn secrets_quoted_by_the_api_server_are_redacted_in_every_output() {
    use base64::Engine as _;
    const CANARY: &str = "canary-Zq8vK2mX7pL4wR9tB3nY6cH1";
    let b64 = base64::engine::general_purpose::STANDARD.encode(CANARY);
    let mut objs = healthy();
    objs.push(serde_json::json!({
        "apiVersion": "v1",
        "kind": "ConfigMap",
        "metadata": {"name": "legacy-credentials", "namespace": "mlsdm-production"},
        "data": {"API_KEY": CANARY},
    }));
    let mut config = ApiConfig::new(objs);
    config.faults = vec![
        Fault {
            path_contains: "horizontalpodautoscalers".into(),
            kind: FaultKind::StatusMessage(
                500,
                format!("admission webhook saw API_KEY={CANARY} (base64 {b64}) and refused"),
            ),
            times: 10_000,
        },
        // The kubeconfig's own bearer token, quoted by a gateway: it was printed as it is.
        Fault {
            path_contains: "networkpolicies".into(),
            kind: FaultKind::StatusMessage(
                500,
                "gateway: request with header Authorization: Bearer reader-token was refused"
                    .into(),
            ),
            times: 10_000,
        },
    ];
    let c = cluster(config);
    for format in mlsdm_audit::report::Format::names() {
        let kc = c.kubeconfig(Some("reader-token"));
        let out = audit(&["check", "--kubeconfig", &kc, "--format", format]);
        let text = format!(
            "{}{}",
            String::from_utf8_lossy(&out.stdout),
            String::from_utf8_lossy(&out.stderr)
        );
        assert!(!text.contains(CANARY), "{format}: the secret leaked");
        assert!(
            !text.contains("reader-token"),
            "{format}: the kubeconfig's token leaked"
        );
        assert!(
            !text.contains(&b64),
            "{format}: the secret leaked in base64"
        );
        if format == "json" {
            let r = report(&out);
            let (status, _, message) = &results(&r, "hpa-replica-range")[0];
            assert_eq!(status, "error", "{message}");
            assert!(message.contains("<redacted>"), "{message}");
        }
    }
}

/// Regression (issue 10.13): answers from the API server were read whole, so a 3 GiB list body
/// aborted the process. Every answer is read up to the input cap; past it the audit stops with
/// one line naming the cap.
#[test]
fn an_endless_answer_from_the_api_server_is_capped() {
    let mut config = ApiConfig::new(healthy());
    config.faults = vec![Fault {
        path_contains: "/deployments".into(),
        kind: FaultKind::Huge(3 << 20),
        times: 10_000,
    }];
    let c = cluster(config);
    let out = c.audit(Some("reader-token"), &["--max-input-size", "1Mi"]);
    let err = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(3), "{err}");
    assert!(
        err.contains("the answer is larger than 1 MiB (--max-input-size raises it)"),
        "{err}"
    );
}

/// Runs the audit, killing it after `limit`: None when it did not finish in time.
fn audit_within(args: &[&str], limit: std::time::Duration) -> Option<Output> {
    support::cmd().args(args).deadline(limit).run_within()
}

/// Generous: the audits below are bounded at 2 or 3 seconds; a loaded machine may take longer,
/// never this long. Before every wait had a deadline these ran for minutes or forever.
const BOUND: std::time::Duration = std::time::Duration::from_secs(90);

fn one_line_error(what: &str, out: &Output, needles: &[&str]) {
    let err = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(3), "{what}: {err}");
    assert!(
        out.stdout.is_empty(),
        "{what}: no report: {}",
        String::from_utf8_lossy(&out.stdout)
    );
    assert!(
        err.starts_with("error: ") && err.lines().count() == 1,
        "{what}: one line: {err}"
    );
    for n in needles {
        assert!(err.contains(n), "{what}: {n:?} in {err}");
    }
}

#[test]
fn a_discovery_answer_trickled_a_byte_at_a_time_is_bounded_by_the_request_timeout() {
    let mut config = ApiConfig::new(healthy());
    config.faults.push(Fault {
        path_contains: "/api".into(),
        kind: FaultKind::Trickle(std::time::Duration::from_millis(200)),
        times: 1000,
    });
    let c = cluster(config);
    let kc = c.kubeconfig(Some("reader-token"));
    let out = audit_within(
        &["check", "--kubeconfig", &kc, "--request-timeout", "2s"],
        BOUND,
    )
    .expect("the audit ends within the bound");
    one_line_error("trickled discovery", &out, &["--request-timeout", "2s"]);
}

#[test]
fn a_hanging_list_is_bounded_by_the_request_timeout_and_not_retried() {
    let mut config = ApiConfig::new(healthy());
    config.faults.push(Fault {
        path_contains: "/pods".into(),
        kind: FaultKind::Hang,
        times: 1000,
    });
    let c = cluster(config);
    let kc = c.kubeconfig(Some("reader-token"));
    let out = audit_within(
        &["check", "--kubeconfig", &kc, "--request-timeout", "2s"],
        BOUND,
    )
    .expect("the audit ends within the bound");
    one_line_error("hanging list", &out, &["--request-timeout", "pods"]);
    let pods = c
        .server
        .log()
        .iter()
        .filter(|l| l.uri.contains("/pods"))
        .count();
    // The hanging requests never finish, so the log has none of them: at most one was sent.
    assert_eq!(pods, 0);
}

#[cfg(unix)]
#[test]
fn exec_credential_plugins_are_bounded_and_their_token_is_used() {
    let c = cluster(ApiConfig::new(healthy()));
    let good = c
        .server
        .kubeconfig(Some("reader-token"), "mlsdm-production");
    let with_exec = |name: &str, exec: &str| {
        let path = c.dir.join(name);
        std::fs::write(&path, good.replace("    token: reader-token\n", exec)).unwrap();
        path.to_str().unwrap().to_string()
    };
    // A plugin that never answers.
    let kc = with_exec(
        "exec-hang",
        "    exec:\n      apiVersion: client.authentication.k8s.io/v1\n      command: sleep\n      args: [\"1000\"]\n      interactiveMode: Never\n",
    );
    let out = audit_within(
        &["check", "--kubeconfig", &kc, "--request-timeout", "2s"],
        BOUND,
    )
    .expect("the audit ends within the bound");
    one_line_error(
        "hanging plugin",
        &out,
        &["exec credential plugin did not answer", "--request-timeout"],
    );
    // A plugin that answers: its token is the credential, and it is never printed.
    let kc = with_exec(
        "exec-token",
        "    exec:\n      apiVersion: client.authentication.k8s.io/v1\n      command: sh\n      args: [\"-c\", \"echo '{\\\"apiVersion\\\":\\\"client.authentication.k8s.io/v1\\\",\\\"kind\\\":\\\"ExecCredential\\\",\\\"status\\\":{\\\"token\\\":\\\"reader-token\\\"}}'\"]\n      interactiveMode: Never\n",
    );
    let out = audit(&["check", "--kubeconfig", &kc, "--format", "json"]);
    assert_eq!(
        out.status.code(),
        Some(0),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(
        c.server
            .log()
            .iter()
            .any(|l| l.user == "token:reader-token"),
        "the plugin's token was sent"
    );
    // Review finding: with interactiveMode IfAvailable (or unset) and no terminal, the plugin's
    // stderr reached the log unredacted. As client-go, it is interactive only at a terminal.
    let kc = with_exec(
        "exec-chatty",
        "    exec:\n      apiVersion: client.authentication.k8s.io/v1\n      command: sh\n      args: [\"-c\", \"echo 'debug: refreshed token plugin-stderr-canary-7Qx' >&2; echo '{\\\"apiVersion\\\":\\\"client.authentication.k8s.io/v1\\\",\\\"kind\\\":\\\"ExecCredential\\\",\\\"status\\\":{\\\"token\\\":\\\"reader-token\\\"}}'\"]\n      interactiveMode: IfAvailable\n",
    );
    let out = audit(&["check", "--kubeconfig", &kc, "--format", "json"]);
    assert_eq!(
        out.status.code(),
        Some(0),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(
        !String::from_utf8_lossy(&out.stderr).contains("plugin-stderr-canary-7Qx"),
        "the plugin's stderr reached the output"
    );
}

#[test]
fn probes_through_the_api_server_proxy_use_the_http_timeout() {
    let c = cluster_with(
        ApiConfig::new(healthy()),
        mlsdm_audit_testservers::mlsdm::Config::mode("hanging").unwrap(),
    );
    let kc = c.kubeconfig(Some("reader-token"));
    let started = std::time::Instant::now();
    let out = audit_within(
        &[
            "check",
            "--kubeconfig",
            &kc,
            "--format",
            "json",
            "--http-timeout",
            "2s",
        ],
        BOUND,
    )
    .expect("the audit ends within the bound");
    let r = report(&out);
    let ready = results(&r, "health-ready");
    assert!(
        !ready.is_empty()
            && ready
                .iter()
                .all(|x| x.0 == "error" && x.2.contains("--http-timeout")),
        "{ready:?}"
    );
    assert_ne!(out.status.code(), Some(0));
    assert!(started.elapsed() < BOUND);
}

#[test]
fn the_total_timeout_stops_the_run_naming_what_was_still_running() {
    let mut config = ApiConfig::new(healthy());
    config.faults.push(Fault {
        path_contains: "/pods".into(),
        kind: FaultKind::Hang,
        times: 1000,
    });
    let c = cluster(config);
    let kc = c.kubeconfig(Some("reader-token"));
    for format in ["json", "table"] {
        let out = audit_within(
            &[
                "check",
                "--kubeconfig",
                &kc,
                "--request-timeout",
                "10m",
                // 15 s: on a loaded machine loading the catalog alone can take seconds, and
                // the timeout must fire while the pods are being listed, not before.
                "--timeout",
                "15s",
                "--format",
                format,
            ],
            BOUND,
        )
        .expect("the audit ends within the bound");
        one_line_error(
            "total timeout",
            &out,
            &["--timeout 15s", "still running", "listing pods"],
        );
    }
    let out = audit(&["check", "--kubeconfig", &kc, "--timeout", "0s"]);
    assert_eq!(out.status.code(), Some(2));
}

/// Review finding: a live audit given `--endpoint` (the service's URL) sent the per-pod checks
/// to that URL once, and a Service or an ingress answers from one pod of several: "each pod is
/// ready" passed on whichever pod answered. With the cluster at hand, per-pod checks go to each
/// pod through the API server; the others still go to the endpoint, and the metrics are
/// scraped there only (not the endpoint and each pod, which would count one pod twice).
#[test]
fn per_pod_checks_go_to_each_pod_even_with_an_endpoint() {
    let c = cluster(ApiConfig::new(healthy()));
    let live = report(&c.audit(
        Some("reader-token"),
        &[
            "--endpoint",
            &c.mlsdm.url,
            "--only",
            "health-live,status-ok,status-dimension,metrics-being-collected",
        ],
    ));
    let per_pod = results(&live, "health-live");
    assert_eq!(per_pod.len(), 3, "{per_pod:?}");
    // What a process loaded (its /status config) is each pod's too (review finding: one pod
    // answered for all through the Service).
    let dimension = results(&live, "status-dimension");
    assert_eq!(dimension.len(), 3, "{dimension:?}");
    assert!(
        per_pod
            .iter()
            .any(|x| x.1 == "mlsdm-api-6b8f9d7c5-k2m8x" && x.0 == "pass"),
        "{per_pod:?}"
    );
    let status = results(&live, "status-ok");
    assert_eq!(status.len(), 1, "{status:?}");
    let log = c.server.log();
    assert!(
        log.iter().any(|l| l
            .uri
            .contains("/pods/mlsdm-api-6b8f9d7c5-k2m8x:8000/proxy/health/live")),
        "the pods were probed through the API server"
    );
    assert!(
        !log.iter()
            .any(|l| l.uri.contains("/services/") && l.uri.contains("/proxy/")),
        "the service's own checks went to --endpoint"
    );
    // The metrics are each pod's, scraped through the API server, not the endpoint's (which
    // answers from one replica at a time: review finding, every metrics check was an error).
    assert!(
        log.iter().any(|l| l
            .uri
            .contains("/pods/mlsdm-api-6b8f9d7c5-k2m8x:8000/proxy/health/metrics")),
        "the pods' metrics were scraped"
    );
    let collected = results(&live, "metrics-being-collected");
    assert!(collected.iter().all(|x| x.0 != "error"), "{collected:?}");
    assert!(log.iter().all(|l| l.method == "GET"));
}
