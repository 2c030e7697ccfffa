//! The live audit against a real kube-apiserver (Debian's Kubernetes 1.20, built by
//! scripts/kube-apiserver.sh, loaded by scripts/real-cluster-setup.sh): same results as the
//! manifest audit of the objects kubectl reads back, a 403 shown as error with exit 3, and the
//! server's own audit log proving the tool sent nothing but get/list.

mod support;
use support::statuses_by_source;

use serde_json::Value;
use std::path::PathBuf;
use std::process::{Command, Output};

fn dir() -> PathBuf {
    PathBuf::from(std::env::var("KUBE_TEST_REAL_DIR").expect("KUBE_TEST_REAL_DIR is not set: run the suite with scripts/test.sh, which builds and starts a real kube-apiserver"))
}

fn audit(args: &[&str]) -> Output {
    support::run(args)
}

fn kubeconfig(user: &str) -> String {
    dir()
        .join(format!("kubeconfig-{user}"))
        .to_str()
        .unwrap()
        .to_string()
}

fn report(out: &Output) -> Value {
    serde_json::from_slice(&out.stdout)
        .unwrap_or_else(|e| panic!("{e}: {}", String::from_utf8_lossy(&out.stderr)))
}

#[test]
fn real_apiserver_audit_matches_the_manifest_audit() {
    let out = audit(&[
        "check",
        "--kubeconfig",
        &kubeconfig("auditor"),
        "--format",
        "json",
    ]);
    let live = report(&out);
    // The same objects, read back by kubectl (an independent client) as one List. HPAs are asked
    // for in autoscaling/v2beta2: kubectl would otherwise take the preferred v1, which has no metrics.
    let kubectl = std::env::var("MLSDM_AUDIT_KUBECTL").unwrap_or_else(|_| "kubectl".into());
    let kinds = "deployments,replicasets,statefulsets,daemonsets,jobs,cronjobs,pods,services,configmaps,secrets,serviceaccounts,resourcequotas,limitranges,horizontalpodautoscalers.v2beta2.autoscaling,poddisruptionbudgets,networkpolicies,ingresses,rolebindings,roles,servicemonitors,prometheusrules,alertmanagerconfigs,vulnerabilityreports";
    let got = Command::new(&kubectl)
        .args([
            "--kubeconfig",
            &kubeconfig("admin"),
            "get",
            kinds,
            "-n",
            "mlsdm-production",
            "-o",
            "json",
        ])
        .output()
        .unwrap();
    assert!(
        got.status.success(),
        "{}",
        String::from_utf8_lossy(&got.stderr)
    );
    let mut list: Value = serde_json::from_slice(&got.stdout).unwrap();
    let ns = Command::new(&kubectl)
        .args([
            "--kubeconfig",
            &kubeconfig("admin"),
            "get",
            "namespace",
            "mlsdm-production",
            "-o",
            "json",
        ])
        .output()
        .unwrap();
    let ns: Value = serde_json::from_slice(&ns.stdout).unwrap();
    let items = list["items"].as_array_mut().unwrap();
    items.push(ns);
    for item in items.iter_mut() {
        // The audit reads Secrets metadata-only.
        if item["kind"] == "Secret" {
            item.as_object_mut().unwrap().remove("data");
        }
    }
    let file = std::env::temp_dir().join(format!("mlsdm-audit-real-{}.json", std::process::id()));
    std::fs::write(&file, list.to_string()).unwrap();
    let manifest = report(&audit(&[
        "check",
        "--manifests",
        file.to_str().unwrap(),
        "--format",
        "json",
    ]));
    std::fs::remove_file(&file).unwrap();
    assert_eq!(
        statuses_by_source(&live, "kubernetes"),
        statuses_by_source(&manifest, "kubernetes")
    );
    let k = statuses_by_source(&live, "kubernetes");
    assert!(k.iter().filter(|x| x.2 == "pass").count() > 50, "{k:?}");
    assert!(
        !k.iter().any(|x| x.2 == "fail" || x.2 == "error"),
        "{:?}",
        k.iter().filter(|x| x.2 != "pass").collect::<Vec<_>>()
    );
    // autoscaling/v2beta2 and policy/v1beta1 were found through the version fallback.
    for id in [
        "hpa-metrics-cpu-memory",
        "pdb-min-available",
        "hpa-conditions-healthy",
        "pdb-disruptions-allowed",
        "rollout-complete",
        "pods-ready",
    ] {
        assert!(k.iter().any(|x| x.0 == id && x.2 == "pass"), "{id}");
    }
    // With no kubelet and no endpoints nothing can answer through the proxy: every http and
    // metrics result says so as an error; none is a pass or a fail.
    for source in ["http", "metrics"] {
        for (id, _, st) in statuses_by_source(&live, source) {
            assert!(st == "error" || st == "skipped", "{id}: {st}");
        }
    }
    assert_eq!(out.status.code(), Some(3));
}

