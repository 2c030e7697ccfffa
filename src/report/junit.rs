//! `--format junit`: one testcase per result, grouped in a testsuite per section, for CI systems'
//! test views. Failures are failures, errors are errors; everything not evaluated to pass or fail
//! is skipped with its reason, and a run whose gate is an error whatever its results (it decided
//! nothing) adds one error case saying so. Written with quick-junit, not by hand.

use super::{Report, Status};
use quick_junit::{NonSuccessKind, Report as JUnit, TestCase, TestCaseStatus, TestSuite};

pub fn render(report: &Report) -> String {
    let mut junit = JUnit::new("mlsdm-audit");
    if let Ok(ts) = chrono::DateTime::parse_from_rfc3339(&report.generated_at) {
        junit.set_timestamp(ts);
    }
    let mut suites: Vec<TestSuite> = Vec::new();
    for r in &report.results {
        if suites.last().is_none_or(|s| s.name.as_str() != &*r.section) {
            suites.push(TestSuite::new(&*r.section));
        }
        let mut status = match r.status {
            Status::Pass => TestCaseStatus::success(),
            Status::Fail => TestCaseStatus::non_success(NonSuccessKind::Failure),
            Status::Error => TestCaseStatus::non_success(NonSuccessKind::Error),
            Status::NoData | Status::Skipped | Status::Waived | Status::Manual => {
                TestCaseStatus::skipped()
            }
        };
        if r.status != Status::Pass {
            status.set_message(format!(
                "{}{}: {}",
                r.status,
                super::change_mark(r),
                r.message
            ));
            status.set_type(r.severity.to_string());
        }
        // What the result is about, in the name: two endpoints' results of one check (one
        // passing, one failing) had the same name, and a CI view keeping one per name showed
        // whichever came last.
        let name = match (&r.object, &r.endpoint) {
            (Some(o), _) => format!("{}{} {o}", super::fleet::prefix(r), r.id),
            (None, Some(e)) => format!("{}{} {e}", super::fleet::prefix(r), r.id),
            (None, None) => format!("{}{}", super::fleet::prefix(r), r.id),
        };
        let mut case = TestCase::new(name, status);
        case.set_classname(format!("mlsdm-audit.{}", r.id));
        if let Some(l) = &r.location {
            case.add_property(("file", format!("{}:{}", l.file, l.line).as_str()));
        }
        if let Some(c) = &r.cluster {
            case.add_property(("cluster", c.as_str()));
        }
        if let Some(change) = r.change {
            case.add_property(("baseline", format!("{change:?}").to_lowercase().as_str()));
        }
        if let Some(suite) = suites.last_mut() {
            suite.add_test_case(case);
        }
    }
    // A run that decided nothing (or a watch that could not decide) has only skipped cases,
    // which a CI's test view shows green: one error case says the gate did not pass, and why.
    if let Some(n) = report.undecided() {
        let mut status = TestCaseStatus::non_success(NonSuccessKind::Error);
        status.set_message(n.message.clone());
        let mut gate = TestSuite::new("mlsdm-audit gate");
        let mut case = TestCase::new("gate", status);
        case.set_classname("mlsdm-audit.gate");
        gate.add_test_case(case);
        suites.push(gate);
    }
    // Every note (a workload a selector left out, a baseline of another audit, a file skipped)
    // as the report's output: each says something the test cases alone do not.
    if !report.notes.is_empty() {
        let mut notes = TestSuite::new("mlsdm-audit notes");
        notes.set_system_out(
            report
                .notes
                .iter()
                .map(|n| super::printable(&n.message, true))
                .collect::<Vec<_>>()
                .join("\n"),
        );
        suites.push(notes);
    }
    junit.add_test_suites(suites);
    // quick-junit drops control characters but keeps U+FFFE and U+FFFF, which XML forbids (one
    // in an object's name made strict parsers refuse the whole file, and show no failure), and
    // the bidi overrides a CI's test view would reorder a message with: written as escapes.
    super::printable(&junit.to_string().unwrap_or_default(), false).into_owned()
}
