//! `--format markdown`: the seed checklist itself, filled in. Every checkbox is ticked from the
//! results of the checks that cover its line, with the evidence or the reason beside it, and the
//! Sign-Off section holds the reviewers' names and dates.

use super::checklist::{self, LineState};
use super::{Report, Status};
use std::fmt::Write as _;

const SEED: &str = include_str!("../../fixtures/seed/PRODUCTION_CHECKLIST.md");

/// The seed's sign-off roles, in its order.
pub const ROLES: &[&str] = &[
    "Development Team Lead",
    "DevOps/SRE Lead",
    "Security Team",
    "Product Owner",
];

fn mark(state: LineState) -> &'static str {
    match state {
        LineState::Done | LineState::Waived | LineState::NotApplicable => "[x]",
        LineState::Open => "[ ]",
    }
}

fn suffix(state: LineState, detail: &str) -> String {
    let detail = detail.replace('\n', " ");
    match state {
        LineState::Done => format!(" — {detail}"),
        LineState::Waived => format!(" — *waived:* {detail}"),
        LineState::NotApplicable => format!(" — *n/a:* {detail}"),
        LineState::Open => format!(" — **open:** {detail}"),
    }
}

fn signoff_table(report: &Report) -> String {
    let mut s = String::from("| Role | Name | Date | Signing key |\n| --- | --- | --- | --- |\n");
    let mut roles: Vec<&str> = ROLES.to_vec();
    for so in &report.signoffs {
        if !roles.contains(&so.role.as_str()) {
            roles.push(&so.role);
        }
    }
    for role in roles {
        let signed: Vec<_> = report.signoffs.iter().filter(|s| s.role == role).collect();
        if signed.is_empty() {
            let _ = writeln!(s, "| {role} | | | |");
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
                "| {role} | {} | {} | `{short}` |",
                so.name,
                super::first_chars(&so.time, 10)
            );
        }
    }
    s.push_str("\nSignatures are checked with `mlsdm-audit verify`, not by reading this table.\n");
    s
}

pub fn render(report: &Report) -> String {
    let view = checklist::build(report);
    let lines: Vec<&checklist::Line<'_>> = view.iter().flat_map(|s| s.lines.iter()).collect();
    let raw: Vec<&str> = SEED.lines().collect();
    let mut out = String::new();
    let mut leaf = 0;
    let mut in_signoff = false;
    let mut wrote_preamble = false;
    for (i, l) in raw.iter().enumerate() {
        if l.starts_with("## ") {
            in_signoff = l.trim() == "## Sign-Off";
        }
        let trimmed = l.trim_start();
        let indent = &l[..l.len() - trimmed.len()];
        let Some(text) = trimmed.strip_prefix("- [ ] ") else {
            out.push_str(l);
            out.push('\n');
            if !wrote_preamble && l.starts_with("# ") {
                wrote_preamble = true;
                let s = &report.summary;
                let _ = write!(
                    out,
                    "\n> Filled in by {} {} on {} from {} ({}). {} pass, {} fail, {} error, {} no-data, {} skipped, {} waived, {} manual.\n",
                    report.tool.name,
                    report.tool.version,
                    report.generated_at,
                    if report.target.manifests.is_empty() {
                        report.target.mode.clone()
                    } else {
                        report.target.manifests.join(", ")
                    },
                    report.target.mode,
                    s.pass,
                    s.fail,
                    s.error,
                    s.no_data,
                    s.skipped,
                    s.waived,
                    s.manual
                );
            }
            continue;
        };
        let has_children = raw.get(i + 1).is_some_and(|n| {
            let t = n.trim_start();
            t.starts_with("- [ ] ") && n.len() - t.len() > indent.len()
        });
        if in_signoff {
            // The role lines become the sign-off table, written once.
            if !raw[i - 1].trim_start().starts_with("- [ ] ") {
                out.push_str(&signoff_table(report));
            }
            continue;
        }
        if has_children {
            // A group line is done when all its lines are.
            let mut j = i + 1;
            let mut states = Vec::new();
            let mut k = leaf;
            while let Some(n) = raw.get(j) {
                let t = n.trim_start();
                if !(t.starts_with("- [ ] ") && n.len() - t.len() > indent.len()) {
                    break;
                }
                states.push(lines[k].state);
                k += 1;
                j += 1;
            }
            let done = states.iter().all(|s| *s != LineState::Open);
            let _ = writeln!(out, "{indent}- {} {text}", if done { "[x]" } else { "[ ]" });
            continue;
        }
        let line = lines[leaf];
        leaf += 1;
        let _ = writeln!(
            out,
            "{indent}- {} {text}{}",
            mark(line.state),
            suffix(line.state, &checklist::detail(line))
        );
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
                let obj = r
                    .object
                    .as_ref()
                    .map(ToString::to_string)
                    .unwrap_or_default();
                let _ = writeln!(
                    out,
                    "| {} | {obj} | {} | {} | {} |",
                    r.id, w.owner, w.expires, w.reason
                );
            }
        }
    }
    out
}
