//! Waivers: who accepted which failure, why, and until when. From a file (`--waivers`, default
//! `.mlsdm-audit-waivers.yaml`) or from `mlsdm-audit.io/waive.<check-id>` annotations on the
//! objects themselves (unless `--no-annotation-waivers`). A waiver never hides a failure: the
//! result keeps its outcome, names the waiver, and stops counting towards the exit code until the
//! waiver expires.

use crate::k8s::At as _;
use crate::k8s::Object;
use crate::report::{CheckResult, Status, WaiverInfo};
use serde::Deserialize;
use serde_saphyr::Spanned;
use std::collections::HashMap;
use std::path::Path;

pub const DEFAULT_FILE: &str = ".mlsdm-audit-waivers.yaml";
pub const ANNOTATION_PREFIX: &str = "mlsdm-audit.io/waive.";

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct Entry {
    check: String,
    #[serde(default)]
    object: Option<String>,
    #[serde(default)]
    container: Option<String>,
    #[serde(default)]
    reason: Option<String>,
    #[serde(default)]
    owner: Option<String>,
    #[serde(default)]
    expires: Option<String>,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Waiver {
    pub check: String,
    /// `Kind/namespace/name` or `Kind/name`; `None` waives the check on every object.
    pub object: Option<String>,
    pub container: Option<String>,
    pub reason: String,
    pub owner: String,
    pub expires: String,
    pub origin: String,
    /// An annotation waiver's object: it waives that object's results only, matched by its whole
    /// reference and, for a manifest, its file and line. Matched as a waivers file's
    /// `object:` is, an annotation on a namespace-less copy (`Kind/name`) or on an object of
    /// another API group with the same name waived the release's own failing object.
    pub carrier: Option<(String, Option<crate::k8s::Location>)>,
}

/// A waiver that is incomplete or names no known check, at its place.
pub type WaiverError = crate::diag::Diagnostic;

/// Every invalid waiver of a file or of the audited objects' annotations.
pub type WaiverErrors = crate::diag::Diagnostics;

/// The date a waiver's `expires` names, written exactly `YYYY-MM-DD`: chrono's parser also takes
/// `2025-9- 30` (it skips spaces before a number), which compared as text with today's date
/// never expired.
fn date(s: &str) -> Option<chrono::NaiveDate> {
    chrono::NaiveDate::parse_from_str(s, "%Y-%m-%d")
        .ok()
        .filter(|d| d.format("%Y-%m-%d").to_string() == s)
}

fn valid_date(s: &str) -> bool {
    date(s).is_some()
}

fn validate(w: &Waiver, known: &[&str]) -> Vec<String> {
    let mut problems = Vec::new();
    if !known.contains(&w.check.as_str()) {
        problems.push(format!("unknown check {:?}", w.check));
    }
    if w.reason.trim().is_empty() {
        problems.push("a waiver needs a reason".into());
    }
    if w.owner.trim().is_empty() {
        problems.push("a waiver needs an owner".into());
    }
    if w.expires.trim().is_empty() {
        problems.push("a waiver needs an expiry date (expires: YYYY-MM-DD)".into());
    } else if !valid_date(&w.expires) {
        problems.push(format!(
            "expires {:?} is not a date (YYYY-MM-DD)",
            w.expires
        ));
    }
    if let Some(o) = &w.object {
        let parts = o.split('/').count();
        if !(2..=3).contains(&parts) || o.split('/').any(str::is_empty) {
            problems.push(format!(
                "object {o:?} must be Kind/namespace/name or Kind/name"
            ));
        }
    }
    problems
}

/// Loads a waiver file, checking every entry against the loaded check ids.
pub fn load_file(path: &Path, known: &[&str]) -> Result<Vec<Waiver>, WaiverErrors> {
    let file = path.display().to_string();
    // The file waives failures: one another user could write (a world-writable directory, a
    // planted `.mlsdm-audit-waivers.yaml`) turned a failing release into a pass. The same rule
    // as the config file's.
    crate::input::refuse_untrusted(path, "the waivers file", "it waives failures")
        .map_err(|e| WaiverError::file(file.clone(), e))?;
    let text = crate::input::read_file(path).map_err(|e| WaiverError::file(file.clone(), e))?;
    let entries: Vec<Spanned<Entry>> = if text.trim().is_empty() {
        Vec::new()
    } else {
        serde_saphyr::from_str(&text).map_err(|e| WaiverError::yaml(file.clone(), &e))?
    };
    let mut candidates = Vec::new();
    for e in entries {
        let origin = format!("{file}:{}", e.referenced.line());
        let place = WaiverError::new(file.clone(), e.referenced.line(), e.referenced.column(), "");
        let w = Waiver {
            check: e.value.check,
            object: e.value.object,
            container: e.value.container,
            reason: e.value.reason.unwrap_or_default(),
            owner: e.value.owner.unwrap_or_default(),
            expires: e.value.expires.unwrap_or_default(),
            origin: origin.clone(),
            carrier: None,
        };
        candidates.push((w, place));
    }
    validated(candidates, known)
}

/// Waivers written as annotations: `mlsdm-audit.io/waive.<id>: "<reason>; owner=...; expires=..."`.
pub fn from_annotations(objects: &[Object], known: &[&str]) -> Result<Vec<Waiver>, WaiverErrors> {
    let mut candidates = Vec::new();
    let mut refused = Vec::new();
    for obj in objects {
        let Some(ann) = obj
            .json
            .at("/metadata/annotations")
            .and_then(|a| a.as_object())
        else {
            continue;
        };
        for (key, value) in ann {
            let Some(check) = key.strip_prefix(ANNOTATION_PREFIX) else {
                continue;
            };
            let text = value.as_str().unwrap_or_default();
            let mut parts = text.split(';').map(str::trim);
            let reason = parts.next().unwrap_or_default().to_string();
            let (mut owner, mut expires) = (String::new(), String::new());
            // A part this form does not take is an error, not dropped: `container=istio-proxy`
            // had waived the check for every container of the object, the MLSDM one included
            // (the file form refuses unknown fields for the same reason).
            let mut unknown = Vec::new();
            for p in parts {
                if let Some(v) = p.strip_prefix("owner=") {
                    owner = v.trim().to_string();
                } else if let Some(v) = p.strip_prefix("expires=") {
                    expires = v.trim().to_string();
                } else if !p.is_empty() {
                    unknown.push(p);
                }
            }
            // Errors name the object's file and line when it has one, else the object.
            let what = format!("annotation {key} on {}", obj.reference());
            let place = match &obj.location {
                Some(l) => WaiverError::new(l.file.clone(), l.line, 0, format!("{what}: ")),
                None => WaiverError::file(what, ""),
            };
            let origin = match &obj.location {
                Some(l) => format!(
                    "{}:{} (annotation {key} on {})",
                    l.file,
                    l.line,
                    obj.reference()
                ),
                None => format!("annotation {key} on {}", obj.reference()),
            };
            for p in unknown {
                // Masked before it is cut and quoted: a cut or escaped secret no longer
                // matches itself in the output pass (60 characters of a key were printed).
                let cut: String = crate::redact::text(p).chars().take(60).collect();
                refused.push(place.with_message(format!(
                    "{}unknown part {cut:?}: an annotation waiver is \"<reason>; owner=<who>; expires=<YYYY-MM-DD>\" (waive one container in a --waivers file, with container:)",
                    place.message
                )));
            }
            let w = Waiver {
                check: check.to_string(),
                object: Some(obj.reference()),
                container: None,
                reason,
                owner,
                expires,
                origin: origin.clone(),
                carrier: Some((obj.reference(), obj.location.clone())),
            };
            candidates.push((w, place));
        }
    }
    match validated(candidates, known) {
        Ok(waivers) if refused.is_empty() => Ok(waivers),
        Ok(_) => Err(crate::diag::Diagnostics(refused)),
        Err(crate::diag::Diagnostics(mut errors)) => {
            errors.extend(refused);
            Err(crate::diag::Diagnostics(errors))
        }
    }
}

/// Keeps the waivers that are complete and name a known check; any other is an error at its origin.
/// `place` is where the waiver was written; its message is a prefix for each problem.
fn validated(
    candidates: Vec<(Waiver, WaiverError)>,
    known: &[&str],
) -> Result<Vec<Waiver>, WaiverErrors> {
    let mut errors = Vec::new();
    let mut out = Vec::new();
    for (w, place) in candidates {
        let problems = validate(&w, known);
        if problems.is_empty() {
            out.push(w);
        } else {
            errors.extend(
                problems
                    .into_iter()
                    .map(|p| place.with_message(format!("{}{p}", place.message))),
            );
        }
    }
    if errors.is_empty() {
        Ok(out)
    } else {
        Err(crate::diag::Diagnostics(errors))
    }
}

fn applies(w: &Waiver, r: &CheckResult) -> bool {
    if w.check != r.id {
        return false;
    }
    if let Some((reference, location)) = &w.carrier {
        let Some(obj) = &r.object else { return false };
        if &obj.to_string() != reference || r.location.as_deref() != location.as_ref() {
            return false;
        }
    }
    if let Some(o) = &w.object {
        let Some(obj) = &r.object else { return false };
        let full = obj.to_string();
        let short = format!("{}/{}", obj.kind, obj.name);
        if o != &full && o != &short {
            return false;
        }
    }
    // A container waiver covers a result only when every failing item is that container (as
    // Polaris' exemptions match on the container's name); a result that names no item (a check
    // that does not iterate containers) is not covered.
    if let Some(c) = &w.container {
        return !r.items.is_empty()
            && r.items
                .iter()
                .all(|i| i.kind.is_container() && &i.name == c);
    }
    true
}

/// Takes back the waivers of a saved report that have lapsed since it was written: each such
/// result is its failure again, its waiver marked expired, as [`apply`] marks one that had
/// lapsed at the audit. A merged fleet report gated on the waived status its inputs recorded, so
/// a waiver that expired yesterday still let the fleet pass today (`verify` said it had lapsed,
/// `report --merge` exited 0). `today` is the wall clock's date, as for [`apply`].
pub fn lapse(results: &mut [CheckResult], today: chrono::NaiveDate) {
    for r in results.iter_mut().filter(|r| r.status == Status::Waived) {
        let Some(w) = r.waiver.as_mut() else {
            continue;
        };
        if date(&w.expires).is_some_and(|d| d >= today) {
            continue;
        }
        w.expired = true;
        r.message = format!(
            "{} (waiver from {} expired on {})",
            r.message, w.origin, w.expires
        )
        .into();
        r.status = r.outcome.take().unwrap_or(Status::Fail);
    }
}

/// The indexes of one check's waivers: those that name no carrier, and those carried by each
/// object (by its `Kind/namespace/name`).
type Candidates<'w> = (Vec<usize>, HashMap<&'w str, Vec<usize>>);

