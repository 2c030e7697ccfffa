//! `--format markdown`: the seed checklist itself, filled in. Every checkbox is ticked from the
//! results of the checks that cover its line, with the evidence or the reason beside it, and the
//! Sign-Off section holds the reviewers' names and dates.

use super::checklist::{self, LineState};
use super::{Report, Status};
use std::fmt::Write as _;

const SEED: &str = crate::seed::TEXT;

/// Only a satisfied line is ticked: a waived or not-applicable line stays unticked, with its
/// own label, so a reviewer signing the document never reads an exception as a pass.
fn mark(state: LineState) -> &'static str {
    match state {
        LineState::Done => "[x]",
        LineState::Waived | LineState::NotApplicable | LineState::Open => "[ ]",
    }
}

/// Text from the audited objects, checks and reviewers, made inert in Markdown: no raw HTML
/// (a `<script>` in an object's name must not reach a reviewer's renderer as a tag), no table
/// cell breaks, one line, no control character (`super::printable`). A backslash is escaped
/// too: `\<` in the input would otherwise become `\\<`, an escaped backslash before a live `<`.
fn md(s: &str) -> String {
    let s = super::printable(s, false);
    let mut out = String::with_capacity(s.len());
    for c in s.chars() {
        match c {
            '\\' | '<' | '>' | '|' | '`' | '[' | ']' => {
                out.push('\\');
                out.push(c);
            }
            '\n' | '\r' => out.push(' '),
            c => out.push(c),
        }
    }
    out
}

fn suffix(state: LineState, detail: &str) -> String {
    let detail = md(detail);
    match state {
        LineState::Done => format!(" — {detail}"),
        LineState::Waived => format!(" — *waived:* {detail}"),
        LineState::NotApplicable => format!(" — *n/a:* {detail}"),
        LineState::Open => format!(" — **open:** {detail}"),
    }
}

fn signoff_table(report: &Report) -> String {
    // The names and dates are what the signers typed, and a pasted or forged signature reads
    // the same here: the table says so, and `verify` decides.
    let mut s = String::from(
        "Signatures as the report lists them, not verified here: `mlsdm-audit verify` checks them.\n\n| Role | Name | Date | Signing key |\n| --- | --- | --- | --- |\n",
    );
    let mut roles: Vec<&str> = crate::seed::roles().iter().map(String::as_str).collect();
    for so in &report.signoffs {
        if !roles.contains(&so.role.as_str()) {
            roles.push(&so.role);
        }
    }
    for role in roles {
        let signed: Vec<_> = report.signoffs.iter().filter(|s| s.role == role).collect();
        if signed.is_empty() {
            let _ = writeln!(s, "| {} | | | |", md(role));
        }
        for so in signed {
            let key = so
                .public_key
                .split_whitespace()
                .take(2)
                .collect::<Vec<_>>()
                .join(" ");
            let short = if key.chars().count() > 40 {
                format!("{}…", super::first_chars(&key, 40))
            } else {
                key
            };
            let _ = writeln!(
                s,
                "| {} | {} | {} | {} |",
                md(role),
                md(&so.name),
                md(super::first_chars(&so.time, 10)),
                md(&short)
            );
        }
    }
    s.push_str("\nSignatures are checked with `mlsdm-audit verify`, not by reading this table.\n");
    s
}

