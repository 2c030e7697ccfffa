//! The report laid out as the seed checklist: its sections and lines in order, each line with the
//! state its checks give it. Markdown and HTML render this one view.

use super::{CheckResult, Report, SkipReason, Status};
use crate::seed;

/// The state of one checklist line.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum LineState {
    /// Every covering result passed (or was attested).
    Done,
    /// Accepted by a waiver (some result waived, none failing).
    Waived,
    /// The line does not apply here (a `when` condition did not hold, or it is an optional item
    /// the team has not declared in its requirements).
    NotApplicable,
    /// Failed, errored, had no data, was not evaluated, or awaits attestation.
    Open,
}

#[derive(Debug, Clone)]
pub struct Line<'a> {
    /// Index of the line in the seed text: what renderers key on. `None` for a line of a
    /// team's own check (its `checklist` lines not in the seed, or its title).
    pub seed_line: Option<usize>,
    pub text: String,
    pub state: LineState,
    pub results: Vec<&'a CheckResult>,
    /// `--only`/`--skip` left checks out of the run: a line without results may be one of theirs.
    pub subset: bool,
    /// Built-in checks covering this line that `--only`/`--skip` left out: the line is open,
    /// whatever the checks that ran say (review finding: `--only pods-admitted` ticked "Limits
    /// match workload", which resources-limits-match-workload, left out, fails on that release).
    pub left_out: Vec<String>,
}

#[derive(Debug, Clone)]
pub struct Section<'a> {
    pub path: String,
    pub lines: Vec<Line<'a>>,
}

fn state(results: &[&CheckResult]) -> LineState {
    if results.is_empty() {
        return LineState::Open;
    }
    let open = |r: &&&CheckResult| {
        matches!(
            r.status,
            Status::Fail | Status::Error | Status::NoData | Status::Manual
        ) || (r.status == Status::Skipped
            && !r
                .skip_reason
                .as_ref()
                .is_some_and(SkipReason::not_applicable))
    };
    if results.iter().any(|r| open(&r)) {
        LineState::Open
    } else if results.iter().any(|r| r.status == Status::Waived) {
        LineState::Waived
    } else if results.iter().all(|r| r.status == Status::Skipped) {
        LineState::NotApplicable
    } else {
        LineState::Done
    }
}

/// The checklist view of a report, in the seed's order.
pub fn build(report: &Report) -> Vec<Section<'_>> {
    let subset = !report.target.left_out.is_empty();
    let left_out = left_out_lines(&report.target);
    let lines = seed::lines();
    let mut sections: Vec<Section<'_>> = Vec::new();
    for l in &lines {
        let covering: Vec<&CheckResult> = report
            .results
            .iter()
            .filter(|r| r.checklist.contains(&l.text))
            .collect();
        // A line that appears twice in the seed ("Status page updated") belongs to the checks of its own section.
        let duplicate = lines.iter().filter(|o| o.text == l.text).count() > 1;
        let mut covering: Vec<&CheckResult> = if duplicate {
            covering
                .into_iter()
                .filter(|r| *r.section == *l.section)
                .collect()
        } else {
            covering
        };
        // A fleet with a cluster that could not be audited satisfies no line: what holds in the
        // other clusters says nothing about that one.
        covering.extend(
            report
                .results
                .iter()
                .filter(|r| r.id == super::fleet::UNAUDITED_ID),
        );
        let omitted = left_out_of(&left_out, &l.text);
        let line = Line {
            seed_line: Some(l.seed_line),
            text: l.text.clone(),
            state: if omitted.is_empty() {
                state(&covering)
            } else {
                LineState::Open
            },
            results: covering,
            subset,
            left_out: omitted,
        };
        match sections.last_mut() {
            Some(s) if s.path == l.section => s.lines.push(line),
            _ => sections.push(Section {
                path: l.section.clone(),
                lines: vec![line],
            }),
        }
    }
    sections.extend(beyond_the_seed(report, &lines, &left_out));
    sections
}

