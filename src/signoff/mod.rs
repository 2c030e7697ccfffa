//! Reviewer sign-off: standard SSH signatures (SSHSIG, namespace `mlsdm-audit`) over the canonical
//! bytes of a report, so reviewers sign with the keys they already have and anyone can check a
//! signature with `ssh-keygen -Y verify`.
//!
//! What signoff N covers is the RFC 8785 (JCS) canonical JSON of
//! `{"content": <the report without "signoffs">, "signoff": {"name", "role", "time"}}`.
//! Reports are handled as JSON values, not re-serialized structs, so fields added by another
//! version of the tool are signed and verified as they are.
//!
//! The allowed signers file and ssh's principal patterns are in `allowed_signers.rs`.

mod allowed_signers;

use crate::report::{Signoff, printable};
use allowed_signers::principals_match_someone;
pub use allowed_signers::{
    AllowedSigner, match_pattern_list, parse_allowed_signers, parse_allowed_signers_text,
};
use serde_json::{Value, json};
use ssh_key::{HashAlg, LineEnding, PrivateKey, PublicKey, SshSig};
use std::fmt;
use std::path::Path;

pub const NAMESPACE: &str = "mlsdm-audit";

#[derive(Debug, thiserror::Error)]
pub enum SignoffError {
    #[error("{0}")]
    Input(String),
    /// A report, key or allowed-signers file that is wrong at a place.
    #[error("{0}")]
    File(#[from] crate::diag::Diagnostic),
}

fn input(msg: impl Into<String>) -> SignoffError {
    SignoffError::Input(msg.into())
}

/// Reads a report as JSON, checking it is one of ours.
pub fn read(path: &Path) -> Result<Value, SignoffError> {
    let file = path.display().to_string();
    // Within the input cap, as every other file the tool reads: a report symlinked to
    // /dev/zero ran `verify` out of memory.
    let text = crate::input::read_file(path)
        .map_err(|e| crate::diag::Diagnostic::file(file.clone(), e))?;
    let v: Value = serde_json::from_str(&text)
        .map_err(|e| crate::diag::Diagnostic::json(file.clone(), "invalid JSON", &e))?;
    // A `Value` keeps the last of two equal keys, and the signature is checked over that; a
    // reader that keeps the first (or `report`, which refuses them) saw another report. A key
    // added twice after signing verified.
    serde::de::DeserializeSeed::deserialize(
        NoDuplicateKeys,
        &mut serde_json::Deserializer::from_str(&text),
    )
    .map_err(|e| crate::diag::Diagnostic::json(file.clone(), "refused", &e))?;
    if v.get("schemaVersion").is_none() || !v.get("results").is_some_and(Value::is_array) {
        return Err(crate::diag::Diagnostic::file(
            file,
            "not an mlsdm-audit JSON report (no schemaVersion/results)",
        )
        .into());
    }
    let version = v.get("schemaVersion").and_then(Value::as_str);
    if version != Some(crate::report::SCHEMA_VERSION) {
        return Err(crate::diag::Diagnostic::file(
            file,
            format!(
                "schemaVersion {}: this mlsdm-audit reads reports of schema version {:?}",
                v["schemaVersion"],
                crate::report::SCHEMA_VERSION
            ),
        )
        .into());
    }
    if v.get("signoffs").is_some_and(|s| !s.is_array()) {
        return Err(crate::diag::Diagnostic::file(file, "\"signoffs\" is not a list").into());
    }
    Ok(v)
}

/// Walks a JSON document and fails at the first object that names a key twice, at any depth.
struct NoDuplicateKeys;

impl<'de> serde::de::DeserializeSeed<'de> for NoDuplicateKeys {
    type Value = ();
    fn deserialize<D: serde::Deserializer<'de>>(self, d: D) -> Result<(), D::Error> {
        d.deserialize_any(self)
    }
}

