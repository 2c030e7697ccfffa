//! `-o table`: what a person reads in a terminal. By default a summary (counts, score, verdict)
//! and then only the failures and errors, each with its object, place, message (which carries
//! the measured value when the check has one) and fix hint; `--show all|failed|open` prints the
//! checklist as tables, one per section. Everything is sized to the terminal's width.

use super::{CheckResult, Report, Status};
use comfy_table::{
    Attribute, Cell, Color, ContentArrangement, Table, presets::UTF8_FULL_CONDENSED,
};
use std::fmt::Write as _;

/// Width used when stdout is not a terminal (a pipe, a CI log, a file).
pub const DEFAULT_WIDTH: u16 = 100;

/// Which results `--show` lays out as the checklist.
#[derive(Clone, Copy, Debug, PartialEq, Eq, clap::ValueEnum)]
pub enum Show {
    /// Every result.
    All,
    /// Failures and errors.
    Failed,
    /// Everything not passing: failures, errors, no-data, skipped and manual items.
    Open,
}

/// `--color`.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, clap::ValueEnum)]
pub enum ColorChoice {
    /// Colour only when stdout is a terminal and NO_COLOR is not set.
    #[default]
    Auto,
    Always,
    Never,
}

impl ColorChoice {
    /// Whether to colour, given where the text goes: `always` wins over NO_COLOR (an explicit
    /// flag outranks the environment), `auto` needs a terminal and no NO_COLOR.
    pub fn enabled(self, to_terminal: bool, no_color_env: bool) -> bool {
        match self {
            Self::Always => true,
            Self::Never => false,
            Self::Auto => to_terminal && !no_color_env,
        }
    }
}

/// How the terminal view is laid out.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct View {
    pub show: Option<Show>,
    pub color: bool,
    pub width: u16,
}

impl Default for View {
    fn default() -> Self {
        Self {
            show: None,
            color: false,
            width: DEFAULT_WIDTH,
        }
    }
}

/// The terminal's width when stdout is one, else [`DEFAULT_WIDTH`].
pub fn stdout_width() -> u16 {
    let term = console::Term::stdout();
    if term.is_term() {
        term.size_checked()
            .map_or(DEFAULT_WIDTH, |(_, cols)| cols.max(40))
    } else {
        DEFAULT_WIDTH
    }
}

fn status_text(status: Status) -> &'static str {
    match status {
        Status::Pass => "PASS",
        Status::Fail => "FAIL",
        Status::Error => "ERROR",
        Status::NoData => "NO-DATA",
        Status::Skipped => "SKIP",
        Status::Waived => "WAIVED",
        Status::Manual => "MANUAL",
    }
}

fn status_color(status: Status) -> (Color, bool) {
    match status {
        Status::Pass => (Color::Green, false),
        Status::Fail => (Color::Red, true),
        Status::Error => (Color::Magenta, true),
        Status::NoData | Status::Manual => (Color::Yellow, false),
        Status::Skipped | Status::Waived => (Color::DarkGrey, false),
    }
}

fn status_cell(text: String, status: Status, color: bool) -> Cell {
    let cell = Cell::new(text);
    if !color {
        return cell;
    }
    let (fg, bold) = status_color(status);
    let cell = cell.fg(fg);
    if bold {
        cell.add_attribute(Attribute::Bold)
    } else {
        cell
    }
}

fn new_table(view: View) -> Table {
    let mut table = Table::new();
    table.load_style(UTF8_FULL_CONDENSED);
    table.set_content_arrangement(ContentArrangement::Dynamic);
    table.set_width(view.width);
    if view.color {
        table.enforce_styling();
    } else {
        table.force_no_tty();
    }
    table
}

fn paint(text: &str, code: &str, color: bool) -> String {
    if color {
        format!("\x1b[{code}m{text}\x1b[0m")
    } else {
        text.to_string()
    }
}

/// A cell's text from the audited input: printable (`super::printable`), and at most
/// `CELL_MAX` characters. comfy-table's wrapping of one long word grows with the square of its
/// length (a 400,000-character container name took a minute to lay out); the JSON report has
/// the text whole.
fn cell_text(s: &str) -> String {
    const CELL_MAX: usize = 4_000;
    let s = super::printable(s, false);
    match s.char_indices().nth(CELL_MAX) {
        None => s.into_owned(),
        Some((at, _)) => format!(
            "{}... ({} more characters: --format json has the whole text)",
            &s[..at],
            s[at..].chars().count()
        ),
    }
}

