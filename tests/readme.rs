//! The README, run as a new user would run it (issue 13: every command in the docs is run by a
//! test).
//!
//! - The tour (`console` block): each `$ command` is run in a copy of the repository's layout and
//!   its standard output must be exactly the lines the README shows under it.
//! - Every command line of every `sh` block is in [`STEPS`]: run here (with the README's
//!   placeholders replaced by what this suite has: the fixtures for `k8s/`, the real
//!   kube-apiserver, Prometheus and the MLSDM stand-in that scripts/test.sh starts for the cluster,
//!   `http://prometheus:9090` and `https://mlsdm.example.com`), or named with the test or script
//!   that runs it. A README command that is in neither fails the test, so a new one cannot be
//!   left untried.

mod support;

use std::path::{Path, PathBuf};
use std::process::{Command, Output};

fn root() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
}

fn readme() -> String {
    std::fs::read_to_string(root().join("README.md")).unwrap()
}

use support::markdown_blocks as blocks;

/// The command lines of the README's `sh` blocks: continuation lines joined, the trailing
/// `# comment` and surrounding spaces removed.
fn readme_commands() -> Vec<String> {
    let mut out = Vec::new();
    for block in blocks(&readme(), "sh") {
        let mut pending = String::new();
        for line in block.lines() {
            let line = line.trim();
            if let Some(head) = line.strip_suffix('\\') {
                pending.push_str(head.trim());
                pending.push(' ');
                continue;
            }
            pending.push_str(line);
            let command = match pending.find("  #") {
                Some(at) => &pending[..at],
                None => &pending,
            }
            .trim()
            .to_string();
            if !command.is_empty() {
                out.push(command);
            }
            pending.clear();
        }
    }
    out
}

