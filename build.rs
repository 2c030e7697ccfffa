//! Embeds every `checks/*.yaml` into the binary, so it works with no files beside it.
use sha2::Digest as _;
use std::fmt::Write as _;

/// The commit `--version` names: `git rev-parse` in a checkout, else `MLSDM_AUDIT_GIT_COMMIT`
/// (a container build without `.git` passes it as a build argument), else "unknown".
fn git_commit() -> String {
    println!("cargo:rerun-if-env-changed=MLSDM_AUDIT_GIT_COMMIT");
    let git = |args: &[&str]| {
        std::process::Command::new("git")
            .args(args)
            .output()
            .ok()
            .filter(|o| o.status.success())
            .and_then(|o| String::from_utf8(o.stdout).ok())
            .map(|s| s.trim().to_string())
            .filter(|s| !s.is_empty())
    };
    if let Some(dir) = git(&["rev-parse", "--absolute-git-dir"]) {
        // A commit or checkout moves HEAD's reflog: rebuild the version string then.
        println!("cargo:rerun-if-changed={dir}/HEAD");
        println!("cargo:rerun-if-changed={dir}/logs/HEAD");
    }
    git(&["rev-parse", "--short=12", "HEAD"])
        .or_else(|| {
            std::env::var("MLSDM_AUDIT_GIT_COMMIT")
                .ok()
                .filter(|s| !s.trim().is_empty())
        })
        .unwrap_or_else(|| "unknown".into())
}

fn main() {
    println!("cargo:rerun-if-changed=checks");
    println!("cargo:rustc-env=MLSDM_AUDIT_GIT_COMMIT={}", git_commit());
    // Read at run time: a build script compiled for another checkout must not embed its checks.
    let manifest_dir = std::env::var("CARGO_MANIFEST_DIR").expect("cargo sets CARGO_MANIFEST_DIR");
    let dir = std::path::Path::new(&manifest_dir).join("checks");
    let mut names: Vec<String> = std::fs::read_dir(&dir)
        .expect("checks/ directory")
        .filter_map(Result::ok)
        .map(|e| e.file_name().to_string_lossy().into_owned())
        .filter(|n| {
            std::path::Path::new(n)
                .extension()
                .is_some_and(|e| e == "yaml")
        })
        .collect();
    names.sort();
    let mut out = String::from("&[\n");
    for n in names {
        // The file's SHA-256, which every report lists per check: hashing the catalog's 164 KB
        // at run time was a seventh of a one-file audit (issue 12, target 4). The binary embeds
        // a copy of the bytes hashed, so that a file saved during the build cannot give it a
        // text and a hash that differ.
        let text = std::fs::read(dir.join(&n)).expect("a check file");
        let path = std::path::Path::new(&std::env::var("OUT_DIR").unwrap()).join(&n);
        std::fs::write(&path, &text).expect("a copy of the check file in OUT_DIR");
        let sha256 =
            sha2::Sha256::digest(&text)
                .iter()
                .fold(String::with_capacity(64), |mut s, b| {
                    let _ = write!(s, "{b:02x}");
                    s
                });
        writeln!(
            out,
            "    BuiltinFile {{ name: {n:?}, text: include_str!({:?}), sha256: {sha256:?} }},",
            path.display().to_string()
        )
        .unwrap();
    }
    out.push(']');
    let dest = std::path::Path::new(&std::env::var("OUT_DIR").unwrap()).join("builtin_checks.rs");
    std::fs::write(dest, out).unwrap();
}
