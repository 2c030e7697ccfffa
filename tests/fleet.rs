//! Fleets: `check --context a,b` and `--all-contexts` against the real kube-apiserver that
//! scripts/test.sh starts (the same server under two context names, one context with a token the
//! server refuses, one pointing at a closed 127.0.0.1 port), and `report --merge`.

mod support;

use serde_json::Value;
use std::path::{Path, PathBuf};
use std::process::{Command, Output};

/// The binary at a fixed clock, so reports do not change with the day.
fn bin() -> support::Cmd {
    support::cmd().env("SOURCE_DATE_EPOCH", "1700000000")
}

fn audit(args: &[&str]) -> Output {
    bin().args(args).run()
}

/// `report --merge FILES EXTRA`: the fleet merge, as every test here runs it.
fn merge<P: AsRef<std::ffi::OsStr>>(files: &[P], extra: &[&str]) -> Output {
    bin()
        .args(["report", "--merge"])
        .args(files)
        .args(extra)
        .run()
}

fn real_dir() -> PathBuf {
    PathBuf::from(std::env::var("KUBE_TEST_REAL_DIR").expect("KUBE_TEST_REAL_DIR is not set: run the suite with scripts/test.sh, which builds and starts a real kube-apiserver"))
}

/// A port on 127.0.0.1 that nothing listens on: bound, then released.
fn closed_port() -> u16 {
    let l = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    l.local_addr().unwrap().port()
}

/// `value` of the first `key: value` line of the auditor's kubeconfig (written by
/// scripts/kube-apiserver.sh).
fn field(kc: &str, key: &str) -> String {
    kc.lines()
        .find_map(|l| l.trim().strip_prefix(&format!("{key}: ")))
        .unwrap_or_else(|| panic!("no {key} in the test kubeconfig"))
        .to_string()
}

/// A kubeconfig with the real server as `east` and `west` (the auditor's token), `refused`
/// (a token the server does not know) and `gone` (a closed port).
pub fn fleet_kubeconfig(dir: &Path) -> PathBuf {
    let base = std::fs::read_to_string(real_dir().join("kubeconfig-auditor")).unwrap();
    let server = field(&base, "server");
    let ca = field(&base, "certificate-authority-data");
    let port = closed_port();
    let text = format!(
        "apiVersion: v1
kind: Config
clusters:
- name: real
  cluster:
    server: {server}
    certificate-authority-data: {ca}
- name: dead
  cluster:
    server: https://127.0.0.1:{port}
    certificate-authority-data: {ca}
users:
- name: auditor
  user:
    token: auditor-token
- name: stranger
  user:
    token: not-a-known-token
contexts:
- name: east
  context: {{cluster: real, user: auditor, namespace: mlsdm-production}}
- name: west
  context: {{cluster: real, user: auditor, namespace: mlsdm-production}}
- name: refused
  context: {{cluster: real, user: stranger, namespace: mlsdm-production}}
- name: gone
  context: {{cluster: dead, user: auditor, namespace: mlsdm-production}}
current-context: east
"
    );
    let path = dir.join("kubeconfig-fleet");
    std::fs::write(&path, text).unwrap();
    path
}

fn tempdir(name: &str) -> PathBuf {
    let d = std::env::temp_dir().join(format!("mlsdm-audit-fleet-{name}-{}", std::process::id()));
    std::fs::create_dir_all(&d).unwrap();
    d
}

fn json(out: &Output) -> Value {
    serde_json::from_slice(&out.stdout).unwrap_or_else(|e| {
        panic!(
            "{e}: {} / {}",
            String::from_utf8_lossy(&out.stdout),
            String::from_utf8_lossy(&out.stderr)
        )
    })
}

/// Checks the healthy release passes on the real server, so a good cluster alone exits 0.
const ONLY: &str = "replicas-min-3,pdb-min-available";

fn member<'a>(r: &'a Value, name: &str) -> &'a Value {
    r["target"]["fleet"]
        .as_array()
        .unwrap()
        .iter()
        .find(|m| m["name"] == name)
        .unwrap_or_else(|| panic!("no fleet member {name}: {}", r["target"]))
}

