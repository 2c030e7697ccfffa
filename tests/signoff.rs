//! Sign-off end to end: attest, sign twice, verify, tamper, wrong key, unknown signer, and
//! interop with `ssh-keygen -Y sign` / `-Y verify` both ways.

mod support;

use std::path::{Path, PathBuf};
use std::process::{Command, Output};

struct Tmp(PathBuf);
impl Drop for Tmp {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.0);
    }
}

fn tmp(name: &str) -> Tmp {
    let dir = std::env::temp_dir().join(format!("mlsdm-audit-{name}-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(&dir).unwrap();
    Tmp(dir)
}

/// The binary without a passphrase in its environment: an encrypted key must ask for one.
fn bin() -> support::Cmd {
    support::cmd().env_remove("MLSDM_AUDIT_KEY_PASSPHRASE")
}

fn audit(args: &[&str]) -> Output {
    bin().args(args).run()
}

/// An audit dated 2026-09-21: the tests sign at fixed times after it (a signoff dated before
/// the report it signs is refused).
fn audit_dated(args: &[&str]) -> Output {
    bin()
        .env("SOURCE_DATE_EPOCH", "1790000000")
        .args(args)
        .run()
}

fn ok(out: &Output) -> String {
    assert_eq!(
        out.status.code(),
        Some(0),
        "stdout:\n{}\nstderr:\n{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8_lossy(&out.stdout).into_owned()
}

/// `signoff REPORT --role ROLE --name NAME --key KEY`, which must succeed.
fn sign(report: &str, role: &str, name: &str, key: &str) {
    ok(&audit(&[
        "signoff", report, "--role", role, "--name", name, "--key", key,
    ]));
}

fn ssh_keygen(args: &[&str], stdin: Option<&Path>) -> Output {
    let mut cmd = Command::new("ssh-keygen");
    cmd.args(args);
    if let Some(p) = stdin {
        cmd.stdin(std::fs::File::open(p).unwrap());
    }
    cmd.output().expect("ssh-keygen (Debian openssh-client) is needed for the interop tests; scripts/test.sh installs it")
}

fn keygen(dir: &Path, name: &str, kind: &str, pass: &str) -> String {
    let path = dir.join(name);
    let out = ssh_keygen(
        &[
            "-q",
            "-t",
            kind,
            "-N",
            pass,
            "-C",
            name,
            "-f",
            path.to_str().unwrap(),
        ],
        None,
    );
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    path.to_str().unwrap().to_string()
}

fn pubkey(path: &str) -> String {
    let text = std::fs::read_to_string(format!("{path}.pub")).unwrap();
    text.split_whitespace()
        .take(2)
        .collect::<Vec<_>>()
        .join(" ")
}

/// An allowed signers file trusting each (principal, key) for any namespace.
fn allowed_file(dir: &Path, signers: &[(&str, &str)]) -> String {
    let path = dir.join("allowed_signers_all");
    let text = signers
        .iter()
        .map(|(p, k)| format!("{p} {}", pubkey(k)))
        .collect::<Vec<_>>()
        .join("\n");
    std::fs::write(&path, text).unwrap();
    path.to_str().unwrap().to_string()
}

/// An audited report of the compliant release with the on-call item attested.
fn report(dir: &Path) -> String {
    report_of(dir, "fixtures/compliant")
}

/// An audited report of `manifests` with the on-call item attested.
fn report_of(dir: &Path, manifests: &str) -> String {
    let att = dir.join("attestations.yaml");
    std::fs::write(&att, "- check: manual-on-call-rotation-established\n  by: Alice <alice@example.com>\n  date: 2026-11-20\n  evidence: https://wiki.example.com/oncall\n").unwrap();
    let report = dir.join("report.json");
    let out = audit_dated(&[
        "check",
        "--manifests",
        manifests,
        "--attestations",
        att.to_str().unwrap(),
        "--format",
        "json",
        "--output-file",
        report.to_str().unwrap(),
    ]);
    assert_eq!(
        out.status.code(),
        Some(0),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    report.to_str().unwrap().to_string()
}

/// The defective release's report (it fails), written to `dir/name`.
fn defective_report(dir: &Path, name: &str) -> String {
    let path = dir.join(name);
    let out = audit_dated(&[
        "check",
        "--manifests",
        "fixtures/defective",
        "--format",
        "json",
        "--output-file",
        path.to_str().unwrap(),
    ]);
    assert_eq!(out.status.code(), Some(1));
    path.to_str().unwrap().to_string()
}

fn json(path: &str) -> serde_json::Value {
    serde_json::from_str(&std::fs::read_to_string(path).unwrap()).unwrap()
}

#[test]
fn attest_sign_twice_and_verify() {
    let t = tmp("signoff");
    let r = report(&t.0);
    let v = json(&r);
    let attested = v["results"]
        .as_array()
        .unwrap()
        .iter()
        .find(|x| x["id"] == "manual-on-call-rotation-established")
        .unwrap();
    assert_eq!(attested["status"], "pass");
    assert_eq!(attested["attestation"]["by"], "Alice <alice@example.com>");

    let alice = keygen(&t.0, "alice", "ed25519", "");
    let bob = keygen(&t.0, "bob", "ecdsa", "");
    sign(&r, "DevOps/SRE Lead", "Alice", &alice);
    sign(&r, "Security Team", "Bob", &bob);
    assert_eq!(json(&r)["signoffs"].as_array().unwrap().len(), 2);

    let allowed = t.0.join("allowed_signers");
    std::fs::write(
        &allowed,
        format!(
            "alice@example.com {}\nbob@example.com namespaces=\"mlsdm-audit,git\" {}\n",
            pubkey(&alice),
            pubkey(&bob)
        ),
    )
    .unwrap();
    let text = ok(&audit(&[
        "verify",
        &r,
        "--allowed-signers",
        allowed.to_str().unwrap(),
    ]));
    assert!(
        text.contains("#1 DevOps/SRE Lead | Alice | alice@example.com |"),
        "{text}"
    );
    assert!(
        text.contains("#2 Security Team | Bob | bob@example.com |"),
        "{text}"
    );
    assert_eq!(text.matches("| valid").count(), 2);

    // A release gate that needs the Product Owner too.
    let gate = audit(&[
        "verify",
        &r,
        "--fail-on-unsigned",
        "DevOps/SRE Lead,Product Owner",
    ]);
    assert_eq!(gate.status.code(), Some(1));
    assert!(
        String::from_utf8_lossy(&gate.stdout)
            .contains("required role \"Product Owner\" has no valid signature")
    );
    ok(&audit(&[
        "verify",
        &r,
        "--allowed-signers",
        allowed.to_str().unwrap(),
        "--fail-on-unsigned",
        "DevOps/SRE Lead,Security Team",
    ]));

    // Re-rendering a signed report shows the sign-off table.
    let md = ok(&audit(&["report", &r, "--format", "markdown"]));
    assert!(md.contains("| DevOps/SRE Lead | Alice |"), "{md}");
    assert!(md.contains("| Product Owner | | | |"));
    assert!(md.contains(
        "- [x] On-call rotation established — attested by Alice \\<alice@example.com\\> on 2026-11-20"
    ));
}

/// A change to a signed report.
type Tamper = Box<dyn Fn(&mut serde_json::Value)>;

fn tampered(t: &Tmp, r: &str, allowed: &str, f: impl Fn(&mut serde_json::Value)) -> Output {
    let mut v = json(r);
    f(&mut v);
    let path = t.0.join("tampered.json");
    std::fs::write(&path, serde_json::to_string_pretty(&v).unwrap()).unwrap();
    audit(&[
        "verify",
        path.to_str().unwrap(),
        "--allowed-signers",
        allowed,
    ])
}

/// Signs `report` as Alice (Security Team) and gives `verify` of it with these `--manifests`.
fn signed_for_manifests(dir: &Path, report: &str) -> impl Fn(&[&str]) -> Output {
    let alice = keygen(dir, "alice", "ed25519", "");
    sign(report, "Security Team", "Alice", &alice);
    let allowed = allowed_file(dir, &[("alice@example.com", &alice)]);
    let report = report.to_string();
    move |paths: &[&str]| {
        let mut args = vec![
            "verify",
            report.as_str(),
            "--allowed-signers",
            allowed.as_str(),
        ];
        for p in paths {
            args.extend(["--manifests", p]);
        }
        audit(&args)
    }
}

/// A signed pass is about the manifests it audited: `verify --manifests` holds a release's files
/// to the bytes the report read (before, an old signed pass verified for any manifests). The
/// bytes decide, not the paths; a changed, added or unread file fails, naming what changed.
#[test]
fn a_signed_pass_verifies_only_for_the_manifests_it_audited() {
    let t = tmp("bound-to-manifests");
    let copy = |to: &Path| {
        std::fs::create_dir_all(to).unwrap();
        for entry in std::fs::read_dir("fixtures/compliant").unwrap() {
            let path = entry.unwrap().path();
            std::fs::copy(&path, to.join(path.file_name().unwrap())).unwrap();
        }
        to.to_str().unwrap().to_string()
    };
    let release = copy(&t.0.join("release"));
    let r = report_of(&t.0, &release);
    let digest = &json(&r)["target"]["manifestsDigest"];
    assert_eq!(digest["inputs"].as_array().unwrap().len(), 1, "{digest}");
    assert_eq!(
        digest["inputs"][0]["files"].as_array().unwrap().len(),
        7,
        "{digest}"
    );
    let verify = signed_for_manifests(&t.0, &r);

    let text = ok(&verify(&[&release]));
    assert!(
        text.contains("the manifests are the ones the report audited (7 file(s), sha256 "),
        "{text}"
    );
    // The same bytes elsewhere (another checkout) are the same release.
    let elsewhere = copy(&t.0.join("checkout"));
    ok(&verify(&[&elsewhere]));
    // The checklist reviewers read names the release too.
    let md = ok(&audit(&["report", &r, "-o", "markdown"]));
    assert!(
        md.contains("> Manifests audited: 7 file(s), sha256 "),
        "{md}"
    );
    // Without --manifests it says what the report is bound to.
    let text = ok(&verify(&[]));
    assert!(
        text.contains("the report audited manifests of 7 file(s), sha256 "),
        "{text}"
    );

    // One replica instead of three: the signed pass is not this release's.
    let deployment = Path::new(&elsewhere).join("20-deployment.yaml");
    let edited =
        std::fs::read_to_string(&deployment)
            .unwrap()
            .replacen("replicas: 3", "replicas: 1", 1);
    std::fs::write(&deployment, edited).unwrap();
    let out = verify(&[&elsewhere]);
    assert_eq!(out.status.code(), Some(1));
    let text = String::from_utf8_lossy(&out.stdout);
    assert!(
        text.contains("the manifests are not the ones the report audited (changed or new: ")
            && text.contains("20-deployment.yaml)"),
        "{text}"
    );
    // A file the audit did not read, and files it read left out.
    std::fs::write(
        Path::new(&release).join("99-extra.yaml"),
        "apiVersion: v1\nkind: ConfigMap\nmetadata:\n  name: extra\n",
    )
    .unwrap();
    let out = verify(&[&release]);
    assert_eq!(out.status.code(), Some(1));
    let text = String::from_utf8_lossy(&out.stdout);
    assert!(
        text.contains("(changed or new: ") && text.contains("99-extra.yaml)"),
        "{text}"
    );
    let out = verify(&[&format!("{release}/20-deployment.yaml")]);
    assert_eq!(out.status.code(), Some(1));

    // A report that records no manifests (a live or service audit) is not held to them.
    let mut v = json(&r);
    v["target"]
        .as_object_mut()
        .unwrap()
        .remove("manifestsDigest");
    let unbound = t.0.join("unbound.json");
    std::fs::write(&unbound, serde_json::to_string_pretty(&v).unwrap()).unwrap();
    let out = audit(&["verify", unbound.to_str().unwrap(), "--manifests", &release]);
    assert_eq!(out.status.code(), Some(1));
    let text = String::from_utf8_lossy(&out.stdout);
    assert!(
        text.contains("the report records no manifests digest"),
        "{text}"
    );
}

#[test]
fn a_kustomization_the_walk_does_not_read_as_a_manifest_is_bound_too() {
    // kustomize reads `Kustomization` (no extension) in a walked directory; the walk collects
    // only YAML and JSON files. It decides how the release renders (and the notes that fail the
    // gate), so a signed pass is bound to it as to any manifest.
    let t = tmp("bound-to-kustomization");
    let release = t.0.join("release");
    std::fs::create_dir_all(&release).unwrap();
    let mut listed = String::new();
    for entry in std::fs::read_dir("fixtures/compliant").unwrap() {
        let path = entry.unwrap().path();
        std::fs::copy(&path, release.join(path.file_name().unwrap())).unwrap();
        listed.push_str("  - ");
        listed.push_str(path.file_name().unwrap().to_str().unwrap());
        listed.push('\n');
    }
    let kustomization = release.join("Kustomization");
    std::fs::write(
        &kustomization,
        format!(
            "apiVersion: kustomize.config.k8s.io/v1beta1\nkind: Kustomization\nresources:\n{listed}"
        ),
    )
    .unwrap();
    let release = release.to_str().unwrap();
    let r = report_of(&t.0, release);
    let verify_with = signed_for_manifests(&t.0, &r);
    let verify = || verify_with(&[release]);
    ok(&verify());

    // The overlay now scales the release down: the files the audit read are unchanged.
    let mut text = std::fs::read_to_string(&kustomization).unwrap();
    text += "replicas:\n  - name: mlsdm-api\n    count: 1\n";
    std::fs::write(&kustomization, text).unwrap();
    let out = verify();
    assert_eq!(out.status.code(), Some(1));
    let text = String::from_utf8_lossy(&out.stdout);
    assert!(
        text.contains("the manifests are not the ones the report audited (changed or new: ")
            && text.contains("Kustomization)"),
        "{text}"
    );
}

/// Left open in earlier notes, then fixed: the walk skips a hidden directory's manifests and a
/// Helm chart's files (with a note), and the digest bound only the files the run read, while
/// `kubectl apply -R` reads those too: a NetworkPolicy added under a hidden directory after the
/// sign-off verified as the release the report audited. They are bound now.
#[test]
fn what_the_walk_skips_and_kubectl_reads_is_bound_too() {
    let t = tmp("bound-to-skipped");
    let release = t.0.join("release");
    std::fs::create_dir_all(release.join(".github/workflows")).unwrap();
    std::fs::create_dir_all(release.join("chart/templates")).unwrap();
    for entry in std::fs::read_dir("fixtures/compliant").unwrap() {
        let path = entry.unwrap().path();
        std::fs::copy(&path, release.join(path.file_name().unwrap())).unwrap();
    }
    let workflow = release.join(".github/workflows/ci.yaml");
    std::fs::write(&workflow, "name: ci\non: push\n").unwrap();
    std::fs::write(
        release.join("chart/Chart.yaml"),
        "apiVersion: v2\nname: extra\nversion: 0.1.0\n",
    )
    .unwrap();
    let template = release.join("chart/templates/cm.yaml");
    std::fs::write(&template, "kind: ConfigMap\ndata: {{ .Values.data }}\n").unwrap();
    let release = release.to_str().unwrap();
    let r = report_of(&t.0, release);
    let digest = &json(&r)["target"]["manifestsDigest"];
    let paths: Vec<&str> = digest["inputs"][0]["files"]
        .as_array()
        .unwrap()
        .iter()
        .map(|f| f["path"].as_str().unwrap())
        .collect();
    for bound in [
        ".github/workflows/ci.yaml",
        "chart/Chart.yaml",
        "chart/templates/cm.yaml",
    ] {
        assert!(paths.contains(&bound), "{bound} is not bound: {paths:?}");
    }
    let verify_with = signed_for_manifests(&t.0, &r);
    let verify = || verify_with(&[release]);
    ok(&verify());

    let fails_naming = |what: &str, file: &str| {
        let out = verify();
        let text = String::from_utf8_lossy(&out.stdout);
        assert_eq!(out.status.code(), Some(1), "{what}: {text}");
        assert!(
            text.contains("the manifests are not the ones the report audited (changed or new: ")
                && text.contains(file),
            "{what}: {text}"
        );
    };
    // A manifest added under a hidden directory: `kubectl apply -R` applies it.
    let extra = Path::new(release).join(".extra");
    std::fs::create_dir_all(&extra).unwrap();
    std::fs::write(
        extra.join("allow-all.yaml"),
        "apiVersion: networking.k8s.io/v1\nkind: NetworkPolicy\nmetadata: {name: allow-all, namespace: mlsdm-production}\nspec: {podSelector: {}, ingress: [{}]}\n",
    )
    .unwrap();
    fails_naming(
        "a manifest added under a hidden directory",
        "allow-all.yaml",
    );
    std::fs::remove_dir_all(&extra).unwrap();
    ok(&verify());
    // A hidden directory's file, and a chart's, changed.
    std::fs::write(&workflow, "name: ci\non: [push, pull_request]\n").unwrap();
    fails_naming("a hidden directory's file changed", "ci.yaml");
    std::fs::write(&workflow, "name: ci\non: push\n").unwrap();
    ok(&verify());
    std::fs::write(&template, "kind: ConfigMap\ndata: {{ .Values.other }}\n").unwrap();
    fails_naming("a chart's template changed", "cm.yaml");
}

/// Review findings: `verify -f` passed files `check` decides differently. The digest was lines
/// of `path<TAB>sha256`, so one file named with a tab and a newline stood for two; and it held
/// each file's path under its input but not how the inputs were given (a file named on its own
/// against its directory, two directories against one).
#[test]
fn verify_holds_how_the_inputs_were_given_not_only_their_bytes() {
    let t = tmp("bound-to-inputs");
    let compliant: Vec<std::path::PathBuf> = {
        let mut v: Vec<_> = std::fs::read_dir("fixtures/compliant")
            .unwrap()
            .map(|e| e.unwrap().path())
            .collect();
        v.sort();
        v
    };
    // The release split over two directories, as `-f base -f extra`.
    let split = |at: &str| {
        let (a, b) = (t.0.join(at).join("base"), t.0.join(at).join("extra"));
        std::fs::create_dir_all(&a).unwrap();
        std::fs::create_dir_all(&b).unwrap();
        for (n, f) in compliant.iter().enumerate() {
            let to = if n < 4 { &a } else { &b };
            std::fs::copy(f, to.join(f.file_name().unwrap())).unwrap();
        }
        (
            a.to_str().unwrap().to_string(),
            b.to_str().unwrap().to_string(),
        )
    };
    let (a, b) = split("audited");
    let att = t.0.join("attestations.yaml");
    std::fs::write(&att, "- check: manual-on-call-rotation-established\n  by: Alice <alice@example.com>\n  date: 2026-11-20\n  evidence: https://wiki.example.com/oncall\n").unwrap();
    let r = t.0.join("report.json").to_str().unwrap().to_string();
    ok(&audit_dated(&[
        "check",
        "-f",
        &a,
        "-f",
        &b,
        "--attestations",
        att.to_str().unwrap(),
        "-o",
        "json",
        "--output-file",
        &r,
    ]));
    let verify = signed_for_manifests(&t.0, &r);
    // The same layout in another checkout verifies.
    let (a2, b2) = split("checkout");
    ok(&verify(&[&a2, &b2]));

    // The same files in one directory are another release's layout.
    let flat = t.0.join("flat");
    std::fs::create_dir_all(&flat).unwrap();
    for f in &compliant {
        std::fs::copy(f, flat.join(f.file_name().unwrap())).unwrap();
    }
    let out = verify(&[flat.to_str().unwrap()]);
    assert_eq!(out.status.code(), Some(1));
    let text = String::from_utf8_lossy(&out.stdout);
    assert!(text.contains("(inputs given as "), "{text}");

    // One file named with a tab and a newline standing for two lines of the old digest.
    let (fa, fb) = split("forged");
    let last = Path::new(&fb).join(compliant[6].file_name().unwrap());
    let before_it = Path::new(&fb).join(compliant[5].file_name().unwrap());
    let hidden_sha = {
        use std::io::Write as _;
        let mut child = Command::new("sha256sum")
            .stdin(std::process::Stdio::piped())
            .stdout(std::process::Stdio::piped())
            .spawn()
            .unwrap();
        child
            .stdin
            .take()
            .unwrap()
            .write_all(&std::fs::read(&before_it).unwrap())
            .unwrap();
        let out = child.wait_with_output().unwrap();
        String::from_utf8_lossy(&out.stdout)[..64].to_string()
    };
    let name = format!(
        "{}\t{hidden_sha}\n{}",
        compliant[5].file_name().unwrap().to_str().unwrap(),
        compliant[6].file_name().unwrap().to_str().unwrap()
    );
    std::fs::rename(&last, Path::new(&fb).join(name)).unwrap();
    std::fs::remove_file(&before_it).unwrap();
    let out = verify(&[&fa, &fb]);
    assert_eq!(
        out.status.code(),
        Some(1),
        "{}",
        String::from_utf8_lossy(&out.stdout)
    );

    // The split release's first directory named file by file is not the directory.
    let mut files = vec![];
    for f in &compliant[..4] {
        files.push(
            Path::new(&a2)
                .join(f.file_name().unwrap())
                .to_str()
                .unwrap()
                .to_string(),
        );
    }
    let mut given: Vec<&str> = files.iter().map(String::as_str).collect();
    given.push(&b2);
    let out = verify(&given);
    assert_eq!(out.status.code(), Some(1));
}

#[test]
fn any_change_after_signing_fails_verification() {
    let t = tmp("tamper");
    let r = report(&t.0);
    let key = keygen(&t.0, "alice", "ed25519", "");
    sign(&r, "Product Owner", "Alice", &key);
    let allowed = allowed_file(&t.0, &[("alice@example.com", &key)]);
    ok(&audit(&["verify", &r, "--allowed-signers", &allowed]));
    let cases: Vec<(&str, Tamper)> = vec![
        (
            "a result's status",
            Box::new(|v| v["results"][0]["status"] = "fail".into()),
        ),
        (
            "a result's message",
            Box::new(|v| v["results"][3]["message"] = "all good".into()),
        ),
        ("the summary", Box::new(|v| v["summary"]["fail"] = 5.into())),
        (
            "the summary pass count",
            Box::new(|v| v["summary"]["pass"] = 1000.into()),
        ),
        (
            "the target",
            Box::new(|v| v["target"]["failOn"] = "critical".into()),
        ),
        (
            "the tool version",
            Box::new(|v| v["tool"]["version"] = "9.9.9".into()),
        ),
        (
            "a result removed",
            Box::new(|v| {
                v["results"].as_array_mut().unwrap().pop();
            }),
        ),
        (
            "the signoff's role",
            Box::new(|v| v["signoffs"][0]["role"] = "Security Team".into()),
        ),
        (
            "the signoff's name",
            Box::new(|v| v["signoffs"][0]["name"] = "Mallory".into()),
        ),
        (
            "the signoff's time",
            Box::new(|v| v["signoffs"][0]["time"] = "2020-01-01T00:00:00Z".into()),
        ),
        ("an added field", Box::new(|v| v["extra"] = true.into())),
    ];
    for (what, f) in cases {
        let out = tampered(&t, &r, &allowed, f);
        assert_eq!(
            out.status.code(),
            Some(1),
            "changing {what} must fail verification: {}",
            String::from_utf8_lossy(&out.stdout)
        );
        assert!(
            String::from_utf8_lossy(&out.stdout).contains("INVALID"),
            "{what}"
        );
    }
}

#[test]
fn wrong_key_and_unknown_signer() {
    let t = tmp("wrongkey");
    let r = report(&t.0);
    let alice = keygen(&t.0, "alice", "ed25519", "");
    let mallory = keygen(&t.0, "mallory", "ed25519", "");
    sign(&r, "Product Owner", "Alice", &alice);
    // Claiming Mallory's key for Alice's signature.
    let both = allowed_file(
        &t.0,
        &[
            ("alice@example.com", &alice),
            ("mallory@example.com", &mallory),
        ],
    );
    let out = tampered(&t, &r, &both, |v| {
        v["signoffs"][0]["publicKey"] = pubkey(&mallory).into();
    });
    assert_eq!(out.status.code(), Some(1));
    assert!(String::from_utf8_lossy(&out.stdout).contains("different key"));
    // A valid signature by a key the allowed signers file does not list.
    let allowed = t.0.join("allowed");
    std::fs::write(
        &allowed,
        format!("mallory@example.com {}\n", pubkey(&mallory)),
    )
    .unwrap();
    let out = audit(&["verify", &r, "--allowed-signers", allowed.to_str().unwrap()]);
    assert_eq!(out.status.code(), Some(1));
    assert!(String::from_utf8_lossy(&out.stdout).contains("UNKNOWN SIGNER"));
    // A key allowed only for another namespace is not allowed here.
    std::fs::write(
        &allowed,
        format!("alice@example.com namespaces=\"git\" {}\n", pubkey(&alice)),
    )
    .unwrap();
    assert_eq!(
        audit(&["verify", &r, "--allowed-signers", allowed.to_str().unwrap()])
            .status
            .code(),
        Some(1)
    );
}

#[test]
fn ssh_keygen_verifies_our_signature() {
    let t = tmp("interop1");
    let r = report(&t.0);
    let key = keygen(&t.0, "alice", "ed25519", "");
    sign(&r, "DevOps/SRE Lead", "Alice", &key);
    let payload = t.0.join("payload");
    let out = audit(&["verify", &r, "--payload", "1"]);
    assert!(out.status.success());
    std::fs::write(&payload, &out.stdout).unwrap();
    let sig = t.0.join("sig");
    std::fs::write(&sig, json(&r)["signoffs"][0]["signature"].as_str().unwrap()).unwrap();
    let allowed = t.0.join("allowed");
    std::fs::write(&allowed, format!("alice@example.com {}\n", pubkey(&key))).unwrap();
    let keygen_verify = || {
        let (allowed, sig) = (allowed.to_str().unwrap(), sig.to_str().unwrap());
        ssh_keygen(
            &[
                "-Y",
                "verify",
                "-f",
                allowed,
                "-I",
                "alice@example.com",
                "-n",
                "mlsdm-audit",
                "-s",
                sig,
            ],
            Some(&payload),
        )
    };
    let v = keygen_verify();
    assert!(
        v.status.success(),
        "ssh-keygen rejected our signature: {}",
        String::from_utf8_lossy(&v.stderr)
    );
    // And rejects it for a changed payload.
    std::fs::write(&payload, [out.stdout.as_slice(), b" "].concat()).unwrap();
    let v = keygen_verify();
    assert!(!v.status.success());
}

/// The signature plain `ssh-keygen -Y sign` makes with `key` over the payload of the report's
/// first signoff (as `verify --payload 1` prints it), made in `dir`.
fn ssh_keygen_signs_the_first(dir: &Path, report: &str, key: &str) -> String {
    let payload = dir.join("payload");
    std::fs::write(
        &payload,
        audit(&["verify", report, "--payload", "1"]).stdout,
    )
    .unwrap();
    let _ = std::fs::remove_file(dir.join("payload.sig"));
    let s = ssh_keygen(
        &[
            "-Y",
            "sign",
            "-q",
            "-n",
            "mlsdm-audit",
            "-f",
            key,
            payload.to_str().unwrap(),
        ],
        None,
    );
    assert!(s.status.success(), "{}", String::from_utf8_lossy(&s.stderr));
    std::fs::read_to_string(dir.join("payload.sig")).unwrap()
}

#[test]
fn we_verify_an_ssh_keygen_signature() {
    let t = tmp("interop2");
    let r = report(&t.0);
    let key = keygen(&t.0, "carol", "ed25519", "");
    // Write the entry without a signature, take its payload, and sign it with plain ssh-keygen.
    let mut v = json(&r);
    v["signoffs"] = serde_json::json!([{"role": "Security Team", "name": "Carol", "time": "2026-11-26T10:00:00Z", "publicKey": pubkey(&key), "signature": ""}]);
    std::fs::write(&r, serde_json::to_string_pretty(&v).unwrap()).unwrap();
    v["signoffs"][0]["signature"] = ssh_keygen_signs_the_first(&t.0, &r, &key).into();
    std::fs::write(&r, serde_json::to_string_pretty(&v).unwrap()).unwrap();
    let allowed = allowed_file(&t.0, &[("carol@example.com", &key)]);
    let text = ok(&audit(&["verify", &r, "--allowed-signers", &allowed]));
    assert!(
        text.contains("#1 Security Team | Carol | carol@example.com |") && text.contains("| valid"),
        "{text}"
    );
}

#[test]
fn encrypted_keys_need_a_passphrase() {
    let t = tmp("enc");
    let r = report(&t.0);
    let key = keygen(&t.0, "enc", "ed25519", "correct horse");
    let out = audit(&[
        "signoff",
        &r,
        "--role",
        "Product Owner",
        "--name",
        "Dana",
        "--key",
        &key,
    ]);
    assert_eq!(out.status.code(), Some(2));
    assert!(String::from_utf8_lossy(&out.stderr).contains("is encrypted and there is no terminal"));
    let signed = support::cmd()
        .args([
            "signoff",
            &r,
            "--role",
            "Product Owner",
            "--name",
            "Dana",
            "--key",
            &key,
        ])
        .env("MLSDM_AUDIT_KEY_PASSPHRASE", "correct horse")
        .run();
    assert!(
        signed.status.success(),
        "{}",
        String::from_utf8_lossy(&signed.stderr)
    );
    let wrong = support::cmd()
        .args([
            "signoff",
            &r,
            "--role",
            "Product Owner",
            "--name",
            "Dana",
            "--key",
            &key,
        ])
        .env("MLSDM_AUDIT_KEY_PASSPHRASE", "battery staple")
        .run();
    assert_eq!(wrong.status.code(), Some(2));
    assert!(String::from_utf8_lossy(&wrong.stderr).contains("wrong passphrase"));
    let allowed = allowed_file(&t.0, &[("dana@example.com", &key)]);
    ok(&audit(&["verify", &r, "--allowed-signers", &allowed]));
}

#[test]
fn roles_and_bad_attestations_are_refused() {
    let t = tmp("roles");
    let r = report(&t.0);
    let key = keygen(&t.0, "k", "ed25519", "");
    let out = audit(&["signoff", &r, "--role", "CEO", "--name", "X", "--key", &key]);
    assert_eq!(out.status.code(), Some(2));
    ok(&audit(&[
        "signoff",
        &r,
        "--role",
        "CEO",
        "--extra-role",
        "CEO",
        "--name",
        "X",
        "--key",
        &key,
    ]));
    let att = t.0.join("bad.yaml");
    std::fs::write(&att, "- check: no-such-check\n  by: a\n  date: 2026-11-20\n  evidence: x\n- check: image-pinned\n  by: a\n  date: 2026-11-20\n  evidence: x\n- check: manual-dr-plan-documented\n  by: a\n  date: yesterday\n  evidence: x\n").unwrap();
    let out = audit(&[
        "check",
        "--manifests",
        "fixtures/compliant",
        "--attestations",
        att.to_str().unwrap(),
    ]);
    assert_eq!(out.status.code(), Some(2));
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(
        err.contains("bad.yaml:1:3: unknown check \"no-such-check\""),
        "{err}"
    );
    assert!(
        err.contains("bad.yaml:5:3: image-pinned is a kubernetes check"),
        "{err}"
    );
    assert!(
        err.contains("bad.yaml:9:3: date \"yesterday\" is not YYYY-MM-DD"),
        "{err}"
    );
    assert_eq!(
        audit(&["verify", "fixtures/compliant/00-namespace.yaml"])
            .status
            .code(),
        Some(2)
    );
}

#[test]
fn baseline_marks_new_fixed_unchanged_and_gates_on_new() {
    let t = tmp("baseline");
    let base = defective_report(&t.0, "base.json");
    let b = base.as_str();
    // Same manifests: nothing new, the known debt does not gate.
    let same = audit(&[
        "check",
        "--manifests",
        "fixtures/defective",
        "--baseline",
        b,
        "--fail-on-new",
        "--format",
        "json",
    ]);
    assert_eq!(same.status.code(), Some(0));
    let v: serde_json::Value = serde_json::from_slice(&same.stdout).unwrap();
    assert!(
        v["results"]
            .as_array()
            .unwrap()
            .iter()
            .all(|r| r["change"] == "unchanged")
    );
    // A regression: the defective set plus a second Deployment with a floating tag.
    let worse = audit(&[
        "check",
        "--manifests",
        "fixtures/defective",
        "--manifests",
        "tests/data/floating-tag.yaml",
        "--baseline",
        b,
        "--fail-on-new",
        "--format",
        "json",
    ]);
    assert_eq!(worse.status.code(), Some(1));
    let v: serde_json::Value = serde_json::from_slice(&worse.stdout).unwrap();
    let new: Vec<&serde_json::Value> = v["results"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|r| r["change"] == "new")
        .collect();
    assert!(new.iter().any(
        |r| r["id"] == "resources-memory-request-min" && r["object"]["name"] == "sidecar-tools"
    ));
    // The trend reaches every format a reviewer or a CI system reads, not only the JSON.
    let worse_json = t.0.join("worse.json");
    std::fs::write(&worse_json, &worse.stdout).unwrap();
    let render = |format: &str| {
        let out = audit(&["report", worse_json.to_str().unwrap(), "-o", format]);
        assert_eq!(out.status.code(), Some(0), "{format}");
        String::from_utf8_lossy(&out.stdout).into_owned()
    };
    let line = format!(
        "against the baseline: {} new failure(s)",
        new.iter().filter(|r| r["status"] == "fail").count()
    );
    for format in ["table", "markdown", "html"] {
        assert!(render(format).contains(&line), "{format} lacks {line:?}");
    }
    assert!(render("markdown").contains("resources-memory-request-min fail (new) on"));
    assert!(render("junit").contains("fail (new):"));
    let sarif: serde_json::Value = serde_json::from_str(&render("sarif")).unwrap();
    let states: Vec<&str> = sarif["runs"][0]["results"]
        .as_array()
        .unwrap()
        .iter()
        .filter_map(|r| r["baselineState"].as_str())
        .collect();
    assert!(
        states.contains(&"new") && states.contains(&"unchanged"),
        "{states:?}"
    );
    // A fix: the compliant modular set against the defective baseline.
    let fixed = audit(&[
        "check",
        "--manifests",
        "fixtures/compliant-modular",
        "--baseline",
        b,
        "--format",
        "json",
    ]);
    let v: serde_json::Value = serde_json::from_slice(&fixed.stdout).unwrap();
    assert!(
        v["results"]
            .as_array()
            .unwrap()
            .iter()
            .any(|r| r["id"] == "image-pinned" && r["change"] == "fixed")
    );
}

/// Signs `report` as `role` with `key` at the fixed time `epoch`.
fn sign_at(report: &str, role: &str, name: &str, key: &str, epoch: i64) {
    let out = bin()
        .args([
            "signoff", report, "--role", role, "--name", name, "--key", key,
        ])
        .env("SOURCE_DATE_EPOCH", epoch.to_string())
        .run();
    ok(&out);
}

#[test]
fn without_allowed_signers_no_signature_is_trusted_and_no_role_is_signed() {
    let t = tmp("untrusted");
    let r = report(&t.0);
    // Anyone can re-sign a report for every role with a throw-away key.
    let throwaway = keygen(&t.0, "throwaway", "ed25519", "");
    let roles = [
        "Development Team Lead",
        "DevOps/SRE Lead",
        "Security Team",
        "Product Owner",
    ];
    for role in roles {
        ok(&audit(&[
            "signoff", &r, "--role", role, "--name", "Mallory", "--key", &throwaway,
        ]));
    }
    let out = audit(&["verify", &r]);
    let text = String::from_utf8_lossy(&out.stdout);
    assert_eq!(out.status.code(), Some(1), "{text}");
    assert_eq!(text.matches("| UNTRUSTED").count(), 4, "{text}");
    assert!(!text.contains("| valid"), "{text}");
    assert!(text.contains("no role counts as signed"), "{text}");
    let gate = audit(&["verify", &r, "--fail-on-unsigned", &roles.join(",")]);
    let text = String::from_utf8_lossy(&gate.stdout);
    assert_eq!(gate.status.code(), Some(1), "{text}");
    for role in roles {
        assert!(
            text.contains(&format!(
                "required role {role:?} has no valid signature by an allowed signer"
            )),
            "{text}"
        );
    }
    // Trusting the key makes the signatures valid, but one signer signing as four roles (any
    // name can be typed beside a role) counts for one of them: it verified with exit 0.
    let allowed = allowed_file(&t.0, &[("mallory@example.com", &throwaway)]);
    let out = audit(&[
        "verify",
        &r,
        "--allowed-signers",
        &allowed,
        "--fail-on-unsigned",
        &roles.join(","),
    ]);
    let text = String::from_utf8_lossy(&out.stdout);
    assert_eq!(out.status.code(), Some(1), "{text}");
    assert_eq!(text.matches("| valid").count(), 4, "{text}");
    assert!(
        text.contains("are signed only by signers who sign another required role"),
        "{text}"
    );
    // One role is enough for one signer.
    ok(&audit(&[
        "verify",
        &r,
        "--allowed-signers",
        &allowed,
        "--fail-on-unsigned",
        roles[0],
    ]));
}

/// What a reviewer trusts after the run: a report of part of the audit (`--only`, `--skip`,
/// `--allow-empty`, `--fail-on-new`, `--fail-on critical`) verified as a pass of the release,
/// one with failures taken out after the run verified, one of another schema version was
/// relabelled, and a signoff backdated past its key's `valid-before` was valid.
#[test]
fn a_narrowed_tampered_or_backdated_report_does_not_verify() {
    let t = tmp("narrowed");
    let key = keygen(&t.0, "bob", "ed25519", "");
    let allowed = allowed_file(&t.0, &[("bob@example.com", &key)]);
    let sign_as_bob = |path: &str| {
        sign(path, "Security Team", "Bob", &key);
    };
    let signed = |name: &str, args: &[&str]| -> String {
        let path = t.0.join(name).to_str().unwrap().to_string();
        let mut all = vec!["check", "--format", "json", "--output-file", &path];
        all.extend_from_slice(args);
        let out = audit_dated(&all);
        assert!(
            matches!(out.status.code(), Some(0 | 1)),
            "{}",
            String::from_utf8_lossy(&out.stderr)
        );
        sign_as_bob(&path);
        path
    };
    let verify = |path: &str, extra: &[&str]| -> (i32, String) {
        let mut args = vec!["verify", path, "--allowed-signers", &allowed];
        args.extend_from_slice(extra);
        let out = audit(&args);
        (
            out.status.code().unwrap(),
            String::from_utf8_lossy(&out.stdout).into_owned(),
        )
    };
    let only = signed(
        "only.json",
        &[
            "-f",
            "fixtures/defective",
            "--only",
            "namespace-defined,replicas-min-3",
        ],
    );
    let (code, text) = verify(&only, &[]);
    assert_eq!(code, 1, "{text}");
    assert!(
        text.contains("a narrowed audit: --only/--skip left out 186 check(s)"),
        "{text}"
    );
    assert!(text.contains("[a narrowed audit:"), "{text}");
    let (code, text) = verify(&only, &["--allow-narrowed"]);
    assert_eq!(code, 0, "{text}");
    // The report says it in every format, and the checklist does not call the lines of the
    // checks left out uncovered: it names them.
    let md = ok(&audit(&["report", &only, "-o", "markdown"]));
    assert!(
        md.contains("a subset audit: --only/--skip ran 2 of the 188 checks"),
        "{md}"
    );
    assert!(
        md.contains("not all of its checks ran: ") && md.contains(" left out (--only/--skip)"),
        "{md}"
    );
    let report = json(&only);
    assert_eq!(report["target"]["leftOut"].as_array().unwrap().len(), 186);

    let empty = t.0.join("empty");
    std::fs::create_dir_all(&empty).unwrap();
    let allow_empty = signed(
        "allow-empty.json",
        &[
            "-f",
            "fixtures/compliant",
            "-f",
            empty.to_str().unwrap(),
            "--allow-empty",
        ],
    );
    let report = json(&allow_empty);
    assert_eq!(report["target"]["allowEmpty"], true);
    assert!(
        report["notes"]
            .as_array()
            .unwrap()
            .iter()
            .any(|n| n["kind"] == "empty-input"
                && n["message"]
                    .as_str()
                    .unwrap()
                    .contains("accepted: --allow-empty")),
        "{report}"
    );
    assert_eq!(verify(&allow_empty, &[]).0, 1);

    let critical = signed(
        "critical.json",
        &[
            "-f",
            "fixtures/defective",
            "--fail-on",
            "critical",
            "--skip",
            "mlsdm-config-valid,api-key-from-secret,mlsdm-env-overrides-valid",
        ],
    );
    let (code, text) = verify(&critical, &[]);
    assert_eq!(code, 1, "{text}");
    assert!(
        text.contains("--fail-on critical: failures below it do not gate"),
        "{text}"
    );

    // An edited report `v`, written as `name` and signed by Bob as Security Team: its path.
    let signed_by_bob = |name: &str, v: &serde_json::Value| -> String {
        let path = t.0.join(name);
        std::fs::write(&path, v.to_string()).unwrap();
        let path = path.to_str().unwrap().to_string();
        sign_as_bob(&path);
        path
    };

    // Failures taken out after the run, before signing.
    let full = t.0.join("full.json");
    let out = audit_dated(&[
        "check",
        "-f",
        "fixtures/defective",
        "--format",
        "json",
        "--output-file",
        full.to_str().unwrap(),
    ]);
    assert_eq!(out.status.code(), Some(1));
    let mut v = json(full.to_str().unwrap());
    v["results"] = serde_json::Value::Array(
        v["results"]
            .as_array()
            .unwrap()
            .iter()
            .filter(|r| r["status"] != "fail")
            .cloned()
            .collect(),
    );
    let stripped = &signed_by_bob("stripped.json", &v);
    let (code, text) = verify(stripped, &[]);
    assert_eq!(code, 1, "{text}");
    assert!(
        text.contains("its summary is not what its results count"),
        "{text}"
    );
    assert!(text.contains("check(s) it ran have no result"), "{text}");

    // The version is signed content: one this version cannot hold to its catalog does not
    // verify as a pass (failures removed, then the version edited, verified with exit 0).
    let mut v = json(stripped);
    v["tool"]["version"] = "0.0.9".into();
    v["checks"] = serde_json::Value::Array(
        v["checks"]
            .as_array()
            .unwrap()
            .iter()
            .filter(|c| {
                v["results"]
                    .as_array()
                    .unwrap()
                    .iter()
                    .any(|r| r["id"] == c["id"])
            })
            .cloned()
            .collect(),
    );
    let older = &signed_by_bob("older.json", &v);
    let (code, text) = verify(older, &[]);
    assert_eq!(code, 1, "{text}");
    assert!(text.contains("written by mlsdm-audit 0.0.9"), "{text}");

    // Another schema version is not read as this one.
    let mut v = json(full.to_str().unwrap());
    v["schemaVersion"] = "2".into();
    let other = t.0.join("v2.json");
    std::fs::write(&other, v.to_string()).unwrap();
    for args in [
        vec!["verify", other.to_str().unwrap()],
        vec!["report", other.to_str().unwrap()],
    ] {
        let out = audit(&args);
        assert_eq!(out.status.code(), Some(2), "{args:?}");
        assert!(
            String::from_utf8_lossy(&out.stderr).contains("schemaVersion \"2\""),
            "{}",
            String::from_utf8_lossy(&out.stderr)
        );
    }

    // A waiver that has lapsed since the audit no longer accepts the failure it waived.
    let waivers = t.0.join("waivers.yaml");
    std::fs::write(
        &waivers,
        "- check: image-pinned\n  reason: canary tag, OPS-77\n  owner: platform@example.com\n  expires: 2999-01-31\n",
    )
    .unwrap();
    let waived = t.0.join("waived.json");
    let out = audit_dated(&[
        "check",
        "-f",
        "fixtures/defective",
        "--only",
        "image-pinned",
        "--waivers",
        waivers.to_str().unwrap(),
        "--format",
        "json",
        "--output-file",
        waived.to_str().unwrap(),
    ]);
    assert_eq!(
        out.status.code(),
        Some(0),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let mut v = json(waived.to_str().unwrap());
    for r in v["results"].as_array_mut().unwrap() {
        if r["status"] == "waived" {
            r["waiver"]["expires"] = "2026-01-01".into();
        }
    }
    let waived = &signed_by_bob("waived.json", &v);
    let (code, text) = verify(waived, &["--allow-narrowed"]);
    assert_eq!(code, 1, "{text}");
    assert!(
        text.contains("expired on 2026-01-01: the failure it waived is not accepted now"),
        "{text}"
    );

    // A signoff dated before its report, or in the future, is refused when signing and invalid
    // when verifying.
    let backdated = bin()
        .env("SOURCE_DATE_EPOCH", "1735689600")
        .args([
            "signoff",
            &only,
            "--role",
            "DevOps/SRE Lead",
            "--name",
            "Bob",
            "--key",
            &key,
        ])
        .run();
    assert_eq!(backdated.status.code(), Some(2));
    assert!(
        String::from_utf8_lossy(&backdated.stderr).contains("before the report was generated"),
        "{}",
        String::from_utf8_lossy(&backdated.stderr)
    );
}

/// `YYYYMMDDHHMMSS` (UTC) of a Unix time, as ssh-keygen's time options take it.
fn ssh_time(secs: i64, with_seconds: bool) -> String {
    let d = chrono::DateTime::from_timestamp(secs, 0).unwrap();
    d.format(if with_seconds {
        "%Y%m%d%H%M%S"
    } else {
        "%Y%m%d"
    })
    .to_string()
}

#[test]
fn allowed_signers_verdicts_match_ssh_keygen_verify() {
    let t = tmp("differential");
    let r = report(&t.0);
    let alice = keygen(&t.0, "alice", "ed25519", "");
    let mallory = keygen(&t.0, "mallory", "ed25519", "");
    let at: i64 = 1_795_000_000; // 2026-11-18T11:06:40Z
    sign_at(&r, "Security Team", "Alice", &alice, at);
    let payload = t.0.join("payload");
    std::fs::write(&payload, audit(&["verify", &r, "--payload", "1"]).stdout).unwrap();
    let sig = t.0.join("sig");
    std::fs::write(&sig, json(&r)["signoffs"][0]["signature"].as_str().unwrap()).unwrap();
    let (k, other) = (pubkey(&alice), pubkey(&mallory));
    let day = 86_400;
    let now = chrono::Utc::now().timestamp();
    let corpus: Vec<(&str, String)> = vec![
        ("exact principal", format!("alice@example.com {k}")),
        ("wildcard", format!("*@example.com {k}")),
        ("all but one", format!("*,!mallory@evil.com {k}")),
        (
            "quoted list",
            format!("\"alice@example.com,bob@example.com\" {k}"),
        ),
        (
            "negation first",
            format!("!alice@example.com,*@example.com {k}"),
        ),
        ("question mark", format!("al?ce@example.com {k}")),
        ("negation only", format!("!alice@example.com {k}")),
        (
            "other namespace",
            format!("alice@example.com namespaces=\"git\" {k}"),
        ),
        (
            "namespace wildcard",
            format!("alice@example.com namespaces=\"mlsdm-*\" {k}"),
        ),
        (
            "namespace negated",
            format!("alice@example.com namespaces=\"*,!mlsdm-audit\" {k}"),
        ),
        (
            "namespace list",
            format!("alice@example.com namespaces=\"git,mlsdm-audit\" {k}"),
        ),
        (
            "expired",
            format!(
                "alice@example.com valid-before=\"{}Z\" {k}",
                ssh_time(at - day, false)
            ),
        ),
        (
            "not yet valid",
            format!(
                "alice@example.com valid-after=\"{}Z\" {k}",
                ssh_time(at + day, false)
            ),
        ),
        (
            "within validity",
            format!(
                "alice@example.com valid-after=\"{}Z\",valid-before=\"{}Z\" {k}",
                ssh_time(at - day, false),
                ssh_time(now + 365 * day, false)
            ),
        ),
        (
            "expired since the signoff",
            format!(
                "alice@example.com valid-before=\"{}Z\" {k}",
                ssh_time(at + day, false)
            ),
        ),
        (
            "valid-before is the signoff second",
            format!(
                "alice@example.com valid-before=\"{}Z\" {k}",
                ssh_time(at, true)
            ),
        ),
        (
            "valid-after is a second late",
            format!(
                "alice@example.com valid-after=\"{}Z\" {k}",
                ssh_time(at + 1, true)
            ),
        ),
        (
            "valid-before is a second early",
            format!(
                "alice@example.com valid-before=\"{}Z\" {k}",
                ssh_time(at - 1, true)
            ),
        ),
        (
            "local time, on the second",
            format!(
                "alice@example.com valid-after=\"{}\" {k}",
                ssh_time(at + 9 * 3600, true)
            ),
        ),
        (
            "local time, a second late",
            format!(
                "alice@example.com valid-after=\"{}\" {k}",
                ssh_time(at + 9 * 3600 + 1, true)
            ),
        ),
        (
            "options in capitals",
            format!(
                "alice@example.com VALID-BEFORE=\"{}Z\" {k}",
                ssh_time(at - day, false)
            ),
        ),
        (
            "cert-authority",
            format!("alice@example.com cert-authority {k}"),
        ),
        ("another key", format!("alice@example.com {other}")),
        (
            "several lines",
            format!(
                "mallory@evil.com {other}\nalice@example.com namespaces=\"git\" {k}\n*@example.com {k}"
            ),
        ),
    ];
    let identities = ["alice@example.com", "bob@example.com", "mallory@evil.com"];
    let mut verdicts = std::collections::BTreeMap::new();
    for (i, (what, text)) in corpus.iter().enumerate() {
        let file = t.0.join(format!("allowed-{i}"));
        std::fs::write(&file, format!("{text}\n")).unwrap();
        let file = file.to_str().unwrap();
        for id in identities {
            // Times without `Z` are local: both sides run in the same (non-UTC) zone. The key
            // must have been valid at the signoff's time and still be now (ssh-keygen's
            // default verify time): a valid-before judged only at the signoff's time, which
            // the signer writes, let an expired key sign a backdated signoff.
            let keygen_at = |time: Option<i64>| {
                let mut args = vec![
                    "-Y".to_string(),
                    "verify".into(),
                    "-f".into(),
                    file.into(),
                    "-I".into(),
                    id.into(),
                    "-n".into(),
                    "mlsdm-audit".into(),
                    "-s".into(),
                    sig.to_str().unwrap().into(),
                ];
                if let Some(t) = time {
                    args.push(format!("-Overify-time={}Z", ssh_time(t, true)));
                }
                Command::new("ssh-keygen")
                    .args(&args)
                    .stdin(std::fs::File::open(&payload).unwrap())
                    .env("TZ", "JST-9")
                    .output()
                    .unwrap()
                    .status
                    .success()
            };
            let theirs = keygen_at(Some(at)) && keygen_at(None);
            let ours = support::cmd()
                .args(["verify", &r, "--allowed-signers", file, "--principal", id])
                .env("TZ", "JST-9")
                .run();
            assert_ne!(ours.status.code(), Some(2), "{what}: {ours:?}");
            let ours_ok = ours.status.success();
            assert_eq!(
                ours_ok,
                theirs,
                "{what} as {id}: ours {}, ssh-keygen {theirs}\n{text}",
                String::from_utf8_lossy(&ours.stdout),
            );
            verdicts.insert((*what, id), ours_ok);
        }
    }
    // The corpus exercises both verdicts where it matters.
    for (what, id, expected) in [
        ("exact principal", "alice@example.com", true),
        ("exact principal", "bob@example.com", false),
        ("wildcard", "bob@example.com", true),
        ("wildcard", "mallory@evil.com", false),
        ("negation first", "alice@example.com", false),
        ("negation first", "bob@example.com", true),
        ("negation only", "alice@example.com", false),
        ("namespace list", "alice@example.com", true),
        ("namespace negated", "alice@example.com", false),
        ("expired", "alice@example.com", false),
        ("within validity", "alice@example.com", true),
        // Valid when it signed, expired since.
        (
            "valid-before is the signoff second",
            "alice@example.com",
            false,
        ),
        ("expired since the signoff", "alice@example.com", false),
        ("valid-after is a second late", "alice@example.com", false),
        ("local time, on the second", "alice@example.com", true),
        ("local time, a second late", "alice@example.com", false),
        ("cert-authority", "alice@example.com", false),
        ("several lines", "alice@example.com", true),
    ] {
        assert_eq!(verdicts[&(what, id)], expected, "{what} as {id}");
    }
    // Without --principal, each line's own principals; refusals say why.
    let check = |what: &str, expect: &str| {
        let i = corpus.iter().position(|(w, _)| *w == what).unwrap();
        let file = t.0.join(format!("allowed-{i}"));
        let out = audit(&["verify", &r, "--allowed-signers", file.to_str().unwrap()]);
        let text = String::from_utf8_lossy(&out.stdout).into_owned();
        assert!(text.contains(expect), "{what}: {text}");
        out.status.success()
    };
    assert!(check(
        "wildcard",
        "#1 Security Team | Alice | *@example.com |"
    ));
    assert!(!check(
        "negation only",
        "NOT ALLOWED: line 1: the principals \"!alice@example.com\" match no identity"
    ));
    assert!(!check("expired", "the key had expired at the signoff time"));
    assert!(!check(
        "expired since the signoff",
        "NOT ALLOWED: line 1: the key has expired (valid-before"
    ));
    assert!(!check(
        "not yet valid",
        "the key was not yet valid at the signoff time"
    ));
    assert!(!check(
        "other namespace",
        "namespace mlsdm-audit is not in namespaces=\"git\""
    ));
    assert!(!check(
        "cert-authority",
        "lists the key as a cert-authority"
    ));
    assert!(!check("another key", "UNKNOWN SIGNER"));
    assert!(check(
        "several lines",
        "#1 Security Team | Alice | *@example.com |"
    ));
    // A line ssh-keygen would reject stops verify, naming it.
    for bad in [
        format!("alice@example.com namespaces=mlsdm-audit {k}"),
        format!("alice@example.com valid-after=\"yesterday\" {k}"),
        format!("alice@example.com no-such-option {k}"),
        format!("alice@example.com namespaces=\"a\",namespaces=\"b\" {k}"),
        "alice@example.com".to_string(),
    ] {
        let file = t.0.join("bad-allowed");
        std::fs::write(&file, format!("# trusted\n{bad}\n")).unwrap();
        let out = audit(&["verify", &r, "--allowed-signers", file.to_str().unwrap()]);
        let err = String::from_utf8_lossy(&out.stderr);
        assert_eq!(out.status.code(), Some(2), "{bad}: {err}");
        assert!(err.contains("bad-allowed:2:"), "{bad}: {err}");
    }
}

#[test]
fn rsa_and_ecdsa_keys_sign_and_ssh_keygen_verifies() {
    let t = tmp("keytypes");
    for (name, kind, bits) in [
        ("rsa2048", "rsa", "2048"),
        ("rsa3072", "rsa", "3072"),
        ("p256", "ecdsa", "256"),
        ("p384", "ecdsa", "384"),
        ("p521", "ecdsa", "521"),
        ("ed", "ed25519", ""),
    ] {
        let path = t.0.join(name);
        let path = path.to_str().unwrap();
        let mut args = vec!["-q", "-t", kind, "-N", "", "-C", name, "-f", path];
        if !bits.is_empty() {
            args.extend(["-b", bits]);
        }
        let r = report(&t.0);
        // ssh-key 0.6 cannot read an ECDSA key whose private scalar has a leading zero byte
        // (about 1 in 256 keys; the tool says so and suggests a new key): make another one.
        for attempt in 0..20 {
            let _ = std::fs::remove_file(path);
            let _ = std::fs::remove_file(format!("{path}.pub"));
            let made = ssh_keygen(&args, None);
            assert!(made.status.success(), "{name}: {made:?}");
            let signed = audit(&[
                "signoff",
                &r,
                "--role",
                "Product Owner",
                "--name",
                "Erin",
                "--key",
                path,
            ]);
            let err = String::from_utf8_lossy(&signed.stderr);
            if kind == "ecdsa" && err.contains("leading zero") && attempt < 19 {
                continue;
            }
            ok(&signed);
            break;
        }
        let allowed = t.0.join("allowed");
        std::fs::write(&allowed, format!("erin@example.com {}\n", pubkey(path))).unwrap();
        let text = ok(&audit(&[
            "verify",
            &r,
            "--allowed-signers",
            allowed.to_str().unwrap(),
        ]));
        assert!(text.contains("| valid"), "{name}: {text}");
        let payload = t.0.join("payload");
        std::fs::write(&payload, audit(&["verify", &r, "--payload", "1"]).stdout).unwrap();
        let sig = t.0.join("payload.sig");
        let ours = json(&r)["signoffs"][0]["signature"]
            .as_str()
            .unwrap()
            .to_string();
        std::fs::write(&sig, &ours).unwrap();
        let verify = |sig: &Path| {
            ssh_keygen(
                &[
                    "-Y",
                    "verify",
                    "-f",
                    allowed.to_str().unwrap(),
                    "-I",
                    "erin@example.com",
                    "-n",
                    "mlsdm-audit",
                    "-s",
                    sig.to_str().unwrap(),
                ],
                Some(&payload),
            )
        };
        let v = verify(&sig);
        assert!(
            v.status.success(),
            "{name}: ssh-keygen rejected our signature: {}",
            String::from_utf8_lossy(&v.stderr)
        );
        if kind == "rsa" {
            // rsa-sha2-512, as ssh-keygen signs, never the SHA-1 ssh-rsa.
            assert!(
                String::from_utf8_lossy(&v.stdout).contains("with RSA key"),
                "{v:?}"
            );
            let pem = ssh_key::SshSig::from_pem(&ours).unwrap();
            assert_eq!(pem.algorithm().as_str(), "rsa-sha2-512");
        }
        // And we verify ssh-keygen's own signature with the same key.
        std::fs::remove_file(&sig).unwrap();
        let s = ssh_keygen(
            &[
                "-Y",
                "sign",
                "-q",
                "-n",
                "mlsdm-audit",
                "-f",
                path,
                payload.to_str().unwrap(),
            ],
            None,
        );
        assert!(s.status.success(), "{name}: {s:?}");
        let mut v = json(&r);
        v["signoffs"][0]["signature"] = std::fs::read_to_string(&sig).unwrap().into();
        std::fs::write(&r, serde_json::to_string_pretty(&v).unwrap()).unwrap();
        let text = ok(&audit(&[
            "verify",
            &r,
            "--allowed-signers",
            allowed.to_str().unwrap(),
        ]));
        assert!(text.contains("| valid"), "{name}: {text}");
    }
    // Key types that cannot sign say which can.
    for (name, kind, bits) in [("rsa1024", "rsa", "1024"), ("dsa", "dsa", "1024")] {
        let path = t.0.join(name);
        let path = path.to_str().unwrap();
        if !ssh_keygen(&["-q", "-t", kind, "-b", bits, "-N", "", "-f", path], None)
            .status
            .success()
        {
            continue; // this ssh-keygen no longer makes such keys
        }
        let r = report(&t.0);
        let out = audit(&[
            "signoff",
            &r,
            "--role",
            "Product Owner",
            "--name",
            "Erin",
            "--key",
            path,
        ]);
        let err = String::from_utf8_lossy(&out.stderr);
        assert_eq!(out.status.code(), Some(2), "{name}: {err}");
        assert!(
            err.contains(
                "ssh-ed25519, ecdsa-sha2-nistp256/384/521, or ssh-rsa of 2048 bits or more"
            ),
            "{name}: {err}"
        );
    }
}

#[test]
fn empty_or_malformed_signatures_are_named_by_signoff() {
    let t = tmp("malformed");
    let r = report(&t.0);
    let key = keygen(&t.0, "alice", "ed25519", "");
    sign(&r, "Product Owner", "Alice", &key);
    sign(&r, "Security Team", "Alice", &key);
    let allowed = allowed_file(&t.0, &[("alice@example.com", &key)]);
    let cases: Vec<(&str, Tamper, &str)> = vec![
        (
            "empty signature",
            Box::new(|v| v["signoffs"][1]["signature"] = "".into()),
            "signoff #2: empty or malformed signature (it is empty or missing)",
        ),
        (
            "blank signature",
            Box::new(|v| v["signoffs"][1]["signature"] = " \n".into()),
            "signoff #2: empty or malformed signature (it is empty or missing)",
        ),
        (
            "no signature",
            Box::new(|v| {
                v["signoffs"][1]
                    .as_object_mut()
                    .unwrap()
                    .remove("signature");
            }),
            "signoff #2: empty or malformed signature (it is empty or missing)",
        ),
        (
            "garbage signature",
            Box::new(|v| {
                v["signoffs"][1]["signature"] =
                    "-----BEGIN SSH SIGNATURE-----\nnot base64!\n-----END SSH SIGNATURE-----\n"
                        .into();
            }),
            "signoff #2: empty or malformed signature (not an armored SSH signature",
        ),
        (
            "empty key",
            Box::new(|v| v["signoffs"][1]["publicKey"] = "".into()),
            "signoff #2: empty or malformed publicKey (it is empty or missing)",
        ),
    ];
    for (what, f, expect) in cases {
        let out = tampered(&t, &r, &allowed, f);
        let text = String::from_utf8_lossy(&out.stdout);
        assert_eq!(out.status.code(), Some(1), "{what}: {text}");
        assert!(
            text.contains("#1 Product Owner | Alice | alice@example.com |")
                && text.contains("| valid"),
            "{what}: the other signoff still verifies: {text}"
        );
        assert!(
            text.contains(&format!("INVALID: {expect}")),
            "{what}: {text}"
        );
        assert!(!text.contains("PEM preamble"), "{what}: {text}");
    }
    let out = tampered(&t, &r, &allowed, |v| v["signoffs"] = "x".into());
    assert_eq!(out.status.code(), Some(2));
    assert!(String::from_utf8_lossy(&out.stderr).contains("\"signoffs\" is not a list"));
}

/// Review finding: `verify` checked the signatures and never the report they vouch for, so a
/// signed report whose own gate failed verified with exit 0, and a deploy step that ran only
/// `verify` shipped it. Valid signatures on a failing report exit 1; on one that could not be
/// decided, 3; the line says which.
#[test]
fn valid_signatures_do_not_make_a_failing_report_pass() {
    let t = tmp("signed-failure");
    let key = keygen(&t.0, "alice", "ed25519", "");
    let allowed = allowed_file(&t.0, &[("alice@example.com", &key)]);
    let failing = defective_report(&t.0, "failing.json");
    let r = failing.as_str();
    sign(r, "Security Team", "Alice", &key);
    let out = audit(&[
        "verify",
        r,
        "--allowed-signers",
        &allowed,
        "--principal",
        "alice@example.com",
        "--fail-on-unsigned",
        "Security Team",
    ]);
    let text = String::from_utf8_lossy(&out.stdout);
    assert_eq!(out.status.code(), Some(1), "{text}");
    assert!(text.contains("| valid"), "{text}");
    assert!(
        text.contains("the report does not pass its own gate: FAIL: "),
        "{text}"
    );
    // The passing report still verifies with exit 0.
    let passing = report(&t.0);
    sign(&passing, "Security Team", "Alice", &key);
    ok(&audit(&[
        "verify",
        &passing,
        "--allowed-signers",
        &allowed,
        "--principal",
        "alice@example.com",
    ]));
}

/// Review 29: `report --merge` dropped its inputs' signatures without checking them, so a signed
/// cluster report changed after signing (its failure edited away) was laundered into a fleet
/// report that could be signed anew and verified. A signature that does not verify stops the
/// merge (exit 2).
#[test]
fn a_merge_refuses_a_signed_report_changed_after_signing() {
    let t = tmp("merge-signed");
    let r = report(&t.0);
    let mut v = json(&r);
    v["target"]["mode"] = "cluster".into();
    v["target"]["cluster"] = serde_json::json!({"server": "https://eu.example:6443", "namespace": "mlsdm-production", "requests": 40});
    std::fs::write(&r, v.to_string()).unwrap();
    let alice = keygen(&t.0, "alice", "ed25519", "");
    sign(&r, "Security Team", "Alice", &alice);
    let merged = audit(&["report", "--merge", &r, "-o", "json"]);
    assert_ne!(
        merged.status.code(),
        Some(2),
        "{}",
        String::from_utf8_lossy(&merged.stderr)
    );
    let mut v = json(&r);
    v["results"][0]["message"] = "edited after signing".into();
    std::fs::write(&r, v.to_string()).unwrap();
    let out = audit(&["report", "--merge", &r, "-o", "json"]);
    assert_eq!(out.status.code(), Some(2));
    assert!(
        String::from_utf8_lossy(&out.stderr)
            .contains("its signoff #1 (Security Team) does not verify"),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
}

/// Review 29: a role is the signer's own claim, and any allowed key counted for any role (a
/// developer's key signed "Security Team" and `--fail-on-unsigned "Security Team"` held).
/// `--role-signer ROLE=IDENTITY,...` binds a role to the identities the allowed signers file
/// gives keys.
#[test]
fn a_role_bound_to_its_signers_refuses_anyone_else() {
    let keys = tmp("role-keys");
    let carol = keygen(&keys.0, "carol", "ed25519", "");
    let bob = keygen(&keys.0, "bob", "ed25519", "");
    let allowed = allowed_file(
        &keys.0,
        &[
            ("carol@dev.example.com", &carol),
            ("bob@sec.example.com", &bob),
        ],
    );
    // A report signed as Security Team by `key`, verified with `extra`.
    let signed_by = |name: &str, key: &str, extra: &[&str]| {
        let t = tmp(&format!("role-{name}"));
        let r = report(&t.0);
        sign(&r, "Security Team", name, key);
        let mut args = vec![
            "verify",
            r.as_str(),
            "--allowed-signers",
            allowed.as_str(),
            "--fail-on-unsigned",
            "Security Team",
        ];
        args.extend_from_slice(extra);
        audit(&args)
    };
    let bound = ["--role-signer", "Security Team=bob@sec.example.com"];
    assert_eq!(signed_by("Carol", &carol, &[]).status.code(), Some(0));
    let out = signed_by("Carol", &carol, &bound);
    assert_eq!(out.status.code(), Some(1));
    assert!(
        String::from_utf8_lossy(&out.stdout)
            .contains("role \"Security Team\" may be signed only by bob@sec.example.com"),
        "{}",
        String::from_utf8_lossy(&out.stdout)
    );
    ok(&signed_by("Bob", &bob, &bound));
    let out = audit(&[
        "verify",
        "x.json",
        "--allowed-signers",
        &allowed,
        "--role-signer",
        "Security Team",
    ]);
    assert_eq!(out.status.code(), Some(2));
}

/// Review finding: signers were told apart by principal alone, and with `--role-signer` the
/// principal is the identity the role asks for. One key listed for two identities
/// (`alice,bob <key>`, as ssh-keygen's format allows) signed both roles and counted as two
/// signers. The same key is the same signer.
#[test]
fn one_key_under_two_identities_is_one_signer() {
    let keys = tmp("one-key-two-names");
    let alice = keygen(&keys.0, "alice", "ed25519", "");
    let allowed = format!("{}/allowed_signers", keys.0.display());
    std::fs::write(
        &allowed,
        format!("alice@x.example.com,bob@x.example.com {}\n", pubkey(&alice)),
    )
    .unwrap();
    let t = tmp("one-key-two-roles");
    let r = report(&t.0);
    sign(&r, "Security Team", "Alice", &alice);
    sign(&r, "DevOps/SRE Lead", "Bob", &alice);
    let out = audit(&[
        "verify",
        &r,
        "--allowed-signers",
        &allowed,
        "--fail-on-unsigned",
        "Security Team,DevOps/SRE Lead",
        "--role-signer",
        "Security Team=alice@x.example.com",
        "--role-signer",
        "DevOps/SRE Lead=bob@x.example.com",
    ]);
    assert_eq!(
        out.status.code(),
        Some(1),
        "{}",
        String::from_utf8_lossy(&out.stdout)
    );
    assert!(
        String::from_utf8_lossy(&out.stdout).contains("each role needs a signer of its own"),
        "{}",
        String::from_utf8_lossy(&out.stdout)
    );
}

/// Review finding: `report --merge` refuses a signed input whose signature no longer verifies,
/// but an input with its signatures taken off (and edited) went in unremarked. The merged report
/// names each input, its SHA-256 and whether it was signed, for whoever signs the fleet report.
#[test]
fn a_merge_says_which_inputs_were_signed() {
    let t = tmp("merge-inputs");
    let r = report(&t.0);
    let mut v = json(&r);
    v["target"]["mode"] = "cluster".into();
    v["target"]["cluster"] = serde_json::json!({"server": "https://eu.example:6443", "namespace": "mlsdm-production", "requests": 40});
    std::fs::write(&r, v.to_string()).unwrap();
    let merged_notes = |path: &str| -> Vec<String> {
        let out = audit(&["report", "--merge", path, "-o", "json"]);
        let merged: serde_json::Value = serde_json::from_slice(&out.stdout)
            .unwrap_or_else(|e| panic!("{e}: {}", String::from_utf8_lossy(&out.stderr)));
        merged["notes"]
            .as_array()
            .unwrap()
            .iter()
            .filter(|n| n["kind"] == "merged-input")
            .map(|n| n["message"].as_str().unwrap().to_string())
            .collect()
    };
    let unsigned = merged_notes(&r);
    assert_eq!(unsigned.len(), 1, "{unsigned:?}");
    assert!(
        unsigned[0].contains("not signed") && unsigned[0].contains("sha256 "),
        "{unsigned:?}"
    );
    let alice = keygen(&t.0, "alice", "ed25519", "");
    sign(&r, "Security Team", "Alice", &alice);
    let signed = merged_notes(&r);
    assert!(
        signed[0].contains("\"Security Team\" claimed by key SHA256:")
            && signed[0].contains("NOT checked against allowed signers"),
        "{signed:?}"
    );
}

/// `ssh-keygen -lf KEY.pub`'s SHA-256 fingerprint of a key.
fn fingerprint(key: &str) -> String {
    let out = ssh_keygen(&["-l", "-E", "sha256", "-f", &format!("{key}.pub")], None);
    assert!(out.status.success(), "{out:?}");
    String::from_utf8_lossy(&out.stdout)
        .split_whitespace()
        .nth(1)
        .unwrap()
        .to_string()
}

/// Review finding: `report --merge` checks its inputs' signatures with no allowed signers, so a
/// throwaway key's signature (UNTRUSTED to `verify`) was noted as "signed as Security Team
/// (signatures intact ...)" in the merged report. The note names the key, says it was not
/// checked, and nothing in the merged report counts it as the role's sign-off.
#[test]
fn a_merge_does_not_call_an_unchecked_signature_a_role_sign_off() {
    let t = tmp("merge-throwaway");
    let r = report(&t.0);
    let mut v = json(&r);
    v["target"]["mode"] = "cluster".into();
    v["target"]["cluster"] = serde_json::json!({"server": "https://eu.example:6443", "namespace": "mlsdm-production", "requests": 40});
    std::fs::write(&r, v.to_string()).unwrap();
    let throwaway = keygen(&t.0, "throwaway", "ed25519", "");
    sign(&r, "Security Team", "Mallory", &throwaway);
    let out = audit(&["report", "--merge", &r, "-o", "json"]);
    let merged: serde_json::Value = serde_json::from_slice(&out.stdout)
        .unwrap_or_else(|e| panic!("{e}: {}", String::from_utf8_lossy(&out.stderr)));
    let text = merged.to_string();
    assert!(!text.contains("signed as"), "{text}");
    assert!(!text.contains("signatures intact"), "{text}");
    let notes: Vec<&str> = merged["notes"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|n| n["kind"] == "merged-input")
        .map(|n| n["message"].as_str().unwrap())
        .collect();
    assert_eq!(notes.len(), 1, "{notes:?}");
    assert!(
        notes[0].contains(&format!(
            "\"Security Team\" claimed by key {}",
            fingerprint(&throwaway)
        )) && notes[0].contains("NOT checked against allowed signers")
            && notes[0].contains("no role counts as signed"),
        "{notes:?}"
    );
    assert!(
        merged
            .get("signoffs")
            .is_none_or(|s| s.as_array().is_some_and(Vec::is_empty)),
        "{text}"
    );
    let md = ok(&audit(&["report", "--merge", &r, "-o", "markdown"]));
    assert!(md.contains("| Security Team | | | |"), "{md}");
}

/// Review finding: `valid-before` was judged at the signoff's time, which the signer writes:
/// with `SOURCE_DATE_EPOCH` dating both the audit and the signoff before the key's expiry, an
/// expired key signed today's audit and `verify` passed it (exit 0). The key must not have
/// expired by the time of verification, as `ssh-keygen -Y verify` judges by default; a report
/// whose generatedAt is not RFC 3339 (the guard on the signoff's time skipped it) is refused.
#[test]
fn an_expired_key_does_not_verify_a_backdated_audit() {
    let t = tmp("expired-backdated");
    let alice = keygen(&t.0, "alice", "ed25519", "");
    let allowed = t.0.join("allowed");
    std::fs::write(
        &allowed,
        format!(
            "alice@example.com valid-before=\"20260101Z\" {}\n",
            pubkey(&alice)
        ),
    )
    .unwrap();
    let allowed = allowed.to_str().unwrap();
    let sde = t.0.join("sde.json");
    let sde = sde.to_str().unwrap();
    let out = bin()
        .env("SOURCE_DATE_EPOCH", "1735689600")
        .args([
            "check",
            "-f",
            "fixtures/compliant",
            "-o",
            "json",
            "--output-file",
            sde,
        ])
        .run();
    assert_eq!(
        out.status.code(),
        Some(0),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    sign_at(sde, "Security Team", "Alice", &alice, 1_735_689_600);
    let out = audit(&[
        "verify",
        sde,
        "--allowed-signers",
        allowed,
        "--fail-on-unsigned",
        "Security Team",
    ]);
    let text = String::from_utf8_lossy(&out.stdout);
    assert_eq!(out.status.code(), Some(1), "{text}");
    assert!(
        text.contains(
            "NOT ALLOWED: line 1: the key has expired (valid-before 2026-01-01T00:00:00+00:00)"
        ),
        "{text}"
    );
    assert!(!text.contains("| valid"), "{text}");

    // A generatedAt that is not RFC 3339 holds the signoff's time to nothing: refused when
    // signing, and INVALID when a signature over it is made by other means (ssh-keygen here).
    let current = allowed_file(&t.0, &[("alice@example.com", &alice)]);
    let r = report(&t.0);
    sign(&r, "Security Team", "Alice", &alice);
    ok(&audit(&["verify", &r, "--allowed-signers", &current]));
    for (what, edit) in [
        (
            "not RFC 3339",
            Box::new(|v: &mut serde_json::Value| v["generatedAt"] = "yesterday".into()) as Tamper,
        ),
        (
            "missing",
            Box::new(|v: &mut serde_json::Value| {
                v.as_object_mut().unwrap().remove("generatedAt");
            }),
        ),
    ] {
        let mut v = json(&r);
        edit(&mut v);
        let edited = t.0.join("edited.json");
        std::fs::write(&edited, serde_json::to_string_pretty(&v).unwrap()).unwrap();
        let edited = edited.to_str().unwrap();
        let out = audit(&[
            "signoff",
            edited,
            "--role",
            "Product Owner",
            "--name",
            "Alice",
            "--key",
            &alice,
        ]);
        let err = String::from_utf8_lossy(&out.stderr);
        assert_eq!(out.status.code(), Some(2), "{what}: {err}");
        assert!(
            err.contains("cannot sign now: the report's generatedAt"),
            "{what}: {err}"
        );
        v["signoffs"][0]["signature"] = ssh_keygen_signs_the_first(&t.0, edited, &alice).into();
        std::fs::write(edited, serde_json::to_string_pretty(&v).unwrap()).unwrap();
        let out = audit(&["verify", edited, "--allowed-signers", &current]);
        let text = String::from_utf8_lossy(&out.stdout);
        assert_ne!(out.status.code(), Some(0), "{what}: {text}");
        assert!(
            text.contains("INVALID: the report's generatedAt (")
                && text.contains("is missing or not RFC 3339"),
            "{what}: {text}"
        );
    }
}

/// Review finding: with `--role-signer`, `--principal` was dropped: a signoff of the role by
/// another of its signers verified though the verify asked for one identity. Both hold now.
#[test]
fn a_role_signer_binding_keeps_the_principal() {
    let t = tmp("role-and-principal");
    let carol = keygen(&t.0, "carol", "ed25519", "");
    let bob = keygen(&t.0, "bob", "ed25519", "");
    let allowed = allowed_file(
        &t.0,
        &[
            ("carol@sec.example.com", &carol),
            ("bob@sec.example.com", &bob),
        ],
    );
    let r = report(&t.0);
    sign(&r, "Security Team", "Bob", &bob);
    let verify = |principal: &str, identities: &str| {
        let binding = format!("Security Team={identities}");
        audit(&[
            "verify",
            &r,
            "--allowed-signers",
            &allowed,
            "--principal",
            principal,
            "--role-signer",
            &binding,
            "--fail-on-unsigned",
            "Security Team",
        ])
    };
    // The principal is not one of the role's signers.
    let out = verify("carol@sec.example.com", "bob@sec.example.com");
    let text = String::from_utf8_lossy(&out.stdout);
    assert_eq!(out.status.code(), Some(1), "{text}");
    assert!(
        text.contains("--principal \"carol@sec.example.com\" is not one of them"),
        "{text}"
    );
    // The principal is one of them, but the key is another signer's.
    let out = verify(
        "carol@sec.example.com",
        "bob@sec.example.com,carol@sec.example.com",
    );
    let text = String::from_utf8_lossy(&out.stdout);
    assert_eq!(out.status.code(), Some(1), "{text}");
    assert!(
        text.contains("NOT ALLOWED: role \"Security Team\" may be signed only by"),
        "{text}"
    );
    // Both hold.
    let text = ok(&verify(
        "bob@sec.example.com",
        "bob@sec.example.com,carol@sec.example.com",
    ));
    assert!(
        text.contains("#1 Security Team | Bob | bob@sec.example.com |") && text.contains("| valid"),
        "{text}"
    );
}

/// Review finding: the allowed signers file was read whoever could write it, where the config,
/// waivers and attestations files are refused when group or others may write them.
#[test]
fn an_allowed_signers_file_others_may_write_is_refused() {
    use std::os::unix::fs::PermissionsExt as _;
    let t = tmp("allowed-writable");
    let alice = keygen(&t.0, "alice", "ed25519", "");
    let allowed = allowed_file(&t.0, &[("alice@example.com", &alice)]);
    let r = report(&t.0);
    sign(&r, "Security Team", "Alice", &alice);
    for mode in [0o666, 0o620] {
        std::fs::set_permissions(&allowed, std::fs::Permissions::from_mode(mode)).unwrap();
        let out = audit(&["verify", &r, "--allowed-signers", &allowed]);
        let err = String::from_utf8_lossy(&out.stderr);
        assert_eq!(out.status.code(), Some(2), "{mode:o}: {err}");
        assert!(
            err.contains(&format!("{allowed}: refusing the allowed signers file"))
                && err.contains("group or others may write it")
                && err.contains("it decides whose signatures count"),
            "{mode:o}: {err}"
        );
    }
    std::fs::set_permissions(&allowed, std::fs::Permissions::from_mode(0o644)).unwrap();
    ok(&audit(&["verify", &r, "--allowed-signers", &allowed]));
}

/// Review finding: `verify --payload N` prints the signed bytes and checks nothing, yet took the
/// trust flags and exited 0, as if they had been checked. Together they are a usage error.
#[test]
fn payload_with_trust_flags_is_a_usage_error() {
    let t = tmp("payload-flags");
    let alice = keygen(&t.0, "alice", "ed25519", "");
    let allowed = allowed_file(&t.0, &[("alice@example.com", &alice)]);
    let r = report(&t.0);
    sign(&r, "Security Team", "Alice", &alice);
    ok(&audit(&["verify", &r, "--payload", "1"]));
    for extra in [
        vec!["--allowed-signers", allowed.as_str()],
        vec![
            "--allowed-signers",
            allowed.as_str(),
            "--principal",
            "alice@example.com",
        ],
        vec!["--fail-on-unsigned", "Security Team"],
        vec![
            "--allowed-signers",
            allowed.as_str(),
            "--role-signer",
            "Security Team=alice@example.com",
        ],
        vec!["--allow-narrowed"],
    ] {
        let mut args = vec!["verify", r.as_str(), "--payload", "1"];
        args.extend_from_slice(&extra);
        let out = audit(&args);
        let err = String::from_utf8_lossy(&out.stderr);
        assert_eq!(out.status.code(), Some(2), "{extra:?}: {err}");
        assert!(err.contains("cannot be used with"), "{extra:?}: {err}");
        assert!(out.stdout.is_empty(), "{extra:?}");
    }
}

/// Review finding: `verify` read the report as a `serde_json::Value`, which keeps the last of
/// two equal keys, and checked the signature over that; a key added again after signing, ahead
/// of the signed one, verified, while a reader that keeps the first (and `report`, which refuses
/// duplicates) saw another report. A duplicate key anywhere is refused, naming the file.
#[test]
fn a_duplicate_key_added_after_signing_does_not_verify() {
    let t = tmp("duplicate-key");
    let alice = keygen(&t.0, "alice", "ed25519", "");
    let allowed = allowed_file(&t.0, &[("alice@example.com", &alice)]);
    let r = report(&t.0);
    sign(&r, "Security Team", "Alice", &alice);
    ok(&audit(&["verify", &r, "--allowed-signers", &allowed]));
    let text = std::fs::read_to_string(&r).unwrap();
    for (what, from, to, key) in [
        (
            "top level",
            "\"results\": [",
            "\"results\": [], \"results\": [",
            "results",
        ),
        (
            "nested",
            "\"summary\": {",
            "\"summary\": {\"fail\": 7, ",
            "fail",
        ),
    ] {
        assert!(text.contains(from), "{what}");
        let edited = t.0.join("edited.json");
        std::fs::write(&edited, text.replacen(from, to, 1)).unwrap();
        let edited = edited.to_str().unwrap();
        for args in [
            vec!["verify", edited, "--allowed-signers", allowed.as_str()],
            vec![
                "signoff",
                edited,
                "--role",
                "Product Owner",
                "--name",
                "Alice",
                "--key",
                alice.as_str(),
            ],
        ] {
            let out = audit(&args);
            let err = String::from_utf8_lossy(&out.stderr);
            assert_eq!(out.status.code(), Some(2), "{what} {}: {err}", args[0]);
            assert!(
                err.contains(&format!("{edited}:"))
                    && err.contains(&format!("duplicate key {key:?}")),
                "{what} {}: {err}",
                args[0]
            );
        }
    }
}