impl<'de> serde::de::Visitor<'de> for NoDuplicateKeys {
    type Value = ();
    fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("a JSON value")
    }
    fn visit_bool<E>(self, _: bool) -> Result<(), E> {
        Ok(())
    }
    fn visit_i64<E>(self, _: i64) -> Result<(), E> {
        Ok(())
    }
    fn visit_u64<E>(self, _: u64) -> Result<(), E> {
        Ok(())
    }
    fn visit_f64<E>(self, _: f64) -> Result<(), E> {
        Ok(())
    }
    fn visit_str<E>(self, _: &str) -> Result<(), E> {
        Ok(())
    }
    fn visit_unit<E>(self) -> Result<(), E> {
        Ok(())
    }
    fn visit_seq<A: serde::de::SeqAccess<'de>>(self, mut seq: A) -> Result<(), A::Error> {
        while seq.next_element_seed(NoDuplicateKeys)?.is_some() {}
        Ok(())
    }
    fn visit_map<A: serde::de::MapAccess<'de>>(self, mut map: A) -> Result<(), A::Error> {
        let mut seen = std::collections::HashSet::new();
        while let Some(key) = map.next_key::<String>()? {
            if seen.contains(&key) {
                return Err(serde::de::Error::custom(format!(
                    "duplicate key {key:?}: mlsdm-audit never writes one, and JSON readers that keep the first or the last of the two read different reports; audit again for a report to sign"
                )));
            }
            map.next_value_seed(NoDuplicateKeys)?;
            seen.insert(key);
        }
        Ok(())
    }
}

/// The report without its `signoffs`, serialized in place (a clone of a large report's JSON
/// tree per signature made signing and verifying cost many times the report's size).
struct WithoutSignoffs<'a>(&'a Value);

impl serde::Serialize for WithoutSignoffs<'_> {
    fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        use serde::ser::SerializeMap as _;
        match self.0 {
            Value::Object(m) => {
                let mut map = s.serialize_map(None)?;
                for (k, v) in m.iter().filter(|(k, _)| k.as_str() != "signoffs") {
                    map.serialize_entry(k, v)?;
                }
                map.end()
            }
            other => other.serialize(s),
        }
    }
}

/// The canonical (RFC 8785) bytes of what every signoff of `report` signs as its content.
pub fn content_bytes(report: &Value) -> Vec<u8> {
    serde_json_canonicalizer::to_vec(&WithoutSignoffs(report)).unwrap_or_default()
}

/// The exact bytes a signoff signs: the canonical form of
/// `{"content": <report without signoffs>, "signoff": {"name", "role", "time"}}`.
pub fn payload(report: &Value, role: &str, name: &str, time: &str) -> Vec<u8> {
    payload_with(&content_bytes(report), role, name, time)
}

/// As [`payload`], from the content's canonical bytes computed once. RFC 8785 orders members by
/// name and adds no whitespace, so the document is the two members side by side ("content" sorts
/// before "signoff").
pub fn payload_with(content: &[u8], role: &str, name: &str, time: &str) -> Vec<u8> {
    let signoff =
        serde_json_canonicalizer::to_vec(&json!({"role": role, "name": name, "time": time}))
            .unwrap_or_default();
    let mut out = Vec::with_capacity(content.len() + signoff.len() + 24);
    out.extend_from_slice(b"{\"content\":");
    out.extend_from_slice(content);
    out.extend_from_slice(b",\"signoff\":");
    out.extend_from_slice(&signoff);
    out.push(b'}');
    out
}