#[test]
fn unreachable_and_refused_clusters_are_errors_and_do_not_stop_the_others() {
    let dir = tempdir("mixed");
    let kc = fleet_kubeconfig(&dir);
    let out = audit(&[
        "check",
        "--kubeconfig",
        kc.to_str().unwrap(),
        "--context",
        "east,west,refused,gone",
        "--only",
        ONLY,
        "-o",
        "json",
    ]);
    let r = json(&out);
    assert_eq!(out.status.code(), Some(3), "{}", r["target"]);
    let names: Vec<&str> = r["target"]["fleet"]
        .as_array()
        .unwrap()
        .iter()
        .map(|m| m["name"].as_str().unwrap())
        .collect();
    assert_eq!(names, ["east", "west", "refused", "gone"]);
    for good in ["east", "west"] {
        let m = member(&r, good);
        assert_eq!(m["status"], "audited");
        assert_eq!(m["summary"]["pass"], 2, "{m}");
        assert!(m["cluster"]["requests"].as_u64().unwrap() > 0, "{m}");
        let mine: Vec<&Value> = r["results"]
            .as_array()
            .unwrap()
            .iter()
            .filter(|x| x["cluster"] == good)
            .collect();
        assert_eq!(mine.len(), 2, "{mine:?}");
        assert!(mine.iter().all(|x| x["status"] == "pass"), "{mine:?}");
    }
    let refused = member(&r, "refused");
    assert_eq!(refused["status"], "error");
    assert!(
        refused["reason"].as_str().unwrap().contains("401")
            || refused["reason"]
                .as_str()
                .unwrap()
                .to_lowercase()
                .contains("unauthorized"),
        "{refused}"
    );
    let gone = member(&r, "gone");
    assert_eq!(gone["status"], "error");
    assert!(!gone["reason"].as_str().unwrap().is_empty());
    // Each unaudited cluster is an error result of its own, so no format can drop it.
    for bad in ["refused", "gone"] {
        assert!(
            r["results"]
                .as_array()
                .unwrap()
                .iter()
                .any(|x| x["cluster"] == bad
                    && x["id"] == "cluster-audited"
                    && x["status"] == "error"),
            "{bad}"
        );
    }
    // The token of the refused context is in no output.
    assert!(!String::from_utf8_lossy(&out.stdout).contains("not-a-known-token"));
    assert!(!String::from_utf8_lossy(&out.stderr).contains("not-a-known-token"));
    std::fs::remove_dir_all(dir).unwrap();
}

#[test]
fn a_fleet_of_good_clusters_passes_and_all_contexts_takes_every_context() {
    let dir = tempdir("good");
    let kc = fleet_kubeconfig(&dir);
    let kc = kc.to_str().unwrap();
    let out = audit(&[
        "check",
        "--kubeconfig",
        kc,
        "--context",
        "east,west",
        "--only",
        ONLY,
        "-o",
        "json",
    ]);
    let r = json(&out);
    assert_eq!(out.status.code(), Some(0), "{}", r["target"]);
    assert_eq!(r["target"]["fleet"].as_array().unwrap().len(), 2);
    assert_eq!(r["summary"]["pass"], 4);

    let out = audit(&[
        "check",
        "--kubeconfig",
        kc,
        "--all-contexts",
        "--only",
        ONLY,
        "-o",
        "json",
    ]);
    let r = json(&out);
    assert_eq!(out.status.code(), Some(3));
    let names: Vec<&str> = r["target"]["fleet"]
        .as_array()
        .unwrap()
        .iter()
        .map(|m| m["name"].as_str().unwrap())
        .collect();
    assert_eq!(names, ["east", "west", "refused", "gone"]);
    std::fs::remove_dir_all(dir).unwrap();
}