/// Marks failed results covered by an unexpired waiver as `waived`; an expired waiver is shown
/// on the result but does not apply. `today` is the wall clock's date, never a date the
/// environment can set (`SOURCE_DATE_EPOCH`, which dates reproducible reports, moved today back
/// to 1980 under Nix, and every expired waiver applied).
pub fn apply(results: &mut [CheckResult], waivers: &[Waiver], today: chrono::NaiveDate) {
    // The waivers by check, and an annotation waiver also by the object carrying it: a failing
    // result is held to the waivers that can cover it, not to all of them (a release whose every
    // Deployment carries a waiver annotation compared each failing result with every waiver,
    // building strings for each pair; issue 12). Candidates stay in the waivers' order, so that
    // among equal expiry dates the same one is chosen.
    let mut by_check: HashMap<&str, Candidates<'_>> = HashMap::new();
    for (i, w) in waivers.iter().enumerate() {
        let (plain, carried) = by_check.entry(w.check.as_str()).or_default();
        match &w.carrier {
            Some((reference, _)) => carried.entry(reference.as_str()).or_default().push(i),
            None => plain.push(i),
        }
    }
    for r in results.iter_mut().filter(|r| r.status == Status::Fail) {
        let Some((plain, carried)) = by_check.get(r.id.as_str()) else {
            continue;
        };
        let mut candidates = plain.clone();
        if let Some(object) = &r.object
            && let Some(more) = carried.get(object.to_string().as_str())
        {
            candidates.extend(more);
            candidates.sort_unstable();
        }
        let Some(w) = candidates
            .into_iter()
            .map(|i| &waivers[i])
            .filter(|w| applies(w, r))
            .max_by_key(|w| date(&w.expires))
        else {
            continue;
        };
        // A date that does not read (none does: every waiver is validated) has expired.
        let expired = date(&w.expires).is_none_or(|d| d < today);
        r.waiver = Some(Box::new(WaiverInfo {
            reason: w.reason.clone(),
            owner: w.owner.clone(),
            expires: w.expires.clone(),
            origin: w.origin.clone(),
            expired,
        }));
        if expired {
            r.message = format!(
                "{} (waiver from {} expired on {})",
                r.message, w.origin, w.expires
            )
            .into();
        } else {
            r.outcome = Some(r.status);
            r.status = Status::Waived;
        }
    }
}