pub fn render(report: &Report) -> String {
    let view = checklist::build(report);
    // Each leaf line's state, by its line in the seed (the same text both sides parse).
    let by_seed_line: std::collections::HashMap<usize, &checklist::Line<'_>> = view
        .iter()
        .flat_map(|s| s.lines.iter())
        .filter_map(|l| Some((l.seed_line?, l)))
        .collect();
    let mut out = String::new();
    let mut wrote_preamble = false;
    let mut wrote_signoff = false;
    // The seed is laid out again line by line; `seed::item_at` says which lines are checkbox
    // items (the seed module is the only parser of the checklist).
    for (i, l) in SEED.lines().enumerate() {
        let Some(item) = crate::seed::item_at(i) else {
            out.push_str(l);
            out.push('\n');
            if !wrote_preamble && l.starts_with("# ") {
                wrote_preamble = true;
                let s = &report.summary;
                let _ = write!(
                    out,
                    "\n> Filled in by {} {} on {} from {} ({}). {} pass, {} fail, {} error, {} no-data, {} skipped, {} waived, {} manual.\n",
                    md(&report.tool.name),
                    md(&report.tool.version),
                    md(&report.generated_at),
                    md(&if report.target.manifests.is_empty() {
                        report.target.mode.to_string()
                    } else {
                        report.target.manifests.join(", ")
                    }),
                    report.target.mode,
                    s.pass,
                    s.fail,
                    s.error,
                    s.no_data,
                    s.skipped,
                    s.waived,
                    s.manual
                );
                if let Some(t) = super::trend(report) {
                    let _ = writeln!(out, "> {}.", t.line());
                }
                // The gate's verdict, as the table and the HTML state it: the document reviewers
                // sign had given counts only, so an input that rendered nothing or a watch that
                // could not decide read as ticked lines with no ERROR near the top.
                let _ = writeln!(out, ">\n> **Verdict: {}**", md(&super::verdict(report)));
                // Which release this is: the bytes the audit read, which `verify --manifests`
                // holds a release's files to.
                if let Some(d) = &report.target.manifests_digest {
                    let _ = writeln!(
                        out,
                        ">\n> Manifests audited: {} file(s), sha256 {} (`mlsdm-audit verify --manifests` holds a release's files to them).",
                        d.files(),
                        md(&d.sha256)
                    );
                }
                for line in super::fleet::lines(report) {
                    let _ = writeln!(out, ">\n> {}", md(&line));
                }
            }
            continue;
        };
        let indent = &l[..l.len() - l.trim_start().len()];
        let text = &item.text;
        if item.section == "Sign-Off" {
            // The role lines become the sign-off table, written once.
            if !wrote_signoff {
                wrote_signoff = true;
                out.push_str(&signoff_table(report));
            }
            continue;
        }
        if !item.is_leaf() {
            // A group line is done when all its lines are.
            let done = item.children.iter().all(|c| {
                by_seed_line
                    .get(c)
                    .is_some_and(|l| l.state == LineState::Done)
            });
            let _ = writeln!(out, "{indent}- {} {text}", if done { "[x]" } else { "[ ]" });
            continue;
        }
        let Some(line) = by_seed_line.get(&i) else {
            // Not a leaf the view knows: leave it unticked rather than guess.
            let _ = writeln!(out, "{l}");
            continue;
        };
        let _ = writeln!(
            out,
            "{indent}- {} {text}{}",
            mark(line.state),
            suffix(line.state, &checklist::detail(line))
        );
    }
    // Checks the seed does not list (a team's own): their sections after the seed's.
    let beyond: Vec<_> = view
        .iter()
        .filter(|s| s.lines.iter().all(|l| l.seed_line.is_none()))
        .collect();
    if !beyond.is_empty() {
        out.push_str("\n## Checks beyond the seed checklist\n");
        for sec in beyond {
            let _ = writeln!(out, "\n### {}\n", md(&sec.path));
            for line in &sec.lines {
                let _ = writeln!(
                    out,
                    "- {} {}{}",
                    mark(line.state),
                    md(&line.text),
                    suffix(line.state, &checklist::detail(line))
                );
            }
        }
    }
    let waived: Vec<_> = report
        .results
        .iter()
        .filter(|r| r.status == Status::Waived)
        .collect();
    if !waived.is_empty() {
        out.push_str("\n## Waivers in this report\n\n| Check | Object | Owner | Expires | Reason |\n| --- | --- | --- | --- | --- |\n");
        for r in waived {
            if let Some(w) = &r.waiver {
                let obj = object_name(r);
                let _ = writeln!(
                    out,
                    "| {} | {} | {} | {} | {} |",
                    md(&r.id),
                    md(&obj),
                    md(&w.owner),
                    md(&w.expires),
                    md(&w.reason)
                );
            }
        }
    }
    out.push_str(&fleet_findings(report));
    if !report.notes.is_empty() {
        out.push_str("\n## Notes on the input\n\n");
        for n in &report.notes {
            let _ = writeln!(out, "- {}", md(&n.message));
        }
    }
    out
}

/// The object a result is about, or nothing for a result about the service or the run.
fn object_name(r: &super::CheckResult) -> String {
    r.object
        .as_ref()
        .map(ToString::to_string)
        .unwrap_or_default()
}

/// In a fleet report the checklist above is the fleet's (a line is ticked only when every
/// cluster satisfies it); this says which cluster each failure and error is about.
fn fleet_findings(report: &Report) -> String {
    if report.target.fleet.is_empty() {
        return String::new();
    }
    let mut out = String::from(
        "\n## Failures and errors by cluster\n\n| Cluster | Status | Check | Object | Message |\n| --- | --- | --- | --- | --- |\n",
    );
    for r in report
        .results
        .iter()
        .filter(|r| matches!(r.status, Status::Fail | Status::Error))
    {
        let obj = object_name(r);
        let _ = writeln!(
            out,
            "| {} | {} | {} | {} | {} |",
            md(r.cluster.as_deref().unwrap_or_default()),
            r.status,
            md(&r.id),
            md(&obj),
            md(&r.message)
        );
    }
    out
}
