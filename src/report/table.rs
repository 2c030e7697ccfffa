//! `--format table`: the checklist a person reads in a terminal, grouped by section, with a
//! one-line summary last.

use super::{Report, Status};
use comfy_table::{
    Attribute, Cell, Color, ContentArrangement, Table, presets::UTF8_FULL_CONDENSED,
};
use std::fmt::Write as _;

fn status_cell(status: Status, color: bool) -> Cell {
    let text = match status {
        Status::Pass => "PASS",
        Status::Fail => "FAIL",
        Status::Error => "ERROR",
        Status::NoData => "NO-DATA",
        Status::Skipped => "SKIP",
        Status::Waived => "WAIVED",
        Status::Manual => "MANUAL",
    };
    let cell = Cell::new(text);
    if !color {
        return cell;
    }
    match status {
        Status::Pass => cell.fg(Color::Green),
        Status::Fail => cell.fg(Color::Red).add_attribute(Attribute::Bold),
        Status::Error => cell.fg(Color::Magenta).add_attribute(Attribute::Bold),
        Status::NoData | Status::Manual => cell.fg(Color::Yellow),
        Status::Skipped | Status::Waived => cell.fg(Color::DarkGrey),
    }
}

fn new_table(color: bool) -> Table {
    let mut table = Table::new();
    table.load_style(UTF8_FULL_CONDENSED);
    table.set_content_arrangement(ContentArrangement::Dynamic);
    table.set_width(140);
    if !color {
        table.force_no_tty();
    }
    table
}

pub fn render(report: &Report, color: bool) -> String {
    let mut out = String::new();
    let mut results = report.results.iter().peekable();
    while let Some(first) = results.peek() {
        let section = first.section.clone();
        let mut table = new_table(color);
        table.set_header(vec!["Status", "Severity", "Check", "Object", "Message"]);
        while let Some(r) = results.next_if(|r| r.section == section) {
            let object = match (&r.object, &r.location) {
                (Some(o), Some(l)) => format!("{o}\n{}:{}", l.file, l.line),
                (Some(o), None) => o.to_string(),
                _ => "-".into(),
            };
            let mut message = r.message.clone();
            if let Some(w) = r.waiver.as_ref().filter(|w| !w.expired) {
                let _ = write!(
                    message,
                    "\nwaived by {} until {}: {}",
                    w.owner, w.expires, w.reason
                );
            }
            table.add_row(vec![
                status_cell(r.status, color),
                Cell::new(r.severity.to_string()),
                Cell::new(&r.id),
                Cell::new(object),
                Cell::new(message),
            ]);
        }
        let title = if color {
            format!("\x1b[1m{section}\x1b[0m")
        } else {
            section
        };
        let _ = writeln!(out, "{title}\n{table}\n");
    }
    if !report.notes.is_empty() {
        let _ = writeln!(out, "Notes");
        for n in &report.notes {
            let _ = writeln!(out, "- {n}");
        }
        out.push('\n');
    }
    let s = &report.summary;
    let _ = writeln!(
        out,
        "{} pass, {} fail, {} error, {} no-data, {} skipped, {} waived, {} manual (fail-on: {})",
        s.pass, s.fail, s.error, s.no_data, s.skipped, s.waived, s.manual, report.target.fail_on
    );
    out
}
