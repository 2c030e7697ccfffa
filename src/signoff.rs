//! Reviewer sign-off: standard SSH signatures (SSHSIG, namespace `mlsdm-audit`) over the canonical
//! bytes of a report, so reviewers sign with the keys they already have and anyone can check a
//! signature with `ssh-keygen -Y verify`.
//!
//! What signoff N covers is the RFC 8785 (JCS) canonical JSON of
//! `{"content": <the report without "signoffs">, "signoff": {"name", "role", "time"}}`.
//! Reports are handled as JSON values, not re-serialized structs, so fields added by another
//! version of the tool are signed and verified as they are.

use crate::report::Signoff;
use crate::report::markdown::ROLES;
use serde_json::{Value, json};
use ssh_key::{HashAlg, LineEnding, PrivateKey, PublicKey, SshSig};
use std::fmt;
use std::path::Path;

pub const NAMESPACE: &str = "mlsdm-audit";

#[derive(Debug, thiserror::Error)]
pub enum SignoffError {
    #[error("{0}")]
    Input(String),
}

fn input(msg: impl Into<String>) -> SignoffError {
    SignoffError::Input(msg.into())
}

/// Reads a report as JSON, checking it is one of ours.
pub fn read(path: &Path) -> Result<Value, SignoffError> {
    let text = std::fs::read_to_string(path)
        .map_err(|e| input(format!("{}: cannot read: {e}", path.display())))?;
    let v: Value = serde_json::from_str(&text).map_err(|e| {
        input(format!(
            "{}:{}:{}: invalid JSON: {e}",
            path.display(),
            e.line(),
            e.column()
        ))
    })?;
    if v.get("schemaVersion").is_none() || !v.get("results").is_some_and(Value::is_array) {
        return Err(input(format!(
            "{}: not an mlsdm-audit JSON report (no schemaVersion/results)",
            path.display()
        )));
    }
    Ok(v)
}

/// The exact bytes a signoff signs.
pub fn payload(report: &Value, role: &str, name: &str, time: &str) -> Vec<u8> {
    let mut content = report.clone();
    if let Some(map) = content.as_object_mut() {
        map.remove("signoffs");
    }
    let doc = json!({"content": content, "signoff": {"role": role, "name": name, "time": time}});
    serde_json_canonicalizer::to_vec(&doc).unwrap_or_default()
}

fn load_key(path: &Path) -> Result<PrivateKey, SignoffError> {
    let text = std::fs::read_to_string(path)
        .map_err(|e| input(format!("{}: cannot read the key: {e}", path.display())))?;
    let key = PrivateKey::from_openssh(&text).map_err(|e| {
        input(format!(
            "{}: not an OpenSSH private key: {e}",
            path.display()
        ))
    })?;
    if !key.is_encrypted() {
        return Ok(key);
    }
    let passphrase = if let Ok(p) = std::env::var("MLSDM_AUDIT_KEY_PASSPHRASE") {
        p
    } else if std::io::IsTerminal::is_terminal(&std::io::stdin()) {
        rpassword::prompt_password(format!("Passphrase for {}: ", path.display()))
            .map_err(|e| input(format!("cannot read the passphrase: {e}")))?
    } else {
        return Err(input(format!(
            "{} is encrypted and there is no terminal to ask for its passphrase: run signoff in a terminal or set MLSDM_AUDIT_KEY_PASSPHRASE (signing through ssh-agent is not supported)",
            path.display()
        )));
    };
    key.decrypt(passphrase.as_bytes())
        .map_err(|_| input(format!("{}: wrong passphrase", path.display())))
}

/// Signs `report` as `role`/`name` and appends the signoff; returns the new entry.
pub fn sign(
    report: &mut Value,
    role: &str,
    name: &str,
    key_path: &Path,
    extra_roles: &[String],
    time: &str,
) -> Result<Signoff, SignoffError> {
    if !ROLES.contains(&role) && !extra_roles.iter().any(|r| r == role) {
        return Err(input(format!(
            "unknown role {role:?}: use one of {} (or add it with --extra-role)",
            ROLES.join(", ")
        )));
    }
    if name.trim().is_empty() {
        return Err(input("--name must not be empty"));
    }
    let key = load_key(key_path)?;
    let message = payload(report, role, name, time);
    let sig = key
        .sign(NAMESPACE, HashAlg::Sha512, &message)
        .map_err(|e| input(format!("cannot sign with {}: {e}", key_path.display())))?;
    let entry = Signoff {
        role: role.to_string(),
        name: name.to_string(),
        time: time.to_string(),
        public_key: key
            .public_key()
            .to_openssh()
            .map_err(|e| input(e.to_string()))?,
        signature: sig
            .to_pem(LineEnding::LF)
            .map_err(|e| input(e.to_string()))?,
    };
    let list = report
        .as_object_mut()
        .ok_or_else(|| input("report is not a JSON object"))?
        .entry("signoffs")
        .or_insert_with(|| json!([]));
    list.as_array_mut()
        .ok_or_else(|| input("signoffs is not a list"))?
        .push(serde_json::to_value(&entry).map_err(|e| input(e.to_string()))?);
    Ok(entry)
}

/// One line of an allowed signers file.
#[derive(Debug, Clone)]
pub struct AllowedSigner {
    pub principals: Vec<String>,
    pub namespaces: Option<Vec<String>>,
    pub key: PublicKey,
}