/// The checklist lines of the checks `--only`/`--skip` left out: as the run recorded them
/// (`target.leftOutChecklist`, a team's checks included), and for a built-in check also as the
/// catalog gives them (a report written before the run recorded them). Both count: a line any
/// of them covers is open.
fn left_out_lines(target: &super::Target) -> Vec<(String, Vec<String>)> {
    if target.left_out.is_empty() {
        return Vec::new();
    }
    let mut lines: Vec<(String, Vec<String>)> = target
        .left_out_checklist
        .iter()
        .filter(|(id, _)| target.left_out.contains(id))
        .map(|(id, lines)| (id.clone(), lines.clone()))
        .collect();
    let catalog = crate::checks::load(&[]).unwrap_or_default();
    for c in catalog {
        if !target.left_out.contains(&c.id) {
            continue;
        }
        match lines.iter_mut().find(|(id, _)| *id == c.id) {
            Some((_, known)) => {
                for line in c.checklist {
                    if !known.contains(&line) {
                        known.push(line);
                    }
                }
            }
            None => lines.push((c.id, c.checklist)),
        }
    }
    lines
}

/// The lines of checks the seed does not list (a team's own, in its own sections or with its
/// own checklist lines), after the seed's sections: no result is left out of the checklist.
fn beyond_the_seed<'a>(
    report: &'a Report,
    seed: &[seed::SeedLine],
    left_out: &[(String, Vec<String>)],
) -> Vec<Section<'a>> {
    use std::collections::{BTreeMap, HashMap};
    // Each seed line's text, and the sections it appears in.
    let mut on_seed: HashMap<&str, Vec<&str>> = HashMap::new();
    for l in seed {
        on_seed
            .entry(l.text.as_str())
            .or_default()
            .push(l.section.as_str());
    }
    // Whether `build` put the result on that seed line: a line that appears once takes every
    // result naming it, one that appears twice only those of its own section. A team's check
    // naming "Status page updated" from a section of its own was on neither line, and was left
    // out here as "on the seed": its failure showed only as a count.
    let taken = |text: &str, section: &str| match on_seed.get(text).map(Vec::as_slice) {
        None | Some([]) => false,
        Some([_]) => true,
        Some(sections) => sections.contains(&section),
    };
    let mut by_section: BTreeMap<&str, BTreeMap<&str, Vec<&CheckResult>>> = BTreeMap::new();
    for r in &report.results {
        let own: Vec<&str> = if r.checklist.is_empty() {
            vec![&*r.title]
        } else {
            r.checklist
                .iter()
                .map(String::as_str)
                .filter(|t| !taken(t, &r.section))
                .collect()
        };
        for text in own {
            by_section
                .entry(&*r.section)
                .or_default()
                .entry(text)
                .or_default()
                .push(r);
        }
    }
    let mut sections: Vec<Section<'a>> = by_section
        .into_iter()
        .map(|(path, lines)| Section {
            path: path.to_string(),
            lines: lines
                .into_iter()
                .map(|(text, results)| {
                    // A team's own line is open too when a check left out covers it.
                    let omitted = left_out_of(left_out, text);
                    Line {
                        seed_line: None,
                        text: text.to_string(),
                        state: if omitted.is_empty() {
                            state(&results)
                        } else {
                            LineState::Open
                        },
                        results,
                        subset: false,
                        left_out: omitted,
                    }
                })
                .collect(),
        })
        .collect();
    // The lines only left-out checks cover, neither on the seed nor shown above: open, under a
    // section of their own (the report records a left-out check's lines, not its section).
    // Before, a left-out team check's own line was missing from the checklist altogether.
    let shown: std::collections::HashSet<String> = sections
        .iter()
        .flat_map(|s| s.lines.iter().map(|l| l.text.clone()))
        .collect();
    let mut only_left_out: Vec<&str> = left_out
        .iter()
        .flat_map(|(_, lines)| lines.iter().map(String::as_str))
        .filter(|t| !on_seed.contains_key(t) && !shown.contains(*t))
        .collect();
    only_left_out.sort_unstable();
    only_left_out.dedup();
    if !only_left_out.is_empty() {
        sections.push(Section {
            path: LEFT_OUT_SECTION.to_string(),
            lines: only_left_out
                .into_iter()
                .map(|text| Line {
                    seed_line: None,
                    text: text.to_string(),
                    state: LineState::Open,
                    results: Vec::new(),
                    subset: true,
                    left_out: left_out_of(left_out, text),
                })
                .collect(),
        });
    }
    sections
}