#[test]
fn every_format_names_the_cluster_of_each_finding() {
    let dir = tempdir("formats");
    let kc = fleet_kubeconfig(&dir);
    for format in [
        "table",
        "json",
        "markdown",
        "html",
        "junit",
        "sarif",
        "codeclimate",
    ] {
        let out = audit(&[
            "check",
            "--kubeconfig",
            kc.to_str().unwrap(),
            "--context",
            "east,gone",
            "--only",
            ONLY,
            "-o",
            format,
        ]);
        assert_eq!(out.status.code(), Some(3), "{format}");
        let text = String::from_utf8_lossy(&out.stdout);
        assert!(
            text.contains("cluster gone") || text.contains("\"gone\""),
            "{format}: {text}"
        );
        // Formats that list every result or every cluster name the good one too; SARIF and
        // Code Quality list only findings.
        // The checklist ticks nothing for a fleet with a cluster that was not audited.
        if format == "markdown" {
            assert!(!text.contains("[x]"), "{text}");
        }
        if !["sarif", "codeclimate"].contains(&format) {
            assert!(text.contains("east"), "{format}: {text}");
        }
    }
    // The terminal summary has a line per cluster.
    let out = audit(&[
        "check",
        "--kubeconfig",
        kc.to_str().unwrap(),
        "--context",
        "east,gone",
        "--only",
        ONLY,
    ]);
    let text = String::from_utf8_lossy(&out.stdout);
    assert!(
        text.lines()
            .any(|l| l.starts_with("cluster east (https://127.0.0.1:") && l.contains("2 pass")),
        "{text}"
    );
    assert!(
        text.lines().any(|l| l.starts_with("cluster gone: error: ")),
        "{text}"
    );
    std::fs::remove_dir_all(dir).unwrap();
}

#[test]
fn flags_that_cannot_apply_to_a_fleet_are_refused_naming_the_conflict() {
    let dir = tempdir("flags");
    // A kubeconfig is read only to know its contexts: no server is contacted here.
    let kc = dir.join("kubeconfig");
    std::fs::write(
        &kc,
        "apiVersion: v1\nkind: Config\nclusters:\n- name: c\n  cluster: {server: 'https://127.0.0.1:1'}\nusers:\n- name: u\n  user: {token: t}\ncontexts:\n- name: a\n  context: {cluster: c, user: u}\n- name: b\n  context: {cluster: c, user: u}\ncurrent-context: a\n",
    )
    .unwrap();
    let kc = kc.to_str().unwrap();
    let cases: [(&[&str], &str); 7] = [
        (&["-f", "fixtures", "--context", "a,b"], "--context"),
        (&["-f", "fixtures", "--all-contexts"], "--all-contexts"),
        (
            &[
                "--kubeconfig",
                kc,
                "--context",
                "a,b",
                "--endpoint",
                "http://127.0.0.1:1",
            ],
            "--endpoint cannot be used with --context a,b",
        ),
        (
            &[
                "--kubeconfig",
                kc,
                "--all-contexts",
                "--prometheus",
                "http://127.0.0.1:1",
            ],
            "--prometheus",
        ),
        (
            &["--kubeconfig", kc, "--context", "a,nope"],
            "no context named nope",
        ),
        (&["--kubeconfig", kc, "--context", "a,a"], "named twice"),
        (
            &["--kubeconfig", kc, "--context", "a,,b"],
            "empty context name",
        ),
    ];
    for (args, says) in cases {
        let mut all = vec!["check"];
        all.extend_from_slice(args);
        let out = audit(&all);
        let err = String::from_utf8_lossy(&out.stderr);
        assert_eq!(out.status.code(), Some(2), "{args:?}: {err}");
        assert!(err.contains(says), "{args:?}: {err}");
    }
    std::fs::remove_dir_all(dir).unwrap();
}

/// A `check -o json` of a fixture, dressed as a cluster audit (what the in-cluster CronJob
/// writes), saved as DIR/NAME.json.
fn cluster_report(dir: &Path, name: &str, fixture: &str) -> PathBuf {
    let out = audit(&["check", "-f", fixture, "-o", "json"]);
    let mut r = json(&out);
    r["target"]["mode"] = "cluster".into();
    r["target"]["cluster"] = serde_json::json!({"server": format!("https://{name}.example:6443"), "namespace": "mlsdm-production", "requests": 40});
    let path = dir.join(format!("{name}.json"));
    std::fs::write(&path, r.to_string()).unwrap();
    path
}

