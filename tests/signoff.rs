//! Sign-off end to end: attest, sign twice, verify, tamper, wrong key, unknown signer, and
//! interop with `ssh-keygen -Y sign` / `-Y verify` both ways.

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

fn audit(args: &[&str]) -> Output {
    Command::new(env!("CARGO_BIN_EXE_mlsdm-audit"))
        .args(args)
        .current_dir(env!("CARGO_MANIFEST_DIR"))
        .env("NO_COLOR", "1")
        .env_remove("MLSDM_AUDIT_KEY_PASSPHRASE")
        .output()
        .unwrap()
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

/// An audited report with the on-call item attested.
fn report(dir: &Path) -> String {
    let att = dir.join("attestations.yaml");
    std::fs::write(&att, "- check: manual-on-call-rotation-established\n  by: Alice <alice@example.com>\n  date: 2026-11-20\n  evidence: https://wiki.example.com/oncall\n").unwrap();
    let report = dir.join("report.json");
    let out = audit(&[
        "check",
        "--manifests",
        "fixtures/compliant",
        "--attestations",
        att.to_str().unwrap(),
        "--format",
        "json",
        "--output",
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
    ok(&audit(&[
        "signoff",
        &r,
        "--role",
        "DevOps/SRE Lead",
        "--name",
        "Alice",
        "--key",
        &alice,
    ]));
    ok(&audit(&[
        "signoff",
        &r,
        "--role",
        "Security Team",
        "--name",
        "Bob",
        "--key",
        &bob,
    ]));
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
        "--fail-on-unsigned",
        "DevOps/SRE Lead,Security Team",
    ]));

    // Re-rendering a signed report shows the sign-off table.
    let md = ok(&audit(&["report", &r, "--format", "markdown"]));
    assert!(md.contains("| DevOps/SRE Lead | Alice |"), "{md}");
    assert!(md.contains("| Product Owner | | | |"));
    assert!(md.contains(
        "- [x] On-call rotation established — attested by Alice <alice@example.com> on 2026-11-20"
    ));
}

/// A change to a signed report.
type Tamper = Box<dyn Fn(&mut serde_json::Value)>;

fn tampered(t: &Tmp, r: &str, f: impl Fn(&mut serde_json::Value)) -> Output {
    let mut v = json(r);
    f(&mut v);
    let path = t.0.join("tampered.json");
    std::fs::write(&path, serde_json::to_string_pretty(&v).unwrap()).unwrap();
    audit(&["verify", path.to_str().unwrap()])
}

#[test]
fn any_change_after_signing_fails_verification() {
    let t = tmp("tamper");
    let r = report(&t.0);
    let key = keygen(&t.0, "alice", "ed25519", "");
    ok(&audit(&[
        "signoff",
        &r,
        "--role",
        "Product Owner",
        "--name",
        "Alice",
        "--key",
        &key,
    ]));
    ok(&audit(&["verify", &r]));
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
        let out = tampered(&t, &r, f);
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
    ok(&audit(&[
        "signoff",
        &r,
        "--role",
        "Product Owner",
        "--name",
        "Alice",
        "--key",
        &alice,
    ]));
    // Claiming Mallory's key for Alice's signature.
    let out = tampered(&t, &r, |v| {
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
    ok(&audit(&[
        "signoff",
        &r,
        "--role",
        "DevOps/SRE Lead",
        "--name",
        "Alice",
        "--key",
        &key,
    ]));
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

#[test]
fn we_verify_an_ssh_keygen_signature() {
    let t = tmp("interop2");
    let r = report(&t.0);
    let key = keygen(&t.0, "carol", "ed25519", "");
    // Write the entry without a signature, take its payload, and sign it with plain ssh-keygen.
    let mut v = json(&r);
    v["signoffs"] = serde_json::json!([{"role": "Security Team", "name": "Carol", "time": "2026-11-26T10:00:00Z", "publicKey": pubkey(&key), "signature": ""}]);
    std::fs::write(&r, serde_json::to_string_pretty(&v).unwrap()).unwrap();
    let payload = t.0.join("payload");
    std::fs::write(&payload, audit(&["verify", &r, "--payload", "1"]).stdout).unwrap();
    let s = ssh_keygen(
        &[
            "-Y",
            "sign",
            "-q",
            "-n",
            "mlsdm-audit",
            "-f",
            &key,
            payload.to_str().unwrap(),
        ],
        None,
    );
    assert!(s.status.success(), "{}", String::from_utf8_lossy(&s.stderr));
    v["signoffs"][0]["signature"] = std::fs::read_to_string(t.0.join("payload.sig"))
        .unwrap()
        .into();
    std::fs::write(&r, serde_json::to_string_pretty(&v).unwrap()).unwrap();
    let text = ok(&audit(&["verify", &r]));
    assert!(
        text.contains("#1 Security Team | Carol |") && text.contains("| valid"),
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
    let signed = Command::new(env!("CARGO_BIN_EXE_mlsdm-audit"))
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
        .output()
        .unwrap();
    assert!(
        signed.status.success(),
        "{}",
        String::from_utf8_lossy(&signed.stderr)
    );
    let wrong = Command::new(env!("CARGO_BIN_EXE_mlsdm-audit"))
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
        .output()
        .unwrap();
    assert_eq!(wrong.status.code(), Some(2));
    assert!(String::from_utf8_lossy(&wrong.stderr).contains("wrong passphrase"));
    ok(&audit(&["verify", &r]));
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
        err.contains("bad.yaml:1: unknown check \"no-such-check\""),
        "{err}"
    );
    assert!(
        err.contains("bad.yaml:5: image-pinned is a kubernetes check"),
        "{err}"
    );
    assert!(
        err.contains("bad.yaml:9: date \"yesterday\" is not YYYY-MM-DD"),
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
    let base = t.0.join("base.json");
    let out = audit(&[
        "check",
        "--manifests",
        "fixtures/defective",
        "--format",
        "json",
        "--output",
        base.to_str().unwrap(),
    ]);
    assert_eq!(out.status.code(), Some(1));
    let b = base.to_str().unwrap();
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