/// The section of the lines only checks left out by `--only`/`--skip` cover.
pub const LEFT_OUT_SECTION: &str = "Left out of this run (--only/--skip)";

/// The ids of the left-out checks covering `text`.
fn left_out_of(left_out: &[(String, Vec<String>)], text: &str) -> Vec<String> {
    left_out
        .iter()
        .filter(|(_, lines)| lines.iter().any(|l| l == text))
        .map(|(id, _)| id.clone())
        .collect()
}

/// A short reason or evidence for a line, for people.
pub fn detail(line: &Line<'_>) -> String {
    let mut parts: Vec<String> = Vec::new();
    // Texts already given, as a set: a line covered by thousands of results compared each new
    // text with every earlier one (the square of the results on a line; issue 12).
    let mut given: std::collections::HashSet<String> = std::collections::HashSet::new();
    for r in &line.results {
        let object = r.object.as_ref().map(|o| {
            let at = r
                .location
                .as_ref()
                .map(|l| format!(" ({}:{})", l.file, l.line))
                .unwrap_or_default();
            format!("{o}{at}")
        });
        let text = match (line.state, r.status) {
            (_, Status::Pass) if r.attestation.is_some() => r
                .attestation
                .as_ref()
                .map(|a| format!("attested by {} on {}: {}", a.by, a.date, a.evidence))
                .unwrap_or_default(),
            (LineState::Done, Status::Pass) => {
                format!(
                    "{}: {}",
                    r.id,
                    object.unwrap_or_else(|| r.message.to_string())
                )
            }
            (_, Status::Waived) => {
                let w = r.waiver.as_ref();
                format!(
                    "{} waived by {} until {}: {}",
                    r.id,
                    w.map_or("?", |w| w.owner.as_str()),
                    w.map_or("?", |w| w.expires.as_str()),
                    w.map_or("", |w| w.reason.as_str())
                )
            }
            (_, Status::Pass) => continue,
            (_, status) => match object {
                Some(o) => format!(
                    "{} {status}{} on {o}: {}",
                    r.id,
                    super::change_mark(r),
                    r.message
                ),
                None => format!("{} {status}{}: {}", r.id, super::change_mark(r), r.message),
            },
        };
        // In a fleet report: which cluster.
        let text = format!("{}{text}", super::fleet::prefix(r));
        if given.insert(text.clone()) {
            parts.push(text);
        }
    }
    if !line.left_out.is_empty() {
        parts.push(format!(
            "not all of its checks ran: {} left out (--only/--skip)",
            line.left_out.join(", ")
        ));
    }
    if line.results.is_empty() && line.left_out.is_empty() {
        parts.push(if line.subset {
            "no check of this run covers this line (--only/--skip left checks out)".into()
        } else {
            "no check covers this line".into()
        });
    }
    parts.join("; ")
}

#[cfg(test)]
mod tests {
    use super::build;
    use crate::report::{CheckResult, Report, Status, Target};

    /// Review finding: "Status page updated" appears twice in the seed, each taking the checks of
    /// its own section; a team's check naming it from a section of its own was on neither line
    /// and, its text being on the seed, not among the lines beyond it either.
    #[test]
    fn a_result_on_a_duplicate_seed_line_from_another_section_is_not_lost() {
        let mut r = CheckResult::new(
            "team-status-page",
            crate::facts::Source::Kubernetes,
            Status::Fail,
            "the status page was not updated",
        );
        r.section = "Team / Communication".into();
        r.checklist = vec!["Status page updated".to_string()].into();
        let report = Report::new(Target::default(), vec![r]);
        let shown: Vec<_> = build(&report)
            .into_iter()
            .flat_map(|s| s.lines)
            .filter(|l| l.results.iter().any(|x| &*x.id == "team-status-page"))
            .collect();
        assert_eq!(shown.len(), 1, "{shown:#?}");
        assert_eq!(shown[0].text, "Status page updated");
    }