fn load_key(path: &Path) -> Result<PrivateKey, SignoffError> {
    let text = crate::input::read_file(path)
        .map_err(|e| input(format!("the key {}: {e}", path.display())))?;
    let key = PrivateKey::from_openssh(&text).map_err(|e| {
        if e.to_string().contains("length invalid") {
            // ssh-key 0.6 wants an ECDSA private scalar at its full length; OpenSSH writes it as
            // an mpint, which drops a leading zero byte (about 1 key in 256).
            input(format!(
                "{}: cannot read this key ({e}): if it is an ECDSA key, its private scalar starts with a leading zero byte, which the SSH library this tool uses cannot read; generate a new key, or use ed25519",
                path.display()
            ))
        } else {
            input(format!("{}: not an OpenSSH private key: {e}", path.display()))
        }
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

/// The key types a signoff can be made with, for messages.
pub const SUPPORTED_KEYS: &str = "ssh-ed25519, ecdsa-sha2-nistp256/384/521, or ssh-rsa of 2048 bits or more (signed as rsa-sha2-512)";

/// An SSHSIG over `message` in our namespace, SHA-512 as ssh-keygen does.
fn sign_message(key: &PrivateKey, message: &[u8]) -> Result<SshSig, String> {
    use ssh_key::Algorithm;
    match key.algorithm() {
        Algorithm::Ed25519 | Algorithm::Ecdsa { .. } => key
            .sign(NAMESPACE, HashAlg::Sha512, message)
            .map_err(|e| e.to_string()),
        Algorithm::Rsa { .. } => {
            let ssh_key::private::KeypairData::Rsa(pair) = key.key_data() else {
                return Err("an RSA key without RSA key data".to_string());
            };
            sign_rsa(pair, key.public_key().key_data().clone(), message)
        }
        other => Err(format!(
            "{} keys cannot sign off: use {SUPPORTED_KEYS}",
            other.as_str()
        )),
    }
}

/// rsa-sha2-512 over the SSHSIG signed data. ssh-key 0.6.7 cannot do this itself: it builds the
/// private key from the primes (p, p) instead of (p, q), which fails as a "cryptographic error".
fn sign_rsa(
    pair: &ssh_key::private::RsaKeypair,
    public: ssh_key::public::KeyData,
    message: &[u8],
) -> Result<SshSig, String> {
    use rsa::signature::{SignatureEncoding, Signer};
    let big = |m: &ssh_key::Mpint| rsa::BigUint::try_from(m).map_err(|e| e.to_string());
    let private = rsa::RsaPrivateKey::from_components(
        big(&pair.public.n)?,
        big(&pair.public.e)?,
        big(&pair.private.d)?,
        vec![big(&pair.private.p)?, big(&pair.private.q)?],
    )
    .and_then(|k| k.validate().map(|()| k))
    .map_err(|e| format!("not a consistent RSA key: {e}"))?;
    let bits = rsa::traits::PublicKeyParts::size(&private) * 8;
    if bits < 2048 {
        return Err(format!(
            "RSA keys of {bits} bits are too weak to sign off: use {SUPPORTED_KEYS}"
        ));
    }
    let data =
        SshSig::signed_data(NAMESPACE, HashAlg::Sha512, message).map_err(|e| e.to_string())?;
    let signature = rsa::pkcs1v15::SigningKey::<rsa::sha2::Sha512>::new(private)
        .try_sign(&data)
        .map_err(|e| e.to_string())?;
    let signature = ssh_key::Signature::new(
        ssh_key::Algorithm::Rsa {
            hash: Some(HashAlg::Sha512),
        },
        signature.to_vec(),
    )
    .map_err(|e| e.to_string())?;
    SshSig::new(public, NAMESPACE, HashAlg::Sha512, signature).map_err(|e| e.to_string())
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
    if !crate::seed::is_role(role) && !extra_roles.iter().any(|r| r == role) {
        return Err(input(format!(
            "unknown role {role:?}: use one of {} (or add it with --extra-role)",
            crate::seed::roles().join(", ")
        )));
    }
    if name.trim().is_empty() {
        return Err(input("--name must not be empty"));
    }
    if let Err(why) = time_in_bounds(report, time) {
        return Err(input(format!("cannot sign now: {why}")));
    }
    let key = load_key(key_path)?;
    let message = payload(report, role, name, time);
    let sig = sign_message(&key, &message)
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

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Verdict {
    /// Valid, by a key the allowed signers file allows for this signoff.
    Valid,
    /// The signature does not match the report's content (changed after signing) or is malformed.
    Invalid(String),
    /// Cryptographically valid, but checked only against the key the report itself names: with
    /// no allowed signers there is no trust anchor, so it signs for no role.
    Untrusted,
    /// Valid, but the key is not in the allowed signers file.
    UnknownSigner,
    /// Valid, and the key is in the file, but no line allows it here (expired, not yet valid,
    /// another namespace, another principal, a cert-authority line): why, line by line.
    NotAllowed(String),
}

#[derive(Debug, Clone)]
pub struct Verification {
    pub index: usize,
    pub role: String,
    pub name: String,
    pub time: String,
    pub principal: Option<String>,
    /// The signing key's SHA-256 fingerprint, when the signature verified.
    pub key: Option<String>,
    pub verdict: Verdict,
}

impl fmt::Display for Verification {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let verdict = match &self.verdict {
            Verdict::Valid => "valid".to_string(),
            Verdict::Untrusted => {
                "UNTRUSTED (the signature matches the key the report names, but no --allowed-signers says whose key that is)".to_string()
            }
            Verdict::UnknownSigner => {
                "UNKNOWN SIGNER (key not in the allowed signers file)".to_string()
            }
            Verdict::NotAllowed(why) => format!("NOT ALLOWED: {why}"),
            Verdict::Invalid(why) => format!("INVALID: {why}"),
        };
        write!(
            f,
            "#{} {} | {} | {} | {} | {verdict}",
            self.index,
            printable(&self.role, true),
            printable(&self.name, true),
            printable(self.principal.as_deref().unwrap_or("-"), true),
            printable(&self.time, true)
        )
    }
}

/// Which allowed-signers line, if any, lets `key` sign this signoff, as `ssh-keygen -Y verify`
/// decides with `-I principal` (when given), at both the signoff's `time` and `now`: the key
/// must have been valid when it signed and must not have expired since.
///
/// `valid-before` is judged at `now`, as `ssh-keygen -Y verify` judges it by default, because
/// the signoff's time is the signer's word: a key past its `valid-before` signed today's audit
/// dated last year (`SOURCE_DATE_EPOCH` backdates the report's generatedAt too) and verified.
fn allowed_by(
    list: &[AllowedSigner],
    key: &PublicKey,
    principal: Option<&str>,
    time: &str,
    now: i64,
) -> Result<String, Verdict> {
    let mut why = Vec::new();
    for a in list {
        if a.key.key_data() != key.key_data() {
            continue;
        }
        let l = a.line;
        if a.cert_authority {
            why.push(format!(
                "line {l} lists the key as a cert-authority, which signs SSH certificates, not signoffs (certificates are not supported)"
            ));
            continue;
        }
        match principal {
            Some(p) if match_pattern_list(p, &a.principals) != 1 => {
                why.push(format!(
                    "line {l}: principal {p:?} does not match {:?}",
                    a.principals
                ));
                continue;
            }
            None if !principals_match_someone(&a.principals) => {
                why.push(format!(
                    "line {l}: the principals {:?} match no identity",
                    a.principals
                ));
                continue;
            }
            _ => {}
        }
        if let Some(ns) = &a.namespaces
            && match_pattern_list(NAMESPACE, ns) != 1
        {
            why.push(format!(
                "line {l}: namespace {NAMESPACE} is not in namespaces=\"{ns}\""
            ));
            continue;
        }
        if a.valid_after.is_some() || a.valid_before.is_some() {
            let Ok(t) = chrono::DateTime::parse_from_rfc3339(time) else {
                why.push(format!(
                    "line {l}: the signoff time {time:?} is not RFC 3339, so valid-after/valid-before cannot be checked"
                ));
                continue;
            };
            let t = t.timestamp();
            let at = |secs: i64| {
                chrono::DateTime::from_timestamp(secs, 0)
                    .map_or_else(|| secs.to_string(), |d| d.to_rfc3339())
            };
            if let Some(after) = a.valid_after {
                if t < after {
                    why.push(format!(
                        "line {l}: the key was not yet valid at the signoff time (valid-after {})",
                        at(after)
                    ));
                    continue;
                }
                // A signoff dated a little ahead (the clock skew allowed) of a key not valid yet.
                if now < after {
                    why.push(format!(
                        "line {l}: the key is not valid yet (valid-after {})",
                        at(after)
                    ));
                    continue;
                }
            }
            if let Some(before) = a.valid_before {
                if t > before {
                    why.push(format!(
                        "line {l}: the key had expired at the signoff time (valid-before {})",
                        at(before)
                    ));
                    continue;
                }
                if now > before {
                    why.push(format!(
                        "line {l}: the key has expired (valid-before {}): an expired key's signoffs do not count, whatever time they give, as with ssh-keygen -Y verify; sign again with a current key",
                        at(before)
                    ));
                    continue;
                }
            }
        }
        return Ok(principal.map_or_else(|| a.principals.clone(), str::to_string));
    }
    Err(if why.is_empty() {
        Verdict::UnknownSigner
    } else {
        Verdict::NotAllowed(why.join("; "))
    })
}

/// [`allowed_by`] for a role bound to `identities` (`--role-signer`): the key must be allowed
/// as one of them, and as `principal` when that is given too (the binding alone let any of the
/// role's signers through a verify that asked for one identity).
fn allowed_for_role(
    list: &[AllowedSigner],
    key: &PublicKey,
    role: &str,
    identities: &[String],
    principal: Option<&str>,
    time: &str,
    now: i64,
) -> Result<String, Verdict> {
    let bound = format!(
        "role {role:?} may be signed only by {} (--role-signer)",
        identities.join(", ")
    );
    if let Some(p) = principal
        && !identities.iter().any(|id| id == p)
    {
        return Err(Verdict::NotAllowed(format!(
            "{bound}, and --principal {p:?} is not one of them"
        )));
    }
    let mut why = Vec::new();
    for id in identities
        .iter()
        .filter(|id| principal.is_none_or(|p| p == id.as_str()))
    {
        match allowed_by(list, key, Some(id), time, now) {
            Ok(p) => return Ok(p),
            Err(Verdict::NotAllowed(w)) => why.push(format!("as {id}: {w}")),
            Err(_) => {}
        }
    }
    Err(Verdict::NotAllowed(if why.is_empty() {
        format!("{bound}, and no allowed-signers line gives this key one of those identities")
    } else {
        format!(
            "{bound}, and no allowed-signers line allows this key as one of them: {}",
            why.join("; ")
        )
    }))
}

/// The class `i` is in (union-find, halving the path as it goes).
fn root(class: &mut [usize], mut i: usize) -> usize {
    while class[i] != i {
        class[i] = class[class[i]];
        i = class[i];
    }
    i
}

/// Kuhn's augmenting path: gives `role` a signer, moving another role to another of its own
/// signers when needed.
fn assign<'a>(
    role: usize,
    options: &[Vec<&'a str>],
    taken: &mut std::collections::HashMap<&'a str, usize>,
    seen: &mut Vec<&'a str>,
) -> bool {
    for &s in &options[role] {
        if seen.contains(&s) {
            continue;
        }
        seen.push(s);
        let free = match taken.get(s) {
            None => true,
            Some(&other) => assign(other, options, taken, seen),
        };
        if free {
            taken.insert(s, role);
            return true;
        }
    }
    false
}

/// Why the required roles are not each signed by a signer of their own, if they are not: one
/// key signing as two roles (any name can be typed beside a role) counted as both.
/// Each role is matched to a different signer (principal, and key) among its valid signoffs (a
/// bipartite matching: a signer valid for several roles is given the one no one else can take).
pub fn shared_signers(results: &[Verification], roles: &[String]) -> Option<String> {
    // Who signed, as one label per signer: two signoffs are the same signer when they name the
    // same principal or were made with the same key. By principal alone, one key listed for
    // two identities (`alice,bob <key>`, as ssh-keygen's allowed-signers format allows) and
    // bound to two roles by --role-signer counted as two signers.
    let valid: Vec<&Verification> = results
        .iter()
        .filter(|v| v.verdict == Verdict::Valid)
        .collect();
    let mut class: Vec<usize> = (0..valid.len()).collect();
    for i in 0..valid.len() {
        for j in 0..i {
            let same = |a: &Option<String>, b: &Option<String>| a.is_some() && a == b;
            if same(&valid[i].principal, &valid[j].principal) || same(&valid[i].key, &valid[j].key)
            {
                let (a, b) = (root(&mut class, i), root(&mut class, j));
                class[a] = b;
            }
        }
    }
    let labels: Vec<String> = (0..valid.len())
        .map(|i| root(&mut class, i).to_string())
        .collect();
    let signers = |role: &String| -> Vec<&str> {
        valid
            .iter()
            .zip(&labels)
            .filter(|(v, _)| &v.role == role && v.principal.is_some())
            .map(|(_, label)| label.as_str())
            .collect()
    };
    let roles: Vec<&String> = {
        let mut seen = Vec::new();
        for r in roles {
            if !seen.contains(&r) && !signers(r).is_empty() {
                seen.push(r);
            }
        }
        seen
    };
    // taken[signer] = the role it is matched to.
    let mut taken: std::collections::HashMap<&str, usize> = std::collections::HashMap::new();
    let options: Vec<Vec<&str>> = roles.iter().map(|r| signers(r)).collect();
    let unmatched: Vec<&str> = (0..roles.len())
        .filter(|&i| !assign(i, &options, &mut taken, &mut Vec::new()))
        .map(|i| roles[i].as_str())
        .collect();
    (!unmatched.is_empty()).then(|| {
        format!(
            "required role(s) {} are signed only by signers who sign another required role: each role needs a signer of its own",
            unmatched
                .iter()
                .map(|r| format!("{r:?}"))
                .collect::<Vec<_>>()
                .join(", ")
        )
    })
}

/// How far ahead of this machine's clock a signoff's time may be (clocks differ).
const CLOCK_SKEW_SECONDS: i64 = 300;

/// A signoff's time is the signer's word, and what `valid-after` is judged at: it must be RFC
/// 3339, not before the report it signs was generated, and not in the future. A report whose
/// generatedAt is missing or not RFC 3339 holds the signoff time to nothing, so it is refused
/// rather than skipped.
fn time_in_bounds(report: &Value, time: &str) -> Result<(), String> {
    let at = chrono::DateTime::parse_from_rfc3339(time)
        .map_err(|_| format!("the signoff time {time:?} is not RFC 3339"))?;
    let generated = report.get("generatedAt").and_then(Value::as_str);
    let Some(g) = generated.and_then(|g| chrono::DateTime::parse_from_rfc3339(g).ok()) else {
        return Err(format!(
            "the report's generatedAt ({}) is missing or not RFC 3339, so the signoff time cannot be held to it; audit again for a report to sign",
            generated.map_or_else(|| "none".to_string(), |g| format!("{g:?}"))
        ));
    };
    if at < g {
        return Err(format!(
            "the signoff time {time} is before the report was generated ({})",
            generated.unwrap_or_default()
        ));
    }
    if at.timestamp() > chrono::Utc::now().timestamp() + CLOCK_SKEW_SECONDS {
        return Err(format!("the signoff time {time} is in the future"));
    }
    Ok(())
}

fn field<'a>(entry: &'a Value, name: &str) -> &'a str {
    entry.get(name).and_then(Value::as_str).unwrap_or_default()
}

/// Which identities may sign each role (`verify --role-signer ROLE=IDENTITY,...`): a role named
/// here counts only when an allowed-signers line gives the signing key one of its identities.
pub type RoleSigners = std::collections::BTreeMap<String, Vec<String>>;

/// Checks every signoff of a report: the signature against the key it names, then that key
/// against the allowed signers (for `principal` when given, like `ssh-keygen -Y verify -I`).
/// Without allowed signers nothing is trusted.
pub fn verify(
    report: &Value,
    allowed: Option<&[AllowedSigner]>,
    principal: Option<&str>,
) -> Vec<Verification> {
    verify_roles(report, allowed, principal, &RoleSigners::new())
}

/// [`verify`], with the roles `roles` binds to identities: a role is a claim the signer makes,
/// and any allowed key signed "Security Team" before (a developer's key counted for it).
pub fn verify_roles(
    report: &Value,
    allowed: Option<&[AllowedSigner]>,
    principal: Option<&str>,
    roles: &RoleSigners,
) -> Vec<Verification> {
    let entries = report
        .get("signoffs")
        .and_then(Value::as_array)
        .cloned()
        .unwrap_or_default();
    let content = content_bytes(report);
    // The verifier's clock, not `SOURCE_DATE_EPOCH`: that variable is the signer's to set, and
    // it dates `check`'s report and the signoff alike.
    let now = chrono::Utc::now().timestamp();
    entries
        .iter()
        .enumerate()
        .map(|(i, e)| {
            let (role, name, time) = (field(e, "role"), field(e, "name"), field(e, "time"));
            let verdict = (|| {
                let n = i + 1;
                let text = |name: &str| {
                    let v = field(e, name);
                    if v.trim().is_empty() {
                        Err(format!(
                            "signoff #{n}: empty or malformed {name} (it is empty or missing)"
                        ))
                    } else {
                        Ok(v)
                    }
                };
                let declared = PublicKey::from_openssh(text("publicKey")?).map_err(|err| {
                    format!(
                        "signoff #{n}: empty or malformed publicKey (not an OpenSSH public key: {err})"
                    )
                })?;
                let sig = SshSig::from_pem(text("signature")?).map_err(|err| {
                    format!(
                        "signoff #{n}: empty or malformed signature (not an armored SSH signature: {err})"
                    )
                })?;
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
                    .verify(NAMESPACE, &payload_with(&content, role, name, time), &sig)
                    .map_err(|_| {
                        "the report or this signoff's role, name or time changed after signing"
                            .to_string()
                    })?;
                time_in_bounds(report, time)?;
                Ok(declared)
            })();
            let key = verdict
                .as_ref()
                .ok()
                .map(|k| k.fingerprint(ssh_key::HashAlg::Sha256).to_string());
            let (verdict, principal) = match verdict {
                Err(why) => (Verdict::Invalid(why), None),
                Ok(key) => match (allowed, roles.get(role)) {
                    (None, _) => (Verdict::Untrusted, None),
                    (Some(list), None) => match allowed_by(list, &key, principal, time, now) {
                        Ok(p) => (Verdict::Valid, Some(p)),
                        Err(v) => (v, None),
                    },
                    (Some(list), Some(identities)) => {
                        match allowed_for_role(list, &key, role, identities, principal, time, now) {
                            Ok(p) => (Verdict::Valid, Some(p)),
                            Err(v) => (v, None),
                        }
                    }
                },
            };
            Verification {
                index: i + 1,
                role: role.to_string(),
                name: name.to_string(),
                time: time.to_string(),
                principal,
                key,
                verdict,
            }
        })
        .collect()
}

#[cfg(test)]
mod tests {
    /// The spliced payload is byte for byte the canonical form of the whole document, as it was
    /// computed before (reports signed by earlier versions keep verifying).
    #[test]
    fn payload_is_the_canonical_document() {
        let report = json!({
            "schemaVersion": "1", "results": [{"id": "a", "message": "é \u{1F642} \"q\" <x>", "n": 1.5e3}],
            "summary": {"pass": 1}, "signoffs": [{"role": "x"}], "zeta": null, "Alpha": [true, false]
        });
        let mut content = report.clone();
        content.as_object_mut().unwrap().remove("signoffs");
        let doc = json!({"content": content, "signoff": {"role": "Security Team", "name": "Zoë", "time": "2026-11-29T00:00:00Z"}});
        assert_eq!(
            payload(&report, "Security Team", "Zoë", "2026-11-29T00:00:00Z"),
            serde_json_canonicalizer::to_vec(&doc).unwrap()
        );
    }

    use super::allowed_signers::parse_ssh_time;
    use super::*;

    #[test]
    fn pattern_lists_match_like_openssh() {
        assert_eq!(match_pattern_list("alice@example.com", "*@example.com"), 1);
        assert_eq!(match_pattern_list("alice@example.com", "al?ce@*"), 1);
        assert_eq!(
            match_pattern_list("alice@example.com", "bob,alice@example.com"),
            1
        );
        assert_eq!(match_pattern_list("alice@example.com", "*,!alice@*"), -1);
        assert_eq!(match_pattern_list("alice@example.com", "!bob@*"), 0);
        assert_eq!(
            match_pattern_list("alice@example.com", "ALICE@example.com"),
            0
        );
        assert_eq!(match_pattern_list("", "*"), 1);
        assert_eq!(match_pattern_list("ab", "a*b*"), 1);
        assert_eq!(match_pattern_list("ü", "?"), 0, "? is one byte, as in ssh");
        assert_eq!(match_pattern_list("ü", "??"), 1);
    }

    #[test]
    fn principal_lists_that_match_no_one() {
        assert!(principals_match_someone("alice@example.com"));
        assert!(principals_match_someone("*,!mallory@*"));
        assert!(principals_match_someone("a*,!ab*"));
        assert!(!principals_match_someone("!alice@example.com"));
        assert!(!principals_match_someone("alice,!alice"));
        assert!(!principals_match_someone("*,!*"));
    }

    /// `valid-after` at the signoff's time, `valid-before` at the verifier's clock: a key that
    /// has expired since does not verify, whatever time the signoff gives.
    #[test]
    fn validity_is_judged_at_the_signoff_and_now() {
        const KEY: &str =
            "ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAIP7B0VJ6S6GSBh6JSYlo1H7UnLETmBHoxk3u9+3dXtTX";
        let list = parse_allowed_signers_text(
            "allowed",
            &format!("a@x valid-after=\"20250101Z\",valid-before=\"20260101Z\" {KEY}"),
        )
        .unwrap();
        let key = PublicKey::from_openssh(KEY).unwrap();
        let (signed, before_expiry, after_expiry) = (
            "2025-06-01T00:00:00Z",
            1_760_000_000, // 2025-10-09
            1_770_000_000, // 2026-02-02
        );
        assert_eq!(
            allowed_by(&list, &key, None, signed, before_expiry),
            Ok("a@x".to_string())
        );
        let Err(Verdict::NotAllowed(why)) = allowed_by(&list, &key, None, signed, after_expiry)
        else {
            panic!("an expired key verified");
        };
        assert!(why.contains("the key has expired"), "{why}");
        let Err(Verdict::NotAllowed(why)) =
            allowed_by(&list, &key, None, "2024-12-31T00:00:00Z", before_expiry)
        else {
            panic!("a key not yet valid at the signoff verified");
        };
        assert!(why.contains("not yet valid at the signoff time"), "{why}");
    }

    #[test]
    fn ssh_times() {
        assert_eq!(parse_ssh_time("20261118Z"), Some(1_794_960_000));
        assert_eq!(parse_ssh_time("20261118110640Z"), Some(1_795_000_000));
        assert_eq!(parse_ssh_time("202611181106UTC"), Some(1_795_000_000 - 40));
        for bad in [
            "2026111",
            "2026-11-18",
            "20261318Z",
            "yesterday",
            "ü時🙂ü時🙂ü時Z",
            "Z",
            "",
        ] {
            assert_eq!(parse_ssh_time(bad), None, "{bad}");
        }
    }
}