#[test]
fn forbidden_on_a_real_server_is_an_error_with_exit_3() {
    let out = audit(&[
        "check",
        "--kubeconfig",
        &kubeconfig("restricted"),
        "--format",
        "json",
        "--only",
        "pdb-min-available,replicas-min-3",
    ]);
    assert_eq!(out.status.code(), Some(3));
    let r = report(&out);
    let pdb = r["results"]
        .as_array()
        .unwrap()
        .iter()
        .find(|x| x["id"] == "pdb-min-available")
        .unwrap();
    assert_eq!(pdb["status"], "error");
    assert!(
        pdb["message"]
            .as_str()
            .unwrap()
            .contains("cannot list resource \"poddisruptionbudgets\""),
        "{}",
        pdb["message"]
    );
    let replicas = r["results"]
        .as_array()
        .unwrap()
        .iter()
        .find(|x| x["id"] == "replicas-min-3")
        .unwrap();
    assert_eq!(replicas["status"], "pass");
}

#[test]
fn the_real_server_saw_only_reads_from_the_audit() {
    // Run an audit so the log has this test's requests too, then read the server's audit log.
    let _ = audit(&[
        "check",
        "--kubeconfig",
        &kubeconfig("auditor"),
        "--format",
        "json",
    ]);
    // And a fleet run (the same server under two contexts): its concurrent audits only read too.
    let fleet_dir =
        std::env::temp_dir().join(format!("mlsdm-audit-real-fleet-{}", std::process::id()));
    std::fs::create_dir_all(&fleet_dir).unwrap();
    let base = std::fs::read_to_string(kubeconfig("auditor")).unwrap();
    let fleet = fleet_dir.join("kubeconfig");
    std::fs::write(
        &fleet,
        base.replace("- name: real\n  context:", "- name: one\n  context:\n    cluster: real\n    user: auditor\n- name: real\n  context:"),
    )
    .unwrap();
    let out = audit(&[
        "check",
        "--kubeconfig",
        fleet.to_str().unwrap(),
        "--context",
        "real,one",
        "--format",
        "json",
    ]);
    let fleet_report = report(&out);
    assert_eq!(
        fleet_report["target"]["fleet"].as_array().map(Vec::len),
        Some(2),
        "{}",
        fleet_report["target"]
    );
    std::fs::remove_dir_all(&fleet_dir).unwrap();
    let log = std::fs::read_to_string(dir().join("audit.log")).unwrap();
    let mut seen = 0;
    for line in log.lines() {
        let e: Value = serde_json::from_str(line).unwrap();
        let user = e["user"]["username"].as_str().unwrap_or_default();
        if user == "auditor" || user == "restricted" {
            seen += 1;
            let verb = e["verb"].as_str().unwrap_or_default();
            assert!(
                ["get", "list", "watch"].contains(&verb),
                "the audit sent {verb} {}",
                e["requestURI"]
            );
        }
    }
    assert!(seen > 20, "the audit log has the audit's requests ({seen})");
}

#[test]
fn no_secret_value_in_any_output_from_a_real_server() {
    for format in ["json", "table", "markdown"] {
        let out = audit(&[
            "check",
            "--kubeconfig",
            &kubeconfig("auditor"),
            "--format",
            format,
        ]);
        let text = String::from_utf8_lossy(&out.stdout);
        assert!(
            !text.contains("kY7qZ9mRtN2xWpL4vB8cH1dF6gJ3sY0eQ5uA7iO2nX")
                && !text.contains("a1k3cVo5bVJ0TjJ4"),
            "{format}"
        );
    }
}

#[test]
fn a_degraded_release_on_a_real_server_fails_naming_pod_and_container() {
    let out = audit(&[
        "check",
        "--kubeconfig",
        &kubeconfig("auditor"),
        "-n",
        "mlsdm-degraded",
        "--format",
        "json",
    ]);
    assert_eq!(out.status.code(), Some(1));
    let r = report(&out);
    let found = |id: &str, pod: &str, text: &str| {
        r["results"].as_array().unwrap().iter().any(|x| {
            x["id"] == id
                && x["status"] == "fail"
                && x["object"]["name"] == pod
                && x["message"].as_str().unwrap().contains(text)
        })
    };
    assert!(found(
        "pod-no-oom-kills",
        "mlsdm-api-6b8f9d7c5-7d9c4",
        "container mlsdm-api was OOMKilled"
    ));
    assert!(found(
        "pod-no-restarts",
        "mlsdm-api-6b8f9d7c5-k2m8x",
        "container mlsdm-api restarted 3 times"
    ));
    assert!(found("pods-ready", "mlsdm-api", "2/3 replicas ready"));
    assert!(found(
        "rollout-complete",
        "mlsdm-api",
        "2 of 3 updated replicas available"
    ));
}

