//! Text about checks for people: `explain ID` and the generated `docs/checks.md` come from here,
//! from the same fields of the check files, so they cannot disagree.

use crate::checks::Check;
use crate::report::section_rank;
use std::fmt::Write as _;

/// What `mlsdm-audit explain ID` prints.
pub fn explain(c: &Check) -> String {
    let mut s = format!(
        "{}: {}\n\nseverity: {}   source: {}\nsection:  {}\n",
        c.id, c.title, c.severity, c.source, c.section
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
            "evidence may live outside the cluster: {}; not finding it is no-data, never fail (attest it with --attestations)",
            e.trim()
        );
    }
    if !c.checklist.is_empty() {
        s.push_str("\nChecklist lines:\n");
        for l in &c.checklist {
            let _ = writeln!(s, "  - {l}");
        }
    }
    let _ = write!(
        s,
        "\nWhy it matters:\n{}\n\nRemediation:\n{}\n",
        indent(&c.doc),
        indent(&c.remediation)
    );
    s
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
        .filter(|c| c.source != crate::checks::Source::Manual)
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
            c.id, c.title, c.severity, c.source
        );
        if let Some(r) = c.requires {
            let _ = writeln!(s, "- optional: runs only when `{r}` is declared");
        }
        if let Some(e) = &c.external_evidence {
            let _ = writeln!(
                s,
                "- evidence may live outside the cluster ({}): not found is no-data, attestable",
                e.trim()
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