fn object_text(r: &CheckResult) -> Option<String> {
    let place = match (&r.object, &r.location) {
        (Some(o), Some(l)) => Some(format!("{o}\n{}:{}", l.file, l.line)),
        (Some(o), None) => Some(o.to_string()),
        (None, Some(l)) => Some(format!("{}:{}", l.file, l.line)),
        (None, None) => r.endpoint.clone(),
    };
    // In a fleet report the cluster comes first: the same object exists in every cluster.
    match (&r.cluster, place) {
        (Some(c), Some(p)) => Some(format!("cluster {c}: {p}")),
        (Some(c), None) => Some(format!("cluster {c}")),
        (None, p) => p,
    }
}

fn summary_lines(report: &Report, color: bool) -> String {
    let s = &report.summary;
    let mut out = format!(
        "{} pass, {} fail, {} error, {} no-data, {} skipped, {} waived, {} manual (fail-on: {})\n",
        s.pass, s.fail, s.error, s.no_data, s.skipped, s.waived, s.manual, report.target.fail_on
    );
    let score = super::score(report).map_or_else(
        || "score: n/a (nothing decided)".to_string(),
        |(pct, pass, decided)| format!("score: {pct}% ({pass} of {decided} decided results pass)"),
    );
    let verdict = super::verdict(report);
    let code = match report.exit_code() {
        1 => "1;31",
        3 => "1;35",
        _ => "1;32",
    };
    let _ = writeln!(out, "{score}; verdict: {}", paint(&verdict, code, color));
    if let Some(t) = super::trend(report) {
        let _ = writeln!(out, "{}", t.line());
    }
    for line in super::fleet::lines(report) {
        let _ = writeln!(out, "{line}");
    }
    out
}

fn remediation<'a>(report: &'a Report, id: &str) -> Option<&'a str> {
    report
        .checks
        .iter()
        .find(|c| c.id == id)
        .and_then(|c| c.remediation.as_deref())
        .map(str::trim)
        .filter(|s| !s.is_empty())
}

/// The details of one result for the failure list: what, where, the message, the fix.
fn details(report: &Report, r: &CheckResult) -> String {
    // Plain text: comfy-table measures a cell's width by its characters, escapes included.
    let mut text = format!("{}: {}", r.id, r.title);
    if let Some(o) = object_text(r) {
        let _ = write!(text, "\n{}", o.replace('\n', " at "));
    }
    if r.object.is_some()
        && let Some(e) = &r.endpoint
    {
        let _ = write!(text, "\nendpoint: {e}");
    }
    let _ = write!(text, "\n{}", r.message);
    if let Some(w) = &r.window {
        let _ = write!(
            text,
            "\nwindow: {} asked, {:.0}s evaluated from {}",
            w.asked.as_deref().unwrap_or("none"),
            w.evaluated_seconds,
            w.source
        );
    }
    if let Some(fix) = remediation(report, &r.id) {
        let _ = write!(
            text,
            "\nfix: {}",
            fix.split_whitespace().collect::<Vec<_>>().join(" ")
        );
    }
    text
}

fn failures(report: &Report, view: View) -> String {
    let mut shown: Vec<&CheckResult> = report
        .results
        .iter()
        .filter(|r| matches!(r.status, Status::Fail | Status::Error))
        .collect();
    if shown.is_empty() {
        return String::new();
    }
    // Failures before errors, most severe first; the report's own order otherwise.
    shown.sort_by_key(|r| (r.status != Status::Fail, std::cmp::Reverse(r.severity)));
    let mut table = new_table(view);
    table.set_header(vec!["Status", "Check, object, result and fix"]);
    for r in shown {
        table.add_row(vec![
            status_cell(
                format!("{}\n{}", status_text(r.status), r.severity),
                r.status,
                view.color,
            ),
            Cell::new(cell_text(&details(report, r))),
        ]);
    }
    format!("{table}\n")
}

fn wanted(show: Show, status: Status) -> bool {
    match show {
        Show::All => true,
        Show::Failed => matches!(status, Status::Fail | Status::Error),
        Show::Open => !matches!(status, Status::Pass | Status::Waived),
    }
}

