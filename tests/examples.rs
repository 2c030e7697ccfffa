//! The CI examples run as written: every `run:` of the GitHub Actions workflow, the GitLab job's
//! `script:`, each pre-commit hook's command and `examples/pre-release.sh` are executed here,
//! with the built mlsdm-audit first on PATH, on a compliant tree and on a defective one. Only
//! the steps that install mlsdm-audit (the test has built it) or call a CI service's own
//! actions are not run; for those, the files they upload must exist.

mod support;

use serde_json::Value;
use std::path::{Path, PathBuf};
use std::process::{Command, Output};

fn root() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
}

fn yaml(path: &str) -> Value {
    let text = std::fs::read_to_string(root().join(path)).unwrap();
    serde_saphyr::from_str(&text).unwrap_or_else(|e| panic!("{path}: {e}"))
}

/// PATH with the built mlsdm-audit first, then the kubectl the suite uses.
fn path_env() -> String {
    let mut dirs = vec![support::bin_dir().to_path_buf()];
    if let Ok(k) = std::env::var("MLSDM_AUDIT_KUBECTL")
        && let Some(d) = Path::new(&k).parent()
    {
        dirs.push(d.to_path_buf());
    }
    let mut path = std::env::join_paths(dirs).unwrap();
    path.push(":");
    path.push(std::env::var_os("PATH").unwrap_or_default());
    path.to_string_lossy().into_owned()
}

/// Whether a kustomize renderer (kustomize, or kubectl's) is on that PATH.
fn can_render_kustomize() -> bool {
    ["kustomize", "kubectl"].iter().any(|tool| {
        Command::new("sh")
            .args(["-c", &format!("command -v {tool}")])
            .env("PATH", path_env())
            .output()
            .is_ok_and(|o| o.status.success())
    })
}

/// A scratch directory laid out like a team's repository: `deploy/k8s` a kustomize tree
/// (compliant, or upstream's modular tree with its naming mistakes), `deploy/*.yaml` plain
/// manifests, `checks/` a team's checks with fixtures.
struct Repo(PathBuf);

impl Repo {
    fn new(name: &str, compliant: bool) -> Self {
        let dir =
            std::env::temp_dir().join(format!("mlsdm-audit-example-{name}-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&dir);
        let k8s = dir.join("deploy/k8s");
        std::fs::create_dir_all(&k8s).unwrap();
        let tree = if compliant {
            "fixtures/compliant"
        } else {
            "fixtures/modular-kustomize"
        };
        let mut resources = Vec::new();
        for entry in std::fs::read_dir(root().join(tree)).unwrap() {
            let p = entry.unwrap().path();
            let name = p.file_name().unwrap().to_str().unwrap().to_string();
            std::fs::copy(&p, k8s.join(&name)).unwrap();
            if name != "kustomization.yaml" {
                resources.push(name);
            }
        }
        if compliant {
            resources.sort();
            std::fs::write(
                k8s.join("kustomization.yaml"),
                format!(
                    "apiVersion: kustomize.config.k8s.io/v1beta1\nkind: Kustomization\nresources:\n{}",
                    resources.iter().fold(String::new(), |mut s, r| {
                        s.push_str("  - ");
                        s.push_str(r);
                        s.push('\n');
                        s
                    })
                ),
            )
            .unwrap();
        }
        copy_dir(&root().join("examples/team-checks"), &dir.join("checks"));
        Self(dir)
    }

    fn run(&self, shell: &[&str], script: &str, env: &[(&str, &str)]) -> Output {
        Command::new("bash")
            .args(shell)
            .arg(script)
            .current_dir(&self.0)
            .env("PATH", path_env())
            .env("NO_COLOR", "1")
            .env_remove("KUBECONFIG")
            .envs(env.iter().copied())
            .output()
            .unwrap()
    }

    fn file(&self, name: &str) -> PathBuf {
        self.0.join(name)
    }
}

impl Drop for Repo {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.0);
    }
}

fn copy_dir(from: &Path, to: &Path) {
    std::fs::create_dir_all(to).unwrap();
    for entry in std::fs::read_dir(from).unwrap() {
        let p = entry.unwrap().path();
        let target = to.join(p.file_name().unwrap());
        if p.is_dir() {
            copy_dir(&p, &target);
        } else {
            std::fs::copy(&p, &target).unwrap();
        }
    }
}

/// Says a test is skipped, straight to stderr past the harness' capture so it is seen.
fn skip(why: &str) {
    use std::io::Write as _;
    let _ = writeln!(std::io::stderr(), "{why}");
}

fn transcript(out: &Output) -> String {
    format!(
        "exit {:?}\n--- stdout\n{}\n--- stderr\n{}",
        out.status.code(),
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    )
}

/// The exit code `check` gives on the tree: what the examples' gates must pass on.
fn audit_exit(repo: &Repo) -> Option<i32> {
    repo.run(
        &["-c"],
        "mlsdm-audit check --kustomize deploy/k8s --fail-on high -o json",
        &[],
    )
    .status
    .code()
}

