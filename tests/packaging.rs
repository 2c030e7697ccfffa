//! The krew plugin manifest (packaging/krew/mlsdm-audit.yaml) and the archive packaging/krew.sh
//! builds for it.

use serde_json::Value;
use std::path::PathBuf;
use std::process::Command;

fn root() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
}

fn manifest() -> Value {
    let text = std::fs::read_to_string(root().join("packaging/krew/mlsdm-audit.yaml")).unwrap();
    serde_saphyr::from_str(&text).unwrap()
}

/// krew's required fields, as its validation (pkg/index/validation) checks them: kind and
/// apiVersion, a name equal to the file's, a semantic version with a leading v, a short
/// description, and platforms each with a selector, uri, sha256 and bin.
#[test]
fn the_krew_manifest_has_krews_required_fields_and_cargos_version() {
    let m = manifest();
    assert_eq!(
        m["apiVersion"],
        "krew.googlecontainertools.github.com/v1alpha2"
    );
    assert_eq!(m["kind"], "Plugin");
    assert_eq!(m["metadata"]["name"], "mlsdm-audit", "named as its file");
    let spec = &m["spec"];
    assert_eq!(
        spec["version"],
        format!("v{}", env!("CARGO_PKG_VERSION")),
        "spec.version is Cargo.toml's version"
    );
    let short = spec["shortDescription"].as_str().unwrap();
    assert!(!short.is_empty() && short.len() <= 64, "{short}");
    assert!(spec["homepage"].as_str().unwrap().starts_with("https://"));
    let platforms = spec["platforms"].as_array().unwrap();
    assert!(!platforms.is_empty());
    // The name kubectl runs the plugin by, as packaging/ (the .deb) installs it.
    let plugin_name = "kubectl-mlsdm_audit";
    assert!(root().join("packaging").join(plugin_name).is_file());
    for p in platforms {
        let labels = p["selector"]["matchLabels"].as_object().unwrap();
        assert!(
            labels.contains_key("os") && labels.contains_key("arch"),
            "{p}"
        );
        let uri = p["uri"].as_str().unwrap();
        assert!(uri.starts_with("https://"), "{uri}");
        assert!(
            uri.contains(&format!("v{}", env!("CARGO_PKG_VERSION"))),
            "the archive of this version: {uri}"
        );
        let sha = p["sha256"].as_str().unwrap();
        assert!(
            sha.len() == 64 && sha.chars().all(|c| c.is_ascii_hexdigit()),
            "{sha}"
        );
        assert_eq!(p["bin"], plugin_name);
        // The bin is what `files` installs, from what the archive holds.
        let files = p["files"].as_array().unwrap();
        assert!(
            files
                .iter()
                .any(|f| f["from"] == "mlsdm-audit" && f["to"] == plugin_name),
            "{files:?}"
        );
    }
}

/// packaging/krew.sh packs what the manifest's `files` name, and fills in the archive's sha256.
#[test]
fn krew_sh_builds_the_archive_the_manifest_describes() {
    let out_dir = std::env::temp_dir().join(format!("mlsdm-audit-krew-{}", std::process::id()));
    let out = Command::new("bash")
        .arg(root().join("packaging/krew.sh"))
        .arg(env!("CARGO_BIN_EXE_mlsdm-audit"))
        .arg(&out_dir)
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let printed = String::from_utf8(out.stdout).unwrap();
    let mut lines = printed.lines();
    let archive = PathBuf::from(lines.next().unwrap());
    let filled = PathBuf::from(lines.next().unwrap());
    let m: Value = serde_saphyr::from_str(&std::fs::read_to_string(&filled).unwrap()).unwrap();
    let p = &m["spec"]["platforms"][0];
    assert!(
        p["uri"]
            .as_str()
            .unwrap()
            .ends_with(archive.file_name().unwrap().to_str().unwrap()),
        "{}",
        p["uri"]
    );
    let sum = Command::new("sha256sum").arg(&archive).output().unwrap();
    let sum = String::from_utf8(sum.stdout).unwrap();
    assert_eq!(p["sha256"], sum.split_whitespace().next().unwrap());
    let listed = Command::new("tar")
        .arg("tzf")
        .arg(&archive)
        .output()
        .unwrap();
    let listed = String::from_utf8(listed.stdout).unwrap();
    for f in p["files"].as_array().unwrap() {
        assert!(
            listed.lines().any(|l| l == f["from"].as_str().unwrap()),
            "{f} in {listed}"
        );
    }
    // Everything else in the filled manifest is the repository's.
    let mut expected = manifest();
    expected["spec"]["platforms"][0]["sha256"] = p["sha256"].clone();
    assert_eq!(m, expected);
    std::fs::remove_dir_all(&out_dir).unwrap();
}