fn tokens(line: &str) -> Vec<String> {
    let mut out = Vec::new();
    let mut cur = String::new();
    let mut quoted = false;
    for c in line.chars() {
        match c {
            '"' => {
                quoted = !quoted;
                cur.push(c);
            }
            c if c.is_whitespace() && !quoted => {
                if !cur.is_empty() {
                    out.push(std::mem::take(&mut cur));
                }
            }
            c => cur.push(c),
        }
    }
    if !cur.is_empty() {
        out.push(cur);
    }
    out
}

/// Parses git's / ssh-keygen's allowed signers format: `principals [options] keytype key [comment]`.
pub fn parse_allowed_signers(path: &Path) -> Result<Vec<AllowedSigner>, SignoffError> {
    let text = std::fs::read_to_string(path)
        .map_err(|e| input(format!("{}: cannot read: {e}", path.display())))?;
    let mut out = Vec::new();
    for (n, line) in text.lines().enumerate() {
        let line = line.trim();
        if line.is_empty() || line.starts_with('#') {
            continue;
        }
        let t = tokens(line);
        let at = format!("{}:{}", path.display(), n + 1);
        let key_at = t
            .iter()
            .position(|x| x.starts_with("ssh-") || x.starts_with("ecdsa-") || x.starts_with("sk-"))
            .filter(|i| *i >= 1 && *i + 1 < t.len())
            .ok_or_else(|| input(format!("{at}: expected `principals [options] keytype key`")))?;
        let key = PublicKey::from_openssh(&format!("{} {}", t[key_at], t[key_at + 1]))
            .map_err(|e| input(format!("{at}: bad key: {e}")))?;
        let principals = t[0]
            .trim_matches('"')
            .split(',')
            .map(str::to_string)
            .collect();
        let mut namespaces = None;
        for opt in t[1..key_at].iter().flat_map(|o| o.split(',')) {
            if let Some(v) = opt.strip_prefix("namespaces=") {
                namespaces = Some(v.trim_matches('"').split(',').map(str::to_string).collect());
            }
        }
        out.push(AllowedSigner {
            principals,
            namespaces,
            key,
        });
    }
    Ok(out)
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Verdict {
    Valid,
    /// The signature does not match the report's content (changed after signing) or is malformed.
    Invalid(String),
    /// Valid, but the key is not in the allowed signers file.
    UnknownSigner,
}

#[derive(Debug, Clone)]
pub struct Verification {
    pub index: usize,
    pub role: String,
    pub name: String,
    pub time: String,
    pub principal: Option<String>,
    pub verdict: Verdict,
}

impl fmt::Display for Verification {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let verdict = match &self.verdict {
            Verdict::Valid => "valid".to_string(),
            Verdict::UnknownSigner => {
                "UNKNOWN SIGNER (key not in the allowed signers file)".to_string()
            }
            Verdict::Invalid(why) => format!("INVALID: {why}"),
        };
        write!(
            f,
            "#{} {} | {} | {} | {} | {verdict}",
            self.index,
            self.role,
            self.name,
            self.principal.as_deref().unwrap_or("-"),
            self.time
        )
    }
}

fn field<'a>(entry: &'a Value, name: &str) -> &'a str {
    entry.get(name).and_then(Value::as_str).unwrap_or_default()
}

/// Checks every signoff of a report.
pub fn verify(report: &Value, allowed: Option<&[AllowedSigner]>) -> Vec<Verification> {
    let entries = report
        .get("signoffs")
        .and_then(Value::as_array)
        .cloned()
        .unwrap_or_default();
    entries
        .iter()
        .enumerate()
        .map(|(i, e)| {
            let (role, name, time) = (field(e, "role"), field(e, "name"), field(e, "time"));
            let verdict = (|| {
                let declared = PublicKey::from_openssh(field(e, "publicKey"))
                    .map_err(|err| format!("bad publicKey: {err}"))?;
                let sig = SshSig::from_pem(field(e, "signature"))
                    .map_err(|err| format!("bad signature: {err}"))?;
                if sig.public_key() != declared.key_data() {
                    return Err(
                        "the signature was made with a different key than publicKey".to_string()
                    );
                }
                if sig.namespace() != NAMESPACE {
                    return Err(format!(
                        "signature namespace is {:?}, not {NAMESPACE:?}",
                        sig.namespace()
                    ));
                }
                declared
                    .verify(NAMESPACE, &payload(report, role, name, time), &sig)
                    .map_err(|_| {
                        "the report or this signoff's role, name or time changed after signing"
                            .to_string()
                    })?;
                Ok(declared)
            })();
            let (verdict, principal) = match verdict {
                Err(why) => (Verdict::Invalid(why), None),
                Ok(key) => match allowed {
                    None => (Verdict::Valid, None),
                    Some(list) => match list.iter().find(|a| {
                        a.key.key_data() == key.key_data()
                            && a.namespaces
                                .as_ref()
                                .is_none_or(|ns| ns.iter().any(|n| n == NAMESPACE))
                    }) {
                        Some(a) => (Verdict::Valid, Some(a.principals.join(","))),
                        None => (Verdict::UnknownSigner, None),
                    },
                },
            };
            Verification {
                index: i + 1,
                role: role.to_string(),
                name: name.to_string(),
                time: time.to_string(),
                principal,
                verdict,
            }
        })
        .collect()
}