fn checklist(report: &Report, show: Show, view: View) -> String {
    let mut out = String::new();
    let results: Vec<&CheckResult> = report
        .results
        .iter()
        .filter(|r| wanted(show, r.status))
        .collect();
    let mut results = results.into_iter().peekable();
    while let Some(first) = results.peek() {
        let section = first.section.clone();
        let mut table = new_table(view);
        table.set_header(vec!["Status", "Severity", "Check", "Object", "Message"]);
        while let Some(r) = results.next_if(|r| r.section == section) {
            let mut message = r.message.to_string();
            if let Some(w) = r.waiver.as_ref().filter(|w| !w.expired) {
                let _ = write!(
                    message,
                    "\nwaived by {} until {}: {}",
                    w.owner, w.expires, w.reason
                );
            }
            if show != Show::All
                && matches!(r.status, Status::Fail | Status::Error)
                && let Some(fix) = remediation(report, &r.id)
            {
                let _ = write!(
                    message,
                    "\nfix: {}",
                    fix.split_whitespace().collect::<Vec<_>>().join(" ")
                );
            }
            table.add_row(vec![
                status_cell(status_text(r.status).into(), r.status, view.color),
                Cell::new(r.severity.to_string()),
                Cell::new(&r.id),
                Cell::new(cell_text(&object_text(r).unwrap_or_else(|| "-".into()))),
                Cell::new(cell_text(&message)),
            ]);
        }
        let _ = writeln!(out, "{}\n{table}\n", paint(&section, "1", view.color));
    }
    if out.is_empty() {
        out.push_str("no result to show\n\n");
    }
    out
}

fn notes(report: &Report) -> String {
    let mut out = String::new();
    if !report.notes.is_empty() {
        let _ = writeln!(out, "Notes");
        for n in &report.notes {
            let _ = writeln!(out, "- {}", super::printable(&n.message, true));
        }
        out.push('\n');
    }
    out
}

pub fn render(report: &Report, view: View) -> String {
    let mut out = String::new();
    match view.show {
        None => {
            out.push_str(&summary_lines(report, view.color));
            let list = failures(report, view);
            if !list.is_empty() {
                out.push('\n');
                out.push_str(&list);
            }
            out.push('\n');
            out.push_str(&notes(report));
            let rest = report.summary.no_data + report.summary.skipped + report.summary.manual;
            if report.summary.fail + report.summary.error == 0 {
                out.push_str("No failure or error.\n");
            }
            let _ = writeln!(
                out,
                "--show open: the {rest} no-data, skipped and manual results too\n--show all: the whole checklist ({} results)",
                report.results.len()
            );
        }
        Some(show) => {
            out.push_str(&checklist(report, show, view));
            out.push_str(&notes(report));
            out.push_str(&summary_lines(report, view.color));
        }
    }
    out
}

/// `-v`: the run in a few lines for stderr; `-vv` adds every result, one line each.
pub fn verbose_lines(report: &Report, level: u8) -> Vec<String> {
    let mut lines = Vec::new();
    if level == 0 {
        return lines;
    }
    let t = &report.target;
    let mut what = format!("audited {}", t.mode);
    if !t.manifests.is_empty() {
        let _ = write!(what, ": {}", t.manifests.join(", "));
    }
    if let Some(c) = &t.cluster {
        let _ = write!(
            what,
            ": {} namespace {} ({} GET requests)",
            c.server,
            c.namespace.as_deref().unwrap_or("(all)"),
            c.requests
        );
    }
    lines.push(what);
    lines.extend(super::fleet::lines(report));
    if !t.endpoints.is_empty() {
        lines.push(format!("endpoints: {}", t.endpoints.join(", ")));
    }
    if let Some(p) = &t.prometheus {
        match &t.prometheus_selector {
            Some(s) => lines.push(format!("prometheus: {p} (series {s})")),
            None => lines.push(format!("prometheus: {p}")),
        }
    }
    let files = report
        .checks
        .iter()
        .filter(|c| c.kind != "built-in")
        .count();
    lines.push(format!(
        "{} check(s) ran ({} built-in, {files} from files), {} result(s)",
        report.checks.len(),
        report.checks.len() - files,
        report.results.len()
    ));
    if level >= 2 {
        for r in &report.results {
            let object = r
                .object
                .as_ref()
                .map(|o| format!(" {o}"))
                .unwrap_or_default();
            lines.push(format!(
                "{}{} {} {}{object}: {}",
                super::fleet::prefix(r),
                r.status,
                r.severity,
                r.id,
                super::printable(&r.message.replace('\n', " "), true)
            ));
        }
    }
    lines
}
