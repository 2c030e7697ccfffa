//! `--format html`: one self-contained page (no external assets): a summary with counts and a bar
//! per section, the checklist with status filters, every result, and the sign-off table. It
//! prints cleanly (filters hidden, everything expanded).
//!
//! Written with maud: every value interpolated into the page is escaped unless it is wrapped in
//! `PreEscaped`, which only the page's own constant style and script are. Object names, messages
//! and reviewers' names come from the audited cluster and from people; none can become markup.

use super::checklist::{self, LineState};
use super::{CheckResult, Report, Status};
use maud::{DOCTYPE, Markup, PreEscaped, html};

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
fn verdict_banner(report: &Report) -> Markup {
    let class = match report.exit_code() {
        0 => "pass",
        1 => "fail",
        _ => "error",
    };
    let score = super::score(report).map_or_else(
        || "score: n/a (nothing decided)".to_string(),
        |(pct, pass, decided)| format!("score {pct}% ({pass} of {decided} decided results pass)"),
    );
    html! {
        div class={ "verdict verdict-" (class) } id="verdict" {
            b { (super::verdict(report)) }
            span { (score) }
            @if let Some(t) = super::trend(report) {
                span id="trend" { (t.line()) }
            }
        }
    }
}

/// Where a result is: its object and the manifest line, as far as known.
fn place(r: &CheckResult) -> Markup {
    html! {
        // In a fleet report the cluster first: the same object is in every cluster.
        (super::fleet::prefix(r))
        @match (&r.object, &r.location) {
            (Some(o), Some(l)) => { (o.to_string()) " · " (l.file) ":" (l.line) }
            (Some(o), None) => { (o.to_string()) }
            (None, Some(l)) => { (l.file) ":" (l.line) }
            (None, None) => {}
        }
    }
}

/// A fleet report's clusters, each with its counts or why it could not be audited.
fn fleet_list(report: &Report) -> Markup {
    html! {
        @if !report.target.fleet.is_empty() {
            h2 id="fleet" { "Clusters" }
            ul class="fleet" {
                @for (m, line) in report.target.fleet.iter().zip(super::fleet::lines(report)) {
                    li data-status=(m.status) { (line) }
                }
            }
        }
    }
}

/// Failures and errors first, severest first, each with where, what and how to fix it.
fn findings(report: &Report) -> Markup {
    let mut open: Vec<&CheckResult> = report
        .results
        .iter()
        .filter(|r| matches!(r.status, Status::Fail | Status::Error))
        .collect();
    open.sort_by(|a, b| b.severity.cmp(&a.severity).then_with(|| a.id.cmp(&b.id)));
    html! {
        @if !open.is_empty() {
            h2 id="findings" { "Failures and errors (" (open.len()) ")" }
            ol class="findings" {
                @for r in &open {
                    li data-status=(r.status) {
                        span class={ "sev sev-" (r.severity) } { (r.severity) }
                        " "
                        span class={ "status status-" (r.status) } { (r.status) (super::change_mark(r)) }
                        " "
                        code { (r.id) }
                        " " (r.title)
                        br;
                        span class="where" { (place(r)) }
                        div { (r.message) }
                        @if let Some(fix) = remediation(report, &r.id) {
                            div class="fix" { (fix) }
                        }
                    }
                }
            }
        }
    }
}

fn state_name(s: LineState) -> &'static str {
    match s {
        LineState::Done => "done",
        LineState::Open => "open",
        LineState::Waived => "waived",
        LineState::NotApplicable => "na",
    }
}

/// One row of the sections table: red when a line fails or errs, amber when one is open for
/// another reason (no data, a manual item, not evaluated) or waived, green when every line is
/// done or not applicable; and a bar of the lines' states. A waived line is a failure someone
/// accepted, never "done" (as in the Markdown checklist a reviewer signs): a section all waived
/// had shown green, its lines ticked.
fn section_row(sec: &checklist::Section<'_>) -> Markup {
    let total = sec.lines.len();
    let count = |st: LineState| sec.lines.iter().filter(|l| l.state == st).count();
    let done = count(LineState::Done) + count(LineState::NotApplicable);
    let failing = sec.lines.iter().filter(|l| is_failing(l)).count();
    let rag = if failing > 0 {
        "red"
    } else if count(LineState::Open) + count(LineState::Waived) > 0 {
        "amber"
    } else {
        "green"
    };
    let parts = [
        ("done", count(LineState::Done)),
        ("waived", count(LineState::Waived)),
        ("na", count(LineState::NotApplicable)),
        ("fail", failing),
        ("open", count(LineState::Open) - failing),
    ];
    html! {
        tr data-rag=(rag) {
            td { span class={ "rag rag-" (rag) } {} (sec.path) }
            td { (done) "/" (total) }
            td {
                div class="bar" {
                    @for (class, n) in parts {
                        @if n > 0 {
                            span class={ "s-" (class) }
                                style=(format!("width:{:.1}%", 100.0 * n as f64 / total as f64)) {}
                        }
                    }
                }
            }
        }
    }
}

const FILTERS: [(&str, &str); 10] = [
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
];

fn signoff_row(role: &str, name: &str, time: &str) -> Markup {
    html! { tr { td { (role) } td { (name) } td { (super::first_chars(time, 10)) } } }
}

