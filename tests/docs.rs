//! The documentation's commands and check files, run as written: every line of a `sh` block in
//! docs/writing-checks.md and docs/signoff.md (in order, in one scratch directory with the
//! repository's fixtures and examples beside it; a line starting with `!` must fail, any other
//! must succeed), and every check file shown in a `yaml` block, validated.

mod support;

use std::path::{Path, PathBuf};
use std::process::Command;

fn root() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
}

use support::markdown_blocks as blocks;

fn scratch(name: &str) -> PathBuf {
    let dir = std::env::temp_dir().join(format!("mlsdm-audit-docs-{name}-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(&dir).unwrap();
    for linked in ["fixtures", "examples"] {
        std::os::unix::fs::symlink(root().join(linked), dir.join(linked)).unwrap();
    }
    dir
}

fn path_env() -> String {
    format!(
        "{}:{}",
        support::bin_dir().display(),
        std::env::var("PATH").unwrap_or_default()
    )
}

fn run_commands(doc: &str) {
    let text = std::fs::read_to_string(root().join(doc)).unwrap();
    let dir = scratch(Path::new(doc).file_stem().unwrap().to_str().unwrap());
    let mut ran = 0;
    for block in blocks(&text, "sh") {
        for line in block.lines().filter(|l| !l.trim().is_empty()) {
            let (must_fail, command) = match line.strip_prefix("! ") {
                Some(rest) => (true, rest),
                None => (false, line),
            };
            let out = Command::new("bash")
                .args(["-o", "pipefail", "-c", command])
                .current_dir(&dir)
                .env("PATH", path_env())
                .env("NO_COLOR", "1")
                .env_remove("KUBECONFIG")
                .output()
                .unwrap();
            assert_eq!(
                !out.status.success(),
                must_fail,
                "{doc}: `{line}` exited {:?}\n{}{}",
                out.status.code(),
                String::from_utf8_lossy(&out.stdout),
                String::from_utf8_lossy(&out.stderr)
            );
            ran += 1;
        }
    }
    assert!(ran > 3, "{doc}: only {ran} commands");
    std::fs::remove_dir_all(&dir).ok();
}

#[test]
fn writing_checks_commands_run() {
    run_commands("docs/writing-checks.md");
}

#[test]
fn signoff_walkthrough_runs() {
    if Command::new("ssh-keygen").arg("-?").output().is_err() {
        use std::io::Write as _;
        let _ = writeln!(
            std::io::stderr(),
            "skipped: ssh-keygen not found (scripts/test.sh installs openssh-client)"
        );
        return;
    }
    run_commands("docs/signoff.md");
}

#[test]
fn check_files_in_the_docs_are_valid() {
    let text = std::fs::read_to_string(root().join("docs/writing-checks.md")).unwrap();
    let dir = scratch("check-files");
    let checks = dir.join("checks");
    std::fs::create_dir_all(&checks).unwrap();
    let mut n = 0;
    for block in blocks(&text, "yaml") {
        let Some(id) = block.strip_prefix("id: ").and_then(|r| r.lines().next()) else {
            continue;
        };
        std::fs::write(checks.join(format!("{id}.yaml")), &block).unwrap();
        if id == "team-owner-label" {
            // The page shows the example file itself (without its comment header).
            let file =
                std::fs::read_to_string(root().join("examples/team-checks/team-owner-label.yaml"))
                    .unwrap();
            let body =
                file.lines()
                    .filter(|l| !l.starts_with('#'))
                    .fold(String::new(), |mut s, l| {
                        s.push_str(l);
                        s.push('\n');
                        s
                    });
            assert_eq!(block, body);
        }
        n += 1;
    }
    assert_eq!(n, 4);
    let out = support::run(["validate-checks", checks.to_str().unwrap()]);
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    std::fs::remove_dir_all(&dir).ok();
}
