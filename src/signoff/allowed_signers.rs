//! OpenSSH's allowed signers format (`ssh-keygen -Y verify`'s, as git uses it): the file, one
//! signer a line with its principals and options, and ssh's pattern matching over principals.

use super::SignoffError;
use ssh_key::PublicKey;
use std::path::Path;

/// One line of an allowed signers file (`ssh-keygen -Y verify`'s format, as git uses it).
#[derive(Debug, Clone)]
pub struct AllowedSigner {
    pub line: usize,
    /// The principals pattern-list as written: `alice@example.com,*@ops.example.com,!eve@*`.
    pub principals: String,
    /// A CA key for SSH certificates: never a signer key itself.
    pub cert_authority: bool,
    /// The namespaces pattern-list (`namespaces="..."`), when restricted.
    pub namespaces: Option<String>,
    /// `valid-after` / `valid-before`, in seconds since the epoch.
    pub valid_after: Option<i64>,
    pub valid_before: Option<i64>,
    pub key: PublicKey,
}

/// OpenSSH's `match_pattern`: `*` any run of bytes, `?` one byte; byte-wise like ssh.
pub(super) fn match_pattern(s: &[u8], p: &[u8]) -> bool {
    let (mut si, mut pi) = (0, 0);
    let mut star: Option<(usize, usize)> = None;
    while si < s.len() {
        if pi < p.len() && (p[pi] == b'?' || p[pi] == s[si]) {
            si += 1;
            pi += 1;
        } else if pi < p.len() && p[pi] == b'*' {
            star = Some((pi, si));
            pi += 1;
        } else if let Some((sp, ss)) = star {
            pi = sp + 1;
            si = ss + 1;
            star = Some((sp, ss + 1));
        } else {
            return false;
        }
    }
    p[pi..].iter().all(|&c| c == b'*')
}

/// OpenSSH's `match_pattern_list` (case-sensitive): 1 when a pattern matches and no negated
/// (`!`) one does, -1 when a negated pattern matches, 0 when none matches.
pub fn match_pattern_list(s: &str, list: &str) -> i8 {
    let mut positive = 0;
    for sub in list.split(',') {
        let (negated, pat) = match sub.strip_prefix('!') {
            Some(p) => (true, p),
            None => (false, sub),
        };
        if match_pattern(s.as_bytes(), pat.as_bytes()) {
            if negated {
                return -1;
            }
            positive = 1;
        }
    }
    positive
}

/// Whether some identity could match a principals list (for `verify` without `--principal`):
/// a positive pattern with a witness that no negated pattern matches. The witnesses fill the
/// wildcards with nothing or with a byte no pattern names, so in doubt the answer is "no".
pub(super) fn principals_match_someone(list: &str) -> bool {
    list.split(',').filter(|p| !p.starts_with('!')).any(|p| {
        [
            p.replace('*', "").replace('?', "\u{1}"),
            p.replace(['*', '?'], "\u{1}"),
        ]
        .iter()
        .any(|w| match_pattern_list(w, list) == 1)
    })
}

/// OpenSSH's `parse_absolute_time`: YYYYMMDD, YYYYMMDDHHMM or YYYYMMDDHHMMSS, UTC with a
/// trailing `Z` (or `UTC`), else local time.
pub(super) fn parse_ssh_time(text: &str) -> Option<i64> {
    use chrono::{NaiveDate, TimeZone};
    let upper = text.to_ascii_uppercase();
    let (digits, utc) = if let Some(d) = upper.strip_suffix("UTC").filter(|d| !d.is_empty()) {
        (d, true)
    } else if let Some(d) = upper.strip_suffix('Z').filter(|d| !d.is_empty()) {
        (d, true)
    } else {
        (upper.as_str(), false)
    };
    if !digits.bytes().all(|b| b.is_ascii_digit()) || ![8, 12, 14].contains(&digits.len()) {
        return None;
    }
    let n = |from: usize, len: usize| -> Option<u32> {
        digits.get(from..from + len).and_then(|x| x.parse().ok())
    };
    let date = NaiveDate::from_ymd_opt(i32::try_from(n(0, 4)?).ok()?, n(4, 2)?, n(6, 2)?)?;
    let (h, m, sec) = match digits.len() {
        8 => (0, 0, 0),
        12 => (n(8, 2)?, n(10, 2)?, 0),
        _ => (n(8, 2)?, n(10, 2)?, n(12, 2)?),
    };
    let dt = date.and_hms_opt(h, m, sec)?;
    let t = if utc {
        chrono::Utc.from_utc_datetime(&dt).timestamp()
    } else {
        chrono::Local
            .from_local_datetime(&dt)
            .earliest()?
            .timestamp()
    };
    (t != 0).then_some(t)
}

/// The next whitespace-delimited token, or a `"quoted"` one, and the rest after it.
pub(super) fn next_token(s: &str) -> Option<(String, &str)> {
    let s = s.trim_start();
    if s.is_empty() {
        return None;
    }
    if let Some(q) = s.strip_prefix('"') {
        let end = q.find('"')?;
        return Some((q[..end].to_string(), &q[end + 1..]));
    }
    let end = s.find(char::is_whitespace).unwrap_or(s.len());
    Some((s[..end].to_string(), &s[end..]))
}