pub fn render(report: &Report) -> String {
    let view = checklist::build(report);
    let s = &report.summary;
    let target = if report.target.manifests.is_empty() {
        report.target.mode.to_string()
    } else {
        report.target.manifests.join(", ")
    };
    let cards = [
        ("pass", s.pass),
        ("fail", s.fail),
        ("error", s.error),
        ("no-data", s.no_data),
        ("skipped", s.skipped),
        ("waived", s.waived),
        ("manual", s.manual),
    ];
    let waived = report
        .results
        .iter()
        .filter(|r| r.status == Status::Waived)
        .count();
    let page = html! {
        (DOCTYPE)
        html lang="en" {
            head {
                meta charset="utf-8";
                meta name="viewport" content="width=device-width, initial-scale=1";
                title { "MLSDM production checklist: audit report" }
                style { (PreEscaped(STYLE)) }
            }
            body {
                h1 { "MLSDM production checklist" }
                p class="meta" {
                    "Audited by " (report.tool.name) " " (report.tool.version) " on "
                    (report.generated_at) " · " (target) " · fail-on " (report.target.fail_on)
                }
                div class="cards" id="summary" {
                    @for (label, n) in cards {
                        div class={ "card status-" (label) } { b { (n) } (label) }
                    }
                }
                (verdict_banner(report))
                (fleet_list(report))
                (findings(report))
                h2 { "Sections" }
                div class="scroll" {
                    table class="sections" {
                        tr { th { "Section" } th { "Lines done" } th {} }
                        @for sec in &view { (section_row(sec)) }
                    }
                }
                div class="filters" {
                    "Show: "
                    @for (value, label) in FILTERS {
                        label { input type="checkbox" value=(value) checked; " " (label) }
                    }
                }
                h2 { "Checklist" }
                @for sec in &view {
                    h3 { (sec.path) }
                    ul class="checklist" {
                        @for line in &sec.lines {
                            li data-state=(state_name(line.state))
                                class=[is_failing(line).then_some("failing")] {
                                span class="tick" {
                                    // As character references, which tests and scrapers match;
                                    // ticked only when done, as the Markdown's `[x]` (a waived or
                                    // n/a line says so in its detail).
                                    @if line.state == LineState::Done {
                                        (PreEscaped("&#9745;"))
                                    } @else {
                                        (PreEscaped("&#9744;"))
                                    }
                                }
                                (plain(&line.text))
                                span class="detail" { (checklist::detail(line)) }
                            }
                        }
                    }
                }
                h2 { "Results" }
                div class="scroll" {
                    table class="results" {
                        tr { th { "Status" } th { "Severity" } th { "Check" } th { "Object" } th { "Message" } }
                        @for r in &report.results {
                            tr data-status=(r.status) {
                                td class={ "status status-" (r.status) } { (r.status) }
                                td { (r.severity) }
                                td { code { (r.id) } }
                                td {
                                    @if let Some(c) = &r.cluster {
                                        small { "cluster " (c) }
                                        br;
                                    }
                                    @match (&r.object, &r.location) {
                                        (Some(o), Some(l)) => { (o.to_string()) br; small { (l.file) ":" (l.line) } }
                                        (Some(o), None) => { (o.to_string()) }
                                        _ => { "–" }
                                    }
                                }
                                td {
                                    (r.message)
                                    @if matches!(r.status, Status::Fail | Status::Error) {
                                        @if let Some(fix) = remediation(report, &r.id) {
                                            div class="fix" { (fix) }
                                        }
                                    }
                                }
                            }
                        }
                    }
                }
                @if !report.notes.is_empty() {
                    h2 { "Notes on the input" }
                    ul class="notes" {
                        @for n in &report.notes { li { (super::printable(&n.message, true)) } }
                    }
                }
                h2 { "Sign-Off" }
                table class="signoff" {
                    caption { "As the report lists them, not verified here: " code { "mlsdm-audit verify" } " checks them." }
                    tr { th { "Role" } th { "Name" } th { "Date" } }
                    @for role in crate::seed::roles() {
                        @let signed: Vec<_> = report.signoffs.iter().filter(|s| s.role == *role).collect();
                        @if signed.is_empty() {
                            tr { td { (role) } td {} td {} }
                        }
                        @for so in signed { (signoff_row(role, &so.name, &so.time)) }
                    }
                    @for so in report.signoffs.iter().filter(|s| !crate::seed::is_role(&s.role)) {
                        (signoff_row(&so.role, &so.name, &so.time))
                    }
                }
                p class="meta" {
                    (waived) " waived result(s). Signatures are checked with "
                    code { "mlsdm-audit verify" }
                    ". Checklist text: MLSDM PRODUCTION_CHECKLIST.md (MIT, © neuron7x)."
                }
                script { (PreEscaped(SCRIPT)) }
            }
        }
    };
    // maud escapes markup; control characters and bidi overrides it leaves are written as
    // escapes too (`super::printable`), as in every text a reviewer reads.
    super::printable(&one_block_per_line(&page.into_string()), false).into_owned()
}

/// Elements that start a line of the page's source.
const BLOCKS: &[&str] = &[
    "head>",
    "body>",
    "/body>",
    "/html>",
    "meta ",
    "title>",
    "style>",
    "script>",
    "h1>",
    "h2",
    "h3>",
    "p ",
    "p>",
    "ol ",
    "/ol>",
    "ul ",
    "/ul>",
    "li",
    "table ",
    "/table>",
    "tr",
    "div class=\"c",
    "div class=\"v",
    "div class=\"scroll",
    "div class=\"filters",
];

/// maud writes the page on one line; a line break before each block element makes a changed
/// report diff line by line (the committed snapshot, a reviewer's `diff`). Whitespace between
/// these elements does not render. Escaped text never holds a `<`, so only tags are split.
fn one_block_per_line(page: &str) -> String {
    let mut out = String::with_capacity(page.len() + page.len() / 16);
    for (i, piece) in page.split('<').enumerate() {
        if i > 0 {
            if BLOCKS.iter().any(|b| piece.starts_with(b)) && !out.ends_with('\n') {
                out.push('\n');
            }
            out.push('<');
        }
        out.push_str(piece);
    }
    out.push('\n');
    out
}