/// Issue 11: a cluster failure's kind is decided from the error chain's types, and its message
/// and exit code from the kind. Against the real kube-apiserver: a token it does not know is
/// `Unauthorized`, a CA that did not sign its certificate is `Tls`, a port nothing listens on is
/// `Connect`; the CLI says the same in one line, exit 3.
#[test]
fn cluster_failures_on_a_real_server_are_typed() {
    use mlsdm_audit::sources::kube::{self, ClusterErrorKind, ClusterOptions, ConnectError};
    use std::time::Duration;

    let good = std::fs::read_to_string(kubeconfig("auditor")).unwrap();
    let server = good
        .lines()
        .find_map(|l| l.trim().strip_prefix("server: "))
        .unwrap()
        .to_string();
    let ca = good
        .lines()
        .find_map(|l| l.trim().strip_prefix("certificate-authority-data: "))
        .unwrap()
        .to_string();
    let other = mlsdm_audit_testservers::tls::pki("other", &["127.0.0.1"]);
    let other_ca = {
        use base64::Engine as _;
        base64::engine::general_purpose::STANDARD.encode(other.ca_pem.as_bytes())
    };
    let work = std::env::temp_dir().join(format!("mlsdm-audit-typed-{}", std::process::id()));
    std::fs::create_dir_all(&work).unwrap();
    let cases = [
        (
            "bad-token",
            good.replace("auditor-token", "not-a-known-token"),
            ClusterErrorKind::Unauthorized,
            "unauthorized (401): the credentials were rejected",
        ),
        (
            "wrong-ca",
            good.replace(&ca, &other_ca),
            ClusterErrorKind::Tls,
            "TLS: the server's certificate is not trusted",
        ),
        (
            "closed-port",
            good.replace(&server, "https://127.0.0.1:9"),
            ClusterErrorKind::Connect,
            "https://127.0.0.1:9: cannot connect: ",
        ),
    ];
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap();
    for (name, text, kind, says) in cases {
        let path = work.join(name);
        std::fs::write(&path, text).unwrap();
        let opts = ClusterOptions {
            kubeconfig: Some(path.clone()),
            qps: 50.0,
            burst: 100,
            // An upper bound only: every case here fails at once.
            timeout: Duration::from_mins(1),
            max_pages: kube::DEFAULT_MAX_PAGES,
            ..ClusterOptions::default()
        };
        let err = rt.block_on(async {
            match kube::connect(&opts).await {
                Err(ConnectError::Cluster(e)) => e,
                Err(ConnectError::Config(m)) => panic!("{name}: a config error: {m}"),
                Ok((api, _, ns)) => kube::gather(&api, &opts, &ns, &[])
                    .await
                    .err()
                    .unwrap_or_else(|| panic!("{name}: the audit read the cluster")),
            }
        });
        assert_eq!(err.kind, kind, "{name}: {err}");
        assert!(err.to_string().contains(says), "{name}: {err}");
        let out = audit(&["check", "--kubeconfig", path.to_str().unwrap()]);
        assert_eq!(out.status.code(), Some(3), "{name}");
        let stderr = String::from_utf8_lossy(&out.stderr);
        assert!(
            stderr.starts_with("error: ") && stderr.contains(says) && stderr.lines().count() == 1,
            "{name}: {stderr}"
        );
    }
    std::fs::remove_dir_all(&work).unwrap();
}