/// The options field: up to the first whitespace outside quotes.
pub(super) fn split_options(s: &str) -> (&str, &str) {
    let s = s.trim_start();
    let mut quoted = false;
    for (i, c) in s.char_indices() {
        match c {
            '"' => quoted = !quoted,
            c if c.is_whitespace() && !quoted => return (&s[..i], &s[i..]),
            _ => {}
        }
    }
    (s, "")
}

/// `cert-authority,namespaces="a,b",valid-after="20260101"` -> the parsed options.
#[allow(clippy::type_complexity)]
pub(super) fn parse_options(
    opts: &str,
) -> Result<(bool, Option<String>, Option<i64>, Option<i64>), String> {
    let (mut ca, mut namespaces, mut after, mut before) = (false, None, None, None);
    let mut rest = opts;
    while !rest.is_empty() {
        let name_end = rest.find(['=', ',']).unwrap_or(rest.len());
        let name = rest[..name_end].to_ascii_lowercase();
        rest = &rest[name_end..];
        let value = if let Some(v) = rest.strip_prefix('=') {
            let v = v
                .strip_prefix('"')
                .ok_or_else(|| format!("option {name}: the value must be in double quotes"))?;
            let end = v
                .find('"')
                .ok_or_else(|| format!("option {name}: missing closing quote"))?;
            rest = &v[end + 1..];
            Some(v[..end].to_string())
        } else {
            None
        };
        match rest.strip_prefix(',') {
            Some(r) => rest = r,
            None if rest.is_empty() => {}
            None => return Err(format!("option {name}: expected `,` after its value")),
        }
        let time = |v: &Option<String>| -> Result<i64, String> {
            let v = v
                .as_deref()
                .ok_or_else(|| format!("option {name} needs a value"))?;
            parse_ssh_time(v).ok_or_else(|| format!("{name}=\"{v}\" is not YYYYMMDD[HHMM[SS]][Z]"))
        };
        let dup = || format!("option {name} given twice");
        match name.as_str() {
            "cert-authority" if value.is_none() => {
                if ca {
                    return Err(dup());
                }
                ca = true;
            }
            "namespaces" => {
                if namespaces.is_some() {
                    return Err(dup());
                }
                namespaces =
                    Some(value.ok_or_else(|| "option namespaces needs a value".to_string())?);
            }
            "valid-after" => {
                if after.is_some() {
                    return Err(dup());
                }
                after = Some(time(&value)?);
            }
            "valid-before" => {
                if before.is_some() {
                    return Err(dup());
                }
                before = Some(time(&value)?);
            }
            _ => return Err(format!("unknown option {name:?}")),
        }
    }
    Ok((ca, namespaces, after, before))
}

/// Parses git's / ssh-keygen's allowed signers format: `principals [options] keytype key
/// [comment]`, with the options `cert-authority`, `namespaces="..."`, `valid-after="..."` and
/// `valid-before="..."`. A line ssh-keygen would reject stops the run naming the line (ssh-keygen
/// skips it): a trust file with a typo is not quietly half used.
pub fn parse_allowed_signers(path: &Path) -> Result<Vec<AllowedSigner>, SignoffError> {
    // The file is the trust anchor: one another user could write (a shared checkout, a
    // world-writable directory) named their key as the Security Team's. The same rule as the
    // config, waivers and attestations files'.
    crate::input::refuse_untrusted(
        path,
        "the allowed signers file",
        "it decides whose signatures count",
    )
    .map_err(|e| crate::diag::Diagnostic::file(path.display().to_string(), e))?;
    let text = crate::input::read_file(path)
        .map_err(|e| crate::diag::Diagnostic::file(path.display().to_string(), e))?;
    parse_allowed_signers_text(&path.display().to_string(), &text)
}

/// As [`parse_allowed_signers`], from text; `origin` names it in errors.
pub fn parse_allowed_signers_text(
    origin: &str,
    text: &str,
) -> Result<Vec<AllowedSigner>, SignoffError> {
    let mut out = Vec::new();
    for (n, line) in text.lines().enumerate() {
        let line = line.trim();
        if line.is_empty() || line.starts_with('#') {
            continue;
        }
        let bad = |why: String| {
            SignoffError::from(crate::diag::Diagnostic::new(origin, n as u64 + 1, 0, why))
        };
        let (principals, rest) = next_token(line)
            .filter(|(_, rest)| !rest.trim().is_empty())
            .ok_or_else(|| bad("expected `principals [options] keytype key`".into()))?;
        let key_of = |s: &str| {
            let mut t = s.split_whitespace();
            let (kind, data) = (t.next()?, t.next()?);
            PublicKey::from_openssh(&format!("{kind} {data}")).ok()
        };
        let (options, key) = if let Some(k) = key_of(rest) {
            ((false, None, None, None), k)
        } else {
            let (opts, after) = split_options(rest);
            let key = key_of(after).ok_or_else(|| {
                bad("expected `principals [options] keytype key`: no valid public key".into())
            })?;
            (parse_options(opts).map_err(bad)?, key)
        };
        let (cert_authority, namespaces, valid_after, valid_before) = options;
        out.push(AllowedSigner {
            line: n + 1,
            principals,
            cert_authority,
            namespaces,
            valid_after,
            valid_before,
            key,
        });
    }
    Ok(out)
}