/// Members audited with different selectors or checks left out were merged under the first's
/// target, as if every cluster had been audited as it says.
#[test]
fn a_merge_refuses_members_of_another_scope() {
    let dir = tempdir("merge-scope");
    let eu = cluster_report(&dir, "prod-eu", "fixtures/compliant");
    let us = cluster_report(&dir, "prod-us", "fixtures/compliant");
    let mut r: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(&us).unwrap()).unwrap();
    r["target"]["selector"] = "tier=canary".into();
    std::fs::write(&us, r.to_string()).unwrap();
    let out = merge(&[&eu, &us], &["-o", "json"]);
    assert_eq!(out.status.code(), Some(2));
    assert!(
        String::from_utf8_lossy(&out.stderr).contains("the workload selector differs"),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
}

#[test]
fn merged_reports_are_one_fleet_report_whose_verdict_is_the_worst_part() {
    let dir = tempdir("merge");
    let eu = cluster_report(&dir, "prod-eu", "fixtures/compliant");
    let us = cluster_report(&dir, "prod-us", "fixtures/defective");
    let alone = merge(&[&eu], &["-o", "json"]);
    let alone_code = alone.status.code();
    let out = merge(&[&eu, &us], &["-o", "json"]);
    let r = json(&out);
    // The defective release fails: the fleet fails, whatever the compliant one says.
    assert_eq!(out.status.code(), Some(1), "{}", r["summary"]);
    assert_ne!(alone_code, Some(1));
    let names: Vec<&str> = r["target"]["fleet"]
        .as_array()
        .unwrap()
        .iter()
        .map(|m| m["name"].as_str().unwrap())
        .collect();
    assert_eq!(names, ["prod-eu", "prod-us"]);
    assert!(
        r["results"]
            .as_array()
            .unwrap()
            .iter()
            .all(|x| x["cluster"] == "prod-eu" || x["cluster"] == "prod-us")
    );
    assert!(
        r["results"]
            .as_array()
            .unwrap()
            .iter()
            .any(|x| x["cluster"] == "prod-us" && x["status"] == "fail")
    );
    // Every format renders the merged report with the same gate.
    for format in ["table", "markdown", "html", "junit", "sarif", "codeclimate"] {
        let out = merge(&[&eu, &us], &["-o", format]);
        assert_eq!(out.status.code(), Some(1), "{format}");
        assert!(
            String::from_utf8_lossy(&out.stdout).contains("prod-us"),
            "{format}"
        );
    }
    // A merged fleet report merges again with another cluster, keeping its clusters' names.
    let fleet = dir.join("fleet.json");
    std::fs::write(&fleet, merge(&[&eu, &us], &["-o", "json"]).stdout).unwrap();
    let ap = cluster_report(&dir, "prod-ap", "fixtures/compliant");
    let out = merge(&[&fleet, &ap], &["-o", "json"]);
    let r = json(&out);
    assert_eq!(r["target"]["fleet"].as_array().unwrap().len(), 3);
    assert_eq!(out.status.code(), Some(1));
    std::fs::remove_dir_all(dir).unwrap();
}

fn out_json(args: &[&str]) -> Vec<u8> {
    audit(args).stdout
}