#[test]
fn github_actions_workflow_runs_as_written() {
    if !can_render_kustomize() {
        skip("skipped: neither kustomize nor kubectl on PATH (scripts/test.sh provides kubectl)");
        return;
    }
    let workflow = yaml("examples/github-actions.yml");
    let steps = workflow["jobs"]["audit"]["steps"].as_array().unwrap();
    for compliant in [true, false] {
        let repo = Repo::new("github", compliant);
        let want = audit_exit(&repo);
        assert_eq!(want, Some(i32::from(!compliant)), "compliant: {compliant}");
        let mut ran = 0;
        for step in steps {
            let Some(script) = step["run"].as_str() else {
                continue;
            };
            if step["name"] == "Install mlsdm-audit" {
                continue;
            }
            // GitHub's own `bash` shell for `run:`.
            let out = repo.run(
                &["--noprofile", "--norc", "-eo", "pipefail", "-c"],
                script,
                &[("GITHUB_STEP_SUMMARY", "summary.md")],
            );
            assert_eq!(out.status.code(), want, "{}", transcript(&out));
            ran += 1;
        }
        assert_eq!(ran, 1);
        // What the actions upload exists, failing run included (they run `if: always()`).
        for step in steps.iter().filter(|s| s["uses"].is_string()) {
            for key in ["sarif_file", "report_paths", "path"] {
                if let Some(file) = step["with"][key].as_str() {
                    assert!(repo.file(file).is_file(), "{file} for {}", step["uses"]);
                }
            }
        }
        let sarif: Value =
            serde_json::from_slice(&std::fs::read(repo.file("mlsdm-audit.sarif")).unwrap())
                .unwrap();
        assert_eq!(sarif["version"], "2.1.0");
        let results = sarif["runs"][0]["results"].as_array().unwrap();
        assert_eq!(results.is_empty(), compliant, "{results:?}");
        assert!(
            std::fs::read_to_string(repo.file("summary.md"))
                .unwrap()
                .contains("MLSDM Production Deployment Checklist")
        );
    }
}

#[test]
fn gitlab_job_runs_as_written() {
    if !can_render_kustomize() {
        skip("skipped: neither kustomize nor kubectl on PATH (scripts/test.sh provides kubectl)");
        return;
    }
    let ci = yaml("examples/gitlab-ci.yml");
    let job = &ci["mlsdm-audit"];
    let script: Vec<&str> = job["script"]
        .as_array()
        .unwrap()
        .iter()
        .map(|l| l.as_str().unwrap())
        .collect();
    for compliant in [true, false] {
        let repo = Repo::new("gitlab", compliant);
        let want = audit_exit(&repo);
        // The runner's shell: one session, stopping at the first failing line.
        let out = repo.run(&["-e", "-c"], &script.join("\n"), &[]);
        assert_eq!(out.status.code(), want, "{}", transcript(&out));
        let reports = &job["artifacts"]["reports"];
        let quality: Vec<Value> = serde_json::from_slice(
            &std::fs::read(repo.file(reports["codequality"].as_str().unwrap())).unwrap(),
        )
        .unwrap();
        assert_eq!(quality.is_empty(), compliant);
        assert!(repo.file(reports["junit"].as_str().unwrap()).is_file());
    }
}

#[test]
fn pre_commit_hooks_run_as_written() {
    let hooks = yaml(".pre-commit-hooks.yaml");
    let hooks = hooks.as_array().unwrap();
    assert_eq!(hooks.len(), 2);
    let repo = Repo::new("pre-commit", true);
    // The plain-manifest layout the first hook's default args name.
    for entry in std::fs::read_dir(root().join("fixtures/compliant")).unwrap() {
        let p = entry.unwrap().path();
        std::fs::copy(&p, repo.file("deploy").join(p.file_name().unwrap())).unwrap();
    }
    std::fs::remove_dir_all(repo.file("deploy/k8s")).unwrap();
    for hook in hooks {
        assert_eq!(hook["pass_filenames"], false, "{hook}");
        let args: Vec<&str> = hook["args"]
            .as_array()
            .unwrap()
            .iter()
            .map(|a| a.as_str().unwrap())
            .collect();
        let command = format!("{} {}", hook["entry"].as_str().unwrap(), args.join(" "));
        let out = repo.run(&["-c"], &command, &[]);
        assert_eq!(
            out.status.code(),
            Some(0),
            "{command}: {}",
            transcript(&out)
        );
    }
}

/// Against the suite's real kube-apiserver and real Prometheus (scripts/test.sh starts them).
#[test]
fn pre_release_script_runs_against_a_real_cluster() {
    let (Ok(kube), Ok(prometheus)) = (
        std::env::var("KUBE_TEST_REAL_DIR"),
        std::env::var("MLSDM_AUDIT_TEST_PROMETHEUS_HEALTHY"),
    ) else {
        skip("skipped: needs the real kube-apiserver and Prometheus that scripts/test.sh starts");
        return;
    };
    let repo = Repo::new("pre-release", true);
    let kubeconfig = format!("{kube}/kubeconfig-admin");
    let env = [
        ("KUBECONFIG", kubeconfig.as_str()),
        ("NAMESPACE", "mlsdm-production"),
        ("DEPLOYMENT", "mlsdm-api"),
        ("PROMETHEUS_URL", prometheus.as_str()),
        ("ROLLOUT_TIMEOUT", "60s"),
    ];
    let script = root().join("examples/pre-release.sh");
    let out = repo.run(&[], script.to_str().unwrap(), &env);
    // The gate is the audit's own verdict on the same release.
    let direct = repo.run(
        &["-c"],
        &format!(
            "mlsdm-audit check -n mlsdm-production --prometheus {prometheus} --fail-on high -o json >/dev/null"
        ),
        &env,
    );
    assert_eq!(
        out.status.code(),
        direct.status.code(),
        "{}",
        transcript(&out)
    );
    assert!(
        matches!(out.status.code(), Some(0 | 1 | 3)),
        "{}",
        transcript(&out)
    );
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(
        stdout.contains("successfully rolled out"),
        "{}",
        transcript(&out)
    );
    assert!(stdout.contains("mlsdm-audit signoff"), "{stdout}");
    let report: Value =
        serde_json::from_slice(&std::fs::read(repo.file("release-report.json")).unwrap()).unwrap();
    assert_eq!(report["target"]["mode"], "cluster", "{}", report["target"]);
    assert!(repo.file("release-checklist.md").is_file());
}
