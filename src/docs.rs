//! Text about checks for people: `explain ID` and the generated `docs/checks.md` come from here,
//! from the same fields of the check files, so they cannot disagree.

use crate::checks::{Check, Probe};
use crate::report::section_rank;
use std::fmt::Write as _;

/// What `mlsdm-audit explain ID` prints.
pub fn explain(c: &Check) -> String {
    let mut s = format!(
        "{}: {}\n\nseverity: {}   source: {}\nsection:  {}\n",
        c.id,
        c.title,
        c.severity,
        c.source(),
        c.section
    );
    if let Some(r) = c.requires {
        let _ = writeln!(
            s,
            "optional: runs only when `{r}` is declared (requirements in .mlsdm-audit.yaml, or --require {r})"
        );
    }
    if let Some(e) = &c.external_evidence {
        let _ = writeln!(
            s,
            "evidence may live outside the cluster: {}; not finding it is no-data (attest it with --attestations) unless the audit holds {}, then a failure stays a failure",
            e.elsewhere.trim(),
            e.objects()
        );
    }
    if !c.checklist.is_empty() {
        s.push_str("\nChecklist lines:\n");
        for l in &c.checklist {
            let _ = writeln!(s, "  - {l}");
        }
    }
    s.push_str("\nHow it is decided:\n");
    s.push_str(&logic(c));
    let _ = write!(
        s,
        "\nWhy it matters:\n{}\n\nRemediation:\n{}\n\nDefined in: {} (sha256 {})\n",
        indent(or_none(&c.doc)),
        indent(or_none(&c.remediation)),
        c.origin,
        c.sha256.get(..12).unwrap_or(&c.sha256)
    );
    s
}

/// The check's logic as its file states it: what it reads, when it applies, what passes.
fn logic(c: &Check) -> String {
    let mut s = String::new();
    match &c.probe {
        Probe::Kubernetes(k) => {
            let kinds: Vec<String> = k
                .kinds
                .iter()
                .map(|k| match &k.api_version {
                    Some(v) => format!("{v}/{}", k.kind),
                    None => k.kind.clone(),
                })
                .collect();
            let _ = writeln!(s, "  reads:     {} objects", kinds.join(", "));
            if !k.namespaces.is_empty() {
                let _ = writeln!(s, "  in:        namespaces {}", k.namespaces.join(", "));
            }
        }
        Probe::Http(r) => {
            let mut how = Vec::new();
            if r.authenticated {
                how.push("with the API key");
            }
            if r.active {
                how.push("only with --active");
            }
            if r.per_pod {
                how.push("on every pod");
            }
            let how = if how.is_empty() {
                String::new()
            } else {
                format!(" ({})", how.join(", "))
            };
            let _ = writeln!(s, "  request:   {} {}{how}", r.method, r.path);
        }
        Probe::Metrics(m) => {
            let _ = writeln!(s, "  query:     {}", m.query);
            if let Some(w) = &m.window {
                let _ = writeln!(s, "  held for:  {}", w.text);
            }
        }
        Probe::Manual => {
            s.push_str("  a reviewer attests it (`check --attest ID`, or an attestations file)\n");
        }
    }
    for w in &c.when {
        let _ = writeln!(
            s,
            "  applies when: {}\n    (else skipped: {})",
            one_line(&w.expression.source),
            w.reason
        );
    }
    if let Some(f) = c.kubernetes().and_then(|k| k.for_each.as_ref()) {
        let _ = writeln!(s, "  for each:  {}", one_line(&f.source));
    }
    for v in &c.validations {
        let _ = writeln!(s, "  passes when: {}", one_line(&v.expression.source));
    }
    s
}

fn or_none(text: &str) -> &str {
    if text.trim().is_empty() {
        "(not given in the check file)"
    } else {
        text
    }
}

fn one_line(source: &str) -> String {
    source.split_whitespace().collect::<Vec<_>>().join(" ")
}

/// The message for an id no loaded check has, with the close ones (one place for `explain`,
/// `--only`, `--skip`).
pub fn unknown_check(id: &str, checks: &[Check]) -> String {
    let close = suggest(id, checks.iter().map(|c| c.id.as_str()));
    let hint = if close.is_empty() {
        String::new()
    } else {
        format!("; did you mean {}?", close.join(", "))
    };
    format!("unknown check id {id:?}{hint} (see `mlsdm-audit list-checks`)")
}

/// Ids close to an unknown `id`: within two edits, else those containing it.
pub fn suggest<'a>(id: &str, ids: impl Iterator<Item = &'a str> + Clone) -> Vec<&'a str> {
    let near = crate::checks::cel::near(id, ids.clone());
    if !near.is_empty() {
        return near;
    }
    let needle = id.to_lowercase();
    ids.filter(|c| !needle.is_empty() && c.to_lowercase().contains(&needle))
        .take(5)
        .collect()
}

fn indent(text: &str) -> String {
    text.trim_end()
        .lines()
        .map(|l| format!("  {l}"))
        .collect::<Vec<_>>()
        .join("\n")
}

/// `docs/checks.md`: every check, grouped by the seed checklist's sections.
pub fn catalog_markdown(checks: &[Check]) -> String {
    let mut sorted: Vec<&Check> = checks.iter().collect();
    sorted.sort_by(|a, b| {
        (section_rank(&a.section), &a.section, &a.id).cmp(&(
            section_rank(&b.section),
            &b.section,
            &b.id,
        ))
    });
    let automated = checks
        .iter()
        .filter(|c| c.source() != crate::checks::Source::Manual)
        .count();
    let mut s = String::from("# mlsdm-audit checks\n\n");
    let _ = writeln!(
        s,
        "Generated from `checks/*.yaml` by `mlsdm-audit list-checks --format markdown`; a test keeps it current.\n\
         {} checks: {automated} automated (kubernetes, http, metrics), {} manual items that reviewers attest to.\n",
        checks.len(),
        checks.len() - automated
    );
    let mut section = "";
    for c in sorted {
        if c.section != section {
            section = &c.section;
            let _ = writeln!(s, "## {section}\n");
        }
        let _ = writeln!(
            s,
            "### `{}`\n\n{}\n\n- severity: {}, source: {}",
            c.id,
            c.title,
            c.severity,
            c.source()
        );
        if let Some(r) = c.requires {
            let _ = writeln!(s, "- optional: runs only when `{r}` is declared");
        }
        if let Some(e) = &c.external_evidence {
            let _ = writeln!(
                s,
                "- evidence may live outside the cluster ({}): not found is no-data, attestable, unless the audit holds {}",
                e.elsewhere.trim(),
                e.objects()
            );
        }
        for l in &c.checklist {
            let _ = writeln!(s, "- covers: {l}");
        }
        let _ = writeln!(
            s,
            "\n{}\n\n**Remediation:** {}\n",
            c.doc.trim(),
            c.remediation.trim().replace('\n', " ")
        );
    }
    s
}