#[test]
fn reports_that_cannot_be_merged_are_refused_naming_the_files() {
    let dir = tempdir("refuse");
    let a = cluster_report(&dir, "a", "fixtures/compliant");
    let b = cluster_report(&dir, "b", "fixtures/compliant");
    let refuse = |files: &[&Path], says: &str| {
        let out = merge(files, &[]);
        let err = String::from_utf8_lossy(&out.stderr);
        assert_eq!(out.status.code(), Some(2), "{err}");
        assert!(err.contains(says), "{says}: {err}");
        for f in files {
            assert!(err.contains(f.to_str().unwrap()), "{f:?}: {err}");
        }
    };
    // Another tool version.
    let mut other: Value = serde_json::from_slice(&std::fs::read(&b).unwrap()).unwrap();
    other["tool"]["version"] = "0.0.1".into();
    let old = dir.join("old.json");
    std::fs::write(&old, other.to_string()).unwrap();
    refuse(&[&a, &old], "tool version");
    // Another definition of a check (another catalog).
    let mut other: Value = serde_json::from_slice(&std::fs::read(&b).unwrap()).unwrap();
    other["checks"][0]["sha256"] = "00".repeat(32).into();
    let changed = dir.join("changed.json");
    std::fs::write(&changed, other.to_string()).unwrap();
    refuse(&[&a, &changed], "definition of check");
    // The same cluster name twice (two files named a.json).
    std::fs::create_dir_all(dir.join("again")).unwrap();
    let again = dir.join("again/a.json");
    std::fs::copy(&b, &again).unwrap();
    refuse(&[&a, &again], "cluster a is in both");
    // Review 29: one audit twice, a copy renamed for a cluster never audited.
    let copy = dir.join("c.json");
    std::fs::copy(&a, &copy).unwrap();
    refuse(&[&a, &copy], "are the same audit");
    // Review 29: a report whose failing result was taken out (its summary still counts it)
    // was merged with a warning, into a fleet report that verified.
    let us = cluster_report(&dir, "us", "fixtures/defective");
    let mut cut: Value = serde_json::from_slice(&std::fs::read(&us).unwrap()).unwrap();
    let results = cut["results"].as_array_mut().unwrap();
    let failing = results.iter().position(|x| x["status"] == "fail").unwrap();
    results.remove(failing);
    let cut_path = dir.join("us-cut.json");
    std::fs::write(&cut_path, cut.to_string()).unwrap();
    let out = merge(&[&a, &cut_path], &[]);
    let err = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(2), "{err}");
    assert!(
        err.contains("cannot merge")
            && err.contains("us-cut.json: the report does not hold together"),
        "{err}"
    );
    // A manifest audit is not a cluster's.
    let manifests = dir.join("manifests.json");
    std::fs::write(
        &manifests,
        out_json(&["check", "-f", "fixtures/compliant", "-o", "json"]),
    )
    .unwrap();
    let out = merge(&[&a, &manifests], &[]);
    assert_eq!(out.status.code(), Some(2));
    assert!(String::from_utf8_lossy(&out.stderr).contains("manifests.json"));
    std::fs::remove_dir_all(dir).unwrap();
}

#[test]
fn watch_refuses_a_fleet() {
    for args in [
        &["watch", "--context", "a,b"][..],
        &["watch", "--all-contexts"][..],
    ] {
        let out = audit(args);
        assert_eq!(out.status.code(), Some(2), "{args:?}");
        assert!(
            String::from_utf8_lossy(&out.stderr)
                .contains("watch follows one release on one cluster"),
            "{args:?}"
        );
    }
}

fn kubectl() -> String {
    std::env::var("MLSDM_AUDIT_KUBECTL").unwrap_or_else(|_| "kubectl".into())
}

/// The `publish` container's script, from deploy/cronjob-report-configmap.yaml as it is.
fn publish_script() -> String {
    let text = std::fs::read_to_string(concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/deploy/cronjob-report-configmap.yaml"
    ))
    .unwrap();
    let cronjob: Value = serde_saphyr::from_str(&text).unwrap();
    let c = &cronjob["spec"]["jobTemplate"]["spec"]["template"]["spec"]["containers"][1];
    assert_eq!(c["name"], "publish");
    c["command"][2].as_str().unwrap().to_string()
}

/// Runs the publish script as the job's ServiceAccount would: `kubeconfig` impersonates it.
fn publish(report_dir: &Path, kubeconfig: &Path, wait: &str) -> Output {
    let kubectl = kubectl();
    let path = match Path::new(&kubectl)
        .parent()
        .filter(|p| !p.as_os_str().is_empty())
    {
        Some(bin) => format!(
            "{}:{}",
            bin.display(),
            std::env::var("PATH").unwrap_or_default()
        ),
        None => std::env::var("PATH").unwrap_or_default(),
    };
    Command::new("sh")
        .arg("-c")
        .arg(publish_script())
        .env("REPORT_DIR", report_dir)
        .env("HOME", report_dir)
        .env("REPORT_WAIT_SECONDS", wait)
        .env("KUBECONFIG", kubeconfig)
        .env("PATH", path)
        .output()
        .unwrap()
}

fn kubectl_admin(args: &[&str]) -> Output {
    Command::new(kubectl())
        .arg("--kubeconfig")
        .arg(real_dir().join("kubeconfig-admin"))
        .args(args)
        .output()
        .unwrap()
}