/// Issue 11 (first rule): a live audit lists every kind a selected check matches, not only the
/// built-in ones. Found through discovery as kubectl does: on Kubernetes 1.20 `CronJob` is served
/// only in batch/v1beta1 (batch prefers v1, which has only Job), so a check on `CronJob` reads the
/// CronJob there (before: no-data, the cluster never asked); a check naming batch/v1 says the
/// server serves no CronJob there (error, not "no CronJob object"); a kind no group serves is
/// no-data saying so; without RBAC for it the check is an error naming the rule to grant; and
/// the server saw only reads of cronjobs.
#[test]
fn a_custom_checks_kinds_are_listed_live_through_discovery() {
    let kubectl = std::env::var("MLSDM_AUDIT_KUBECTL").unwrap_or_else(|_| "kubectl".into());
    // A CronJob beside the release, and `list` on cronjobs for the auditor (not for restricted).
    // Cluster-scoped RBAC, and a CronJob that passes the built-in check on the release's other
    // pods: the other tests' audits of this namespace see nothing new fail. `apply` so a second run against the same server passes too.
    let objects = r#"
apiVersion: v1
kind: List
items:
- apiVersion: batch/v1beta1
  kind: CronJob
  metadata: {name: memory-compaction, namespace: mlsdm-production}
  spec:
    schedule: "0 3 * * *"
    failedJobsHistoryLimit: 3
    jobTemplate:
      spec:
        template:
          spec:
            restartPolicy: OnFailure
            containers: [{name: compact, image: "busybox:1.36"}]
- apiVersion: rbac.authorization.k8s.io/v1
  kind: ClusterRole
  metadata: {name: mlsdm-audit-cronjobs}
  rules: [{apiGroups: [batch], resources: [cronjobs], verbs: [get, list]}]
- apiVersion: rbac.authorization.k8s.io/v1
  kind: ClusterRoleBinding
  metadata: {name: mlsdm-audit-cronjobs-auditor}
  roleRef: {apiGroup: rbac.authorization.k8s.io, kind: ClusterRole, name: mlsdm-audit-cronjobs}
  subjects: [{apiGroup: rbac.authorization.k8s.io, kind: User, name: auditor}]
"#;
    let mut apply = Command::new(&kubectl)
        .args(["--kubeconfig", &kubeconfig("admin"), "apply", "-f", "-"])
        .stdin(std::process::Stdio::piped())
        .stdout(std::process::Stdio::null())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .unwrap();
    std::io::Write::write_all(&mut apply.stdin.take().unwrap(), objects.as_bytes()).unwrap();
    let applied = apply.wait_with_output().unwrap();
    assert!(
        applied.status.success(),
        "{}",
        String::from_utf8_lossy(&applied.stderr)
    );

    // A kind is listed at one version, so a check naming batch/v1 runs on its own here: beside
    // it, the check naming no version would share its error.
    let custom = |user: &str, only: &str| {
        report(&audit(&[
            "check",
            "--kubeconfig",
            &kubeconfig(user),
            "--checks",
            "tests/data/checks-live-kinds",
            "--only",
            only,
            "--format",
            "json",
        ]))
    };
    let result = |r: &Value, id: &str| -> (String, String, String) {
        let x = r["results"]
            .as_array()
            .unwrap()
            .iter()
            .find(|x| x["id"] == id)
            .unwrap_or_else(|| panic!("no result for {id}: {r}"));
        (
            x["status"].as_str().unwrap().to_string(),
            x["object"]["name"].as_str().unwrap_or_default().to_string(),
            x["message"].as_str().unwrap_or_default().to_string(),
        )
    };

    let r = custom("auditor", "cronjob-history-limit,widget-sized");
    let (status, object, message) = result(&r, "cronjob-history-limit");
    assert_eq!(
        (status.as_str(), object.as_str()),
        ("fail", "memory-compaction"),
        "{message}"
    );
    // scripts/real-cluster-setup.sh registers metrics.k8s.io with no backend (a metrics-server
    // that is down): its discovery answers 503, so a kind served nowhere else may be served
    // there. An error naming the group, not "not served" (no-data), which the cluster never said.
    let (status, _, message) = result(&r, "widget-sized");
    assert_eq!(status, "error", "{message}");
    assert!(
        message.contains("API discovery could not read metrics.k8s.io/v1beta1")
            && message.contains("503"),
        "{message}"
    );

    let r = custom("auditor", "cronjob-batch-v1");
    let (status, _, message) = result(&r, "cronjob-batch-v1");
    assert_eq!(status, "error", "{message}");
    // CronJob is listed for the built-in checks too (at batch/v1beta1 on this 1.20 server):
    // the error says the objects are held at another version.
    assert!(
        message.contains("none at the batch/v1 this check names")
            && message.contains("batch/v1beta1"),
        "{message}"
    );

    // Without `list` on cronjobs: an error naming the rule to grant, never no-data.
    let r = custom("restricted", "cronjob-history-limit");
    let (status, _, message) = result(&r, "cronjob-history-limit");
    assert_eq!(status, "error", "{message}");
    assert!(
        message.contains("forbidden (403) listing cronjobs")
            && message.contains("`list` on `cronjobs` in API group \"batch\""),
        "{message}"
    );

    // The cluster was asked, and only read.
    let log = std::fs::read_to_string(dir().join("audit.log")).unwrap();
    let mut asked = 0;
    for line in log.lines() {
        let e: Value = serde_json::from_str(line).unwrap();
        let user = e["user"]["username"].as_str().unwrap_or_default();
        let uri = e["requestURI"].as_str().unwrap_or_default();
        if (user == "auditor" || user == "restricted") && uri.contains("/cronjobs") {
            asked += 1;
            let verb = e["verb"].as_str().unwrap_or_default();
            assert!(
                ["get", "list"].contains(&verb),
                "the audit sent {verb} {uri}"
            );
        }
    }
    assert!(asked >= 2, "the audit listed cronjobs ({asked} requests)");
}
