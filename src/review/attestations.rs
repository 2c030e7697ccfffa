//! Attestations: reviewers' confirmations of manual checklist items, and of evidence that lives
//! outside the cluster's objects (checks with `externalEvidence`), read from a file and merged
//! into the report as `pass` with who confirmed it, when, and the evidence.

use crate::checks::{Check, Source};
use crate::diag::Diagnostic;
use crate::report::{Attestation, CheckResult, Status};
use serde::Deserialize;
use serde_saphyr::Spanned;
use std::path::Path;

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct Entry {
    check: String,
    #[serde(default)]
    by: String,
    #[serde(default)]
    date: String,
    #[serde(default)]
    evidence: String,
}

/// Every problem of an attestations file, at its place.
pub type AttestationError = crate::diag::Diagnostics;

/// Reads and validates an attestations file against the loaded checks; errors name file:line.
pub fn load(
    path: &Path,
    checks: &[&Check],
) -> Result<Vec<(String, Attestation)>, AttestationError> {
    let file = path.display().to_string();
    // It marks checklist lines as done: the config file's rule on who may have written it.
    crate::input::refuse_untrusted(path, "the attestations file", "it attests checklist lines")
        .map_err(|e| Diagnostic::file(file.clone(), e))?;
    let text = crate::input::read_file(path).map_err(|e| Diagnostic::file(file.clone(), e))?;
    let entries: Vec<Spanned<Entry>> = if text.trim().is_empty() {
        Vec::new()
    } else {
        serde_saphyr::from_str(&text).map_err(|e| Diagnostic::yaml(file.clone(), &e))?
    };
    let mut out = Vec::new();
    let mut errors = Vec::new();
    for e in entries {
        let origin = format!("{file}:{}", e.referenced.line());
        let at = |message: String| {
            Diagnostic::new(
                file.clone(),
                e.referenced.line(),
                e.referenced.column(),
                message,
            )
        };
        let a = e.value;
        match checks.iter().find(|c| c.id == a.check) {
            None => errors.push(at(format!("unknown check {:?}", a.check))),
            Some(c) if c.source() != Source::Manual && c.external_evidence.is_none() => {
                errors.push(at(format!("{} is a {} check, decided by the audit; only manual checks and checks whose evidence may live outside the cluster are attested", c.id, c.source())));
            }
            Some(_) => {}
        }
        for (field, value) in [("by", &a.by), ("date", &a.date), ("evidence", &a.evidence)] {
            if value.trim().is_empty() {
                errors.push(at(format!("an attestation needs {field}")));
            }
        }
        // Exactly YYYY-MM-DD, as waivers' dates (chrono alone takes `2025-9- 30`), and not
        // after tomorrow (a reviewer's timezone ahead of UTC): an attestation of what has not
        // happened yet is not evidence.
        if !a.date.is_empty() {
            match chrono::NaiveDate::parse_from_str(&a.date, "%Y-%m-%d")
                .ok()
                .filter(|d| d.format("%Y-%m-%d").to_string() == a.date)
            {
                None => errors.push(at(format!("date {:?} is not YYYY-MM-DD", a.date))),
                Some(d) if d > chrono::Utc::now().date_naive() + chrono::Days::new(1) => {
                    errors.push(at(format!("date {} is in the future", a.date)));
                }
                Some(_) => {}
            }
        }
        out.push((
            a.check,
            Attestation {
                by: a.by,
                date: a.date,
                evidence: a.evidence,
                origin,
            },
        ));
    }
    if errors.is_empty() {
        Ok(out)
    } else {
        Err(crate::diag::Diagnostics(errors))
    }
}

/// Turns attested manual results into passes; unattested ones stay `manual`. The `no-data` of a
/// check whose evidence lives outside the cluster (only those can be attested besides manual
/// ones, see [`load`]) is attested the same way; its failures and errors never are.
pub fn apply(results: &mut [CheckResult], attestations: &[(String, Attestation)]) {
    for r in results
        .iter_mut()
        .filter(|r| matches!(r.status, Status::Manual | Status::NoData))
    {
        if let Some((_, a)) = attestations.iter().find(|(id, _)| *id == r.id) {
            r.status = Status::Pass;
            r.message = format!("attested by {} on {}: {}", a.by, a.date, a.evidence).into();
            r.attestation = Some(Box::new(a.clone()));
        }
    }
}