/// What the test does with one step.
enum Step {
    /// A README command: the command run in its place (the README's placeholders replaced) and
    /// the exit codes that mean it worked as the README says.
    Run {
        readme: &'static str,
        run: &'static str,
        codes: &'static [i32],
        live: bool,
    },
    /// Not a README line: what a user has beside the README's commands (keys, saved reports, an
    /// attestations file).
    Setup { run: &'static str, live: bool },
    /// A README command this test does not run, and what runs it instead.
    Elsewhere {
        readme: &'static str,
        by: &'static str,
    },
}

use Step::*;

/// What a live audit of the suite's cluster may exit with: its API server runs no pods (there is
/// no kubelet), so the service and metrics probes through it are `error` (exit 3) unless the
/// release passes without them; the command is also checked to have printed its summary or
/// written its report, so an audit that could not start (exit 2) never counts.
const LIVE: &[i32] = &[0, 1, 3];

/// Every command of the README, in order. `$KUBECONFIG` holds contexts prod-eu, prod-us and
/// staging (the real kube-apiserver, with the auditor's token); `$PROMETHEUS`, `$MLSDM_URL` and
/// `$MLSDM_KEY` are the suite's Prometheus and MLSDM stand-in.
const STEPS: &[Step] = &[
    Run {
        readme: "cargo run -q -- check --manifests fixtures/compliant",
        run: "mlsdm-audit check --manifests fixtures/compliant",
        codes: &[0],
        live: false,
    },
    Elsewhere {
        readme: "bash scripts/test.sh",
        by: ".ci/run, which runs the whole suite with it",
    },
    Elsewhere {
        readme: "cargo install --locked --path .",
        by: "scripts/install-test.sh (CI)",
    },
    Run {
        readme: "mlsdm-audit --version",
        run: "mlsdm-audit --version | grep '^mlsdm-audit [0-9.]* (commit '",
        codes: &[0],
        live: false,
    },
    Run {
        readme: "source <(mlsdm-audit completions bash)",
        run: "source <(mlsdm-audit completions bash) && complete -p mlsdm-audit",
        codes: &[0],
        live: false,
    },
    Run {
        readme: "mlsdm-audit man > mlsdm-audit.1 && man ./mlsdm-audit.1",
        // `man` pages through a terminal; the page itself is what matters.
        run: "mlsdm-audit man > mlsdm-audit.1 && grep -q '^.SH NAME' mlsdm-audit.1",
        codes: &[0],
        live: false,
    },
    Elsewhere {
        readme: "bash scripts/deb.sh",
        by: "scripts/install-test.sh (CI), which installs the package with dpkg -i",
    },
    Elsewhere {
        readme: "sudo dpkg -i target/deb/mlsdm-audit_*.deb",
        by: "scripts/install-test.sh (CI)",
    },
    Run {
        readme: "kubectl mlsdm-audit --version",
        // kubectl finds the plugin on PATH by its name, as after `dpkg -i` (the test links it).
        run: "kubectl mlsdm-audit --version | grep '^mlsdm-audit '",
        codes: &[0],
        live: true,
    },
    Elsewhere {
        readme: "docker build -t ghcr.io/neuron7x/mlsdm-audit:0.1.0 --build-arg GIT_COMMIT=$(git rev-parse --short=12 HEAD) .",
        by: "scripts/image.sh, run by scripts/install-test.sh (CI): buildah builds the same Dockerfile (no Docker engine runs in CI)",
    },
    Run {
        readme: "mlsdm-audit check --manifests k8s/",
        run: "mlsdm-audit check --manifests fixtures/compliant/",
        codes: &[0],
        live: false,
    },
    Run {
        readme: "mlsdm-audit check --kustomize deploy/k8s",
        // The fixture mirrors upstream's modular deploy/k8s set, whose renamed objects miss
        // some selectors: a verdict (0 or 1), not an error.
        run: "mlsdm-audit check --kustomize fixtures/modular-kustomize > out.txt; code=$?; grep -q ' pass, ' out.txt && [ $code -le 1 ]",
        codes: &[0],
        live: true,
    },
    Elsewhere {
        readme: "mlsdm-audit check --helm-chart chart/ --helm-values prod.yaml",
        by: "tests/cli.rs (helm is not in Debian's packages, so CI has no helm: the test checks the message that says so and how to pass rendered output instead)",
    },
    Run {
        readme: "helm template ... | mlsdm-audit check --manifests -",
        run: "kubectl kustomize fixtures/modular-kustomize | mlsdm-audit check --manifests - > out.txt; code=$?; grep -q ' pass, ' out.txt && [ $code -le 1 ]",
        codes: &[0],
        live: true,
    },
    Run {
        readme: "mlsdm-audit check -n mlsdm-production",
        run: "mlsdm-audit check -n mlsdm-production > out.txt; code=$?; grep -q ' pass, ' out.txt && exit $code",
        codes: LIVE,
        live: true,
    },
    Run {
        readme: "mlsdm-audit check -A -l app=mlsdm-api --expect-version 1.2.0",
        run: "mlsdm-audit check -A -l app=mlsdm-api --expect-version 1.2.0 > out.txt; code=$?; grep -q ' pass, ' out.txt && exit $code",
        codes: LIVE,
        live: true,
    },
    Run {
        readme: "mlsdm-audit check --endpoint https://mlsdm.example.com --api-key-env MLSDM_KEY --active --prometheus http://prometheus:9090 --no-cluster",
        run: "mlsdm-audit check --endpoint \"$MLSDM_URL\" --api-key-env MLSDM_KEY --active --prometheus \"$PROMETHEUS\" --no-cluster",
        codes: &[0, 1],
        live: true,
    },
    Run {
        readme: "mlsdm-audit check -f k8s/ -o json --output-file report.json --fail-on medium",
        run: "mlsdm-audit check -f fixtures/compliant/ -o json --output-file report.json --fail-on medium && jq -e '.summary.fail == 0' report.json",
        codes: &[0],
        live: false,
    },
    Run {
        readme: "mlsdm-audit list-checks [--format table|json|markdown]",
        run: "mlsdm-audit list-checks >/dev/null && mlsdm-audit list-checks --format table >/dev/null && mlsdm-audit list-checks --format json | jq -e 'length > 90' && mlsdm-audit list-checks --format markdown >/dev/null",
        codes: &[0],
        live: false,
    },
    Run {
        readme: "mlsdm-audit explain pdb-min-available",
        run: "mlsdm-audit explain pdb-min-available",
        codes: &[0],
        live: false,
    },
    Run {
        readme: "mlsdm-audit validate-checks my-checks/",
        run: "mlsdm-audit validate-checks examples/team-checks/",
        codes: &[0],
        live: false,
    },
    Run {
        readme: "mlsdm-audit test-checks my-checks/",
        run: "mlsdm-audit test-checks examples/team-checks/",
        codes: &[0],
        live: false,
    },
    Run {
        readme: "mlsdm-audit schema > check.schema.json",
        run: "mlsdm-audit schema > check.schema.json && jq -e '.properties.id' check.schema.json",
        codes: &[0],
        live: false,
    },
    Run {
        readme: "mlsdm-audit schema report",
        run: "mlsdm-audit schema report | jq -e '.properties.results'",
        codes: &[0],
        live: false,
    },
    Run {
        readme: "mlsdm-audit watch -n mlsdm-production --prometheus http://prometheus:9090 --until 1h --checkpoints 15m,1h --output-dir watch-reports",
        // An hour shortened to seconds, with the criteria's windows shortened to fit (`--window`)
        // and the rollout said to be now (the suite's Deployment was created minutes ago);
        // it ends with a verdict: 0 every checkpoint passed, 4 a rollback criterion held, 3 a
        // criterion stayed undecided (this cluster runs no pods to feed its Prometheus).
        run: "mlsdm-audit watch -n mlsdm-production --prometheus \"$PROMETHEUS\" --since \"$(date -u +%Y-%m-%dT%H:%M:%SZ)\" --interval 1s --window 2s --until 6s --checkpoints 3s,6s --output-dir watch-reports > out.txt 2>&1; code=$?; cat out.txt; grep -q '\"event\":\"checkpoint\"' out.txt && exit $code",
        codes: &[0, 3, 4],
        live: true,
    },
    Run {
        readme: "mlsdm-audit check --context prod-eu,prod-us,staging",
        run: "mlsdm-audit check --context prod-eu,prod-us,staging > out.txt; code=$?; grep -q ' pass, ' out.txt && exit $code",
        codes: LIVE,
        live: true,
    },
    Run {
        readme: "mlsdm-audit check --all-contexts -o html --output-file fleet.html",
        run: "mlsdm-audit check --all-contexts -o html --output-file fleet.html; code=$?; grep -q prod-us fleet.html && exit $code",
        codes: LIVE,
        live: true,
    },
    Setup {
        run: "mlsdm-audit check --context prod-eu -o json --output-file prod-eu.json || [ $? != 2 ]",
        live: true,
    },
    Setup {
        run: "mlsdm-audit check --context prod-us -o json --output-file prod-us.json || [ $? != 2 ]",
        live: true,
    },
    Run {
        readme: "mlsdm-audit report --merge prod-eu.json prod-us.json -o markdown --output-file fleet.md",
        run: "mlsdm-audit report --merge prod-eu.json prod-us.json -o markdown --output-file fleet.md; code=$?; grep -q prod-us fleet.md && exit $code",
        codes: LIVE,
        live: true,
    },
    Setup {
        run: "mkdir -p k8s && cp fixtures/compliant/*.yaml k8s/",
        live: false,
    },
    Setup {
        run: "printf -- '- check: manual-on-call-rotation-established\\n  by: Alice Example <alice@example.com>\\n  date: 2026-11-20\\n  evidence: https://wiki.example.com/oncall/mlsdm\\n' > attest.yaml",
        live: false,
    },
    Setup {
        run: "mkdir -p home/.ssh && ssh-keygen -q -t ed25519 -N '' -C alice@example.com -f home/.ssh/id_ed25519 && ssh-keygen -q -t ecdsa -N '' -C bob@example.com -f home/.ssh/id_ecdsa",
        live: false,
    },
    Setup {
        run: "printf 'alice@example.com namespaces=\"mlsdm-audit\" %s\\nbob@example.com namespaces=\"mlsdm-audit\" %s\\n' \"$(cut -d' ' -f1,2 home/.ssh/id_ed25519.pub)\" \"$(cut -d' ' -f1,2 home/.ssh/id_ecdsa.pub)\" > allowed_signers",
        live: false,
    },
    Run {
        readme: "mlsdm-audit check -f k8s/ --attestations attest.yaml --output-file release.json",
        run: "mlsdm-audit check -f k8s/ --attestations attest.yaml --output-file release.json && jq -e '[.results[] | select(.id == \"manual-on-call-rotation-established\")][0].status == \"pass\"' release.json",
        codes: &[0],
        live: false,
    },
    Run {
        readme: "mlsdm-audit signoff release.json --role \"DevOps/SRE Lead\" --name \"Alice Example\" --key ~/.ssh/id_ed25519",
        run: "export HOME=$PWD/home && mlsdm-audit signoff release.json --role \"DevOps/SRE Lead\" --name \"Alice Example\" --key ~/.ssh/id_ed25519",
        codes: &[0],
        live: false,
    },
    Run {
        readme: "mlsdm-audit signoff release.json --role \"Security Team\" --name \"Bob\" --key ~/.ssh/id_ecdsa",
        run: "export HOME=$PWD/home && mlsdm-audit signoff release.json --role \"Security Team\" --name \"Bob\" --key ~/.ssh/id_ecdsa",
        codes: &[0],
        live: false,
    },
    Run {
        readme: "mlsdm-audit verify release.json --allowed-signers allowed_signers --fail-on-unsigned \"DevOps/SRE Lead,Security Team\" -f k8s/",
        run: "out=$(mlsdm-audit verify release.json --allowed-signers allowed_signers --fail-on-unsigned \"DevOps/SRE Lead,Security Team\" -f k8s/) && echo \"$out\" | grep -q '^the manifests are the ones the report audited'",
        codes: &[0],
        live: false,
    },
    Run {
        readme: "mlsdm-audit report release.json --output-file CHECKLIST.md",
        run: "mlsdm-audit report release.json --output-file CHECKLIST.md && grep -q '^ *- \\[x\\] On-call rotation established' CHECKLIST.md",
        codes: &[0],
        live: false,
    },
    Run {
        readme: "mlsdm-audit verify release.json --payload 1 > payload",
        run: "mlsdm-audit verify release.json --payload 1 > payload",
        codes: &[0],
        live: false,
    },
    Run {
        readme: "jq -r '.signoffs[0].signature' release.json > payload.sig",
        run: "jq -r '.signoffs[0].signature' release.json > payload.sig",
        codes: &[0],
        live: false,
    },
    Run {
        readme: "ssh-keygen -Y verify -f allowed_signers -I alice@example.com -n mlsdm-audit -s payload.sig < payload",
        run: "ssh-keygen -Y verify -f allowed_signers -I alice@example.com -n mlsdm-audit -s payload.sig < payload",
        codes: &[0],
        live: false,
    },
];

fn skip(why: &str) {
    use std::io::Write as _;
    let _ = writeln!(std::io::stderr(), "skipped: {why}");
}

/// A scratch directory laid out like the repository's top (fixtures and examples linked), with
/// a `bin/` holding the binary under its kubectl plugin name.
fn scratch(name: &str) -> PathBuf {
    let dir =
        std::env::temp_dir().join(format!("mlsdm-audit-readme-{name}-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(dir.join("bin")).unwrap();
    for linked in ["fixtures", "examples"] {
        std::os::unix::fs::symlink(root().join(linked), dir.join(linked)).unwrap();
    }
    std::os::unix::fs::symlink(
        env!("CARGO_BIN_EXE_mlsdm-audit"),
        dir.join("bin/kubectl-mlsdm_audit"),
    )
    .unwrap();
    dir
}

fn path_env(dir: &Path) -> String {
    let bin = Path::new(env!("CARGO_BIN_EXE_mlsdm-audit"))
        .parent()
        .unwrap();
    let mut path = format!("{}:{}", bin.display(), dir.join("bin").display());
    let kubectl = std::env::var("MLSDM_AUDIT_KUBECTL").ok();
    if let Some(parent) = kubectl.as_deref().and_then(|k| Path::new(k).parent()) {
        path = format!("{path}:{}", parent.display());
    }
    format!("{path}:{}", std::env::var("PATH").unwrap_or_default())
}

fn bash(dir: &Path, command: &str, env: &[(&str, String)]) -> Output {
    let mut cmd = Command::new("bash");
    cmd.args(["-o", "pipefail", "-c", command])
        .current_dir(dir)
        .env("PATH", path_env(dir))
        .env("NO_COLOR", "1")
        .env_remove("KUBECONFIG")
        .env_remove("COLUMNS");
    for (k, v) in env {
        cmd.env(k, v);
    }
    cmd.output().unwrap()
}

fn transcript(out: &Output) -> String {
    format!(
        "exit {:?}\n--- stdout\n{}--- stderr\n{}",
        out.status.code(),
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    )
}

#[test]
fn every_readme_command_is_run_or_named() {
    let listed: Vec<&str> = STEPS
        .iter()
        .filter_map(|s| match s {
            Run { readme, .. } => Some(*readme),
            Elsewhere { readme, by } => {
                assert!(!by.is_empty(), "`{readme}`: say what runs it");
                Some(*readme)
            }
            Setup { .. } => None,
        })
        .collect();
    let commands = readme_commands();
    let missing: Vec<&String> = commands
        .iter()
        .filter(|c| !listed.contains(&c.as_str()))
        .collect();
    let stale: Vec<&&str> = listed
        .iter()
        .filter(|l| !commands.iter().any(|c| c == *l))
        .collect();
    assert!(
        missing.is_empty() && stale.is_empty(),
        "README commands tests/readme.rs neither runs nor names: {missing:#?}\nsteps naming no README command: {stale:#?}"
    );
}

/// `value` of the first `key: value` line of a kubeconfig.
fn field(kc: &str, key: &str) -> String {
    kc.lines()
        .find_map(|l| l.trim().strip_prefix(&format!("{key}: ")))
        .unwrap_or_else(|| panic!("no {key} in the test kubeconfig"))
        .to_string()
}

/// The suite's real kube-apiserver under the README's three context names.
fn kubeconfig(kube_dir: &str, dir: &Path) -> PathBuf {
    use std::fmt::Write as _;
    let base = std::fs::read_to_string(Path::new(kube_dir).join("kubeconfig-auditor")).unwrap();
    let server = field(&base, "server");
    let ca = field(&base, "certificate-authority-data");
    let token = field(&base, "token");
    let mut text = format!(
        "apiVersion: v1\nkind: Config\nclusters:\n- name: real\n  cluster:\n    server: {server}\n    certificate-authority-data: {ca}\nusers:\n- name: auditor\n  user:\n    token: {token}\ncontexts:\n"
    );
    for name in ["prod-eu", "prod-us", "staging"] {
        writeln!(
            text,
            "- name: {name}\n  context: {{cluster: real, user: auditor, namespace: mlsdm-production}}"
        )
        .unwrap();
    }
    text.push_str("current-context: prod-eu\n");
    let path = dir.join("kubeconfig");
    std::fs::write(&path, text).unwrap();
    path
}

#[test]
fn readme_commands_work_as_written() {
    for tool in ["jq", "ssh-keygen"] {
        if Command::new(tool).arg("--help").output().is_err() {
            skip(&format!(
                "{tool} not found (scripts/test.sh installs it): the README's commands are not run"
            ));
            return;
        }
    }
    let dir = scratch("commands");
    let live = if let (Ok(kube), Ok(prometheus), Ok(mlsdm), Ok(_)) = (
        std::env::var("KUBE_TEST_REAL_DIR"),
        std::env::var("MLSDM_AUDIT_TEST_PROMETHEUS_HEALTHY"),
        std::env::var("MLSDM_AUDIT_TEST_MLSDM_HEALTHY"),
        std::env::var("MLSDM_AUDIT_KUBECTL"),
    ) {
        Some(vec![
            (
                "KUBECONFIG",
                kubeconfig(&kube, &dir).to_string_lossy().into_owned(),
            ),
            ("PROMETHEUS", prometheus),
            ("MLSDM_URL", mlsdm),
            ("MLSDM_KEY", "test-api-key-0123456789abcdef".to_string()),
        ])
    } else {
        skip(
            "the README's cluster, service and metrics commands need the real kube-apiserver, \
             kubectl, Prometheus and the MLSDM stand-in that scripts/test.sh starts",
        );
        None
    };
    let mut ran = 0;
    for step in STEPS {
        let (command, codes, needs_live) = match step {
            Run {
                run, codes, live, ..
            } => (*run, *codes, *live),
            Setup { run, live } => (*run, &[0][..], *live),
            Elsewhere { .. } => continue,
        };
        let env = match (&live, needs_live) {
            (Some(env), _) => env.clone(),
            (None, true) => continue,
            (None, false) => Vec::new(),
        };
        let out = bash(&dir, command, &env);
        assert!(
            out.status.code().is_some_and(|c| codes.contains(&c)),
            "`{command}` should exit {codes:?}\n{}",
            transcript(&out)
        );
        ran += 1;
    }
    assert!(ran >= 20, "only {ran} commands ran");
    std::fs::remove_dir_all(&dir).ok();
}

#[test]
fn the_tour_shows_what_the_binary_prints() {
    let text = readme();
    let tour = blocks(&text, "console");
    assert_eq!(tour.len(), 1, "one console block, the tour");
    let dir = scratch("tour");
    let mut shown = 0;
    let mut lines = tour[0].lines().peekable();
    while let Some(line) = lines.next() {
        let command = line
            .strip_prefix("$ ")
            .unwrap_or_else(|| panic!("the tour's block starts each command with `$ `: {line}"));
        let mut expected = String::new();
        while let Some(next) = lines.next_if(|l| !l.starts_with("$ ")) {
            expected.push_str(next);
            expected.push('\n');
        }
        if command.contains("jq ") && Command::new("jq").arg("--help").output().is_err() {
            skip(&format!("jq not found: `{command}` is not compared"));
            continue;
        }
        // Without pipefail: `| head` closes the pipe early on purpose.
        let out = Command::new("bash")
            .args(["-c", command])
            .current_dir(&dir)
            .env("PATH", path_env(&dir))
            .env("NO_COLOR", "1")
            .env_remove("COLUMNS")
            .env_remove("KUBECONFIG")
            .output()
            .unwrap();
        assert_eq!(
            String::from_utf8_lossy(&out.stdout),
            expected,
            "README's tour: `{command}` prints something else now; update the README with its output"
        );
        shown += 1;
    }
    assert!(shown >= 3, "only {shown} tour commands");
    std::fs::remove_dir_all(&dir).ok();
}
