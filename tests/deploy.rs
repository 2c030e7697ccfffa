//! The in-cluster deployment files: they parse, and the audit's own pod passes the container
//! security checks it applies to MLSDM.

mod support;

use std::process::Command;

#[test]
fn the_cronjob_passes_the_tools_own_container_checks() {
    let root = env!("CARGO_MANIFEST_DIR");
    let text = std::fs::read_to_string(format!("{root}/deploy/cronjob.yaml")).unwrap();
    let cronjob: serde_json::Value = serde_saphyr::from_str(&text).unwrap();
    // The same pod template, as a Deployment, so the workload checks apply to it.
    let template = cronjob["spec"]["jobTemplate"]["spec"]["template"].clone();
    let wrapped = serde_json::json!({
        "apiVersion": "apps/v1", "kind": "Deployment",
        "metadata": {"name": "mlsdm-audit", "namespace": "mlsdm-audit"},
        "spec": {"replicas": 1, "selector": {"matchLabels": template["metadata"]["labels"]}, "template": template},
    });
    let dir = std::env::temp_dir().join(format!("mlsdm-audit-deploy-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let file = dir.join("wrapped.json");
    std::fs::write(&file, wrapped.to_string()).unwrap();
    let only = "security-run-as-non-root,security-read-only-root-fs,security-context-hardened,security-capabilities-drop-all,image-pinned";
    let out = support::run([
        "check",
        "--manifests",
        file.to_str().unwrap(),
        "--manifests",
        &format!("{root}/deploy/rbac.yaml"),
        "--only",
        only,
        // The audit's own pod is not an MLSDM workload (its image is mlsdm-audit, not MLSDM's).
        "--allow-empty",
        "--format",
        "json",
    ]);
    let report: serde_json::Value = serde_json::from_slice(&out.stdout)
        .unwrap_or_else(|e| panic!("{e}: {}", String::from_utf8_lossy(&out.stderr)));
    for r in report["results"].as_array().unwrap() {
        // Every audited workload's main container is held to MLSDM's UID 1000 (its image's
        // files belong to it). The audit's image runs as 65532 (Dockerfile): that clause, and
        // only that one, does not apply to it; running as root still fails.
        if r["id"] == "security-run-as-non-root" && r["status"] == "fail" {
            assert_eq!(
                r["message"], "container mlsdm-audit runs as UID 65532, not 1000",
                "{r}"
            );
            continue;
        }
        assert_eq!(r["status"], "pass", "{}: {}", r["id"], r["message"]);
    }
    assert!(
        report["results"]
            .as_array()
            .unwrap()
            .iter()
            .any(|r| r["id"] == "security-run-as-non-root"),
        "the check ran"
    );
    std::fs::remove_dir_all(dir).unwrap();
}

#[test]
fn rbac_grants_only_reads() {
    let text =
        std::fs::read_to_string(concat!(env!("CARGO_MANIFEST_DIR"), "/deploy/rbac.yaml")).unwrap();
    let docs: Vec<serde_json::Value> = serde_saphyr::from_multiple(&text).unwrap();
    let role = docs.iter().find(|d| d["kind"] == "ClusterRole").unwrap();
    for rule in role["rules"].as_array().unwrap() {
        for verb in rule["verbs"].as_array().unwrap() {
            assert!(
                ["get", "list", "watch"].contains(&verb.as_str().unwrap()),
                "{rule}"
            );
        }
        if rule["resources"]
            .as_array()
            .is_some_and(|r| r.iter().any(|x| x.as_str().unwrap().ends_with("/proxy")))
        {
            assert_eq!(
                rule["verbs"],
                serde_json::json!(["get"]),
                "the proxy is GET only"
            );
        }
    }
}

fn bin(args: &[&str]) -> std::process::Output {
    support::run(args)
}

fn have(tool: &str) -> bool {
    Command::new(tool)
        .arg("--version")
        .output()
        .is_ok_and(|o| o.status.success())
}

fn skip(why: &str) {
    // Straight to stderr, past the test harness' capture, so the skip is seen.
    let _ = std::io::Write::write_all(
        &mut std::io::stderr(),
        format!("skipped: {why}\n").as_bytes(),
    );
}

/// Issue 13: `completions bash|zsh|fish` print scripts their shells parse.
#[test]
fn completion_scripts_parse() {
    for shell in ["bash", "zsh", "fish"] {
        let out = bin(&["completions", shell]);
        assert_eq!(out.status.code(), Some(0), "{shell}");
        let script = String::from_utf8(out.stdout).unwrap();
        assert!(
            script.contains("mlsdm-audit") && script.contains("fail-on"),
            "{shell}"
        );
        if !have(shell) {
            skip(&format!("no {shell} to parse its completion script"));
            continue;
        }
        let dir = std::env::temp_dir().join(format!("mlsdm-audit-compl-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let file = dir.join(format!("completion.{shell}"));
        std::fs::write(&file, &script).unwrap();
        // `-n`: read and parse, run nothing.
        let parsed = Command::new(shell).arg("-n").arg(&file).output().unwrap();
        assert!(
            parsed.status.success(),
            "{shell} -n: {}",
            String::from_utf8_lossy(&parsed.stderr)
        );
        std::fs::remove_dir_all(&dir).unwrap();
    }
    assert_eq!(bin(&["completions", "tcsh"]).status.code(), Some(2));
}

/// Issue 13: `man` prints a page that man renders, with a NAME section and the subcommands.
#[test]
fn man_page_renders() {
    let out = bin(&["man"]);
    assert_eq!(out.status.code(), Some(0));
    let roff = String::from_utf8(out.stdout).unwrap();
    assert!(roff.contains(".SH NAME"), "{roff}");
    if !have("man") {
        skip("no man to render the page");
        return;
    }
    let dir = std::env::temp_dir().join(format!("mlsdm-audit-man-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let file = dir.join("mlsdm-audit.1");
    std::fs::write(&file, &roff).unwrap();
    let shown = Command::new("man")
        .arg("-l")
        .arg(&file)
        .env("MANPAGER", "cat")
        .env("MANWIDTH", "100")
        .env("MAN_KEEP_FORMATTING", "")
        .output()
        .unwrap();
    let text = String::from_utf8_lossy(&shown.stdout);
    assert!(
        shown.status.success(),
        "{}",
        String::from_utf8_lossy(&shown.stderr)
    );
    assert!(text.lines().any(|l| l.trim() == "NAME"), "{text}");
    // man justifies lines: compare with runs of spaces collapsed.
    let flat = text.split_whitespace().collect::<Vec<_>>().join(" ");
    assert!(
        flat.contains("mlsdm-audit - Deployment-readiness auditor for MLSDM on Kubernetes"),
        "{text}"
    );
    assert!(text.contains("completions"), "{text}");
    std::fs::remove_dir_all(&dir).unwrap();
}

/// Issue 13: `--version` names the commit the binary was built from (or "unknown" without git).
#[test]
fn version_names_the_commit() {
    let out = bin(&["--version"]);
    let text = String::from_utf8(out.stdout).unwrap();
    let prefix = format!("mlsdm-audit {} (commit ", env!("CARGO_PKG_VERSION"));
    let commit = text
        .trim_end()
        .strip_prefix(&prefix)
        .and_then(|r| r.strip_suffix(')'))
        .unwrap_or_else(|| panic!("{text}"));
    let head = Command::new("git")
        .args(["rev-parse", "--short=12", "HEAD"])
        .current_dir(env!("CARGO_MANIFEST_DIR"))
        .output()
        .ok()
        .filter(|o| o.status.success())
        .map(|o| String::from_utf8_lossy(&o.stdout).trim().to_string());
    match head {
        Some(head) => assert_eq!(commit, head),
        None => assert!(
            commit == "unknown" || commit.chars().all(|c| c.is_ascii_hexdigit()),
            "{commit}"
        ),
    }
}

/// Issue 13: the CronJob runs the image the Dockerfile documents building, at the crate's
/// version, as the image's non-root user, on a read-only root file system.
#[test]
fn cronjob_runs_the_image_the_dockerfile_builds() {
    let root = env!("CARGO_MANIFEST_DIR");
    let dockerfile = std::fs::read_to_string(format!("{root}/Dockerfile")).unwrap();
    let documented: Vec<&str> = dockerfile
        .lines()
        .filter_map(|l| {
            l.trim_start_matches('#')
                .trim()
                .strip_prefix("docker build -t ")
        })
        .filter_map(|rest| rest.split_whitespace().next())
        .collect();
    assert_eq!(
        documented.len(),
        1,
        "one documented build command: {documented:?}"
    );
    let image = documented[0];
    assert_eq!(
        image.rsplit_once(':').map(|(_, tag)| tag),
        Some(env!("CARGO_PKG_VERSION")),
        "the documented tag is the crate's version"
    );
    let stages: Vec<&str> = dockerfile
        .lines()
        .filter(|l| l.starts_with("FROM "))
        .collect();
    assert!(stages.len() >= 2, "multi-stage: {stages:?}");
    assert_eq!(
        *stages.last().unwrap(),
        "FROM scratch",
        "no shell in the final image"
    );
    let last_stage = dockerfile.rsplit("\nFROM ").next().unwrap();
    assert!(last_stage.contains("\nUSER 65532:65532\n"), "{last_stage}");

    let text = std::fs::read_to_string(format!("{root}/deploy/cronjob.yaml")).unwrap();
    let cronjob: serde_json::Value = serde_saphyr::from_str(&text).unwrap();
    let pod = &cronjob["spec"]["jobTemplate"]["spec"]["template"]["spec"];
    let container = &pod["containers"][0];
    assert_eq!(container["image"], image);
    assert_eq!(pod["securityContext"]["runAsUser"], 65532);
    assert_eq!(pod["securityContext"]["runAsGroup"], 65532);
    assert_eq!(container["securityContext"]["readOnlyRootFilesystem"], true);

    let readme = std::fs::read_to_string(format!("{root}/README.md")).unwrap();
    assert!(
        readme.contains(&format!("docker build -t {image}")),
        "the README documents the build"
    );
}

/// The in-cluster fleet flow: the CronJob variant that publishes its report to a ConfigMap runs
/// the same audit container as deploy/cronjob.yaml, plus `publish`, and the extra RBAC is one
/// `update` on that one ConfigMap, by name, in the job's namespace.
#[test]
fn the_report_configmap_flow_adds_one_named_update_and_nothing_else() {
    let root = env!("CARGO_MANIFEST_DIR");
    let read = |f: &str| std::fs::read_to_string(format!("{root}/deploy/{f}")).unwrap();
    let plain: serde_json::Value = serde_saphyr::from_str(&read("cronjob.yaml")).unwrap();
    let fleet: serde_json::Value =
        serde_saphyr::from_str(&read("cronjob-report-configmap.yaml")).unwrap();
    let pod = |c: &serde_json::Value| c["spec"]["jobTemplate"]["spec"]["template"]["spec"].clone();
    let (plain_pod, pod) = (pod(&plain), pod(&fleet));
    let audit = &pod["containers"][0];
    let publish = &pod["containers"][1];
    assert_eq!(pod["containers"].as_array().unwrap().len(), 2);
    assert_eq!(audit["image"], plain_pod["containers"][0]["image"]);
    assert_eq!(
        audit["securityContext"],
        plain_pod["containers"][0]["securityContext"]
    );
    assert_eq!(pod["serviceAccountName"], plain_pod["serviceAccountName"]);
    // The audit writes JSON to the shared volume that `publish` reads.
    let args: Vec<&str> = audit["args"]
        .as_array()
        .unwrap()
        .iter()
        .map(|a| a.as_str().unwrap())
        .collect();
    let flag = |name: &str| args.iter().position(|a| *a == name).map(|i| args[i + 1]);
    assert_eq!(flag("-o"), Some("json"));
    assert_eq!(flag("--output-file"), Some("/report/report.json"));
    for c in [audit, publish] {
        assert_eq!(c["volumeMounts"][0]["mountPath"], "/report", "{c}");
        assert_eq!(c["securityContext"]["readOnlyRootFilesystem"], true, "{c}");
        assert_eq!(c["securityContext"]["runAsNonRoot"], true, "{c}");
    }
    let script = publish["command"][2].as_str().unwrap();
    assert!(script.contains("kubectl create configmap mlsdm-audit-report --namespace mlsdm-audit"));
    assert!(script.contains("kubectl replace -f -"));

    let docs: Vec<serde_json::Value> =
        serde_saphyr::from_multiple(&read("report-configmap-rbac.yaml")).unwrap();
    let kinds: Vec<&str> = docs.iter().map(|d| d["kind"].as_str().unwrap()).collect();
    assert_eq!(kinds, ["ConfigMap", "Role", "RoleBinding"]);
    let cm = &docs[0];
    assert_eq!(cm["metadata"]["name"], "mlsdm-audit-report");
    assert_eq!(cm["metadata"]["namespace"], fleet["metadata"]["namespace"]);
    let role = &docs[1];
    assert_eq!(role["metadata"]["namespace"], "mlsdm-audit");
    assert_eq!(
        role["rules"],
        serde_json::json!([{"apiGroups": [""], "resources": ["configmaps"], "resourceNames": ["mlsdm-audit-report"], "verbs": ["update"]}])
    );
    let binding = &docs[2];
    assert_eq!(binding["roleRef"]["kind"], "Role");
    assert_eq!(binding["roleRef"]["name"], role["metadata"]["name"]);
    assert_eq!(
        binding["subjects"],
        serde_json::json!([{"kind": "ServiceAccount", "name": pod["serviceAccountName"], "namespace": "mlsdm-audit"}])
    );
}
