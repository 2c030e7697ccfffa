//! The in-cluster deployment files: they parse, and the audit's own pod passes the container
//! security checks it applies to MLSDM.

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
    let out = Command::new(env!("CARGO_BIN_EXE_mlsdm-audit"))
        .args([
            "check",
            "--manifests",
            file.to_str().unwrap(),
            "--manifests",
            &format!("{root}/deploy/rbac.yaml"),
            "--only",
            only,
            "--format",
            "json",
        ])
        .output()
        .unwrap();
    let report: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    for r in report["results"].as_array().unwrap() {
        assert_eq!(r["status"], "pass", "{}: {}", r["id"], r["message"]);
    }
    assert_eq!(out.status.code(), Some(0));
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