/// The in-cluster flow on the real server: deploy/report-configmap-rbac.yaml applied, the
/// CronJob's `publish` script run as its ServiceAccount (admin impersonating it, so the server
/// evaluates the Role), the central gather with `kubectl get configmap -o jsonpath`, then
/// `report --merge`. The ServiceAccount can update that one ConfigMap and nothing more.
#[test]
fn the_cronjob_publishes_to_its_configmap_and_a_central_job_merges_the_fleet() {
    let dir = tempdir("publish");
    let root = env!("CARGO_MANIFEST_DIR");
    let applied = kubectl_admin(&[
        "apply",
        "-f",
        &format!("{root}/deploy/report-configmap-rbac.yaml"),
    ]);
    assert!(
        applied.status.success(),
        "{}",
        String::from_utf8_lossy(&applied.stderr)
    );
    let admin = std::fs::read_to_string(real_dir().join("kubeconfig-admin")).unwrap();
    let as_sa = admin.replace(
        "    token: admin-token",
        "    token: admin-token\n    as: system:serviceaccount:mlsdm-audit:mlsdm-audit",
    );
    assert_ne!(as_sa, admin);
    let sa_kc = dir.join("kubeconfig-sa");
    std::fs::write(&sa_kc, as_sa).unwrap();
    // What the ServiceAccount may do, asked of the server.
    let can = |args: &[&str]| {
        let out = Command::new(kubectl())
            .arg("--kubeconfig")
            .arg(&sa_kc)
            .args(["auth", "can-i", "-n", "mlsdm-audit"])
            .args(args)
            .output()
            .unwrap();
        String::from_utf8_lossy(&out.stdout).trim() == "yes"
    };
    assert!(can(&["update", "configmap/mlsdm-audit-report"]));
    assert!(!can(&["update", "configmap/other"]));
    assert!(!can(&["create", "configmaps"]));
    assert!(!can(&["delete", "configmap/mlsdm-audit-report"]));
    assert!(!can(&["patch", "configmap/mlsdm-audit-report"]));

    // The audit container's step: the report on the shared volume.
    let vol = dir.join("report");
    std::fs::create_dir_all(&vol).unwrap();
    let out = audit(&[
        "check",
        "--kubeconfig",
        real_dir().join("kubeconfig-auditor").to_str().unwrap(),
        "--only",
        ONLY,
        "-o",
        "json",
        "--output-file",
        vol.join("report.json").to_str().unwrap(),
    ]);
    assert_eq!(
        out.status.code(),
        Some(0),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let published = publish(&vol, &sa_kc, "540");
    assert!(
        published.status.success(),
        "{}",
        String::from_utf8_lossy(&published.stderr)
    );

    // The central job: one file per cluster, named after it, then the merge.
    let gather = |name: &str| {
        let out = kubectl_admin(&[
            "-n",
            "mlsdm-audit",
            "get",
            "configmap",
            "mlsdm-audit-report",
            "-o",
            "jsonpath={.data.report\\.json}",
        ]);
        assert!(
            out.status.success(),
            "{}",
            String::from_utf8_lossy(&out.stderr)
        );
        let file = dir.join(format!("{name}.json"));
        std::fs::write(&file, out.stdout).unwrap();
        file
    };
    let east = gather("east");
    let west = gather("west");
    let out = merge(&[&east, &west], &["-o", "json"]);
    let r = json(&out);
    assert_eq!(out.status.code(), Some(0), "{}", r["target"]);
    assert_eq!(r["target"]["fleet"].as_array().unwrap().len(), 2);
    assert_eq!(r["summary"]["pass"], 4);

    // docs/ci.md's fleet walkthrough, as written, now that the ConfigMap holds a report.
    run_fleet_docs(&dir.join("docs"), &fleet_kubeconfig(&dir));

    // An audit that wrote no report: `publish` stores a line saying so, and the merge refuses
    // that cluster's file instead of merging an old report.
    let empty = dir.join("empty");
    std::fs::create_dir_all(&empty).unwrap();
    let published = publish(&empty, &sa_kc, "0");
    assert!(
        published.status.success(),
        "{}",
        String::from_utf8_lossy(&published.stderr)
    );
    let north = gather("north");
    assert!(
        std::fs::read_to_string(&north)
            .unwrap()
            .starts_with("no report: the audit wrote none")
    );
    let out = merge(&[&east, &north], &[]);
    assert_eq!(out.status.code(), Some(2));
    assert!(String::from_utf8_lossy(&out.stderr).contains("north.json"));
    std::fs::remove_dir_all(dir).unwrap();
}

/// The `sh` blocks of docs/ci.md's "Fleets" section, line by line in one scratch directory
/// (a line starting with `!` must fail, any other must succeed), with `kubeconfig` as
/// $KUBECONFIG and the built binary and kubectl first on PATH.
fn run_fleet_docs(dir: &Path, kubeconfig: &Path) {
    let text = std::fs::read_to_string(concat!(env!("CARGO_MANIFEST_DIR"), "/docs/ci.md")).unwrap();
    let section = text
        .split_once("\n## Fleets\n")
        .map(|(_, rest)| rest)
        .expect("docs/ci.md has a Fleets section");
    let section = section.split("\n## ").next().unwrap();
    std::fs::create_dir_all(dir).unwrap();
    std::os::unix::fs::symlink(
        concat!(env!("CARGO_MANIFEST_DIR"), "/fixtures"),
        dir.join("fixtures"),
    )
    .unwrap();
    let bin = support::bin_dir();
    let kubectl = kubectl();
    let kubectl_dir = Path::new(&kubectl)
        .parent()
        .filter(|p| !p.as_os_str().is_empty())
        .map(|p| format!("{}:", p.display()))
        .unwrap_or_default();
    let path = format!(
        "{}:{kubectl_dir}{}",
        bin.display(),
        std::env::var("PATH").unwrap_or_default()
    );
    let mut ran = 0;
    let mut in_sh = false;
    for line in section.lines() {
        match line.trim() {
            "```sh" => in_sh = true,
            "```" => in_sh = false,
            l if in_sh && !l.is_empty() => {
                let (must_fail, command) = match l.strip_prefix("! ") {
                    Some(rest) => (true, rest),
                    None => (false, l),
                };
                let out = Command::new("bash")
                    .args(["-o", "pipefail", "-c", command])
                    .current_dir(dir)
                    .env("PATH", &path)
                    .env("KUBECONFIG", kubeconfig)
                    .env("NO_COLOR", "1")
                    .output()
                    .unwrap();
                assert_eq!(
                    !out.status.success(),
                    must_fail,
                    "docs/ci.md: `{l}` exited {:?}\n{}{}",
                    out.status.code(),
                    String::from_utf8_lossy(&out.stdout),
                    String::from_utf8_lossy(&out.stderr)
                );
                ran += 1;
            }
            _ => {}
        }
    }
    assert!(ran >= 8, "docs/ci.md's Fleets section: only {ran} commands");
}

/// Review 29: a fleet report with one cluster's failing result taken out and the overall summary
/// fixed held together, because only the overall counts were compared: each cluster's summary
/// and results are held to account too (verify refuses it; merge refuses it as an input).
#[test]
fn a_fleet_report_holds_each_cluster_to_account() {
    let dir = tempdir("fleet-account");
    let eu = cluster_report(&dir, "eu", "fixtures/compliant");
    let us = cluster_report(&dir, "us", "fixtures/defective");
    let mut fleet = json(&merge(&[&eu, &us], &["-o", "json"]));
    let results = fleet["results"].as_array_mut().unwrap();
    let failing = results
        .iter()
        .position(|x| x["cluster"] == "us" && x["status"] == "fail")
        .unwrap();
    results.remove(failing);
    fleet["summary"]["fail"] = (fleet["summary"]["fail"].as_u64().unwrap() - 1).into();
    let cut = dir.join("fleet-cut.json");
    std::fs::write(&cut, fleet.to_string()).unwrap();
    let out = bin().args(["verify", cut.to_str().unwrap()]).run();
    assert_ne!(out.status.code(), Some(0));
    assert!(
        String::from_utf8_lossy(&out.stdout)
            .contains("cluster us's summary is not what its results count"),
        "{}",
        String::from_utf8_lossy(&out.stdout)
    );
    let ap = cluster_report(&dir, "ap", "fixtures/compliant");
    let out = merge(&[&cut, &ap], &[]);
    assert_eq!(out.status.code(), Some(2));
    std::fs::remove_dir_all(dir).unwrap();
}