    /// Review finding: `--only pods-admitted` ticked "Limits match workload", a line
    /// resources-limits-match-workload covers too, which was left out (and fails on that
    /// release): a line some left-out check covers is open, saying which.
    #[test]
    fn a_line_whose_other_checks_were_left_out_is_open() {
        let mut r = CheckResult::new(
            "pods-admitted",
            crate::facts::Source::Kubernetes,
            Status::Pass,
            "admitted",
        );
        r.checklist = vec!["Limits match workload".to_string()].into();
        let mut report = Report::new(Target::default(), vec![r]);
        let line = |report: &Report| {
            build(report)
                .into_iter()
                .flat_map(|s| s.lines)
                .find(|l| l.text == "Limits match workload")
                .map(|l| (l.state, super::detail(&l)))
                .unwrap()
        };
        assert_eq!(line(&report).0, super::LineState::Done);
        report.target.left_out = vec!["resources-limits-match-workload".into()];
        let (state, detail) = line(&report);
        assert_eq!(state, super::LineState::Open);
        assert!(
            detail.contains("not all of its checks ran: resources-limits-match-workload left out"),
            "{detail}"
        );
    }

    /// The checklist line `text` of a report where `ran` passed on it and the team's check
    /// `left_out`, covering it too, was left out by `--only`.
    fn line_with_one_left_out(ran: &str, left_out: &str, text: &str) -> super::Line<'static> {
        let mut r = CheckResult::new(ran, crate::facts::Source::Kubernetes, Status::Pass, "ok");
        r.checklist = vec![text.to_string()].into();
        let mut report = Report::new(Target::default(), vec![r]);
        report.target.left_out = vec![left_out.into()];
        report.target.left_out_checklist = [(left_out.to_string(), vec![text.to_string()])].into();
        let report: &'static Report = Box::leak(Box::new(report));
        build(report)
            .into_iter()
            .flat_map(|s| s.lines)
            .find(|l| l.text == text)
            .unwrap()
    }

    /// A team's check left out by `--only` opens the lines the run recorded for it (before,
    /// its lines were ticked by the built-in checks that ran: the team file is not read at
    /// render time).
    #[test]
    fn a_line_a_left_out_team_check_covers_is_open() {
        let line = line_with_one_left_out("pods-admitted", "team-limits", "Limits match workload");
        assert_eq!(line.state, super::LineState::Open);
        assert!(
            super::detail(&line).contains("not all of its checks ran: team-limits left out"),
            "{}",
            super::detail(&line)
        );
    }

    /// Review finding: a team's own line (not on the seed) was ticked by the checks that ran
    /// when a check `--only`/`--skip` left out covers it too.
    #[test]
    fn a_team_line_beyond_the_seed_a_left_out_check_covers_is_open() {
        let line = line_with_one_left_out("team-backup", "team-restore", "Backups restored weekly");
        assert_eq!(line.state, super::LineState::Open);
        assert_eq!(line.left_out, ["team-restore"]);
        assert_eq!(line.seed_line, None);
    }

    /// Review finding: a left-out team check's own line that no check that ran covers was
    /// missing from the checklist (only a general note said checks were left out).
    #[test]
    fn a_team_line_only_a_left_out_check_covers_is_listed_open() {
        let mut report = Report::new(Target::default(), Vec::new());
        report.target.left_out = vec!["team-restore".into()];
        report.target.left_out_checklist = [(
            "team-restore".to_string(),
            vec!["Restore drilled".to_string()],
        )]
        .into();
        let sections = build(&report);
        let section = sections
            .iter()
            .find(|s| s.path == super::LEFT_OUT_SECTION)
            .unwrap();
        assert_eq!(section.lines.len(), 1);
        let line = &section.lines[0];
        assert_eq!(
            (line.text.as_str(), line.state),
            ("Restore drilled", super::LineState::Open)
        );
        assert!(
            super::detail(line).contains("team-restore"),
            "{}",
            super::detail(line)
        );
    }
}
