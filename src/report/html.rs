//! `--format html`: one self-contained page (no external assets): a summary with counts and a bar
//! per section, the checklist with status filters, every result, and the sign-off table. It
//! prints cleanly (filters hidden, everything expanded).

use super::checklist::{self, LineState};
use super::{Report, Status};
use std::fmt::Write as _;

fn esc(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    for c in s.chars() {
        match c {
            '&' => out.push_str("&amp;"),
            '<' => out.push_str("&lt;"),
            '>' => out.push_str("&gt;"),
            '"' => out.push_str("&quot;"),
            '\'' => out.push_str("&#39;"),
            c => out.push(c),
        }
    }
    out
}

/// Checklist text keeps its `**bold**` and `code` markers out of the page.
fn plain(s: &str) -> String {
    s.replace("**", "").replace('`', "")
}

const STYLE: &str = r#"
:root { --pass:#1a7f37; --fail:#cf222e; --waived:#8250df; --na:#6e7781; --open:#bf8700; }
body { font: 15px/1.45 system-ui, -apple-system, "Segoe UI", sans-serif; margin: 2rem auto; max-width: 1100px; color: #1f2328; padding: 0 1rem; }
h1 { margin-bottom: .2rem; } .meta { color: #57606a; margin-top: 0; }
.cards { display: flex; gap: .6rem; flex-wrap: wrap; margin: 1rem 0; }
.card { border: 1px solid #d0d7de; border-radius: 6px; padding: .5rem .9rem; min-width: 6rem; }
.card b { display: block; font-size: 1.5rem; }
.bar { display: flex; height: .8rem; border-radius: 3px; overflow: hidden; background: #eaeef2; width: 100%; }
.bar span { display: block; height: 100%; }
.s-done { background: var(--pass); } .s-fail { background: var(--fail); } .s-open { background: var(--open); } .s-waived { background: var(--waived); } .s-na { background: var(--na); }
table { border-collapse: collapse; width: 100%; margin: .5rem 0 1.5rem; }
th, td { border-bottom: 1px solid #d0d7de; padding: .35rem .5rem; text-align: left; vertical-align: top; }
th { background: #f6f8fa; }
.sections td:first-child { width: 45%; } .sections td:nth-child(3) { width: 40%; }
ul.checklist { list-style: none; padding-left: 0; }
ul.checklist li { padding: .3rem 0; border-bottom: 1px dashed #eaeef2; }
.tick { display: inline-block; width: 1.4rem; font-weight: bold; }
li[data-state=done] .tick { color: var(--pass); } li[data-state=open] .tick { color: var(--open); }
li[data-state=waived] .tick { color: var(--waived); } li[data-state=na] .tick { color: var(--na); }
.detail { color: #57606a; font-size: .9em; margin-left: 1.4rem; display: block; }
.status { font-weight: 600; text-transform: uppercase; font-size: .8em; }
.status-pass { color: var(--pass); } .status-fail, .status-error { color: var(--fail); }
.status-waived { color: var(--waived); } .status-no-data, .status-manual { color: var(--open); } .status-skipped { color: var(--na); }
.filters { position: sticky; top: 0; background: #fff; padding: .5rem 0; border-bottom: 1px solid #d0d7de; z-index: 1; }
.filters label { margin-right: 1rem; }
.hidden { display: none; }
.verdict { border-radius: 6px; padding: .7rem 1rem; margin: 1rem 0; color: #fff; display: flex; flex-wrap: wrap; gap: .3rem 1.2rem; align-items: baseline; }
.verdict b { font-size: 1.15rem; } .verdict-pass { background: var(--pass); } .verdict-fail { background: var(--fail); } .verdict-error { background: var(--open); }
.rag { display: inline-block; width: .7rem; height: .7rem; border-radius: 50%; margin-right: .4rem; vertical-align: baseline; }
.rag-red { background: var(--fail); } .rag-amber { background: var(--open); } .rag-green { background: var(--pass); }
ol.findings { padding-left: 1.4rem; } ol.findings li { margin: .2rem 0 .8rem; }
.sev { display: inline-block; border-radius: 3px; padding: 0 .35rem; font-size: .8em; font-weight: 600; color: #fff; background: var(--na); text-transform: uppercase; }
.sev-critical, .sev-high { background: var(--fail); } .sev-medium { background: var(--open); }
.where { color: #57606a; font-size: .9em; } .fix { font-size: .9em; } .fix::before { content: "Fix: "; font-weight: 600; }
li.failing .tick { color: var(--fail); }
.scroll { overflow-x: auto; }
td, li, .detail { overflow-wrap: anywhere; }
@media (max-width: 600px) { body { margin: 1rem auto; font-size: 14px; } .sections td:first-child { width: auto; } .card { min-width: 4.2rem; } th, td { padding: .3rem; } }
@media print { .filters { display: none; } .hidden { display: revert; } body { margin: 0; max-width: none; } h2 { break-after: avoid; } }
"#;

const SCRIPT: &str = r"
function applyFilters() {
  const shown = new Set([...document.querySelectorAll('.filters input:checked')].map(i => i.value));
  document.querySelectorAll('[data-state]').forEach(el => el.classList.toggle('hidden', !shown.has(el.dataset.state)));
  document.querySelectorAll('[data-status]').forEach(el => el.classList.toggle('hidden', !shown.has(el.dataset.status)));
}
document.querySelectorAll('.filters input').forEach(i => i.addEventListener('change', applyFilters));
// Whether the page is wider than the window (a phone's): the browser test reads it.
document.documentElement.dataset.overflow = String(document.documentElement.scrollWidth > document.documentElement.clientWidth);
// A link can preselect filters: report.html#show=open,fail
if (location.hash.startsWith('#show=')) {
  const want = new Set(location.hash.slice(6).split(','));
  document.querySelectorAll('.filters input').forEach(i => { i.checked = want.has(i.value); });
  applyFilters();
}
";

/// A checklist line left open by a failure or an error (not only by missing data).
fn is_failing(line: &checklist::Line<'_>) -> bool {
    line.state == LineState::Open
        && line
            .results
            .iter()
            .any(|r| matches!(r.status, Status::Fail | Status::Error))
}

/// The check's fix hint, as the report records it.
fn remediation<'a>(report: &'a Report, id: &str) -> Option<&'a str> {
    report
        .checks
        .iter()
        .find(|c| c.id == id)
        .and_then(|c| c.remediation.as_deref())
}

/// The gate's verdict and the score, first thing on the page, coloured as the exit code reads.
fn verdict_banner(report: &Report) -> String {
    let class = match report.exit_code() {
        0 => "pass",
        1 => "fail",
        _ => "error",
    };
    let score = super::score(report).map_or_else(
        || "score: n/a (nothing decided)".to_string(),
        |(pct, pass, decided)| format!("score {pct}% ({pass} of {decided} decided results pass)"),
    );
    let trend = super::trend(report)
        .map(|t| format!("<span id=\"trend\">{}</span>", esc(&t.line())))
        .unwrap_or_default();
    format!(
        "<div class=\"verdict verdict-{class}\" id=\"verdict\"><b>{}</b><span>{}</span>{trend}</div>\n",
        esc(&super::verdict(report)),
        esc(&score)
    )
}

/// Failures and errors first, severest first, each with where, what and how to fix it.
fn findings(report: &Report) -> String {
    let mut open: Vec<&super::CheckResult> = report
        .results
        .iter()
        .filter(|r| matches!(r.status, Status::Fail | Status::Error))
        .collect();
    if open.is_empty() {
        return String::new();
    }
    open.sort_by(|a, b| b.severity.cmp(&a.severity).then_with(|| a.id.cmp(&b.id)));
    let mut h = format!(
        "<h2 id=\"findings\">Failures and errors ({})</h2>\n<ol class=\"findings\">\n",
        open.len()
    );
    for r in open {
        let place = match (&r.object, &r.location) {
            (Some(o), Some(l)) => format!(
                "{} &middot; {}:{}",
                esc(&o.to_string()),
                esc(&l.file),
                l.line
            ),
            (Some(o), None) => esc(&o.to_string()),
            (None, Some(l)) => format!("{}:{}", esc(&l.file), l.line),
            (None, None) => String::new(),
        };
        let place = format!("{}{place}", esc(&super::fleet::prefix(r)));
        let fix = remediation(report, &r.id)
            .map(|f| format!("<div class=\"fix\">{}</div>", esc(f)))
            .unwrap_or_default();
        let _ = writeln!(
            h,
            "<li data-status=\"{st}\"><span class=\"sev sev-{sev}\">{sev}</span> <span class=\"status status-{st}\">{st}{}</span> <code>{}</code> {}<br><span class=\"where\">{place}</span><div>{}</div>{fix}</li>",
            super::change_mark(r),
            esc(&r.id),
            esc(&r.title),
            esc(&r.message),
            st = r.status,
            sev = r.severity,
        );
    }
    h.push_str("</ol>\n");
    h
}

fn state_name(s: LineState) -> &'static str {
    match s {
        LineState::Done => "done",
        LineState::Open => "open",
        LineState::Waived => "waived",
        LineState::NotApplicable => "na",
    }
}

pub fn render(report: &Report) -> String {
    let view = checklist::build(report);
    let s = &report.summary;
    let mut h = String::new();
    let _ = write!(
        h,
        "<!DOCTYPE html>\n<html lang=\"en\">\n<head>\n<meta charset=\"utf-8\">\n<meta name=\"viewport\" content=\"width=device-width, initial-scale=1\">\n<title>MLSDM production checklist: audit report</title>\n<style>{STYLE}</style>\n</head>\n<body>\n"
    );
    let _ = writeln!(
        h,
        "<h1>MLSDM production checklist</h1>\n<p class=\"meta\">Audited by {} {} on {} &middot; {} &middot; fail-on {}</p>",
        esc(&report.tool.name),
        esc(&report.tool.version),
        esc(&report.generated_at),
        esc(&if report.target.manifests.is_empty() {
            report.target.mode.to_string()
        } else {
            report.target.manifests.join(", ")
        }),
        report.target.fail_on
    );
    h.push_str("<div class=\"cards\" id=\"summary\">\n");
    for (label, n) in [
        ("pass", s.pass),
        ("fail", s.fail),
        ("error", s.error),
        ("no-data", s.no_data),
        ("skipped", s.skipped),
        ("waived", s.waived),
        ("manual", s.manual),
    ] {
        let _ = writeln!(
            h,
            "<div class=\"card status-{label}\"><b>{n}</b>{label}</div>"
        );
    }
    h.push_str("</div>\n");
    h.push_str(&verdict_banner(report));
    h.push_str(&fleet_list(report));
    h.push_str(&findings(report));
    h.push_str("<h2>Sections</h2>\n<div class=\"scroll\"><table class=\"sections\"><tr><th>Section</th><th>Lines done</th><th></th></tr>\n");
    for sec in &view {
        let total = sec.lines.len();
        let count = |st: LineState| sec.lines.iter().filter(|l| l.state == st).count();
        let done =
            count(LineState::Done) + count(LineState::Waived) + count(LineState::NotApplicable);
        // Red: a line with a failure or an error; amber: open for another reason (no data, a
        // manual item, not evaluated); green: every line done, waived or not applicable.
        let failing = sec.lines.iter().filter(|l| is_failing(l)).count();
        let rag = if failing > 0 {
            "red"
        } else if count(LineState::Open) > 0 {
            "amber"
        } else {
            "green"
        };
        let _ = write!(
            h,
            "<tr data-rag=\"{rag}\"><td><span class=\"rag rag-{rag}\"></span>{}</td><td>{done}/{total}</td><td><div class=\"bar\">",
            esc(&sec.path)
        );
        for (class, n) in [
            ("done", count(LineState::Done)),
            ("waived", count(LineState::Waived)),
            ("na", count(LineState::NotApplicable)),
            ("fail", failing),
            ("open", count(LineState::Open) - failing),
        ] {
            if n > 0 {
                let _ = write!(
                    h,
                    "<span class=\"s-{class}\" style=\"width:{:.1}%\"></span>",
                    100.0 * n as f64 / total as f64
                );
            }
        }
        h.push_str("</div></td></tr>\n");
    }
    h.push_str("</table></div>\n<div class=\"filters\">Show: ");
    for (value, label) in [
        ("open", "open"),
        ("done", "done"),
        ("waived", "waived"),
        ("na", "n/a"),
        ("fail", "fail"),
        ("error", "error"),
        ("no-data", "no-data"),
        ("manual", "manual"),
        ("skipped", "skipped"),
        ("pass", "pass"),
    ] {
        let _ = write!(
            h,
            "<label><input type=\"checkbox\" value=\"{value}\" checked> {label}</label>"
        );
    }
    h.push_str("</div>\n<h2>Checklist</h2>\n");
    for sec in &view {
        let _ = writeln!(h, "<h3>{}</h3>\n<ul class=\"checklist\">", esc(&sec.path));
        for line in &sec.lines {
            let tick = if line.state == LineState::Open {
                "&#9744;"
            } else {
                "&#9745;"
            };
            let _ = writeln!(
                h,
                "<li data-state=\"{}\"{}><span class=\"tick\">{tick}</span>{}<span class=\"detail\">{}</span></li>",
                state_name(line.state),
                if is_failing(line) {
                    " class=\"failing\""
                } else {
                    ""
                },
                esc(&plain(&line.text)),
                esc(&checklist::detail(line))
            );
        }
        h.push_str("</ul>\n");
    }
    h.push_str("<h2>Results</h2>\n<div class=\"scroll\"><table class=\"results\"><tr><th>Status</th><th>Severity</th><th>Check</th><th>Object</th><th>Message</th></tr>\n");
    for r in &report.results {
        let object = match (&r.object, &r.location) {
            (Some(o), Some(l)) => format!(
                "{}<br><small>{}:{}</small>",
                esc(&o.to_string()),
                esc(&l.file),
                l.line
            ),
            (Some(o), None) => esc(&o.to_string()),
            _ => "&ndash;".into(),
        };
        let object = match &r.cluster {
            Some(c) => format!("<small>cluster {}</small><br>{object}", esc(c)),
            None => object,
        };
        let fix = match (r.status, remediation(report, &r.id)) {
            (Status::Fail | Status::Error, Some(fix)) => {
                format!("<div class=\"fix\">{}</div>", esc(fix))
            }
            _ => String::new(),
        };
        let _ = writeln!(
            h,
            "<tr data-status=\"{st}\"><td class=\"status status-{st}\">{st}</td><td>{}</td><td><code>{}</code></td><td>{object}</td><td>{}{fix}</td></tr>",
            r.severity,
            esc(&r.id),
            esc(&r.message),
            st = r.status
        );
    }
    h.push_str("</table></div>\n");
    if !report.notes.is_empty() {
        h.push_str("<h2>Notes on the input</h2>\n<ul class=\"notes\">\n");
        for n in &report.notes {
            let _ = writeln!(h, "<li>{}</li>", esc(&n.message));
        }
        h.push_str("</ul>\n");
    }
    h.push_str("<h2>Sign-Off</h2>\n<table class=\"signoff\"><tr><th>Role</th><th>Name</th><th>Date</th></tr>\n");
    for role in crate::seed::roles() {
        let signed: Vec<_> = report.signoffs.iter().filter(|s| s.role == *role).collect();
        if signed.is_empty() {
            let _ = writeln!(h, "<tr><td>{}</td><td></td><td></td></tr>", esc(role));
        }
        for so in signed {
            let _ = writeln!(
                h,
                "<tr><td>{}</td><td>{}</td><td>{}</td></tr>",
                esc(role),
                esc(&so.name),
                esc(super::first_chars(&so.time, 10))
            );
        }
    }
    for so in report
        .signoffs
        .iter()
        .filter(|s| !crate::seed::is_role(&s.role))
    {
        let _ = writeln!(
            h,
            "<tr><td>{}</td><td>{}</td><td>{}</td></tr>",
            esc(&so.role),
            esc(&so.name),
            esc(super::first_chars(&so.time, 10))
        );
    }
    let waived = report
        .results
        .iter()
        .filter(|r| r.status == Status::Waived)
        .count();
    let _ = writeln!(
        h,
        "</table>\n<p class=\"meta\">{waived} waived result(s). Signatures are checked with <code>mlsdm-audit verify</code>. Checklist text: MLSDM PRODUCTION_CHECKLIST.md (MIT, &copy; neuron7x).</p>\n<script>{SCRIPT}</script>\n</body>\n</html>"
    );
    h
}

/// A fleet report's clusters, each with its counts or why it could not be audited.
fn fleet_list(report: &Report) -> String {
    if report.target.fleet.is_empty() {
        return String::new();
    }
    let mut h = String::from("<h2 id=\"fleet\">Clusters</h2>\n<ul class=\"fleet\">\n");
    for (m, line) in report.target.fleet.iter().zip(super::fleet::lines(report)) {
        let _ = writeln!(h, "<li data-status=\"{}\">{}</li>", m.status, esc(&line));
    }
    h.push_str("</ul>\n");
    h
}
